"""The grader's sandbox: run any command so that it sees, reaches and leaves behind nothing but its own.

:func:`start` wraps an argv (``[python, -m, ...]``) into a sandbox and returns a :class:`Jail`. On
Linux, as root, a sandbox is (util-linux ``unshare``, then this module's :func:`main` as its init)::

    unshare --pid --mount --net --ipc --uts --fork --kill-child  python -m ...isolation   (PID 1: init)
        └─ the command, as a dedicated unprivileged uid (one per concurrent sandbox), chrooted into:
           /usr /bin /lib* /etc /sys   the system, read-only
           <python> <venv> <course_utils>   the interpreter, its packages and the course, read-only
           /home/student              its scratch folder (a size-limited tmpfs; the cwd and $HOME)
           /tmp, /dev/shm             private, size-limited tmpfs
           /proc                      of its own PID namespace: it sees only its own processes
           /dev                       null, zero, full, random, urandom (and GPUs, if any)
        network: a loopback of its own and nothing else.

Limits: the uid's ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_NOFILE``, ``RLIMIT_FSIZE``,
``RLIMIT_CPU`` and ``RLIMIT_DATA`` (memory per process), and where cgroup v1 is mounted (cpu, pids,
memory), a cgroup per sandbox: an equal share of the CPU, ``pids.max`` and a memory limit for the
whole sandbox. Files go in through ``inputs`` (copied into the scratch folder before the command
starts) and come out through ``outputs`` (copied out by init after every process of the sandbox has
been killed: a file the command left, never a link); ``pass_fds`` hand it pipes. When the command
exits, is stopped (:meth:`Jail.stop`) or killed (:meth:`Jail.kill`), or the grader dies, init kills
every process left in the namespace (a double-forked ``setsid`` daemon included) and says in its
:class:`Report` what it found: processes left running, a full folder, the process limit reached.

The grader starts init through its fork server (``start(..., zygote=...)``,
:mod:`course_utils.tools.grade.zygote`): the same namespaces (made with ``unshare(2)``), the same
:func:`main` as PID 1, but forked from a process that has the command's libraries imported already,
and the command (the grader's own steps only) called in the forked process instead of executed.

Without root (or off Linux) there is no sandbox: :func:`support` says why, and ``course grade`` refuses
unless ``--no-sandbox``; then the same :func:`start` runs the command as the grader's own user in a
plain scratch folder, in a session of its own, and kills what it left (a child subreaper catches
daemons), but it can read and write whatever the grader can.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_utils.tools.grade.zygote import Forked, Zygote

SCRATCH = "/home/student"      # the sandbox's own folder, as it sees it
UID_BASE = int(os.environ.get("COURSE_GRADE_UID_BASE", "1900000000"))  # sandbox uids: UID_BASE + slot
SLOTS = 256
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom")
LOG_BYTES = 256 << 10          # the tail of the command's stdout and stderr that is kept
OUTPUT_BYTES = 1 << 30         # the largest file copied out
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
            "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "COURSE_PROFILE", "MPLBACKEND")
ENV_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "NVIDIA_", "CUDA_")


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use."""

    memory_gib: float = 4.0     # per process (RLIMIT_DATA); the whole sandbox: twice that + disk + tmp
    disk_gib: float = 2.0       # its scratch folder, and the largest file it may write
    tmp_gib: float = 1.0        # /tmp, and /dev/shm
    processes: int = 512        # processes and threads
    open_files: int = 1024
    cpu_seconds: int = 7200     # CPU time per process
    cpus: int = 1               # its weight against other sandboxes' (and other processes'), in CPUs


@dataclass
class Report:
    """What init saw of one sandbox (``exit``: the command's exit code, negative for a signal)."""

    exit: int | None = None
    stopped: bool = False                                    # stopped by the grader (time-out, Ctrl-C)
    left: list[str] = field(default_factory=list)            # command lines of the processes left running
    peak_processes: int = 0                                  # processes and threads at the busiest moment
    process_limit: int = 0
    full: list[str] = field(default_factory=list)            # folders that filled up
    error: str = ""                                          # the sandbox itself failed


@dataclass(frozen=True)
class Support:
    """Whether this machine can sandbox (``isolated``), and how or why not (``how``)."""

    isolated: bool
    how: str
    cgroups: str = ""


