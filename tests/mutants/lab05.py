"""Lab 05 (from R-CNN to Faster R-CNN): wrong implementations a student plausibly writes, and shortcuts
that call the torchvision / pycocotools function the exercise asks them to write themselves."""

from __future__ import annotations

import math

import numpy as np
import torch
from _student import student_module
from torchmetrics.detection import (
    MeanAveragePrecision,  # imported here: importing under the check's guard is slow
)

from course_utils.ops import roi_ops
from mutants import Collection

roi = student_module(roi_ops)  # the course's RoI ops, as a student would copy them

MUTANTS = Collection()
CHEATS = Collection()


# ---- 05.box_iou ------------------------------------------------------------------------------
def _iou(a, b, clamp=True, subtract=True, nan=False, plus_one=0.0, eps=0.0):
    area_a = (a[:, 2] - a[:, 0] + plus_one) * (a[:, 3] - a[:, 1] + plus_one)
    area_b = (b[:, 2] - b[:, 0] + plus_one) * (b[:, 3] - b[:, 1] + plus_one)
    wh = torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2]) + plus_one
    if clamp:
        wh = wh.clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - (inter if subtract else 0)
    if nan:
        return inter / union
    if eps:
        return inter / (union + eps)
    return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), torch.zeros_like(inter))


@MUTANTS.add("05.box_iou", "no clamp: two disjoint boxes have a negative width and height, a positive 'overlap'")
def iou_no_clamp(boxes1, boxes2):
    return _iou(boxes1, boxes2, clamp=False)


@MUTANTS.add("05.box_iou", "union = area1 + area2: the intersection is counted twice")
def iou_double_count(boxes1, boxes2):
    return _iou(boxes1, boxes2, subtract=False)


@MUTANTS.add("05.box_iou", "inter / union without care: 0 / 0 = NaN for two points (torchvision's behaviour)")
def iou_nan(boxes1, boxes2):
    return _iou(boxes1, boxes2, nan=True)


@MUTANTS.add("05.box_iou", "the +1 pixel convention of old VOC code: w = x2 - x1 + 1")
def iou_plus_one(boxes1, boxes2):
    return _iou(boxes1, boxes2, plus_one=1.0)


@MUTANTS.add("05.box_iou",
             "an epsilon in the denominator, inter / (union + 1e-6): wrong for boxes smaller than a pixel")
def iou_epsilon(boxes1, boxes2):
    return _iou(boxes1, boxes2, eps=1e-6)


@MUTANTS.add("05.box_iou", "returns M x N (boxes2 by boxes1)")
def iou_transposed(boxes1, boxes2):
    return _iou(boxes2, boxes1)


# ---- 05.roi_pool -----------------------------------------------------------------------------
@MUTANTS.add("05.roi_pool", "floors the box corners instead of rounding them")
def pool_floor(features, boxes, output_size, spatial_scale=1.0):
    rois = roi._rois(boxes, features).clone()
    rois[:, 1:] = torch.floor(rois[:, 1:] * spatial_scale) / spatial_scale
    return roi.roi_pool(features, rois, output_size, spatial_scale)


@MUTANTS.add("05.roi_pool", "torch.round (halves to even) where the kernel uses C's round (halves away from 0)")
def pool_round_half_even(features, boxes, output_size, spatial_scale=1.0):
    rois = roi._rois(boxes, features).clone()
    rois[:, 1:] = (torch.round(rois[:, 1:] * spatial_scale) + 1e-3) / spatial_scale   # lands on C's round of it
    return roi.roi_pool(features, rois, output_size, spatial_scale)


@MUTANTS.add("05.roi_pool", "roi width x2 - x1 without the + 1: the last row and column of the box are dropped")
def pool_no_plus_one(features, boxes, output_size, spatial_scale=1.0):
    rois = roi._rois(boxes, features).clone()
    x = roi._c_round(rois[:, 1:] * spatial_scale).to(rois.dtype)
    x[:, 2:] = torch.maximum(x[:, 2:] - 1, x[:, :2])
    rois[:, 1:] = x / spatial_scale
    return roi.roi_pool(features, rois, output_size, spatial_scale)


