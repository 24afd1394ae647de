"""`predict` on raw text: words split with character offsets, entities as spans of the original
text (offsets that round-trip), and the --output_format choices for tokenised input."""

import json
import logging

import pytest

from accel_trainer.cli import main
from accel_trainer.errors import DataError
from accel_trainer.tasks.base import PredictionInput
from accel_trainer.tasks.ner import NerTask
from accel_trainer.tasks.text import learned_word_split, read_documents, split_words
from tests.conftest import read_jsonl

# Hand-checked: Unicode (combining accents, an emoji, CJK), tabs, repeated and no-break
# spaces, and the word offsets in characters of the Python string.
HARD_TEXT = "\tZoë  Ångström (né Kim) flew to 東京\u00a0via Zürich 😀, on 2023-05-01."
HARD_WORDS = [
    ("Zoë", 1, 4),
    ("Ångström", 6, 14),
    ("(", 15, 16),
    ("né", 16, 18),
    ("Kim", 19, 22),
    (")", 22, 23),
    ("flew", 24, 28),
    ("to", 29, 31),
    ("東京", 32, 34),
    ("via", 35, 38),
    ("Zürich", 39, 45),
    ("😀", 46, 47),
    (",", 47, 48),
    ("on", 49, 51),
    ("2023", 52, 56),
    ("-", 56, 57),
    ("05", 57, 59),
    ("-", 59, 60),
    ("01", 60, 62),
    (".", 62, 63),
]


def test_words_split_at_whitespace_and_punctuation_with_character_offsets():
    assert split_words(HARD_TEXT, "punctuation") == HARD_WORDS
    assert split_words("Oslo, Norway.\n\nNew  York", "whitespace") == [
        ("Oslo,", 0, 5),
        ("Norway.", 6, 13),
        ("New", 15, 18),
        ("York", 20, 24),
    ]
    # A combining accent stays with its letter: "e\u0301" is one word of 2 characters.
    assert split_words("cafe\u0301 ok", "punctuation") == [("cafe\u0301", 0, 5), ("ok", 6, 8)]


def test_the_split_is_learned_from_the_training_words():
    punctuation_alone = [["John", "lives", "in", "Oslo", ",", "Norway", "."]]
    punctuation_attached = [["John", "lives", "in", "Oslo,", "Norway."], ["Hi", "!"]]
    assert learned_word_split(punctuation_alone) == "punctuation"
    assert learned_word_split(punctuation_attached) == "whitespace"


def test_plain_text_documents_are_lines_or_the_whole_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"one line\r\n\nsecond\tline\nlast")
    lines = read_documents(str(path), "lines", "punctuation")
    assert [(d["line"], d["text"]) for d in lines] == [
        (1, "one line"),
        (2, ""),
        (3, "second\tline"),
        (4, "last"),
    ]
    (document,) = read_documents(str(path), "document", "punctuation")
    assert document["text"] == "one line\r\n\nsecond\tline\nlast"  # the file, byte for byte
    assert document["offsets"][2] == [11, 17]  # "second", after "one line\r\n\n"
    old_mac = tmp_path / "old-mac.txt"
    old_mac.write_bytes(b"John lives in Oslo.\rMary left.\r")  # lone carriage returns
    assert [d["text"] for d in read_documents(str(old_mac), "lines", "punctuation")] == [
        "John lives in Oslo.",
        "Mary left.",
    ]


def fake_rows(raw, tags_of_words, id2label):
    """The gathered rows Inference.predict returns, one window per example, predicting the
    given tags with probability 0.5 + 0.1 * word index (capped)."""
    label2id = {label: i for i, label in id2label.items()}
    rows = {"example_id": [], "word_index": [], "predictions": [], "confidence": []}
    for example_id, tags in enumerate(tags_of_words):
        rows["example_id"].append(example_id)
        rows["word_index"].append(list(range(len(tags))))
        rows["predictions"].append([label2id[tag] for tag in tags])
        rows["confidence"].append([min(0.5 + 0.1 * i, 0.9) for i in range(len(tags))])
    return rows


