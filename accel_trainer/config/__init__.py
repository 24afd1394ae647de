"""The configs of the commands, composed of option groups that live beside the components
that read them (data_options.py, train/batching_options.py, ...): checks.py (limits and shared
checks), options.py (flat names <-> groups), runs.py (TrainConfig, EvalConfig, PredictConfig and
validate()).

Names are imported on first use, so that `accel-trainer --help` stays fast and an option module
can import config.checks without importing every group.
"""

from __future__ import annotations

from accel_trainer import lazy_names

# Public name -> the module that defines it.
PUBLIC = {
    **dict.fromkeys(
        (
            "MAX_COUNT",
            "MAX_SEED",
            "MAX_SEQ_LENGTH",
            "TINY_BERT",
            "TINY_BERT_MAX_SEQ_LENGTH",
            "did_you_mean",
            "did_you_mean_option",
            "known_data_formats",
            "options_class",
            "problems_error",
            "registered_task_options",
        ),
        "accel_trainer.config.checks",
    ),
    **dict.fromkeys(
        ("FromOptions", "Option", "OptionGroup", "group_fields"), "accel_trainer.config.options"
    ),
    **dict.fromkeys(
        ("EvalConfig", "PredictConfig", "TaskOverrides", "TrainConfig", "validate"),
        "accel_trainer.config.runs",
    ),
}
__all__ = sorted(PUBLIC)

__getattr__ = lazy_names(__name__, PUBLIC)
