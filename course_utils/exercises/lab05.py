"""Lab 05 exercises: from R-CNN to Faster R-CNN — IoU, RoI pooling / RoIAlign, anchors, box coding,
matching, NMS and COCO average precision.

Each check compares the student's function with the library that detectors are built from:
``torchvision.ops`` (``box_iou``, ``roi_pool``, ``roi_align``, ``nms``, ``batched_nms``), torchvision's
``AnchorGenerator``, ``BoxCoder`` and ``Matcher`` (through the course's references in
:mod:`course_utils.ops`, which ``tests/test_lab05.py`` holds equal to them), and pycocotools'
COCO AP (through :func:`course_utils.evaluation.detection.coco_map`, held equal to torchmetrics'
``MeanAveragePrecision``). Fixed cases first (the lecture's examples, the edge cases), then seeded
random ones. The library functions are off-limits inside the student's function.
"""

from __future__ import annotations

import math

import torch

from course_utils import validation
from course_utils.evaluation import detection as _detection
from course_utils.exercises.cases import rand_bool, rand_int
from course_utils.grading.compare import compare
from course_utils.grading.exercise import (
    ACCUMULATED,
    EXACT,
    FLOAT32,
    TIGHT,
    Case,
    Exercise,
)
from course_utils.ops import box_coder as _coder
from course_utils.ops import matcher as _matcher
from course_utils.ops import nms as _nms
from course_utils.ops import roi_ops as _roi
from course_utils.structures import boxes as _boxes

T = torch.tensor


def _random_boxes(g: torch.Generator, n: int, size: float = 64.0, whole: bool = False,
                  dtype: torch.dtype = torch.float32, smallest: float = 1.0) -> torch.Tensor:
    """``n x 4`` XYXY boxes inside ``[0, size]^2``, sides ``smallest`` .. size/2 (whole numbers if ``whole``)."""
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * size * 0.75
    wh = smallest + torch.rand(n, 2, generator=g, dtype=torch.float64) * (size / 2 - smallest)
    if whole:
        xy, wh = xy.floor(), wh.floor().clamp(min=1)
    return torch.cat([xy, xy + wh], 1).to(dtype)


# ---- 05.box_iou ------------------------------------------------------------------------------
def _iou_cases(g: torch.Generator) -> list[Case]:
    a = T([[0.0, 0.0, 4.0, 4.0]])
    cases = [
        Case((a, T([[2.0, 0.0, 6.0, 4.0]])), note="the lecture: half of each box overlaps, IoU 8 / 24 = 1/3"),
        Case((a, a.clone()), note="a box with itself: IoU 1"),
        Case((a, T([[4.0, 0.0, 8.0, 4.0], [0.0, 4.0, 4.0, 8.0]])), note="touching boxes share an edge, no area: IoU 0"),
        Case((a, T([[10.0, 10.0, 12.0, 13.0]])), note="disjoint boxes: IoU 0 (clamp the negative overlap at 0)"),
        Case((T([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 3.0, 3.0]]), T([[2.0, 2.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])),
             note="one box inside another, 2 x 2 pairs"),
        Case((T([[2.0, 2.0, 2.0, 6.0], [0.0, 0.0, 4.0, 4.0]]), T([[0.0, 0.0, 4.0, 4.0], [3.0, 3.0, 3.0, 3.0]])),
             note="degenerate boxes (a line, a point: zero area): IoU 0 with anything"),
        Case((T([[3.0, 3.0, 3.0, 3.0]]), T([[3.0, 3.0, 3.0, 3.0]])),
             note="a point with itself: the union is 0; return 0 (torchvision gives NaN = 0 / 0)"),
        Case((T([[0.0, 0.0, 0.002, 0.001], [0.0005, 0.0, 0.0015, 0.001]]), T([[0.001, 0.0, 0.003, 0.001]])),
             note="boxes smaller than a pixel (areas ~1e-6): no epsilon in the denominator (inter / (union + eps) is "
                  "wrong here; test union > 0 instead)"),
        Case((torch.zeros(0, 4), _random_boxes(g, 3)), note="no boxes in the first set: a 0 x 3 result"),
        Case((_random_boxes(g, 2), torch.zeros(0, 4)), note="no boxes in the second set: a 2 x 0 result"),
        Case((_random_boxes(g, 3, dtype=torch.float64), _random_boxes(g, 4, dtype=torch.float64)),
             note="float64 boxes: keep the dtype"),
    ]
    for _ in range(3):
        n, m = rand_int(g, 1, 8), rand_int(g, 1, 8)
        cases.append(Case((_random_boxes(g, n), _random_boxes(g, m)), note=f"random: {n} x {m} boxes"))
    n, m = rand_int(g, 1, 6), rand_int(g, 1, 6)
    cases.append(Case((_random_boxes(g, n, 0.064, smallest=0.001), _random_boxes(g, m, 0.064, smallest=0.001)),
                      note=f"random: {n} x {m} boxes smaller than a pixel"))
    return cases


BOX_IOU = Exercise(
    "05.box_iou", title="pairwise IoU of two sets of XYXY boxes", reference=_boxes.box_iou, cases=_iou_cases,
    hint="broadcast boxes1[:, None, :] against boxes2[None, :, :]: the intersection runs from the max of the "
         "top-left corners to the min of the bottom-right ones, its width and height clamped at 0; "
         "union = area1[:, None] + area2[None, :] - intersection; IoU 0 where the union is 0.",
    function="box_iou", tolerance=FLOAT32,
    off_limits=("torchvision.ops.box_iou", "torchvision.ops.boxes.box_iou", "torchvision.ops.boxes._box_inter_union"),
    yourself="write the IoU yourself with tensor operations",
)


