"""Lab 08 (panoptic segmentation): wrong implementations a student plausibly writes, and shortcuts that
call torchmetrics' PanopticQuality or the course's own merge / metric.

Both exercises are written once here, independently of the course's code (numpy, dictionaries of
segments as panopticapi keeps them), with a ``bug`` switch; ``tests/probes/lab08.py`` runs the same
functions without a bug as correct-but-different implementations."""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from mutants import Collection

MUTANTS = Collection()
CHEATS = Collection()
VOID = -1


def _register(exercise, prefix, implementation, bugs):
    """One mutant per ``(bug, what it models)``: ``implementation`` with that bug switched on."""
    for bug, doc in bugs:
        def mutant(*args, _bug=bug, **kwargs):
            return implementation(*args, bug=_bug, **kwargs)
        name = bug.replace(">=", "ge").replace(">", "gt").replace("/", "over")
        mutant.__name__ = prefix + re.sub(r"\W+", "_", name).strip("_")
        MUTANTS.add(exercise, doc)(mutant)



# ---- 08.merge --------------------------------------------------------------------------------
def merge_numpy(semantic, masks, scores, labels, things, score_threshold=0.5, overlap_threshold=0.5,
                stuff_area=None, bug=None):
    """The merge in numpy, with one ``bug`` (a name below) or none."""
    sem = semantic.cpu().numpy()
    m = masks.cpu().numpy().astype(bool)
    s = scores.cpu().double().numpy()
    lab = labels.cpu().numpy()
    h, w = sem.shape
    if stuff_area is not None:
        limit = stuff_area
    elif bug == "unscaled":
        limit = 4096
    elif bug == "side ratio":
        limit = 4096 * math.sqrt(h * w / (640 * 480))
    elif bug == "800 x 800":
        limit = 4096 * h * w / (800 * 800)
    else:
        limit = 4096 * h * w / (640 * 480)
    n = len(s)
    if bug == "input order":
        order = list(range(n))
    elif bug == "ties reversed":
        order = sorted(range(n), key=lambda i: (-s[i], -i))
    else:
        order = sorted(range(n), key=lambda i: -s[i])       # Python's sort is stable
    cat = np.full((h, w), VOID, dtype=np.int64)
    inst = np.zeros((h, w), dtype=np.int64)
    taken = np.zeros((h, w), dtype=bool)
    next_id = 1
    for i in order:
        if (s[i] <= score_threshold) if bug == "score >" else (s[i] < score_threshold):
            if bug == "input order":
                continue
            break
        area = m[i].sum()
        if area == 0:
            continue
        overlap = (m[i] & taken).sum()
        if bug == "overlap / free area":
            fraction = overlap / max(area - overlap, 1)
        else:
            fraction = overlap / area
        skip = fraction >= overlap_threshold if bug == "overlap >=" else fraction > overlap_threshold
        if bug == "no overlap rule":
            skip = False
        if skip:
            if bug == "skipped takes an id":
                next_id += 1
            continue
        paint = m[i] if bug == "paint over" else m[i] & ~taken
        cat[paint] = lab[i]
        inst[paint] = i + 1 if bug == "ids by input index" else next_id
        taken |= paint
        next_id += 1
    for c in np.unique(sem):
        if c in set(things) and bug != "stuff from things":
            continue
        region = (sem == c) & ~taken
        area = ((sem == c).sum() if bug == "area before instances" else region.sum())
        small = area <= limit if bug == "inclusive limit" else area < limit
        if small and bug != "no small stuff removal":
            continue
        cat[region] = c
    return torch.from_numpy(np.stack([cat, inst], -1))


_register("08.merge", "merge_", merge_numpy, [
    ("input order", "instances painted in input order, not sorted by score"),
    ("ties reversed", "an unstable order on ties: equal scores visited in reverse input order"),
    ("score >", "score > score_threshold: an instance scoring exactly the threshold is dropped"),
    ("overlap >=", "overlap fraction >= overlap_threshold: an instance taken exactly at the threshold is dropped"),
    ("overlap / free area", "the overlap divided by the mask's free pixels instead of its whole area"),
    ("no overlap rule", "no overlap rule: every instance paints its free pixels"),
    ("paint over", "paints the whole mask over the pixels better instances already took"),
    ("ids by input index", "instance id = position in the input (i + 1), not 1, 2, ... in painting order"),
    ("skipped takes an id", "a skipped instance still takes an instance id"),
    ("stuff from things", "stuff filled from the thing categories of the semantic map too"),
    ("no small stuff removal", "no small-stuff removal: every stuff region is kept"),
    ("unscaled", "detectron2's 4096 pixels used as they are on small images (all stuff becomes void)"),
    ("side ratio", "the 4096-pixel limit scaled by the ratio of sides, not of areas"),
    ("800 x 800", "the limit scaled from 800 x 800 images instead of detectron2's 640 x 480 COCO images"),
    ("inclusive limit", "stuff regions with exactly stuff_area pixels removed too (<= instead of <)"),
    ("area before instances", "the stuff area measured before the instances take their pixels"),
])


