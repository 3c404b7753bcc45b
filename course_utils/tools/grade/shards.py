"""Grading a class on many machines: ``course grade --shard K/N`` grades one N-th of the submissions,
and ``course grade merge`` joins the N shard gradebooks into the one a single run would have written.

    course grade submissions/ --out gradebook --shard 0/3     # on three machines (a SLURM job array:
    course grade submissions/ --out gradebook --shard 1/3     # one task each), each into its own
    course grade submissions/ --out gradebook --shard 2/3     # folder gradebook/shard-K-of-3/
    course grade merge gradebook                              # then gradebook/grades.csv, ...

**Which shard grades what.** A submission belongs to shard ``sha256(student) mod N`` (the first 8 bytes
of the digest of the student's name, as the gradebook spells it, read as a big-endian integer). It is
the *student* that is hashed, not the file: all of a student's notebooks land in one shard, so the
feedback file names (``alice-lab01.md`` when alice handed in several) and the Moodle export's "best
submission" are the same as in one run. The assignment depends on nothing else: adding or removing a
student moves no other student to another shard, and every submission is in exactly one shard.

**What merge checks.** Each folder's ``grades.json`` must come from a finished ``--shard`` run; all of
them of the same N, from the same submission folders, with the same seed, lab, profile, limits and
course code; every shard 0..N-1 exactly once; no student in two shards, and every student in the
shard their name hashes to. Anything else is refused with what differs, and nothing is written.
Merge only reads the shard folders and writes ``grades.csv``, ``grades.json``, ``grades_moodle.csv``
and ``feedback/*.md`` (atomically) in its output folder: it never writes a notebook.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_utils.tools.grade.gradebook import (
    LMS_FILE,
    Entry,
    Settings,
    write_gradebook,
)

SHARD_FOLDER = re.compile(r"^shard-(\d+)-of-(\d+)$")
#: the keys of ``grades.json``'s header that every shard of one class must share
SAME = ("seed", "course", "settings", "sources")


class MergeError(ValueError):
    """Shards that cannot be merged: reported in one line, nothing written."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``--shard index/count``; index from 0, as SLURM's array task ids)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` (0 <= K < N); ValueError saying what was expected otherwise."""
        found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not found:
            raise ValueError(f"--shard expects K/N (shard K of N, K from 0 to N-1, e.g. 0/4), got {text!r}")
        index, count = int(found.group(1)), int(found.group(2))
        if count < 1 or index >= count:
            raise ValueError(f"--shard {text}: K must be between 0 and N-1 (N >= 1), got K={index}, N={count}")
        return cls(index, count)

    @property
    def folder(self) -> str:
        """Its gradebook's folder under ``--out``: ``shard-K-of-N``."""
        return f"shard-{self.index}-of-{self.count}"

    def holds(self, student: str) -> bool:
        return shard_of(student, self.count) == self.index


def shard_of(student: str, count: int) -> int:
    """The shard (0..count-1) a student's submissions belong to (see the module docstring)."""
    if count < 1:
        raise ValueError(f"the number of shards must be at least 1, got {count}")
    return int.from_bytes(hashlib.sha256(student.encode("utf-8")).digest()[:8], "big") % count


# ---- merge ---------------------------------------------------------------------------------------
@dataclass
class _Graded:
    folder: Path
    header: dict[str, Any]
    entries: list[Entry]
    shard: Shard


