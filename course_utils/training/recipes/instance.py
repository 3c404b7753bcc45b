"""The measured per-profile recipes of lab 07's Mask R-CNN and keypoint R-CNN, as frozen dataclasses.

    R = MASK_RCNN[P.name]                                   # lab 05's Faster R-CNN recipe + the mask head
    model, history = train_mask_rcnn(R, P)                  # pieces=choose_pieces(...): the student's inside
    save_trained(model, R, mask_rcnn_path(P))               # trained/07_mask_rcnn_cpu.pt, for lab 08
    model = trained_mask_rcnn(P)                            # lab 08: loaded, or trained here
    K = KEYPOINT_RCNN[P.name]
    keypoint_model, history = train_keypoint_rcnn(K, P)     # on stick figures (course_utils.data.figures)

The Mask R-CNN sees lab 05's scenes (``SceneConfig(size, max_things)``, training scenes from
``SceneBatches(..., seed=0, pool=pool)``) and is scored on lab 05's validation scenes
(:func:`~course_utils.training.recipes.detection.validation_scenes`): box and mask mAP by torchmetrics
(:func:`~course_utils.evaluation.detection.instance_map`). The keypoint R-CNN sees stick figures
(``FigureConfig(size, max_figures)``) and is scored by OKS AP (:func:`~course_utils.evaluation.keypoints.keypoint_map`)
on figures rendered with seed ``10_000``. Times and scores: ``python bench/instance.py`` (bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_utils.config import Profile
from course_utils.data.batches import FigureBatches, SceneBatches
from course_utils.data.figures import FigureConfig, Figures, render_figures
from course_utils.models.detection.mask_rcnn import small_keypoint_rcnn, small_mask_rcnn
from course_utils.models.detection.pieces import Pieces
from course_utils.training.checkpoints import load_or_train, trained_path
from course_utils.training.history import History
from course_utils.training.loop import train
from course_utils.training.recipes.detection import (
    VALIDATION_SEED,
    FasterRCNNRecipe,
    _profile,
    _recipe,
    detector_settings,
    faster_rcnn_config,
    scene_config,
)


@dataclass(frozen=True)
class HeadsRecipe(FasterRCNNRecipe):
    """A :class:`FasterRCNNRecipe` (scenes, backbone, sampling, schedule) with the detections kept per image."""

    detections: int = 20                     # detections kept per image (the scenes hold at most max_things)


@dataclass(frozen=True)
class MaskRCNNRecipe(HeadsRecipe):
    """Lab 07's Mask R-CNN: lab 05's recipe plus the mask head."""

    mask_layers: tuple[int, ...] = (64, 64)  # widths of the mask head's 3x3 convs on the 14 x 14 RoIAlign features
    mask_sampling_ratio: int = 2             # RoIAlign samples per bin and axis in the mask head


@dataclass(frozen=True)
class KeypointRCNNRecipe(HeadsRecipe):
    """Lab 07's keypoint R-CNN on stick figures (``max_things``: figures per scene, at most)."""

    keypoint_layers: tuple[int, ...] = (64, 64, 64, 64)   # the keypoint head's 3x3 convs on 14 x 14 features
    keypoint_sampling_ratio: int = 2


# Lab 07, Mask R-CNN (bench/instance.py).
MASK_RCNN: dict[str, MaskRCNNRecipe] = {
    # ci: a smoke test of lab 07's notebook (no quality target). Measured (2 shared cores, load 5-8): with 60 steps and
    # 32 validation scenes here and in KEYPOINT_RCNN["ci"] the notebook cost 118 s of CPU time (user + sys), its two
    # trainings 70 % of its wall time; with 20 steps and 16 scenes, 66 s. One step: 0.46 s CPU (1 thread).
    "ci": MaskRCNNRecipe(size=96, max_things=3, width=16, depth=2, rep=128, batch=4, steps=20, lr=4e-3, warmup=5,
                         n_val=16, pool=256, anchors=(12, 24, 48), rpn_batch=64, box_batch=64, mask_layers=(32, 32)),
    # cpu (bench/instance.py, 2026-12-04, 2 cores shared at load 8-32; see bench/RESULTS.md): lab 05's recipe with
    # the mask head cost 1.15 s of CPU per step (1 thread), RoIAlign's backward pass a third of it; this one 0.29 s:
    # a 16-wide backbone reduced to 32 channels, 1 RoIAlign sample per bin, 32 RoIs per image, a (32, 32) mask head.
    # 1000 steps (355 s of CPU for the run): mask mAP50 0.785, mask mAP 0.538, box mAP50 0.797 (step 500: 0.542;
    # lr 8e-3 was worse: 0.447 at step 500): short of the 0.85 target. Longer cosine schedules (2026-12-05, 2 idle
    # cores, `bench/instance.py --profile cpu --only mask_rcnn --set steps=N warmup=N/20`): 1500 steps, 104.5 s of
    # training, mask mAP50 0.905 (mAP 0.648, box mAP50 0.923); 2000 steps, 142.3 s: 0.933 (mAP 0.683, box 0.948).
    # 1500: the target with a margin, in the 5 minutes of the notebook.
    "cpu": MaskRCNNRecipe(size=96, max_things=3, width=16, depth=2, rep=128, batch=4, steps=1500, lr=4e-3,
                          warmup=75, n_val=128, pool=2048, anchors=(12, 24, 48), rpn_batch=64, box_batch=32,
                          mask_layers=(32, 32), out_channels=32, sampling_ratio=1, mask_sampling_ratio=1),
    # unmeasured (no GPU lent to this task): lab 05's gpu Faster R-CNN recipe with a wider mask head
    "gpu": MaskRCNNRecipe(size=128, max_things=4, width=48, depth=3, rep=512, batch=16, steps=6000, lr=2e-3,
                          warmup=300, n_val=512, pool=None, anchors=(16, 32, 64), rpn_batch=128, box_batch=128,
                          mask_layers=(128, 128, 128, 128)),
}

