"""Lab 08 exercises: panoptic segmentation -- Panoptic FPN's merge of stuff and things into one map, and
panoptic quality exactly as the COCO reference defines it.

The references are :func:`course_utils.ops.panoptic.merge_panoptic` (detectron2's
``combine_semantic_and_instance_outputs`` with a stable order on ties; ``tests/test_lab08.py`` holds it
equal to a transcription of detectron2's loop) and :func:`course_utils.evaluation.panoptic.panoptic_quality`
(panopticapi's ``pq_compute``; ``tests/test_panoptic_metric.py`` holds it equal to torchmetrics'
``PanopticQuality`` wherever the two definitions agree, and to hand-computed figures where they do
not). Fixed cases first (the lecture's examples and the boundaries of every rule), then seeded random
ones. Maps are small (at most 24 x 24), so every check runs in well under a second.
"""

from __future__ import annotations

import torch

from course_utils.evaluation import panoptic as _metric
from course_utils.evaluation.panoptic import VOID
from course_utils.exercises.cases import rand_bool, rand_int
from course_utils.grading.exercise import EXACT, TIGHT, Case, Exercise
from course_utils.ops import panoptic as _merge

T = torch.tensor
STUFFS, THINGS = (0, 1, 2), (3, 4, 5)    # the scenes' numbering: sky, ground, water, then circle, square, triangle
SKY, GROUND, WATER, CIRCLE, SQUARE, TRIANGLE = 0, 1, 2, 3, 4, 5


