"""Lab 05's pieces inside the small Faster R-CNN: with the course's references as the "student's" anchors,
box coder, matcher, RoIAlign and NMS, the assembled model gives torchvision's losses, training step and
detections; each piece is called where torchvision calls its own; ``pieces=None`` is torchvision's model."""

import pytest
import torch
from _detector_steps import losses as losses_of
from _detector_steps import sgd_step
from _student import as_student
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign

from course_utils.data import SceneConfig, render_scenes
from course_utils.exercises.lab05 import anchors_reference
from course_utils.grading import fallback, whose
from course_utils.models.detection import Pieces, choose_pieces, detect, small_faster_rcnn
from course_utils.models.detection.parts import (
    PieceAnchorGenerator,
    PieceBoxCoder,
    PieceMatcher,
    PieceRoIAlign,
    PieceRPN,
)
from course_utils.ops import box_coder, matcher, nms, roi_ops

TINY = {"width": 8, "depth": 1, "representation": 32}
REFERENCES = {"anchors": anchors_reference, "encode": box_coder.encode, "decode": box_coder.decode,
              "match": matcher.match, "roi_align": roi_ops.roi_align, "nms": nms.nms,
              "batched_nms": nms.batched_nms}
STUDENT = Pieces(**{name: as_student(fn) for name, fn in REFERENCES.items()})


@pytest.fixture(scope="module")
def scenes():
    s = render_scenes(SceneConfig(size=64, max_things=3), range(2), seed=3)
    return list(s.images), [s.target(i) for i in range(2)]


def _pair(pieces, fpn=False):
    torch.manual_seed(0)
    settings = {**TINY, "fpn": fpn, "anchor_sizes": (8, 16, 32) if fpn else (12, 24, 48)}
    plain = small_faster_rcnn(4, 64, **settings)
    ours = small_faster_rcnn(4, 64, pieces=pieces, **settings)
    ours.load_state_dict(plain.state_dict())
    return plain, ours


