"""The mask head of Mask R-CNN (He et al. 2017), by hand: the lab-07 references for torchvision's
``roi_heads.project_masks_on_boxes``, ``maskrcnn_loss`` and ``paste_masks_in_image``, and the IoU of
binary masks that COCO's mask AP uses (pycocotools' ``mask.iou``).

- :func:`mask_targets`: each positive proposal's training target is its ground-truth instance mask
  cropped to the proposal and resized to ``M x M``: a RoIAlign of the mask (``aligned=False``,
  adaptive sampling), soft values at the mask's edges;
- :func:`mask_loss`: per-pixel binary cross-entropy with logits on the ground-truth class's channel
  only (one sigmoid mask per class, no competition between classes), mean over pixels and RoIs;
- :func:`paste_masks`: the ``M x M`` probabilities of each detection pasted back into its box in the
  full image and thresholded; torchvision first pads the map with a ring of zeros and grows the box
  by the same factor (so that the mask can fade out at the box's border), then truncates the box to
  whole pixels and resizes the map bilinearly to the box's ``w + 1`` by ``h + 1`` pixels;
- :func:`mask_iou`: ``N x M`` IoU of two sets of binary masks (0 where the union is empty, as
  pycocotools' ``rleIou``).

``tests/test_lab07.py`` holds each equal to torchvision's / pycocotools' on fixed and random inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from course_utils import validation
from course_utils.structures.boxes import check_xyxy

#: the ring of zeros torchvision's ``paste_masks_in_image`` adds around each map (its ``padding=1``)
PASTE_PADDING = 1


def _real(name: str, value: object, ndim: int) -> torch.Tensor:
    value = validation.tensor(name, value, ndim=ndim)
    if value.is_complex():
        raise TypeError(f"{name} must be a real (bool, integer or floating-point) tensor, got {value.dtype}")
    return value


def mask_targets(gt_masks: torch.Tensor, boxes: torch.Tensor, matched_idxs: torch.Tensor, M: int) -> torch.Tensor:
    """The mask head's targets: ``K x M x M``, in ``boxes``' dtype, values in ``[0, 1]``.

    ``gt_masks`` ``G x H x W`` (bool, integer 0/1 or float) are an image's instance masks, ``boxes``
    ``K x 4`` XYXY its positive proposals and ``matched_idxs`` ``K`` (int64) the ground truth each one
    matched. Proposal ``k``'s target is ``RoIAlign(gt_masks[matched_idxs[k]], boxes[k])`` to ``M x M``
    with spatial scale 1, ``sampling_ratio=-1`` (adaptive) and ``aligned=False``: exactly
    ``torchvision.models.detection.roi_heads.project_masks_on_boxes``. Soft values at the mask's edges
    are kept (no threshold); samples more than a pixel outside the image read 0.
    """
    gt_masks = _real("gt_masks", gt_masks, 3)
    check_xyxy("boxes", boxes)
    matched_idxs = validation.tensor("matched_idxs", matched_idxs, ndim=1, dtypes="int")
    m = validation.integer("M", M, minimum=1)
    if len(matched_idxs) != len(boxes):
        raise ValueError(f"matched_idxs must have one index per box: {len(boxes)} boxes, {len(matched_idxs)} indices")
    if len(matched_idxs) and (matched_idxs.min() < 0 or matched_idxs.max() >= len(gt_masks)):
        raise ValueError(f"matched_idxs must index gt_masks: values in 0..{len(gt_masks) - 1}, got "
                         f"{int(matched_idxs.min())}..{int(matched_idxs.max())} (negative values mark unmatched "
                         "proposals: keep only the positives)")
    if gt_masks.shape[1] == 0 or gt_masks.shape[2] == 0:
        raise ValueError(f"gt_masks has an empty image size {tuple(gt_masks.shape[1:])}")
    if len(boxes) == 0:
        return boxes.new_zeros(0, m, m)
    rois = torch.cat([matched_idxs[:, None].to(boxes), boxes], 1)             # K x 5 (mask index, x1, y1, x2, y2)
    return roi_align(gt_masks[:, None].to(boxes), rois, (m, m), spatial_scale=1.0, sampling_ratio=-1,
                     aligned=False)[:, 0]


def mask_loss(mask_logits: torch.Tensor, mask_targets: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mask head's loss: a scalar, the mean over RoIs and pixels of the binary cross-entropy with
    logits between ``mask_logits[k, labels[k]]`` and ``mask_targets[k]``.

    ``mask_logits`` ``K x C x M x M`` (one mask per class), ``mask_targets`` ``K x M x M`` in ``[0, 1]``,
    ``labels`` ``K`` (int64, the ground-truth class of each RoI). Only the ground-truth class's channel
    is trained (the other classes' masks get no gradient): torchvision's ``maskrcnn_loss`` after its
    targets. ``K = 0`` gives ``mask_logits.sum() * 0``, a zero that still carries a (zero) gradient.
    """
    mask_logits = validation.tensor("mask_logits", mask_logits, ndim=4, dtypes="float")
    mask_targets = validation.tensor("mask_targets", mask_targets, ndim=3, dtypes="float")
    labels = validation.tensor("labels", labels, ndim=1, dtypes="int")
    k, c, mh, mw = mask_logits.shape
    if mask_targets.shape != (k, mh, mw) or len(labels) != k:
        raise ValueError(f"mask_targets must be K x M x M = {(k, mh, mw)} and labels K = {k} for mask_logits "
                         f"{tuple(mask_logits.shape)}, got {tuple(mask_targets.shape)} and {tuple(labels.shape)}")
    if k and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"labels must be class indices in 0..{c - 1}, got {int(labels.min())}..{int(labels.max())}")
    if k and ((mask_targets < -1e-4) | (mask_targets > 1 + 1e-4)).any():   # (float rounding may pass 1 by a hair)
        raise ValueError(f"mask_targets must lie in [0, 1] (mask fractions), got values in "
                         f"{float(mask_targets.min()):.4g}..{float(mask_targets.max()):.4g}")
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    picked = mask_logits[torch.arange(k, device=labels.device), labels]       # K x M x M
    return F.binary_cross_entropy_with_logits(picked, mask_targets)


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_size: int | tuple[int, int],
                threshold: float = 0.5) -> torch.Tensor:
    """Binary instance masks ``N x H x W`` (bool) from ``M x M`` probability maps ``masks`` ``N x M x M``
    and their boxes ``N x 4`` (XYXY, image pixels) in an image of ``image_size`` ``(H, W)`` (an int: square).

    Each map gets a ring of zeros (``(M + 2) x (M + 2)``), its box grows about its centre by
    ``(M + 2) / M`` and is truncated to whole pixels (``.to(torch.int64)``: towards 0); the map is resized
    bilinearly (``align_corners=False``) to the box's ``x2 - x1 + 1`` by ``y2 - y1 + 1`` pixels (at least 1),
    pasted there (the parts outside the image cut off) and thresholded with ``> threshold``. Exactly
    ``paste_masks_in_image(masks[:, None], boxes, image_size, padding=1)[:, 0] > threshold`` of
    ``torchvision.models.detection.roi_heads``, except that a box entirely outside the image pastes
    nothing (torchvision's slicing fails there; its detections are clipped to the image first).
    """
    masks = validation.tensor("masks", masks, ndim=3, dtypes="float")
    check_xyxy("boxes", boxes)
    h, w = validation.size_pair("image_size", image_size, square=True)
    threshold = validation.number("threshold", threshold, minimum=0.0, maximum=1.0)
    n, m, m2 = masks.shape
    if m != m2 or m == 0:
        raise ValueError(f"masks must be N x M x M (square, M >= 1), got shape {tuple(masks.shape)}")
    if len(boxes) != n:
        raise ValueError(f"need one box per mask: {n} masks, {len(boxes)} boxes")
    padded = F.pad(masks, (PASTE_PADDING,) * 4)                               # N x (M + 2) x (M + 2)
    scale = float(m + 2 * PASTE_PADDING) / m
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale                        # the box grown about its centre,
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale                        # in torchvision's float arithmetic
    cx, cy = (boxes[:, 2] + boxes[:, 0]) * 0.5, (boxes[:, 3] + boxes[:, 1]) * 0.5
    grown = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1).to(torch.int64)  # towards 0
    out = masks.new_zeros(n, h, w)
    for i, (x1, y1, x2, y2) in enumerate(grown.tolist()):
        bw, bh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)                     # pixels x1..x2 included
        resized = F.interpolate(padded[i][None, None], size=(bh, bw), mode="bilinear", align_corners=False)[0, 0]
        xa, xb, ya, yb = max(x1, 0), min(x2 + 1, w), max(y1, 0), min(y2 + 1, h)
        if xa < xb and ya < yb:                                               # some of the box is in the image
            out[i, ya:yb, xa:xb] = resized[ya - y1:yb - y1, xa - x1:xb - x1]
    return out > threshold