# ---- 08.panoptic_quality ---------------------------------------------------------------------
def pq_segments(preds, target, things, stuffs, crowd=False, bug=None):
    """panopticapi's ``pq_compute`` on dictionaries of segments, with one ``bug`` (a name below) or none.
    Returns per image ``{category: [tp, fp, fn, iou]}``."""
    things, stuffs = set(things), set(stuffs)
    known = things | stuffs
    p, t = preds.cpu().numpy(), target.cpu().numpy()
    if p.ndim == 3:
        p, t = p[None], t[None]
    void = (VOID, 0)
    images = []
    for pi, ti in zip(p, t):
        keys = {}
        for name, m in (("pred", pi), ("gt", ti)):
            cat, inst = m[..., 0].astype(np.int64), m[..., 1].astype(np.int64)
            is_void = (cat == VOID) if name == "pred" or bug == "only -1 void" else ~np.isin(cat, list(known))
            stuff = np.isin(cat, list(stuffs)) & (bug != "stuff ids kept")
            cat = np.where(is_void, VOID, cat)
            inst = np.where(is_void | stuff, 0, inst)
            keys[name] = [tuple(k) for k in np.stack([cat.ravel(), inst.ravel()], 1).tolist()]
        pred_area, gt_area, inter = {}, {}, {}
        for pk, gk in zip(keys["pred"], keys["gt"]):
            pred_area[pk] = pred_area.get(pk, 0) + 1
            gt_area[gk] = gt_area.get(gk, 0) + 1
            inter[gk, pk] = inter.get((gk, pk), 0) + 1
        crowd_of = {} if not crowd or bug == "crowd ignored" else \
            {gk[0]: gk for gk in gt_area if gk[0] in things and gk[1] == 0}
        stats = {c: [0, 0, 0, 0.0] for c in known}
        matched_g, matched_p = set(), set()
        for (gk, pk), n in inter.items():
            if gk == void or pk == void or gk[0] != pk[0] or crowd_of.get(gk[0]) == gk:
                continue
            union = pred_area[pk] + gt_area[gk] - n
            if bug != "void in union":
                union -= inter.get((void, pk), 0)
            if bug == "lenient union":
                union -= inter.get((gk, void), 0)
            if (2 * n >= union) if bug == "iou >=" else (2 * n > union):
                stats[gk[0]][0] += 1
                stats[gk[0]][3] += n / union
                matched_g.add(gk)
                matched_p.add(pk)
        for gk, area in gt_area.items():
            if gk == void or gk in matched_g or crowd_of.get(gk[0]) == gk:
                continue
            if bug == "lenient fn" and 2 * inter.get((gk, void), 0) > area:
                continue
            stats[gk[0]][2] += 1
        for pk, area in pred_area.items():
            if pk == void or pk in matched_p:
                continue
            ignored = inter.get((void, pk), 0)
            if pk[0] in crowd_of and bug != "crowd still fp":
                ignored += inter.get((crowd_of[pk[0]], pk), 0)
            if bug != "no fp filter" and ((2 * ignored >= area) if bug == "fp filter >=" else (2 * ignored > area)):
                continue
            stats[pk[0]][1] += 1
        images.append(stats)
    return images


def pq_summary(stats, things, stuffs, bug=None):
    """The result dict from ``{category: [tp, fp, fn, iou]}``."""
    nan = float("nan")
    per_class = {}
    for c in sorted(set(things) | set(stuffs)):
        tp, fp, fn, iou = stats[c]
        if tp + fp + fn == 0 and bug != "absent classes count":
            per_class[c] = {"pq": nan, "sq": nan, "rq": nan, "tp": 0, "fp": 0, "fn": 0}
            continue
        denominator = tp + fp / 2 + fn / 2
        pq = iou / denominator if denominator else 0.0
        rq = tp / denominator if denominator else 0.0
        if bug == "sq over all segments":
            sq = iou / (tp + fp + fn) if tp + fp + fn else 0.0
        else:
            sq = iou / tp if tp else 0.0
        per_class[c] = {"pq": pq, "sq": sq, "rq": rq, "tp": tp, "fp": fp, "fn": fn}
    result = {}
    for suffix, group in (("", set(things) | set(stuffs)), ("_th", set(things)), ("_st", set(stuffs))):
        rows = [per_class[c] for c in sorted(group) if not math.isnan(per_class[c]["pq"])]
        for key in ("pq", "sq", "rq"):
            result[key + suffix] = sum(r[key] for r in rows) / len(rows) if rows else nan
        if bug == "pq from means" and rows:
            result["pq" + suffix] = result["sq" + suffix] * result["rq" + suffix]
    result["per_class"] = per_class
    return result


