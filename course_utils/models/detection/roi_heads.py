"""torchvision's ``RoIHeads`` and ``GeneralizedRCNNTransform`` running the student's pieces.

:func:`with_pieces` swaps a torchvision R-CNN's ``roi_heads`` and ``transform`` for these subclasses,
built with the same modules and settings, so the model computes what torchvision's does with each
piece of a :class:`~course_utils.models.detection.pieces.Pieces` called where torchvision calls its own:

- training, mask head: per image ``mask_targets(gt_masks G x H x W, proposals K x 4, matched_idxs K, M)
  -> K x M x M``, then over the batch ``mask_loss(mask_logits K x C x M x M, targets, labels K)`` (as
  torchvision's ``maskrcnn_loss``: ``project_masks_on_boxes`` then BCE on the ground-truth class's channel);
- training, keypoint head: per image ``keypoint_targets(keypoints K x J x 3, proposals K x 4, S) ->
  (index K x J, valid K x J)``, then softmax cross-entropy over the ``S x S`` cells of the visible ones
  (as ``keypointrcnn_loss`` with ``keypoints_to_heatmap``);
- inference: ``paste_masks(masks N x M x M, boxes N x 4, (H, W), threshold) -> N x H x W bool`` turns the
  predicted ``M x M`` probabilities into image masks; the model then returns ``masks`` ``N x 1 x H x W``
  float 0/1 (torchvision's layout; torchvision's own are the probabilities, which callers threshold).

The box head's sampling and ``fastrcnn_loss`` are torchvision's, inherited; lab 05's pieces (see
:mod:`~course_utils.models.detection.parts`) replace its matcher, box coder and RoIAligns, and the
per-class NMS of ``postprocess_detections``. :func:`with_pieces` also swaps the model's RPN for a
:class:`~course_utils.models.detection.parts.PieceRPN` (anchors, box coder, matcher, NMS).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.roi_heads import (
    RoIHeads,
    fastrcnn_loss,
    keypointrcnn_inference,
    keypointrcnn_loss,
    maskrcnn_inference,
    maskrcnn_loss,
    project_masks_on_boxes,
)
from torchvision.models.detection.transform import (
    GeneralizedRCNNTransform,
    resize_boxes,
    resize_keypoints,
)
from torchvision.ops import boxes as box_ops

from course_utils.models.detection.parts import (
    PieceBoxCoder,
    PieceMatcher,
    PieceRPN,
    batched_nms_of,
    swap_pools,
)
from course_utils.models.detection.pieces import Pieces


def _positive(proposals: list[torch.Tensor], matched_idxs: list[torch.Tensor],
              labels: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The sampled proposals with a thing label (what the mask and keypoint heads train on), per image."""
    pos = [torch.where(lab > 0)[0] for lab in labels]
    return [p[i] for p, i in zip(proposals, pos)], [m[i] for m, i in zip(matched_idxs, pos)]


