"""``course doctor``: what is installed, what runs where, and what to fix."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import shutil
import sys
from pathlib import Path

REQUIRED = ("torch", "torchvision", "numpy", "scikit-image", "matplotlib", "ipywidgets", "jupyterlab",
            "jupyterlab_widgets", "ipykernel", "nbformat", "nbclient", "torchmetrics", "tqdm")
OPTIONAL = ("nbval", "pytest", "pytest-xdist", "jupyterlab-slideshow", "playwright", "pycocotools", "scikit-learn")


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _pins(root: Path | None) -> dict[str, str]:
    path = root / "constraints.txt" if root else None
    if not path or not path.is_file():
        return {}
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def diagnose(root: Path | None) -> tuple[list[str], list[str]]:
    """(report lines, problems with their fixes)."""
    report, problems = [], []
    report.append(f"python               {platform.python_version()} ({sys.executable})")
    import course_utils

    report.append(f"course_utils         {course_utils.__version__} ({Path(course_utils.__file__).parent})")
    pins = _pins(root)
    fix_install = "run `make env` (or `pip install -c constraints.txt -e .[dev]`) in the course folder"
    for name in REQUIRED + OPTIONAL:
        version = _version(name)
        pinned = pins.get(name.lower().replace("_", "-"))
        if version is None:
            (problems.append(f"{name} is not installed: {fix_install}") if name in REQUIRED
             else report.append(f"{name:<21} not installed (optional)"))
            continue
        base = version.split("+")[0]
        note = "" if not pinned or base == pinned else f"  (tested with {pinned})"
        report.append(f"{name:<21} {version}{note}")
        if name in ("torch", "torchvision") and pinned and base != pinned:
            problems.append(f"{name} {version} is not the tested {pinned}: {fix_install}")
    try:
        import torch
        from torchvision.ops import nms

        nms(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([1.0]), 0.5)
    except Exception as err:  # a broken torch/torchvision pair shows up here
        problems.append(f"torchvision's compiled ops do not load ({type(err).__name__}: {err}). "
                        "torch and torchvision must be the pinned pair (torch==2.14.1, torchvision==0.29.1); "
                        f"the CPU-only torch 2.13.0 wheel breaks them: {fix_install}")
    try:
        from course_utils.config import get_device, profile_name

        device = get_device()
        report.append(f"device               "
                      f"{device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
        report.append(f"profile              {profile_name(device)} (set COURSE_PROFILE=ci|cpu|gpu to change)")
    except ValueError as err:
        problems.append(f"{err}")
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
        if "python3" not in specs:
            problems.append("no 'python3' Jupyter kernel: run `python -m ipykernel install --sys-prefix`")
    except Exception as err:
        problems.append(f"Jupyter kernels cannot be listed ({err}): {fix_install}")
    try:
        from course_utils.data.images import load_image

        load_image("coins")
    except Exception as err:
        problems.append(f"scikit-image's sample images do not load ({err}): reinstall scikit-image")
    for tool, needed_for, fix in (
            ("chromium", "the browser tests", "`make browser-deps` (Debian: apt-get install chromium chromium-driver)"),
            ("npm", "the first `course slides` export (it fetches reveal.js, MathJax, ... by name)",
             "`make browser-deps` (Debian: apt-get install npm)")):
        where = shutil.which(tool)  # optional: the labs themselves never need it
        report.append(f"{tool:<21} {where or f'not found (only {needed_for} need it: {fix})'}")
    from course_utils.tools.grade.isolation import support

    sandbox = support()  # only instructors grading need it: reported, never a problem
    report.append(f"grading sandbox      {sandbox.how}" if sandbox.isolated else
                  f"grading sandbox      none: {sandbox.how}; `course grade` needs --no-sandbox here")
    if sandbox.cgroups:
        report.append(f"                     {sandbox.cgroups}")
    if root is not None:
        from course_utils.tools.build import build

        stale = build(root, check=True)
        if stale:
            problems.append("labs/ is out of date with solutions/: run `course build` "
                            f"({', '.join(p.name for p in stale)})")
    return report, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course doctor", description=__doc__)
    parser.parse_args(argv)
    from course_utils.tools.build import BuildError, find_root

    try:
        root = find_root()
    except BuildError:
        root = None
    report, problems = diagnose(root)
    print("\n".join(report))
    print(f"course               {root or 'not run from a course folder'}")
    if problems:
        print("\nProblems found:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("\nEverything looks fine.")
    return 0
