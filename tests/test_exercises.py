"""Every declared exercise: its reference, written into a notebook by a student, passes its own check
(visible and hidden seeds); the check refuses the course's own reference; the solution notebook checks
exactly the exercises its lab declares."""

import json
import re
from pathlib import Path

import pytest
from _labs import NOTEBOOK_PENDING, has_notebook, labs_with_notebooks
from _student import as_student

from course_utils.exercises import known_labs
from course_utils.grading import evaluate, fallback, lab_exercises

ROOT = Path(__file__).resolve().parent.parent
CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.[\w.]+)["']""")
EXERCISES = [ex for lab in known_labs() for ex in lab_exercises(lab)]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.id)
@pytest.mark.parametrize("seed", [0, 1, 987654])
def test_reference_passes_its_own_check(exercise, seed):
    result = evaluate(exercise.id, as_student(exercise.reference, exercise.function), seed=seed)
    assert result.passed, result.message


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda ex: ex.id)
def test_the_course_reference_is_never_passed_for_the_students(exercise, capsys):
    """What fallback returns, checked again (a student who edited the function but did not run its cell)."""
    def stub(*args, **kwargs):
        raise NotImplementedError()

    handed_back = fallback(exercise.id, stub)
    assert handed_back is exercise.reference
    result = evaluate(exercise.id, handed_back)
    assert result.status == "reference" and not result.passed
    assert "reference solution, not your function" in result.message and exercise.function in result.message


@pytest.mark.parametrize("lab", labs_with_notebooks())
def test_solution_notebook_checks_every_registered_exercise(lab):
    [notebook] = sorted((ROOT / "solutions").glob(f"{lab}_*.ipynb"))
    cells = json.loads(notebook.read_text())["cells"]
    checked = [m for c in cells if c["cell_type"] == "code" for m in CHECK_CALL.findall("".join(c["source"]))]
    assert sorted(checked) == sorted(ex.id for ex in lab_exercises(lab))
    assert len(set(checked)) == len(checked), "each exercise is checked once"


@pytest.mark.parametrize("lab", sorted(NOTEBOOK_PENDING))
def test_a_lab_pending_its_notebook_has_none_yet(lab):
    """Remove the lab from tests/_labs.py NOTEBOOK_PENDING once its notebook lands (the skips end then)."""
    assert lab in known_labs(), f"lab {lab} has no exercises: remove it from NOTEBOOK_PENDING"
    assert not has_notebook(lab), f"lab {lab} has its notebook now: remove it from tests/_labs.py NOTEBOOK_PENDING"
