"""The student's own code inside the course's models: which function runs for each *piece*.

A piece is a function a lab has the student write (each checked by its exercise) that a torchvision
detector also has inside it. :class:`Pieces` names the functions a model should run instead of
torchvision's own; a model built with ``pieces=...`` calls them where torchvision calls its own (no
global monkey-patching: the pieces live in the model's modules), and a field left at ``None`` keeps
torchvision's. :func:`choose_pieces` builds one from a notebook's functions through the course's
``fallback`` rule: the student's function where it passes its check, the course's reference otherwise,
and it prints whose each piece is::

    pieces = choose_pieces(mask_targets=mask_targets, mask_loss=mask_loss, paste_masks=paste_masks)
    model = small_mask_rcnn(len(classes), 96, pieces=pieces)

Lab 05 (:mod:`~course_utils.models.detection.parts`): ``anchors`` (``AnchorGenerator``), ``encode`` and
``decode`` (``BoxCoder``), ``match`` (``Matcher``, in the RPN and the RoI heads), ``roi_align``
(``MultiScaleRoIAlign``), ``batched_nms`` (the RPN's and the RoI heads' NMS; with only ``nms`` given, the
coordinate trick around it)::

    pieces = choose_pieces(anchors=anchors, encode=encode_boxes, decode=decode_boxes, match=match,
                           nms=nms, batched_nms=batched_nms)
    model = small_faster_rcnn(len(classes), 96, pieces=pieces)

Lab 07 (:mod:`~course_utils.models.detection.roi_heads`): ``mask_targets`` and ``mask_loss`` (the mask
head's training loss, per image then over the batch), ``paste_masks`` (predicted masks pasted into the
image), ``keypoint_targets`` (the keypoint head's training targets).

A lab adds its pieces as fields here (``None`` by default) and to :data:`EXERCISES` (the exercise that
checks each), and :func:`~course_utils.models.detection.roi_heads.with_pieces` swaps each torchvision part
that calls one for a subclass that calls the piece instead, built with the same modules and settings. No
global monkey-patching: the pieces live in the model's modules. A model built with ``pieces=None`` is
torchvision's as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_utils.grading.check import CheckResult

# The exercise that checks each piece: its id in course_utils.exercises (signatures in the labs).
EXERCISES: Mapping[str, str] = MappingProxyType({
    "anchors": "05.anchors",                  # (grid_size (H, W), stride (sy, sx), sizes, aspect_ratios) -> HWA x 4
    "encode": "05.encode",                    # (boxes N x 4, references N x 4, weights) -> N x 4 codes
    "decode": "05.decode",                    # (codes N x 4K, references N x 4, weights) -> N x 4K boxes
    "match": "05.match",                      # (quality M x N, high, low, allow_low_quality_matches) -> N int64
    "roi_align": "05.roi_align",              # (features, rois K x 5, output_size, scale, sampling_ratio, aligned)
    "nms": "05.nms",                          # (boxes N x 4, scores N, iou_threshold) -> kept int64
    "batched_nms": "05.batched_nms",          # (boxes N x 4, scores N, idxs N, iou_threshold) -> kept int64
    "mask_targets": "07.mask_targets",        # (gt_masks G x H x W, boxes K x 4, matched_idxs K, M) -> K x M x M
    "mask_loss": "07.mask_loss",              # (mask_logits K x C x M x M, mask_targets K x M x M, labels K) -> scalar
    "paste_masks": "07.paste_masks",          # (masks N x M x M, boxes N x 4, (H, W), threshold) -> N x H x W bool
    "keypoint_targets": "07.keypoint_targets",  # (keypoints K x J x 3, rois K x 4, S) -> (index K x J, valid K x J)
})


@dataclass(frozen=True)
class Pieces:
    """Functions a course model runs in place of torchvision's (``None``: torchvision's own).

    ``whose`` says, for the pieces :func:`choose_pieces` chose, whose function each is ("yours", or
    "the course's because yours fails: <status>"); models ignore it, notebooks print it.
    """

    anchors: Callable | None = None
    encode: Callable | None = None
    decode: Callable | None = None
    match: Callable | None = None
    roi_align: Callable | None = None
    nms: Callable | None = None
    batched_nms: Callable | None = None
    mask_targets: Callable | None = None
    mask_loss: Callable | None = None
    paste_masks: Callable | None = None
    keypoint_targets: Callable | None = None
    whose: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in self.names():
            fn = getattr(self, name)
            if fn is not None and not callable(fn):
                raise TypeError(f"piece {name!r} must be a function or None, got {type(fn).__name__}")
        if not isinstance(self.whose, Mapping) or not set(self.whose) <= set(self.names()):
            raise ValueError(f"whose must map piece names ({', '.join(self.names())}) to text, got {self.whose!r}")
        object.__setattr__(self, "whose", MappingProxyType(dict(self.whose)))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The pieces' names (the fields other than ``whose``)."""
        return tuple(f.name for f in fields(cls) if f.name != "whose")

    def given(self) -> dict[str, Callable]:
        """The pieces that are set: ``{name: function}``."""
        return {n: getattr(self, n) for n in self.names() if getattr(self, n) is not None}

    def table(self) -> str:
        """``piece | whose`` for the pieces that are set, one line each."""
        given = self.given()
        width = max([len("piece"), *map(len, given)])
        lines = [f"{'piece':<{width}} | whose", f"{'-' * width}-+-{'-' * 40}"]
        return "\n".join(lines + [f"{n:<{width}} | {self.whose.get(n, 'as given')}" for n in given])


def failure(result: CheckResult) -> str:
    """A failed check in a few words: ``"not implemented"``, ``"failed on case 3 of 11"``, ..."""
    status = result.status.replace("_", " ")
    if result.status in ("failed", "error", "mutated", "off_limits", "timeout") and result.cases_total:
        return f"{status} on case {result.cases_passed + 1} of {result.cases_total}"
    return status


def choose_pieces(verbose: bool = True, **functions: Callable) -> Pieces:
    """:class:`Pieces` from a notebook's functions (keywords: piece name = the student's function).

    Each goes through its exercise's check (:data:`EXERCISES`) as ``fallback`` does: the student's
    function if it passes, else the course's reference. A function that ``fallback`` returned keeps the
    verdict ``fallback`` found (no second check): the reference it handed back for a failing function is
    "the course's because yours fails: <which case>". In strict mode (``COURSE_STRICT=1``) a failing
    piece raises ``CheckFailed`` as ``fallback`` does. With ``verbose`` it prints the table
    ``piece | whose``.
    """
    from course_utils.grading.check import choose, recorded

    unknown = sorted(set(functions) - set(Pieces.names()))
    if unknown:
        raise ValueError(f"unknown piece(s) {', '.join(unknown)}; the pieces are {', '.join(Pieces.names())}")
    chosen, whose = {}, {}
    for name, fn in functions.items():
        verdict = recorded(EXERCISES[name], fn)     # what `fallback` found for this function: no second check
        if verdict is not None:
            chosen[name], result = fn, verdict
        else:
            chosen[name], result = choose(EXERCISES[name], fn)
        if result.status == "reference":
            whose[name] = "the course's (you passed the course's own function)"
        elif result.passed:
            whose[name] = "yours"
        else:
            whose[name] = f"the course's because yours fails: {failure(result)}"
    pieces = Pieces(**chosen, whose=whose)
    if verbose:
        print(pieces.table())
    return pieces


__all__ = ["EXERCISES", "Pieces", "choose_pieces"]
