"""K-means (Lloyd's algorithm) in torch, on any device: the reference for lab 01.

Shapes: ``x`` is ``N x D`` (N points, D features), ``centres`` is ``K x D``.

The loop, exactly as the lab specifies it:

1. ``labels = assign(x, centres)`` (nearest centre, squared Euclidean distance, ties -> lowest index);
2. ``new = update_centres(x, labels, centres)`` (mean of each cluster; an empty cluster keeps its centre);
3. stop when ``sum((new - centres)**2) <= tol * mean(x.var(0))`` (scikit-learn's relative tolerance)
   or after ``max_iter`` updates; ``centres = new``.

Then a final assignment, and ``inertia = sum of squared distances to the assigned centres``.

:func:`kmeans` gives exactly the result of that loop, but skips most distance computations with
Hamerly's bounds (G. Hamerly, *Making k-means even faster*, SDM 2010): each point keeps an upper bound on
the distance to its centre and a lower bound on the distance to any other centre; when centres move a
little, the bounds move by at most as much, and a point whose upper bound stays below its lower bound
(or below half the distance from its centre to the nearest other centre) cannot change cluster.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from course_utils import _validate

# Points per chunk in the distance computation: keeps the N x K matrix small and cache-friendly.
CHUNK = 32768


class KMeansResult(NamedTuple):
    labels: torch.Tensor   # N, int64
    centres: torch.Tensor  # K x D
    inertia: float         # sum of squared distances to the assigned centre
    n_iter: int            # number of centre updates made


def _check_points(x: torch.Tensor) -> torch.Tensor:
    _validate.tensor("x", x, ndim=2, dtypes="float")
    if x.shape[0] == 0:
        raise ValueError("x has no points (shape (0, D)); expected at least one row")
    return x


def _check_centres(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    _validate.tensor("centres", centres, ndim=2, dtypes="float")
    if centres.shape[1] != x.shape[1]:
        raise ValueError(f"centres must have D={x.shape[1]} columns like x, got shape {tuple(centres.shape)}")
    if centres.shape[0] == 0:
        raise ValueError("centres is empty; expected K >= 1 rows")
    return centres


def _nearest(xt: torch.Tensor, centres: torch.Tensor, with_distance: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels (N) and, if asked, squared distances (N) to the nearest centre.

    ``xt`` is the points transposed, ``D x N`` and contiguous: the ``K x N`` distance matrix is then reduced
    over its first dimension, which is much faster than over a short last dimension.
    """
    n = xt.shape[1]
    labels = torch.empty(n, dtype=torch.long, device=xt.device)
    dist = torch.empty(n, dtype=xt.dtype, device=xt.device) if with_distance else None
    c_sq = (centres * centres).sum(1, keepdim=True)                      # K x 1
    for start in range(0, n, CHUNK):
        chunk = xt[:, start:start + CHUNK]
        # ||x - c||^2 = ||c||^2 - 2 c.x + ||x||^2 ; ||x||^2 does not change the argmin
        d = torch.addmm(c_sq, centres, chunk, alpha=-2.0)               # K x chunk
        best, idx = d.min(0)
        labels[start:start + CHUNK] = idx
        if dist is not None:
            dist[start:start + CHUNK] = (best + (chunk * chunk).sum(0)).clamp_(min=0)
    return labels, dist