@pytest.mark.parametrize("fpn", [False, True])
def test_reference_pieces_give_torchvision_losses_step_and_detections(scenes, fpn):
    images, targets = scenes
    plain, ours = _pair(STUDENT, fpn)
    assert type(plain.rpn) is RegionProposalNetwork and type(plain.rpn.anchor_generator) is AnchorGenerator
    assert type(plain.roi_heads.box_roi_pool) is MultiScaleRoIAlign      # pieces=None: torchvision's model
    assert isinstance(ours.rpn, PieceRPN) and isinstance(ours.rpn.anchor_generator, PieceAnchorGenerator)
    assert isinstance(ours.rpn.box_coder, PieceBoxCoder) and isinstance(ours.roi_heads.box_coder, PieceBoxCoder)
    assert isinstance(ours.rpn.proposal_matcher, PieceMatcher) and ours.rpn.proposal_matcher.allow_low_quality_matches
    assert isinstance(ours.roi_heads.proposal_matcher, PieceMatcher)
    assert isinstance(ours.roi_heads.box_roi_pool, PieceRoIAlign)
    want, got = losses_of(plain, images, targets), losses_of(ours, images, targets)
    assert set(got) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"} == set(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    after_plain, after_ours = sgd_step(plain, images, targets), sgd_step(ours, images, targets)
    assert not torch.equal(after_plain["roi_heads.box_predictor.cls_score.weight"],
                           before["roi_heads.box_predictor.cls_score.weight"])          # the step did move them
    for k in after_plain:
        torch.testing.assert_close(after_ours[k], after_plain[k], rtol=1e-5, atol=1e-6, msg=k)
    for p, o in zip(detect(plain, images), detect(ours, images)):
        assert len(p["boxes"]) > 0
        assert torch.equal(o["labels"], p["labels"])
        torch.testing.assert_close(o["boxes"], p["boxes"], rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(o["scores"], p["scores"], rtol=1e-4, atol=1e-5)


def test_each_piece_is_called_where_torchvision_calls_its_own(scenes):
    images, targets = scenes
    calls: dict[str, list] = {name: [] for name in REFERENCES}

    def counting(name):
        def piece(*args):
            calls[name].append(args)
            return REFERENCES[name](*args)
        return piece

    _, ours = _pair(Pieces(**{name: counting(name) for name in REFERENCES}))
    losses_of(ours, images, targets)
    (grid, stride, sizes, ratios), = calls["anchors"]
    assert grid == (16, 16) and stride == (4, 4) and sizes == (12.0, 24.0, 48.0) and ratios == (0.5, 1.0, 2.0)
    assert {args[2] for args in calls["encode"]} == {(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)}
    assert [args[1:] for args in calls["match"]] == [(0.7, 0.3, True)] * 2 + [(0.5, 0.5, False)] * 2
    assert [args[3] for args in calls["batched_nms"]] == [0.7, 0.7]          # the RPN's, once per image
    (features, rois, size, scale, ratio, aligned), = calls["roi_align"]
    assert rois.shape[1] == 5 and size == (7, 7) and scale == 0.25 and ratio == 2 and aligned is False
    assert not calls["nms"]                         # batched_nms given: nms runs only inside it
    ours.eval()
    with torch.no_grad():
        ours(images)
    assert [args[3] for args in calls["batched_nms"][2:]] == [0.7, 0.7, 0.5, 0.5]   # RPN, then box head
    assert calls["decode"][-1][0].shape[1] == 16                                 # 4 boxes (classes) per RoI


def test_nms_alone_runs_through_the_coordinate_trick(scenes):
    images, targets = scenes
    kept = []

    def counting_nms(boxes, scores, iou_threshold):
        kept.append(len(boxes))
        return nms.nms(boxes, scores, iou_threshold)

    plain, ours = _pair(Pieces(nms=counting_nms))
    for p, o in zip(detect(plain, images), detect(ours, images)):
        torch.testing.assert_close(o["boxes"], p["boxes"])
    assert len(kept) == 4                           # RPN and box head, two images


def test_choose_pieces_and_whose_say_whose_each_piece_is(capsys, monkeypatch):
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    mine = as_student(nms.nms)

    def todo(boxes, scores, iou_threshold):
        raise NotImplementedError

    def wrong(boxes, scores, idxs, iou_threshold):
        return nms.nms(boxes, scores, iou_threshold)      # ignores the classes

    chosen_nms, chosen_batched = fallback("05.nms", mine), fallback("05.batched_nms", wrong)
    todo_match = fallback("05.match", todo)
    capsys.readouterr()
    pieces = choose_pieces(nms=chosen_nms, batched_nms=chosen_batched, match=todo_match)
    table = capsys.readouterr().out
    assert pieces.nms is mine and pieces.whose["nms"] == "yours"
    assert pieces.batched_nms is nms.batched_nms
    assert pieces.whose["batched_nms"].startswith("the course's because yours fails: failed on case ")
    assert pieces.match is matcher.match
    assert pieces.whose["match"] == "the course's because yours fails: not implemented"
    assert "batched_nms | the course's because yours fails" in table
    # printed lines name whose function ran: fallback's verdict, else the course's own functions are the course's
    assert whose("05.nms", chosen_nms) == "your" and whose("05.batched_nms", chosen_batched) == "the course's"
    assert whose("05.nms", nms.nms) == "the course's" and whose("05.batched_nms", wrong) == "your"


def test_bad_pieces():
    with pytest.raises(TypeError, match="pieces must be a Pieces"):
        small_faster_rcnn(4, 64, pieces={"nms": nms.nms}, **TINY)
    with pytest.raises(TypeError, match="piece 'anchors' must be a function"):
        Pieces(anchors=(12, 24))
    with pytest.raises(ValueError, match="unknown piece"):
        choose_pieces(verbose=False, anchor=anchors_reference)
