"""Start, watch and stop the sandboxes that grade one notebook; judge what they recorded.

:func:`grade_notebook` runs the two steps of :mod:`course_utils.tools.grade.sandbox`, each in a sandbox
of its own (:mod:`course_utils.tools.grade.isolation`): ``execute``, then ``run``, started again after a
crash for the exercises left. It draws the exercises' cases itself (the hidden seed stays here), stops a
sandbox that overruns its time, reads the outcomes from a pipe only the sandbox's grading process
writes, and turns them into verdicts with :func:`course_utils.tools.grade.replay.judge`, each as it
arrives. It executes the notebook only up to :func:`last_graded_cell`. A notebook's sandboxes are started
before it is handed in (:class:`Warm`, each with a uid of its own): :class:`Pool` starts them while the
notebook ``--jobs`` places before is graded, so the kernel's start and the imports overlap other work.
:func:`stop_all` kills every sandbox now (Ctrl-C).
"""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import re
import select
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from nbformat import NotebookNode

from course_utils import config
from course_utils.grading import CheckResult, lab_exercises
from course_utils.grading.exercise import Exercise
from course_utils.tools.grade import isolation, zygote
from course_utils.tools.grade.gradebook import ExerciseGrade, RunStatus, Settings
from course_utils.tools.grade.isolation import SCRATCH, Jail, Limits, Report
from course_utils.tools.grade.replay import judge
from course_utils.tools.grade.sandbox import MAX_RECORD_BYTES, send
from course_utils.tools.grade.zygote import Zygote

STARTUP_S = 120.0  # starting a kernel or a Python process that imports torch, on a busy machine

_live: set[Jail] = set()
_lock = threading.Lock()
_zygote_key: str | None = None
_zygote_server: Zygote | None = None
_zygote_said = False       # whether this run said that it grades without the fork server
_stopping = threading.Event()


# ---- which function is which exercise -----------------------------------------------------------
def _trees(nb: NotebookNode) -> list[tuple[int, ast.Module]]:
    trees = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.split("\n"))
        try:
            trees.append((index, ast.parse(source)))
        except SyntaxError:
            try:  # IPython's own syntax elsewhere in a line (``files = !ls``): parse the cell as IPython runs it
                trees.append((index, ast.parse(_ipython_transform(cell.source))))
            except SyntaxError:
                continue  # the kernel cannot run it either: it defines nothing
    return trees


@functools.lru_cache(maxsize=1)
def _transformer() -> Callable[[str], str]:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell


def _ipython_transform(source: str) -> str:
    try:
        return _transformer()(source)
    except Exception as exc:  # noqa: BLE001 - IPython's transformers fail on some broken cells
        raise SyntaxError(str(exc)) from None


def function_names(exercises: Sequence[Exercise]) -> dict[str, list[str]]:
    """Exercise id -> the name of the function the student writes, as the exercise declares it."""
    return {ex.id: [ex.function] for ex in exercises}


