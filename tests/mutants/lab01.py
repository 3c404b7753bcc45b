"""Lab 01 (k-means): wrong implementations a student plausibly writes, and shortcuts through libraries."""

from __future__ import annotations

import torch
from _student import student_module

from course_utils.evaluation import segmentation as _segmentation
from course_utils.ops import kmeans as _kmeans
from mutants import Collection

MUTANTS = Collection()
CHEATS = Collection()

km = student_module(_kmeans)          # the course's functions as a student's copies
seg = student_module(_segmentation)


# ---- 01.assign ---------------------------------------------------------------------------------
def _d2(x, centres):
    return ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)


@MUTANTS.add("01.assign", "argmax instead of argmin: the farthest centre")
def assign_argmax(x, centres):
    return _d2(x, centres).argmax(1)


@MUTANTS.add("01.assign", "L1 (city-block) distance instead of squared Euclidean")
def assign_l1(x, centres):
    return (x[:, None, :] - centres[None, :, :]).abs().sum(-1).argmin(1)


@MUTANTS.add("01.assign", "labels as int32 (the docstring promises int64)")
def assign_int32(x, centres):
    return _d2(x, centres).argmin(1).int()


@MUTANTS.add("01.assign", "only the first feature is compared")
def assign_first_feature(x, centres):
    return (x[:, None, 0] - centres[None, :, 0]).abs().argmin(1)


@MUTANTS.add("01.assign", "ties go to the highest index (argmin over the reversed centres)")
def assign_ties_last(x, centres):
    k = centres.shape[0]
    return (k - 1) - _d2(x, centres.flip(0)).argmin(1)


@MUTANTS.add("01.assign", "a single point squeezes away its dimension (shape () instead of (1,))")
def assign_squeeze(x, centres):
    return _d2(x, centres).argmin(1).squeeze()


# ---- 01.update ---------------------------------------------------------------------------------
@MUTANTS.add("01.update", "an empty cluster's centre becomes 0 (sum / clamped count)")
def update_empty_zero(x, labels, centres):
    k = centres.shape[0]
    sums = torch.zeros_like(centres).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k).to(x.dtype)[:, None]
    return sums / counts.clamp(min=1)


@MUTANTS.add("01.update", "an empty cluster moves to the mean of all points")
def update_empty_global_mean(x, labels, centres):
    k = centres.shape[0]
    sums = torch.zeros_like(centres).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k).to(x.dtype)[:, None]
    return torch.where(counts > 0, sums / counts.clamp(min=1), x.mean(0))


@MUTANTS.add("01.update", "median instead of mean")
def update_median(x, labels, centres):
    new = centres.clone()
    for j in range(centres.shape[0]):
        if (labels == j).any():
            new[j] = x[labels == j].median(0).values
    return new


@MUTANTS.add("01.update", "writes the new centres into the old tensor (in place)")
def update_in_place(x, labels, centres):
    for j in range(centres.shape[0]):
        if (labels == j).any():
            centres[j] = x[labels == j].mean(0)
    return centres


@MUTANTS.add("01.update", "counts in float32 sums: float64 points come back as float32 centres")
def update_float32(x, labels, centres):
    k = centres.shape[0]
    sums = torch.zeros(centres.shape).index_add_(0, labels, x.float())
    counts = torch.bincount(labels, minlength=k).float()[:, None]
    return torch.where(counts > 0, sums / counts.clamp(min=1), centres.float())


# ---- 01.init (k-means++) -------------------------------------------------------------------------
def _plus_plus(x, k, generator, weight=lambda d2: d2, first=None, use_generator=True):
    g = generator if use_generator else None
    i = torch.randint(x.shape[0], (1,), generator=g).item() if first is None else first
    centres = [x[i]]
    d2 = ((x - x[i]) ** 2).sum(1)
    for _ in range(1, k):
        i = torch.multinomial(weight(d2).double(), 1, generator=g).item()
        centres.append(x[i])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return torch.stack(centres)


