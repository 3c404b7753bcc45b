"""``course grade``: grade a folder of submitted notebooks, offline and safely, in one command.

    course grade submissions/ --out gradebook --jobs 2

For each notebook (one file per student, or one folder per student; one lab or several):

1. run it in its own Jupyter kernel, in a scratch copy (``sandbox execute``: per-cell and
   whole-notebook time limits, a memory limit, errors do not stop it);
2. call the functions it defined on the exercises' cases drawn with a **hidden seed**, in a fresh
   process (``sandbox run``), recording what they return;
3. judge those results here with the same checks students run (:mod:`~course_utils.tools.grade.replay`):
   grades never come from the notebook's output, and no student code runs in this process.

Writes ``OUT/grades.csv``, ``OUT/grades.json`` and ``OUT/feedback/<student>.md``, each replaced
atomically after every notebook; a re-run reuses the notebooks whose content did not change.
``--shard K/N`` grades one N-th of the class into ``OUT/shard-K-of-N/``, and ``course grade merge``
joins the shards (:mod:`course_utils.tools.grade.shards`).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from course_utils.exercises import known_labs
from course_utils.tools.grade import isolation, shards, submissions
from course_utils.tools.grade.gradebook import (
    DEFAULT_SEED,
    LMS_FILE,
    Entry,
    Settings,
    number,
    previous_entries,
    write_gradebook,
)
from course_utils.tools.grade.submissions import (
    GradeError,
    Submission,
    find_submissions,
)
from course_utils.tools.grade.supervisor import Clock, timing_line

SEED_ENV = "COURSE_GRADE_SEED"

#: seconds per cell and per notebook, by the profile notebooks are graded in (a cpu-profile training
#: cell of lab 02 runs for minutes)
TIME_LIMITS = {"ci": (120.0, 900.0), "cpu": (600.0, 1800.0), "gpu": (600.0, 1800.0)}


# ---- the command ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="course grade", description="Grade submitted notebooks offline, each in "
                                     "its own kernel, on hidden test cases; write a gradebook and feedback. "
                                     "`course grade merge --help`: merging the gradebooks of --shard runs.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="notebooks and/or folders of notebooks")
    parser.add_argument("--lab", metavar="NN", help="grade as this lab (default: metadata.course.lab of each notebook)")
    parser.add_argument("--out", type=Path, default=Path("gradebook"), metavar="DIR",
                        help="output folder (default: gradebook)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="seconds for a whole notebook (default by profile: ci 900, cpu and gpu 1800)")
    parser.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                        help="seconds per cell (default by profile: ci 120, cpu and gpu 600)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    parser.add_argument("--force", action="store_true", help="regrade every notebook, even unchanged ones")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help=f"hidden seed of the random cases (default: ${SEED_ENV}, else a fixed value that is "
                             "in the public source code: set your own)")
    parser.add_argument("--memory", type=float, default=4.0, metavar="GIB",
                        help="GiB of memory per process (default 4; 0: no limit)")
    parser.add_argument("--profile", default="ci", choices=("ci", "cpu", "gpu"),
                        help="COURSE_PROFILE the notebooks run with (default ci: fastest)")
    parser.add_argument("--disk", type=float, default=2.0, metavar="GIB",
                        help="GiB each notebook may write in its scratch folder (default 2)")
    parser.add_argument("--processes", type=int, default=512, metavar="N",
                        help="processes and threads each notebook may run at once (default 512)")
    parser.add_argument("--profile-time", action="store_true",
                        help="print where each notebook's seconds went (kernel start, cells, grading the "
                             "functions, judging), and the mean over the run; grades.json keeps it either way")
    parser.add_argument("--shard", type=shards_option, default=None, metavar="K/N",
                        help="grade only shard K of N (K from 0: a SLURM array task id), chosen by a hash of the "
                             "student's name, into OUT/shard-K-of-N; then `course grade merge OUT`")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade where no sandbox can be made (not Linux, not root): the notebooks then run as "
                             "you and can read and write all you can. Only for notebooks you trust")
    args = parser.parse_args(argv)
    for name in ("timeout", "cell_timeout", "jobs", "disk", "processes"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def shards_option(text: str) -> shards.Shard:
    try:
        return shards.Shard.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def course_code() -> dict[str, str]:
    """The course's version and a digest of its code (``course_utils/**.py``): shards graded by
    different code are not merged."""
    import course_utils

    root = Path(course_utils.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return {"version": course_utils.__version__, "code": digest.hexdigest()[:16]}


def run_header(settings: Settings, sandbox: str, paths: list[Path], shard: shards.Shard | None,
               finished: bool) -> dict:
    """``grades.json``'s keys besides the seed and the submissions: how the run graded, and whether it
    finished (what ``course grade merge`` checks)."""
    keep = ("lab", "profile", "timeout", "cell_timeout", "memory_gib", "disk_gib", "processes", "sandbox")
    header = {"sandbox": sandbox, "course": course_code(), "settings": {k: getattr(settings, k) for k in keep},
              "sources": sorted(str(p.resolve()) for p in paths), "finished": finished}
    if shard is not None:
        header["shard"] = {"index": shard.index, "count": shard.count}
    return header


def settings_from(args: argparse.Namespace) -> Settings:
    seed = args.seed
    if seed is None:
        text = os.environ.get(SEED_ENV, "").strip()
        if text and not text.lstrip("-").isdigit():
            raise GradeError(f"${SEED_ENV} must be an integer, got {text!r}")
        seed = int(text) if text else DEFAULT_SEED
    lab = None
    if args.lab is not None:
        lab = args.lab.strip().zfill(2)
        if lab not in known_labs():
            raise GradeError(f"unknown lab {args.lab!r}; labs with exercises: {', '.join(known_labs())}")
    cell, notebook = TIME_LIMITS[args.profile]
    return Settings(seed=seed, lab=lab, cell_timeout=args.cell_timeout or cell, timeout=args.timeout or notebook,
                    memory_gib=args.memory, profile=args.profile, jobs=args.jobs, disk_gib=args.disk,
                    processes=args.processes, sandbox=not args.no_sandbox)


def sandbox_settings(settings: Settings, hidden: list[Path]) -> tuple[Settings, str]:
    """``settings`` with the sandboxes' view (none of ``hidden`` in it), and what the gradebook says
    of the isolation; refuses (GradeError) where there is none and ``--no-sandbox`` was not given."""
    support = isolation.support()
    if not settings.sandbox:
        return settings, f"none (--no-sandbox; this machine: {support.how})"
    if not support.isolated:
        raise GradeError(f"this machine cannot sandbox the notebooks: {support.how}. Without a sandbox a notebook "
                         "can read its classmates' notebooks and rewrite the gradebook; if you trust every "
                         "notebook, grade with --no-sandbox")
    try:
        view = isolation.python_paths(hidden)
    except ValueError as err:
        raise GradeError(str(err)) from None
    return replace(settings, view=tuple(view)), f"{support.how}; {support.cgroups}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:  # (a folder named merge: ./merge)
        return shards.main(argv[1:])
    args = parse_args(argv)
    try:
        settings = settings_from(args)
        if args.out.exists() and not args.out.is_dir():
            raise GradeError(f"--out {args.out} is a file, not a folder")
        subs = find_submissions(args.paths, skip=args.out.resolve())
        settings, sandbox = sandbox_settings(settings, [*args.paths, args.out])
        out = args.out
        if args.shard is not None:
            subs = [s for s in subs if args.shard.holds(s.student)]
            out = args.out / args.shard.folder
    except GradeError as err:
        print(f"course grade: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from course_utils.tools.grade.supervisor import Pool, close_zygote, resume, stop_all

    resume()
    if args.seed is None and not os.environ.get(SEED_ENV, "").strip():
        print(f"course grade: warning: no --seed and no ${SEED_ENV}: the hidden cases use the default seed "
              f"{DEFAULT_SEED}, which is in the course's public source code. Set your own (and change it each "
              "term) so that nobody can precompute the cases.", file=sys.stderr)
    if not settings.sandbox:
        print("course grade: warning: --no-sandbox: the notebooks run as you, without isolation: they can read "
              "and write whatever you can (other submissions, this gradebook) and use the network.", file=sys.stderr)

    previous = {} if args.force else previous_entries(out)
    todo: list[Submission] = []
    for sub in subs:
        sub.data = sub.path.read_bytes()
        sub.sha256 = hashlib.sha256(sub.data).hexdigest()
        old = previous.get(str(sub.path.resolve()))
        if old and old.sha256 == sub.sha256 and old.seed == settings.seed and old.lab_option == settings.lab \
                and old.student == sub.student and old.sandbox == settings.sandbox:
            sub.entry = old
        else:
            todo.append(sub)
    out.mkdir(parents=True, exist_ok=True)
    header = functools.partial(run_header, settings, sandbox, args.paths, args.shard)
    lock = threading.Lock()
    bar = tqdm(total=len(todo), unit="notebook", desc="grading", file=sys.stderr, dynamic_ncols=True)
    pool = ThreadPoolExecutor(max_workers=settings.jobs)
    plans = [submissions.plan(sub, settings) for sub in todo]
    warm = Pool(settings, [(lab, nb) if nb is not None and lab and not problem else None
                           for nb, lab, problem in plans])

    def grade(index: int, sub: Submission) -> Entry:  # the notebooks are taken in order: warm ones first
        return submissions.grade_safely(sub, settings, warm.take(index))

    try:
        futures = {pool.submit(grade, i, sub): sub for i, sub in enumerate(todo)}
        for future in as_completed(futures):
            done = futures[future]
            done.entry = entry = future.result()
            with lock:
                write_gradebook(out, [s.entry for s in subs if s.entry], settings, header(finished=False))
            bar.write(summary_line(entry), file=sys.stderr)
            if args.profile_time and entry.timing:
                bar.write(f"  {timing_line(entry.timing)}", file=sys.stderr)
            bar.update()
    except BaseException:
        stop_all()  # Ctrl-C: kill the kernels and sandboxes now; what is written stays valid
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
        warm.close()
        close_zygote()
    pool.shutdown()
    entries = [s.entry for s in subs if s.entry]
    write_gradebook(out, entries, settings, header(finished=True))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(subs)} notebook(s) ({len(subs) - len(todo)} unchanged, reused): {summary}. "
          f"Wrote {out / 'grades.csv'}, {out / LMS_FILE}, {out / 'grades.json'} and {out / 'feedback'}/")
    if args.shard is not None:
        print(f"Shard {args.shard.index}/{args.shard.count}: once every shard is done, `course grade merge "
              f"{args.out}` writes the class's gradebook.")
    timed = [s.entry.timing for s in todo if s.entry and s.entry.timing]
    if args.profile_time and timed:
        print(f"Time per notebook, mean of {len(timed)}: {timing_line(mean_timing(timed))}")
    print(f"Sandbox: {sandbox}." if settings.sandbox else "Graded WITHOUT a sandbox (--no-sandbox).")
    unknown = [e.path for e in entries if e.status == "unknown_lab"]
    if unknown:
        print(f"course grade: cannot tell the lab of {len(unknown)} notebook(s) ({', '.join(unknown[:3])}"
              f"{', ...' if len(unknown) > 3 else ''}): grade them again with --lab NN.", file=sys.stderr)
    return 0


def mean_timing(timings: list[dict]) -> dict:
    """The phases' mean over several notebooks' ``Entry.timing`` (a phase a notebook lacks counts 0)."""
    keys = [k for k in ("total", *Clock.PHASES) if any(k in t for t in timings)]
    return {k: sum(float(t.get(k, 0.0)) for t in timings) / len(timings) for k in keys}


def summary_line(entry: Entry) -> str:
    """``alice (lab 01): 7 / 7, graded in 23 s`` — printed as each notebook finishes."""
    lab = f"lab {entry.lab}" if entry.lab else "lab ?"
    if not entry.graded:
        return f"{entry.student} ({lab}): not graded, {entry.status.replace('_', ' ')}: {entry.reason}"
    took = f" in {entry.seconds:.0f} s" if entry.seconds is not None else ""
    return f"{entry.student} ({lab}): {number(entry.total)} / {number(entry.out_of)}, {entry.status}{took}"