def written(task, raw, rows, id2label, source) -> str:
    import io

    handle = io.StringIO()
    task.write_predictions(raw, rows, id2label, handle, source)
    return handle.getvalue()


ID2LABEL = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def test_entities_are_character_spans_that_round_trip(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(HARD_TEXT + "\n")
    task = NerTask()
    source = PredictionInput(str(path), "text", 128)
    raw = task.read_for_prediction(source)
    tags = ["O"] * len(HARD_WORDS)
    tags[0:2] = ["B-PER", "I-PER"]  # Zoë  Ångström
    tags[4] = "B-PER"  # Kim
    tags[8] = "B-LOC"  # 東京
    tags[10:12] = ["B-LOC", "I-LOC"]  # Zürich 😀
    (record,) = map(json.loads, written(task, raw, fake_rows(raw, [tags], ID2LABEL), ID2LABEL,
                                        source).splitlines())  # fmt: skip
    assert record["line"] == 1 and record["text"] == HARD_TEXT
    assert record["entities"] == [
        {"start": 1, "end": 14, "text": "Zoë  Ångström", "type": "PER", "score": 0.55},
        {"start": 19, "end": 22, "text": "Kim", "type": "PER", "score": 0.9},
        {"start": 32, "end": 34, "text": "東京", "type": "LOC", "score": 0.9},
        {"start": 39, "end": 47, "text": "Zürich 😀", "type": "LOC", "score": 0.9},
    ]
    for entity in record["entities"]:
        assert HARD_TEXT[entity["start"] : entity["end"]] == entity["text"]


def test_an_entity_across_a_newline_keeps_it_in_document_format(tmp_path):
    path = tmp_path / "doc.txt"
    text = "Visit New\nYork\r\nor  Oslo"
    path.write_bytes(text.encode())
    task = NerTask()
    source = PredictionInput(str(path), "auto", 128, text_format="document")
    raw = task.read_for_prediction(source)
    assert raw["tokens"] == [["Visit", "New", "York", "or", "Oslo"]]
    tags = [["O", "B-LOC", "I-LOC", "O", "B-LOC"]]
    (record,) = map(json.loads, written(task, raw, fake_rows(raw, tags, ID2LABEL), ID2LABEL,
                                        source).splitlines())  # fmt: skip
    assert [(e["start"], e["end"], e["text"]) for e in record["entities"]] == [
        (6, 14, "New\nYork"),
        (20, 24, "Oslo"),
    ]


def test_json_lines_documents_keep_their_fields(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": "Anna\tBerg"}) + "\n\n" + json.dumps({"text": ""}) + "\n"
    )
    task = NerTask()
    source = PredictionInput(str(path), "auto", 128)
    raw = task.read_for_prediction(source)
    rows = fake_rows(raw, [["B-PER", "I-PER"], []], ID2LABEL)
    first, second = map(json.loads, written(task, raw, rows, ID2LABEL, source).splitlines())
    assert first == {
        "id": "a",
        "text": "Anna\tBerg",
        "entities": [{"start": 0, "end": 9, "text": "Anna\tBerg", "type": "PER", "score": 0.55}],
    }
    assert second == {"text": "", "entities": []}


def test_output_formats_of_tokenised_input(tmp_path):
    path = tmp_path / "in.conll"
    path.write_text("Anna\tO\nBerg\tO\nsings\tO\n\nOslo\tO\n")
    task = NerTask()
    tags = [["B-PER", "I-PER", "O"], ["B-LOC"]]

    def output(output_format):
        source = PredictionInput(str(path), "auto", 128, output_format)
        raw = task.read_for_prediction(source)
        return written(task, raw, fake_rows(raw, tags, ID2LABEL), ID2LABEL, source)

    assert (
        output("auto") == output("conll") == "Anna\tB-PER\nBerg\tI-PER\nsings\tO\n\nOslo\tB-LOC\n\n"
    )
    spans = [json.loads(line) for line in output("spans").splitlines()]
    assert spans == [
        {
            "line": 1,
            "tokens": ["Anna", "Berg", "sings"],
            "entities": [{"start": 0, "end": 2, "text": "Anna Berg", "type": "PER", "score": 0.55}],
        },
        {
            "line": 5,
            "tokens": ["Oslo"],
            "entities": [{"start": 0, "end": 1, "text": "Oslo", "type": "LOC", "score": 0.5}],
        },
    ]
    records = [json.loads(line) for line in output("jsonl").splitlines()]
    assert records[0] == {"line": 1, "tokens": ["Anna", "Berg", "sings"],
                          "ner_tags": ["B-PER", "I-PER", "O"]}  # fmt: skip


def test_a_text_file_is_told_from_a_conll_file_by_its_lines(tmp_path):
    task = NerTask()
    conll = tmp_path / "tokens.txt"
    conll.write_text("-DOCSTART- -X- O O\n\nAnna NNP B-NP B-PER\nsings VBZ B-VP O\n")
    text = tmp_path / "prose.txt"
    text.write_text("Anna sings in Oslo.\nShe left.\n")
    single_column = tmp_path / "words.txt"
    single_column.write_text("Anna\nsings\n")
    labels = ("B-PER", "I-PER", "O")
    assert task.prediction_input(PredictionInput(str(conll), "auto", 128, labels=labels)) == "conll"
    assert task.prediction_input(PredictionInput(str(text), "auto", 128, labels=labels)) == "text"
    assert task.prediction_input(PredictionInput(str(single_column), "auto", 128)) == "conll"
    forced = PredictionInput(str(text), "conll", 128, labels=labels)
    assert task.prediction_input(forced) == "conll"
    blank = tmp_path / "blank.txt"
    blank.write_text("\n   \n")  # no words at all: each line an empty document
    assert task.prediction_input(PredictionInput(str(blank), "auto", 128)) == "text"


def test_sentences_ending_in_the_word_o_are_not_taken_for_tags(tmp_path):
    """A file reads as CoNLL on evidence that sentences cannot give: the same columns on every
    line with a tag last that varies, or two columns; one tag throughout on longer lines is
    asked about; lines of different lengths are sentences."""
    path = tmp_path / "notes.txt"
    labels = ("B-PER", "I-PER", "O")

    def read_as(text: str) -> str:
        path.write_text(text)
        return NerTask().prediction_input(PredictionInput(str(path), "auto", 128, labels=labels))

    assert read_as("Blood type O\nThe donor has blood type O\n") == "text"
    assert read_as("Anna O\nsings O\n") == "conll"  # a token and a placeholder tag
    # the first 200 non-blank lines decide, however many blank lines come first
    assert read_as("\n" * 250 + "John B-PER\nlives O\n\nAnna B-PER\nsings O\n") == "conll"
    assert read_as("Anna NNP B-PER\nsings VBZ O\n") == "conll"
    # tags that vary are CoNLL even where a line has other columns: the reader names that line
    assert read_as("John B-PER\nlives O\nNew York B-LOC\nin O\n") == "conll"
    with pytest.raises(DataError, match="line 3 has 3 columns where line 1 has 2"):
        NerTask().read_for_prediction(PredictionInput(str(path), "auto", 128, labels=labels))
    with pytest.raises(DataError) as error:
        read_as("Blood type O\nRhesus factor O\n")
    assert str(error.value) == (
        f"--input_file {path} could be CoNLL or sentences of text: every line has 3 columns and "
        "ends in the same tag, e.g. 'Blood type O'. Pass --data_format conll to read a token and "
        "its tag per line, or --data_format text to read each line as a document."
    )


def test_the_log_says_how_a_file_is_read(tmp_path, caplog):
    """Every sniffed file says how it is read; one word per line, which CoNLL without tags
    and one-word documents share, is a warning that names --data_format text."""
    task = NerTask()
    files = {"prose.txt": "Anna sings in Oslo.\n", "tagged.txt": "Anna B-PER\n",
             "words.txt": "Anna\nOslo\n"}  # fmt: skip
    said = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="accel_trainer"):
            task.prediction_input(
                PredictionInput(str(tmp_path / name), "auto", 128, labels=("B-PER",))
            )
        (said[name],) = [(r.levelname, r.getMessage()) for r in caplog.records]
    path = str(tmp_path)
    assert said["prose.txt"] == ("INFO", f"predict: {path}/prose.txt is read as plain text, one "
        "document per line: its lines are not CoNLL token lines (pass --data_format conll to "
        "read it as CoNLL)")  # fmt: skip
    assert said["tagged.txt"] == ("INFO", f"predict: {path}/tagged.txt is read as CoNLL token "
        "lines (pass --data_format text to read it as plain text)")  # fmt: skip
    assert said["words.txt"] == ("WARNING", f"predict: {path}/words.txt has one word per line "
        "and no tags: it is read as CoNLL, each run of lines up to a blank line one sentence. "
        "Pass --data_format text to read every line as a document of its own.")  # fmt: skip


