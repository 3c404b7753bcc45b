"""The measured per-profile recipe of lab 02's FCN-8s (and the FCN-32s / U-Net it is compared with), read by
``solutions/02_fcn.ipynb`` and ``bench/fcn.py`` alike.

    R = FCN[P.name]
    scenes, val = scene_config(R), validation_scenes(R, P.device)
    model = course_utils.models.FCN(scenes.num_classes, "8s", R.width)
    history = train(model, scene_batches(R, P), fcn_config(R), loss_fn=..., evaluate=..., profile=P)
    save_trained(model, R, fcn8s_path(P))             # trained/02_fcn8s_cpu.pt, for lab 09
    fcn8s = trained_fcn8s(P)                          # lab 09: lab 02's FCN-8s, loaded or trained here
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from course_utils.config import Profile, get_device
from course_utils.data.batches import SceneBatches
from course_utils.data.scenes import SceneConfig, Scenes, render_scenes
from course_utils.models.segmentation.fcn import FCN as FCNModel
from course_utils.training.checkpoints import load_or_train, profile_name, trained_path
from course_utils.training.config import TrainConfig
from course_utils.training.loop import train

VALIDATION_SEED = 1   # lab 02's validation scenes: render_scenes(scenes, range(n_val), seed=1), unseen in training


@dataclass(frozen=True)
class FCNRecipe:
    """Lab 02's segmentation run: scenes, model width, schedule."""

    size: int                # scene side in pixels
    width: int               # FCN backbone width (models.FCN(..., width))
    batch: int
    steps: int               # FCN-8s: the model whose quality target the lab checks
    compare_steps: int       # FCN-32s and the U-Net (on a CPU FCN-32s's 64 x 64 upsampling kernel is ~3x slower)
    lr: float
    n_val: int
    pool: int | None         # training scenes rendered once and sampled from (None: new scenes every step)
    eval_every: int
    target: float | None     # the FCN-8s validation mIoU the lab promises (None: a smoke test)


# cpu, measured (bench/RESULTS.md, solutions/02_fcn.ipynb): FCN-8s reaches mIoU >= 0.80 within the 2000 steps on 2
# cores. gpu, measured on one H200 shared with every other lab's gpu run (2026-12-04, bench/RESULTS.md): FCN-8s's
# 3000 steps take 206-210 s and reach mIoU 0.957 (boundary F-score 0.974); lab 02's FCN-32s reaches 0.859 in 191 s.
FCN: dict[str, FCNRecipe] = {
    "ci": FCNRecipe(size=64, width=8, batch=8, steps=16, compare_steps=16, lr=3e-3, n_val=16, pool=64, eval_every=8,
                    target=None),
    "cpu": FCNRecipe(size=64, width=16, batch=16, steps=2000, compare_steps=600, lr=3e-3, n_val=64, pool=4096,
                     eval_every=200, target=0.80),
    "gpu": FCNRecipe(size=128, width=32, batch=32, steps=3000, compare_steps=3000, lr=3e-3, n_val=512, pool=None,
                     eval_every=500, target=0.90),
}


def scene_config(recipe: FCNRecipe) -> SceneConfig:
    """The scenes of a recipe (the default stuff and things at ``size`` pixels)."""
    return SceneConfig(size=recipe.size)


def validation_scenes(recipe: FCNRecipe, device: torch.device | str = "cpu", seed: int = 0) -> Scenes:
    """Lab 02's ``n_val`` unseen validation scenes (rendered with seed ``1 + seed``)."""
    return render_scenes(scene_config(recipe), range(recipe.n_val), seed=VALIDATION_SEED + seed, device=device)


def scene_batches(recipe: FCNRecipe, profile: Profile, seed: int = 0) -> SceneBatches:
    """Lab 02's training batches: ``batch`` scenes a step, drawn from a pool of ``pool`` scenes."""
    return SceneBatches(scene_config(recipe), recipe.batch, seed=seed, profile=profile, pool=recipe.pool)


def fcn_config(recipe: FCNRecipe, steps: int | None = None, seed: int = 0, progress: bool = True,
               eval_every: int | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a run of ``steps`` (default ``recipe.steps``): AdamW, warmup, cosine."""
    n = recipe.steps if steps is None else steps
    return TrainConfig(steps=n, lr=recipe.lr, warmup=min(100, n // 10), seed=seed, progress=progress,
                       eval_every=recipe.eval_every if eval_every is None else eval_every)


# measured: bench/RESULTS.md (fcn.py) and solutions/02_fcn.ipynb
_FCN8S_TIME = {"ci": "a few seconds", "cpu": "about 100 s on 2 quiet CPU cores",
               "gpu": "about 3.5 min on a shared H200"}


def fcn8s_path(profile: Profile | str, folder: str | Path = "trained") -> Path:
    """Where lab 02 saves its FCN-8s: ``folder/02_fcn8s_<profile>.pt``."""
    return trained_path("02", "fcn8s", profile, folder)


def build_fcn8s(recipe: FCNRecipe) -> FCNModel:
    """Lab 02's FCN-8s with a recipe's width, for the scenes' classes."""
    return FCNModel(scene_config(recipe).num_classes, "8s", recipe.width)


def train_fcn8s(recipe: FCNRecipe, profile: Profile, seed: int = 0, progress: bool = True):
    """Lab 02's FCN-8s trained with a recipe (``recipe.steps`` steps, cross-entropy): ``(model, history)``."""
    torch.manual_seed(seed)
    model = build_fcn8s(recipe)
    history = train(model, scene_batches(recipe, profile, seed), fcn_config(recipe, seed=seed, progress=progress,
                                                                             eval_every=0),
                    loss_fn=F.cross_entropy, profile=profile)
    return model, history


def trained_fcn8s(profile: Profile | str, folder: str | Path = "trained", train_if_missing: bool = True,
                  save: bool = True, progress: bool = True) -> torch.nn.Module:
    """Lab 02's FCN-8s trained with the profile's recipe (``FCN[profile]``), in eval mode on the profile's device:
    loaded from ``folder/02_fcn8s_<profile>.pt`` when lab 02 saved it there, otherwise trained here (a printed
    line says so and how long it takes) and saved there when ``save``.

    Raises ``FileNotFoundError`` when the file is missing and ``train_if_missing`` is False, and ``ValueError``
    when the file holds a model trained with another recipe.
    """
    profile = profile if isinstance(profile, Profile) else Profile(profile_name(profile), get_device())
    recipe = FCN[profile.name]
    model = load_or_train(fcn8s_path(profile, folder), recipe, build_fcn8s,
                          lambda: train_fcn8s(recipe, profile, progress=progress)[0],
                          f"lab 02's FCN-8s ({profile.name} recipe)", "lab 02",
                          f"{recipe.steps} steps ({_FCN8S_TIME[profile.name]})", train_if_missing, save)
    return model.to(profile.device).eval()
