"""Run one notebook top to bottom in a fresh kernel, with a deadline, and keep what it printed.

    python bench/_notebook_run.py solutions/02_fcn.ipynb OUT.ipynb --deadline 360

Used by ``bench/gpu_session.sh`` to run every solution in the ``gpu`` profile on a lent GPU, where the
session's time is short: at the deadline the kernel is interrupted, so the notebook written to OUT holds
every output up to that point (a training cell's progress bar included) and the cell that was cut.
Prints one ``CELL {json}`` line per code cell (index, seconds, status, first line of the source) and a
last ``NOTEBOOK {json}`` line (cells run, seconds, status: ok / error / deadline). The source notebook is
never written. Not a benchmark (its name starts with ``_``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_utils.tools.kernel import NotebookClient


class TimedClient(NotebookClient):
    """A NotebookClient that prints each code cell's wall time as it finishes."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        started = time.perf_counter()
        status = "ok"
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except BaseException:
            status = "error"
            raise
        finally:
            if cell.cell_type == "code":
                head = next((line for line in cell.source.splitlines() if line.strip()), "")[:80]
                print("CELL " + json.dumps({"index": cell_index, "seconds": round(time.perf_counter() - started, 2),
                                            "status": status, "source": head}), flush=True)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("out", type=Path, help="where the executed notebook is written (never the source)")
    parser.add_argument("--deadline", type=float, default=3600, help="seconds before the kernel is interrupted")
    parser.add_argument("--dump-stacks", action="store_true",
                        help="at the deadline, first send SIGUSR1: a kernel whose startup ran "
                             "faulthandler.register(SIGUSR1) prints every thread's stack (why it hangs)")
    args = parser.parse_args(argv)
    if args.out.resolve() == args.notebook.resolve():
        parser.error("the executed notebook must not overwrite its source")

    notebook = nbformat.read(args.notebook, as_version=4)
    for cell in notebook.cells:   # the stored outputs are the cpu profile's: none of them may look like this run's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = TimedClient(notebook, timeout=None, kernel_name="python3", record_timing=True,
                         resources={"metadata": {"path": str(args.notebook.parent.resolve())}},
                         extra_arguments=["--IPKernelApp.log_level=ERROR"])
    cut = threading.Event()

    def interrupt() -> None:
        cut.set()
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)   # the kernel's process
        print(f"deadline of {args.deadline:.0f} s: interrupting the kernel (pid {pid})", file=sys.stderr, flush=True)
        if pid and args.dump_stacks:
            os.kill(pid, signal.SIGUSR1)
            time.sleep(2)
        if pid:
            os.kill(pid, signal.SIGINT)   # what Jupyter's interrupt button sends
            killer = threading.Timer(30, kill, (pid,))   # a kernel stuck in C code
            killer.daemon = True
            killer.start()

    timer = threading.Timer(args.deadline, interrupt)
    timer.daemon = True
    started, status, error = time.perf_counter(), "ok", None
    timer.start()
    try:
        client.execute()
    except CellExecutionError as err:
        status = "deadline" if cut.is_set() else "error"
        error = f"{err.ename}: {err.evalue}"[:300]
        print(str(err)[-3000:], file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - a kernel that died: report and keep the notebook
        status = "deadline" if cut.is_set() else "error"
        error = f"{type(err).__name__}: {err}"[:300]
        print(error, file=sys.stderr)
    finally:
        timer.cancel()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(nbformat.writes(notebook) + "\n")
    ran = sum(1 for c in notebook.cells if c.cell_type == "code" and c.get("execution_count"))
    print("NOTEBOOK " + json.dumps({"notebook": args.notebook.name, "status": status, "cells_run": ran,
                                    "code_cells": sum(1 for c in notebook.cells if c.cell_type == "code"),
                                    "seconds": round(time.perf_counter() - started, 1), "error": error}), flush=True)
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