# ---- 05.roi_pool and 05.roi_align -------------------------------------------------------------
def _rois5(per_image: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(per_image)])


def _roi_setup(g: torch.Generator, b: int, c: int, h: int, w: int, k: int, scale: float,
               outside: bool = False) -> tuple:
    """Features ``b x c x h x w`` and ``k`` boxes per image (image coordinates: ``/ scale``); ``outside``: each
    box moved by up to a quarter of the map either way, so that some start left of or above the map."""
    features = torch.randn(b, c, h, w, generator=g)
    size = min(h, w) / scale
    per_image = [_random_boxes(g, k, size=size) for _ in range(b)]
    if outside:
        per_image = [boxes + ((torch.rand(k, 2, generator=g) - 0.5) * size / 2).repeat(1, 2) for boxes in per_image]
    return features, per_image


def _roi_pool_cases(g: torch.Generator) -> list[Case]:
    ramp = torch.arange(64.0).reshape(1, 1, 8, 8)
    f2, boxes2 = _roi_setup(g, 2, 3, 10, 12, 2, 0.5)
    f3, boxes3 = _roi_setup(g, 1, 2, 9, 9, 3, 0.25)
    cases = [
        Case((ramp, T([[0.0, 0.0, 0.0, 7.0, 7.0]]), 2), note="the lecture: an 8 x 8 ramp, the whole map to 2 x 2"),
        Case((ramp, T([[0.0, 1.0, 2.0, 5.0, 4.0]]), (2, 3)), note="a non-square output 2 x 3 (rows x columns)"),
        Case((ramp, T([[0.0, 2.4, 1.6, 6.5, 5.5]]), 3),
             note="a box between cells: rounded to whole cells (C's round: halves away from 0)"),
        Case((ramp, T([[0.0, 3.0, 3.0, 3.0, 3.0]]), 2), note="a one-cell box: every bin sees that cell"),
        Case((ramp, T([[0.0, 5.0, 5.0, 11.0, 11.0]]), 3), note="a box that sticks out of the map: bins outside give 0"),
        Case((ramp, T([[0.0, -2.7, -1.6, 3.4, 4.5], [0.0, -0.5, 2.5, 4.5, 6.5]]), (3, 2)),
             note="boxes starting left of and above the map: C's round of -2.7 is -3 and of -0.5 is -1 (not "
                  "int(v + 0.5), which truncates towards 0); the bins start outside the map (do not clamp the start "
                  "before splitting the box), bins entirely outside give 0"),
        Case((f2, _rois5(boxes2), 3, 0.5),
             note="two images, K x 5 rows (batch index, x1, y1, x2, y2), spatial_scale 0.5"),
        Case((f2, boxes2, (3, 2), 0.5), note="the same boxes as a list of K_i x 4, one per image"),
        Case((f3, boxes3, 7, 0.25), note="7 x 7 output, spatial_scale 1/4: bins smaller than a cell"),
        Case((f3, [torch.zeros(0, 4)], 2), note="no boxes: a 0 x C x 2 x 2 result"),
    ]
    for _ in range(2):
        b, c, h, w, k = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 4, 12), rand_int(g, 4, 12), rand_int(g, 1, 4)
        scale = [1.0, 0.5, 0.25][rand_int(g, 0, 2)]
        f, per = _roi_setup(g, b, c, h, w, k, scale, outside=True)
        size = (rand_int(g, 1, 4), rand_int(g, 1, 4))
        boxes = per if rand_bool(g) else _rois5(per)
        cases.append(Case((f, boxes, size, scale), note=f"random: {b} x {c} x {h} x {w}, output {size}, scale {scale}, "
                                                        f"boxes partly outside the map"))
    return cases


ROI_POOL = Exercise(
    "05.roi_pool", title="RoI max pooling (Fast R-CNN) of boxes to a fixed grid", reference=_roi.roi_pool,
    cases=_roi_pool_cases,
    hint="per box: x1, y1, x2, y2 = round(coordinate * spatial_scale) (halves away from 0: floor(v + 0.5) for v >= 0); "
         "roi_w = max(x2 - x1 + 1, 1), likewise roi_h; bin (i, j) covers rows floor(i * roi_h / PH) + y1 .. "
         "ceil((i + 1) * roi_h / PH) + y1 (end excluded), columns likewise, clipped to the map; max over the bin, "
         "0 for an empty bin. A list of boxes means image i's boxes come from features[i].",
    function="roi_pool", tolerance=EXACT,
    off_limits=("torchvision.ops.roi_pool", "torchvision.ops.roi_pool.roi_pool", "torchvision.ops.RoIPool.forward"),
    yourself="write RoI pooling yourself with tensor operations",
)


