"""K-means (Lloyd's algorithm) in torch, on any device: the reference for lab 01.

Shapes: ``x`` is ``N x D`` (N points, D features), ``centres`` is ``K x D``.

The loop, exactly as the lab specifies it:

1. ``labels = assign(x, centres)`` (nearest centre, squared Euclidean distance, ties -> lowest index);
2. ``new = update_centres(x, labels, centres)`` (mean of each cluster; an empty cluster keeps its centre);
3. stop when ``sum((new - centres)**2) <= tol * mean(x.var(0))`` (scikit-learn's relative tolerance)
   or after ``max_iter`` updates; ``centres = new``.

Then a final assignment, and ``inertia = sum of squared distances to the assigned centres``.

On CPU, a large input (``N * K >= COMPILE_MIN_WORK``) runs steps 1 and 2 through ``torch.compile``
(``_unrolled_step``): the same loop written point by point, which inductor turns into one pass over the
points, like scikit-learn's Cython. It compiles once per K and dtype in a process (seconds; torch caches the
result on disk for the next process), and gives the same labels and centres up to rounding (the sums are
added in another order). Where compiling fails (no C++ compiler), it says so once and runs the two steps.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Literal, NamedTuple, overload

import torch

from course_utils import validation

# Points per chunk in the distance computation: keeps the N x K matrix small and cache-friendly.
CHUNK = 65536
# On CPU, from this many point-centre pairs (N * K) on, Lloyd's loop runs compiled (math.inf: never). On a
# 1-megapixel image each fit is then 1.3-4x faster than scikit-learn's (bench/kmeans.py, k = 32-4), but the
# first fit for each K in a process compiles: about 1-2 s with torch's disk cache, 3-15 s without.
COMPILE_MIN_WORK = 2**22


class KMeansResult(NamedTuple):
    labels: torch.Tensor   # N, int64
    centres: torch.Tensor  # K x D
    inertia: float         # sum of squared distances to the assigned centre
    n_iter: int            # number of centre updates made


def _check_points(x: torch.Tensor) -> torch.Tensor:
    validation.tensor("x", x, ndim=2, dtypes="float")
    if x.shape[0] == 0:
        raise ValueError("x has no points (shape (0, D)); expected at least one row")
    return x


def _check_centres(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    validation.tensor("centres", centres, ndim=2, dtypes="float")
    if centres.shape[1] != x.shape[1]:
        raise ValueError(f"centres must have D={x.shape[1]} columns like x, got shape {tuple(centres.shape)}")
    if centres.shape[0] == 0:
        raise ValueError("centres is empty; expected K >= 1 rows")
    return centres


@overload
def _nearest(xt: torch.Tensor, centres: torch.Tensor, with_distance: Literal[False] = False
             ) -> tuple[torch.Tensor, None]: ...
@overload
def _nearest(xt: torch.Tensor, centres: torch.Tensor, with_distance: Literal[True]
             ) -> tuple[torch.Tensor, torch.Tensor]: ...
def _nearest(xt: torch.Tensor, centres: torch.Tensor, with_distance: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels (N) and, if asked, squared distances (N) to the nearest centre.

    ``xt`` is the points transposed, ``D x N`` and contiguous, so that each chunk's ``K x chunk``
    distance matrix is reduced over its first dimension. ``min(dim=0)`` with indices is slow on CPU;
    ``amin`` (values only) is fast, and the index of the first centre that reaches it is found with
    one comparison: ``rank`` is ``K-1, ..., 0``, so the largest rank among the minima is the lowest index.
    """
    k, n = centres.shape[0], xt.shape[1]
    labels = torch.empty(n, dtype=torch.long, device=xt.device)
    dist = torch.empty(n, dtype=xt.dtype, device=xt.device) if with_distance else None
    c_sq = (centres * centres).sum(1, keepdim=True)                      # K x 1
    rank = torch.arange(k - 1, -1, -1, device=xt.device, dtype=torch.uint8 if k <= 256 else torch.long)[:, None]
    for start in range(0, n, CHUNK):
        chunk = xt[:, start:start + CHUNK]
        # ||x - c||^2 = ||c||^2 - 2 c.x + ||x||^2 ; ||x||^2 does not change the argmin
        d = torch.addmm(c_sq, centres, chunk, alpha=-2.0)               # K x chunk
        best = d.amin(0)
        labels[start:start + CHUNK] = (k - 1) - ((d == best) * rank).amax(0).long()
        if dist is not None:
            dist[start:start + CHUNK] = (best + (chunk * chunk).sum(0)).clamp_(min=0)
    return labels, dist


def _update(xt: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cluster means from the transposed points ``D x N``; empty clusters keep their centre."""
    k, d = centres.shape
    sums = torch.zeros(d, k, dtype=xt.dtype, device=xt.device).scatter_add_(1, labels.expand(d, -1), xt)
    return _means(sums.T, torch.bincount(labels, minlength=k), centres)


def _means(sums: torch.Tensor, counts: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Each cluster's mean from its sum (``K x D``) and size (K); an empty cluster keeps its centre."""
    return torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None].to(sums.dtype), centres)


