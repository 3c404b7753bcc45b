"""Lab 09 (context): correct implementations that differ from the course's references (other loop orders, float64
inside, the dilated kernel as a large kernel full of zeros, interpolation matrices, bilinear interpolation as a
tent-weighted sum over every pixel, the Potts compatibility of Krähenbühl's released code): each must pass its check
on 100 seeds (a check must never reject a correct answer)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from mutants import Collection

PROBES = Collection()


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _padding(weight, dilation, padding):
    """(left, right, top, bottom)."""
    kh, kw = weight.shape[-2:]
    dr, dc = _pair(dilation)
    if padding == "same":
        tr, tc = dr * (kh - 1), dc * (kw - 1)
        return tc // 2, tc - tc // 2, tr // 2, tr - tr // 2
    ph, pw = _pair(padding)
    return pw, pw, ph, ph


# ---- 09.dilated_conv -----------------------------------------------------------------------------
@PROBES.add("09.dilated_conv", "index arithmetic: one shifted slice per tap, accumulated in float64")
def dconv_slices_float64(x, weight, bias=None, dilation=1, padding=0):
    dr, dc = _pair(dilation)
    xp = F.pad(x, _padding(weight, dilation, padding)).double()
    o, _, kh, kw = weight.shape
    ho, wo = xp.shape[2] - dr * (kh - 1), xp.shape[3] - dc * (kw - 1)
    out = torch.zeros(x.shape[0], o, ho, wo, dtype=torch.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dr:i * dr + ho, j * dc:j * dc + wo]
            out = out + (patch[:, None] * weight.double()[None, :, :, i, j, None, None]).sum(2)
    if bias is not None:
        out = out + bias.double()[None, :, None, None]
    return out.to(x.dtype)


@PROBES.add("09.dilated_conv",
            "the dilated kernel as a large kernel with zeros in the holes, F.unfold without dilation")
def dconv_zero_stuffed_kernel(x, weight, bias=None, dilation=1, padding=0):
    dr, dc = _pair(dilation)
    o, c, kh, kw = weight.shape
    big = weight.new_zeros(o, c, dr * (kh - 1) + 1, dc * (kw - 1) + 1)
    big[:, :, ::dr, ::dc] = weight
    xp = F.pad(x, _padding(weight, dilation, padding))
    cols = F.unfold(xp, big.shape[-2:])                                    # B x C KH KW x L
    out = torch.einsum("ok,bkl->bol", big.reshape(o, -1), cols)
    if bias is not None:
        out = out + bias[None, :, None]
    return out.reshape(x.shape[0], o, xp.shape[2] - big.shape[2] + 1, xp.shape[3] - big.shape[3] + 1)


@PROBES.add("09.dilated_conv", "Tensor.unfold (a strided view) per axis, then einsum")
def dconv_tensor_unfold(x, weight, bias=None, dilation=1, padding=0):
    dr, dc = _pair(dilation)
    kh, kw = weight.shape[-2:]
    xp = F.pad(x, _padding(weight, dilation, padding))
    windows = xp.unfold(2, dr * (kh - 1) + 1, 1).unfold(3, dc * (kw - 1) + 1, 1)   # B x C x H' x W' x span x span
    taps = windows[..., ::dr, ::dc]                                                  # B x C x H' x W' x kh x kw
    out = torch.einsum("bchwij,ocij->bohw", taps, weight)
    return out if bias is None else out + bias[None, :, None, None]


# ---- 09.pyramid_pool -------------------------------------------------------------------------------
def _adaptive_windows(x, b):
    """Average pooling to b x b bins written out: bin i covers floor(i n / b) .. ceil((i + 1) n / b) - 1."""
    h, w = x.shape[-2:]
    out = x.new_zeros(*x.shape[:2], b, b)
    for i in range(b):
        r0, r1 = (i * h) // b, -((-(i + 1) * h) // b)
        for j in range(b):
            c0, c1 = (j * w) // b, -((-(j + 1) * w) // b)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean((2, 3))
    return out


def _interp_matrix(n_out, n_in):
    """n_out x n_in bilinear weights of F.interpolate(align_corners=False), float64."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    scale = n_in / n_out
    for o in range(n_out):
        src = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(math.floor(src), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[o, i0] += 1 - lam
        m[o, i1] += lam
    return m


@PROBES.add("09.pyramid_pool", "adaptive pooling windows written out, a loop over bins, F.interpolate")
def ppm_windows(x, convs, bins=(1, 2, 3, 6)):
    levels = [F.interpolate(conv(_adaptive_windows(x, b)), size=x.shape[-2:], mode="bilinear", align_corners=False)
              for conv, b in zip(convs, bins)]
    return torch.cat([x, *levels], 1)


@PROBES.add("09.pyramid_pool", "F.adaptive_avg_pool2d, then upsampling as two interpolation matrices in float64")
def ppm_matrices_float64(x, convs, bins=(1, 2, 3, 6)):
    h, w = x.shape[-2:]
    parts = [x]
    for conv, b in zip(convs, bins):
        y = conv(F.adaptive_avg_pool2d(x, b)).double()
        up = torch.einsum("hi,bcij,wj->bchw", _interp_matrix(h, b), y, _interp_matrix(w, b))
        parts.append(up.to(x.dtype))
    return torch.cat(parts, 1)


# ---- 09.deform_conv -------------------------------------------------------------------------------
def _grid(offset, weight, stride, padding, dilation):
    (sy, sx), (py, px), (dy, dx) = _pair(stride), _pair(padding), _pair(dilation)
    kh, kw = weight.shape[-2:]
    b, _, ho, wo = offset.shape
    off = offset.reshape(b, kh, kw, 2, ho, wo)
    i = torch.arange(kh, dtype=offset.dtype)[:, None, None, None]
    j = torch.arange(kw, dtype=offset.dtype)[None, :, None, None]
    y = torch.arange(ho, dtype=offset.dtype)[None, None, :, None]
    xx = torch.arange(wo, dtype=offset.dtype)[None, None, None, :]
    rows = (y * sy - py + i * dy)[None] + off[:, :, :, 0]                     # B x kh x kw x H' x W'
    cols = (xx * sx - px + j * dx)[None] + off[:, :, :, 1]
    return rows, cols


@PROBES.add("09.deform_conv",
            "bilinear weights as tents max(0, 1 - |r - i|) max(0, 1 - |c - j|) over every pixel, float64")
def deform_tents_float64(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    rows, cols = _grid(offset.double(), weight, stride, padding, dilation)
    h, w = x.shape[-2:]
    ty = (1 - (rows[..., None] - torch.arange(h, dtype=torch.float64)).abs()).clamp(min=0)   # B kh kw H' W' x H
    tx = (1 - (cols[..., None] - torch.arange(w, dtype=torch.float64)).abs()).clamp(min=0)   # B kh kw H' W' x W
    samples = torch.einsum("bijyxh,bijyxw,bchw->bcijyx", ty, tx, x.double())
    out = torch.einsum("bcijyx,ocij->boyx", samples, weight.double())
    if bias is not None:
        out = out + bias.double()[None, :, None, None]
    return out.to(x.dtype)


@PROBES.add("09.deform_conv", "a loop over the taps: the image padded with a border of zeros, four corners by indexing")
def deform_padded_loop(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    rows, cols = _grid(offset, weight, stride, padding, dilation)
    kh, kw = weight.shape[-2:]
    b, _, h, w = x.shape
    m = int(max(float(rows.detach().abs().max()), float(cols.detach().abs().max()), h,
                w)) + 2     # zeros far enough out
    xp = F.pad(x, (m, m, m, m))
    out = 0
    batch = torch.arange(b)[:, None, None]
    for i in range(kh):
        for j in range(kw):
            r, cc = rows[:, i, j] + m, cols[:, i, j] + m                                   # B x H' x W'
            r0, c0 = r.floor().long(), cc.floor().long()
            a, t = r - r0, cc - c0
            value = 0
            for dr, wr in ((0, 1 - a), (1, a)):
                for dc, wc in ((0, 1 - t), (1, t)):
                    v = xp[batch, :, r0 + dr, c0 + dc]                                      # B x H' x W' x C
                    value = value + v * (wr * wc)[..., None]
            out = out + torch.einsum("byxc,oc->boyx", value, weight[:, :, i, j])
    return out if bias is None else out + bias[None, :, None, None]


# ---- 09.mean_field ---------------------------------------------------------------------------------
def _kernel(image, dtype, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma):
    k, h, w = image.shape
    rows, cols = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")
    pos = torch.stack([rows.reshape(-1), cols.reshape(-1)], 1)
    col = image.reshape(k, -1).T.to(dtype)
    dp = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    dc = ((col[:, None] - col[None]) ** 2).sum(-1)
    return (w_bilateral * torch.exp(-dp / (2 * theta_alpha ** 2) - dc / (2 * theta_beta ** 2))
            + w_spatial * torch.exp(-dp / (2 * theta_gamma ** 2)))


@PROBES.add("09.mean_field", "Krähenbühl's released code: Potts as a reward -w [l = l'] (the same after normalising)")
def mf_potts_reward(unary, image, iterations=5, w_bilateral=4.0, theta_alpha=5.0, theta_beta=0.1, w_spatial=3.0,
                    theta_gamma=1.0):
    c, h, w = unary.shape
    k = _kernel(image, unary.dtype, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma)
    k.fill_diagonal_(0)
    u = unary.reshape(c, -1).T
    q = torch.softmax(-u, 1)
    for _ in range(iterations):
        q = torch.softmax(-u + k @ q, 1)                   # compatibility -1 on the diagonal, 0 elsewhere
    return q.T.reshape(c, h, w)


@PROBES.add("09.mean_field",
            "float64: every pixel including i, then the self term (w_bilateral + w_spatial) Q_i removed")
def mf_subtract_self_float64(unary, image, iterations=5, w_bilateral=4.0, theta_alpha=5.0, theta_beta=0.1,
                             w_spatial=3.0, theta_gamma=1.0):
    c, h, w = unary.shape
    k = _kernel(image, torch.float64, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma)
    u = unary.double().reshape(c, -1).T
    q = torch.exp(-u) / torch.exp(-u).sum(1, keepdim=True)
    for _ in range(iterations):
        m = k @ q - (w_bilateral + w_spatial) * q
        potts = m @ (1 - torch.eye(c, dtype=torch.float64))        # sum over l' != l, as a C x C matrix
        e = torch.exp(-u - potts - (-u - potts).max(1, keepdim=True).values)
        q = e / e.sum(1, keepdim=True)
    return q.T.reshape(c, h, w).to(unary.dtype)


@PROBES.add("09.mean_field", "a loop over pixels i, messages from the other pixels by masking j = i")
def mf_pixel_loop(unary, image, iterations=5, w_bilateral=4.0, theta_alpha=5.0, theta_beta=0.1, w_spatial=3.0,
                  theta_gamma=1.0):
    c, h, w = unary.shape
    n = h * w
    k = _kernel(image, unary.dtype, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma)
    u = unary.reshape(c, n)
    q = torch.softmax(-u, 0)
    for _ in range(iterations):
        new = torch.empty_like(q)
        for i in range(n):
            others = torch.arange(n) != i
            m = (k[i, others][None] * q[:, others]).sum(1)                  # C
            new[:, i] = torch.softmax(-u[:, i] - (m.sum() - m), 0)
        q = new
    return q.reshape(c, h, w)
