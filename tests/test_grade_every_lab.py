"""`course grade` from an installed wheel gives every lab's solution full marks and every unsolved lab zero.

The package is built as a wheel and installed into a scratch folder outside the checkout; the grader
runs from there (``python -m course_utils grade``, working directory outside the checkout), so it can only
use what the wheel ships: no ``labs/`` or ``solutions/`` folder to read function names from. The
submissions carry no lab number in their file names, and the solutions none in their metadata either:
the grader tells the lab from the exercises their cells check. A new lab joins this test by existing.
As root (CI) every notebook is graded in the sandbox, which must find the wheel's package and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _labs import labs_with_notebooks

from course_utils.exercises import lab_exercises
from course_utils.tools.grade import isolation

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow   # grades every lab's solution and unsolved notebook from a wheel

LABS = {lab: (sorted((ROOT / "labs").glob(f"{lab}_*.ipynb")) or [ROOT / "labs" / f"{lab}_missing.ipynb"])[0]
        for lab in labs_with_notebooks()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy of what the wheel is made of: setuptools' build/ folder stays out of the checkout,
    # and a stale one left there (modules since deleted) cannot get into the wheel
    source = tmp / "source"
    shutil.copytree(ROOT / "course_utils", source / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp / "dist"), str(source)], check=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("course_utils-*.whl"))
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, cwd=tmp)
    submissions = tmp / "in"
    submissions.mkdir()
    for lab, path in LABS.items():
        solved = json.loads((ROOT / "solutions" / path.name).read_text())
        solved["metadata"].pop("course", None)
        (submissions / f"solved_{lab}.ipynb").write_text(json.dumps(solved))
        (submissions / f"unsolved_{lab}.ipynb").write_bytes(path.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHONPATH"))}
    env.update(PYTHONPATH=str(site), COURSE_GRADE_SEED="4242")
    where = subprocess.run([sys.executable, "-c", "import course_utils; print(course_utils.__file__)"],
                           env=env, cwd=tmp, capture_output=True, text=True, check=True).stdout.strip()
    sandbox = [] if isolation.support().isolated else ["--no-sandbox"]  # CI runs as root: in the sandbox
    done = subprocess.run([sys.executable, "-m", "course_utils", "grade", str(submissions), "--out", str(tmp / "out"),
                           "--jobs", "2", *sandbox], env=env, cwd=tmp, capture_output=True, text=True, timeout=1200)
    book = json.loads((tmp / "out" / "grades.json").read_text())
    grades = {e["student"]: e for e in book["submissions"]}
    return {"where": where, "done": done, "grades": grades, "site": site, "sandbox": book["sandbox"]}


def test_the_grader_runs_from_the_wheel(graded):
    assert Path(graded["where"]).is_relative_to(graded["site"]), graded["where"]
    assert graded["done"].returncode == 0, graded["done"].stderr[-2000:]
    assert graded["sandbox"].startswith("namespaces" if isolation.support().isolated else "none")


@pytest.mark.parametrize("lab", list(LABS))
def test_every_solution_scores_full_marks(graded, lab):
    entry = graded["grades"][f"solved_{lab}"]
    problems = {k: v["message"] for k, v in entry["exercises"].items() if not v["passed"]}
    assert entry["lab"] == lab and not problems, (entry["status"], entry["reason"], problems)
    assert set(entry["exercises"]) == {ex.id for ex in lab_exercises(lab)}
    assert entry["total"] == entry["out_of"] == sum(ex.points for ex in lab_exercises(lab))


@pytest.mark.parametrize("lab", list(LABS))
def test_every_unsolved_lab_scores_zero(graded, lab):
    entry = graded["grades"][f"unsolved_{lab}"]
    assert entry["lab"] == lab and entry["total"] == 0, (entry["status"], entry["reason"])
    assert {v["status"] for v in entry["exercises"].values()} == {"not_implemented"}, entry["exercises"]
