"""The processes that run a submission's code for ``course grade``; the grader itself never does.

Two steps, each ``python -m course_utils.tools.grade.sandbox STEP`` started by the grader in a sandbox
of its own (:mod:`course_utils.tools.grade.isolation`: namespaces, a dedicated uid, limits), in a
scratch folder holding ``STEP.json``; under the grader's fork server
(:mod:`course_utils.tools.grade.zygote`) the step is :func:`main` called in a forked, warm process, and
``execute`` forks its kernel too. A step starts *warm*, before its notebook is known: it does the work
that is the same for every notebook (imports; the kernel, with the notebook's libraries imported), then
waits for its inputs, which the grader hands in through a pipe (``inputs_fd``, :func:`receive`:
the notebook's files and ``job.json``). So the grader can start the next notebook's steps while the
current one runs. No student code runs before the inputs are in, and the pipe is closed by then.

``execute``
    runs the notebook cell by cell in a fresh Jupyter kernel (nbclient), with a per-cell and a
    whole-notebook time limit, going on after errors, up to the last cell that can change a grade
    (``last_cell``, from :func:`course_utils.tools.grade.supervisor.last_graded_cell`). A hook in the
    kernel captures each exercise function right after the cell that defines it (before ``fallback``
    may swap in the reference), and writes them, serialised by value with cloudpickle, to
    ``functions.pkl`` after every cell (so a kernel that dies still leaves what it had). How each cell
    went goes to the grader after every cell, through a pipe (``results_fd``) that the kernel does not
    hold.
``run``
    grades the exercises one by one, each in a child process of its own forked from this one (which
    imported ``course_utils``, torch and the libraries whose functions the exercises put off-limits
    once, and resolved those functions, all before any student code runs): the child loads the functions and
    calls the exercise's on its cases, which the grader drew with the hidden seed and handed in (``cases.pt``; the seed
    never enters the sandbox), and writes the outcomes as plain data (see
    :mod:`course_utils.tools.grade.replay`) to a pipe only it holds. This process sends them on to
    the grader through a pipe of its own (``results_fd``), with a ``started`` message first, so the
    grader knows which exercise a crash or a hang belongs to; it stops a child that overruns its
    time budget, and kills whatever the child left running before the next exercise starts.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import select
import signal
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from course_utils.grading import Case, Exercise

MAX_RECORD_BYTES = 512 << 20  # what one exercise's recorded outcomes may weigh
KERNEL_NAME = "course-grade-python"

CAPTURE = r'''
def __course_grade_setup(names, dump):
    import linecache, os, pickle
    import cloudpickle
    shell, seen = get_ipython(), {}

    def capture(*_, final=False):
        changed = final
        for name in names:
            fn = shell.user_ns.get(name)
            module = str(getattr(fn, "__module__", "") or "")
            if callable(fn) and not module.startswith("course_utils") and seen.get(name) is not fn:
                seen[name], changed = fn, True
        if not changed:
            return
        payload = {"functions": {}, "errors": {}, "sources": {}}
        for name, fn in seen.items():
            try:
                payload["functions"][name] = cloudpickle.dumps(fn)
            except Exception as exc:
                payload["errors"][name] = f"{type(exc).__name__}: {exc}"
        payload["sources"] = {k: v[2] for k, v in list(linecache.cache.items()) if len(v) == 4 and v[1] is None}
        with open(dump + ".tmp", "wb") as f:
            pickle.dump(payload, f)
        os.replace(dump + ".tmp", dump)

    shell.events.register("post_run_cell", capture)
    return capture

__course_grade_capture = __course_grade_setup(NAMES, DUMP)
del __course_grade_setup
'''


PRELOAD = r'''
def __course_grade_preload(modules):
    import importlib
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass

__course_grade_preload(MODULES)
del __course_grade_preload
'''


def _read_exactly(fd: int, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def receive(fd: int) -> dict:
    """The grader's inputs, in :func:`send`'s messages (``{"name": file}`` headers) until it closes the
    pipe: each file is written into the scratch folder (the cwd); returns ``job.json``'s content ({}
    if the grader closed the pipe without a job: it no longer needs this step)."""
    try:
        while (size := _read_exactly(fd, 4)) is not None:
            head = _read_exactly(fd, struct.unpack(">I", size)[0])
            header = json.loads(head or b"{}")
            data = _read_exactly(fd, int(header["size"])) or b""
            Path(os.path.basename(str(header["name"]))).write_bytes(data)
    finally:
        os.close(fd)
    path = Path("job.json")
    return json.loads(path.read_text()) if path.is_file() else {}


def _kernel_spec(scratch: Path) -> dict[str, str]:
    """A kernel spec for this interpreter, so that the kernel runs the grader's Python."""
    folder = scratch / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (folder / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "grader", "language": "python"}))
    return {"JUPYTER_PATH": str(scratch / "jupyter")}


