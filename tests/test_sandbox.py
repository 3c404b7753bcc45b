"""The grader's sandbox (`course_utils.tools.grade.isolation`): what a command run in it can see, reach and
leave behind. Plain Python commands (no kernel, no torch: about a second each) probe each property, each
twice: started as ``unshare ... python`` and forked by the grader's fork server
(`course_utils.tools.grade.zygote`, which the grader uses); then hostile notebooks, graded next to an honest
one in one grader run, try what a student could."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from _notebooks import cell_index, exercise_part, insert_after, write

from course_utils.tools.grade import command, isolation, zygote
from course_utils.tools.grade.isolation import SCRATCH, Limits

needs_sandbox = pytest.mark.skipif(not isolation.support().isolated, reason=isolation.support().how)


@pytest.fixture(scope="module", params=["exec", "zygote"])
def launcher(request):
    """How a sandbox's first process starts: ``unshare`` and a new Python (None), or forked by a fork server."""
    if request.param == "exec" or not isolation.support().isolated:
        yield None
        return
    server = zygote.Zygote(isolation.environment({}, os.environ.get("HOME", "/")))
    yield server
    server.close()


def sandboxed(folder: Path, code: str, limits: Limits | None = None, stop_after: float | None = None,
              also: tuple[str, ...] = (), **kwargs) -> tuple[isolation.Report, str]:
    """Run Python ``code`` in a sandbox that also sees ``also``; (init's report, what it printed)."""
    with isolation.uid_slot() as uid:
        jail = isolation.start([sys.executable, "-c", textwrap.dedent(code)], folder / "jail", uid=uid,
                               limits=limits or Limits(), env={},
                               view=[*isolation.python_paths([folder]), *also], **kwargs)
        if stop_after is not None:
            time.sleep(stop_after)
            jail.stop()
        report = jail.wait(60)
    return report, (folder / "jail" / "log.txt").read_text()


def host_processes(marker: str) -> list[str]:
    """Command lines of the processes on this machine that mention ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in line and str(os.getpid()) != pid:
            found.append(line)
    return found


@needs_sandbox
def test_it_sees_the_course_and_its_own_folder_only(tmp_path, launcher):
    secret = tmp_path / "classmate.ipynb"
    secret.write_text("a classmate's solution")
    (tmp_path / "input.txt").write_text("mine")
    import course_utils

    package = Path(course_utils.__file__).resolve().parent
    with socket.socket() as server:  # a port on this machine's loopback: outside the sandbox
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        report, out = sandboxed(tmp_path, zygote=launcher, code=f"""
            import os, socket, json
            import course_utils.grading  # the course is there, read-only
            def attempt(fn):
                try:
                    return fn()
                except Exception as exc:
                    return type(exc).__name__
            print(json.dumps({{
                "uid": os.getuid(), "cwd": os.getcwd(), "files": sorted(os.listdir(".")),
                "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                "secret": attempt(lambda: open({str(secret)!r}).read()),
                "tmp": sorted(os.listdir("/tmp")),
                "write_course": attempt(lambda: open({str(package / 'pwned.py')!r}, "w")),
                "write_root": attempt(lambda: open("/pwned", "w")),
                "write_own": attempt(lambda: open("mine.txt", "w").write("ok")),
                "write_tmp": attempt(lambda: open("/tmp/mine.txt", "w").write("ok")),
                "environ_of_init": attempt(lambda: open("/proc/1/environ").read()),
                "connect": attempt(lambda: socket.create_connection(("127.0.0.1", {port}), timeout=5)),
            }}))""", inputs={"input.txt": tmp_path / "input.txt"})
    seen = json.loads(out.strip().splitlines()[-1])
    assert report.exit == 0 and not report.error
    assert seen["uid"] >= isolation.UID_BASE and seen["cwd"] == SCRATCH and seen["files"] == ["input.txt"]
    assert seen["processes"] == [1, 2]  # init and itself: not the grader, nor any other sandbox
    # /tmp is private and empty, but for the folder that holds the course when it is checked out or installed
    # under /tmp (a fresh clone made with mktemp): the read-only view must show it at its own path
    view = [Path(p) for p in isolation.python_paths([tmp_path])]
    course_dirs = {p.relative_to("/tmp").parts[0] for p in view if p.is_relative_to("/tmp") and p != Path("/tmp")}
    assert seen["secret"] == "FileNotFoundError" and set(seen["tmp"]) <= course_dirs, (seen["tmp"], course_dirs)
    assert seen["write_course"] == seen["write_root"] == "OSError"  # read-only file system
    assert seen["write_own"] == 2 and seen["write_tmp"] == 2
    assert seen["environ_of_init"] == "PermissionError"
    assert seen["connect"] == "ConnectionRefusedError"
    assert not (package / "pwned.py").exists()


@needs_sandbox
def test_a_course_installed_under_tmp_shows_through_read_only(tmp_path, launcher):
    site = tmp_path / "site"  # as `pip install --target /tmp/...` would put it
    site.mkdir()
    (site / "lesson.py").write_text("X = 1")
    (site / "lesson.py").chmod(0o666)  # writable by anyone: only the read-only view protects it
    report, out = sandboxed(tmp_path, zygote=launcher, code=f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import lesson
        print("imported", lesson.X)
        open({str(site / 'lesson.py')!r}, "a")
        """, also=(str(site),))
    assert "imported 1" in out and "Read-only file system" in out and report.exit == 1


