"""Lab 09 exercises: context for dense prediction -- dilated convolution, PSPNet's pyramid pooling, deformable
convolution v1 and mean-field inference in a fully connected CRF.

The references: :func:`course_utils.ops.context.dilated_conv2d` and :func:`course_utils.ops.context.pyramid_pool`,
:func:`course_utils.ops.deform_conv.deform_conv2d` and :func:`course_utils.ops.crf.mean_field` (the update of
Krähenbühl & Koltun's Algorithm 1); ``tests/test_lab09.py`` holds the first equal to ``F.conv2d`` and the third to
``torchvision.ops.deform_conv2d`` (value and gradients). Fixed cases first (the lecture's examples, the edge
cases), then seeded random ones. Off-limits inside the student's function: every convolution op for
``09.dilated_conv`` (``F.conv2d`` entirely, with or without dilation: ``F.unfold`` and index arithmetic are
the way), torchvision's deformable convolution (and its compiled op) and ``F.grid_sample`` for
``09.deform_conv``, and the course's own references everywhere.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import skip_init

from course_utils.exercises.cases import rand_bool, rand_int
from course_utils.grading.exercise import ACCUMULATED, Case, Exercise
from course_utils.ops import context as _context
from course_utils.ops import crf as _crf
from course_utils.ops import deform_conv as _deform

T = torch.tensor


def _ramp(h: int, w: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.arange(h * w, dtype=dtype).reshape(1, 1, h, w)


def _randn(g: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


# ---- 09.dilated_conv -------------------------------------------------------------------------
CONV_OPS = ("torch.nn.functional.conv2d", "torch.nn.functional.conv1d", "torch.nn.functional.conv3d",
            "torch.nn.functional.conv_transpose1d", "torch.nn.functional.conv_transpose2d",
            "torch.nn.functional.conv_transpose3d", "torch.convolution", "torch._convolution",
            "torch.nn.Conv2d.forward", "torch.nn.Conv2d._conv_forward", "torch.nn.Conv1d.forward",
            "torch.nn.Conv3d.forward", "torch.nn.ConvTranspose2d.forward")


def _conv_case(g: torch.Generator, b: int, c: int, o: int, h: int, w: int, k: tuple[int, int], dilation: object,
               padding: object, bias: bool, note: str, dtype: torch.dtype = torch.float32) -> Case:
    x = _randn(g, b, c, h, w, dtype=dtype)
    weight = _randn(g, o, c, *k, dtype=dtype) / (c * k[0] * k[1]) ** 0.5
    return Case((x, weight, _randn(g, o, dtype=dtype) if bias else None), {"dilation": dilation, "padding": padding},
                note=note)


def _dilated_conv_cases(g: torch.Generator) -> list[Case]:
    ones = torch.ones(1, 1, 3, 3)
    cases = [
        Case((_ramp(7, 7), ones, None), {"dilation": 2, "padding": 0},
             note="the lecture: a 3 x 3 kernel of ones with dilation 2 on a 7 x 7 ramp spans 5 x 5 "
                  "pixels: a 3 x 3 output"),
        Case((_ramp(5, 6), ones.clone(), T([0.5])), {"dilation": 1, "padding": 1},
             note="dilation 1 is the ordinary convolution (padding 1 keeps the size), with a bias"),
        _conv_case(g, 1, 2, 3, 6, 7, (3, 3), 2, "same", False,
                   "padding='same' with dilation 2: d (k - 1) / 2 = 2 zeros on each side, the output is 6 x 7"),
        _conv_case(g, 1, 1, 2, 5, 6, (2, 2), 3, "same", False,
                   "padding='same' with an even span (2 x 2 kernel, dilation 3: 3 zeros per axis): 1 before, 2 after"),
        _conv_case(g, 1, 2, 2, 8, 9, (3, 2), (1, 3), (2, 1), True,
                   "a 3 x 2 kernel, dilation (1, 3) (rows, columns), padding (2, 1): the two axes differ"),
        _conv_case(g, 2, 3, 4, 9, 9, (3, 3), 4, 4, True, "batch 2, 3 -> 4 channels, DeepLab's rate 4 with padding 4"),
        _conv_case(g, 1, 1, 1, 5, 5, (3, 3), 6, "same", False,
                   "dilation 6 on a 5 x 5 image ('same'): only the centre tap ever sees the image (DeepLab v3's "
                   "degenerate case: it acts as a 1 x 1 convolution)"),
        _conv_case(g, 1, 2, 2, 4, 5, (1, 1), 5, 0, True, "a 1 x 1 kernel: its dilation changes nothing"),
        _conv_case(g, 1, 2, 3, 6, 6, (3, 3), 2, 1, True, "float64: keep the dtype", dtype=torch.float64),
    ]
    for _ in range(2):
        b, c, o = rand_int(g, 1, 2), rand_int(g, 1, 4), rand_int(g, 1, 4)
        k = (rand_int(g, 1, 4), rand_int(g, 1, 4))
        d = (rand_int(g, 1, 3), rand_int(g, 1, 3)) if rand_bool(g) else rand_int(g, 1, 3)
        padding: object = ["same", rand_int(g, 0, 3), (rand_int(g, 0, 3), rand_int(g, 0, 3))][rand_int(g, 0, 2)]
        dr, dc = (d, d) if isinstance(d, int) else d
        h, w = rand_int(g, dr * (k[0] - 1) + 1, 12), rand_int(g, dc * (k[1] - 1) + 1, 12)
        cases.append(_conv_case(g, b, c, o, h, w, k, d, padding, rand_bool(g),
                                f"random: {b} x {c} x {h} x {w}, {o} filters {k[0]} x {k[1]}, dilation {d}, "
                                f"padding {padding!r}"))
    return cases


DILATED_CONV = Exercise(
    "09.dilated_conv", title="convolution with a dilated kernel and 'same' padding", reference=_context.dilated_conv2d,
    cases=_dilated_conv_cases,
    hint="pad first: padding p -> p zeros on each side; 'same' -> d (k - 1) zeros per axis, d (k - 1) // 2 before and "
         "the rest after (F.pad takes (left, right, top, bottom)). Then F.unfold(x, (kh, kw), dilation=(dr, dc)) gives "
         "B x C kh kw x L columns; weight.reshape(O, -1) @ columns + bias[:, None], reshaped to B x O x H' x W' with "
         "H' = H_padded - dr (kh - 1). Cross-correlation: no kernel flip.",
    function="dilated_conv2d", tolerance=ACCUMULATED,
    gradient=(0, 1, 2),   # a layer: gradients must reach the input, the weights and the bias
    off_limits=CONV_OPS,
    yourself="write the dilated convolution yourself (F.unfold or index arithmetic, then a matrix product): F.conv2d "
             "and the other convolution ops are off-limits inside it, with or without dilation",
)


# ---- 09.pyramid_pool ---------------------------------------------------------------------------
def _level(g: torch.Generator, c_in: int, c_out: int, dtype: torch.dtype = torch.float32,
           norm: bool = True) -> nn.Module:
    """A pyramid level's layer: 1x1 conv (random weights), batch norm with random statistics (eval mode), ReLU."""
    conv = skip_init(nn.Conv2d, c_in, c_out, 1, bias=not norm)          # every weight is set below: no default init
    with torch.no_grad():
        conv.weight.copy_(_randn(g, c_out, c_in, 1, 1) / c_in ** 0.5)
        if conv.bias is not None:
            conv.bias.copy_(_randn(g, c_out) * 0.3)
    layers: list[nn.Module] = [conv]
    if norm:
        bn = skip_init(nn.BatchNorm2d, c_out)
        with torch.no_grad():
            bn.running_mean = _randn(g, c_out) * 0.3
            bn.running_var = 0.5 + torch.rand(c_out, generator=g, dtype=torch.float64).float()
            bn.num_batches_tracked = torch.tensor(0)
            bn.weight.copy_(1 + _randn(g, c_out) * 0.2)
            bn.bias.copy_(_randn(g, c_out) * 0.2)
        layers.append(bn)
    layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(dtype).eval()


