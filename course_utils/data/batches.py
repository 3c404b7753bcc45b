"""Batches for the training loop: synthetic scenes by step number, any iterable cycled by epoch, and
moving (nested) batches to a device.

- :class:`SceneBatches`: ``batches(step) -> (images, targets)``, the same batch for the same step;
- :class:`FigureBatches`: the same for lab 07's stick figures (targets with keypoints);
- :func:`batch_stream`: batches from a given step on (what :func:`course_utils.training.train` reads);
- :func:`to_device`: tensors inside lists, tuples and dicts moved to a device.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from course_utils import validation
from course_utils.config import Profile
from course_utils.data.figures import FigureConfig, Figures, render_figures
from course_utils.data.scenes import SceneConfig, Scenes, render_scenes

Batch = tuple[Any, Any]


class SceneBatches:
    """Batch ``step`` of synthetic scenes: ``batches(step) -> (images, targets)``.

    ``task="semantic"``: ``images`` ``B x 3 x H x W`` and ``targets`` ``B x H x W`` int64.
    ``task="detection"``: a list of ``3 x H x W`` images and a list of torchvision target dicts.
    ``profile`` (the lab's :class:`~course_utils.config.Profile`) puts the scenes on its device
    (``device`` does the same, for use without a profile). Without ``pool``, batch ``step`` holds scenes
    ``step * B ... step * B + B - 1`` of an endless
    stream, rendered on the fly (fast on a GPU). With ``pool=n``, a fixed training set of ``n`` scenes
    is rendered once (on first use) and each batch draws ``B`` of them at random (seeded by step):
    the faster choice on a CPU.
    """

    def __init__(self, config: SceneConfig, batch_size: int, seed: int = 0, device: torch.device | str = "cpu",
                 task: str = "semantic", pool: int | None = None, profile: Profile | None = None):
        validation.positive_int("batch_size", batch_size)
        validation.one_of("task", task, ("semantic", "detection"))
        validation.optional_positive_int("pool", pool)
        self.config, self.batch_size, self.seed = config, batch_size, seed
        self.device = profile.device if profile is not None else torch.device(device)
        self.task, self.pool = task, pool
        self._scenes: Scenes | None = None

    def indices(self, step: int) -> list[int]:
        """The scene numbers in batch ``step``."""
        first = step * self.batch_size
        if self.pool is None:
            return list(range(first, first + self.batch_size))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return torch.randint(self.pool, (self.batch_size,), generator=g).tolist()

    def render(self, indices: list[int] | range) -> Scenes:
        """The scenes with these sample numbers."""
        return render_scenes(self.config, indices, self.seed, self.device)

    def _render(self, indices: list[int]) -> Scenes:
        if self.pool is None:
            return self.render(indices)
        if self._scenes is None:
            self._scenes = self.render(range(self.pool))
        return self._scenes.select(torch.as_tensor(indices, device=self._scenes.images.device))

    def __call__(self, step: int) -> Batch:
        scenes = self._render(self.indices(step))
        if self.task == "semantic":
            return scenes.images, scenes.semantic
        return list(scenes.images), [scenes.target(i) for i in range(len(scenes))]


class FigureBatches(SceneBatches):
    """:class:`SceneBatches` of stick-figure scenes (:mod:`~course_utils.data.figures`), for lab 07's
    keypoint R-CNN: ``batches(step) -> (list of 3 x H x W images, list of targets with keypoints)``."""

    def __init__(self, config: FigureConfig, batch_size: int, seed: int = 0, device: torch.device | str = "cpu",
                 pool: int | None = None, profile: Profile | None = None):
        if not isinstance(config, FigureConfig):
            raise TypeError(f"config must be a FigureConfig, got {type(config).__name__}")
        super().__init__(config, batch_size, seed, device, "detection", pool, profile)  # type: ignore[arg-type]

    def render(self, indices: list[int] | range) -> Figures:  # type: ignore[override]
        return render_figures(self.config, indices, self.seed, self.device)  # type: ignore[arg-type]


def batch_stream(batches: Callable[[int], Batch] | Iterable[Batch], start: int, seed: int):
    """Yield batches from step ``start`` on (a function of the step, or an iterable cycled by epoch)."""
    if callable(batches) and not isinstance(batches, Iterable):
        step = start
        while True:
            yield batches(step)
            step += 1
    try:
        per_epoch = len(batches)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    if not per_epoch:
        raise ValueError("batches must be a function step -> (inputs, targets) or a non-empty iterable "
                         "with a length, such as a DataLoader")
    epoch, skip = divmod(start, per_epoch)
    while True:
        # A DataLoader without its own generator draws its shuffling seed from torch's global RNG
        # when it starts. Seed that draw by epoch, in a fork, so the loader is reproducible and the
        # global RNG (dropout, augmentation) is left alone, which makes resuming exact.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + epoch)
            iterator = iter(batches)
            first = next(iterator, None)
        if first is None:
            raise ValueError("batches is an empty iterable")
        for i, batch in enumerate(itertools.chain([first], iterator)):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def to_device(value: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) lists, tuples and dicts to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value