def read_text(tmp_path, text: str):
    """A one-line plain-text file of `text`, read for prediction: (task, source, raw)."""
    path = tmp_path / "notes.txt"
    path.write_text(text + "\n")
    task = NerTask()
    source = PredictionInput(str(path), "text", 128)
    return task, source, task.read_for_prediction(source)


def test_invisible_characters_stay_out_of_entity_edges(tmp_path):
    """A zero-width space or a control character glued to a word is not part of the entity."""
    task, source, raw = read_text(tmp_path, "Visit \u200bOslo\u200b\x07 now")
    assert raw["tokens"] == [["Visit", "\u200bOslo\u200b\x07", "now"]]
    (record,) = map(json.loads, written(task, raw, fake_rows(raw, [["O", "B-LOC", "O"]], ID2LABEL),
                                        ID2LABEL, source).splitlines())  # fmt: skip
    assert record["entities"] == [
        {"start": 7, "end": 11, "text": "Oslo", "type": "LOC", "score": 0.6}
    ]


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """The NER demo model (trained once for this module)."""
    folder = tmp_path_factory.mktemp("demo")
    out = folder / "model"
    assert main(["train", "--output_dir", str(out), "--max_train_steps", "60"]) == 0
    return out


def predict(model, input_file, output_file, *flags) -> int:
    args = ["predict", "--model_name_or_path", str(model), "--input_file", str(input_file)]
    return main([*args, "--output_file", str(output_file), *flags])