def _grading_calls(tree: ast.Module) -> Iterator[ast.Call]:
    """The ``check(...)`` / ``fallback(...)`` calls (also as ``grading.check(...)``) anywhere in a cell."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in \
                ("check", "fallback"):
            yield node


def exercise_ids(nb: NotebookNode) -> list[str]:
    """The exercise ids a notebook names in ``check("NN.name", ...)`` / ``fallback(...)`` calls, in order."""
    ids: dict[str, None] = {}
    for _, tree in _trees(nb):
        for node in _grading_calls(tree):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                ids.setdefault(node.args[0].value)
    return list(ids)


def _defined_in(nb: NotebookNode) -> dict[str, list[int]]:
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


def last_graded_cell(nb: NotebookNode, names: Sequence[str]) -> int:
    """Index of the last cell that can change a grade (-1: none): the last code cell that defines one of
    ``names`` (the exercises' functions, as :func:`_defined_in` sees it) or calls ``check`` / ``fallback``.

    Grading stops executing the notebook after it: what comes later (training with the student's
    pieces, plots) never counts for a grade, and the functions graded are the ones defined by then,
    the last definition of each (a later redefinition would itself be a defining cell)."""
    defined = _defined_in(nb)
    cells = [i for name in names for i in defined.get(name, [])]
    cells += [index for index, tree in _trees(nb) if next(_grading_calls(tree), None) is not None]
    return max(cells, default=-1)


def _skipped_note(nb: NotebookNode, last: int, log: dict) -> list[str]:
    """What the feedback says of the cells after ``last`` that grading did not run (if it got that far)."""
    skipped = [i for i, c in enumerate(nb.cells) if i > last and c.cell_type == "code" and c.source.strip()]
    if not skipped or log.get("kernel") != "finished":  # it stopped earlier: the other notes say why
        return []
    one = len(skipped) == 1
    span = f"Cell {skipped[0] + 1} was" if one else \
        f"Cells {skipped[0] + 1}-{skipped[-1] + 1} ({len(skipped)} code cells) were"
    grading = "defines an exercise's function or calls check/fallback"
    where = f"after cell {last + 1}, the last one that {grading}" if last >= 0 else \
        f"in a notebook where no cell {grading}"
    return [f"{span} not run for grading: {'it comes' if one else 'they come'} {where}, so nothing "
            f"{'it does' if one else 'they do'} (training, plots) can change a grade."]


# ---- sandboxes -----------------------------------------------------------------------------------
def threads_per_notebook(settings: Settings) -> int:
    """Threads for each sandbox's torch and BLAS: the usable cores shared among ``--jobs`` notebooks."""
    return max(1, config.usable_cores() // settings.jobs)


def limits(settings: Settings) -> Limits:
    threads = threads_per_notebook(settings)
    cpu = int((settings.timeout + 2 * STARTUP_S) * (threads + 1))
    return Limits(memory_gib=settings.memory_gib, disk_gib=settings.disk_gib, processes=settings.processes,
                  cpu_seconds=cpu, cpus=threads)


@functools.lru_cache(maxsize=1)
def _font_cache() -> dict[str, Path]:
    """Matplotlib's font list, for the sandbox's /tmp/matplotlib (building it takes a kernel 2 s)."""
    import matplotlib

    folder = Path(matplotlib.get_cachedir())
    return {f"/tmp/matplotlib/{p.name}": p for p in folder.glob("fontlist-v*.json")}


def _start(step: str, folder: Path, uid: int | None, settings: Settings, inputs: dict[str, Path],
           outputs: dict[str, Path] | None = None, pass_fds: Sequence[int] = ()) -> Jail | None:
    """``python -m course_utils.tools.grade.sandbox STEP`` in a sandbox (None once :func:`stop_all` ran)."""
    with _lock:
        if _stopping.is_set():
            return None
        if uid is not None:
            inputs = {**_font_cache(), **inputs}
        start = functools.partial(isolation.start, [sys.executable, "-m", "course_utils.tools.grade.sandbox", step],
                                  folder, uid=uid, limits=limits(settings), env=_env(settings), inputs=inputs,
                                  outputs=outputs, pass_fds=pass_fds, view=settings.view or isolation.python_paths())
        server = _zygote(settings)
        try:
            jail = start(zygote=server)
        except (OSError, RuntimeError):
            if server is None:
                raise
            close_zygote(broken=True)  # it died: this run's steps start as new processes from now on
            _say_no_zygote(f"the grader's fork server stopped ({sys.exc_info()[1]})")
            jail = start()
        _live.add(jail)
    return jail


def _zygote(settings: Settings) -> Zygote | None:
    """The fork server for steps with ``settings``' environment (started on first use; one at a time;
    None where there is none, or it failed to start: then steps start as new processes)."""
    global _zygote_key, _zygote_server
    if not zygote.enabled() or _zygote_key == "broken":
        return None
    env = isolation.environment(_env(settings), os.environ.get("HOME", "/"))
    key = json.dumps(env, sort_keys=True)
    if key != _zygote_key:
        close_zygote()
        _zygote_key = key
        try:
            _zygote_server = Zygote(env)
        except (OSError, RuntimeError) as exc:
            _zygote_server = None
            _say_no_zygote(f"the grader's fork server did not start ({exc})")
    return _zygote_server


def _say_no_zygote(why: str) -> None:
    """Tell the instructor, once a run, that its notebooks are graded the slower way (the grades are the same)."""
    global _zygote_said
    if not _zygote_said:
        _zygote_said = True
        print(f"course grade: note: {why}: every sandbox starts a new Python instead (a few seconds more a "
              "notebook; the grades are the same)", file=sys.stderr, flush=True)


def close_zygote(broken: bool = False) -> None:
    """Stop the fork server (the sandboxes it started go on: they need it no more); ``broken``: and start
    none again until the next run (:func:`resume`)."""
    global _zygote_key, _zygote_server
    if _zygote_server is not None:
        _zygote_server.close()
    _zygote_key, _zygote_server = ("broken" if broken else None), None


def _end(jail: Jail, timeout: float | None) -> Report:
    """Wait for a sandbox (stopped past ``timeout``): what init reported."""
    try:
        return jail.wait(timeout)
    finally:
        with _lock:
            _live.discard(jail)


def stop_all() -> None:
    """Kill every sandbox now (with everything running in it), and start no more."""
    with _lock:
        _stopping.set()
        live = list(_live)
    for jail in live:
        jail.kill()


def resume() -> None:
    """Allow starting sandboxes again after :func:`stop_all` (a new run in the same process)."""
    global _zygote_key, _zygote_said
    _stopping.clear()
    _zygote_said = False
    if _zygote_key == "broken":
        _zygote_key = None


# ---- sandboxes started ahead of their notebook ---------------------------------------------------
#: the libraries whose modules a kernel imports before its notebook arrives (when the notebook imports them)
PRELOADABLE = ("torch", "torchvision", "numpy", "matplotlib", "course_utils", "scipy", "sklearn", "skimage",
               "PIL", "tqdm", "ipywidgets", "pycocotools", "torchmetrics")


def preload_modules(nb: NotebookNode) -> list[str]:
    """The modules of :data:`PRELOADABLE` libraries that a notebook imports at the top level of a cell
    (``from a import b``: ``a`` and, if it is one, the module ``a.b``), in order."""
    found: dict[str, None] = {}
    for _, tree in _trees(nb):
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names if a.name != "*")]
            else:
                continue
            found.update((n, None) for n in names if n.split(".")[0] in PRELOADABLE)
    return list(found)


