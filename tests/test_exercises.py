"""Every registered exercise: its reference passes its own check (visible and hidden seeds), and the
solution notebook checks exactly the exercises its lab registers."""

import json
import re
from pathlib import Path

import pytest

from course_utils.exercises import known_labs
from course_utils.grading import evaluate, lab_exercises

ROOT = Path(__file__).resolve().parent.parent
CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.[\w.]+)["']""")
EXERCISES = [ex for lab in known_labs() for ex in lab_exercises(lab)]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.id)
@pytest.mark.parametrize("seed", [0, 1, 987654])
def test_reference_passes_its_own_check(exercise, seed):
    result = evaluate(exercise.id, exercise.reference, seed=seed)
    assert result.passed, result.message


@pytest.mark.parametrize("lab", known_labs())
def test_solution_notebook_checks_every_registered_exercise(lab):
    [notebook] = sorted((ROOT / "solutions").glob(f"{lab}_*.ipynb"))
    cells = json.loads(notebook.read_text())["cells"]
    checked = [m for c in cells if c["cell_type"] == "code" for m in CHECK_CALL.findall("".join(c["source"]))]
    assert sorted(checked) == sorted(ex.id for ex in lab_exercises(lab))
    assert len(set(checked)) == len(checked), "each exercise is checked once"