def test_predict_on_raw_text_end_to_end(demo_model, tmp_path):
    notes = tmp_path / "notes.txt"
    documents = [
        "Globex opened a new office in Lagos .",
        "\tHeavy  rain hit Madrid on 2023, officials said.",
        "",
        "   ",
        "Zoë 😀 met Ångström\tin  Buenos Aires; then Lagos...",
    ]
    notes.write_text("\n".join(documents) + "\n")
    assert predict(demo_model, notes, tmp_path / "out.jsonl") == 0
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]  # one record per input line
    assert [r["text"] for r in records] == documents
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
            assert 0 < entity["score"] <= 1
    found = {(e["text"], e["type"]) for r in records for e in r["entities"]}
    assert {("Globex", "ORG"), ("Lagos", "LOC"), ("Madrid", "LOC")} <= found
    assert records[2]["entities"] == records[3]["entities"] == []


def test_a_file_of_blank_lines_gives_a_record_per_line(demo_model, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\t\n")
    assert predict(demo_model, blank, tmp_path / "out.jsonl") == 0
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"line": 1, "text": "", "entities": []},
        {"line": 2, "text": "  ", "entities": []},
        {"line": 3, "text": "\t", "entities": []},
    ]


def test_a_document_record_among_tokenised_records_is_named(demo_model, tmp_path, capsys):
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"tokens": ["Anna", "sings"]}\n{"text": "Anna sings."}\n')
    assert predict(demo_model, mixed, tmp_path / "out.jsonl") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"accel-trainer: error: --input_file {mixed} line 2 has a 'text' but no 'tokens': got "
        "keys ['text']. The first record has tokens, so the file is read as tokenised "
        "sentences; give every record 'tokens', or every record a 'text' (one document each)."
    )