def _roi_align_cases(g: torch.Generator) -> list[Case]:
    ramp = torch.arange(64.0).reshape(1, 1, 8, 8)
    f2, boxes2 = _roi_setup(g, 2, 3, 10, 12, 2, 0.5)
    f3, boxes3 = _roi_setup(g, 1, 2, 9, 9, 3, 0.25)
    cases = [
        Case((ramp, T([[0.0, 0.0, 0.0, 8.0, 8.0]]), 2), {"sampling_ratio": 2},
             note="the lecture: an 8 x 8 ramp to 2 x 2, 2 x 2 samples per bin"),
        Case((ramp, T([[0.0, 0.0, 0.0, 8.0, 8.0]]), 2), {"sampling_ratio": 2, "aligned": True},
             note="the same with aligned=True: the box moves by -0.5 pixel (pixel centres at i + 0.5)"),
        Case((ramp, T([[0.0, 1.3, 2.2, 5.9, 4.7]]), (2, 3)), {"sampling_ratio": 1},
             note="a non-square output 2 x 3, a real-valued box, one sample per bin"),
        Case((ramp, T([[0.0, 0.5, 0.5, 7.5, 6.0]]), 2),
             note="sampling_ratio -1 (the default): adaptive, ceil(bin size) samples per side"),
        Case((ramp, T([[0.0, 3.2, 3.2, 3.6, 3.4]]), 2),
             note="a box smaller than a cell, aligned=False: forced to at least 1 x 1"),
        Case((ramp, T([[0.0, 3.2, 3.2, 3.6, 3.4]]), 2), {"aligned": True},
             note="the same tiny box with aligned=True: no 1 x 1 minimum"),
        Case((ramp, T([[0.0, 5.0, -2.0, 10.0, 4.0]]), 3), {"sampling_ratio": 2},
             note="a box that sticks out of the map: samples beyond one pixel outside give 0"),
        Case((f2, _rois5(boxes2), 3, 0.5), {"sampling_ratio": 2},
             note="two images, K x 5 rows (batch index, x1, y1, x2, y2), spatial_scale 0.5"),
        Case((f2, boxes2, (3, 2), 0.5), {"aligned": True}, note="a list of K_i x 4 boxes per image, aligned=True"),
        Case((f3, boxes3, 7, 0.25), {"sampling_ratio": -1}, note="7 x 7 output, spatial_scale 1/4, adaptive sampling"),
        Case((f2, boxes2, 2, 0.5), {"sampling_ratio": 0},
             note="sampling_ratio 0 is adaptive too (every value <= 0 is): ceil(bin size) samples per side"),
        Case((ramp, T([[0.0, -3.3, -1.2, 2.6, 3.9]]), (2, 3)), {"sampling_ratio": 2, "aligned": True},
             note="a box starting left of and above the map: the bins start outside (do not clamp the start), samples "
                  "within one pixel of the map use its edge values, farther ones give 0"),
        Case((f3, [torch.zeros(0, 4)], 2), note="no boxes: a 0 x C x 2 x 2 result"),
    ]
    for _ in range(2):
        b, c, h, w, k = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 4, 12), rand_int(g, 4, 12), rand_int(g, 1, 4)
        scale = [1.0, 0.5, 0.25][rand_int(g, 0, 2)]
        f, per = _roi_setup(g, b, c, h, w, k, scale, outside=True)
        size, ratio, aligned = (rand_int(g, 1, 4), rand_int(g, 1, 4)), rand_int(g, -1, 3), rand_bool(g)
        boxes = per if rand_bool(g) else _rois5(per)
        cases.append(Case((f, boxes, size, scale), {"sampling_ratio": ratio, "aligned": aligned},
                          note=f"random: {b} x {c} x {h} x {w}, output {size}, scale {scale}, "
                               f"sampling_ratio {ratio}, aligned={aligned}, boxes partly outside the map"))
    return cases


ROI_ALIGN = Exercise(
    "05.roi_align", title="RoIAlign (Mask R-CNN): bilinear samples averaged per bin", reference=_roi.roi_align,
    cases=_roi_align_cases,
    hint="per box: x1, y1, x2, y2 = coordinate * spatial_scale - (0.5 if aligned else 0); without aligned, width and "
         "height at least 1; bin size = roi_h / PH, roi_w / PW; n = sampling_ratio if > 0 else ceil(bin size) per "
         "side; sample y = y1 + i * bin_h + (iy + 0.5) * bin_h / n (x likewise); bilinear value with pixel "
         "centres at integers: 0 if y < -1 or y > H, else clamp at 0, and at the last row use the last row; average.",
    function="roi_align", tolerance=ACCUMULATED,
    off_limits=("torchvision.ops.roi_align", "torchvision.ops.roi_align.roi_align", "torchvision.ops.RoIAlign.forward",
                "torchvision.ops.roi_align._roi_align"),
    yourself="write RoIAlign yourself with tensor operations",
)