@MUTANTS.add("01.init", "the farthest point each time instead of a draw proportional to D^2")
def init_farthest(x, k, generator=None):
    i = torch.randint(x.shape[0], (1,), generator=generator).item()
    centres = [x[i]]
    d2 = ((x - x[i]) ** 2).sum(1)
    for _ in range(1, k):
        i = int(d2.argmax())
        centres.append(x[i])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return torch.stack(centres)


@MUTANTS.add("01.init", "draws proportional to D (the distance), not D^2")
def init_proportional_to_d(x, k, generator=None):
    return _plus_plus(x, k, generator, weight=lambda d2: d2.sqrt())


@MUTANTS.add("01.init", "uniformly random distinct points (randperm), not k-means++")
def init_uniform(x, k, generator=None):
    return x[torch.randperm(x.shape[0], generator=generator)[:k]]


@MUTANTS.add("01.init", "the global RNG instead of the generator: runs do not repeat")
def init_global_rng(x, k, generator=None):
    return _plus_plus(x, k, generator, use_generator=False)


@MUTANTS.add("01.init", "the first centre is always x[0]")
def init_first_is_x0(x, k, generator=None):
    return _plus_plus(x, k, generator, first=0)


@MUTANTS.add("01.init", "D is the distance to the last chosen centre, not to the nearest one")
def init_last_centre_only(x, k, generator=None):
    i = torch.randint(x.shape[0], (1,), generator=generator).item()
    chosen, centres = [i], [x[i]]
    for _ in range(1, k):
        d2 = ((x - x[i]) ** 2).sum(1)
        d2[chosen] = 0
        i = torch.multinomial(d2.double(), 1, generator=generator).item()
        chosen.append(i)
        centres.append(x[i])
    return torch.stack(centres)


@MUTANTS.add("01.init", "float64 centres for a float32 x (the weights' dtype leaks into the result)")
def init_float64(x, k, generator=None):
    return _plus_plus(x, k, generator).double()


# ---- 01.kmeans -----------------------------------------------------------------------------------
def _loop(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None, *, relative=True, final=True,
          count_final=False, sqrt_inertia=False, default_init=None, pass_generator=True, strict=False,
          centres_dtype=None):
    if isinstance(init, str):
        if default_init == "first":
            centres = x[:k].clone()
        else:
            centres = km.kmeans_plus_plus(x, k, generator if pass_generator else None)
    else:
        centres = init.to(x)
    threshold = tol * x.var(0, unbiased=False).mean() if relative else tol
    n_iter = 0
    labels = None
    for _ in range(max_iter):
        n_iter += 1
        labels = km.assign(x, centres)
        new = km.update_centres(x, labels, centres)
        shift = ((new - centres) ** 2).sum()
        centres = new
        if shift < threshold if strict else shift <= threshold:
            break
    if final or labels is None:
        labels = km.assign(x, centres)
    d2 = ((x - centres[labels]) ** 2).sum(1)
    inertia = (d2.sqrt() if sqrt_inertia else d2).sum().item()
    if centres_dtype is not None:
        centres = centres.to(centres_dtype)
    return labels, centres, inertia, n_iter + (1 if count_final else 0)


@MUTANTS.add("01.kmeans", "the tolerance is absolute (shift <= tol), not relative to the data's variance")
def kmeans_absolute_tol(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, relative=False)


@MUTANTS.add("01.kmeans", "no final assignment: labels of the last iteration, before its update")
def kmeans_no_final_assign(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, final=False)


@MUTANTS.add("01.kmeans", "n_iter counts the final assignment too (one too many)")
def kmeans_n_iter_plus_one(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, count_final=True)


@MUTANTS.add("01.kmeans", "inertia is the sum of distances, not squared distances")
def kmeans_sqrt_inertia(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, sqrt_inertia=True)


@MUTANTS.add("01.kmeans", "the default init takes the first k points instead of k-means++")
def kmeans_default_first_k(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, default_init="first")


