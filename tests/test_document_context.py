"""Document context (--document_context, FLERT): documents are read from -DOCSTART- lines,
document_id fields and columns; each sentence is encoded with its neighbours' sub-tokens, which
carry no label and are never scored; the default follows the training data and is saved with
the model; layouts, two processes and resume stay exact."""

import json

import pytest
from datasets import Dataset

from accel_trainer import commands
from accel_trainer.config import EvalConfig, PredictConfig, TrainConfig, validate
from accel_trainer.errors import ConfigError, DataError
from accel_trainer.models import build_wordpiece_tokenizer
from accel_trainer.prepare import load_saved
from accel_trainer.storage.output_folder import OPTIONS_ADDED
from accel_trainer.tasks.base import IGNORE_INDEX
from accel_trainer.tasks.demo import conll_text, demo_corpus
from accel_trainer.tasks.ner import NerTask
from accel_trainer.tasks.ner.formats import number_documents
from accel_trainer.tasks.ner.hub import document_ids
from accel_trainer.train.resume import check_options, training_options
from tests.conftest import read_json, write_jsonl
from tests.test_batch_layout import TOLERANCE, assert_same_training, layout_runs
from tests.test_outputs import card_of, option_rows
from tests.test_scaling import max_difference, train_here, train_launched


def documents_text(sentences, per_document: int) -> str:
    """CoNLL text with a -DOCSTART- line before every `per_document` sentences."""
    parts = []
    for start in range(0, len(sentences), per_document):
        parts.append("-DOCSTART- O\n\n" + conll_text(sentences[start : start + per_document]))
    return "".join(parts)


@pytest.fixture(scope="module")
def document_data(tmp_path_factory):
    """64 training and 9 dev sentences of the demo corpus, in documents of 4 sentences."""
    folder = tmp_path_factory.mktemp("document-data")
    train, dev = folder / "train.conll", folder / "dev.conll"
    train.write_text(documents_text(demo_corpus(64, seed=21), 4), encoding="utf-8")
    dev.write_text(documents_text(demo_corpus(9, seed=22), 4), encoding="utf-8")
    return str(train), str(dev)


def words_tokenizer(sentences):
    return build_wordpiece_tokenizer([words for words, _ in sentences], model_max_length=512)


def test_docstart_lines_delimit_documents_and_a_file_without_them_is_sentence_by_sentence(
    tmp_path,
):
    sentences = demo_corpus(6, seed=3)
    marked = tmp_path / "marked.conll"
    marked.write_text(documents_text(sentences, 4), encoding="utf-8")
    plain = tmp_path / "plain.conll"
    plain.write_text(conll_text(sentences), encoding="utf-8")
    task = NerTask()
    assert task.read(str(marked), "--train_file", "auto")["document"] == [0, 0, 0, 0, 1, 1]
    assert task.read(str(plain), "--train_file", "auto")["document"] == [0, 1, 2, 3, 4, 5]
    whole = NerTask(documents="file_order")
    assert whole.read(str(plain), "--train_file", "auto")["document"] == [0] * 6
    assert whole.read(str(marked), "--train_file", "auto")["document"] == [0, 0, 0, 0, 1, 1]


def test_json_lines_and_datasets_take_consecutive_document_ids(tmp_path):
    records = [
        {"tokens": ["a"], "ner_tags": ["O"], "document_id": "d1"},
        {"tokens": ["b"], "ner_tags": ["B-X"], "document_id": "d1"},
        {"tokens": ["c"], "ner_tags": ["O"]},
        {"tokens": ["d"], "ner_tags": ["O"]},
        {"tokens": ["e"], "ner_tags": ["O"], "document_id": 7},
        {"tokens": ["f"], "ner_tags": ["O"], "document_id": "d1"},  # d1 again: a new document
    ]
    path = write_jsonl(tmp_path / "data.jsonl", records)
    assert NerTask().read(path, "--train_file", "auto")["document"] == [0, 0, 1, 2, 3, 4]
    ordered = NerTask(documents="file_order").read(path, "--train_file", "auto")
    assert ordered["document"] == [0, 0, 1, 1, 2, 3]
    hub = Dataset.from_dict({"tokens": [["-DOCSTART-"], ["a"], ["b"], ["-DOCSTART-"], ["c"]]})
    assert number_documents(document_ids(hub, "hub"), False) == [0, 0, 0, 1, 1]
    exported = write_jsonl(tmp_path / "exported.jsonl", [{"tokens": tokens, "ner_tags": ["O"]}
                           for tokens in hub["tokens"]])  # fmt: skip
    read = NerTask().read(exported, "--train_file", "auto")
    assert read["tokens"] == [["a"], ["b"], ["c"]] and read["document"] == [0, 0, 1]


