"""``course grade``: grade a folder of submitted notebooks, offline and safely, in one command.

    course grade submissions/ --out gradebook --jobs 2

For each notebook (one file per student, or one folder per student; one lab or several):

1. run it in its own Jupyter kernel, in a scratch copy (``sandbox execute``: per-cell and
   whole-notebook time limits, a memory limit, errors do not stop it);
2. call the functions it defined on the exercises' cases drawn with a **hidden seed**, in a fresh
   process (``sandbox run``), recording what they return;
3. judge those results here with the same checks students run (:mod:`~course_utils.tools.grade.replay`):
   grades never come from the notebook's output, and no student code runs in this process.

Writes ``OUT/grades.csv``, ``OUT/grades.json`` and ``OUT/feedback/<student>.md``, each replaced
atomically after every notebook; a re-run reuses the notebooks whose content did not change.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.exercises import known_labs
from course_utils.files import atomic_write
from course_utils.grading import lab_exercises
from course_utils.tools.grade.supervisor import exercise_ids

DEFAULT_SEED = 271828
SEED_ENV = "COURSE_GRADE_SEED"


class GradeError(ValueError):
    """Bad input to the command: reported in one line, nothing written."""


#: seconds per cell and per notebook, by the profile notebooks are graded in (a cpu-profile training
#: cell of lab 02 runs for minutes)
TIME_LIMITS = {"ci": (120.0, 900.0), "cpu": (600.0, 1800.0), "gpu": (600.0, 1800.0)}


@dataclass
class Settings:
    seed: int = DEFAULT_SEED
    lab: str | None = None
    cell_timeout: float = 120.0
    timeout: float = 900.0
    memory_gib: float = 4.0
    profile: str = "ci"
    jobs: int = 1


@dataclass
class Submission:
    path: Path
    student: str
    data: bytes = b""
    sha256: str = ""
    entry: dict = field(default_factory=dict)


# ---- finding the submissions -------------------------------------------------------------------
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


def _lab_of(data: bytes, path: Path) -> tuple[object, str | None, str]:
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


# ---- grading one notebook ------------------------------------------------------------------------
def grade(sub: Submission, settings: Settings) -> dict:
    """The gradebook entry for one submission (runs its sandbox processes)."""
    from course_utils.tools.grade.supervisor import grade_notebook

    entry = {"student": sub.student, "path": str(sub.path), "file": str(sub.path.resolve()),
             "sha256": sub.sha256, "seed": settings.seed, "lab_option": settings.lab, "lab": None,
             "status": "unreadable", "reason": "", "total": 0.0, "out_of": 0, "exercises": {}, "notes": []}
    nb, lab, problem = _lab_of(sub.data, sub.path)
    lab = settings.lab or lab
    if nb is not None and lab and lab not in known_labs():
        problem = f"lab {lab} has no exercises (known labs: {', '.join(known_labs())})"
    elif nb is not None and lab:
        problem = ""
    if problem:
        entry["reason"] = problem
        entry["status"] = "unknown_lab" if nb is not None else "unreadable"
        return entry
    entry["lab"] = lab
    entry["title"] = str(nb.metadata.get("title") or f"Lab {lab}")
    start = time.monotonic()
    entry.update(grade_notebook(nb, sub.data, lab, settings))
    entry["seconds"] = round(time.monotonic() - start, 1)
    entry["out_of"] = round(sum(r["points"] for r in entry["exercises"].values()), 4)
    entry["total"] = round(sum(r["score"] for r in entry["exercises"].values()), 4)
    return entry


def _grade_safely(sub: Submission, settings: Settings) -> dict:
    """:func:`grade`, with a bug of ours reported in the submission's row rather than ending the run."""
    try:
        return grade(sub, settings)
    except Exception as exc:  # noqa: BLE001
        return {"student": sub.student, "path": str(sub.path), "sha256": "", "seed": settings.seed,
                "lab_option": settings.lab, "lab": None, "status": "error", "total": 0.0, "out_of": 0,
                "reason": f"the grader failed on this notebook ({type(exc).__name__}: {exc}); please report it",
                "exercises": {}, "notes": []}


# ---- writing the gradebook -----------------------------------------------------------------------
def _number(x: float) -> str:
    return f"{x:g}"


