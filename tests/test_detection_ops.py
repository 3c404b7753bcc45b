"""Lab-05 references against torchvision: anchors, box coding, matching, NMS, RoI pool/align, proposals."""

import math

import pytest
import torch
import torchvision.ops as tv
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from course_utils.ops import anchors, box_coder, matcher, proposals, roi_ops
from course_utils.ops.nms import batched_nms, nms


def random_boxes(n: int, g: torch.Generator, span: float = 60.0, grid: float | None = None) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * span
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * span / 2 + 0.5], 1)
    return (boxes / grid).round() * grid if grid else boxes


# ---- anchors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes, ratios", [(((32,),), ((1.0,),)),
                                           (((16, 32), (24, 48, 96)), ((0.5, 1.0, 2.0), (1.0, 1.7))),
                                           (((12, 20, 33),), ((0.4, 1.3),))])
def test_anchors_equal_anchor_generator(sizes, ratios):
    image_size = (100, 130)
    grids = [(13, 17), (7, 9)][:len(sizes)]
    images = ImageList(torch.zeros(2, 3, *image_size), [image_size, (90, 120)])
    features = [torch.zeros(2, 4, *g) for g in grids]
    expected = AnchorGenerator(sizes, ratios)(images, features)[0]
    out = anchors.anchors_for_image(image_size, grids, sizes, ratios)
    assert out.dtype == torch.float32 and torch.equal(out, expected)
    # the first cell's anchors are the rounded base anchors; the next cell is one stride to the right
    base = anchors.base_anchors(sizes[0], ratios[0])
    assert torch.equal(out[:len(base)], base)
    assert torch.equal(out[len(base):2 * len(base)] - base,
                       torch.tensor([[130 // grids[0][1], 0] * 2] * len(base)).float())


def test_anchor_errors():
    with pytest.raises(TypeError, match="sequence"):
        anchors.base_anchors(32, (1.0,))
    with pytest.raises(ValueError, match="> 0"):
        anchors.base_anchors((32,), (0.0,))


# ---- box coder -------------------------------------------------------------------------------
@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coder_equals_torchvision(weights):
    g = torch.Generator().manual_seed(1)
    boxes, refs = random_boxes(40, g), random_boxes(40, g)
    coder = BoxCoder(weights)
    codes = box_coder.encode(boxes, refs, weights)
    assert torch.equal(codes, coder.encode_single(boxes, refs))
    torch.testing.assert_close(box_coder.decode(codes, refs, weights), boxes, rtol=1e-5, atol=1e-4)
    wild = torch.randn(40, 12, generator=g) * 4           # 3 boxes per reference; large dw, dh are clamped
    wild[0, 2] = 100.0
    out = box_coder.decode(wild, refs, weights)
    assert out.shape == (40, 12) and torch.isfinite(out).all()
    assert torch.equal(out, coder.decode_single(wild, refs))
    assert box_coder.decode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert math.isclose(box_coder.BBOX_XFORM_CLIP, math.log(1000 / 16))


# ---- matcher ---------------------------------------------------------------------------------
@pytest.mark.parametrize("high, low, allow", [(0.7, 0.3, True), (0.5, 0.5, False), (0.7, 0.3, False)])
def test_matcher_equals_torchvision(high, low, allow):
    g = torch.Generator().manual_seed(2)
    for _ in range(10):
        iou = (torch.rand(6, 80, generator=g) * 10).round() / 10          # ties included
        assert torch.equal(matcher.match(iou, high, low, allow), Matcher(high, low, allow)(iou))
    iou = torch.tensor([[0.1, 0.2, 0.7], [0.05, 0.4, 0.1]])
    out = matcher.match(iou, 0.7, 0.3, True)
    assert out.tolist() == [-1, 1, 0] and out.dtype == torch.int64        # box 1 keeps its best (0.4)
    assert matcher.match(torch.zeros(0, 5), 0.7, 0.3).tolist() == [-1] * 5
    assert matcher.match(torch.zeros(3, 0), 0.7, 0.3).shape == (0,)
    with pytest.raises(ValueError, match="<="):
        matcher.match(iou, 0.3, 0.7)


# ---- NMS -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_nms_equals_torchvision_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(300, g, grid=1.0)
    scores = (torch.rand(300, generator=g) * 5).round() / 5               # many equal scores
    idxs = torch.randint(0, 4, (300,), generator=g)
    for t in (0.3, 0.5, 0.7):
        keep = nms(boxes, scores, t)
        assert keep.dtype == torch.int64 and torch.equal(keep, tv.nms(boxes, scores, t))
        assert torch.equal(batched_nms(boxes, scores, idxs, t), tv.batched_nms(boxes, scores, idxs, t))
    many = random_boxes(1200, g)                                          # torchvision's per-class path
    s, i = (torch.rand(1200, generator=g) * 5).round() / 5, torch.randint(0, 3, (1200,), generator=g)
    assert torch.equal(batched_nms(many, s, i, 0.5), tv.batched_nms(many, s, i, 0.5))


def test_nms_edge_cases():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).dtype == torch.int64
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).shape == (0,)
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    assert nms(box, torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0]   # ties: the first one wins
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]] * 2)
    assert nms(point, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    with pytest.raises(ValueError, match="one score per box"):
        nms(box, torch.zeros(2), 0.5)


# ---- RoI pooling / RoIAlign ------------------------------------------------------------------
def rois(n: int, g: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 90 - 10
    out = torch.cat([torch.randint(0, 2, (n, 1), generator=g).float(), xy, xy + torch.rand(n, 2, generator=g) * 50], 1)
    out[:3, 3:] = out[:3, 1:3]                                             # zero-size boxes
    out[3:8, 1:] = out[3:8, 1:].floor() + 0.5                              # halves: C rounding
    return out


@pytest.mark.parametrize("output_size", [7, (3, 5), (1, 1)])
def test_roi_ops_equal_torchvision(output_size):
    g = torch.Generator().manual_seed(3)
    x, r = torch.randn(2, 3, 20, 25, generator=g), rois(30, g)
    for scale in (0.25, 0.5, 1.0):
        out = roi_ops.roi_pool(x, r, output_size, scale)
        assert out.dtype == torch.float32 and torch.equal(out, tv.roi_pool(x, r, output_size, scale))
        for sampling in (-1, 0, 2):
            for aligned in (False, True):
                torch.testing.assert_close(roi_ops.roi_align(x, r, output_size, scale, sampling, aligned),
                                           tv.roi_align(x, r, output_size, scale, sampling, aligned))


def test_roi_ops_box_lists_and_errors():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 16, 16, generator=g)
    per_image = [random_boxes(3, g, 40), random_boxes(0, g), ]
    torch.testing.assert_close(roi_ops.roi_align(x, per_image, 4, 0.25, 2), tv.roi_align(x, per_image, 4, 0.25, 2))
    assert roi_ops.roi_pool(x, torch.zeros(0, 5), 7).shape == (0, 4, 7, 7)
    with pytest.raises(ValueError, match="K x 5"):
        roi_ops.roi_pool(x, torch.zeros(3, 4), 7)
    with pytest.raises(ValueError, match="batch indices"):
        roi_ops.roi_align(x, torch.tensor([[2.0, 0, 0, 4, 4]]), 7)


# ---- proposals -------------------------------------------------------------------------------
def test_selective_search_finds_the_objects():
    from course_utils.data import SceneConfig, render_scenes

    scenes = render_scenes(SceneConfig(size=64, max_things=2), range(3), seed=5)
    gts = [scenes.target(i)["boxes"] for i in range(3)]
    found = [proposals.selective_search(scenes.images[i], scales=(50, 150)) for i in range(3)]
    for boxes in found:
        assert boxes.dtype == torch.float32 and boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 5
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 64).all() and len(boxes.unique(dim=0)) == len(boxes)
    assert proposals.proposal_recall(found, gts) >= 0.6
    assert proposals.proposal_recall(gts[0], gts[0]) == 1.0
    assert proposals.proposal_recall(torch.zeros(0, 4), gts[0]) == 0.0
    assert proposals.proposal_recall(torch.zeros(0, 4), torch.zeros(0, 4)) == 1.0
    with pytest.raises(ValueError, match="3 x H x W"):
        proposals.selective_search(torch.rand(1, 8, 8))