def _rect(g: torch.Generator, h: int, w: int, low: int = 2, high: int | None = None) -> tuple[slice, slice]:
    """A random rectangle of sides ``low .. high`` (default half the image) inside ``h x w``."""
    high = high or max(low, min(h, w) // 2)
    rh, rw = rand_int(g, low, min(high, h)), rand_int(g, low, min(high, w))
    y, x = rand_int(g, 0, h - rh), rand_int(g, 0, w - rw)
    return slice(y, y + rh), slice(x, x + rw)


def _bands(g: torch.Generator, h: int, w: int, stuffs: tuple[int, ...]) -> torch.Tensor:
    """``h x w`` stuff layout: 1-3 horizontal bands of random stuff categories."""
    layout = torch.full((h, w), stuffs[rand_int(g, 0, len(stuffs) - 1)], dtype=torch.int64)
    for _ in range(rand_int(g, 0, 2)):
        layout[rand_int(g, 1, h - 1):] = stuffs[rand_int(g, 0, len(stuffs) - 1)]
    return layout


# ---- 08.merge --------------------------------------------------------------------------------
def _boxes_to_masks(h: int, w: int, rects: list[tuple[int, int, int, int]],
                    dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """``N x h x w`` masks of the rectangles ``(y0, x0, y1, x1)`` (end excluded)."""
    masks = torch.zeros(len(rects), h, w, dtype=dtype)
    for k, (y0, x0, y1, x1) in enumerate(rects):
        masks[k, y0:y1, x0:x1] = 1
    return masks


def _sky_ground(h: int, w: int, horizon: int) -> torch.Tensor:
    semantic = torch.full((h, w), SKY, dtype=torch.int64)
    semantic[horizon:] = GROUND
    return semantic


def _merge_case(semantic: torch.Tensor, rects: list, scores: list, labels: list, note: str, *,
                dtype: torch.dtype = torch.bool, **kwargs: object) -> Case:
    h, w = semantic.shape
    args = (semantic, _boxes_to_masks(h, w, rects, dtype), T(scores, dtype=torch.float32).reshape(-1),
            T(labels, dtype=torch.int64).reshape(-1), THINGS)
    return Case(args, dict(kwargs), note=note)


def _random_merge_case(g: torch.Generator) -> Case:
    h, w = rand_int(g, 10, 20), rand_int(g, 10, 20)
    semantic = _bands(g, h, w, STUFFS)
    for _ in range(rand_int(g, 0, 3)):   # the semantic model also sees things (ignored by the merge) and specks
        ys, xs = _rect(g, h, w, 1, 4)
        semantic[ys, xs] = (THINGS + STUFFS)[rand_int(g, 0, 5)]
    n = rand_int(g, 0, 7)
    rects: list[tuple[int, int, int, int]] = []
    for _ in range(n):
        if rects and rand_bool(g):  # a near-duplicate of an earlier instance: overlaps near every fraction
            y0, x0, y1, x1 = rects[rand_int(g, 0, len(rects) - 1)]
            d = [rand_int(g, -2, 2) for _ in range(4)]
            y0, x0 = min(max(0, y0 + d[0]), h - 1), min(max(0, x0 + d[1]), w - 1)
            rects.append((y0, x0, max(y0 + 1, min(h, y1 + d[2])), max(x0 + 1, min(w, x1 + d[3]))))
        else:
            ys, xs = _rect(g, h, w, 2, 8)
            rects.append((ys.start, xs.start, ys.stop, xs.stop))
    scores = [rand_int(g, 1, 8) / 8 for _ in range(n)]                 # dyadic levels: exact ties and thresholds
    labels = [THINGS[rand_int(g, 0, 2)] for _ in range(n)]
    kwargs = {"score_threshold": [0.25, 0.5, 0.625][rand_int(g, 0, 2)],
              "overlap_threshold": [0.25, 0.5, 0.75][rand_int(g, 0, 2)]}
    if rand_bool(g):
        kwargs["stuff_area"] = rand_int(g, 0, 30)
    dtype = torch.uint8 if rand_bool(g) else torch.bool
    return _merge_case(semantic, rects, scores, labels, f"random: {h} x {w}, {n} instances (some near-duplicates), "
                       f"scores in eighths (ties), {kwargs}, {str(dtype).replace('torch.', '')} masks",
                       dtype=dtype, **kwargs)


def _merge_cases(g: torch.Generator) -> list[Case]:
    scene = _sky_ground(8, 8, 4)
    cases = [
        _merge_case(scene, [(1, 1, 3, 3), (5, 4, 7, 7)], [0.9, 0.8], [CIRCLE, SQUARE],
                    "the lecture: a circle in the sky, a square on the ground; the rest is stuff (limit 0 here)",
                    stuff_area=0),
        _merge_case(scene, [(5, 4, 7, 7), (1, 1, 3, 3)], [0.6, 0.9], [SQUARE, CIRCLE],
                    "instances painted by decreasing score: ids 1, 2, ... in painting order, not input order",
                    stuff_area=0),
        _merge_case(scene, [(2, 2, 6, 6), (2, 4, 6, 8)], [0.7, 0.7], [CIRCLE, SQUARE],
                    "equal scores: input order first (a stable sort); the second loses the shared pixels (half "
                    "taken, not more than 0.5: painted)", stuff_area=0),
        _merge_case(scene, [(2, 4, 6, 8), (2, 2, 6, 6)], [0.7, 0.7], [SQUARE, CIRCLE],
                    "the same two instances listed the other way round: the other one wins", stuff_area=0),
        _merge_case(scene, [(2, 2, 6, 6), (2, 2, 6, 6)], [0.9, 0.8], [CIRCLE, CIRCLE],
                    "a full overlap: the second mask is entirely taken (fraction 1): skipped", stuff_area=0),
        _merge_case(scene, [(1, 1, 7, 7), (3, 3, 5, 5), (0, 7, 2, 8)], [0.9, 0.8, 0.7], [SQUARE, CIRCLE, TRIANGLE],
                    "an instance entirely covered by a better one: skipped, and it takes no id (the next one is 2)",
                    stuff_area=0),
        _merge_case(scene, [(0, 0, 4, 4), (0, 2, 4, 6)], [0.9, 0.8], [CIRCLE, TRIANGLE],
                    "overlap fraction exactly at the threshold (8 of 16 pixels taken, 0.5): painted, on its free "
                    "pixels only", stuff_area=0),
        _merge_case(scene, [(0, 0, 4, 4), (0, 1, 4, 5)], [0.9, 0.8], [CIRCLE, TRIANGLE],
                    "overlap fraction above the threshold (12 of 16 taken, 0.75 > 0.5): skipped", stuff_area=0),
        _merge_case(scene, [(0, 0, 4, 4), (0, 1, 4, 5)], [0.9, 0.8], [CIRCLE, TRIANGLE],
                    "overlap_threshold=0.75: 12 of 16 taken is not more than 0.75, painted", stuff_area=0,
                    overlap_threshold=0.75),
        _merge_case(scene, [(1, 1, 3, 3), (1, 5, 3, 7), (5, 1, 7, 3)], [0.5, 0.75, 0.25], [CIRCLE, SQUARE, CIRCLE],
                    "a score equal to score_threshold (0.5) is kept; below it (0.25) the loop stops", stuff_area=0),
        _merge_case(scene, [(1, 1, 3, 3), (5, 5, 7, 7)], [0.3, 0.2], [CIRCLE, SQUARE],
                    "every score under the threshold: stuff only", stuff_area=0),
        Case((scene, torch.zeros(0, 8, 8, dtype=torch.bool), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
              THINGS), {"stuff_area": 0}, note="no instances at all (an empty N = 0 list): stuff only"),
        _merge_case(scene, [(0, 0, 0, 0), (1, 1, 3, 3)], [0.9, 0.8], [SQUARE, CIRCLE],
                    "an empty mask: skipped (no division by a zero area) and it takes no id", stuff_area=0),
    ]
    specks = _sky_ground(8, 8, 5)
    specks[0, 0] = WATER
    specks[1:3, 5:7] = TRIANGLE
    wide = _sky_ground(24, 20, 22)
    wide[23] = WATER
    cases += [
        _merge_case(specks, [(4, 0, 8, 4)], [0.9], [SQUARE],
                    "the semantic map's thing pixels (a triangle with no instance) are not stuff: they stay void "
                    "(-1); one pixel of water is under stuff_area=2: void too", stuff_area=2),
        _merge_case(_sky_ground(8, 8, 6), [(5, 0, 8, 7)], [0.9], [SQUARE],
                    "stuff that the instances remove: of 16 ground pixels a square takes 14, the 2 left are under "
                    "stuff_area=3: void", stuff_area=3),
        _merge_case(_sky_ground(8, 8, 6), [(5, 0, 8, 6)], [0.9], [SQUARE],
                    "4 ground pixels left, equal to stuff_area=4: kept (only fewer pixels are removed)", stuff_area=4),
        _merge_case(_sky_ground(12, 12, 11), [], [], [],
                    "the default stuff_area scales detectron2's 4096 pixels of a 640 x 480 image to 12 x 12: "
                    "4096 * 144 / 307200 = 1.92, so 12 ground pixels stay"),
        _merge_case(_sky_ground(24, 24, 22), [(22, 0, 24, 21)], [0.9], [SQUARE],
                    "default stuff_area at 24 x 24: 4096 * 576 / 307200 = 7.68 pixels; 6 ground pixels left "
                    "become void"),
        _merge_case(wide, [(22, 0, 23, 13), (23, 0, 24, 14)], [0.9, 0.8], [CIRCLE, SQUARE],
                    "default stuff_area at 24 x 20 (H x W): 4096 * 24 * 20 / (640 * 480) = 6.4 pixels: 7 ground pixels "
                    "left are kept, 6 water pixels left become void"),
        _merge_case(scene, [(1, 1, 3, 3), (5, 4, 7, 7)], [0.9, 0.8], [CIRCLE, SQUARE],
                    "masks given as uint8 0 / 1 (nonzero is inside), not bool", dtype=torch.uint8, stuff_area=0),
    ]
    cases += [_random_merge_case(g) for _ in range(4)]
    return cases


MERGE = Exercise(
    "08.merge", title="Panoptic FPN's merge: instances by score, the overlap rule, stuff fills the rest",
    reference=_merge.merge_panoptic, cases=_merge_cases,
    hint="masks are binary (bool, or 0 / 1 integers: use masks[i].bool()); order = torch.sort(scores, "
         "descending=True, stable=True).indices; category = VOID (-1) and instance = 0 "
         "everywhere, taken = all False; for each i in order: stop (break) if scores[i] < score_threshold; skip an "
         "empty mask; skip it if (mask & taken).sum() / mask.sum() > overlap_threshold; else paint mask & ~taken with "
         "(labels[i], next id), next id += 1. Then for each category c of semantic that is not a thing: region = "
         "(semantic == c) & ~taken; paint (c, 0) unless region.sum() < stuff_area. stuff_area=None means detectron2's "
         "4096 pixels of a 640 x 480 image scaled by area: 4096 * H * W / (640 * 480). Return torch.stack([category, "
         "instance], -1), int64.",
    function="merge", tolerance=EXACT,
    off_limits=("course_utils.ops.panoptic.merge_panoptic",
                "detectron2.modeling.meta_arch.panoptic_fpn.combine_semantic_and_instance_outputs"),
    yourself="write the merge yourself",
)


# ---- 08.panoptic_quality ---------------------------------------------------------------------
def _map(*rows: str) -> torch.Tensor:
    """A panoptic map from strings, one character per pixel: ``s`` sky, ``g`` ground, ``w`` water (stuff),
    ``A``-``E`` circles (instances 1-5), ``a``-``e`` squares, ``1``-``5`` triangles, ``.`` void (-1),
    ``*`` unknown category 9 (void in a target), ``o`` a circle with instance 0 (crowd, with crowd=True)."""
    code = {"s": (SKY, 0), "g": (GROUND, 0), "w": (WATER, 0), ".": (VOID, 0), "*": (9, 0), "o": (CIRCLE, 0)}
    for k in range(5):
        code["ABCDE"[k]], code["abcde"[k]], code["12345"[k]] = (CIRCLE, k + 1), (SQUARE, k + 1), (TRIANGLE, k + 1)
    return T([[code[ch] for ch in row] for row in rows], dtype=torch.int64)


def _pq_case(pred: tuple[str, ...], target: tuple[str, ...], note: str, **kwargs: object) -> Case:
    return Case((_map(*pred), _map(*target), THINGS, STUFFS), dict(kwargs), note=note)


def random_panoptic_pair(g: torch.Generator, h: int, w: int, *, gt_void: bool = True, pred_void: bool = True,
                         crowd: bool = False, things: tuple[int, ...] = THINGS,
                         stuffs: tuple[int, ...] = STUFFS) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction and a target ``h x w x 2`` that differ as real ones do: things kept, shifted, resized,
    relabelled, dropped, merged (two objects, one instance id), false things, stuff relabelled; void
    rectangles in the target (``gt_void``: as VOID or as an unknown category 9) and in the prediction
    (``pred_void``); with ``crowd`` a crowd region (a thing, instance 0) in the target."""
    stuff_gt = _bands(g, h, w, stuffs)
    stuff_pred = stuff_gt.clone()
    if rand_bool(g):
        ys, xs = _rect(g, h, w)
        stuff_pred[ys, xs] = stuffs[rand_int(g, 0, len(stuffs) - 1)]
    target = torch.stack([stuff_gt, torch.zeros_like(stuff_gt)], -1)
    pred = torch.stack([stuff_pred, torch.zeros_like(stuff_pred)], -1)
    ids = torch.randperm(20, generator=g)[:12].tolist()          # the prediction's own instance ids
    for k in range(rand_int(g, 0, 5)):
        ys, xs = _rect(g, h, w)
        cat = things[rand_int(g, 0, len(things) - 1)]
        target[ys, xs] = T([cat, k + 1])
        action = rand_int(g, 0, 5)   # 0-1 kept, 2 moved/resized, 3 relabelled, 4 dropped, 5 merged
        if action == 4:
            continue
        if action == 2:
            d = [rand_int(g, -2, 2) for _ in range(4)]
            y0, x0 = min(max(0, ys.start + d[0]), h - 1), min(max(0, xs.start + d[1]), w - 1)
            ys, xs = slice(y0, max(y0 + 1, min(h, ys.stop + d[2]))), slice(x0, max(x0 + 1, min(w, xs.stop + d[3])))
        if action == 3:
            cat = things[rand_int(g, 0, len(things) - 1)]
        pred[ys, xs] = T([cat, ids[0] if action == 5 else ids[k + 1]])
    for k in range(rand_int(g, 0, 2)):                            # false things
        ys, xs = _rect(g, h, w, 1, 4)
        pred[ys, xs] = T([things[rand_int(g, 0, len(things) - 1)], ids[7 + k]])
    if crowd:
        ys, xs = _rect(g, h, w)
        target[ys, xs] = T([things[rand_int(g, 0, len(things) - 1)], 0])
    if gt_void:
        for _ in range(rand_int(g, 1, 2)):
            ys, xs = _rect(g, h, w, 1)
            target[ys, xs] = T([VOID if rand_bool(g) else 9, 0])
    if pred_void:
        for _ in range(rand_int(g, 1, 2)):
            ys, xs = _rect(g, h, w, 1)
            pred[ys, xs] = T([VOID, 0])
    return pred, target


def _random_pq_case(g: torch.Generator, crowd: bool = False) -> Case:
    b, h, w = rand_int(g, 1, 3), rand_int(g, 8, 16), rand_int(g, 8, 16)
    pairs = [random_panoptic_pair(g, h, w, crowd=crowd) for _ in range(b)]
    preds, target = torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs])
    return Case((preds, target, THINGS, STUFFS), {"crowd": True} if crowd else {},
                note=f"random: {b} images of {h} x {w}, things moved, resized, relabelled, dropped and merged, false "
                     f"things, void in both" + (", crowd regions (crowd=True)" if crowd else ""))


def _pq_cases(g: torch.Generator) -> list[Case]:
    perfect = ("sssss", "sAAss", "sAAgg", "ggg11", "ggg11")
    sky_ids = _map("sAAs", "sAAs", "ssss")
    sky_ids[0, 0, 1] = 7                                      # stuff with instance ids: still one segment
    batch_pred = torch.stack([_map("sAAs", "sAAs", "ssss"), _map("ssss", "ssss", "ssss")])
    batch_target = torch.stack([_map("sAAs", "sAAs", "ssss"), _map("ssss", "sBss", "ssss")])
    cases = [
        _pq_case(perfect, perfect, "a perfect prediction of one image (H x W x 2): PQ = SQ = RQ = 1 for the four "
                                   "categories present; water and square have no segment: NaN, left out of the means"),
        _pq_case(("sssss", "sAAAs", "sAAAg", "ggggg", "ggggg"), perfect,
                 "a circle predicted too big (IoU 4 / 6 > 0.5: a match with SQ < 1), a triangle missed (a false "
                 "negative), sky and ground matched with IoU < 1"),
        _pq_case(("ssss", "AAAA", "ssss", "ssss"), ("ssss", "BBBB", "BBBB", "ssss"),
                 "IoU exactly 0.5 (4 / 8): no match (IoU > 0.5 is required): a false positive and a false negative"),
        _pq_case(("sssss", "AAAss", "AAAss", "sssss"), ("sssss", "AA..s", "AA..s", "sssss"),
                 "void in the target: the union leaves out the predicted circle's 2 pixels on target void: IoU 4 / 4, "
                 "not 4 / 6"),
        _pq_case(("ssss", "AAAA", "AAAA", "ssss"), ("ssss", "..BB", "..ss", "ssss"),
                 "void in the target: union 8 + 2 - 2 - 4 (the prediction's pixels on void) = 4, IoU 2 / 4 = 0.5: no "
                 "match; the predicted circle, 4 of its 8 pixels on void (not more than half), is a false positive"),
        _pq_case(("ssss", "sAAA", "sAAA", "ssss"), ("ssss", "s...", "s..s", "Bsss"),
                 "an unmatched predicted circle with 5 of its 6 pixels on target void: not a false positive (the "
                 "target circle elsewhere is a false negative)"),
        _pq_case(("sssss", "sAAAs", "sAAAs", "sssss"), ("sssss", "s...s", "ss**s", "Bssss"),
                 "an unknown target category (9) is void like -1: the predicted circle lies 5 of 6 on void, not a "
                 "false positive; the target circle B is a false negative"),
        _pq_case(("sssss", "sAA.s", "sAA.s", "sssss"), ("sssss", "sBBBs", "sBBBs", "sssss"),
                 "void in the prediction (COCO, not torchmetrics): the union keeps the target circle's 2 pixels that "
                 "the prediction leaves void: IoU 4 / 6, not torchmetrics' 4 / 4"),
        _pq_case(("sssss", "s...s", "s.sss", "sssss"), ("sssss", "sBBBs", "sBBBs", "sssss"),
                 "a target circle mostly predicted void (4 of 6 pixels): still a false negative (COCO; torchmetrics "
                 "would not count it)"),
        _pq_case(("....", "....", "...."), ("ssAA", "ssAA", "gggg"),
                 "an empty prediction (all void): every target segment is a false negative, PQ 0"),
        _pq_case(("ssss", "sssg", "gggg"), ("ssss", "ssgg", "gggg"), "an only-stuff image"),
        _pq_case(("AABB", "AABB", "a111"), ("AACC", "AACC", "aa11"), "an only-things image (no stuff anywhere)"),
        _pq_case(("wwww", "wwww"), ("ssss", "ssss"),
                 "water predicted where there is sky: a false positive (water) and a false negative (sky)"),
        _pq_case(("s.s.", ".s.s"), ("....", "****"), "a target all void: nothing counts, NaN everywhere"),
        Case((sky_ids, _map("sAAs", "sAAs", "ssss"), THINGS, STUFFS),
             note="stuff instance ids are ignored: the prediction numbers its sky pixels 0 and 7, still one segment"),
        _pq_case(("sAAs", "sAAs", "ssss"), ("ooos", "ooos", "ssss"),
                 "crowd=True: a target circle with instance 0 is a crowd region: never matched, never a false "
                 "negative; the predicted circle lies 4 of 4 pixels on it: not a false positive", crowd=True),
        _pq_case(("ssAA", "ssAA", "ssss"), ("ooss", "ooss", "ssss"),
                 "crowd=True: a predicted circle off the crowd region is a false positive", crowd=True),
        _pq_case(("ss11", "ss11", "ssss"), ("oo11", "oo11", "ssss"),
                 "crowd=True: a crowd region only excuses predictions of its own category: the sky predicted on the "
                 "circles' crowd region keeps those pixels in its union (IoU 4 / 8, no match) and is a false "
                 "positive", crowd=True),
        _pq_case(("AAAs", "AAAs", "ssss"), ("ooss", "ooss", "ssss"),
                 "crowd=False (the default): instance 0 is an ordinary circle instance, matched (IoU 4 / 6)"),
        Case((batch_pred, batch_target, THINGS, STUFFS),
             note="two images: TP, FP, FN and IoU sums add up over the dataset before the per-class figures (circle: "
                  "TP 1, FN 1, PQ 1 / 1.5), not a mean of per-image PQs"),
        Case((torch.zeros(2, 4, 4, 2, dtype=torch.int64),
              torch.zeros(2, 4, 4, 2, dtype=torch.int64), (5, 3), [2, 0, 1]),
             note="things and stuffs as any collections (a tuple, a list), in any order"),
    ]
    for _ in range(3):
        cases.append(_random_pq_case(g))
    cases.append(_random_pq_case(g, crowd=True))
    return cases


PANOPTIC_QUALITY = Exercise(
    "08.panoptic_quality", title="PQ, SQ and RQ as COCO's panopticapi defines them (overall, things, stuff, per class)",
    reference=_metric.panoptic_quality, cases=_pq_cases,
    hint="per image: a segment is a (category, instance) pair (stuff: instance ignored; target categories outside "
         "things | stuffs and predicted -1 are void); for every target g and prediction p of the same category "
         "(g not void, not crowd): union = |p| + |g| - |p & g| - |p & target void|, a match if |p & g| / union > 0.5 "
         "(TP, add the IoU); unmatched target segments are FN (even when predicted void); an unmatched prediction is "
         "a FP unless |p & (target void + crowd of its category)| > |p| / 2. Add TP, FP, FN, IoU sums over all images; "
         "per class PQ = IoU sum / (TP + FP/2 + FN/2), SQ = IoU sum / TP (0 without TP), RQ = TP / (TP + FP/2 + "
         "FN/2); classes with TP + FP + FN = 0 get NaN and stay out of the means over all / things (_th) / stuff "
         "(_st). Return {'pq', 'sq', 'rq', 'pq_th', ..., 'rq_st', 'per_class': {c: {'pq', 'sq', 'rq', 'tp', 'fp', "
         "'fn'}}}.",
    function="panoptic_quality", tolerance=TIGHT,
    off_limits=("torchmetrics.functional.detection.panoptic_quality",
                "torchmetrics.detection.PanopticQuality.update", "torchmetrics.detection.PanopticQuality.compute",
                "torchmetrics.functional.detection._panoptic_quality_common._panoptic_quality_update_sample",
                "torchmetrics.functional.detection._panoptic_quality_common._panoptic_quality_compute",
                "course_utils.evaluation.panoptic.panoptic_quality", "course_utils.evaluation.panoptic.panoptic_stats",
                "course_utils.evaluation.panoptic.PanopticStats.summary"),
    yourself="compute the panoptic quality yourself",
)

EXERCISES = (MERGE, PANOPTIC_QUALITY)
