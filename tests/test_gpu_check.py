"""bench/gpu_check.sh --smoke: the GPU check's code paths on the CPU, so that it cannot rot."""

from __future__ import annotations

import os
import sys

import pytest

from tests.conftest import REPO_ROOT, start, tail, wait_all

SMOKE_TIMEOUT_S = 400  # about 90 s on 2 idle cores: five runs, mostly process start-up


@pytest.mark.multiprocess
def test_smoke_mode_writes_one_table_row_per_task_and_setup(tmp_path):
    out, log = tmp_path / "out", tmp_path / "gpu_check.log"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        "GPU_CHECK_WORK": str(tmp_path / "work"),
    }
    command = ["bash", os.path.join("bench", "gpu_check.sh"), "--smoke", str(out)]
    [code] = wait_all([start(command, env, REPO_ROOT, log)], SMOKE_TIMEOUT_S)
    assert code == 0, tail(log)

    lines = (out / "gpu_check.md").read_text(encoding="utf-8").splitlines()
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if "|" in line]
    header, rows = table[0], [dict(zip(table[0], cells, strict=True)) for cells in table[2:]]
    assert "train tokens/s" in header and "eval F1" in header
    by_setup = {(row["task"], row["setup"]): row for row in rows}
    trained = [("ner", "DDP"), ("ner", "FSDP2"), ("re", "DDP"), ("re", "FSDP2")]
    expected = {*trained, ("ner", "transformers Trainer")}
    expected |= {("ner", "DeepSpeed ZeRO-3"), ("re", "DeepSpeed ZeRO-3")}
    assert set(by_setup) == expected and len(rows) == len(expected)
    for key in [*trained, ("ner", "transformers Trainer")]:
        row = by_setup[key]
        assert row["status"] == "ok", row
        assert float(row["train tokens/s"]) > 0 and 0 <= float(row["eval F1"]) <= 1, row
    for key in trained:
        assert by_setup[key]["pipeline loaded"] == "yes", by_setup[key]
        assert int(by_setup[key]["steps"]) == 8
    for task in ("ner", "re"):  # where the trainer reports it: sharded, not a silent fallback
        assert by_setup[task, "FSDP2"]["distributed type"].split()[0] == "FSDP"
    assert by_setup["ner", "DDP"]["vs transformers Trainer"].endswith("x")
    assert by_setup["ner", "DeepSpeed ZeRO-3"]["status"].startswith("skipped")
    assert (out / "gpu_check.json").exists() and (out / "logs.txt").exists()
