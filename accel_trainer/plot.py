"""`accel-trainer plot OUTPUT_DIR`: the training loss, learning rate and evaluation metrics of a
run, read from its log_history.jsonl, drawn into one PNG."""

from __future__ import annotations

import io
import json
import os

from accel_trainer.errors import ConfigError, first_line
from accel_trainer.storage.write_policy import check_target, write_owned

LOG_FILE = "log_history.jsonl"
SCORES = ("eval_f1", "eval_precision", "eval_recall", "eval_macro_f1", "eval_accuracy",
          "eval_semeval2010_official_f1")  # fmt: skip


def read_log_history(output_dir: str) -> list[dict]:
    """The records of OUTPUT_DIR/log_history.jsonl, with a clear error when there are none."""
    path = os.path.join(output_dir, LOG_FILE)
    if not os.path.isfile(path):
        raise ConfigError(
            f"no {LOG_FILE} in {output_dir!r}: give the --output_dir of an accel-trainer train run."
        )
    with open(path, "rb") as handle:
        lines = handle.read().splitlines()
    records = [log_record(path, number, line) for number, line in enumerate(lines, start=1)]
    records = [record for record in records if record is not None]
    if not any("loss" in record for record in records):
        raise ConfigError(f"{path} has no training record yet: plot after the first log step.")
    return records


def log_record(path: str, number: int, line: bytes) -> dict | None:
    """One line of log_history.jsonl: an object with its integer 'step'; None for a blank line."""
    if not line.strip():
        return None
    shown = line.strip()[:60].decode("utf-8", errors="replace")
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(
            f"{path} line {number} is not JSON: got {shown!r}. The run may have been cut while "
            "writing it; delete that line."
        ) from None
    step = record.get("step") if isinstance(record, dict) else None
    if not isinstance(step, int) or isinstance(step, bool):
        raise ConfigError(
            f"{path} line {number} is no log record of accel-trainer (an object with its "
            f"'step'): got {shown!r}. Delete or fix that line."
        )
    return record


def series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records that hold `key`."""
    points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return [step for step, _ in points], [value for _, value in points]


def image_format(path: str) -> str:
    """The image format matplotlib writes for `path`'s suffix; ConfigError when it has none."""
    from matplotlib.backend_bases import FigureCanvasBase

    # pgf needs a LaTeX installation; the others are drawn by matplotlib alone
    known = {name for name in FigureCanvasBase.get_supported_filetypes() if name != "pgf"}
    suffix = os.path.splitext(path)[1].lower().removeprefix(".")
    if suffix not in known:
        raise ConfigError(
            f"--output_file has a suffix matplotlib cannot write: got {path!r}. End it in one "
            f"of {', '.join('.' + name for name in sorted(known))} (e.g. curves.png)."
        )
    return suffix


def plot(output_dir: str, output_file: str | None = None, overwrite: bool = False) -> str:
    """Draw loss, learning rate and eval scores over optimizer steps into `output_file` (by the
    write policy; default OUTPUT_DIR/training_curves.png); return its path."""
    output_file = output_file or os.path.join(output_dir, "training_curves.png")
    records = read_log_history(output_dir)
    image = image_format(output_file)
    check_target(output_file, "--output_file", overwrite)
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, (loss_axis, rate_axis, score_axis) = plt.subplots(1, 3, figsize=(15, 4.2))
    loss_axis.plot(*series(records, "loss"), label="train loss")
    if series(records, "eval_loss")[0]:
        loss_axis.plot(*series(records, "eval_loss"), marker="o", label="eval loss")
    rate_axis.plot(*series(records, "learning_rate"), color="tab:green")
    for key in SCORES:
        steps, values = series(records, key)
        if steps:
            score_axis.plot(steps, values, marker="o", label=key.removeprefix("eval_"))
    for axis, title in (
        (loss_axis, "loss"),
        (rate_axis, "learning rate"),
        (score_axis, "evaluation"),
    ):
        axis.set_title(title)
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.suptitle(os.path.basename(os.path.abspath(output_dir)))
    figure.tight_layout()
    drawn = io.BytesIO()
    try:
        figure.savefig(drawn, format=image, dpi=100)
    except (RuntimeError, OSError, ValueError) as error:  # a writer matplotlib lacks here
        raise ConfigError(
            f"--output_file could not be drawn as .{image}: got {output_file!r} "
            f"({first_line(error)}). Use .png, .svg or .pdf."
        ) from None
    finally:
        plt.close(figure)
    write_owned(output_file, drawn.getvalue(), overwrite, "--output_file")
    return output_file
