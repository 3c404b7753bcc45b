"""Export the slide decks in ``slides/`` to offline reveal.js HTML: ``course slides [--out DIR]``.

A deck is a notebook ``slides/NN_topic.ipynb`` whose cells carry the standard slideshow metadata
(``metadata.slideshow.slide_type`` = ``slide``, ``subslide``, ``fragment``, ``skip`` or ``notes``). The
instructor presents it live in JupyterLab (jupyterlab-slideshow); this module writes the same deck as a
self-contained HTML folder that opens from disk with no network:

1. fetch the JavaScript it needs from the npm registry by name and version (``npm pack``), once, into
   an ignored cache (``.cache/slides-assets/``; see :data:`ASSETS`);
2. execute each deck with nbclient (``ci`` profile unless ``--profile`` says otherwise), so figures and
   the saved widget state are in the HTML;
3. convert it with nbconvert's ``SlidesExporter`` (theme ``white``, every URL pointing into
   ``OUT/assets/``, mermaid dropped by ``slides_template/``); a code cell whose input is collapsed in
   JupyterLab (``metadata.jupyter.source_hidden``) shows only its output;
4. write ``OUT/index.html`` linking the decks. Speaker notes (``notes`` cells) open with the ``s`` key.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

import nbformat

from course_utils.config import PROFILES
from course_utils.tools.build import BuildError, find_root

TEMPLATE_DIR = Path(__file__).resolve().parent / "slides_template"


class SlidesError(ValueError):
    """Bad input to the export (a folder that is a file, a missing deck, npm missing, ...)."""


@dataclass(frozen=True)
class NpmAsset:
    """One npm package: what to fetch, where it goes under ``assets/``, and which files to ship."""

    name: str
    version: str
    folder: str               # under OUT/assets/
    files: tuple[str, ...]    # paths inside the package (files or folders) copied to the export, with package.json
    entry: str                # the file the HTML loads, relative to the package


ASSETS: tuple[NpmAsset, ...] = (
    NpmAsset("reveal.js", "4.6.1", "reveal.js", ("dist", "plugin", "LICENSE"), "dist/reveal.js"),
    NpmAsset("requirejs", "2.3.8", "requirejs", ("require.js",), "require.js"),
    NpmAsset("jquery", "2.2.4", "jquery", ("dist/jquery.min.js", "LICENSE.txt"), "dist/jquery.min.js"),
    NpmAsset("mathjax", "2.7.9", "mathjax",
             ("MathJax.js", "LICENSE", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/local",
              "extensions", "jax/element", "jax/input/TeX", "jax/output/CommonHTML",
              "fonts/HTML-CSS/TeX/woff", "fonts/HTML-CSS/TeX/otf", "localization/en"),
             "MathJax.js?config=TeX-AMS_CHTML-full,Safe"),
    NpmAsset("@jupyter-widgets/html-manager", "1.0.15", "html-manager", ("dist",), "dist/embed-amd.js"),
)


def cache_dir(root: Path) -> Path:
    """Where the unpacked npm packages live: ``COURSE_SLIDES_CACHE`` or ``ROOT/.cache/slides-assets``."""
    env = os.environ.get("COURSE_SLIDES_CACHE", "").strip()
    return Path(env) if env else root / ".cache" / "slides-assets"


def _unpacked(cache: Path, asset: NpmAsset) -> Path:
    return cache / f"{asset.name.replace('/', '__')}@{asset.version}"


def assets_cached(cache: Path) -> bool:
    """Whether every :data:`ASSETS` package is already unpacked in ``cache`` (then npm is not needed)."""
    return all((_unpacked(cache, asset) / ".complete").exists() for asset in ASSETS)


def fetch_assets(cache: Path, npm: str = "npm") -> dict[str, Path]:
    """Unpack every :data:`ASSETS` package into ``cache`` (``npm pack``, only those missing).

    Returns ``{package name: unpacked folder}``. Raises :class:`SlidesError` if npm is needed but missing.
    """
    found = {}
    for asset in ASSETS:
        target = _unpacked(cache, asset)
        if not (target / ".complete").exists():
            _npm_pack(asset, target, npm)
        found[asset.name] = target
    return found


def _npm_pack(asset: NpmAsset, target: Path, npm: str) -> None:
    exe = shutil.which(npm)
    if exe is None:
        raise SlidesError(f"{npm!r} is not on PATH: the first export fetches reveal.js, MathJax, ... from the npm "
                          "registry with `npm pack`. Install Node.js (with npm), e.g. `apt-get install npm`.")
    spec = f"{asset.name}@{asset.version}"
    print(f"fetching {spec} from the npm registry (npm pack)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([exe, "pack", spec, "--json", "--silent"], cwd=tmp, capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or len(tarballs) != 1:
            raise SlidesError(f"`npm pack {spec}` failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
        if target.exists():
            shutil.rmtree(target)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with tarfile.open(tarballs[0]) as tar:
            if hasattr(tarfile, "data_filter"):   # refuses links and paths outside `staging`
                tar.extractall(staging, filter="data")
            else:                                  # Python < 3.10.12; the tarball is the registry's, by version
                tar.extractall(staging)
        tops = list(staging.iterdir())             # npm tarballs hold one top folder, "package/"
        if len(tops) != 1 or not tops[0].is_dir():
            raise SlidesError(f"`npm pack {spec}` gave an unexpected tarball (top level: {[t.name for t in tops]})")
        tops[0].rename(target)
        staging.rmdir()
    (target / ".complete").write_text(spec + "\n")


def copy_assets(unpacked: dict[str, Path], out: Path) -> None:
    """Copy the files each page needs into ``out/assets/`` (skipped when the same versions are there)."""
    stamp = out / "assets" / ".versions"
    wanted = json.dumps({a.name: a.version for a in ASSETS}, sort_keys=True)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    shutil.rmtree(out / "assets", ignore_errors=True)
    for asset in ASSETS:
        for rel in ("package.json", *asset.files):   # package.json: name, version and licence of what ships
            src, dst = unpacked[asset.name] / rel, out / "assets" / asset.folder / rel
            if not src.exists():
                raise SlidesError(f"{asset.name}@{asset.version} has no {rel!r}; delete {unpacked[asset.name]} "
                                  "and export again")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.map"))
            else:
                shutil.copy2(src, dst)
    stamp.write_text(wanted)


def slide_type(cell) -> str:
    """A cell's ``slide_type`` (``"-"`` = continues the current slide)."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-") or "-"