# ---- what the machine supports ----------------------------------------------------------------------
@lru_cache(maxsize=1)
def support() -> Support:
    if not sys.platform.startswith("linux"):
        return Support(False, f"not Linux ({sys.platform}): no namespaces")
    if os.geteuid() != 0:
        return Support(False, "not root: the sandbox needs root to switch to a dedicated uid and mount its "
                              "file system view (run `sudo course grade ...`)")
    unshare = shutil.which("unshare")
    if not unshare:
        return Support(False, "no `unshare` (util-linux) on the PATH")
    probe = subprocess.run([unshare, "--pid", "--mount", "--net", "--ipc", "--uts", "--fork", "--kill-child",
                            "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return Support(False, f"`unshare` cannot create namespaces here: {probe.stderr.strip()[:200]}")
    groups = cgroup_roots()
    cg = (f"cgroup v1 ({', '.join(groups)}): an equal CPU share, a process and a memory limit per sandbox"
          if groups else "no cgroup v1 controllers: processes are limited per uid only, CPU is not shared out")
    return Support(True, "namespaces (PID, mount, network, IPC, UTS), a dedicated uid per sandbox, read-only "
                         "course and Python, private scratch folder and /tmp, no network", cg)


def cgroup_roots() -> dict[str, Path]:
    """Controller -> the folder of this process's own cgroup in that cgroup v1 hierarchy (where the
    sandboxes' cgroups are made), for cpu, pids and memory; empty unless all three are there."""
    mounts: dict[str, Path] = {}
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            _, where, kind, options, *_ = line.split()
            if kind == "cgroup":
                for name in ("cpu", "pids", "memory"):
                    if name in options.split(","):
                        mounts[name] = Path(where)
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            for name in names.split(","):
                own[name] = path.lstrip("/")
    except (OSError, ValueError):
        return {}
    roots = {name: mounts[name] / own.get(name, "") for name in mounts}
    ok = len(roots) == 3 and all(os.access(p, os.W_OK) for p in roots.values())
    return roots if ok else {}


# ---- which folders a sandbox sees ------------------------------------------------------------------------
def python_paths(hidden: Sequence[Path] = ()) -> list[str]:
    """The folders the sandboxed Python needs, read-only: its installation, its virtual environment,
    the site-packages folders on ``sys.path``, and the ``course_utils`` package (only the package: not
    the checkout it sits in, which may hold submissions). ``hidden`` (submissions, the gradebook) must
    not be under any of them: those that hold one are left out, or it is an error for the ones needed."""
    import course_utils

    package = Path(course_utils.__file__).resolve().parent
    needed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    needed.add(package)
    needed.update(p for p in package.parent.glob("course_utils*-info") if p.is_dir())
    needed.update(p for p in package.parent.glob("course_utils*.egg-link"))
    extra = set()
    for entry in sys.path:
        p = Path(entry).resolve() if entry else None
        if p and p.is_dir() and p.name in ("site-packages", "dist-packages"):
            extra.add(p)
    hidden = [h.resolve() for h in hidden]
    for p in needed:
        for h in hidden:
            if h.is_relative_to(p):
                raise ValueError(f"{h} is inside {p}, which every sandbox must see: move it elsewhere")
    extra = {p for p in extra if not any(h.is_relative_to(p) for h in hidden)}
    paths = sorted(str(p) for p in needed | extra)
    return [p for p in paths if not any(p != q and Path(p).is_relative_to(q) for q in paths)]


def environment(extra: dict[str, str], home: str) -> dict[str, str]:
    """The command's environment: a few of the grader's variables (locale, paths, threads, GPUs), its
    folder as ``HOME``, then ``extra``. Nothing else of the grader's environment gets in."""
    env = {k: v for k, v in os.environ.items() if k in ENV_KEEP or k.startswith(ENV_PREFIXES)}
    env.update(HOME=home, USER="student", LOGNAME="student")
    if home == SCRATCH:
        env.update(TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib")
    env.update(extra)
    return env


# ---- uids ------------------------------------------------------------------------------------------------
_taken: set[int] = set()
_taken_lock = threading.Lock()


@dataclass
class UidSlot:
    """A sandbox uid held (its lock file locked) until :meth:`release`."""

    uid: int
    _handle: object = field(repr=False, default=None)

    def release(self) -> None:
        if self._handle is None:
            return
        with _taken_lock:
            _taken.discard(self.uid)
        self._handle.close()  # type: ignore[attr-defined]
        self._handle = None


def take_uid() -> UidSlot:
    """A uid no other sandbox uses meanwhile, in this process or another grader's (a lock file each)."""
    folder = Path(tempfile.gettempdir()) / "course-grade-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    for slot in range(SLOTS):
        uid = UID_BASE + slot
        with _taken_lock:
            if uid in _taken:
                continue
            handle = open(folder / f"{uid}.lock", "w")  # noqa: SIM115 - held (locked) while the uid is in use
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            _taken.add(uid)
        return UidSlot(uid, handle)
    raise RuntimeError(f"all {SLOTS} sandbox uids are in use")


@contextmanager
def uid_slot() -> Iterator[int]:
    """:func:`take_uid` for a ``with`` block."""
    slot = take_uid()
    try:
        yield slot.uid
    finally:
        slot.release()


def _cgroup(uid: int, limits: Limits) -> list[str]:
    """The sandbox's cgroup folders (made, with its limits), or [] where there are none."""
    made = []
    roots = cgroup_roots()
    try:
        for name, root in roots.items():
            folder = root / f"course-grade-{uid}"
            folder.mkdir(exist_ok=True)
            made.append(str(folder))
            if name == "cpu":
                (folder / "cpu.shares").write_text(str(1024 * max(1, limits.cpus)))
            elif name == "pids":
                (folder / "pids.max").write_text(str(limits.processes))
            elif name == "memory" and limits.memory_gib > 0:
                total = 2 * limits.memory_gib + limits.disk_gib + limits.tmp_gib
                (folder / "memory.limit_in_bytes").write_text(str(int(total * 2**30)))
    except OSError:
        return []
    return made


def _remove_cgroups(folders: list[str]) -> None:
    for folder in folders:
        for _ in range(50):  # the kernel empties it a moment after its last process is reaped
            try:
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


# ---- the grader's side -----------------------------------------------------------------------------------
class Jail:
    """A command running in a sandbox (see the module docstring)."""

    def __init__(self, proc: subprocess.Popen | Forked, folder: Path, cgroups: list[str], isolated: bool):
        self.proc, self.folder, self._cgroups, self.isolated = proc, folder, cgroups, isolated
        self._report: Report | None = None

    def stop(self) -> None:
        """Ask init to kill everything and copy the outputs out (it does so within a moment)."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass

    def kill(self) -> None:
        """Kill the sandbox now (and, by its PID namespace, every process in it); no outputs. Without a
        sandbox: init's process group (a process that left it survives)."""
        try:
            if self.isolated:
                self.proc.kill()
            else:
                os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait(self, timeout: float | None = None, grace: float = 20.0) -> Report:
        """Wait until it ends; past ``timeout`` stop it, and past ``grace`` more kill it."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait()
        self.stop()
        _remove_cgroups(self._cgroups)
        if self._report is None:
            try:
                self._report = Report(**json.loads((self.folder / "report.json").read_text()))
            except (OSError, ValueError, TypeError):
                self._report = Report(error=f"the sandbox ended without a report (exit code {self.proc.returncode})")
        return self._report


def start(argv: Sequence[str], folder: Path, *, uid: int | None, limits: Limits, env: dict[str, str],
          inputs: dict[str, Path] | None = None, outputs: dict[str, Path] | None = None,
          pass_fds: Sequence[int] = (), view: Sequence[str] = (), zygote: Zygote | None = None) -> Jail:
    """Run ``argv`` in a sandbox (``uid`` None: no sandbox, see the module docstring).

    ``folder``: an empty folder of the grader's, which the sandbox never sees (its report, the command's
    output ``log.txt``); ``inputs``: name in the scratch folder (or a path under /tmp) -> file to copy
    there first; ``outputs``: name in the scratch folder -> where to copy it afterwards; ``view``: the
    read-only folders besides the system's (see :func:`python_paths`); ``env``: variables to set
    besides those of :func:`environment`; ``pass_fds``: file descriptors the command keeps (pipes);
    ``zygote``: a fork server (:mod:`course_utils.tools.grade.zygote`) that starts init (and the command,
    ``python -m course_utils.tools.grade.sandbox STEP`` only) by forking its warm process, with
    the same namespaces, uid, view and limits, instead of executing ``unshare`` and Python afresh.
    """
    folder.mkdir(parents=True, exist_ok=True)
    isolated = uid is not None
    home = SCRATCH if isolated else str(folder / "scratch")
    spec = {"argv": list(argv), "env": environment(env, home), "uid": uid, "limits": asdict(limits),
            "folder": str(folder),
            "inputs": {k: str(v) for k, v in (inputs or {}).items()},
            "outputs": {k: str(v) for k, v in (outputs or {}).items()}, "pass_fds": list(pass_fds),
            "view": [*SYSTEM, *view], "executable": _resolved(shutil.which(argv[0]) or argv[0])}
    cgroups = _cgroup(uid, limits) if uid is not None else []
    spec["cgroups"] = cgroups
    if zygote is not None:
        proc: subprocess.Popen | Forked = zygote.spawn(folder / "init.txt", pass_fds, isolated)
    else:
        # init is this file run as a script (-I -S: the standard library only, no site-packages: fast)
        init = [_resolved(sys.executable), "-I", "-S", str(Path(__file__).resolve())]
        if isolated:
            init = [shutil.which("unshare") or "unshare", "--pid", "--mount", "--net", "--ipc", "--uts", "--fork",
                    "--kill-child", "--", *init]
        with open(folder / "init.txt", "wb") as errors:
            proc = subprocess.Popen(init, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                                    pass_fds=tuple(pass_fds), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                    start_new_session=True, cwd="/")
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec).encode() + b"\n")
    proc.stdin.flush()
    return Jail(proc, folder, cgroups, isolated)


def _resolved(program: str) -> str:
    """``program`` with the folders above it resolved, as the sandbox sees them (a venv's ``bin/python``
    stays a venv's: it is not resolved itself)."""
    return str(Path(program).absolute().parent.resolve() / Path(program).name)


# ---- init (inside the namespaces, as root) -------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = \
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = \
    0x00020000, 0x04000000, 0x08000000, 0x20000000, 0x40000000
# start()'s `unshare --pid --mount --net --ipc --uts`, for the fork server's unshare(2)
NAMESPACES = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS


def prctl(option: int, value: int) -> None:
    if _libc is None:
        return
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def unshare(flags: int) -> None:
    """``unshare(2)``: this process into new namespaces (its next child is PID 1 of a new PID namespace)."""
    assert _libc is not None
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    assert _libc is not None
    if _libc.mount(source and source.encode(), target.encode(), kind and kind.encode(), ctypes.c_ulong(flags),
                   data and data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _bind(source: str, target: str, root: str, writable: bool = False) -> None:
    """Bind ``source`` at ``root + target`` (read-only unless ``writable``); a link is copied as a link."""
    inside = root + target
    parent = os.path.dirname(inside)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    if os.path.islink(source):
        if not os.path.lexists(inside):
            os.symlink(os.readlink(source), inside)
        return
    if os.path.isdir(source):
        os.makedirs(inside, mode=0o755, exist_ok=True)
    else:
        open(inside, "a").close()
    _mount(source, inside, None, MS_BIND | (MS_REC if source == "/dev/dri" else 0))
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if writable else MS_RDONLY)
    if not source.startswith("/dev"):
        flags |= MS_NODEV
    _mount(None, inside, None, flags)


def _tmpfs(target: str, size: int, mode: int, uid: int = 0, flags: int = MS_NOSUID | MS_NODEV) -> None:
    os.makedirs(target, mode=0o755, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", flags, f"size={max(size, 1 << 20)},mode={mode:o},uid={uid},gid={uid},"
                                            f"nr_inodes={max(1024, size >> 12)}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sh22x", b"lo", 0x1 | 0x8 | 0x40))  # SIOCSIFFLAGS up


def _build_view(spec: dict, root: str) -> None:
    limits, uid = Limits(**spec["limits"]), spec["uid"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _tmpfs(root, 16 << 20, 0o755, flags=MS_NOSUID | MS_NODEV)
    _tmpfs(root + SCRATCH, int(limits.disk_gib * 2**30), 0o700, uid)
    _tmpfs(root + "/tmp", int(limits.tmp_gib * 2**30), 0o1777)
    for path in spec["view"]:  # after /tmp: a course installed under /tmp shows through
        if os.path.lexists(path):
            _bind(path, path, root)
    _tmpfs(root + "/dev", 1 << 20, 0o755, flags=MS_NOSUID | MS_NOEXEC)
    for name in DEVICES:
        _bind(f"/dev/{name}", f"/dev/{name}", root, writable=True)
    for name in sorted(os.listdir("/dev")):  # GPUs
        if name.startswith("nvidia") or name == "dri":
            _bind(f"/dev/{name}", f"/dev/{name}", root, writable=True)
    _tmpfs(root + "/dev/shm", int(limits.tmp_gib * 2**30), 0o1777)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _loopback_up()
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _copy_in(spec: dict, scratch: str, root: str | None, uid: int | None) -> None:
    """The inputs: a name is in the scratch folder, a path under /tmp in the sandbox's /tmp."""
    for name, source in spec["inputs"].items():
        if name.startswith("/tmp/") and root is None:
            continue
        target = root + name if name.startswith("/tmp/") else os.path.join(scratch, name)
        folder = os.path.dirname(target)
        if not os.path.isdir(folder):
            os.makedirs(folder)
            if uid is not None:
                os.chown(folder, uid, uid)
        shutil.copyfile(source, target)
        if uid is not None:
            os.chown(target, uid, uid)


def _copy_out(spec: dict, scratch: str) -> None:
    """The outputs the command left in its folder: regular files only (never through a link), capped."""
    for name, target in spec["outputs"].items():
        try:
            fd = os.open(os.path.join(scratch, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size <= OUTPUT_BYTES:
                with open(target, "wb") as out:
                    shutil.copyfileobj(f, out)


def _limit(limits: Limits, isolated: bool) -> None:
    import resource

    fsize = int(max(limits.disk_gib, limits.tmp_gib) * 2**30)
    values = {resource.RLIMIT_FSIZE: fsize, resource.RLIMIT_NOFILE: limits.open_files,
              resource.RLIMIT_CPU: limits.cpu_seconds, resource.RLIMIT_CORE: 0}
    if isolated:
        values[resource.RLIMIT_NPROC] = limits.processes
    if limits.memory_gib > 0:
        values[resource.RLIMIT_DATA] = int(limits.memory_gib * 2**30)
    for which, value in values.items():
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def _exec_command(spec: dict, root: str | None, cwd: str, log_fd: int,
                  run: Callable[[dict], int] | None = None) -> None:
    """In the forked child: enter the view, become the sandbox's uid, apply the limits, exec (or, from
    the fork server of :mod:`course_utils.tools.grade.zygote`, call ``run(spec)`` in this process)."""
    try:
        uid = spec["uid"]
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        keep = set(spec["pass_fds"]) | {0, 1, 2}
        for fd in range(3, max(keep) + 1 if keep else 3):
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.closerange(max(keep) + 1, 65536)
        if root is not None:
            os.chroot(root)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        os.chdir(cwd)
        os.umask(0o077)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        _limit(Limits(**spec["limits"]), root is not None)
        if run is not None:
            os._exit(_run_here(run, spec))
        os.execve(spec["executable"], [spec["executable"], *spec["argv"][1:]], spec["env"])
    except BaseException as exc:  # noqa: BLE001 - tell the grader, never return into init's code
        os.write(2, f"the sandbox could not start the command: {type(exc).__name__}: {exc}\n".encode())
    os._exit(127)


def _run_here(run: Callable[[dict], int], spec: dict) -> int:
    """``run(spec)``'s exit code, as Python's own for a script: ``sys.exit``'s, or 1 and the traceback."""
    try:
        code = run(spec)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the command's own error: printed to its log, as Python does
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


def _processes(proc: str) -> list[int]:
    return [int(p) for p in os.listdir(proc) if p.isdigit()]


def _count_tasks(proc: str, pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"{proc}/{pid}/stat").read_text().rsplit(")", 1)[1].split()[17])
        except (OSError, ValueError, IndexError):
            pass
    return total


def command_line(proc: str, pid: int) -> str:
    """What process ``pid`` runs ("" for a zombie or one gone), from the /proc folder ``proc``."""
    try:
        raw = Path(f"{proc}/{pid}/cmdline").read_bytes()
        state = Path(f"{proc}/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
    if state in ("Z", "X"):
        return ""
    return (raw.replace(b"\0", b" ").decode(errors="replace").strip() or f"[pid {pid}]")[:200]


def _descendants(pid: int) -> list[int]:
    """Processes under ``pid`` (its children, theirs, ...), from /proc (no sandbox: for the subreaper)."""
    children: dict[int, list[int]] = {}
    for p in _processes("/proc"):
        try:
            ppid = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def main(run: Callable[[dict], int] | None = None) -> int:
    """Init: read the spec on stdin, build the sandbox, run the command (``run``: see
    :func:`_exec_command`), clean up, report."""
    spec = json.loads(sys.stdin.buffer.readline())
    folder, uid = Path(spec["folder"]), spec["uid"]
    isolated = uid is not None and os.getpid() == 1
    report = Report(process_limit=Limits(**spec["limits"]).processes)
    root = str(folder / "root") if isolated else None
    scratch = root + SCRATCH if root else str(folder / "scratch")
    try:
        if uid is not None and not isolated:
            raise RuntimeError("init is not PID 1 of a namespace of its own")
        for group in spec["cgroups"]:  # join the sandbox's cgroups before anything else starts
            Path(group, "cgroup.procs").write_text("0")
        if root:
            os.makedirs(root, exist_ok=True)
            _build_view(spec, root)
        else:
            prctl(PR_SET_CHILD_SUBREAPER, 1)
            os.makedirs(scratch, mode=0o700, exist_ok=True)
        _copy_in(spec, scratch, root, uid)
    except Exception as exc:  # any failure is reported in the row, never a crash
        report.error = f"the sandbox could not be set up: {type(exc).__name__}: {exc}"
        (folder / "report.json").write_text(json.dumps(asdict(report)))
        return 1
    read, write = os.pipe()
    wake_read, wake_write = os.pipe()  # SIGCHLD wakes the loop below at once
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    worker = os.fork()
    if worker == 0:
        os.close(read)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _exec_command(spec, root, SCRATCH if root else scratch, write, run)
    os.close(write)
    for fd in spec["pass_fds"]:
        os.close(fd)
    log, stdin = bytearray(), sys.stdin.buffer.fileno()
    os.set_blocking(read, False)
    proc = root + "/proc" if root else None
    watch = {read, stdin, wake_read}
    full_at = {SCRATCH: (scratch, Limits(**spec["limits"]).disk_gib)}
    if root:
        full_at.update({"/tmp": (root + "/tmp", Limits(**spec["limits"]).tmp_gib),
                        "/dev/shm": (root + "/dev/shm", Limits(**spec["limits"]).tmp_gib)})
    last_sample = 0.0
    while True:
        ready, _, _ = select.select(list(watch), [], [], 0.25)
        if wake_read in ready:
            os.read(wake_read, 4096)
        if read in ready:
            chunk = os.read(read, 1 << 20) if read in watch else b""
            if chunk:
                log += chunk
                del log[:-LOG_BYTES]
            else:
                watch.discard(read)
        if stdin in ready and not os.read(stdin, 4096):  # the grader closed it, or died: stop
            report.stopped = True
            break
        done = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                done = True
                break
            if pid == 0:
                break
            if pid == worker:
                report.exit = os.waitstatus_to_exitcode(status)
                done = True
        if time.monotonic() - last_sample > 0.5 or done:
            last_sample = time.monotonic()
            if proc:
                pids = [p for p in _processes(proc) if p != 1]
                report.peak_processes = max(report.peak_processes, _count_tasks(proc, pids))
            for name, (path, gib) in full_at.items():
                try:
                    fs = os.statvfs(path)
                except OSError:
                    continue
                where = f"{name} ({gib:g} GiB)"
                if fs.f_bavail * fs.f_frsize < max(1 << 20, 0.01 * gib * 2**30) and where not in report.full:
                    report.full.append(where)
        if done:
            break
    # the command has ended (or must stop): whatever is left goes now
    if proc:
        if not report.stopped:
            report.left = [c for c in (command_line(proc, p) for p in _processes(proc) if p != 1) if c]
        try:
            os.kill(-1, signal.SIGKILL)  # every process of this PID namespace but init
        except ProcessLookupError:
            pass
    else:
        for _ in range(20):
            left = _descendants(os.getpid())
            if not left:
                break
            if not report.stopped and not report.left:
                report.left = [c for c in (command_line("/proc", p) for p in left if p != worker) if c]
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
    signal.alarm(30)  # a process stuck in the kernel should not keep init alive for ever
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == worker and report.exit is None:
            report.exit = os.waitstatus_to_exitcode(status)
    signal.alarm(0)
    try:
        while chunk := os.read(read, 1 << 20):
            log += chunk
            del log[:-LOG_BYTES]
    except OSError:
        pass
    _copy_out(spec, scratch)
    (folder / "log.txt").write_bytes(bytes(log))
    (folder / "report.json").write_text(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
