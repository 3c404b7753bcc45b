"""Lab 01 (k-means): correct implementations written another way than the course's."""

from __future__ import annotations

import numpy as np
import torch
from mutants import Collection

from course_utils.ops import kmeans as _kmeans

PROBES = Collection()


# ---- 01.assign -------------------------------------------------------------------------------
@PROBES.add("01.assign", "a loop over the centres keeping the nearest so far (strict <: the first of equals)")
def assign_loop(x, centres):
    best = torch.full((x.shape[0],), float("inf"), dtype=torch.float64)
    labels = torch.zeros(x.shape[0], dtype=torch.int64)
    for j in range(centres.shape[0]):
        d = ((x.double() - centres[j].double()) ** 2).sum(1)
        closer = d < best
        best, labels = torch.where(closer, d, best), torch.where(closer, j, labels)
    return labels


@PROBES.add("01.assign", "torch.cdist (Euclidean distances, not squared)")
def assign_cdist(x, centres):
    return torch.cdist(x, centres).argmin(1)


# ---- 01.update -------------------------------------------------------------------------------
@PROBES.add("01.update", "a loop over the clusters with boolean masks")
def update_loop(x, labels, centres):
    out = centres.clone()
    for j in range(centres.shape[0]):
        members = labels == j
        if members.any():
            out[j] = x[members].mean(0)
    return out


@PROBES.add("01.update", "a one-hot matrix product: (one_hot.T @ x) / counts, in float64")
def update_one_hot(x, labels, centres):
    one_hot = torch.nn.functional.one_hot(labels, centres.shape[0]).double()       # N x K
    counts = one_hot.sum(0)[:, None]
    means = (one_hot.T @ x.double()) / counts.clamp(min=1)
    return torch.where(counts > 0, means, centres.double()).to(x.dtype)


# ---- 01.init ---------------------------------------------------------------------------------
@PROBES.add("01.init", "squared distances kept in numpy float64, the chosen points gathered at the end")
def init_numpy_distances(x, k, generator=None):
    points = x.double().numpy()
    first = int(torch.randint(x.shape[0], (1,), generator=generator))
    chosen = [first]
    d2 = ((points - points[first]) ** 2).sum(1)
    for _ in range(1, k):
        idx = int(torch.multinomial(torch.from_numpy(d2), 1, generator=generator))
        chosen.append(idx)
        d2 = np.minimum(d2, ((points - points[idx]) ** 2).sum(1))
    return x[torch.tensor(chosen)].clone()


@PROBES.add("01.init", "the draw by inverse CDF: one uniform number against the cumulative sum of D^2")
def init_inverse_cdf(x, k, generator=None):
    first = int(torch.randint(x.shape[0], (1,), generator=generator))
    chosen = [first]
    d2 = ((x - x[first]) ** 2).sum(1).double()
    for _ in range(1, k):
        cdf = torch.cumsum(d2, 0)
        u = float(torch.rand(1, generator=generator, dtype=torch.float64)) * float(cdf[-1])
        idx = int(torch.searchsorted(cdf, torch.tensor([u], dtype=torch.float64), right=True).clamp(max=len(cdf) - 1))
        while d2[idx] == 0:          # never a point already chosen (weight 0), even at the edge of a step
            idx -= 1
        chosen.append(idx)
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1).double())
    return x[chosen].clone()


# ---- 01.kmeans -------------------------------------------------------------------------------
def _lloyd(x, k, init, max_iter, tol, generator, assign, update, seed):
    centres = seed(x, k, generator) if isinstance(init, str) else init.to(x)
    threshold = tol * float(x.double().var(0, unbiased=False).mean())
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        new = update(x, assign(x, centres), centres)
        shift = float(((new.double() - centres.double()) ** 2).sum())
        centres = new
        if shift <= threshold:
            break
    labels = assign(x, centres)
    return labels, centres, float(((x - centres[labels]) ** 2).sum()), n_iter


