"""The README stays true: its quick-start commands, what CI runs, and the options table."""

import os
import re

from accel_trainer.config import TrainConfig
from tests.conftest import REPO_ROOT


def read(path):
    with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def quick_start_commands():
    first_block = re.search(r"```bash\n(.*?)```", read("README.md"), re.S).group(1)
    return [line for line in first_block.splitlines() if line.strip()]


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("accel-trainer train")
    assert "pytest" in commands[1]
    ci_lines = read(".ci/run").splitlines()
    assert commands[1] in ci_lines


def test_every_train_option_is_in_the_readme_table():
    readme = read("README.md")
    flags = [name for name, option in TrainConfig.option_table().items() if option.is_flag]
    missing = [name for name in flags if f"`--{name}`" not in readme]
    assert missing == []


def python_api_snippets() -> list[str]:
    """The ```python blocks of the README's "Python API" section, in order."""
    section = read("README.md").split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_api_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    """After the quick start (its demo corpus on disk), the snippet trains, prints its
    evaluations, and saves a folder that evaluate, predict and pipeline all load."""
    from transformers import pipeline

    from accel_trainer.cli import main
    from accel_trainer.tasks.demo import write_demo_corpus

    monkeypatch.chdir(tmp_path)
    write_demo_corpus("outputs/demo-ner/data")
    [snippet] = python_api_snippets()
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    evaluations = [line for line in printed if line.startswith("step ")]
    assert evaluations and evaluations[-1].startswith("step 60: eval_f1 ")
    f1, steps = printed[-1].split()
    assert float(f1) > 0.5 and steps == "60"
    folder = tmp_path / "outputs" / "python-ner"
    for name in ("model.safetensors", "tokenizer.json", "README.md", "all_results.json"):
        assert (folder / name).is_file(), name
    data = "outputs/demo-ner/data/dev.conll"
    assert main(["evaluate", "--model_name_or_path", str(folder), "--validation_file", data,
                 "--output_dir", "eval"]) == 0  # fmt: skip
    assert main(["predict", "--model_name_or_path", str(folder), "--input_file", data,
                 "--output_file", "dev.predicted.conll"]) == 0  # fmt: skip
    tagger = pipeline("token-classification", model=str(folder), aggregation_strategy="simple")
    assert tagger("Aiko Tanaka moved to Lagos .")
