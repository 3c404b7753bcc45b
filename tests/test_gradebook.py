"""`course grade`: real notebooks, some of them hostile, graded in separate kernels and processes.

The notebooks are lab 01 and its solution, edited with nbformat. To keep the suite fast, one grader
run (module fixture, short timeouts, two jobs) grades all the hostile notebooks together; they keep
only the exercise part of the lab (the cells up to the last fallback).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest
import torch
from _notebooks import (
    LAB,
    SOLUTION,
    cell_index,
    exercise_part,
    insert_after,
    replace,
    write,
)

from course_utils.grading import evaluate, lab_exercises
from course_utils.tools.grade import command, gradebook, isolation, submissions, zygote
from course_utils.tools.grade.gradebook import Entry

IDS = [ex.id for ex in lab_exercises("01")]
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 30, 150


HARD_CODED_UPDATE = '''from course_utils.grading import get_exercise
from course_utils.ops import kmeans as _ref
_cases = get_exercise("01.update").cases(torch.Generator().manual_seed(0))
_seen = [(c.args, _ref.update_centres(*c.args)) for c in _cases]

def update_centres(x, labels, centres):
    """Memorised the cases the notebook shows; anything else gets the old centres."""
    for (a, b, c), out in _seen:
        if a.shape == x.shape and torch.equal(a, x) and torch.equal(b, labels) and torch.equal(c, centres):
            return out.clone()
    return centres.clone()
'''

PATCHING_ASSIGN = '''def assign(x, centres):
    """Patches the checks from inside the function, then returns nonsense."""
    import course_utils.grading as g, course_utils.grading.compare as c, course_utils.exercises.lab01 as lab
    g.evaluate = lambda i, fn, seed=0: g.CheckResult(i, "passed", "✅ passed", 6, 6)
    c.compare = lambda *a, **k: None
    c.unchanged = lambda *a, **k: True
    lab._assign_verify.__code__ = (lambda case, got, expected: None).__code__
    return torch.zeros(len(x), dtype=torch.long)
'''

FAKE_CHECKS = '''import course_utils.grading as g
g.evaluate = lambda i, fn, seed=0: g.CheckResult(i, "passed", f"✅ {i} passed: 6 of 6 cases.", 6, 6)
def check(i, fn, seed=0):
    print(f"✅ {i} passed: 6 of 6 cases.")
def fallback(i, fn):
    return fn
del g.check
'''


WRONG_ASSIGN = '''def assign(x, centres):
    """Redefined after the last check: this one is graded (every point in cluster 0)."""
    return torch.zeros(len(x), dtype=torch.long)
'''


def hostile_notebooks(folder: Path) -> dict[str, Path]:
    paths = {}

    nb = exercise_part()  # assign raises, update_centres mutates its input, mean_iou asks for 8 GiB
    replace(nb, "def assign", 'def assign(x, centres):\n    d2 = ((x[:, None] - centres[None]) ** 2).sum(-1)\n'
                              '    raise ValueError(f"boom with {len(x)} points")\n')
    replace(nb, "def update_centres", "def update_centres(x, labels, centres):\n    centres.add_(1.0)\n"
                                      "    return centres - 1.0\n")
    replace(nb, "def mean_iou", "def mean_iou(pred, target, num_classes):\n"
                                "    scratch = torch.empty(8 * 2**30, dtype=torch.uint8)\n    return 0.5\n")
    paths["raises"] = write(nb, folder / "raises.ipynb")

    nb = exercise_part()  # a function that never returns (its check cells deleted); a cell that never ends
    replace(nb, "def mean_iou", "def mean_iou(pred, target, num_classes):\n    while True:\n        pass\n")
    del nb.cells[cell_index(nb, 'check("01.miou"')]
    replace(nb, "match_clusters = fallback", 'match_clusters = fallback("01.match", match_clusters)')
    source = nb.cells[cell_index(nb, "def match_clusters")].source
    replace(nb, "def match_clusters", "import time\nwhile True:\n    time.sleep(0.05)\n\n" + source)
    paths["loops"] = write(nb, folder / "loops.ipynb")

    nb = exercise_part()  # kills its kernel with os._exit after two exercises
    insert_after(nb, 'check("01.update"', "import os\nos._exit(3)")
    paths["exits"] = write(nb, folder / "exits.ipynb")

    nb = exercise_part()  # a function that segfaults: kills the kernel at its check, then the sandbox
    replace(nb, "def match_clusters", "import ctypes\n\ndef match_clusters(clusters, target, k, num_classes):\n"
                                      "    return ctypes.string_at(0)\n")
    paths["segfaults"] = write(nb, folder / "segfaults.ipynb")

    nb = exercise_part(LAB)  # the unsolved lab, with fake checks and a hard-coded and a patching answer
    insert_after(nb, "import time", FAKE_CHECKS)
    insert_after(nb, 'check("01.assign"', 'print("✅ 01.assign passed: 6 of 6 cases (nearest centre for each point).")')
    replace(nb, "def assign", PATCHING_ASSIGN)
    replace(nb, "def update_centres", HARD_CODED_UPDATE)
    paths["cheats"] = write(nb, folder / "cheats.ipynb")

    nb = exercise_part()  # assign redefined (wrongly) after the last fallback; then cells that would sleep, spin, crash
    for source in (WRONG_ASSIGN, "import time\ntime.sleep(3600)", "while True:\n    pass", "import os\nos._exit(3)"):
        nb.cells.append(nbformat.v4.new_code_cell(source))
    paths["tail"] = write(nb, folder / "tail.ipynb")

    (folder / "empty.ipynb").write_text("")
    (folder / "garbage.ipynb").write_text('{"cells": [')
    (folder / "notanotebook.ipynb").write_text('{"hello": "world"}')
    return paths


def run_grade(*args: str | Path) -> int:
    """``course grade ARGS`` (where this machine cannot sandbox, with --no-sandbox: see test_sandbox.py)."""
    sandbox = () if isolation.support().isolated else ("--no-sandbox",)
    return command.main([str(a) for a in (*args, *sandbox)])


def load(out: Path) -> dict[str, dict]:
    return {e["student"]: e for e in json.loads((out / "grades.json").read_text())["submissions"]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = hostile_notebooks(folder / "in")
    before = {p: p.read_bytes() for p in (folder / "in").iterdir()}
    start = time.monotonic()
    code = run_grade(folder / "in", "--out", folder / "out", "--jobs", "2", "--cell-timeout", CELL_TIMEOUT,
                     "--timeout", NOTEBOOK_TIMEOUT, "--memory", "3")
    seconds = time.monotonic() - start
    return {"code": code, "seconds": seconds, "out": folder / "out", "in": folder / "in", "paths": paths,
            "before": before, "grades": load(folder / "out")}


# ---- what submissions do -----------------------------------------------------------------------------
@pytest.mark.slow   # grades real notebooks (module fixture)
def test_every_submission_gets_a_row_and_the_grader_finishes_in_time(hostile):
    assert hostile["code"] == 0
    assert set(hostile["grades"]) == {"raises", "loops", "exits", "segfaults", "cheats", "tail",
                                      "empty", "garbage", "notanotebook"}
    # each notebook is bounded by its timeouts (plus starting a kernel and a sandbox: generous, shared machine)
    assert all(e["seconds"] < NOTEBOOK_TIMEOUT + 120 for e in hostile["grades"].values() if "seconds" in e)


@pytest.mark.slow
def test_submissions_are_not_modified_and_nothing_lands_next_to_them(hostile):
    assert {p: p.read_bytes() for p in hostile["in"].iterdir()} == hostile["before"]


@pytest.mark.slow
def test_an_exception_fails_that_exercise_with_its_line_and_the_rest_are_graded(hostile):
    e = hostile["grades"]["raises"]
    assign = e["exercises"]["01.assign"]
    assert e["status"] == "graded" and assign["status"] == "error" and not assign["passed"]
    assert "your function raised ValueError: boom with" in assign["message"]
    assert 'in `assign`, line 3: raise ValueError(f"boom with {len(x)} points")' in assign["message"]
    for ex_id in ("01.init", "01.kmeans", "01.features", "01.match"):
        assert e["exercises"][ex_id]["passed"], e["exercises"][ex_id]["message"]


@pytest.mark.slow
def test_a_memory_blow_up_hits_the_memory_limit_not_the_machine(hostile):
    miou = hostile["grades"]["raises"]["exercises"]["01.miou"]
    assert miou["status"] == "error" and "can't allocate memory" in miou["message"]


@pytest.mark.slow
def test_endless_loops_time_out_and_the_rest_is_graded(hostile):
    e = hostile["grades"]["loops"]
    miou, match = e["exercises"]["01.miou"], e["exercises"]["01.match"]
    assert miou["status"] == "timeout" and "timed out: no result after" in miou["message"]
    assert match["status"] == "timeout" and "timed out" in match["message"] and f"{CELL_TIMEOUT} s" in match["message"]
    assert e["exercises"]["01.assign"]["passed"] and e["exercises"]["01.update"]["passed"]
    assert any("timed out" in note for note in e["notes"])


@pytest.mark.slow
def test_a_function_that_modifies_its_input_fails(hostile):
    update = hostile["grades"]["raises"]["exercises"]["01.update"]
    assert update["status"] == "mutated" and "modified its input" in update["message"]


@pytest.mark.slow
def test_a_kernel_that_exits_gives_crashed_with_partial_results(hostile):
    e = hostile["grades"]["exits"]
    assert e["status"] == "crashed"
    assert e["exercises"]["01.assign"]["passed"] and e["exercises"]["01.update"]["passed"]
    assert e["exercises"]["01.features"]["status"] == "missing"
    assert "did not run" in e["exercises"]["01.features"]["message"]


@pytest.mark.slow
def test_a_segfault_is_reported_and_other_exercises_still_graded(hostile):
    e = hostile["grades"]["segfaults"]
    match = e["exercises"]["01.match"]
    assert e["status"] == "crashed"
    assert match["status"] == "crashed" and "segmentation fault" in match["message"]
    assert e["exercises"]["01.assign"]["passed"] and e["exercises"]["01.features"]["passed"]


@pytest.mark.slow
def test_patching_the_checks_or_printing_passed_gains_nothing(hostile):
    e = hostile["grades"]["cheats"]
    assert e["total"] == 0 and not any(r["passed"] for r in e["exercises"].values())
    assert e["exercises"]["01.assign"]["status"] == "failed"
    assert e["exercises"]["01.init"]["status"] == "not_implemented"


@pytest.mark.slow
def test_hard_coding_the_visible_cases_does_not_pass_the_hidden_ones(hostile):
    namespace = {"torch": torch}
    exec(HARD_CODED_UPDATE, namespace)  # noqa: S102 - our own test code
    assert evaluate("01.update", namespace["update_centres"], seed=0).passed  # the cases students see
    update = hostile["grades"]["cheats"]["exercises"]["01.update"]
    assert update["status"] == "failed" and not update["passed"]


@pytest.mark.slow
def test_cells_after_the_last_graded_cell_do_not_run_and_the_last_definition_is_graded(hostile):
    e = hostile["grades"]["tail"]
    assert e["status"] == "graded", e  # the os._exit cell would have killed the kernel (crashed)
    assert e["exercises"]["01.assign"]["status"] == "failed"  # the redefinition, not the solution's assign
    assert e["exercises"]["01.kmeans"]["status"] == "failed"  # kmeans calls the global assign: the last one too
    assert all(r["passed"] for ex_id, r in e["exercises"].items() if ex_id not in ("01.assign", "01.kmeans"))
    last = len(exercise_part().cells) + 1  # 1-based: the redefining cell
    assert f"Cells {last + 1}-{last + 3} (3 code cells) were not run for grading: they come after cell {last}" \
        in " ".join(e["notes"]), e["notes"]
    assert not any("timed out" in n or "died" in n for n in e["notes"])  # the sleep and the spin never ran
    assert "were not run for grading" in (hostile["out"] / "feedback" / "tail.md").read_text()


@pytest.mark.slow
def test_unreadable_files_get_a_row_with_the_reason(hostile):
    g = hostile["grades"]
    assert all(g[s]["status"] == "unreadable" for s in ("empty", "garbage", "notanotebook"))
    assert "empty" in g["empty"]["reason"]
    assert "not valid JSON" in g["garbage"]["reason"]
    assert "not a Jupyter notebook" in g["notanotebook"]["reason"]


@pytest.mark.slow
def test_gradebook_files(hostile):
    out = hostile["out"]
    header, *rows = (out / "grades.csv").read_text().strip().split("\n")
    assert header.split(",") == ["student", "path", "lab", *IDS, "total", "out_of", "status", "note"]
    assert len(rows) == 9
    raises = next(r for r in rows if r.startswith("raises,")).split(",")
    assert raises[3 + IDS.index("01.update")] == "0" and raises[3 + IDS.index("01.init")] == "1"
    assert raises[-3:-1] == [str(len(IDS)), "graded"] and raises[-4] == str(len(IDS) - 3)
    text = (out / "feedback" / "raises.md").read_text()
    assert "modified its input" in text and "hidden seed" in text
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# ---- the real lab and solution; folders per student; re-runs ---------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    (folder / "in" / "alice" / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / "in" / "bob").mkdir()
    shutil.copy(SOLUTION, folder / "in" / "alice" / "01_kmeans.ipynb")
    shutil.copy(SOLUTION, folder / "in" / "alice" / ".ipynb_checkpoints" / "01_kmeans-checkpoint.ipynb")
    shutil.copy(LAB, folder / "in" / "bob" / "lab01.ipynb")
    code = run_grade(folder / "in", "--out", folder / "out", "--jobs", "2", "--profile-time")
    return {"code": code, "folder": folder, "grades": load(folder / "out")}


@pytest.mark.slow
def test_the_solution_scores_full_marks_and_the_lab_zero(real):
    assert real["code"] == 0 and set(real["grades"]) == {"alice", "bob"}  # folder names; checkpoints skipped
    alice, bob = real["grades"]["alice"], real["grades"]["bob"]
    assert alice["total"] == alice["out_of"] == len(IDS), {k: v["message"] for k, v in alice["exercises"].items()}
    assert bob["total"] == 0 and bob["out_of"] == len(IDS)
    assert all(r["status"] == "not_implemented" for r in bob["exercises"].values())


@pytest.mark.slow
def test_each_notebook_says_where_its_seconds_went(real):
    from course_utils.tools.grade.supervisor import Clock

    for e in real["grades"].values():
        timing = e["timing"]
        phases = [timing[k] for k in Clock.PHASES if k in timing]
        assert abs(sum(phases) - timing["total"]) < 0.1 + 0.01 * timing["total"], timing  # the phases are all of it
        assert timing["kernel_start"] >= 0 and timing["cells"] > 0 and timing["run_start"] > 0  # (started ahead)
        assert timing["warmed_ahead"] > 0
        assert set(timing["per_exercise"]) == set(IDS)
        assert abs(sum(timing["per_exercise"].values()) - timing["exercises"]) < 0.1
        assert timing["slowest_cells"][0][1] >= timing["slowest_cells"][-1][1] > 0


@pytest.mark.slow
def test_a_rerun_reuses_unchanged_notebooks(real, capsys):
    folder = real["folder"]
    capsys.readouterr()
    start = time.monotonic()
    assert run_grade(folder / "in", "--out", folder / "out") == 0
    assert time.monotonic() - start < 30 and "2 unchanged" in capsys.readouterr().out
    assert load(folder / "out") == real["grades"]


@pytest.mark.slow
@pytest.mark.skipif(not isolation.support().isolated or not zygote.enabled(), reason="the fork server serves sandboxes")
def test_without_its_fork_server_the_grader_says_so_once_and_grades_the_same(tmp_path, monkeypatch, capsys):
    from course_utils.tools.grade import supervisor

    def no_server(env):
        raise OSError("made to fail by the test")

    monkeypatch.setattr(supervisor, "Zygote", no_server)
    (tmp_path / "in").mkdir()
    shutil.copy(SOLUTION, tmp_path / "in" / "alice.ipynb")
    assert run_grade(tmp_path / "in", "--out", tmp_path / "out") == 0
    assert capsys.readouterr().err.count("fork server did not start (made to fail by the test)") == 1
    alice = load(tmp_path / "out")["alice"]
    assert alice["total"] == alice["out_of"] == len(IDS), {k: v["message"] for k, v in alice["exercises"].items()}


def test_a_changed_file_is_regraded_and_force_regrades(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    sub = tmp_path / "in" / "carol.ipynb"
    sub.write_text("")
    assert run_grade(tmp_path / "in", "--out", tmp_path / "out") == 0
    assert "empty" in load(tmp_path / "out")["carol"]["reason"]
    sub.write_text("[1, 2]")
    capsys.readouterr()
    assert run_grade(tmp_path / "in", "--out", tmp_path / "out") == 0
    assert "0 unchanged" in capsys.readouterr().out
    assert "not a Jupyter notebook" in load(tmp_path / "out")["carol"]["reason"]
    assert run_grade(tmp_path / "in", "--out", tmp_path / "out") == 0
    assert "1 unchanged" in capsys.readouterr().out
    assert run_grade(tmp_path / "in", "--out", tmp_path / "out", "--force") == 0
    assert "0 unchanged" in capsys.readouterr().out


def test_an_interrupted_run_leaves_a_valid_gradebook_and_resumes(tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    for name in ("erin", "frank"):
        (tmp_path / "in" / f"{name}.ipynb").write_text("")
    grade = submissions.grade

    def interrupted(sub, settings, warm=None):
        if sub.student == "frank":
            raise KeyboardInterrupt  # Ctrl-C while the second notebook is being graded
        return grade(sub, settings, warm)

    monkeypatch.setattr(submissions, "grade", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_grade(tmp_path / "in", "--out", tmp_path / "out")
    assert set(load(tmp_path / "out")) == {"erin"}
    assert (tmp_path / "out" / "grades.csv").read_text().count("\n") == 2
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setattr(submissions, "grade", grade)
    capsys.readouterr()
    assert run_grade(tmp_path / "in", "--out", tmp_path / "out") == 0
    assert "1 unchanged" in capsys.readouterr().out and set(load(tmp_path / "out")) == {"erin", "frank"}


def test_the_last_graded_cell_is_the_last_that_defines_an_exercise_function_or_calls_a_check():
    from course_utils.tools.grade.supervisor import last_graded_cell

    def notebook(*sources: str) -> nbformat.NotebookNode:
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])

    names = ["assign", "mean_iou"]
    assert last_graded_cell(notebook("import torch", "def assign(x, c):\n    return x", "train()", "plot()"),
                            names) == 1
    assert last_graded_cell(notebook("def assign(x, c): ...", "grading.check('01.x', f)", "train()"), names) == 1
    assert last_graded_cell(notebook("def assign(x, c): ...", "x = 1", "assign = lambda x, c: x", "plot()"),
                            names) == 2  # a redefinition is a defining cell
    assert last_graded_cell(notebook("def assign(x, c): ...", "files = !ls\ndef mean_iou(p, t, k): ...", "plot()"),
                            names) == 1  # IPython syntax in a line: parsed as IPython runs it
    assert last_graded_cell(notebook("%%time\nmean_iou = fallback('01.miou', mean_iou)", "def (broken", "plot()"),
                            names) == 0  # a cell that does not parse cannot define anything
    assert last_graded_cell(notebook("import torch", "plot()"), names) == -1
    solution = nbformat.read(SOLUTION, as_version=4)
    last = last_graded_cell(solution, [n for ex in lab_exercises("01") for n in [ex.function]])
    assert "mean_iou = fallback" in solution.cells[last].source
    assert any(c.cell_type == "code" for c in solution.cells[last + 1:])  # lab 01 has cells after it: not graded


def _recorded(ex_id: str, fn, seed: int) -> dict:
    """What the run step records for ``fn`` (run here, unguarded: the test's own code)."""
    from course_utils.grading import get_exercise
    from course_utils.grading.runner import call_student
    from course_utils.tools.grade.replay import encode

    ex = get_exercise(ex_id)
    outcomes = []
    for case in ex.cases(torch.Generator().manual_seed(seed)):
        got = call_student(ex, fn, case, guard=False)
        outcomes.append({"kind": "returned", "value": encode(got), "args": encode((case.args, case.kwargs))})
    return {"name": ex.function, "cases": len(outcomes), "outcomes": outcomes}


def test_the_grader_runs_the_reference_once_per_case_for_the_whole_class_with_the_same_verdicts():
    from course_utils.grading import get_exercise
    from course_utils.tools.grade import replay
    from course_utils.tools.grade.replay import judge

    reference = get_exercise("01.init").reference

    def correct(x, k, generator):  # not the course's function: judged like a student's
        return reference(x, k, generator)

    def first_points(x, k, generator):  # distinct points of x, not drawn in proportion to D^2
        return x[:k].clone()

    replay.REFERENCE_OUTPUTS.clear()
    good, bad = _recorded("01.init", correct, 5), _recorded("01.init", first_points, 5)
    assert judge("01.init", good, 5).status == "passed"
    kept = dict(replay.REFERENCE_OUTPUTS)
    assert sorted(kept) == [("01.init", 5, n) for n in range(len(good["outcomes"]))]  # every case's, once
    verdicts = [judge("01.init", r, 5).status for r in (bad, good)]
    assert verdicts == ["failed", "passed"]  # linked cases (a memo shared by cases) start afresh each time
    assert all(replay.REFERENCE_OUTPUTS[k] is v for k, v in kept.items())  # read back, not computed again
    assert judge("01.init", good, 6).status != "passed"  # another seed: other cases, other references


def test_results_travel_as_plain_data(tmp_path):
    from collections import namedtuple

    import numpy as np

    from course_utils.tools.grade.replay import decode, encode

    pair = namedtuple("pair", "labels inertia")
    value = (pair(torch.arange(3), 1.5), [np.float32(2.5), np.arange(3)], {"k": None}, object(), True)
    torch.save(encode(value), tmp_path / "r.pt")
    back = decode(torch.load(tmp_path / "r.pt", weights_only=True))  # no code runs when the grader reads it
    assert torch.equal(back[0][0], torch.arange(3)) and back[0][1] == 1.5 and type(back[0]) is tuple
    assert back[1][0] == np.float32(2.5) and type(back[1][0]) is np.float32 and back[1][1].tolist() == [0, 1, 2]
    assert back[2] == {"k": None} and type(back[3]).__name__ == "object" and back[4] is True


# ---- bad input to the command -----------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "no_notebooks", "unknown_lab", "out_is_file", "bad_seed"])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "dan.ipynb").write_text("")
    out, args = tmp_path / "out", [tmp_path / "subs"]
    if case == "missing":
        args = [tmp_path / "nope"]
    elif case == "no_notebooks":
        (tmp_path / "empty").mkdir()
        args = [tmp_path / "empty"]
    elif case == "unknown_lab":
        args += ["--lab", "99"]
    elif case == "out_is_file":
        out.write_text("not a folder")
    else:
        monkeypatch.setenv(command.SEED_ENV, "abc")
    capsys.readouterr()
    assert run_grade(*args, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("course grade: ") and "\n" not in err
    assert not out.is_dir()


def test_unknown_lab_seed_warning_and_lms_export(tmp_path, capsys, monkeypatch):
    """Quick (no kernel starts): a notebook that names no exercise is "unknown lab", its feedback has no
    advice meant for the instructor, the console says what to do, and the public seed is warned about."""
    monkeypatch.delenv("COURSE_GRADE_SEED", raising=False)
    folder = tmp_path / "in"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('my own notebook')")])
    write(nb, folder / "dave.ipynb")
    (folder / "erin.ipynb").write_text("")
    assert run_grade(folder, "--out", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "warning: no --seed and no $COURSE_GRADE_SEED" in err and "public source code" in err
    assert "cannot tell the lab of 1 notebook(s)" in err and "--lab NN" in err
    assert "dave (lab ?): not graded, unknown lab" in err
    grades = load(tmp_path / "out")
    assert grades["dave"]["status"] == "unknown_lab" and grades["erin"]["status"] == "unreadable"
    text = (tmp_path / "out" / "feedback" / "dave.md").read_text()
    assert "Not graded" in text and "--lab" not in text
    assert (tmp_path / "out" / "grades_moodle.csv").read_text().splitlines()[0] == "username"


def test_lms_export_takes_each_students_best_graded_submission():
    entries = [
        Entry("alice", "a.ipynb", lab="01", status="graded", total=5.0),
        Entry("alice", "b.ipynb", lab="01", status="graded", total=7.0),
        Entry("alice", "c.ipynb", lab="02", status="crashed", total=2.0),
        Entry("bob", "d.ipynb", lab=None, status="unreadable", total=0.0),
    ]
    assert gradebook.lms_csv(entries, ["01", "02"]).splitlines() == [
        "username,Lab 01,Lab 02", "alice,7,2", "bob,,"]


def test_time_limits_follow_the_profile():
    args = command.parse_args(["x", "--profile", "cpu"])
    settings = command.settings_from(args)
    assert (settings.cell_timeout, settings.timeout) == command.TIME_LIMITS["cpu"] and settings.cell_timeout >= 300
    args = command.parse_args(["x", "--profile", "cpu", "--cell-timeout", "50"])
    assert command.settings_from(args).cell_timeout == 50
