"""Slide decks: their structure, ``course slides`` bad input, and the exported HTML in a real browser.

The browser test exports every deck (``python -m course_utils slides --out TMP``: executes them in the ci
profile, fetches the JavaScript from npm on the first run), then opens each page from disk in Debian's
Chromium with every non-file request blocked and recorded, and checks that reveal.js started, that the
slide count matches the notebook's slideshow metadata, that MathJax typeset the formulas, that the saved
widgets render, that no request left the machine and that no local file is missing. One screenshot per
deck (the live-demo slide) goes to ``out/test_slides/`` (git-ignored) for a person to look at.

The live test presents deck 01 the way the README tells an instructor to: JupyterLab on a scratch copy of
``slides/``, Run All, the notebook toolbar's deck button (jupyterlab-slideshow), arrow keys to the demo
slide, then moves the ipywidgets slider and sees the kernel redraw the figure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _jupyter_browser as jupyter_browser
import nbformat
import pytest

from course_utils.tools import slides

ROOT = Path(__file__).resolve().parent.parent
DECKS = sorted((ROOT / "slides").glob("[0-9][0-9]_*.ipynb"))
SHOTS = ROOT / "out" / "test_slides"
LOCAL = ("file:", "data:", "blob:", "about:")


def _cells(deck: Path):
    return nbformat.read(deck, as_version=4).cells


# ---------------------------------------------------------------- decks (no browser, fast)

def test_there_are_decks_for_the_first_labs():
    assert [d.name[:2] for d in DECKS][:4] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("deck", DECKS, ids=lambda d: d.stem)
def test_deck_follows_the_lecture_flow(deck):
    cells = _cells(deck)
    kinds = [slides.slide_type(c) for c in cells]
    assert kinds[0] == "slide", "the title cell must start a slide"
    assert all(c.metadata.get("slideshow", {}).get("slide_type") != "-" for c in cells), \
        'jupyterlab-slideshow hides cells marked "-": leave slide_type out to continue a slide'

    assert set(kinds) <= {"slide", "subslide", "fragment", "skip", "notes", "-"}
    assert kinds.count("notes") >= 4, "every deck needs speaker notes"
    shown = [c for c, k in zip(cells, kinds) if k not in ("skip", "notes")]
    assert any("$$" in c.source for c in shown if c.cell_type == "markdown"), "a displayed formula"
    demos = [c for c in shown if c.cell_type == "code" and not c.metadata.get("jupyter", {}).get("source_hidden")]
    assert any("widgets.interact" in c.source for c in demos), "a live widget demo with its code visible"
    figures = [c for c in shown if c.cell_type == "code" and c.metadata.get("jupyter", {}).get("source_hidden")]
    assert any("plt." in c.source for c in figures), "a figure drawn by code"
    closing = max(i for i, k in enumerate(kinds) if k == "slide")
    assert f"labs/{deck.stem}.ipynb" in cells[closing].source, "the last slide points to the lab"
    assert all(not c.get("outputs") for c in cells if c.cell_type == "code"), \
        "decks are committed without outputs (course slides executes them)"


@pytest.mark.parametrize("deck", DECKS, ids=lambda d: d.stem)
def test_deck_is_a_whole_lecture(deck):
    """A deck is the lecture, not its outline: 20-30 slides, speaker notes on most of them."""
    nb = nbformat.read(deck, as_version=4)
    n_slides = slides.count_slides(nb)
    assert 20 <= n_slides <= 30, f"{deck.name}: {n_slides} slides; a 50-75 minute lecture needs 20-30"
    n_notes = sum(slides.slide_type(c) == "notes" for c in nb.cells)
    assert n_notes >= n_slides / 2, f"{deck.name}: speaker notes on {n_notes} of {n_slides} slides"


def test_count_slides_follows_the_metadata():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("title"),                                   # first cell: a slide
        nbformat.v4.new_code_cell("x = 1", metadata={"slideshow": {"slide_type": "skip"}}),
        nbformat.v4.new_markdown_cell("a", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell("b", metadata={"slideshow": {"slide_type": "fragment"}}),
        nbformat.v4.new_markdown_cell("c", metadata={"slideshow": {"slide_type": "subslide"}}),
        nbformat.v4.new_markdown_cell("n", metadata={"slideshow": {"slide_type": "notes"}}),
        nbformat.v4.new_markdown_cell("d", metadata={"slideshow": {"slide_type": "slide"}}),
    ])
    assert slides.count_slides(nb) == 4


def test_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    target = tmp_path / "slides.html"
    target.write_text("not a folder")
    assert slides.main(["--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "expected a folder" in err
    with pytest.raises(ValueError, match="is a file"):
        slides.export_decks(target)
    assert target.read_text() == "not a folder"


def test_unknown_deck_and_profile_are_clear_errors(tmp_path, capsys):
    assert slides.main(["99", "--out", str(tmp_path / "o")]) == 2
    assert "no deck '99'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="profile must be one of"):
        slides.export_decks(tmp_path / "o", profile="laptop")


@pytest.mark.slow
def test_a_failing_deck_is_a_clear_error_naming_it(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# broken", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_code_cell("1 / 0")])
    nbformat.write(nb, tmp_path / "99_broken.ipynb")
    with pytest.raises(slides.SlidesError, match=r"(?s)99_broken.ipynb: a cell failed.*ZeroDivisionError"):
        slides.export_deck(tmp_path / "99_broken.ipynb", tmp_path)
    assert not (tmp_path / "99_broken.html").exists()


def test_missing_npm_is_a_clear_error(tmp_path):
    with pytest.raises(slides.SlidesError, match="not on PATH"):
        slides.fetch_assets(tmp_path / "empty-cache", npm="no-such-npm-here")


# ---------------------------------------------------------------- export + real browser

def _need(tool: str) -> str:
    """The tool's path; runs `make browser-deps` once if it is missing; skips only if that cannot help."""
    if shutil.which(tool) is None:
        subprocess.run(["make", "-s", "-C", str(ROOT), "browser-deps"], capture_output=True, timeout=600)
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed and `make browser-deps` could not install it (needs apt and root)")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not slides.assets_cached(slides.cache_dir(ROOT)):   # npm is only needed to fill the cache
        _need("npm")
    out = tmp_path_factory.mktemp("slides_html")
    run = subprocess.run([sys.executable, "-m", "course_utils", "slides", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return out


@pytest.mark.slow
def test_export_is_self_contained(exported):
    assert sorted(p.stem for p in exported.glob("[0-9][0-9]_*.html")) == [d.stem for d in DECKS]
    index = (exported / "index.html").read_text()
    for deck in DECKS:
        html = (exported / f"{deck.stem}.html").read_text()
        loads = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
        assert loads and all(u.startswith("assets/") for u in loads), loads
        assert "mermaid" not in html.lower(), "the mermaid block loads from a CDN; the template must drop it"
        assert f'href="{deck.stem}.html"' in index
    for asset in slides.ASSETS:
        entry = exported / "assets" / asset.folder / asset.entry.split("?")[0]
        assert entry.is_file(), entry


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = _need("chromium")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                       args=jupyter_browser.CHROMIUM_ARGS,
                                                       viewport={"width": 1280, "height": 800})
        yield context
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("deck", DECKS, ids=lambda d: d.stem)
def test_exported_deck_in_a_real_browser(exported, browser, deck):
    nb = nbformat.read(deck, as_version=4)
    outside, failed, errors = [], [], []
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(LOCAL)
               else (outside.append(route.request.url), route.abort()))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto((exported / f"{deck.stem}.html").as_uri())
        page.wait_for_selector(".reveal.ready", timeout=60_000)     # AMD-loaded: no window.Reveal
        page.evaluate("window.Reveal = require(Object.keys(require.s.contexts._.defined)"
                      ".find(k => k.endsWith('dist/reveal.js')))")
        assert page.evaluate("Reveal.getTotalSlides()") == slides.count_slides(nb)
        page.wait_for_selector(".mjx-chtml", state="attached", timeout=60_000)
        page.evaluate("new Promise(done => MathJax.Hub.Queue(done))")   # typesetting finished
        assert page.locator(".mjx-chtml").count() >= 3
        assert page.locator(".MathJax_Error, .mjx-error, .mjx-merror").count() == 0, "a formula failed to typeset"
        n_notes = sum(slides.slide_type(c) == "notes" for c in nb.cells)
        assert page.locator("aside.notes").count() == n_notes
        assert page.locator("img[src^='data:image/png']").count() >= 2, "figures are in the page"
        # the live-demo slide: the saved widget state renders sliders and the figure they drew
        where = page.evaluate("""() => { const s = Reveal.getSlides().find(e => e.querySelector('.widget-slider'));
                                         return s ? Reveal.getIndices(s) : null; }""")
        assert where is not None, "no rendered widget slider in the deck"
        page.evaluate(f"Reveal.slide({where['h']}, {where['v'] or 0}, 99)")
        page.wait_for_selector("section.present .widget-slider", state="visible", timeout=30_000)
        page.evaluate("new Promise(done => MathJax.Hub.Queue(done))")
        page.wait_for_timeout(1000)                                   # the slide transition
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{deck.stem}.png"))
    finally:
        page.close()
    assert outside == [], f"requests left the machine: {outside}"
    assert failed == [], f"local files missing from the export: {failed}"
    assert errors == [], f"JavaScript errors: {errors}"