def execute(spec: dict, fork_kernel: bool = False) -> None:
    """The ``execute`` step (see the module docstring); ``fork_kernel``: the kernel is forked from this
    process (:mod:`course_utils.tools.grade.forked_kernel`; under the fork server, where it is warm)."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    from course_utils.tools.grade.isolation import PR_SET_DUMPABLE, prctl
    from course_utils.tools.kernel import NotebookClient

    prctl(PR_SET_DUMPABLE, 0)  # the kernel (same uid) cannot read this process's pipe or memory
    scratch = Path.cwd()
    log: dict = {"cells": [], "kernel": "starting"}

    def write_log() -> None:  # to the grader: a full disk or the notebook's own files cannot stop it
        send(spec["results_fd"], {"event": "log"}, json.dumps(log).encode())

    os.environ.update(_kernel_spec(scratch))
    nb = nbformat.v4.new_notebook()
    env = dict(os.environ, **spec["env"])
    env.pop("COURSE_STRICT", None)
    km = None
    if fork_kernel:
        from course_utils.tools.grade.forked_kernel import fork_kernel as fork

        km = fork(scratch, env, KERNEL_NAME)
    client = NotebookClient(nb, km=km, kernel_name=KERNEL_NAME, timeout=int(spec["startup_timeout"]), allow_errors=True,
                            interrupt_on_timeout=True, record_timing=False, shutdown_kernel="immediate",
                            error_on_timeout={"ename": "CellTimeout", "evalue": "timed out"},
                            startup_timeout=int(spec["startup_timeout"]),
                            resources={"metadata": {"path": str(scratch)}})
    replies: dict[int, dict] = {}
    client.on_cell_executed = lambda cell, cell_index, execute_reply: replies.__setitem__(cell_index, execute_reply)

    def run(source: str | None, index: int | None, seconds: float) -> dict:
        """Run cell ``index``, or ``source`` in a cell of our own (nbclient writes to the index given)."""
        if index is None:
            nb.cells.append(nbformat.v4.new_code_cell(source))
            index = len(nb.cells) - 1
        client.timeout = max(1, int(seconds))
        replies.pop(index, None)
        client.execute_cell(nb.cells[index], index, store_history=source is None)
        return (replies.get(index) or {}).get("content", {})

    with client.setup_kernel(env=env, cwd=str(scratch)):
        if spec.get("preload"):  # the libraries the notebook imports, imported ahead (no name is bound)
            run(PRELOAD.replace("MODULES", json.dumps(spec["preload"])), None, spec["startup_timeout"])
        spec = {**spec, **receive(spec["inputs_fd"])}
        if "last_cell" not in spec:
            return
        write_log()
        nb.cells[:] = nbformat.read(scratch / "submission.ipynb", as_version=4).cells
        cells = list(enumerate(nb.cells))[: spec["last_cell"] + 1]  # the grader's cut-off: later cells grade nothing
        client.timeout = int(spec["cell_timeout"])
        log["kernel"] = "running"
        write_log()
        names, dump = json.dumps(spec["names"]), json.dumps(str(scratch / "functions.pkl"))
        deadline = time.monotonic() + spec["notebook_timeout"]
        try:
            run(CAPTURE.replace("NAMES", names).replace("DUMP", dump), None, 60)
            for index, cell in cells:
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                left = deadline - time.monotonic()
                if left < 1:
                    log["kernel"] = "notebook_timeout"
                    break
                seconds = min(spec["cell_timeout"], left)
                entry = {"index": index, "status": "running"}
                log["cells"].append(entry)
                write_log()
                start = time.monotonic()
                reply = run(None, index, seconds)
                entry["seconds"] = round(time.monotonic() - start, 2)
                if reply.get("ename") == "CellTimeout":
                    entry.update(status="timeout", limit=int(seconds))
                    if seconds < spec["cell_timeout"]:
                        log["kernel"] = "notebook_timeout"
                        break
                elif reply.get("status") == "error":
                    entry.update(status="error", ename=reply.get("ename", ""),
                                 evalue=str(reply.get("evalue", ""))[:500])
                else:
                    entry["status"] = "ok"
            else:
                log["kernel"] = "finished"
            stuck = bool(log["cells"]) and log["cells"][-1]["status"] == "timeout"
            if log["kernel"] == "finished" and not stuck:  # refresh the functions' globals; the hook already saved them
                run("__course_grade_capture(final=True)", None, 30)
        except DeadKernelError:
            running = [c for c in log["cells"] if c["status"] == "running"]
            if running:
                running[-1]["status"] = "crashed"
            log["kernel"] = "died"
        write_log()
        _kill_kernel(client)
        _exit_now()  # no orderly shut-down: init kills whatever the notebook left (and reports it)


def _frame(exc: BaseException, sources: dict[str, list[str]]) -> tuple | None:
    """(function name, line number, line) of the deepest frame in the student's code."""
    import traceback

    from course_utils.grading.runner import _is_library

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_library(f.filename)]
    if not frames:
        return None
    f, lines = frames[-1], sources.get(frames[-1].filename, [])
    line = f.line or (lines[f.lineno - 1] if f.lineno and 0 < f.lineno <= len(lines) else "")
    return f.name, f.lineno or 1, line.strip()


