"""Errors caused by user input; the CLI prints them in one line and exits with status 2."""


class InputError(Exception):
    """Bad user input: a flag, a config file, a data file or an output folder."""


class ConfigError(InputError):
    """One or more options are invalid; the message lists every one of them."""


class OutputError(InputError):
    """Output could not be written (a full or read-only disk); what was committed is intact."""


EXIT_PREEMPTED = 75  # EX_TEMPFAIL: stopped by a signal after a committed checkpoint; requeue


class Preempted(Exception):
    """Training stopped on SIGTERM/SIGUSR1 after committing a checkpoint at `step`."""

    def __init__(self, step: int):
        super().__init__(f"stopped by a signal at step {step}, after committing its checkpoint")
        self.step = step


class RunComplete(Exception):
    """--resume_from_checkpoint auto on a run that already finished: nothing to do (a requeued
    job exits 0)."""


EXIT_DIVERGED = 3


class Diverged(Exception):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


class DataError(InputError):
    """A data file is missing, empty or malformed; the message names the file and line."""


class OtherTaskData(DataError):
    """A data file in a format of another task: `problem` says what it looks like, `task` names
    the task it fits; the message adds `advice` (e.g. to pass --task), which evaluate and
    predict, whose task is the saved model's, replace with their own."""

    def __init__(self, problem: str, task: str, advice: str):
        super().__init__(f"{problem} {advice}")
        self.problem, self.task = problem, task


class PeerLost(Exception):
    """A collective failed because another process of the run died or stopped answering."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def compile_failure(error: BaseException) -> str | None:
    """The one line for an error of torch.compile (dynamo or inductor, whose reports run to
    thousands of lines), or None for any other error."""
    modules = ("torch._dynamo", "torch._inductor")
    if not any(kind.__module__.startswith(modules) for kind in type(error).__mro__):
        return None
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    said = " ".join(line for line in lines[:3] if not line.endswith("raised:"))[:300]
    return (
        f"--torch_compile could not compile the model: {type(error).__name__}: {said or '?'}. "
        'Run without --torch_compile; TORCH_LOGS="+dynamo" shows the details.'
    )
