"""Lab 02 (FCN): correct implementations written another way than the course's."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from mutants import Collection
from torch import nn

PROBES = Collection()


# ---- 02.convolutionize -----------------------------------------------------------------------
@PROBES.add("02.convolutionize", "the weight unflattened with .view(...).clone(), assigned as new Parameters")
def convolutionize_parameters(linear, in_channels, kernel_size):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    conv = nn.Conv2d(in_channels, linear.out_features, (kh, kw), bias=linear.bias is not None,
                     dtype=linear.weight.dtype)
    conv.weight = nn.Parameter(linear.weight.detach().view(linear.out_features, in_channels, kh, kw).clone())
    if linear.bias is not None:
        conv.bias = nn.Parameter(linear.bias.detach().clone())
    return conv


@PROBES.add("02.convolutionize", "load_state_dict of the unflattened weights")
def convolutionize_state_dict(linear, in_channels, kernel_size):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    conv = nn.Conv2d(in_channels, linear.out_features, (kh, kw), bias=linear.bias is not None).to(linear.weight.dtype)
    state = {"weight": linear.weight.detach().unflatten(1, (in_channels, kh, kw))}
    if linear.bias is not None:
        state["bias"] = linear.bias.detach()
    conv.load_state_dict(state)
    return conv


# ---- 02.receptive_field ----------------------------------------------------------------------
@PROBES.add("02.receptive_field", "from the output back to the input (r = r * s + span - s), exact fractions")
def receptive_field_backwards(layers):
    size, start, jump = 1, Fraction(0), 1
    for k, s, p, d in reversed(layers):
        span = d * (k - 1) + 1
        size = size * s + span - s
        start = start * s + Fraction(span - 1, 2) - p
    for _, s, _, _ in layers:
        jump *= s
    return size, jump, float(start)


@PROBES.add("02.receptive_field", "the centre of output 0 as the mean of its field's first and last input")
def receptive_field_first_last(layers):
    first, last, jump = 0, 0, 1              # input positions seen by output 0 (padding counts negative)
    for k, s, p, d in layers:
        first, last = first - p * jump, last + (d * (k - 1) - p) * jump
        jump *= s
    return last - first + 1, jump, (first + last) / 2


# ---- 02.pixel_ce -----------------------------------------------------------------------------
@PROBES.add("02.pixel_ce", "logsumexp(logits) - the target's logit, averaged over the valid pixels")
def ce_logsumexp(logits, target, ignore_index=255):
    valid = target != ignore_index
    chosen = logits.gather(1, torch.where(valid, target, 0)[:, None])[:, 0]
    losses = logits.logsumexp(1) - chosen
    return losses[valid].sum() / valid.sum()


@PROBES.add("02.pixel_ce", "pixels moved to rows, the valid ones selected, a one-hot mask summed and divided")
def ce_one_hot(logits, target, ignore_index=255):
    c = logits.shape[1]
    t = target.reshape(-1)
    valid = t != ignore_index
    rows = logits.movedim(1, -1).reshape(-1, c)[valid]
    one_hot = torch.nn.functional.one_hot(t[valid], c).to(logits.dtype)
    return -(rows.log_softmax(1) * one_hot).sum() / valid.sum()


# ---- 02.confusion ----------------------------------------------------------------------------
@PROBES.add("02.confusion", "numpy's np.add.at on the (true, predicted) pairs")
def confusion_add_at(pred, target, num_classes, ignore_index=None):
    p, t = pred.numpy().ravel(), target.numpy().ravel()
    if ignore_index is not None:
        p, t = p[t != ignore_index], t[t != ignore_index]
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return torch.from_numpy(cm)


@PROBES.add("02.confusion", "index_put_ with accumulate=True")
def confusion_index_put(pred, target, num_classes, ignore_index=None):
    p, t = pred.reshape(-1), target.reshape(-1)
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    return cm.index_put_((t.long(), p.long()), torch.ones_like(t, dtype=torch.int64), accumulate=True)


# ---- 02.iou ----------------------------------------------------------------------------------
@PROBES.add("02.iou", "numpy, with NaN from 0 / 0 (errstate) and nanmean")
def iou_numpy(cm):
    a = cm.numpy().astype(np.float64)
    tp = np.diag(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (a.sum(0) + a.sum(1) - tp)
    return float(tp.sum() / a.sum()), torch.from_numpy(iou), float(np.nanmean(iou))


@PROBES.add("02.iou", "a loop over the classes with Python numbers")
def iou_loop(cm):
    c = cm.shape[0]
    ious = []
    for k in range(c):
        tp, row, col = int(cm[k, k]), int(cm[k].sum()), int(cm[:, k].sum())
        ious.append(tp / (row + col - tp) if row + col - tp else float("nan"))
    present = [v for v in ious if not math.isnan(v)]
    accuracy = int(cm.diagonal().sum()) / int(cm.sum())
    return accuracy, torch.tensor(ious, dtype=torch.float64), sum(present) / len(present)
