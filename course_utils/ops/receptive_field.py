"""Receptive fields of a stack of convolution / pooling layers: computed, and measured with gradients.

A layer is ``(kernel, stride, padding, dilation)`` (1-D; square layers are the same along each axis).
With ``r`` the receptive field size, ``j`` the jump (distance in input pixels between neighbouring
outputs) and ``s`` the input coordinate of the centre of output 0's receptive field, starting from
``r = 1, j = 1, s = 0`` each layer does (Araujo, Norris & Sim, "Computing receptive fields of
convolutional neural networks", Distill 2019)::

    k_eff = dilation * (kernel - 1) + 1          # the span of a dilated kernel
    r <- r + (k_eff - 1) * j
    s <- s + ((k_eff - 1) / 2 - padding) * j
    j <- j * stride

Output ``i`` then sees the input pixels ``s + i*j - (r-1)/2 ... s + i*j + (r-1)/2``. The lectures'
rule "L stacked 3x3 convolutions see 1 + 2L pixels" is the case ``kernel=3, stride=1``.

:func:`empirical_receptive_field` measures the same thing: it backpropagates from one output unit
and reports which input pixels get a nonzero gradient (the test suite checks the two agree).
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn

Layer = tuple[int, int, int, int]  # kernel, stride, padding, dilation


class ReceptiveField(NamedTuple):
    size: int      # r: input pixels seen by one output (along one axis)
    jump: int      # j: input pixels between neighbouring outputs (the total stride)
    start: float   # s: input coordinate of the centre of output 0's receptive field


def _check_layers(layers: object) -> list[Layer]:
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers must be a list of (kernel, stride, padding, dilation) tuples, got "
                        f"{type(layers).__name__}")
    out = []
    for n, layer in enumerate(layers):
        if not isinstance(layer, (list, tuple)) or len(layer) != 4 or \
                not all(isinstance(v, int) and not isinstance(v, bool) for v in layer):
            raise ValueError(f"layer {n} must be 4 ints (kernel, stride, padding, dilation), got {layer!r}")
        k, s, p, d = layer
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ValueError(f"layer {n} = {tuple(layer)}: need kernel, stride, dilation >= 1 and padding >= 0")
        out.append((k, s, p, d))
    return out


def receptive_field(layers: list[Layer]) -> ReceptiveField:
    """Receptive field ``(size, jump, start)`` of a stack of layers ``(kernel, stride, padding, dilation)``."""
    r, j, s = 1, 1, 0.0
    for k, stride, p, d in _check_layers(layers):
        span = d * (k - 1) + 1
        r += (span - 1) * j
        s += ((span - 1) / 2 - p) * j
        j *= stride
    return ReceptiveField(r, j, s)


def _pair(v: int | tuple[int, ...]) -> int:
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ValueError(f"only square layers are supported, got {v}")
        return v[0]
    return v


def layers_of(module: nn.Module) -> list[Layer]:
    """The ``(kernel, stride, padding, dilation)`` of each Conv2d / MaxPool2d / AvgPool2d in ``module``,
    in the order they are registered (which is the order they run for sequential models)."""
    layers: list[Layer] = []
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            raise ValueError("transposed convolutions upsample; their receptive field is not covered here")
        if isinstance(m, nn.Conv2d):
            if isinstance(m.padding, str):
                raise ValueError(f"padding={m.padding!r} is not supported; give the padding as numbers")
            layers.append((_pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(m.dilation)))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            dilation = _pair(getattr(m, "dilation", 1))
            stride = m.stride if m.stride is not None else m.kernel_size
            layers.append((_pair(m.kernel_size), _pair(stride), _pair(m.padding), dilation))
    return layers


def _linearised(module: nn.Module) -> nn.Module:
    """A copy whose gradients cannot cancel: positive conv weights, no bias, average instead of max
    pooling (a max pool routes the gradient to one pixel; its receptive field is that of the
    average pool), identity instead of activations and norms."""
    net = copy.deepcopy(module).double().eval()

    def replace(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                with torch.no_grad():
                    child.weight.fill_(1.0 / child.weight[0].numel())
                    if child.bias is not None:
                        child.bias.zero_()
            elif isinstance(child, nn.MaxPool2d):
                if _pair(child.dilation) != 1:
                    raise ValueError("dilated max pooling is not supported by the empirical measurement")
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode, count_include_pad=True))
            elif isinstance(child, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
                                    nn.BatchNorm2d, nn.Dropout, nn.Dropout2d)):
                setattr(parent, name, nn.Identity())
            else:
                replace(child)

    replace(net)
    return net


def empirical_receptive_field(module: nn.Module, in_channels: int, input_size: int,
                              position: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Measure with gradients which input pixels output ``position`` (default: the centre) depends on.

    Runs a linearised copy of ``module`` (see :func:`_linearised`) on a ``1 x in_channels x N x N``
    input (``N = input_size``), backpropagates from output unit ``position`` (all channels), and
    returns ``(row_first, row_last, col_first, col_last)``: the extent of the nonzero gradient.
    Its size ``last - first + 1`` is the receptive field, unless the field is cut by the image border
    (choose ``input_size`` large enough and a central position).
    """
    x = torch.ones(1, in_channels, input_size, input_size, dtype=torch.float64, requires_grad=True)
    out = _linearised(module)(x)
    if out.ndim != 4:
        raise ValueError(f"module must map images to B x C x H x W feature maps, got shape {tuple(out.shape)}")
    h, w = out.shape[-2:]
    i, j = position if position is not None else (h // 2, w // 2)
    if not (0 <= i < h and 0 <= j < w):
        raise ValueError(f"position {(i, j)} is outside the {h} x {w} output")
    (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
    nonzero = grad[0].abs().sum(0) > 0
    rows, cols = nonzero.any(1).nonzero()[:, 0], nonzero.any(0).nonzero()[:, 0]
    if rows.numel() == 0:
        raise ValueError("no input pixel influences this output (is the module connected?)")
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
