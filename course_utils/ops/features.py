"""Pixel features for clustering (lab 01): intensity or colour, optionally with position."""

from __future__ import annotations

import torch

from course_utils import validation

# ITU-R BT.709 luma weights, as skimage.color.rgb2gray uses.
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)


def pixel_features(image: torch.Tensor, mode: str = "rgb", position_weight: float = 0.0) -> torch.Tensor:
    """One feature row per pixel, in row-major order.

    Args:
        image: ``C x H x W`` float, C = 1 (grey) or 3 (RGB).
        mode: ``"intensity"`` (1 column: the grey level, ``skimage.color.rgb2gray`` for RGB) or
            ``"rgb"`` (3 columns; a grey image is repeated).
        position_weight: if > 0, two more columns ``x * w`` and ``y * w`` with ``x = col / (W - 1)``
            and ``y = row / (H - 1)`` in [0, 1] (0 for a single column/row).

    Returns:
        ``(H * W) x D`` float tensor, D = 1 or 3, plus 2 with position.
    """
    validation.tensor("image", image, ndim=3, dtypes="float")
    c, h, w = image.shape
    if c not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels (C x H x W), got shape {tuple(image.shape)}")
    if mode not in ("intensity", "rgb"):
        raise ValueError(f"mode must be 'intensity' or 'rgb', got {mode!r}")
    if position_weight < 0:
        raise ValueError(f"position_weight must be >= 0, got {position_weight}")
    if mode == "intensity":
        weights = torch.tensor(GRAY_WEIGHTS, dtype=image.dtype, device=image.device)
        grey = image[0] if c == 1 else torch.einsum("c,chw->hw", weights, image)
        features = grey.reshape(-1, 1)
    else:
        features = image.expand(3, h, w).reshape(3, -1).T
    if position_weight > 0:
        ys = torch.arange(h, dtype=image.dtype, device=image.device) / max(h - 1, 1)
        xs = torch.arange(w, dtype=image.dtype, device=image.device) / max(w - 1, 1)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        features = torch.cat([features, position_weight * xx.reshape(-1, 1), position_weight * yy.reshape(-1, 1)], 1)
    return features
