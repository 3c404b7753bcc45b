"""Lab 09 (context): wrong implementations a student plausibly writes, and shortcuts through libraries."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision

from mutants import Collection

MUTANTS = Collection()
CHEATS = Collection()


# ---- 09.dilated_conv -----------------------------------------------------------------------------
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _same(k, d, extra_first=False):
    total = d * (k - 1)
    small, big = total // 2, total - total // 2
    return (big, small) if extra_first else (small, big)


def _dconv(x, weight, bias, dilation, padding, *, spacing=lambda d: d, same=_same, flip=False, swap_dilation=False,
           swap_padding=False, use_bias=True, dtype=None):
    o, _, kh, kw = weight.shape
    dr, dc = _pair(dilation)
    if swap_dilation:
        dr, dc = dc, dr
    if padding == "same":
        top, bottom = same(kh, dr)
        left, right = same(kw, dc)
    else:
        ph, pw = _pair(padding)
        if swap_padding:
            ph, pw = pw, ph
        top = bottom = ph
        left = right = pw
    xp = F.pad(x, (left, right, top, bottom))
    sr, sc = spacing(dr), spacing(dc)
    ho, wo = xp.shape[2] - sr * (kh - 1), xp.shape[3] - sc * (kw - 1)
    w = weight.flip(-1, -2) if flip else weight
    out = x.new_zeros(x.shape[0], o, max(ho, 0), max(wo, 0))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * sr:i * sr + ho, j * sc:j * sc + wo]
            out = out + torch.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    if bias is not None and use_bias:
        out = out + bias[None, :, None, None]
    return out if dtype is None else out.to(dtype)


@MUTANTS.add("09.dilated_conv", "forgets the dilation: the taps are adjacent (F.unfold without dilation=)")
def dconv_no_dilation(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, spacing=lambda d: 1)


@MUTANTS.add("09.dilated_conv", "d holes between the taps (spacing d + 1) instead of taps d pixels apart")
def dconv_holes(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, spacing=lambda d: d + 1)


@MUTANTS.add("09.dilated_conv", "'same' padding k // 2, ignoring the dilation: the output shrinks")
def dconv_same_ignores_dilation(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, same=lambda k, d: (k // 2, k // 2))


@MUTANTS.add("09.dilated_conv", "'same' padding with an even span puts the extra zero before, not after")
def dconv_same_extra_first(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, same=lambda k, d: _same(k, d, extra_first=True))


@MUTANTS.add("09.dilated_conv", "a true convolution: the kernel flipped (F.conv2d is a cross-correlation)")
def dconv_flipped(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, flip=True)


@MUTANTS.add("09.dilated_conv", "dilation (rows, columns) read as (columns, rows)")
def dconv_swapped_dilation(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, swap_dilation=True)


@MUTANTS.add("09.dilated_conv", "padding (rows, columns) read as (columns, rows)")
def dconv_swapped_padding(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, swap_padding=True)


@MUTANTS.add("09.dilated_conv", "forgets the bias")
def dconv_no_bias(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x, weight, bias, dilation, padding, use_bias=False)


@MUTANTS.add("09.dilated_conv", "computes in float32 whatever the input's dtype")
def dconv_float32(x, weight, bias=None, dilation=1, padding=0):
    out = _dconv(x.float(), weight.float(), None if bias is None else bias.float(), dilation, padding)
    return out


@MUTANTS.add("09.dilated_conv", "the columns from F.unfold detached: right values, no gradient to the input")
def dconv_detached_input(x, weight, bias=None, dilation=1, padding=0):
    return _dconv(x.detach(), weight, bias, dilation, padding)


@CHEATS.add("09.dilated_conv", "F.conv2d with dilation=")
def dconv_cheat_conv2d(x, weight, bias=None, dilation=1, padding=0):
    return F.conv2d(x, weight, bias, padding=padding, dilation=dilation)


@CHEATS.add("09.dilated_conv", "torch.convolution, the op under F.conv2d")
def dconv_cheat_convolution(x, weight, bias=None, dilation=1, padding=0):
    p = (0, 0) if padding == "same" else _pair(padding)
    return torch.convolution(x, weight, bias, (1, 1), p, _pair(dilation), False, (0, 0), 1)


@CHEATS.add("09.dilated_conv", "an nn.Conv2d with the given weights")
def dconv_cheat_module(x, weight, bias=None, dilation=1, padding=0):
    conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], padding=padding, dilation=dilation,
                           bias=bias is not None)
    conv.weight.data = weight
    if bias is not None:
        conv.bias.data = bias
    return conv(x)


# ---- 09.pyramid_pool -------------------------------------------------------------------------------
def _ppm(x, convs, bins, *, pool=None, up=None, with_x="first", order=None, conv_after=False):
    size = x.shape[-2:]
    pool = pool or (lambda t, b: F.adaptive_avg_pool2d(t, b))
    up = up or (lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False))
    pairs = list(zip(convs, bins))
    if order == "sorted":
        pairs = sorted(pairs, key=lambda p: p[1])
    levels = []
    for conv, b in pairs:
        levels.append(conv(up(pool(x, b))) if conv_after else up(conv(pool(x, b))))
    parts = {"first": [x, *levels], "last": [*levels, x], "none": levels}[with_x]
    return torch.cat(parts, 1)


@MUTANTS.add("09.pyramid_pool",
             "F.avg_pool2d with kernel H // b: not adaptive pooling (differs when b does not divide H)")
def ppm_fixed_kernel(x, convs, bins=(1, 2, 3, 6)):
    def pool(t, b):
        kh, kw = max(t.shape[2] // b, 1), max(t.shape[3] // b, 1)
        return F.avg_pool2d(t, (kh, kw), (kh, kw))
    return _ppm(x, convs, bins, pool=pool)


@MUTANTS.add("09.pyramid_pool", "max pooling instead of average pooling")
def ppm_max(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, pool=lambda t, b: F.adaptive_max_pool2d(t, b))


@MUTANTS.add("09.pyramid_pool", "nearest-neighbour upsampling")
def ppm_nearest(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, up=lambda t: F.interpolate(t, size=x.shape[-2:], mode="nearest"))


@MUTANTS.add("09.pyramid_pool", "bilinear upsampling with align_corners=True")
def ppm_align_corners(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, up=lambda t: F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=True))


@MUTANTS.add("09.pyramid_pool", "upsampled to (W, H): rows and columns swapped")
def ppm_swapped_size(x, convs, bins=(1, 2, 3, 6)):
    def up(t):
        y = F.interpolate(t, size=(x.shape[3], x.shape[2]), mode="bilinear", align_corners=False)
        return y.transpose(-1, -2)
    return _ppm(x, convs, bins, up=up)


@MUTANTS.add("09.pyramid_pool", "forgets to concatenate the features x themselves")
def ppm_without_x(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, with_x="none")


@MUTANTS.add("09.pyramid_pool", "puts x after the levels")
def ppm_x_last(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, with_x="last")


@MUTANTS.add("09.pyramid_pool", "the layer applied after upsampling (the ReLU does not commute with it)")
def ppm_conv_after(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, conv_after=True)


@MUTANTS.add("09.pyramid_pool", "the levels sorted by bin size instead of in the order given")
def ppm_sorted(x, convs, bins=(1, 2, 3, 6)):
    return _ppm(x, convs, bins, order="sorted")


@CHEATS.add("09.pyramid_pool", "the course's PyramidPooling module with the given layers")
def ppm_cheat_module(x, convs, bins=(1, 2, 3, 6)):
    from course_utils.models.segmentation.context import PyramidPooling

    module = PyramidPooling(x.shape[1] * 0 + len(bins), bins)
    module.convs = convs
    return module(x)


# ---- 09.deform_conv -------------------------------------------------------------------------------
def _pairs(*values):
    return [_pair(v) for v in values]


def _bilinear(x, rows, cols, *, outside="zero", nearest=False, swap_weights=False, whole_pixel_only=False):
    b, c, h, w = x.shape
    if nearest:
        rows, cols = rows.round(), cols.round()
    if outside == "border":
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    r0, c0 = rows.floor(), cols.floor()
    a, t = rows - r0, cols - c0
    if swap_weights:
        a, t = 1 - a, 1 - t
    flat = x.reshape(b, c, h * w)
    out = x.new_zeros(b, c, *rows.shape[1:])
    for dr, wr in ((0, 1 - a), (1, a)):
        for dc, wc in ((0, 1 - t), (1, t)):
            rr, cc = (r0 + dr).long(), (c0 + dc).long()
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            idx = (rr.clamp(0, h - 1) * w + cc.clamp(0, w - 1)).reshape(b, 1, -1).expand(b, c, -1)
            out = out + flat.gather(2, idx).reshape(out.shape) * (wr * wc * inside)[:, None]
    if whole_pixel_only:
        keep = (rows >= 0) & (rows <= h - 1) & (cols >= 0) & (cols <= w - 1)
        out = out * keep[:, None]
    return out


def _deform(x, offset, weight, bias, stride, padding, dilation, *, layout="interleaved", swap_dyx=False,
            base="normal", detach_offset=False, **sampling):
    (sy, sx), (py, px), (dy, dx) = _pairs(stride, padding, dilation)
    o, c, kh, kw = weight.shape
    b, _, ho, wo = offset.shape
    if detach_offset:
        offset = offset.detach()
    if layout == "interleaved":
        off = offset.reshape(b, kh * kw, 2, ho, wo)
        oy, ox = off[:, :, 0], off[:, :, 1]
    else:                                         # all dy first, then all dx
        oy, ox = offset[:, :kh * kw], offset[:, kh * kw:]
    if swap_dyx:
        oy, ox = ox, oy
    i, j = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij")
    y, xx = torch.meshgrid(torch.arange(ho), torch.arange(wo), indexing="ij")
    if base == "no_padding":
        py = px = 0
    if base == "no_stride_dilation":
        sy = sx = dy = dx = 1
    rows = (y * sy - py)[None] + (i.reshape(-1) * dy)[:, None, None]
    cols = (xx * sx - px)[None] + (j.reshape(-1) * dx)[:, None, None]
    samples = _bilinear(x, rows[None].to(x.dtype) + oy, cols[None].to(x.dtype) + ox, **sampling)
    out = torch.einsum("bckyx,ock->boyx", samples, weight.reshape(o, c, kh * kw))
    return out if bias is None else out + bias[None, :, None, None]


@MUTANTS.add("09.deform_conv", "channel 2k read as dx and 2k + 1 as dy (torchvision: dy first)")
def deform_swapped_dyx(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, swap_dyx=True)


@MUTANTS.add("09.deform_conv", "offsets laid out as all dy, then all dx (torchvision interleaves them per tap)")
def deform_planar_layout(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, layout="planar")


@MUTANTS.add("09.deform_conv", "nearest pixel instead of bilinear interpolation")
def deform_nearest(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, nearest=True)


@MUTANTS.add("09.deform_conv", "positions clamped to the border (border padding) instead of zeros outside")
def deform_border(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, outside="border")


@MUTANTS.add("09.deform_conv", "a sample needing any pixel outside the image is 0 altogether (no partial weights)")
def deform_all_or_nothing(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, whole_pixel_only=True)


@MUTANTS.add("09.deform_conv", "bilinear weights swapped: the nearer pixel gets the smaller weight")
def deform_swapped_weights(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, swap_weights=True)


@MUTANTS.add("09.deform_conv", "the kernel grid ignores the padding (starts at 0, not -padding)")
def deform_no_padding_shift(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, base="no_padding")


@MUTANTS.add("09.deform_conv", "the kernel grid ignores stride and dilation")
def deform_no_stride_dilation(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, base="no_stride_dilation")


@MUTANTS.add("09.deform_conv", "offsets detached: right values, but the offsets (which are learned) get no gradient")
def deform_detached_offsets(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _deform(x, offset, weight, bias, stride, padding, dilation, detach_offset=True)


@CHEATS.add("09.deform_conv", "torchvision.ops.deform_conv2d")
def deform_cheat_torchvision(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return torchvision.ops.deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation)


@CHEATS.add("09.deform_conv", "F.grid_sample for the bilinear sampling")
def deform_cheat_grid_sample(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    (sy, sx), (py, px), (dy, dx) = _pairs(stride, padding, dilation)
    o, c, kh, kw = weight.shape
    b, _, ho, wo = offset.shape
    h, w = x.shape[-2:]
    off = offset.reshape(b, kh * kw, 2, ho, wo)
    i, j = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij")
    y, xx = torch.meshgrid(torch.arange(ho), torch.arange(wo), indexing="ij")
    rows = ((y * sy - py)[None] + (i.reshape(-1) * dy)[:, None, None])[None] + off[:, :, 0]
    cols = ((xx * sx - px)[None] + (j.reshape(-1) * dx)[:, None, None])[None] + off[:, :, 1]
    grid = torch.stack([cols / max(w - 1, 1) * 2 - 1, rows / max(h - 1, 1) * 2 - 1], -1).reshape(b, -1, wo, 2)
    samples = F.grid_sample(x, grid, align_corners=True).reshape(b, c, kh * kw, ho, wo)
    out = torch.einsum("bckyx,ock->boyx", samples, weight.reshape(o, c, kh * kw))
    return out if bias is None else out + bias[None, :, None, None]


# torchvision's compiled kernel, torch.ops.torchvision.deform_conv2d: declared off-limits in lab09.py, but the guard
# on this branch recognises only Python functions and torch's C functions (an OpOverloadPacket is neither); register
# this cheat (CHEATS.add) once the guard refuses compiled ops (the off-limits work of branch h18).
def deform_cheat_compiled(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    (sy, sx), (py, px), (dy, dx) = _pairs(stride, padding, dilation)
    mask = torch.zeros((x.shape[0], 1), dtype=x.dtype)
    b = torch.zeros(weight.shape[0], dtype=x.dtype) if bias is None else bias
    return torch.ops.torchvision.deform_conv2d(x, weight, offset, mask, b, sy, sx, py, px, dy, dx, 1, 1, False)


# ---- 09.mean_field ---------------------------------------------------------------------------------
def _mf(unary, image, iterations, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma, *, self_loop=False,
        sign=1.0, compat="potts", width=lambda d2, t: d2 / (2 * t * t), init_sign=1.0, sequential=False, extra=0,
        normalise=True, pos_scale=None, colour_only=False, mean_messages=False):
    c, h, w = unary.shape
    n = h * w
    rows, cols = torch.meshgrid(torch.arange(h, dtype=unary.dtype), torch.arange(w, dtype=unary.dtype), indexing="ij")
    pos = torch.stack([rows, cols], -1).reshape(n, 2)
    if pos_scale is not None:
        pos = pos / pos_scale(h, w)
    col = image.reshape(image.shape[0], n).T.to(unary.dtype)
    dp = (pos[:, None] - pos[None]).square().sum(-1)
    dc = (col[:, None] - col[None]).square().sum(-1)
    bilateral = (torch.exp(-width(dc, theta_beta)) if colour_only
                 else torch.exp(-width(dp, theta_alpha) - width(dc, theta_beta)))
    k = w_bilateral * bilateral + w_spatial * torch.exp(-width(dp, theta_gamma))
    if not self_loop:
        k = k * (1 - torch.eye(n, dtype=k.dtype))
    if mean_messages and n > 1:
        k = k / (n - 1)
    u = unary.reshape(c, n).T
    q = torch.softmax(-init_sign * u, 1)
    for _ in range(iterations + extra):
        if sequential:
            q = q.clone()
            for i in range(n):
                m = k[i] @ q
                pair = m.sum() - m if compat == "potts" else m
                q[i] = torch.softmax(-u[i] - sign * pair, 0)
            continue
        m = k @ q
        pair = m.sum(1, keepdim=True) - m if compat == "potts" else m
        logits = -u - sign * pair
        q = torch.softmax(logits, 1) if normalise else torch.exp(logits)
    return q.T.reshape(c, h, w)


def _add_mf(name, bug, **options):
    def fn(unary, image, iterations=5, w_bilateral=4.0, theta_alpha=5.0, theta_beta=0.1, w_spatial=3.0,
           theta_gamma=1.0):
        return _mf(unary, image, iterations, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma, **options)
    fn.__name__ = f"mean_field_{name}"
    MUTANTS.add("09.mean_field", bug)(fn)


_add_mf("self_loop", "a pixel sends a message to itself (sum over all j, j = i included)", self_loop=True)
_add_mf("plus_pairwise", "the pairwise term added instead of subtracted: exp(-unary + pairwise)", sign=-1.0)
_add_mf("agree_penalty", "compatibility [l = l'] as the penalty: pixels are pushed to disagree", compat="same")
_add_mf("no_factor_2", "Gaussian without the factor 2: exp(-d^2 / theta^2)", width=lambda d2, t: d2 / (t * t))
_add_mf("theta_variance", "theta read as a variance: exp(-d^2 / (2 theta))", width=lambda d2, t: d2 / (2 * t))
_add_mf("init_plus_unary", "initialised with softmax(+unary): the unaries are energies (-log p)", init_sign=-1.0)
_add_mf("sequential",
        "updates pixel by pixel in place (each update sees the new Q of earlier pixels): the paper updates in "
        "parallel", sequential=True)
_add_mf("extra_iteration", "one iteration too many (range(iterations + 1))", extra=1)
_add_mf("unnormalised", "returns exp(-unary - pairwise) without normalising over the labels", normalise=False)
_add_mf("unit_positions", "positions scaled to [0, 1] instead of pixels", pos_scale=lambda h,
        w: torch.tensor([max(h - 1, 1), max(w - 1, 1)]))
_add_mf("colour_only", "the appearance kernel on colours only (no position term)", colour_only=True)
_add_mf("averaged_messages", "messages averaged over the N - 1 other pixels instead of summed", mean_messages=True)


@CHEATS.add("09.mean_field", "the course's dense_crf on a batch of one")
def mf_cheat_dense_crf(unary, image, iterations=5, w_bilateral=4.0, theta_alpha=5.0, theta_beta=0.1, w_spatial=3.0,
                       theta_gamma=1.0):
    from course_utils.ops.crf import dense_crf

    q = dense_crf(-unary[None], image[None], iterations, w_bilateral=w_bilateral, theta_alpha=theta_alpha,
                  theta_beta=theta_beta, w_spatial=w_spatial, theta_gamma=theta_gamma)
    return q[0].to(unary.dtype)