def _shard_folders(paths: list[Path]) -> list[Path]:
    """The shard gradebooks named: a shard folder itself, or a folder holding ``shard-K-of-N`` folders."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise MergeError(f"no such folder: {path}")
        if (path / "grades.json").is_file() and SHARD_FOLDER.match(path.name):
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_dir() and SHARD_FOLDER.match(p.name))
        if not inside and (path / "grades.json").is_file():
            found.append(path)  # a gradebook in a folder of another name: its header says if it is a shard
        elif not inside:
            raise MergeError(f"{path} holds no shard gradebook (grades.json, or shard-K-of-N folders from "
                             "`course grade --shard K/N`)")
        found += inside
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def _read(folder: Path) -> _Graded:
    try:
        header = json.loads((folder / "grades.json").read_text(encoding="utf-8"))
        entries = [Entry.from_json(e) for e in header.pop("submissions")]
    except FileNotFoundError:
        raise MergeError(f"{folder} has no grades.json: that shard has not run yet") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise MergeError(f"{folder / 'grades.json'} is not a gradebook ({type(err).__name__}: {err})") from None
    shard = header.get("shard")
    if not isinstance(shard, dict):
        raise MergeError(f"{folder} is not a shard: it was graded without --shard K/N")
    if not header.get("finished"):
        raise MergeError(f"shard {shard.get('index')}/{shard.get('count')} ({folder}) did not finish (interrupted, "
                         "timed out or still running): run it again, it regrades only what is missing")
    return _Graded(folder, header, entries, Shard(int(shard["index"]), int(shard["count"])))


def check_shards(shards: list[_Graded]) -> None:
    """Raise MergeError unless ``shards`` are all of one class's N shards (see the module docstring)."""
    if not shards:
        raise MergeError("no shards to merge")
    counts = sorted({s.shard.count for s in shards})
    if len(counts) > 1:
        raise MergeError(f"shards of different splits: "
                         f"{', '.join(f'{s.shard.index}/{s.shard.count} ({s.folder})' for s in shards)}")
    count = counts[0]
    first = shards[0]
    for key in SAME:
        for s in shards[1:]:
            if s.header.get(key) != first.header.get(key):
                raise MergeError(f"shards graded with different {key}: shard {first.shard.index} has "
                                 f"{json.dumps(first.header.get(key))}, shard {s.shard.index} has "
                                 f"{json.dumps(s.header.get(key))}")
    by_index: dict[int, Path] = {}
    for s in shards:
        if s.shard.index in by_index:
            raise MergeError(f"shard {s.shard.index}/{count} given twice: {by_index[s.shard.index]} and {s.folder}")
        by_index[s.shard.index] = s.folder
    missing = [k for k in range(count) if k not in by_index]
    if missing:
        raise MergeError(f"missing shard(s) {', '.join(f'{k}/{count}' for k in missing)} (have "
                         f"{', '.join(str(k) for k in sorted(by_index))}): grade them with --shard K/{count} first")
    seen: dict[str, int] = {}
    for s in shards:
        for e in s.entries:
            key = e.file or e.path
            if key in seen:
                raise MergeError(f"duplicated submission {e.path} (student {e.student}): in shards {seen[key]} and "
                                 f"{s.shard.index}")
            seen[key] = s.shard.index
    for s in shards:
        for e in s.entries:
            home = shard_of(e.student, count)
            if home != s.shard.index:
                raise MergeError(f"student {e.student} is in shard {s.shard.index} but belongs in shard {home} of "
                                 f"{count}: were the shards graded from different submissions?")


def merge(paths: list[Path], out: Path) -> tuple[int, int]:
    """Merge the shard gradebooks under ``paths`` into ``out``; (shards, submissions)."""
    folders = _shard_folders(paths)
    if out.exists() and not out.is_dir():
        raise MergeError(f"--out {out} is a file, not a folder")
    for folder in folders:
        if out.resolve() == folder or out.resolve().is_relative_to(folder):
            raise MergeError(f"--out {out} is inside shard folder {folder}: write the merged gradebook elsewhere")
    shards = [_read(f) for f in folders]
    check_shards(shards)
    header = {k: v for k, v in shards[0].header.items() if k != "shard"}
    sandboxes = list(dict.fromkeys(str(s.header.get("sandbox", "")) for s in shards))
    if len(sandboxes) > 1:
        header["sandbox"] = " | ".join(sandboxes)  # machines with different isolation (all sandboxed or none)
    entries = [e for s in sorted(shards, key=lambda s: s.shard.index) for e in s.entries]
    write_gradebook(out, entries, Settings(seed=int(header["seed"])), {k: v for k, v in header.items() if k != "seed"})
    return len(shards), len(entries)


def main(argv: list[str]) -> int:
    """``course grade merge SHARDS... [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="course grade merge", description="Merge the gradebooks of `course grade "
                                     "--shard K/N` runs into one (the files one run would have written).")
    parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD",
                        help="shard folders (shard-K-of-N), or folders holding them")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where the merged gradebook goes (default: the one folder given, "
                             "when it holds the shards)")
    args = parser.parse_args(argv)
    out = args.out
    if out is None:
        if len(args.shards) != 1 or SHARD_FOLDER.match(args.shards[0].name):
            parser.error("--out DIR is needed unless one folder holding the shard-K-of-N folders is given")
        out = args.shards[0]
    try:
        n_shards, n_entries = merge(args.shards, out)
    except MergeError as err:
        print(f"course grade merge: {err}", file=sys.stderr)
        return 2
    print(f"Merged {n_shards} shard(s), {n_entries} notebook(s): wrote {out / 'grades.csv'}, {out / LMS_FILE}, "
          f"{out / 'grades.json'} and {out / 'feedback'}/")
    return 0