def test_long_documents_are_predicted_in_windows(demo_model, tmp_path):
    """A document far longer than --max_seq_length: every word is tagged, in windows."""
    sentence = "Globex opened a new office in Lagos . "
    document = tmp_path / "long.txt"
    document.write_text(sentence * 40)
    assert predict(demo_model, document, tmp_path / "long.jsonl", "--text_format",
                   "document", "--max_seq_length", "16") == 0  # fmt: skip
    (record,) = read_jsonl(tmp_path / "long.jsonl")
    lagos = [e for e in record["entities"] if e["text"] == "Lagos"]
    assert len(lagos) == 40
    at = sentence.index("Lagos")
    assert [e["start"] for e in lagos] == [at + k * len(sentence) for k in range(40)]


def test_raw_text_option_errors(demo_model, tmp_path, capsys):
    conll = tmp_path / "in.conll"
    conll.write_text("Anna\nsings\n")
    out = tmp_path / "out.jsonl"
    assert predict(demo_model, conll, out, "--data_format", "conll", "--text_format",
                   "document") == 2  # fmt: skip
    assert capsys.readouterr().err.endswith(
        "accel-trainer: error: --text_format is for plain text input: got --text_format "
        f"document with --data_format conll ({conll}). Leave it out (a JSON record's text is "
        "one document), or pass --data_format text to read the file as plain text.\n"
    )
    assert predict(demo_model, conll, out, "--output_format", "table") == 2
    assert capsys.readouterr().err.endswith(
        "accel-trainer: error: --output_format is not one of 'auto', 'conll', 'jsonl', 'spans': "
        "got 'table'. See `accel-trainer predict --help`.\n"
    )
    assert not out.exists()


def test_training_on_raw_text_is_refused(tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text("John lives in Oslo.\n")
    args = ["train", "--train_file", str(train), "--validation_file", str(train)]
    assert main([*args, "--data_format", "text", "--output_dir", str(tmp_path / "o")]) == 2
    assert (
        f"--train_file {train}: --data_format text is raw text for `accel-trainer predict`; "
        "training and evaluation need tagged words. Use conll or jsonl."
    ) in capsys.readouterr().err


def test_formats_a_task_cannot_write_are_refused():
    from accel_trainer.config import PredictConfig
    from accel_trainer.errors import ConfigError
    from accel_trainer.storage.predictions import prediction_input
    from accel_trainer.tasks.re import ReTask

    def refusal(**options) -> str:
        config = PredictConfig(input_file="in.txt", output_file="out.jsonl", **options)
        with pytest.raises(ConfigError) as error:
            prediction_input(config, ReTask(), ["a", "b"])
        return str(error.value)

    assert refusal(output_format="spans") == (
        "--output_format is not a format of the model's task 're': got 'spans'. Use one of "
        "['auto', 'jsonl']."
    )
    assert refusal(text_format="lines") == (
        "--text_format is for tasks that read raw text: got --text_format lines, and the "
        "model's task 're' does not. Leave it out."
    )


def test_relation_files_are_not_read_as_documents(demo_model, tmp_path, capsys):
    """ChemProt JSON lines, the same in a .txt file, and SemEval-2010 records are relation
    examples: predict names them instead of finding entities in their text."""
    chemprot = '{"text": "<< Aspirin >> inhibits [[ COX-2 ]] .", "label": "INHIBITOR"}'
    semeval = '1\t"The <e1>pump</e1> fed the <e2>tank</e2>."\nCause-Effect(e1,e2)\n'
    cases = {"chemprot.jsonl": chemprot, "chemprot.txt": chemprot, "TRAIN_FILE.TXT": semeval}
    out = tmp_path / "out.jsonl"
    found = []
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text + "\n")
        assert predict(demo_model, path, out) == 2
        found.append(capsys.readouterr().err.splitlines()[-1])
    model = f"The model at {demo_model} does task 'ner': give --input_file in a format of that task"
    assert found[0] == (
        f"accel-trainer: error: --input_file {tmp_path / 'chemprot.jsonl'} line 1 is a JSON "
        "object with keys ['label', 'text'] and marked entities, like a relation extraction "
        f"example, not a document to find entities in: got {chemprot[:80]!r}. {model}, or a "
        "model trained with --task re."
    )
    assert found[1].startswith(
        f"accel-trainer: error: --input_file {tmp_path / 'chemprot.txt'} line 1 is a JSON object "
        "with keys ['label', 'text'], like a relation extraction example, not a CoNLL token line"
    )
    assert found[2].startswith(
        f"accel-trainer: error: --input_file {tmp_path / 'TRAIN_FILE.TXT'} line 1 is the first "
        'line of a SemEval-2010 relation record (id<TAB>"sentence"), not a CoNLL token line'
    )
    assert all(line.endswith(f"{model}, or a model trained with --task re.") for line in found)
    assert not out.exists()