class _Step:
    """One sandboxed step, started before its inputs are known (it warms up, then waits for them)."""

    def __init__(self, jail: Jail, results: int, inputs: int, slot: isolation.UidSlot | None):
        self.jail, self.results, self._inputs, self._slot = jail, results, inputs, slot
        self.handed = False

    def hand_in(self, files: dict[str, bytes]) -> None:
        """Give the step its inputs, from a thread (it reads them once warm), then close its input pipe."""
        self.handed = True

        def write() -> None:
            try:
                for name, data in files.items():
                    send(self._inputs, {"name": name}, data)
            except OSError:
                pass  # it died first: its report says why
            finally:
                os.close(self._inputs)

        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        """Stop it if it was never handed its inputs; give its uid back."""
        if not self.handed:
            self.handed = True
            os.close(self._inputs)
            os.close(self.results)
            self.jail.kill()
            _end(self.jail, 30)
        if self._slot is not None:
            self._slot.release()
            self._slot = None


def _prestart(step: str, folder: Path, name: str, settings: Settings, config: dict,
              outputs: dict[str, Path] | None = None) -> _Step | None:
    """``sandbox STEP`` started in a sandbox of its own uid, warming up until :meth:`_Step.hand_in`."""
    slot = isolation.take_uid() if settings.sandbox else None
    read, write = os.pipe()
    inputs_read, inputs_write = os.pipe()
    jail = None
    try:
        (folder / f"{name}.json").write_text(json.dumps(dict(config, results_fd=write, inputs_fd=inputs_read)))
        jail = _start(step, folder / name, slot.uid if slot else None, settings,
                      {f"{step}.json": folder / f"{name}.json"}, outputs, pass_fds=(write, inputs_read))
    finally:
        os.close(write)
        os.close(inputs_read)
        if jail is None:  # stop_all ran, or starting failed
            os.close(read)
            os.close(inputs_write)
            if slot is not None:
                slot.release()
    return None if jail is None else _Step(jail, read, inputs_write, slot)


class Warm:
    """A notebook's ``execute`` and first ``run`` sandboxes, started (each with a uid of its own) before
    the notebook is graded: importing the libraries and starting the kernel overlap other work."""

    def __init__(self, lab: str, settings: Settings, preload: Sequence[str]):
        self.started = time.monotonic()
        self.folder = Path(tempfile.mkdtemp(prefix="course-grade-"))
        self.execute: _Step | None = None
        self.run: _Step | None = None
        config = {"startup_timeout": STARTUP_S, "env": {"COURSE_PROFILE": settings.profile},
                  "preload": list(preload)}
        try:
            self.execute = _prestart("execute", self.folder, "execute", settings, config,
                                     {"functions.pkl": self.folder / "functions.pkl"})
            self.run = _prestart("run", self.folder, "run-1", settings, run_config(lab, settings))
        except BaseException:
            self.close()
            raise

    def take_run(self) -> _Step | None:
        run, self.run = self.run, None
        return run

    def close(self) -> None:
        """Stop what was not used; give the uids back; remove the folder."""
        for step in (self.execute, self.run):
            if step is not None:
                step.close()
        self.execute = self.run = None
        shutil.rmtree(self.folder, ignore_errors=True)