@needs_sandbox
def test_no_process_outlives_its_sandbox(tmp_path, launcher):
    marker = f"survivor-{os.getpid()}-{time.monotonic_ns()}"
    report, _ = sandboxed(tmp_path, zygote=launcher, code=f"""
        import os, subprocess, sys, time
        # a detached process, and a double-forked daemon in a session of its own
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {marker}"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)  # {marker}"])
            os._exit(0)
        time.sleep(1)
        """)
    assert report.exit == 0 and len(report.left) == 2 and all(marker in c for c in report.left)
    assert host_processes(marker) == []


@needs_sandbox
def test_stopping_a_sandbox_ends_everything_in_it_and_keeps_its_outputs(tmp_path, launcher):
    marker = f"stopped-{os.getpid()}-{time.monotonic_ns()}"
    report, _ = sandboxed(tmp_path, zygote=launcher, code=f"""
        import subprocess, sys, time
        open("out.txt", "w").write("written before the stop")
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {marker}"], start_new_session=True)
        time.sleep(60)
        """, stop_after=3, outputs={"out.txt": tmp_path / "out.txt"})
    assert report.stopped and report.exit == -9 and host_processes(marker) == []  # killed with the rest
    assert (tmp_path / "out.txt").read_text() == "written before the stop"


@needs_sandbox
def test_a_link_left_as_an_output_is_not_followed(tmp_path, launcher):
    (tmp_path / "gradebook.csv").write_text("the grader's file")
    report, _ = sandboxed(tmp_path, zygote=launcher, code="""
        import os
        os.symlink("/etc/hostname", "out.txt")
        """, outputs={"out.txt": tmp_path / "out.txt"})
    assert report.exit == 0 and not (tmp_path / "out.txt").exists()


@needs_sandbox
def test_a_fork_bomb_and_a_huge_file_stop_at_the_limits(tmp_path, launcher):
    report, out = sandboxed(tmp_path, zygote=launcher, code="""
        import os, time
        made = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                made += 1
        except OSError as err:
            print("fork:", type(err).__name__, made)
        try:
            with open("huge.bin", "wb") as f:
                for _ in range(10 * 1024):  # 10 GB
                    f.write(b"0" * (1 << 20))
        except OSError as err:
            print("write:", err.strerror, os.path.getsize("huge.bin") >> 20)
        """, limits=Limits(processes=40, disk_gib=0.05))
    forked = next(line for line in out.splitlines() if line.startswith("fork:")).split()
    written = next(line for line in out.splitlines() if line.startswith("write:"))
    assert forked[1] == "BlockingIOError" and int(forked[2]) < 40
    assert written.startswith(("write: File too large", "write: No space left")) and int(written.split()[-1]) <= 52
    assert report.peak_processes >= 36 and report.full and report.full[0].startswith(SCRATCH)
    assert len(report.left) >= 30  # the sleeping children, killed at the end