# Lab 07, keypoint R-CNN on stick figures (bench/instance.py). PROVISIONAL: being measured.
KEYPOINT_RCNN: dict[str, KeypointRCNNRecipe] = {
    # ci: 60 steps took 123 s of the ci notebook's 294 s wall time (load 5.6), more than the Mask R-CNN's 80 s: 20 steps
    # (0.42 s CPU per step, 1 thread). cpu: cut like the Mask R-CNN's (1.62 -> 0.41 s CPU per step, 1 thread, load
    # 8-10) and to 300 steps, about 2 min of CPU time: OKS AP 0.536, AP50 0.790 on 128 unseen figure scenes.
    "ci": KeypointRCNNRecipe(size=96, max_things=3, width=16, depth=2, rep=128, batch=4, steps=20, lr=4e-3,
                             warmup=5, n_val=16, pool=256, anchors=(24, 48, 72), rpn_batch=64, box_batch=64,
                             keypoint_layers=(32, 32)),
    "cpu": KeypointRCNNRecipe(size=96, max_things=3, width=16, depth=2, rep=128, batch=4, steps=300, lr=4e-3,
                              warmup=30, n_val=128, pool=2048, anchors=(24, 48, 72), rpn_batch=64, box_batch=32,
                              keypoint_layers=(32, 32, 32, 32), out_channels=32, sampling_ratio=1,
                              keypoint_sampling_ratio=1),
    "gpu": KeypointRCNNRecipe(size=128, max_things=4, width=48, depth=3, rep=512, batch=16, steps=6000, lr=2e-3,
                              warmup=300, n_val=512, pool=None, anchors=(32, 64, 96), rpn_batch=128, box_batch=128,
                              keypoint_layers=(128, 128, 128, 128)),
}

# measured 2026-12-04 (one thread, load 5-11): 0.46 s (ci) and 0.29 s (cpu) of CPU time per Mask R-CNN step;
# 2026-12-05, 2 idle cores: the cpu recipe's 1500 steps in 104.5 s of wall time (202 s of CPU for the whole run)
_MASK_RCNN_TIME = {"ci": "about 10 s on 2 CPU cores", "cpu": "about 2 min on 2 CPU cores, 3.5 min of CPU time",
                   "gpu": "unmeasured"}


def _heads_settings(r: HeadsRecipe) -> dict:
    return {**detector_settings(r), "detections_per_img": r.detections}


def build_mask_rcnn(recipe: MaskRCNNRecipe, num_classes: int, pieces: Pieces | None = None) -> nn.Module:
    """Lab 07's :func:`~course_utils.models.detection.mask_rcnn.small_mask_rcnn` with a recipe's settings."""
    r = _recipe(recipe, MaskRCNNRecipe, "MASK_RCNN")
    return small_mask_rcnn(num_classes, r.size, mask_layers=r.mask_layers, mask_sampling_ratio=r.mask_sampling_ratio,
                           pieces=pieces, **_heads_settings(r))


def build_keypoint_rcnn(recipe: KeypointRCNNRecipe, num_keypoints: int, pieces: Pieces | None = None) -> nn.Module:
    """Lab 07's :func:`~course_utils.models.detection.mask_rcnn.small_keypoint_rcnn` (one class: figures)."""
    r = _recipe(recipe, KeypointRCNNRecipe, "KEYPOINT_RCNN")
    return small_keypoint_rcnn(2, num_keypoints, r.size, keypoint_layers=r.keypoint_layers,
                               keypoint_sampling_ratio=r.keypoint_sampling_ratio, pieces=pieces, **_heads_settings(r))


