"""Anchors for a feature grid, with torchvision ``AnchorGenerator``'s conventions (lab 05).

- base anchors: for each aspect ratio ``r = h / w`` and size ``s``: ``w = s / sqrt(r)``, ``h = s * sqrt(r)``,
  centred on 0 and **rounded** to whole pixels; ratio-major order (``index = r_i * len(sizes) + s_i``);
- the grid cell ``(i, j)`` of a map with stride ``(sy, sx)`` shifts them by ``(j * sx, i * sy)``: the
  centres sit at ``k * stride`` (no half-cell offset, unlike SSD's default boxes);
- anchors are listed row by row over the grid, then by base anchor: ``(H * W * A) x 4`` XYXY.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_utils import validation


def base_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float],
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``A = len(aspect_ratios) * len(sizes)`` anchors around the origin, ``A x 4`` XYXY, rounded."""
    validation.positive_numbers("sizes", sizes)
    validation.positive_numbers("aspect_ratios", aspect_ratios)
    scales = torch.as_tensor(sizes, dtype=dtype)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


def grid_anchors(grid_size: tuple[int, int], stride: tuple[int, int], sizes: Sequence[float],
                 aspect_ratios: Sequence[float], dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """All anchors of one feature map: ``(H * W * A) x 4`` XYXY for ``grid_size = (H, W)``.

    ``stride = (sy, sx)`` is the image size divided by the grid size (integer division, as
    torchvision computes it from the padded batch).
    """
    gh, gw = validation.size_pair("grid_size", grid_size)
    sy, sx = validation.size_pair("stride", stride)
    base = base_anchors(sizes, aspect_ratios, dtype).to(device)                  # A x 4
    shifts_x = torch.arange(gw, dtype=torch.int64, device=device) * sx
    shifts_y = torch.arange(gh, dtype=torch.int64, device=device) * sy
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)            # HW x 4
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4).to(dtype)


def anchors_for_image(image_size: tuple[int, int], feature_sizes: Sequence[tuple[int, int]],
                      sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[Sequence[float]],
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Anchors of every feature map of one (padded) image, concatenated level by level: ``sum_l H_l W_l A_l x 4``.

    Equals one image's entry of ``AnchorGenerator(sizes, aspect_ratios)(image_list, features)`` when
    ``image_size`` is the padded batch size ``image_list.tensors.shape[-2:]``.
    """
    ih, iw = validation.size_pair("image_size", image_size)
    if not (len(feature_sizes) == len(sizes) == len(aspect_ratios)):
        raise ValueError(f"need one entry of sizes and aspect_ratios per feature map, got {len(feature_sizes)} "
                         f"feature maps, {len(sizes)} sizes and {len(aspect_ratios)} aspect_ratios")
    out = []
    for level, (fs, s, r) in enumerate(zip(feature_sizes, sizes, aspect_ratios)):
        gh, gw = validation.size_pair(f"feature_sizes[{level}]", fs)
        out.append(grid_anchors((gh, gw), (ih // gh, iw // gw), s, r, dtype))
    return torch.cat(out)
