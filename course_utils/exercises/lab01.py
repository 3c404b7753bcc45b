"""Lab 01 exercises: k-means intensity clustering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from course_utils.evaluation import segmentation
from course_utils.exercises.cases import LIBRARY_IOU
from course_utils.grading.compare import compare, compare_fields, describe
from course_utils.grading.exercise import ACCUMULATED, SUMS, TIGHT, Case, Exercise
from course_utils.ops import features, kmeans


@dataclass
class _Exact(Case):
    """A case whose result must equal the reference's exactly (an exact tie: the lowest index wins)."""


@dataclass
class _Linked(Case):
    """One of several cases judged together: ``memo`` (shared by the cases of one check) keeps the
    results of the earlier ones, ``role`` says what this one checks against them."""

    judged_alone: ClassVar[bool] = False

    memo: dict = field(default_factory=dict)
    role: str = ""


def _linked(case: Case) -> tuple[str, dict]:
    """The role and the shared memo of a linked case; ``""`` and a fresh dict for any other case."""
    return (case.role, case.memo) if isinstance(case, _Linked) else ("", {})


def _blobs(g: torch.Generator, n: int, k: int, d: int, spread: float = 0.15,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    centres = torch.rand(k, d, generator=g) * 4
    which = torch.randint(k, (n,), generator=g)
    return (centres[which] + spread * torch.randn(n, d, generator=g)).to(dtype)


def _int_tensor(got: object, n: int) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor of {n} labels, got {describe(got)}"
    if got.shape != (n,):
        return f"wrong shape: expected ({n},), got {tuple(got.shape)}"
    if got.dtype != torch.int64:
        return f"labels must be an int64 tensor (what argmin returns), got {got.dtype}"
    return None


# ---- 01.assign -------------------------------------------------------------------------------
def _assign_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([[0.0], [0.4], [0.6], [1.0]]), torch.tensor([[0.0], [1.0]])), note="1-D, two centres"),
        Case((torch.tensor([[0.0, 0.0], [3.0, 3.0]]), torch.tensor([[3.0, 3.0], [0.0, 0.0], [9.0, 9.0]])),
             note="2-D, points on the centres"),
        Case((torch.rand(1, 3, generator=g), torch.rand(4, 3, generator=g)), note="a single point"),
        _Exact((torch.tensor([[1.0, 1.0], [1.0, 2.0]]), torch.tensor([[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]])),
               note="exact ties: (1, 1) is as far from all 4 centres, (1, 2) from centres 1 and 3 -> the lowest index"),
        Case((torch.rand(5, 2, generator=g, dtype=torch.float64), torch.rand(1, 2, generator=g, dtype=torch.float64)),
             note="a single centre (K = 1), float64: every label is 0"),
    ]
    for n, k, d in ((50, 3, 1), (200, 5, 3), (37, 8, 5)):
        cases.append(Case((_blobs(g, n, k, d), torch.rand(k, d, generator=g) * 4),
                          note=f"random: {n} points, {k} centres"))
    return cases


def _assign_verify(case: Case, got: object, expected: torch.Tensor) -> str | None:
    x, centres = case.args
    problem = _int_tensor(got, x.shape[0])
    if problem:
        return problem
    assert isinstance(got, torch.Tensor)  # _int_tensor has checked it
    if isinstance(case, _Exact):
        return compare(expected, got, 0, 0, exact_dtype=True)
    if got.min() < 0 or got.max() >= centres.shape[0]:
        return f"labels must be in [0, {centres.shape[0]}), got values in [{got.min().item()}, {got.max().item()}]"
    d = torch.cdist(x.double(), centres.double()) ** 2
    mine, best = d.gather(1, got.long().cpu()[:, None])[:, 0], d.min(1).values
    wrong = mine > best + 1e-6
    if wrong.any():
        i = int(wrong.nonzero()[0])
        return (f"point {i} is assigned to centre {int(got[i])} (squared distance {mine[i]:.4g}), "
                f"but centre {int(expected[i])} is nearer ({best[i]:.4g}); {int(wrong.sum())} points are wrong")
    return None


