"""Grading a class on a real SLURM cluster, not a mock: a one-node cluster on localhost (munged, slurmctld and
slurmd from Debian's packages: `make slurm-deps`) runs the README's job-array script unchanged
(examples/grade_on_slurm.sh: two shards, then the dependent merge job), and the merged gradebook must equal
one unsharded run of the same submissions, byte for byte but for the timings. Every daemon the test starts,
and every process they start, is stopped when it ends. The submissions are tiny (two functions each)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from _notebooks import write
from test_gradebook import run_grade

from course_utils.tools.grade import isolation
from course_utils.tools.grade.shards import shard_of

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "grade_on_slurm.sh"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo", "scancel")
MISSING = [p for p in PROGRAMS if not shutil.which(p)]
SEED = "4242"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"SLURM is not installed (missing {', '.join(MISSING)}): `make "
                       "slurm-deps` installs Debian's slurmctld, slurmd, slurm-client and munge"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a SLURM cluster on localhost needs root (the daemons, and the "
                       "grader's sandbox inside the jobs)"),
    pytest.mark.skipif(not isolation.support().isolated, reason=isolation.support().how),
]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _config(folder: Path, host: str) -> str:
    ctld, slurmd = _free_ports(2)
    cpus = max(2, os.cpu_count() or 1)  # the script asks 2 CPUs and 10 GB a task: config_overrides lets a
    return "\n".join([                   # smaller machine take them (the tasks then run one after the other)
        "ClusterName=coursetest", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={ctld}", f"SlurmdPort={slurmd}", "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={folder}/munge/socket", f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool", f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd.pid", f"SlurmctldLogFile={folder}/slurmctld.log",
        f"SlurmdLogFile={folder}/slurmd.log", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "SlurmdParameters=config_overrides", "ReturnToService=2", "MpiDefault=none",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=16384 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _started_by(conf: Path) -> list[int]:
    """Processes whose environment names our slurm.conf: the daemons, slurmstepd, the jobs."""
    found = []
    marker = f"SLURM_CONF={conf}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") and int(pid) != os.getpid():
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(mode=0o700)
    key = folder / "munge" / "key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder, host))
    env = dict(os.environ, SLURM_CONF=str(conf), PYTHONPATH=str(ROOT),
               PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.pop("COURSE_GRADE_SEED", None)
    daemons: list[subprocess.Popen] = []

    def start(*argv: str) -> None:
        log = open(folder / f"{Path(argv[0]).name}.out", "wb")  # noqa: SIM115 - closed with the process
        daemons.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder))
        log.close()

    try:
        m = folder / "munge"
        start("munged", "--foreground", "--force", f"--socket={m}/socket", f"--key-file={key}",
              f"--pid-file={m}/pid", f"--log-file={m}/log", f"--seed-file={m}/seed")
        _wait(lambda: (m / "socket").exists(), 30, "munged did not start", folder)
        start("slurmctld", "-D", "-f", str(conf))
        start("slurmd", "-D", "-f", str(conf))
        _wait(lambda: _sinfo(env) == "idle", 60, "the node did not come up", folder)
        yield {"env": env, "folder": folder, "conf": conf}
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, capture_output=True, timeout=30, check=False)
        for proc in reversed(daemons):
            proc.send_signal(signal.SIGTERM)
        for proc in daemons:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for pid in _started_by(conf):  # slurmstepd and a job's processes, if any outlived their daemon
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _sinfo(env: dict) -> str:
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.strip()


def _wait(ready, seconds: float, what: str, folder: Path) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- "
                             f"{p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(folder.glob("*.log"))
                             + sorted(folder.glob("*.out")))
            pytest.fail(f"{what} within {seconds} s\n{logs}")
        time.sleep(1)


def _state(job: str, env: dict) -> str:
    out = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True, timeout=30,
                         check=False).stdout
    found = re.search(r"JobState=(\S+)", out)
    return found.group(1) if found else "UNKNOWN"


def tiny(folder: Path, student: str, assign: str, update: str) -> Path:
    """A lab 01 submission with two functions (the rest missing): graded in seconds."""
    cells = ["import torch", f"def assign(x, centres):\n    return {assign}",
             f"def update_centres(x, labels, centres):\n    return {update}"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                  metadata={"course": {"lab": "01"}})
    return write(nb, folder / f"{student}.ipynb")


def test_the_readme_job_array_grades_a_class_like_one_run(cluster, tmp_path):
    subs = tmp_path / "subs"
    right = "((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)"
    tiny(subs, "alice", right, "centres.clone()")
    tiny(subs, "bob", "torch.zeros(len(x), dtype=torch.long)", "centres.clone()")
    (subs / "carol.ipynb").write_text("")
    assert {shard_of(s, 2) for s in ("alice", "bob", "carol")} == {0, 1}  # both tasks grade something
    env = dict(cluster["env"], SUBMISSIONS=str(subs), GRADEBOOK=str(tmp_path / "gradebook"), SHARDS="2",
               COURSE_GRADE_SEED=SEED)
    submitted = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert submitted.returncode == 0, submitted.stderr
    merge_job = submitted.stdout.strip().split(";")[0]
    assert merge_job.isdigit(), submitted.stdout
    _wait(lambda: _state(merge_job, env) not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"), 900,
          f"merge job {merge_job} did not end", tmp_path / "gradebook")
    logs = "\n".join(f"--- "
                     f"{p.name}\n{p.read_text()[-3000:]}" for p in sorted((tmp_path / "gradebook").glob("slurm-*.out")))
    assert _state(merge_job, env) == "COMPLETED", logs
    assert sorted(p.name for p in (tmp_path / "gradebook").glob("shard-*")) == ["shard-0-of-2", "shard-1-of-2"]

    assert run_grade(subs, "--out", tmp_path / "single", "--seed", SEED) == 0  # the same class in one run
    merged, single = tmp_path / "gradebook", tmp_path / "single"
    for name in ("grades.csv", "grades_moodle.csv", "feedback/alice.md", "feedback/bob.md", "feedback/carol.md"):
        assert (merged / name).read_bytes() == (single / name).read_bytes(), name

    def untimed(folder: Path) -> dict:
        data = json.loads((folder / "grades.json").read_text())
        for e in data["submissions"]:
            e.pop("seconds", None), e.pop("timing", None)
        return data

    assert untimed(merged) == untimed(single)
    rows = {e["student"]: e for e in untimed(merged)["submissions"]}
    assert rows["alice"]["exercises"]["01.assign"]["passed"] and not rows["alice"]["exercises"]["01.update"]["passed"]
    assert not rows["bob"]["exercises"]["01.assign"]["passed"] and rows["carol"]["status"] == "unreadable"
    assert rows["alice"]["exercises"]["01.init"]["status"] == "missing"
