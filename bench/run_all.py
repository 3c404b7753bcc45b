"""Run every benchmark in bench/ in one profile and write one report: bench/RESULTS.md + a plot.

    python bench/run_all.py --profile cpu                # every bench/*.py, then the report
    python bench/run_all.py --profile gpu --with-tests   # also time `make test`
    python bench/run_all.py --only kmeans fcn            # a subset (by script name)

Protocol (how a benchmark plugs in; nothing here changes when a new script lands)
---------------------------------------------------------------------------------
- Every ``bench/*.py`` except this file and names starting with ``_`` is a benchmark. It is run as
  ``python bench/NAME.py`` from the repository root, with ``COURSE_PROFILE=<profile>`` in its
  environment (``course_utils.get_profile()`` / ``config.profile_name()`` read it), one after the other.
- It prints any output it likes; lines of the form ``RESULT {json}`` on stdout are its results. Keys:
    lab      "01", "02", ...                   (required)
    metric   what ``value`` measures, e.g. "mIoU" or "speed vs scikit-learn (x)"   (required)
    value    the figure reached, a number                                           (required)
    name     which measurement of the lab (default: the script name)
    target   the lab's quality target for ``value`` (null: no target in this profile)
    seconds  wall time to reach ``value`` (the training run, the timed call)
    seconds_to_target  wall time until ``value`` first reached ``target`` (default: read off ``curve``)
    profile, device     as the script saw them (a profile other than the requested one is an error)
    peer, peer_seconds  a reference implementation and its time: ``value`` is then a ratio
                        (peer time / our time, > 1 = we are faster) and goes to the peer table
    curve    [[seconds, value], ...] measured along the way: drawn in the plot
  Any other key (iterations, images_per_s, load, ...) is shown in the report's details column.
- A script fails if it exits non-zero, runs past ``--timeout``, prints no RESULT line, prints a RESULT
  line that is not a JSON object with lab/metric/value, or reports another profile. Failures are listed
  in the report with the tail of their output, and this script then exits with status 1.

Report: bench/RESULTS.md holds one section per profile (ci / cpu / gpu); running one profile rewrites
its own section and keeps the others. The plot is bench/results_<profile>.png (time vs quality per lab,
and the speed ratios against peers). Timings depend on the machine and its load: the section records
the CPU, cores, GPU, versions and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("ci", "cpu", "gpu")
REQUIRED = ("lab", "metric", "value")
TAIL_LINES = 25


@dataclass
class Run:
    """One benchmark script's run."""

    name: str
    seconds: float = 0.0
    returncode: int | None = None
    results: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems)