ASSIGN = Exercise(
    "01.assign", title="nearest centre for each point", reference=kmeans.assign, cases=_assign_cases,
    verify=_assign_verify,
    hint="compute the N x K matrix of squared distances (broadcast x[:, None, :] - centres[None, :, :]) "
         "and take argmin over the centres (dim=1).",
    function="assign",
    off_limits=("sklearn.metrics.pairwise_distances_argmin", "sklearn.metrics.pairwise_distances_argmin_min",
                "sklearn.cluster.KMeans.predict"),
    yourself="compute the distances and the nearest centre yourself",
)


# ---- 01.update -------------------------------------------------------------------------------
def _update_cases(g: torch.Generator) -> list[Case]:
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
    cases = [
        Case((x, torch.tensor([0, 0, 1]), torch.tensor([[1.0, 1.0], [5.0, 5.0]])), note="two clusters"),
        Case((x, torch.tensor([0, 0, 0]), torch.tensor([[1.0, 1.0], [5.0, 5.0], [7.0, 7.0]])),
             note="two empty clusters keep their centres"),
        Case((torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=torch.float64), torch.tensor([1, 1]),
              torch.tensor([[9.0, 9.0, 9.0], [0.0, 0.0, 0.0]], dtype=torch.float64)),
             note="float64 stays float64; cluster 0 is empty and keeps (9, 9, 9), not 0 or the mean of all points"),
    ]
    for n, k, d in ((40, 3, 2), (100, 6, 3), (5, 8, 1)):
        x = _blobs(g, n, k, d)
        cases.append(Case((x, torch.randint(k, (n,), generator=g), torch.rand(k, d, generator=g)),
                          note=f"random: {n} points, {k} clusters" + (", some empty" if n < k else "")))
    return cases


UPDATE = Exercise(
    "01.update", title="centre = mean of its points; an empty cluster keeps its centre",
    reference=kmeans.update_centres,
    cases=_update_cases,
    hint="sum the points of each cluster (index_add_ or a loop over k), divide by the counts "
         "(torch.bincount(labels, minlength=k)), and keep the old centre where the count is 0.",
    function="update_centres",
)


# ---- 01.init (k-means++) ---------------------------------------------------------------------
# The distribution case: PAIRS pairs of points; the pairs sit on a grid with spacing 1e4, the two points of
# a pair are R apart (R = 4 for the first FAR pairs, 1 for the others). The first PAIRS draws put one centre
# in each pair (a pair without a centre is ~1e4 away, a covered one at most 4); each of the M = k - PAIRS
# draws after that picks the other point of a pair, with probability proportional to R^2 (16 : 1) for
# k-means++, R (4 : 1) for "proportional to D", and always a far pair for "the farthest point". The check
# counts the far pairs whose two points are both centres. Its distribution under k-means++ (drawing
# without replacement, computed exactly by dynamic programming) has mean 90.1, and
# P(count < 71) + P(count > 106) = 6.8e-7: the false-failure rate of a correct function that draws its
# random numbers differently from the reference. "Proportional to D" (mean 61.2) lands in [71, 106] with
# probability 0.016, the farthest point never (120), uniform draws never (about 30). The generator's seed
# is fixed, so the verdict on a given function is the same on every seed of the check.
PAIRS, FAR, M, SPACING = 480, 120, 120, 1e4
FAR_RANGE = (71, 106)
DISTRIBUTION_SEED = 20240


