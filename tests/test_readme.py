"""The README stays true: its quick-start commands, what CI runs, and the options reference."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

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


def test_the_options_reference_is_what_help_shows():
    """docs/options.md is generated from the option dataclasses (in a fresh process: no task a
    test registered), and names every flag of every command."""
    generated = subprocess.run(
        [sys.executable, "-m", "accel_trainer.cli"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert read("docs/options.md") == generated, "regenerate: python -m accel_trainer.cli"
    flags = [name for name, option in TrainConfig.option_table().items() if option.is_flag]
    missing = [name for name in flags if f"`--{name}`" not in generated]
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
    tagger = pipeline("token-classification", model=str(folder), aggregation_strategy="first")
    assert tagger("Aiko Tanaka moved to Lagos .")


def bash_commands() -> list[str]:
    """Every command of the README's ```bash blocks, its continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", read("README.md"), re.S)
    return [
        " ".join(command.split())
        for block in blocks
        for command in block.replace("\\\n", " ").splitlines()
        if command.strip() and not command.lstrip().startswith("#")
    ]


def test_readme_commands_write_under_outputs():
    """outputs/ is what .gitignore keeps out of git; DIR, G and the like are placeholders."""
    targets = [
        (flag, value)
        for command in bash_commands()
        for flag, value in re.findall(r"(--output_(?:dir|file))[ =](\S+)", command)
    ]
    assert len(targets) >= 6  # the worked examples' at least
    elsewhere = [
        (flag, value)
        for flag, value in targets
        if not re.fullmatch(r"[A-Z_]+|\.\.\.", value) and not value.startswith("outputs/")
    ]
    assert elsewhere == []


def test_readme_release_paths_keep_their_sub_folders():
    """SemEval-2010 Task 8's release keeps its files in sub-folders; a path to one names it."""
    sub_folders = {
        "TRAIN_FILE.TXT": "SemEval2010_task8_training/",
        "TEST_FILE_FULL.TXT": "SemEval2010_task8_testing_keys/",
    }
    paths = [path for command in bash_commands() for path in command.split()]
    for name, folder in sub_folders.items():
        named = [path for path in paths if path.endswith(name)]
        assert named, name
        assert all(path.endswith(folder + name) for path in named), named


def test_outputs_is_git_ignored():
    assert "outputs/" in read(".gitignore").splitlines()
    if shutil.which("git") and os.path.exists(os.path.join(REPO_ROOT, ".git")):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "outputs/demo-ner/model.safetensors"], cwd=REPO_ROOT
        )
        assert ignored.returncode == 0


def test_readme_shows_the_demo_refusal_as_it_reads(tmp_path, monkeypatch):
    """The message of `accel-trainer train --max_train_steps 20` over the finished default demo
    (114 steps), as the README quotes it."""
    from accel_trainer.errors import ConfigError
    from accel_trainer.storage.output_folder import DEMO_MARKER, check_output_dir

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "outputs" / "demo-ner"
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("")
    (folder / "model_manifest.json").write_text(json.dumps({"step": 114, "files": {}}))
    saved = TrainConfig.from_options().effective_options()
    (folder / "training_config.json").write_text(json.dumps(saved))
    check_output_dir("outputs/demo-ner", TrainConfig.from_options())  # the same: no error
    with pytest.raises(ConfigError) as refused:
        check_output_dir("outputs/demo-ner", TrainConfig.from_options(max_train_steps=20))
    assert f"accel-trainer: error: {refused.value}\n" in read("README.md")
