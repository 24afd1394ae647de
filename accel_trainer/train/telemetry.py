"""Where a run's time goes: training, evaluation and checkpointing, timed apart, so that
throughput figures count training alone and add up across resumes."""

from __future__ import annotations

import time
from contextlib import contextmanager

ACTIVITIES = ("train", "eval", "checkpoint")


class Stopwatch:
    """Seconds per activity, kept in `totals` (the checkpointed state's dict). The clock runs
    for "train" from its creation until stop(), except inside `paused(activity)`, which times
    that activity instead."""

    def __init__(self, totals: dict[str, float]):
        self.totals = totals
        for activity in ACTIVITIES:
            totals.setdefault(activity, 0.0)
        self._since: float | None = time.perf_counter()

    def train_seconds(self) -> float:
        """Training seconds so far, the running stretch included."""
        running = 0.0 if self._since is None else time.perf_counter() - self._since
        return self.totals["train"] + running

    def stop(self) -> None:
        """Add the running stretch to the training total and stop the clock."""
        if self._since is not None:
            self.totals["train"] += time.perf_counter() - self._since
            self._since = None

    @contextmanager
    def paused(self, activity: str):
        running = self._since is not None
        self.stop()
        started = time.perf_counter()
        try:
            yield
        finally:
            now = time.perf_counter()
            self.totals[activity] += now - started
            if running:
                self._since = now
