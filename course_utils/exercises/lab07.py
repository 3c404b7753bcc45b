"""Lab 07 exercises: Mask R-CNN -- the mask head's targets and loss, pasting predicted masks into the
image, the keypoint head's targets, and the IoU of masks that mask AP is computed with.

The references are :mod:`course_utils.ops.masks` and :mod:`course_utils.ops.keypoints`, which
``tests/test_lab07.py`` holds equal to torchvision's ``roi_heads`` functions (``project_masks_on_boxes``,
``maskrcnn_loss``, ``paste_masks_in_image``, ``keypoints_to_heatmap``) and to pycocotools' ``mask.iou``.
Fixed cases first (the lecture's examples, the edge cases), then seeded random ones. torchvision's
functions and the course's references are off-limits inside the student's function; RoIAlign is not
(a mask target *is* a RoIAlign of the mask: the student's lab-05 ``roi_align``, the course's or
torchvision's), nor is ``F.binary_cross_entropy_with_logits`` (the lesson of ``07.mask_loss`` is which
channel is trained and how the loss is averaged; lab 02 wrote a cross-entropy by hand already).
"""

from __future__ import annotations

import torch

from course_utils.exercises.cases import LIBRARY_IOU, rand_bool, rand_int
from course_utils.grading.compare import compare
from course_utils.grading.exercise import (
    ACCUMULATED,
    EXACT,
    FLOAT32,
    SUMS,
    Case,
    Exercise,
)
from course_utils.ops import keypoints as _keypoints
from course_utils.ops import masks as _masks
from course_utils.ops import torchvision_heads as _tv

T = torch.tensor
MASK_DTYPES = (torch.uint8, torch.bool, torch.float32)