# Found by the second adversarial pass: each case by its exact message or output.


def last_error(capsys) -> str:
    return capsys.readouterr().err.splitlines()[-1]


def test_an_output_that_is_no_regular_file_is_refused(demo_model, tmp_path, capsys):
    import os

    notes = tmp_path / "notes.txt"
    notes.write_text("Anna sings.\n")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert predict(demo_model, notes, pipe, "--overwrite_output_file") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --output_file is not a regular file: got {str(pipe)!r} (a named "
        "pipe). Name another file: output is written whole to a new file and renamed into place."
    )
    assert predict(demo_model, notes, f"{tmp_path}/new/") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --output_file is a folder: got '{tmp_path}/new/'. "
        "Name another file."
    )
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "pipe"]


def test_text_after_the_sniffed_lines_is_not_read_as_tokens(demo_model, tmp_path, capsys):
    """One-word lines first, sentences later: within the sniffed lines the file is text; past
    them a sentence line stops the run instead of keeping its first word only."""
    early, late = tmp_path / "early.txt", tmp_path / "late.txt"
    early.write_text("Oslo\n" * 60 + "Anna Berg lives in Oslo and John works in Paris.\n")
    late.write_text("Oslo\n" * 250 + "Maria Garcia visited London.\n")
    assert predict(demo_model, early, tmp_path / "early.jsonl") == 0
    assert len(read_jsonl(tmp_path / "early.jsonl")) == 61  # a document per line
    assert predict(demo_model, late, tmp_path / "late.out") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --input_file {late} line 251 has 4 columns and the last is no "
        "tag: got 'Maria Garcia visited London.'. A CoNLL line is a token and its tag, or the "
        "token alone; if the file is plain text, pass --data_format text."
    )
    later = tmp_path / "later.txt"
    later.write_text("Oslo O\n" * 250 + "Blood type O\n")
    assert predict(demo_model, later, tmp_path / "later.out") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --input_file {later} line 251 has 3 columns where line 1 has 2: "
        "got 'Blood type O'. Every line of a CoNLL sentence has the same columns, the token first "
        "and its tag last; if the file is sentences of text, pass --data_format text."
    )


def test_every_input_record_gets_its_line_an_empty_one_too(demo_model, tmp_path, capsys, caplog):
    path = tmp_path / "in.jsonl"
    records = [{"tokens": ["Anna", "sings"], "id": 1}, {"tokens": []}, {"tokens": ["Oslo"]}]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    with caplog.at_level(logging.WARNING, logger="accel_trainer"):
        assert predict(demo_model, path, tmp_path / "out.conll", "--output_format", "conll") == 0
    assert "1 input record(s) without words have no lines in CoNLL output" in caplog.text
    for output_format, key in (("jsonl", "ner_tags"), ("spans", "entities")):
        out = tmp_path / f"{output_format}.jsonl"
        assert predict(demo_model, path, out, "--output_format", output_format) == 0
        written = read_jsonl(out)
        assert [{k: r[k] for k in r if k != key} for r in written] == records
        assert written[1][key] == [] and isinstance(written[0][key], list)
    assert len(read_jsonl(tmp_path / "jsonl.jsonl")[0]["ner_tags"]) == 2
    path.write_text('{"tokens": "John lives"}\n')
    assert predict(demo_model, path, tmp_path / "bad.jsonl") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --input_file {path} line 1 has 'tokens' that are no list: got "
        '"John lives". Give the words as a list of strings, e.g. "tokens": ["John", "lives"].'
    )


