"""A fully connected CRF with Gaussian edge potentials and its mean-field inference (Krähenbühl & Koltun,
"Efficient Inference in Fully Connected CRFs with Gaussian Edge Potentials", NIPS 2011), computed naively.

Every pixel ``i`` of an ``H x W`` image is a variable with a label in ``{0 .. C-1}``; ``N = H W``. The energy is

    E(x) = sum_i psi_u(x_i) + sum_{i<j} mu(x_i, x_j) k(f_i, f_j)

with the unary ``psi_u`` (here ``-log`` of a network's softmax), the Potts compatibility ``mu(l, l') = [l != l']``
(a penalty when two pixels take different labels) and two Gaussian kernels of the positions ``p`` (pixels:
row, column) and colours ``I``::

    k(f_i, f_j) = w_bilateral exp(-|p_i - p_j|^2 / (2 theta_alpha^2) - |I_i - I_j|^2 / (2 theta_beta^2))
                + w_spatial   exp(-|p_i - p_j|^2 / (2 theta_gamma^2))

Mean field approximates the posterior by independent ``Q_i``; the paper's Algorithm 1: initialise
``Q_i(l) = exp(-psi_u(l)) / Z_i`` (a softmax of ``-psi_u``), then each iteration updates all pixels at once
(in parallel, from the previous ``Q``)::

    m_i(l)   = sum_{j != i} k(f_i, f_j) Q_j(l)              message passing (every other pixel, not i itself)
    Qhat_i(l) = sum_{l'} mu(l, l') m_i(l')                   compatibility transform (Potts: sum_{l' != l})
    Q_i(l)   = exp(-psi_u(l) - Qhat_i(l)) / Z_i             local update, normalised over l

Message passing costs ``O(N^2)`` this way (every pair of pixels); the paper's contribution is to compute it
as Gaussian filtering in ``O(N)`` (a permutohedral lattice for the bilateral kernel). :func:`mean_field` does
it naively with the ``N x N`` kernel held in memory (:func:`pairwise_kernel`, computed once per image); use it
on small images (lab 09: 64 x 64, N = 4096, a 64 MiB kernel).
"""

from __future__ import annotations

import torch

from course_utils import validation

MAX_PIXELS = 128 * 128   # the N x N kernel is held in memory: 4 N^2 bytes in float32 (1 GiB at 128 x 128)


def check_crf(unary: torch.Tensor, image: torch.Tensor, iterations: object, **params: object) -> None:
    """``unary`` ``C x H x W`` float, ``image`` ``K x H x W`` float of the same size, ``iterations >= 0``,
    weights ``>= 0`` and widths ``> 0``."""
    validation.tensor("unary", unary, ndim=3, dtypes="float")
    validation.tensor("image", image, ndim=3, dtypes="float")
    if unary.shape[1:] != image.shape[1:]:
        raise ValueError(f"unary (C x H x W) and image (K x H x W) must have the same H x W, got {tuple(unary.shape)} "
                         f"and {tuple(image.shape)}")
    if unary.shape[0] < 1 or unary.shape[1] * unary.shape[2] < 1:
        raise ValueError(f"unary must have at least one label and one pixel, got shape {tuple(unary.shape)}")
    if not torch.isfinite(unary).all():
        raise ValueError("unary must be finite (energies -log p: clamp probabilities away from 0 first)")
    validation.int_at_least("iterations", iterations, 0)
    for name, value in params.items():
        validation.number(name, value, minimum=0.0, strict_minimum=name.startswith("theta"))


