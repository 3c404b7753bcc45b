"""Finding the submitted notebooks, telling their lab, and grading one into its gradebook entry."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbformat import NotebookNode

from course_utils.exercises import known_labs
from course_utils.tools.grade.gradebook import Entry, Settings
from course_utils.tools.grade.supervisor import exercise_ids

if TYPE_CHECKING:
    from course_utils.tools.grade.supervisor import Warm


class GradeError(ValueError):
    """Bad input to the command: reported in one line, nothing written."""


@dataclass
class Submission:
    path: Path
    student: str
    data: bytes = b""
    sha256: str = ""
    entry: Entry | None = field(default=None)


def find_submissions(paths: list[Path], skip: Path | None = None) -> list[Submission]:
    """Notebooks under ``paths`` (files as given; folders searched recursively, checkpoints skipped).
    The student is the file's stem, or the first folder under the given folder."""
    found: dict[Path, Submission] = {}
    for root in paths:
        if not root.exists():
            raise GradeError(f"no such file or folder: {root}")
        if root.is_file():
            found.setdefault(root.resolve(), Submission(root, _safe(root.stem)))
            continue
        notebooks = [p for p in sorted(root.rglob("*.ipynb")) if p.is_file()
                     and ".ipynb_checkpoints" not in p.parts
                     and not (skip and p.resolve().is_relative_to(skip))]
        if not notebooks:
            raise GradeError(f"no notebooks (*.ipynb) in {root}")
        for p in notebooks:
            rel = p.relative_to(root)
            found.setdefault(p.resolve(), Submission(p, _safe(rel.stem if len(rel.parts) == 1 else rel.parts[0])))
    return list(found.values())


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "student"


def lab_of(data: bytes, path: Path) -> tuple[NotebookNode | None, str | None, str]:
    """(notebook, lab, problem): the parsed notebook and its lab, or why it cannot be graded."""
    import nbformat

    if not data.strip():
        return None, None, "the file is empty"
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, None, "not a notebook: the file is not text (UTF-8)"
    except json.JSONDecodeError as err:
        return None, None, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); is it a notebook?"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list) or "nbformat" not in raw:
        return None, None, "not a Jupyter notebook (no 'cells' / 'nbformat')"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as err:  # noqa: BLE001 - any nbformat complaint
        return None, None, f"not a readable notebook: {err}".split("\n")[0]
    course = nb.metadata.get("course") or {}
    lab = str(course.get("lab") or "").strip() or (path.name[:2] if re.match(r"^\d\d_", path.name) else "")
    lab = lab.zfill(2) if lab.isdigit() else lab
    if lab:
        return nb, lab, ""
    named = list(dict.fromkeys(i.split(".")[0] for i in exercise_ids(nb) if re.match(r"^\d\d\.", i)))
    if len(named) == 1:
        return nb, named[0], ""
    if named:
        return nb, None, f"cannot tell which lab this is: it checks exercises of labs {', '.join(named)}"
    return nb, None, "cannot tell which lab this is (no lab number in its metadata, and no check of an exercise)"


def plan(sub: Submission, settings: Settings) -> tuple[NotebookNode | None, str | None, str]:
    """(notebook, lab, problem): what :func:`grade` grades it as, or why it cannot (``problem``)."""
    nb, lab, problem = lab_of(sub.data, sub.path)
    lab = settings.lab or lab
    if nb is not None and lab and lab not in known_labs():
        problem = f"lab {lab} has no exercises (known labs: {', '.join(known_labs())})"
    elif nb is not None and lab:
        problem = ""
    return nb, lab, problem


def grade(sub: Submission, settings: Settings, warm: Warm | None = None) -> Entry:
    """The gradebook entry for one submission (runs its sandbox processes; ``warm``: those started
    ahead for it)."""
    from course_utils.tools.grade.supervisor import grade_notebook

    entry = Entry(student=sub.student, path=str(sub.path), file=str(sub.path.resolve()), sha256=sub.sha256,
                  seed=settings.seed, lab_option=settings.lab, sandbox=settings.sandbox)
    nb, lab, problem = plan(sub, settings)
    if problem or nb is None or not lab:
        entry.reason = problem
        entry.status = "unknown_lab" if nb is not None else "unreadable"
        return entry
    entry.lab = lab
    entry.title = str(nb.metadata.get("title") or f"Lab {lab}")
    start = time.monotonic()
    result = grade_notebook(nb, sub.data, lab, settings, warm)
    entry.status, entry.reason = result.status, result.reason
    entry.exercises, entry.notes = result.exercises, result.notes
    entry.timing = result.timing or None
    entry.seconds = round(time.monotonic() - start, 1)
    entry.out_of = round(sum(r.points for r in entry.exercises.values()), 4)
    entry.total = round(sum(r.score for r in entry.exercises.values()), 4)
    return entry


def grade_safely(sub: Submission, settings: Settings, warm: Warm | None = None) -> Entry:
    """:func:`grade`, with a bug of ours reported in the submission's row rather than ending the run."""
    try:
        return grade(sub, settings, warm)
    except Exception as exc:  # a bug of ours: one row says so, the run goes on
        return Entry(student=sub.student, path=str(sub.path), file=str(sub.path.resolve()), seed=settings.seed,
                     lab_option=settings.lab, status="error",
                     reason=f"the grader failed on this notebook ({type(exc).__name__}: {exc}); please report it")
    finally:
        if warm is not None:
            warm.close()  # (grading closed it already, unless it failed before)
