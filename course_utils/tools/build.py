"""Write ``labs/`` from ``solutions/``: the solutions notebooks are the single source.

In a solution notebook, code between marker lines is the answer::

    def assign(x, centres):
        ### BEGIN SOLUTION
        return torch.cdist(x, centres).argmin(1)
        ### END SOLUTION

``course build`` copies each ``solutions/NN_name.ipynb`` to ``labs/NN_name.ipynb`` with every such
block replaced by a stub (``# YOUR CODE HERE`` + ``raise NotImplementedError()``, at the block's
indentation), markdown answers between ``BEGIN SOLUTION`` / ``END SOLUTION`` lines replaced by a
prompt, outputs and execution counts cleared, and ``metadata.course`` set (lab number, source).
``course build --check`` writes nothing and fails, naming the notebooks, if ``labs/`` is stale.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from course_utils.files import atomic_write

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = "*Write your answer here.*"
NOTEBOOK_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


class BuildError(ValueError):
    pass


def find_root(start: Path | None = None) -> Path:
    """The course folder: the nearest parent of ``start`` (default: cwd) holding ``solutions/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir() and (folder / "course_utils").is_dir():
            return folder
    package_parent = Path(__file__).resolve().parents[2]
    if (package_parent / "solutions").is_dir():
        return package_parent
    raise BuildError(f"no course folder (with solutions/ and course_utils/) at or above {here}")


def strip_solutions(source: str, markdown: bool = False, where: str = "") -> str:
    """Replace each marked block in a cell's source by the stub."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), 1):
        if BEGIN in line:
            if inside:
                raise BuildError(f"{where}: line {number}: '{BEGIN}' inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend([MARKDOWN_STUB] if markdown else [indent + s for s in CODE_STUB])
        elif END in line:
            if not inside:
                raise BuildError(f"{where}: line {number}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise BuildError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def lab_notebook(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student's version of a solution notebook."""
    lab = copy.deepcopy(solution)
    for index, cell in enumerate(lab.cells):
        where = f"{name} cell {index}"
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, where=where)
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source, markdown=True, where=where)
    lab.metadata.pop("widgets", None)
    match = NOTEBOOK_NAME.match(name)
    lab.metadata["course"] = {"lab": match.group(1) if match else None, "source": f"solutions/{name}",
                              "generated": "by `course build`: edit the solution notebook, not this file"}
    return lab


def expected_labs(root: Path) -> dict[Path, str]:
    """What ``labs/`` should hold: path -> notebook text."""
    solutions = sorted((root / "solutions").glob("*.ipynb"))
    result = {}
    for path in solutions:
        if not NOTEBOOK_NAME.match(path.name):
            raise BuildError(f"{path}: solution notebooks are named NN_topic.ipynb (e.g. 01_kmeans.ipynb)")
        notebook = nbformat.read(path, as_version=4)
        result[root / "labs" / path.name] = nbformat.writes(lab_notebook(notebook, path.name)) + "\n"
    return result


def build(root: Path, check: bool = False) -> list[Path]:
    """Write (or, with ``check``, compare) the labs; returns the notebooks that differ."""
    wanted = expected_labs(root)
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    orphans = [p for p in sorted((root / "labs").glob("*.ipynb")) if p not in wanted]
    if not check:
        (root / "labs").mkdir(exist_ok=True)
        for path in stale:
            atomic_write(path, wanted[path])
    return stale + orphans


def execute_solutions(root: Path, names: list[str], timeout: int = 1800) -> None:
    """Run solution notebooks (strict checks) and store their outputs in place."""
    import os

    from course_utils.tools.kernel import NotebookClient

    solutions = root / "solutions"
    paths = [solutions / Path(n).name for n in names] if names else sorted(solutions.glob("*.ipynb"))
    for path in paths:
        if not path.is_file():
            raise BuildError(f"no solution notebook {path}")
    os.environ["COURSE_STRICT"] = "1"
    os.environ.setdefault("COURSE_PROFILE", "cpu")
    for path in paths:
        print(f"executing {path.relative_to(root)} (profile {os.environ['COURSE_PROFILE']}) ...", flush=True)
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}},
                       extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute()  # see tools/slides.py
        atomic_write(path, nbformat.writes(notebook) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course build", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if labs/ differs from what build writes")
    parser.add_argument("--execute", nargs="*", metavar="NOTEBOOK", default=None,
                        help="first run these solution notebooks (all if none named) with strict checks and store "
                             "their outputs (profile: $COURSE_PROFILE, default cpu)")
    parser.add_argument("--root", type=Path, default=None,
                        help="course folder (default: found from the current folder)")
    args = parser.parse_args(argv)
    if args.check and args.execute is not None:
        parser.error("--check and --execute do not go together")
    try:
        root = find_root(args.root)
        if args.execute is not None:
            execute_solutions(root, args.execute)
        changed = build(root, check=args.check)
    except (BuildError, OSError) as err:
        print(f"course build: {err}", file=sys.stderr)
        return 2
    names = ", ".join(str(p.relative_to(root)) for p in changed)
    if args.check:
        if changed:
            print(f"labs are stale (run `course build`): {names}", file=sys.stderr)
            return 1
        print("labs are up to date with solutions")
        return 0
    orphans = [p for p in changed if not (root / "solutions" / p.name).is_file()]
    print(f"wrote {len(changed) - len(orphans)} lab notebook(s)" + (f": {names}" if changed else ""))
    for path in orphans:
        print(f"warning: {path.relative_to(root)} has no solution notebook; delete it or add one", file=sys.stderr)
    return 0
