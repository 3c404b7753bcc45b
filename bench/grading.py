"""Benchmark: `course grade` on a class of lab 01 notebooks: seconds per notebook and where they go, the
``--jobs`` scaling (on all the cores, and per core: ``--jobs 1`` held to one core against ``--jobs N``
on N cores), and shards (``--shard K/N``, run at once as a job array's tasks would, then
``course grade merge``) against one run.

The class: ``--submissions`` copies of the solved lab 01 (solutions/01_kmeans.ipynb, every cell run in the
``ci`` profile, every exercise graded), one per student. Each configuration grades them all from scratch
(``--force``), with a fixed seed, in the sandbox where the machine has one (root on Linux; else
``--no-sandbox``, said in the results). ``course grade`` runs as a separate process, as an instructor
runs it; its ``grades.json`` gives the per-notebook breakdown (``timing``, see
``course_utils.tools.grade.supervisor.Clock``).

Usage: python bench/grading.py [--submissions 20] [--jobs 2] [--shards 2] [--report]

Machine-readable lines start with ``RESULT `` followed by JSON (collected by bench/run_all.py);
``--report`` also writes them to bench/RESULTS.md, section ``grading`` (the other sections are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_kmeans.ipynb"
SEED = "8128"


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def sandbox_flag() -> list[str]:
    from course_utils.tools.grade import isolation

    return [] if isolation.support().isolated else ["--no-sandbox"]


def course(*args: str | Path, cores: list[int] | None = None) -> subprocess.Popen:
    """``course ARGS`` as a separate process; on ``cores`` only (its sandboxes inherit the affinity), if given."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    return subprocess.Popen([sys.executable, "-m", "course_utils", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=pin)


def finish(procs: list[subprocess.Popen]) -> list[float]:
    """Wait for the ``course`` commands; when each printed a notebook's verdict (``time.perf_counter``)."""
    import threading

    verdicts: list[float] = []
    outputs: dict[int, list[str]] = {}

    def read(proc: subprocess.Popen) -> None:
        lines = outputs.setdefault(proc.pid, [])
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"\(lab \d+\): .* in \d+ s$", line.strip()):
                verdicts.append(time.perf_counter())

    readers = [threading.Thread(target=read, args=(proc,)) for proc in procs]
    for reader in readers:
        reader.start()
    for proc, reader in zip(procs, readers):
        proc.wait()
        reader.join()
        if proc.returncode != 0:
            out = "".join(outputs.get(proc.pid, []))
            raise SystemExit(f"course {' '.join(map(str, proc.args[3:]))} failed ({proc.returncode}):\n{out[-3000:]}")
    return sorted(verdicts)


def steady(verdicts: list[float], start: float) -> tuple[float, float]:
    """(seconds to the first verdict: start-up, imports; seconds per notebook after it)."""
    return verdicts[0] - start, (verdicts[-1] - verdicts[0]) / max(1, len(verdicts) - 1)


@dataclass
class Timed:
    """One ``course grade`` run of the class: wall seconds, seconds to the first verdict, seconds per notebook
    after it, its gradebook's rows and the load average before and after."""

    seconds: float
    first: float
    steady: float
    rows: list[dict]
    load: list[float]


def grade_class(folder: Path, out: Path, jobs: int, flags: list[str], cores: list[int] | None = None) -> Timed:
    """``course grade FOLDER --out OUT --jobs JOBS FLAGS`` (on ``cores`` only, if given), timed; every
    notebook must get full marks."""
    before = load()
    start = time.perf_counter()
    first, per = steady(finish([course("grade", folder, "--out", out, "--jobs", str(jobs), *flags, cores=cores)]),
                        start)
    seconds = time.perf_counter() - start
    return Timed(seconds, first, per, graded(out), [round(before, 2), round(load(), 2)])


def graded(out: Path) -> list[dict]:
    rows = [e for f in sorted(out.glob("**/grades.json")) for e in json.loads(f.read_text())["submissions"]]
    bad = [e["student"] for e in rows if e["status"] != "graded" or e["total"] != e["out_of"]]
    if bad:
        raise SystemExit(f"the solution did not get full marks for {bad}: see {out}")
    return rows


