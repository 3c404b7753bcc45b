"""Panoptic quality (Kirillov et al. 2019) exactly as the COCO panoptic reference defines it.

The reference is ``pq_compute`` in cocodataset/panopticapi (``panopticapi/evaluation.py``); the inputs
are torchmetrics' (``PanopticQuality``): per-pixel ``(category id, instance id)`` maps.

Inputs:

- ``preds``, ``target``: ``H x W x 2`` (one image) or ``B x H x W x 2`` (a batch) integer tensors,
  ``[..., 0]`` the category id and ``[..., 1]`` the instance id of every pixel;
- ``things``, ``stuffs``: disjoint collections of category ids (ints >= 0).

A *segment* is the set of pixels of one image with the same ``(category, instance)``. A stuff category
has one segment per image: its instance ids are ignored (set to 0), as torchmetrics does and as COCO's
panoptic format has it. A thing segment is any ``(category, instance)`` pair (instance 0 included),
unless ``crowd=True`` (below).

Void (pixels that count for nothing): :data:`VOID` ``= -1`` is the category id the course writes for a
void pixel (its instance id is ignored). In the *target* every category id outside ``things | stuffs`` is
void, torchmetrics' rule (so a 255 "ignore" label of a dataset works too). In the *prediction* only
:data:`VOID` is void and any other unknown category is an error, as in panopticapi (which refuses a
predicted segment of an unknown category): a typo in ``things`` or a stray label must not silently turn
into void. torchmetrics needs ``allow_unknown_preds_category=True`` to take the same predictions.

The rules (panopticapi's ``pq_compute_single_core``, image by image):

- a predicted and a ground-truth segment of the same category *match* when IoU > 0.5 (strictly), where
  the union leaves out the predicted segment's pixels that are void in the ground truth, and nothing
  else: ``union = |p| + |g| - |p & g| - |p & void_gt|``. IoU > 0.5 makes a match unique;
- every ground-truth segment left unmatched is a false negative (FN), whatever the prediction has there
  (void included);
- a predicted segment left unmatched is a false positive (FP), unless more than half of it is
  ground-truth void (plus, with ``crowd``, the crowd region of its own category);
- per category: ``PQ = sum(IoU of matches) / (TP + FP / 2 + FN / 2)``, ``SQ = sum(IoU) / TP`` (0 without
  a match), ``RQ = TP / (TP + FP / 2 + FN / 2)``; the counts and IoU sums are accumulated over all images
  first (the dataset's PQ, not a mean of per-image PQs);
- the overall, things and stuff figures are means over the categories that have at least one segment
  (TP + FP + FN > 0); a category with none is left out (``NaN`` in ``per_class``), and a mean over no
  category is ``NaN``.

Crowd (``crowd=True``): a target pixel of a thing category with instance id 0 belongs to that category's
crowd region (Cityscapes' convention: a group of objects labelled without instances). A crowd region is
never matched and never a false negative; a predicted segment of the same category that lies mostly on it
(together with void) is not a false positive. panopticapi keeps one crowd region per category per image
(the last one listed); here all crowd pixels of a category form that region.

Where torchmetrics' ``PanopticQuality`` differs (it agrees whenever the prediction has no void pixel):

1. its union also leaves out the ground-truth segment's pixels that the prediction leaves void
   (``- |g & void_pred|``), which raises the IoU of a partly void prediction;
2. it does not count a ground-truth segment as a false negative when more than half of it is predicted
   void.

Both make void predictions cheaper than COCO's reference; papers report panopticapi's figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from course_utils import validation

VOID = -1           # the category id of a void pixel (instance id 0)
GROUPS = (("", None), ("_th", True), ("_st", False))   # result key suffixes: all, things, stuff (detectron2's)


# ---- inputs ---------------------------------------------------------------------------------
def category_sets(things: Iterable[int], stuffs: Iterable[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``things`` and ``stuffs`` as sorted tuples of distinct ints >= 0, checked disjoint and not both empty."""
    parsed = [validation.category_ids(name, ids) for name, ids in (("things", things), ("stuffs", stuffs))]
    overlap = sorted(set(parsed[0]) & set(parsed[1]))
    if overlap:
        raise ValueError(f"things and stuffs must be disjoint, but both contain {overlap}")
    if not parsed[0] and not parsed[1]:
        raise ValueError("things and stuffs are both empty: name at least one category")
    return parsed[0], parsed[1]


