"""Lab 05 (from R-CNN to Faster R-CNN): correct implementations written another way than the course's."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from mutants import Collection

from course_utils.ops import nms as _nms
from course_utils.structures import boxes as _boxes

PROBES = Collection()


# ---- 05.box_iou ------------------------------------------------------------------------------
@PROBES.add("05.box_iou", "float64 inside, cast back to the boxes' dtype")
def iou_float64(boxes1, boxes2):
    a, b = boxes1.double(), boxes2.double()
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    h = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp(min=0)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), 0.0).to(boxes1.dtype)


@PROBES.add("05.box_iou", "two Python loops over the pairs, Python floats")
def iou_loops(boxes1, boxes2):
    out = torch.zeros(len(boxes1), len(boxes2), dtype=boxes1.dtype)
    for i, (ax1, ay1, ax2, ay2) in enumerate(boxes1.tolist()):
        for j, (bx1, by1, bx2, by2) in enumerate(boxes2.tolist()):
            inter = max(min(ax2, bx2) - max(ax1, bx1), 0.0) * max(min(ay2, by2) - max(ay1, by1), 0.0)
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


# ---- 05.roi_pool and 05.roi_align ------------------------------------------------------------
def _as_rois(boxes, features):
    """K x 5 rows (batch index, x1, y1, x2, y2) from either layout."""
    if isinstance(boxes, (list, tuple)):
        rows = [torch.cat([torch.full((len(b), 1), float(i), dtype=features.dtype), b], 1) for i, b in enumerate(boxes)]
        return torch.cat(rows) if rows else features.new_zeros(0, 5)
    return boxes


def _rounded_rois(features, boxes, output_size, spatial_scale):
    """The zeros ``K x C x PH x PW`` to fill, ``(PH, PW)``, and ``(k, image, x1, y1, x2, y2)`` per box: the
    corners in feature cells, rounded as C's round does (halves away from 0, math.copysign)."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    rois = _as_rois(boxes, features)
    scale = torch.tensor(spatial_scale, dtype=features.dtype)
    corners = [[int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v))) for v in roi[1:] * scale] for roi in rois]
    return (features.new_zeros(len(rois), features.shape[1], ph, pw), (ph, pw),
            [(k, int(roi[0]), *xy) for k, (roi, xy) in enumerate(zip(rois, corners))])


@PROBES.add("05.roi_pool", "loops over boxes and bins, C's round written with math.copysign (the lab's solution)")
def pool_loops(features, boxes, output_size, spatial_scale=1.0):
    out, (ph, pw), rounded = _rounded_rois(features, boxes, output_size, spatial_scale)
    h, w = features.shape[2:]
    for k, image, x1, y1, x2, y2 in rounded:
        bin_h = torch.tensor(float(max(y2 - y1 + 1, 1)), dtype=features.dtype) / ph
        bin_w = torch.tensor(float(max(x2 - x1 + 1, 1)), dtype=features.dtype) / pw
        for i in range(ph):
            hs = min(max(int(torch.floor(i * bin_h)) + y1, 0), h)
            he = min(max(int(torch.ceil((i + 1) * bin_h)) + y1, 0), h)
            for j in range(pw):
                ws = min(max(int(torch.floor(j * bin_w)) + x1, 0), w)
                we = min(max(int(torch.ceil((j + 1) * bin_w)) + x1, 0), w)
                if he > hs and we > ws:
                    out[k, :, i, j] = features[image, :, hs:he, ws:we].amax(dim=(1, 2))
    return out


@PROBES.add("05.roi_pool", "the rounded box cut out of the map padded with -inf, F.adaptive_max_pool2d (the same "
                           "floor / ceil bins), empty bins set to 0")
