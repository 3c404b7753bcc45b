"""Lab 02: references against torch / torchmetrics, receptive fields, the FCN and U-Net models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _student import as_student
from torch import nn

from course_utils.evaluation import segmentation as metrics
from course_utils.grading import evaluate, get_exercise, lab_exercises
from course_utils.models import FCN, Backbone, BilinearUpsample, UNet, bilinear_kernel
from course_utils.ops import dense, losses
from course_utils.ops.receptive_field import empirical_receptive_field, layers_of, receptive_field


@pytest.mark.parametrize("exercise", [e.id for e in lab_exercises("02")])
def test_each_reference_passes_its_own_check(exercise):
    for seed in (0, 7):
        result = evaluate(exercise, as_student(get_exercise(exercise).reference), seed)
        assert result.passed, result.message


def test_lab02_has_the_exercises_the_notebook_uses():
    assert [e.id for e in lab_exercises("02")] == [
        "02.convolutionize", "02.receptive_field", "02.pixel_ce", "02.confusion", "02.iou"]


def test_wrong_answers_fail_their_checks():
    def ce_without_ignore(logits, target, ignore_index=255):
        logp = logits.log_softmax(1)
        return -logp.gather(1, target.clamp(max=logits.shape[1] - 1)[:, None]).mean()

    def rf_forgets_dilation(layers):
        r, j, s = 1, 1, 0.0
        for k, stride, p, _dilation in layers:
            r, s, j = r + (k - 1) * j, s + ((k - 1) / 2 - p) * j, j * stride
        return r, j, s

    def iou_averages_nan_as_zero(cm):
        acc, iou, _ = as_student(get_exercise("02.iou").reference)(cm)
        return acc, iou, float(iou.nan_to_num(0).mean())

    def transposed_weights(linear, c, k):
        conv = as_student(dense.convolutionize)(linear, c, k)
        with torch.no_grad():
            conv.weight.copy_(conv.weight.transpose(-1, -2).clone())
        return conv

    for exercise, fn in [("02.pixel_ce", ce_without_ignore), ("02.receptive_field", rf_forgets_dilation),
                         ("02.iou", iou_averages_nan_as_zero), ("02.convolutionize", transposed_weights)]:
        result = evaluate(exercise, fn)
        assert result.status == "failed", (exercise, result.message)


# ---- metrics references against torchmetrics --------------------------------------------------
def test_confusion_matrix_and_iou_match_torchmetrics():
    from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

    g = torch.Generator().manual_seed(0)
    c = 6
    target = torch.randint(c - 1, (4, 16, 16), generator=g)          # class 5 never occurs in the target
    pred = torch.where(torch.rand(4, 16, 16, generator=g) < 0.7, target, torch.randint(c - 1, (4, 16, 16), generator=g))
    target[torch.rand(4, 16, 16, generator=g) < 0.1] = 255
    cm = metrics.confusion_matrix(pred, target, c, ignore_index=255)
    expected = MulticlassConfusionMatrix(c, ignore_index=255)(pred, target)
    assert torch.equal(cm, expected.long())

    acc, iou, miou = get_exercise("02.iou").reference(cm)
    jaccard = MulticlassJaccardIndex(c, average=None, ignore_index=255)(pred, target).double()
    present = ~iou.isnan()
    assert present.tolist() == [True] * 5 + [False]
    torch.testing.assert_close(iou[present], jaccard[present])
    macro = MulticlassJaccardIndex(c, average="macro", ignore_index=255)(pred, target)
    assert miou == pytest.approx(float(macro), abs=1e-6)
    keep = target != 255
    assert acc == pytest.approx(float((pred[keep] == target[keep]).double().mean()))


# ---- losses -----------------------------------------------------------------------------------
def test_pixel_cross_entropy_matches_a_log_softmax_by_hand_and_rejects_bad_input():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 5, 6, generator=g)
    target = torch.randint(4, (2, 5, 6), generator=g)
    target[0, :2] = 255
    valid = target != 255
    by_hand = -logits.log_softmax(1).gather(1, target.where(valid, 0)[:, None])[:, 0][valid].mean()
    torch.testing.assert_close(losses.pixel_cross_entropy(logits, target), by_hand)
    with pytest.raises(ValueError, match="target must be 3-D"):
        losses.pixel_cross_entropy(logits, target[0])
    with pytest.raises(ValueError, match="B x H x W"):
        losses.pixel_cross_entropy(logits, target[:, :4])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        losses.pixel_cross_entropy(logits, target.where(valid, 9))
    with pytest.raises(TypeError, match="floating"):
        losses.pixel_cross_entropy(logits.long(), target)


def test_dice_loss_is_low_for_a_confident_right_answer_and_weighs_rare_classes():
    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, :2, :2] = 1                                              # a rare class: 4 of 1024 pixels
    right = 20 * F.one_hot(target, 2).permute(0, 3, 1, 2).float() - 10
    assert losses.bce_dice_loss(right, target) < 0.01
    ignore_rare = right.clone()
    ignore_rare[:, 1] = -10                                            # never predicts the rare class
    ignore_rare[:, 0] = 10
    ce_gap = F.cross_entropy(ignore_rare, target) - F.cross_entropy(right, target)
    dice_gap = losses.bce_dice_loss(ignore_rare, target) - losses.bce_dice_loss(right, target)
    assert dice_gap > 5 * ce_gap > 0                                   # Dice punishes missing a rare class


# ---- receptive fields -------------------------------------------------------------------------
def _net(layers: list[tuple[int, int, int, int]], pool_every: int = 0) -> nn.Sequential:
    modules: list[nn.Module] = []
    for n, (k, s, p, d) in enumerate(layers):
        if pool_every and n % pool_every == pool_every - 1 and d == 1:
            modules.append(nn.MaxPool2d(k, s, p) if p <= k // 2 else nn.Conv2d(2, 2, k, s, p, d))
        else:
            modules.append(nn.Conv2d(2, 2, k, s, p, d))
        modules.append(nn.ReLU())
    return nn.Sequential(nn.Conv2d(3, 2, 1), *modules)


@pytest.mark.parametrize("seed", range(6))
def test_receptive_field_equals_the_gradient_measured_one(seed):
    g = torch.Generator().manual_seed(seed)
    layers = [tuple(int(torch.randint(lo, hi + 1, (1,), generator=g)) for lo, hi in ((1, 5), (1, 2), (0, 2), (1, 3)))
              for _ in range(int(torch.randint(1, 6, (1,), generator=g)))]
    net = _net(layers, pool_every=2)
    rf = receptive_field(layers_of(net))
    size = rf.size + 2 * rf.jump * 4 + 8                               # room around the centre output
    out_h = net(torch.zeros(1, 3, size, size)).shape[-1]
    i = out_h // 2
    first, last, cfirst, clast = empirical_receptive_field(net, 3, size, (i, i))
    assert last - first + 1 == rf.size and clast - cfirst + 1 == rf.size
    assert first == rf.start + i * rf.jump - (rf.size - 1) / 2


def test_lecture_rule_and_the_fcn_backbone():
    assert receptive_field([(3, 1, 1, 1)] * 5).size == 11              # 1 + 2L
    backbone = Backbone(width=1)
    rf = receptive_field(layers_of(backbone))
    assert rf.jump == 32
    size = 2 * rf.size
    first, last, _, _ = empirical_receptive_field(nn.Sequential(*backbone.stages), 3, size, (size // 64, size // 64))
    assert last - first + 1 == rf.size


def test_receptive_field_rejects_bad_layers():
    with pytest.raises(ValueError, match="4 ints"):
        receptive_field([(3, 1, 1)])
    with pytest.raises(ValueError, match="stride"):
        receptive_field([(3, 0, 1, 1)])
    with pytest.raises(TypeError, match="list"):
        receptive_field("3x3")


# ---- convolutionize and sliding windows ------------------------------------------------------
def test_convolutionized_classifier_equals_the_sliding_window():
    torch.manual_seed(0)
    patch, c = 7, 3
    features = nn.Sequential(nn.Conv2d(c, 4, 3), nn.ReLU())            # 7 x 7 patch -> 4 x 5 x 5 (no padding)
    linear = nn.Linear(4 * 5 * 5, 6)
    classifier = nn.Sequential(features, nn.Flatten(), linear)
    dense_net = nn.Sequential(features, dense.convolutionize(linear, 4, 5))
    image = torch.rand(c, 9, 11)
    with torch.no_grad():
        slow = dense.sliding_window(classifier, image, patch)            # 6 x 9 x 11, one forward per pixel
        fast = dense_net(F.pad(image[None], [patch // 2] * 4))[0]
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="in_features"):
        dense.convolutionize(linear, 3, patch)


# ---- models -----------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [2, 3, 4, 8, 16])
def test_bilinear_init_equals_interpolate(factor):
    x = torch.rand(2, 3, 6, 7)
    up = BilinearUpsample(3, factor)
    expected = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = up(x)
        assert out.shape == expected.shape
        f = factor
        torch.testing.assert_close(out[..., f:-f, f:-f], expected[..., f:-f, f:-f])   # zero padding aside
        padded = up(F.pad(x, (1, 1, 1, 1), mode="replicate"))[..., f:-f, f:-f]        # and with edges replicated
        torch.testing.assert_close(padded, expected)
    assert up.weight.requires_grad and not BilinearUpsample(3, factor, learnable=False).weight.requires_grad
    assert bilinear_kernel(3, factor)[0, 1].abs().sum() == 0                            # channels do not mix


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_output_shapes(variant):
    model = FCN(5, variant, width=4).eval()
    for h, w in ((64, 64), (37, 50)):
        assert model(torch.rand(2, 3, h, w)).shape == (2, 5, h, w)


def test_unet_shapes_and_bad_input():
    model = UNet(6, width=4, depth=3).eval()
    assert model(torch.rand(1, 3, 30, 45)).shape == (1, 6, 30, 45)
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        model(torch.rand(3, 30, 45))
    with pytest.raises(ValueError, match="variant"):
        FCN(4, "4s")
    with pytest.raises(ValueError, match="num_classes"):
        UNet(1)


def test_random_patches_are_the_windows_around_their_labelled_centres():
    g = torch.Generator().manual_seed(0)
    images, masks = torch.rand(2, 3, 10, 12, generator=g), torch.randint(5, (2, 10, 12), generator=g)
    patches, labels = dense.random_patches(images, masks, 5, 50, torch.Generator().manual_seed(1))
    assert patches.shape == (50, 3, 5, 5) and labels.shape == (50,)
    padded = F.pad(images, [2] * 4)
    for p, label in zip(patches, labels):   # each patch occurs in the padded images with its label at the centre
        hits = [(b, y, x) for b in range(2) for y in range(10) for x in range(12)
                if torch.equal(padded[b, :, y:y + 5, x:x + 5], p)]
        assert hits and masks[hits[0]] == label
    with pytest.raises(ValueError, match="odd"):
        dense.random_patches(images, masks, 4, 3)


def test_segmentation_scores_and_predict():
    from course_utils.evaluation import predict, segmentation_scores

    class Oracle(nn.Module):
        """Scores that make the prediction equal to channel 0 of the image, rounded (a known answer)."""

        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return F.one_hot(x[:, 0].round().long(), 3).permute(0, 3, 1, 2).float() + self.dummy

    masks = torch.randint(3, (5, 8, 8), generator=torch.Generator().manual_seed(0))
    images = masks[:, None].float().expand(5, 3, 8, 8)
    model = Oracle().train()
    assert torch.equal(predict(model, images, batch_size=2), masks) and model.training
    assert segmentation_scores(model, images, masks, 3, batch_size=2) == {"pixel accuracy": 1.0, "mIoU": 1.0}
    wrong = masks.clone()
    wrong[0] = (wrong[0] + 1) % 3
    scores = segmentation_scores(model, images, wrong, 3)
    cm = metrics.confusion_matrix(masks, wrong, 3)
    assert scores["pixel accuracy"] == pytest.approx(metrics.pixel_accuracy(cm))
    assert scores["mIoU"] == pytest.approx(metrics.mean_iou(masks, wrong, 3))
    with pytest.raises(ValueError, match="N x H x W"):
        segmentation_scores(model, images, masks[0], 3)