def test_whole_float_ids_are_integers_and_a_document_split_apart_is_warned_of(tmp_path, caplog):
    records = [{"tokens": [word], "ner_tags": ["O"], "document_id": number}
               for word, number in [("a", 1.0), ("b", 1), ("c", 2.0), ("d", 1.0)]]  # fmt: skip
    path = write_jsonl(tmp_path / "pandas.jsonl", records)
    with caplog.at_level("WARNING", logger="accel_trainer"):
        assert NerTask().read(path, "--train_file", "auto")["document"] == [0, 0, 1, 2]
    assert "pandas.jsonl line 4: document_id 1 comes back after other documents (it was on " \
           "line 2)" in caplog.text  # fmt: skip


def test_a_document_id_that_is_no_string_or_integer_names_its_line(tmp_path):
    records = [{"tokens": ["a"], "ner_tags": ["O"]}, {"tokens": ["b"], "ner_tags": ["O"],
                                                      "document_id": [1]}]  # fmt: skip
    path = write_jsonl(tmp_path / "data.jsonl", records)
    with pytest.raises(DataError, match=r"data.jsonl line 2 has a document_id that is neither"):
        NerTask().read(path, "--train_file", "auto")


def encoded_rows(task, sentences, max_seq_length, for_training, per_document=3):
    dataset = Dataset.from_dict(
        {
            "tokens": [words for words, _ in sentences],
            "ner_tags": [tags for _, tags in sentences],
            "document": [index // per_document for index in range(len(sentences))],
        }
    )
    tokenizer = words_tokenizer(sentences)
    labels = sorted({tag for _, tags in sentences for tag in tags})
    label2id = {label: index for index, label in enumerate(labels)}
    return tokenizer, task.tokenize(dataset, tokenizer, label2id, max_seq_length, for_training)


def labelled_tokens(tokenizer, row, key="labels"):
    return [
        (token, label)
        for token, label in zip(
            tokenizer.convert_ids_to_tokens(row["input_ids"]), row[key], strict=True
        )
        if label != IGNORE_INDEX
    ]


@pytest.mark.parametrize("for_training", [True, False])
def test_a_sentence_is_read_between_its_neighbours_whose_positions_carry_no_label(for_training):
    sentences = [
        (["Anna", "met", "Bo"], ["B-PER", "O", "B-PER"]),
        (["Bo", "sings", "in", "Oslo"], ["B-PER", "O", "O", "B-LOC"]),
        (["Oslo", "is", "cold"], ["B-LOC", "O", "O"]),
        (["Carl", "left"], ["B-PER", "O"]),  # another document
    ]
    alone_tokenizer, alone = encoded_rows(NerTask(document_context=0), sentences, 64, for_training)
    tokenizer, rows = encoded_rows(NerTask(document_context=64), sentences, 64, for_training)
    middle = tokenizer.convert_ids_to_tokens(rows[1]["input_ids"])
    assert middle == ["[CLS]", *"anna met bo bo sings in oslo oslo is cold".split(), "[SEP]"]
    last = tokenizer.convert_ids_to_tokens(rows[3]["input_ids"])
    assert last == ["[CLS]", "carl", "left", "[SEP]"]  # the next document is no context
    for index in range(len(sentences)):  # the same labels, on the same words, as alone
        assert labelled_tokens(tokenizer, rows[index]) == labelled_tokens(
            alone_tokenizer, alone[index]
        )
    if not for_training:
        assert rows["example_id"] == [0, 1, 2, 3]
        assert [i for i in rows[1]["word_index"] if i != IGNORE_INDEX] == [0, 1, 2, 3]


def test_context_is_cut_to_fit_and_a_sentence_longer_than_the_limit_gets_none():
    long_words = [f"w{i}" for i in range(12)]
    sentences = [
        ([f"a{i}" for i in range(10)], ["O"] * 10),
        (["Bo", "sings"], ["B-PER", "O"]),
        ([f"c{i}" for i in range(10)], ["O"] * 10),
        (long_words, ["O"] * 12),
    ]
    task = NerTask(document_context=64)
    tokenizer, rows = encoded_rows(task, sentences, 10, True, per_document=4)
    middle = tokenizer.convert_ids_to_tokens(rows[1]["input_ids"])
    # 8 positions: the sentence's 2, then 3 before and 3 after, nearest first
    assert middle == ["[CLS]", "a7", "a8", "a9", "bo", "sings", "c0", "c1", "c2", "[SEP]"]
    assert all(len(ids) <= 10 for ids in rows["input_ids"])
    truncated = tokenizer.convert_ids_to_tokens(rows[3]["input_ids"])
    assert truncated == ["[CLS]", *long_words[:8], "[SEP]"]
    assert task.truncated["train"] == 3  # the 10- and 12-word sentences, as without context
    _, windows = encoded_rows(task, sentences, 10, False, per_document=4)
    long_windows = [
        ids for ids, e in zip(windows["input_ids"], windows["example_id"], strict=True) if e == 3
    ]
    assert len(long_windows) > 1  # sliding windows over the sentence alone, as without context
    assert tokenizer.convert_ids_to_tokens(long_windows[0])[1:-1] == long_words[:8]


def test_context_is_off_by_default_and_when_on_recorded_and_used_by_evaluate(
    document_data, tmp_path, caplog
):
    with caplog.at_level("INFO", logger="accel_trainer"):
        plain = train_here(document_data, tmp_path / "plain", max_train_steps=1)
    assert "the training data marks documents (64 sentences in 16 documents); " \
           "--document_context 64 reads each sentence" in caplog.text  # fmt: skip
    assert read_json(plain / "all_results.json")["document_context"] == 0
    folder = train_here(document_data, tmp_path / "context", max_train_steps=4,
                        document_context=64)  # fmt: skip
    results = read_json(folder / "all_results.json")
    assert results["document_context"] == 64
    assert read_json(folder / "config.json")["accel_trainer"]["document_context"] == 64
    assert option_rows(card_of(folder))["document_context"] == "64"

    def evaluate(name: str, **options):
        config = EvalConfig.from_options(
            model_name_or_path=str(folder),
            validation_file=document_data[1],
            output_dir=str(tmp_path / name),
            **options,
        )
        return commands.evaluate(config)

    evaluated = evaluate("eval", per_device_eval_batch_size=2)
    assert evaluated["document_context"] == 64
    for key in ("eval_f1", "eval_samples", "eval_loss"):
        assert evaluated[key] == pytest.approx(results[key], rel=1e-5), key
    without = evaluate("eval0", document_context=0)
    assert without["document_context"] == 0 and without["eval_samples"] == results["eval_samples"]
    assert without["eval_loss"] != pytest.approx(results["eval_loss"], rel=1e-5)


def test_context_on_data_without_documents_is_warned_of_and_trains_as_without(
    scaling_data, tmp_path, caplog
):
    plain = train_here(scaling_data, tmp_path / "plain", max_train_steps=3)
    with caplog.at_level("INFO", logger="accel_trainer"):
        asked = train_here(scaling_data, tmp_path / "asked", max_train_steps=3, document_context=64)
    assert "--document_context 64: the training data marks no document of two sentences" in (
        caplog.text
    )
    assert read_json(plain / "all_results.json")["document_context"] == 0
    assert max_difference(plain, asked) == 0.0


def test_layouts_with_context_train_the_padded_weights(document_data, tmp_path):
    runs = layout_runs(document_data, tmp_path, ["padded", "sorted", "packed"],
                       per_device_train_batch_size=32, max_train_steps=4,
                       document_context=64)  # fmt: skip
    assert_same_training(runs)
    assert read_json(runs["packed"] / "all_results.json")["document_context"] == 64


def test_resume_with_context_is_bit_exact_and_another_context_is_refused(document_data, tmp_path):
    from tests.test_checkpoint import config, train

    full = train(document_data, tmp_path / "full", dropout=False, document_context=64)
    train(document_data, tmp_path / "out", stop_at=3, dropout=False, document_context=64)
    changed = config(document_data, tmp_path / "out", resume_from_checkpoint="latest",
                     document_context=8)  # fmt: skip
    with pytest.raises(ConfigError, match="document_context"):
        commands.build_trainer(changed)
    resumed = train(document_data, tmp_path / "out", dropout=False, resume_from_checkpoint="latest",
                    document_context=64)  # fmt: skip
    assert resumed.state.step == full.state.step
    assert max_difference(tmp_path / "full", tmp_path / "out") == 0.0


def test_a_checkpoint_from_before_document_context_resumes_only_without_context(document_data):
    from tests.test_checkpoint import config

    without = training_options(config(document_data, "out", document_context=0))
    saved = {"options": {k: v for k, v in without.items() if k not in OPTIONS_ADDED}}
    check_options("checkpoint-3", saved, config(document_data, "out", document_context=0))
    with pytest.raises(ConfigError, match="--document_context 0 then, 64 now"):
        check_options("checkpoint-3", saved, config(document_data, "out", document_context=64))


def test_a_negative_document_context_is_refused():
    with pytest.raises(ConfigError, match="--document_context is negative: got -1"):
        validate(TrainConfig.from_options(document_context=-1))


@pytest.mark.multiprocess
def test_two_processes_with_context_train_the_one_process_weights(document_data, tmp_path):
    reference = train_here(document_data, tmp_path / "1x32", per_device_train_batch_size=32,
                           batch_layout="padded", max_train_steps=4,
                           document_context=64)  # fmt: skip
    folder = train_launched(document_data, tmp_path / "2x16", per_device_train_batch_size=16,
                            max_train_steps=4, document_context=64)  # fmt: skip
    assert max_difference(reference, folder) < TOLERANCE
    one, two = read_json(reference / "all_results.json"), read_json(folder / "all_results.json")
    assert two["document_context"] == 64
    for key in ("eval_f1", "eval_samples"):
        assert one[key] == two[key], key


def test_predict_reads_documents_with_the_models_context(document_data, tmp_path):
    folder = train_here(document_data, tmp_path / "model", max_train_steps=2, document_context=64)
    output = tmp_path / "predicted.conll"
    commands.predict(
        PredictConfig.from_options(
            model_name_or_path=str(folder), input_file=document_data[1], output_file=str(output)
        )
    )
    written = [line.split()[0] for line in output.read_text().splitlines() if line.strip()]
    expected = [line.split()[0] for line in open(document_data[1], encoding="utf-8")
                if line.strip()]  # fmt: skip
    assert written == expected  # every word in order, and the -DOCSTART- lines
    again = tmp_path / "again.conll"
    commands.predict(
        PredictConfig.from_options(
            model_name_or_path=str(folder), input_file=str(output), output_file=str(again)
        )  # fmt: skip
    )
    assert again.read_text() == output.read_text()  # its output reads as the same documents
    overridden = PredictConfig.from_options(
        model_name_or_path=str(folder),
        input_file=str(output),
        output_file=str(tmp_path / "o"),
        document_context=0,
        documents="file_order",
    )
    saved = load_saved(overridden, overridden.task_options.given())
    assert (saved.task.document_context, saved.task.documents) == (0, "file_order")
    assert json.loads((folder / "config.json").read_text())["accel_trainer"]["documents"] == (
        "marked"
    )
