"""Relation extraction as classification of one marked entity pair per example.

spans.py (entities from marked text or token spans), formats.py (SemEval-2010 and JSON lines
readers), encoding.py (markers and the window around both entities), metrics.py
(scikit-learn), prediction.py (predict's output) and task.py (ReTask, which delegates to them)."""

from accel_trainer.tasks.re.task import ReOptions, ReTask

__all__ = ["ReOptions", "ReTask"]
