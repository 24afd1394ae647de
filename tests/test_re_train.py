"""Relation extraction end to end: the demo trains, saves, reloads, evaluates and predicts."""

import json
import os
import shutil

import pytest
import torch
from transformers import AutoModelForSequenceClassification, pipeline

from accel_trainer import TrainConfig, commands
from accel_trainer.cli import main
from accel_trainer.models import vocabulary_digest
from tests.conftest import evaluate_saved, read_json, read_jsonl, reset_accelerate, write_jsonl

RE_DEMO_F1 = 0.95  # the README states what the demo reaches (0.990); this is its floor


@pytest.fixture(scope="module")
def re_run(tmp_path_factory):
    """The RE demo (`accel-trainer train --task re`), trained once in this process."""
    output_dir = str(tmp_path_factory.mktemp("re") / "out")
    trainer = commands.build_trainer(TrainConfig.from_options(task="re", output_dir=output_dir))
    results = trainer.fit()
    yield trainer, results, output_dir
    reset_accelerate()


def test_re_demo_learns_and_reports_every_metric(re_run):
    _, results, output_dir = re_run
    assert results["eval_f1"] > RE_DEMO_F1
    for key in ("eval_precision", "eval_recall", "eval_macro_f1", "eval_accuracy"):
        assert 0 < results[key] <= 1, key
    assert results["eval_samples"] == 200 and results["train_samples"] == 1600
    assert read_json(os.path.join(output_dir, "all_results.json")) == results
    losses = [
        r["loss"] for r in read_jsonl(os.path.join(output_dir, "log_history.jsonl")) if "loss" in r
    ]
    assert losses[-1] < losses[0]


def test_saved_re_folder_records_task_and_markers(re_run):
    trainer, _, output_dir = re_run
    config = read_json(os.path.join(output_dir, "config.json"))
    assert config["accel_trainer"] == {
        "task": "re",
        "entity_markers": ["<e1>", "</e1>", "<e2>", "</e2>"],
        "typed_markers": False,
        "entity_types": [],
        "negative_label": "no_relation",
        "tokenizer_size": len(trainer.tokenizer),  # markers included
        "tokenizer_vocab": vocabulary_digest(trainer.tokenizer),
    }
    assert sorted(config["label2id"]) == ["based_in", "born_in", "no_relation", "works_for"]
    reloaded = AutoModelForSequenceClassification.from_pretrained(output_dir).eval()
    batch = trainer.tokenizer(
        ["<e1> Tom Baker </e1> works for <e2> Globex </e2> ."], return_tensors="pt"
    )
    in_memory = trainer.accelerator.unwrap_model(trainer.model).eval()
    with torch.no_grad():
        assert torch.equal(in_memory(**batch).logits, reloaded(**batch).logits)


def test_pipeline_and_predict_agree(re_run, tmp_path):
    _, _, output_dir = re_run
    dev = os.path.join(output_dir, "data", "dev.jsonl")
    out = tmp_path / "pred.jsonl"
    assert (
        main(
            [
                "predict",
                "--model_name_or_path",
                output_dir,
                "--input_file",
                dev,
                "--output_file",
                str(out),
            ]
        )
        == 0
    )
    inputs, predicted = read_jsonl(dev), read_jsonl(out)
    assert [p["text"] for p in predicted] == [i["text"] for i in inputs]  # input order
    classify = pipeline("text-classification", model=output_dir)
    for record in predicted[:20]:
        best = classify(record["text"])[0]
        assert best["label"] == record["predicted_label"]
        assert best["score"] == pytest.approx(record["probability"], abs=1e-5)
    accuracy = sum(p["predicted_label"] == p["label"] for p in predicted) / len(predicted)
    assert accuracy > 0.7


def test_evaluate_reproduces_training_metrics(re_run, tmp_path):
    _, results, output_dir = re_run
    dev = os.path.join(output_dir, "data", "dev.jsonl")
    written = evaluate_saved(output_dir, dev, tmp_path)
    for key in ("eval_f1", "eval_macro_f1", "eval_accuracy", "eval_samples"):
        assert written[key] == pytest.approx(results[key]), key


def test_predict_keeps_examples_that_do_not_fit(re_run, tmp_path):
    _, _, output_dir = re_run
    far_apart = "<e1> Tom Baker </e1> " + "and then " * 80 + "<e2> Globex </e2> ."
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "text": "<e1> Tom Baker </e1> works for <e2> Globex </e2> , which is based in "
                "Oslo .",
                "id": "a",
            },
            {"text": far_apart, "id": "b"},
            {"text": "<e1> Acme Corp </e1> opened an office in <e2> Oslo </e2> .", "id": "c"},
        ],
    )
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                "--model_name_or_path",
                output_dir,
                "--input_file",
                path,
                "--output_file",
                str(out),
                "--max_seq_length",
                "64",
            ]
        )
        == 0
    )
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["predicted_label"] == "works_for"
    assert rows[1]["predicted_label"] is None and "too far apart" in rows[1]["error"]
    assert rows[2]["predicted_label"] is not None


def test_bad_re_input_is_refused_before_training(re_run, tmp_path, capsys):
    _, _, output_dir = re_run
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"text": "<e1> a </e1> x <e2> b </e2>", "label": "R1"},
            {"text": "<e1> c </e1> y <e2> d </e2>", "label": "none"},
        ],
    )
    dev = write_jsonl(
        tmp_path / "dev.jsonl", [{"text": "<e1> a </e1> <e2> b </e2>", "label": "R2"}]
    )
    unbalanced = write_jsonl(
        tmp_path / "bad.jsonl", [{"text": "<e1> a x <e2> b </e2>", "label": "R1"}]
    )
    cases = [
        (
            ["--train_file", train, "--negative_label", "Other"],
            "--negative_label is not among the labels: got 'Other'",
        ),
        (
            ["--train_file", train, "--validation_file", dev],
            "dev.jsonl line 1 has a label unseen in training: got 'R2'",
        ),
        (["--train_file", unbalanced], "line 1 has an unbalanced head marker"),
    ]
    for flags, message in cases:
        out = tmp_path / "o"
        assert main(["train", "--task", "re", "--output_dir", str(out), *flags]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_predict_refuses_wrong_input_and_foreign_folders(re_run, tmp_path, capsys):
    _, _, output_dir = re_run
    conll = tmp_path / "ner.conll"
    conll.write_text("John B-PER\n")
    assert (
        main(
            [
                "predict",
                "--model_name_or_path",
                output_dir,
                "--input_file",
                str(conll),
                "--output_file",
                str(tmp_path / "p.jsonl"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "is a CoNLL token line (a token and its tag), not a relation example" in err
    assert "does task 're'" in err and "or a model trained with --task ner." in err
    foreign = tmp_path / "foreign"
    shutil.copytree(output_dir, foreign)
    (foreign / "model_manifest.json").unlink()  # saved by another tool: no manifest
    config = read_json(foreign / "config.json")
    del config["accel_trainer"]
    (foreign / "config.json").write_text(json.dumps(config))
    assert (
        main(
            [
                "predict",
                "--model_name_or_path",
                str(foreign),
                "--input_file",
                str(conll),
                "--output_file",
                str(tmp_path / "p.jsonl"),
            ]
        )
        == 2
    )
    assert "has no accel_trainer task in its config.json" in capsys.readouterr().err
    assert not (tmp_path / "p.jsonl").exists()