# ------------------------------------------------------------------------------------------ running
def discover(bench_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts of ``bench_dir``, sorted by name."""
    me = Path(__file__).resolve()
    scripts = [p for p in sorted(bench_dir.glob("*.py")) if p.resolve() != me and not p.name.startswith("_")]
    if only:
        unknown = sorted(set(only) - {p.stem for p in scripts})
        if unknown:
            raise SystemExit(f"no benchmark named {', '.join(unknown)} in {bench_dir} "
                             f"(have: {', '.join(p.stem for p in scripts) or 'none'})")
        scripts = [p for p in scripts if p.stem in only]
    return scripts


def parse_result(line: str) -> dict | str:
    """The JSON of a ``RESULT {...}`` line, or a string saying what is wrong with it."""
    try:
        result = json.loads(line[len("RESULT"):].strip())
    except json.JSONDecodeError as exc:
        return f"RESULT line is not JSON ({exc}): {line[:200]}"
    if not isinstance(result, dict):
        return f"RESULT line is not a JSON object: {line[:200]}"
    missing = [key for key in REQUIRED if key not in result]
    if missing:
        return f"RESULT line lacks {', '.join(missing)}: {line[:200]}"
    if not isinstance(result["value"], (int, float)) or isinstance(result["value"], bool):
        return f"RESULT value is not a number: {line[:200]}"
    return result


def _pump(stream, name: str, sink: deque, lines: list[str] | None, echo: bool) -> None:
    for line in iter(stream.readline, ""):
        line = line.rstrip("\n")
        sink.append(line)
        if lines is not None:
            lines.append(line)
        if echo:
            print(f"[{name}] {line}", file=sys.stderr, flush=True)
    stream.close()


def run_command(name: str, argv: list[str], env: dict, timeout: float, echo: bool = True) -> tuple[Run, list[str]]:
    """Run ``argv``, echoing its output; returns the Run (time, exit status, tail) and its stdout lines."""
    run, stdout_lines = Run(name), []
    out_tail, err_tail = deque(maxlen=TAIL_LINES), deque(maxlen=TAIL_LINES)   # two pipes, read concurrently
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, bufsize=1, errors="replace")
    pumps = [threading.Thread(target=_pump, args=(process.stdout, name, out_tail, stdout_lines, echo), daemon=True),
             threading.Thread(target=_pump, args=(process.stderr, name, err_tail, None, echo), daemon=True)]
    for pump in pumps:
        pump.start()
    try:
        run.returncode = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        run.returncode = process.wait()
        run.problems.append(f"timed out after {timeout:.0f} s")
    for pump in pumps:
        pump.join(10)
    run.seconds = time.perf_counter() - start
    run.tail = [*(["--- stdout:"] if out_tail else []), *out_tail, *(["--- stderr:"] if err_tail else []), *err_tail]
    if run.returncode and not run.problems:
        run.problems.append(f"exited with status {run.returncode}")
    return run, stdout_lines


def run_benchmark(script: Path, profile: str, timeout: float, echo: bool = True) -> Run:
    env = dict(os.environ, COURSE_PROFILE=profile, PYTHONUNBUFFERED="1")
    env.pop("COURSE_STRICT", None)
    run, stdout_lines = run_command(script.stem, [sys.executable, str(script)], env, timeout, echo)
    for line in stdout_lines:
        if not line.startswith("RESULT"):
            continue
        result = parse_result(line)
        if isinstance(result, str):
            run.problems.append(result)
            continue
        result.setdefault("name", script.stem)
        result["script"] = script.name
        if result.get("profile", profile) != profile:
            run.problems.append(f"asked for profile {profile!r} but reported {result['profile']!r} "
                                f"(does it read COURSE_PROFILE?)")
        run.results.append(result)
    if not run.results and not run.problems:
        run.problems.append("printed no RESULT line")
    return run


# ------------------------------------------------------------------------------------------ machine
def machine_info() -> dict[str, str]:
    """CPU, cores, memory, GPU, versions and load: what a timing depends on."""
    info: dict[str, str] = {}
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    sys.path.insert(0, str(ROOT))
    from course_utils.config import usable_cores

    usable = usable_cores()
    info["CPU"] = f"{cpu}, {usable} usable cores ({os.cpu_count()} logical)"
    try:
        kib = int(re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
        info["memory"] = f"{kib / 2**20:.0f} GiB"
    except (OSError, AttributeError):
        pass
    try:
        import torch
        import torchvision
        info["GPU"] = (", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
                       if torch.cuda.is_available() else "none (CUDA not available)")
        info["versions"] = (f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'no'}), "
                            f"torchvision {torchvision.__version__}, torch threads {torch.get_num_threads()}")
    except ImportError as exc:
        info["versions"] = f"torch not importable: {exc}"
    info["Python"] = f"{platform.python_version()} on {platform.platform(terse=True)}"
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        info["commit"] = commit or "unknown"
    except (OSError, subprocess.SubprocessError):
        info["commit"] = "unknown"
    return info


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


# ------------------------------------------------------------------------------------------- report
def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if abs(value) < 1e-3 or abs(value) >= 1e4:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def seconds_text(value) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


SHOWN = {"lab", "name", "metric", "value", "target", "seconds", "seconds_to_target", "profile", "script",
         "peer", "peer_seconds", "curve"}


def details(result: dict) -> str:
    extra = {k: v for k, v in result.items() if k not in SHOWN}
    return ", ".join(f"{k} {fmt(v) if isinstance(v, float) else v}" for k, v in extra.items())


def reached(result: dict) -> str:
    target = result.get("target")
    if target is None:
        return "–"
    return "✅ yes" if result["value"] >= target else "❌ no"


def time_to_target(result: dict) -> float | None:
    """``seconds_to_target`` if given, else the first point of ``curve`` at or above ``target``."""
    if result.get("seconds_to_target") is not None:
        return result["seconds_to_target"]
    target = result.get("target")
    if target is None:
        return None
    return next((seconds for seconds, value in result.get("curve") or [] if value >= target), None)


def quality_rows(runs: list[Run]) -> list[dict]:
    """Results without a peer, by lab, in the order the scripts printed them."""
    return sorted((r for run in runs for r in run.results if "peer" not in r), key=lambda r: str(r["lab"]))


def peer_rows(runs: list[Run]) -> list[dict]:
    return sorted((r for run in runs for r in run.results if "peer" in r), key=lambda r: str(r["lab"]))


def plot(runs: list[Run], profile: str, path: Path) -> bool:
    """Time vs quality, one panel per lab, plus the speed ratios against peers. False if nothing to draw."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quality, peers = quality_rows(runs), peer_rows(runs)
    labs = sorted({str(r["lab"]) for r in quality})
    panels = len(labs) + (1 if peers else 0)
    if not panels:
        return False
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    for ax, lab in zip(axes[0], labs):
        rows = [r for r in quality if str(r["lab"]) == lab]
        for n, r in enumerate(rows):
            colour = f"C{n % 10}"
            if r.get("curve"):
                xs, ys = zip(*r["curve"])
                ax.plot(xs, ys, "-", color=colour, alpha=0.6)
            if r.get("seconds") is not None:
                ax.plot(r["seconds"], r["value"], "o", color=colour)
                ax.annotate(f"{r['name']}: {fmt(r['value'])}", (r["seconds"], r["value"]),
                            textcoords="offset points", xytext=(5, -12), fontsize=8)
        for target in sorted({r["target"] for r in rows if r.get("target") is not None}):
            ax.axhline(target, ls="--", color="grey", lw=1)
            ax.annotate(f"target {fmt(target)}", (0.02, target), xycoords=("axes fraction", "data"),
                        textcoords="offset points", xytext=(0, 3), fontsize=8, color="grey")
        metrics = sorted({r["metric"] for r in rows})
        ax.set(title=f"lab {lab}", xlabel="wall time (s)", ylabel=" / ".join(metrics))
        times = [r["seconds"] for r in rows if r.get("seconds") is not None]
        ax.set_xlim(0, 1.3 * max(times, default=1) or 1)              # room for the labels
        figures = [r["value"] for r in rows] + [r["target"] for r in rows if r.get("target") is not None]
        if all(0 <= v <= 1 for v in figures):                         # scores such as mIoU, AP, PQ
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    if peers:
        ax = axes[0][-1]
        names = [f"{r['lab']} {r['name']}" for r in peers]
        ratios = [r["value"] for r in peers]
        ax.barh(names, ratios, color=["tab:green" if v >= 1 else "tab:red" for v in ratios])
        ax.axvline(1, color="black", lw=1)
        ax.set(title="speed vs peer (peer time / ours)", xlabel="ratio (> 1: ours faster)")
        ax.invert_yaxis()
    fig.suptitle(f"benchmarks, profile {profile}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def section(profile: str, runs: list[Run], info: dict, loads: tuple[str, str], tests: Run | None,
            plot_name: str | None, command: str, wall: float) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"## Profile `{profile}`", "", f"Measured {when} with `{command}` ({seconds_text(wall)} in all).", ""]
    out += [f"- **{key}**: {value}" for key, value in info.items()]
    out += [f"- **load average**: before {loads[0]}; after {loads[1]}", ""]
    quality = quality_rows(runs)
    if quality:
        out += ["### Quality per lab", "",
                "| lab | benchmark | metric | reached | target | met | time | time to target | details |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in quality:
            out.append(f"| {r['lab']} | {r['name']} | {r['metric']} | {fmt(r['value'])} | {fmt(r.get('target'))} | "
                       f"{reached(r)} | {seconds_text(r.get('seconds'))} | {seconds_text(time_to_target(r))} | "
                       f"{details(r)} |")
        out.append("")
    peers = peer_rows(runs)
    if peers:
        out += ["### Against peers", "", "Ratio = peer time / our time on the same data and the same start "
                "(> 1: ours is faster).", "",
                "| lab | benchmark | peer | ours | peer time | ratio | details |", "|---|---|---|---|---|---|---|"]
        for r in peers:
            out.append(f"| {r['lab']} | {r['name']} | {r['peer']} | {seconds_text(r.get('seconds'))} | "
                       f"{seconds_text(r.get('peer_seconds'))} | {r['value']:.2f} | {details(r)} |")
        out.append("")
    if plot_name:
        out += [f"![time vs quality, profile {profile}]({plot_name})", ""]
    out += ["### Scripts", "", "| script | status | wall time | results |", "|---|---|---|---|"]
    for run in runs:
        status = "❌ failed: " + "; ".join(run.problems) if run.failed else "ok"
        out.append(f"| `{run.name}.py` | {status.replace('|', '/')} | {seconds_text(run.seconds)} "
                   f"| {len(run.results)} |")
    if tests is not None:
        status = "❌ failed: " + "; ".join(tests.problems) if tests.failed else "passed"
        out.append(f"| test suite (`make test`) | {status} | {seconds_text(tests.seconds)} | – |")
    else:
        out.append("| test suite | not timed (run with `--with-tests`) | – | – |")
    out.append("")
    for run in [*runs, *([tests] if tests else [])]:
        if run.failed:
            out += [f"#### `{run.name}` failed: the last lines of its output", "", "```",
                    *run.tail, "```", ""]
    return "\n".join(out).rstrip() + "\n"


HEADER = """# Benchmark results

Written by `python bench/run_all.py --profile PROFILE` (see the top of that file for the protocol);
one section per profile, each rewritten only when that profile is run again. Timings depend on the
machine and on its load at the time: both are recorded in each section.
"""


def write_report(path: Path, profile: str, body: str) -> None:
    """Replace (or add, in the profiles' order) ``profile``'s section of the report at ``path``; everything
    else in it stays as it is: the other sections and what was written by hand between and after them."""
    text = path.read_text() if path.exists() else HEADER
    block = f"<!-- profile:{profile} -->\n{body}<!-- /profile:{profile} -->\n"
    own = re.compile(rf"<!-- profile:{re.escape(profile)} -->\n.*?<!-- /profile:{re.escape(profile)} -->\n", re.S)
    if own.search(text):
        text = own.sub(lambda _: block, text, count=1)
    else:
        def rank(name: str) -> tuple:
            return (0, PROFILES.index(name), "") if name in PROFILES else (1, 0, name)

        starts = [m.start() for m in re.finditer(r"<!-- profile:(\w+) -->\n", text) if rank(m[1]) > rank(profile)]
        at = min(starts, default=len(text))
        text = text[:at].rstrip("\n") + "\n\n" + block + ("\n" + text[at:] if starts else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="profile passed to every benchmark in COURSE_PROFILE (default: the course's choice: "
                             "$COURSE_PROFILE, else gpu with CUDA, else cpu)")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / "bench", help="where the benchmark scripts are")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="folder for RESULTS.md and the plot")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts (names without .py)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per script (default 3600)")
    parser.add_argument("--with-tests", action="store_true", help="also run and time the whole test suite")
    parser.add_argument("--test-command", default="make test", help="the test suite's command (default: make test)")
    parser.add_argument("--quiet", action="store_true", help="do not echo the scripts' output")
    parser.add_argument("--jobs", type=int, default=1,
                        help="scripts run at once (default 1; more share the machine, so each one's times are "
                             "upper bounds: the report says so)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    if args.profile is None:
        sys.path.insert(0, str(ROOT))
        from course_utils.config import get_device, profile_name
        args.profile = profile_name(get_device())
    given = argv if argv is not None else sys.argv[1:]
    command = "python bench/run_all.py " + " ".join(shlex.quote(a) for a in given)
    scripts = discover(args.bench_dir, args.only)
    started, load_before = time.perf_counter(), load_average()

    def one(script: Path) -> Run:
        print(f"== {script.name} (profile {args.profile})", file=sys.stderr, flush=True)
        run = run_benchmark(script, args.profile, args.timeout, echo=not args.quiet)
        print(f"== {script.name}: {'FAILED: ' + '; '.join(run.problems) if run.failed else 'ok'} "
              f"in {run.seconds:.1f} s, {len(run.results)} results", file=sys.stderr, flush=True)
        return run

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:   # map keeps the scripts' order in the report
        runs = list(pool.map(one, scripts))
    tests = None
    if args.with_tests:
        print(f"== {args.test_command}", file=sys.stderr, flush=True)
        env = dict(os.environ)
        env.pop("COURSE_PROFILE", None)
        tests, _ = run_command("tests", shlex.split(args.test_command), env, args.timeout, echo=not args.quiet)
    loads = (load_before, load_average())
    wall = time.perf_counter() - started

    plot_path = args.out / f"results_{args.profile}.png"
    drawn = plot(runs, args.profile, plot_path)
    info = machine_info()
    if args.jobs > 1:
        info["concurrency"] = (f"up to {args.jobs} scripts at once on this machine: each one's times are upper "
                               f"bounds of what it takes alone")
    body = section(args.profile, runs, info, loads, tests, plot_path.name if drawn else None,
                   command.strip(), wall)
    report = args.out / "RESULTS.md"
    write_report(report, args.profile, body)
    failed = [run.name for run in [*runs, *([tests] if tests else [])] if run.failed]
    print(f"wrote {report}" + (f" and {plot_path}" if drawn else "") +
          (f"; FAILED: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    if not scripts:
        print(f"no benchmark scripts in {args.bench_dir}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
