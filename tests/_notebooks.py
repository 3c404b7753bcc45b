"""Test helper: submissions built from lab 01 and its solution, edited with nbformat (the cheapest lab)."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION, LAB = ROOT / "solutions" / "01_kmeans.ipynb", ROOT / "labs" / "01_kmeans.ipynb"


def exercise_part(path: Path = SOLUTION) -> nbformat.NotebookNode:
    """The notebook up to the last fallback cell (the exercises), marked as lab 01."""
    nb = nbformat.read(path, as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if "mean_iou = fallback" in c.source)
    nb.cells = nb.cells[: last + 1]
    nb.metadata["course"] = {"lab": "01"}
    return nb


def cell_index(nb: nbformat.NotebookNode, start: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(start))


def replace(nb: nbformat.NotebookNode, start: str, source: str) -> None:
    nb.cells[cell_index(nb, start)].source = source


def insert_after(nb: nbformat.NotebookNode, start: str, source: str) -> None:
    nb.cells.insert(cell_index(nb, start) + 1, nbformat.v4.new_code_cell(source))


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