def test_without_isolation_grade_refuses_unless_told(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(isolation, "support", lambda: isolation.Support(False, "not root: run it with sudo"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "erin.ipynb").write_text("")
    assert command.main([str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot sandbox the notebooks: not root: run it with sudo" in err and "--no-sandbox" in err
    assert not (tmp_path / "out").exists()
    assert command.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-sandbox"]) == 0
    captured = capsys.readouterr()
    assert "warning: --no-sandbox" in captured.err and "WITHOUT a sandbox" in captured.out
    grades = json.loads((tmp_path / "out" / "grades.json").read_text())
    assert grades["sandbox"].startswith("none (--no-sandbox") and not grades["submissions"][0]["sandbox"]


def test_the_sandbox_never_shows_the_submissions_or_gradebook(tmp_path):
    import course_utils

    view = isolation.python_paths([tmp_path])
    assert str(Path(course_utils.__file__).resolve().parent) in view
    assert not any(tmp_path.is_relative_to(p) for p in view)
    inside = Path(course_utils.__file__).resolve().parent / "submissions"
    with pytest.raises(ValueError, match="every sandbox must see"):
        isolation.python_paths([inside])


def test_doctor_says_which_isolation_the_machine_has():
    from course_utils.tools.doctor import diagnose

    report, _ = diagnose(None)
    line = next(r for r in report if r.startswith("grading sandbox"))
    assert isolation.support().how in line


# ---- hostile submissions, graded next to an honest classmate ------------------------------------------
SEED = 918273645
SECRET = "alice-secret-5521"  # in the honest notebook: no other row may show it

SURVIVOR = '''import os, subprocess, sys
script = "# {marker}\\nimport time; time.sleep(8); open({grades!r}, 'a').write('mallory,,01,999,7\\\\n')"
subprocess.Popen([sys.executable, "-c", script], start_new_session=True)  # outlives the kernel
if os.fork() == 0:  # a double-forked daemon in a session of its own
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", script])
    os._exit(0)
'''

SNOOP = [  # one cell each: the grader's command line, a classmate's notebook, writing outside, the network
    'print(open("/proc/{grader}/cmdline").read())',
    'print(open({classmate!r}).read())',
    'open({grades!r}, "a").write("mallory,,01,999,7\\n")',
    'open({course!r}, "w").write("import os")',
    'import socket\nsocket.create_connection(("127.0.0.1", {port}), timeout=5)',
]

FORK_BOMB = """import os, time
end = time.time() + 30
while time.time() < end:
    try:
        os.fork()
    except OSError:
        pass
"""

BOMB = [
    '''with open("huge.bin", "wb") as f:  # 10 GB
    for _ in range(10 * 1024):
        f.write(b"0" * (1 << 20))''',
    '''import os, subprocess, sys, time
bomb = {bomb!r}
subprocess.Popen([sys.executable, "-S", "-c", bomb])  # a fork bomb: every process forks for 30 s
end = time.time() + 25
while time.time() < end:
    child = os.fork()  # BlockingIOError once the bomb has filled the process table
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
raise RuntimeError("the fork bomb did not fill the process table")'''.replace("{bomb!r}", repr(FORK_BOMB)),
]

SEED_HUNT = '''def assign(x, centres):
    """Hunts for the hidden seed, forges another exercise's outcomes, then fails."""
    import glob, os
    import torch
    key = chr(34) + "se" + "ed" + chr(34) + ":"  # a JSON key, as in the old grader's spec file
    import course_utils  # its own code is readable by design (and may sit under /tmp): not where a seed hides
    course = os.path.dirname(os.path.dirname(os.path.abspath(course_utils.__file__)))
    found = [p for p in glob.glob("**", recursive=True) + glob.glob("/tmp/**", recursive=True)
             if os.path.isfile(p) and not os.path.abspath(p).startswith(course + os.sep)
             and key in open(p, errors="replace").read()]
    found += [k for k in os.environ if "GRADE_SEED" in k]
    os.makedirs("results", exist_ok=True)  # where the old grader read each exercise's outcomes
    torch.save({{"name": "update_centres", "cases": 6, "outcomes": []}}, "results/01.update.pt")
    if found:
        raise RuntimeError(f"found the seed in {{found}}")
    open("/proc/1/environ").read()  # the grader's init: its environment is not readable
'''


def hostile(*sources: str, assign_first: bool = False) -> nbformat.NotebookNode:
    """A short lab 01 notebook (cheap to grade): imports, ``sources``, then the solution's `assign` (the
    grader runs a notebook up to the last cell that defines an exercise's function or calls a check: a
    hostile cell after it would not run); ``assign_first``: `assign`, ``sources``, then a check."""
    solution = exercise_part()
    imports, assign = (solution.cells[cell_index(solution, start)].source for start in ("import", "def assign"))
    cells = [imports, assign, *sources, 'check("01.assign", assign)'] if assign_first else \
        [imports, *sources, assign]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                    metadata={"course": {"lab": "01"}})


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """One grader run (two jobs): alice's honest notebook and four short hostile ones."""
    folder = tmp_path_factory.mktemp("sandbox")
    grades, marker = folder / "out" / "grades.csv", f"survivor-{os.getpid()}-{time.monotonic_ns()}"
    import course_utils

    course = Path(course_utils.__file__).resolve().parent / "pwned_by_mallory.py"
    honest = exercise_part()
    insert_after(honest, "def assign", f"# {SECRET}")
    alice = write(honest, folder / "in" / "alice.ipynb")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        values = {"grades": str(grades), "marker": marker, "grader": os.getpid(), "classmate": str(alice),
                  "course": str(course), "port": server.getsockname()[1], "seed": SEED}
        write(hostile(SURVIVOR.format(**values)), folder / "in" / "daemon.ipynb")
        write(hostile(*(source.format(**values) for source in SNOOP)), folder / "in" / "snoop.ipynb")
        write(hostile(*BOMB, assign_first=True), folder / "in" / "bomb.ipynb")  # assign saved before the disk fills
        nb = hostile("def update_centres(x, labels, centres):\n    return centres.clone()\n")
        nb.cells[-1].source = SEED_HUNT.format(**values)
        write(nb, folder / "in" / "seed.ipynb")
        code = command.main([str(folder / "in"), "--out", str(folder / "out"), "--jobs", "2", "--seed", str(SEED),
                             "--cell-timeout", "60", "--timeout", "300", "--disk", "1", "--processes", "128"])
        try:
            connected = server.accept()
        except BlockingIOError:
            connected = None
    entries = {e["student"]: e for e in json.loads((folder / "out" / "grades.json").read_text())["submissions"]}
    return {"code": code, "grades": entries, "csv": grades.read_text(), "marker": marker, "course": course,
            "survivors": host_processes(marker), "connected": connected, "folder": folder}


def notes_of(run: dict, student: str) -> str:
    return "\n".join(run["grades"][student]["notes"])


@needs_sandbox
@pytest.mark.slow
def test_the_honest_classmate_keeps_full_marks(hostile_run):
    assert hostile_run["code"] == 0 and len(hostile_run["grades"]) == 5
    alice = hostile_run["grades"]["alice"]
    failed = {k: r["message"] for k, r in alice["exercises"].items() if not r["passed"]}
    assert alice["total"] == alice["out_of"] == 7 and alice["status"] == "graded" and alice["notes"] == [], failed
    for student, entry in hostile_run["grades"].items():  # what students read: nothing of alice's, no seed
        text = json.dumps([entry["reason"], entry["notes"], [r["message"] for r in entry["exercises"].values()]])
        assert (student == "alice" or SECRET not in text) and str(SEED) not in text


@needs_sandbox
@pytest.mark.slow
def test_a_detached_survivor_is_killed_and_never_writes_the_gradebook(hostile_run):
    assert hostile_run["survivors"] == []
    time.sleep(1)
    assert "mallory" not in hostile_run["csv"] and "999" not in hostile_run["csv"]
    notes = notes_of(hostile_run, "daemon")
    assert "sandbox: the notebook left 2 process(es) running" in notes and hostile_run["marker"] in notes
    assert hostile_run["grades"]["daemon"]["exercises"]["01.assign"]["passed"]


@needs_sandbox
@pytest.mark.slow
def test_the_grader_the_classmates_and_the_network_are_out_of_reach(hostile_run):
    notes = notes_of(hostile_run, "snoop")
    assert f"tried to reach `/proc/{os.getpid()}/cmdline`, which is not visible" in notes
    assert f"tried to reach `{hostile_run['folder'] / 'in' / 'alice.ipynb'}`, which is not visible" in notes
    assert "tried to reach `" + str(hostile_run["folder"] / "out" / "grades.csv") in notes
    assert f"tried to write or open `{hostile_run['course']}`" in notes and not hostile_run["course"].exists()
    assert "tried to use the network" in notes and hostile_run["connected"] is None
    assert notes.count("sandbox: ") == 5 and hostile_run["grades"]["snoop"]["exercises"]["01.assign"]["passed"]


@needs_sandbox
@pytest.mark.slow
def test_a_fork_bomb_and_a_huge_file_fail_alone(hostile_run):
    notes = notes_of(hostile_run, "bomb")
    assert "tried to write more than the disk limit" in notes and "filled /home/student (1 GiB)" in notes
    assert "tried to start more processes or threads than allowed" in notes
    assert "reached the limit of 128 processes" in notes
    assert hostile_run["grades"]["bomb"]["exercises"]["01.assign"]["passed"]  # defined before


@needs_sandbox
@pytest.mark.slow
def test_the_hidden_seed_is_nowhere_and_outcomes_cannot_be_forged(hostile_run):
    entry = hostile_run["grades"]["seed"]
    assign, update = entry["exercises"]["01.assign"], entry["exercises"]["01.update"]
    assert assign["status"] == "error" and "PermissionError" in assign["message"]  # found nothing: read environ
    assert "sandbox: `assign` (01.assign) tried to write or open `/proc/1/environ`" in notes_of(hostile_run, "seed")
    assert update["status"] == "failed"  # its forged outcome file was never read


def test_the_execute_step_imports_no_torch():
    """Started as a new Python (no fork server), it runs the notebook's kernel, which imports what the
    notebook imports; its own Python needs no torch (importing it cost the execute step seconds per notebook)."""
    import subprocess

    code = ("import sys, course_utils.tools.grade.sandbox as s, course_utils.tools.kernel, nbformat, nbclient; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_the_fork_server_ends_with_its_grader(tmp_path):
    """A grader killed outright (no clean-up) leaves no fork server behind: it ends when its socket closes."""
    import signal
    import subprocess

    code = ("import os, time; from course_utils.tools.grade import isolation, zygote; "
            "z = zygote.Zygote(isolation.environment({}, '/')); print(z._proc.pid, flush=True); time.sleep(120)")
    grader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert grader.stdout is not None
    server = int(grader.stdout.readline())
    assert "zygote" in isolation.command_line("/proc", server)  # "": gone, or a zombie
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and isolation.command_line("/proc", server):
        time.sleep(0.2)
    assert not isolation.command_line("/proc", server)


FORKED_KERNEL = """
import json, os
from pathlib import Path
from course_utils.tools.grade.forked_kernel import fork_kernel
from course_utils.tools.grade.isolation import PR_SET_DUMPABLE, prctl
read, write = os.pipe()  # the step's pipe to the grader: the kernel must not hold it
os.set_inheritable(write, True)
prctl(PR_SET_DUMPABLE, 0)  # as the step is
km = fork_kernel(Path.cwd(), dict(os.environ), "python3")
kc = km.blocking_client()
kc.start_channels()
kc.wait_for_ready(timeout=60)
probe = ("import ctypes, json, os; fds = os.listdir('/proc/self/fd'); "
         "print(json.dumps({'pid': os.getpid(), 'cwd': os.getcwd(), "
         "'fds': [os.readlink('/proc/self/fd/' + f) for f in fds if os.path.lexists('/proc/self/fd/' + f)], "
         "'dumpable': ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)}))")
out = []
kc.execute_interactive(probe, output_hook=lambda m: out.append(m["content"].get("text", "")), timeout=60)
print("PIPE", os.readlink(f"/proc/self/fd/{write}"))
print("RESULT", os.getpid(), "".join(out).strip())
km.provisioner.process.kill()
"""


def test_a_forked_kernel_holds_none_of_the_steps_pipes(tmp_path):
    """The execute step forks its kernel (under the fork server): the kernel runs the notebook in the
    scratch folder, in a process of its own, dumpable again (it can read its own /proc/self), holding none of
    the step's file descriptors (its pipe to the grader: a kernel holding it could forge the step's log)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", FORKED_KERNEL], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert out.returncode == 0, out.stderr[-3000:]
    pipe = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("PIPE"))
    _, step, result = next(line for line in out.stdout.splitlines() if line.startswith("RESULT")).split(" ", 2)
    seen = json.loads(result)
    assert pipe.startswith("pipe:") and pipe not in seen["fds"]
    assert seen["pid"] != int(step) and seen["dumpable"] == 1 and seen["cwd"] == str(tmp_path)
