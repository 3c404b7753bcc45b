"""Lab 01 exercises: k-means intensity clustering."""

from __future__ import annotations

import torch

from course_utils.evaluation import segmentation
from course_utils.grading.compare import compare_fields, describe
from course_utils.grading.exercise import ACCUMULATED, SUMS, TIGHT, Case, Exercise
from course_utils.ops import features, kmeans


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
    if got.is_floating_point() or got.dtype == torch.bool:
        return f"labels must be an integer tensor (e.g. int64), got {got.dtype}"
    return None


# ---- 01.assign -------------------------------------------------------------------------------
def _assign_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([[0.0], [0.4], [0.6], [1.0]]), torch.tensor([[0.0], [1.0]])), note="1-D, two centres"),
        Case((torch.tensor([[0.0, 0.0], [3.0, 3.0]]), torch.tensor([[3.0, 3.0], [0.0, 0.0], [9.0, 9.0]])),
             note="2-D, points on the centres"),
        Case((torch.rand(1, 3, generator=g), torch.rand(4, 3, generator=g)), note="a single point"),
    ]
    for n, k, d in ((50, 3, 1), (200, 5, 3), (37, 8, 5)):
        cases.append(Case((_blobs(g, n, k, d), torch.rand(k, d, generator=g) * 4), note=f"random: {n} points, {k} centres"))
    return cases


def _assign_verify(case: Case, got: object, expected: torch.Tensor) -> str | None:
    x, centres = case.args
    problem = _int_tensor(got, x.shape[0])
    if problem:
        return problem
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
    "01.assign", "nearest centre for each point", kmeans.assign, _assign_cases, verify=_assign_verify,
    hint="compute the N x K matrix of squared distances (broadcast x[:, None, :] - centres[None, :, :]) "
         "and take argmin over the centres (dim=1).",
    function="assign",
)


# ---- 01.update -------------------------------------------------------------------------------
def _update_cases(g: torch.Generator) -> list[Case]:
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
    cases = [
        Case((x, torch.tensor([0, 0, 1]), torch.tensor([[1.0, 1.0], [5.0, 5.0]])), note="two clusters"),
        Case((x, torch.tensor([0, 0, 0]), torch.tensor([[1.0, 1.0], [5.0, 5.0], [7.0, 7.0]])),
             note="two empty clusters keep their centres"),
    ]
    for n, k, d in ((40, 3, 2), (100, 6, 3), (5, 8, 1)):
        x = _blobs(g, n, k, d)
        cases.append(Case((x, torch.randint(k, (n,), generator=g), torch.rand(k, d, generator=g)),
                          note=f"random: {n} points, {k} clusters" + (", some empty" if n < k else "")))
    return cases


UPDATE = Exercise(
    "01.update", "centre = mean of its points; an empty cluster keeps its centre", kmeans.update_centres,
    _update_cases,
    hint="sum the points of each cluster (index_add_ or a loop over k), divide by the counts "
         "(torch.bincount(labels, minlength=k)), and keep the old centre where the count is 0.",
    function="update_centres",
)


# ---- 01.init (k-means++) ---------------------------------------------------------------------
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
    return cases


def _init_verify(case: Case, got: object, expected: torch.Tensor) -> str | None:
    x, k, _ = case.args
    if not isinstance(got, torch.Tensor) or got.shape != (k, x.shape[1]):
        return f"expected a tensor of shape ({k}, {x.shape[1]}), got {describe(got)}"
    matches = (got.detach().cpu()[:, None, :] == x[None]).all(-1)  # k x N
    if not matches.any(1).all():
        i = int((~matches.any(1)).nonzero()[0])
        return f"centre {i} is not one of the points of x (k-means++ picks data points)"
    rows = matches.float().argmax(1)
    if len(set(rows.tolist())) < k:
        return "two centres are the same point; a chosen point has distance 0 and must not be drawn again"
    if k < x.shape[0]:
        groups = torch.round(x[rows, 0] / 100).long()  # the clusters sit at x = 0, 100, 200, ...
        if len(set(groups.tolist())) < k:
            return ("several centres fell in the same cluster: draw each next centre with probability "
                    "proportional to the squared distance to the nearest centre chosen so far")
    return None


INIT = Exercise(
    "01.init", "k-means++ seeding", kmeans.kmeans_plus_plus, _init_cases, verify=_init_verify,
    hint="first centre: x[torch.randint(N, (1,), generator=generator)]; then repeat: d2 = squared distance "
         "of every point to its nearest chosen centre, idx = torch.multinomial(d2, 1, generator=generator).",
    function="kmeans_plus_plus",
)


# ---- 01.kmeans -------------------------------------------------------------------------------
def _kmeans_cases(g: torch.Generator) -> list[Case]:
    # float64, so that any correct way of computing distances gives the same labels (no near-ties).
    x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [9.9], [10.0]], dtype=torch.float64)
    init = torch.tensor([[0.0], [4.0], [6.0]], dtype=torch.float64)
    cases = [
        Case((x,), {"init": init}, note="1-D, three groups"),
        Case((x,), {"init": init, "max_iter": 1}, note="max_iter=1 stops after one update"),
    ]
    for n, k, d in ((120, 3, 2), (300, 5, 3), (64, 4, 1)):
        x = _blobs(g, n, k, d, spread=0.4, dtype=torch.float64)
        init = x[torch.randperm(n, generator=g)[:k]].clone()
        cases.append(Case((x,), {"init": init, "tol": 1e-4}, note=f"random: {n} points, k={k}"))
    x = _blobs(g, 80, 3, 2, spread=0.5, dtype=torch.float64)
    cases.append(Case((x,), {"init": x[:3].clone(), "tol": 0.0, "max_iter": 300}, note="tol=0 runs to convergence"))
    x = _blobs(g, 60, 3, 2)
    cases.append(Case((x,), {"init": x[:3].clone()}, note="float32 input keeps float32 centres"))
    return cases


