"""Lab 09 (context): the references against the libraries (``F.conv2d``, ``torchvision.ops.deform_conv2d`` value and
gradients, skimage/scipy for the boundary F-score), the mean field against the paper's update written another way,
the models, the recipes, the input checks, two probes (correct implementations that differ) per exercise (run by
``tests/test_probes.py``), and the speed of every check."""

from __future__ import annotations

import dataclasses
import time
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from _student import as_student
from probes.lab09 import PROBES

from course_utils.evaluation import boundary_f1, boundary_f1_per_image, class_boundaries
from course_utils.exercises import lab_exercises
from course_utils.grading import evaluate
from course_utils.models.segmentation.context import (
    DeepLab,
    DilatedBackbone,
    PSPNet,
    PyramidPooling,
)
from course_utils.models.segmentation.fcn import Backbone
from course_utils.ops import context, crf, deform_conv
from course_utils.ops.receptive_field import (
    empirical_receptive_field,
    layers_of,
    receptive_field,
)
from course_utils.training.recipes import context as recipes
from course_utils.training.recipes import segmentation as lab02

SEEDS = (0, 1, 2, 271828)


def cases(exercise_id, seed):
    ex = {e.id: e for e in lab_exercises("09")}[exercise_id]
    return ex.cases(torch.Generator().manual_seed(seed))


# ---- 09.dilated_conv: the reference is F.conv2d ----------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_dilated_conv_equals_f_conv2d(seed):
    g = torch.Generator().manual_seed(seed)
    k = (int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 5, (1,), generator=g)))
    d = (int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(1, 4, (1,), generator=g)))
    x = torch.randn(2, 3, 13, 11, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, *k, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    for padding in ("same", 0, 2, (1, 3)):
        with warnings.catch_warnings():          # torch: 'same' with an even span may copy the input (fine here)
            warnings.simplefilter("ignore", UserWarning)
            want = F.conv2d(x, w, b, padding=padding, dilation=d)
        got = context.dilated_conv2d(x, w, b, dilation=d, padding=padding)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-12), (k, d, padding)


def test_same_padding_keeps_the_size_and_puts_the_extra_zero_after():
    assert context.same_padding(3, 2) == (2, 2)
    assert context.same_padding(2, 3) == (1, 2)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 4, 4] = 1.0
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 1, 1] = 1.0                       # the tap 3 pixels below and right of the first one
    out = context.dilated_conv2d(x, w, dilation=3, padding="same")   # 1 zero before, 2 after: reads x[y + 2, x + 2]
    assert out.shape == x.shape and out[0, 0, 2, 2] == 1 and out.sum() == 1


