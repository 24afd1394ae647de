"""Named-entity recognition as token classification: CoNLL / JSON lines in, seqeval metrics out.

tags.py (tag schemes), formats.py (readers and the input sniff), hub.py (hub datasets),
encoding.py (sub-tokens, truncation and windows), metrics.py (seqeval), prediction.py (predict's
input and output) and task.py (NerTask, which delegates to them)."""

from accel_trainer.tasks.ner.task import NerOptions, NerTask

__all__ = ["NerOptions", "NerTask"]