def panoptic_map(name: str, value: object) -> torch.Tensor:
    """A ``(B,) H x W x 2`` integer tensor (not bool), returned as ``B x H x W x 2`` int64 on the cpu."""
    value = validation.tensor(name, value, ndim=(3, 4), dtypes="int")
    if value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer (category, instance) ids, got a bool tensor")
    if value.shape[-1] != 2:
        raise ValueError(f"{name} must be (B x) H x W x 2: (category id, instance id) per pixel, got shape "
                         f"{tuple(value.shape)}")
    value = value.detach().to("cpu", torch.int64)
    return value[None] if value.ndim == 3 else value


def _inputs(preds: object, target: object, things: Iterable[int], stuffs: Iterable[int]
            ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...], tuple[int, ...]]:
    things_, stuffs_ = category_sets(things, stuffs)
    p, t = panoptic_map("preds", preds), panoptic_map("target", target)
    if p.shape != t.shape:
        raise ValueError(f"preds and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}")
    known = torch.tensor(things_ + stuffs_ + (VOID,))
    bad = p[..., 0][~torch.isin(p[..., 0], known)]
    if bad.numel():
        raise ValueError(f"preds has category ids {bad.unique()[:5].tolist()} that are neither things {list(things_)} "
                         f"nor stuffs {list(stuffs_)} nor VOID = {VOID}")
    return p, t, things_, stuffs_


# ---- one image: segments, intersections, matches ---------------------------------------------
@dataclass
class ImageSegments:
    """The segments of one image and how they meet.

    ``G`` ground-truth and ``P`` predicted segments (void is one segment of category :data:`VOID` on
    either side, if present). Per segment: ``*_cat``, ``*_inst``, ``*_area`` (``G`` or ``P`` int64);
    ``gt_crowd`` (``G`` bool); ``gt_index`` / ``pred_index`` (``H x W``: the segment of each pixel);
    ``inter`` (``G x P`` pixel counts); ``iou`` (``G x P`` float64, COCO's union); ``matched``
    (``G x P`` bool, the TP pairs); ``fp`` (``P`` bool) and ``fn`` (``G`` bool)."""

    gt_cat: torch.Tensor
    gt_inst: torch.Tensor
    gt_area: torch.Tensor
    gt_crowd: torch.Tensor
    gt_index: torch.Tensor
    pred_cat: torch.Tensor
    pred_inst: torch.Tensor
    pred_area: torch.Tensor
    pred_index: torch.Tensor
    inter: torch.Tensor
    iou: torch.Tensor
    matched: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor


