"""torchvision's Faster R-CNN parts running lab 05's pieces: anchors, box coder, matcher, RoIAlign, NMS.

Each class is torchvision's own, subclassed so that the one call a lab 05 exercise reproduces goes to the
piece of a :class:`~course_utils.models.detection.pieces.Pieces` instead (a piece left at ``None`` keeps
torchvision's call); :func:`~course_utils.models.detection.roi_heads.with_pieces` swaps them into a model.
The pieces' signatures are those of lab 05's exercises:

- :class:`PieceAnchorGenerator` (``AnchorGenerator.grid_anchors``), per feature map: ``anchors(grid_size
  (H, W), stride (sy, sx), sizes, aspect_ratios) -> (H W A) x 4`` float32;
- :class:`PieceBoxCoder` (``BoxCoder.encode_single`` / ``decode_single``): ``encode(boxes N x 4, references
  N x 4, weights) -> N x 4`` and ``decode(codes N x 4K, references N x 4, weights) -> N x 4K``;
- :class:`PieceMatcher` (``Matcher.__call__``): ``match(quality M x N, high, low,
  allow_low_quality_matches) -> N`` int64 (object index, -1 background, -2 ignored);
- :class:`PieceRoIAlign` (``MultiScaleRoIAlign``'s ``roi_align``): ``roi_align(features B x C x H x W,
  rois K x 5, output_size (PH, PW), spatial_scale, sampling_ratio, aligned=False) -> K x C x PH x PW``;
- :class:`PieceRPN` (``RegionProposalNetwork.filter_proposals``'s NMS over each image's proposals) and
  :func:`batched_nms_of` (the one the RoI heads call): ``batched_nms(boxes N x 4, scores N, idxs N,
  iou_threshold) -> kept`` int64 by decreasing score, or, with only ``nms(boxes, scores, iou_threshold)``
  set, torchvision's coordinate trick (boxes shifted apart by category) around it.

Everything else (sampling, losses, clipping, the top-n selections) is torchvision's, inherited or
called; the overridden methods follow torchvision 0.2x's line for line apart from the piece's call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import boxes as box_ops
from torchvision.ops.poolers import LevelMapper, _convert_to_roi_format, _filter_input, _setup_scales

from course_utils.models.detection.pieces import Pieces

BatchedNMS = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def batched_nms_of(pieces: Pieces) -> BatchedNMS:
    """The per-category NMS a model with ``pieces`` runs: ``pieces.batched_nms``; else, with ``pieces.nms``,
    one ``nms`` on boxes shifted apart by category (torchvision's coordinate trick); else torchvision's."""
    if pieces.batched_nms is not None:
        return pieces.batched_nms
    nms = pieces.nms
    if nms is None:
        return box_ops.batched_nms

    def shifted(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
        if boxes.numel() == 0:
            return torch.empty(0, dtype=torch.int64, device=boxes.device)
        offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
        return nms(boxes + offsets[:, None], scores, iou_threshold)

    return shifted


class PieceAnchorGenerator(AnchorGenerator):
    """torchvision's ``AnchorGenerator`` whose anchors per feature map come from ``anchors``."""

    def __init__(self, anchors: Callable[..., torch.Tensor], sizes: tuple, aspect_ratios: tuple):
        super().__init__(sizes, aspect_ratios)
        self.anchors = anchors

    @classmethod
    def like(cls, generator: AnchorGenerator, anchors: Callable[..., torch.Tensor]) -> PieceAnchorGenerator:
        return cls(anchors, generator.sizes, generator.aspect_ratios)

    def grid_anchors(self, grid_sizes: list[list[int]], strides: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        out = []
        for (gh, gw), (sy, sx), sizes, ratios, base in zip(grid_sizes, strides, self.sizes, self.aspect_ratios,
                                                           self.cell_anchors):
            grid = self.anchors((int(gh), int(gw)), (int(sy), int(sx)), tuple(float(s) for s in sizes),
                                tuple(float(r) for r in ratios))
            out.append(grid.to(device=base.device, dtype=base.dtype))
        return out


class PieceBoxCoder(BoxCoder):
    """torchvision's ``BoxCoder`` whose single-tensor encoding and decoding are ``pieces.encode`` and
    ``pieces.decode`` (each when set)."""

    def __init__(self, pieces: Pieces, weights: tuple[float, float, float, float], bbox_xform_clip: float):
        super().__init__(weights, bbox_xform_clip)
        self.pieces = pieces

    @classmethod
    def like(cls, coder: BoxCoder, pieces: Pieces) -> PieceBoxCoder:
        return cls(pieces, coder.weights, coder.bbox_xform_clip)

    def encode_single(self, reference_boxes: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        if self.pieces.encode is None:
            return super().encode_single(reference_boxes, proposals)
        # torchvision's names: reference_boxes are the matched ground truth, proposals the anchors / proposals
        return self.pieces.encode(reference_boxes, proposals, tuple(float(w) for w in self.weights))

    def decode_single(self, rel_codes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        if self.pieces.decode is None:
            return super().decode_single(rel_codes, boxes)
        return self.pieces.decode(rel_codes, boxes, tuple(float(w) for w in self.weights))


class PieceMatcher(Matcher):
    """torchvision's ``Matcher`` whose rule is ``match`` (torchvision's errors for an empty matrix kept)."""

    def __init__(self, match: Callable[..., torch.Tensor], high: float, low: float,
                 allow_low_quality_matches: bool = False):
        super().__init__(high, low, allow_low_quality_matches)
        self.match = match

    @classmethod
    def like(cls, matcher: Matcher, match: Callable[..., torch.Tensor]) -> PieceMatcher:
        return cls(match, matcher.high_threshold, matcher.low_threshold, matcher.allow_low_quality_matches)

    def __call__(self, match_quality_matrix: torch.Tensor) -> torch.Tensor:
        if match_quality_matrix.numel() == 0:
            return super().__call__(match_quality_matrix)          # torchvision's ValueError
        return self.match(match_quality_matrix, self.high_threshold, self.low_threshold,
                          self.allow_low_quality_matches)


class PieceRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` calling ``roi_align`` on each level (FPN levels assigned by
    torchvision's ``LevelMapper``, as ``_multiscale_roi_align`` does)."""

    scales: list[float] | None
    map_levels: LevelMapper | None

    def __init__(self, roi_align: Callable[..., torch.Tensor], featmap_names: list[str],
                 output_size: tuple[int, int], sampling_ratio: int, canonical_scale: int = 224,
                 canonical_level: int = 4):
        super().__init__(featmap_names, output_size, sampling_ratio, canonical_scale=canonical_scale,
                         canonical_level=canonical_level)
        self.roi_align = roi_align

    @classmethod
    def like(cls, pool: MultiScaleRoIAlign, roi_align: Callable[..., torch.Tensor]) -> PieceRoIAlign:
        return cls(roi_align, pool.featmap_names, pool.output_size, pool.sampling_ratio, pool.canonical_scale,
                   pool.canonical_level)

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        levels = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(levels, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        if len(levels) == 1:
            return self.roi_align(levels[0], rois, self.output_size, self.scales[0], self.sampling_ratio, False)
        which = self.map_levels(boxes)
        result = levels[0].new_zeros((len(rois), levels[0].shape[1], *self.output_size))
        for level, (features, scale) in enumerate(zip(levels, self.scales)):
            index = torch.where(which == level)[0]
            result[index] = self.roi_align(features, rois[index], self.output_size, scale, self.sampling_ratio,
                                           False).to(result.dtype)
        return result


class PieceRPN(RegionProposalNetwork):
    """torchvision's ``RegionProposalNetwork`` with the pieces' anchors, box coder, matcher and NMS."""

    anchor_generator: AnchorGenerator
    box_coder: BoxCoder
    proposal_matcher: Matcher

    def __init__(self, pieces: Pieces, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pieces = pieces
        self.batched_nms = batched_nms_of(pieces)
        if pieces.anchors is not None:
            self.anchor_generator = PieceAnchorGenerator.like(self.anchor_generator, pieces.anchors)
        if pieces.encode is not None or pieces.decode is not None:
            self.box_coder = PieceBoxCoder.like(self.box_coder, pieces)
        if pieces.match is not None:
            self.proposal_matcher = PieceMatcher.like(self.proposal_matcher, pieces.match)

    @classmethod
    def like(cls, rpn: RegionProposalNetwork, pieces: Pieces) -> PieceRPN:
        """A ``PieceRPN`` with the modules and settings of ``rpn`` (shared, not copied)."""
        return cls(pieces, rpn.anchor_generator, rpn.head, rpn.proposal_matcher.high_threshold,
                   rpn.proposal_matcher.low_threshold, rpn.fg_bg_sampler.batch_size_per_image,
                   rpn.fg_bg_sampler.positive_fraction, dict(rpn._pre_nms_top_n), dict(rpn._post_nms_top_n),
                   rpn.nms_thresh, rpn.score_thresh)

    def filter_proposals(self, proposals: torch.Tensor, objectness: torch.Tensor,
                         image_shapes: list[tuple[int, int]], num_anchors_per_level: list[int]
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """torchvision's: the top-n per level, clipped, small and low-scored boxes dropped, then the NMS per
        level (``self.batched_nms``) and the post-NMS top-n."""
        num_images, device = proposals.shape[0], proposals.device
        objectness = objectness.detach().reshape(num_images, -1)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=device)
                            for i, n in enumerate(num_anchors_per_level)]).reshape(1, -1).expand_as(objectness)
        top_n = self._get_top_n_idx(objectness, num_anchors_per_level)
        batch = torch.arange(num_images, device=device)[:, None]
        probabilities = torch.sigmoid(objectness[batch, top_n])
        levels, proposals = levels[batch, top_n], proposals[batch, top_n]
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, shape in zip(proposals, probabilities, levels, image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)
            keep = box_ops.remove_small_boxes(boxes, self.min_size)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = torch.where(scores >= self.score_thresh)[0]
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = self.batched_nms(boxes, scores, lvl, self.nms_thresh)[: self.post_nms_top_n()]
            final_boxes.append(boxes[keep])
            final_scores.append(scores[keep])
        return final_boxes, final_scores


def swap_pools(module: nn.Module, names: tuple[str, ...], pieces: Pieces) -> None:
    """Each ``MultiScaleRoIAlign`` attribute of ``module`` in ``names`` swapped for a :class:`PieceRoIAlign`
    calling ``pieces.roi_align`` (nothing when that piece is not set)."""
    if pieces.roi_align is None:
        return
    for name in names:
        pool = getattr(module, name, None)
        if isinstance(pool, MultiScaleRoIAlign):
            setattr(module, name, PieceRoIAlign.like(pool, pieces.roi_align))


__all__ = ["PieceAnchorGenerator", "PieceBoxCoder", "PieceMatcher", "PieceRPN", "PieceRoIAlign", "batched_nms_of",
           "swap_pools"]
