"""End to end on small real runs: training, saving, reloading, evaluating."""

import itertools
import json
import logging
import math
import os

import numpy as np
import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from accel_trainer import AccelerateTrainer, TrainConfig, commands
from accel_trainer.cli import main
from accel_trainer.train import Observer
from tests.conftest import (
    evaluate_saved,
    inject_nan,
    read_json,
    read_jsonl,
    reset_accelerate,
    write_jsonl,
)

RESULT_KEYS = {
    "train_loss",
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "global_step",
    "epoch",
    "eval_f1",
    "eval_precision",
    "eval_recall",
    "eval_accuracy",
    "num_processes",
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo configuration (defaults, no data options), trained once in this process."""
    output_dir = str(tmp_path_factory.mktemp("demo") / "out")
    trainer = commands.build_trainer(TrainConfig.from_options(output_dir=output_dir))
    assert isinstance(trainer, AccelerateTrainer)
    results = trainer.fit()
    yield trainer, results, output_dir
    reset_accelerate()


def test_demo_learns(demo_run):
    trainer, results, output_dir = demo_run
    losses = [
        r["loss"] for r in read_jsonl(os.path.join(output_dir, "log_history.jsonl")) if "loss" in r
    ]
    assert len(losses) >= 5
    assert losses[-1] < losses[0] / 3
    assert results["eval_f1"] > 0.9
    assert RESULT_KEYS <= set(results)
    assert read_json(os.path.join(output_dir, "all_results.json")) == results
    assert results["global_step"] == 114  # 600 sentences / 16 = 38 steps x 3 epochs
    assert results["eval_samples"] == 150
    assert results["num_processes"] == 1


def test_saved_folder_reloads_with_the_same_logits(demo_run):
    trainer, _, output_dir = demo_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training_config.json"):
        assert os.path.isfile(os.path.join(output_dir, name)), name
    config = read_json(os.path.join(output_dir, "config.json"))
    assert config["id2label"]["0"] == "B-DATE" and config["label2id"]["O"] == 8
    reloaded = AutoModelForTokenClassification.from_pretrained(output_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    batch = tokenizer(
        [["John", "Smith", "flew", "to", "Oslo"]], is_split_into_words=True, return_tensors="pt"
    )
    in_memory = trainer.accelerator.unwrap_model(trainer.model).eval()
    with torch.no_grad():
        assert torch.equal(in_memory(**batch).logits, reloaded(**batch).logits)


def test_pipeline_finds_entities_in_a_demo_sentence(demo_run):
    _, _, output_dir = demo_run
    ner = pipeline("token-classification", model=output_dir, aggregation_strategy="first")
    found = {(e["entity_group"], e["word"]) for e in ner("Aiko Tanaka moved to Lagos .")}
    assert ("PER", "aiko tanaka") in found
    assert ("LOC", "lagos") in found


def test_evaluate_command_reproduces_the_training_metrics(demo_run, tmp_path, capsys):
    _, results, output_dir = demo_run
    dev = os.path.join(output_dir, "data", "dev.conll")
    written = evaluate_saved(output_dir, dev, tmp_path)
    assert written["eval_f1"] == pytest.approx(results["eval_f1"])
    assert written["eval_samples"] == 150
    assert json.loads(capsys.readouterr().out)["eval_f1"] == written["eval_f1"]


def test_schedule_counts_optimizer_steps_with_accumulation(small_data, tmp_path):
    train, dev = small_data
    config = TrainConfig.from_options(
        train_file=train,
        validation_file=dev,
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=5,
        num_warmup_steps=3,
        learning_rate=0.01,
        logging_steps=1,
    )
    trainer = commands.build_trainer(config)
    results = trainer.fit()
    # 48 sentences / 4 = 12 micro-batches; windows of 5, 5 and 2 = 3 optimizer steps per epoch.
    assert results["global_step"] == 6
    rates = [r["learning_rate"] for r in trainer.log_history if "learning_rate" in r]
    assert rates == pytest.approx([0.0, 0.01 / 3, 0.02 / 3, 0.01, 0.02 / 3, 0.01 / 3])
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0
    assert [r["step"] for r in trainer.log_history if "learning_rate" in r] == [1, 2, 3, 4, 5, 6]


def test_max_train_steps_overrides_epochs_and_eval_steps_adds_evaluations(small_data, tmp_path):
    train, dev = small_data
    config = TrainConfig.from_options(
        train_file=train,
        validation_file=dev,
        output_dir=str(tmp_path),
        max_train_steps=5,
        eval_steps=2,
        per_device_train_batch_size=16,
    )
    trainer = commands.build_trainer(config)
    results = trainer.fit()
    assert results["global_step"] == 5
    assert results["epoch"] == pytest.approx(5 / 3, abs=1e-4)  # 3 steps per epoch
    eval_steps = [r["step"] for r in trainer.log_history if "eval_f1" in r]
    assert eval_steps == [2, 3, 4, 5]  # every 2 steps, at the end of epoch 1, at the end


def test_tensorboard_and_bf16_pass_through(small_data, tmp_path):
    train, dev = small_data
    config = TrainConfig.from_options(
        train_file=train,
        validation_file=dev,
        output_dir=str(tmp_path),
        max_train_steps=2,
        report_to="tensorboard",
        mixed_precision="bf16",
        logging_steps=1,
    )
    trainer = commands.build_trainer(config)
    trainer.fit()
    assert trainer.accelerator.mixed_precision == "bf16"
    events = [f for _, _, files in os.walk(tmp_path / "runs") for f in files]
    assert any(f.startswith("events.out.tfevents") for f in events)


def test_model_inputs_leave_out_bookkeeping_and_optionally_the_labels():
    from accel_trainer.train.step import model_inputs

    batch = {"input_ids": 1, "labels": 2, "row_id": 3, "example_id": 4, "word_index": 5}
    assert model_inputs(batch) == {"input_ids": 1, "labels": 2}
    assert model_inputs(batch, with_labels=False) == {"input_ids": 1}


def test_trainer_rejects_a_dataset_without_labels(demo_run):
    from datasets import Dataset

    from accel_trainer.errors import InputError
    from accel_trainer.tasks import NerTask

    trainer, _, _ = demo_run
    unlabeled = Dataset.from_dict({"input_ids": [[1, 2, 3]]})
    model = trainer.accelerator.unwrap_model(trainer.model)
    with pytest.raises(
        InputError, match="train_data has no 'labels' and 'input_ids' columns: got columns"
    ):
        AccelerateTrainer(
            model,
            trainer.tokenizer,
            trainer.config,
            NerTask(),
            unlabeled,
            accelerator=trainer.accelerator,
        )


def test_world_size_mismatch_is_an_error(monkeypatch):
    from types import SimpleNamespace

    from accel_trainer.errors import ConfigError
    from accel_trainer.runtime import check_world_size

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="has 1 process.*WORLD_SIZE=2: each process would train"):
        check_world_size(SimpleNamespace(num_processes=1))
    monkeypatch.setenv("WORLD_SIZE", "1")
    check_world_size(SimpleNamespace(num_processes=1))


def test_steps_per_epoch_matches_ceil(demo_run):
    trainer, _, _ = demo_run
    plan = trainer._plan()
    assert plan.steps_per_epoch == math.ceil(len(trainer.train_dataloader) / 1)


def test_dataset_name_reads_a_datasets_folder_with_class_label_tags(small_data, tmp_path):
    """--dataset_name goes through datasets.load_dataset (here a local folder, offline)."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    from accel_trainer.tasks import NerTask

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    features = Features(
        {"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))}
    )
    folder = tmp_path / "hub_like"
    folder.mkdir()
    for split, path in (("train", small_data[0]), ("validation", small_data[1])):
        raw = NerTask().read(path, "x", "conll")
        rows = {
            "tokens": raw["tokens"],
            "ner_tags": [[names.index(t) for t in tags] for tags in raw["ner_tags"]],
        }
        Dataset.from_dict(rows, features=features).to_parquet(str(folder / f"{split}.parquet"))
    config = TrainConfig.from_options(
        dataset_name=str(folder), output_dir=str(tmp_path / "out"), max_train_steps=2
    )
    trainer = commands.build_trainer(config)
    results = trainer.fit()
    assert results["eval_samples"] == 37 and results["train_samples"] == 48
    assert sorted(trainer.id2label.values()) == sorted(names)


def test_mixed_precision_comes_from_the_accelerate_config_unless_the_flag_is_given(
    monkeypatch, tmp_path
):
    from accel_trainer.runtime import training_accelerator

    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch` sets
    assert (
        training_accelerator(TrainConfig.from_options(output_dir=str(tmp_path))).mixed_precision
        == "bf16"
    )
    reset_accelerate()
    flagged = TrainConfig.from_options(output_dir=str(tmp_path), mixed_precision="no")
    assert training_accelerator(flagged).mixed_precision == "no"


def test_same_seed_same_model(small_data, tmp_path):
    """Two runs with one seed give bit-identical weights; another seed gives other weights."""

    def train_weights(seed, name):
        config = TrainConfig.from_options(
            train_file=small_data[0], output_dir=str(tmp_path / name), max_train_steps=3, seed=seed
        )
        trainer = commands.build_trainer(config)
        trainer.fit()
        weights = trainer.accelerator.unwrap_model(trainer.model).state_dict()
        reset_accelerate()
        return weights

    first, second, other = train_weights(1, "a"), train_weights(1, "b"), train_weights(2, "c")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["classifier.weight"], other["classifier.weight"])


def test_trainer_takes_ready_made_dataloaders(demo_run, small_data, tmp_path):
    from torch.utils.data import DataLoader

    from accel_trainer.runtime import training_accelerator
    from accel_trainer.tasks import NerTask

    demo_trainer, _, output_dir = demo_run
    model = AutoModelForTokenClassification.from_pretrained(output_dir)
    tokenizer = demo_trainer.tokenizer
    task = NerTask()
    raw = task.read(small_data[1], "dev", "conll")
    dev = task.tokenize(raw, tokenizer, model.config.label2id, 128, for_training=False)
    loader = DataLoader(dev, batch_size=7, collate_fn=task.collator(tokenizer))
    config = TrainConfig.from_options(output_dir=str(tmp_path))
    accelerator = training_accelerator(config)
    from_loader = AccelerateTrainer(
        model, tokenizer, config, task, eval_data=loader, accelerator=accelerator
    )
    from_dataset = AccelerateTrainer(
        model, tokenizer, config, task, eval_data=dev, accelerator=accelerator
    )
    by_loader, by_dataset = from_loader.evaluate(), from_dataset.evaluate()
    assert by_loader["eval_samples"] == by_dataset["eval_samples"] == 37
    assert by_loader["eval_f1"] == by_dataset["eval_f1"]
    assert by_loader["eval_f1"] > 0.5


def test_predict_tags_every_word_of_a_long_sentence(demo_run, tmp_path):
    """Sentences longer than max_seq_length are predicted in sliding windows, not truncated."""
    _, _, output_dir = demo_run
    long_words = ("Maria Lopez joined Globex in Paris on Monday .".split()) * 12  # 108 words
    conll = tmp_path / "in.conll"
    conll.write_text("\n".join(long_words) + "\n\nTom\tB-PER\nBaker\tI-PER\nsmiled\tO\n")
    out = tmp_path / "out.conll"
    assert (
        main(
            [
                "predict",
                "--model_name_or_path",
                output_dir,
                "--input_file",
                str(conll),
                "--output_file",
                str(out),
                "--max_seq_length",
                "16",
            ]
        )
        == 0
    )
    sentences = [block.splitlines() for block in out.read_text().strip().split("\n\n")]
    assert [len(s) for s in sentences] == [108, 3]
    words = [line.split("\t")[0] for line in sentences[0]]
    assert words == long_words
    tags = [line.split("\t")[1] for line in sentences[0]]
    # The model tags the repeated sentence the same way in every window.
    assert tags[:9] == ["B-PER", "I-PER", "O", "B-ORG", "O", "B-LOC", "O", "B-DATE", "O"]
    assert tags == tags[:9] * 12


def test_predict_jsonl_keeps_records_and_order(demo_run, tmp_path):
    _, _, output_dir = demo_run
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": 7, "tokens": ["Oslo", "is", "cold", "."]},
            {
                "id": 3,
                "tokens": ["Nina", "Holm", "works", "for", "Initech", "."],
                "ner_tags": ["O", "O", "O", "O", "O", "O"],
            },
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
            ]
        )
        == 0
    )
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [7, 3]
    assert rows[0]["ner_tags"][0] == "B-LOC"
    assert rows[1]["ner_tags"][:2] == ["B-PER", "I-PER"] and rows[1]["ner_tags"][4] == "B-ORG"


def test_windowed_evaluation_scores_every_gold_word(demo_run, tmp_path):
    """Evaluating with a tiny max_seq_length windows the dev sentences: every gold entity still
    counts, and the score stays close to the full-length one."""
    _, results, output_dir = demo_run
    dev = os.path.join(output_dir, "data", "dev.conll")
    windowed = evaluate_saved(output_dir, dev, tmp_path, "--max_seq_length", "8")
    assert windowed["eval_windowed_sentences"] == 150  # every dev sentence needs windows
    assert windowed["eval_samples"] == 150
    assert windowed["eval_f1"] > results["eval_f1"] - 0.15


def test_windows_of_one_sentence_are_joined_before_entities_are_read():
    from accel_trainer.tasks import NerTask

    id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    # One sentence in two windows: the entity B-PER I-PER straddles the window boundary.
    gold = [np.array([-100, 0, 1, -100]), np.array([-100, 2, 0, -100])]
    predicted = [np.array([0, 0, 1, 0]), np.array([0, 2, 0, 0])]
    joined = NerTask().compute_metrics(predicted, gold, id2label, example_ids=[0, 0])
    assert joined["f1"] == 1.0
    # Only the B-PER half predicted: joined, the one gold entity is missed (recall 0); read as
    # two sentences there would seem to be two gold entities, one of them found (recall 0.5).
    half = [np.array([0, 0, 1, 0]), np.array([0, 0, 0, 0])]
    assert NerTask().compute_metrics(half, gold, id2label, example_ids=[0, 0])["recall"] == 0.0
    assert NerTask().compute_metrics(half, gold, id2label, example_ids=[0, 1])["recall"] == 0.5


def test_clipping_happens_once_per_optimizer_step_and_groups_come_from_the_config(
    small_data, tmp_path
):
    config = TrainConfig.from_options(
        train_file=small_data[0],
        output_dir=str(tmp_path),
        max_train_steps=4,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=3,
        weight_decay=0.05,
    )
    trainer = commands.build_trainer(config)
    calls = []
    clip = trainer.accelerator.clip_grad_norm_
    trainer.accelerator.clip_grad_norm_ = lambda *a, **k: calls.append(1) or clip(*a, **k)
    trainer.fit()
    assert trainer.state.micro_step == 12 and len(calls) == 4
    decays = [group["weight_decay"] for group in trainer.optimizer.param_groups]
    assert decays == [0.05, 0.0]


def test_create_accelerator_checks_the_world_size(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from accel_trainer import runtime as trainer_module
    from accel_trainer.errors import ConfigError

    monkeypatch.setattr(
        trainer_module, "new_accelerator", lambda *args: SimpleNamespace(num_processes=2)
    )
    with pytest.raises(ConfigError, match="has 2 process.*WORLD_SIZE=1"):
        trainer_module.training_accelerator(TrainConfig.from_options(output_dir=str(tmp_path)))


def test_byte_level_tokenizers_get_a_prefix_space_for_pre_split_words(tmp_path):
    """RoBERTa-style tokenizers only encode pre-split words with add_prefix_space=True."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForTokenClassification, RobertaTokenizerFast

    from accel_trainer.models import load_pretrained
    from accel_trainer.tasks.ner import NerTask

    backend = ByteLevelBPETokenizer()
    backend.train_from_iterator(
        ["John lives in Oslo .", "Maria works at Globex ."] * 20,
        vocab_size=300,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
    )
    folder = tmp_path / "roberta"
    RobertaTokenizerFast(
        tokenizer_object=backend._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    ).save_pretrained(folder)
    config = RobertaConfig(
        vocab_size=300,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    RobertaForTokenClassification(config).save_pretrained(folder)
    _, tokenizer = load_pretrained(
        "AutoModelForTokenClassification", str(folder), ["O", "B-X"], NerTask().tokenizer_options
    )
    encoded = tokenizer(["John", "lives"], is_split_into_words=True)
    # Without the prefix space "lives" would split as "liv", "es", unlike inside a sentence.
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"])[-2] == "Ġlives"


def test_a_nan_loss_skips_that_step_entirely(small_data, tmp_path):
    config = TrainConfig.from_options(
        train_file=small_data[0],
        output_dir=str(tmp_path),
        max_train_steps=6,
        per_device_train_batch_size=8,
        logging_steps=1,
        learning_rate=0.01,
        num_warmup_steps=2,
    )
    trainer = commands.build_trainer(config)
    inject_nan(trainer, {3})
    snapshots = []

    class Snapshots(Observer):
        def on_step_end(self, trainer, outcome):
            model = trainer.accelerator.unwrap_model(trainer.model)
            snapshots.append(
                (
                    {k: v.clone() for k, v in model.state_dict().items()},
                    trainer.lr_scheduler.get_last_lr()[0],
                )
            )

    trainer.add_observer(Snapshots())
    trainer.fit()
    (before, lr_before), (after, lr_after) = snapshots[1], snapshots[2]
    assert all(torch.equal(before[k], after[k]) for k in before)  # step 3 changed nothing
    assert lr_after == lr_before  # and did not advance the schedule
    assert not all(torch.equal(after[k], snapshots[3][0][k]) for k in after)  # step 4 trains
    assert trainer.state.nonfinite_steps == 1
    losses = {r["step"]: r["loss"] for r in trainer.log_history if "loss" in r}
    assert np.isnan(losses[3]) and np.isfinite(losses[4])  # the NaN is shown, not hidden
    assert {"step": 3, "nonfinite_steps": 1} in trainer.log_history


def test_repeated_nan_losses_stop_the_run_with_exit_3(small_data, tmp_path, monkeypatch, capsys):
    original = commands.build_trainer

    def poisoned(config):
        trainer = original(config)
        inject_nan(trainer, set(range(3, 100)))
        return trainer

    monkeypatch.setattr(commands, "build_trainer", poisoned)
    status = main(
        [
            "train",
            "--train_file",
            small_data[0],
            "--output_dir",
            str(tmp_path / "o"),
            "--max_nonfinite_steps",
            "2",
            "--checkpointing_steps",
            "1",
        ]
    )
    assert status == 3
    assert "3 optimizer steps in a row up to step 5" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o").glob("checkpoint-*")) == [
        "checkpoint-1",
        "checkpoint-2",
        "checkpoint-3",
        "checkpoint-4",
    ]


def test_log_records_and_results_carry_throughput_padding_and_memory(small_data, tmp_path):
    config = TrainConfig.from_options(
        train_file=small_data[0],
        output_dir=str(tmp_path),
        max_train_steps=4,
        per_device_train_batch_size=8,
        logging_steps=2,
        batch_layout="padded",  # packed rows have no padding (tests/test_batch_layout.py)
    )
    trainer = commands.build_trainer(config)
    results = trainer.fit()
    records = [r for r in read_jsonl(tmp_path / "log_history.jsonl") if "loss" in r]
    keys = {"step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_second",
            "padding_efficiency", "peak_memory_mb"}  # fmt: skip
    assert [r["step"] for r in records] == [2, 4] and all(r.keys() == keys for r in records)
    # Padding efficiency is what the 4 batches trained on held: real over padded tokens.
    trainer.train_dataloader.set_epoch(0)
    batches = itertools.islice(trainer.train_dataloader, 4)
    masks = [batch["attention_mask"] for batch in batches]
    real, padded = sum(int(m.sum()) for m in masks), sum(m.numel() for m in masks)
    assert results["train_padding_efficiency"] == round(real / padded, 4) < 1
    assert results["train_tokens_per_second"] > 0 and results["peak_memory_mb"] > 100


def test_max_samples_take_the_first_examples_and_are_recorded(small_data, tmp_path, caplog):
    """As run_ner.py's options: the first N examples of each split, logged, in the results,
    and a resume with another N is refused like any training option."""
    out = tmp_path / "cut"
    argv = ["train", "--train_file", small_data[0], "--validation_file", small_data[1],
            "--output_dir", str(out), "--max_train_samples", "10", "--max_eval_samples", "7",
            "--max_train_steps", "2"]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="accel_trainer"):
        assert main(argv) == 0
    reset_accelerate()
    assert "--max_train_samples 10: using the first 10 of 48 examples" in caplog.text
    assert "--max_eval_samples 7: using the first 7 of 37 examples" in caplog.text
    results = json.loads((out / "all_results.json").read_text())
    assert (results["train_samples"], results["eval_samples"]) == (10, 7)
    assert (results["max_train_samples"], results["max_eval_samples"]) == (10, 7)
    from accel_trainer.train.resume import training_options

    kept = training_options(TrainConfig.from_options(max_train_samples=10, max_eval_samples=7))
    assert (kept["max_train_samples"], kept["max_eval_samples"]) == (10, 7)
    assert main(["train", "--max_train_samples", "-1", "--output_dir", str(tmp_path / "x")]) == 2


def test_the_load_report_of_a_new_head_is_explained_in_one_line(caplog):
    from accel_trainer.models import explain_load_report

    info = {
        "missing_keys": ["classifier.weight", "classifier.bias"],
        "mismatched_keys": [],
        "unexpected_keys": ["pooler.dense.bias", "pooler.dense.weight"],
    }
    with caplog.at_level(logging.INFO, logger="accel_trainer.models"):
        explain_load_report("base", info)
    assert caplog.messages == [
        "loaded base: as expected for fine-tuning, the task's head is new (classifier.bias, "
        "classifier.weight: initialised at random and trained from here, listed as MISSING in "
        "transformers' load report); 2 weight(s) of the checkpoint this task does not use are "
        "left out (pooler.dense.bias, pooler.dense.weight: UNEXPECTED)"
    ]
