"""Drawing and printing for labs 03 and 04: small matrices, overlap patterns, filter copies.

- :func:`format_matrix` — a small tensor (or table of strings) as aligned text, for printed outputs;
- :func:`symbolic_product` — ``X @ v`` or ``X.T @ v`` written out in letters (``ay+bz``), from a matrix of
  kernel tap numbers (0 = empty, ``j`` = the ``j``-th kernel entry);
- :func:`show_matrix` — a matrix as an image (zeros white, shared weights in the same colour);
- :func:`overlap_counts` / :func:`show_overlap` — how many filter copies of a transposed convolution land on
  each output pixel (the cause of checkerboard artifacts);
- :func:`draw_transposed_conv_1d` — a 1-D transposed convolution as weighted copies of the filter, summed;
- :func:`show_transposed_conv_pattern` and :func:`overlap_kind` — both pictures for one (kernel, stride,
  padding), and a sentence on the overlap (lab 03's widget).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

from course_utils import validation
from course_utils.ops import upsampling


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if decimals > 0:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_matrix(matrix: torch.Tensor | Sequence[Sequence[str]], decimals: int = 2) -> str:
    """Rows of right-aligned columns; numbers rounded to ``decimals`` (trailing zeros dropped, no ``-0``)."""
    if isinstance(matrix, torch.Tensor):
        validation.tensor("matrix", matrix, ndim=(1, 2))
        values = matrix.detach().cpu().double()
        values = values[None] if values.ndim == 1 else values
        cells = [[_number(v, decimals) for v in row.tolist()] for row in values]
    else:
        cells = [[str(v) for v in row] for row in matrix]
    if not cells:
        return "[]"
    width = max(len(c) for row in cells for c in row)
    return "\n".join("[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells)


def symbolic_product(codes: torch.Tensor, kernel: Sequence[str], vector: Sequence[str],
                     transpose: bool = False) -> list[str]:
    """Each entry of ``X @ v`` (or ``X.T @ v``) as a sum of products of letters.

    Args:
        codes: a matrix of kernel tap numbers: 0 = structural zero, ``j`` = ``kernel[j - 1]``. Build it with
            the numeric matrix of the kernel ``[1, 2, ..., k]``.
        kernel: the names of the kernel entries, e.g. ``["x", "y", "z"]``.
        vector: the names of the vector entries; ``"0"`` marks a zero (padding).
    Returns:
        one string per entry, e.g. ``"ay+bz"``; ``"0"`` when nothing contributes.
    """
    validation.tensor("codes", codes, ndim=2)
    m = codes.detach().cpu().round().long()
    m = m.T if transpose else m
    if m.shape[1] != len(vector):
        raise ValueError(f"vector has {len(vector)} names but the matrix has {m.shape[1]} columns")
    if m.numel() and (m.min() < 0 or m.max() > len(kernel)):
        raise ValueError(f"codes must be in [0, {len(kernel)}] (0 = zero, j = kernel[j-1]), "
                         f"got values in [{m.min().item()}, {m.max().item()}]")
    out = []
    for row in m.tolist():
        terms = [vector[j] + kernel[code - 1] for j, code in enumerate(row) if code and vector[j] != "0"]
        out.append("+".join(terms) if terms else "0")
    return out


def show_matrix(matrix: torch.Tensor, ax: plt.Axes | None = None, title: str | None = None,
                labels: Sequence[str] | None = None, grid: bool | None = None,
                blocks: tuple[int, int] | None = None) -> plt.Axes:
    """Draw a matrix: zeros white, each distinct non-zero value its own colour (shared weights match).

    ``labels`` (one name per distinct non-zero value, in increasing order) are written in the cells of a
    small matrix; large matrices are drawn without text so their sparsity pattern shows. ``blocks =
    (rows, cols)`` draws lines between blocks of that size (e.g. one block per channel pair).
    """
    validation.tensor("matrix", matrix, ndim=2)
    values = matrix.detach().cpu().double().numpy()
    distinct = np.unique(values[values != 0])
    index = np.zeros(values.shape, dtype=int)
    for i, v in enumerate(distinct, 1):
        index[values == v] = i
    colours = ["white"] + [plt.get_cmap("tab20")(i % 20) for i in range(len(distinct))]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(12, 1 + 0.45 * values.shape[1]), min(8, 1 + 0.45 * values.shape[0])))
    ax.imshow(index, cmap=ListedColormap(colours), vmin=-0.5, vmax=len(distinct) + 0.5, interpolation="nearest")
    small = max(values.shape) <= 16
    if grid if grid is not None else small:
        ax.set_xticks(np.arange(-0.5, values.shape[1]), minor=True)
        ax.set_yticks(np.arange(-0.5, values.shape[0]), minor=True)
        ax.grid(which="minor", color="0.75", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
    if small:
        names = list(labels) if labels is not None else [_number(v, 2) for v in distinct]
        if len(names) != len(distinct):
            raise ValueError(f"labels must name the {len(distinct)} distinct non-zero values, got {len(names)}")
        for (r, c), i in np.ndenumerate(index):
            ax.text(c, r, names[i - 1] if i else "0", ha="center", va="center", fontsize=9,
                    color="black" if i else "0.7")
    if blocks is not None:
        rows, cols = (validation.integer("blocks[0]", blocks[0], 1), validation.integer("blocks[1]", blocks[1], 1))
        for r in range(rows, values.shape[0], rows):
            ax.axhline(r - 0.5, color="black", linewidth=1)
        for c in range(cols, values.shape[1], cols):
            ax.axvline(c - 0.5, color="black", linewidth=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{values.shape[1]} columns")
    ax.set_ylabel(f"{values.shape[0]} rows")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def overlap_counts(n: int | tuple[int, int], kernel_size: int, stride: int, padding: int = 0,
                   output_padding: int = 0) -> torch.Tensor:
    """For each output pixel, how many copies of the filter of a transposed convolution cover it.

    That is the transposed convolution of an all-ones ``n x n`` input with an all-ones kernel. Uneven
    counts (kernel size not divisible by the stride) are where checkerboard artifacts come from.
    """
    size = (n, n) if isinstance(n, int) else validation.size_pair("n", n)
    ones = torch.ones(1, 1, *size, dtype=torch.float64)
    kernel = torch.ones(1, 1, kernel_size, kernel_size, dtype=torch.float64)
    out = upsampling.conv_transpose2d(ones, kernel, None, stride, padding, output_padding)
    return out[0, 0].round().long()


def show_overlap(counts: torch.Tensor, ax: plt.Axes | None = None, title: str | None = None,
                 vmax: int | None = None) -> plt.Axes:
    """Heatmap of overlap counts, with the count written in each cell when it fits."""
    validation.tensor("counts", counts, ndim=2)
    values = counts.detach().cpu().numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(values, cmap="viridis", vmin=0, vmax=vmax or max(1, int(values.max())), interpolation="nearest")
    if max(values.shape) <= 16:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, str(int(v)), ha="center", va="center", fontsize=8,
                    color="white" if v < 0.6 * (vmax or max(1, values.max())) else "black")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_transposed_conv_1d(a: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0,
                            ax: plt.Axes | None = None, title: str | None = None) -> torch.Tensor:
    """Draw ``conv_transpose1d(a, weight)`` as rows of weighted filter copies and their sum.

    Row ``i`` is ``a[i] * weight`` placed at output position ``i * stride``; the bottom row is the sum.
    Columns trimmed by ``padding`` are hatched. Returns the trimmed result (what ``F.conv_transpose1d``
    gives with ``output_padding=0``).
    """
    validation.tensor("a", a, ndim=1, dtypes="float")
    validation.tensor("weight", weight, ndim=1, dtypes="float")
    m, k = a.shape[0], weight.shape[0]
    size = upsampling.conv_transpose_output_size(m, k, stride, padding)
    full_len = (m - 1) * stride + k
    rows = torch.zeros(m + 1, full_len, dtype=torch.float64)
    for i in range(m):
        rows[i, i * stride:i * stride + k] = a[i].double() * weight.double()
    rows[m] = rows[:m].sum(0)
    used = torch.zeros(m, full_len, dtype=torch.bool)
    for i in range(m):
        used[i, i * stride:i * stride + k] = True
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * full_len + 1.5, 0.5 * (m + 1) + 1))
    limit = float(rows.abs().max()) or 1.0
    shown = np.ma.masked_where(np.vstack([~used.numpy(), np.zeros((1, full_len), bool)]), rows.numpy())
    ax.imshow(shown, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    for r in range(m + 1):
        for c in range(full_len):
            if r == m or used[r, c]:
                dark = abs(float(rows[r, c])) > 0.6 * limit
                ax.text(c, r, _number(float(rows[r, c]), 2), ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    ax.axhline(m - 0.5, color="black", linewidth=1.5)
    for c in list(range(padding)) + list(range(full_len - padding, full_len)):
        ax.add_patch(plt.Rectangle((c - 0.5, -0.5), 1, m + 1, fill=False, hatch="//", edgecolor="0.5", linewidth=0))
    ax.set_yticks(range(m + 1), [f"{_number(float(v), 2)} × w" for v in a] + ["sum"])
    ax.set_xticks(range(full_len))
    ax.set_xlabel("output position (hatched: trimmed by padding)" if padding else "output position")
    ax.set_title(title or f"transposed convolution, stride {stride}: output length {size}", fontsize=10)
    return rows[m, padding:padding + size].to(a.dtype)


def overlap_kind(kernel_size: int, stride: int) -> str:
    """One sentence: do the filter copies of a transposed convolution leave gaps, overlap evenly, or unevenly?"""
    validation.integer("kernel_size", kernel_size, 1)
    validation.integer("stride", stride, 1)
    if kernel_size < stride:
        return "gaps: stride > kernel, some output pixels get no copy at all"
    if kernel_size % stride == 0:
        return "even overlap inside: kernel size divisible by the stride"
    return "uneven overlap: checkerboard risk"


def show_transposed_conv_pattern(n: int, kernel_size: int, stride: int, padding: int = 0) -> plt.Figure:
    """Overlap counts of an ``n x n`` input (left) and the 1-D copies of an all-ones filter (right)."""
    counts = overlap_counts(n, kernel_size, stride, padding)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 2]})
    show_overlap(counts, axes[0], f"overlap counts, {counts.shape[0]} x {counts.shape[1]}")
    draw_transposed_conv_1d(torch.ones(n), torch.ones(kernel_size), stride, padding, ax=axes[1])
    fig.tight_layout()
    return fig