def pool_adaptive(features, boxes, output_size, spatial_scale=1.0):
    out, (ph, pw), rounded = _rounded_rois(features, boxes, output_size, spatial_scale)
    _, c, h, w = features.shape
    for k, image, x1, y1, x2, y2 in rounded:
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        region = features.new_full((c, rh, rw), -math.inf)
        top, left, bottom, right = max(y1, 0), max(x1, 0), min(y1 + rh, h), min(x1 + rw, w)
        if bottom > top and right > left:
            region[:, top - y1:bottom - y1, left - x1:right - x1] = features[image, :, top:bottom, left:right]
        pooled = F.adaptive_max_pool2d(region[None], (ph, pw))[0]
        out[k] = torch.where(torch.isinf(pooled), torch.zeros_like(pooled), pooled)
    return out


def _bilinear(fmap, y, x):
    """C x len(y) x len(x) samples of fmap C x H x W (pixel centres at integers, 0 beyond one pixel outside)."""
    _, h, w = fmap.shape

    def axis(t, size):
        valid = (t >= -1.0) & (t <= size)
        t = t.clamp(min=0)
        low = t.floor().long().clamp(max=size - 1)
        t = torch.where(low >= size - 1, low.to(t.dtype), t)
        high = (low + 1).clamp(max=size - 1)
        return low, high, t - low.to(t.dtype), valid

    y0, y1, fy, vy = axis(y, h)
    x0, x1, fx, vx = axis(x, w)
    top = fmap[:, y0][:, :, x0] * (1 - fx) + fmap[:, y0][:, :, x1] * fx
    bottom = fmap[:, y1][:, :, x0] * (1 - fx) + fmap[:, y1][:, :, x1] * fx
    return (top * (1 - fy)[:, None] + bottom * fy[:, None]) * (vy[:, None] & vx[None, :])


def _align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, dtype):
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    rois = _as_rois(boxes, features)
    out = features.new_zeros(len(rois), features.shape[1], ph, pw)
    for k, roi in enumerate(rois):
        x1, y1, x2, y2 = (roi[1:].to(dtype) * spatial_scale - (0.5 if aligned else 0.0)).unbind()
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
        bin_h, bin_w = roi_h / ph, roi_w / pw
        n_h = sampling_ratio if sampling_ratio > 0 else math.ceil(float(bin_h))
        n_w = sampling_ratio if sampling_ratio > 0 else math.ceil(float(bin_w))
        if n_h <= 0 or n_w <= 0:
            continue
        ys = (y1 + torch.arange(ph, dtype=dtype)[:, None] * bin_h
              + (torch.arange(n_h, dtype=dtype)[None] + 0.5) * bin_h / n_h)
        xs = (x1 + torch.arange(pw, dtype=dtype)[:, None] * bin_w
              + (torch.arange(n_w, dtype=dtype)[None] + 0.5) * bin_w / n_w)
        samples = _bilinear(features[int(roi[0])].to(dtype), ys.reshape(-1), xs.reshape(-1))
        out[k] = samples.reshape(-1, ph, n_h, pw, n_w).mean(dim=(2, 4)).to(features.dtype)
    return out


@PROBES.add("05.roi_align", "loops over the boxes, a bin's samples gathered at once (the lab's solution)")
def align_loops(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    scale = float(torch.tensor(spatial_scale, dtype=features.dtype))
    return _align(features, boxes, output_size, scale, sampling_ratio, aligned, features.dtype)


@PROBES.add("05.roi_align", "the same in float64: coordinates, samples and means")
def align_float64(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, torch.float64)


# ---- 05.anchors ------------------------------------------------------------------------------
@PROBES.add("05.anchors", "Python loops over the cells and the base anchors, rounded with torch.round")
def anchors_loops(grid_size, stride, sizes, aspect_ratios):
    base = []
    for r in aspect_ratios:
        h_ratio = torch.sqrt(torch.tensor(r, dtype=torch.float32))
        for s in sizes:
            s = torch.tensor(s, dtype=torch.float32)
            ws, hs = s / h_ratio, s * h_ratio
            base.append(torch.round(torch.stack([-ws, -hs, ws, hs]) / 2))
    rows = []
    for i in range(grid_size[0]):
        for j in range(grid_size[1]):
            shift = torch.tensor([j * stride[1], i * stride[0]] * 2, dtype=torch.float32)
            rows += [shift + b for b in base]
    return torch.stack(rows) if rows else torch.zeros(0, 4)


@PROBES.add("05.anchors", "numpy: the base anchors with np.round (also halves to even), broadcast over the grid")
def anchors_numpy(grid_size, stride, sizes, aspect_ratios):
    r = np.sqrt(np.asarray(aspect_ratios, dtype=np.float32))[:, None]
    s = np.asarray(sizes, dtype=np.float32)[None, :]
    ws, hs = (s / r).reshape(-1), (s * r).reshape(-1)
    base = np.round(np.stack([-ws, -hs, ws, hs], 1) / np.float32(2))
    ys, xs = np.meshgrid(np.arange(grid_size[0]) * stride[0], np.arange(grid_size[1]) * stride[1], indexing="ij")
    shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], 1).astype(np.float32)
    return torch.from_numpy((shifts[:, None] + base[None]).reshape(-1, 4))


