"""The optimizer and learning-rate schedule of the training loop (:func:`course_utils.training.train`),
taking plain arguments so that anything can use them."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def lr_factor(steps: int, warmup: int = 0, schedule: str = "cosine") -> Callable[[int], float]:
    """The learning rate at ``step`` as a fraction of the peak: linear warmup over ``warmup`` steps, then
    constant (``schedule="constant"``) or a cosine decay to 0 at ``steps`` (``"cosine"``)."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        done = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))
    return factor


def make_optimizer(model: nn.Module, kind: str = "adamw", lr: float = 1e-3,
                   weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """AdamW (``kind="adamw"``) or SGD with Nesterov momentum 0.9 (``"sgd"``); no weight decay on biases and
    norm parameters (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"kind must be 'adamw' or 'sgd', got {kind!r}")
