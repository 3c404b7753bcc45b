"""Lab 02 (FCN): wrong implementations a student plausibly writes, and shortcuts through libraries."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mutants import Collection

MUTANTS = Collection()
CHEATS = Collection()


# ---- 02.convolutionize -----------------------------------------------------------------------------
def _pair(kernel_size):
    return (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size


def _conv(linear, in_channels, kernel_size, *, weight=None, keep_dtype=True, share=False,
          bias="copy", padding=0, trainable=True):
    kh, kw = _pair(kernel_size)
    out = linear.out_features
    conv = nn.Conv2d(in_channels, out, (kh, kw), padding=padding, bias=linear.bias is not None or bias == "always")
    if keep_dtype:
        conv = conv.to(linear.weight.device, linear.weight.dtype)
    w = linear.weight.reshape(out, in_channels, kh,
                              kw) if weight is None else weight(linear.weight, out, in_channels, kh, kw)
    if share:
        conv.weight = nn.Parameter(w)  # a view of the Linear's weight: the two layers share their values
        if linear.bias is not None:
            conv.bias = linear.bias
    else:
        with torch.no_grad():
            conv.weight.copy_(w)
            if linear.bias is not None:
                conv.bias.copy_(linear.bias)
    if not trainable:
        conv.requires_grad_(False)
    return conv


@MUTANTS.add("02.convolutionize", "weights reshaped (out, kh, kw, C) then permuted: channels-last order")
def conv_channels_last(linear, in_channels, kernel_size):
    return _conv(linear, in_channels, kernel_size,
                 weight=lambda w, o, c, kh, kw: w.reshape(o, kh, kw, c).permute(0, 3, 1, 2))


@MUTANTS.add("02.convolutionize", "kernel rows and columns swapped (transposed kernels)")
def conv_transposed_kernels(linear, in_channels, kernel_size):
    return _conv(linear, in_channels, kernel_size,
                 weight=lambda w, o, c, kh, kw: w.reshape(o, c, kw, kh).transpose(-1, -2))


@MUTANTS.add("02.convolutionize", "the conv's weight is a view of the Linear's "
                                  "(nn.Parameter(linear.weight.view(...))): training one changes the other")
def conv_shared_weight(linear, in_channels, kernel_size):
    return _conv(linear, in_channels, kernel_size, share=True)


@MUTANTS.add("02.convolutionize", "ignores the Linear's dtype: a float64 Linear gives a float32 conv")
def conv_default_dtype(linear, in_channels, kernel_size):
    return _conv(linear, in_channels, kernel_size, keep_dtype=False)


@MUTANTS.add("02.convolutionize", "a Linear without bias gets a conv with a (random) bias")
def conv_always_bias(linear, in_channels, kernel_size):
    return _conv(linear, in_channels, kernel_size, bias="always")


@MUTANTS.add("02.convolutionize", "'same' padding (k // 2): a larger image gives a map of the wrong size")
def conv_same_padding(linear, in_channels, kernel_size):
    kh, kw = _pair(kernel_size)
    return _conv(linear, in_channels, kernel_size, padding=(kh // 2, kw // 2))


@MUTANTS.add("02.convolutionize", "the conv is frozen (requires_grad False): the FCN cannot be fine-tuned")
def conv_frozen(linear, in_channels, kernel_size):
    return _conv(linear, in_channels, kernel_size, trainable=False)


# ---- 02.receptive_field --------------------------------------------------------------------------------
def _rf(layers, *, dilation=True, order="rsj", padding=True, start0=0.0):
    r, j, s = 1, 1, start0
    for k, stride, p, d in layers:
        span = d * (k - 1) + 1 if dilation else k
        if order == "jrs":
            j *= stride
        r += (span - 1) * j
        s += ((span - 1) / 2 - (p if padding else 0)) * j
        if order == "rsj":
            j *= stride
    return r, j, s


@MUTANTS.add("02.receptive_field", "forgets the dilation (span = k)")
def rf_no_dilation(layers):
    return _rf(layers, dilation=False)


@MUTANTS.add("02.receptive_field", "updates the jump before the size and start")
def rf_jump_first(layers):
    return _rf(layers, order="jrs")


@MUTANTS.add("02.receptive_field", "ignores the padding in the start")
def rf_no_padding(layers):
    return _rf(layers, padding=False)


@MUTANTS.add("02.receptive_field", "start as an int: (span - 1) // 2")
def rf_integer_start(layers):
    r, j, s = 1, 1, 0
    for k, stride, p, d in layers:
        span = d * (k - 1) + 1
        r += (span - 1) * j
        s += ((span - 1) // 2 - p) * j
        j *= stride
    return r, j, s


# ---- 02.pixel_ce ----------------------------------------------------------------------------------------
def _ce(logits, target, ignore_index=255, *, denominator="valid", log="log_softmax", dim=1, reduce="mean"):
    logp = logits.log_softmax(dim) if log == "log_softmax" else torch.log(torch.softmax(logits, dim))
    valid = target != ignore_index
    picked = logp.gather(1, target.where(valid, 0)[:, None])[:, 0]
    loss = -(picked * valid)
    if reduce == "sum":
        return loss.sum()
    if reduce == "per_image":
        return (loss.sum((1, 2)) / valid.sum((1, 2))).mean()
    return loss.sum() / (valid.sum() if denominator == "valid" else valid.numel())


@MUTANTS.add("02.pixel_ce", "divides by all pixels, ignored ones included")
def ce_mean_over_all(logits, target, ignore_index=255):
    return _ce(logits, target, ignore_index, denominator="all")


@MUTANTS.add("02.pixel_ce", "log(softmax(...)): -inf (and an infinite loss) for very confident wrong scores")
def ce_log_of_softmax(logits, target, ignore_index=255):
    return _ce(logits, target, ignore_index, log="log_of_softmax")


@MUTANTS.add("02.pixel_ce", "the loss is computed as a Python number and wrapped in a new tensor: no gradient")
def ce_detached(logits, target, ignore_index=255):
    return torch.tensor(_ce(logits, target, ignore_index).item(), dtype=logits.dtype)


@MUTANTS.add("02.pixel_ce", "mean over each image, then over the batch (images with more ignored pixels weigh more)")
def ce_per_image_mean(logits, target, ignore_index=255):
    return _ce(logits, target, ignore_index, reduce="per_image")


@MUTANTS.add("02.pixel_ce", "sum instead of mean")
def ce_sum(logits, target, ignore_index=255):
    return _ce(logits, target, ignore_index, reduce="sum")


@MUTANTS.add("02.pixel_ce", "treats every label outside [0, C) as ignored instead of using ignore_index")
def ce_out_of_range_ignored(logits, target, ignore_index=255):
    c = logits.shape[1]
    return _ce(logits, target.where((target >= 0) & (target < c), -12345), -12345)


@MUTANTS.add("02.pixel_ce", "computed in float64 and returned as float64")
def ce_float64(logits, target, ignore_index=255):
    return _ce(logits.double(), target, ignore_index)


# ---- 02.confusion ---------------------------------------------------------------------------------------
def _cm(pred, target, num_classes, ignore_index=None, *, transpose=False, drop_on="target", default_255=False):
    pred, target = pred.reshape(-1), target.reshape(-1)
    if default_255 and ignore_index is None:
        ignore_index = 255
    if ignore_index is not None:
        keep = (target if drop_on == "target" else pred) != ignore_index
        pred, target = pred[keep], target[keep]
    index = pred * num_classes + target if transpose else target * num_classes + pred
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@MUTANTS.add("02.confusion", "cm[pred, true]: the transposed matrix")
def cm_transposed(pred, target, num_classes, ignore_index=None):
    return _cm(pred, target, num_classes, ignore_index, transpose=True)


@MUTANTS.add("02.confusion", "drops the pixels whose prediction (not target) is ignore_index")
def cm_drops_on_pred(pred, target, num_classes, ignore_index=None):
    return _cm(pred, target, num_classes, ignore_index, drop_on="pred")


@MUTANTS.add("02.confusion", "ignore_index=None behaves as 255 (class 255 of a 256-class problem is lost)")
def cm_default_255(pred, target, num_classes, ignore_index=None):
    return _cm(pred, target, num_classes, ignore_index, default_255=True)


@MUTANTS.add("02.confusion", "counts as float (torch.zeros(C, C) then +=)")
def cm_float(pred, target, num_classes, ignore_index=None):
    return _cm(pred, target, num_classes, ignore_index).float()


@MUTANTS.add("02.confusion", "ignored pixels are dropped only when ignore_index is 255")
def cm_only_255(pred, target, num_classes, ignore_index=None):
    return _cm(pred, target, num_classes, 255 if ignore_index == 255 else None)


# ---- 02.iou ---------------------------------------------------------------------------------------------
def _metrics(cm, *, union="iou", absent="nan", mean="present", acc_type=float):
    cm = cm.double()
    tp = cm.diagonal()
    if union == "iou":
        u = cm.sum(0) + cm.sum(1) - tp
    elif union == "row":
        u = cm.sum(1)
    else:
        u = cm.sum(0) + cm.sum(1)
    iou = torch.where(u > 0, tp / u.clamp(min=1), torch.full_like(tp, float("nan") if absent == "nan" else 0.0))
    if mean == "all":
        miou = iou.nan_to_num(0).mean()
    elif mean in ("target", "prediction"):   # the classes present on one side of the matrix
        miou = iou[cm.sum(1 if mean == "target" else 0) > 0].mean()
    else:
        miou = iou[~iou.isnan()].mean()
    acc = tp.sum() / cm.sum()
    return (acc.item() if acc_type is float else acc), iou, miou.item()


@MUTANTS.add("02.iou", "the mean counts absent classes (NaN) as 0")
def iou_nan_as_zero(cm):
    return _metrics(cm, mean="all")


@MUTANTS.add("02.iou", "the mean over the classes present in the target (a class only predicted is left out)")
def iou_mean_over_target_classes(cm):
    return _metrics(cm, mean="target")


@MUTANTS.add("02.iou", "the mean over the classes present in the prediction (a class never predicted is left out)")
def iou_mean_over_predicted_classes(cm):
    return _metrics(cm, mean="prediction")


@MUTANTS.add("02.iou", "union = row + column without subtracting TP")
def iou_union_no_subtract(cm):
    return _metrics(cm, union="sum")


@MUTANTS.add("02.iou", "TP / row sum: the recall, not the IoU")
def iou_recall(cm):
    return _metrics(cm, union="row")


@MUTANTS.add("02.iou", "an absent class gets IoU 0 instead of NaN (the mean skips zeros... of nothing)")
def iou_absent_zero(cm):
    acc, iou, _ = _metrics(cm)
    return acc, iou.nan_to_num(0.0), _metrics(cm)[2]


@MUTANTS.add("02.iou", "pixel accuracy as a 0-d tensor, not a Python float")
def iou_tensor_accuracy(cm):
    return _metrics(cm, acc_type=torch.Tensor)


# ---- shortcuts through libraries ------------------------------------------------------------------------
@CHEATS.add("02.pixel_ce", "F.cross_entropy inside pixel_cross_entropy")
def ce_library(logits, target, ignore_index=255):
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


@CHEATS.add("02.pixel_ce", "F.nll_loss on log_softmax")
def ce_nll(logits, target, ignore_index=255):
    return F.nll_loss(logits.log_softmax(1), target, ignore_index=ignore_index)


@CHEATS.add("02.confusion", "torchmetrics' multiclass_confusion_matrix")
def cm_torchmetrics(pred, target, num_classes, ignore_index=None):
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(pred, target, num_classes, ignore_index=ignore_index).long()


@CHEATS.add("02.confusion", "scikit-learn's confusion_matrix")
def cm_sklearn(pred, target, num_classes, ignore_index=None):
    from sklearn.metrics import confusion_matrix

    keep = target.reshape(-1) != ignore_index if ignore_index is not None else slice(None)
    return torch.from_numpy(confusion_matrix(target.reshape(-1)[keep].numpy(), pred.reshape(-1)[keep].numpy(),
                                             labels=list(range(num_classes)))).long()


@CHEATS.add("02.iou", "the course's per_class_iou and pixel_accuracy")
def iou_course(cm):
    from course_utils.evaluation import segmentation

    iou = segmentation.per_class_iou(cm)
    return segmentation.pixel_accuracy(cm), iou, float(iou[~iou.isnan()].mean())


# ---- shortcuts through compiled kernels and the course's own code ----------------------------------------
@CHEATS.add("02.pixel_ce", "the compiled op behind F.nll_loss, torch.ops.aten.nll_loss_nd")
def ce_aten_nll(logits, target, ignore_index=255):
    return torch.ops.aten.nll_loss_nd(logits.log_softmax(1), target, None, 1, ignore_index)


@CHEATS.add("02.pixel_ce", "the compiled op behind F.cross_entropy, torch.ops.aten.cross_entropy_loss.default")
def ce_aten_cross_entropy(logits, target, ignore_index=255):
    return torch.ops.aten.cross_entropy_loss.default(logits, target, None, 1, ignore_index, 0.0)


@CHEATS.add("02.receptive_field", "the course's empirical_receptive_field on a stack of convolutions")
def rf_course_empirical(layers):
    from course_utils.ops import receptive_field

    net = nn.Sequential(*[nn.Conv2d(1, 1, k, s, p, d) for k, s, p, d in layers])
    i = net(torch.zeros(1, 1, 256, 256)).shape[-1] // 2
    first, last, _, _ = receptive_field.empirical_receptive_field(net, 1, 256, (i, i))
    jump = receptive_field.empirical_receptive_field(net, 1, 256, (i + 1, i + 1))[0] - first
    return last - first + 1, jump, (first + last) / 2 - i * jump


@CHEATS.add("02.iou", "the course's mean_over_present")
def iou_course_mean(cm):
    from course_utils.evaluation import segmentation

    cm = cm.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    return float(tp.sum() / cm.sum()), iou, segmentation.mean_over_present(iou)