def run_config(lab: str, settings: Settings) -> dict:
    """What a ``run`` step knows before its notebook: the exercises whose rules it resolves ahead."""
    return {"lab_exercises": [ex.id for ex in lab_exercises(lab)], "isolated": settings.sandbox}


class Pool:
    """Starts the sandboxes of the notebook ``jobs`` places later in ``queue`` (its lab and notebook;
    None: it will not be graded) when a notebook's grading begins (:meth:`take`): with ``--jobs N``, N
    notebooks are graded and N warm up."""

    def __init__(self, settings: Settings, queue: Sequence[tuple[str, NotebookNode] | None]):
        self.settings, self.queue = settings, list(queue)
        self._warm: dict[int, Warm] = {}
        self._lock = threading.Lock()

    def take(self, index: int) -> Warm | None:
        """The sandboxes of notebook ``index`` (started now if they were not ahead; None if it will not
        be graded); then starts those of the notebook ``jobs`` places later."""
        with self._lock:
            warm = self._warm.pop(index, None) or self._start(index)
            ahead = index + self.settings.jobs
            if ahead not in self._warm and (later := self._start(ahead)) is not None:
                self._warm[ahead] = later
        return warm

    def _start(self, index: int) -> Warm | None:
        if index >= len(self.queue) or self.queue[index] is None or _stopping.is_set():
            return None
        lab, nb = self.queue[index]  # type: ignore[misc]
        try:
            return Warm(lab, self.settings, preload_modules(nb))
        except Exception:  # noqa: BLE001 - then the notebook starts its own when its turn comes (and reports)
            return None

    def close(self) -> None:
        with self._lock:
            left, self._warm = list(self._warm.values()), {}
        for warm in left:
            warm.close()


def _tail(folder: Path) -> str:
    """The last line the step printed."""
    try:
        lines = (folder / "log.txt").read_text(errors="replace").strip().split("\n")
    except OSError:
        return ""
    return lines[-1][:300]


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
def _cell_label(nb: NotebookNode, index: int) -> str:
    first = next((line.strip() for line in nb.cells[index].source.split("\n") if line.strip()), "")
    return f"cell {index + 1} (`{first[:50]}{'…' if len(first) > 50 else ''}`)"


_ERRNO = re.compile(r"\[Errno (\d+)\]")
_PATH = re.compile(r"""\[Errno \d+\] [^:]*: '([^']*)'""")


def refusal(ename: str, evalue: str) -> str | None:
    """What an error says the code tried and the sandbox refused ("use the network"), or None."""
    import errno

    found = _ERRNO.search(evalue)
    code = int(found.group(1)) if found else None
    named = _PATH.search(evalue)
    path = named.group(1) if named else ""
    if ename in ("ConnectionRefusedError", "gaierror") or code in (errno.ENETUNREACH, errno.ECONNREFUSED,
                                                                     errno.EHOSTUNREACH):
        return "use the network, which does not exist while grading"
    if code == errno.EROFS or (ename == "PermissionError" and path):
        return f"write or open `{path}`: only its own folder and /tmp are writable while grading"
    if ename == "FileNotFoundError" and path.startswith("/") and not path.startswith(SCRATCH):
        return (f"reach `{path}`, which is not visible while grading (only the course, its own folder and a "
                "private /tmp are)")
    if code in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return "write more than the disk limit"
    if code == errno.EMFILE:
        return "open more files than allowed"
    if (code == errno.EAGAIN and ename == "BlockingIOError") or "can't start new thread" in evalue:
        return "start more processes or threads than allowed"
    return None


def _sandbox_notes(report: Report, what: str) -> list[str]:
    """What init saw a step of the notebook do against its sandbox."""
    notes = []
    if report.left:
        shown = ", ".join(f"`{c[:80]}`" for c in report.left[:3]) + (", ..." if len(report.left) > 3 else "")
        notes.append(f"sandbox: {what} left {len(report.left)} process(es) running ({shown}); they were killed "
                     "when it ended.")
    if report.process_limit and report.peak_processes >= 0.9 * report.process_limit:
        notes.append(f"sandbox: {what} reached the limit of {report.process_limit} processes and threads.")
    for where in report.full:
        notes.append(f"sandbox: {what} filled {where}: writing more failed.")
    return notes


