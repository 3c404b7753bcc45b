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
it naively, in blocks of rows of the ``N x N`` kernel so that memory stays ``O(block N)``; use it on small
images (lab 09: 64 x 64, N = 4096).
"""

from __future__ import annotations

import torch

from course_utils import validation

BLOCK = 1024   # kernel rows computed at once: BLOCK x N floats


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


def _features(image: torch.Tensor, theta_alpha: float, theta_beta: float, theta_gamma: float,
              dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled features ``N x (2 + K)`` for the bilateral kernel and ``N x 2`` for the spatial one."""
    k, h, w = image.shape
    rows, cols = torch.meshgrid(torch.arange(h, dtype=dtype, device=image.device),
                                torch.arange(w, dtype=dtype, device=image.device), indexing="ij")
    pos = torch.stack([rows, cols], -1).reshape(-1, 2)
    colour = image.to(dtype).reshape(k, -1).T
    return torch.cat([pos / theta_alpha, colour / theta_beta], 1), pos / theta_gamma


def _gaussian_rows(f: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``exp(-|f_i - f_j|^2 / 2)`` for rows ``i`` in ``[start, stop)``, all ``j``."""
    return torch.exp(-0.5 * torch.cdist(f[start:stop], f, compute_mode="donot_use_mm_for_euclid_dist").square())


def messages(q: torch.Tensor, image: torch.Tensor, w_bilateral: float, theta_alpha: float, theta_beta: float,
             w_spatial: float, theta_gamma: float, block: int = BLOCK) -> torch.Tensor:
    """``m_i(l) = sum_{j != i} k(f_i, f_j) Q_j(l)`` for ``q`` ``N x C`` (pixels in row-major order): ``N x C``."""
    bi, sp = _features(image, theta_alpha, theta_beta, theta_gamma, q.dtype)
    out = torch.empty_like(q)
    for start in range(0, q.shape[0], block):
        stop = min(start + block, q.shape[0])
        kernel = w_bilateral * _gaussian_rows(bi, start, stop) + w_spatial * _gaussian_rows(sp, start, stop)
        idx = torch.arange(start, stop, device=q.device)
        kernel[idx - start, idx] = 0                        # j != i: a pixel sends no message to itself
        out[start:stop] = kernel @ q
    return out


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
    u = unary.reshape(c, -1).T                                                     # N x C
    q = torch.softmax(-u, 1)
    for _ in range(iterations):
        m = messages(q, image, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma)
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