def _record(ex: Exercise, names: list[str], cases: list[Case]) -> dict:
    """Call the student's function for ``ex`` on ``cases``: the outcomes as plain data (in the
    exercise's own child process: from here on, student code runs)."""
    import linecache

    import cloudpickle

    from course_utils.grading import Case
    from course_utils.grading.check import is_course_function
    from course_utils.grading.compare import snapshot
    from course_utils.grading.runner import (
        OffLimits,
        TimeLimitExceeded,
        call_student,
        raised_in,
        safe_str,
    )
    from course_utils.tools.grade.replay import encode

    payload: dict = {"functions": {}, "errors": {}, "sources": {}}
    if os.path.isfile("functions.pkl"):  # written by the student's kernel: loading it may run their code
        with open("functions.pkl", "rb") as f:
            payload = pickle.load(f)
    for filename, lines in payload.get("sources", {}).items():
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    found = [n for n in names if n in payload["functions"]] or [n for n in names if n in payload["errors"]]
    name = (found or names or ["?"])[0]
    record: dict = {"name": name, "cases": len(cases)}
    if name not in payload["functions"]:
        record["missing"] = payload["errors"].get(name, "")
        return record
    try:
        fn = cloudpickle.loads(payload["functions"][name])
    except BaseException as exc:  # noqa: BLE001 - whatever the student's pickle does
        record["load_error"] = f"{type(exc).__name__}: {exc}"
        return record
    outcomes: list[dict[str, Any]] = []
    record["outcomes"] = outcomes
    if is_course_function(fn, ex):
        record["reference"] = True
        cases = []
    for case in cases:
        warm_up = Case(cast(tuple, snapshot(case.args)), cast(dict, snapshot(case.kwargs)))
        call_student(ex, ex.reference, warm_up, guard=False)
        try:
            got = call_student(ex, fn, case)
        except TimeLimitExceeded:
            outcomes.append({"kind": "timeout"})
            break
        except OffLimits as exc:
            outcomes.append({"kind": "off_limits", "message": safe_str(exc)[:2000]})
            break
        except BaseException as exc:  # noqa: BLE001 - recorded, judged by the grader
            outcomes.append({"kind": "raised", "type": type(exc).__name__, "message": safe_str(exc)[:2000],
                             "not_implemented": isinstance(exc, NotImplementedError),
                             "frame": _frame(exc, payload.get("sources", {})), "raised_in": raised_in(exc)})
            break
        outcomes.append({"kind": "returned", "value": encode(got), "args": encode((case.args, case.kwargs))})
    return record


def send(fd: int, header: dict, data: bytes = b"") -> None:
    """One message to the grader: a JSON header (its length first, 4 bytes) and ``data``."""
    head = json.dumps(dict(header, size=len(data))).encode()
    view = memoryview(struct.pack(">I", len(head)) + head + data)
    while view:
        view = view[os.write(fd, view):]