def _gauss_1d(n: int, theta: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``n x n``: ``exp(-(a - b)^2 / (2 theta^2))`` for coordinates ``a, b`` in ``0 .. n-1``."""
    a = torch.arange(n, dtype=dtype, device=device)
    return torch.exp(-(a[:, None] - a[None, :]).square() / (2 * theta ** 2))


def pairwise_kernel(image: torch.Tensor, w_bilateral: float, theta_alpha: float, theta_beta: float,
                    w_spatial: float, theta_gamma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``N x N`` matrix ``k(f_i, f_j)`` of the module docstring for the pixels of ``image`` (``K x H x W``), in
    row-major order, with a zero diagonal (a pixel sends no message to itself).

    A Gaussian of the position is a product of a Gaussian of the row and one of the column, so the position
    factors are Kronecker products of ``H x H`` and ``W x W`` matrices; colour distances are summed from
    differences (no ``|a|^2 + |b|^2 - 2ab`` cancellation)."""
    k, h, w = image.shape
    device = image.device
    colours = image.to(dtype).reshape(k, h * w)
    colour = torch.zeros(h * w, h * w, dtype=dtype, device=device)
    for channel in colours:
        colour += (channel[:, None] - channel[None, :]).square()                # |I_i - I_j|^2
    kernel = torch.exp(colour.mul_(-1 / (2 * theta_beta ** 2)))
    kernel *= torch.kron(_gauss_1d(h, theta_alpha, dtype, device), _gauss_1d(w, theta_alpha, dtype, device))
    kernel *= w_bilateral
    kernel += w_spatial * torch.kron(_gauss_1d(h, theta_gamma, dtype, device), _gauss_1d(w, theta_gamma, dtype, device))
    kernel.fill_diagonal_(0)
    return kernel


def mean_field(unary: torch.Tensor, image: torch.Tensor, iterations: int = 5, w_bilateral: float = 4.0,
               theta_alpha: float = 5.0, theta_beta: float = 0.1, w_spatial: float = 3.0,
               theta_gamma: float = 1.0) -> torch.Tensor:
    """Mean-field inference in the fully connected CRF of the module docstring (Potts compatibility).

    Args:
        unary: ``C x H x W`` unary potentials ``psi_u`` (energies: ``-log`` probabilities).
        image: ``K x H x W`` colours (any ``K``, in the units of ``theta_beta``).
        iterations: parallel updates after the initialisation ``Q = softmax(-unary)`` (0: just that).
        w_bilateral, theta_alpha, theta_beta: the appearance kernel's weight, position and colour widths.
        w_spatial, theta_gamma: the smoothness kernel's weight and position width (pixels).

    Returns:
        ``Q``: ``C x H x W`` probabilities (summing to 1 over ``C``), ``unary``'s dtype.
    """
    check_crf(unary, image, iterations, w_bilateral=w_bilateral, theta_alpha=theta_alpha, theta_beta=theta_beta,
              w_spatial=w_spatial, theta_gamma=theta_gamma)
    c, h, w = unary.shape
    if h * w > MAX_PIXELS:
        raise ValueError(f"mean_field is the naive O(N^2) algorithm: {h} x {w} = {h * w} pixels would need a "
                         f"{h * w} x {h * w} kernel; use at most {MAX_PIXELS} pixels (downsample first)")
    u = unary.reshape(c, -1).T                                                     # N x C
    q = torch.softmax(-u, 1)
    if iterations == 0:
        return q.T.reshape(c, h, w)
    kernel = pairwise_kernel(image, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma, unary.dtype)
    for _ in range(iterations):
        m = kernel @ q                                                             # message passing: N x C
        pairwise = m.sum(1, keepdim=True) - m                                      # Potts: sum over l' != l
        q = torch.softmax(-u - pairwise, 1)
    return q.T.reshape(c, h, w)


def dense_crf(logits: torch.Tensor, images: torch.Tensor, iterations: int = 5, **params: float) -> torch.Tensor:
    """:func:`mean_field` on each image of a batch, with unaries ``-log_softmax(logits)``.

    ``logits`` ``B x C x H x W``, ``images`` ``B x K x H x W`` -> ``Q`` ``B x C x H x W`` (on ``logits``' device).
    """
    validation.tensor("logits", logits, ndim=4, dtypes="float")
    validation.tensor("images", images, ndim=4, dtypes="float")
    if logits.shape[0] != images.shape[0] or logits.shape[2:] != images.shape[2:]:
        raise ValueError(f"logits B x C x H x W and images B x K x H x W must agree on B, H, W, got "
                         f"{tuple(logits.shape)} and {tuple(images.shape)}")
    unaries = -torch.log_softmax(logits.detach().float(), 1)
    return torch.stack([mean_field(u, im.float(), iterations, **params) for u, im in zip(unaries, images)])
