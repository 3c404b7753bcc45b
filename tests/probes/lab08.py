"""Lab 08 (panoptic segmentation): correct implementations that differ from the course's reference (numpy
instead of torch, loops instead of vectors, panopticapi's bookkeeping, float32 arithmetic); each must
pass its check on every seed."""

from __future__ import annotations

import torch
from mutants import Collection
from mutants.lab08 import merge_numpy, pq_numpy

PROBES = Collection()
VOID = -1


# ---- 08.merge --------------------------------------------------------------------------------
@PROBES.add("08.merge", "numpy, Python's stable sorted() on -score, the overlap as a float64 fraction")
def merge_in_numpy(semantic, masks, scores, labels, things, score_threshold=0.5, overlap_threshold=0.5,
                   stuff_area=None):
    return merge_numpy(semantic, masks, scores, labels, things, score_threshold, overlap_threshold, stuff_area)


@PROBES.add("08.merge", "panopticapi's bookkeeping: the union of the accepted whole masks ('used'), scores filtered "
                        "before a stable sort, stuff categories visited in reverse order")
def merge_used_union(semantic, masks, scores, labels, things, score_threshold=0.5, overlap_threshold=0.5,
                     stuff_area=None):
    h, w = semantic.shape
    limit = 4096 * (h * w) / (640 * 480) if stuff_area is None else stuff_area
    keep = [i for i in range(len(scores)) if scores[i].item() >= score_threshold]
    keep.sort(key=lambda i: scores[i].item(), reverse=True)      # sort(reverse=True) is stable too
    panoptic = torch.zeros(h, w, 2, dtype=torch.int64)
    panoptic[..., 0] = VOID
    used = torch.zeros(h, w, dtype=torch.bool)
    segment = 0
    for i in keep:
        mask = masks[i] != 0
        area = mask.sum().item()
        if area == 0:
            continue
        if (mask & used).sum().item() > overlap_threshold * area:   # exact: the checks use dyadic thresholds
            continue
        segment += 1
        fresh = mask & ~used
        panoptic[fresh] = torch.tensor([labels[i].item(), segment])
        used |= mask
    for c in sorted(set(semantic.unique().tolist()) - set(things), reverse=True):
        left = (semantic == c) & ~used
        if left.sum().item() >= limit:
            panoptic[left] = torch.tensor([c, 0])
    return panoptic


@PROBES.add("08.merge", "a loop over pixels: one instance at a time, each pixel claimed by the first instance")
def merge_pixel_loop(semantic, masks, scores, labels, things, score_threshold=0.5, overlap_threshold=0.5,
                     stuff_area=None):
    h, w = semantic.shape
    limit = 4096 * h * w / 307200 if stuff_area is None else stuff_area
    owner = [[0] * w for _ in range(h)]
    out = [[[VOID, 0] for _ in range(w)] for _ in range(h)]
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    painted = 0
    for i in order:
        if float(scores[i]) < score_threshold:
            break
        pixels = [(y, x) for y in range(h) for x in range(w) if masks[i, y, x]]
        taken = sum(1 for y, x in pixels if owner[y][x])
        if not pixels or taken / len(pixels) > overlap_threshold:
            continue
        painted += 1
        for y, x in pixels:
            if not owner[y][x]:
                owner[y][x] = painted
                out[y][x] = [int(labels[i]), painted]
    areas = {}
    for y in range(h):
        for x in range(w):
            c = int(semantic[y, x])
            if not owner[y][x] and c not in things:
                areas[c] = areas.get(c, 0) + 1
    for y in range(h):
        for x in range(w):
            c = int(semantic[y, x])
            if not owner[y][x] and c in areas and areas[c] >= limit:
                out[y][x] = [c, 0]
    return torch.tensor(out, dtype=torch.int64).reshape(h, w, 2)


# ---- 08.panoptic_quality ---------------------------------------------------------------------
@PROBES.add("08.panoptic_quality", "numpy and dictionaries of segments, as panopticapi's pq_compute keeps them")
def pq_dictionaries(preds, target, things, stuffs, crowd=False):
    return pq_numpy(preds, target, things, stuffs, crowd)


