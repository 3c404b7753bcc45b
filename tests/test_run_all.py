"""bench/run_all.py: runs fake benchmark scripts, parses their RESULT lines, reports failures."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
run_all = importlib.util.module_from_spec(spec)
sys.modules["run_all"] = run_all          # dataclasses look their module up there
spec.loader.exec_module(run_all)

GOOD = '''
import json, os, sys
profile = os.environ["COURSE_PROFILE"]
print("training... some chatter that is not a result")
print("warning on stderr", file=sys.stderr)
print("RESULT " + json.dumps({"lab": "09", "name": "toy_miou", "metric": "mIoU", "value": 0.93, "target": 0.9,
                              "seconds": 12.5, "profile": profile, "curve": [[1, 0.5], [6, 0.85], [12.5, 0.93]],
                              "images_per_s": 321.0}))
print("RESULT " + json.dumps({"lab": "09", "name": "speed_k8", "metric": "speed vs peer (x)", "value": 2.5,
                              "seconds": 0.2, "peer": "scikit-learn", "peer_seconds": 0.5, "profile": profile}))
print("RESULT not json at all? no: this line starts with RESULT but is chatter", file=sys.stderr)
'''

BAD = '''
import sys
print("RESULT {\\"lab\\": \\"10\\", \\"metric\\": \\"mAP\\", \\"value\\": 0.1, \\"seconds\\": 3}")
for i in range(40):
    print(f"step {i}")
raise RuntimeError("the model diverged at step 40")
'''


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def test_report_with_a_good_and_a_failing_script(tmp_path):
    bench, out = tmp_path / "bench", tmp_path / "out"
    bench.mkdir()
    write(bench, "good.py", GOOD)
    write(bench, "zbad.py", BAD)
    write(bench, "_helper.py", "raise SystemExit('helpers are not benchmarks')")

    status = run_all.main(["--profile", "ci", "--bench-dir", str(bench), "--out", str(out), "--quiet"])

    assert status == 1                                   # one script failed
    report = (out / "RESULTS.md").read_text()
    assert (out / "results_ci.png").stat().st_size > 1000
    assert "## Profile `ci`" in report and "load average" in report and "torch" in report
    quality = report.split("### Quality per lab")[1].split("###")[0]
    assert "| 09 | toy_miou | mIoU | 0.93 | 0.9 | ✅ yes | 12.5 s | 12.5 s |" in quality   # time to target: curve
    assert "| 10 | zbad | mAP | 0.1 | – | – | 3.0 s | – |" in quality
    assert "images_per_s 321" in quality
    assert "speed_k8" not in quality                     # peer rows have their own table
    peers = report.split("### Against peers")[1].split("###")[0]
    assert "| 09 | speed_k8 | scikit-learn | 200 ms | 500 ms | 2.50 |" in peers
    # the failing script: its RESULT line still counts, it is marked failed, with the tail of its output
    assert "| `good.py` | ok |" in report
    assert "| `zbad.py` | ❌ failed: exited with status 1 |" in report
    failure = report.split("#### `zbad` failed")[1]
    assert "RuntimeError: the model diverged at step 40" in failure
    assert "step 39" in failure and "step 0\n" not in failure       # only the tail
    assert "_helper" not in report
    assert "not timed (run with `--with-tests`)" in report


def test_only_good_scripts_exit_zero_and_other_profiles_are_kept(tmp_path, monkeypatch):
    bench, out = tmp_path / "bench", tmp_path / "out"
    bench.mkdir()
    write(bench, "good.py", GOOD)
    assert run_all.main(["--profile", "ci", "--bench-dir", str(bench), "--out", str(out), "--quiet"]) == 0
    assert run_all.main(["--profile", "gpu", "--bench-dir", str(bench), "--out", str(out), "--quiet"]) == 0
    monkeypatch.setenv("COURSE_PROFILE", "ci")          # no --profile: the course's choice
    assert run_all.main(["--bench-dir", str(bench), "--out", str(out), "--quiet"]) == 0
    report = (out / "RESULTS.md").read_text()
    assert report.count("## Profile `ci`") == 1 and report.count("## Profile `gpu`") == 1
    assert report.index("## Profile `ci`") < report.index("## Profile `gpu`")
    assert report.startswith("# Benchmark results")


def test_jobs_run_scripts_at_once_and_keep_their_order(tmp_path):
    bench, out, marks = tmp_path / "bench", tmp_path / "out", tmp_path / "marks"
    bench.mkdir()
    marks.mkdir()
    # each script says it started, then waits for the other two: all three see 3 only if they ran at once
    waiter = textwrap.dedent(f"""
        import json, pathlib, time
        marks = pathlib.Path({str(marks)!r})
        (marks / "%s").touch()
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        print("RESULT " + json.dumps({{"lab": "%s", "metric": "seen", "value": len(list(marks.iterdir()))}}))
    """)
    for lab in ("01", "02", "03"):
        write(bench, f"s{lab}.py", waiter % (lab, lab))
    assert run_all.main(["--profile", "ci", "--bench-dir", str(bench), "--out", str(out), "--quiet",
                         "--jobs", "3"]) == 0
    report = (out / "RESULTS.md").read_text()
    assert "up to 3 scripts at once" in report
    for lab in ("01", "02", "03"):
        assert f"| {lab} | s{lab} | seen | 3 |" in report
    assert report.index("| `s01.py` |") < report.index("| `s02.py` |") < report.index("| `s03.py` |")
    with pytest.raises(SystemExit):
        run_all.main(["--profile", "ci", "--bench-dir", str(bench), "--out", str(out), "--jobs", "0"])


@pytest.mark.parametrize("source, problem", [
    ("print('done, but nothing measured')", "printed no RESULT line"),
    ("print('RESULT {oops}')", "RESULT line is not JSON"),
    ("print('RESULT [1, 2]')", "not a JSON object"),
    ("print('RESULT {\"lab\": \"01\", \"value\": 1}')", "lacks metric"),
    ("print('RESULT {\"lab\": \"01\", \"metric\": \"m\", \"value\": \"high\"}')", "value is not a number"),
    ("print('RESULT {\"lab\": \"01\", \"metric\": \"m\", \"value\": 1, \"profile\": \"gpu\"}')",
     "asked for profile 'ci' but reported 'gpu'"),
    ("import time; time.sleep(30)", "timed out after 1 s"),
])
def test_protocol_violations_fail_the_script(tmp_path, source, problem):
    script = write(tmp_path, "broken.py", source)
    run = run_all.run_benchmark(script, "ci", timeout=1 if "sleep" in source else 60, echo=False)
    assert run.failed
    assert any(problem in p for p in run.problems), run.problems


def test_time_to_target():
    assert run_all.time_to_target({"target": 0.8, "curve": [[10, 0.5], [20, 0.81], [30, 0.79], [40, 0.9]]}) == 20
    assert run_all.time_to_target({"target": 0.8, "curve": [[10, 0.5]]}) is None
    assert run_all.time_to_target({"target": 0.8, "seconds_to_target": 7, "curve": [[10, 0.9]]}) == 7
    assert run_all.time_to_target({"target": None, "curve": [[10, 0.9]]}) is None


def test_parse_result_fills_nothing_in():
    line = "RESULT " + json.dumps({"lab": "01", "metric": "mIoU", "value": 0.97, "extra": [1, 2]})
    assert run_all.parse_result(line) == {"lab": "01", "metric": "mIoU", "value": 0.97, "extra": [1, 2]}


def test_unknown_script_name_is_a_clear_error(tmp_path):
    write(tmp_path, "good.py", GOOD)
    with pytest.raises(SystemExit, match="no benchmark named fcn"):
        run_all.discover(tmp_path, ["fcn"])


def test_a_report_keeps_what_was_written_by_hand(tmp_path):
    """Rewriting one profile's section replaces that section only: the other sections, and the notes written
    by hand between and after them, stay word for word (a benchmark once wiped six hand-written sections)."""
    report = tmp_path / "RESULTS.md"
    run_all.write_report(report, "cpu", "cpu figures v1\n")
    run_all.write_report(report, "grading", "grading figures v1\n")
    with report.open("a") as f:
        f.write("\n## Measured by hand\n\nA note that no script writes.\n")
    text = report.read_text().replace("cpu figures v1\n<!-- /profile:cpu -->\n",
                                      "cpu figures v1\n<!-- /profile:cpu -->\n\nBetween, by hand.\n")
    report.write_text(text)
    run_all.write_report(report, "grading", "grading figures v2\n")
    run_all.write_report(report, "ci", "ci figures\n")  # a new section goes before the later profiles'
    run_all.write_report(report, "gpu", "gpu figures\n")
    after = report.read_text()
    assert "grading figures v2" in after and "grading figures v1" not in after
    assert "Between, by hand." in after and "A note that no script writes." in after
    order = [after.index(f"<!-- profile:{p} -->") for p in ("ci", "cpu", "gpu", "grading")]
    assert order == sorted(order) and after.startswith(run_all.HEADER)
    assert after.index("Between, by hand.") < after.index("<!-- profile:gpu -->")
    assert after.index("A note that no script writes.") > after.index("<!-- /profile:grading -->")