def pq_numpy(preds, target, things, stuffs, crowd=False, bug=None):
    images = pq_segments(preds, target, things, stuffs, crowd, bug)
    if bug == "per-image mean":
        summaries = [pq_summary(s, things, stuffs) for s in images]
        result = {}
        for key in summaries[0]:
            if key == "per_class":
                continue
            values = [r[key] for r in summaries if not math.isnan(r[key])]
            result[key] = sum(values) / len(values) if values else float("nan")
        total = pq_summary(_add(images), things, stuffs)
        result["per_class"] = total["per_class"]
        return result
    return pq_summary(_add(images), things, stuffs, bug)


def _add(images):
    total = {}
    for stats in images:
        for c, row in stats.items():
            total[c] = [a + b for a, b in zip(total.get(c, [0, 0, 0, 0.0]), row)]
    return total


_register("08.panoptic_quality", "pq_", pq_numpy, [
    ("iou >=", "a match at IoU >= 0.5 (COCO requires IoU > 0.5)"),
    ("void in union", "the union keeps the predicted segment's pixels on ground-truth void"),
    ("lenient union", "torchmetrics' union: also leaves out the ground-truth segment's pixels predicted void"),
    ("lenient fn", "torchmetrics' rule: a ground-truth segment more than half predicted void is not a false negative"),
    ("no fp filter", "every unmatched prediction is a false positive, even one lying mostly on void"),
    ("fp filter >=", "a prediction exactly half on void is not counted as a false positive (>= instead of >)"),
    ("absent classes count", "classes with no segment anywhere averaged in as 0"),
    ("per-image mean", "a mean of per-image PQs instead of counts accumulated over the dataset"),
    ("sq over all segments", "SQ = IoU sum / (TP + FP + FN): averaged over all segments, not the matched ones"),
    ("pq from means", "PQ = mean SQ x mean RQ instead of the mean of the per-class PQs"),
    ("stuff ids kept", "stuff instance ids kept: a stuff category split into several segments"),
    ("crowd ignored", "crowd=True ignored: crowd regions counted as ordinary instances"),
    ("crowd still fp", "predictions lying on a crowd region of their category still counted as false positives"),
    ("only -1 void", "only category -1 is void in the target (an unknown category 9 is not)"),
])


# ---- shortcuts -------------------------------------------------------------------------------
@CHEATS.add("08.merge", "course_utils.ops.panoptic.merge_panoptic")
def merge_course(semantic, masks, scores, labels, things, score_threshold=0.5, overlap_threshold=0.5,
                 stuff_area=None):
    from course_utils.ops.panoptic import merge_panoptic

    return merge_panoptic(semantic, masks, scores, labels, things, score_threshold, overlap_threshold, stuff_area)


@CHEATS.add("08.panoptic_quality", "torchmetrics.functional.detection.panoptic_quality")
def pq_torchmetrics_functional(preds, target, things, stuffs, crowd=False):
    from torchmetrics.functional.detection import panoptic_quality

    batch = preds if preds.ndim == 4 else preds[None]
    truth = target if target.ndim == 4 else target[None]
    pq = panoptic_quality(batch, truth, set(things), set(stuffs), allow_unknown_preds_category=True)
    return {"pq": float(pq)}


@CHEATS.add("08.panoptic_quality", "torchmetrics.detection.PanopticQuality")
def pq_torchmetrics_class(preds, target, things, stuffs, crowd=False):
    from torchmetrics.detection import PanopticQuality

    metric = PanopticQuality(set(things), set(stuffs), allow_unknown_preds_category=True)
    metric.update(preds if preds.ndim == 4 else preds[None], target if target.ndim == 4 else target[None])
    return {"pq": float(metric.compute())}


@CHEATS.add("08.panoptic_quality", "course_utils.evaluation.panoptic.panoptic_quality")
def pq_course(preds, target, things, stuffs, crowd=False):
    from course_utils.evaluation.panoptic import panoptic_quality

    return panoptic_quality(preds, target, things, stuffs, crowd)


@CHEATS.add("08.panoptic_quality", "course_utils.evaluation.panoptic.panoptic_stats(...).summary()")
def pq_course_stats(preds, target, things, stuffs, crowd=False):
    from course_utils.evaluation.panoptic import panoptic_stats

    return panoptic_stats(preds, target, things, stuffs, crowd).summary()