@PROBES.add("08.panoptic_quality", "torch, float32 IoUs, panopticapi's OFFSET trick (gt_id * OFFSET + pred_id) for "
                                   "the intersections, PQ = SQ x RQ per class")
def pq_offset_float32(preds, target, things, stuffs, crowd=False):
    things, stuffs = sorted(set(things)), sorted(set(stuffs))
    cats = things + stuffs
    if preds.ndim == 3:
        preds, target = preds[None], target[None]
    counts = {c: torch.zeros(4) for c in cats}            # tp, fp, fn, iou (float32)
    for p, t in zip(preds, target):
        ids = []
        for m, is_pred in ((t, False), (p, True)):
            cat, inst = m[..., 0].reshape(-1), m[..., 1].reshape(-1)
            void = cat == VOID if is_pred else ~torch.isin(cat, torch.tensor(cats))
            inst = torch.where(torch.isin(cat, torch.tensor(stuffs)) | void, 0, inst)
            cat = torch.where(void, VOID, cat)
            ids.append((cat + 1) * 1000 + inst)               # one int per segment; void = 0
        gt, pr = ids
        offset = 10 ** 6
        pairs, inter = torch.unique(gt * offset + pr, return_counts=True)
        g_ids, g_area = torch.unique(gt, return_counts=True)
        p_ids, p_area = torch.unique(pr, return_counts=True)
        garea = dict(zip(g_ids.tolist(), g_area.tolist()))
        parea = dict(zip(p_ids.tolist(), p_area.tolist()))
        both = {(k // offset, k % offset): n for k, n in zip(pairs.tolist(), inter.tolist())}
        crowd_of = {g // 1000 - 1: g for g in garea if crowd and g % 1000 == 0 and g // 1000 - 1 in things}
        mg, mp = set(), set()
        for (g, q), n in both.items():
            if g == 0 or q == 0 or g // 1000 != q // 1000 or crowd_of.get(g // 1000 - 1) == g:
                continue
            union = parea[q] + garea[g] - n - both.get((0, q), 0)
            iou = torch.tensor(n, dtype=torch.float32) / torch.tensor(union, dtype=torch.float32)
            if iou > 0.5:
                counts[g // 1000 - 1] += torch.tensor([1.0, 0.0, 0.0, 0.0])
                counts[g // 1000 - 1][3] += iou
                mg.add(g)
                mp.add(q)
        for g in garea:
            if g and g not in mg and crowd_of.get(g // 1000 - 1) != g:
                counts[g // 1000 - 1][2] += 1
        for q, area in parea.items():
            c = q // 1000 - 1
            ignored = both.get((0, q), 0) + (both.get((crowd_of[c], q), 0) if c in crowd_of else 0)
            if q and q not in mp and ignored / area <= 0.5:
                counts[c][1] += 1
    per_class, nan = {}, float("nan")
    for c in sorted(cats):
        tp, fp, fn, iou = counts[c].tolist()
        if tp + fp + fn == 0:
            per_class[c] = {"pq": nan, "sq": nan, "rq": nan, "tp": 0, "fp": 0, "fn": 0}
            continue
        sq = iou / tp if tp else 0.0
        rq = tp / (tp + 0.5 * fp + 0.5 * fn)
        per_class[c] = {"pq": sq * rq, "sq": sq, "rq": rq, "tp": int(tp), "fp": int(fp), "fn": int(fn)}
    result = {}
    for suffix, group in (("", cats), ("_th", things), ("_st", stuffs)):
        rows = [per_class[c] for c in group if per_class[c]["tp"] + per_class[c]["fp"] + per_class[c]["fn"]]
        for key in ("pq", "sq", "rq"):
            result[key + suffix] = sum(r[key] for r in rows) / len(rows) if rows else nan
    result["per_class"] = per_class
    return result
