"""Panoptic FPN's merge of a semantic and an instance prediction into one panoptic map, as detectron2
implements it (``combine_semantic_and_instance_outputs`` in ``detectron2/modeling/meta_arch/panoptic_fpn.py``,
itself after panopticapi's ``combine_semantic_and_instance_predictions.py``).

1. Instances by decreasing score (equal scores in input order: a stable sort; detectron2's
   ``argsort(-scores)`` leaves ties to torch, panopticapi's ``sorted`` keeps input order); stop at the
   first score below ``score_threshold`` (a score equal to it is kept).
2. An instance with an empty mask is skipped; one whose mask is already taken (by the instances painted
   before it) over more than ``overlap_threshold`` of its area is skipped (a fraction equal to it is
   painted); otherwise only its free pixels are painted, with the next instance id (1, 2, ... in painting
   order: a skipped instance takes no id).
3. Stuff fills the rest: for every stuff category of the semantic map (thing categories there are
   ignored: the instances speak for things), its pixels not taken by an instance form one segment,
   instance id 0, unless there are fewer than ``stuff_area`` of them: then they stay void.
4. What is left is void: category :data:`~course_utils.evaluation.panoptic.VOID` (-1), instance 0 (the
   metric's convention).

The stuff area limit: detectron2's ``MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT`` is 4096 pixels
(panopticapi's ``--stuff_area_limit`` 64 * 64 too). Both apply it to maps at the dataset's own image size
(detectron2's ``PanopticFPN.inference`` resizes the semantic logits and the instances to the input's
``height`` x ``width``, the image's original size, before merging; panopticapi's script draws at
``img['height']`` x ``img['width']``): COCO images, typically 640 x 480 = 307,200 pixels (90 % of the COCO
2014 training images have 167,500 to 355,840 pixels, github.com/Lextal/SotA-CV's dataset notes), not the
~800-pixel side the network sees. Kept as the same *fraction of the image*, the limit is
``4096 * H * W / (640 * 480)``: 1.33 % of the image, 218.45 pixels for 128 x 128 images
(:func:`scaled_stuff_area`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from course_utils import validation
from course_utils.evaluation.panoptic import VOID

DETECTRON2_STUFF_AREA = 4096         # pixels: MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT
DETECTRON2_IMAGE_AREA = 640 * 480    # pixels of the (COCO) images that limit applies to


def scaled_stuff_area(height: int, width: int) -> float:
    """detectron2's stuff area limit kept as the same fraction of an ``height x width`` image."""
    validation.int_at_least("height", height, 1)
    validation.int_at_least("width", width, 1)
    return DETECTRON2_STUFF_AREA * height * width / DETECTRON2_IMAGE_AREA


def _check(semantic: object, masks: object, scores: object, labels: object, things: Iterable[int]
           ) -> tuple[torch.Tensor, tuple[int, ...]]:
    semantic = validation.tensor("semantic", semantic, ndim=2, dtypes="int")
    if semantic.dtype == torch.bool:
        raise TypeError("semantic must hold integer category ids (a semantic model's argmax), got a bool tensor")
    if semantic.numel() and semantic.min() < 0:
        raise ValueError(f"semantic must hold category ids >= 0 (a semantic model's argmax), got {int(semantic.min())}")
    masks = validation.tensor("masks", masks, ndim=3)
    if masks.is_floating_point() or masks.is_complex():
        raise TypeError(f"masks must be binary (bool, or integers with nonzero = inside), got {masks.dtype}: "
                        "threshold a Mask R-CNN's probabilities first, e.g. (out['masks'][:, 0] > 0.5)")
    if masks.shape[1:] != semantic.shape:
        raise ValueError(f"masks must be N x H x W with the semantic map's H x W {tuple(semantic.shape)}, got "
                         f"{tuple(masks.shape)}")
    scores = validation.tensor("scores", scores, ndim=1, dtypes="float")
    if not torch.isfinite(scores).all():
        raise ValueError("scores must be finite numbers, got NaN or infinity")
    labels = validation.tensor("labels", labels, ndim=1, dtypes="int")
    if labels.dtype == torch.bool:
        raise TypeError("labels must hold integer category ids, got a bool tensor")
    if not len(masks) == len(scores) == len(labels):
        raise ValueError(f"need one score and one label per mask, got {len(masks)} masks, {len(scores)} scores and "
                         f"{len(labels)} labels")
    thing_ids = validation.category_ids("things", things)
    bad = labels[~torch.isin(labels.cpu(), torch.tensor(thing_ids, dtype=labels.dtype))] if len(labels) else labels
    if bad.numel():
        raise ValueError(f"labels must be thing category ids {list(thing_ids)} (panoptic ids, not a detector's 1..T "
                         f"labels), got {bad.unique()[:5].tolist()}")
    return masks.to(semantic.device).bool(), thing_ids


def merge_panoptic(semantic: torch.Tensor, masks: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                   things: Iterable[int], score_threshold: float = 0.5, overlap_threshold: float = 0.5,
                   stuff_area: float | None = None) -> torch.Tensor:
    """One panoptic map from a semantic prediction and instance predictions (see the module docstring).

    Args:
        semantic: ``H x W`` int, a category id per pixel (a semantic model's argmax over all categories).
        masks: ``N x H x W`` binary instance masks (bool, or integers: nonzero is inside); threshold
            soft masks first.
        scores: ``N`` float, the instances' confidences.
        labels: ``N`` int, their category ids (thing ids of the panoptic map, not detection labels).
        things: the thing category ids; every other category of ``semantic`` is stuff.
        score_threshold: instances scoring below it are dropped (detectron2: 0.5).
        overlap_threshold: an instance whose mask is taken over more than this fraction is dropped (0.5).
        stuff_area: stuff regions with fewer pixels become void; ``None``: :func:`scaled_stuff_area`.

    Returns:
        ``H x W x 2`` int64 (category id, instance id) on ``semantic``'s device: instances 1..n in
        painting order, stuff instance 0, void ``(VOID, 0)``.
    """
    masks, thing_ids = _check(semantic, masks, scores, labels, things)
    validation.number("score_threshold", score_threshold)
    validation.number("overlap_threshold", overlap_threshold, minimum=0.0, maximum=1.0)
    h, w = semantic.shape
    limit = scaled_stuff_area(h, w) if stuff_area is None else validation.number("stuff_area", stuff_area, minimum=0.0)

    category = torch.full((h, w), VOID, dtype=torch.int64, device=semantic.device)
    instance = torch.zeros((h, w), dtype=torch.int64, device=semantic.device)
    taken = torch.zeros((h, w), dtype=torch.bool, device=semantic.device)
    next_id = 1
    for i in torch.sort(scores, descending=True, stable=True).indices.tolist():
        if float(scores[i]) < score_threshold:
            break
        mask = masks[i]
        area = int(mask.sum())
        if area == 0:
            continue
        if int((mask & taken).sum()) / area > overlap_threshold:
            continue
        free = mask & ~taken
        category[free], instance[free] = int(labels[i]), next_id
        taken |= free
        next_id += 1
    for c in torch.unique(semantic).tolist():
        if c in thing_ids:
            continue
        region = (semantic == c) & ~taken
        if int(region.sum()) >= limit:
            category[region] = c
    return torch.stack([category, instance], -1)
