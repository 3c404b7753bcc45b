"""The optimizer and learning-rate schedule of the training loop (:func:`course_utils.training.train`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from course_utils.training import TrainConfig


def lr_factor(config: "TrainConfig") -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        if config.schedule == "constant":
            return 1.0
        done = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))
    return factor


def make_optimizer(model: nn.Module, config: "TrainConfig") -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and norm parameters (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)
