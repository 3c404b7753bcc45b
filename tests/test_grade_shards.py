"""`course grade --shard K/N` and `course grade merge`: which shard grades whom, and a merged gradebook equal to
one run's. Quick: the submissions are files no kernel runs (empty, not JSON, a notebook of no lab), so
every row is decided without a sandbox; grading real notebooks across shards is tests/test_slurm.py's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from _notebooks import write
from test_gradebook import run_grade

from course_utils.tools.grade import command
from course_utils.tools.grade.shards import Shard, shard_of

STUDENTS = ["alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan"]
FILES = ("grades.csv", "grades.json", "grades_moodle.csv")


def test_a_student_is_in_exactly_one_shard_and_stays_there():
    assert [shard_of(s, 3) for s in ("alice", "dan", "erin")] == [2, 1, 0]  # the documented hash, pinned
    for count in (1, 2, 3, 7):
        shards = [Shard(k, count) for k in range(count)]
        assert all(sum(s.holds(name) for s in shards) == 1 for name in STUDENTS)
    many = [f"student{i:03d}" for i in range(300)]
    before = {name: shard_of(name, 4) for name in many}
    after = {name: shard_of(name, 4) for name in many[::2] + ["late", "later"]}  # half leave, two join
    assert all(after[name] == before[name] for name in many[::2])
    sizes = [list(before.values()).count(k) for k in range(4)]
    assert min(sizes) > 50, sizes  # roughly even


@pytest.mark.parametrize("text, message", [("3", "expects K/N"), ("1/0", "between 0 and N-1"),
                                           ("3/3", "between 0 and "
                                                   "N-1"), ("-1/3", "expects K/N"), ("a/b", "expects K/N")])
def test_bad_shard_option_says_what_is_expected(text, message):
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)
    assert Shard.parse(" 2 / 5 ") == Shard(2, 5) and Shard(2, 5).folder == "shard-2-of-5"


def submissions(folder: Path, students=STUDENTS) -> Path:
    """Files graded without a kernel: one row each (unreadable, or a notebook of no lab)."""
    for i, name in enumerate(students):
        if i % 3 == 0:
            write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), folder / name / "lab.ipynb")
        else:
            (folder / f"{name}.ipynb").parent.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.ipynb").write_text("" if i % 3 == 1 else "[1, 2]")
    return folder


def shard_runs(subs: Path, out: Path, count: int, *extra: str) -> None:
    for k in range(count):
        assert run_grade(subs, "--out", out, "--shard", f"{k}/{count}", "--seed", "7", *extra) == 0


def merge(*args: str | Path) -> int:
    return command.main(["merge", *map(str, args)])


def gradebook_files(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in FILES}
    files.update({f"feedback/{p.name}": p.read_bytes() for p in (out / "feedback").iterdir()})
    return files


def test_merged_shards_equal_one_run_byte_for_byte(tmp_path, capsys):
    subs = submissions(tmp_path / "subs")
    assert run_grade(subs, "--out", tmp_path / "single", "--seed", "7") == 0
    shard_runs(subs, tmp_path / "sharded", 3)
    shards = sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert shards == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    for k in range(3):
        rows = json.loads((tmp_path / "sharded" / f"shard-{k}-of-3" / "grades.json").read_text())["submissions"]
        assert {r["student"] for r in rows} == {s for s in STUDENTS if shard_of(s, 3) == k}
    capsys.readouterr()
    assert merge(tmp_path / "sharded") == 0  # into the folder holding the shards
    assert "Merged 3 shard(s), 9 notebook(s)" in capsys.readouterr().out
    assert gradebook_files(tmp_path / "sharded") == gradebook_files(tmp_path / "single")
    assert merge(*(tmp_path / "sharded").glob("shard-*"), "--out", tmp_path / "elsewhere") == 0
    assert gradebook_files(tmp_path / "elsewhere") == gradebook_files(tmp_path / "single")
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert sorted(p.name for p in subs.rglob("*")) == sorted(["lab.ipynb"] * 3 + ["alice", "dan", "grace"] +
                                                              [f"{s}.ipynb" for i, s in enumerate(STUDENTS) if i % 3])


def test_an_empty_shard_is_still_a_shard(tmp_path):
    subs = submissions(tmp_path / "subs", ["alice"])
    shard_runs(subs, tmp_path / "out", 3)
    assert merge(tmp_path / "out") == 0
    book = json.loads((tmp_path / "out" / "grades.json").read_text())
    assert [r["student"] for r in book["submissions"]] == ["alice"]


@pytest.fixture
def sharded(tmp_path):
    subs = submissions(tmp_path / "subs")
    shard_runs(subs, tmp_path / "out", 3)
    return tmp_path


def refused(capsys, *args) -> str:
    capsys.readouterr()
    assert merge(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("course grade merge: ") and "\n" not in err
    return err


def test_merge_refuses_a_missing_shard(sharded, capsys):
    out = sharded / "out"
    assert "missing shard(s) 1/3 (have 0, 2)" in refused(capsys, out / "shard-0-of-3", out / "shard-2-of-3",
                                                         "--out", sharded / "m")
    assert not (sharded / "m").exists()
    shutil.rmtree(out / "shard-2-of-3")
    assert "missing shard(s) 2/3" in refused(capsys, out)
    assert not (out / "grades.csv").exists()


def test_merge_refuses_a_duplicated_shard_or_student(sharded, capsys):
    out = sharded / "out"
    shutil.copytree(out / "shard-1-of-3", sharded / "copy" / "shard-1-of-3")
    err = refused(capsys, out, sharded / "copy", "--out", sharded / "m")
    assert "shard 1/3 given twice" in err
    # a student graded in two shards (hand-edited, or shards of different submission folders)
    path = out / "shard-0-of-3" / "grades.json"
    data = json.loads(path.read_text())
    alice = next(r for r in json.loads((out / "shard-2-of-3" / "grades.json").read_text())["submissions"]
                 if r["student"] == "alice")
    path.write_text(json.dumps(dict(data, submissions=data["submissions"] + [alice])))
    assert "duplicated submission" in refused(capsys, out) and "alice" in refused(capsys, out)
    data["submissions"].append(dict(alice, file="/elsewhere/alice.ipynb"))
    path.write_text(json.dumps(data))
    assert "student alice is in shard 0 but belongs in shard 2 of 3" in refused(capsys, out)


def test_merge_refuses_shards_of_another_seed_lab_split_or_unfinished(sharded, capsys):
    out = sharded / "out"
    assert run_grade(sharded / "subs", "--out", sharded / "other", "--shard", "1/3", "--seed", "8") == 0
    err = refused(capsys, out / "shard-0-of-3", out / "shard-2-of-3", sharded / "other", "--out", sharded / "m")
    assert "different seed: shard 0 has 7, shard 1 has 8" in err
    assert run_grade(sharded / "subs", "--out", sharded / "lab", "--shard", "1/3", "--seed", "7", "--lab", "01") == 0
    err = refused(capsys, out / "shard-0-of-3", out / "shard-2-of-3", sharded / "lab", "--out", sharded / "m")
    assert "different settings" in err and '"lab": "01"' in err
    assert run_grade(sharded / "subs", "--out", sharded / "two", "--shard", "1/2", "--seed", "7") == 0
    assert "shards of different splits" in refused(capsys, out / "shard-0-of-3", sharded / "two", "--out",
                                                   sharded / "m")
    path = out / "shard-1-of-3" / "grades.json"
    path.write_text(path.read_text().replace('"finished": true', '"finished": false'))
    assert "shard 1/3" in refused(capsys, out) and "did not finish" in refused(capsys, out)
    assert not (sharded / "m").exists() and not (out / "grades.json").exists()


def test_merge_refuses_unsharded_gradebooks_and_out_inside_a_shard(sharded, capsys):
    assert run_grade(sharded / "subs", "--out", sharded / "single", "--seed", "7") == 0
    assert "graded without --shard" in refused(capsys, sharded / "single", "--out", sharded / "m")
    shard = sharded / "out" / "shard-0-of-3"
    assert "is inside shard folder" in refused(capsys, sharded / "out", "--out", shard / "merged")
    assert "holds no shard gradebook" in refused(capsys, sharded / "subs", "--out", sharded / "m")
    assert "no such folder" in refused(capsys, sharded / "nope", "--out", sharded / "m")


def test_the_course_code_digest_changes_with_the_code(monkeypatch, tmp_path):
    import course_utils

    first = command.course_code()
    assert first["version"] == course_utils.__version__ and len(first["code"]) == 16
    package = tmp_path / "course_utils"
    shutil.copytree(Path(course_utils.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(course_utils, "__file__", str(package / "__init__.py"))
    assert command.course_code() == first
    (package / "grading" / "check.py").write_text((package / "grading" / "check.py").read_text() + "\n# edited\n")
    assert command.course_code()["code"] != first["code"]


def test_the_clock_splits_the_execute_step_by_when_its_messages_arrived():
    from course_utils.tools.grade.supervisor import Clock, timing_line

    clock = Clock()
    log = {"kernel": "finished", "cells": [{"index": 1, "status": "ok", "seconds": 2.0},
                                           {"index": 3, "status": "ok",
                                            "seconds": 0.5}, {"index": 4, "status": "running"}]}
    states = ["starting", "running", "running", "running", "finished"]
    messages = [({"event": "log"}, json.dumps({"kernel": k}).encode()) for k in states]
    clock.execute(10.0, 20.0, messages, [11.0, 14.0, 14.5, 16.6, 17.0], log)
    clock.exercise("01.assign", 1.5)
    clock.add("judge", 0.25)
    timing = clock.as_json(11.75)
    assert timing == {"total": 11.75, "execute_start": 1.0, "kernel_start": 3.0, "hook": 0.5, "cells": 2.5,
                      "execute_end": 3.0, "exercises": 1.5, "judge": 0.25, "per_exercise": {"01.assign": 1.5},
                      "slowest_cells": [[2, 2.0], [4, 0.5]]}
    assert timing_line(timing).startswith("total 11.8 s: execute_start 1.0, kernel_start 3.0, hook 0.5, cells 2.5")
    assert timing_line(timing).endswith("slowest cells: 2 (2.0 s), 4 (0.5 s)")
    clock = Clock()  # a kernel that never started: everything after the sandbox's start is "kernel_start"
    clock.execute(0.0, 5.0, messages[:1], [1.0], {"cells": []})
    assert clock.as_json(5.0)["kernel_start"] == 4.0 and clock.as_json(5.0)["cells"] == 0.0


def test_the_readme_shows_the_cluster_examples_as_they_are():
    """tests/test_slurm.py submits examples/grade_on_slurm.sh: the README must show that very script."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    script = (root / "examples" / "grade_on_slurm.sh").read_text()
    manifest = (root / "examples" / "grade_on_kubernetes.yaml").read_text()
    assert f"```bash\n{script.rstrip()}\n```" in readme and f"```yaml\n{manifest.rstrip()}\n```" in readme
    assert "--array=\"0-$((SHARDS - 1))\"" in script and "--shard \\$SLURM_ARRAY_TASK_ID/$SHARDS" in script
    assert "--dependency=\"afterok:" in script and "course grade merge '$GRADEBOOK'" in script
    grade, merge_job = yaml.safe_load_all(manifest)
    spec = grade["spec"]
    command_line = spec["template"]["spec"]["containers"][0]["command"][-1]
    assert spec["completionMode"] == "Indexed"
    assert f"--shard $JOB_COMPLETION_INDEX/{spec['completions']}" in command_line
    assert merge_job["spec"]["suspend"] is True
    container = merge_job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["course", "grade", "merge", "/class/gradebook"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity (Linux)")
def test_threads_per_notebook_share_the_cores_the_grader_may_use():
    """A SLURM task (or taskset) gets a share of the node: its sandboxes' threads come from that share."""
    from course_utils.tools.grade.gradebook import Settings
    from course_utils.tools.grade.supervisor import limits, threads_per_notebook

    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert threads_per_notebook(Settings(jobs=1)) == 1 and limits(Settings(jobs=1)).cpus == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert threads_per_notebook(Settings(jobs=1)) == len(allowed)
    assert threads_per_notebook(Settings(jobs=len(allowed) + 1)) == 1