# ---------------------------------------------------------------- live in JupyterLab (jupyterlab-slideshow)

def _api(base: str, path: str):
    return jupyter_browser.api(base, "slides-test", path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a scratch copy of slides/, isolated settings, ci profile; yields its base URL."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "slides", root / "slides")
    port = jupyter_browser.free_port()
    argv = [sys.executable, "-m", "jupyterlab", f"--port={port}", f"--ServerApp.root_dir={root}"] + \
        (["--allow-root"] if os.geteuid() == 0 else [])
    with jupyter_browser.jupyterlab(argv, root, tmp_path_factory.mktemp("jupyter"), "slides-test", port) as base:
        yield base


@pytest.mark.browser
def test_present_deck_live_in_jupyterlab(lab, browser):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith((lab, *LOCAL))
               else route.abort())
    page.add_locator_handler(page.get_by_role("dialog").filter(has_text="Select Kernel"),
                             lambda dialog: dialog.get_by_role("button", name="Select", exact=True).click())
    try:
        page.goto(f"{lab}/lab/tree/slides/01_kmeans.ipynb?token=slides-test")
        nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        expect(nb.locator(".jp-Cell").first).to_be_visible(timeout=90_000)
        stable, last, deadline = 0, None, time.monotonic() + 120   # one idle kernel, unchanged for 2 s
        while stable < 4:
            now = [(k["id"], k["execution_state"], k["connections"]) for k in _api(lab, "kernels")]
            ok = len(now) == 1 and now[0][1] == "idle" and now[0][2] >= 1
            stable, last = (stable + 1 if ok and now == last else 0), now
            assert time.monotonic() < deadline, f"no idle kernel: {now}"
            page.wait_for_timeout(500)          # never time.sleep here: it stalls page.route()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        expect(nb.locator(".jp-OutputArea-output .widget-slider").first).to_be_visible(timeout=180_000)
        assert nb.locator(".jp-OutputArea-output[data-mime-type*='error']").count() == 0

        nb.locator(".jp-Cell").first.click()
        page.keyboard.press("Escape")
        nb.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="deck"]').click()     # the README's button
        expect(page.locator("body[data-jp-deck-mode='presenting']")).to_have_count(1, timeout=30_000)
        slider = nb.locator(".widget-slider").first
        for _ in range(30):                                  # slide by slide (fragments too) to the demo
            if slider.is_visible():
                break
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(400)
        expect(slider).to_be_visible()
        expect(nb.locator(".jp-deck-mod-onscreen").first).to_contain_text("Demo")
        figure = nb.locator(".widget-output img").first
        before = figure.get_attribute("src")
        nb.locator(".widget-slider [role=slider]").first.focus()
        page.keyboard.press("ArrowRight")                    # k: 4 -> 5, the kernel redraws
        expect(nb.locator(".widget-readout").first).to_have_text("5")
        expect(figure).not_to_have_attribute("src", before, timeout=60_000)
        page.wait_for_timeout(500)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "01_kmeans_live_in_jupyterlab.png"))
    finally:
        page.close()


@pytest.mark.slow
def test_a_cell_that_hangs_once_runs_the_deck_again(tmp_path, capsys):
    # nbclient sometimes misses a widget cell's reply under load (nbclient #312): a timeout reruns the deck
    flag = tmp_path / "ran_once"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import pathlib, time\nflag = pathlib.Path({str(flag)!r})\nfirst = not flag.exists()\nflag.touch()\n"
        "time.sleep(30 if first else 0)\nprint('second run' if not first else 'first run')")])
    out = slides.execute(nb, tmp_path, "ci", timeout=5)
    assert "running the deck again" in capsys.readouterr().out
    assert out.cells[0].outputs[0]["text"].strip() == "second run"


@pytest.mark.slow
def test_a_cell_that_always_hangs_is_a_clear_error(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(30)")])
    with pytest.raises(slides.SlidesError, match="longer than 3 s, 2 times"):
        slides.execute(nb, tmp_path, "ci", timeout=3)
