"""How fast a model runs: wall-clock seconds per call and images per second, measured the same way in
the notebooks, the decks and ``bench/`` (one untimed warm-up call first; CUDA's queued work waited for
before each clock reading, so a GPU is timed for its work and not for launching it).

    seconds = seconds_per_call(lambda i: model(images[i:i + 1], proposals[i:i + 1]), n=len(images))
    rate = images_per_second(lambda batch: detect(model, batch), images, batch_size=16)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from course_utils import validation


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def seconds_per_call(run: Callable[[int], Any], n: int, warmup: int = 1) -> float:
    """Mean wall-clock seconds of ``run(i)`` over ``i = 0 .. n-1``, after ``warmup`` untimed calls of
    ``run(0)`` (the first call pays for allocation and lazy set-up)."""
    if not callable(run):
        raise TypeError(f"run must be a function of the call's index i, got {type(run).__name__}")
    validation.positive_int("n", n)
    validation.int_at_least("warmup", warmup, 0)
    for _ in range(warmup):
        run(0)
    _sync()
    tick = time.perf_counter()
    for i in range(n):
        run(i)
    _sync()
    return (time.perf_counter() - tick) / n


def images_per_second(run: Callable[[Any], Any], images: torch.Tensor | Sequence[torch.Tensor],
                      batch_size: int = 1, warmup: int = 1) -> float:
    """Throughput of ``run(batch)`` over ``images`` (``N x 3 x H x W`` or a list of ``3 x H x W``) cut into
    batches of ``batch_size`` (the last may be smaller), after ``warmup`` untimed first batches: images / s."""
    validation.positive_int("batch_size", batch_size)
    if not len(images):
        raise ValueError("images is empty: nothing to time")
    batches = math.ceil(len(images) / batch_size)
    seconds = seconds_per_call(lambda i: run(images[i * batch_size:(i + 1) * batch_size]), batches, warmup)
    return len(images) / (seconds * batches)


__all__ = ["images_per_second", "seconds_per_call"]
