"""Synthetic scenes: the data of every lab, made on the fly, deterministic by seed.

A scene is a few *thing* shapes (countable objects: circles, squares, triangles, ...) in z-order over
*stuff* regions (amorphous: sky, ground, water, ...), plus sensor noise. Each scene comes with every
label the course needs:

- ``images``     ``B x 3 x H x W`` float32 in [0, 1];
- ``semantic``   ``B x H x W`` int64 category id per pixel (stuff ids first, then thing ids);
- ``instances``  ``B x H x W`` int64 instance id per pixel (0 = stuff, 1..n = things, bottom to top);
- ``panoptic``   ``B x H x W x 2`` int64 ``(category id, instance id)``, torchmetrics' layout;
- per image (``Scenes.target(i)``): ``boxes`` ``N x 4`` float32 XYXY in pixel-edge coordinates
  (a one-pixel object at column 5 spans x 5..6), ``labels`` ``N`` int64 in ``1..T`` (0 is background,
  torchvision's convention), ``masks`` ``N x H x W`` uint8 visible-part masks.

Randomness is a counter-based hash of (seed, sample index, stream, coordinate), so sample ``i`` is the
same whatever the batch, order or device, and a whole batch is rendered with tensor operations on
the device (a GPU renders thousands of scenes per second, so data never starves training).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes

from course_utils import validation

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Batch = TypeVar("_Batch", bound="DataclassInstance")

# ---- categories ------------------------------------------------------------------------------
# Stuff looks: base RGB colour and texture kind.
STUFF_LOOKS: dict[str, tuple[tuple[float, float, float], str]] = {
    "sky": ((0.55, 0.72, 0.95), "gradient"),
    "ground": ((0.46, 0.37, 0.24), "rough"),
    "grass": ((0.30, 0.55, 0.22), "rough"),
    "water": ((0.16, 0.36, 0.64), "waves"),
    "sand": ((0.82, 0.74, 0.52), "rough"),
    "background": ((0.50, 0.50, 0.50), "smooth"),
}
THING_SHAPES = ("circle", "square", "triangle", "ring", "cross")


@dataclass(frozen=True)
class SceneConfig:
    """What scenes look like. Sizes are in pixels; object sizes are fractions of the shorter side."""

    size: int | tuple[int, int] = 128             # H (= W) or (H, W)
    stuff: tuple[str, ...] = ("sky", "ground", "water")
    things: tuple[str, ...] = ("circle", "square", "triangle")
    min_things: int = 1
    max_things: int = 4
    min_object: float = 0.15                      # object diameter, fraction of min(H, W)
    max_object: float = 0.40
    noise: float = 0.03                           # std of the per-pixel Gaussian noise
    stripes: float = 0.3                          # probability that a thing is striped
    min_visible: int = 20                         # things with fewer visible pixels are not drawn

    def __post_init__(self) -> None:
        h, w = self.hw
        if h < 8 or w < 8:
            raise ValueError(f"size must be at least 8 x 8 pixels, got {self.size!r}")
        if not self.stuff:
            raise ValueError("stuff must name at least one stuff class, e.g. ('background',)")
        for name in self.stuff:
            if name not in STUFF_LOOKS:
                raise ValueError(f"unknown stuff class {name!r}; choose from {', '.join(STUFF_LOOKS)}")
        for name in self.things:
            if name not in THING_SHAPES:
                raise ValueError(f"unknown thing shape {name!r}; choose from {', '.join(THING_SHAPES)}")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"category names must be distinct, got {self.categories}")
        if not 0 <= self.min_things <= self.max_things:
            raise ValueError(f"need 0 <= min_things <= max_things, got {self.min_things}, {self.max_things}")
        if self.max_things and not self.things:
            raise ValueError("max_things > 0 needs at least one thing shape")
        if not 0 < self.min_object <= self.max_object <= 1:
            raise ValueError(f"need 0 < min_object <= max_object <= 1, got {self.min_object}, {self.max_object}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")

    @property
    def hw(self) -> tuple[int, int]:
        if isinstance(self.size, int):
            return self.size, self.size
        h, w = self.size
        return h, w

    @property
    def categories(self) -> tuple[str, ...]:
        """All category names: semantic id ``c`` is ``categories[c]``."""
        return tuple(self.stuff) + tuple(self.things)

    @property
    def num_classes(self) -> int:
        return len(self.stuff) + len(self.things)

    @property
    def thing_ids(self) -> tuple[int, ...]:
        """Semantic ids of the thing categories (detection label ``l`` is semantic id ``l - 1 + len(stuff)``)."""
        return tuple(range(len(self.stuff), self.num_classes))

    @property
    def detection_classes(self) -> tuple[str, ...]:
        """Names by detection label: ``("background", *things)``."""
        return ("background",) + tuple(self.things)


# ---- counter-based random numbers ------------------------------------------------------------
_MASK32 = 0xFFFFFFFF


def _mix(h: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (in int64 arithmetic, no overflow)."""
    h = (((h >> 16) ^ h) * 0x45D9F3B) & _MASK32
    h = (((h >> 16) ^ h) * 0x45D9F3B) & _MASK32
    return (h >> 16) ^ h


