"""The parameter-efficient fine-tuning options (TrainConfig.peft), read by lora.py: which
method, LoRA's settings, and what the final folder holds."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import MAX_COUNT, opt, positive_problems, upper_bound_problems
from accel_trainer.config.options import OptionGroup

PEFT_METHODS = ("none", "lora")
# The options that only --peft lora reads, with what tells that they were given.
LORA_OPTIONS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "save_adapter_only")
PEFT_INSTALL = 'pip install -e ".[peft]" (or pip install peft)'


@dataclass
class PeftOptions(OptionGroup):
    """Parameter-efficient fine-tuning through the peft library: which method, LoRA's settings,
    and what the final folder holds."""

    title: ClassVar[str] = "peft"

    peft: str = field(
        default="none",
        metadata=opt(
            "none: train every weight. lora: freeze the pretrained weights and train low-rank "
            "adapters (peft's LoRA) on --lora_target_modules, the classification head and the "
            "embeddings of tokens the task adds (RE markers) in full. Needs " + PEFT_INSTALL + ".",
            choices=list(PEFT_METHODS),
        ),
    )
    lora_r: int = field(default=8, metadata=opt("LoRA rank: the adapters' inner dimension."))
    lora_alpha: int = field(
        default=16, metadata=opt("LoRA scaling: the adapter's output is scaled by alpha / r.")
    )
    lora_dropout: float = field(
        default=0.1, metadata=opt("Dropout on the adapters' input, in [0, 1).")
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata=opt(
            "Names of the modules that get adapters (e.g. query value), matched against the end "
            "of each module's name. Default: peft's own choice for the model's architecture "
            "(query and value for BERT, RoBERTa, ELECTRA)."
        ),
    )
    save_adapter_only: bool = field(
        default=False,
        metadata=opt(
            "Save only the adapter (adapter_config.json, adapter_model.safetensors with the "
            "head) and the tokenizer, not merged weights; loading it needs peft and the base "
            "model. Default: the adapters merged into plain weights that load without peft.",
            on_resume="free",
        ),
    )

    @property
    def uses_lora(self) -> bool:
        return self.peft == "lora"

    def problems(self) -> list[str]:
        found = super().problems()
        if not self.uses_lora:
            defaults = PeftOptions()
            found += [
                f"--{name} needs --peft lora: got --peft {self.peft}. Add --peft lora, or leave "
                f"out --{name}."
                for name in LORA_OPTIONS
                if getattr(self, name) != getattr(defaults, name)
            ]
            return found
        if importlib.util.find_spec("peft") is None:
            found.append(
                f"--peft lora needs the peft package, which is not installed: {PEFT_INSTALL}."
            )
        found += positive_problems(self, ("lora_r", "lora_alpha"))
        found += upper_bound_problems(self, {"lora_r": MAX_COUNT, "lora_alpha": MAX_COUNT})
        if not (math.isfinite(self.lora_dropout) and 0 <= self.lora_dropout < 1):
            found.append(
                f"--lora_dropout must be in [0, 1): got {self.lora_dropout}. Use e.g. 0.1, or 0 "
                "for none."
            )
        targets = self.lora_target_modules
        if targets is not None and (not targets or not all(name.strip() for name in targets)):
            found.append(
                f"--lora_target_modules has an empty name: got {targets}. Name the modules, e.g. "
                "query value, or leave the option out for peft's default."
            )
        return found