def _unrolled_step(xt: torch.Tensor, centres: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1 and 2 for torch.compile, from ``xt`` (``D x N``): the labels (N), the squared distances to
    the nearest centre (N), each cluster's sum (``K x D``) and size (K).

    Every line works on all N points at once, one centre and one feature at a time. Run as it is, that is
    slow (K x D passes over the points); compiled, the loops are unrolled and fused into one pass that keeps
    each point's distances in registers. The distances are ``sum((x - c)**2)``, as the lab defines them;
    ties go to the lowest index (``<``).
    """
    k, dim = centres.shape
    best = torch.full_like(xt[0], float("inf"))
    labels = torch.zeros_like(xt[0], dtype=torch.long)
    for j in range(k):
        d = sum((xt[i] - centres[j, i]) ** 2 for i in range(dim))
        closer = d < best
        best = torch.where(closer, d, best)
        labels = torch.where(closer, j, labels)
    sums = torch.stack([torch.where(labels == j, xt, 0).sum(1) for j in range(k)])
    counts = torch.stack([(labels == j).sum() for j in range(k)])
    return labels, best, sums, counts


@functools.cache
def _compiled_step() -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]:
    """``_unrolled_step`` compiled (made on first use: importing torch's compiler takes a second). torch's
    default shapes: compiled for the first N it sees, recompiled once for any N when another comes."""
    return torch.compile(_unrolled_step)


_compiled_for: set[tuple[int, torch.dtype]] = set()   # the (K, dtype) compiled so far: up to 2 versions each
_compile_failed = False


def _can_compile(xt: torch.Tensor, k: int) -> bool:
    """Whether to run the compiled step: a large input on CPU, while compiling works. torch keeps
    ``recompile_limit`` versions of a function; past that it would run ``_unrolled_step`` uncompiled (slow)."""
    if _compile_failed or xt.device.type != "cpu" or xt.shape[1] * k < COMPILE_MIN_WORK:
        return False
    return (k, xt.dtype) in _compiled_for or 2 * (len(_compiled_for) + 1) <= torch._dynamo.config.recompile_limit


def _run_compiled(xt: torch.Tensor, centres: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The compiled step: labels (N), squared distances (N), new centres (``K x D``); None where it does not
    run (:func:`_can_compile`) or compiling failed (then it says so, once, and the two steps run from then on)."""
    global _compile_failed
    if not _can_compile(xt, centres.shape[0]):
        return None
    try:
        labels, dist, sums, counts = _compiled_step()(xt, centres)
    except Exception as exc:  # noqa: BLE001 - no C++ compiler, an unsupported platform: run the two steps
        _compile_failed = True
        warnings.warn(f"kmeans: torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); "
                      "running the two steps uncompiled (slower on large images)", RuntimeWarning, stacklevel=4)
        return None
    _compiled_for.add((centres.shape[0], xt.dtype))
    return labels, dist, _means(sums, counts, centres)


def _lloyd_step(xt: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """One assignment and update: the new centres ``K x D`` (compiled for large inputs on CPU)."""
    compiled = _run_compiled(xt, centres)
    if compiled is not None:
        return compiled[2]
    labels, _ = _nearest(xt, centres)
    return _update(xt, labels, centres)


def assign(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre for each point: ``N`` int64 (ties -> lowest index)."""
    x = _check_points(x)
    return _nearest(x.T.contiguous(), _check_centres(x, centres))[0]


def update_centres(x: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mean of the points of each cluster (``K x D``); an empty cluster keeps its old centre."""
    x = _check_points(x)
    centres = _check_centres(x, centres)
    validation.tensor("labels", labels, ndim=1, dtypes="int")
    k = centres.shape[0]
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have one entry per point (N={x.shape[0]}), got {labels.shape[0]}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be in [0, K={k}), got values in [{labels.min().item()}, {labels.max().item()}]")
    return _update(x.T.contiguous(), labels, centres)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``K x D`` centres taken from the rows of ``x``.

    The first centre is a uniformly random point; each next one is a point drawn with probability
    proportional to its squared distance to the nearest centre chosen so far.
    """
    x = _check_points(x)
    validation.positive_int("k", k)
    if k > x.shape[0]:
        raise ValueError(f"k={k} is larger than the number of points N={x.shape[0]}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    first = int(torch.randint(x.shape[0], (1,), generator=generator, device=gen_device))
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        weights = d2.to(gen_device, torch.float64)
        if weights.sum() <= 0:  # fewer distinct points than k: any point will do
            weights = torch.ones_like(weights)
        idx = int(torch.multinomial(weights, 1, generator=generator))
        centres.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(x: torch.Tensor, k: int | None = None, init: torch.Tensor | str = "k-means++",
           max_iter: int = 100, tol: float = 1e-4, generator: torch.Generator | None = None) -> KMeansResult:
    """Cluster the rows of ``x`` (``N x D``) into ``k`` groups.

    ``init`` is ``"k-means++"`` (needs ``k``) or a ``K x D`` tensor of initial centres.
    """
    x = _check_points(x)
    if isinstance(init, str):
        if init != "k-means++":
            raise ValueError(f"init must be 'k-means++' or a K x D tensor of centres, got {init!r}")
        if k is None:
            raise ValueError("k is required with init='k-means++'")
        centres = kmeans_plus_plus(x, k, generator)
    else:
        centres = _check_centres(x, init).to(x)
        if k is not None and k != centres.shape[0]:
            raise ValueError(f"k={k} but init has {centres.shape[0]} centres")
    validation.int_at_least("max_iter", max_iter, 0)
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    threshold = float(tol * x.var(0, unbiased=False).mean())
    xt = x.T.contiguous()  # D x N, the layout the inner loop wants
    n_iter = 0
    with torch.inference_mode():
        for _ in range(max_iter):
            n_iter += 1
            new = _lloyd_step(xt, centres)
            shift = float(((new - centres) ** 2).sum())
            centres = new
            if shift <= threshold:
                break
        final = _run_compiled(xt, centres)
        labels, dist = final[:2] if final is not None else _nearest(xt, centres, with_distance=True)
    return KMeansResult(labels.clone(), centres.clone(), float(dist.sum()), n_iter)

