"""Lab 06 exercises: YOLO, detection without proposals -- the grid targets, the YOLOv1 loss and the
decoding of the network's tensor to boxes.

The references are :mod:`course_utils.ops.yolo` (``tests/test_lab06.py`` holds the loss equal to a plain
triple loop over Redmon et al.'s eq. 3, and the decoding to ``torchvision.ops.batched_nms`` on the same
candidates). Fixed cases first (the lecture's example, the edge cases of the grid), then seeded random
ones. The course's own YOLO functions are off-limits inside the student's function; NMS is not (the lab
lets the student use their lab-05 ``batched_nms``, the course's or torchvision's).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch

from course_utils import validation
from course_utils.exercises.cases import rand_bool, rand_int
from course_utils.grading.compare import compare, describe
from course_utils.grading.exercise import (
    EXACT,
    FLOAT32,
    SUMS,
    Case,
    Exercise,
    Tolerance,
)
from course_utils.ops import yolo as _yolo

T = torch.tensor


# ---- 06.encode_targets -----------------------------------------------------------------------
def _random_objects(g: torch.Generator, n: int, s: int, c: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float32 XYXY boxes in an ``h x w`` image (sides 2 px .. half the image) and labels ``0 .. c-1``.

    A centre within 1/1000 of a cell of a cell border is moved by 2/1000 of a cell (towards the image's
    middle), so that floor() of it is the same in every correct implementation, whatever its arithmetic."""
    size = 2 + torch.rand(n, 2, generator=g, dtype=torch.float64) * (torch.tensor([w, h]) / 2 - 2).clamp(min=0)
    corner = torch.rand(n, 2, generator=g, dtype=torch.float64) * (torch.tensor([w, h]) - size)
    centre = corner + size / 2
    extent = torch.tensor([w, h], dtype=torch.float64)
    u = centre * s / extent                                             # centres in cell units
    frac = u - u.floor()
    near = torch.minimum(frac, 1 - frac) < 1e-3
    towards = torch.where(u < s / 2, 1.0, -1.0).double()
    centre = centre + near * towards * 2e-3 * extent / s
    boxes = torch.cat([centre - size / 2, centre + size / 2], 1).float()
    return boxes, torch.randint(0, c, (n,), generator=g)


def _encode_cases(g: torch.Generator) -> list[Case]:
    voc = T([[48.0, 80.0, 208.0, 300.0], [230.0, 20.0, 440.0, 200.0], [10.0, 300.0, 120.0, 440.0],
             [300.0, 310.0, 330.0, 350.0], [150.0, 150.0, 290.0, 290.0]])
    cases = [
        Case((T([[150.0, 250.0, 250.0, 350.0]]), T([1]), 7, 3, 448),
             note="the lecture: a 448 x 448 image, S = 7 (64-pixel cells), a box centred at (200, 300): cell row "
                  "4 = floor(300 / 64), column 3 = floor(200 / 64); x = 200 / 64 - 3 = 0.125, y = 300 / 64 - 4 = "
                  "0.6875 (relative to the cell), w = h = 100 / 448 (relative to the image), confidence 1, class 1 "
                  "one-hot"),
        Case((T([[10.0, 10.0, 30.0, 20.0], [2.0, 4.0, 40.0, 28.0], [40.0, 40.0, 60.0, 60.0]]), T([0, 2, 1]), 2, 3,
              (64, 64)),
             note="two centres in one cell (20, 15) and (21, 16): the first object keeps the cell, the second is "
                  "left out of the target (one object per cell, YOLOv1's limit)"),
        Case((T([[24.0, 8.0, 40.0, 24.0], [0.0, 40.0, 16.0, 56.0]]), T([1, 0]), 4, 2, (64, 64)),
             note="centres exactly on cell borders, (32, 16) and (8, 48) in 16-pixel cells: they belong to the cell "
                  "below / to the right (floor), so x = 0 or y = 0 there"),
        Case((T([[56.0, 8.0, 72.0, 24.0], [56.0, 56.0, 72.0, 72.0], [8.0, 56.0, 24.0, 72.0]]), T([0, 1, 2]), 4, 3,
              (64, 64)),
             note="centres on the image's right edge, bottom-right corner and bottom edge: floor gives S = 4, one "
                  "past the last cell; clamp to S - 1 = 3, so x (or y) = 1"),
        Case((T([[30.0, 10.0, 90.0, 50.0], [100.0, 10.0, 150.0, 40.0]]), T([1, 0]), 4, 2, (96, 160)),
             note="a non-square image, H = 96, W = 160 (image_size is (H, W)): cells are 24 high and 40 wide; rows "
                  "come from y and H, columns from x and W"),
        Case((torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 3, 4, (48, 64)),
             note="an image without objects: a target of zeros"),
        Case((voc, T([19, 0, 14, 8, 11]), 7, 20, (448, 448)),
             note="Pascal VOC's S = 7, C = 20: a 7 x 7 x 25 target; classes 0 .. 19 (19 is the last)"),
    ]
    for _ in range(3):
        s, c, n = rand_int(g, 1, 6), rand_int(g, 1, 5), rand_int(g, 1, 8)
        h, w = rand_int(g, 32, 128), rand_int(g, 32, 128)
        boxes, labels = _random_objects(g, n, s, c, h, w)
        size = (h, w) if rand_bool(g) or h != w else h
        cases.append(Case((boxes, labels, s, c, size), note=f"random: {n} boxes, S = {s}, C = {c}, image {h} x {w} "
                                                            f"(some centres may share a cell)"))
    return cases