def test_the_input_is_read_once_whatever_happens_to_it_meanwhile(demo_model, tmp_path,
                                                                  monkeypatch, capsys):  # fmt: skip
    from accel_trainer.train.inference import Inference

    path = tmp_path / "in.jsonl"
    records = [{"text": "Anna Berg lives in Oslo .", "id": n} for n in range(3)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    predict_rows = Inference.predict

    def rewrite_then_predict(self, data):
        path.write_text('{"text": "changed", "id": 9}\n')  # shorter: the old lines are gone
        return predict_rows(self, data)

    monkeypatch.setattr(Inference, "predict", rewrite_then_predict)
    assert predict(demo_model, path, tmp_path / "out.jsonl") == 0
    written = read_jsonl(tmp_path / "out.jsonl")
    assert [{"text": r["text"], "id": r["id"]} for r in written] == records
    monkeypatch.undo()

    read = NerTask.read_for_prediction

    def appended_while_read(self, source):
        raw = read(self, source)
        with open(path, "a") as handle:
            handle.write('{"text": "more", "id": 10}\n')
        return raw

    monkeypatch.setattr(NerTask, "read_for_prediction", appended_while_read)
    assert predict(demo_model, path, tmp_path / "again.jsonl") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --input_file changed while it was read: got {str(path)!r}. Run "
        "predict again once nothing writes to it."
    )


def test_the_model_cards_code_finds_the_entities_predict_finds(demo_model, tmp_path):
    """The card's pipeline tags each word by its first sub-token, as predict does; the
    "simple" aggregation it replaced cuts words the tokenizer splits (unseen names here)."""
    import re

    from transformers import pipeline

    card = (demo_model / "README.md").read_text()
    code = re.search(r"## Usage\n\n```python\n(.*?)```", card, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # as written: it names this folder
    sentences = [
        "Tanakaville joined Globexcorp in Lagosia on Monday .",
        "Maria Lopezz moved to Berlinn to work for Initechs .",
        "The mayor of Osloo met Peter Novakk on Friday .",
        "Aiko Tanaka flew from Paris to Tokyo on May 4 .",
    ]
    notes = tmp_path / "notes.txt"
    notes.write_text("\n".join(sentences) + "\n")
    assert predict(demo_model, notes, tmp_path / "out.jsonl") == 0
    predicted = [
        [(e["start"], e["end"], e["type"]) for e in record["entities"]]
        for record in read_jsonl(tmp_path / "out.jsonl")
    ]
    assert sum(map(len, predicted)) >= 8

    def found(tagger) -> list:
        return [[(e["start"], e["end"], e["entity_group"]) for e in tagger(s)] for s in sentences]

    assert found(namespace["ner"]) == predicted
    simple = pipeline("token-classification", model=str(demo_model), aggregation_strategy="simple")
    assert found(simple) != predicted


def test_conll_with_tags_the_model_lacks_is_still_conll(tmp_path):
    path = tmp_path / "misc.txt"
    path.write_text("EU\tB-MISC\nrejects\tO\n")
    source = PredictionInput(str(path), "auto", 128, labels=("B-PER", "I-PER"))
    assert NerTask().prediction_input(source) == "conll"
    path.write_text("Please send an E-mail\n")  # a word, not a tag
    assert NerTask().prediction_input(source) == "text"


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"text": "Anna Berg in Troms\xf8"}\n'.encode("latin-1"),
            'line 1 is not UTF-8 text: got b\'{"text": "Anna Berg in Troms\\xf8"}\\n\'. '
            "Re-encode the file, e.g. `iconv -f latin1 -t utf-8 IN > OUT`.",
        ),
        (
            b'{"text": "x \\udfff y"}\n',
            "line 1 has a 'text' with a lone UTF-16 surrogate: got '\\udfff' at character 2. "
            "Write the character it stands for, or remove it.",
        ),
        (
            b'{"text": null}\n',
            "line 1 has a 'text' that is no string: got null (a JSON null). Give the document "
            "as a string.",
        ),
    ],
    ids=["latin-1", "surrogate", "null"],
)
def test_bad_json_lines_documents_get_one_line(demo_model, tmp_path, capsys, content, message):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(content)
    assert predict(demo_model, path, tmp_path / "out.jsonl") == 2
    assert last_error(capsys) == f"accel-trainer: error: --input_file {path} {message}"


