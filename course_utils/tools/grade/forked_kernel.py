"""The ``execute`` step's Jupyter kernel, forked from the step instead of started as a new Python.

Under the grader's fork server (:mod:`course_utils.tools.grade.zygote`) the step has torch, the course,
ipykernel and the labs' libraries imported already; a kernel forked from it starts in a fraction of a
second instead of importing them all again. :func:`fork_kernel` writes a connection file, forks, and in the
child runs ipykernel's ``IPKernelApp`` on it (what ``python -m ipykernel_launcher -f FILE`` does) in the
scratch folder, with the kernel's environment, in a process group of its own, holding no file descriptor
of the step's (its pipe to the grader stays the step's alone), dumpable again (as a process started
anew is: the notebook's code may read its own ``/proc/self``). The step then drives it with nbclient as
usual: the kernel manager it returns *adopts* the child (:class:`AdoptedProvisioner`: polls, signals and
kills it as jupyter_client's local provisioner does a process it launched).

Only the step calls this, before it opens any ZeroMQ socket or event loop (forking either is unsafe).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

from jupyter_client import AsyncKernelManager
from jupyter_client.connect import write_connection_file
from jupyter_client.provisioning import LocalProvisioner

from course_utils.tools.grade.isolation import PR_SET_DUMPABLE, prctl


class _Child:
    """A forked child, with the part of ``subprocess.Popen``'s interface that the provisioner uses."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, cast(int | None, None)
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class AdoptedProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner for a kernel that is already running (forked by us)."""

    def adopt(self, child: _Child, cwd: str, connection_info: dict[str, Any]) -> None:
        self.process, self.pid, self.pgid, self.cwd = cast(Any, child), child.pid, child.pid, cwd
        self.connection_info = cast(Any, connection_info)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        raise RuntimeError("this kernel was forked by the grader: it cannot be started again")


def fork_kernel(cwd: Path, env: dict[str, str], kernel_name: str) -> AsyncKernelManager:
    """A kernel forked from this process, in ``cwd`` with ``env``; a manager that drives it."""
    runtime = Path(env.get("JUPYTER_RUNTIME_DIR") or Path(env.get("HOME", str(cwd))) / ".local/share/jupyter/runtime")
    runtime.mkdir(parents=True, exist_ok=True)  # where jupyter_client puts it: not in the notebook's folder
    connection = str(runtime / f"kernel-{os.getpid()}.json")
    connection, info = write_connection_file(connection, ip="127.0.0.1", key=secrets.token_hex(16).encode())
    child_env = {**env, "JPY_PARENT_PID": str(os.getpid())}
    child_env.pop("PYTHONEXECUTABLE", None)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.closerange(3, 1 << 16)
            prctl(PR_SET_DUMPABLE, 1)
            os.environ.clear()
            os.environ.update(child_env)
            os.chdir(cwd)
            from importlib.util import find_spec

            from ipykernel.kernelapp import IPKernelApp

            launcher = find_spec("ipykernel_launcher")
            sys.argv = [str(launcher.origin if launcher else "ipykernel_launcher"), "-f", connection]

            IPKernelApp.launch_instance(argv=["-f", connection])
            code = 0
        except BaseException as exc:  # noqa: BLE001 - said on stderr (the step's log), never back into the step
            os.write(2, f"the forked kernel failed: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(code)
    km = AsyncKernelManager(connection_file=connection, kernel_name=kernel_name)
    km.load_connection_file()
    provisioner = AdoptedProvisioner(kernel_id=km.kernel_id or "forked", kernel_spec=km.kernel_spec, parent=km)
    provisioner.adopt(_Child(pid), str(cwd), dict(info))
    km.provisioner = provisioner
    return km