ENCODE_TARGETS = Exercise(
    "06.encode_targets", title="the YOLOv1 target of one image: S x S x (5 + C), the centre's cell responsible",
    reference=_yolo.encode_targets, cases=_encode_cases,
    hint="image_size is (H, W) (one int: square); for each box in order: cx = (x1 + x2) / 2, cy = (y1 + y2) / 2; "
         "col = min(floor(cx * S / W), S - 1), row = min(floor(cy * S / H), S - 1); skip it if target[row, col, 4] is "
         "already 1 (the first object keeps the cell); else target[row, col, :5] = (cx * S / W - "
         "col, cy * S / H - row, "
         "(x2 - x1) / W, (y2 - y1) / H, 1) and target[row, col, 5 + label] = 1. Start from torch.zeros(S, S, 5 + C) "
         "(float32); no square roots in the target (the loss takes them).",
    function="encode_targets", tolerance=FLOAT32,
    yourself="write the target encoding yourself",
)


# ---- 06.yolo_loss ----------------------------------------------------------------------------
def _target(s: int, c: int, objects: list[tuple[int, int, int, tuple[float, float, float, float], int]],
            n: int = 1) -> torch.Tensor:
    """``n x S x S x (5 + C)`` targets of zeros, ``objects`` ``(image, row, col, (x, y, w, h), label)``."""
    t = torch.zeros(n, s, s, 5 + c)
    for image, row, col, box, label in objects:
        t[image, row, col, :5] = T([*box, 1.0])
        t[image, row, col, 5 + label] = 1.0
    return t


def _pred(s: int, b: int, c: int, cells: dict[tuple[int, int, int], list[float]], n: int = 1,
          fill: float = 0.0) -> torch.Tensor:
    """``n x S x S x (5B + C)`` of ``fill``; ``cells[(image, row, col)]`` sets one cell's ``5B + C`` numbers."""
    p = torch.full((n, s, s, 5 * b + c), fill)
    for (image, row, col), values in cells.items():
        p[image, row, col] = T(values)
    return p


