"""Lab 07 (Mask R-CNN): wrong implementations a student plausibly writes, and shortcuts that call the
torchvision / pycocotools / torchmetrics function (or the course's reference) the exercise asks them to
write themselves."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import (
    binary_jaccard_index,  # imported here: importing under the check's guard is slow
)
from torchvision.ops import roi_align

from mutants import Collection

MUTANTS = Collection()
CHEATS = Collection()


# ---- 07.mask_targets -------------------------------------------------------------------------
def _targets(gt_masks, boxes, matched_idxs, M, aligned=False, sampling_ratio=-1, first_mask=False, union=False,
             binarise=False, swap_xy=False, quantise=False):
    masks = gt_masks.to(boxes.dtype)
    if union:
        masks = masks.amax(0, keepdim=True).expand_as(masks)
    index = torch.zeros_like(matched_idxs) if first_mask else matched_idxs
    b = boxes[:, [1, 0, 3, 2]] if swap_xy else boxes
    if quantise:
        b = b.round()
    rois = torch.cat([index[:, None].to(b), b], 1)
    out = roi_align(masks[:, None], rois, (M, M), 1.0, sampling_ratio, aligned)[:, 0]
    return (out >= 0.5).to(out.dtype) if binarise else out


@MUTANTS.add("07.mask_targets", "aligned=True (detectron2's half-pixel shift; torchvision's targets use aligned=False)")
def targets_aligned(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, aligned=True)


@MUTANTS.add("07.mask_targets", "sampling_ratio=2 (the mask head's feature RoIAlign) instead of the adaptive -1")
def targets_two_samples(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, sampling_ratio=2)


@MUTANTS.add("07.mask_targets", "the targets binarised at 0.5 (torchvision keeps RoIAlign's soft values)")
def targets_binarised(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, binarise=True)


@MUTANTS.add("07.mask_targets", "batch index 0 for every proposal: always the first object's mask")
def targets_first_mask(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, first_mask=True)


@MUTANTS.add("07.mask_targets", "the union of all objects' masks, not the matched object's")
def targets_union(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, union=True)


@MUTANTS.add("07.mask_targets", "boxes read as (y1, x1, y2, x2)")
def targets_swapped_xy(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, swap_xy=True)


@MUTANTS.add("07.mask_targets", "boxes rounded to whole pixels first (the quantisation RoIAlign removes)")
def targets_quantised(gt_masks, boxes, matched_idxs, M):
    return _targets(gt_masks, boxes, matched_idxs, M, quantise=True)


@MUTANTS.add("07.mask_targets", "crop the mask with the box clipped and rounded to pixels, then F.interpolate to M x M")
def targets_crop_and_resize(gt_masks, boxes, matched_idxs, M):
    h, w = gt_masks.shape[1:]
    out = []
    for box, i in zip(boxes.tolist(), matched_idxs.tolist()):
        x1, y1 = min(max(round(box[0]), 0), w - 1), min(max(round(box[1]), 0), h - 1)
        x2, y2 = max(min(round(box[2]), w), x1 + 1), max(min(round(box[3]), h), y1 + 1)
        crop = gt_masks[i, y1:y2, x1:x2].to(boxes.dtype)
        out.append(F.interpolate(crop[None, None], size=(M, M), mode="bilinear", align_corners=False)[0, 0])
    return torch.stack(out) if out else boxes.new_zeros(0, M, M)


# ---- 07.mask_loss ----------------------------------------------------------------------------
def _picked(mask_logits, labels):
    return mask_logits[torch.arange(len(labels)), labels]


def _bce(mask_logits, mask_targets, labels, reduction="mean", binarise=False, shift=0):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    targets = (mask_targets >= 0.5).to(mask_targets.dtype) if binarise else mask_targets
    return F.binary_cross_entropy_with_logits(_picked(mask_logits, labels - shift), targets, reduction=reduction)


@MUTANTS.add("07.mask_loss", "a softmax across the classes (the multinomial loss the paper's ablation rejects)")
def loss_softmax(mask_logits, mask_targets, labels):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    probs = _picked(mask_logits.softmax(1), labels)
    return F.binary_cross_entropy(probs, mask_targets)


@MUTANTS.add("07.mask_loss", "every class's channel trained against the target (mean over channels too)")
def loss_every_channel(mask_logits, mask_targets, labels):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    return F.binary_cross_entropy_with_logits(mask_logits, mask_targets[:, None].expand_as(mask_logits))


@MUTANTS.add("07.mask_loss", "the other classes' channels pushed to 0 (a one-hot target over the classes)")
def loss_one_hot(mask_logits, mask_targets, labels):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    full = torch.zeros_like(mask_logits)
    full[torch.arange(len(labels)), labels] = mask_targets
    return F.binary_cross_entropy_with_logits(mask_logits, full)


@MUTANTS.add("07.mask_loss", "sum over pixels and RoIs instead of the mean")
def loss_sum(mask_logits, mask_targets, labels):
    return _bce(mask_logits, mask_targets, labels, reduction="sum")


@MUTANTS.add("07.mask_loss", "mean over each RoI's pixels, then summed over the RoIs")
def loss_sum_over_rois(mask_logits, mask_targets, labels):
    return _bce(mask_logits, mask_targets, labels, reduction="none").mean((1, 2)).sum()


@MUTANTS.add("07.mask_loss", "the targets binarised at 0.5 before the loss")
def loss_binarised_targets(mask_logits, mask_targets, labels):
    return _bce(mask_logits, mask_targets, labels, binarise=True)


@MUTANTS.add("07.mask_loss", "labels - 1: as if channel 0 were the first object class (no background channel)")
def loss_label_shift(mask_logits, mask_targets, labels):
    return _bce(mask_logits, mask_targets, labels, shift=1)


@MUTANTS.add("07.mask_loss", "mask_logits[:, labels]: K x K channels, broadcast against the targets")
def loss_wrong_gather(mask_logits, mask_targets, labels):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    picked = mask_logits[:, labels]
    return F.binary_cross_entropy_with_logits(picked, mask_targets[None].expand_as(picked))


@MUTANTS.add("07.mask_loss", "the predicted class's channel (argmax over the classes), as at inference")
def loss_predicted_class(mask_logits, mask_targets, labels):
    return _bce(mask_logits, mask_targets, mask_logits.mean((2, 3)).argmax(1))


@MUTANTS.add("07.mask_loss", "sigmoid, then F.binary_cross_entropy: log(0) for large logits (clamped at -100)")
def loss_unstable(mask_logits, mask_targets, labels):
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    return F.binary_cross_entropy(torch.sigmoid(_picked(mask_logits, labels)), mask_targets)


@MUTANTS.add("07.mask_loss", "the loss as a Python number in a new tensor: no gradient")
def loss_no_gradient(mask_logits, mask_targets, labels):
    return torch.tensor(_bce(mask_logits, mask_targets, labels).item())


@MUTANTS.add("07.mask_loss", "K = 0 returns torch.tensor(0.0): right value, but no gradient")
def loss_constant_zero(mask_logits, mask_targets, labels):
    if len(labels) == 0:
        return torch.tensor(0.0)
    return _bce(mask_logits, mask_targets, labels)


@MUTANTS.add("07.mask_loss", "no special case for K = 0: the mean of nothing is NaN")
def loss_nan_when_empty(mask_logits, mask_targets, labels):
    return F.binary_cross_entropy_with_logits(_picked(mask_logits, labels), mask_targets)


# ---- 07.paste_masks --------------------------------------------------------------------------
def _paste(masks, boxes, image_size, threshold=0.5, pad=True, grow=True, plus_one=True, convert="trunc", strict=True,
           align_corners=False, mode="bilinear", swap_size=False, threshold_first=False, offset=True):
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    if swap_size:
        h, w = w, h
    n, m = masks.shape[0], masks.shape[-1]
    maps = (masks > threshold).to(masks.dtype) if threshold_first else masks
    maps = F.pad(maps, (1, 1, 1, 1)) if pad else maps
    if grow:
        scale = (m + 2) / m
        hw, hh = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
        cx, cy = (boxes[:, 2] + boxes[:, 0]) * 0.5, (boxes[:, 3] + boxes[:, 1]) * 0.5
        grown = torch.stack([cx - hw, cy - hh, cx + hw, cy + hh], 1)
    else:
        grown = boxes
    grown = {"trunc": grown.to(torch.int64), "round": grown.round().long(), "floor": grown.floor().long()}[convert]
    out = masks.new_zeros(n, h, w)
    for i, (x1, y1, x2, y2) in enumerate(grown.tolist()):
        extra = 1 if plus_one else 0
        bw, bh = max(x2 - x1 + extra, 1), max(y2 - y1 + extra, 1)
        kwargs = {"align_corners": align_corners} if mode == "bilinear" else {}
        resized = F.interpolate(maps[i][None, None], size=(bh, bw), mode=mode, **kwargs)[0, 0]
        xa, xb, ya, yb = max(x1, 0), min(x1 + bw, w), max(y1, 0), min(y1 + bh, h)
        if xa < xb and ya < yb:
            if offset:
                out[i, ya:yb, xa:xb] = resized[ya - y1:yb - y1, xa - x1:xb - x1]
            else:
                out[i, ya:yb, xa:xb] = resized[:yb - ya, :xb - xa]
    return out > threshold if strict else out >= threshold


@MUTANTS.add("07.paste_masks", "no padding and no box growth: the M x M map stretched over the box itself")
def paste_no_padding(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, pad=False, grow=False)


@MUTANTS.add("07.paste_masks", "the map padded with zeros, but the box not grown to match")
def paste_padded_not_grown(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, grow=False)


@MUTANTS.add("07.paste_masks", "the box grown, but the map not padded (stretched over the larger box)")
def paste_grown_not_padded(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, pad=False)


@MUTANTS.add("07.paste_masks", "no + 1 in the pasted width and height (x2 - x1 pixels)")
def paste_no_plus_one(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, plus_one=False)


@MUTANTS.add("07.paste_masks", "the grown box rounded to the nearest pixel instead of truncated")
def paste_rounded(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, convert="round")


@MUTANTS.add("07.paste_masks", "floor instead of truncation: negative corners move a pixel further out")
def paste_floored(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, convert="floor")


@MUTANTS.add("07.paste_masks", "threshold with >= instead of >")
def paste_greater_equal(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, strict=False)


@MUTANTS.add("07.paste_masks", "bilinear resize with align_corners=True")
def paste_align_corners(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, align_corners=True)


@MUTANTS.add("07.paste_masks", "nearest-neighbour resize instead of bilinear")
def paste_nearest(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, mode="nearest")


@MUTANTS.add("07.paste_masks", "image_size read as (W, H)")
def paste_swapped_size(masks, boxes, image_size, threshold=0.5):
    out = _paste(masks, boxes, image_size, threshold, swap_size=True)
    return out.transpose(1, 2) if out.shape[1] != out.shape[2] else out


@MUTANTS.add("07.paste_masks", "the M x M map thresholded first, then resized and thresholded again: blocky masks")
def paste_threshold_first(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, threshold_first=True)


@MUTANTS.add("07.paste_masks", "a box partly outside the image: the map's top-left corner pasted at the clipped corner")
def paste_no_offset(masks, boxes, image_size, threshold=0.5):
    return _paste(masks, boxes, image_size, threshold, offset=False)


# ---- 07.keypoint_targets ---------------------------------------------------------------------
def _keypoints(keypoints, rois, heatmap_size, edge_rule=True, clamp=False, visibility="positive", zero_invalid=True,
               to_int="floor", swap=False, scale_minus_one=False, bool_valid=False):
    s = heatmap_size
    x1, y1, x2, y2 = (rois[:, i, None] for i in range(4))
    x, y, v = keypoints.unbind(2)
    cells = s - 1 if scale_minus_one else s
    fx, fy = (x - x1) * (cells / (x2 - x1)), (y - y1) * (cells / (y2 - y1))
    convert = {"floor": lambda t: t.floor().long(), "round": lambda t: t.round().long(), "trunc": lambda t: t.long()}
    col, row = convert[to_int](fx), convert[to_int](fy)
    if edge_rule:
        col = torch.where(x == x2, s - 1, col)
        row = torch.where(y == y2, s - 1, row)
    if clamp:
        col, row = col.clamp(max=s - 1), row.clamp(max=s - 1)
    seen = {"positive": v > 0, "any": torch.ones_like(v, dtype=torch.bool), "two": v == 2}[visibility]
    valid = (col >= 0) & (row >= 0) & (col < s) & (row < s) & seen
    index = col * s + row if swap else row * s + col
    heatmaps = index * valid if zero_invalid else index
    return heatmaps, (valid if bool_valid else valid.long())


@MUTANTS.add("07.keypoint_targets", "the x == x2 rule missed: a point on the right or bottom edge falls off the grid")
def kp_no_edge_rule(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, edge_rule=False)


@MUTANTS.add("07.keypoint_targets", "cells clamped to S - 1 instead of the edge rule: points beyond the box counted")
def kp_clamped(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, edge_rule=False, clamp=True)


@MUTANTS.add("07.keypoint_targets", "invisible points (visibility 0) counted valid")
def kp_invisible_counted(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, visibility="any")


@MUTANTS.add("07.keypoint_targets", "only visibility 2 counted (COCO's 1, labelled but hidden, is valid too)")
def kp_visible_only(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, visibility="two")


@MUTANTS.add("07.keypoint_targets", "the index of an invalid keypoint not set to 0")
def kp_invalid_index_kept(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, zero_invalid=False)


@MUTANTS.add("07.keypoint_targets", "round() instead of floor()")
def kp_rounded(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, to_int="round")


@MUTANTS.add("07.keypoint_targets", ".long() (truncation towards 0) instead of floor(): a point just left of the box "
                                    "lands in column 0")
def kp_truncated(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, to_int="trunc")


@MUTANTS.add("07.keypoint_targets", "linear index col * S + row (x and y swapped)")
def kp_swapped(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, swap=True)


@MUTANTS.add("07.keypoint_targets", "scale (S - 1) / width (align-corners thinking)")
def kp_scale_minus_one(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, scale_minus_one=True)


@MUTANTS.add("07.keypoint_targets", "valid as a bool tensor (torchvision's is int64 0 / 1)")
def kp_bool_valid(keypoints, rois, heatmap_size):
    return _keypoints(keypoints, rois, heatmap_size, bool_valid=True)


# ---- 07.mask_iou -----------------------------------------------------------------------------
def _counts(masks1, masks2):
    a, b = masks1.flatten(1).float(), masks2.flatten(1).float()
    inter = a @ b.T
    return inter, a.sum(1)[:, None], b.sum(1)[None, :]


def _safe(inter, union, empty=0.0):
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, empty))


@MUTANTS.add("07.mask_iou", "union = area1 + area2: the intersection counted twice")
def iou_double_count(masks1, masks2):
    inter, a1, a2 = _counts(masks1, masks2)
    return _safe(inter, a1 + a2)


@MUTANTS.add("07.mask_iou", "integer division of the pixel counts")
def iou_int_division(masks1, masks2):
    inter, a1, a2 = _counts(masks1, masks2)
    union = (a1 + a2 - inter).long()
    return torch.where(union > 0, inter.long() // union.clamp(min=1), 0).float()


@MUTANTS.add("07.mask_iou", "inter / union without care: 0 / 0 = NaN for two empty masks")
def iou_nan(masks1, masks2):
    inter, a1, a2 = _counts(masks1, masks2)
    return inter / (a1 + a2 - inter)


@MUTANTS.add("07.mask_iou", "two empty masks counted as identical: IoU 1")
def iou_empty_is_one(masks1, masks2):
    inter, a1, a2 = _counts(masks1, masks2)
    return _safe(inter, a1 + a2 - inter, empty=1.0)


@MUTANTS.add("07.mask_iou", "returns M x N (masks2 by masks1)")
def iou_transposed(masks1, masks2):
    inter, a1, a2 = _counts(masks2, masks1)
    return _safe(inter, a1 + a2 - inter)


@MUTANTS.add("07.mask_iou", "the IoU of the masks' bounding boxes")
def iou_of_boxes(masks1, masks2):
    from torchvision.ops import box_iou, masks_to_boxes

    def boxes(m):
        b = masks_to_boxes(m.bool()) if len(m) else torch.zeros(0, 4)
        b[:, 2:] += 1                                   # pixel edges
        return torch.where(m.bool().flatten(1).any(1)[:, None], b, torch.zeros_like(b))

    return torch.nan_to_num(box_iou(boxes(masks1), boxes(masks2)))


@MUTANTS.add("07.mask_iou", "intersection over the smaller mask (overlap coefficient), not over the union")
def iou_over_min(masks1, masks2):
    inter, a1, a2 = _counts(masks1, masks2)
    return _safe(inter, torch.minimum(a1, a2))


@MUTANTS.add("07.mask_iou", "float64 result (the check expects float32)")
def iou_float64(masks1, masks2):
    inter, a1, a2 = _counts(masks1, masks2)
    return _safe(inter, a1 + a2 - inter).double()


# ---- cheats: torchvision's roi_heads, pycocotools, torchmetrics, the course's references -------
@CHEATS.add("07.mask_targets", "torchvision's project_masks_on_boxes")
def targets_torchvision(gt_masks, boxes, matched_idxs, M):
    from torchvision.models.detection.roi_heads import project_masks_on_boxes

    return project_masks_on_boxes(gt_masks, boxes, matched_idxs, M)


@CHEATS.add("07.mask_targets", "course_utils.ops.masks.mask_targets")
def targets_course(gt_masks, boxes, matched_idxs, M):
    from course_utils.ops import masks

    return masks.mask_targets(gt_masks, boxes, matched_idxs, M)


@CHEATS.add("07.mask_targets", "course_utils.ops.torchvision_heads.mask_targets")
def targets_course_wrapper(gt_masks, boxes, matched_idxs, M):
    from course_utils.ops import torchvision_heads

    return torchvision_heads.mask_targets(gt_masks, boxes, matched_idxs, M)


@CHEATS.add("07.mask_loss", "torchvision's maskrcnn_loss (each target taken as a mask, its whole box as proposal)")
def loss_torchvision(mask_logits, mask_targets, labels):
    from torchvision.models.detection.roi_heads import maskrcnn_loss

    m = mask_targets.shape[-1]
    whole = torch.tensor([[0.0, 0.0, m, m]]).expand(len(labels), 4)
    return maskrcnn_loss(mask_logits, [whole], [mask_targets], [labels], [torch.arange(len(labels))])


@CHEATS.add("07.mask_loss", "course_utils.ops.masks.mask_loss")
def loss_course(mask_logits, mask_targets, labels):
    from course_utils.ops.masks import mask_loss

    return mask_loss(mask_logits, mask_targets, labels)


@CHEATS.add("07.paste_masks", "torchvision's paste_masks_in_image")
def paste_torchvision(masks, boxes, image_size, threshold=0.5):
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    return paste_masks_in_image(masks[:, None], boxes, size, padding=1)[:, 0] > threshold


@CHEATS.add("07.paste_masks", "torchvision's paste_mask_in_image per box, with its own expand_masks / expand_boxes")
def paste_torchvision_per_box(masks, boxes, image_size, threshold=0.5):
    from torchvision.models.detection import roi_heads

    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    padded, scale = roi_heads.expand_masks(masks[:, None], padding=1)
    grown = roi_heads.expand_boxes(boxes, scale).to(torch.int64)
    out = [roi_heads.paste_mask_in_image(m[0], b, h, w) for m, b in zip(padded, grown)]
    return (torch.stack(out) if out else masks.new_zeros(0, h, w)) > threshold


@CHEATS.add("07.paste_masks", "torchvision's expand_boxes for the box growth (the rest by hand)")
def paste_torchvision_expand_boxes(masks, boxes, image_size, threshold=0.5):
    from torchvision.models.detection.roi_heads import expand_boxes

    expand_boxes(boxes, (masks.shape[-1] + 2) / masks.shape[-1])
    return _paste(masks, boxes, image_size, threshold)


@CHEATS.add("07.paste_masks", "course_utils.ops.masks.paste_masks")
def paste_course(masks, boxes, image_size, threshold=0.5):
    from course_utils.ops.masks import paste_masks

    return paste_masks(masks, boxes, image_size, threshold)


@CHEATS.add("07.keypoint_targets", "torchvision's keypoints_to_heatmap")
def kp_torchvision(keypoints, rois, heatmap_size):
    from torchvision.models.detection.roi_heads import keypoints_to_heatmap

    return keypoints_to_heatmap(keypoints, rois, heatmap_size)


@CHEATS.add("07.keypoint_targets", "course_utils.ops.keypoints.keypoint_targets")
def kp_course(keypoints, rois, heatmap_size):
    from course_utils.ops.keypoints import keypoint_targets

    return keypoint_targets(keypoints, rois, heatmap_size)


@CHEATS.add("07.mask_iou", "pycocotools' mask.iou on RLE-encoded masks")
def iou_pycocotools(masks1, masks2):
    from pycocotools import mask as mask_util

    def rle(m):
        return mask_util.encode(np.asfortranarray(m.to(torch.uint8).permute(1, 2, 0).numpy()))

    ious = mask_util.iou(rle(masks1), rle(masks2), [0] * len(masks2))
    return torch.as_tensor(np.asarray(ious), dtype=torch.float32).reshape(len(masks1), len(masks2))


@CHEATS.add("07.mask_iou", "torchmetrics' binary_jaccard_index for each pair")
def iou_torchmetrics(masks1, masks2):
    out = torch.zeros(len(masks1), len(masks2))
    for i, a in enumerate(masks1):
        for j, b in enumerate(masks2):
            out[i, j] = binary_jaccard_index(a.long(), b.long(), zero_division=0)
    return out


@CHEATS.add("07.mask_iou", "course_utils.ops.masks.mask_iou")
def iou_course(masks1, masks2):
    from course_utils.ops.masks import mask_iou

    return mask_iou(masks1, masks2)
