"""From a patch classifier to a dense predictor: sliding windows and "convolutionizing".

A classifier that maps a ``C x k x k`` patch to class scores through a ``Linear`` layer on the
flattened patch computes, for every output class, a dot product of the patch with a ``C x k x k``
weight: exactly what a ``k x k`` convolution computes at one position. Turning the ``Linear`` into
that ``Conv2d`` (Long, Shelhamer & Darrell 2015, section 3.1) gives the same scores on a ``k x k``
patch, and a whole map of scores on a larger image, sharing all the computation between overlapping
windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def convolutionize(linear: nn.Linear, in_channels: int, kernel_size: int | tuple[int, int]) -> nn.Conv2d:
    """The ``Conv2d`` (``in_channels -> linear.out_features``, kernel ``kernel_size``, stride 1, no
    padding) that equals ``linear`` applied to flattened ``in_channels x kh x kw`` inputs."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if in_channels * kh * kw != linear.in_features:
        raise ValueError(f"in_channels x kh x kw = {in_channels} x {kh} x {kw} = {in_channels * kh * kw} must "
                         f"equal linear.in_features = {linear.in_features}")
    conv = nn.Conv2d(in_channels, linear.out_features, (kh, kw), bias=linear.bias is not None)
    conv = conv.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, in_channels, kh, kw))
        if linear.bias is not None and conv.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def sliding_window(classifier: nn.Module, image: torch.Tensor, patch: int, batch_size: int = 256) -> torch.Tensor:
    """Classify the ``patch x patch`` window around every pixel (the image zero-padded by
    ``patch // 2``): ``C x H x W`` image -> ``K x H x W`` scores, one forward per pixel (in batches)."""
    if image.ndim != 3:
        raise ValueError(f"image must be C x H x W, got shape {tuple(image.shape)}")
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd (a window centred on the pixel), got {patch}")
    c, h, w = image.shape
    padded = F.pad(image[None], [patch // 2] * 4)
    windows = F.unfold(padded, patch)[0].T.reshape(h * w, c, patch, patch)      # (H*W) x C x p x p
    scores = torch.cat([classifier(windows[i:i + batch_size]) for i in range(0, h * w, batch_size)])
    return scores.T.reshape(-1, h, w)


def random_patches(images: torch.Tensor, masks: torch.Tensor, patch: int, n: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random ``patch x patch`` windows (zero-padded at the border) and the label of each
    window's centre pixel: the training data of a patch classifier (``B x 3 x H x W``, ``B x H x W``
    -> ``n x 3 x patch x patch``, ``n``)."""
    if images.ndim != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"expected images B x C x H x W and masks B x H x W, got {tuple(images.shape)} "
                         f"and {tuple(masks.shape)}")
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd (a window centred on the pixel), got {patch}")
    b, _, h, w = images.shape
    which = torch.randint(b, (n,), generator=generator)
    ys, xs = torch.randint(h, (n,), generator=generator), torch.randint(w, (n,), generator=generator)
    padded = F.pad(images, [patch // 2] * 4)
    offsets = torch.arange(patch)
    rows = (ys[:, None] + offsets)[:, :, None].expand(n, patch, patch)
    cols = (xs[:, None] + offsets)[:, None, :].expand(n, patch, patch)
    windows = padded[which[:, None, None], :, rows, cols]          # n x p x p x C
    return windows.permute(0, 3, 1, 2).contiguous(), masks[which, ys, xs]
