"""How to train: :class:`TrainConfig`, the settings of one call of :func:`course_utils.training.train`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_utils import validation


@dataclass
class TrainConfig:
    """How to train. Defaults suit the labs' small models on synthetic scenes."""

    steps: int = 500                      # optimizer steps
    lr: float = 1e-3                      # peak learning rate
    weight_decay: float = 1e-4
    optimizer: str = "adamw"              # "adamw" or "sgd" (momentum 0.9, Nesterov)
    schedule: str = "cosine"              # "cosine" (to 0) or "constant"; both after linear warmup
    warmup: int = 0                       # warmup steps
    grad_clip: float | None = None        # max gradient norm, or None
    amp: bool | None = None               # mixed precision; None = as the profile decides (CUDA only)
    compile: bool | None = None           # torch.compile; None = as the profile decides
    eval_every: int = 0                   # evaluate every n steps (0: only at the end)
    checkpoint: str | Path | None = None  # file to save to and resume from
    checkpoint_every: int = 0             # save every n steps (0: only at the end)
    seed: int = 0
    device: str | None = None             # None: the profile's device (CUDA, MPS, CPU)
    progress: bool = True                 # tqdm progress bar with the running loss
    deterministic: bool = True            # cuDNN deterministic algorithms

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        validation.int_at_least("TrainConfig.steps", self.steps, 1)
        for name in ("warmup", "eval_every", "checkpoint_every", "seed"):
            validation.int_at_least(f"TrainConfig.{name}", getattr(self, name), 0)
        validation.number("TrainConfig.lr", self.lr, minimum=0, strict_minimum=True)
        validation.number("TrainConfig.weight_decay", self.weight_decay, minimum=0)
        validation.one_of("TrainConfig.optimizer", self.optimizer, ("adamw", "sgd"))
        validation.one_of("TrainConfig.schedule", self.schedule, ("cosine", "constant"))
        if self.grad_clip is not None:
            validation.number("TrainConfig.grad_clip", self.grad_clip, minimum=0, strict_minimum=True)