# ---- 05.encode and 05.decode ------------------------------------------------------------------
def _centre_size(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


@PROBES.add("05.encode", "float64 inside, log(w) - log(w_a), cast back")
def encode_float64(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    x, y, w, h = _centre_size(boxes.double())
    xa, ya, wa, ha = _centre_size(references.double())
    wx, wy, ww, wh = weights
    codes = torch.stack([wx * (x - xa) / wa, wy * (y - ya) / ha,
                         ww * (w.log() - wa.log()), wh * (h.log() - ha.log())], 1)
    return codes.to(boxes.dtype)


@PROBES.add("05.encode", "centres as (x1 + x2) / 2, one row at a time")
def encode_rows(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    wx, wy, ww, wh = weights
    out = torch.zeros(len(boxes), 4, dtype=boxes.dtype)
    for i, (b, r) in enumerate(zip(boxes, references)):
        w, h, wa, ha = b[2] - b[0], b[3] - b[1], r[2] - r[0], r[3] - r[1]
        x, y, xa, ya = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
        out[i] = torch.stack([wx * (x - xa) / wa, wy * (y - ya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)])
    return out


@PROBES.add("05.decode", "float64 inside, cast back")
def decode_float64(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    xa, ya, wa, ha = _centre_size(references.double())
    c = codes.double().reshape(codes.shape[0], codes.shape[1] // 4, 4)
    wx, wy, ww, wh = weights
    clip = math.log(1000.0 / 16)
    x, y = c[..., 0] / wx * wa[:, None] + xa[:, None], c[..., 1] / wy * ha[:, None] + ya[:, None]
    w, h = (c[..., 2] / ww).clamp(max=clip).exp() * wa[:, None], (c[..., 3] / wh).clamp(max=clip).exp() * ha[:, None]
    return torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 2).reshape(codes.shape).to(codes.dtype)


@PROBES.add("05.decode", "a loop over the K boxes of each reference, torch.minimum for the clamp")
def decode_per_box(codes, references, weights=(1.0, 1.0, 1.0, 1.0)):
    xa, ya, wa, ha = _centre_size(references.to(codes.dtype))
    clip = torch.tensor(math.log(1000.0 / 16), dtype=codes.dtype)
    out = torch.empty_like(codes)
    for k in range(codes.shape[1] // 4):
        dx, dy, dw, dh = (codes[:, 4 * k + i] / weights[i] for i in range(4))
        x, y = dx * wa + xa, dy * ha + ya
        w, h = torch.exp(torch.minimum(dw, clip)) * wa, torch.exp(torch.minimum(dh, clip)) * ha
        out[:, 4 * k:4 * k + 4] = torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], 1)
    return out


# ---- 05.match --------------------------------------------------------------------------------
@PROBES.add("05.match", "a Python loop over the predictions")
def match_loop(quality, high, low, allow_low_quality_matches=False):
    m, n = quality.shape
    out = torch.full((n,), -1, dtype=torch.int64)
    if m == 0 or n == 0:
        return out
    best_of_gt = quality.max(1).values
    for j in range(n):
        column = quality[:, j]
        best, i = float(column.max()), int(column.argmax())
        out[j] = i if best >= high else (-2 if best >= low else -1)
        if allow_low_quality_matches and bool((column == best_of_gt).any()):
            out[j] = i
    return out


@PROBES.add("05.match", "vectorised with torch.where, the low-quality rule as an any() over the ground truth")
def match_where(quality, high, low, allow_low_quality_matches=False):
    m, n = quality.shape
    if m == 0 or n == 0:
        return torch.full((n,), -1, dtype=torch.int64)
    best, idx = quality.max(0)
    out = torch.where(best >= high, idx, torch.where(best >= low, -2, -1))
    if allow_low_quality_matches:
        out = torch.where((quality == quality.max(1, keepdim=True).values).any(0), idx, out)
    return out


# ---- 05.nms and 05.batched_nms ----------------------------------------------------------------
@PROBES.add("05.nms", "the classic loop: take the best remaining box, drop the ones it overlaps (own IoU)")
def nms_remaining(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if order:
            iou = iou_float32(boxes[best][None], boxes[order])[0]
            order = [i for i, v in zip(order, iou.tolist()) if not v > iou_threshold]
    return torch.tensor(keep, dtype=torch.int64)


def iou_float32(a, b):
    wh = (torch.minimum(a[:, None, 2:], b[None, :, 2:]) - torch.maximum(a[:, None, :2], b[None, :, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = (((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
             + ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None] - inter)
    return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), torch.zeros_like(inter))


@PROBES.add("05.nms", "with the course's box_iou (as after fallback: the lab says your box_iou is fine)")
def nms_course_iou(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices
    over = _boxes.box_iou(boxes[order], boxes[order]) > iou_threshold
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= over[i]
    return order[torch.tensor(keep, dtype=torch.int64)]


@PROBES.add("05.batched_nms", "NMS class by class, the kept indices merged by score (equal scores: input order)")
def batched_per_class(boxes, scores, idxs, iou_threshold):
    kept = [torch.where(idxs == c)[0][nms_remaining(boxes[idxs == c], scores[idxs == c], iou_threshold)]
            for c in torch.unique(idxs)]
    kept = torch.cat(kept).sort().values if kept else torch.zeros(0, dtype=torch.int64)
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]


@PROBES.add("05.batched_nms", "the course's nms (as after fallback) on boxes shifted apart by class")
def batched_course_nms(boxes, scores, idxs, iou_threshold):
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return _nms.nms(boxes + offsets[:, None], scores, iou_threshold)


# ---- 05.average_precision ---------------------------------------------------------------------
def _coco(preds, targets, max_dets, thresholds, recall_points):
    classes = sorted({int(c) for d in [*preds, *targets] for c in d["labels"].tolist()})
    per_class = []
    for c in classes:
        scores, hits, n_gt = [], [], 0
        for p, t in zip(preds, targets):
            s = p["scores"][p["labels"] == c].double().numpy()
            order = np.argsort(-s, kind="stable")[:max_dets]
            dt, gt = p["boxes"][p["labels"] == c][order].double(), t["boxes"][t["labels"] == c].double()
            iou = _boxes.box_iou(dt, gt).numpy()
            h = np.zeros((len(thresholds), len(dt)), dtype=bool)
            for k, th in enumerate(thresholds):
                taken = np.zeros(len(gt), dtype=bool)
                for d in range(len(dt)):
                    free = np.where(~taken & (iou[d] >= th))[0]
                    if len(free):                  # the free box it overlaps most (of equals, the last)
                        g = free[len(free) - 1 - np.argmax(iou[d, free][::-1])]
                        taken[g], h[k, d] = True, True
            scores.append(s[order])
            hits.append(h)
            n_gt += len(gt)
        per_class.append((np.concatenate(scores), np.concatenate(hits, 1), n_gt))
    out = {}
    for key, rows in (("map", slice(None)), ("map_50", slice(0, 1)), ("map_75", slice(5, 6))):
        aps = []
        for s, h, n_gt in per_class:
            if n_gt == 0:
                continue
            for row in h[:, np.argsort(-s, kind="stable")][rows]:
                tp = np.cumsum(row)
                recall, precision = tp / n_gt, tp / np.arange(1, len(row) + 1)
                precision = np.maximum.accumulate(precision[::-1])[::-1]
                at = np.searchsorted(recall, recall_points, side="left")
                read = precision[np.minimum(at, len(row) - 1)] if len(row) else np.zeros(len(at))
                aps.append(float(np.where(at < len(row), read, 0.0).mean()))
        out[key] = float(np.mean(aps)) if aps else -1.0
    return out


@PROBES.add("05.average_precision", "pycocotools' own grids: np.linspace(.5, .95, 10), np.linspace(0, 1, 101), float64")
def ap_pycocotools_grids(preds, targets, max_dets=100):
    return _coco(preds, targets, max_dets, np.linspace(0.5, 0.95, 10), np.linspace(0.0, 1.0, 101))


@PROBES.add("05.average_precision", "torchmetrics' float32 grids (torch.linspace), as the lab's solution")
def ap_torchmetrics_grids(preds, targets, max_dets=100):
    return _coco(preds, targets, max_dets, torch.linspace(0.5, 0.95, 10).double().numpy(),
                 torch.linspace(0.0, 1.0, 101).double().numpy())


@PROBES.add("05.average_precision", "matching for all thresholds at once per detection; precision read by a loop "
                                    "over the recall points")
def ap_vectorised_thresholds(preds, targets, max_dets=100):
    thresholds = np.linspace(0.5, 0.95, 10)
    classes = sorted({int(c) for d in [*preds, *targets] for c in d["labels"].tolist()})
    per_class = []
    for c in classes:
        entries, n_gt = [], 0                        # (score, image, rank, hits over thresholds)
        for image, (p, t) in enumerate(zip(preds, targets)):
            mask = p["labels"] == c
            order = torch.sort(p["scores"][mask], descending=True, stable=True).indices[:max_dets]
            dt, gt = p["boxes"][mask][order], t["boxes"][t["labels"] == c]
            iou = _boxes.box_iou(dt.double(), gt.double()).numpy()
            taken = np.zeros((len(thresholds), len(gt)), dtype=bool)
            for rank in range(len(dt)):
                hit = np.zeros(len(thresholds), dtype=bool)
                if len(gt):                          # T x G: the free boxes over each threshold, best last of equals
                    over = ~taken & (iou[rank][None, :] >= thresholds[:, None])
                    candidates = np.where(over, iou[rank][None, :], -1.0)
                    best = len(gt) - 1 - np.argmax(candidates[:, ::-1], 1)
                    hit = candidates.max(1) >= 0
                    taken[np.where(hit)[0], best[hit]] = True
                entries.append((float(p["scores"][mask][order][rank]), image, rank, hit))
            n_gt += len(gt)
        entries.sort(key=lambda e: (-e[0], e[1], e[2]))
        per_class.append((np.array([e[3] for e in entries]).reshape(len(entries), len(thresholds)), n_gt))
    out = {}
    for key, cols in (("map", range(10)), ("map_50", [0]), ("map_75", [5])):
        aps = []
        for hits, n_gt in per_class:
            if n_gt == 0:
                continue
            for t in cols:
                tp = np.cumsum(hits[:, t]) if len(hits) else np.zeros(0)
                recall, precision = tp / n_gt, tp / np.arange(1, len(tp) + 1)
                total = 0.0
                for r in np.linspace(0.0, 1.0, 101):
                    reached = np.where(recall >= r)[0]
                    total += precision[reached[0]:].max() if len(reached) else 0.0
                aps.append(total / 101)
        out[key] = float(np.mean(aps)) if aps else -1.0
    return out
