"""Lab 08's pipeline: lab 02's FCN-8s for stuff, lab 07's Mask R-CNN for things, merged into one panoptic map
(Panoptic FPN's heuristic) and scored by PQ on held-out scenes. Read by ``solutions/08_panoptic.ipynb`` and
``bench/panoptic.py`` alike::

    R = PANOPTIC[P.name]
    fcn, mask_rcnn = trained_models(P)                     # loaded when labs 02 and 07 saved them, else trained
    scenes = held_out_scenes(P)                            # lab 07's scenes, seed 20_000: seen by neither model
    semantic = semantic_prediction(fcn, scenes.images, P)  # B x H x W, the FCN run at its own training size
    instances = instance_predictions(mask_rcnn, scenes.images, scenes.config, R.mask_threshold)
    preds = panoptic_predictions(semantic, instances, scenes.config.thing_ids, merge_panoptic,
                                 score_threshold=R.score_threshold, overlap_threshold=R.overlap_threshold)

No model is trained for this lab: the two models are the earlier labs' (each profile's recipe). They were
trained on different scene sizes (lab 02: 64 x 64 in the ``ci`` and ``cpu`` profiles; lab 07: 96 x 96), with
objects sized as a fraction of the scene, so the FCN sees each held-out scene resized to its own training
size and its logits are resized back (bilinear) before the argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import validation
from course_utils.config import Profile
from course_utils.data.scenes import SceneConfig, Scenes, render_scenes
from course_utils.models.detection import detect
from course_utils.models.detection.mask_rcnn import instance_masks
from course_utils.ops.panoptic import merge_panoptic
from course_utils.training.recipes.detection import _profile
from course_utils.training.recipes.detection import scene_config as detection_scenes
from course_utils.training.recipes.instance import MASK_RCNN, trained_mask_rcnn
from course_utils.training.recipes.segmentation import FCN, trained_fcn8s

HELD_OUT_SEED = 20_000   # lab 08's scenes: render_scenes(lab 07's config, range(n_val), seed=20_000)


@dataclass(frozen=True)
class PanopticRecipe:
    """Lab 08's evaluation: how many held-out scenes, and the merge's settings (detectron2's defaults)."""

    n_val: int                       # held-out scenes
    score_threshold: float = 0.5     # detectron2's MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH
    overlap_threshold: float = 0.5   # detectron2's MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH
    mask_threshold: float = 0.5      # Mask R-CNN's mask probabilities -> binary masks (torchvision's paste)
    target: float | None = None      # the PQ the lab promises in this profile (None: a smoke test)


# ci measured (bench/panoptic.py, 2026-12-04): PQ 0.227 on 16 scenes (things 0: lab 07's ci Mask R-CNN, 60 steps,
# scores no detection >= 0.5; stuff 0.454). cpu and gpu: the targets, NOT YET MEASURED (the cpu run of
# both models' training did not finish on the shared machine when this landed): run bench/panoptic.py --profile cpu.
PANOPTIC: dict[str, PanopticRecipe] = {
    "ci": PanopticRecipe(n_val=16),
    "cpu": PanopticRecipe(n_val=128, target=0.70),
    "gpu": PanopticRecipe(n_val=512, target=0.80),
}


def trained_models(profile: Profile | str, folder: str = "trained",
                   progress: bool = True) -> tuple[nn.Module, nn.Module]:
    """``(fcn8s, mask_rcnn)``: lab 02's FCN-8s and lab 07's Mask R-CNN of the profile, loaded from ``folder``
    when those labs saved them, trained (and saved) here otherwise; both in eval mode on the profile's device."""
    profile = _profile(profile)
    return (trained_fcn8s(profile, folder, progress=progress), trained_mask_rcnn(profile, folder, progress=progress))


def held_out_scenes(profile: Profile | str, n: int | None = None, seed: int = 0) -> Scenes:
    """``n`` (default the recipe's ``n_val``) scenes of lab 07's configuration, rendered with seed
    ``20_000 + seed``: neither lab 02's nor lab 07's training or validation scenes."""
    profile = _profile(profile)
    n = PANOPTIC[profile.name].n_val if n is None else validation.int_at_least("n", n, 1)
    return render_scenes(scene_config(profile), range(n), seed=HELD_OUT_SEED + seed)


def scene_config(profile: Profile | str) -> SceneConfig:
    """The scenes of lab 08 in a profile: lab 07's (``SceneConfig(size, max_things)`` of its Mask R-CNN)."""
    return detection_scenes(MASK_RCNN[_profile(profile).name])


def semantic_prediction(model: nn.Module, images: torch.Tensor, profile: Profile | str,
                        batch_size: int = 32) -> torch.Tensor:
    """``B x 3 x H x W`` images -> ``B x H x W`` int64 category ids (cpu) from lab 02's FCN-8s, run on each
    image resized to the size lab 02 trained it at (``FCN[profile].size``), logits resized back (bilinear)."""
    validation.tensor("images", images, ndim=4, dtypes="float")
    size = FCN[_profile(profile).name].size
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device)
            small = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            logits = F.interpolate(model(small).float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
            out.append(logits.argmax(1).cpu())
    return torch.cat(out)


def instance_predictions(model: nn.Module, images: torch.Tensor, scenes: SceneConfig, mask_threshold: float = 0.5,
                         batch_size: int = 16) -> list[dict[str, torch.Tensor]]:
    """``B x 3 x H x W`` images -> per image ``{"masks": N x H x W bool, "scores": N, "labels": N}`` (cpu)
    from lab 07's Mask R-CNN, its detection labels ``1..T`` turned into the scenes' thing category ids."""
    validation.tensor("images", images, ndim=4, dtypes="float")
    offset = len(scenes.stuff) - 1                 # detection label l is category l - 1 + len(stuff)
    return [{"masks": d["masks"], "scores": d["scores"].float(), "labels": d["labels"] + offset}
            for d in instance_masks(detect(model, images, batch_size), mask_threshold)]


def panoptic_predictions(semantic: torch.Tensor, instances: Sequence[dict[str, torch.Tensor]], things: Sequence[int],
                         merge: Callable[..., torch.Tensor] = merge_panoptic, **kwargs: object) -> torch.Tensor:
    """One panoptic map per image, ``B x H x W x 2``: ``merge(semantic[i], masks, scores, labels, things,
    **kwargs)`` (the student's merge in the lab)."""
    validation.tensor("semantic", semantic, ndim=3, dtypes="int")
    if len(instances) != len(semantic):
        raise ValueError(f"need one instance prediction per semantic map, got {len(instances)} and {len(semantic)}")
    return torch.stack([merge(s, d["masks"], d["scores"], d["labels"], tuple(things), **kwargs)
                        for s, d in zip(semantic, instances, strict=True)])


__all__ = ["HELD_OUT_SEED", "PANOPTIC", "PanopticRecipe", "held_out_scenes", "instance_predictions",
           "panoptic_predictions", "scene_config", "semantic_prediction", "trained_models"]
