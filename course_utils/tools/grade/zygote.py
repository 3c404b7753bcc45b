"""A fork server for the grader's sandboxes: Python, torch and the course imported once per run, not three
times per notebook.

Each notebook that ``course grade`` grades runs two sandboxed steps (:mod:`course_utils.tools.grade.sandbox`),
and the ``execute`` step runs a Jupyter kernel. Started afresh, each of the three is a new Python that
imports torch, the course, nbclient or ipykernel and the exercises' libraries, and that was most of a
notebook's CPU time. The zygote is one process per grading run, started by the grader (as the grader's
user: root where it sandboxes), that imports all of that once, and then forks for every sandbox::

    grader ─ zygote (warm; no student code ever runs in it; it never reads a sandbox's spec)
               └─ fork: unshare(PID, mount, net, IPC, UTS) ─ fork: init, PID 1 (isolation.main)
                                                               └─ fork: chroot, uid, limits: the step
                                                                    └─ (execute) fork: the kernel

The sandbox itself is :mod:`course_utils.tools.grade.isolation`'s, unchanged: the grader writes the spec
to init's stdin, init builds the same view, uid, limits and cgroups, and reports the same way; only the
step is not executed anew (:func:`run_step` calls :func:`course_utils.tools.grade.sandbox.main` in the
forked process, with the step's environment, argv and ``sys.path``), and the ``execute`` step forks its
kernel (:mod:`course_utils.tools.grade.forked_kernel`). The zygote hands the grader a pidfd of the
sandbox's first process (:class:`Forked`), through which the grader waits for it and kills it, and with
it init, whose death ends every process of its PID namespace (``unshare --kill-child``'s guarantee).

The zygote holds nothing a sandbox may not see: the grader's settings (environment, limits) but no seed,
no submission, no path of another student (specs go to init, never through the zygote). It has no thread
of its own and initialises no GPU (a forked CUDA context is unusable); it ends when the grader closes its
socket or dies. ``COURSE_GRADE_ZYGOTE=0`` turns it off: every step then starts as ``unshare ... python``.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from course_utils.tools.grade import isolation

#: what the zygote imports before it forks: the steps', the kernel's, and the course labs' libraries
WARM = ("torch", "torchvision", "numpy", "cloudpickle", "nbformat", "nbclient", "jupyter_client", "zmq",
        "ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "matplotlib", "matplotlib.pyplot",
        "course_utils", "course_utils.grading", "course_utils.exercises", "course_utils.tools.kernel",
        "course_utils.tools.grade.sandbox", "course_utils.tools.grade.replay",
        "course_utils.tools.grade.forked_kernel", "skimage", "tqdm", "ipywidgets", "torchmetrics")
STEP = "course_utils.tools.grade.sandbox"
MAX_FDS = 16
STARTUP_S = 300.0  # the zygote's imports, on a busy machine


def enabled() -> bool:
    """Whether the grader uses a zygote (Linux with pidfds, and not turned off)."""
    return (sys.platform.startswith("linux") and hasattr(os, "pidfd_open")
            and os.environ.get("COURSE_GRADE_ZYGOTE", "1") != "0")


# ---- the grader's side -----------------------------------------------------------------------------------
class Forked:
    """A sandbox's first process, forked by the zygote: what :class:`isolation.Jail` uses of a ``Popen``."""

    def __init__(self, pid: int, pidfd: int, stdin: int):
        self.pid, self._pidfd, self.returncode = pid, pidfd, cast(int | None, None)
        self.stdin = os.fdopen(stdin, "wb")

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._pidfd], [], [], 0)[0]:
            self.returncode = 0  # ended (not our child: its exit code is in init's report)
            os.close(self._pidfd)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"sandbox {self.pid}", timeout or 0)
            self.poll()
        return 0

    def kill(self) -> None:
        if self.returncode is None:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def __del__(self) -> None:
        if self.returncode is None:
            try:
                os.close(self._pidfd)
            except OSError:
                pass