def mean_timing(rows: list[dict]) -> dict[str, float]:
    keys = [k for k, v in rows[0]["timing"].items() if isinstance(v, (int, float))]
    return {k: round(sum(r["timing"].get(k, 0.0) for r in rows) / len(rows), 2) for k in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=20, help="notebooks in the class (default 20)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of the parallel run (default 2)")
    parser.add_argument("--shards", type=int, default=2, help="shards run at once (default 2)")
    parser.add_argument("--report", action="store_true", help="write the figures to bench/RESULTS.md (grading)")
    args = parser.parse_args()
    results: list[dict] = []
    flags = ["--seed", SEED, "--force", *sandbox_flag()]
    from course_utils import config

    cores = config.usable_cores()
    print(f"{args.submissions} lab 01 notebooks, {cores} cores, sandbox: "
          f"{'no' if flags[-1] == '--no-sandbox' else 'yes'}, load average {load():.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder = Path(tmp)
        (folder / "class").mkdir()
        for i in range(args.submissions):
            shutil.copy(SOLUTION, folder / "class" / f"student{i:03d}.ipynb")
        # the notebooks are graded in `course grade`'s default profile (ci), whatever profile this script runs in
        common = {"profile": config.profile_name(config.get_device()), "graded_in": "ci",
                  "notebooks": args.submissions, "cores": cores, "sandbox": not sandbox_flag()}

        def timed(out: str, jobs: int, cores: list[int] | None = None) -> Timed:
            return grade_class(folder / "class", folder / out, jobs, flags, cores)

        one = timed("one", 1)
        per = one.seconds / args.submissions
        print(f"--jobs 1: {one.seconds:.1f} s, {per:.1f} s per notebook (first verdict after {one.first:.1f} s, "
              f"then {one.steady:.2f} s per notebook); mean breakdown {mean_timing(one.rows)}", flush=True)
        emit(results, {"lab": "01", "name": "grading_jobs1", "metric": "seconds per notebook graded",
                       "value": round(per, 2), "seconds": round(one.seconds, 1), "first_verdict": round(one.first, 1),
                       "steady": round(one.steady, 2), **common, **mean_timing(one.rows), "load": one.load})

        jobs = timed("jobs", args.jobs)
        speedup, steady_speedup = one.seconds / jobs.seconds, one.steady / jobs.steady
        print(f"--jobs {args.jobs}: {jobs.seconds:.1f} s: {speedup:.2f}x of --jobs 1 (first verdict after "
              f"{jobs.first:.1f} s, then {jobs.steady:.2f} s per notebook: {steady_speedup:.2f}x)", flush=True)
        emit(results, {"lab": "01", "name": f"grading_jobs{args.jobs}", "metric": f"speed-up of --jobs {args.jobs} (x)",
                       "value": round(speedup, 2), "seconds": round(jobs.seconds, 1),
                       "efficiency": round(speedup / min(args.jobs, cores), 2), "first_verdict": round(jobs.first, 1),
                       "steady": round(jobs.steady, 2), "steady_speedup": round(steady_speedup, 2), **common,
                       "load": jobs.load})

        if hasattr(os, "sched_setaffinity") and 1 < args.jobs <= cores:
            usable = sorted(os.sched_getaffinity(0))
            single = timed("single", 1, usable[:1])
            # --jobs N held to N cores; with N = all the cores, that is the run above
            pinned = timed("pinned", args.jobs, usable[:args.jobs]) if args.jobs < cores else jobs
            speedup, steady_speedup = single.seconds / pinned.seconds, single.steady / pinned.steady
            print(f"per core: --jobs 1 on 1 core {single.seconds:.1f} s ({single.steady:.2f} s per notebook after "
                  f"the first), --jobs {args.jobs} on {args.jobs} cores {pinned.seconds:.1f} s: {speedup:.2f}x "
                  f"({speedup / args.jobs:.0%} of linear; after the first verdict {steady_speedup:.2f}x, "
                  f"{steady_speedup / args.jobs:.0%})", flush=True)
            emit(results, {"lab": "01", "name": "grading_per_core",
                           "metric": f"speed-up of --jobs {args.jobs} on {args.jobs} cores over --jobs 1 on 1 core (x)",
                           "value": round(speedup, 2), "seconds": round(single.seconds, 1), "jobs": args.jobs,
                           "efficiency": round(speedup / args.jobs, 2), "steady": round(single.steady, 2),
                           "steady_speedup": round(steady_speedup, 2), **common, "load": single.load})

        before = load()
        start = time.perf_counter()
        finish([course("grade", folder / "class", "--out", folder / "shards", "--shard", f"{k}/{args.shards}",
                       "--jobs", "1", *flags) for k in range(args.shards)])
        finish([course("grade", "merge", folder / "shards")])
        sharded = time.perf_counter() - start
        merged = json.loads((folder / "shards" / "grades.json").read_text())["submissions"]
        if len(merged) != args.submissions:
            raise SystemExit(f"the merged gradebook has {len(merged)} rows, not {args.submissions}")
        books = sorted((folder / "shards").glob("shard-*/grades.json"))
        sizes = [len(json.loads(f.read_text())["submissions"]) for f in books]
        print(f"{args.shards} shards at once ({sizes} notebooks) + merge: {sharded:.1f} s: "
              f"{one.seconds / sharded:.2f}x of one run", flush=True)
        emit(results, {"lab": "01", "name": f"grading_{args.shards}shards",
                       "metric": f"speed-up of {args.shards} shards + merge (x)",
                       "value": round(one.seconds / sharded, 2), "seconds": round(sharded, 1), "shard_sizes": sizes,
                       **common, "load": [round(before, 2), round(load(), 2)]})
    if args.report:
        from run_all import load_average, machine_info, write_report

        write_report(ROOT / "bench" / "RESULTS.md", "grading", report(results, machine_info(), load_average(),
                                                                      " ".join(sys.argv[1:])))
        print("wrote bench/RESULTS.md (section grading)")
    return 0


def emit(results: list[dict], result: dict) -> None:
    results.append(result)
    print("RESULT " + json.dumps(result), flush=True)


def report(results: list[dict], info: dict[str, str], loads: str, options: str) -> str:
    """The ``grading`` section of bench/RESULTS.md."""
    from datetime import datetime, timezone

    from course_utils.tools.grade.supervisor import Clock

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    one, jobs, *per_core, shards = results
    lines = ["## Grading (`bench/grading.py`)", "",
             f"Measured {now} with `python bench/grading.py {options}`: {one['notebooks']} copies of the solved "
             f"lab 01, `ci` profile, sandbox {'on' if one['sandbox'] else 'off (--no-sandbox)'}, "
             f"{one['cores']} cores, commit {info.get('commit', '?')}. The machine is shared: the load average "
             f"(1 min) of each run is given; {loads} at the end.", "",
             "`first verdict`: seconds from the command to its first notebook's verdict (the grader and its "
             "fork server starting: once per run); `then`: seconds per notebook from the first verdict to the last "
             "(what each further notebook of a class costs).", "",
             "| run | wall | result | first verdict | then | load before -> after |", "|---|---|---|---|---|---|",
             f"| `--jobs 1` | {one['seconds']:.0f} s | **{one['value']:.1f} s per notebook** | "
             f"{one['first_verdict']:.1f} s | **{one['steady']:.2f} s per notebook** | "
             f"{one['load'][0]} -> {one['load'][1]} |",
             f"| `--jobs {jobs['name'].removeprefix('grading_jobs')}` | {jobs['seconds']:.0f} s | {jobs['value']:.2f}x "
             f"of `--jobs 1` ({jobs['efficiency']:.0%} of linear) | {jobs['first_verdict']:.1f} s | "
             f"{jobs['steady']:.2f} s per notebook: {jobs['steady_speedup']:.2f}x "
             f"({jobs['steady_speedup'] / min(int(jobs['name'].removeprefix('grading_jobs')), one['cores']):.0%} "
             f"of linear) | {jobs['load'][0]} -> {jobs['load'][1]} |",
             *[f"| `--jobs 1` on 1 core, then `--jobs {p['jobs']}` on {p['jobs']} cores | {p['seconds']:.0f} s on 1 "
               f"core | {p['value']:.2f}x ({p['efficiency']:.0%} of linear) | | {p['steady']:.2f} s per notebook on 1 "
               f"core: {p['steady_speedup']:.2f}x ({p['steady_speedup'] / p['jobs']:.0%} of linear) | "
               f"{p['load'][0]} -> {p['load'][1]} |" for p in per_core],
             f"| {len(shards['shard_sizes'])} shards at once + merge | {shards['seconds']:.0f} s | "
             f"{shards['value']:.2f}x of one run | | | {shards['load'][0]} -> {shards['load'][1]} |", "",
             "Mean seconds per notebook, `--jobs 1`, by phase (`course grade --profile-time`; `warmed_ahead`: how "
             "long its sandboxes had been warming up, while the notebook before it was graded, not part of the "
             "total):", "",
             "| " + " | ".join(("total", *Clock.PHASES, "warmed_ahead")) + " |",
             "|" + "---|" * (len(Clock.PHASES) + 2),
             "| " + " | ".join(f"{one.get(k, 0.0):.1f}" for k in ("total", *Clock.PHASES, "warmed_ahead")) + " |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