# ---- 09.deform_conv: the reference equals torchvision's, value and gradients ---------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_deform_conv_equals_torchvision_with_gradients(seed):
    g = torch.Generator().manual_seed(seed)

    def ri(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    k, s, p, d = (ri(1, 3), ri(1, 3)), ri(1, 2), ri(0, 2), ri(1, 2)
    h, w = ri(d * (k[0] - 1) + 1, 10), ri(d * (k[1] - 1) + 1, 10)
    ho, wo = deform_conv.output_size(h, k[0], s, p, d), deform_conv.output_size(w, k[1], s, p, d)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    offset = torch.randn(2, 2 * k[0] * k[1], ho, wo, generator=g, dtype=torch.float64) * 4   # many leave the image
    weight = torch.randn(4, 3, *k, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    outs, grads = [], []
    for fn in (deform_conv.deform_conv2d, torchvision.ops.deform_conv2d):
        leaves = [t.clone().requires_grad_() for t in (x, offset, weight)]
        out = fn(*leaves, bias, stride=s, padding=p, dilation=d)
        probe = torch.rand(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        outs.append(out.detach())
        grads.append(torch.autograd.grad((out * probe).sum(), leaves))
    assert torch.allclose(outs[0], outs[1], atol=1e-12)
    for mine, theirs in zip(*grads):
        assert torch.allclose(mine, theirs, atol=1e-10)


def test_deform_conv_with_zero_offsets_is_the_plain_convolution():
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(1, 2, 7, 6, generator=g), torch.randn(3, 2, 3, 3, generator=g)
    out = deform_conv.deform_conv2d(x, torch.zeros(1, 18, 3, 2), w, stride=2, padding=1, dilation=2)
    assert torch.allclose(out, F.conv2d(x, w, stride=2, padding=1, dilation=2), atol=1e-5)


def test_every_deform_case_samples_strictly_between_pixels():
    """At whole-number positions the gradient of bilinear interpolation is a convention (each correct implementation
    may pick another one-sided derivative): no case puts a sample there."""
    for seed in SEEDS:
        for case in cases("09.deform_conv", seed):
            offset, weight = case.args[1:3]
            where = deform_conv.sampling_positions(offset.double(), tuple(weight.shape[-2:]), **case.kwargs)
            frac = where - where.floor()
            assert ((frac > 0.05) & (frac < 0.95)).all(), case.note


# ---- 09.pyramid_pool ---------------------------------------------------------------------------------
def test_pyramid_pooling_module_runs_its_pool_function():
    module = PyramidPooling(8, (1, 2, 3, 6)).eval()
    x = torch.randn(2, 8, 7, 9)
    assert module(x).shape == (2, 16, 7, 9)
    calls = []
    spy = PyramidPooling(8, (1, 2), pool=lambda x, convs, bins: calls.append(bins) or x).eval()
    spy(x)
    assert calls == [(1, 2)]


# ---- 09.mean_field -----------------------------------------------------------------------------------
def _naive_float64(unary, image, iterations, w_bilateral, theta_alpha, theta_beta, w_spatial, theta_gamma):
    """Algorithm 1, pixel pair by pixel pair, in float64."""
    c, h, w = unary.shape
    pix = [(r, col) for r in range(h) for col in range(w)]
    u = unary.double().reshape(c, -1)
    im = image.double().reshape(image.shape[0], -1)
    q = torch.softmax(-u, 0)
    k = torch.zeros(len(pix), len(pix), dtype=torch.float64)
    for i, (ri, ci) in enumerate(pix):
        for j, (rj, cj) in enumerate(pix):
            if i != j:
                dp = (ri - rj) ** 2 + (ci - cj) ** 2
                dc = float(((im[:, i] - im[:, j]) ** 2).sum())
                k[i, j] = (w_bilateral * np.exp(-dp / (2 * theta_alpha ** 2) - dc / (2 * theta_beta ** 2))
                           + w_spatial * np.exp(-dp / (2 * theta_gamma ** 2)))
    for _ in range(iterations):
        m = q @ k.T                                               # C x N: m[l, i] = sum_j k[i, j] q[l, j]
        potts = m.sum(0, keepdim=True) - m
        q = torch.softmax(-u - potts, 0)
    return q.reshape(c, h, w)


@pytest.mark.parametrize("seed", range(6))
def test_mean_field_is_algorithm_1(seed):
    g = torch.Generator().manual_seed(seed)
    c, h, w = 3, 4, 5
    unary = -torch.log_softmax(torch.randn(c, h, w, generator=g, dtype=torch.float64), 0)
    image = torch.rand(3, h, w, generator=g, dtype=torch.float64)
    params = {"w_bilateral": 2.5, "theta_alpha": 1.7, "theta_beta": 0.3, "w_spatial": 1.2, "theta_gamma": 0.9}
    got = crf.mean_field(unary, image, 4, **params)
    assert torch.allclose(got, _naive_float64(unary, image, 4, **params), atol=1e-12)
    assert torch.allclose(got.sum(0), torch.ones(h, w, dtype=torch.float64))


def test_dense_crf_smooths_a_noisy_prediction_inside_regions():
    image = torch.zeros(1, 3, 12, 12)
    image[0, :, :, 6:] = 1.0
    truth = (torch.arange(12) >= 6).long().expand(12, 12)
    logits = F.one_hot(truth, 2).permute(2, 0, 1).float()[None] * 2
    logits[0, :, 3, 2] = torch.tensor([0.0, 2.5])          # one wrong pixel in the left region
    q = crf.dense_crf(logits, image, iterations=5, w_bilateral=4.0, theta_alpha=3.0, theta_beta=0.2, w_spatial=2.0,
                      theta_gamma=1.0)
    assert torch.equal(q.argmax(1)[0], truth)


def test_mean_field_refuses_images_too_large_for_the_naive_kernel():
    with pytest.raises(ValueError, match="naive"):
        crf.mean_field(torch.zeros(2, 200, 200), torch.zeros(3, 200, 200))


# ---- boundary F-score: against skimage's boundaries and scipy's distance transform ----------------------
def _bf_skimage(pred, target, num_classes, tolerance):
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    scores = []
    for p, t in zip(pred.numpy(), target.numpy()):
        fs = []
        for c in range(num_classes):
            mp, mt = p == c, t == c
            if not mp.any() and not mt.any():
                continue
            bp = find_boundaries(mp.astype(int), connectivity=1, mode="inner") & mp
            bt = find_boundaries(mt.astype(int), connectivity=1, mode="inner") & mt
            if not bp.any() or not bt.any():
                fs.append(float(not bp.any() and not bt.any()))
                continue
            precision = (ndimage.distance_transform_edt(~bt)[bp] <= tolerance).mean()
            recall = (ndimage.distance_transform_edt(~bp)[bt] <= tolerance).mean()
            fs.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
        scores.append(np.mean(fs))
    return np.array(scores)


@pytest.mark.parametrize("tolerance", [0, 1, 1.5, 2, 3.2])
def test_boundary_f1_equals_skimage_and_scipy(tolerance):
    g = torch.Generator().manual_seed(int(tolerance * 10))
    for _ in range(8):
        c = int(torch.randint(2, 5, (1,), generator=g))
        h, w = int(torch.randint(1, 24, (1,), generator=g)), int(torch.randint(1, 24, (1,), generator=g))
        target = torch.randint(c, (3, (h + 3) // 4, (w + 3) // 4), generator=g)
        target = target.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, :h, :w]
        pred = target.clone()
        noise = torch.rand(target.shape, generator=g) < 0.15
        pred[noise] = torch.randint(c, (int(noise.sum()),), generator=g)
        mine = boundary_f1_per_image(pred, target, c, tolerance).numpy()
        assert np.allclose(mine, _bf_skimage(pred, target, c, tolerance), atol=1e-12)


def test_boundary_f1_edge_cases():
    t = torch.zeros(1, 6, 6, dtype=torch.long)
    t[0, 2:4, 2:4] = 1
    assert boundary_f1(t, t, 2) == 1.0
    shifted = torch.roll(t, 1, dims=2)
    assert boundary_f1(shifted, t, 2, tolerance=0) < 1.0 <= boundary_f1(shifted, t, 2, tolerance=1.0) + 1e-12
    assert boundary_f1(torch.zeros_like(t), torch.zeros_like(t), 2) == 1.0       # no boundary anywhere
    assert boundary_f1(torch.zeros_like(t), t, 2) == 0.0                        # the object missed entirely
    assert class_boundaries(t[0], 2).shape == (1, 2, 6, 6)


@pytest.mark.parametrize("call, error, match", [
    (lambda: boundary_f1(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), 2), TypeError, "integer"),
    (lambda: boundary_f1(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2), ValueError,
     "same shape"),
    (lambda: boundary_f1(torch.full((2, 3), 5), torch.zeros(2, 3, dtype=torch.long), 2), ValueError, r"\[0, 2\)"),
    (lambda: boundary_f1(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), 2, -1), ValueError,
     "tolerance"),
])
def test_boundary_f1_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- input checks of the references -------------------------------------------------------------------
X, W = torch.zeros(1, 2, 6, 6), torch.zeros(3, 2, 3, 3)


@pytest.mark.parametrize("call, error, match", [
    (lambda: context.dilated_conv2d(X[0], W), ValueError, "4-D"),
    (lambda: context.dilated_conv2d(X, W[:, :1]), ValueError, "C = 2"),
    (lambda: context.dilated_conv2d(X, W.double()), TypeError, "same dtype"),
    (lambda: context.dilated_conv2d(X, W, torch.zeros(2)), ValueError, "bias"),
    (lambda: context.dilated_conv2d(X, W, dilation=0), ValueError, "dilation"),
    (lambda: context.dilated_conv2d(X, W, padding="valid"), ValueError, "padding"),
    (lambda: context.dilated_conv2d(X, W, dilation=4), ValueError, "spans 9 x 9"),
    (lambda: context.pyramid_pool(X, [torch.nn.Identity()], (1, 2)), ValueError, "one layer per level"),
    (lambda: context.pyramid_pool(X, [], ()), ValueError, "bins"),
    (lambda: deform_conv.deform_conv2d(X, torch.zeros(1, 9, 4, 4), W), ValueError, "2\\*kh\\*kw"),
    (lambda: deform_conv.deform_conv2d(X, torch.zeros(1, 18, 4, 4).double(), W), TypeError, "offset"),
    (lambda: deform_conv.deform_conv2d(X, torch.zeros(1, 18, 4, 4), W, stride=0), ValueError, "stride"),
    (lambda: crf.mean_field(torch.zeros(2, 3, 3), torch.zeros(3, 4, 4)), ValueError, "same H x W"),
    (lambda: crf.mean_field(torch.full((2, 3, 3), float("inf")), torch.zeros(3, 3, 3)), ValueError, "finite"),
    (lambda: crf.mean_field(torch.zeros(2, 3, 3), torch.zeros(3, 3, 3), theta_beta=0.0), ValueError, "theta_beta"),
    (lambda: crf.mean_field(torch.zeros(2, 3, 3), torch.zeros(3, 3, 3), iterations=-1), ValueError, "iterations"),
    (lambda: crf.dense_crf(torch.zeros(2, 2, 3, 3), torch.zeros(1, 3, 3, 3)), ValueError, "agree"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- models -------------------------------------------------------------------------------------------
def test_dilated_backbone_keeps_lab02s_parameters_at_output_stride_8():
    plain, dilated = Backbone(8), DilatedBackbone(8)
    assert [p.shape for p in plain.parameters()] == [p.shape for p in dilated.parameters()]
    assert dilated(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 8, 8)
    rf_plain, rf_dilated = receptive_field(layers_of(plain)), receptive_field(layers_of(dilated))
    assert rf_dilated.jump == 8 and rf_plain.jump == 32
    r0, r1, _, _ = empirical_receptive_field(dilated, 3, 192)
    assert r1 - r0 + 1 == rf_dilated.size


@pytest.mark.parametrize("model", [lambda: DeepLab(6, 4, (1, 2)), lambda: PSPNet(6, 4, (1, 2, 3, 6))])
def test_models_map_any_image_size_to_scores(model):
    net = model().eval()
    for h, w in ((64, 64), (37, 50)):
        assert net(torch.zeros(2, 3, h, w)).shape == (2, 6, h, w)
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        net(torch.zeros(3, 8, 8))


def test_model_settings_are_checked():
    with pytest.raises(ValueError, match="rates"):
        DeepLab(6, 4, ())
    with pytest.raises(ValueError, match="divisible"):
        PSPNet(6, 5, (1, 2, 3))


def test_the_recipes_share_lab02s_scenes():
    for name, r in recipes.CONTEXT.items():
        f = lab02.FCN[name]
        assert (r.size, r.width, r.batch, r.n_val, r.pool) == (f.size, f.width, f.batch, f.n_val, f.pool), name
    assert recipes.CONTEXT["gpu"].target == 0.92
    with pytest.raises(TypeError, match="ContextRecipe"):
        recipes.build_deeplab(lab02.FCN["ci"], 6)
    assert set(recipes.crf_settings(recipes.CONTEXT["ci"])) == {"iterations", "w_bilateral", "theta_alpha",
                                                                "theta_beta", "w_spatial", "theta_gamma"}


def test_seconds_per_step_is_the_median_step_and_leaves_the_model_alone(monkeypatch):
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 4, 1)
    before = [p.detach().clone() for p in model.parameters()]
    clock = iter([0.0, 1.0, 10.0, 12.0, 20.0, 20.5, 30.0, 90.0, 100.0, 101.5])   # steps of 1, 2, 0.5, 60, 1.5 s
    monkeypatch.setattr(recipes, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    batches = lambda step: (torch.rand(2, 3, 8, 8), torch.randint(4, (2, 8, 8)))  # noqa: E731
    assert recipes.seconds_per_step(model, batches, steps=4, warmup=1) == 1.75   # 2, 0.5, 60, 1.5: the 60 s one ignored
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_trained_fcn8s_is_saved_then_loaded(tmp_path, capsys):
    from course_utils.config import Profile

    profile = Profile("ci", torch.device("cpu"))
    first = lab02.trained_fcn8s(profile, folder=tmp_path, progress=False)
    assert "training lab 02's FCN-8s (ci recipe) here" in capsys.readouterr().out
    again = lab02.trained_fcn8s(profile, folder=tmp_path, progress=False)
    assert "loaded from" in capsys.readouterr().out
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError, match="run lab 02"):
        lab02.trained_fcn8s(profile, folder=tmp_path / "empty", train_if_missing=False)
    with pytest.raises(ValueError, match="another recipe"):
        from course_utils.training.checkpoints import load_trained

        load_trained(lab02.fcn8s_path(profile, tmp_path), dataclasses.replace(lab02.FCN["ci"], steps=3),
                     lab02.build_fcn8s)


# ---- the checks: cases, probes, speed ----------------------------------------------------------------------
def test_the_cases_are_well_formed():
    for ex in lab_exercises("09"):
        for seed in SEEDS:
            generated = ex.cases(torch.Generator().manual_seed(seed))
            assert len(generated) >= 8 and all(c.note for c in generated)


def test_every_exercise_has_two_probes():   # they run in tests/test_probes.py
    count = {ex.id: 0 for ex in lab_exercises("09")}
    for p in PROBES:
        count[p.exercise] += 1
    assert all(n >= 2 for n in count.values()), count


@pytest.mark.parametrize("exercise", lab_exercises("09"), ids=lambda ex: ex.id)
def test_every_check_takes_under_a_second(exercise):
    student = as_student(exercise.reference, exercise.function)
    evaluate(exercise.id, student)            # imports and warm-up
    tick = time.process_time()   # CPU seconds (one torch thread): what the check costs, whatever the load
    result = evaluate(exercise.id, student, 271828)
    assert result.passed, result.message
    assert time.process_time() - tick < 1.0
