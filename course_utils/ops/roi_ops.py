"""RoI pooling (Fast R-CNN) and RoIAlign (Mask R-CNN) by hand: lab-05 references for
``torchvision.ops.roi_pool`` / ``roi_align``.

Both cut a fixed ``C x PH x PW`` grid of features out of ``features`` ``B x C x H x W`` for each box,
given as ``K x 5`` rows ``(batch index, x1, y1, x2, y2)`` in image coordinates or as a list of ``K_i x 4``
boxes per image; ``spatial_scale`` maps image to feature coordinates (1/16 for a stride-16 map).

- RoI pooling rounds the box to feature cells, splits it into ``PH x PW`` bins with floor/ceil and
  takes the max of each bin (empty bins give 0): the rounding is its quantisation error.
- RoIAlign keeps the box real-valued, averages ``sampling_ratio^2`` bilinear samples per bin
  (``sampling_ratio <= 0``: adaptively ``ceil(bin size)`` per RoI) and with ``aligned=True`` shifts the
  box by half a pixel so that pixel centres sit at ``i + 0.5`` (detectron2's correction).
"""

from __future__ import annotations

import math

import torch

from course_utils import validation


def _rois(boxes: torch.Tensor | list[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """``K x 5`` rois from either box layout."""
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            validation.boxes(f"boxes[{i}]", b)
        if len(boxes) != features.shape[0]:
            raise ValueError(f"need one box tensor per image: {features.shape[0]} images, {len(boxes)} box tensors")
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)]) \
            if boxes else features.new_zeros(0, 5)
    else:
        validation.tensor("boxes", boxes, ndim=2, dtypes="float")
        if boxes.shape[1] != 5:
            raise ValueError(f"boxes must be K x 5 rows (batch index, x1, y1, x2, y2) or a list of K_i x 4, "
                             f"got shape {tuple(boxes.shape)}")
        rois = boxes
    if rois.dtype != features.dtype:
        raise TypeError(f"boxes and features must have the same dtype, got {rois.dtype} and {features.dtype}")
    index = rois[:, 0]
    if rois.numel() and ((index != index.round()) | (index < 0) | (index >= features.shape[0])).any():
        raise ValueError(f"batch indices (column 0) must be whole numbers in 0..{features.shape[0] - 1}")
    return rois


def _args(features: torch.Tensor, output_size: int | tuple[int, int], spatial_scale: float) -> tuple[int, int, float]:
    validation.images("features", features)
    ph, pw = validation.size_pair("output_size", output_size, square=True)
    return ph, pw, validation.number("spatial_scale", spatial_scale, minimum=0, strict_minimum=True)


def _c_round(x: torch.Tensor) -> torch.Tensor:
    """C's ``round``: halves away from zero (``torch.round`` rounds them to even)."""
    x = x.double()
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def roi_pool(features: torch.Tensor, boxes: torch.Tensor | list[torch.Tensor],
             output_size: int | tuple[int, int], spatial_scale: float = 1.0) -> torch.Tensor:
    """Max-pool each RoI to ``output_size``: ``K x C x PH x PW``. Same as ``torchvision.ops.roi_pool``."""
    ph, pw, scale = _args(features, output_size, spatial_scale)
    rois = _rois(boxes, features)
    _, c, h, w = features.shape
    out = features.new_zeros(rois.shape[0], c, ph, pw)
    scale_t = torch.tensor(scale, dtype=features.dtype)
    for k, roi in enumerate(rois.detach().cpu()):
        x1, y1, x2, y2 = _c_round(roi[1:] * scale_t).long().tolist()
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bin_h = torch.tensor(roi_h, dtype=features.dtype) / ph
        bin_w = torch.tensor(roi_w, dtype=features.dtype) / pw
        r = torch.arange(ph + 1, dtype=features.dtype)
        q = torch.arange(pw + 1, dtype=features.dtype)
        hs = (torch.floor(r[:-1] * bin_h).long() + y1).clamp(0, h)
        he = (torch.ceil(r[1:] * bin_h).long() + y1).clamp(0, h)
        ws = (torch.floor(q[:-1] * bin_w).long() + x1).clamp(0, w)
        we = (torch.ceil(q[1:] * bin_w).long() + x1).clamp(0, w)
        rows = torch.arange(h)
        cols = torch.arange(w)
        in_row = ((rows >= hs[:, None]) & (rows < he[:, None])).to(features.device)   # PH x H
        in_col = ((cols >= ws[:, None]) & (cols < we[:, None])).to(features.device)   # PW x W
        fmap = features[int(roi[0])]                                                   # C x H x W
        neg = torch.tensor(-math.inf, dtype=features.dtype, device=features.device)
        by_row = torch.where(in_row[None, :, :, None], fmap[:, None], neg).amax(2)     # C x PH x W
        pooled = torch.where(in_col[None, None], by_row[:, :, None], neg).amax(3)      # C x PH x PW
        empty = ((he <= hs)[:, None] | (we <= ws)[None, :]).to(features.device)
        out[k] = torch.where(empty, torch.zeros_like(pooled), pooled)
    return out