@MUTANTS.add("01.kmeans", "k-means++ is called without the generator: runs do not repeat")
def kmeans_drops_generator(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, pass_generator=False)


@MUTANTS.add("01.kmeans", "stops on shift < threshold (strict): tol=0 never stops before max_iter")
def kmeans_strict_stop(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, strict=True)


@MUTANTS.add("01.kmeans", "centres come back as float64 for a float32 x")
def kmeans_float64_centres(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    return _loop(x, k, init, max_iter, tol, generator, centres_dtype=torch.float64)


# ---- 01.features ---------------------------------------------------------------------------------
_GREY = (0.2125, 0.7154, 0.0721)


def _features(image, mode="rgb", position_weight=0.0, *, order="row", grey="luma", norm="w-1", xy="xy",
              default_mode=None):
    c, h, w = image.shape
    if mode == "intensity":
        if c == 1:
            g = image[0]
        elif grey == "mean":
            g = image.mean(0)
        else:
            g = sum(wt * image[i] for i, wt in enumerate(_GREY))
        feats = g.reshape(-1, 1) if order == "row" else g.T.reshape(-1, 1)
    else:
        im = image.expand(3, h, w)
        feats = im.reshape(3, -1).T if order == "row" else im.transpose(1, 2).reshape(3, -1).T
    if position_weight > 0:
        if norm == "w-1":
            ys, xs = torch.arange(h) / max(h - 1, 1), torch.arange(w) / max(w - 1, 1)
        elif norm == "w":
            ys, xs = torch.arange(h) / h, torch.arange(w) / w
        else:  # "w-1, no guard"
            ys, xs = torch.arange(h) / (h - 1), torch.arange(w) / (w - 1)
        yy, xx = torch.meshgrid(ys.to(image.dtype), xs.to(image.dtype), indexing="ij")
        if order != "row":
            yy, xx = yy.T, xx.T
        cols = [xx.reshape(-1, 1), yy.reshape(-1, 1)] if xy == "xy" else [yy.reshape(-1, 1), xx.reshape(-1, 1)]
        feats = torch.cat([feats] + [position_weight * col for col in cols], 1)
    return feats


@MUTANTS.add("01.features", "pixels in column-major order (transposes H and W)")
def features_column_major(image, mode="rgb", position_weight=0.0):
    return _features(image, mode, position_weight, order="col")


@MUTANTS.add("01.features", "grey level = mean of R, G, B instead of the BT.709 weights")
def features_mean_grey(image, mode="rgb", position_weight=0.0):
    return _features(image, mode, position_weight, grey="mean")


@MUTANTS.add("01.features", "position normalised by W and H instead of W - 1 and H - 1")
def features_divide_by_w(image, mode="rgb", position_weight=0.0):
    return _features(image, mode, position_weight, norm="w")


@MUTANTS.add("01.features", "(y, x) columns instead of (x, y)")
def features_yx(image, mode="rgb", position_weight=0.0):
    return _features(image, mode, position_weight, xy="yx")


@MUTANTS.add("01.features", "no guard for a single row or column: 0 / 0 = nan")
def features_no_guard(image, mode="rgb", position_weight=0.0):
    return _features(image, mode, position_weight, norm="raw")


@MUTANTS.add("01.features", "the default mode is 'intensity' instead of 'rgb'")
def features_default_intensity(image, mode="intensity", position_weight=0.0):
    return _features(image, mode, position_weight)


@MUTANTS.add("01.features", "a grey image in 'rgb' mode stays one column")
def features_grey_one_column(image, mode="rgb", position_weight=0.0):
    if mode == "rgb" and image.shape[0] == 1:
        return _features(image, "intensity", position_weight)
    return _features(image, mode, position_weight)


# ---- 01.match ------------------------------------------------------------------------------------
@MUTANTS.add("01.match", "pairs encoded as cluster * k + class (k instead of num_classes)")
def match_wrong_stride(clusters, target, k, num_classes):
    counts = torch.bincount(clusters.reshape(-1) * k + target.reshape(-1), minlength=k * num_classes)
    return counts[:k * num_classes].reshape(k, num_classes).argmax(1)


@MUTANTS.add("01.match", "ties go to the highest class")
def match_ties_highest(clusters, target, k, num_classes):
    counts = torch.bincount(clusters.reshape(-1) * num_classes + target.reshape(-1), minlength=k * num_classes)
    counts = counts.reshape(k, num_classes)
    return (num_classes - 1) - counts.flip(1).argmax(1)


@MUTANTS.add("01.match", "bincount without minlength: wrong size when the last cluster or class is absent")
def match_no_minlength(clusters, target, k, num_classes):
    counts = torch.bincount(clusters.reshape(-1) * num_classes + target.reshape(-1))
    return counts.reshape(k, -1).argmax(1)


@MUTANTS.add("01.match", "an empty cluster maps to the most common class overall, not to class 0")
def match_empty_majority(clusters, target, k, num_classes):
    counts = torch.bincount(clusters.reshape(-1) * num_classes + target.reshape(-1),
                            minlength=k * num_classes).reshape(k, num_classes)
    overall = torch.bincount(target.reshape(-1), minlength=num_classes).argmax()
    return torch.where(counts.sum(1) > 0, counts.argmax(1), overall)


@MUTANTS.add("01.match", "mapping as int32")
def match_int32(clusters, target, k, num_classes):
    counts = torch.bincount(clusters.reshape(-1) * num_classes + target.reshape(-1), minlength=k * num_classes)
    return counts.reshape(k, num_classes).argmax(1).int()


# ---- 01.miou -------------------------------------------------------------------------------------
def _ious(pred, target, num_classes):
    out = []
    for c in range(num_classes):
        inter = ((pred == c) & (target == c)).sum().item()
        union = ((pred == c) | (target == c)).sum().item()
        out.append((inter, union, bool((target == c).any())))
    return out


@MUTANTS.add("01.miou", "a class absent from both counts as IoU 0 in the mean")
def miou_absent_zero(pred, target, num_classes):
    ious = [i / u if u else 0.0 for i, u, _ in _ious(pred, target, num_classes)]
    return sum(ious) / len(ious)


@MUTANTS.add("01.miou", "averages over the classes of the target only (a class only predicted is left out)")
def miou_target_classes(pred, target, num_classes):
    ious = [i / u for i, u, present in _ious(pred, target, num_classes) if present]
    return sum(ious) / len(ious)


@MUTANTS.add("01.miou", "returns a 0-d tensor, not a Python float")
def miou_tensor(pred, target, num_classes):
    ious = [i / u for i, u, _ in _ious(pred, target, num_classes) if u]
    return torch.tensor(ious, dtype=torch.float64).mean()


@MUTANTS.add("01.miou", "the pixel accuracy instead of the mean IoU")
def miou_accuracy(pred, target, num_classes):
    return (pred == target).double().mean().item()


@MUTANTS.add("01.miou", "union = |P| + |T| (the intersection counted twice)")
def miou_union_double(pred, target, num_classes):
    ious = []
    for c in range(num_classes):
        p, t = pred == c, target == c
        union = (p.sum() + t.sum()).item()
        if union:
            ious.append((p & t).sum().item() / union)
    return sum(ious) / len(ious)


# ---- shortcuts through libraries ------------------------------------------------------------------
@CHEATS.add("01.kmeans", "scikit-learn's KMeans")
def kmeans_sklearn(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    from sklearn.cluster import KMeans

    centres = init.numpy() if isinstance(init, torch.Tensor) else "k-means++"
    model = KMeans(k or len(centres), init=centres, n_init=1, max_iter=max_iter, tol=tol,
                   algorithm="lloyd").fit(x.numpy())
    return (torch.from_numpy(model.labels_).long(), torch.from_numpy(model.cluster_centers_).to(x.dtype),
            float(model.inertia_), int(model.n_iter_))


@CHEATS.add("01.assign", "scikit-learn's pairwise_distances_argmin")
def assign_sklearn(x, centres):
    from sklearn.metrics import pairwise_distances_argmin

    return torch.from_numpy(pairwise_distances_argmin(x.numpy(), centres.numpy())).long()


@CHEATS.add("01.init", "scikit-learn's kmeans_plusplus")
def init_sklearn(x, k, generator=None):
    from sklearn.cluster import kmeans_plusplus

    centres, _ = kmeans_plusplus(x.numpy(), k, random_state=0)
    return torch.from_numpy(centres)


@CHEATS.add("01.features", "the course's own pixel_features")
def features_course(image, mode="rgb", position_weight=0.0):
    from course_utils.ops.features import pixel_features

    return pixel_features(image, mode, position_weight)


@CHEATS.add("01.miou", "torchmetrics' multiclass_jaccard_index")
def miou_torchmetrics(pred, target, num_classes):
    from torchmetrics.functional.classification import multiclass_jaccard_index

    return float(multiclass_jaccard_index(pred, target, num_classes, average="macro"))


@CHEATS.add("01.miou", "the course's mean_iou")
def miou_course(pred, target, num_classes):
    return _segmentation.mean_iou(pred, target, num_classes)


# ---- shortcuts through the course's own code (its private helpers too) ------------------------------
@CHEATS.add("01.assign", "the course's private kmeans._nearest (what its assign runs)")
def assign_course_private(x, centres):
    from course_utils.ops import kmeans

    return kmeans._nearest(x.T.contiguous(), centres)[0]


@CHEATS.add("01.update", "the course's private kmeans._update")
def update_course_private(x, labels, centres):
    from course_utils.ops import kmeans

    return kmeans._update(x.T.contiguous(), labels, centres)


@CHEATS.add("01.update", "the course's private kmeans._unrolled_step (the loop's step compiled for large inputs)")
def update_course_unrolled(x, labels, centres):
    from course_utils.ops import kmeans

    _, _, sums, counts = kmeans._unrolled_step(x.T.contiguous(), centres)
    return torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)


@CHEATS.add("01.match", "the course's confusion_matrix, then the best class of each cluster")
def match_course_confusion(clusters, target, k, num_classes):
    n = max(k, num_classes)
    return _segmentation.confusion_matrix(target, clusters, n)[:k, :num_classes].argmax(1)   # cm[cluster, class]


@CHEATS.add("01.miou", "the course's per_class_iou and mean_over_present")
def miou_course_parts(pred, target, num_classes):
    cm = torch.bincount(target.reshape(-1) * num_classes + pred.reshape(-1), minlength=num_classes ** 2)
    return _segmentation.mean_over_present(_segmentation.per_class_iou(cm.reshape(num_classes, num_classes)))


@CHEATS.add("01.assign", "scikit-learn's pairwise_distances_argmin_min (the function behind pairwise_distances_argmin)")
def assign_sklearn_argmin_min(x, centres):
    from sklearn.metrics import pairwise_distances_argmin_min

    return torch.from_numpy(pairwise_distances_argmin_min(x.numpy(), centres.numpy())[0]).long()


@CHEATS.add("01.kmeans", "scikit-learn's private _kmeans_single_lloyd (what KMeans.fit runs)")
def kmeans_sklearn_private(x, k=None, init="k-means++", max_iter=100, tol=1e-4, generator=None):
    import numpy as np
    from sklearn.cluster._kmeans import _kmeans_single_lloyd

    centres = init.numpy() if isinstance(init, torch.Tensor) else x[:k].numpy()
    labels, inertia, centres, n_iter = _kmeans_single_lloyd(x.numpy(), np.ones(len(x), dtype=x.numpy().dtype),
                                                            centres, max_iter, tol=tol)
    return torch.from_numpy(labels).long(), torch.from_numpy(centres), float(inertia), int(n_iter)
