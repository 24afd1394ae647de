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