def _hash(base: torch.Tensor, *keys: torch.Tensor | int) -> torch.Tensor:
    h = base
    for key in keys:
        h = _mix(h ^ (torch.as_tensor(key, device=base.device) & _MASK32))
    return h


def _uniform(h: torch.Tensor) -> torch.Tensor:
    return (h.double() + 0.5).div_(2.0**32).float()


def _normal(h: torch.Tensor) -> torch.Tensor:
    """Box-Muller on the two 16-bit halves of the hash."""
    u1 = ((h & 0xFFFF).float() + 0.5) / 65536.0
    u2 = ((h >> 16).float() + 0.5) / 65536.0
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


class _Random:
    """Random numbers for a batch of samples; ``stream`` names what they are for."""

    def __init__(self, seed: int, indices: torch.Tensor):
        self.base = _hash(torch.tensor(seed & _MASK32, device=indices.device), seed >> 32, indices)  # B

    def uniform(self, stream: int, n: int) -> torch.Tensor:
        """``B x n`` uniform in [0, 1)."""
        slots = torch.arange(n, device=self.base.device)
        return _uniform(_hash(self.base[:, None], stream, slots[None, :]))

    def normal_field(self, stream: int, shape: tuple[int, ...]) -> torch.Tensor:
        """``B x *shape`` standard normal values, one per element."""
        numel = math.prod(shape)
        flat = torch.arange(numel, device=self.base.device)
        h = _hash(self.base[:, None], stream, flat[None, :])
        return _normal(h).reshape(-1, *shape)


# Streams: one id per use, so adding a use never changes the others.
_S_COUNT, _S_SLOT, _S_STUFF, _S_BLOB, _S_LOWRES, _S_PIXEL = 1, 2, 3, 4, 5, 6


def _smooth_noise(rnd: _Random, stream: int, channels: int, h: int, w: int, cells: int = 6) -> torch.Tensor:
    """Low-frequency noise ``B x C x H x W`` (a coarse grid of normals, bilinearly upsampled)."""
    coarse = rnd.normal_field(stream, (channels, cells, cells))
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


