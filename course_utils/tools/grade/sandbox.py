"""The processes that run a submission's code for ``course grade``; the grader itself never does.

Two steps, each a separate process started with ``python -m course_utils.tools.grade.sandbox STEP
SPEC.json`` in a scratch folder, under a memory limit, killed by the grader if it overruns:

``execute``
    runs the notebook cell by cell in a fresh Jupyter kernel (nbclient), with a per-cell and a
    whole-notebook time limit, going on after errors. A hook in the kernel captures each exercise
    function right after the cell that defines it (before ``fallback`` may swap in the reference),
    and writes them, serialised by value with cloudpickle, to ``functions.pkl`` after every cell
    (so a kernel that dies still leaves what it had). ``log.json`` says how each cell went.
``run``
    loads those functions into a fresh interpreter (that imported ``course_utils`` first), calls
    each on its exercise's cases drawn with the hidden seed, and writes one ``ID.pt`` per exercise
    with the outcomes as plain data (see :mod:`course_utils.tools.grade.replay`); ``ID.started`` marks
    the exercise in progress, so the grader knows which one a crash or a hang belongs to.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import sys
import time
from pathlib import Path

from course_utils.files import atomic_torch_save, atomic_write

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


def limit_memory(gib: float) -> None:
    """Cap this process's (and its children's) heap at ``gib`` GiB: a blow-up raises MemoryError
    instead of taking the machine down. RLIMIT_DATA, not RLIMIT_AS: shared libraries (torch's
    CUDA libraries alone map gigabytes) do not count."""
    if gib and gib > 0:
        limit = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def write_json(path: Path, data: object) -> None:
    atomic_write(path, json.dumps(data, indent=1))


def _kernel_spec(scratch: Path) -> dict[str, str]:
    """A kernel spec for this interpreter, so that the kernel runs the grader's Python."""
    folder = scratch / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (folder / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "grader", "language": "python"}))
    return {"JUPYTER_PATH": str(scratch / "jupyter")}


def execute(spec: dict) -> None:
    """The ``execute`` step (see the module docstring)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    scratch = Path(spec["scratch"])
    log_path = scratch / "log.json"
    log: dict = {"cells": [], "kernel": "starting", "kernel_pid": None}
    write_json(log_path, log)
    limit_memory(spec["memory_gib"])
    os.environ.update(_kernel_spec(scratch))
    nb = nbformat.read(scratch / "submission.ipynb", as_version=4)
    env = dict(os.environ, **spec["env"])
    env.pop("COURSE_STRICT", None)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=int(spec["cell_timeout"]), allow_errors=True,
                            interrupt_on_timeout=True, record_timing=False, shutdown_kernel="immediate",
                            error_on_timeout={"ename": "CellTimeout", "evalue": "timed out"},
                            startup_timeout=int(spec["startup_timeout"]),
                            resources={"metadata": {"path": str(scratch)}})
    replies: dict[int, dict] = {}
    client.on_cell_executed = lambda cell, cell_index, execute_reply: replies.__setitem__(cell_index, execute_reply)

    cells = list(enumerate(nb.cells))

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
        log["kernel"], log["kernel_pid"] = "running", getattr(client.km.provisioner, "pid", None)
        write_json(log_path, log)
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
                write_json(log_path, log)
                start = time.monotonic()
                reply = run(None, index, seconds)
                entry["seconds"] = round(time.monotonic() - start, 2)
                if reply.get("ename") == "CellTimeout":
                    entry.update(status="timeout", limit=int(seconds))
                    if seconds < spec["cell_timeout"]:
                        log["kernel"] = "notebook_timeout"
                        break
                elif reply.get("status") == "error":
                    entry.update(status="error", ename=reply.get("ename", ""), evalue=str(reply.get("evalue", ""))[:500])
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
        write_json(log_path, log)


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


def run_cases(spec: dict) -> None:
    """The ``run`` step (see the module docstring)."""
    scratch = Path(spec["scratch"])
    limit_memory(spec["memory_gib"])
    import linecache

    import cloudpickle
    import torch

    from course_utils.grading import Case, get_exercise
    from course_utils.grading.check import is_course_function
    from course_utils.grading.compare import snapshot
    from course_utils.grading.runner import OffLimits, TimeLimitExceeded, call_student, raised_in, safe_str
    from course_utils.tools.grade.replay import encode

    exercises = [(get_exercise(item["id"]), item["names"]) for item in spec["exercises"]]
    payload = {"functions": {}, "errors": {}, "sources": {}}
    if (scratch / "functions.pkl").is_file():
        with open(scratch / "functions.pkl", "rb") as f:
            payload = pickle.load(f)
    for filename, lines in payload.get("sources", {}).items():
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    out = scratch / "results"
    out.mkdir(exist_ok=True)
    for ex, names in exercises:
        (out / f"{ex.id}.started").touch()
        cases = ex.cases(torch.Generator().manual_seed(spec["seed"]))
        found = [n for n in names if n in payload["functions"]] or [n for n in names if n in payload["errors"]]
        name = (found or names or ["?"])[0]
        record: dict = {"name": name, "cases": len(cases)}
        if name not in payload["functions"]:
            record["missing"] = payload["errors"].get(name, "")
        else:
            try:
                fn = cloudpickle.loads(payload["functions"][name])
            except BaseException as exc:  # noqa: BLE001 - whatever the student's pickle does
                record["load_error"] = f"{type(exc).__name__}: {exc}"
            else:
                record["outcomes"] = outcomes = []
                if is_course_function(fn, ex):
                    record["reference"] = True
                    cases = []
                for case in cases:
                    call_student(ex, ex.reference, Case(snapshot(case.args), snapshot(case.kwargs)), guard=False)
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
        atomic_torch_save(record, out / f"{ex.id}.pt")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("execute", "run"):
        print("usage: python -m course_utils.tools.grade.sandbox execute|run SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    (execute if argv[0] == "execute" else run_cases)(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
