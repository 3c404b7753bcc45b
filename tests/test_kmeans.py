import warnings

import numpy as np
import pytest
import torch
from skimage.color import rgb2gray
from sklearn.cluster import KMeans

from course_utils.ops import kmeans as kmeans_module
from course_utils.ops.features import pixel_features
from course_utils.ops.kmeans import assign, kmeans, kmeans_plus_plus, update_centres


def blobs(n=300, k=4, d=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(k, d, generator=g) * 10
    return (centres[torch.randint(k, (n,), generator=g)] + 0.5 * torch.randn(n, d, generator=g)).to(dtype)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_kmeans_matches_scikit_learn_from_the_same_init(k):
    x = blobs()
    init = kmeans_plus_plus(x, k, torch.Generator().manual_seed(1))
    ours = kmeans(x, init=init, tol=1e-6, max_iter=300)
    theirs = KMeans(k, init=init.numpy(), n_init=1, tol=1e-6, max_iter=300, algorithm="lloyd").fit(x.numpy())
    assert ours.inertia == pytest.approx(theirs.inertia_, rel=1e-6)
    assert np.allclose(np.sort(ours.centres.numpy(), 0), np.sort(theirs.cluster_centers_, 0), atol=1e-6)
    assert (ours.labels.numpy() == theirs.labels_).all()


def test_kmeans_is_exactly_the_specified_loop():
    """The reference must give exactly the loop of the lab: labels, centres, inertia and iterations."""
    for seed in range(20):
        x = blobs(n=200 + seed, k=5, d=2, seed=seed)
        init = x[:5].clone()
        centres, plain_iter = init.clone(), 0
        for _ in range(100):
            plain_iter += 1
            labels = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
            new = update_centres(x, labels, centres)
            shift = ((new - centres) ** 2).sum()
            centres = new
            if shift <= 1e-4 * x.var(0, unbiased=False).mean():
                break
        labels = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        result = kmeans(x, init=init)
        assert torch.equal(result.labels, labels) and torch.allclose(result.centres, centres)
        assert result.n_iter == plain_iter
        assert result.inertia == pytest.approx(((x - centres[labels]) ** 2).sum().item())


def test_kmeans_plus_plus_spreads_centres():
    x = torch.cat([torch.zeros(500, 2), torch.full((3, 2), 100.0), torch.full((3, 2), -100.0)])
    x += 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    centres = kmeans_plus_plus(x, 3, torch.Generator().manual_seed(0))
    assert sorted(torch.round(centres[:, 0] / 100).tolist()) == [-1, 0, 1]
    same = kmeans_plus_plus(x, 3, torch.Generator().manual_seed(0))
    assert torch.equal(centres, same)


def test_update_keeps_empty_clusters():
    x = torch.tensor([[0.0], [2.0]])
    new = update_centres(x, torch.tensor([0, 0]), torch.tensor([[5.0], [7.0]]))
    assert new.tolist() == [[1.0], [7.0]]


def test_kmeans_on_float32_images_keeps_dtype():
    result = kmeans(blobs(dtype=torch.float32), 3, generator=torch.Generator().manual_seed(0))
    assert result.centres.dtype == torch.float32 and result.labels.dtype == torch.int64


def test_kmeans_bad_input():
    x = blobs(n=5)
    with pytest.raises(ValueError, match="k=6 is larger than the number of points N=5"):
        kmeans(x, 6)
    with pytest.raises(ValueError, match="x must be 2-D"):
        kmeans(x[0], 2)
    with pytest.raises(TypeError, match="floating-point"):
        kmeans(x.long(), 2)
    with pytest.raises(ValueError, match="no points"):
        kmeans(x[:0], 2)
    with pytest.raises(ValueError, match="D=3 columns"):
        assign(x, torch.zeros(2, 4, dtype=x.dtype))
    with pytest.raises(ValueError, match="init must be 'k-means\\+\\+' or a K x D tensor"):
        kmeans(x, 2, init="random")
    with pytest.raises(ValueError, match="k is required"):
        kmeans(x)
    with pytest.raises(ValueError, match=r"labels must be in \[0, K=2\)"):
        update_centres(x, torch.tensor([0, 1, 2, 0, 0]), x[:2])


def test_pixel_features_against_scikit_image():
    image = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grey = pixel_features(image, "intensity")
    assert torch.allclose(grey[:, 0], torch.from_numpy(rgb2gray(image.permute(1, 2, 0).numpy())).reshape(-1))
    feats = pixel_features(image.float(), "rgb", position_weight=2.0)
    assert feats.shape == (35, 5)
    assert feats[6, 3:].tolist() == [2.0, 0.0] and feats[34, 3:].tolist() == [2.0, 2.0]
    assert torch.equal(feats[8, :3], image.float()[:, 1, 1])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        pixel_features(torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="mode must be"):
        pixel_features(torch.rand(3, 4, 4), "hsv")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_compiled_loop_gives_the_loops_result(dtype, monkeypatch):
    """Large inputs on CPU run Lloyd's loop compiled: the same labels, iterations, centres and inertia."""
    x = blobs(n=2000, k=5, d=3, seed=3, dtype=dtype)
    init = x[:5].clone()
    monkeypatch.setattr(kmeans_module, "COMPILE_MIN_WORK", float("inf"))
    plain = kmeans(x, init=init, tol=0.0, max_iter=50)
    monkeypatch.setattr(kmeans_module, "COMPILE_MIN_WORK", 1)
    compiled, calls = kmeans_module._compiled_step(), []
    monkeypatch.setattr(kmeans_module, "_compiled_step", lambda: lambda *a: calls.append(1) or compiled(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed compile warns: here it must not fail
        fast = kmeans(x, init=init, tol=0.0, max_iter=50)
    assert len(calls) == plain.n_iter + 1  # every step and the final assignment ran compiled
    assert torch.equal(fast.labels, plain.labels) and fast.n_iter == plain.n_iter
    assert fast.centres.dtype == dtype and torch.allclose(fast.centres, plain.centres, atol=1e-5)
    assert fast.inertia == pytest.approx(plain.inertia, rel=1e-5)


def test_without_a_working_compiler_it_says_so_once_and_runs_the_two_steps(monkeypatch):
    def broken():
        def step(xt, centres):
            raise RuntimeError("no C++ compiler (made up by the test)")
        return step

    monkeypatch.setattr(kmeans_module, "_compiled_step", broken)
    monkeypatch.setattr(kmeans_module, "_compile_failed", False)
    x = blobs(n=400, k=4, d=2, seed=1)
    plain = kmeans(x, init=x[:4].clone())
    monkeypatch.setattr(kmeans_module, "COMPILE_MIN_WORK", 1)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no C.. compiler"):
        first = kmeans(x, init=x[:4].clone())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = kmeans(x, init=x[:4].clone())  # no second warning: it does not try again
    for result in (first, second):
        assert torch.equal(result.labels, plain.labels) and torch.equal(result.centres, plain.centres)


def test_small_inputs_are_not_compiled(monkeypatch):
    def never():
        raise AssertionError("a small input was compiled")

    monkeypatch.setattr(kmeans_module, "_compiled_step", never)
    x = blobs(n=300, k=4, d=3)
    assert 300 * 4 < kmeans_module.COMPILE_MIN_WORK
    kmeans(x, 4, generator=torch.Generator().manual_seed(0))