def count_slides(nb) -> int:
    """Number of slides reveal.js shows for ``nb``: slide and subslide starts (the first cell always starts one)."""
    count = 0
    for cell in nb.cells:
        kind = slide_type(cell)
        if kind in ("skip", "notes"):
            continue
        if kind in ("slide", "subslide") or count == 0:
            count += 1
    return count


def find_decks(root: Path, names: list[str] | None = None) -> list[Path]:
    """``slides/NN_*.ipynb`` under ``root``, or those named (``01``, ``01_kmeans`` or a path)."""
    decks = sorted((root / "slides").glob("[0-9][0-9]_*.ipynb"))
    if not names:
        if not decks:
            raise SlidesError(f"no decks (slides/NN_topic.ipynb) in {root / 'slides'}")
        return decks
    chosen = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        match = [d for d in decks if d.stem == stem or d.stem.split("_")[0] == stem]
        if not match:
            raise SlidesError(f"no deck {name!r}; the decks are: {', '.join(d.stem for d in decks) or 'none'}")
        chosen += match
    return chosen


#: seconds per deck cell: a deck's cells are short (a whole deck runs in well under a minute). A cell with an
#: ipywidgets slider sometimes never gets its reply under load (nbclient issue #312): past this the deck is
#: run once more in a fresh kernel instead of waiting nbclient's default 10 minutes.
CELL_TIMEOUT = 90


def execute(nb, cwd: Path, profile: str, timeout: int = CELL_TIMEOUT, attempts: int = 2):
    """Run every cell of ``nb`` (a copy) in a fresh kernel with ``COURSE_PROFILE=profile``; a cell that
    times out runs the whole deck again in a new kernel, up to ``attempts`` times in all."""
    from nbclient.exceptions import CellTimeoutError

    for attempt in range(1, attempts + 1):
        try:
            return _execute_once(nb, cwd, profile, timeout)
        except CellTimeoutError as err:
            if attempt == attempts:
                raise SlidesError(f"a cell took longer than {timeout} s, {attempts} times: {err}") from None
            print(f"a cell took longer than {timeout} s (nbclient can miss a widget cell's reply under load): "
                  "running the deck again in a new kernel", flush=True)
    raise AssertionError("unreachable")


def _execute_once(nb, cwd: Path, profile: str, timeout: int):
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    from course_utils.tools.kernel import NotebookClient

    nb = copy.deepcopy(nb)
    env = {**os.environ, "COURSE_PROFILE": profile}
    # The kernel talks to this process over loopback TCP; it would warn once per deck that the traffic is
    # unencrypted ("Kernel is running over TCP without encryption"), which is true of every local Jupyter
    # kernel and says nothing about the deck: its own log is kept to errors.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    try:
        client.execute(env=env)
    except NoSuchKernel:
        raise SlidesError("no 'python3' Jupyter kernel: run `course doctor`, or "
                          "`python -m ipykernel install --sys-prefix`") from None
    except (CellExecutionError, DeadKernelError) as err:
        raise SlidesError(f"a cell failed while running the deck:\n{err}") from None
    return nb