@MUTANTS.add("05.roi_pool", "rounds with int(v + 0.5): truncation towards 0 for negative coordinates")
def pool_int_round(features, boxes, output_size, spatial_scale=1.0):
    rois = roi._rois(boxes, features).clone()
    rois[:, 1:] = torch.trunc(rois[:, 1:].double() * spatial_scale + 0.5).to(rois.dtype) / spatial_scale
    return roi.roi_pool(features, rois, output_size, spatial_scale)


@MUTANTS.add("05.roi_pool", "clamps the box's start to the map (x1 = max(x1, 0)) before cutting it into bins")
def pool_clamped_start(features, boxes, output_size, spatial_scale=1.0):
    rois = roi._rois(boxes, features).clone()
    start = roi._c_round(rois[:, 1:3] * spatial_scale).clamp(min=0).to(rois.dtype)
    rois[:, 1:3] = start / spatial_scale
    return roi.roi_pool(features, rois, output_size, spatial_scale)


@MUTANTS.add("05.roi_pool", "forgets spatial_scale: image coordinates used on the feature map")
def pool_no_scale(features, boxes, output_size, spatial_scale=1.0):
    return roi.roi_pool(features, boxes, output_size, 1.0)


@MUTANTS.add("05.roi_pool", "rows and columns of a non-square output_size swapped")
def pool_swapped_size(features, boxes, output_size, spatial_scale=1.0):
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    return roi.roi_pool(features, boxes, (size[1], size[0]), spatial_scale).transpose(2, 3)


# ---- 05.roi_align ----------------------------------------------------------------------------
@MUTANTS.add("05.roi_align", "ignores aligned: never shifts by half a pixel")
def align_ignores_aligned(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return roi.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, False)