class Zygote:
    """The grader's handle on a zygote started with the environment ``env`` (the steps', less the
    sandbox's own HOME and /tmp: the zygote runs outside)."""

    def __init__(self, env: dict[str, str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**env, "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}  # torch.cuda.is_available() without a CUDA call
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, str(theirs.fileno())], cwd="/",
                                      env=env, pass_fds=(theirs.fileno(),), start_new_session=True,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        theirs.close()
        self._sock, self._lock = ours, threading.Lock()
        self._sock.settimeout(STARTUP_S)
        try:
            ready = self._sock.recv(4096)  # the zygote is warm
        except OSError:
            ready = b"no answer"
        self._sock.settimeout(None)
        if ready != b"ready":
            self.close()
            raise RuntimeError(f"the grader's fork server did not start ({ready!r})")

    def spawn(self, errors: Path, pass_fds: Sequence[int], isolated: bool) -> Forked:
        """A sandbox's init, forked: its stderr to ``errors``; ``pass_fds`` kept at the same numbers."""
        stdin_read, stdin_write = os.pipe()
        err = os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            header = json.dumps({"targets": list(pass_fds), "isolated": isolated}).encode()
            with self._lock:
                socket.send_fds(self._sock, [header], [stdin_read, err, *pass_fds])
                reply, fds, _, _ = socket.recv_fds(self._sock, 4096, 1)
        except BaseException:
            os.close(stdin_write)
            raise
        finally:
            os.close(stdin_read)
            os.close(err)
        answer = json.loads(reply or b"{}")
        if "pid" not in answer or len(fds) != 1:
            os.close(stdin_write)
            for fd in fds:
                os.close(fd)
            raise RuntimeError(f"the grader's fork server could not start a sandbox: {answer.get('error', reply)}")
        return Forked(answer["pid"], fds[0], stdin_write)

    def close(self) -> None:
        self._sock.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# ---- the zygote ----------------------------------------------------------------------------------------
def _warm_up() -> None:
    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional library; the step imports what it needs itself
            pass
    from course_utils.exercises import known_labs, lab_exercises
    from course_utils.grading.runner import guard_rules

    for lab in known_labs():
        for ex in lab_exercises(lab):  # resolves the off-limits functions (imports sklearn, skimage, ...)
            try:
                guard_rules(ex)
            except Exception:  # noqa: BLE001 - the step meets it again and reports it there
                pass


def _cuda_loaded() -> bool:
    """Whether this process loaded the CUDA driver (a CUDA call was made: then its children cannot use it)."""
    try:
        return "libcuda.so" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def _place(fds: Sequence[int], targets: Sequence[int]) -> None:
    """fd ``fds[i]`` at number ``targets[i]`` (0, 1, 2, then the pipes), every other fd closed."""
    floor = max([*fds, *targets, 2]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in fds]
    os.closerange(0, floor)
    for fd, target in zip(moved, targets):
        os.dup2(fd, target)
    os.closerange(floor, 1 << 16)


def _sandbox(header: dict, fds: list[int]) -> None:
    """The forked child: unshare (when isolated), fork init, wait for it, exit with its status."""
    code = 1
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        stdin, errors, *passed = fds
        _place([stdin, null, errors, *passed], [0, 1, 2, *header["targets"]])
        if header["isolated"]:
            isolation.unshare(isolation.NAMESPACES)
        me = os.getpid()
        init = os.fork()
        if init == 0:
            isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)  # as `unshare --kill-child`
            if os.getppid() not in (me, 0):  # 0: the parent is outside this PID namespace
                os._exit(1)  # it died before prctl (and if it did in a namespace, stdin's end stops init)
            os._exit(isolation.main(run=run_step))
        for fd in header["targets"]:
            os.close(fd)
        os.close(0)
        code = os.waitstatus_to_exitcode(os.waitpid(init, 0)[1])
    except BaseException as exc:  # noqa: BLE001 - said in init.txt, never back into the zygote's loop
        os.write(2, f"the sandbox could not start: {type(exc).__name__}: {exc}\n".encode())
    os._exit(code if code >= 0 else 128 - code)


def run_step(spec: dict) -> int:
    """In the sandbox, as its uid (``isolation._exec_command``): what ``python -m STEP ...`` would do
    (or ``python -c CODE``: the tests run their probes of the sandbox this way too)."""
    import random
    import tempfile

    argv = list(spec["argv"])
    if argv[1:3] != ["-m", STEP] and not (len(argv) == 3 and argv[1] == "-c"):
        raise ValueError(f"the fork server runs {STEP} or `python -c CODE` only, not {argv!r}")
    os.environ.clear()
    os.environ.update(spec["env"])
    tempfile.tempdir = None  # $TMPDIR is the sandbox's now
    random.seed()
    if argv[1] == "-c":
        sys.argv, sys.path[0:0] = ["-c"], [""]
        exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102
        return 0
    from course_utils.tools.grade import sandbox

    sys.argv = [sandbox.__file__ or STEP, *argv[3:]]
    sys.path.insert(0, os.getcwd())  # as `python -m` puts the folder it starts in first
    return sandbox.main(argv[3:], fork_kernel=True)


def serve(fd: int) -> None:
    """The zygote's loop: a sandbox per request, until the grader closes the socket."""
    sock = socket.socket(fileno=fd)
    sys.path[:] = [p for p in sys.path if p not in ("", "/")]
    try:
        _warm_up()
    except BaseException as exc:  # noqa: BLE001 - the grader then starts every step the slow way
        sock.send(f"{type(exc).__name__}: {exc}".encode())
        return
    if _cuda_loaded():
        sock.send(b"the CUDA driver was loaded while warming up: forked children could not use the GPU")
        return
    sock.send(b"ready")
    while True:
        while True:  # reap the sandboxes that ended (their pidfds tell the grader)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not select.select([sock], [], [], 1.0)[0]:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, 65536, MAX_FDS)
        except OSError:
            return
        if not message:
            return  # the grader closed the socket, or died
        try:
            header = json.loads(message)
            pid = os.fork()
            if pid == 0:
                sock.close()
                _sandbox(header, fds)
            pidfd = os.pidfd_open(pid)
            socket.send_fds(sock, [json.dumps({"pid": pid}).encode()], [pidfd])
            os.close(pidfd)
        except Exception as exc:  # noqa: BLE001 - told to the grader, which reports it
            sock.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
