"""Lab 07 (Mask R-CNN): correct implementations that differ from the course's references (another loop
order, float64 inside, F.grid_sample instead of RoIAlign, numpy, the student's lab-05 RoIAlign): each must
pass its check on 100 seeds (a check must never reject a correct answer)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from _student import student_module
from mutants import Collection

from course_utils.ops import roi_ops

roi = student_module(roi_ops)  # the course's lab-05 RoIAlign, as a student's copy of it

PROBES = Collection()


# ---- 07.mask_targets -------------------------------------------------------------------------
@PROBES.add("07.mask_targets", "torchvision.ops.roi_align one proposal at a time, on its own mask")
def targets_roi_align_loop(gt_masks, boxes, matched_idxs, M):
    out = boxes.new_zeros(len(boxes), M, M)
    for k in range(len(boxes)):
        mask = gt_masks[matched_idxs[k]][None, None].to(boxes.dtype)
        out[k] = torchvision.ops.roi_align(mask, [boxes[k:k + 1]], M, 1.0, -1, False)[0, 0]
    return out


@PROBES.add("07.mask_targets",
            "the student's lab-05 roi_align (the course's Python RoIAlign), a list of boxes per mask")
def targets_lab05_roi_align(gt_masks, boxes, matched_idxs, M):
    per_mask = [boxes[matched_idxs == g] for g in range(len(gt_masks))]
    pooled = roi.roi_align(gt_masks[:, None].to(boxes.dtype), per_mask, M)[:, 0]
    order = torch.cat([torch.nonzero(matched_idxs == g)[:, 0] for g in range(len(gt_masks))])
    out = boxes.new_zeros(len(boxes), M, M)
    out[order] = pooled
    return out


def _samples(lo: torch.Tensor, size: torch.Tensor, m: int) -> tuple[torch.Tensor, int]:
    """Sample positions (float64) along one axis of one box: m bins, ceil(size / m) samples each."""
    n = max(math.ceil(float(size) / m), 1)
    i = torch.arange(m, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    return (lo + i * size / m + (j + 0.5) * size / m / n).reshape(-1), n


@PROBES.add("07.mask_targets", "F.grid_sample in float64 (border padding, zeroed beyond a pixel outside), per box")
def targets_grid_sample(gt_masks, boxes, matched_idxs, M):
    h, w = gt_masks.shape[1:]
    out = []
    for box, g in zip(boxes.double(), matched_idxs.tolist()):
        x1, y1 = box[0], box[1]
        bw, bh = (box[2] - box[0]).clamp(min=1), (box[3] - box[1]).clamp(min=1)
        xs, nx = _samples(x1, bw, M)
        ys, ny = _samples(y1, bh, M)
        inside = ((ys >= -1) & (ys <= h))[:, None] & ((xs >= -1) & (xs <= w))[None, :]
        gx = (xs.clamp(min=0) / max(w - 1, 1)) * 2 - 1            # align_corners=True: -1 and 1 at pixel centres
        gy = (ys.clamp(min=0) / max(h - 1, 1)) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
        mask = gt_masks[g][None, None].double()
        values = F.grid_sample(mask, grid, mode="bilinear", padding_mode="border", align_corners=True)[0, 0]
        values = values * inside
        out.append(values.reshape(M, ny, M, nx).mean((1, 3)))
    return torch.stack(out).to(boxes.dtype) if out else boxes.new_zeros(0, M, M)


# ---- 07.mask_loss ----------------------------------------------------------------------------
@PROBES.add("07.mask_loss", "max(x, 0) - x t + log1p(exp(-|x|)) by hand in float64, channel picked with gather")
def loss_by_hand_float64(mask_logits, mask_targets, labels):
    k, _, m, m2 = mask_logits.shape
    index = labels[:, None, None, None].expand(k, 1, m, m2)
    x = mask_logits.gather(1, index)[:, 0].double()
    t = mask_targets.double()
    per_pixel = x.clamp(min=0) - x * t + torch.log1p(torch.exp(-x.abs()))
    if per_pixel.numel() == 0:
        return mask_logits.sum() * 0
    return per_pixel.mean().to(mask_logits.dtype)


@PROBES.add("07.mask_loss", "a loop over the RoIs with logsigmoid, summed and divided by K * M * M")
def loss_loop_logsigmoid(mask_logits, mask_targets, labels):
    total = mask_logits.sum() * 0
    for k in range(len(labels)):
        x, t = mask_logits[k, labels[k]], mask_targets[k]
        total = total - (t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x)).sum()
    return total / max(mask_targets.numel(), 1)


@PROBES.add("07.mask_loss", "a one-hot mask over the channels, F.binary_cross_entropy_with_logits(reduction='none')")
def loss_one_hot_selection(mask_logits, mask_targets, labels):
    chosen = F.one_hot(labels, mask_logits.shape[1]).to(mask_logits.dtype)[:, :, None, None]   # K x C x 1 x 1
    per_pixel = F.binary_cross_entropy_with_logits(mask_logits, mask_targets[:, None].expand_as(mask_logits),
                                                   reduction="none")
    return (per_pixel * chosen).sum() / max(mask_targets.numel(), 1)


# ---- 07.paste_masks --------------------------------------------------------------------------
def _grown(boxes: torch.Tensor, m: int) -> torch.Tensor:
    scale = (m + 2) / m
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * scale
    centre = (boxes[:, 2:] + boxes[:, :2]) / 2
    return torch.cat([centre - half, centre + half], 1).trunc().long()


@PROBES.add("07.paste_masks", "float64 inside (box growth and resize), written in another order")
def paste_float64(masks, boxes, image_size, threshold=0.5):
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    padded = F.pad(masks.double(), (1, 1, 1, 1))
    out = torch.zeros(len(masks), h, w, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(_grown(boxes.double(), masks.shape[-1]).tolist()):
        big = F.interpolate(padded[i][None, None], size=(max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)), mode="bilinear",
                            align_corners=False)[0, 0] > threshold
        canvas = torch.zeros(h + 2 * big.shape[0] + 2, w + 2 * big.shape[1] + 2, dtype=torch.bool)
        oy, ox = big.shape[0] + 1, big.shape[1] + 1                      # a canvas large enough for any box
        if -oy <= y1 and y1 + big.shape[0] <= h + oy and -ox <= x1 and x1 + big.shape[1] <= w + ox:
            canvas[oy + y1:oy + y1 + big.shape[0], ox + x1:ox + x1 + big.shape[1]] = big
        out[i] = canvas[oy:oy + h, ox:ox + w]
    return out


@PROBES.add("07.paste_masks", "vectorised: every image pixel looks up its source point with F.grid_sample")
def paste_grid_sample(masks, boxes, image_size, threshold=0.5):
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    n, m = masks.shape[0], masks.shape[-1]
    if n == 0:
        return torch.zeros(0, h, w, dtype=torch.bool)
    padded = F.pad(masks, (1, 1, 1, 1))[:, None]                           # N x 1 x (M + 2) x (M + 2)
    g = _grown(boxes, m)
    x1, y1, x2, y2 = (g[:, i, None].to(masks.dtype) for i in range(4))
    bw, bh = (x2 - x1 + 1).clamp(min=1), (y2 - y1 + 1).clamp(min=1)
    xs = torch.arange(w, dtype=masks.dtype)[None, :]
    ys = torch.arange(h, dtype=masks.dtype)[None, :]
    # F.interpolate (align_corners=False) reads output pixel j of a size-b resize at source
    # (j + 0.5) * (M + 2) / b - 0.5;
    # grid_sample (align_corners=False) wants that point normalised as ((j + 0.5) / b) * 2 - 1, clamped at the edges
    gx = (((xs - x1 + 0.5) / bw) * 2 - 1).clamp(-1 + 1 / (m + 2), 1 - 1 / (m + 2))   # N x W
    gy = (((ys - y1 + 0.5) / bh) * 2 - 1).clamp(-1 + 1 / (m + 2), 1 - 1 / (m + 2))   # N x H
    grid = torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], -1)
    values = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
    inside = ((xs >= x1) & (xs < x1 + bw))[:, None, :] & ((ys >= y1) & (ys < y1 + bh))[:, :, None]
    return (values * inside) > threshold


# ---- 07.keypoint_targets ---------------------------------------------------------------------
@PROBES.add("07.keypoint_targets", "a Python loop per keypoint with math.floor (float64 arithmetic)")
def kp_loop(keypoints, rois, heatmap_size):
    k, j = keypoints.shape[:2]
    heatmaps = torch.zeros(k, j, dtype=torch.int64)
    valid = torch.zeros(k, j, dtype=torch.int64)
    for r in range(k):
        x1, y1, x2, y2 = rois[r].tolist()
        for p in range(j):
            x, y, v = keypoints[r, p].tolist()
            col = heatmap_size - 1 if x == x2 else math.floor((x - x1) * heatmap_size / (x2 - x1))
            row = heatmap_size - 1 if y == y2 else math.floor((y - y1) * heatmap_size / (y2 - y1))
            if v > 0 and 0 <= col < heatmap_size and 0 <= row < heatmap_size:
                heatmaps[r, p], valid[r, p] = row * heatmap_size + col, 1
    return heatmaps, valid


@PROBES.add("07.keypoint_targets", "numpy, float64, the cell by floor division of the offset by the cell size")
def kp_numpy(keypoints, rois, heatmap_size):
    kp, r = keypoints.double().numpy(), rois.double().numpy()
    s = heatmap_size
    cell_w, cell_h = (r[:, 2] - r[:, 0])[:, None] / s, (r[:, 3] - r[:, 1])[:, None] / s
    col = np.floor_divide(kp[..., 0] - r[:, None, 0], cell_w).astype(np.int64)
    row = np.floor_divide(kp[..., 1] - r[:, None, 1], cell_h).astype(np.int64)
    col[kp[..., 0] == r[:, None, 2]] = s - 1
    row[kp[..., 1] == r[:, None, 3]] = s - 1
    valid = (col >= 0) & (col < s) & (row >= 0) & (row < s) & (kp[..., 2] > 0)
    return torch.from_numpy(np.where(valid, row * s + col, 0)), torch.from_numpy(valid.astype(np.int64))


# ---- 07.mask_iou -----------------------------------------------------------------------------
@PROBES.add("07.mask_iou", "a loop over the pairs with logical_and / logical_or")
def iou_pair_loop(masks1, masks2):
    out = torch.zeros(len(masks1), len(masks2))
    for i, a in enumerate(masks1.bool()):
        for j, b in enumerate(masks2.bool()):
            union = int((a | b).sum())
            out[i, j] = int((a & b).sum()) / union if union else 0.0
    return out


@PROBES.add("07.mask_iou", "broadcast bool masks N x M x H x W, counts in int64, float64 division")
def iou_broadcast(masks1, masks2):
    a, b = masks1.bool()[:, None], masks2.bool()[None]
    inter = (a & b).sum((2, 3))
    union = (a | b).sum((2, 3))
    return torch.where(union > 0, inter.double() / union.clamp(min=1), 0.0).float()


@PROBES.add("07.mask_iou", "numpy einsum of the flattened masks")
def iou_numpy(masks1, masks2):
    pixels = masks1.shape[1] * masks1.shape[2]
    a = masks1.numpy().reshape(len(masks1), pixels).astype(np.float64)
    b = masks2.numpy().reshape(len(masks2), pixels).astype(np.float64)
    inter = np.einsum("np,mp->nm", a, b)
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return torch.from_numpy(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0).astype(np.float32))
