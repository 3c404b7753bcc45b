"""YOLO's training data: the course's scenes as grid targets (:func:`grid_targets`) and batches for the
training loop (:class:`YoloBatches`), for lab 06's :class:`~course_utils.models.detection.yolo.TinyYOLO`.

    batches = YoloBatches(SceneConfig(size=96, max_things=3), 16, grid=12, pool=2048, profile=P)
    images, targets = batches(0)              # 16 x 3 x 96 x 96, 16 x 12 x 12 x (5 + 3)

The encoding of one image is the lab-06 reference :func:`course_utils.ops.yolo.encode_targets`; the
scenes label their things ``1 .. C`` (0 is the background), YOLO's classes are ``0 .. C-1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_utils import validation
from course_utils.config import Profile
from course_utils.data.batches import SceneBatches
from course_utils.data.scenes import SceneConfig
from course_utils.ops import yolo as yolo_ops


def grid_targets(targets: Sequence[dict], grid: int, num_classes: int,
                 image_size: int | tuple[int, int]) -> torch.Tensor:
    """``N x S x S x (5 + C)`` YOLO targets of ``N`` torchvision-style scene targets.

    Each dict needs ``boxes`` (``K x 4`` XYXY pixels) and ``labels`` (``K``, the scenes' ``1 .. C``);
    the labels become ``0 .. C-1`` for :func:`~course_utils.ops.yolo.encode_targets` (one object per
    cell: when two centres share a cell, the first object keeps it). On the boxes' device.
    """
    if isinstance(targets, dict) or not len(targets):
        raise ValueError("targets must be a non-empty list of dicts with 'boxes' and 'labels'")
    out = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        labels = validation.tensor(f"targets[{i}]['labels']", t["labels"], ndim=1, dtypes="int")
        if len(labels) and int(labels.min()) < 1:
            raise ValueError(f"targets[{i}]['labels'] must be the scenes' thing labels 1 .. {num_classes} "
                             f"(0 is the background, which YOLO has no class for), got {labels.tolist()}")
        out.append(yolo_ops.encode_targets(t["boxes"], labels - 1, grid, num_classes, image_size))
    return torch.stack(out)


class YoloBatches:
    """Batch ``step`` of the course's scenes for YOLO: ``batches(step) -> (images N x 3 x H x W,
    targets N x S x S x (5 + C))``, for ``train(model, batches, config, loss_fn=yolo_loss_terms)``.

    The scenes are those of ``SceneBatches(config, batch_size, seed, task="detection", pool=pool,
    profile=profile)``. Augmentation: with ``flip=True`` each scene is mirrored left-right with
    probability 1/2 (boxes mirrored with it; seeded by ``seed`` and ``step``, so batch ``step`` is always
    the same). Only horizontal flips: the scenes have sky above the ground, and their shapes (circle,
    square, triangle) stay themselves in a mirror.
    """

    def __init__(self, config: SceneConfig, batch_size: int, grid: int, seed: int = 0, pool: int | None = None,
                 flip: bool = True, profile: Profile | None = None, device: torch.device | str = "cpu"):
        self.scenes = SceneBatches(config, batch_size, seed=seed, task="detection", pool=pool, profile=profile,
                                   device=device)
        self.grid = validation.positive_int("grid", grid)
        self.num_classes = len(config.things)
        self.image_size = config.hw
        self.flip, self.seed = bool(flip), seed

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = self.scenes(step)
        images = torch.stack(images)
        if self.flip:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + step + 7)
            mirror = (torch.rand(len(images), generator=g) < 0.5).tolist()
            w = self.image_size[1]
            images = torch.stack([im.flip(-1) if m else im for im, m in zip(images, mirror)])
            targets = [dict(t, boxes=torch.stack([w - t["boxes"][:, 2], t["boxes"][:, 1], w - t["boxes"][:, 0],
                                                  t["boxes"][:, 3]], 1)) if m else t
                       for t, m in zip(targets, mirror)]
        return images, grid_targets(targets, self.grid, self.num_classes, self.image_size)


__all__ = ["YoloBatches", "grid_targets"]
