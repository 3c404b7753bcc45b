"""Device, seeding and the run profile.

Every lab starts with::

    P = get_profile()          # picks the device and the profile, seeds everything
    n_train = P.choose(ci=64, cpu=512, gpu=4096)

The profile sets data sizes and iteration counts:

- ``ci``: tiny, for tests (each notebook in about a minute on 2 CPU cores);
- ``cpu``: a student's laptop (a sensible result in a few minutes);
- ``gpu``: the full run that reaches the quality targets.

It is chosen from the device (CUDA -> ``gpu``, otherwise ``cpu``) and can be overridden with the
environment variable ``COURSE_PROFILE``. ``COURSE_DEVICE`` overrides the device (``cpu``, ``cuda``,
``cuda:1``, ``mps``).
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from course_utils import validation

PROFILES = ("ci", "cpu", "gpu")
DEFAULT_SEED = 0
T = TypeVar("T")


def get_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU (``COURSE_DEVICE`` overrides)."""
    wanted = os.environ.get("COURSE_DEVICE", "").strip()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as err:
            raise ValueError(f"COURSE_DEVICE={wanted!r} is not a device name; expected e.g. 'cpu' or 'cuda'") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"COURSE_DEVICE={wanted!r} but CUDA is not available on this machine; "
                             f"unset it or use 'cpu'")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"COURSE_DEVICE={wanted!r} but MPS is not available on this machine; "
                             f"unset it or use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def usable_cores() -> int:
    """The CPU cores this process may run on: a SLURM task's or ``taskset``'s share, not the whole machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def seed_everything(seed: int = DEFAULT_SEED) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); returns a CPU ``torch.Generator`` with that seed."""
    validation.int_at_least("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    """Where and how a training run executes, as :meth:`Profile.runtime` decides."""

    device: torch.device
    amp: bool                 # mixed precision (autocast)
    amp_dtype: torch.dtype    # bfloat16 where supported, else float16 (with a gradient scaler)
    compile: bool             # torch.compile


@dataclass(frozen=True)
class Profile:
    """Where and how big a lab runs. ``name`` is one of ``ci``, ``cpu``, ``gpu``."""

    name: str
    device: torch.device
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.name not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.name!r}")

    def choose(self, ci: T, cpu: T, gpu: T) -> T:
        """The value for this profile, e.g. ``P.choose(ci=2, cpu=20, gpu=200)`` epochs."""
        return {"ci": ci, "cpu": cpu, "gpu": gpu}[self.name]

    @property
    def use_amp(self) -> bool:
        """Mixed precision pays off on CUDA only."""
        return self.device.type == "cuda"

    def use_compile(self, steps: int) -> bool:
        """``torch.compile`` pays off on CUDA, for runs long enough to repay the compilation."""
        return self.device.type == "cuda" and steps >= 1000

    def runtime(self, steps: int, amp: bool | None = None, compile: bool | None = None) -> Runtime:
        """How a training run of ``steps`` steps executes here; ``amp`` / ``compile`` override the
        profile's choice (``None`` keeps it; AMP and compilation stay off without CUDA)."""
        cuda = self.device.type == "cuda"
        use_amp = self.use_amp if amp is None else bool(amp) and cuda
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
        return Runtime(self.device, use_amp, dtype, self.use_compile(steps) if compile is None else bool(compile))

    def on(self, device: torch.device | str) -> Profile:
        """The same profile on another device."""
        return replace(self, device=torch.device(device))

    def __str__(self) -> str:
        return f"profile {self.name!r} on {self.device} (seed {self.seed})"


def profile_name(device: torch.device) -> str:
    """``COURSE_PROFILE`` if set, else ``gpu`` on CUDA and ``cpu`` elsewhere."""
    name = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if name:
        if name not in PROFILES:
            raise ValueError(f"COURSE_PROFILE={name!r} is not a profile; expected one of {', '.join(PROFILES)}")
        return name
    return "gpu" if device.type == "cuda" else "cpu"


def current_profile(device: torch.device | str | None = None) -> Profile:
    """The profile this machine runs (``COURSE_PROFILE``, else from the device), without seeding."""
    device = torch.device(device) if device is not None else get_device()
    return Profile(profile_name(device), device)


class SetupError(ValueError):
    """A bad ``COURSE_PROFILE`` / ``COURSE_DEVICE``. In a notebook it shows as its message alone (no
    traceback), and Run All stops at that first cell."""

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [f"\u274c {self}"]


def get_profile(seed: int = DEFAULT_SEED, verbose: bool = False) -> Profile:
    """Pick the device and profile, seed everything, and return the :class:`Profile`.

    A bad ``COURSE_PROFILE`` or ``COURSE_DEVICE`` raises :class:`SetupError` with one line saying what was
    given, what is allowed and how to unset it; ``COURSE_PROFILE=gpu`` without CUDA warns (it is slow)."""
    try:
        device = get_device()
        name = profile_name(device)
    except ValueError as err:
        variable = "COURSE_DEVICE" if "COURSE_DEVICE" in str(err) else "COURSE_PROFILE"
        raise SetupError(f"{err}. Unset it (`%env {variable}=` in a cell, or `unset {variable}` in the "
                         "shell before starting JupyterLab), then restart the kernel.") from None
    seed_everything(seed)
    profile = Profile(name, device, seed)
    if name == "ci" and device.type == "cpu":
        # The ci profile runs where notebooks execute side by side (make test: pytest -n 2 on 2 cores). With
        # two intra-op threads per kernel, every small torch op then waits for a busy core: measured here,
        # 30 YOLO steps took 20.7 s with 2 threads under contention and 2.8 s with 1; a deck of many tiny ops
        # took minutes instead of 8 s. One thread per kernel in ci; cpu and gpu keep torch's default.
        torch.set_num_threads(1)
    if name == "gpu" and device.type != "cuda":
        warnings.warn(f"COURSE_PROFILE=gpu on {device}: the gpu profile's full-size runs take a long time "
                      "without CUDA; the cpu profile is sized for this machine (unset COURSE_PROFILE).",
                      stacklevel=2)
    if verbose:
        print(f"Running with {profile}.")
    return profile