def keypoint_loss(keypoint_logits: torch.Tensor, heatmaps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of the keypoint head (Mask R-CNN's: one target cell of ``S x S`` per keypoint).

    ``keypoint_logits`` ``K x J x S x S``; ``heatmaps`` ``K x J`` int64 cell index ``y * S + x``; ``valid``
    ``K x J`` (visible and inside the RoI). Mean over the valid ones; none valid: 0 with a gradient.
    """
    k, j, s, _ = keypoint_logits.shape
    keep = torch.where(valid.reshape(-1) > 0)[0]
    if keep.numel() == 0:
        return keypoint_logits.sum() * 0
    return F.cross_entropy(keypoint_logits.reshape(k * j, s * s)[keep], heatmaps.reshape(-1)[keep])


class PieceRoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` whose mask and keypoint branches call ``pieces`` (see the module)."""

    box_coder: BoxCoder
    proposal_matcher: Matcher

    def __init__(self, pieces: Pieces, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(pieces, Pieces):
            raise TypeError(f"pieces must be a Pieces, got {type(pieces).__name__}")
        self.pieces = pieces
        self.batched_nms = batched_nms_of(pieces)
        if pieces.encode is not None or pieces.decode is not None:
            self.box_coder = PieceBoxCoder.like(self.box_coder, pieces)
        if pieces.match is not None:
            self.proposal_matcher = PieceMatcher.like(self.proposal_matcher, pieces.match)
        swap_pools(self, ("box_roi_pool", "mask_roi_pool", "keypoint_roi_pool"), pieces)

    @classmethod
    def like(cls, heads: RoIHeads, pieces: Pieces) -> PieceRoIHeads:
        """A ``PieceRoIHeads`` with the modules and settings of ``heads`` (shared, not copied)."""
        return cls(pieces, heads.box_roi_pool, heads.box_head, heads.box_predictor,
                   heads.proposal_matcher.high_threshold, heads.proposal_matcher.low_threshold,
                   heads.fg_bg_sampler.batch_size_per_image, heads.fg_bg_sampler.positive_fraction,
                   heads.box_coder.weights, heads.score_thresh, heads.nms_thresh, heads.detections_per_img,
                   heads.mask_roi_pool, heads.mask_head, heads.mask_predictor,
                   heads.keypoint_roi_pool, heads.keypoint_head, heads.keypoint_predictor)

    def _mask_loss(self, logits: torch.Tensor, proposals: list[torch.Tensor], matched: list[torch.Tensor],
                   targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        gt_masks, gt_labels = [t["masks"] for t in targets], [t["labels"] for t in targets]
        if self.pieces.mask_targets is None and self.pieces.mask_loss is None:
            return maskrcnn_loss(logits, proposals, gt_masks, gt_labels, matched)
        mask_targets = self.pieces.mask_targets or project_masks_on_boxes
        m = logits.shape[-1]
        per_image = [mask_targets(g, p, i, m) for g, p, i in zip(gt_masks, proposals, matched)]
        goal = torch.cat(per_image) if per_image else logits.new_zeros(0, m, m)
        labels = torch.cat([lab[i] for lab, i in zip(gt_labels, matched)])
        if self.pieces.mask_loss is not None:
            return self.pieces.mask_loss(logits, goal, labels)
        if goal.numel() == 0:
            return logits.sum() * 0
        return F.binary_cross_entropy_with_logits(logits[torch.arange(len(labels), device=labels.device), labels],
                                                  goal)

    def _keypoint_loss(self, logits: torch.Tensor, proposals: list[torch.Tensor], matched: list[torch.Tensor],
                       targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        gt = [t["keypoints"] for t in targets]
        if self.pieces.keypoint_targets is None:
            return keypointrcnn_loss(logits, proposals, gt, matched)
        pairs = [self.pieces.keypoint_targets(k[i], p, logits.shape[-1]) for k, p, i in zip(gt, proposals, matched)]
        heatmaps = torch.cat([h.reshape(-1) for h, _ in pairs])
        valid = torch.cat([v.reshape(-1) for _, v in pairs])
        return keypoint_loss(logits, heatmaps, valid)

    def postprocess_detections(self, class_logits: torch.Tensor, box_regression: torch.Tensor,
                               proposals: list[torch.Tensor], image_shapes: list[tuple[int, int]]
                               ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """torchvision's: boxes decoded per class and clipped, the background, low scores (``score_thresh``)
        and empty boxes dropped, then the NMS per class (``self.batched_nms``) and the best
        ``detections_per_img``. Returns ``(boxes, scores, labels)`` per image."""
        num_classes = class_logits.shape[-1]
        per_image = [len(p) for p in proposals]
        boxes_list = self.box_coder.decode(box_regression, proposals).split(per_image, 0)
        scores_list = F.softmax(class_logits, -1).split(per_image, 0)
        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores, shape in zip(boxes_list, scores_list, image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)
            labels = torch.arange(num_classes, device=class_logits.device).view(1, -1).expand_as(scores)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = self.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep])
        return all_boxes, all_scores, all_labels

    def forward(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]], targets: list[dict[str, torch.Tensor]] | None = None
                ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        """As ``RoIHeads.forward``: ``(detections per image, {})`` in eval mode, ``([], losses)`` in train mode."""
        head_targets: list[dict[str, torch.Tensor]] = []  # the ground truth of the mask and keypoint losses
        if self.training:
            if targets is None:
                raise ValueError("in training mode the model needs targets")
            head_targets = targets
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        result: list[dict[str, torch.Tensor]] = []
        losses: dict[str, torch.Tensor] = {}
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
            head_proposals, head_matched = _positive(proposals, matched_idxs, labels)
        else:
            boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
            result = [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels)]
            head_proposals = [r["boxes"] for r in result]
        if self.has_mask():
            logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, head_proposals, image_shapes)))
            if self.training:
                losses["loss_mask"] = self._mask_loss(logits, head_proposals, head_matched, head_targets)
            else:
                for probs, r in zip(maskrcnn_inference(logits, [r["labels"] for r in result]), result):
                    r["masks"] = probs
        if self.has_keypoint():
            logits = self.keypoint_predictor(self.keypoint_head(
                self.keypoint_roi_pool(features, head_proposals, image_shapes)))
            if self.training:
                losses["loss_keypoint"] = self._keypoint_loss(logits, head_proposals, head_matched, head_targets)
            else:
                points, point_scores = keypointrcnn_inference(logits, head_proposals)
                for p, s, r in zip(points, point_scores, result):
                    r["keypoints"], r["keypoints_scores"] = p, s
        return result, losses


