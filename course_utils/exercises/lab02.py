"""Lab 02 exercises: fully convolutional networks."""

from __future__ import annotations

import torch
from torch import nn

from course_utils.evaluation import segmentation
from course_utils.exercises.cases import LIBRARY_IOU, rand_int
from course_utils.grading.compare import compare, compare_fields, describe
from course_utils.grading.exercise import (
    ACCUMULATED,
    FLOAT64,
    SUMS,
    TIGHT,
    Case,
    Exercise,
)
from course_utils.ops import dense, losses
from course_utils.ops import receptive_field as rf


# ---- 02.convolutionize -----------------------------------------------------------------------
def _linear(g: torch.Generator, in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=g) / in_features**0.5)
        if bias:
            layer.bias.copy_(torch.randn(out_features, generator=g))
    return layer


def _convolutionize_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((_linear(g, 1 * 3 * 3, 2), 1, 3), note="1 channel, 3 x 3 patches, 2 classes"),
        Case((_linear(g, 3 * 5 * 5, 4), 3, 5), note="RGB 5 x 5 patches, 4 classes"),
        Case((_linear(g, 2 * 3 * 3, 3, bias=False), 2, 3), note="a Linear without bias"),
        Case((_linear(g, 4 * 2 * 4, 5), 4, (2, 4)), note="a non-square 2 x 4 kernel"),
        Case((_linear(g, 2 * 1 * 3, 3).double(), 2, (1, 3)),
             note="a float64 Linear, 1 x 3 kernel: the conv is float64 too"),
    ]
    for _ in range(2):
        c, k, n = rand_int(g, 1, 8), rand_int(g, 1, 7), rand_int(g, 1, 10)
        cases.append(Case((_linear(g, c * k * k, n), c, k), note=f"random: {c} channels, {k} x {k}, {n} classes"))
    return cases


def _convolutionize_verify(case: Case, got: object, expected: nn.Conv2d) -> str | None:
    linear, c, k = case.args
    kh, kw = (k, k) if isinstance(k, int) else k
    if not isinstance(got, nn.Conv2d):
        return f"expected an nn.Conv2d, got {describe(got)}"
    if (got.in_channels, got.out_channels) != (c, linear.out_features):
        return (f"the conv must map {c} channels to {linear.out_features} (one per output of the Linear), "
                f"got {got.in_channels} -> {got.out_channels}")
    if tuple(got.kernel_size) != (kh, kw) or tuple(got.stride) != (1, 1) or tuple(got.padding) != (0, 0) \
            or tuple(got.dilation) != (1, 1) or got.groups != 1:
        return (f"expected kernel {(kh, kw)}, stride 1, no padding, dilation 1, groups 1; got kernel "
                f"{tuple(got.kernel_size)}, stride {tuple(got.stride)}, padding {tuple(got.padding)}, "
                f"dilation {tuple(got.dilation)}, groups {got.groups}")
    if got.weight.dtype != linear.weight.dtype:
        return (f"the conv's weight is {got.weight.dtype}, the Linear's {linear.weight.dtype}: keep the dtype "
                "(and device)")
    if (got.bias is None) != (linear.bias is None):
        return "the conv must have a bias exactly when the Linear has one (bias=linear.bias is not None)"
    for name, param in (("weight", got.weight), ("bias", got.bias)):
        if param is None:
            continue
        if not param.requires_grad:
            return f"the conv's {name} does not require grad: the FCN is fine-tuned after convolutionizing"
        source = getattr(linear, name)
        if param.untyped_storage().data_ptr() == source.untyped_storage().data_ptr():
            return (f"the conv's {name} shares its memory with the Linear's (a view of it): training one would "
                    f"change the other; copy the values (conv.{name}.copy_(...) under torch.no_grad())")
    g = torch.Generator().manual_seed(kh * 100 + kw)
    patches = torch.randn(3, c, kh, kw, generator=g, dtype=linear.weight.dtype)
    with torch.no_grad():
        want = linear(patches.flatten(1))[:, :, None, None]
        problem = compare(want, got(patches), *ACCUMULATED, path="conv(patches)")
        if problem:
            return problem + " (on 3 patches of the training size; compare with linear(patches.flatten(1)))"
        image = torch.randn(1, c, kh + 6, kw + 9, generator=g, dtype=linear.weight.dtype)
        problem = compare(expected(image), got(image), *ACCUMULATED, path="conv(larger image)")
    return problem + " (dense scores on a larger image)" if problem else None


CONVOLUTIONIZE = Exercise(
    "02.convolutionize", title="a Linear head on flattened patches -> the equivalent Conv2d",
    reference=dense.convolutionize,
    cases=_convolutionize_cases, verify=_convolutionize_verify,
    hint="nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=linear.bias is not None); copy "
         "linear.weight.reshape(out_features, in_channels, kh, kw) into conv.weight (under torch.no_grad()) "
         "and the bias too. flatten() orders the values channel, row, column - the same as a conv weight.",
    function="convolutionize",
)