@MUTANTS.add("05.roi_align", "the adaptive default (sampling_ratio <= 0) taken as one sample per bin")
def align_one_sample(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return roi.roi_align(features, boxes, output_size, spatial_scale,
                         sampling_ratio if sampling_ratio > 0 else 1, aligned)


@MUTANTS.add("05.roi_align", "aligned shifts by +0.5 instead of -0.5")
def align_wrong_sign(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    if not aligned:
        return roi.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, False)
    rois = roi._rois(boxes, features).clone()
    rois[:, 1:] += 1.0 / spatial_scale
    return roi.roi_align(features, rois, output_size, spatial_scale, sampling_ratio, True)


@MUTANTS.add("05.roi_align",
             "rounds the box to whole cells first, as RoI pooling does (the quantisation RoIAlign removes)")
def align_quantised(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    rois = roi._rois(boxes, features).clone()
    rois[:, 1:] = torch.round(rois[:, 1:] * spatial_scale) / spatial_scale
    return roi.roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


@MUTANTS.add("05.roi_align", "adaptive sampling only for sampling_ratio == -1: 0 gives no samples (bins of 0)")
def align_zero_ratio(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    out = roi.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio if sampling_ratio else 1, aligned)
    return torch.zeros_like(out) if sampling_ratio == 0 else out


@MUTANTS.add("05.roi_align", "clamps the box's start to the map (x1 = max(x1, 0)) before cutting it into bins")
def align_clamped_start(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    rois = roi._rois(boxes, features).clone()
    offset = 0.5 if aligned else 0.0
    rois[:, 1:3] = ((rois[:, 1:3] * spatial_scale - offset).clamp(min=0) + offset) / spatial_scale
    return roi.roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


def _bilinear_zero_outside(fmap, y, x):
    """A sample outside [0, H - 1] x [0, W - 1] counts as 0 (the kernel: only beyond one pixel outside)."""
    inside = ((y >= 0) & (y <= fmap.shape[1] - 1))[:, None] & ((x >= 0) & (x <= fmap.shape[2] - 1))[None, :]
    return roi_zero._bilinear_course(fmap, y, x) * inside


roi_zero = student_module(roi_ops)
roi_zero._bilinear_course = roi_zero._bilinear
roi_zero.roi_align.__globals__["_bilinear"] = _bilinear_zero_outside


@MUTANTS.add("05.roi_align",
             "a sample outside the map's pixel centres is 0 (the kernel: only beyond one pixel outside)")
def align_zero_outside(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return roi_zero.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned)


@MUTANTS.add("05.roi_align", "forgets spatial_scale")
def align_no_scale(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return roi.roi_align(features, boxes, output_size, 1.0, sampling_ratio, aligned)


# ---- 05.anchors ------------------------------------------------------------------------------
def _anchors(grid_size, stride, sizes, aspect_ratios, ratio_is_w_over_h=False, rounded=True, offset=0.0,
             size_major=False, swap_stride=False, round_after_shift=False):
    r = torch.tensor(aspect_ratios, dtype=torch.float32)
    s = torch.tensor(sizes, dtype=torch.float32)
    h_ratio = torch.sqrt(1 / r if ratio_is_w_over_h else r)
    if size_major:
        ws, hs = (s[:, None] / h_ratio[None, :]).reshape(-1), (s[:, None] * h_ratio[None, :]).reshape(-1)
    else:
        ws, hs = (s[None, :] / h_ratio[:, None]).reshape(-1), (s[None, :] * h_ratio[:, None]).reshape(-1)
    base = torch.stack([-ws, -hs, ws, hs], 1) / 2
    if rounded and not round_after_shift:
        base = base.round()
    sy, sx = stride[::-1] if swap_stride else stride
    ys, xs = torch.meshgrid((torch.arange(grid_size[0]) + offset) * sy, (torch.arange(grid_size[1]) + offset) * sx,
                            indexing="ij")
    shifts = torch.stack([xs.reshape(-1), ys.reshape(-1)] * 2, 1)
    out = (shifts[:, None, :] + base[None]).reshape(-1, 4).float()
    return out.round() if round_after_shift else out


@MUTANTS.add("05.anchors", "aspect ratio read as w / h (torchvision's is h / w)")
def anchors_w_over_h(grid_size, stride, sizes, aspect_ratios):
    return _anchors(grid_size, stride, sizes, aspect_ratios, ratio_is_w_over_h=True)


@MUTANTS.add("05.anchors", "base anchors not rounded to whole pixels")
def anchors_unrounded(grid_size, stride, sizes, aspect_ratios):
    return _anchors(grid_size, stride, sizes, aspect_ratios, rounded=False)


@MUTANTS.add("05.anchors", "rounds after adding the shifts (an odd stride moves a half-pixel corner to the other even)")
def anchors_round_after_shift(grid_size, stride, sizes, aspect_ratios):
    return _anchors(grid_size, stride, sizes, aspect_ratios, round_after_shift=True)


@MUTANTS.add("05.anchors", "centres at (k + 0.5) * stride, SSD's convention")
def anchors_half_offset(grid_size, stride, sizes, aspect_ratios):
    return _anchors(grid_size, stride, sizes, aspect_ratios, offset=0.5)


@MUTANTS.add("05.anchors", "size-major order: all ratios of the first size, then the next")
def anchors_size_major(grid_size, stride, sizes, aspect_ratios):
    return _anchors(grid_size, stride, sizes, aspect_ratios, size_major=True)


@MUTANTS.add("05.anchors", "stride (sy, sx) read as (sx, sy)")
def anchors_swapped_stride(grid_size, stride, sizes, aspect_ratios):
    return _anchors(grid_size, stride, sizes, aspect_ratios, swap_stride=True)


# ---- 05.encode and 05.decode ------------------------------------------------------------------
def _centres(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


def _encode(boxes, references, weights, corner=False, no_weights=False, no_log=False, dy_by_width=False):
    x, y, w, h = _centres(boxes)
    xa, ya, wa, ha = _centres(references)
    if corner:
        x, y, xa, ya = boxes[:, 0], boxes[:, 1], references[:, 0], references[:, 1]
    wx, wy, ww, wh = (1.0, 1.0, 1.0, 1.0) if no_weights else weights
    dw = (w / wa - 1) if no_log else torch.log(w / wa)
    dh = (h / ha - 1) if no_log else torch.log(h / ha)
    return torch.stack([wx * (x - xa) / wa, wy * (y - ya) / (wa if dy_by_width else ha), ww * dw, wh * dh], 1)


@MUTANTS.add("05.encode", "offsets of the top-left corners instead of the centres")
def encode_corners(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _encode(boxes, references, weights, corner=True)


@MUTANTS.add("05.encode", "forgets the weights")
def encode_no_weights(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _encode(boxes, references, weights, no_weights=True)


@MUTANTS.add("05.encode", "w / w_a - 1 instead of log(w / w_a)")
def encode_no_log(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _encode(boxes, references, weights, no_log=True)


@MUTANTS.add("05.encode", "dy divided by the reference's width")
def encode_dy_by_width(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _encode(boxes, references, weights, dy_by_width=True)


def _decode(codes, references, weights, clip=True, multiply=False, first_only=False, corner=False,
            symmetric=False, clip_first=False):
    xa, ya, wa, ha = _centres(references.to(codes.dtype))
    wx, wy, ww, wh = weights
    if first_only:
        codes = codes[:, :4]
    if multiply:
        dx, dy, dw, dh = codes[:, 0::4] * wx, codes[:, 1::4] * wy, codes[:, 2::4] * ww, codes[:, 3::4] * wh
    elif clip_first:
        limit = math.log(1000 / 16)
        dx, dy = codes[:, 0::4] / wx, codes[:, 1::4] / wy
        dw, dh = codes[:, 2::4].clamp(max=limit) / ww, codes[:, 3::4].clamp(max=limit) / wh
    else:
        dx, dy, dw, dh = codes[:, 0::4] / wx, codes[:, 1::4] / wy, codes[:, 2::4] / ww, codes[:, 3::4] / wh
    if symmetric:
        limit = math.log(1000 / 16)
        dw, dh = dw.clamp(-limit, limit), dh.clamp(-limit, limit)
    elif clip:
        dw, dh = dw.clamp(max=math.log(1000 / 16)), dh.clamp(max=math.log(1000 / 16))
    x, y = dx * wa[:, None] + xa[:, None], dy * ha[:, None] + ya[:, None]
    w, h = torch.exp(dw) * wa[:, None], torch.exp(dh) * ha[:, None]
    if corner:
        return torch.stack([x, y, x + w, y + h], 2).flatten(1)
    return torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 2).flatten(1)


@MUTANTS.add("05.decode", "no clamp of dw, dh at log(1000 / 16)")
def decode_no_clamp(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(codes, references, weights, clip=False)


@MUTANTS.add("05.decode", "clamps dw, dh symmetrically at +-log(1000 / 16) (only large values are clamped)")
def decode_symmetric_clamp(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(codes, references, weights, symmetric=True)


@MUTANTS.add("05.decode", "clamps dw, dh before dividing them by the weights")
def decode_clamp_before_weights(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(codes, references, weights, clip_first=True)


@MUTANTS.add("05.decode", "multiplies by the weights instead of dividing")
def decode_multiplies(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(codes, references, weights, multiply=True)


@MUTANTS.add("05.decode", "decodes only the first box of N x 4K codes")
def decode_first_only(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(codes, references, weights, first_only=True)


@MUTANTS.add("05.decode", "treats (x, y) as the top-left corner: (x, y, x + w, y + h)")
def decode_corner(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(codes, references, weights, corner=True)


# ---- 05.match --------------------------------------------------------------------------------
def _match(quality, high, low, allow, low_inclusive=False, one_per_gt=False, to_that_gt=False):
    if quality.shape[0] == 0 or quality.shape[1] == 0:
        return torch.full((quality.shape[1],), -1, dtype=torch.int64)
    best, idx = quality.max(0)
    original = idx.clone()
    background = best <= low if low_inclusive else best < low
    idx[(best < high) & ~background] = -2
    idx[background] = -1
    if allow:
        if one_per_gt:
            preds = quality.argmax(1)
            idx[preds] = original[preds]
        else:
            gts, preds = torch.where(quality == quality.max(1).values[:, None])
            idx[preds] = gts if to_that_gt else original[preds]
    return idx


@MUTANTS.add("05.match", "quality == low counted as background (<= low instead of < low)")
def match_low_inclusive(quality, high, low, allow_low_quality_matches=False):
    return _match(quality, high, low, allow_low_quality_matches, low_inclusive=True)


@MUTANTS.add("05.match", "ignores allow_low_quality_matches")
def match_no_low_quality(quality, high, low, allow_low_quality_matches=False):
    return _match(quality, high, low, False)


@MUTANTS.add("05.match", "low-quality: only one prediction per ground truth (argmax), ties dropped")
def match_argmax_only(quality, high, low, allow_low_quality_matches=False):
    return _match(quality, high, low, allow_low_quality_matches, one_per_gt=True)


@MUTANTS.add("05.match", "crashes on an image without objects (max over an empty dimension)")
def match_no_empty(quality, high, low, allow_low_quality_matches=False):
    best, idx = quality.max(0)
    idx[best < low] = -1
    idx[(best >= low) & (best < high)] = -2
    return idx if not allow_low_quality_matches else _match(quality, high, low, True)


# ---- 05.nms and 05.batched_nms ----------------------------------------------------------------
def _box_iou(a, b):
    return _iou(a, b)


def _nms(boxes, scores, t, order=None, inclusive=False, chain=False, index_order=False):
    if order is None:
        order = torch.sort(scores, descending=True, stable=True).indices
    iou = _box_iou(boxes[order], boxes[order])
    over = iou >= t if inclusive else iou > t
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
        if chain or not suppressed[i]:
            suppressed[i + 1:] |= over[i, i + 1:]
    kept = order[torch.as_tensor(keep, dtype=torch.int64)]
    return kept.sort().values if index_order else kept


@MUTANTS.add("05.nms", "suppresses at IoU >= threshold (torchvision: only > threshold)")
def nms_inclusive(boxes, scores, iou_threshold):
    return _nms(boxes, scores, iou_threshold, inclusive=True)


@MUTANTS.add("05.nms", "equal scores visited last-first (argsort ascending, then flipped)")
def nms_reversed_ties(boxes, scores, iou_threshold):
    return _nms(boxes, scores, iou_threshold, order=torch.argsort(scores, stable=True).flip(0))


@MUTANTS.add("05.nms", "suppressed boxes still suppress others (a chain A > B > C loses C)")
def nms_chain(boxes, scores, iou_threshold):
    return _nms(boxes, scores, iou_threshold, chain=True)


@MUTANTS.add("05.nms", "returns the kept indices in index order, not by decreasing score")
def nms_index_order(boxes, scores, iou_threshold):
    return _nms(boxes, scores, iou_threshold, index_order=True)


@MUTANTS.add("05.batched_nms", "plain NMS: ignores the classes")
def batched_ignores_classes(boxes, scores, idxs, iou_threshold):
    return _nms(boxes, scores, iou_threshold)


@MUTANTS.add("05.batched_nms", "per class, but the result listed class by class instead of by score")
def batched_by_class(boxes, scores, idxs, iou_threshold):
    out = [torch.where(idxs == c)[0][_nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
           for c in torch.unique(idxs)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


@MUTANTS.add("05.batched_nms", "per class, returns the indices within each class (not into the input)")
def batched_local_indices(boxes, scores, idxs, iou_threshold):
    out = [_nms(boxes[idxs == c], scores[idxs == c], iou_threshold) for c in torch.unique(idxs)]
    if not out:
        return torch.zeros(0, dtype=torch.int64)
    kept = torch.cat(out)
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]


@MUTANTS.add("05.batched_nms", "boxes shifted apart by a fixed idxs * 1000: boxes 1000 pixels apart then overlap")
def batched_fixed_offset(boxes, scores, idxs, iou_threshold):
    return _nms(boxes + idxs[:, None].to(boxes) * 1000.0, scores, iou_threshold)


@MUTANTS.add("05.batched_nms", "loops over classes 0 .. K-1 (K distinct ids): other class ids are dropped")
def batched_ids_from_zero(boxes, scores, idxs, iou_threshold):
    keep = [torch.where(idxs == c)[0][_nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
            for c in range(len(torch.unique(idxs)))]
    kept = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64)
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]


@MUTANTS.add("05.batched_nms", "equal scores: the last first")
def batched_reversed_ties(boxes, scores, idxs, iou_threshold):
    shifted = boxes + idxs[:, None].to(boxes) * (boxes.max() + 1) if len(boxes) else boxes
    return _nms(shifted, scores, iou_threshold, order=torch.argsort(scores, stable=True).flip(0))


# ---- 05.average_precision ---------------------------------------------------------------------
def _coco_ap(preds, targets, max_dets=100, points=101, monotone=True, thresholds=None, empty_classes=False,
             cap=True, area=False, reuse=False, first_match=False, strict=False, tp_first=False, cap_all=False,
             cap_input_order=False):
    thresholds = np.linspace(0.5, 0.95, 10) if thresholds is None else np.asarray(thresholds)
    classes = sorted({int(c) for d in [*preds, *targets] for c in d["labels"].tolist()})
    if cap_all:   # the max_dets best detections of each image, whatever their class
        preds = [{k: v[torch.sort(p["scores"], descending=True, stable=True).indices[:max_dets]] for k, v in p.items()}
                 for p in preds]
    table = {}
    for c in classes:
        scores, hits, n_gt = [], [], 0
        for p, t in zip(preds, targets):
            s = p["scores"][p["labels"] == c].double().numpy()
            order = np.argsort(-s, kind="stable")
            if cap_input_order:
                order = np.arange(len(s))[:max_dets]
                order = order[np.argsort(-s[order], kind="stable")]
            elif cap and not cap_all:
                order = order[:max_dets]
            dt = p["boxes"][p["labels"] == c].double().numpy()[order]
            gt = t["boxes"][t["labels"] == c].double().numpy()
            n_gt += len(gt)
            iou = _iou(torch.from_numpy(dt), torch.from_numpy(gt)).numpy()
            h = np.zeros((len(thresholds), len(dt)), dtype=bool)
            for k, th in enumerate(thresholds):
                taken = np.zeros(len(gt), dtype=bool)
                for d in range(len(dt)):
                    over = iou[d] > th if strict else iou[d] >= th - 1e-12
                    cand = np.where((reuse | ~taken) & over)[0] if len(gt) else []
                    if len(cand):
                        g = cand[0] if first_match else cand[np.argmax(iou[d, cand])]
                        taken[g], h[k, d] = True, True
            scores.append(s[order])
            hits.append(h)
        table[c] = (np.concatenate(scores), np.concatenate(hits, 1), n_gt)
    out = {}
    for key, sl in (("map", slice(None)), ("map_50", slice(0, 1)), ("map_75", slice(5, 6))):
        aps = []
        for s, h, n_gt in table.values():
            if n_gt == 0:
                if empty_classes:
                    aps += [0.0] * len(thresholds[sl])
                continue
            rows = h[sl]
            for row in rows:
                row = row[np.lexsort((~row, -s))] if tp_first else row[np.argsort(-s, kind="stable")]
                tp = np.cumsum(row)
                rec, prec = tp / n_gt, tp / np.arange(1, len(row) + 1)
                if monotone:
                    prec = np.maximum.accumulate(prec[::-1])[::-1] if len(prec) else prec
                if area:
                    aps.append(float(np.sum(np.diff(np.concatenate([[0], rec])) * prec)))
                    continue
                grid = np.linspace(0, 1, points)
                at = np.searchsorted(rec, grid, side="left")
                aps.append(float(np.where(at < len(prec),
                                          prec[np.minimum(at, max(len(prec) - 1, 0))] if len(prec) else 0,
                                          0).mean()))
        out[key] = float(np.mean(aps)) if aps else -1.0
    return out


@MUTANTS.add("05.average_precision", "VOC's 11 recall points instead of COCO's 101")
def ap_eleven_points(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, points=11)


@MUTANTS.add("05.average_precision", "precision not made monotone before reading it off")
def ap_not_monotone(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, monotone=False)


@MUTANTS.add("05.average_precision", "only IoU 0.5: map is AP50")
def ap_only_50(preds, targets, max_dets=100):
    out = _coco_ap(preds, targets, max_dets)
    return dict(out, map=out["map_50"])


@MUTANTS.add("05.average_precision", "classes without ground truth count as AP 0")
def ap_empty_classes(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, empty_classes=True)


@MUTANTS.add("05.average_precision", "ignores max_dets")
def ap_no_cap(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, cap=False)


@MUTANTS.add("05.average_precision", "area under the raw precision-recall steps instead of 101-point interpolation")
def ap_area(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, area=True)


@MUTANTS.add("05.average_precision", "a ground-truth box can be matched twice (no 'taken' flag): a duplicate is a hit")
def ap_gt_reused(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, reuse=True)


@MUTANTS.add("05.average_precision", "a detection takes the first free ground truth over the threshold, not the best")
def ap_first_match(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, first_match=True)


@MUTANTS.add("05.average_precision", "a hit needs IoU > threshold (COCO: >=)")
def ap_strict_threshold(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, strict=True)


@MUTANTS.add("05.average_precision", "equal scores: true positives ranked before false positives")
def ap_tp_first(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, tp_first=True)


@MUTANTS.add("05.average_precision", "max_dets per image over all classes (COCO: per image and class)")
def ap_cap_all_classes(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, cap_all=True)


@MUTANTS.add("05.average_precision", "max_dets: the first detections as given, not the best-scored")
def ap_cap_input_order(preds, targets, max_dets=100):
    return _coco_ap(preds, targets, max_dets, cap_input_order=True)


# ---- cheats: the library functions the exercises put off-limits -------------------------------
@CHEATS.add("05.box_iou", "torchvision.ops.box_iou")
def iou_torchvision(boxes1, boxes2):
    import torchvision

    return torchvision.ops.box_iou(boxes1, boxes2)


@CHEATS.add("05.roi_pool", "torchvision.ops.roi_pool")
def pool_torchvision(features, boxes, output_size, spatial_scale=1.0):
    from torchvision.ops import roi_pool

    return roi_pool(features, boxes, output_size, spatial_scale)


@CHEATS.add("05.roi_align", "torchvision.ops.RoIAlign")
def align_torchvision(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    from torchvision.ops import RoIAlign

    return RoIAlign(output_size, spatial_scale, sampling_ratio, aligned)(features, boxes)


@CHEATS.add("05.anchors", "torchvision's AnchorGenerator")
def anchors_torchvision(grid_size, stride, sizes, aspect_ratios):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    gen = AnchorGenerator((tuple(sizes),), (tuple(aspect_ratios),))
    return gen.grid_anchors([grid_size], [[torch.tensor(s) for s in stride]])[0]


@CHEATS.add("05.encode", "torchvision's BoxCoder.encode_single")
def encode_torchvision(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    from torchvision.models.detection._utils import BoxCoder

    return BoxCoder(weights).encode_single(boxes, references)


@CHEATS.add("05.decode", "torchvision's BoxCoder.decode_single")
def decode_torchvision(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    from torchvision.models.detection._utils import BoxCoder

    return BoxCoder(weights).decode_single(codes, references)


@CHEATS.add("05.match", "torchvision's Matcher")
def match_torchvision(quality, high, low, allow_low_quality_matches=False):
    from torchvision.models.detection._utils import Matcher

    return Matcher(high, low, allow_low_quality_matches)(quality)


@CHEATS.add("05.nms", "torchvision.ops.nms")
def nms_torchvision(boxes, scores, iou_threshold):
    import torchvision

    return torchvision.ops.nms(boxes, scores, iou_threshold)


@CHEATS.add("05.batched_nms", "torchvision.ops.batched_nms")
def batched_torchvision(boxes, scores, idxs, iou_threshold):
    import torchvision

    return torchvision.ops.batched_nms(boxes, scores, idxs, iou_threshold)


@CHEATS.add("05.average_precision", "torchmetrics' MeanAveragePrecision (pycocotools inside)")
def ap_torchmetrics(preds, targets, max_dets=100):
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", max_detection_thresholds=[1, 10, max_dets])
    metric.update(preds, targets)
    out = metric.compute()
    return {k: float(out[k]) for k in ("map", "map_50", "map_75")}



# ---- cheats: the compiled kernels behind torchvision.ops (torch.ops.torchvision), every way of calling them -----
@CHEATS.add("05.box_iou", "torchvision's compiled box_iou_rotated with angle 0")
def iou_rotated(boxes1, boxes2):
    def cxcywhr(b):
        return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1],
                            torch.zeros_like(b[:, 0])], 1)

    return torch.ops.torchvision.box_iou_rotated(cxcywhr(boxes1), cxcywhr(boxes2))


@CHEATS.add("05.roi_pool", "the compiled op torch.ops.torchvision.roi_pool")
def pool_compiled(features, boxes, output_size, spatial_scale=1.0):
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    rois = roi._rois(boxes, features)
    return torch.ops.torchvision.roi_pool(features, rois, spatial_scale, size[0], size[1])[0]


@CHEATS.add("05.roi_align", "the compiled op torch.ops.torchvision.roi_align.default")
def align_compiled(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    rois = roi._rois(boxes, features)
    return torch.ops.torchvision.roi_align.default(features, rois, spatial_scale, size[0], size[1], sampling_ratio,
                                                   aligned)


@CHEATS.add("05.nms", "the compiled op torch.ops.torchvision.nms (the packet)")
def nms_compiled(boxes, scores, iou_threshold):
    return torch.ops.torchvision.nms(boxes, scores, iou_threshold)


@CHEATS.add("05.nms", "the compiled op by name: getattr(torch.ops.torchvision, 'nms').default")
def nms_compiled_getattr(boxes, scores, iou_threshold):
    return getattr(getattr(torch.ops, "torchvision"), "nms").default(boxes, scores, iou_threshold)  # noqa: B009 - by name on purpose


@CHEATS.add("05.batched_nms", "the compiled op torch.ops.torchvision.nms.default on boxes shifted apart by class")
def batched_compiled(boxes, scores, idxs, iou_threshold):
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.int64)
    shifted = boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None]
    return torch.ops.torchvision.nms.default(shifted, scores, iou_threshold)


# ---- cheats: the course's own code for the answer, private helpers included ---------------------------
@CHEATS.add("05.box_iou", "the course's paired_box_iou, broadcast to all pairs")
def iou_course_paired(boxes1, boxes2):
    from course_utils.structures.boxes import paired_box_iou

    return paired_box_iou(boxes1[:, None], boxes2[None])


@CHEATS.add("05.roi_align", "the course's private roi_ops._bilinear sampler")
def align_course_bilinear(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    from course_utils.ops import roi_ops

    roi_ops._bilinear(features[0], torch.zeros(1), torch.zeros(1))
    return roi.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned)


@CHEATS.add("05.anchors", "the course's base_anchors, shifted over the grid")
def anchors_course_base(grid_size, stride, sizes, aspect_ratios):
    from course_utils.ops.anchors import base_anchors

    ys, xs = torch.meshgrid(torch.arange(grid_size[0]) * stride[0], torch.arange(grid_size[1]) * stride[1],
                            indexing="ij")
    shifts = torch.stack([xs.reshape(-1), ys.reshape(-1)] * 2, 1)
    return (shifts[:, None] + base_anchors(sizes, aspect_ratios)[None]).reshape(-1, 4).float()


@CHEATS.add("05.average_precision", "the course's private matching and IoU (evaluation.detection._match, _coco_iou)")
def ap_course_private(preds, targets, max_dets=100):
    from course_utils.evaluation import detection

    box = np.array([[0.0, 0.0, 1.0, 1.0]])
    detection._match(detection._coco_iou(box, box), 0.5)
    return _coco_ap(preds, targets, max_dets)


@CHEATS.add("05.average_precision",
            "the course's public AP of one ranked list (evaluation.detection.average_precision)")
def ap_course_one_list(preds, targets, max_dets=100):
    from course_utils.evaluation import detection

    detection.average_precision(torch.ones(1, dtype=torch.bool), 1)
    return _coco_ap(preds, targets, max_dets)


@CHEATS.add("05.average_precision", "the course's coco_map (the reference)")
def ap_course(preds, targets, max_dets=100):
    from course_utils.evaluation import coco_map

    return coco_map(preds, targets, max_dets)
