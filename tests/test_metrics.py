import math

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from course_utils.evaluation import confusion_matrix, match_clusters, mean_iou, per_class_iou, pixel_accuracy


def test_confusion_matrix_by_hand():
    pred = torch.tensor([0, 1, 1, 2, 2, 2])
    target = torch.tensor([0, 1, 2, 2, 2, 0])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)
    assert per_class_iou(cm).tolist() == pytest.approx([1 / 2, 1 / 2, 2 / 4])


@pytest.mark.parametrize("seed", range(5))
def test_mean_iou_agrees_with_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    c = 6
    target = torch.randint(c, (2, 20, 20), generator=g)
    pred = torch.where(torch.rand(2, 20, 20, generator=g) < 0.6, target, torch.randint(c, (2, 20, 20), generator=g))
    ours = mean_iou(pred, target, c)
    theirs = MulticlassJaccardIndex(num_classes=c, average="macro")(pred, target).item()
    assert ours == pytest.approx(theirs, abs=1e-6)
    acc = MulticlassAccuracy(num_classes=c, average="micro")(pred.flatten(), target.flatten()).item()
    assert pixel_accuracy(confusion_matrix(pred, target, c)) == pytest.approx(acc, abs=1e-6)


def test_absent_classes_and_ignore_index_match_torchmetrics():
    pred = torch.tensor([0, 0, 1, 1, 1])
    target = torch.tensor([0, 1, 1, 255, 1])
    # class 2 and 3 appear nowhere: no IoU, left out of the mean (torchmetrics does the same)
    iou = per_class_iou(confusion_matrix(pred, target, 4, ignore_index=255))
    assert math.isnan(iou[2]) and math.isnan(iou[3])
    ours = mean_iou(pred, target, 4, ignore_index=255)
    theirs = MulticlassJaccardIndex(num_classes=4, average="macro", ignore_index=255)(pred, target).item()
    assert ours == pytest.approx(theirs) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert math.isnan(mean_iou(pred, torch.full_like(target, 255), 4, ignore_index=255))


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"target has label 5; expected labels in \[0, 3\)"):
        confusion_matrix(torch.zeros(2, dtype=torch.long), torch.tensor([0, 5]), 3)
    with pytest.raises(ValueError, match=r"pred has label -1"):
        confusion_matrix(torch.tensor([0, -1]), torch.zeros(2, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="integer tensor"):
        mean_iou(torch.zeros(2), torch.zeros(2, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
        mean_iou([0, 1], torch.zeros(2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="positive int"):
        mean_iou(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="square"):
        pixel_accuracy(torch.zeros(2, 3))


def test_match_clusters():
    clusters = torch.tensor([2, 2, 0, 0, 0, 1])
    target = torch.tensor([1, 1, 0, 0, 2, 2])
    assert match_clusters(clusters, target, 4, 3).tolist() == [0, 2, 1, 0]
    with pytest.raises(ValueError, match=r"clusters must be in \[0, k=2\)"):
        match_clusters(clusters, target, 2, 3)