# ---- 02.receptive_field ----------------------------------------------------------------------
def _rf_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case(([],), note="no layers: one pixel sees itself"),
        Case(([(3, 1, 1, 1)],), note="one 3 x 3 convolution"),
        Case(([(3, 1, 1, 1)] * 4,), note="four 3 x 3 convolutions: 1 + 2L = 9"),
        Case(([(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (2, 2, 0, 1)],), note="conv, pool, conv, pool"),
        Case(([(3, 1, 2, 2), (3, 1, 4, 4)],), note="dilated convolutions"),
        Case(([(7, 2, 3, 1), (3, 2, 1, 1)],), note="ResNet's stem: 7 x 7 stride 2, 3 x 3 max pool stride 2"),
        Case(([(4, 2, 0, 1), (1, 1, 0, 1)],), note="no padding shifts the start"),
    ]
    for n in (3, 6):
        layers = [(rand_int(g, 1, 5), rand_int(g, 1, 2), rand_int(g, 0, 2), rand_int(g, 1, 3)) for _ in range(n)]
        cases.append(Case((layers,), note=f"random stack of {n} layers"))
    return cases


def _rf_verify(case: Case, got: object, expected: rf.ReceptiveField) -> str | None:
    return compare_fields(expected, got, expected._fields, *FLOAT64)


RECEPTIVE_FIELD = Exercise(
    "02.receptive_field", title="receptive field (size, jump, start) of a stack of layers",
    reference=rf.receptive_field, cases=_rf_cases,
    verify=_rf_verify,
    hint="start with size r = 1, jump j = 1, start s = 0.0; for each (k, stride, p, d): span = d*(k-1) + 1; "
         "r += (span-1)*j; s += ((span-1)/2 - p)*j; j *= stride. Update s and r before j.",
    function="receptive_field",
)


# ---- 02.pixel_ce -----------------------------------------------------------------------------
def _ce_case(g: torch.Generator, b: int, c: int, h: int, w: int, ignore_index: int, p_ignore: float,
             note: str) -> Case:
    logits = 3 * torch.randn(b, c, h, w, generator=g)
    target = torch.randint(c, (b, h, w), generator=g)
    target[torch.rand(b, h, w, generator=g) < p_ignore] = ignore_index
    return Case((logits, target), {"ignore_index": ignore_index}, note=note)


def _ce_reference(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """F.cross_entropy(logits, target, ignore_index=...) written out (F.cross_entropy is off-limits inside
    the student's function, so also here): the same value, and the same gradient (0 when every pixel is
    ignored, where the value is nan)."""
    losses._check(logits, target)
    valid = target != ignore_index
    picked = logits.log_softmax(1).gather(1, target.where(valid, 0).long()[:, None])[:, 0]
    return -picked[valid].mean()


def _ce_cases(g: torch.Generator) -> list[Case]:
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 2.0]]]])  # 1 x 2 x 1 x 2
    cases = [
        Case((logits, torch.tensor([[[0, 1]]])), note="two pixels, both right"),
        Case((logits, torch.tensor([[[1, 255]]])), note="one pixel ignored (255): the mean is over one pixel"),
        _ce_case(g, 2, 3, 4, 5, 255, 0.0, "no ignored pixels"),
        _ce_case(g, 2, 4, 6, 6, 255, 0.3, "30% of pixels ignored"),
        _ce_case(g, 1, 3, 3, 3, -1, 0.5, "ignore_index = -1"),
        _ce_case(g, 2, 3, 3, 5, 0, 0.0, "ignore_index = 0: class 0 (a real class) is ignored, batch 2, 3 x 5"),
        Case((100 * torch.randn(2, 4, 3, 2, generator=g), torch.randint(4, (2, 3, 2), generator=g)),
             note="scores of size ~100 (log(softmax) would give -inf): use log_softmax"),
        Case((torch.randn(1, 3, 2, 2, generator=g), torch.full((1, 2, 2), 255)),
             note="every pixel ignored: the loss is nan (0 / 0, as F.cross_entropy gives), its gradient 0"),
    ]
    b, c, h, w = rand_int(g, 1, 3), rand_int(g, 2, 8), rand_int(g, 1, 16), rand_int(g, 1, 16)
    cases.append(_ce_case(g, b, c, h, w, 255, 0.2, f"random {b} x {c} x {h} x {w}"))
    return cases


PIXEL_CE = Exercise(
    "02.pixel_ce", title="per-pixel cross-entropy with an ignore index", reference=_ce_reference, cases=_ce_cases,
    tolerance=SUMS,
    hint="logp = logits.log_softmax(1); valid = target != ignore_index; pick -logp at the target class "
         "with gather (use target.where(valid, 0) so ignored pixels index a real class), then average "
         "over the valid pixels only: picked[valid].mean().",
    function="pixel_cross_entropy",
    gradient=(0,),  # the lab trains with it: the loss must carry the reference's gradient w.r.t. the logits
    off_limits=("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
                "torch._C._nn.cross_entropy_loss", "torch._C._nn.nll_loss_nd", "torch._C._nn.nll_loss",
                "torch._C._nn.nll_loss2d", "course_utils.ops.losses"),
    yourself="write the cross-entropy yourself (log_softmax, gather, mean over the valid pixels)",
)


