"""Selective-search-style region proposals (Uijlings et al. 2013), the lab-05 reference.

1. Over-segment the image into superpixels with skimage's graph-based ``felzenszwalb`` (at a few
   ``scales``: more scales, more diverse proposals).
2. Greedy hierarchical grouping: repeatedly merge the two *neighbouring* regions that are most similar,
   with similarity = colour + size + fill, each in [0, 1]:

   - colour: intersection of the regions' L1-normalised colour histograms (25 bins per channel);
   - size: ``1 - (size_i + size_j) / size_image``, so small regions merge first;
   - fill: ``1 - (size of their joint bounding box - size_i - size_j) / size_image``, so regions that
     fill each other's gaps merge first.

3. Every region made along the way (superpixels and merges) proposes its bounding box.

Boxes are ``K x 4`` float32 XYXY in pixel-edge coordinates (a region covering columns 3..5 spans
``x 3..6``), as the course's scenes give their ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from course_utils import validation
from course_utils.structures.boxes import box_iou

BINS = 25


def _as_hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """``H x W x 3`` float64 in [0, 1] from a ``3 x H x W`` tensor or an ``H x W x 3`` array."""
    if isinstance(image, torch.Tensor):
        validation.tensor("image", image, ndim=3, dtypes="float")
        if image.shape[0] != 3:
            raise ValueError(f"image tensors must be 3 x H x W (RGB), got shape {tuple(image.shape)}")
        image = image.detach().cpu().permute(1, 2, 0).numpy()
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be a 3 x H x W tensor or an H x W x 3 array, got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    image = image.astype(np.float64)
    return image / 255.0 if image.max() > 1.0 else image


def superpixel_regions(labels: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, set]:
    """Per superpixel: boxes ``R x 4`` (XYXY pixel edges), sizes ``R``, colour histograms ``R x 75`` and the
    set of neighbouring pairs ``(i, j)``, ``i < j``."""
    h, w = labels.shape
    r = int(labels.max()) + 1
    rows, cols = np.mgrid[0:h, 0:w]
    flat = labels.ravel()
    boxes = np.stack([np.full(r, w), np.full(r, h), np.zeros(r), np.zeros(r)], 1).astype(np.float64)
    np.minimum.at(boxes[:, 0], flat, cols.ravel())
    np.minimum.at(boxes[:, 1], flat, rows.ravel())
    np.maximum.at(boxes[:, 2], flat, cols.ravel() + 1)
    np.maximum.at(boxes[:, 3], flat, rows.ravel() + 1)
    sizes = np.bincount(flat, minlength=r).astype(np.float64)
    bins = np.minimum((image * BINS).astype(np.int64), BINS - 1)                    # H x W x 3
    keys = flat[:, None] * (3 * BINS) + np.arange(3) * BINS + bins.reshape(-1, 3)
    hist = np.bincount(keys.ravel(), minlength=r * 3 * BINS).reshape(r, 3 * BINS).astype(np.float64)
    hist /= hist.sum(1, keepdims=True)
    pairs = np.concatenate([np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, 1), axis=0)
    return boxes, sizes, hist, {(int(a), int(b)) for a, b in pairs}


def group_regions(boxes: np.ndarray, sizes: np.ndarray, hist: np.ndarray, neighbours: set,
                  image_size: float) -> np.ndarray:
    """Greedy hierarchical grouping; returns the boxes of all regions, superpixels first, ``(2R - 1) x 4``
    (fewer if the image has several unconnected parts)."""
    all_boxes, all_sizes, all_hist = list(boxes), list(sizes), list(hist)
    adjacent: dict[int, set] = {i: set() for i in range(len(all_sizes))}
    for a, b in neighbours:
        adjacent[a].add(b)
        adjacent[b].add(a)

    def similarity(i: int, j: int) -> float:
        colour = np.minimum(all_hist[i], all_hist[j]).sum() / 3.0
        size = 1.0 - (all_sizes[i] + all_sizes[j]) / image_size
        bi, bj = all_boxes[i], all_boxes[j]
        joint = (max(bi[2], bj[2]) - min(bi[0], bj[0])) * (max(bi[3], bj[3]) - min(bi[1], bj[1]))
        fill = 1.0 - (joint - all_sizes[i] - all_sizes[j]) / image_size
        return colour + size + fill

    sims = {(a, b): similarity(a, b) for a, b in neighbours}
    while sims:
        i, j = max(sims, key=sims.__getitem__)
        t = len(all_sizes)
        all_sizes.append(all_sizes[i] + all_sizes[j])
        all_hist.append((all_sizes[i] * all_hist[i] + all_sizes[j] * all_hist[j]) / all_sizes[t])
        lo, hi = np.minimum(all_boxes[i][:2], all_boxes[j][:2]), np.maximum(all_boxes[i][2:], all_boxes[j][2:])
        all_boxes.append(np.concatenate([lo, hi]))
        around = (adjacent.pop(i) | adjacent.pop(j)) - {i, j}
        for k in (i, j):
            for n in around:
                sims.pop((min(k, n), max(k, n)), None)
        sims.pop((min(i, j), max(i, j)), None)
        adjacent[t] = around
        for n in around:
            adjacent[n] -= {i, j}
            adjacent[n].add(t)
            sims[(n, t)] = similarity(n, t)
    return np.asarray(all_boxes, dtype=np.float64).reshape(-1, 4)


def selective_search(image: np.ndarray | torch.Tensor, scales: Sequence[float] = (50, 150, 400), sigma: float = 0.8,
                     min_size: int = 10, min_box: int = 4) -> torch.Tensor:
    """Proposals ``K x 4`` float32 XYXY for an RGB ``image`` (``3 x H x W`` tensor or ``H x W x 3`` array).

    ``scales`` are felzenszwalb's ``scale`` (larger: bigger superpixels), ``sigma`` its pre-smoothing,
    ``min_size`` its smallest superpixel; boxes narrower or lower than ``min_box`` pixels are dropped,
    duplicates too. Boxes come by hierarchy, the largest regions (last merges) first.
    """
    from skimage.segmentation import felzenszwalb

    rgb = _as_hwc(image)
    validation.number("sigma", sigma, minimum=0)
    validation.integer("min_size", min_size, minimum=1)
    validation.integer("min_box", min_box, minimum=0)
    found = []
    for scale in scales:
        validation.number("scale", scale, minimum=0, strict_minimum=True)
        labels = felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1)
        boxes, sizes, hist, neighbours = superpixel_regions(labels, rgb)
        found.append(group_regions(boxes, sizes, hist, neighbours, float(labels.size))[::-1])
    boxes = np.concatenate(found)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_box) & ((boxes[:, 3] - boxes[:, 1]) >= min_box)
    boxes = boxes[keep]
    _, first = np.unique(boxes, axis=0, return_index=True)
    return torch.as_tensor(boxes[np.sort(first)], dtype=torch.float32)


def proposal_recall(proposals: torch.Tensor | Sequence[torch.Tensor], gt_boxes: torch.Tensor | Sequence[torch.Tensor],
                    iou: float = 0.5) -> float:
    """Fraction of ground-truth boxes that some proposal overlaps with IoU ``>= iou``.

    One image (``K x 4`` and ``M x 4`` tensors) or several (two lists, pooled over all their ground-truth
    boxes). No ground-truth box at all gives 1.0 (nothing was missed).
    """
    iou = validation.number("iou", iou, minimum=0, maximum=1)
    if isinstance(proposals, torch.Tensor) and isinstance(gt_boxes, torch.Tensor):
        proposals, gt_boxes = [proposals], [gt_boxes]
    elif isinstance(proposals, torch.Tensor) or isinstance(gt_boxes, torch.Tensor):
        raise TypeError("give proposals and gt_boxes both as tensors (one image) or both as lists (one per image)")
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"need one proposal tensor per image: {len(proposals)} and {len(gt_boxes)} given")
    found = total = 0
    for k, (p, g) in enumerate(zip(proposals, gt_boxes)):
        validation.boxes(f"proposals[{k}]", p)
        validation.boxes(f"gt_boxes[{k}]", g)
        total += len(g)
        if len(g) and len(p):
            found += int((box_iou(g, p.to(g.dtype)).amax(1) >= iou).sum())
    return found / total if total else 1.0