def _notes(nb: NotebookNode, log: dict) -> list[str]:
    notes = []
    for c in log.get("cells", []):
        label = _cell_label(nb, c["index"])
        if c["status"] == "timeout":
            notes.append(f"{label} timed out after {c.get('limit', '?')} s and was interrupted.")
        elif c["status"] == "error":
            tried = refusal(str(c.get("ename")), str(c.get("evalue")))
            notes.append(f"sandbox: {label} tried to {tried} ({c.get('ename')}: {c.get('evalue')})" if tried else
                         f"{label} raised {c.get('ename')}: {c.get('evalue')}")
        elif c["status"] in ("crashed", "running"):
            notes.append(f"{label}: the kernel died while running it; later cells did not run.")
    return notes


def _read_log(messages: list[tuple[dict, bytes]], cells: int) -> dict:
    """The execute step's last log message (only its well-formed cell entries)."""
    log: dict = {"kernel": "starting", "cells": []}
    logs = [data for header, data in messages if header.get("event") == "log"]
    try:
        data = json.loads(logs[-1])
        log["kernel"] = str(data["kernel"])
        log["cells"] = [c for c in data["cells"] if isinstance(c, dict) and type(c.get("index")) is int
                        and 0 <= c["index"] < cells and isinstance(c.get("status"), str)]
    except (IndexError, ValueError, KeyError, TypeError):
        pass
    return log


def _missing(ex: Exercise, name: str, pickling_error: str, nb: NotebookNode, log: dict,
             defined: dict[str, list[int]]) -> str:
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


def _env(settings: Settings) -> dict[str, str]:
    """Variables of the steps' environment (besides :func:`isolation.environment`'s)."""
    import course_utils

    threads = str(threads_per_notebook(settings))
    package = Path(course_utils.__file__).resolve().parent.parent
    entries = [str(package), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    path = os.pathsep.join(p for p in dict.fromkeys(entries) if p)
    return {"COURSE_PROFILE": settings.profile, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads),
            "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", threads), "PYTHONPATH": path}