def _random_loss_case(g: torch.Generator, n: int, s: int, b: int, c: int, negative: bool = False,
                      empty: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets encoded from random boxes; predictions random in [0, 1], those of object cells near the truth
    (so that the predictors' IoUs are positive and differ); ``negative``: some predicted widths below 0."""
    h = w = 32 * s
    targets = []
    for _ in range(n):
        k = 0 if empty else rand_int(g, 0, s * s)
        boxes, labels = _random_objects(g, k, s, c, h, w)
        targets.append(_yolo.encode_targets(boxes, labels, s, c, (h, w)))
    target = torch.stack(targets)
    pred = torch.rand(n, s, s, 5 * b + c, generator=g)
    boxes = pred[..., : 5 * b].view(n, s, s, b, 5)
    near = target[..., None, :4] + 0.15 * torch.randn(n, s, s, b, 4, generator=g)
    has_object = target[..., 4] > 0
    boxes[..., :4] = torch.where(has_object[..., None, None], near, boxes[..., :4])
    if negative:
        boxes[..., 2:4] -= 0.3
    return pred, target


def _loss_cases(g: torch.Generator) -> list[Case]:
    one = _target(2, 2, [(0, 0, 1, (0.5, 0.5, 0.25, 0.25), 1)])
    others = {(0, 0, 0): [0.5, 0.5, 0.2, 0.2, 0.2, 0.5, 0.5, 0.3, 0.3, 0.1, 0.6, 0.4],
              (0, 1, 0): [0.3, 0.3, 0.4, 0.4, 0.3, 0.5, 0.5, 0.2, 0.2, 0.1, 0.2, 0.1],
              (0, 1, 1): [0.5, 0.5, 0.2, 0.2, 0.05, 0.5, 0.5, 0.2, 0.2, 0.4, 0.3, 0.3]}
    best_is_1 = {(0, 0, 1): [0.1, 0.9, 0.1, 0.1, 0.6, 0.4, 0.6, 0.3, 0.2, 0.7, 0.2, 0.7]}
    tie = _target(2, 2, [(0, 0, 1, (0.5, 0.5, 0.25, 0.25), 1), (0, 1, 0, (0.5, 0.5, 0.2, 0.2), 0)])
    tie_cells = {(0, 0, 1): [0.4, 0.6, 0.3, 0.2, 0.9, 0.4, 0.6, 0.3, 0.2, 0.3, 0.1, 0.8],
                 (0, 1, 0): [0.0, 0.0, 0.1, 0.1, 0.2, 1.0, 1.0, 0.1, 0.1, 0.7, 0.6, 0.3]}
    negative = {(0, 0, 1): [0.5, 0.4, -0.2, 0.3, 0.5, 0.6, 0.5, 0.3, -0.1, 0.4, 0.1, 0.9]}
    n3_target = _target(2, 2, [(0, 0, 0, (0.3, 0.6, 0.4, 0.5), 0), (2, 1, 1, (0.7, 0.2, 0.3, 0.6), 1),
                               (2, 0, 1, (0.5, 0.5, 0.5, 0.5), 0)], n=3)
    n3_pred = torch.rand(3, 2, 2, 12, generator=g)
    n3_pred[0, 0, 0, 5:9] = T([0.35, 0.55, 0.45, 0.4])                 # predictor 1 near the object
    b1 = _random_loss_case(g, 1, 3, 1, 3)
    b3 = _random_loss_case(g, 1, 3, 3, 2)
    lambdas = _random_loss_case(g, 2, 2, 2, 3)
    voc = _random_loss_case(g, 2, 7, 2, 20)
    cases = [
        Case((_pred(2, 2, 2, {**others, **best_is_1}), one),
             note="one object in cell (row 0, col 1), B = 2: predictor 1 overlaps it (IoU 0.47), predictor 0 does not "
                  "(IoU 0): predictor 1 is responsible (coord and object terms), predictor 0 gets lambda_noobj * "
                  "conf^2 like every predictor of the empty cells"),
        Case((_pred(2, 2, 2, tie_cells), tie),
             note="equal IoUs: in cell (0, 1) both predictors have the same box, in cell (1, 0) both miss the object "
                  "(IoU 0): the first predictor (0) is responsible (argmax gives the first of equal values)"),
        Case((_pred(2, 2, 2, best_is_1), one),
             note="only the object cell predicts anything: its other predictor (confidence 0.6) still pays "
                  "lambda_noobj * 0.6^2 (it is not responsible), the responsible one (conf - IoU)^2, IoU as a "
                  "constant target"),
        Case((_pred(2, 2, 2, negative), one),
             note="negative predicted widths and heights (the network's raw output): both boxes have IoU 0 (a "
                  "negative size counts as 0), predictor 0 is responsible, and its sqrt(w) is the safe square root "
                  "sign(w) * sqrt(|w| + 1e-6) = -0.447, not NaN"),
        Case((torch.rand(1, 3, 3, 13, generator=g), torch.zeros(1, 3, 3, 8)),
             note="an image without objects: only the no-object term, lambda_noobj * sum of every predictor's conf^2"),
        Case(b1, note="B = 1: one predictor per cell, always responsible where there is an object"),
        Case(b3, note="B = 3 predictors per cell: the one with the highest IoU is responsible"),
        Case((n3_pred, n3_target),
             note="a batch of 3 images (the second without objects): sums over the batch, divided by N = 3"),
        Case(lambdas, {"lambda_coord": 1.0, "lambda_noobj": 2.0}, note="other weights: lambda_coord 1, lambda_noobj 2"),
        Case(voc, note="Pascal VOC's S = 7, B = 2, C = 20: 2 images of 7 x 7 x 30 predictions"),
    ]
    for _ in range(3):
        n, s, b, c = rand_int(g, 1, 3), rand_int(g, 1, 5), rand_int(g, 1, 3), rand_int(g, 1, 4)
        neg = rand_bool(g)
        kwargs = {} if rand_bool(g) else {"lambda_coord": float(rand_int(g, 1, 8)),
                                          "lambda_noobj": rand_int(g, 1, 8) / 8}
        cases.append(Case(_random_loss_case(g, n, s, b, c, negative=neg), kwargs,
                          note=f"random: N = {n}, S = {s}, B = {b}, C = {c}" + (", some widths < 0" if neg else "")
                               + (f", {kwargs}" if kwargs else "")))
    return cases


YOLO_LOSS = Exercise(
    "06.yolo_loss", title="the YOLOv1 loss (Redmon et al. 2016, eq. 3): coord, object, no-object and class terms",
    reference=_yolo.yolo_loss, cases=_loss_cases,
    hint="B = (pred.shape[-1] - C) // 5 with C = target.shape[-1] - 5; boxes = pred[..., :5B].reshape(N, S, S, B, 5). "
         "Under torch.no_grad(): the IoU of each predictor's box with the cell's target box, both placed in the cell "
         "(centre ((col + x) / S, (row + y) / S), size (w, h) clamped at 0); in cells with target[..., 4] == 1 the "
         "predictor with the highest IoU (argmax: the first of ties) is responsible. Loss = lambda_coord * sum over "
         "responsible predictors of (x - x^)^2 + (y - y^)^2 + (r(w) - r(w^))^2 + (r(h) - r(h^))^2, with r(v) = "
         "sign(v) * sqrt(|v| + 1e-6); + sum over them of (conf - IoU)^2; + lambda_noobj * sum over every other "
         "predictor (in any cell) of conf^2; + sum over object cells of (p_c - p^_c)^2 over the C classes; all / N.",
    function="yolo_loss", tolerance=SUMS,
    gradient=(0,),  # the lab trains with it: the loss must carry the reference's gradient w.r.t. the predictions
    yourself="write the YOLO loss yourself (the responsible predictor, the four terms)",
)


# ---- 06.decode -------------------------------------------------------------------------------
def _one_image(s: int, b: int, c: int, cells: dict[tuple[int, int], list[float]]) -> torch.Tensor:
    return _pred(s, b, c, {(0, r, col): v for (r, col), v in cells.items()})[0]


def _random_decode_pred(g: torch.Generator, s: int, b: int, c: int) -> torch.Tensor:
    """Random predictions: x, y in [0, 1], w, h in [0.05, 0.7], confidences in [0, 1], class probabilities
    a sharp softmax (so that some class scores pass the threshold and boxes overlap)."""
    boxes = torch.rand(s, s, b, 5, generator=g)
    boxes[..., 2:4] = 0.05 + 0.65 * boxes[..., 2:4]
    probs = (2.5 * torch.randn(s, s, c, generator=g)).softmax(-1)
    return torch.cat([boxes.reshape(s, s, 5 * b), probs], -1)


def _decode_cases(g: torch.Generator) -> list[Case]:
    low = torch.rand(3, 3, 12, generator=g)
    low[..., [4, 9]] *= 0.3                                            # confidences <= 0.3
    low[..., 10:] = 0.6 * low[..., 10:]                                # P(class) <= 0.6: every score < 0.2
    overlap = {(0, 0): [0.9, 0.5, 0.5, 0.5, 0.7, 1.0, 0.0], (0, 1): [0.1, 0.5, 0.5, 0.5, 0.9, 1.0, 0.0]}
    classes = {(0, 0): [0.9, 0.5, 0.5, 0.5, 0.7, 1.0, 0.0], (0, 1): [0.1, 0.5, 0.5, 0.5, 0.9, 0.0, 1.0]}
    cases = [
        Case((low, 2, 64), note="every candidate scores below score_threshold 0.2: no detections (boxes 0 x 4 float32, "
                                "scores 0 float32, labels 0 int64)"),
        Case((_one_image(2, 1, 2, {(0, 0): [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25],
                                   (1, 1): [0.5, 0.5, 0.4, 0.4, 0.5, 0.49, 0.1]}), 2, 64, 0.25),
             note="scores 0.5 * 0.5 = 0.25 exactly at score_threshold 0.25: kept (>=); 0.5 * 0.49 is not"),
        Case((_one_image(2, 1, 2, overlap), 2, 64),
             note="two overlapping boxes of class 0 (IoU 0.67 > 0.5) in neighbouring cells: NMS keeps the better "
                  "one (score 0.9)"),
        Case((_one_image(2, 1, 2, classes), 2, 64),
             note="the same two boxes, of classes 0 and 1: NMS per class keeps both, by decreasing score"),
        Case((_one_image(2, 1, 1, {(0, 0): [0.1, 0.1, 0.8, 0.6, 0.9, 1.0], (1, 1): [0.9, 0.8, 0.5, 0.7, 0.8, 1.0]}),
              1, (64, 64)),
             note="boxes that stick out of the image: clipped to [0, W] x [0, H]"),
        Case((_one_image(2, 2, 3, {(0, 0): [0.5, 0.5, 0.6, 0.6, 0.8, 0.3, 0.5, 0.2, 0.2, 0.3, 0.5, 0.4, 0.1],
                                   (1, 0): [0.2, 0.3, 0.3, 0.3, 0.1, 0.7, 0.7, 0.4, 0.4, 0.9, 0.1, 0.3, 0.6]}),
              3, 64),
             note="B = 2, C = 3: every predictor proposes its box for every class, score conf * P(class): cell (0, 0) "
                  "predictor 0 gives 0.8 * 0.5 (class 0) and 0.8 * 0.4 (class 1), two detections of one box; "
                  "predictor 1 only 0.3 * 0.5 < 0.2"),
        Case((_random_decode_pred(g, 3, 2, 2), 2, (96, 160)),
             note="a non-square image, H = 96, W = 160 (image_size is (H, W)): x and w scale with W, y and h with H"),
        Case((_one_image(2, 1, 1, {(0, 1): [0.5, 0.5, -0.3, 0.4, 0.9, 1.0]}), 1, 64),
             note="a negative predicted width counts as 0: a box of width 0, still a detection"),
        Case((_one_image(2, 2, 1, {(0, 0): [0.5, 0.5, 0.5, 0.5, 0.9, 0.5, 0.25, 0.5, 0.25, 0.8, 1.0]}), 1, 64),
             note="two boxes of one class, (0, 0, 32, 32) and (0, 0, 32, 16): IoU exactly 0.5 at iou_threshold 0.5, "
                  "so both stay (NMS suppresses only IoU > iou_threshold)"),
        Case((_one_image(2, 2, 1, {(0, 0): [0.5, 0.5, 0.5, 0.5, 0.9, 0.25, 0.25, 0.25, 0.25, 0.8, 1.0]}), 1, 64, 0.2,
              0.25),
             note="iou_threshold 0.25 and two boxes, (0, 0, 32, 32) and (0, 0, 16, 16), with IoU exactly 0.25: both "
                  "stay"),
        Case((_one_image(2, 3, 1, {(0, 0): [0.5, 0.5, 0.5, 0.5, 0.9, 0.25, 0.25, 0.25, 0.25, 0.8, 0.5, 0.5, 0.1, 0.1,
                                            0.45, 1.0]}), 1, 64, 0.5, 0.2),
             note="score_threshold 0.5 and iou_threshold 0.2: the box (0, 0, 16, 16) (IoU 0.25 > 0.2) is suppressed, "
                  "the small one scores 0.45 < 0.5"),
        Case((_random_decode_pred(g, 7, 2, 20), 20, 448, 0.1),
             note="Pascal VOC's S = 7, B = 2, C = 20: 7 x 7 x 30 predictions, 448 x 448 image, score_threshold 0.1"),
    ]
    for _ in range(3):
        s, b, c = rand_int(g, 1, 5), rand_int(g, 1, 3), rand_int(g, 1, 4)
        h, w = rand_int(g, 32, 128), rand_int(g, 32, 128)
        score_t, iou_t = [0.1, 0.2, 0.3][rand_int(g, 0, 2)], [0.3, 0.5, 0.7][rand_int(g, 0, 2)]
        cases.append(Case((_random_decode_pred(g, s, b, c), c, (h, w), score_t, iou_t),
                          note=f"random: S = {s}, B = {b}, C = {c}, image {h} x {w}, score_threshold {score_t}, "
                               f"iou_threshold {iou_t}"))
    return cases


def _canonical(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The order by decreasing score, then label, then box corners (successive stable sorts)."""
    order = torch.arange(len(scores))
    for key in (boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], labels, -scores.double()):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def _decode_verify(case: Case, got: object, expected: dict[str, torch.Tensor]) -> str | None:
    """The same detections as the reference's, in any order among equal scores."""
    keys = ("boxes", "scores", "labels")
    if not isinstance(got, Mapping):
        return f"expected a dict {{'boxes': ..., 'scores': ..., 'labels': ...}}, got {describe(got)}"
    if set(got) != set(keys):
        return f"expected the keys {list(keys)}, got {sorted(map(str, got))}"
    for key in keys:
        want, have = expected[key], got[key]
        if not isinstance(have, torch.Tensor):
            return f"result[{key!r}]: expected a tensor, got {describe(have)}"
        if have.dtype != want.dtype:
            return f"result[{key!r}]: wrong dtype: expected {want.dtype}, got {have.dtype}"
        if have.ndim != want.ndim or have.shape[1:] != want.shape[1:]:
            return f"result[{key!r}]: expected shape (K,{' 4' if key == 'boxes' else ''}), got {tuple(have.shape)}"
    sizes = {len(got[key]) for key in keys}
    if len(sizes) != 1:
        return f"boxes, scores and labels must have one row per detection, got {[len(got[k]) for k in keys]}"
    k, want_k = sizes.pop(), len(expected["scores"])
    if k != want_k:
        return f"expected {want_k} detection{'' if want_k == 1 else 's'}, got {k}"
    if k == 0:
        return None
    scores = got["scores"].detach().cpu()
    if (scores[1:] > scores[:-1]).any():
        i = int((scores[1:] > scores[:-1]).nonzero()[0]) + 1
        return (f"the detections must be sorted by decreasing score: detection {i} scores {scores[i]:.6g}, more than "
                f"detection {i - 1} ({scores[i - 1]:.6g})")
    mine = {key: got[key].detach().cpu() for key in keys}
    theirs = {key: expected[key].detach().cpu() for key in keys}
    a, b = _canonical(**theirs), _canonical(**mine)
    # pixel coordinates are image-relative numbers times W or H: float32 rounding (another order of the same
    # operations) is relative to the image's size, not to the coordinate (a box's x1 near 0, say)
    image_size = inspect.signature(_yolo.decode).bind(*case.args, **case.kwargs).arguments["image_size"]
    h, w = validation.size_pair("image_size", image_size, square=True)
    pixels = Tolerance(FLOAT32.rtol, FLOAT32.rtol * max(h, w))
    for key, tol in (("labels", EXACT), ("scores", FLOAT32), ("boxes", pixels)):
        problem = compare(theirs[key][a], mine[key][b], *tol, exact_dtype=True,
                          path=f"result[{key!r}] (detections sorted by score, label and box)")
        if problem:
            return problem
    return None


DECODE = Exercise(
    "06.decode", title="one image's S x S x (5B + C) predictions to boxes, class-specific scores, NMS per class",
    reference=_yolo.decode, cases=_decode_cases, verify=_decode_verify,
    hint="B = (pred.shape[-1] - C) // 5; cells = pred[..., :5B].reshape(S, S, B, 5); in pixels, the centre is "
         "((col + x) * W / S, (row + y) * H / S) and the size (max(w, 0) * W, max(h, 0) * H) (image_size is (H, W), "
         "one int: square); corners clipped to [0, W] x [0, H]. Scores: conf[..., None] * pred[..., None, 5B:] (every "
         "predictor for every class); keep score >= score_threshold; NMS per class with iou_threshold (your lab-05 "
         "batched_nms, or torchvision.ops.batched_nms); return {'boxes': K x 4 float32, 'scores': K, 'labels': K int64 "
         "(0 .. C-1)} by decreasing score.",
    function="decode", tolerance=FLOAT32,
    yourself="write the decoding yourself (NMS may be your lab-05 batched_nms, the course's or torchvision's)",
    allowed=("course_utils.ops.nms.batched_nms",),  # exercise 05.batched_nms, the course's
)

EXERCISES = (ENCODE_TARGETS, YOLO_LOSS, DECODE)