# ---- 05.anchors ------------------------------------------------------------------------------
def anchors_reference(grid_size: tuple[int, int], stride: tuple[int, int], sizes: tuple[float, ...],
                      aspect_ratios: tuple[float, ...]) -> torch.Tensor:
    """What ``AnchorGenerator(sizes, aspect_ratios)`` gives one ``grid_size`` feature map of ``stride``
    (float32, ``(H * W * A) x 4``), written out as :func:`course_utils.ops.anchors.grid_anchors` does it."""
    gh, gw = validation.size_pair("grid_size", grid_size)
    sy, sx = validation.size_pair("stride", stride)
    scales = torch.as_tensor(validation.positive_numbers("sizes", sizes), dtype=torch.float32)
    h_ratios = torch.sqrt(torch.as_tensor(validation.positive_numbers("aspect_ratios", aspect_ratios),
                                          dtype=torch.float32))
    ws = (1 / h_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    base = (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()                      # A x 4, ratio-major
    shift_y, shift_x = torch.meshgrid(torch.arange(gh) * sy, torch.arange(gw) * sx, indexing="ij")
    shifts = torch.stack([shift_x.reshape(-1), shift_y.reshape(-1)] * 2, dim=1)     # HW x 4
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4).float()


def _anchor_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case(((1, 1), (16, 16), (32.0,), (1.0,)), note="one cell, one square anchor: centred on (0, 0)"),
        Case(((1, 1), (16, 16), (32.0,), (0.5, 1.0, 2.0)), note="three aspect ratios h / w: 0.5 is wide, 2 is tall"),
        Case(((1, 1), (16, 16), (32.0, 64.0), (0.5, 2.0)),
             note="2 ratios x 2 sizes: ratio-major order (all sizes of the first ratio, then the next)"),
        Case(((1, 1), (8, 8), (23.0, 45.0), (0.5, 1.0, 3.0)),
             note="odd sizes: the base anchors are rounded to whole pixels (torch.round: halves to even)"),
        Case(((2, 3), (16, 16), (32.0,), (1.0,)), note="a 2 x 3 grid: centres at k * stride, row by row"),
        Case(((3, 2), (8, 16), (16.0, 32.0), (1.0, 2.0)), note="a non-square stride (8 down, 16 across)"),
        Case(((4, 4), (4, 4), (12.0, 24.0, 48.0), (0.5, 1.0, 2.0)), note="the lab's detector: stride 4, 3 x 3 anchors"),
        Case(((2, 3), (7, 5), (45.0, 23.0), (1.0, 2.0)),
             note="odd strides and odd sizes: half-sizes 22.5 and 11.5 round (to even) before the shift; rounding "
                  "after adding an odd shift gives another whole pixel"),
    ]
    for _ in range(3):
        gh, gw = rand_int(g, 1, 6), rand_int(g, 1, 6)
        stride = (rand_int(g, 2, 32), rand_int(g, 2, 32))
        sizes = tuple(float(rand_int(g, 4, 128)) for _ in range(rand_int(g, 1, 3)))
        ratios = tuple(round(0.25 + float(torch.rand(1, generator=g)) * 3, 2) for _ in range(rand_int(g, 1, 3)))
        if rand_bool(g):  # ratio 1 with an odd size: a half-pixel half-size
            ratios = (*ratios, 1.0)
        cases.append(Case(((gh, gw), stride, sizes, ratios),
                          note=f"random: grid {gh} x {gw}, stride {stride}, sizes {sizes}, ratios {ratios}"))
    return cases


ANCHORS = Exercise(
    "05.anchors", title="anchors of a feature grid (torchvision AnchorGenerator's conventions)",
    reference=anchors_reference,
    cases=_anchor_cases,
    hint="base anchors: for each ratio r (= h / w), for each size s: w = s / sqrt(r), h = s * sqrt(r), the box "
         "(-w/2, -h/2, w/2, h/2) rounded with torch.round; then for cell (i, j) add (j * sx, i * sy, j * sx, i * sy); "
         "order: cells row by row, and within a cell the base anchors; a float32 (H * W * A) x 4 tensor.",
    function="anchors", tolerance=EXACT,
    off_limits=("torchvision.models.detection.anchor_utils.AnchorGenerator.generate_anchors",
                "torchvision.models.detection.anchor_utils.AnchorGenerator.grid_anchors",
                "torchvision.models.detection.anchor_utils.AnchorGenerator.forward",
                "course_utils.ops.anchors"),  # the course's own anchors, a module apart from the reference
    yourself="build the anchors yourself with tensor operations",
)


# ---- 05.encode and 05.decode ------------------------------------------------------------------
WEIGHTS_RPN, WEIGHTS_HEAD = (1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)


def _jitter(g: torch.Generator, boxes: torch.Tensor, amount: float = 0.3) -> torch.Tensor:
    w = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    out = boxes + (torch.rand(boxes.shape, generator=g, dtype=torch.float64) - 0.5).to(boxes.dtype) * amount * w
    x1, x2 = torch.minimum(out[:, 0], out[:, 2] - 0.5), torch.maximum(out[:, 2], out[:, 0] + 0.5)
    y1, y2 = torch.minimum(out[:, 1], out[:, 3] - 0.5), torch.maximum(out[:, 3], out[:, 1] + 0.5)
    return torch.stack([x1, y1, x2, y2], 1)


def _encode_cases(g: torch.Generator) -> list[Case]:
    ref = T([[0.0, 0.0, 10.0, 20.0]])
    cases = [
        Case((ref.clone(), ref.clone()), note="a box coded against itself: all zeros"),
        Case((T([[5.0, 0.0, 15.0, 20.0]]), ref.clone()), note="the lecture: moved right by half a width: dx = 0.5"),
        Case((T([[-5.0, -10.0, 15.0, 30.0]]), ref.clone()),
             note="twice as big around the same centre: dw = dh = log 2"),
        Case((T([[5.0, 0.0, 15.0, 20.0]]), ref.clone(), WEIGHTS_HEAD), note="the box head's weights (10, 10, 5, 5)"),
        Case((torch.zeros(0, 4), torch.zeros(0, 4)), note="no boxes: a 0 x 4 result"),
    ]
    r = _random_boxes(g, 4, dtype=torch.float64)
    cases.append(Case((_jitter(g, r), r, WEIGHTS_HEAD), note="float64 boxes: keep the dtype"))
    for _ in range(3):
        n = rand_int(g, 1, 8)
        r = _random_boxes(g, n)
        w = WEIGHTS_HEAD if rand_bool(g) else WEIGHTS_RPN
        cases.append(Case((_jitter(g, r), r, w), note=f"random: {n} boxes near their references, weights {w}"))
    return cases


ENCODE = Exercise(
    "05.encode", title="box regression targets relative to reference boxes (BoxCoder.encode_single)",
    reference=_coder.encode, cases=_encode_cases,
    hint="centres and sizes first: w = x2 - x1, cx = x1 + 0.5 * w (same for y, for boxes and references); then "
         "(wx * (cx - cx_a) / w_a, wy * (cy - cy_a) / h_a, ww * log(w / w_a), wh * log(h / h_a)), an N x 4 tensor.",
    function="encode_boxes", tolerance=ACCUMULATED,
    off_limits=("torchvision.models.detection._utils.BoxCoder.encode_single",
                "torchvision.models.detection._utils.BoxCoder.encode",
                "torchvision.models.detection._utils.encode_boxes"),
    yourself="write the box encoding yourself",
)