class _Reader(threading.Thread):
    """Collects a step's messages while it runs (then closes ``fd``)."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.messages = fd, []  # type: ignore[var-annotated]
        self.times: list[float] = []  # when each message arrived (time.monotonic)

    def run(self) -> None:
        try:
            for message in _messages(self.fd, float("inf")):
                self.times.append(time.monotonic())
                self.messages.append(message)
        except (OSError, ValueError):
            pass
        finally:
            os.close(self.fd)


def _messages(fd: int, deadline: float) -> Iterator[tuple[dict, bytes]]:
    """The run step's messages (see :func:`course_utils.tools.grade.sandbox.send`) until the pipe closes,
    or ``deadline`` passes (then raises TimeoutError)."""
    buffer = bytearray()

    def read(n: int) -> bytes | None:
        while len(buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if select.select([fd], [], [], min(left, 1.0))[0]:
                chunk = os.read(fd, max(1 << 16, n - len(buffer)))
                if not chunk:
                    return None
                buffer.extend(chunk)
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    while (size := read(4)) is not None:
        head = read(struct.unpack(">I", size)[0])
        header = json.loads(head) if head is not None else None
        if not isinstance(header, dict) or not 0 <= header.get("size", -1) <= MAX_RECORD_BYTES:
            return
        data = read(header["size"])
        if data is None:
            return
        yield header, data


def _run_exercises(folder: Path, lab: str, exercises: Sequence[Exercise], names: dict[str, list[str]],
                   settings: Settings, n_cases: dict[str, int], cases: bytes, first: _Step | None = None,
                   clock: Clock | None = None, verdict: Callable[[Exercise, dict], CheckResult] | None = None
                   ) -> tuple[dict[str, dict], dict[str, CheckResult], list[str]]:
    """Records of the ``run`` step (``first``: its sandbox, started ahead; the steps started again after a
    crash start here), verdicts for exercises whose process crashed or hung, and notes on what the
    sandboxes saw (``clock``: where the seconds went). ``cases``: the drawn cases, ``torch.save``d.
    ``verdict``: judges a record as it arrives, while the sandbox runs the next exercise."""
    clock = clock or Clock()
    records: dict[str, dict] = {}
    verdicts: dict[str, CheckResult] = {}
    reports: list[Report] = []
    notes: list[str] = []
    budgets = {ex.id: ex.time_limit * (n_cases[ex.id] + 1) + 30 for ex in exercises}
    left = list(exercises)
    while left:
        name = f"run-{len(reports) + 1}"
        run = first if first is not None else _prestart("run", folder, name, settings, run_config(lab, settings))
        first = None
        if run is None:
            break
        job = {"exercises": [{"id": ex.id, "names": names[ex.id], "budget": budgets[ex.id]} for ex in left]}
        inputs = {"job.json": json.dumps(job).encode(), "cases.pt": cases}
        if (folder / "functions.pkl").is_file():
            inputs["functions.pkl"] = (folder / "functions.pkl").read_bytes()
        since = time.monotonic()
        run.hand_in(inputs)
        jail, read, step = run.jail, run.results, folder / name
        started, hung = None, False
        try:
            for header, data in _messages(read, time.monotonic() + STARTUP_S + sum(budgets[ex.id] for ex in left)):
                ex = next((e for e in left if e.id == header.get("id")), None)
                if ex is None:
                    break
                now = time.monotonic()
                if header.get("event") == "started":
                    clock.add("run_start" if started is None and len(left) == len(exercises) else "run_between",
                              now - since)
                    started, since = ex, now
                    continue
                clock.exercise(ex.id, now - since)
                since = now
                left.remove(ex)
                started = None
                status, code, name = header.get("status"), int(header.get("code") or 0), names[ex.id][0]
                notes += _sandbox_notes(Report(left=[str(c) for c in header.get("left") or []]), f"`{name}` ({ex.id})")
                if status == "ok":
                    try:
                        records[ex.id] = torch.load(io.BytesIO(data), weights_only=True)
                    except Exception as exc:  # noqa: BLE001 - the sandbox runs student code: trust nothing
                        verdicts[ex.id] = CheckResult(ex.id, "error", f"❌ {ex.id}: its results could not be read "
                                                      f"({type(exc).__name__}); it was not graded.", 0, 0)
                    else:
                        if verdict is not None and isinstance(records[ex.id], dict):
                            verdicts[ex.id] = verdict(ex, records[ex.id])
                            clock.add("judge", time.monotonic() - now)
                            since = time.monotonic()
                elif status == "too_big":
                    verdicts[ex.id] = CheckResult(ex.id, "error", f"❌ {ex.id}: your function returned more than "
                                                  f"{MAX_RECORD_BYTES >> 20} MiB of data; it was not graded.", 0, 0)
                elif status == "hung":
                    text = (f"timed out: grading `{name}` took over {budgets[ex.id]:.0f} s in all (it does not stop "
                            "when interrupted), so it was stopped.")
                    verdicts[ex.id] = CheckResult(ex.id, "timeout", f"❌ {ex.id}: {text}", 0, n_cases[ex.id])
                else:
                    text = (f"`{name}` crashed the Python process that ran it ({_exit_text(code)}), so it could not "
                            "be graded.")
                    verdicts[ex.id] = CheckResult(ex.id, "crashed", f"❌ {ex.id}: {text}", 0, n_cases[ex.id])
        except TimeoutError:
            hung = True
            jail.kill()
        finally:
            os.close(read)
        report = _end(jail, 30)
        run.close()
        clock.add("run_end", time.monotonic() - since)
        reports.append(report)
        notes += [n for n in _sandbox_notes(report, "grading your functions") if n not in notes]
        if not left:
            break
        if started is not None:  # the grading process itself died (or hung) during this exercise
            left.remove(started)
            name = names[started.id][0]
            if hung:
                text = f"timed out: grading `{name}` took over {budgets[started.id]:.0f} s in all, so it was stopped."
                verdicts[started.id] = CheckResult(started.id, "timeout", f"❌ {started.id}: {text}", 0,
                                                   n_cases[started.id])
            else:
                text = (f"`{name}` crashed the Python process that ran it ({_exit_text(report.exit or 0)}), so it "
                        "could not be graded.")
                verdicts[started.id] = CheckResult(started.id, "crashed", f"❌ {started.id}: {text}", 0,
                                                   n_cases[started.id])
        else:  # it died before it started an exercise: give up on the rest
            why = report.error or _tail(step)
            for ex in left:
                verdicts[ex.id] = CheckResult(ex.id, "crashed", f"❌ {ex.id}: the grading process failed to start "
                                                                f"({_exit_text(report.exit or 0)}): {why}", 0, 0)
            left = []
    return records, verdicts, notes


class Clock:
    """Where one notebook's grading seconds went (``Entry.timing``; ``course grade --profile-time``).

    Phases, measured here, on the grader's clock: ``setup`` (drawing the hidden cases, the scratch
    folder, a uid), ``execute_start`` (the execute sandbox and its Python until it reports),
    ``kernel_start`` (the Jupyter kernel, until it answers), ``hook`` (the function-capturing hook and
    the first cell's wait), ``cells`` (the notebook's cells, as the execute step timed each one),
    ``execute_end`` (the rest of the execute step: between cells, the last capture of the functions,
    the kernel's shutdown, init's clean-up),
    ``run_start`` (the run sandbox and its Python until the first exercise starts; ``run_between``,
    ``run_end``: between and after), ``exercises`` (each exercise's child process, cases and all),
    ``judge`` (the checks, in the grader)."""

    PHASES = ("setup", "execute_start", "kernel_start", "hook", "cells", "execute_end", "run_start",
              "run_between", "exercises", "run_end", "judge")

    def __init__(self) -> None:
        self.ahead = 0.0  # how long the notebook's sandboxes had been warming up when it was handed in
        self.seconds: dict[str, float] = {}
        self.per_exercise: dict[str, float] = {}
        self.per_cell: dict[int, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + max(0.0, seconds)

    def exercise(self, ex_id: str, seconds: float) -> None:
        self.per_exercise[ex_id] = self.per_exercise.get(ex_id, 0.0) + max(0.0, seconds)
        self.add("exercises", seconds)

    def execute(self, start: float, end: float, messages: list[tuple[dict, bytes]], times: list[float],
                log: dict) -> None:
        """The execute step's phases, from when its log messages arrived (``times``) and the cells'
        own durations (``log``)."""
        kernel = []
        for (_header, data), at in zip(messages, times):
            try:
                kernel.append((json.loads(data).get("kernel"), at))
            except (ValueError, AttributeError):
                continue
        first = kernel[0][1] if kernel else end
        running = next((at for k, at in kernel if k != "starting"), end)
        first_cell = kernel[2][1] if len(kernel) > 2 else end  # the third message: the first cell starts
        self.add("execute_start", first - start)
        self.add("kernel_start", running - first)
        self.per_cell = {c["index"]: float(c["seconds"]) for c in log.get("cells", [])
                         if isinstance(c.get("seconds"), (int, float))}
        cells = sum(self.per_cell.values())
        self.add("hook", first_cell - running)
        self.add("cells", cells)
        self.add("execute_end", end - first_cell - cells)

    def as_json(self, total: float) -> dict:
        slowest = sorted(self.per_cell.items(), key=lambda kv: -kv[1])[:5]
        return {"total": round(total, 2), **{k: round(self.seconds[k], 2) for k in self.PHASES if k in self.seconds},
                **({"warmed_ahead": round(self.ahead, 2)} if self.ahead else {}),
                "per_exercise": {k: round(v, 2) for k, v in self.per_exercise.items()},
                "slowest_cells": [[index + 1, round(sec, 2)] for index, sec in slowest]}


def timing_line(timing: dict) -> str:
    """``total 17.2 s: setup 0.1, execute_start 1.9, kernel_start 3.0, ...; slowest cells: 12 (2.1 s), ...``"""
    phases = ", ".join(f"{k} {timing[k]:.1f}" for k in Clock.PHASES if k in timing)
    cells = ", ".join(f"{i} ({sec:.1f} s)" for i, sec in timing.get("slowest_cells", [])[:3])
    return f"total {timing.get('total', 0):.1f} s: {phases}" + (f"; slowest cells: {cells}" if cells else "")


@dataclass
class Graded:
    """What grading one notebook gave (the parts of its :class:`~.gradebook.Entry` that it fills)."""

    status: RunStatus = "graded"
    reason: str = ""
    exercises: dict[str, ExerciseGrade] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)      # :meth:`Clock.as_json`


def grade_notebook(nb: NotebookNode, data: bytes, lab: str, settings: Settings, warm: Warm | None = None) -> Graded:
    """Run and judge one notebook (``warm``: its sandboxes, if :class:`Pool` started them ahead)."""
    begin = time.monotonic()
    clock = Clock()
    exercises = lab_exercises(lab)
    names = function_names(exercises)
    cases = {ex.id: ex.cases(torch.Generator().manual_seed(settings.seed)) for ex in exercises}
    n_cases = {k: len(v) for k, v in cases.items()}
    warm = warm or Warm(lab, settings, preload_modules(nb))  # none started ahead: start them now
    try:
        folder, execute = warm.folder, warm.execute
        wanted = sorted({n for v in names.values() for n in v})
        last = last_graded_cell(nb, wanted)
        job = {"cell_timeout": settings.cell_timeout, "notebook_timeout": settings.timeout, "names": wanted,
               "last_cell": last}
        started = time.monotonic()
        clock.add("setup", started - begin)
        clock.ahead = started - warm.started
        report, messages, times = Report(stopped=True), [], []  # (no sandbox once stop_all ran)
        if execute is not None:
            reader = _Reader(execute.results)
            reader.start()
            execute.hand_in({"submission.ipynb": data, "job.json": json.dumps(job).encode()})
            report = _end(execute.jail, settings.timeout + 2 * STARTUP_S)
            execute.close()
            reader.join(10)
            messages, times = reader.messages, reader.times
        ended = time.monotonic()
        log = _read_log(messages, len(nb.cells))
        clock.execute(started, ended, messages, times, log)
        buffer = io.BytesIO()
        torch.save(cases, buffer)
        defined = _defined_in(nb)

        def verdict(ex: Exercise, record: dict) -> CheckResult:
            """The check's verdict on what the run step recorded."""
            if "missing" in record:
                record["missing"] = _missing(ex, record["name"], record["missing"], nb, log, defined)
            try:
                result = judge(ex.id, record, settings.seed)
                if result.status == "missing" and record["missing"].startswith("timed out"):
                    result.status = "timeout"  # the cell that defines it never finished
            except Exception as exc:  # noqa: BLE001 - a malformed record (written by the sandbox)
                result = CheckResult(ex.id, "error", f"❌ {ex.id}: its results could not be judged "
                                                     f"({type(exc).__name__}: {exc}).", 0, 0)
            return result

        clock.add("setup", time.monotonic() - ended)
        records, verdicts, run_notes = _run_exercises(folder, lab, exercises, names, settings, n_cases,
                                                      buffer.getvalue(), warm.take_run(), clock, verdict)
        tail = report.error or _tail(folder / "execute")
    finally:
        warm.close()
    judging = time.monotonic()
    code = report.exit
    out = Graded(notes=_notes(nb, log) + _skipped_note(nb, last, log) + _sandbox_notes(report, "the notebook") +
                 run_notes)
    for ex_id, record in records.items():
        for outcome in record.get("outcomes", []) if isinstance(record, dict) else []:
            tried = refusal(str(outcome.get("type")), str(outcome.get("message"))) \
                if isinstance(outcome, dict) and outcome.get("kind") == "raised" else None
            if tried:
                out.notes.append(f"sandbox: `{record.get('name')}` ({ex_id}) tried to {tried} "
                                 f"({outcome.get('type')}: {str(outcome.get('message'))[:300]})")
    for ex in exercises:
        result = verdicts.get(ex.id)
        if result is None:
            record = records.get(ex.id, {"name": names[ex.id][0] if names[ex.id] else "?", "missing": ""})
            result = verdict(ex, record)
        out.exercises[ex.id] = ExerciseGrade(result.passed, ex.points if result.passed else 0.0, ex.points,
                                             result.status, result.message)
    now = time.monotonic()
    clock.add("judge", now - judging)
    out.timing = clock.as_json(now - begin)
    kernel = log.get("kernel")
    if _stopping.is_set():
        out.status, out.reason = "interrupted", "grading was interrupted"
    elif kernel == "died":
        out.status, out.reason = "crashed", ("the kernel died while running the notebook; the functions defined "
                                             "before that were graded")
    elif kernel == "starting":
        out.status, out.reason = "crashed", f"the kernel did not start ({_exit_text(code or 0)}): {tail}"
    elif kernel in ("notebook_timeout", "running") or code is None:
        out.status, out.reason = "timeout", (f"the notebook did not finish within {settings.timeout:g} s; "
                                             "the functions defined before that were graded")
    elif any(r.status == "crashed" for r in out.exercises.values()):
        out.status, out.reason = "crashed", "a function crashed the process that graded it"
    return out