def _bilinear(fmap: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Samples ``C x len(y) x len(x)`` of ``fmap`` ``C x H x W`` at rows ``y`` and columns ``x`` (pixel
    centres at integers), 0 outside ``[-1, H] x [-1, W]``, edge values within a pixel of the border."""
    _, h, w = fmap.shape

    def axis(t: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        valid = (t >= -1.0) & (t <= size)
        t = t.clamp(min=0)
        low = t.long()                         # truncation = floor for t >= 0
        edge = low >= size - 1
        low = torch.where(edge, torch.full_like(low, size - 1), low)
        high = torch.where(edge, low, low + 1)
        t = torch.where(edge, low.to(t.dtype), t)
        frac = t - low.to(t.dtype)
        return low, high, frac, valid

    y_lo, y_hi, ly, vy = axis(y, h)
    x_lo, x_hi, lx, vx = axis(x, w)
    hy, hx = 1 - ly, 1 - lx
    v = ((hy[:, None] * hx[None, :]) * fmap[:, y_lo][:, :, x_lo]
         + (hy[:, None] * lx[None, :]) * fmap[:, y_lo][:, :, x_hi]
         + (ly[:, None] * hx[None, :]) * fmap[:, y_hi][:, :, x_lo]
         + (ly[:, None] * lx[None, :]) * fmap[:, y_hi][:, :, x_hi])
    return v * (vy[:, None] & vx[None, :])


def roi_align(features: torch.Tensor, boxes: torch.Tensor | list[torch.Tensor], output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """Average of bilinear samples per bin: ``K x C x PH x PW``. Same as ``torchvision.ops.roi_align``."""
    ph, pw, scale = _args(features, output_size, spatial_scale)
    sampling_ratio = validation.integer("sampling_ratio", sampling_ratio)
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be True or False, got {aligned!r}")
    rois = _rois(boxes, features)
    dt = features.dtype
    out = features.new_zeros(rois.shape[0], features.shape[1], ph, pw)
    offset = 0.5 if aligned else 0.0
    for k, roi in enumerate(rois.detach().cpu()):
        x1, y1, x2, y2 = (roi[1:] * torch.tensor(scale, dtype=dt) - offset).unbind()
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:                                # legacy: force RoIs to be at least 1 x 1
            roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
        bin_h, bin_w = roi_h / ph, roi_w / pw
        grid_h = sampling_ratio if sampling_ratio > 0 else max(math.ceil(float(roi_h / ph)), 0)
        grid_w = sampling_ratio if sampling_ratio > 0 else max(math.ceil(float(roi_w / pw)), 0)
        if grid_h == 0 or grid_w == 0:
            continue                                   # no samples: the bins stay 0
        iy = torch.arange(grid_h, dtype=dt)
        ix = torch.arange(grid_w, dtype=dt)
        ys = (y1 + torch.arange(ph, dtype=dt)[:, None] * bin_h + (iy[None, :] + 0.5) * bin_h / grid_h).reshape(-1)
        xs = (x1 + torch.arange(pw, dtype=dt)[:, None] * bin_w + (ix[None, :] + 0.5) * bin_w / grid_w).reshape(-1)
        samples = _bilinear(features[int(roi[0])], ys.to(features.device), xs.to(features.device))
        c = samples.shape[0]
        out[k] = samples.reshape(c, ph, grid_h, pw, grid_w).sum((2, 4)) / (grid_h * grid_w)
    return out
