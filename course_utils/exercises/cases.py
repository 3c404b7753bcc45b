"""Helpers that every lab's case generators share: random numbers drawn from the check's generator
(never the global RNG, so that the visible and hidden seeds give the same cases everywhere)."""

from __future__ import annotations

import torch

#: the libraries' IoU functions, off-limits in the exercises that ask students to compute IoUs themselves
LIBRARY_IOU = ("torchmetrics.functional.classification.multiclass_jaccard_index",
               "torchmetrics.functional.jaccard_index", "sklearn.metrics.jaccard_score")


def rand_int(g: torch.Generator, low: int, high: int) -> int:
    """A random int in ``[low, high]`` (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def rand_bool(g: torch.Generator) -> bool:
    return bool(rand_int(g, 0, 1))