def _update(xt: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cluster means from the transposed points ``D x N``; empty clusters keep their centre."""
    k, d = centres.shape
    sums = torch.zeros(d, k, dtype=xt.dtype, device=xt.device).scatter_add_(1, labels.expand(d, -1), xt)
    counts = torch.bincount(labels, minlength=k).to(xt.dtype)
    return torch.where(counts[:, None] > 0, sums.T / counts.clamp(min=1)[:, None], centres)


def assign(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre for each point: ``N`` int64 (ties -> lowest index)."""
    x = _check_points(x)
    return _nearest(x.T.contiguous(), _check_centres(x, centres))[0]


def update_centres(x: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mean of the points of each cluster (``K x D``); an empty cluster keeps its old centre."""
    x = _check_points(x)
    centres = _check_centres(x, centres)
    _validate.tensor("labels", labels, ndim=1, dtypes="int")
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
    _validate.positive_int("k", k)
    if k > x.shape[0]:
        raise ValueError(f"k={k} is larger than the number of points N={x.shape[0]}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    first = torch.randint(x.shape[0], (1,), generator=generator, device=gen_device).item()
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        weights = d2.to(gen_device, torch.float64)
        if weights.sum() <= 0:  # fewer distinct points than k: any point will do
            weights = torch.ones_like(weights)
        idx = torch.multinomial(weights, 1, generator=generator).item()
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
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    threshold = float(tol * x.var(0, unbiased=False).mean())
    xt = x.T.contiguous()  # D x N, the layout the inner loop wants
    n_iter = 0
    with torch.inference_mode():
        bounds = _Bounds(xt, centres)
        for n_iter in range(1, max_iter + 1):
            labels = bounds.assign(centres)
            new = _update(xt, labels, centres)
            moved = ((new - centres) ** 2).sum(1)
            bounds.centres_moved(moved.sqrt(), labels)
            centres = new
            if float(moved.sum()) <= threshold:
                break
        labels = bounds.assign(centres)
        inertia = float(((xt - centres.T[:, labels]) ** 2).sum())
    return KMeansResult(labels.clone(), centres.clone(), inertia, n_iter)


class _Bounds:
    """Hamerly's bounds: ``upper[i]`` >= distance of point i to its centre, ``lower[i]`` <= distance to
    every other centre. Only points whose bounds overlap are looked at again."""

    def __init__(self, xt: torch.Tensor, centres: torch.Tensor):
        self.xt = xt
        self.labels, self.upper, self.lower = self._two_nearest(xt, centres)

    @staticmethod
    def _two_nearest(xt: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if centres.shape[0] == 1:
            d = ((xt - centres.T) ** 2).sum(0).sqrt()
            return torch.zeros_like(d, dtype=torch.long), d, torch.full_like(d, float("inf"))
        c_sq = (centres * centres).sum(1, keepdim=True)
        x_sq = (xt * xt).sum(0)
        labels = torch.empty(xt.shape[1], dtype=torch.long, device=xt.device)
        upper, lower = torch.empty_like(x_sq), torch.empty_like(x_sq)
        for start in range(0, xt.shape[1], CHUNK):
            d = torch.addmm(c_sq, centres, xt[:, start:start + CHUNK], alpha=-2.0)
            two = d.topk(2, dim=0, largest=False)
            labels[start:start + CHUNK] = two.indices[0]
            best = (two.values + x_sq[start:start + CHUNK]).clamp_(min=0).sqrt_()
            upper[start:start + CHUNK], lower[start:start + CHUNK] = best[0], best[1]
        return labels, upper, lower

    def assign(self, centres: torch.Tensor) -> torch.Tensor:
        if centres.shape[0] > 1:
            gap = torch.cdist(centres, centres).fill_diagonal_(float("inf")).min(1).values / 2
            limit = torch.maximum(gap[self.labels], self.lower)
            todo = (self.upper > limit).nonzero()[:, 0]
            if todo.numel():  # tighten the upper bound with the exact distance, then check again
                exact = ((self.xt[:, todo] - centres.T[:, self.labels[todo]]) ** 2).sum(0).sqrt()
                self.upper[todo] = exact
                todo = todo[exact > limit[todo]]
            if todo.numel():  # these may have changed cluster: recompute their two nearest centres
                labels, upper, lower = self._two_nearest(self.xt[:, todo], centres)
                self.labels[todo], self.upper[todo], self.lower[todo] = labels, upper, lower
        return self.labels

    def centres_moved(self, distance: torch.Tensor, labels: torch.Tensor) -> None:
        """Centres moved by ``distance`` (K): loosen the bounds by as much."""
        self.upper += distance[labels]
        self.lower -= distance.max()