class PieceTransform(GeneralizedRCNNTransform):
    """torchvision's transform whose ``postprocess`` pastes masks with ``pieces.paste_masks`` at
    ``mask_threshold`` (when that piece is set; otherwise it is torchvision's)."""

    def __init__(self, pieces: Pieces, *args, mask_threshold: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.pieces, self.mask_threshold = pieces, float(mask_threshold)

    @classmethod
    def like(cls, transform: GeneralizedRCNNTransform, pieces: Pieces, mask_threshold: float = 0.5) -> PieceTransform:
        """A ``PieceTransform`` with the sizes and normalisation of ``transform``."""
        return cls(pieces, transform.min_size, transform.max_size, transform.image_mean, transform.image_std,
                   size_divisible=transform.size_divisible, fixed_size=transform.fixed_size,
                   _skip_resize=transform._skip_resize, mask_threshold=mask_threshold)

    def postprocess(self, result: list[dict[str, torch.Tensor]], image_shapes: list[tuple[int, int]],
                    original_image_sizes: list[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        paste = self.pieces.paste_masks
        if self.training or paste is None:
            return super().postprocess(result, image_shapes, original_image_sizes)
        for pred, shape, original in zip(result, image_shapes, original_image_sizes):
            pred["boxes"] = resize_boxes(pred["boxes"], shape, original)
            if "masks" in pred:
                pasted = paste(pred["masks"][:, 0], pred["boxes"], tuple(original), self.mask_threshold)
                pred["masks"] = pasted[:, None].to(pred["boxes"].dtype)
            if "keypoints" in pred:
                pred["keypoints"] = resize_keypoints(pred["keypoints"], shape, original)
        return result


def with_pieces(model: nn.Module, pieces: Pieces | None, mask_threshold: float = 0.5) -> nn.Module:
    """``model`` (a torchvision R-CNN) with its ``rpn``, ``roi_heads`` and ``transform`` swapped, in place, for
    :class:`~course_utils.models.detection.parts.PieceRPN`, :class:`PieceRoIHeads` and :class:`PieceTransform`
    running ``pieces`` (same modules, so the same parameters); ``None`` leaves it as it is."""
    if pieces is None:
        return model
    if not isinstance(pieces, Pieces):
        raise TypeError(f"pieces must be a Pieces (see choose_pieces) or None, got {type(pieces).__name__}")
    model.rpn = PieceRPN.like(model.rpn, pieces)
    model.roi_heads = PieceRoIHeads.like(model.roi_heads, pieces)
    model.transform = PieceTransform.like(model.transform, pieces, mask_threshold)
    return model


__all__ = ["PieceRoIHeads", "PieceTransform", "keypoint_loss", "with_pieces"]