def _pairs() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    cells = torch.randperm(24 * 20, generator=g)[:PAIRS]
    anchors = torch.stack([cells // 20 - 11.5, cells % 20 - 9.5], 1).double() * SPACING
    radius = torch.ones(PAIRS, dtype=torch.float64)
    radius[:FAR] = 4.0
    angle = torch.rand(PAIRS, generator=g, dtype=torch.float64) * 6.283185307179586
    tips = anchors + radius[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    return torch.cat([anchors, tips])  # point i and point i + PAIRS form pair i


def _init_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for k in (3, 5):
        # One big tight cluster and k - 1 small far ones: k-means++ puts one centre in each,
        # a uniformly random choice would almost always pick several points of the big one.
        centres = torch.arange(k, dtype=torch.float32)[:, None] * torch.tensor([[100.0, -60.0]])
        sizes = [400] + [4] * (k - 1)
        x = torch.cat([c + 0.01 * torch.randn(s, 2, generator=g) for c, s in zip(centres, sizes)])
        seed = int(torch.randint(2**31, (1,), generator=g))
        cases.append(Case((x, k, torch.Generator().manual_seed(seed)), note=f"{k} clusters of very different sizes"))
    x = torch.rand(30, 3, generator=g)
    cases.append(Case((x, 30, torch.Generator().manual_seed(1)), note="k = N: every point becomes a centre"))
    memo: dict = {}
    x = _pairs()
    cases.append(_Linked((x, PAIRS + M, torch.Generator().manual_seed(DISTRIBUTION_SEED)), memo=memo,
                         role="distribution",
                         note=f"float64; {PAIRS} pairs of points far apart, the two points of {FAR} pairs 4 apart, of "
                              f"the others 1 apart; k = {PAIRS + M}: the last {M} draws must be proportional to D^2"))
    cases.append(_Linked((x, PAIRS + M, torch.Generator().manual_seed(DISTRIBUTION_SEED)), memo=memo, role="repeat",
                         note="the same points and a generator in the same state: the same centres"))
    x = torch.rand(1000, 2, generator=g)
    for n in range(3):
        seed = int(torch.randint(2**31, (1,), generator=g))
        cases.append(_Linked((x, 1, torch.Generator().manual_seed(seed)), memo=memo, role=f"first {n}",
                             note=f"k = 1 with generator seed {seed}: the first centre is a uniformly random point"))
    return cases


def _init_verify(case: Case, got: object, expected: torch.Tensor) -> str | None:
    x, k, _ = case.args
    if not isinstance(got, torch.Tensor) or got.shape != (k, x.shape[1]):
        return f"expected a tensor of shape ({k}, {x.shape[1]}), got {describe(got)}"
    if got.dtype != x.dtype:
        return f"wrong dtype: the centres are points of x, so they are {x.dtype} like x, got {got.dtype}"
    got = got.detach().cpu()
    matches = (got[:, None, :] == x[None]).all(-1)  # k x N
    if not matches.any(1).all():
        i = int((~matches.any(1)).nonzero()[0])
        return f"centre {i} is not one of the points of x (k-means++ picks data points)"
    rows = matches.float().argmax(1)
    if len(set(rows.tolist())) < k:
        return "two centres are the same point; a chosen point has distance 0 and must not be drawn again"
    role, memo = _linked(case)
    if role:
        memo[role] = got
    if role == "distribution":
        pair = rows % PAIRS
        both = torch.bincount(pair, minlength=PAIRS) == 2
        far = int(both[:FAR].sum())
        if not FAR_RANGE[0] <= far <= FAR_RANGE[1]:
            return (f"after one centre in each pair, your {M} further centres completed {far} of the {FAR} pairs "
                    f"whose points are 4 apart; drawing proportionally to D^2 (16 : 1 against the pairs 1 apart) "
                    f"completes {FAR_RANGE[0]} to {FAR_RANGE[1]} of them (about 90), proportionally to D about 61, "
                    f"the farthest point all {M}")
    elif role == "repeat":
        first = memo.get("distribution")
        if first is not None and not torch.equal(first, got):
            return ("the same x, k and a generator in the same state gave different centres: draw every random "
                    "number from `generator` (torch.randint(..., generator=generator), torch.multinomial(..., "
                    "generator=generator)), never from the global random state")
    elif role == "first 2":
        firsts = [memo.get(f"first {n}") for n in range(3)]
        if firsts[0] is not None and all(f is not None and torch.equal(f, firsts[0]) for f in firsts):
            return ("three different generator seeds gave the same first centre: draw it with "
                    "torch.randint(N, (1,), generator=generator)")
    elif k < x.shape[0] and x.shape[0] > 30:
        groups = torch.round(x[rows, 0] / 100).long()  # the clusters sit at x = 0, 100, 200, ...
        if len(set(groups.tolist())) < k:
            return ("several centres fell in the same cluster: draw each next centre with probability "
                    "proportional to the squared distance to the nearest centre chosen so far")
    return None


INIT = Exercise(
    "01.init", title="k-means++ seeding", reference=kmeans.kmeans_plus_plus, cases=_init_cases, verify=_init_verify,
    hint="first centre: x[torch.randint(N, (1,), generator=generator)]; then repeat: d2 = squared distance "
         "of every point to its nearest chosen centre, idx = torch.multinomial(d2, 1, generator=generator).",
    function="kmeans_plus_plus",
    off_limits=("sklearn.cluster.kmeans_plusplus", "sklearn.cluster._kmeans._kmeans_plusplus"),
    yourself="write the k-means++ seeding yourself",
)


# ---- 01.kmeans -------------------------------------------------------------------------------
def _separated(g: torch.Generator, k: int) -> torch.Tensor:
    """k tight blobs (spread 1e-3) far apart (at least 10), sorted by blob: x[:k] all lie in blob 0."""
    centres = torch.stack([torch.arange(k) * 10.0, torch.rand(k, generator=g) * 40], 1).double()
    sizes = [int(v) for v in torch.randint(8, 20, (k,), generator=g)]
    return torch.cat([c + 1e-3 * torch.randn(n, 2, generator=g, dtype=torch.float64) for c, n in zip(centres, sizes)])


def _kmeans_cases(g: torch.Generator) -> list[Case]:
    # float64, so that any correct way of computing distances gives the same labels (no near-ties).
    x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [9.9], [10.0]], dtype=torch.float64)
    init = torch.tensor([[0.0], [4.0], [6.0]], dtype=torch.float64)
    cases = [
        Case((x,), {"init": init}, note="1-D, three groups"),
        Case((x,), {"init": init, "max_iter": 1}, note="max_iter=1 stops after one update"),
    ]
    for scale in (1000.0, 0.001):
        x = _blobs(g, 150, 4, 2, spread=0.6, dtype=torch.float64) * scale
        cases.append(Case((x,), {"init": x[:4].clone()},
                          note=f"data scaled by {scale:g} (variance far from 1): the tolerance is relative to it"))
    memo: dict = {}
    x = _separated(g, 8)
    seed = int(torch.randint(2**31, (1,), generator=g))
    for role in ("default", "repeat"):
        cases.append(_Linked((x, 8), {"generator": torch.Generator().manual_seed(seed)}, memo=memo, role=role,
                             note="8 blobs far apart, the default init (k-means++ with the generator), tol and max_iter"
                             if role == "default"
                             else "the same call again, generator in the same state: the same labels"))
    for n, k, d in ((120, 3, 2), (300, 5, 3), (64, 4, 1)):
        x = _blobs(g, n, k, d, spread=0.4, dtype=torch.float64)
        init = x[torch.randperm(n, generator=g)[:k]].clone()
        cases.append(Case((x,), {"init": init, "tol": 1e-4}, note=f"random: {n} points, k={k}"))
    x = _blobs(g, 80, 3, 2, spread=0.5, dtype=torch.float64)
    cases.append(Case((x,), {"init": x[:3].clone(), "tol": 0.0, "max_iter": 300}, note="tol=0 runs to convergence"))
    x = _blobs(g, 60, 3, 2)
    cases.append(Case((x,), {"init": x[:3].clone()}, note="float32 input keeps float32 centres"))
    return cases


def _same_partition(expected: kmeans.KMeansResult, got: tuple | list) -> str | None:
    """The default init may draw its random numbers differently from the reference: compare the
    clustering up to a renumbering of the clusters."""
    labels, centres, inertia, n_iter = got
    k = expected.centres.shape[0]
    if not isinstance(centres, torch.Tensor) or centres.shape != expected.centres.shape:
        return f"centres: expected a tensor of shape {tuple(expected.centres.shape)}, got {describe(centres)}"
    pairs = torch.unique(torch.stack([labels.cpu(), expected.labels]), dim=1)
    if pairs.shape[1] != k or len(set(pairs[0].tolist())) != k:
        return (f"labels: the {k} far-apart blobs are not the {k} clusters (k-means++ puts one centre in each, "
                "then the loop converges to the blobs)")
    order = torch.empty(k, dtype=torch.long)
    order[pairs[0]] = pairs[1]          # your cluster j is the reference's cluster order[j]
    return compare_fields(expected, (expected.labels, centres.detach().cpu()[order.argsort()], inertia, n_iter),
                          ("labels", "centres", "inertia", "n_iter"), *ACCUMULATED)


def _kmeans_verify(case: Case, got: object, expected: kmeans.KMeansResult) -> str | None:
    names = ("labels", "centres", "inertia", "n_iter")
    if not isinstance(got, (tuple, list)) or len(got) != 4:
        return f"expected a tuple ({', '.join(names)}), got {describe(got)}"
    problem = _int_tensor(got[0], case.args[0].shape[0])
    if problem:
        return "labels: " + problem
    if isinstance(got[1], torch.Tensor) and got[1].dtype != case.args[0].dtype:
        return f"centres: wrong dtype: expected {case.args[0].dtype} like x, got {got[1].dtype}"
    role, memo = _linked(case)
    if role == "default":
        memo["default"] = got[0].detach().cpu().clone()
        return _same_partition(expected, got)
    if role == "repeat":
        first = memo.get("default")
        if first is not None and not torch.equal(first, got[0].cpu()):
            return ("labels: the same call with a generator in the same state numbered the clusters differently: "
                    "pass `generator` on to kmeans_plus_plus(x, k, generator)")
        return _same_partition(expected, got)
    return compare_fields(expected, got, names, *ACCUMULATED)


KMEANS = Exercise(
    "01.kmeans", title="Lloyd's loop with tolerance, max_iter and inertia", reference=kmeans.kmeans,
    cases=_kmeans_cases,
    verify=_kmeans_verify,
    hint="loop: labels = assign(x, centres); new = update_centres(x, labels, centres); shift = "
         "((new - centres)**2).sum(); "
         "centres = new; stop if shift <= tol * x.var(0, unbiased=False).mean(). After the loop assign once more "
         "and compute the inertia.",
    function="kmeans",
    off_limits=("sklearn.cluster.KMeans.fit", "sklearn.cluster.k_means", "sklearn.cluster._kmeans._kmeans_single_lloyd",
                "sklearn.cluster._kmeans._kmeans_single_elkan"),
    # the student's kmeans calls its own three, which may be the course's references after fallback
    allowed=("course_utils.ops.kmeans.assign", "course_utils.ops.kmeans.update_centres",
             "course_utils.ops.kmeans.kmeans_plus_plus"),
    yourself="write Lloyd's loop yourself (with your assign, update_centres and kmeans_plus_plus)",
)


# ---- 01.features -----------------------------------------------------------------------------
def _features_cases(g: torch.Generator) -> list[Case]:
    rgb = torch.rand(3, 4, 5, generator=g)
    grey = torch.rand(1, 3, 3, generator=g)
    cases = [
        Case((rgb, "intensity"), note="RGB 4 x 5 -> grey level"),
        Case((rgb, "rgb"), note="RGB colours, non-square 4 x 5"),
        Case((rgb,), note="the defaults: mode 'rgb', no position"),
        Case((rgb, "rgb", 2.0), note="RGB + position (weight 2), non-square 4 x 5"),
        Case((grey, "rgb"), note="a grey image as RGB (3 equal columns)"),
        Case((grey, "intensity", 0.5), note="grey + position"),
        Case((torch.rand(3, 1, 6, generator=g), "rgb", 1.0), note="a single row (H = 1): y = 0"),
        Case((torch.rand(1, 5, 1, generator=g), "intensity", 1.5), note="a single column (W = 1): x = 0"),
        Case((torch.rand(3, 2, 7, generator=g, dtype=torch.float64), "intensity", 1.0),
             note="a float64 image gives float64 features"),
    ]
    h, w = (int(v) for v in torch.randint(2, 30, (2,), generator=g))
    cases.append(Case((torch.rand(3, h, w, generator=g), "intensity", float(torch.rand(1, generator=g)) * 3),
                      note=f"random {h} x {w}"))
    from skimage.color import (
        rgb2gray,  # the grey level is scikit-image's (the lab says the check compares)
    )

    grey_level = torch.from_numpy(rgb2gray(rgb.permute(1, 2, 0).double().numpy())).float().reshape(-1, 1)
    assert torch.allclose(features.pixel_features(rgb, "intensity"), grey_level, atol=1e-5), "disagrees with rgb2gray"
    return cases


FEATURES = Exercise(
    "01.features", title="pixel features: intensity / RGB (+ x, y)", reference=features.pixel_features,
    cases=_features_cases,
    tolerance=SUMS,
    hint="rows are pixels in row-major order: image.reshape(C, -1).T; grey = 0.2125 R + 0.7154 G + 0.0721 B; "
         "x = col / (W - 1), y = row / (H - 1) from torch.meshgrid(..., indexing='ij').",
    function="pixel_features",
    off_limits=("skimage.color.rgb2gray",),  # and the course's pixel_features: the reference, off-limits by itself
    yourself="build the features yourself (the grey level with the BT.709 weights)",
)


# ---- 01.match and 01.miou --------------------------------------------------------------------
def _match_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([2, 2, 0, 0, 1, 1]), 3, 3), note="a permutation"),
        Case((torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 0, 0]), 3, 2), note="cluster 2 is empty -> class 0"),
        Case((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2, 2), note="a tie -> lowest class"),
        Case((torch.tensor([[0, 0, 1], [1, 1, 3]]), torch.tensor([[2, 2, 1], [1, 2, 2]]), 4, 3),
             note="2-D maps, k = 4 > 3 classes; cluster 2 is empty -> class 0 (not the most common class, 2)"),
    ]
    for n, k, c in ((100, 4, 3), (500, 6, 6)):
        target = torch.randint(c, (n,), generator=g)
        clusters = torch.where(torch.rand(n, generator=g) < 0.8, target % k, torch.randint(k, (n,), generator=g))
        cases.append(Case((clusters, target, k, c), note=f"random: {n} pixels, {k} clusters, {c} classes"))
    return cases


