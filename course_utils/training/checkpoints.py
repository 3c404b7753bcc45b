"""Saving and resuming a training run (model, optimizer, schedule, gradient scaler, history and every
random state, so that a resumed run gives the same result as one that was never interrupted), and the
trained models that one lab saves for the next (weights + the recipe they were trained with)."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_utils.files import atomic_torch_save


def rng_state() -> dict[str, Any]:
    """The random states of Python, NumPy and torch (and CUDA, when present)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, step: int, extra: dict[str, Any], **stateful: Any) -> None:
    """Write ``stateful`` objects' ``state_dict()``, ``step``, ``extra`` and the random states to ``path``
    (atomically: a crash never leaves half a file)."""
    state = {name: obj.state_dict() for name, obj in stateful.items()}
    atomic_torch_save({**state, "step": step, "extra": extra, "rng": rng_state()}, path)


def load_checkpoint(path: str | Path, **stateful: Any) -> tuple[int, dict[str, Any]]:
    """Load ``path`` into the ``stateful`` objects and restore the random states; returns
    ``(step, extra)``. Everything is loaded on the CPU first (``load_state_dict`` moves it)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    for name, obj in stateful.items():
        obj.load_state_dict(state[name])
    set_rng_state(state["rng"])
    return state["step"], state["extra"]


# ---- trained models handed from one lab to the next -----------------------------------------------
def _recipe_fields(recipe: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(recipe) or isinstance(recipe, type):
        raise TypeError(f"recipe must be the recipe (a dataclass instance such as FASTER_RCNN['cpu']) the model "
                        f"was trained with, got {type(recipe).__name__}")
    return dataclasses.asdict(recipe)


def profile_name(profile: Any) -> str:
    """``"cpu"`` for the lab's ``Profile`` or a profile name."""
    name = getattr(profile, "name", profile)
    if name not in ("ci", "cpu", "gpu"):
        raise ValueError(f"profile must be the lab's Profile (P) or one of 'ci', 'cpu', 'gpu', got {profile!r}")
    return str(name)


def trained_path(lab: str, model: str, profile: Any, folder: str | Path = "trained") -> Path:
    """Where a lab saves its trained model for later labs: ``folder/<lab>_<model>_<profile>.pt``
    (``trained_path("05", "faster_rcnn", P)`` -> ``trained/05_faster_rcnn_cpu.pt``)."""
    return Path(folder) / f"{lab}_{model}_{profile_name(profile)}.pt"


def save_trained(model: torch.nn.Module, recipe: Any, path: str | Path) -> None:
    """Save a trained model's weights with the recipe it was trained with (atomically), for :func:`load_trained`."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    fields = _recipe_fields(recipe)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"recipe": type(recipe).__name__, "settings": fields, "state_dict": state}, path)


def load_trained(path: str | Path, recipe: Any, build: Callable[[Any], torch.nn.Module]) -> torch.nn.Module:
    """The model saved by :func:`save_trained` at ``path``, built with ``build(recipe)``; a ``ValueError`` if it was
    trained with another recipe (a stale file: delete it, or re-run the lab that saved it)."""
    wanted = _recipe_fields(recipe)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or set(saved) != {"recipe", "settings", "state_dict"}:
        raise ValueError(f"{path} is not a file written by save_trained (or by an older course version): delete it "
                         "and re-run the lab that saved it")
    if saved["recipe"] != type(recipe).__name__ or saved["settings"] != wanted:
        have = saved["settings"]
        diff = sorted(k for k in set(have) | set(wanted) if have.get(k, "<missing>") != wanted.get(k, "<missing>"))
        raise ValueError(f"{path} was trained with another recipe ({saved['recipe']}; differing: "
                         + ", ".join(f"{k}: saved {have.get(k, '<missing>')!r}, wanted {wanted.get(k, '<missing>')!r}"
                                     for k in diff)
                         + "); delete it or re-run the lab that saved it")
    model = build(recipe)
    model.load_state_dict(saved["state_dict"])
    return model


def load_or_train(path: str | Path, recipe: Any, build: Callable[[Any], torch.nn.Module],
                  train: Callable[[], torch.nn.Module], what: str, saved_by: str, how_long: str,
                  train_if_missing: bool = True, save: bool = True) -> torch.nn.Module:
    """The model a lab saved at ``path`` (:func:`load_trained` with ``recipe`` and ``build``), or, when the file is
    missing, ``train()`` (a printed line says so, ``how_long`` it takes and how long it took) saved there when
    ``save``. ``what`` names the model and ``saved_by`` the lab that saves it, for the messages. A
    ``FileNotFoundError`` when the file is missing and ``train_if_missing`` is False."""
    path = Path(path)
    if path.exists():
        model = load_trained(path, recipe, build)
        print(f"{what[0].upper() + what[1:]} loaded from {path}")
        return model
    if not train_if_missing:
        raise FileNotFoundError(f"{path} not found: run {saved_by} (it saves {what} there) or pass "
                                "train_if_missing=True")
    print(f"{path} not found ({saved_by} saves it there): training {what} here, {how_long}", flush=True)
    tick = time.perf_counter()
    model = train()
    print(f"trained in {time.perf_counter() - tick:.0f} s" + (f"; saved to {path}" if save else ""))
    if save:
        save_trained(model, recipe, path)
    return model