def _binary(name: str, masks: object) -> torch.Tensor:
    masks = _real(name, masks, 3)
    if masks.is_floating_point():
        raise TypeError(f"{name} must be binary masks, bool or integer 0/1 (threshold probabilities first), "
                        f"got {masks.dtype}")
    if masks.dtype != torch.bool and masks.numel() and ((masks != 0) & (masks != 1)).any():
        raise ValueError(f"{name} must hold only 0 and 1, got values in {int(masks.min())}..{int(masks.max())}")
    return masks


def mask_iou(masks1: torch.Tensor, masks2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``N x M`` (float32) of binary masks ``masks1`` ``N x H x W`` and ``masks2`` ``M x H x W``
    (bool or integer 0/1): ``|A & B| / |A | B|`` in pixels, 0 where the union is empty (two empty masks),
    as pycocotools' ``mask.iou`` (its ``rleIou`` sets the IoU to 0 whenever the intersection is empty).
    """
    _binary("masks1", masks1)
    _binary("masks2", masks2)
    if masks1.shape[1:] != masks2.shape[1:]:
        raise ValueError(f"masks1 and masks2 must have the same image size, got {tuple(masks1.shape[1:])} and "
                         f"{tuple(masks2.shape[1:])}")
    a = masks1.flatten(1).to(torch.float64)                                   # N x HW
    b = masks2.flatten(1).to(torch.float64)                                   # M x HW
    inter = a @ b.T                                                           # whole numbers: exact in float64
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)).float()