def figure_config(recipe: KeypointRCNNRecipe) -> FigureConfig:
    """The stick-figure scenes of a keypoint recipe: ``FigureConfig(size, max_figures=max_things)``."""
    return FigureConfig(size=recipe.size, max_figures=recipe.max_things)


def validation_figures(recipe: KeypointRCNNRecipe, seed: int = 0) -> tuple[Figures, list[dict]]:
    """The keypoint recipe's validation figures (``n_val``, seed ``10_000 + seed``) and their targets."""
    figures = render_figures(figure_config(recipe), range(recipe.n_val), seed=VALIDATION_SEED + seed)
    return figures, [figures.target(i) for i in range(len(figures))]


def train_mask_rcnn(recipe: MaskRCNNRecipe, profile: Profile | str, pieces: Pieces | None = None,
                    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None, seed: int = 0,
                    progress: bool = True, eval_every: int = 0) -> tuple[nn.Module, History]:
    """Lab 07's training run (lab 05's schedule; the model seeded with ``torch.manual_seed(seed)``), with the
    student's ``pieces`` inside the model when given: ``(model, history)``."""
    r, profile = _recipe(recipe, MaskRCNNRecipe, "MASK_RCNN"), _profile(profile)
    scenes = scene_config(r)
    torch.manual_seed(seed)
    model = build_mask_rcnn(r, len(scenes.detection_classes), pieces)
    batches = SceneBatches(scenes, r.batch, seed=seed, task="detection", pool=r.pool, profile=profile)
    return model, train(model, batches, faster_rcnn_config(r, seed, progress, eval_every), evaluate=evaluate,
                        profile=profile)


def train_keypoint_rcnn(recipe: KeypointRCNNRecipe, profile: Profile | str, pieces: Pieces | None = None,
                        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None, seed: int = 0,
                        progress: bool = True, eval_every: int = 0) -> tuple[nn.Module, History]:
    """Lab 07's keypoint R-CNN trained on stick figures: ``(model, history)``."""
    from course_utils.data.figures import JOINTS

    r, profile = _recipe(recipe, KeypointRCNNRecipe, "KEYPOINT_RCNN"), _profile(profile)
    torch.manual_seed(seed)
    model = build_keypoint_rcnn(r, len(JOINTS), pieces)
    batches = FigureBatches(figure_config(r), r.batch, seed=seed, pool=r.pool, profile=profile)
    return model, train(model, batches, faster_rcnn_config(r, seed, progress, eval_every), evaluate=evaluate,
                        profile=profile)


def mask_rcnn_path(profile: Profile | str, folder: str | Path = "trained") -> Path:
    """Where lab 07 saves its Mask R-CNN: ``folder/07_mask_rcnn_<profile>.pt``."""
    return trained_path("07", "mask_rcnn", profile, folder)


def trained_mask_rcnn(profile: Profile | str, folder: str | Path = "trained", train_if_missing: bool = True,
                      save: bool = True, progress: bool = True) -> nn.Module:
    """Lab 07's Mask R-CNN trained with the profile's recipe (``MASK_RCNN[profile]``), in eval mode on the
    profile's device: loaded from ``folder/07_mask_rcnn_<profile>.pt`` when lab 07 saved it there, otherwise
    trained here (a printed line says so) and saved there when ``save``. Raises ``FileNotFoundError`` when
    the file is missing and ``train_if_missing`` is False, ``ValueError`` for a file of another recipe."""
    profile = _profile(profile)
    recipe = MASK_RCNN[profile.name]
    num_classes = len(scene_config(recipe).detection_classes)
    return load_or_train(mask_rcnn_path(profile, folder), recipe, lambda r: build_mask_rcnn(r, num_classes),
                         lambda: train_mask_rcnn(recipe, profile, progress=progress)[0],
                         f"lab 07's Mask R-CNN ({profile.name} recipe)", "lab 07",
                         f"{recipe.steps} steps ({_MASK_RCNN_TIME[profile.name]})", train_if_missing, save
                         ).to(profile.device).eval()


__all__ = [
    "KEYPOINT_RCNN",
    "HeadsRecipe",
    "MASK_RCNN",
    "KeypointRCNNRecipe",
    "MaskRCNNRecipe",
    "build_keypoint_rcnn",
    "build_mask_rcnn",
    "figure_config",
    "mask_rcnn_path",
    "train_keypoint_rcnn",
    "train_mask_rcnn",
    "trained_mask_rcnn",
    "validation_figures",
]
