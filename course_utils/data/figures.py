"""Synthetic stick figures with named joints: lab 07's keypoint data, deterministic by (seed, index).

A figure is a head (a disc) and eight limbs drawn as thick lines between nine joints, in one colour, its
left limbs darker than its right ones (so that left and right can be told apart, as a face tells them
apart on a photograph); the figure faces the viewer, so its left side is on the image's right. Figures
stand, lean and wave over the textured *stuff* backgrounds of :mod:`~course_utils.data.scenes`, in
z-order (later figures in front), plus sensor noise. Per image (:meth:`Figures.target`), torchvision's
keypoint convention:

- ``boxes`` ``N x 4`` float32 XYXY of the visible pixels (pixel-edge coordinates, as scenes' boxes);
- ``labels`` ``N`` int64, all 1 (``"figure"``; 0 is the background);
- ``masks`` ``N x H x W`` uint8 visible-part masks;
- ``keypoints`` ``N x J x 3`` float32 ``(x, y, v)`` in pixels, COCO's visibility ``v``: 2 visible, 1 hidden
  behind a figure in front (still labelled), 0 outside the image (then ``x = y = 0``).

The joints (:data:`JOINTS`) and the limbs joining them (:data:`SKELETON`) are COCO-like, with fewer joints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from course_utils import validation
from course_utils.data.scenes import (
    STUFF_LOOKS,
    _hsv_to_rgb,
    _Random,
    _stuff_layout,
    _stuff_texture,
    masks_and_boxes,
    sample_indices,
    select,
)

JOINTS: tuple[str, ...] = ("head", "neck", "left_elbow", "left_hand", "right_elbow", "right_hand", "pelvis",
                           "left_foot", "right_foot")
# limbs as (joint, joint) index pairs; the head is a disc around "head", joined to the neck
SKELETON: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 3), (1, 4), (4, 5), (1, 6), (6, 7), (6, 8))
LEFT_LIMBS = (1, 2, 6)          # indices into SKELETON drawn darker: left arm (2 parts) and left leg
# stream ids of the counter-based random numbers (scenes.py uses 1-6 and 100+)
_S_COUNT, _S_POSE = 31, 32
_POSE_PARAMETERS = 14


@dataclass(frozen=True)
class FigureConfig:
    """What figure scenes look like; ``min_height``/``max_height`` are fractions of the image's side."""

    size: int = 96
    stuff: tuple[str, ...] = ("sky", "ground", "water")
    min_figures: int = 1
    max_figures: int = 3
    min_height: float = 0.45                    # head top to feet, fraction of the side
    max_height: float = 0.80
    thickness: float = 0.07                     # limb width, fraction of the figure's height
    noise: float = 0.03
    min_visible: int = 30                       # figures with fewer visible pixels are not drawn

    def __post_init__(self) -> None:
        validation.int_at_least("size", self.size, 16)
        if not self.stuff or any(s not in STUFF_LOOKS for s in self.stuff):
            raise ValueError(f"stuff must name stuff classes from {', '.join(STUFF_LOOKS)}, got {self.stuff!r}")
        validation.int_at_least("min_figures", self.min_figures, 0)
        validation.int_at_least("max_figures", self.max_figures, max(self.min_figures, 1),
                                " (and >= min_figures)")
        if not 0 < self.min_height <= self.max_height <= 1:
            raise ValueError(f"need 0 < min_height <= max_height <= 1, got {self.min_height}, {self.max_height}")
        validation.number("thickness", self.thickness, minimum=0, maximum=0.5, strict_minimum=True)
        validation.number("noise", self.noise, minimum=0)
        validation.int_at_least("min_visible", self.min_visible, 1)

    @property
    def hw(self) -> tuple[int, int]:
        return self.size, self.size

    @property
    def detection_classes(self) -> tuple[str, ...]:
        return ("background", "figure")