def _identity_level(channels: int) -> nn.Module:
    conv = skip_init(nn.Conv2d, channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels)[:, :, None, None])
    return conv.eval()


def _ppm_case(g: torch.Generator, b: int, c: int, h: int, w: int, bins: tuple[int, ...], note: str,
              out: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float32) -> Case:
    convs = nn.ModuleList(_level(g, c, out[i] if out else max(1, c // len(bins)), dtype) for i in range(len(bins)))
    return Case((_randn(g, b, c, h, w, dtype=dtype), convs, bins), note=note)


def _pyramid_pool_cases(g: torch.Generator) -> list[Case]:
    bins = (1, 2, 3, 6)
    cases = [
        Case((_ramp(6, 6), nn.ModuleList(_identity_level(1) for _ in bins), bins),
             note="the lecture: a 6 x 6 ramp, identity layers, bins 1, 2, 3, 6 (level 6 gives the ramp back)"),
        _ppm_case(g, 1, 2, 4, 4, (1, 2), "2 channels on 4 x 4, bins 1 and 2, layers 1x1 conv + BN + ReLU (eval mode)"),
        _ppm_case(g, 1, 4, 7, 5, bins, "a 7 x 5 map: 7 rows in 3 or 6 bins overlap (adaptive average pooling)"),
        _ppm_case(g, 1, 2, 4, 4, (6,), "more bins than pixels (6 bins on 4 x 4): the pooled map is larger than x"),
        _ppm_case(g, 2, 8, 12, 12, bins, "PSPNet's module: batch 2, 8 channels, 12 x 12, 2 channels per level"),
        _ppm_case(g, 1, 3, 6, 9, (3, 1), "bins (3, 1): the levels follow the order of bins"),
        _ppm_case(g, 1, 3, 5, 8, (1, 2, 4), "levels of 1, 2 and 4 channels: concatenate whatever each layer gives",
                  out=(1, 2, 4)),
        _ppm_case(g, 1, 4, 6, 7, (1, 2, 3), "float64: keep the dtype", dtype=torch.float64),
    ]
    for _ in range(2):
        b, c, h, w = rand_int(g, 1, 2), rand_int(g, 1, 6), rand_int(g, 2, 13), rand_int(g, 2, 13)
        levels = tuple(sorted({rand_int(g, 1, 6) for _ in range(rand_int(g, 1, 4))}))
        cases.append(_ppm_case(g, b, c, h, w, levels, f"random: {b} x {c} x {h} x {w}, bins {levels}"))
    return cases


PYRAMID_POOL = Exercise(
    "09.pyramid_pool", title="PSPNet's pyramid pooling module, assembled from given layers",
    reference=_context.pyramid_pool,
    cases=_pyramid_pool_cases,
    hint="for each level b and its layer conv: F.adaptive_avg_pool2d(x, b) (b x b bins), then conv(...), then "
         "F.interpolate(..., size=x.shape[-2:], mode='bilinear', align_corners=False); return torch.cat([x, level_1, "
         "level_2, ...], dim=1) in the order of bins. Pool, then conv, then upsample (the ReLU does not commute).",
    function="pyramid_pool", tolerance=ACCUMULATED,
    gradient=(0,),   # PSPNet trains through it
    off_limits=("course_utils.models.segmentation.context.PyramidPooling.forward",),
    yourself="assemble the pyramid pooling yourself",
)


# ---- 09.deform_conv --------------------------------------------------------------------------
def _offsets(g: torch.Generator, shape: tuple[int, ...], spread: float,
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Offsets ``round(N(0, spread)) + U(0.1, 0.9)``: every sample lies strictly between pixels (at whole-number
    positions bilinear interpolation has a kink, and its gradient there is a convention, not an answer)."""
    whole = (torch.randn(shape, generator=g, dtype=torch.float64) * spread).round()
    return (whole + 0.1 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64)).to(dtype)


def _deform_case(g: torch.Generator, b: int, c: int, o: int, h: int, w: int, k: tuple[int, int], stride: int,
                 padding: int, dilation: int, spread: float, bias: bool, note: str,
                 dtype: torch.dtype = torch.float32) -> Case:
    ho = _deform.output_size(h, k[0], stride, padding, dilation)
    wo = _deform.output_size(w, k[1], stride, padding, dilation)
    x = _randn(g, b, c, h, w, dtype=dtype)
    offset = _offsets(g, (b, 2 * k[0] * k[1], ho, wo), spread, dtype)
    weight = _randn(g, o, c, *k, dtype=dtype) / (c * k[0] * k[1]) ** 0.5
    return Case((x, offset, weight, _randn(g, o, dtype=dtype) if bias else None),
                {"stride": stride, "padding": padding, "dilation": dilation}, note=note)


def _deform_cases(g: torch.Generator) -> list[Case]:
    box = torch.full((1, 1, 3, 3), 1 / 9)
    tap = torch.zeros(1, 12, 4, 3)                                      # 2 x 3 kernel on 5 x 5: 4 x 3 outputs
    tap[0, 2 * 4:2 * 4 + 2] = T([0.5, -1.25])[:, None, None]            # tap (1, 1) of a 2 x 3 kernel only
    tap[0, :8] += 0.25
    tap[0, 10:] += 0.75
    outside = torch.full((1, 2, 4, 4), 0.3)
    outside[0, 0, 0, :] = -1.3                                          # row 0's samples are 1.3 rows above the image
    outside[0, 1, :, 3] = 0.6                                           # column 3's sit 0.6 right of the last column
    cases = [
        Case((_ramp(5, 5), torch.full((1, 18, 3, 3), 0.5), box), note="the lecture: offsets of 0.5 everywhere: each "
             "tap reads the middle of 4 pixels (on a ramp, the ramp half a pixel down and right)"),
        Case((_ramp(4, 5), torch.cat([torch.full((1, 1, 4, 5), 0.25), torch.full((1, 1, 4, 5), 1.75)], 1),
              torch.ones(1, 1, 1, 1)), note="a 1 x 1 kernel: bilinear resampling of the image at (+0.25 rows, "
              "+1.75 columns); the last columns read past the edge, where pixels are 0"),
        Case((_ramp(4, 4) + 1, outside, torch.ones(1, 1, 1, 1)),
             note="samples outside: 1.3 rows above the image read 0; 0.6 right of the last column weigh that "
                  "column by 0.4 (the pixel beyond is 0)"),
        Case((_ramp(5, 5), tap, _randn(g, 2, 1, 2, 3)),
             note="a 2 x 3 kernel: channels 2k, 2k + 1 are (dy, dx) of tap k = i * kw + j (here tap (1, 1) moves by "
                  "(0.5, -1.25))"),
        _deform_case(g, 1, 2, 3, 7, 8, (3, 3), 2, 1, 2, 1.0, True, "stride 2, padding 1, dilation 2, with a bias"),
        _deform_case(g, 2, 3, 2, 6, 6, (3, 3), 1, 1, 1, 4.0, False,
                     "batch 2, large offsets (many samples far outside the image)"),
        _deform_case(g, 1, 2, 2, 5, 6, (2, 2), 1, 0, 1, 1.0, True, "float64: keep the dtype", dtype=torch.float64),
    ]
    for _ in range(2):
        b, c, o = rand_int(g, 1, 2), rand_int(g, 1, 3), rand_int(g, 1, 3)
        k = (rand_int(g, 1, 3), rand_int(g, 1, 3))
        s, p, d = rand_int(g, 1, 2), rand_int(g, 0, 2), rand_int(g, 1, 2)
        h, w = rand_int(g, d * (k[0] - 1) + 1, 9), rand_int(g, d * (k[1] - 1) + 1, 9)
        cases.append(_deform_case(g, b, c, o, h, w, k, s, p, d, 2.0, rand_bool(g),
                                  f"random: {b} x {c} x {h} x {w}, {o} filters {k[0]} x {k[1]}, stride {s}, "
                                  f"padding {p}, dilation {d}"))
    return cases


DEFORM_CONV = Exercise(
    "09.deform_conv", title="deformable convolution v1: bilinear samples at the kernel's taps plus learned offsets",
    reference=_deform.deform_conv2d, cases=_deform_cases,
    hint="tap k = i * kw + j of output (y, x) reads row y * stride - padding + i * dilation + offset[:, 2k] and column "
         "x * stride - padding + j * dilation + offset[:, 2k + 1]. Bilinear: r0 = floor(row), a = row - r0 (likewise "
         "c0, b); value = (1-a)(1-b) x[r0, c0] + (1-a) b x[r0, c0+1] + a (1-b) x[r0+1, c0] + a b x[r0+1, c0+1], each "
         "pixel outside the image counting as 0 (gather at clamped indices, multiply by an inside mask). Then "
         "out[b, o, y, x] = sum over c, k of weight[o, c, i, j] * sample + bias[o] (an einsum).",
    function="deform_conv2d", tolerance=ACCUMULATED,
    gradient=(0, 1, 2),   # the offsets are learned: gradients must reach the input, the offsets and the weights
    off_limits=("torchvision.ops.deform_conv2d", "torchvision.ops.deform_conv.deform_conv2d",
                "torchvision.ops.DeformConv2d.forward", "torch.ops.torchvision.deform_conv2d",
                "torch.nn.functional.grid_sample", "torch.grid_sampler", "torch.grid_sampler_2d"),
    yourself="write the deformable convolution yourself, bilinear sampling included (F.grid_sample and torchvision's "
             "deform_conv2d are off-limits inside it)",
)


# ---- 09.mean_field ---------------------------------------------------------------------------
def _crf_case(g: torch.Generator, c: int, h: int, w: int, k: int, iterations: int, params: dict[str, float],
              note: str, dtype: torch.dtype = torch.float32) -> Case:
    probs = torch.softmax(_randn(g, c, h, w, dtype=torch.float64) * 1.5, 0)
    colours = torch.rand(k, h, w, generator=g, dtype=torch.float64)
    return Case(((-probs.log()).to(dtype), colours.to(dtype)), {"iterations": iterations, **params}, note=note)


def _random_params(g: torch.Generator) -> dict[str, float]:
    def u(lo: float, hi: float) -> float:
        return round(lo + (hi - lo) * float(torch.rand(1, generator=g, dtype=torch.float64)), 3)

    return {"w_bilateral": u(0.0, 3.0), "theta_alpha": u(0.5, 4.0), "theta_beta": u(0.1, 0.6),
            "w_spatial": u(0.0, 3.0), "theta_gamma": u(0.5, 2.0)}


def _mean_field_cases(g: torch.Generator) -> list[Case]:
    # the lecture: two colour regions (left dark, right light), the unary confident everywhere but wrong at (1, 1)
    image = torch.zeros(1, 4, 6)
    image[:, :, 3:] = 1.0
    p = torch.full((2, 4, 6), 0.1)
    p[0, :, :3], p[1, :, 3:] = 0.9, 0.9
    p[:, 1, 1] = T([0.4, 0.6])
    lecture = -p.log()
    base = {"w_bilateral": 2.0, "theta_alpha": 2.0, "theta_beta": 0.5, "w_spatial": 1.0, "theta_gamma": 1.0}
    cases = [
        Case((lecture, image), {"iterations": 1, **base},
             note="the lecture: one pixel's unary is wrong (0.4 / 0.6) inside a region that says 0.9 / 0.1: one "
                  "update flips it"),
        Case((lecture.clone(), image.clone()), {"iterations": 0, **base},
             note="iterations=0: the initialisation Q = softmax(-unary)"),
        Case((lecture.clone(), image.clone()), {"iterations": 3, **base, "w_bilateral": 0.0},
             note="the smoothness kernel alone (w_bilateral = 0), 3 iterations: positions only"),
        Case((lecture.clone(), image.clone()), {"iterations": 2, **base, "w_spatial": 0.0, "theta_alpha": 3.0},
             note="the appearance kernel alone (w_spatial = 0): the colour edge at column 3 stops the smoothing"),
        _crf_case(g, 3, 1, 1, 3, 4, base, "one pixel: no other pixel sends a message (j != i), Q = softmax(-unary)"),
        _crf_case(g, 3, 5, 4, 3, 5, {**base, "theta_gamma": 2.5, "theta_beta": 0.2},
                  "3 labels, RGB, 5 iterations, theta_gamma 2.5: the widths enter as exp(-d^2 / (2 theta^2))"),
        _crf_case(g, 2, 6, 3, 1, 2, {**base, "theta_alpha": 1.5}, "a grey image (K = 1), a tall 6 x 3 image"),
        _crf_case(g, 4, 4, 5, 3, 3, base, "float64: keep the dtype", dtype=torch.float64),
    ]
    for _ in range(2):
        c, h, w = rand_int(g, 2, 4), rand_int(g, 1, 7), rand_int(g, 1, 7)
        k, it = [1, 3][rand_int(g, 0, 1)], rand_int(g, 1, 5)
        params = _random_params(g)
        cases.append(_crf_case(g, c, h, w, k, it, params, f"random: {c} labels, {h} x {w}, {k} colour channels, "
                                                         f"{it} iterations, {params}"))
    return cases


MEAN_FIELD = Exercise(
    "09.mean_field", title="mean-field inference in a fully connected CRF (Potts, Gaussian + bilateral kernels)",
    reference=_crf.mean_field, cases=_mean_field_cases,
    hint="N = H W pixels, features p (row, column) and I (colours); K = w_bilateral exp(-|p_i - p_j|^2 / (2 "
         "theta_alpha^2) - |I_i - I_j|^2 / (2 theta_beta^2)) + w_spatial exp(-|p_i - p_j|^2 / (2 theta_gamma^2)), an N "
         "x N matrix with a zero diagonal (j != i). Q = softmax(-unary) over the labels; then `iterations` times, from "
         "the previous Q for every pixel at once: m = K @ Q (N x C), Potts: pairwise(l) = m.sum(labels) - m(l); Q = "
         "softmax(-unary - pairwise). Return Q as C x H x W.",
    function="mean_field", tolerance=ACCUMULATED,
    off_limits=("course_utils.ops.crf.dense_crf",),
    yourself="write the mean-field update yourself",
)

EXERCISES = (DILATED_CONV, PYRAMID_POOL, DEFORM_CONV, MEAN_FIELD)