def test_a_utf16_file_is_named_as_such(demo_model, tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_bytes("Anna sings.\n".encode("utf-16-le"))  # no byte-order mark
    assert predict(demo_model, path, tmp_path / "out.jsonl") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --input_file looks like UTF-16 text, not UTF-8: got "
        f"{str(path)!r}, which starts b'A\\x00n\\x00n\\x00a\\x00 \\x00s\\x00'. Re-encode the "
        "file, e.g. `iconv -f utf-16 -t utf-8 IN > OUT`."
    )


def test_brackets_in_ordinary_text_are_no_relation_example(demo_model, tmp_path):
    docs = tmp_path / "wiki.jsonl"
    docs.write_text(
        json.dumps({"text": "[[Oslo]] is the capital of [[Norway]]."}) + "\n"
        + json.dumps({"id": 5, "text": "x << 2 >> y", "head": "x"}) + "\n"
    )  # fmt: skip
    assert predict(demo_model, docs, tmp_path / "out.jsonl") == 0
    first, second = read_jsonl(tmp_path / "out.jsonl")
    assert first["text"].startswith("[[Oslo]]") and second["id"] == 5


def test_json_documents_in_a_txt_file_get_the_format_flag(demo_model, tmp_path, capsys):
    path = tmp_path / "docs.txt"
    path.write_text('{"text": "Anna in Oslo"}\n')
    assert predict(demo_model, path, tmp_path / "out.jsonl") == 2
    assert last_error(capsys) == (
        f"accel-trainer: error: --input_file {path} line 1 is a JSON object, not a CoNLL token "
        'line: got \'{"text": "Anna in Oslo"}\'. Pass --data_format jsonl to read JSON lines '
        "(or name the file .jsonl)."
    )


def test_replaced_fields_of_the_input_are_warned_of(tmp_path, caplog):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "Anna sings", "entities": ["gold"]}) + "\n")
    task = NerTask()
    source = PredictionInput(str(path), "auto", 128)
    raw = task.read_for_prediction(source)
    with caplog.at_level(logging.WARNING, logger="accel_trainer"):
        lines = written(task, raw, fake_rows(raw, [["B-PER", "O"]], ID2LABEL), ID2LABEL, source)
    assert caplog.messages == [
        f"predict: records of {path} already have 'entities': the output lines hold the "
        "predictions in their place (the input file is not changed)"
    ]
    assert json.loads(lines)["entities"][0]["text"] == "Anna"


def test_output_records_stay_one_line_whatever_the_text(tmp_path):
    """U+2028, U+2029 and NEL are line breaks to str.splitlines: they are escaped in the
    output, which still reads back to the same text."""
    text = "Anna\u2028Berg\x85in\u2029Oslo"
    task, source, raw = read_text(tmp_path, text)
    output = written(task, raw, fake_rows(raw, [["O"] * 4], ID2LABEL), ID2LABEL, source)
    assert len(output.splitlines()) == 1 and json.loads(output)["text"] == text


def test_a_write_error_that_is_no_full_disk_says_what_it_is(tmp_path):
    import errno

    from accel_trainer.storage.disk import describe_write_error

    error = OSError(errno.EACCES, "Permission denied")
    message = describe_write_error(error, str(tmp_path / "x.jsonl"), 10**15)
    assert message.startswith(f"could not write {tmp_path / 'x.jsonl'}: Permission denied.")