def _hsv_to_rgb(hue: torch.Tensor, sat: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
    """Colours ``(...) -> (..., 3)``."""
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hue * 6.0) % 6.0
        channels.append(val - val * sat * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(channels, -1)


def _shape_mask(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-test in the object's own frame (unit radius)."""
    r2 = u * u + v * v
    if shape == "circle":
        return r2 <= 1.0
    if shape == "square":
        return torch.maximum(u.abs(), v.abs()) <= 0.8
    if shape == "triangle":
        u, v = u / 1.15, v / 1.15 - 0.12
        return (v >= -0.5) & (v <= 1.0 - math.sqrt(3.0) * u.abs())
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.36)
    if shape == "cross":
        return (torch.maximum(u.abs(), v.abs()) <= 0.95) & (torch.minimum(u.abs(), v.abs()) <= 0.32)
    raise ValueError(f"unknown shape {shape!r}")


# ---- rendering -------------------------------------------------------------------------------
def masks_and_boxes(instances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks ``N x H x W`` bool of the instance ids ``1..N`` of an ``H x W`` instance map, and their boxes
    ``N x 4`` float32 XYXY in pixel-edge coordinates (``x2``, ``y2`` exclusive)."""
    n = int(instances.max()) if instances.numel() else 0
    ids = torch.arange(1, n + 1, device=instances.device)
    masks = instances[None] == ids[:, None, None]
    boxes = masks_to_boxes(masks).float() if n else torch.zeros(0, 4, device=masks.device)
    boxes[:, 2:] += 1.0
    return masks, boxes


def select(batch: _Batch, index: torch.Tensor) -> _Batch:
    """The samples at ``index`` of a batch dataclass whose first field is its config and the others tensors
    with the batch first (:class:`Scenes`, :class:`~course_utils.data.figures.Figures`)."""
    _config, *tensors = dataclasses.fields(batch)
    return dataclasses.replace(batch, **{f.name: getattr(batch, f.name)[index] for f in tensors})


@dataclass
class Scenes:
    """A batch of rendered scenes (see the module docstring for the shapes)."""

    config: SceneConfig
    images: torch.Tensor
    semantic: torch.Tensor
    instances: torch.Tensor
    instance_labels: torch.Tensor  # B x max_things, detection label of instance id j+1 (0 = unused)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def panoptic(self) -> torch.Tensor:
        return torch.stack([self.semantic, self.instances], -1)

    def select(self, index: torch.Tensor) -> Scenes:
        """The scenes at ``index`` (a 1-D tensor of positions)."""
        return select(self, index)

    def target(self, i: int) -> dict[str, torch.Tensor]:
        """torchvision-style target of image ``i``: boxes, labels, masks, semantic, panoptic."""
        masks, boxes = masks_and_boxes(self.instances[i])
        n = len(masks)
        return {
            "boxes": boxes,
            "labels": self.instance_labels[i, :n].clone(),
            "masks": masks.to(torch.uint8),
            "semantic": self.semantic[i],
            "panoptic": torch.stack([self.semantic[i], self.instances[i]], -1),   # not self.panoptic[i]: that
            # stacks the whole batch and the view keeps it alive (B x H x W x 2 int64 per target)
        }


def sample_indices(indices: torch.Tensor | range | list[int], seed: int, device: torch.device | str) -> torch.Tensor:
    """The sample numbers of a render call as a 1-D long tensor on ``device`` (checked, with ``seed``): shared by
    :func:`render_scenes` and the stick figures' renderer."""
    idx = torch.as_tensor(list(indices) if isinstance(indices, range) else indices, dtype=torch.long, device=device)
    if idx.ndim != 1:
        raise ValueError(f"indices must be a 1-D list of sample numbers, got shape {tuple(idx.shape)}")
    if idx.numel() and idx.min() < 0:
        raise ValueError("sample indices must be >= 0")
    validation.int_at_least("seed", seed, 0)
    return idx


def render_scenes(config: SceneConfig, indices: torch.Tensor | range | list[int], seed: int = 0,
                  device: torch.device | str = "cpu") -> Scenes:
    """Render the scenes with these sample indices (``B`` of them) on ``device``."""
    idx = sample_indices(indices, seed, device)
    rnd = _Random(seed, idx)
    b, (h, w) = idx.numel(), config.hw
    yy = torch.arange(h, device=device, dtype=torch.float32).add_(0.5)[None, :, None]  # 1 x H x 1
    xx = torch.arange(w, device=device, dtype=torch.float32).add_(0.5)[None, None, :]  # 1 x 1 x W

    semantic = _stuff_layout(config, rnd, yy, xx, b)
    images = _stuff_texture(config, rnd, semantic, yy, xx)
    instances = torch.zeros(b, h, w, dtype=torch.long, device=device)
    instance_labels = torch.zeros(b, max(config.max_things, 1), dtype=torch.long, device=device)
    if config.max_things:
        _draw_things(config, rnd, images, semantic, instances, instance_labels, yy, xx)
    if config.noise:
        images += config.noise * rnd.normal_field(_S_PIXEL, (3, h, w))
    return Scenes(config, images.clamp_(0.0, 1.0), semantic, instances, instance_labels)


class _StuffConfig(Protocol):
    """What the stuff painters read of a config (:class:`SceneConfig`, figures' ``FigureConfig``)."""

    @property
    def hw(self) -> tuple[int, int]: ...
    @property
    def stuff(self) -> tuple[str, ...]: ...


def _stuff_layout(config: _StuffConfig, rnd: _Random, yy: torch.Tensor, xx: torch.Tensor, b: int) -> torch.Tensor:
    """Semantic map of the stuff: stuff[0] above a horizon, stuff[1] below, the rest as blobs."""
    h, w = config.hw
    semantic = torch.zeros(b, h, w, dtype=torch.long, device=yy.device)
    if len(config.stuff) == 1:
        return semantic
    u = rnd.uniform(_S_STUFF, 4)[:, :, None, None]  # B x 4 x 1 x 1
    horizon = h * (0.25 + 0.35 * u[:, 0]) + (u[:, 1] - 0.5) * 0.3 * (xx - w / 2) \
        + 0.03 * h * torch.sin(2 * math.pi * (xx / w * (1 + 2 * u[:, 2]) + u[:, 3]))
    semantic[yy.expand(b, h, w) >= horizon] = 1
    for k in range(2, len(config.stuff)):
        p = rnd.uniform(_S_BLOB + 16 * k, 7)[:, :, None, None]
        present = p[:, 0] < 0.8
        cx, cy = w * (0.15 + 0.7 * p[:, 1]), h * (0.65 + 0.3 * p[:, 2])
        ax, ay = w * (0.2 + 0.25 * p[:, 3]), h * (0.08 + 0.12 * p[:, 4])
        phi = torch.atan2(yy - cy, xx - cx)
        wobble = 1.0 + 0.12 * torch.sin(5 * phi + 2 * math.pi * p[:, 5])
        inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= wobble**2
        semantic[inside & present & (semantic >= 1)] = k
    return semantic


def _stuff_texture(config: _StuffConfig, rnd: _Random, semantic: torch.Tensor,
                   yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    b, h, w = semantic.shape
    images = torch.zeros(b, 3, h, w, device=semantic.device)
    lowres = _smooth_noise(rnd, _S_LOWRES, 3, h, w)                  # B x 3 x H x W
    lowres = 0.8 * lowres.mean(1, keepdim=True) + 0.2 * lowres        # mostly brightness, a little colour
    jitter = rnd.uniform(_S_STUFF + 100, 3 * len(config.stuff)) - 0.5  # B x 3S
    for k, name in enumerate(config.stuff):
        base, kind = STUFF_LOOKS[name]
        colour = torch.tensor(base, device=images.device)[None, :, None, None] \
            + 0.12 * jitter[:, 3 * k:3 * k + 3, None, None]
        if kind == "gradient":
            pattern = 0.25 * (yy / h - 0.5)[None] + 0.03 * lowres
        elif kind == "rough":
            pattern = 0.09 * lowres
        elif kind == "waves":
            phase = 2 * math.pi * (yy / (0.06 * h) + 0.6 * torch.sin(2 * math.pi * xx / (0.7 * w)))
            pattern = 0.07 * torch.sin(phase)[None] + 0.03 * lowres
        else:  # smooth
            pattern = 0.05 * lowres
        layer = colour + pattern
        images = torch.where((semantic == k)[:, None], layer, images)
    return images


def _draw_things(config: SceneConfig, rnd: _Random, images: torch.Tensor, semantic: torch.Tensor,
                 instances: torch.Tensor, instance_labels: torch.Tensor,
                 yy: torch.Tensor, xx: torch.Tensor) -> None:
    """Draw the things in z-order (slot 0 at the bottom), keeping only the visible ones."""
    h, w = config.hw
    m, n_stuff = config.max_things, len(config.stuff)
    spread = config.max_things - config.min_things + 1
    count = config.min_things + (rnd.uniform(_S_COUNT, 1)[:, 0] * spread).long().clamp(max=spread - 1)
    p = rnd.uniform(_S_SLOT, 12 * m).reshape(-1, m, 12)  # B x M x 12 parameters per slot
    side = min(h, w)
    radius = 0.5 * side * (config.min_object + (config.max_object - config.min_object) * p[..., 0])
    cx = w * (0.08 + 0.84 * p[..., 1])
    cy = h * (0.08 + 0.84 * p[..., 2])
    angle = 2 * math.pi * p[..., 3]
    shape = (p[..., 4] * len(config.things)).long().clamp(max=len(config.things) - 1)
    colour = _hsv_to_rgb(p[..., 5], 0.5 + 0.5 * p[..., 6], 0.55 + 0.45 * p[..., 7])  # B x M x 3
    striped = p[..., 8] < config.stripes
    stripe_angle, stripe_period = math.pi * p[..., 9], side * (0.04 + 0.05 * p[..., 10])

    def slot_geometry(j: int) -> tuple[torch.Tensor, torch.Tensor]:
        dx, dy = xx - cx[:, j, None, None], yy - cy[:, j, None, None]
        cos, sin = torch.cos(angle[:, j])[:, None, None], torch.sin(angle[:, j])[:, None, None]
        r = radius[:, j, None, None]
        return (dx * cos + dy * sin) / r, (-dx * sin + dy * cos) / r

    masks = []
    for j in range(m):
        u, v = slot_geometry(j)
        inside = torch.zeros_like(u, dtype=torch.bool)
        for s, name in enumerate(config.things):
            inside |= _shape_mask(name, u, v) & (shape[:, j] == s)[:, None, None]
        masks.append(inside & (j < count)[:, None, None])
    # Top-down pass: what is visible of each slot, and whether it is big enough to keep.
    covered = torch.zeros_like(masks[0])
    keep = torch.zeros(images.shape[0], m, dtype=torch.bool, device=images.device)
    for j in reversed(range(m)):
        visible = masks[j] & ~covered
        keep[:, j] = visible.flatten(1).sum(1) >= config.min_visible
        covered |= masks[j] & keep[:, j, None, None]
    instance_id = keep.long().cumsum(1) * keep  # compact ids 1..n, bottom to top
    # Bottom-up pass: paint the kept things.
    for j in range(m):
        paint = masks[j] & keep[:, j, None, None]
        layer = colour[:, j, :, None, None].expand(-1, -1, h, w)
        if striped[:, j].any():
            dx, dy = xx - cx[:, j, None, None], yy - cy[:, j, None, None]
            t = dx * torch.cos(stripe_angle[:, j])[:, None, None] + dy * torch.sin(stripe_angle[:, j])[:, None, None]
            dark = (torch.sin(2 * math.pi * t / stripe_period[:, j, None, None]) > 0) & striped[:, j, None, None]
            layer = layer * (1.0 - 0.45 * dark[:, None].float())
        images.copy_(torch.where(paint[:, None], layer, images))
        semantic[paint] = (n_stuff + shape[:, j, None, None].expand(-1, h, w))[paint]
        instances[paint] = instance_id[:, j, None, None].expand(-1, h, w)[paint]
    rows = torch.arange(images.shape[0], device=images.device)[:, None].expand(-1, m)
    instance_labels[rows[keep], instance_id[keep] - 1] = shape[keep] + 1


def three_intensity_image(size: int = 128, noise: float = 0.08, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lab 01's toy image: black, grey and white regions plus Gaussian noise.

    Returns:
        image: ``1 x H x W`` float32 (values near 0.1, 0.5 and 0.9, plus noise, clipped to [0, 1]);
        labels: ``H x W`` int64, 0 = black, 1 = grey, 2 = white.
    """
    validation.int_at_least("size", size, 8)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    yy = torch.arange(size, dtype=torch.float32)[:, None] / size
    xx = torch.arange(size, dtype=torch.float32)[None, :] / size
    labels = torch.ones(size, size, dtype=torch.long)                       # grey background
    labels[((xx - 0.68) ** 2 + (yy - 0.38) ** 2) <= 0.22**2] = 2           # white disc
    labels[(xx > 0.12) & (xx < 0.45) & (yy > 0.52) & (yy < 0.88)] = 0     # black square
    levels = torch.tensor([0.1, 0.5, 0.9])
    rnd = _Random(seed, torch.zeros(1, dtype=torch.long))
    image = levels[labels] + noise * rnd.normal_field(_S_PIXEL, (size, size))[0]
    return image.clamp(0.0, 1.0)[None], labels
