"""The Task interface: the registry, the abstract base, settings round trips, and no code outside
tasks/ that asks which task it is running."""

import pathlib
import re

import pytest

import accel_trainer
from accel_trainer.errors import ConfigError
from accel_trainer.tasks import (
    NerTask,
    ReTask,
    Task,
    registry,
    task_for_training,
    task_from_settings,
)
from accel_trainer.tasks.demo import demo_defaults, demo_texts
from accel_trainer.tasks.ner import NerOptions
from accel_trainer.tasks.re import ReOptions

PACKAGE = pathlib.Path(accel_trainer.__file__).parent
# Asking which task is running: comparing a task's (or a config's) name, or keying by it.
BRANCHES_ON_TASK = re.compile(
    r"""task\.name\s*[!=]=|\btask_name\b|PIPELINE_TAGS|\.task\s*[!=]=\s*["']|\.task\s+in\s"""
)


class Minimal(Task):
    """A task deciding only what the interface leaves abstract."""

    name = "minimal"

    def read_examples(self, path, what, data_format, labelled):
        return [{"text": "a b", "label": "x", "line": 1}]

    def example_labels(self, dataset):
        return [[label] for label in dataset["label"]]

    def words(self, dataset):
        return [text.split() for text in dataset["text"]]

    def tokenize(
        self, dataset, tokenizer, label2id, max_seq_length, for_training, map_options=None
    ):
        return dataset

    def compute_metrics(self, predictions, labels, id2label, example_ids=None):
        return {"accuracy": 1.0}

    def metric_names(self, labels):
        return ["accuracy"]


@pytest.fixture
def clean_registry(monkeypatch):
    """Only the built-in tasks, whatever other tests registered; registrations stay in the test."""
    monkeypatch.setattr(registry, "_registered", {})


def test_a_registered_task_is_found_by_name_after_the_built_in_ones(clean_registry):
    assert accel_trainer.register_task(Minimal) is Minimal
    assert registry.get_task("minimal") is Minimal
    assert registry.task_names() == ["ner", "re", "minimal"]
    assert registry.get_task("ner") is NerTask and registry.get_task("re") is ReTask
    assert registry.task_names() == ["ner", "re", "minimal"]  # built-ins are not listed twice


def test_an_unknown_task_name_suggests_the_closest_one(clean_registry):
    with pytest.raises(ConfigError) as error:
        registry.get_task("nerr")
    assert str(error.value) == (
        "--task is not a registered task: got 'nerr'. Did you mean 'ner'? Use one of "
        "['ner', 're'], or register your own with accel_trainer.register_task (or, for the "
        "command line, an entry point in the 'accel_trainer.tasks' group of an installed "
        "package)."
    )
    with pytest.raises(ConfigError, match="got 'zzz'. Use one of"):
        registry.get_task("zzz")


def test_only_named_task_subclasses_can_be_registered(clean_registry):
    with pytest.raises(ConfigError, match="needs a subclass of accel_trainer.Task"):
        registry.register_task(dict)

    class Nameless(Minimal):
        name = ""

    with pytest.raises(ConfigError, match="needs a task class whose `name` is a word"):
        registry.register_task(Nameless)


def test_a_task_missing_an_abstract_method_cannot_be_instantiated():
    class NoMetrics(Task):
        name = "no-metrics"

        def read_examples(self, path, what, data_format, labelled):
            return []

    with pytest.raises(TypeError, match="abstract method"):
        NoMetrics()
    assert isinstance(Minimal(), Task)
    assert isinstance(NerTask(), Task) and isinstance(ReTask(), Task)


def test_the_defaults_of_the_interface(tmp_path):
    task = Minimal.from_options(Minimal.options_class())
    assert task.settings() == {"task": "minimal"}
    assert isinstance(Minimal.from_settings(task.settings(), str(tmp_path)), Minimal)
    assert task.tokenizer_options(object()) == {}
    assert task.length_report(128, 10, None) == {}
    with pytest.raises(ConfigError, match="--dataset_name is not supported for --task minimal"):
        task.read_hub("conll2003", None, "train")
    with pytest.raises(ConfigError, match="--task minimal: it has no demo corpus"):
        demo_texts(task)
    path = tmp_path / "any.txt"
    path.write_text("anything\n")
    data = task.read(str(path), "--train_file", "auto")
    assert task.label_list(data) == ["x"]
    with pytest.raises(Exception, match=r"any.txt line 1 has a label unseen in training: got 'x'"):
        task.check_labels(data, ["y"], f"--validation_file {path}")


