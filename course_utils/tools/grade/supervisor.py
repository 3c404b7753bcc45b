"""Start, watch and stop the sandbox processes that grade one notebook; judge what they recorded.

:func:`grade_notebook` runs the two steps of :mod:`course_utils.tools.grade.sandbox` in a scratch
folder (``execute``, then ``run``, restarted after a crash for the exercises left), kills a process
that overruns its time, and turns the records into verdicts with
:func:`course_utils.tools.grade.replay.judge`. :func:`stop_all` kills everything running (Ctrl-C).
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from course_utils.grading import CheckResult, lab_exercises
from course_utils.grading.exercise import Exercise
from course_utils.tools.grade.replay import judge

STARTUP_S = 120.0  # starting a kernel or a Python process that imports torch, on a busy machine
MAX_RECORD_BYTES = 512 << 20  # what one exercise's recorded results may weigh

_live: dict[int, Path] = {}  # process group of each running sandbox -> its scratch folder
_lock = threading.Lock()
_stopping = threading.Event()


# ---- which function is which exercise -----------------------------------------------------------
def _trees(nb) -> list[tuple[int, ast.Module]]:
    trees = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.split("\n"))
        try:
            trees.append((index, ast.parse(source)))
        except SyntaxError:
            continue
    return trees


def function_names(exercises: list[Exercise]) -> dict[str, list[str]]:
    """Exercise id -> the name of the function the student writes, as the exercise declares it."""
    return {ex.id: [ex.function] for ex in exercises}


def exercise_ids(nb) -> list[str]:
    """The exercise ids a notebook names in ``check("NN.name", ...)`` / ``fallback(...)`` calls, in order."""
    ids: dict[str, None] = {}
    for _, tree in _trees(nb):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and \
                    getattr(node.func, "id", getattr(node.func, "attr", None)) in ("check", "fallback") and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                ids.setdefault(node.args[0].value)
    return list(ids)


def _defined_in(nb) -> dict[str, list[int]]:
    """Name -> indices of the cells that define it at top level (def, class, assignment)."""
    where: dict[str, list[int]] = {}
    for index, tree in _trees(nb):
        for node in tree.body:
            targets = [node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else \
                getattr(node, "targets", [getattr(node, "target", None)])
            for t in targets:
                name = getattr(t, "name", getattr(t, "id", None))
                if name:
                    where.setdefault(name, []).append(index)
    return where


# ---- processes -----------------------------------------------------------------------------------
def _spawn(step: str, spec: dict, scratch: Path, env: dict) -> subprocess.Popen | None:
    spec_path = scratch / f"{step}.json"
    spec_path.write_text(json.dumps(spec))
    with _lock:
        if _stopping.is_set():
            return None
        out = open(scratch / f"{step}.out", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.tools.grade.sandbox", step, str(spec_path)],
                                cwd=scratch, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        out.close()
        _live[proc.pid] = scratch
    return proc


def _kill(pgid: int, scratch: Path, kernel: bool = True) -> None:
    for group in (pgid, _kernel_pid(scratch) if kernel else None):
        if group:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _kernel_pid(scratch: Path) -> int | None:
    try:
        return json.loads((scratch / "log.json").read_text()).get("kernel_pid")
    except (OSError, ValueError):
        return None


def _finish(proc: subprocess.Popen, scratch: Path, kernel: bool = False) -> None:
    """Kill what is left of a sandbox step; with ``kernel``, also the kernel's session (the kernel
    runs in a session of its own: a stuck one, or processes a notebook started and left running)."""
    _kill(proc.pid, scratch, kernel)
    proc.wait()
    with _lock:
        _live.pop(proc.pid, None)


def stop_all() -> None:
    """Kill every sandbox and kernel now, and start no more."""
    with _lock:
        _stopping.set()
        live = list(_live.items())
    for pgid, scratch in live:
        _kill(pgid, scratch)


def resume() -> None:
    """Allow starting processes again after :func:`stop_all` (a new run in the same process)."""
    _stopping.clear()


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return {"SIGSEGV": "a segmentation fault", "SIGKILL": "killed (out of memory?)",
                "SIGABRT": "aborted"}.get(name, name)
    return f"exit code {code}"


# ---- one notebook --------------------------------------------------------------------------------
def _cell_label(nb, index: int) -> str:
    first = next((line.strip() for line in nb.cells[index].source.split("\n") if line.strip()), "")
    return f"cell {index + 1} (`{first[:50]}{'…' if len(first) > 50 else ''}`)"


def _notes(nb, log: dict) -> list[str]:
    notes = []
    for c in log.get("cells", []):
        label = _cell_label(nb, c["index"])
        if c["status"] == "timeout":
            notes.append(f"{label} timed out after {c.get('limit', '?')} s and was interrupted.")
        elif c["status"] == "error":
            notes.append(f"{label} raised {c.get('ename')}: {c.get('evalue')}")
        elif c["status"] in ("crashed", "running"):
            notes.append(f"{label}: the kernel died while running it; later cells did not run.")
    return notes


def _missing(ex: Exercise, name: str, pickling_error: str, nb, log: dict, defined: dict[str, list[int]]) -> str:
    if pickling_error:
        return f"`{name}` could not be saved from your notebook for grading ({pickling_error})."
    ran = {c["index"]: c for c in log.get("cells", [])}
    for index in defined.get(name, []):
        c, label = ran.get(index), _cell_label(nb, index)
        if c is None:
            died = [d for d in log.get("cells", []) if d["status"] in ("crashed", "running")]
            why = (f"the kernel died earlier, in {_cell_label(nb, died[-1]['index'])}" if died else
                   "the notebook ran out of time" if log.get("kernel") in ("notebook_timeout", "running") else
                   "the kernel stopped before it")
            return f"`{name}` was never defined: {label} did not run ({why})."
        if c["status"] == "timeout":
            return f"timed out: {label}, which defines `{name}`, did not finish in {c.get('limit', '?')} s."
        if c["status"] in ("crashed", "running"):
            return f"`{name}` was never defined: the kernel died in {label}."
        if c["status"] == "error":
            return f"`{name}` was never defined: {label} raised {c.get('ename')}: {c.get('evalue')}"
    return f"your notebook does not define `{name}` (exercise {ex.id} asks for `{ex.signature}`)."


def _env(settings) -> dict:
    env = dict(os.environ, COURSE_PROFILE=settings.profile, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    for name in ("COURSE_STRICT", "COURSE_GRADE_SEED", "JUPYTER_PATH"):
        env.pop(name, None)
    threads = max(1, (os.cpu_count() or 1) // settings.jobs)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, str(threads))
    return env


def _run_exercises(scratch: Path, exercises: list[Exercise], names: dict[str, list[str]], settings, env: dict,
                   n_cases: dict[str, int]) -> tuple[dict[str, dict], dict[str, CheckResult]]:
    """Records of the ``run`` step, plus verdicts for exercises whose process crashed or hung."""
    records: dict[str, dict] = {}
    verdicts: dict[str, CheckResult] = {}
    left = list(exercises)
    results = scratch / "results"
    while left:
        spec = {"scratch": str(scratch), "seed": settings.seed, "memory_gib": settings.memory_gib,
                "exercises": [{"id": ex.id, "names": names[ex.id]} for ex in left]}
        proc = _spawn("run", spec, scratch, env)
        if proc is None:
            break
        started, current, hung = time.monotonic(), None, False
        while proc.poll() is None:
            time.sleep(0.1)
            now_running = next((ex for ex in left if (results / f"{ex.id}.started").exists()
                                and not (results / f"{ex.id}.pt").exists()), None)
            if now_running is not current:
                current, started = now_running, time.monotonic()
            budget = STARTUP_S if current is None else current.time_limit * (n_cases[current.id] + 1) + 30
            if time.monotonic() - started > budget:
                hung = True
                break
        code = proc.poll()
        _finish(proc, scratch)
        for ex in list(left):
            path = results / f"{ex.id}.pt"
            if path.exists():
                left.remove(ex)
                if path.stat().st_size > MAX_RECORD_BYTES:
                    verdicts[ex.id] = CheckResult(ex.id, "error", f"❌ {ex.id}: your function returned more than "
                                                  f"{MAX_RECORD_BYTES >> 20} MiB of data; it was not graded.", 0, 0)
                    continue
                try:
                    records[ex.id] = torch.load(path, weights_only=True)
                except Exception as exc:  # noqa: BLE001 - the sandbox runs student code: trust nothing
                    verdicts[ex.id] = CheckResult(ex.id, "error", f"❌ {ex.id}: its results could not be read "
                                                  f"({type(exc).__name__}); it was not graded.", 0, 0)
        if not left:
            break
        ex = left.pop(0)
        name = names[ex.id][0] if names[ex.id] else "?"
        if hung:
            text = (f"timed out: grading `{name}` took over {budget:.0f} s in all (it does not stop when "
                    "interrupted), so it was stopped.")
            verdicts[ex.id] = CheckResult(ex.id, "timeout", f"❌ {ex.id}: {text}", 0, n_cases[ex.id])
        elif (results / f"{ex.id}.started").exists():
            text = f"`{name}` crashed the Python process that ran it ({_exit_text(code or 0)}), so it could not be graded."
            verdicts[ex.id] = CheckResult(ex.id, "crashed", f"❌ {ex.id}: {text}", 0, n_cases[ex.id])
        else:  # the process died before it started this exercise: give up on the rest
            tail = (scratch / "run.out").read_text(errors="replace").strip().split("\n")[-1:]
            for ex in [ex, *left]:
                verdicts[ex.id] = CheckResult(ex.id, "crashed", f"❌ {ex.id}: the grading process failed to start "
                                                                f"({_exit_text(code or 0)}): {tail[0][:300]}", 0, 0)
            left = []
    return records, verdicts


def grade_notebook(nb, data: bytes, lab: str, settings) -> dict:
    """Run and judge one notebook; returns the entry's status, reason, exercises and notes."""
    exercises = lab_exercises(lab)
    names = function_names(exercises)
    n_cases = {ex.id: len(ex.cases(torch.Generator().manual_seed(settings.seed))) for ex in exercises}
    env = _env(settings)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        scratch = Path(tmp)
        (scratch / "submission.ipynb").write_bytes(data)
        spec = {"scratch": str(scratch), "memory_gib": settings.memory_gib, "cell_timeout": settings.cell_timeout,
                "notebook_timeout": settings.timeout, "startup_timeout": STARTUP_S,
                "env": {"COURSE_PROFILE": settings.profile}, "names": sorted({n for v in names.values() for n in v})}
        proc = _spawn("execute", spec, scratch, env)
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=settings.timeout + 2 * STARTUP_S)
            except subprocess.TimeoutExpired:
                pass
            _finish(proc, scratch, kernel=True)  # and whatever the notebook left running in its session
        try:
            log = json.loads((scratch / "log.json").read_text())
        except (OSError, ValueError):
            log = {"kernel": "starting", "cells": []}
        records, verdicts = _run_exercises(scratch, exercises, names, settings, env, n_cases)
        tail = (scratch / "execute.out").read_text(errors="replace").strip().split("\n")[-1:] \
            if (scratch / "execute.out").exists() else [""]
    defined = _defined_in(nb)
    out: dict = {"exercises": {}, "notes": _notes(nb, log), "status": "graded", "reason": ""}
    for ex in exercises:
        result = verdicts.get(ex.id)
        if result is None:
            record = records.get(ex.id, {"name": names[ex.id][0] if names[ex.id] else "?", "missing": ""})
            if "missing" in record:
                record["missing"] = _missing(ex, record["name"], record["missing"], nb, log, defined)
            try:
                result = judge(ex.id, record, settings.seed)
                if result.status == "missing" and record["missing"].startswith("timed out"):
                    result.status = "timeout"  # the cell that defines it never finished
            except Exception as exc:  # noqa: BLE001 - a malformed record (written by the sandbox)
                result = CheckResult(ex.id, "error", f"❌ {ex.id}: its results could not be judged "
                                                     f"({type(exc).__name__}: {exc}).", 0, 0)
        out["exercises"][ex.id] = {"passed": result.passed, "score": ex.points if result.passed else 0.0,
                                   "points": ex.points, "status": result.status, "message": result.message}
    kernel = log.get("kernel")
    if _stopping.is_set():
        out.update(status="interrupted", reason="grading was interrupted")
    elif kernel == "died":
        out.update(status="crashed", reason="the kernel died while running the notebook; the functions defined "
                                            "before that were graded")
    elif kernel == "starting":
        out.update(status="crashed", reason=f"the kernel did not start ({_exit_text(code or 0)}): {tail[0][:300]}")
    elif kernel in ("notebook_timeout", "running") or code is None:
        out.update(status="timeout", reason=f"the notebook did not finish within {settings.timeout:g} s; "
                                            "the functions defined before that were graded")
    elif any(r["status"] == "crashed" for r in out["exercises"].values()):
        out.update(status="crashed", reason="a function crashed the process that graded it")
    return out