@PROBES.add("01.kmeans", "a while loop, the shift and the threshold in float64")
def kmeans_while(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _lloyd(x, k, init, max_iter, tol, generator, assign_loop, update_loop, init_numpy_distances)


@PROBES.add("01.kmeans", "with the course's assign, update_centres and kmeans_plus_plus (as after fallback)")
def kmeans_with_course_parts(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _lloyd(x, k, init, max_iter, tol, generator, _kmeans.assign, _kmeans.update_centres,
                  _kmeans.kmeans_plus_plus)


# ---- 01.features -----------------------------------------------------------------------------
@PROBES.add("01.features", "einsum for the grey level, torch.linspace for the positions, channels-last reshape")
def features_einsum(image, mode="rgb", position_weight=0.0):
    c, h, w = image.shape
    rgb = image.expand(3, h, w)
    if mode == "intensity":
        weights = torch.tensor([0.2125, 0.7154, 0.0721], dtype=image.dtype)
        feats = torch.einsum("chw,c->hw", rgb, weights).reshape(-1, 1) if c == 3 else image.reshape(-1, 1)
    else:
        feats = rgb.permute(1, 2, 0).reshape(-1, 3)
    if position_weight > 0:
        ys = torch.linspace(0, 1, h, dtype=image.dtype) if h > 1 else torch.zeros(1, dtype=image.dtype)
        xs = torch.linspace(0, 1, w, dtype=image.dtype) if w > 1 else torch.zeros(1, dtype=image.dtype)
        pos = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], -1).reshape(-1, 2)
        feats = torch.cat([feats, position_weight * pos], 1)
    return feats


@PROBES.add("01.features", "numpy, pixel by pixel for the positions")
def features_numpy(image, mode="rgb", position_weight=0.0):
    a = image.numpy()
    c, h, w = a.shape
    rgb = np.broadcast_to(a, (3, h, w)) if c == 1 else a
    if mode == "intensity":
        grey = a[0] if c == 1 else (0.2125 * rgb[0] + 0.7154 * rgb[1] + 0.0721 * rgb[2])
        feats = grey.reshape(-1, 1)
    else:
        feats = rgb.reshape(3, -1).T
    if position_weight > 0:
        pos = np.array([[j / max(w - 1, 1), i / max(h - 1, 1)] for i in range(h) for j in range(w)])
        feats = np.concatenate([feats, position_weight * pos], 1)
    return torch.from_numpy(np.ascontiguousarray(feats)).to(image.dtype)


# ---- 01.match --------------------------------------------------------------------------------
@PROBES.add("01.match", "a loop over the clusters, bincount of each one's classes")
def match_loop(clusters, target, k, num_classes):
    out = torch.zeros(k, dtype=torch.int64)
    for j in range(k):
        out[j] = torch.bincount(target[clusters == j].reshape(-1), minlength=num_classes).argmax()
    return out


@PROBES.add("01.match", "counts as a one-hot matrix product")
def match_one_hot(clusters, target, k, num_classes):
    a = torch.nn.functional.one_hot(clusters.reshape(-1), k).double()
    b = torch.nn.functional.one_hot(target.reshape(-1), num_classes).double()
    return (a.T @ b).argmax(1)


# ---- 01.miou ---------------------------------------------------------------------------------
@PROBES.add("01.miou", "numpy, from the confusion matrix")
def miou_numpy(pred, target, num_classes):
    cm = np.bincount(target.numpy().ravel() * num_classes + pred.numpy().ravel(), minlength=num_classes ** 2)
    cm = cm.reshape(num_classes, num_classes)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    return float(np.mean(np.diag(cm)[union > 0] / union[union > 0]))


@PROBES.add("01.miou", "set sizes: |P & T| / (|P| + |T| - |P & T|), summed with math.fsum")
def miou_sets(pred, target, num_classes):
    import math

    ious = []
    for c in range(num_classes):
        p, t = int((pred == c).sum()), int((target == c).sum())
        both = int(((pred == c) & (target == c)).sum())
        if p + t:
            ious.append(both / (p + t - both))
    return math.fsum(ious) / len(ious)