def to_html(nb, title: str) -> str:
    """The reveal.js page of an (executed) deck, loading everything from ``assets/``."""
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    nb = copy.deepcopy(nb)
    for cell in nb.cells:   # collapsed in JupyterLab -> output only on the exported slide
        if cell.cell_type == "code" and cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"):
            cell.metadata.setdefault("transient", {})["remove_source"] = True
    nb.metadata["title"] = title
    urls = {a.name: f"assets/{a.folder}/{a.entry}" for a in ASSETS}
    urls["reveal.js"] = "assets/reveal.js"   # a prefix: the template adds dist/reveal.js, dist/theme/... itself
    config = Config()
    config.SlidesExporter.update(
        reveal_url_prefix=urls["reveal.js"], reveal_theme="white", reveal_transition="fade",
        reveal_number="c/t", reveal_scroll=True, require_js_url=urls["requirejs"], jquery_url=urls["jquery"],
        mathjax_url=urls["mathjax"], widget_renderer_url=urls["@jupyter-widgets/html-manager"],
        extra_template_basedirs=[str(TEMPLATE_DIR)], template_name="course_reveal",
    )
    body, _ = SlidesExporter(config=config).from_notebook_node(nb)
    return body


def export_deck(deck: Path, out: Path, profile: str = "ci", run: bool = True) -> tuple[Path, int, float]:
    """Execute (unless ``run`` is False) and convert one deck; returns (html path, slides, seconds)."""
    start = time.perf_counter()
    nb = nbformat.read(deck, as_version=4)
    if run:
        try:
            nb = execute(nb, deck.parent, profile)
        except SlidesError as err:
            raise SlidesError(f"{deck.name}: {err}") from None
    title = nb.metadata.get("title") or deck.stem
    html = out / f"{deck.stem}.html"
    html.write_text(to_html(nb, title), encoding="utf-8")
    return html, count_slides(nb), time.perf_counter() - start


def write_index(out: Path, entries: list[tuple[Path, str, int]]) -> Path:
    """``out/index.html`` linking each (page, title, number of slides)."""
    rows = "\n".join(f'<li><a href="{escape(p.name)}">{escape(title)}</a> ({n} slides)</li>' for p, title, n in entries)
    page = out / "index.html"
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Slides</title>
<style>body {{ font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.6 }}</style></head>
<body><h1>Segmentation &amp; Detection: slides</h1>
<p>Open a deck; arrow keys or space move, <kbd>s</kbd> opens the speaker notes, <kbd>f</kbd> full screen.</p>
<ul>
{rows}
</ul></body></html>
""", encoding="utf-8")
    return page


def export_decks(out: Path, root: Path | None = None, names: list[str] | None = None, profile: str = "ci",
                 run: bool = True, npm: str = "npm") -> list[Path]:
    """Export the decks of ``root`` (default: the course folder) into the folder ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SlidesError(f"--out {out} is a file; expected a folder (it is created if missing)")
    if profile not in PROFILES:
        raise SlidesError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    try:
        root = find_root(root)
    except BuildError as err:
        raise SlidesError(str(err)) from None
    decks = find_decks(root, names)
    unpacked = fetch_assets(cache_dir(root), npm)
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(unpacked, out)
    pages = []
    for deck in decks:
        html, n, seconds = export_deck(deck, out, profile, run)
        pages.append(html)
        print(f"{deck.stem}: {n} slides, {seconds:.1f} s -> {html}", flush=True)
    entries = []   # the index lists every deck exported to `out`, now or by an earlier run
    for deck in find_decks(root):
        if (out / f"{deck.stem}.html").exists():
            nb = nbformat.read(deck, as_version=4)
            entries.append((out / f"{deck.stem}.html", nb.metadata.get("title") or deck.stem, count_slides(nb)))
    write_index(out, entries)
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="course slides",
        description="Execute the slide decks (slides/NN_*.ipynb) and export them to a self-contained reveal.js "
                    "HTML folder that works offline. The first run fetches reveal.js, MathJax, require.js, "
                    "jQuery and the widget renderer from the npm registry (needs npm).")
    parser.add_argument("decks", nargs="*", help="decks to export (e.g. 01 or 01_kmeans); default: all")
    parser.add_argument("--out", default="slides_html", type=Path, help="output folder (default: slides_html)")
    parser.add_argument("--profile", default="ci", choices=PROFILES,
                        help="profile to execute the decks in (default: ci)")
    parser.add_argument("--no-execute", action="store_true", help="convert the decks as stored, without running them")
    args = parser.parse_args(argv)
    try:
        pages = export_decks(args.out, None, args.decks, args.profile, run=not args.no_execute)
    except SlidesError as err:
        print(f"course slides: error: {err}", file=sys.stderr)
        return 2
    print(f"{len(pages)} deck{'' if len(pages) == 1 else 's'} in {args.out}/ (open {args.out}/index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
