"""Test helper: a torchvision-style detector's training losses and one SGD step, reproducibly (the tests that
compare a model built with the student's pieces against torchvision's own)."""

from __future__ import annotations

import torch


def losses(model: torch.nn.Module, images: list, targets: list, seed: int = 0) -> dict[str, torch.Tensor]:
    """The model's training losses on ``images``/``targets`` (the samplers of anchors and proposals draw at
    random: seeded)."""
    model.train()
    torch.manual_seed(seed)
    return model(images, targets)


def sgd_step(model: torch.nn.Module, images: list, targets: list) -> dict[str, torch.Tensor]:
    """One SGD step (lr 0.05) on the summed losses; returns a copy of the parameters after it."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    sum(losses(model, images, targets).values()).backward()
    optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
