"""The measured per-profile recipes of lab 05's Faster R-CNN and lab 06's YOLO, as frozen dataclasses.

    R = FASTER_RCNN[P.name]                               # scenes, model, sampling, schedule
    model, history = train_faster_rcnn(R, P)              # what lab 05 trains
    save_trained(model, R, faster_rcnn_path(P))           # trained/05_faster_rcnn_cpu.pt
    faster = trained_faster_rcnn(P)                       # lab 06: lab 05's detector, loaded or trained here
    yolo, history = train_yolo(YOLO[P.name], P)

Both detectors see the same scenes: ``SceneConfig(size, max_things)``, training scenes from
``SceneBatches(..., seed=0, pool=pool)``, and lab 05's validation scenes
``render_scenes(scenes, range(n_val), seed=10_000)`` (:func:`validation_scenes`). Training times and
scores are in bench/RESULTS.md (``python bench/detection.py``); the ``gpu`` recipes' figures there are
the ones measured on a GPU, or marked unmeasured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.config import Profile, get_device
from course_utils.data.batches import SceneBatches
from course_utils.data.scenes import SceneConfig, Scenes, render_scenes
from course_utils.data.yolo import YoloBatches
from course_utils.models.detection.faster_rcnn import small_faster_rcnn
from course_utils.models.detection.pieces import Pieces
from course_utils.models.detection.yolo import TinyYOLO
from course_utils.ops.yolo import yolo_loss_terms
from course_utils.training.checkpoints import load_or_train, profile_name, trained_path
from course_utils.training.config import TrainConfig
from course_utils.training.history import History
from course_utils.training.loop import train

VALIDATION_SEED = 10_000   # lab 05's validation scenes: render_scenes(scenes, range(n_val), seed=10_000)

# Lab 05 (solutions/05_rcnn.ipynb). cpu, measured (bench/detection.py, 2 quiet cores, 2026-12-05 10:15 UTC): 1500 steps
# in 66 s, box mAP 0.708, mAP50 0.902 on the 128 validation scenes (seed 1: 0.680 / 0.897). 1000 steps were too few to
# be safe: 0.815 / 0.590 in 94 s at 02:00 the same day, 0.655 / 0.471 at 10:00 on another host (same code, same
# seeds: the float sums differ between machines and training amplified it), as lab 07's 1000 steps. Lab 07's cuts:
# a 16-wide backbone reduced to 32 channels, 1 RoIAlign sample per bin, 32 RoIs per image, a 128-wide box head (0.31 M
# parameters). The recipe before (32-wide, 256-wide head, 2 samples, 64 RoIs; 2.12 M parameters) reached 0.776 /
# 0.603 in 173 s on 12-02 and needed about 450 s the same day as this measurement (the machine was 2-2.4x slower
# than on 12-02): torchvision's RoIAlign backward pass was 38 % of its step. Stride-4 features (out_stride 4),
# anchors scaled with the scenes. The notebook trains with the student's anchors,
# box coder, matcher and NMS (the solution's: a cpu step +14 %, a ci step +61 %, 1 thread at load 8-9) and runs the
# student's RoIAlign at evaluation only (with it a cpu step is 4.2x torchvision's): bench/RESULTS.md, issue 20.
@dataclass(frozen=True)
class FasterRCNNRecipe:
    """Lab 05's Faster R-CNN: its scenes, model, sampling and schedule (``dataclasses.replace(r, steps=100)``
    for a variant)."""

    size: int                    # scene side in pixels (SceneConfig.size)
    max_things: int              # things per scene, at most
    width: int                   # backbone width (SmallBackbone)
    depth: int                   # convs per backbone stage
    rep: int                     # width of the box head's two fully connected layers
    batch: int                   # scenes per step
    steps: int
    lr: float
    warmup: int
    n_val: int                   # validation scenes (render_scenes(..., seed=VALIDATION_SEED))
    pool: int | None             # training scenes rendered once and sampled from (None: new scenes every step)
    anchors: tuple[int, ...]     # anchor sides in pixels
    rpn_batch: int               # anchors sampled per image for the RPN losses
    box_batch: int               # proposals sampled per image for the box head losses
    out_channels: int | None = None   # 1x1 reduction of the backbone's features (None: 4 x width)
    sampling_ratio: int = 2           # RoIAlign samples per bin and axis in the box head (slow backward on CPU)


# gpu, measured on one H200 (2026-12-04, torch 2.11 there, bench/detection.py --set steps=N, the
# machine's 16 cores for torch): 300 steps in 25.8 s reach mAP50 0.938 / mAP 0.698 on the 512 validation
# scenes; 600 steps in 58.4 s (two notebooks running beside it) reach 0.971 / 0.854. 6000 steps, the
# value before, would have taken about 9 min alone and 50 min beside the other labs.
FASTER_RCNN: dict[str, FasterRCNNRecipe] = {
    # ci: a smoke test; 30 steps and 16 validation scenes since lab 05 trains with the student's NMS (a Python loop
    # over each image's 600 proposals in the solution: a ci step 1.6x torchvision's), so that ci costs no more
    "ci": FasterRCNNRecipe(size=96, max_things=3, width=16, depth=2, rep=128, batch=4, steps=30, lr=4e-3, warmup=5,
                           n_val=16, pool=256, anchors=(12, 24, 48), rpn_batch=64, box_batch=64),
    "cpu": FasterRCNNRecipe(size=96, max_things=3, width=16, depth=2, rep=128, batch=4, steps=1500, lr=4e-3,
                            warmup=75, n_val=128, pool=2048, anchors=(12, 24, 48), rpn_batch=64, box_batch=32,
                            out_channels=32, sampling_ratio=1),
    "gpu": FasterRCNNRecipe(size=128, max_things=4, width=48, depth=3, rep=512, batch=16, steps=600, lr=2e-3,
                            warmup=300, n_val=512, pool=None, anchors=(16, 32, 64), rpn_batch=128, box_batch=128),
}

# Lab 06 (bench/detection.py --only yolo compare). Same scenes and validation scenes as lab 05. Grid 12 =
# stride 8 on 96-px scenes (grid 6 = stride 16 was much worse: mAP50 0.44 against 0.77 after 500 steps, and
# slower, its 4th stage being the widest); 0.32 % of the objects share a cell with an earlier one and are
# left out of the target (grid 6: 1.35 %). Left-right flips (YoloBatches). AdamW, warmup, cosine.
# cpu, measured (2 cores, torch 2 threads): 500 steps in 48 s at load 1.7 (33-100 s as the load varied),
# mAP50 0.766 / mAP 0.508 at yolo_detect's score threshold 0.2 (0.842 / 0.549 at 0.05); other seeds: mAP50
# 0.836 (seed 1), 0.766 (seed 2). B = 1 does as well here (0.836) but B = 2 is YOLOv1's (lab 06 teaches
# the responsible predictor). Inference 5x (batch 1) to 11x (batch 16) the images/s of lab 05's Faster R-CNN as its
# recipe was then; 1.8x and 1.6x against its cheaper recipe of 2026-12-05 (solutions/06_yolo.ipynb).
# Again on 2026-12-05 (bench/detection.py, a day when the machine ran 2-2.4x slower): 500 steps in 107 s, mAP50
# 0.744 / mAP 0.476; the student's yolo_loss in the notebook the same figure in 110 s.
@dataclass(frozen=True)
class YoloRecipe:
    """Lab 06's tiny YOLO: its scenes (the same as lab 05's), grid, model and schedule."""

    size: int
    max_things: int
    grid: int                    # S: the output grid is S x S (stride size / S)
    num_boxes: int               # B: predictors per cell
    width: int
    depth: int
    batch: int
    steps: int
    lr: float
    warmup: int
    weight_decay: float
    n_val: int
    pool: int | None
    flip: bool                   # left-right flips of the training scenes


YOLO: dict[str, YoloRecipe] = {
    "ci": YoloRecipe(size=96, max_things=3, grid=12, num_boxes=2, width=16, depth=2, batch=16, steps=200, lr=3e-3,
                     warmup=10, weight_decay=1e-4, n_val=32, pool=256, flip=True),
    "cpu": YoloRecipe(size=96, max_things=3, grid=12, num_boxes=2, width=32, depth=2, batch=16, steps=500, lr=3e-3,
                      warmup=30, weight_decay=1e-4, n_val=128, pool=2048, flip=True),
    # 128-px scenes with up to 4 things, stride 8, wider and deeper. Measured on one H200 (2026-12-04): 300
    # steps in 16.8 s reach mAP50 0.788 / mAP 0.465 (0.844 / 0.490 at score threshold 0.05), below the 0.8
    # target; 1500 steps (about 85 s at that rate) are not measured yet (bench/RESULTS.md, profile gpu).
    "gpu": YoloRecipe(size=128, max_things=4, grid=16, num_boxes=2, width=48, depth=3, batch=32, steps=1500,
                      lr=2e-3, warmup=300, weight_decay=1e-4, n_val=512, pool=None, flip=True),
}

@dataclass(frozen=True)
class Measured:
    """A recipe's training run with the course's own pieces (torchvision's parts in the Faster R-CNN, the
    course's loss terms in the YOLO): what the labs print beside the figure the student's pieces reach."""

    map_50: float                # on the recipe's validation scenes
    map: float
    seconds: float               # training time
    where: str                   # the machine and its load

    def line(self) -> str:
        """``"mAP50 0.776, mAP 0.603 in 173 s (2 CPU cores, quiet)"``."""
        return f"mAP50 {self.map_50:.3f}, mAP {self.map:.3f} in {self.seconds:.0f} s ({self.where})"


# The recipes above with the course's pieces, as the labs print them (None: not measured). cpu: bench/RESULTS.md
# (bench/detection.py); gpu: lab 05's 600 steps on the H200 (two notebooks running beside it).
FASTER_RCNN_MEASURED: dict[str, Measured | None] = {
    "ci": None,
    "cpu": Measured(0.902, 0.708, 66.2, "2 CPU cores, load 1.8-1.9"),
    "gpu": Measured(0.971, 0.854, 58.4, "one H200, two notebooks beside it"),
}
YOLO_MEASURED: dict[str, Measured | None] = {
    "ci": None,
    "cpu": Measured(0.744, 0.476, 107.3, "2 CPU cores, load 1.0-1.8"),
    "gpu": None,
}

# rough training times of the Faster R-CNN recipes, for the message printed before training it
_FASTER_RCNN_TIME = {"ci": "about 5-10 s on 2 CPU cores", "cpu": "about 1-3 min on 2 CPU cores",
                     "gpu": "about 1 min on an H200"}


def _profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    return Profile(profile_name(profile), get_device())


def _recipe(recipe: object, kind: type, known: str) -> Any:
    if not isinstance(recipe, kind):
        raise TypeError(f"recipe must be a {kind.__name__} (e.g. {known}['cpu'], or "
                        f"dataclasses.replace({known}['cpu'], steps=100)), got {type(recipe).__name__}")
    return recipe


def scene_config(recipe: FasterRCNNRecipe | YoloRecipe) -> SceneConfig:
    """The scenes of a recipe: ``SceneConfig(size, max_things)``."""
    return SceneConfig(size=recipe.size, max_things=recipe.max_things)


def validation_scenes(recipe: FasterRCNNRecipe | YoloRecipe, seed: int = 0) -> tuple[Scenes, list[dict]]:
    """Lab 05's validation scenes of a recipe (``n_val`` of them, rendered with seed ``10_000 + seed``) and
    their targets: ``(scenes, [scenes.target(i), ...])``."""
    scenes = render_scenes(scene_config(recipe), range(recipe.n_val), seed=VALIDATION_SEED + seed)
    return scenes, [scenes.target(i) for i in range(len(scenes))]


def detector_settings(recipe: FasterRCNNRecipe) -> dict[str, Any]:
    """The keyword arguments of ``small_faster_rcnn`` (backbone, anchors, sampling, box head) that a recipe sets
    (lab 07's Mask R-CNN and keypoint R-CNN take them too)."""
    r = _recipe(recipe, FasterRCNNRecipe, "FASTER_RCNN")
    return {"width": r.width, "depth": r.depth, "out_stride": 4, "anchor_sizes": r.anchors, "representation": r.rep,
            "rpn_batch_size": r.rpn_batch, "box_batch_size": r.box_batch, "box_positive_fraction": 0.5,
            "out_channels": r.out_channels, "sampling_ratio": r.sampling_ratio}


def build_faster_rcnn(recipe: FasterRCNNRecipe, num_classes: int, pieces: Pieces | None = None) -> nn.Module:
    """Lab 05's ``small_faster_rcnn`` with a recipe's model settings; ``num_classes`` counts the background;
    ``pieces``: the student's functions inside it (see :func:`~course_utils.models.detection.choose_pieces`)."""
    r = _recipe(recipe, FasterRCNNRecipe, "FASTER_RCNN")
    return small_faster_rcnn(num_classes, r.size, pieces=pieces, **detector_settings(r))


def build_yolo(recipe: YoloRecipe, num_classes: int) -> TinyYOLO:
    """Lab 06's :class:`TinyYOLO` with a recipe's settings (stride ``size / grid``); ``num_classes`` = the
    thing classes ``C`` (YOLO has no background class)."""
    r = _recipe(recipe, YoloRecipe, "YOLO")
    if r.size % r.grid:
        raise ValueError(f"size {r.size} must be a multiple of grid {r.grid}")
    return TinyYOLO(num_classes, r.grid, r.num_boxes, r.width, stride=r.size // r.grid, depth=r.depth)


def faster_rcnn_config(recipe: FasterRCNNRecipe, seed: int = 0, progress: bool = True,
                       eval_every: int = 0) -> TrainConfig:
    """The :class:`TrainConfig` of lab 05's training run: the recipe's schedule, gradients clipped at 10."""
    r = _recipe(recipe, FasterRCNNRecipe, "FASTER_RCNN")
    return TrainConfig(steps=r.steps, lr=r.lr, warmup=r.warmup, grad_clip=10.0, compile=False, seed=seed,
                       progress=progress, eval_every=eval_every)


def train_faster_rcnn(recipe: FasterRCNNRecipe, profile: Profile | str,
                      evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None, seed: int = 0,
                      progress: bool = True, eval_every: int = 0) -> tuple[nn.Module, History]:
    """Lab 05's training run of a recipe (model seeded with ``torch.manual_seed(seed)``): ``(model, history)``."""
    r, profile = _recipe(recipe, FasterRCNNRecipe, "FASTER_RCNN"), _profile(profile)
    scenes = scene_config(r)
    torch.manual_seed(seed)
    model = build_faster_rcnn(r, len(scenes.detection_classes))
    batches = SceneBatches(scenes, r.batch, seed=seed, task="detection", pool=r.pool, profile=profile)
    config = faster_rcnn_config(r, seed, progress, eval_every)
    return model, train(model, batches, config, evaluate=evaluate, profile=profile)


def train_yolo(recipe: YoloRecipe, profile: Profile | str,
               evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None, seed: int = 0,
               progress: bool = True, eval_every: int = 0,
               loss_fn: Callable[..., Any] = yolo_loss_terms) -> tuple[TinyYOLO, History]:
    """Lab 06's training run of a recipe: AdamW with warmup and cosine decay, gradient clipping at 10,
    ``loss_fn`` (default the reference :func:`~course_utils.ops.yolo.yolo_loss_terms`): ``(model, history)``."""
    r, profile = _recipe(recipe, YoloRecipe, "YOLO"), _profile(profile)
    scenes = scene_config(r)
    torch.manual_seed(seed)
    model = build_yolo(r, len(scenes.things))
    batches = YoloBatches(scenes, r.batch, r.grid, seed=seed, pool=r.pool, flip=r.flip, profile=profile)
    config = TrainConfig(steps=r.steps, lr=r.lr, warmup=r.warmup, weight_decay=r.weight_decay, grad_clip=10.0,
                         seed=seed, progress=progress, eval_every=eval_every)
    return model, train(model, batches, config, loss_fn=loss_fn, evaluate=evaluate, profile=profile)


def faster_rcnn_path(profile: Profile | str, folder: str | Path = "trained") -> Path:
    """Where lab 05 saves its detector: ``folder/05_faster_rcnn_<profile>.pt``."""
    return trained_path("05", "faster_rcnn", profile, folder)


def trained_faster_rcnn(profile: Profile | str, folder: str | Path = "trained", train_if_missing: bool = True,
                        save: bool = True, progress: bool = True) -> nn.Module:
    """Lab 05's Faster R-CNN trained with the profile's recipe (``FASTER_RCNN[profile]``), in eval mode on
    the profile's device: loaded from ``folder/05_faster_rcnn_<profile>.pt`` when lab 05 saved it there,
    otherwise trained here (a printed line says so and how long it takes) and saved there when ``save``.

    Raises ``FileNotFoundError`` when the file is missing and ``train_if_missing`` is False, and
    ``ValueError`` when the file holds a model trained with another recipe.
    """
    profile = _profile(profile)
    recipe = FASTER_RCNN[profile.name]
    num_classes = len(scene_config(recipe).detection_classes)
    return load_or_train(faster_rcnn_path(profile, folder), recipe, lambda r: build_faster_rcnn(r, num_classes),
                         lambda: train_faster_rcnn(recipe, profile, progress=progress)[0],
                         f"lab 05's Faster R-CNN ({profile.name} recipe)", "lab 05",
                         f"{recipe.steps} steps ({_FASTER_RCNN_TIME[profile.name]})", train_if_missing, save
                         ).to(profile.device).eval()


__all__ = [
    "FASTER_RCNN",
    "FASTER_RCNN_MEASURED",
    "VALIDATION_SEED",
    "YOLO",
    "YOLO_MEASURED",
    "FasterRCNNRecipe",
    "Measured",
    "YoloRecipe",
    "build_faster_rcnn",
    "build_yolo",
    "detector_settings",
    "faster_rcnn_config",
    "faster_rcnn_path",
    "scene_config",
    "train_faster_rcnn",
    "train_yolo",
    "trained_faster_rcnn",
    "validation_scenes",
]