def test_ner_settings_round_trip(tmp_path):
    task = task_for_training("ner", NerOptions(tag_scheme="iobes", label_all_tokens=True))
    assert (task.tag_scheme, task.label_all_tokens) == ("iobes", True)
    task.word_split = "whitespace"  # as learned from training words with punctuation attached
    again = task_from_settings(task.settings(), str(tmp_path))
    assert isinstance(again, NerTask) and again.settings() == task.settings()
    assert again.settings() == {"task": "ner", "tag_scheme": "iobes", "word_split": "whitespace",
                                "document_context": 0, "documents": "marked"}  # fmt: skip
    # A model saved before word_split and document context were recorded: punctuation, none.
    older = task_from_settings({"task": "ner", "tag_scheme": "bio"}, str(tmp_path))
    assert (older.word_split, older.document_context) == ("punctuation", 0)


def test_re_settings_round_trip(tmp_path):
    options = ReOptions(entity_markers="<<,>>,[[,]]", typed_markers=True, negative_label="Other")
    task = task_for_training("re", options)
    task.entity_types = ["CHEMICAL", "GENE"]
    again = task_from_settings(task.settings(), str(tmp_path))
    assert isinstance(again, ReTask) and again.settings() == task.settings()
    assert again.settings() == {
        "task": "re",
        "entity_markers": ["<<", ">>", "[[", "]]"],
        "typed_markers": True,
        "entity_types": ["CHEMICAL", "GENE"],
        "negative_label": "Other",
    }


def test_re_decides_its_negative_label_for_the_demo_evaluate_and_the_label_check():
    task = ReTask()
    demo_defaults(task)
    assert task.negative_label == "no_relation"
    given = ReTask(negative_label="Other")
    demo_defaults(given)
    assert given.negative_label == "Other"
    given.apply_run_options({"negative_label": "none"}, "model")
    assert given.negative_label == "none"
    given.apply_run_options({}, "model")  # not given: the saved model's stays
    assert given.negative_label == "none"
    with pytest.raises(ConfigError, match="--tag_scheme is not an option of the model's task"):
        given.apply_run_options({"tag_scheme": "bio"}, "model")
    with pytest.raises(ConfigError, match="--negative_label is not among the labels: got 'none'"):
        given.check_label_options(["Other", "works_for"])
    NerTask().check_label_options(["O"])  # NER has no option naming a label


def test_saved_settings_of_an_unregistered_task_say_to_register_it(tmp_path):
    with pytest.raises(ConfigError, match="task is 'sentiment'. Register it with"):
        task_from_settings({"task": "sentiment"}, str(tmp_path))


def test_nothing_outside_tasks_branches_on_the_task_name():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("tasks/"):
            continue
        lines = [line.strip() for line in path.read_text().splitlines()]
        hits = [line for line in lines if BRANCHES_ON_TASK.search(line)]
        if hits:
            found[relative] = hits
    assert found == {}


def test_a_task_name_cannot_be_taken_over(clean_registry):
    class Impostor(Minimal):
        name = "ner"

    with pytest.raises(ConfigError, match="the task name 'ner' is taken by accel_trainer.tasks"):
        registry.register_task(Impostor)
    assert registry.get_task("ner") is NerTask
    registry.register_task(Minimal)
    registry.register_task(Minimal)  # the same class again: harmless


def test_installed_packages_declare_tasks_by_entry_point(clean_registry, tmp_path, monkeypatch):
    """A task a package declares in the accel_trainer.tasks group is known to --task without
    an import by the user: what makes a task of one's own usable from the command line."""
    package = tmp_path / "my_tasks.py"
    package.write_text(
        "from accel_trainer import Task\n"
        "from tests.test_task_interface import Minimal\n\n"
        "class Sentiment(Minimal):\n    name = 'sentiment'\n"
    )
    info = tmp_path / "my_tasks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[accel_trainer.tasks]\nsentiment = my_tasks:Sentiment\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "sentiment" in registry.task_names()
    assert registry.get_task("sentiment").__module__ == "my_tasks"


def test_evaluate_overrides_reach_the_task_of_the_saved_model():
    task = NerTask(tag_scheme="none")
    task.apply_run_options({"tag_scheme": "bio"}, "model")
    assert task.tag_scheme == "bio"
    with pytest.raises(ConfigError) as error:
        task.apply_run_options({"negative_label": "O"}, "out/ner-model")
    assert str(error.value) == (
        "--negative_label is not an option of the model's task: got --negative_label 'O', and "
        "the model at out/ner-model does task 'ner'. Leave it out."
    )
