"""course_utils.structures.boxes against torchvision.ops on fixed edge cases and seeded random boxes."""

import pytest
import torch
import torchvision.ops as tv

from course_utils.structures import box_area, box_convert, box_iou, clip_boxes_to_image


def random_boxes(n: int, seed: int, grid: float | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 40], 1)
    return (boxes / grid).round() * grid if grid else boxes


@pytest.mark.parametrize("seed", range(5))
def test_iou_equals_torchvision(seed):
    a, b = random_boxes(37, seed), random_boxes(23, seed + 100, grid=0.5)
    out = box_iou(a, b)
    assert out.dtype == torch.float32 and out.shape == (37, 23)
    assert torch.equal(out, tv.box_iou(a, b))
    assert torch.equal(box_iou(a.double(), b.double()), tv.box_iou(a.double(), b.double()))


def test_iou_edge_cases():
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    touching = torch.tensor([[10.0, 0.0, 20.0, 10.0]])
    inside = torch.tensor([[2.0, 2.0, 4.0, 7.0]])
    assert box_iou(same, same).item() == 1.0
    assert box_iou(same, touching).item() == 0.0
    assert box_iou(same, inside).item() == pytest.approx(10 / 100)
    point, line = torch.tensor([[3.0, 3.0, 3.0, 3.0]]), torch.tensor([[0.0, 5.0, 10.0, 5.0]])
    for degenerate in (point, line):
        assert box_iou(degenerate, degenerate).item() == 0.0          # torchvision: NaN
        assert box_iou(degenerate, same).item() == 0.0
    assert box_iou(torch.zeros(0, 4), same).shape == (0, 1)
    assert box_iou(same, torch.zeros(0, 4)).shape == (1, 0)
    assert box_iou(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 0)


def test_iou_errors_are_clear():
    with pytest.raises(TypeError, match="torch.Tensor"):
        box_iou([[0, 0, 1, 1]], torch.zeros(0, 4))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_iou(torch.zeros(3, 5), torch.zeros(0, 4))
    with pytest.raises(ValueError, match="x1 <= x2"):
        box_iou(torch.tensor([[5.0, 0.0, 1.0, 1.0]]), torch.zeros(0, 4))
    with pytest.raises(TypeError, match="floating-point"):
        box_iou(torch.zeros(2, 4, dtype=torch.long), torch.zeros(0, 4))


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_convert_round_trip_equals_torchvision(fmt):
    boxes = random_boxes(50, 3)
    there = box_convert(boxes, "xyxy", fmt)
    assert torch.equal(there, tv.box_convert(boxes, "xyxy", fmt))
    assert torch.equal(box_convert(there, fmt, "xyxy"), tv.box_convert(there, fmt, "xyxy"))
    assert box_convert(torch.zeros(0, 4), "xyxy", fmt).shape == (0, 4)
    with pytest.raises(ValueError, match="one of"):
        box_convert(boxes, "xyxy", "yxyx")


def test_area_and_clip():
    boxes = torch.cat([random_boxes(20, 4), torch.tensor([[-5.0, -3.0, 200.0, 3.0]])])
    assert torch.equal(box_area(boxes), tv.box_area(boxes))
    assert torch.equal(clip_boxes_to_image(boxes, (64, 80)), tv.clip_boxes_to_image(boxes, (64, 80)))
    assert box_area(torch.zeros(0, 4)).shape == (0,)
    with pytest.raises(TypeError, match=r"pair \(H, W\)"):
        clip_boxes_to_image(boxes, 64)