# ---- shared: instance masks and boxes around them ---------------------------------------------
def _blobs(g: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """``n x h x w`` uint8 instance masks: ellipses (half of them with a rectangular notch, so that a mask
    is not its box), each with at least its centre pixel, some touching the image's border."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    masks = torch.zeros(n, h, w, dtype=torch.uint8)
    for i in range(n):
        cy, cx = float(torch.rand(1, generator=g)) * (h - 1), float(torch.rand(1, generator=g)) * (w - 1)
        ry = 1.0 + float(torch.rand(1, generator=g)) * (h / 2.5)
        rx = 1.0 + float(torch.rand(1, generator=g)) * (w / 2.5)
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        if rand_bool(g):
            m &= ~((yy > cy) & (xx > cx))                                     # a notch: the lower-right quarter
        m[round(cy), round(cx)] = True
        masks[i] = m.to(torch.uint8)
    return masks


def _tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``n x 4`` float32 XYXY boxes around non-empty masks (pixel edges: a pixel at column c spans c..c+1)."""
    boxes = []
    for m in masks:
        ys, xs = torch.nonzero(m, as_tuple=True)
        boxes.append([float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1])
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


def _jitter(g: torch.Generator, boxes: torch.Tensor, amount: float = 0.3) -> torch.Tensor:
    """Boxes moved and resized by up to ``amount`` of their size (proposals around an object); may stick out
    of the image; at least 0.5 pixel wide."""
    b = boxes.double()
    wh = (b[:, 2:] - b[:, :2]).clamp(min=1.0)
    moved = b + (torch.rand(b.shape, generator=g, dtype=torch.float64) * 2 - 1) * amount * wh.repeat(1, 2)
    x1, y1 = torch.minimum(moved[:, 0], moved[:, 2] - 0.5), torch.minimum(moved[:, 1], moved[:, 3] - 0.5)
    return torch.stack([x1, y1, moved[:, 2], moved[:, 3]], 1).float()


# ---- 07.mask_targets -------------------------------------------------------------------------
def _rect_mask(h: int, w: int, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    m = torch.zeros(1, h, w, dtype=torch.uint8)
    m[0, rows[0]:rows[1], cols[0]:cols[1]] = 1
    return m


def _random_targets_case(g: torch.Generator) -> tuple[tuple, str]:
    n_gt, h, w = rand_int(g, 1, 4), rand_int(g, 16, 48), rand_int(g, 16, 48)
    masks = _blobs(g, n_gt, h, w)
    k = rand_int(g, 1, 8)
    idx = torch.randint(0, n_gt, (k,), generator=g)
    boxes = _jitter(g, _tight_boxes(masks)[idx], 0.4)
    size = [4, 7, 14, 28][rand_int(g, 0, 3)]
    dtype = MASK_DTYPES[rand_int(g, 0, 2)]
    return ((masks.to(dtype), boxes, idx, size),
            f"random: {n_gt} {str(dtype).replace('torch.', '')} masks of {h} x {w}, {k} proposals "
            f"around them, M = {size}")


def _mask_targets_cases(g: torch.Generator) -> list[Case]:
    square = _rect_mask(12, 16, (3, 9), (4, 12))                              # rows 3..8, columns 4..11
    corner = _rect_mask(10, 10, (0, 6), (0, 5))                               # touches the top and left edges
    two = torch.cat([_rect_mask(16, 16, (2, 10), (2, 9)), _rect_mask(16, 16, (6, 14), (7, 15))]).bool()
    detail = _blobs(g, 2, 48, 48)
    cases = [
        Case((square, T([[4.0, 3.0, 12.0, 9.0]]), T([0]), 4),
             note="the lecture: a proposal exactly on a 6 x 8 rectangle (columns 4..11, rows 3..8, the box 4..12 x "
                  "3..9): RoIAlign of the mask with aligned=False reads pixel centres at whole coordinates, so the "
                  "last bins' samples fall between the object's last pixel and the first one outside: 1 inside, "
                  "0.75 / 0.69 / 0.52 along the right and bottom edges"),
        Case((square, T([[2.0, 1.0, 14.0, 11.0], [6.5, 4.25, 10.0, 7.5]]), T([0, 0]), 5),
             note="two proposals on one object: a larger one (zeros around the object) and a smaller one inside it"),
        Case((corner, T([[-3.0, -2.5, 5.0, 7.0], [4.0, 2.0, 13.5, 12.0]]), T([0, 0]), 4),
             note="proposals partly outside the image: samples within a pixel of the border read the edge pixel, "
                  "samples further out read 0"),
        Case((square, T([[5.2, 4.1, 5.6, 4.3], [11.7, 8.6, 12.0, 8.9]]), T([0, 0]), 3),
             note="proposals smaller than a pixel: aligned=False makes each at least 1 x 1 before sampling"),
        Case((two, T([[1.5, 1.0, 10.0, 11.0], [1.5, 1.0, 10.0, 11.0], [6.0, 5.0, 15.5, 15.0], [0.0, 0.0, 16.0, 16.0]]),
              T([0, 1, 1, 0]), 6),
             note="two overlapping objects (bool masks): each proposal is cut from the mask of the object it matched "
                  "(matched_idxs), not from the union; the same box matched to object 0 or 1 gives different targets"),
        Case((detail, T([[0.0, 0.0, 48.0, 48.0], [5.5, 3.25, 45.0, 40.0]]), T([0, 1]), 4),
             note="large proposals, small M: sampling_ratio -1 (adaptive) takes ceil(box side / M) samples per bin "
                  "side (12 x 12 here), not a fixed 2 x 2"),
        Case((detail.float(), _jitter(g, _tight_boxes(detail)[[0, 1, 1]], 0.2), T([0, 1, 1]), 28),
             note="float masks, M = 28 (the paper's mask size)"),
        Case((square, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), 4),
             note="no positive proposal (K = 0): a 0 x M x M result"),
    ]
    for _ in range(3):
        args, note = _random_targets_case(g)
        cases.append(Case(args, note=note))
    return cases


MASK_TARGETS = Exercise(
    "07.mask_targets", title="mask-head targets: each ground-truth mask cropped to its proposal and resized to M x M",
    reference=_masks.mask_targets, cases=_mask_targets_cases,
    hint="the target IS a RoIAlign of the mask: take the G masks as a batch of G one-channel images "
         "(gt_masks[:, None] as float), give proposal k the batch index matched_idxs[k] (rois K x 5: index, x1, y1, "
         "x2, y2), and RoIAlign to (M, M) with spatial_scale 1, sampling_ratio -1 (adaptive) and aligned=False: your "
         "lab-05 roi_align, the course's or torchvision.ops.roi_align; then drop the channel: K x M x M, soft values "
         "kept (no threshold), in the boxes' dtype; K = 0 gives 0 x M x M.",
    function="mask_targets", tolerance=ACCUMULATED,
    off_limits=("torchvision.models.detection.roi_heads.project_masks_on_boxes",
                "torchvision.models.detection.roi_heads.maskrcnn_loss", "course_utils.ops.masks.mask_targets",
                "course_utils.ops.torchvision_heads.mask_targets", "course_utils.ops.torchvision_heads.maskrcnn_loss"),
    yourself="build the mask targets yourself (RoIAlign is allowed: yours, the course's or torchvision's)",
    allowed=("course_utils.ops.roi_ops.roi_align",),  # exercise 05.roi_align: after fallback, the course's
)


# ---- 07.mask_loss ----------------------------------------------------------------------------
def _soft_targets(g: torch.Generator, k: int, m: int) -> torch.Tensor:
    """``k x m x m`` targets like RoIAlign's: mostly 0 and 1, soft values along the edges."""
    hard = (torch.rand(k, 1, max(m // 2, 1), max(m // 2, 1), generator=g) > 0.5).float()
    return torch.nn.functional.interpolate(hard, size=(m, m), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)


def _mask_loss_cases(g: torch.Generator) -> list[Case]:
    # no logit exactly 0: max(x, 0) - x t + log(1 + exp(-|x|)), a correct formula, has autograd's kink there
    logits = T([[[[2.0, -1.0], [0.5, -3.0]], [[1.0, 1.0], [-2.0, 4.0]], [[-0.5, 2.5], [3.0, 0.75]]],
                [[[0.25, -0.75], [1.0, -1.0]], [[2.0, -2.0], [-1.5, 0.5]], [[1.5, -0.5], [-2.5, 3.5]]]])
    targets = T([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]])
    big = torch.randn(3, 3, 4, 4, generator=g) * 3
    big[0, 1] = T([[200.0, -200.0, 50.0, -50.0]] * 4)
    big[2, 2] = -big[0, 1]
    big_targets = (torch.rand(3, 4, 4, generator=g) > 0.5).float()
    big_targets[0] = T([[0.0, 1.0, 0.0, 1.0]] * 4)                            # every big logit is wrong
    big_targets[2] = T([[1.0, 0.0, 0.0, 1.0]] * 4)
    k28 = torch.randn(5, 4, 28, 28, generator=g) * 2
    cases = [
        Case((logits, targets, T([1, 2])),
             note="the lecture: 2 RoIs, C = 3 classes (channel 0 the background), 2 x 2 masks: RoI 0 of class 1, RoI 1 "
                  "of class 2: only those two channels count, mean of the 8 per-pixel binary cross-entropies"),
        Case((logits, targets, T([2, 2])), note="the same logits, both RoIs of class 2: another channel of RoI 0"),
        Case((torch.randn(4, 3, 5, 5, generator=g) * 2, _soft_targets(g, 4, 5), T([1, 2, 1, 1])),
             note="soft targets in (0, 1) from RoIAlign: use them as they are (binary cross-entropy takes any "
                  "target in [0, 1]; no threshold)"),
        Case((big, big_targets, T([1, 2, 2])),
             note="logits of +-50 and +-200 on the wrong side: the loss is the logit itself (200), so compute it from "
                  "the logits (log-sum-exp form), not as log(sigmoid(x)), which gives log(0)"),
        Case((torch.randn(1, 2, 3, 3, generator=g), (torch.rand(1, 3, 3, generator=g) > 0.5).float(), T([1])),
             note="one RoI, C = 2 (background + one class)"),
        Case((k28, _soft_targets(g, 5, 28), T([3, 1, 2, 3, 1])),
             note="5 RoIs, C = 4, M = 28 (the paper's mask size)"),
        Case((torch.randn(0, 3, 4, 4, generator=g), torch.zeros(0, 4, 4), torch.zeros(0, dtype=torch.int64)),
             note="no positive RoI (K = 0): the mean of nothing is NaN; return mask_logits.sum() * 0, a zero that "
                  "still has a gradient (the training step calls backward on it)"),
    ]
    for _ in range(3):
        k, c, m = rand_int(g, 1, 6), rand_int(g, 2, 5), [2, 4, 7, 14][rand_int(g, 0, 3)]
        labels = torch.randint(1, c, (k,), generator=g)
        targets = _soft_targets(g, k, m) if rand_bool(g) else (torch.rand(k, m, m, generator=g) > 0.5).float()
        cases.append(Case((torch.randn(k, c, m, m, generator=g) * 3, targets, labels),
                          note=f"random: {k} RoIs, C = {c}, M = {m}"))
    return cases


MASK_LOSS = Exercise(
    "07.mask_loss", title="mask loss: binary cross-entropy with logits on the ground-truth class's channel, mean",
    reference=_masks.mask_loss, cases=_mask_loss_cases,
    hint="pick one channel per RoI, the ground-truth class's: mask_logits[torch.arange(K), labels] (K x M x M); the "
         "loss is the mean over all K * M * M pixels of the binary cross-entropy with logits against mask_targets "
         "(F.binary_cross_entropy_with_logits, or max(x, 0) - x * t + log(1 + exp(-|x|)) by hand): no softmax over "
         "classes, the other channels untouched; K = 0: return mask_logits.sum() * 0. Build it from the inputs with "
         "torch operations so that the gradient flows.",
    function="mask_loss", tolerance=SUMS,
    gradient=(0,),  # the lab trains with it: the loss must carry the reference's gradient w.r.t. the logits
    off_limits=("torchvision.models.detection.roi_heads.maskrcnn_loss", "course_utils.ops.masks.mask_loss",
                "course_utils.ops.torchvision_heads.maskrcnn_loss"),
    yourself="write the mask loss yourself (F.binary_cross_entropy_with_logits is allowed)",
)


# ---- 07.paste_masks --------------------------------------------------------------------------
def _random_paste_boxes(g: torch.Generator, n: int, m: int, h: int, w: int) -> torch.Tensor:
    """``n`` float32 boxes, sides 0.3 px .. half the image, that overlap the image once grown by ``(m + 2) / m``
    and truncated, and whose grown corners lie at least 1e-3 from a whole number (so that every correct
    implementation, whatever its float arithmetic, truncates them alike)."""
    boxes: list[torch.Tensor] = []
    while len(boxes) < n:
        side = 0.3 + torch.rand(2, generator=g, dtype=torch.float64) * (torch.tensor([w, h]) / 2 - 0.3)
        corner = torch.rand(2, generator=g, dtype=torch.float64) * (torch.tensor([w, h]) + side) - side * 0.8
        box = torch.cat([corner, corner + side]).float()
        grown = _tv.grown_boxes(box[None], m)[0].double()
        whole = grown.trunc()
        if ((grown - grown.round()).abs() < 1e-3).any() or whole[2] < 0 or whole[3] < 0 or whole[0] >= w \
                or whole[1] >= h:
            continue
        boxes.append(box)
    return torch.stack(boxes) if boxes else torch.zeros(0, 4)


def _probabilities(g: torch.Generator, n: int, m: int) -> torch.Tensor:
    """``n x m x m`` smooth probability maps (a sigmoid of upsampled noise): blobs with soft edges."""
    low = torch.randn(n, 1, max(m // 3, 2), max(m // 3, 2), generator=g) * 3
    return torch.sigmoid(torch.nn.functional.interpolate(low, size=(m, m), mode="bilinear", align_corners=False))[:, 0]


def _paste_cases(g: torch.Generator) -> list[Case]:
    disc = T([[0.1, 0.6, 0.6, 0.1], [0.6, 0.9, 0.9, 0.6], [0.6, 0.9, 0.9, 0.6], [0.1, 0.6, 0.6, 0.1]])
    half = torch.full((1, 4, 4), 0.5)
    cases = [
        Case((disc[None], T([[2.0, 2.0, 9.0, 9.0]]), (12, 12)),
             note="the lecture: a 4 x 4 map in the box (2, 2, 9, 9): padded with zeros to 6 x 6, the box grown by "
                  "6 / 4 about its centre to (0.25, 0.25, 10.75, 10.75), truncated to (0, 0, 10, 10), the map resized "
                  "bilinearly to 11 x 11 pixels (x1..x2 included: + 1) and pasted there, then > 0.5"),
        Case((torch.cat([half, disc[None]]), T([[0.0, 0.0, 3.0, 3.0], [4.0, 3.0, 12.0, 7.0]]), (8, 14)),
             note="a map of exactly 0.5 (its box grows to (-0.75, -0.75, 3.75, 3.75) -> (0, 0, 3, 3): 6 x 6 resized "
                  "to 4 x 4, the middle pixels exactly 0.5): > threshold, not >=, leaves them out"),
        Case((_probabilities(g, 3, 7), T([[0.0, 0.0, 6.0, 5.0], [9.2, 4.5, 16.0, 10.0], [3.0, 8.0, 12.0, 12.0]]),
              (10, 16)),
             note="boxes on the image's border (x1 = 0, x2 = W, y2 = H): the grown boxes stick out, their parts "
                  "outside the image are cut off"),
        Case((_probabilities(g, 2, 5), T([[-2.7, -1.5, 6.3, 4.9], [10.4, 2.2, 19.5, 13.8]]), (12, 14)),
             note="boxes partly outside the image: the grown corners -4.5 and -0.12 truncate "
                  "towards 0 (.to(torch.int64): "
                  "-4 and 0, not floor's -5 and -1), and the part of the resized map outside the image is cut off (the "
                  "map read from offset -x1, -y1)"),
        Case((_probabilities(g, 2, 4), T([[5.2, 5.3, 5.6, 5.5], [2.4, 7.1, 2.5, 7.9]]), (10, 10)),
             note="boxes smaller than a pixel: at least 1 x 1 pixel (the map resized to a single value)"),
        Case((_probabilities(g, 3, 6), T([[1.0, 1.5, 8.0, 7.0], [4.0, 2.0, 14.0, 9.0], [12.0, 1.0, 19.0, 6.0]]),
              (9, 20), 0.3), note="a non-square image, image_size = (H, W) = (9, 20), threshold 0.3"),
        Case((_probabilities(g, 3, 28), _random_paste_boxes(g, 3, 28, 48, 64), (48, 64)), {"threshold": 0.7},
             note="M = 28 (the paper's mask size) in a 48 x 64 image, threshold 0.7"),
        Case((torch.zeros(0, 28, 28), torch.zeros(0, 4), (6, 8)), note="no detection (N = 0): a 0 x H x W bool result"),
    ]
    for _ in range(3):
        n, m = rand_int(g, 1, 6), [4, 7, 14, 28][rand_int(g, 0, 3)]
        h, w = rand_int(g, 12, 64), rand_int(g, 12, 64)
        threshold = [0.5, 0.5, 0.3, 0.7][rand_int(g, 0, 3)]
        size = (h, w) if h != w or rand_bool(g) else h
        cases.append(Case((_probabilities(g, n, m), _random_paste_boxes(g, n, m, h, w), size), {"threshold": threshold},
                          note=f"random: {n} maps of {m} x {m} in a {h} x {w} image, threshold {threshold}"))
    return cases


#: pixels whose probability lies this close to the threshold may go either way (float rounding)
PASTE_MARGIN = 1e-5


def _paste_verify(case: Case, got: object, expected: torch.Tensor) -> str | None:
    """The reference's bool masks, except that a pixel whose pasted probability lies within
    :data:`PASTE_MARGIN` of the threshold (but not exactly on it) may go either way: bilinear weights
    computed in another order, or in float64, move such values by a few units in the last place."""
    problem = compare(expected, got, 0.0, 0.0, exact_dtype=True)
    if problem is None or not isinstance(got, torch.Tensor) or got.shape != expected.shape or got.dtype != torch.bool:
        return problem
    masks, boxes, image_size = case.args[:3]
    threshold = case.kwargs.get("threshold", case.args[3] if len(case.args) > 3 else 0.5)
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    near = torch.zeros_like(expected)
    for p in (_tv.paste_probabilities(masks, boxes, size),
              _tv.paste_probabilities(masks.double(), boxes.double(), size)):
        gap = (p.double() - threshold).abs()
        near |= (gap > 0) & (gap <= PASTE_MARGIN)
    wrong = (got.detach().cpu() != expected) & ~near
    if not wrong.any():
        return None
    first = tuple(int(i) for i in wrong.nonzero()[0])
    return (f"{int(wrong.sum())} of {wrong.numel()} pixels differ (mask, row, column); first at {first}: expected "
            f"{bool(expected[first])}, got {bool(got[first])}")


PASTE_MASKS = Exercise(
    "07.paste_masks", title="M x M mask probabilities pasted into their boxes in the image, thresholded",
    reference=_masks.paste_masks, cases=_paste_cases, verify=_paste_verify,
    hint="for each map: pad it with a ring of zeros (F.pad(mask, (1, 1, 1, 1)): (M + 2) x (M + 2)) and grow its box "
         "about the centre by scale = (M + 2) / M (half-width (x2 - x1) * 0.5 * scale, likewise the height); convert "
         "the grown box with .to(torch.int64) (truncation towards 0); w = max(x2 - x1 + 1, 1), h likewise; resize the "
         "padded map to (h, w) with F.interpolate(mode='bilinear', align_corners=False); paste the part inside the "
         "image (columns max(x1, 0) .. min(x2 + 1, W), taken from the map at offset -x1; rows likewise) into an "
         "H x W image of zeros; return N x H x W bool, pixel > threshold. image_size is (H, W) (an int: square).",
    function="paste_masks", tolerance=EXACT,
    off_limits=("torchvision.models.detection.roi_heads.paste_masks_in_image",
                "torchvision.models.detection.roi_heads.paste_mask_in_image",
                "torchvision.models.detection.roi_heads._onnx_paste_mask_in_image",
                "torchvision.models.detection.roi_heads.expand_masks",
                "torchvision.models.detection.roi_heads.expand_boxes",
                "course_utils.ops.masks.paste_masks", "course_utils.ops.torchvision_heads.paste_probabilities"),
    yourself="paste the masks yourself (padding, box growth, truncation, resize, threshold)",
)


# ---- 07.keypoint_targets ---------------------------------------------------------------------
def _random_keypoints(g: torch.Generator, rois: torch.Tensor, joints: int, size: int) -> torch.Tensor:
    """``K x J x 3`` keypoints for ``rois``: most inside their box at least 5% of a cell from a cell border
    (so that floor() agrees in any arithmetic), some just outside, some exactly on the right or bottom edge;
    visibility 0, 1 or 2."""
    k = len(rois)
    r = rois.double()
    w, h = (r[:, 2] - r[:, 0])[:, None], (r[:, 3] - r[:, 1])[:, None]
    cell = torch.randint(0, size, (k, joints, 2), generator=g).double()
    frac = 0.05 + 0.9 * torch.rand(k, joints, 2, generator=g, dtype=torch.float64)
    x = r[:, 0, None] + (cell[..., 0] + frac[..., 0]) * w / size
    y = r[:, 1, None] + (cell[..., 1] + frac[..., 1]) * h / size
    kind = torch.randint(0, 10, (k, joints),
                         generator=g)                      # 0: left, 1: right, 2: above, 3: on x2, 4: on y2
    outside = (0.05 + 0.9 * torch.rand(k, joints, generator=g, dtype=torch.float64))
    x = torch.where(kind == 0, r[:, 0, None] - outside * w / size, x)
    x = torch.where(kind == 1, r[:, 2, None] + outside * w / size, x)
    y = torch.where(kind == 2, r[:, 1, None] - outside * h / size, y)
    xy = torch.stack([x, y], -1).float()
    xy[..., 0] = torch.where(kind == 3, rois[:, 2, None].expand(k, joints), xy[..., 0])   # exactly x2, float32
    xy[..., 1] = torch.where(kind == 4, rois[:, 3, None].expand(k, joints), xy[..., 1])
    visibility = torch.randint(0, 3, (k, joints), generator=g).float()
    return torch.cat([xy, visibility[..., None]], -1)


def _random_rois(g: torch.Generator, k: int, size: float = 64.0) -> torch.Tensor:
    xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * size * 0.7
    wh = 2 + torch.rand(k, 2, generator=g, dtype=torch.float64) * size * 0.5
    return torch.cat([xy, xy + wh], 1).float()


def _keypoint_cases(g: torch.Generator) -> list[Case]:
    roi = T([[2.0, 2.0, 10.0, 10.0]])
    lecture = T([[[3.0, 3.0, 2.0], [9.0, 5.0, 2.0], [6.0, 9.5, 1.0]]])
    edges = T([[[10.0, 5.0, 2.0], [5.0, 10.0, 2.0], [10.0, 10.0, 2.0], [2.0, 2.0, 2.0], [2.0, 9.0, 2.0]]])
    visibility = T([[[3.0, 3.0, 0.0], [5.0, 5.0, 1.0], [7.0, 7.0, 2.0], [9.0, 3.0, 0.0]]])
    outside = T([[[1.9, 5.0, 2.0], [10.1, 5.0, 2.0], [5.0, 1.5, 2.0], [5.0, 12.0, 2.0], [-3.0, -4.0, 2.0],
                  [11.0, 11.0, 0.0]]])
    person = T([[[20.0, 12.0, 2.0], [16.0, 30.0, 2.0], [26.0, 30.0, 1.0], [21.0, 50.0, 2.0]]])
    rois3 = T([[10.0, 8.0, 34.0, 56.0], [14.0, 10.0, 30.0, 52.0], [4.0, 0.0, 40.0, 60.0]])
    cases = [
        Case((lecture, roi, 4),
             note="the lecture: the box (2, 2, 10, 10) as a 4 x 4 heatmap (2-pixel cells): (3, 3) -> row 0, col 0 -> "
                  "index 0; (9, 5) -> col floor(3.5) = 3, row floor(1.5) = 1 -> 1 * 4 + 3 = 7; (6, "
                  "9.5) -> 3 * 4 + 2 = 14"),
        Case((edges, roi, 4),
             note="points on the box's edges: x == x2 (or y == y2) would floor to S, one cell past the last: "
                  "torchvision puts them in the last cell S - 1; x == x1 is cell 0"),
        Case((visibility, roi, 4),
             note="visibility (COCO): 0 not labelled -> valid 0 and heatmap 0; 1 labelled but hidden and 2 visible "
                  "-> both valid (visibility > 0)"),
        Case((outside, roi, 4),
             note="points outside the box: floor gives a cell < 0 or >= S -> valid 0, heatmap 0 (x = 1.9 is cell "
                  "floor(-0.05) = -1: outside, even though truncation would say 0)"),
        Case((person.expand(3, -1, -1).clone(), rois3, 8),
             note="one person, three proposals around it (K = 3): the same keypoints land in different cells of each "
                  "proposal's heatmap"),
        Case((_random_keypoints(g, T([[3.5, 10.0, 19.0, 58.0]]), 17, 56), T([[3.5, 10.0, 19.0, 58.0]]), 56),
             note="a tall box, the 17 COCO keypoints, S = 56 (torchvision's): cells of 0.28 x 0.86 pixel"),
        Case((torch.zeros(0, 17, 3), torch.zeros(0, 4), 56), note="no positive proposal (K = 0): two 0 x J results"),
    ]
    for _ in range(3):
        k, joints, size = rand_int(g, 1, 5), rand_int(g, 1, 17), [4, 7, 14, 56][rand_int(g, 0, 3)]
        rois = _random_rois(g, k)
        cases.append(Case((_random_keypoints(g, rois, joints, size), rois, size),
                          note=f"random: {k} proposals, {joints} keypoints each (some outside, some on the right or "
                               f"bottom edge, visibility 0 / 1 / 2), S = {size}"))
    return cases


KEYPOINT_TARGETS = Exercise(
    "07.keypoint_targets",
    title="keypoint-head targets: each keypoint's cell in its proposal's S x S heatmap, and validity",
    reference=_keypoints.keypoint_targets, cases=_keypoint_cases,
    hint="per RoI (x1, y1, x2, y2): col = floor((x - x1) * (S / (x2 - x1))), row = floor((y - y1) * (S / (y2 - y1))) "
         "(floor, not int(): -0.5 must stay -1); where x == x2 exactly, col = S - 1 (likewise y == y2: row = S - 1); "
         "valid = (0 <= col < S) & (0 <= row < S) & (visibility > 0), as int64 (.long()); heatmaps = (row * S + col) "
         "* valid (0 where not valid), int64. Return (heatmaps, valid), both K x J.",
    function="keypoint_targets", tolerance=EXACT,
    off_limits=("torchvision.models.detection.roi_heads.keypoints_to_heatmap",
                "torchvision.models.detection.roi_heads.keypointrcnn_loss",
                "course_utils.ops.keypoints.keypoint_targets", "course_utils.ops.torchvision_heads.keypoint_targets"),
    yourself="compute the keypoint targets yourself",
)


# ---- 07.mask_iou -----------------------------------------------------------------------------
def _mask_iou_cases(g: torch.Generator) -> list[Case]:
    a = _rect_mask(6, 6, (0, 4), (0, 4))
    b = _rect_mask(6, 6, (2, 6), (2, 6))
    ell = _rect_mask(8, 8, (1, 7), (1, 7))
    ell[0, 1:4, 4:7] = 0                                                        # an L in the same 6 x 6 box
    full = _rect_mask(8, 8, (1, 7), (1, 7))
    empty = torch.zeros(1, 8, 8, dtype=torch.uint8)
    blobs = _blobs(g, 4, 40, 40)
    cases = [
        Case((a.bool(), b.bool()),
             note="the lecture: two 4 x 4 squares overlapping in a 2 x 2 corner: 4 / (16 + 16 - 4) = 1/7"),
        Case((torch.cat([a, b]), torch.cat([a, b, 1 - a])),
             note="uint8 masks: a mask with itself 1, two disjoint masks 0 (a and its complement)"),
        Case((torch.cat([ell, full]).bool(), torch.cat([full, ell])),
             note="an L-shaped mask and its 6 x 6 box: IoU 27 / 36, although their bounding boxes are the same "
                  "(bool against uint8)"),
        Case((torch.cat([empty, full]), torch.cat([empty, full, empty])),
             note="empty masks: the union of two empty masks is empty: IoU 0 (as pycocotools' mask.iou), not NaN"),
        Case((blobs[:3].bool(), torch.cat([blobs[2:], blobs[:1]]).bool()),
             note="ellipses in a 40 x 40 image, some shared between the two sets"),
        Case((torch.zeros(0, 8, 8, dtype=torch.bool), full.bool()), note="no mask in the first set: a 0 x 1 result"),
        Case((full.bool(), torch.zeros(0, 8, 8, dtype=torch.bool)), note="no mask in the second set: a 1 x 0 result"),
    ]
    for _ in range(3):
        n, m, h, w = rand_int(g, 1, 6), rand_int(g, 1, 6), rand_int(g, 8, 48), rand_int(g, 8, 48)
        pool = _blobs(g, n + m, h, w)
        shift = torch.roll(pool, shifts=(rand_int(g, -2, 2), rand_int(g, -2, 2)), dims=(1, 2))
        second = torch.where(torch.rand(m, 1, 1, generator=g) < 0.5, shift[:m], pool[n:])   # near copies of the first
        dtype1, dtype2 = (torch.bool, torch.uint8)[rand_int(g, 0, 1)], (torch.bool, torch.uint8)[rand_int(g, 0, 1)]
        cases.append(Case((pool[:n].to(dtype1), second.to(dtype2)),
                          note=f"random: {n} x {m} masks of {h} x {w}, some shifted copies of each other"))
    return cases


MASK_IOU = Exercise(
    "07.mask_iou", title="pairwise IoU of two sets of binary masks (N x H x W, M x H x W -> N x M)",
    reference=_masks.mask_iou, cases=_mask_iou_cases,
    hint="flatten to N x HW and M x HW (masks.flatten(1), as float: reshape(N, -1) fails for N = 0); intersection = a "
         "@ b.T (N x M pixel counts), areas = row sums; "
         "union = area1[:, None] + area2[None, :] - intersection; IoU = intersection / union, and 0 where the union "
         "is 0 (two empty masks: pycocotools' convention); float32, N x M.",
    function="mask_iou", tolerance=FLOAT32,
    off_limits=("pycocotools.mask.iou", "pycocotools._mask.iou", "pycocotools.mask.encode", "pycocotools._mask.encode",
                "torchmetrics.functional.classification.binary_jaccard_index", *LIBRARY_IOU,
                "course_utils.ops.masks.mask_iou"),
    yourself="compute the mask IoU yourself with tensor operations",
)

EXERCISES = (MASK_TARGETS, MASK_LOSS, PASTE_MASKS, KEYPOINT_TARGETS, MASK_IOU)