def _decode_cases(g: torch.Generator) -> list[Case]:
    ref = T([[0.0, 0.0, 10.0, 20.0]])
    clip = _coder.BBOX_XFORM_CLIP
    cases = [
        Case((torch.zeros(1, 4), ref.clone()), note="zero codes give the reference box back"),
        Case((T([[0.5, 0.0, 0.0, 0.0]]), ref.clone()), note="the lecture: dx = 0.5 moves it right by half a width"),
        Case((T([[0.0, 0.0, math.log(2.0), math.log(2.0)]]), ref.clone()), note="dw = dh = log 2: twice as big"),
        Case((T([[5.0, 0.0, 0.0, 0.0]]), ref.clone(), WEIGHTS_HEAD),
             note="weights (10, 10, 5, 5): divide by them first"),
        Case((T([[0.0, 0.0, 10.0, clip + 1.0]]), ref.clone()),
             note="huge dw, dh: clamped at log(1000 / 16) before exp (no overflow)"),
        Case((T([[0.0, 0.0, 25.0, -40.0], [1.0, -2.0, -30.0, 22.0]]),
              T([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 45.0, 25.0]]),
              WEIGHTS_HEAD),
             note="large codes with weights (10, 10, 5, 5): divide by the weights, then clamp only from above "
                  "(dw = 25 / 5 = 5 -> log(1000 / 16) = 4.14; dh = -40 / 5 = -8 stays -8)"),
        Case((T([[0.0, 0.0, 0.0, 0.0, 0.5, -0.5, 0.2, -0.2]]), ref.clone()),
             note="N x 8 codes: two boxes per reference (one per class), N x 8 result"),
        Case((torch.zeros(0, 4), torch.zeros(0, 4)), note="no boxes: a 0 x 4 result"),
    ]
    r = _random_boxes(g, 4, dtype=torch.float64)
    cases.append(Case((_coder.encode(_jitter(g, r), r, WEIGHTS_HEAD), r, WEIGHTS_HEAD), note="float64: keep the dtype"))
    for _ in range(3):
        n, k = rand_int(g, 1, 8), rand_int(g, 1, 3)
        w = WEIGHTS_HEAD if rand_bool(g) else WEIGHTS_RPN
        codes = torch.randn(n, 4 * k, generator=g) * torch.tensor(w).repeat(k) * 0.3
        cases.append(Case((codes, _random_boxes(g, n), w), note=f"random: {n} references, {k} boxes each, weights {w}"))
    n, k, w = rand_int(g, 1, 6), rand_int(g, 1, 2), (WEIGHTS_HEAD, (2.0, 2.0, 0.5, 3.0))[rand_int(g, 0, 1)]
    codes = torch.randn(n, 4 * k, generator=g) * torch.tensor(w).repeat(k)
    beyond = (clip + 0.5 + 3 * torch.rand(n, 2 * k,
                                          generator=g)) * torch.where(torch.rand(n, 2 * k, generator=g) < 0.5, -1, 1)
    codes.view(n, k, 4)[..., 2:] = (beyond.view(n, k, 2) * torch.tensor(w[2:]))      # |dw|, |dh| beyond the clamp
    cases.append(Case((codes, _random_boxes(g, n), w), note=f"random: {n} references, {k} boxes each, weights {w}, "
                                                          f"|dw|, |dh| beyond log(1000 / 16) after the weights"))
    return cases


DECODE = Exercise(
    "05.decode", title="boxes from regression codes and reference boxes (BoxCoder.decode_single)",
    reference=_coder.decode, cases=_decode_cases,
    hint="codes are N x 4K: columns 0::4 are dx, 1::4 dy, 2::4 dw, 3::4 dh; divide by the weights, clamp dw and dh "
         "at most log(1000 / 16); cx = dx * w_a + cx_a, w = exp(dw) * w_a; the box is (cx - w/2, cy - h/2, cx + w/2, "
         "cy + h/2) for each of the K, interleaved back to N x 4K.",
    function="decode_boxes", tolerance=ACCUMULATED,
    off_limits=("torchvision.models.detection._utils.BoxCoder.decode_single",
                "torchvision.models.detection._utils.BoxCoder.decode"),
    yourself="write the box decoding yourself",
)


# ---- 05.match --------------------------------------------------------------------------------
def _match_cases(g: torch.Generator) -> list[Case]:
    # float64, so that 0.7 in the tensor is the threshold 0.7 (float32's 0.69999999 is below it for a Python
    # comparison, equal to it for a tensor comparison: both would be right)
    q = T([[0.9, 0.7, 0.5, 0.3, 0.1, 0.0],
           [0.2, 0.6, 0.65, 0.1, 0.29, 0.0]], dtype=torch.float64)
    weak = T([[0.2, 0.1, 0.05], [0.0, 0.25, 0.25]], dtype=torch.float64)
    cases = [
        Case((q, 0.7, 0.3), note="the RPN's 0.7 / 0.3: >= 0.7 foreground, < 0.3 background (-1), between ignored (-2)"),
        Case((q, 0.5, 0.5), note="the box head's 0.5 / 0.5: nothing in between"),
        Case((weak, 0.7, 0.3), note="weak overlaps only: everything is background"),
        Case((weak, 0.7, 0.3, True),
             note="low-quality matches: each ground truth keeps its best predictions (both of a tie) even below 0.3"),
        Case((T([[0.8, 0.4, 0.0], [0.0, 0.0, 0.0]]), 0.7, 0.3, True),
             note="a ground truth that overlaps nothing: its best quality is 0, so every prediction with 0 'matches' "
                  "it (torchvision's rule)"),
        Case((torch.zeros(0, 5), 0.7, 0.3), note="an image without objects (M = 0): every prediction is background"),
        Case((torch.zeros(3, 0), 0.7, 0.3, True), note="no predictions (N = 0): an empty result"),
    ]
    for _ in range(3):
        m, n = rand_int(g, 1, 4), rand_int(g, 1, 12)
        iou = _boxes.box_iou(_random_boxes(g, m, size=32), _random_boxes(g, n, size=32))
        high = [0.7, 0.5, 0.6][rand_int(g, 0, 2)]
        low = [0.3, high, 0.4][rand_int(g, 0, 2)]
        low_q = rand_bool(g)
        cases.append(Case((iou, high, low, low_q), note=f"random: IoU of {m} boxes x {n} anchors, {high} / {low}, "
                                                      f"allow_low_quality_matches={low_q}"))
    return cases