def _exercise(ex: Exercise, names: list[str], cases: list[Case], budget: float, results: int,
              isolated: bool) -> tuple[dict, bytes]:
    """Grade one exercise in a child process of its own; (header, record) for the grader. Only that
    child holds the write end of its pipe: no other exercise's code can write its outcomes."""
    import torch

    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(read)
            os.close(results)
            os.setpgid(0, 0)
            buffer = io.BytesIO()
            torch.save(_record(ex, names, cases), buffer)
            data = memoryview(buffer.getvalue())
            while data:
                data = data[os.write(write, data):]
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    chunks: list[bytes] = []
    size, status, exited, code = 0, "", False, 0
    deadline = time.monotonic() + budget
    while not status:
        ready = select.select([read], [], [], 0.1)[0]
        chunk = os.read(read, 1 << 20) if ready else b""
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RECORD_BYTES:
            status = "too_big"
        elif ready and not chunk or not ready and exited:  # EOF: the child (and all it left holding the pipe) closed it
            status = "done"
        elif time.monotonic() > deadline:
            status = "hung"
        if not exited:
            pid, wait_status = os.waitpid(child, os.WNOHANG)
            if pid:
                exited, code = True, os.waitstatus_to_exitcode(wait_status)
    os.close(read)
    if not exited:
        _kill_group(child)
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    left = []
    if isolated:  # whatever the exercise left running (its uid's processes: not init, not this one)
        from course_utils.tools.grade.isolation import command_line

        left = [c for c in (command_line("/proc", int(p)) for p in os.listdir("/proc")
                            if p.isdigit() and int(p) not in (1, os.getpid())) if c]
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        _kill_group(child)
    if status == "done":
        status = "ok" if code == 0 and size else "crashed"
    header = {"event": "done", "id": ex.id, "status": status, "code": code, "left": left[:20]}
    return header, b"".join(chunks) if status == "ok" else b""


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_cases(spec: dict) -> None:
    """The ``run`` step (see the module docstring)."""
    from course_utils.tools.grade.isolation import PR_SET_DUMPABLE, prctl

    prctl(PR_SET_DUMPABLE, 0)  # the exercises' processes (same uid) cannot read this one's pipe or memory
    import torch

    from course_utils.grading import get_exercise
    from course_utils.grading.runner import guard_rules

    results = spec["results_fd"]
    for ex_id in spec["lab_exercises"]:  # before any student code: the children inherit the imports and rules
        try:                             # (the off-limits functions' libraries: sklearn, skimage, ...)
            guard_rules(get_exercise(ex_id))
        except Exception:  # noqa: BLE001 - the exercise's own child meets it again, and reports it there
            pass
    spec = {**spec, **receive(spec["inputs_fd"])}
    if "exercises" not in spec:
        return
    cases = torch.load("cases.pt", weights_only=False)  # drawn by the grader: the seed never comes here
    for item in spec["exercises"]:
        send(results, {"event": "started", "id": item["id"]})
        header, data = _exercise(get_exercise(item["id"]), item["names"], cases[item["id"]], item["budget"],
                                 results, spec["isolated"])
        send(results, header, data)


def _kill_kernel(client: Any) -> None:
    """Kill the kernel's process group now (what nbclient's immediate shut-down does, less its waits)."""
    provisioner = getattr(client.km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is None:
        return
    for kill in (lambda: os.killpg(getattr(provisioner, "pgid", None) or process.pid, signal.SIGKILL), process.kill):
        try:
            kill()
            break
        except OSError:
            continue
    try:
        process.wait(10)
    except Exception:  # noqa: BLE001 - stuck in the kernel: init kills it
        pass


def _exit_now() -> None:
    """End this step now, without the interpreter's tear-down (torch's, nbclient's): what it leaves
    running, init kills."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None, fork_kernel: bool = False) -> int:
    """``python -m course_utils.tools.grade.sandbox STEP``; ``fork_kernel``: see :func:`execute`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in ("execute", "run"):
        print("usage: python -m course_utils.tools.grade.sandbox execute|run  (in the scratch folder: "
              "execute.json or run.json)", file=sys.stderr)
        return 2
    spec = json.loads(Path(f"{argv[0]}.json").read_text())
    if argv[0] == "execute":
        execute(spec, fork_kernel)
    else:
        run_cases(spec)
    _exit_now()
    return 0


if __name__ == "__main__":
    sys.exit(main())