@dataclass
class Figures:
    """A batch of rendered figure scenes: ``images`` ``B x 3 x H x W`` in [0, 1], ``instances`` ``B x H x W``
    (0 = stuff, 1..n = figures bottom to top), ``keypoints`` ``B x F x J x 3`` by instance id (row ``k`` is
    instance ``k + 1``; unused rows are 0), ``semantic`` ``B x H x W`` (stuff ids, then ``len(stuff)``
    for figures)."""

    config: FigureConfig
    images: torch.Tensor
    semantic: torch.Tensor
    instances: torch.Tensor
    keypoints: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, index: torch.Tensor) -> Figures:
        """The scenes at ``index`` (a 1-D tensor of positions)."""
        return select(self, index)

    def target(self, i: int) -> dict[str, torch.Tensor]:
        """torchvision-style target of image ``i``: boxes, labels, masks, keypoints (see the module)."""
        masks, boxes = masks_and_boxes(self.instances[i])
        n = len(masks)
        return {"boxes": boxes, "labels": torch.ones(n, dtype=torch.long, device=masks.device),
                "masks": masks.to(torch.uint8), "keypoints": self.keypoints[i, :n].clone()}


def _rotate(dx: torch.Tensor, dy: torch.Tensor, angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The vector ``(dx, dy)`` turned by ``angle`` (radians, clockwise on the image: y points down)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return dx * c - dy * s, dx * s + dy * c


def pose(p: torch.Tensor, height: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Joint positions ``... x J x 2`` (pixels) of figures with pose parameters ``p`` (``... x 14`` in
    [0, 1)), heights and pelvis positions ``...``: a lean of up to 20 degrees, arms from hanging to raised
    (left arm on the image's right), elbows bent up to 70 degrees, legs apart by 5 to 35 degrees."""
    lean = math.radians(20) * (2 * p[..., 0] - 1)

    def limb(start: torch.Tensor, angle: torch.Tensor, length: float) -> torch.Tensor:
        # angle from "straight down", positive towards the image's right, plus the lean
        dx, dy = _rotate(torch.zeros_like(angle), torch.ones_like(angle) * length * height, -(angle + lean))
        return start + torch.stack([dx, dy], -1)

    pelvis = torch.stack([cx, cy], -1)
    neck = limb(pelvis, torch.full_like(lean, math.pi), 0.38)
    head = limb(neck, torch.full_like(lean, math.pi), 0.14)
    joints = {"head": head, "neck": neck, "pelvis": pelvis}
    for side, sign, k in (("left", 1.0, 1), ("right", -1.0, 6)):
        upper = sign * (math.radians(15) + math.radians(150) * p[..., k])
        bend = sign * math.radians(70) * (2 * p[..., k + 1] - 1)
        joints[f"{side}_elbow"] = limb(neck, upper, 0.18)
        joints[f"{side}_hand"] = limb(joints[f"{side}_elbow"], upper + bend, 0.17)
        joints[f"{side}_foot"] = limb(pelvis, sign * (math.radians(5) + math.radians(30) * p[..., k + 2]), 0.45)
    return torch.stack([joints[name] for name in JOINTS], -2)


def _segment_distance(xx: torch.Tensor, yy: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance ``B x H x W`` from each pixel centre to the segments ``a -> b`` (``B x 2`` each)."""
    ax, ay, bx, by = (t[:, None, None] for t in (a[:, 0], a[:, 1], b[:, 0], b[:, 1]))
    vx, vy = bx - ax, by - ay
    t = (((xx - ax) * vx + (yy - ay) * vy) / (vx * vx + vy * vy).clamp_min(1e-9)).clamp(0, 1)
    return torch.hypot(xx - ax - t * vx, yy - ay - t * vy)


def render_figures(config: FigureConfig, indices: torch.Tensor | range | list[int], seed: int = 0,
                   device: torch.device | str = "cpu") -> Figures:
    """Render the figure scenes with these sample indices (``B`` of them) on ``device``."""
    if not isinstance(config, FigureConfig):
        raise TypeError(f"config must be a FigureConfig, got {type(config).__name__}")
    idx = sample_indices(indices, seed, device)
    rnd = _Random(seed, idx)
    b, (h, w), m, j = idx.numel(), config.hw, config.max_figures, len(JOINTS)
    yy = torch.arange(h, device=device, dtype=torch.float32).add_(0.5)[None, :, None]
    xx = torch.arange(w, device=device, dtype=torch.float32).add_(0.5)[None, None, :]
    semantic = _stuff_layout(config, rnd, yy, xx, b)
    images = _stuff_texture(config, rnd, semantic, yy, xx)

    spread = m - config.min_figures + 1
    count = config.min_figures + (rnd.uniform(_S_COUNT, 1)[:, 0] * spread).long().clamp(max=spread - 1)
    p = rnd.uniform(_S_POSE, (_POSE_PARAMETERS + 6) * m).reshape(b, m, -1)   # B x F x 20 per figure slot
    height = config.size * (config.min_height + (config.max_height - config.min_height) * p[..., -1])
    cx = w * (0.15 + 0.7 * p[..., -2])
    cy = h * 0.05 + height * 0.55 + (h * 0.95 - height * 1.0) * p[..., -3].clamp(0, 1)   # head and feet mostly inside
    colour = _hsv_to_rgb(p[..., -4], 0.6 + 0.4 * p[..., -5], 0.75 + 0.25 * p[..., -6])  # B x F x 3
    joints = pose(p[..., :_POSE_PARAMETERS], height, cx, cy)                          # B x F x J x 2

    shapes, darker = [], []                        # per slot: B x H x W masks, and its left limbs' pixels
    for f in range(m):
        half = 0.5 * torch.clamp(config.thickness * height[:, f], min=1.0)[:, None, None]
        head = torch.hypot(xx - joints[:, f, 0, 0, None, None], yy - joints[:, f, 0, 1, None, None]) \
            <= 0.09 * height[:, f, None, None]
        limbs = [_segment_distance(xx, yy, joints[:, f, a], joints[:, f, c]) <= half for a, c in SKELETON]
        shapes.append((head | torch.stack(limbs).any(0)) & (f < count)[:, None, None])
        darker.append(torch.stack([limbs[i] for i in LEFT_LIMBS]).any(0))
    covered = torch.zeros_like(shapes[0])
    keep = torch.zeros(b, m, dtype=torch.bool, device=device)
    for f in reversed(range(m)):                   # top-down: what is visible, and is it enough to keep
        keep[:, f] = (shapes[f] & ~covered).flatten(1).sum(1) >= config.min_visible
        covered |= shapes[f] & keep[:, f, None, None]
    instance_id = keep.long().cumsum(1) * keep
    instances = torch.zeros(b, h, w, dtype=torch.long, device=device)
    for f in range(m):                             # bottom-up: paint the kept figures
        paint = shapes[f] & keep[:, f, None, None]
        shade = torch.where(darker[f], 0.55, 1.0)[:, None]                   # B x 1 x H x W
        images.copy_(torch.where(paint[:, None], colour[:, f, :, None, None] * shade, images))
        semantic[paint] = len(config.stuff)
        instances[paint] = instance_id[:, f, None, None].expand(-1, h, w)[paint]
    if config.noise:
        images += config.noise * rnd.normal_field(6, (3, h, w))

    # keypoints by instance id; visibility: outside the image 0, under a later figure 1, else 2
    xy = joints.round(decimals=2)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)       # B x F x J
    px = xy[..., 0].long().clamp(0, w - 1)
    py = xy[..., 1].long().clamp(0, h - 1)
    rows = torch.arange(b, device=device)[:, None, None]
    on_top = instances[rows, py, px] == instance_id[..., None]                                  # B x F x J
    v = torch.where(inside, torch.where(on_top, 2.0, 1.0), 0.0)
    points = torch.cat([xy * (v[..., None] > 0), v[..., None]], -1)
    keypoints = torch.zeros(b, m, j, 3, device=device)
    keypoints[rows[:, :, 0].expand(b, m)[keep], instance_id[keep] - 1] = points[keep]
    return Figures(config, images.clamp_(0.0, 1.0), semantic, instances, keypoints)


__all__ = ["JOINTS", "SKELETON", "FigureConfig", "Figures", "pose", "render_figures"]