MATCH = Exercise(
    "05.match", title="match predictions to ground truth with two thresholds (torchvision's Matcher)",
    reference=_matcher.match, cases=_match_cases,
    hint="best, idx = quality.max(dim=0) (per prediction); idx[best < low] = -1; idx[(best >= low) "
         "& (best < high)] = -2; "
         "with low-quality matches, every prediction j with quality[i, j] == quality[i].max() for some i gets back its "
         "original idx (keep a copy from before the thresholds). M = 0: all -1. int64.",
    function="match", tolerance=EXACT,
    off_limits=("torchvision.models.detection._utils.Matcher.__call__",
                "torchvision.models.detection._utils.Matcher.set_low_quality_matches_"),
    yourself="write the matching rule yourself with tensor operations",
)


# ---- 05.nms and 05.batched_nms ----------------------------------------------------------------
def _scored(g: torch.Generator, n: int, threshold: float, levels: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-number boxes (exact IoU arithmetic) clustered so that many overlap; scores with ties.

    No two boxes have an IoU of exactly ``threshold`` when float32 cannot hold it (0.3, 0.7): an IoU of 3/10 is
    0.30000001 in float32, which torchvision's kernel finds above 0.3 and a float32 comparison (``iou > 0.3``
    casts 0.3 to float32) does not; both are right. Such a pair gets one box a pixel wider."""
    centres = _random_boxes(g, max(1, n // 3), size=40, whole=True)
    which = torch.randint(0, len(centres), (n,), generator=g)
    boxes = centres[which] + torch.randint(-3, 4, (n, 4), generator=g).float()
    boxes = torch.stack([boxes[:, 0], boxes[:, 1], torch.maximum(boxes[:, 2], boxes[:, 0] + 1),
                         torch.maximum(boxes[:, 3], boxes[:, 1] + 1)], 1)
    while float(torch.tensor(threshold, dtype=torch.float32)) != threshold:
        near = (_boxes.box_iou(boxes.double(), boxes.double()) - threshold).abs() < 1e-6
        near.fill_diagonal_(False)
        if not near.any():
            break
        boxes[int(near.nonzero()[0, 1]), 2] += 1
    scores = torch.randint(1, levels + 1, (n,), generator=g).float() / levels
    return boxes, scores


def _nms_cases(g: torch.Generator) -> list[Case]:
    lecture = T([[10.0, 10.0, 50.0, 50.0], [12.0, 12.0, 52.0, 52.0], [60.0, 10.0, 90.0, 40.0], [11.0, 9.0, 49.0, 51.0]])
    scores = T([0.9, 0.8, 0.7, 0.95])
    half = T([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    cases = [
        Case((lecture, scores, 0.5),
             note="the lecture: three boxes on one object, one elsewhere: the best of the three stays"),
        Case((lecture, T([0.8, 0.8, 0.8, 0.8]), 0.5), note="equal scores: visit them in input order (a stable sort)"),
        Case((lecture, scores, 0.0), note="threshold 0: any overlap suppresses, touching (IoU 0) does not"),
        Case((lecture, scores, 1.0), note="threshold 1: nothing is suppressed; the result is sorted by score"),
        Case((half, T([0.9, 0.8]), 0.5), note="IoU exactly 0.5 at threshold 0.5: kept (suppress only IoU > threshold)"),
        Case((T([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [10.0, 0.0, 20.0, 10.0]]), T([0.9, 0.8, 0.7]), 0.3),
             note="a chain: A suppresses B (IoU 1/3); B, suppressed, no longer counts, so C (IoU 0 with A) stays"),
        Case((torch.zeros(0, 4), torch.zeros(0), 0.5), note="no boxes: an empty int64 result"),
    ]
    for _ in range(3):
        n, t = rand_int(g, 2, 30), [0.3, 0.5, 0.7][rand_int(g, 0, 2)]
        boxes, s = _scored(g, n, t)
        cases.append(Case((boxes, s, t), note=f"random: {n} clustered boxes, scores with ties, threshold {t}"))
    return cases


NMS = Exercise(
    "05.nms", title="greedy non-maximum suppression", reference=_nms.nms, cases=_nms_cases,
    hint="order = torch.sort(scores, descending=True, stable=True).indices; walk the order, keep a box unless a kept "
         "box overlaps it with IoU > iou_threshold; return the kept indices (int64, into the original "
         "boxes) in visiting order.",
    function="nms", tolerance=EXACT,
    off_limits=("torchvision.ops.nms", "torchvision.ops.boxes.nms", "torchvision.ops.batched_nms",
                "torchvision.ops.boxes._batched_nms_coordinate_trick", "torchvision.ops.boxes._batched_nms_vanilla"),
    yourself="write the suppression yourself (your box_iou is fine)",
    allowed=("course_utils.structures.boxes.box_iou",),  # exercise 05.box_iou: after fallback, the course's
)


def _batched_nms_cases(g: torch.Generator) -> list[Case]:
    same = T([[10.0, 10.0, 50.0, 50.0], [12.0, 12.0, 52.0, 52.0], [10.0, 10.0, 50.0, 50.0], [11.0, 9.0, 49.0, 51.0]])
    scores = T([0.9, 0.8, 0.7, 0.6])
    cases = [
        Case((same, scores, T([0, 0, 1, 1]), 0.5),
             note="the lecture: the same object in two classes: one box per class"),
        Case((same, scores, T([0, 0, 0, 0]), 0.5), note="one class: plain NMS"),
        Case((same, scores, T([3, 1, 2, 0]), 0.5), note="every box its own class: nothing suppressed, sorted by score"),
        Case((same, T([0.5, 0.5, 0.5, 0.5]), T([1, 0, 1, 0]), 0.5), note="equal scores: input order"),
        Case((same, scores, T([7, 3, 7, 3]), 0.5), note="class ids 3 and 7 (any ints, not only 0 .. K-1)"),
        Case((T([[10.0, 10.0, 50.0, 50.0], [110.0, 110.0, 150.0, 150.0], [1010.0, 1010.0, 1050.0, 1050.0],
                 [10010.0, 10010.0, 10050.0, 10050.0], [12.0, 12.0, 52.0, 52.0]]), T([0.9, 0.8, 0.7, 0.6, 0.5]),
              T([1, 0, 0, 0, 1]), 0.3),
             note="class-0 boxes 100, 1000 and 10000 pixels right of and below a class-1 box: shifting the classes "
                  "apart by a fixed idxs * 100 (or 1000, ...) would make them overlap; shift by more than the largest "
                  "coordinate"),
        Case((torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5), note="no boxes"),
    ]
    for _ in range(3):
        n, c, t = rand_int(g, 2, 30), rand_int(g, 1, 3), [0.3, 0.5, 0.7][rand_int(g, 0, 2)]
        boxes, s = _scored(g, n, t)
        idxs = torch.randint(0, c, (n,), generator=g) * rand_int(g, 1, 3) + rand_int(g, 0, 4)   # ids with gaps
        cases.append(Case((boxes, s, idxs, t), note=f"random: {n} boxes in {c} classes, threshold {t}"))
    return cases


BATCHED_NMS = Exercise(
    "05.batched_nms", title="non-maximum suppression within each class", reference=_nms.batched_nms,
    cases=_batched_nms_cases,
    hint="boxes of different classes must never suppress each other: run your nms per class (or on boxes shifted "
         "apart by class: boxes + idxs[:, None] * (boxes.max() + 1)), then list all kept indices by decreasing "
         "score, equal scores in input order.",
    function="batched_nms", tolerance=EXACT,
    off_limits=("torchvision.ops.nms", "torchvision.ops.boxes.nms", "torchvision.ops.batched_nms",
                "torchvision.ops.boxes._batched_nms_coordinate_trick", "torchvision.ops.boxes._batched_nms_vanilla"),
    yourself="write the per-class suppression yourself (your nms is fine)",
    allowed=("course_utils.ops.nms.nms",),  # exercise 05.nms: after fallback, the course's
)


# ---- 05.average_precision ---------------------------------------------------------------------
def _det(boxes: list, scores: list, labels: list) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor(scores, dtype=torch.float32), "labels": torch.tensor(labels, dtype=torch.int64)}


def _gt(boxes: list, labels: list) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64)}


def _random_detections(g: torch.Generator, images: int, classes: int) -> tuple[list, list]:
    preds, targets = [], []
    for _ in range(images):
        m = rand_int(g, 0, 4)
        gt = _random_boxes(g, m, size=100)
        gl = torch.randint(1, classes + 1, (m,), generator=g)
        hits = torch.rand(m, generator=g) < 0.8                        # found objects, jittered
        found = _jitter(g, gt[hits], 0.4)
        twice = rand_int(g, 0, 1)                                      # some found twice: a duplicate
        found, hit_labels = torch.cat([found,
                                       _jitter(g, gt[hits][:twice], 0.2)]), torch.cat([gl[hits], gl[hits][:twice]])
        k = rand_int(g, 0, 3)
        fp = _random_boxes(g, k, size=100)                              # false positives, any class
        boxes = torch.cat([found, fp])
        labels = torch.cat([hit_labels, torch.randint(1, classes + 2, (k,), generator=g)])   # classes + 1: no GT
        scores = torch.randint(1, 11, (len(boxes),), generator=g).float() / 10           # ties
        perm = torch.randperm(len(boxes), generator=g)
        preds.append({"boxes": boxes[perm], "scores": scores[perm], "labels": labels[perm]})
        targets.append({"boxes": gt, "labels": gl})
    return preds, targets


def _ap_cases(g: torch.Generator) -> list[Case]:
    gt = _gt([[10, 10, 50, 50], [60, 60, 90, 95]], [1, 1])
    exact = _det([[10, 10, 50, 50], [60, 60, 90, 95]], [0.9, 0.8], [1, 1])
    cases = [
        Case(([exact], [gt]), note="perfect detections: AP 1 at every threshold"),
        Case(([_det([[10, 10, 50, 50], [0, 60, 30, 90], [60.5, 61, 89, 96]], [0.9, 0.85, 0.5], [1, 1, 1])], [gt]),
             note="a false positive ranked between the two hits"),
        Case(([_det([[12.3, 11.1, 52.7, 49.2], [63.1, 57.2, 88.4, 91.9]], [0.9, 0.8], [1, 1])], [gt]),
             note="shifted boxes: hits at IoU 0.5 that miss at the higher thresholds"),
        Case(([_det([[10, 10, 50, 50], [60, 60, 90, 95]], [0.7, 0.7], [1, 1]),
               _det([[5, 5, 20, 20]], [0.7], [1])], [gt, _gt([], [])]),
             note="ties: equal scores keep their order (image by image, then by rank); the "
                  "second image has no objects"),
        Case(([_det([[10, 10, 50, 50], [0, 0, 5, 5]], [0.9, 0.95], [1, 2])], [_gt([[10, 10, 50, 50]], [1])]),
             note="class 2 has no ground truth anywhere: left out of the mean (its false positives cost nothing)"),
        Case(([_det([[0, 0, 5, 5], [10, 10, 50, 50], [60, 60, 90, 95]], [0.99, 0.9, 0.8], [1, 1, 1])], [gt], 2),
             note="max_dets=2: only the 2 best-scored detections per image and class count"),
        Case(([_det([[0, 0, 5, 5], [10, 10, 50, 50], [60, 60, 90, 95], [70, 0, 80, 10], [20, 60, 40, 80]],
                    [0.3, 0.2, 0.9, 0.95, 0.5], [1, 1, 1, 2, 2])],
              [_gt([[10, 10, 50, 50], [60, 60, 90, 95], [20, 60, 40, 80]], [1, 1, 2])], 2),
             note="max_dets=2 with two classes, detections not given in score order: the 2 best-scored of each class "
                  "in each image (class 1 keeps 0.9 and 0.3, class 2 both)"),
        Case(([_det([[10, 10, 50, 50], [11, 11, 51, 51], [60, 60, 90, 95]], [0.9, 0.8, 0.7], [1, 1, 1])], [gt]),
             note="two detections on one ground-truth box: the second (lower score) finds it taken, a false positive"),
        Case(([_det([[3, 0, 23, 20], [0, 0, 20, 20]], [0.9,
                                                       0.8], [1, 1])], [_gt([[0, 0, 20, 20], [4, 0, 24, 20]], [1, 1])]),
             note="a detection overlapping two ground-truth boxes (IoU 0.74 and 0.90) takes the one it overlaps most, "
                  "so the next detection still finds its own"),
        Case(([_det([[0, 0, 10, 5], [20, 0, 30,
                                     7.5]], [0.9, 0.8], [1, 1])], [_gt([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 1])]),
             note="IoUs of exactly 0.5 and 0.75: hits at those thresholds (IoU >= t)"),
        Case(([_det([[0, 0, 5, 5]], [0.6], [1]), _det([[10, 10, 50, 50]], [0.6], [1])],
              [_gt([[60, 60, 90, 95]], [1]), _gt([[10, 10, 50, 50]], [1])]),
             note="a false positive (first image) and a hit (second image) with equal scores: images in order, so the "
                  "false positive ranks first"),
        Case(([_det([], [], [])], [gt]), note="no detections: AP 0"),
        Case(([_det([[0, 0, 5, 5]], [0.5], [1])], [_gt([], [])]), note="no ground truth at all: -1 (undefined)"),
    ]
    for _ in range(3):
        images, classes = rand_int(g, 1, 4), rand_int(g, 1, 3)
        preds, targets = _random_detections(g, images, classes)
        cap = (rand_int(g, 1, 3),) if rand_bool(g) else ()
        cases.append(Case((preds, targets, *cap),
                          note=f"random: {images} images, {classes} classes, jittered hits (some twice), false "
                               f"positives (some of a class without ground truth), tied scores"
                               + (f", max_dets={cap[0]}" if cap else "")))
    return cases


def _ap_verify(case: Case, got: object, expected: dict[str, float]) -> str | None:
    """pycocotools' AP (the reference: float64 grids) or torchmetrics' (the same on float32 grids, which read a
    recall or an IoU exactly on a grid point differently): both are COCO AP as the field computes it."""
    problem = compare(expected, got, *TIGHT)
    if problem is None or compare(_detection.coco_map_torchmetrics(*case.args, **case.kwargs), got, *TIGHT) is None:
        return None
    return problem


AVERAGE_PRECISION = Exercise(
    "05.average_precision", title="COCO box AP (101 recall points, IoU .50:.05:.95, max detections)",
    reference=_detection.coco_map, cases=_ap_cases, verify=_ap_verify,
    hint="per class: per image, detections by score (stable sort), the first max_dets; for each IoU threshold in "
         "np.linspace(0.5, 0.95, 10) each detection takes the free ground truth it overlaps most with IoU >= t; "
         "then all images' detections by score (stable), precision = TP / rank, made monotone from the right, read at "
         "recall np.linspace(0, 1, 101) (first rank with recall >= r, else 0); mean over thresholds and over classes "
         "with ground truth. Return {'map': ..., 'map_50': ..., 'map_75': ...} as floats (-1 without ground truth).",
    function="average_precision", tolerance=TIGHT,
    # torchmetrics' MeanAveragePrecision runs pycocotools' COCOeval (importing torchmetrics here would cost 3 s)
    off_limits=("pycocotools.cocoeval.COCOeval.evaluate", "pycocotools.cocoeval.COCOeval.accumulate"),
    yourself="compute COCO AP yourself",
    allowed=("course_utils.structures.boxes.box_iou",),  # exercise 05.box_iou: after fallback, the course's
)

EXERCISES = (BOX_IOU, ROI_POOL, ROI_ALIGN, ANCHORS, ENCODE, DECODE, MATCH, NMS, BATCHED_NMS, AVERAGE_PRECISION)