MATCH = Exercise(
    "01.match", title="map each cluster to its majority class", reference=segmentation.match_clusters,
    cases=_match_cases,
    hint="count pixels per (cluster, class) pair, e.g. torch.bincount(clusters * num_classes + target, "
         "minlength=k * num_classes).reshape(k, num_classes), then argmax over classes.",
    function="match_clusters",
    off_limits=("sklearn.metrics.confusion_matrix", "sklearn.metrics.cluster.contingency_matrix",
                "torchmetrics.functional.classification.multiclass_confusion_matrix"),
    yourself="count the (cluster, class) pairs yourself",
)


def _miou_reference(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """The mean IoU written out (the course's mean_iou is off-limits inside the student's, so also here)."""
    pred, target = pred.reshape(-1), target.reshape(-1)
    ious = []
    for c in range(num_classes):
        inter = int(((pred == c) & (target == c)).sum())
        union = int(((pred == c) | (target == c)).sum())
        if union > 0:
            ious.append(inter / union)
    return sum(ious) / len(ious) if ious else float("nan")


def _miou_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), 2), note="perfect"),
        Case((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 3),
             note="class 2 absent from both: left out of the mean"),
        Case((torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 0], [2, 1]]), 3), note="2-D maps"),
        Case((torch.tensor([0, 2, 2, 1, 1]), torch.tensor([0, 0, 1, 1, 1]), 3),
             note="class 2 occurs only in the prediction: IoU 0, counted in the mean"),
    ]
    for n, c in ((200, 3), (1000, 5)):
        target = torch.randint(c, (n,), generator=g)
        pred = torch.where(torch.rand(n, generator=g) < 0.7, target, torch.randint(c, (n,), generator=g))
        cases.append(Case((pred, target, c), note=f"random: {n} pixels, {c} classes"))
    return cases


MIOU = Exercise(
    "01.miou", title="mean intersection over union", reference=_miou_reference, cases=_miou_cases, tolerance=TIGHT,
    hint="for each class c: inter = ((pred == c) & (target == c)).sum(), union = ((pred == c) | (target == c)).sum(); "
         "average inter / union over the classes with union > 0; return a Python float.",
    function="mean_iou",
    # the course's segmentation metrics, a module apart from the reference (written out here)
    off_limits=("course_utils.evaluation.segmentation", *LIBRARY_IOU),
    yourself="compute the IoUs yourself",
)

EXERCISES = (ASSIGN, UPDATE, INIT, KMEANS, FEATURES, MATCH, MIOU)
