"""The example task (examples/text_classification.py), written outside the package: read with
file-and-line errors, registered, trained through the Python API, reloaded in a transformers
pipeline, evaluated and predicted with the commands."""

import importlib.util
import json
import pathlib
import random
import sys

import numpy as np
import pytest

from accel_trainer.errors import DataError
from accel_trainer.tasks import registry

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "text_classification.py"
WORDS = {
    "pos": ["great", "lovely", "wonderful", "superb", "delightful"],
    "neg": ["awful", "terrible", "dreadful", "horrid", "dismal"],
}
THINGS = ["film", "meal", "trip", "book", "song", "hotel", "game", "show"]


def load_example():
    """Import the example as a user would (it registers its task on import)."""
    if "text_classification" not in sys.modules:
        spec = importlib.util.spec_from_file_location("text_classification", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["text_classification"] = module
        spec.loader.exec_module(module)
    module = sys.modules["text_classification"]
    registry.register_task(module.TextClassificationTask)  # again, should a test have reset it
    return module


def sentences(count: int, seed: int) -> list[tuple[str, str]]:
    """Texts whose label is the sentiment of their adjectives."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.choice(sorted(WORDS))
        words = rng.sample(WORDS[label], 2)
        rows.append((f"the {rng.choice(THINGS)} was {words[0]} and {words[1]}", label))
    return rows


def write_csv(path: pathlib.Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return str(path)


def read_error(path: pathlib.Path, content: str, labelled: bool = True) -> str:
    path.write_text(content)
    with pytest.raises(DataError) as error:
        load_example().TextClassificationTask().read(str(path), "--train_file", "auto", labelled)
    return str(error.value)


def test_csv_and_json_lines_read_the_same_examples(tmp_path):
    task = load_example().TextClassificationTask()
    rows = [("a fine, sunny day", "pos"), ("rain again", "neg")]
    csv_path = tmp_path / "train.csv"
    csv_path.write_text('text,label\n"a fine, sunny day",pos\n\nrain again,neg\n')
    jsonl_path = tmp_path / "train.jsonl"
    jsonl_path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    from_csv = task.read(str(csv_path), "--train_file", "auto")
    from_jsonl = task.read(str(jsonl_path), "--train_file", "auto")
    assert from_csv["text"] == from_jsonl["text"] == [text for text, _ in rows]
    assert task.label_list(from_csv) == task.label_list(from_jsonl) == ["neg", "pos"]
    assert from_csv["line"] == [2, 4] and from_jsonl["line"] == [1, 2]


def test_bad_rows_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "train.csv"
    assert f"--train_file {path} line 1 is not a header with columns text,label" in read_error(
        path, "sentence,label\nhello,pos\n"
    )
    assert f"{path} line 3 has 3 columns, expected 2 (text,label)" in read_error(
        path, "text,label\nhello,pos\nhello, world,pos\n"
    )
    assert f"{path} line 2 has no label: got ''" in read_error(path, "text,label\nhello,\n")
    assert f"{path} is empty: got 0 examples" in read_error(path, "text,label\n")
    lines = tmp_path / "train.jsonl"
    assert f"{lines} line 2 is not valid JSON" in read_error(
        lines, '{"text": "a", "label": "x"}\n{"text": "b",\n'
    )
    assert f"{lines} line 1 has no text: got None" in read_error(lines, '{"label": "x"}\n')
    unlabelled = (
        load_example()
        .TextClassificationTask()
        .read(str(write_csv(tmp_path / "in.csv", [("hello", "")])), "--input_file", "auto", False)
    )
    assert unlabelled["label"] == [None]


def test_metrics_are_accuracy_and_macro_f1():
    task = load_example().TextClassificationTask()
    id2label = {0: "neg", 1: "pos", 2: "neutral"}
    predictions = [np.array(p) for p in (0, 1, 1, 1)]
    labels = [np.array(y) for y in (0, 1, 0, 1)]
    metrics = task.compute_metrics(predictions, labels, id2label)
    # neg: P 1, R 1/2, F1 2/3; pos: P 2/3, R 1, F1 4/5; neutral never occurs: F1 0.
    assert metrics == pytest.approx({"accuracy": 0.75, "macro_f1": (2 / 3 + 4 / 5 + 0) / 3})
    assert sorted(metrics) == task.metric_names(list(id2label.values()))


def test_the_example_task_trains_saves_and_reloads_in_a_pipeline(tmp_path, capsys):
    """The issue's proof that the interface is real: no change inside the package."""
    from transformers import pipeline

    from accel_trainer import AccelerateTrainer, EvalConfig, TrainConfig, commands
    from accel_trainer.config import PredictConfig

    load_example()
    train_rows, dev_rows = sentences(48, seed=1), sentences(16, seed=2)
    train = write_csv(tmp_path / "train.csv", train_rows)
    dev = write_csv(tmp_path / "dev.csv", dev_rows)
    out = tmp_path / "out"
    config = TrainConfig.from_options(
        task="text-classification",
        model_name_or_path="tiny-bert",
        train_file=train,
        validation_file=dev,
        output_dir=str(out),
        max_train_steps=40,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        max_seq_length=32,
    )
    results = AccelerateTrainer.from_files(config).fit()
    assert results["eval_accuracy"] >= 0.9 and "eval_macro_f1" in results
    saved = json.loads((out / "config.json").read_text())
    assert saved["accel_trainer"]["task"] == "text-classification"
    assert sorted(saved["id2label"].values()) == ["neg", "pos"]
    assert "pipeline_tag: text-classification" in (out / "README.md").read_text()

    classify = pipeline("text-classification", model=str(out), device="cpu")
    texts = [text for text, _ in train_rows[:16]]
    predicted = [answer["label"] for answer in classify(texts)]
    right = sum(p == y for p, (_, y) in zip(predicted, train_rows[:16], strict=True))
    assert right >= 14, predicted

    metrics = commands.evaluate(
        EvalConfig.from_options(
            model_name_or_path=str(out), validation_file=dev, output_dir=str(tmp_path / "eval")
        )
    )
    assert metrics["eval_accuracy"] == pytest.approx(results["eval_accuracy"])
    assert metrics["eval_macro_f1"] == pytest.approx(results["eval_macro_f1"])

    predictions = tmp_path / "predictions.jsonl"
    commands.predict(
        PredictConfig.from_options(
            model_name_or_path=str(out), input_file=dev, output_file=str(predictions)
        )
    )
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [record["text"] for record in records] == [text for text, _ in dev_rows]
    assert {record["predicted_label"] for record in records} <= {"neg", "pos"}
    capsys.readouterr()


def test_the_example_task_brings_its_own_data_format(tmp_path):
    """--data_format csv is known once the example is registered, and only for its task."""
    from accel_trainer import TrainConfig
    from accel_trainer.config import validate
    from accel_trainer.errors import ConfigError

    load_example()
    train = write_csv(tmp_path / "train.csv", sentences(4, seed=3))
    options = dict(train_file=train, output_dir=str(tmp_path / "out"), data_format="csv")
    validate(TrainConfig.from_options(task="text-classification", **options))
    with pytest.raises(
        ConfigError, match=r"--data_format is not a format of --task ner: got 'csv'"
    ):
        validate(TrainConfig.from_options(task="ner", **options))