def _kmeans_verify(case: Case, got: object, expected: kmeans.KMeansResult) -> str | None:
    names = ("labels", "centres", "inertia", "n_iter")
    if isinstance(got, (tuple, list)) and len(got) == 4:
        problem = _int_tensor(got[0], case.args[0].shape[0])
        if problem:
            return "labels: " + problem
    return compare_fields(expected, got, names, *ACCUMULATED)


KMEANS = Exercise(
    "01.kmeans", "Lloyd's loop with tolerance, max_iter and inertia", kmeans.kmeans, _kmeans_cases,
    verify=_kmeans_verify,
    hint="loop: labels = assign(x, centres); new = update_centres(x, labels, centres); shift = ((new - centres)**2).sum(); "
         "centres = new; stop if shift <= tol * x.var(0, unbiased=False).mean(). After the loop assign once more "
         "and compute the inertia.",
    function="kmeans",
)


# ---- 01.features -----------------------------------------------------------------------------
def _features_reference(image: torch.Tensor, mode: str = "rgb", position_weight: float = 0.0) -> torch.Tensor:
    """The course's pixel_features, with the grey level checked against scikit-image."""
    out = features.pixel_features(image, mode, position_weight)
    if mode == "intensity" and image.shape[0] == 3:
        from skimage.color import rgb2gray

        grey = torch.from_numpy(rgb2gray(image.permute(1, 2, 0).double().numpy())).float()
        assert torch.allclose(out[:, 0], grey.reshape(-1), atol=1e-5), "reference disagrees with rgb2gray"
    return out


def _features_cases(g: torch.Generator) -> list[Case]:
    rgb = torch.rand(3, 4, 5, generator=g)
    grey = torch.rand(1, 3, 3, generator=g)
    cases = [
        Case((rgb, "intensity"), note="RGB -> grey level"),
        Case((rgb, "rgb"), note="RGB colours"),
        Case((rgb, "rgb", 2.0), note="RGB + position (weight 2)"),
        Case((grey, "rgb"), note="a grey image as RGB"),
        Case((grey, "intensity", 0.5), note="grey + position"),
        Case((torch.rand(3, 1, 6, generator=g), "rgb", 1.0), note="a single row"),
    ]
    h, w = (int(v) for v in torch.randint(2, 30, (2,), generator=g))
    cases.append(Case((torch.rand(3, h, w, generator=g), "intensity", float(torch.rand(1, generator=g)) * 3),
                      note=f"random {h} x {w}"))
    return cases


FEATURES = Exercise(
    "01.features", "pixel features: intensity / RGB (+ x, y)", _features_reference, _features_cases,
    tolerance=SUMS,
    hint="rows are pixels in row-major order: image.reshape(C, -1).T; grey = 0.2125 R + 0.7154 G + 0.0721 B; "
         "x = col / (W - 1), y = row / (H - 1) from torch.meshgrid(..., indexing='ij').",
    function="pixel_features",
)


# ---- 01.match and 01.miou --------------------------------------------------------------------
def _match_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([2, 2, 0, 0, 1, 1]), 3, 3), note="a permutation"),
        Case((torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 0, 0]), 3, 2), note="cluster 2 is empty -> class 0"),
        Case((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2, 2), note="a tie -> lowest class"),
    ]
    for n, k, c in ((100, 4, 3), (500, 6, 6)):
        target = torch.randint(c, (n,), generator=g)
        clusters = torch.where(torch.rand(n, generator=g) < 0.8, target % k, torch.randint(k, (n,), generator=g))
        cases.append(Case((clusters, target, k, c), note=f"random: {n} pixels, {k} clusters, {c} classes"))
    return cases


MATCH = Exercise(
    "01.match", "map each cluster to its majority class", segmentation.match_clusters, _match_cases,
    hint="count pixels per (cluster, class) pair, e.g. torch.bincount(clusters * num_classes + target, "
         "minlength=k * num_classes).reshape(k, num_classes), then argmax over classes.",
    function="match_clusters",
)


def _miou_reference(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    return segmentation.mean_iou(pred, target, num_classes)


def _miou_cases(g: torch.Generator) -> list[Case]:
    cases = [
        Case((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), 2), note="perfect"),
        Case((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 3),
             note="class 2 absent from both: left out of the mean"),
        Case((torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 0], [2, 1]]), 3), note="2-D maps"),
    ]
    for n, c in ((200, 3), (1000, 5)):
        target = torch.randint(c, (n,), generator=g)
        pred = torch.where(torch.rand(n, generator=g) < 0.7, target, torch.randint(c, (n,), generator=g))
        cases.append(Case((pred, target, c), note=f"random: {n} pixels, {c} classes"))
    return cases


MIOU = Exercise(
    "01.miou", "mean intersection over union", _miou_reference, _miou_cases, tolerance=TIGHT,
    hint="for each class c: inter = ((pred == c) & (target == c)).sum(), union = ((pred == c) | (target == c)).sum(); "
         "average inter / union over the classes with union > 0; return a Python float.",
    function="mean_iou",
)

EXERCISES = (ASSIGN, UPDATE, INIT, KMEANS, FEATURES, MATCH, MIOU)