# ---- 02.confusion and 02.iou ------------------------------------------------------------------
def _labels(g: torch.Generator, n: int, c: int, right: float = 0.7, ignore: float = 0.0,
            ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.randint(c, (n,), generator=g)
    pred = torch.where(torch.rand(n, generator=g) < right, target, torch.randint(c, (n,), generator=g))
    target[torch.rand(n, generator=g) < ignore] = ignore_index
    return pred, target


def _confusion_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3), note="rows are the true class"),
        Case((torch.tensor([[0, 1], [1, 0]]), torch.tensor([[1, 1], [255, 0]]), 2), {"ignore_index": 255},
             note="a 2-D map with one ignored pixel"),
        Case((torch.tensor([0, 0]), torch.tensor([0, 0]), 4), note="classes that never occur give zero rows"),
    ]
    pred, target = _labels(g, 300, 5)
    cases.append(Case((pred.reshape(3, 10, 10), target.reshape(3, 10, 10), 5), note="random 3 x 10 x 10, 5 classes"))
    pred, target = _labels(g, 500, 7, ignore=0.2)
    cases.append(Case((pred, target, 7), {"ignore_index": 255}, note="random, 20% ignored"))
    cases.insert(3, Case((torch.tensor([[0, 2, 1], [2, 2, 0]]), torch.tensor([[-1, 2, 1], [0, -1, -1]]), 3),
                         {"ignore_index": -1}, note="ignore_index = -1, a 2 x 3 map"))
    cases.insert(4, Case((torch.tensor([255, 3, 255, 0]), torch.tensor([255, 255, 3, 0]), 256),
                         note="256 classes, ignore_index None: class 255 is a class like the others"))
    return cases


CONFUSION = Exercise(
    "02.confusion", title="confusion matrix cm[true, predicted]", reference=segmentation.confusion_matrix,
    cases=_confusion_cases,
    hint="flatten both; drop pixels whose target is ignore_index; then "
         "torch.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes).",
    function="confusion_matrix",
    off_limits=("torchmetrics.functional.classification.multiclass_confusion_matrix",
                "torchmetrics.functional.confusion_matrix", "sklearn.metrics.confusion_matrix"),
    yourself="count the (true, predicted) pairs yourself",
)


def _iou_reference(cm: torch.Tensor) -> tuple[float, torch.Tensor, float]:
    """``(pixel accuracy, per-class IoU (NaN = class absent), mean IoU over present classes)``."""
    cm = cm.double()  # written out: the course's per_class_iou and pixel_accuracy are off-limits
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~iou.isnan()
    accuracy = float(tp.sum() / cm.sum()) if cm.sum() > 0 else float("nan")
    return accuracy, iou, float(iou[present].mean()) if present.any() else float("nan")


def _iou_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([[5, 0], [0, 3]]),), note="perfect"),
        Case((torch.tensor([[3, 1, 0], [2, 4, 0], [0, 0, 0]]),), note="class 2 absent: NaN IoU, left out of the mean"),
        Case((torch.tensor([[0, 4], [0, 0]]),), note="class 0 never predicted right: IoU 0"),
        Case((torch.tensor([[3, 1, 2], [1, 4, 0], [0, 0, 0]]),),
             note="class 2 is predicted but never in the target: IoU 0, counted in the mean (the mean is over the "
                  "classes in the target or the prediction)"),
        Case((torch.tensor([[3, 1, 0], [1, 4, 0], [2, 0, 0]]),),
             note="class 2 is in the target but never predicted: IoU 0, counted in the mean"),
    ]
    for c in (4, 8):
        pred, target = _labels(g, 400, c)
        cases.append(Case((segmentation.confusion_matrix(pred, target, c),), note=f"random, {c} classes"))
    c = rand_int(g, 3, 6)
    pred, target = _labels(g, 300, c)
    one, other = torch.randperm(c, generator=g)[:2].tolist()
    target[target == one], pred[pred == other] = other, one   # class `one` only predicted, `other` only in the target
    cases.append(Case((segmentation.confusion_matrix(pred, target, c),),
                      note=f"random, {c} classes: class {one} only predicted, class {other} only in the target"))
    return cases


def _iou_verify(case: Case, got: object, expected: tuple) -> str | None:
    return compare_fields(expected, got, ("pixel_accuracy", "iou", "miou"), *TIGHT)


IOU = Exercise(
    "02.iou", title="pixel accuracy, per-class IoU and mIoU from a confusion matrix", reference=_iou_reference,
    cases=_iou_cases,
    verify=_iou_verify,
    hint="tp = cm.diagonal(); pixel accuracy = tp.sum() / cm.sum(); union = cm.sum(0) + cm.sum(1) - tp; "
         "iou = tp / union where union > 0, else nan; miou = mean of the non-nan IoUs (iou[~iou.isnan()]).",
    function="segmentation_metrics",
    off_limits=("course_utils.evaluation.segmentation", *LIBRARY_IOU),  # the course's metrics: a module apart
    yourself="compute the accuracy and the IoUs yourself",
)

EXERCISES = (CONVOLUTIONIZE, RECEPTIVE_FIELD, PIXEL_CE, CONFUSION, IOU)
