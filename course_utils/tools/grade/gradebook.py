"""The gradebook of ``course grade``: its types (settings, one entry per submission, one grade per
exercise) and its files (``grades.csv``, ``grades.json``, ``grades_moodle.csv``, ``feedback/``).

Only the grader writes these files, each replaced atomically (:func:`course_utils.files.atomic_write`);
no sandbox can see the folder they are in.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from course_utils.files import atomic_write
from course_utils.grading import lab_exercises
from course_utils.grading.exercise import Status

DEFAULT_SEED = 271828

#: a file that could not be graded at all: not a notebook, or a notebook of no known lab
FileStatus = Literal["unreadable", "unknown_lab"]
#: how grading a notebook went (``error``: the grader itself failed on it)
RunStatus = Literal["graded", "crashed", "timeout", "interrupted", "error"]
EntryStatus = Literal[FileStatus, RunStatus]
FILE_STATUSES: tuple[FileStatus, ...] = ("unreadable", "unknown_lab")

LMS_FILE = "grades_moodle.csv"


@dataclass(frozen=True)
class Settings:
    """What a grading run was asked for (the command line, after defaults)."""

    seed: int = DEFAULT_SEED
    lab: str | None = None             # grade every notebook as this lab (``--lab``)
    cell_timeout: float = 120.0        # seconds per cell
    timeout: float = 900.0             # seconds per notebook
    memory_gib: float = 4.0            # per process; 0: no limit
    profile: str = "ci"                # COURSE_PROFILE the notebooks run with
    jobs: int = 1                      # notebooks graded in parallel
    disk_gib: float = 2.0              # each sandbox's scratch folder
    processes: int = 512               # processes and threads in each sandbox
    sandbox: bool = True               # False: ``--no-sandbox`` (no isolation)
    view: tuple[str, ...] = ()         # the read-only folders a sandbox sees besides the system's


@dataclass
class ExerciseGrade:
    """The verdict on one exercise of one submission."""

    passed: bool
    score: float                       # ``points`` if passed, else 0
    points: float
    status: Status
    message: str                       # what the student's check prints


@dataclass
class Entry:
    """One submission's row of the gradebook (one element of ``grades.json``'s ``submissions``)."""

    student: str
    path: str                          # as given on the command line
    file: str = ""                     # its absolute path: what a re-run matches on
    sha256: str = ""
    seed: int = DEFAULT_SEED
    lab_option: str | None = None      # ``--lab``, if given
    lab: str | None = None
    status: EntryStatus = "unreadable"
    reason: str = ""
    total: float = 0.0
    out_of: float = 0.0
    exercises: dict[str, ExerciseGrade] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    title: str | None = None
    seconds: float | None = None       # time spent grading it
    timing: dict[str, Any] | None = None  # where those seconds went (supervisor.Clock.as_json)
    sandbox: bool = False              # graded in sandboxes (a re-run with them regrades one that was not)
    feedback: str | None = None        # ``feedback/<name>.md``, once written

    @property
    def graded(self) -> bool:
        """Whether the notebook ran (``status`` is not a :data:`FileStatus`)."""
        return self.status not in FILE_STATUSES

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None or k in ("lab", "lab_option")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """The entry ``to_json`` wrote (``KeyError``/``TypeError`` on anything else)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["exercises"] = {k: ExerciseGrade(**v) for k, v in data.get("exercises", {}).items()}
        return cls(**values)


def previous_entries(out: Path) -> dict[str, Entry]:
    """The entries of ``out/grades.json`` by file (empty when there is none, or it is unreadable)."""
    try:
        data = json.loads((out / "grades.json").read_text(encoding="utf-8"))
        entries = [Entry.from_json(e) for e in data["submissions"]]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {e.file or e.path: e for e in entries}


# ---- writing it ----------------------------------------------------------------------------------
def number(x: float) -> str:
    return f"{x:g}"


def feedback_names(entries: list[Entry]) -> list[str]:
    """``alice``, or ``alice-lab01`` when alice has several submissions (``-2``... if still taken)."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.student] = counts.get(e.student, 0) + 1
    names: list[str] = []
    taken: set[str] = set()
    for e in entries:
        name = e.student if counts[e.student] == 1 else f"{e.student}-lab{e.lab or 'unknown'}"
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names.append(name)
    return names


def feedback(entry: Entry) -> str:
    """The Markdown a student gets."""
    title = entry.title or (f"Lab {entry.lab}" if entry.lab else "Your submission")
    lines = [f"# {title}: feedback for {entry.student}", "", f"Submitted file: `{Path(entry.path).name}`", ""]
    if not entry.graded:
        reason = entry.reason + ("" if entry.reason.endswith((".", "?", "!")) else ".")
        return "\n".join(lines + ["**Not graded:** " + reason, ""])
    lines += [(f"**Score: {number(entry.total)} / {number(entry.out_of)}**. The checks ran on new random cases "
               "(a hidden seed), not the ones your notebook showed, in a fresh kernel."), ""]
    if entry.status != "graded":
        lines += [f"**Status: {entry.status}**: {entry.reason}", ""]
    lines += ["| exercise | result |", "|---|---|"]
    for ex_id, r in entry.exercises.items():
        lines.append(f"| `{ex_id}` | {'✅ passed' if r.passed else '❌ ' + r.status.replace('_', ' ')} |")
    lines.append("")
    for ex_id, r in entry.exercises.items():
        lines += [f"## {ex_id}", "", "```text", r.message, "```", ""]
    if entry.notes:
        lines += ["## Your notebook", ""] + [f"- {n}" for n in entry.notes] + [""]
    return "\n".join(lines)


def lms_csv(entries: list[Entry], labs: list[str]) -> str:
    """Moodle's grade import format (Grades > Import > CSV file): one row per student, the identifier in
    column ``username``, and one column of points per lab (``Lab 01``); a student's best graded
    submission of a lab counts, and a lab not handed in is left empty."""
    best: dict[str, dict[str, float]] = {}
    for e in entries:
        if e.lab in labs and e.graded:
            row = best.setdefault(e.student, {})
            row[e.lab] = max(row.get(e.lab, 0.0), float(e.total))
    for e in entries:
        best.setdefault(e.student, {})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["username", *(f"Lab {lab}" for lab in labs)])
    for student in sorted(best):
        writer.writerow([student, *(number(best[student][lab]) if lab in best[student] else "" for lab in labs)])
    return buffer.getvalue()


def write_gradebook(out: Path, entries: list[Entry], settings: Settings, header: dict[str, Any] | None = None) -> None:
    """Replace every file of the gradebook in ``out`` (``header``: more keys for ``grades.json``)."""
    entries = sorted(entries, key=lambda e: (e.student, e.lab or "", e.path))
    labs = sorted({e.lab for e in entries if e.lab and e.graded})
    columns = [ex.id for lab in labs for ex in lab_exercises(lab)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "path", "lab", *columns, "total", "out_of", "status", "note"])
    for e in entries:
        scores = [number(e.exercises[c].score) if c in e.exercises else "" for c in columns]
        writer.writerow([e.student, e.path, e.lab or "", *scores, number(e.total), number(e.out_of), e.status,
                         e.reason])
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    for e, name in zip(entries, feedback_names(entries)):
        e.feedback = f"feedback/{name}.md"
        atomic_write(out / e.feedback, feedback(e))
    data = {"seed": settings.seed, **(header or {}), "submissions": [e.to_json() for e in entries]}
    atomic_write(out / "grades.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    atomic_write(out / "grades.csv", buffer.getvalue())
    atomic_write(out / LMS_FILE, lms_csv(entries, labs))
