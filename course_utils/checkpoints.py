"""Saving and resuming a training run: model, optimizer, schedule, gradient scaler, history and every
random state, so that a resumed run gives the same result as one that was never interrupted."""

from __future__ import annotations

import random
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