def _normalised(panoptic: torch.Tensor, things: torch.Tensor,
                stuffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``H x W x 2`` -> flat (category, instance): void -> (VOID, 0), stuff instance ids -> 0."""
    cat, inst = panoptic[..., 0].reshape(-1), panoptic[..., 1].reshape(-1)
    is_stuff = torch.isin(cat, stuffs)
    void = ~(is_stuff | torch.isin(cat, things))
    return torch.where(void, VOID, cat), torch.where(void | is_stuff, 0, inst)


def _segments(cat: torch.Tensor, inst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat ``N`` category and instance ids -> ``S x 2`` segment keys (category, instance) and the ``N``
    pixels' segment indices: what ``torch.unique(torch.stack([cat, inst], 1), dim=0, return_inverse=True)``
    gives (keys in the same lexicographic order), without its ``dim=0`` path, which was nine tenths of this
    metric's time. One 1-D ``unique`` runs on ``category * span + instance`` (offsets from the minima, span
    the instance ids' range); where that product could pass int64's limit (ids near it), each column is
    ranked first (ranks below ``N``)."""
    if cat.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    cat_low, inst_low = int(cat.min()), int(inst.min())
    cat_span, inst_span = int(cat.max()) - cat_low + 1, int(inst.max()) - inst_low + 1
    if cat_span * inst_span < 2**62:
        codes, index = torch.unique((cat - cat_low) * inst_span + (inst - inst_low), return_inverse=True)
        return torch.stack([codes // inst_span + cat_low, codes % inst_span + inst_low], 1), index
    cats, cat_rank = torch.unique(cat, return_inverse=True)
    insts, inst_rank = torch.unique(inst, return_inverse=True)
    codes, index = torch.unique(cat_rank * len(insts) + inst_rank, return_inverse=True)
    return torch.stack([cats[codes // len(insts)], insts[codes % len(insts)]], 1), index


def image_segments(pred: torch.Tensor, target: torch.Tensor, things: tuple[int, ...], stuffs: tuple[int, ...],
                   crowd: bool = False) -> ImageSegments:
    """Segments, intersections and COCO's matching of one checked image (``H x W x 2`` int64 each)."""
    h, w = target.shape[:2]
    th, st = torch.tensor(things, dtype=torch.int64), torch.tensor(stuffs, dtype=torch.int64)
    tc, ti = _normalised(target, th, st)
    pc, pi = _normalised(pred, th, st)
    g_keys, g_index = _segments(tc, ti)
    p_keys, p_index = _segments(pc, pi)
    n_g, n_p = len(g_keys), len(p_keys)
    inter = torch.bincount(g_index * n_p + p_index, minlength=n_g * n_p).reshape(n_g, n_p)
    g_cat, p_cat = g_keys[:, 0], p_keys[:, 0]
    g_area, p_area = inter.sum(1), inter.sum(0)
    g_void, p_void = g_cat == VOID, p_cat == VOID
    g_crowd = (torch.isin(g_cat, th) & (g_keys[:, 1] == 0)) if crowd else torch.zeros(n_g, dtype=torch.bool)
    on_void = inter[g_void].sum(0)                                          # P: pixels on ground-truth void
    union = g_area[:, None] + p_area[None, :] - inter - on_void[None, :]
    iou = inter.double() / union.clamp(min=1).double()
    same = (g_cat[:, None] == p_cat[None, :]) & ~g_void[:, None] & ~p_void[None, :] & ~g_crowd[:, None]
    matched = same & (2 * inter > union)                                   # IoU > 0.5, in exact integers
    on_crowd = (inter * (g_crowd[:, None] & (g_cat[:, None] == p_cat[None, :]))).sum(0)
    fp = ~p_void & ~matched.any(0) & ~(2 * (on_void + on_crowd) > p_area)
    fn = ~g_void & ~g_crowd & ~matched.any(1)
    return ImageSegments(g_cat, g_keys[:, 1], g_area, g_crowd, g_index.reshape(h, w), p_cat, p_keys[:, 1], p_area,
                         p_index.reshape(h, w), inter, iou, matched, fp, fn)


# ---- counts over a dataset -------------------------------------------------------------------
def image_counts(seg: ImageSegments, categories: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """One image's ``tp``, ``fp``, ``fn`` (int64) and ``iou`` (float64, the matched pairs' IoUs summed), each
    of length ``len(categories)`` (sorted category ids)."""
    where, k = torch.tensor(categories, dtype=torch.int64), len(categories)
    pairs = seg.matched.nonzero()
    cats = torch.searchsorted(where, seg.gt_cat[pairs[:, 0]])
    iou = torch.zeros(k, dtype=torch.float64).index_add_(0, cats, seg.iou[pairs[:, 0], pairs[:, 1]])
    return (torch.bincount(cats, minlength=k),
            torch.bincount(torch.searchsorted(where, seg.pred_cat[seg.fp]), minlength=k),
            torch.bincount(torch.searchsorted(where, seg.gt_cat[seg.fn]), minlength=k), iou)


def summarize(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, iou: torch.Tensor, things: tuple[int, ...],
              stuffs: tuple[int, ...]) -> dict:
    """The PQ figures (see :func:`panoptic_quality`) from per-category counts over sorted ``things + stuffs``."""
    per_class: dict[int, dict] = {}
    for k, c in enumerate(sorted(things + stuffs)):
        t, f_p, f_n, s = int(tp[k]), int(fp[k]), int(fn[k]), float(iou[k])
        if t + f_p + f_n == 0:
            nan = float("nan")
            per_class[c] = {"pq": nan, "sq": nan, "rq": nan, "tp": 0, "fp": 0, "fn": 0}
            continue
        denominator = t + 0.5 * f_p + 0.5 * f_n
        per_class[c] = {"pq": s / denominator, "sq": s / t if t else 0.0, "rq": t / denominator,
                        "tp": t, "fp": f_p, "fn": f_n}
    result: dict = {}
    for suffix, thing in GROUPS:
        counted = [r for c, r in per_class.items()
                   if (thing is None or (c in things) == thing) and not math.isnan(r["pq"])]
        for key in ("pq", "sq", "rq"):
            result[key + suffix] = sum(r[key] for r in counted) / len(counted) if counted else float("nan")
    result["per_class"] = per_class
    return result


def _batch_counts(preds: object, target: object, things: Iterable[int], stuffs: Iterable[int], crowd: bool
                  ) -> tuple[tuple[int, ...], tuple[int, ...], list[torch.Tensor]]:
    p, t, things_, stuffs_ = _inputs(preds, target, things, stuffs)
    if not isinstance(crowd, bool):
        raise TypeError(f"crowd must be True or False, got {crowd!r}")
    categories = tuple(sorted(things_ + stuffs_))
    k = len(categories)
    total = [torch.zeros(k, dtype=torch.int64) for _ in range(3)] + [torch.zeros(k, dtype=torch.float64)]
    for pred, tgt in zip(p, t):
        counts = image_counts(image_segments(pred, tgt, things_, stuffs_, crowd), categories)
        total = [a + b for a, b in zip(total, counts)]
    return things_, stuffs_, total


@dataclass
class PanopticStats:
    """Per-category counts accumulated over images: ``tp``, ``fp``, ``fn`` (int64) and ``iou`` (float64,
    the sum of the matched pairs' IoUs), each of length ``len(things) + len(stuffs)`` (sorted category
    ids). Add two (``a + b``) to accumulate batches; :meth:`summary` gives the PQ figures."""

    things: tuple[int, ...]
    stuffs: tuple[int, ...]
    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    iou: torch.Tensor

    def __add__(self, other: PanopticStats) -> PanopticStats:
        if not isinstance(other, PanopticStats):
            return NotImplemented
        if (other.things, other.stuffs) != (self.things, self.stuffs):
            raise ValueError(f"cannot add counts of different categories: things {self.things} / stuffs {self.stuffs} "
                             f"and things {other.things} / stuffs {other.stuffs}")
        return PanopticStats(self.things, self.stuffs, self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                             self.iou + other.iou)

    def summary(self) -> dict:
        """What :func:`panoptic_quality` returns, for the images counted so far."""
        return summarize(self.tp, self.fp, self.fn, self.iou, self.things, self.stuffs)


def panoptic_stats(preds: torch.Tensor, target: torch.Tensor, things: Iterable[int], stuffs: Iterable[int],
                   crowd: bool = False) -> PanopticStats:
    """Per-category TP, FP, FN and IoU sums of a batch (arguments as :func:`panoptic_quality`): add the
    results of several batches, then call ``.summary()``."""
    things_, stuffs_, (tp, fp, fn, iou) = _batch_counts(preds, target, things, stuffs, crowd)
    return PanopticStats(things_, stuffs_, tp, fp, fn, iou)


def panoptic_quality(preds: torch.Tensor, target: torch.Tensor, things: Iterable[int], stuffs: Iterable[int],
                     crowd: bool = False) -> dict:
    """PQ, SQ and RQ as COCO's ``pq_compute`` defines them (see the module docstring).

    Args:
        preds: ``H x W x 2`` or ``B x H x W x 2`` int: (category id, instance id) per pixel; void is
            category :data:`VOID` (-1).
        target: the same shape; any category outside ``things | stuffs`` is void.
        things, stuffs: disjoint collections of category ids.
        crowd: a target thing pixel with instance id 0 is its category's crowd region.

    Returns:
        ``{"pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st": float,
        "per_class": {category: {"pq", "sq", "rq": float, "tp", "fp", "fn": int}}}``, every category of
        ``things | stuffs`` in ``per_class`` (ascending), ``NaN`` where a category or group has no segment.
    """
    things_, stuffs_, (tp, fp, fn, iou) = _batch_counts(preds, target, things, stuffs, crowd)
    return summarize(tp, fp, fn, iou, things_, stuffs_)


def torchmetrics_panoptic_quality(preds: torch.Tensor, target: torch.Tensor, things: Iterable[int],
                                  stuffs: Iterable[int], per_class: bool = False) -> dict:
    """The same figures by torchmetrics' ``PanopticQuality`` (its own definition, see the module docstring):
    ``{"pq", "sq", "rq": float}``, and with ``per_class`` also ``"per_class": {category: {"pq", "sq", "rq"}}``
    (torchmetrics gives 0, not NaN, to a category with no segment). Predicted void (and any unknown predicted
    category) is allowed. Arguments as :func:`panoptic_quality`."""
    from torchmetrics.detection import PanopticQuality

    p, t, things_, stuffs_ = _inputs(preds, target, things, stuffs)
    overall = PanopticQuality(set(things_), set(stuffs_), allow_unknown_preds_category=True, return_sq_and_rq=True)
    overall.update(p, t)
    pq, sq, rq = (float(v) for v in overall.compute())
    result: dict = {"pq": pq, "sq": sq, "rq": rq}
    if per_class:
        by_class = PanopticQuality(set(things_), set(stuffs_), allow_unknown_preds_category=True,
                                   return_sq_and_rq=True, return_per_class=True)
        by_class.update(p, t)
        rows = by_class.compute()                   # things first, then stuffs, each ascending
        result["per_class"] = {c: dict(zip(("pq", "sq", "rq"), (float(v) for v in rows[k]), strict=True))
                               for k, c in enumerate(things_ + stuffs_)}
    return result


# ---- what went wrong, segment by segment -----------------------------------------------------
#: the kinds of :class:`SegmentError`, from the target's side then the prediction's
ERROR_KINDS = ("missed", "left void", "merged", "wrong category", "eaten", "poor match", "false", "split")


@dataclass(frozen=True)
class SegmentError:
    """A segment that costs PQ, with why.

    ``side`` is ``"target"`` (a missed or poorly matched ground-truth segment) or ``"prediction"`` (a false
    positive); ``kind`` one of :data:`ERROR_KINDS`; ``iou`` the segment's best IoU with a segment of the
    same category on the other side (COCO's union; its match's IoU when matched); ``mask`` ``H x W`` bool."""

    image: int
    side: str
    category: int
    instance: int
    kind: str
    iou: float
    area: int
    mask: torch.Tensor
    reason: str


def _name(names: list[str] | None, category: int) -> str:
    if category == VOID:
        return "void"
    return names[category] if names is not None and 0 <= category < len(names) else f"category {category}"


def _target_error(seg: ImageSegments, g: int, best: float, things: tuple[int, ...], names: list[str] | None,
                  poor_iou: float) -> tuple[str, str] | None:
    """(kind, reason) for target segment ``g``, or None if it costs nothing worth showing."""
    cat, area = int(seg.gt_cat[g]), int(seg.gt_area[g])
    name = _name(names, cat)
    matched = bool(seg.matched[g].any())
    false_things = seg.fp & torch.isin(seg.pred_cat, torch.tensor(things, dtype=torch.int64))
    eaten = int(seg.inter[g][false_things].sum())
    if cat not in things and eaten and (not matched or best < poor_iou):
        eaters = sorted({_name(names, int(c)) for c in seg.pred_cat[false_things & (seg.inter[g] > 0)]})
        return "eaten", f"{name}: {eaten} of its {area} pixels taken by a false {' / '.join(eaters)}"
    if matched:
        return ("poor match", f"{name} matched at IoU {best:.2f}") if best < poor_iou else None
    same = seg.pred_cat == cat
    overlaps = seg.inter[g] * same
    p = int(overlaps.argmax())
    if cat in things and 2 * int(overlaps[p]) >= area:
        others = (seg.gt_cat == cat) & (2 * seg.inter[:, p] >= seg.gt_area)
        others[g] = False
        if others.any():
            return "merged", f"{name} merged with another {name} into one predicted segment (IoU {best:.2f})"
    top = int(seg.inter[g].argmax())
    top_cat = int(seg.pred_cat[top])
    if 2 * int(seg.inter[g, top]) > area:
        if top_cat == VOID:
            return "left void", f"{name} missed: {int(seg.inter[g, top])} of its {area} pixels left void"
        if top_cat != cat:
            return "wrong category", f"{name} predicted as {_name(names, top_cat)}"
    return "missed", f"{name} missed (best IoU {best:.2f})"


def _prediction_error(seg: ImageSegments, p: int, best: float, names: list[str] | None) -> tuple[str, str]:
    cat = int(seg.pred_cat[p])
    name = _name(names, cat)
    covered = (seg.gt_cat == cat) & ~seg.gt_crowd & (2 * seg.inter[:, p] >= seg.gt_area)
    if int(covered.sum()) > 1:
        return "merged", f"one {name} segment over {int(covered.sum())} {name}s (best IoU {best:.2f})"
    on_matched = seg.matched.any(1) & (seg.gt_cat == cat) & (seg.inter[:, p] > 0)
    if on_matched.any():
        return "split", f"a second {name} segment on a {name} already matched (IoU {best:.2f})"
    under = int(seg.gt_cat[int(seg.inter[:, p].argmax())])
    if under == cat:
        return "false", f"a {name} segment that does not match the {name} under it (IoU {best:.2f})"
    return "false", f"a false {name} on {_name(names, under)} (best IoU {best:.2f})"


def segment_errors(preds: torch.Tensor, target: torch.Tensor, things: Iterable[int], stuffs: Iterable[int],
                   crowd: bool = False, names: list[str] | None = None, poor_iou: float = 0.75) -> list[SegmentError]:
    """The segments that cost PQ, per class (ascending category id), the worst (lowest IoU, then largest)
    first within a class: every missed target segment (kinds ``missed``, ``left void``, ``merged``: one
    predicted segment over two objects, ``wrong category``), every false positive (``false``; ``merged``: it
    covers two objects or more; ``split``: a second segment on an object already matched), matched segments
    with IoU below ``poor_iou`` (``poor match``), and stuff whose pixels false things took (``eaten``).
    Arguments as :func:`panoptic_quality`; ``names[c]`` names category ``c`` in the reasons."""
    p, t, things_, stuffs_ = _inputs(preds, target, things, stuffs)
    validation.number("poor_iou", poor_iou, minimum=0.0, maximum=1.0)
    errors = []
    for b, (pred, tgt) in enumerate(zip(p, t)):
        seg = image_segments(pred, tgt, things_, stuffs_, crowd)
        same = seg.gt_cat[:, None] == seg.pred_cat[None, :]
        best_iou = torch.where(same, seg.iou, torch.zeros_like(seg.iou))
        best_iou = torch.where(seg.matched, seg.iou, best_iou)
        for g in range(len(seg.gt_cat)):
            if seg.gt_cat[g] == VOID or seg.gt_crowd[g]:
                continue
            best = float(best_iou[g].max()) if best_iou.shape[1] else 0.0
            found = _target_error(seg, g, best, things_, names, poor_iou)
            if found:
                errors.append(SegmentError(b, "target", int(seg.gt_cat[g]), int(seg.gt_inst[g]), found[0], best,
                                           int(seg.gt_area[g]), seg.gt_index == g, found[1]))
        for q in seg.fp.nonzero()[:, 0].tolist():
            best = float(best_iou[:, q].max()) if best_iou.shape[0] else 0.0
            kind, reason = _prediction_error(seg, q, best, names)
            errors.append(SegmentError(b, "prediction", int(seg.pred_cat[q]), int(seg.pred_inst[q]), kind, best,
                                       int(seg.pred_area[q]), seg.pred_index == q, reason))
    return sorted(errors, key=lambda e: (e.category, e.iou, -e.area))