def feedback_names(entries: list[dict]) -> list[str]:
    """``alice``, or ``alice-lab01`` when alice has several submissions (``-2``... if still taken)."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["student"]] = counts.get(e["student"], 0) + 1
    names, taken = [], set()
    for e in entries:
        name = e["student"] if counts[e["student"]] == 1 else f"{e['student']}-lab{e['lab'] or 'unknown'}"
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names.append(name)
    return names


def feedback(entry: dict) -> str:
    """The Markdown a student gets."""
    title = entry.get("title") or (f"Lab {entry['lab']}" if entry["lab"] else "Your submission")
    lines = [f"# {title}: feedback for {entry['student']}", "", f"Submitted file: `{Path(entry['path']).name}`", ""]
    if entry["status"] in ("unreadable", "unknown_lab"):
        reason = entry["reason"] + ("" if entry["reason"].endswith((".", "?", "!")) else ".")
        return "\n".join(lines + ["**Not graded:** " + reason, ""])
    lines += [f"**Score: {_number(entry['total'])} / {_number(entry['out_of'])}**. The checks ran on new random cases "
              "(a hidden seed), not the ones your notebook showed, in a fresh kernel.", ""]
    if entry["status"] != "graded":
        lines += [f"**Status: {entry['status']}**: {entry['reason']}", ""]
    lines += ["| exercise | result |", "|---|---|"]
    for ex_id, r in entry["exercises"].items():
        lines.append(f"| `{ex_id}` | {'✅ passed' if r['passed'] else '❌ ' + r['status'].replace('_', ' ')} |")
    lines.append("")
    for ex_id, r in entry["exercises"].items():
        lines += [f"## {ex_id}", "", "```text", r["message"], "```", ""]
    if entry["notes"]:
        lines += ["## Your notebook", ""] + [f"- {n}" for n in entry["notes"]] + [""]
    return "\n".join(lines)


def write_gradebook(out: Path, entries: list[dict], settings: Settings) -> None:
    entries = sorted(entries, key=lambda e: (e["student"], e["lab"] or "", e["path"]))
    labs = sorted({e["lab"] for e in entries if e["lab"] and e["status"] not in ("unreadable", "unknown_lab")})
    columns = [ex.id for lab in labs for ex in lab_exercises(lab)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "path", "lab", *columns, "total", "out_of", "status", "note"])
    for e in entries:
        scores = [_number(e["exercises"][c]["score"]) if c in e["exercises"] else "" for c in columns]
        writer.writerow([e["student"], e["path"], e["lab"] or "", *scores, _number(e["total"]), _number(e["out_of"]),
                         e["status"], e["reason"]])
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    for e, name in zip(entries, feedback_names(entries)):
        e["feedback"] = f"feedback/{name}.md"
        atomic_write(out / e["feedback"], feedback(e))
    atomic_write(out / "grades.json", json.dumps({"seed": settings.seed, "submissions": entries}, indent=1,
                                                  ensure_ascii=False) + "\n")
    atomic_write(out / "grades.csv", buffer.getvalue())
    atomic_write(out / LMS_FILE, lms_csv(entries, labs))


LMS_FILE = "grades_moodle.csv"


def lms_csv(entries: list[dict], labs: list[str]) -> str:
    """Moodle's grade import format (Grades > Import > CSV file): one row per student, the identifier in
    column ``username``, and one column of points per lab (``Lab 01``); a student's best graded
    submission of a lab counts, and a lab not handed in is left empty."""
    best: dict[str, dict[str, float]] = {}
    for e in entries:
        if e["lab"] in labs and e["status"] not in ("unreadable", "unknown_lab"):
            row = best.setdefault(e["student"], {})
            row[e["lab"]] = max(row.get(e["lab"], 0.0), float(e["total"]))
    for e in entries:
        best.setdefault(e["student"], {})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["username", *(f"Lab {lab}" for lab in labs)])
    for student in sorted(best):
        writer.writerow([student, *(_number(best[student][lab]) if lab in best[student] else "" for lab in labs)])
    return buffer.getvalue()


def _previous(out: Path) -> dict[str, dict]:
    try:
        data = json.loads((out / "grades.json").read_text(encoding="utf-8"))
        return {e.get("file", e["path"]): e for e in data["submissions"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


# ---- the command ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="course grade", description="Grade submitted notebooks offline, each in "
                                     "its own kernel, on hidden test cases; write a gradebook and feedback.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="notebooks and/or folders of notebooks")
    parser.add_argument("--lab", metavar="NN", help="grade as this lab (default: metadata.course.lab of each notebook)")
    parser.add_argument("--out", type=Path, default=Path("gradebook"), metavar="DIR", help="output folder (default: gradebook)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="seconds for a whole notebook (default by profile: ci 900, cpu and gpu 1800)")
    parser.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                        help="seconds per cell (default by profile: ci 120, cpu and gpu 600)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    parser.add_argument("--force", action="store_true", help="regrade every notebook, even unchanged ones")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help=f"hidden seed of the random cases (default: ${SEED_ENV}, else a fixed value that is "
                             "in the public source code: set your own)")
    parser.add_argument("--memory", type=float, default=4.0, metavar="GIB", help="GiB of memory per process (default 4; 0: no limit)")
    parser.add_argument("--profile", default="ci", choices=("ci", "cpu", "gpu"),
                        help="COURSE_PROFILE the notebooks run with (default ci: fastest)")
    args = parser.parse_args(argv)
    for name in ("timeout", "cell_timeout", "jobs"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    seed = args.seed
    if seed is None:
        text = os.environ.get(SEED_ENV, "").strip()
        if text and not text.lstrip("-").isdigit():
            raise GradeError(f"${SEED_ENV} must be an integer, got {text!r}")
        seed = int(text) if text else DEFAULT_SEED
    lab = None
    if args.lab is not None:
        lab = args.lab.strip().zfill(2)
        if lab not in known_labs():
            raise GradeError(f"unknown lab {args.lab!r}; labs with exercises: {', '.join(known_labs())}")
    cell, notebook = TIME_LIMITS[args.profile]
    return Settings(seed=seed, lab=lab, cell_timeout=args.cell_timeout or cell, timeout=args.timeout or notebook,
                    memory_gib=args.memory, profile=args.profile, jobs=args.jobs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = settings_from(args)
        if args.out.exists() and not args.out.is_dir():
            raise GradeError(f"--out {args.out} is a file, not a folder")
        subs = find_submissions(args.paths, skip=args.out.resolve())
    except GradeError as err:
        print(f"course grade: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from course_utils.tools.grade.supervisor import resume, stop_all

    resume()
    if args.seed is None and not os.environ.get(SEED_ENV, "").strip():
        print(f"course grade: warning: no --seed and no ${SEED_ENV}: the hidden cases use the default seed "
              f"{DEFAULT_SEED}, which is in the course's public source code. Set your own (and change it each "
              "term) so that nobody can precompute the cases.", file=sys.stderr)

    previous = {} if args.force else _previous(args.out)
    todo: list[Submission] = []
    for sub in subs:
        sub.data = sub.path.read_bytes()
        sub.sha256 = hashlib.sha256(sub.data).hexdigest()
        old = previous.get(str(sub.path.resolve()))
        if old and old.get("sha256") == sub.sha256 and old.get("seed") == settings.seed \
                and old.get("lab_option") == settings.lab and old.get("student") == sub.student:
            sub.entry = old
        else:
            todo.append(sub)
    args.out.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    bar = tqdm(total=len(todo), unit="notebook", desc="grading", file=sys.stderr, dynamic_ncols=True)
    pool = ThreadPoolExecutor(max_workers=settings.jobs)
    try:
        futures = {pool.submit(_grade_safely, sub, settings): sub for sub in todo}
        for future in as_completed(futures):
            done = futures[future]
            done.entry = future.result()
            with lock:
                write_gradebook(args.out, [s.entry for s in subs if s.entry], settings)
            bar.write(summary_line(done.entry), file=sys.stderr)
            bar.update()
    except BaseException:
        stop_all()  # Ctrl-C: kill the kernels and sandboxes now; what is written stays valid
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown()
    write_gradebook(args.out, [s.entry for s in subs], settings)
    counts: dict[str, int] = {}
    for s in subs:
        counts[s.entry["status"]] = counts.get(s.entry["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(subs)} notebook(s) ({len(subs) - len(todo)} unchanged, reused): {summary}. "
          f"Wrote {args.out / 'grades.csv'}, {args.out / LMS_FILE}, {args.out / 'grades.json'} and "
          f"{args.out / 'feedback'}/")
    unknown = [s.entry["path"] for s in subs if s.entry["status"] == "unknown_lab"]
    if unknown:
        print(f"course grade: cannot tell the lab of {len(unknown)} notebook(s) ({', '.join(unknown[:3])}"
              f"{', ...' if len(unknown) > 3 else ''}): grade them again with --lab NN.", file=sys.stderr)
    return 0


def summary_line(entry: dict) -> str:
    """``alice (lab 01): 7 / 7, graded in 23 s`` — printed as each notebook finishes."""
    lab = f"lab {entry['lab']}" if entry.get("lab") else "lab ?"
    if entry["status"] in ("unreadable", "unknown_lab"):
        return f"{entry['student']} ({lab}): not graded, {entry['status'].replace('_', ' ')}: {entry['reason']}"
    took = f" in {entry['seconds']:.0f} s" if "seconds" in entry else ""
    return (f"{entry['student']} ({lab}): {_number(entry['total'])} / {_number(entry['out_of'])}, "
            f"{entry['status']}{took}")
