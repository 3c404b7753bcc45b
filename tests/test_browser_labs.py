"""The student's path, end to end, in a real browser: JupyterLab + headless Debian Chromium.

For every lab notebook in ``labs/`` (the files that exist, so new labs are covered as they land):

1. open it in JupyterLab, started with the command of ``make lab`` (read from the Makefile), run all
   cells and check that the only feedback is the expected "NOT IMPLEMENTED yet" / "Using the reference
   solution" text -- no traceback, every code cell executed;
2. type the solution of the lab's first exercise (from ``solutions/``) into its cell, re-run it and its
   check cell, and see the check turn to "PASSED";
3. if the lab has an ipywidgets slider, press ArrowRight on it and see its output change;
4. save screenshots to ``out/browser/``.

The server serves a scratch copy of ``labs/`` in a temporary folder (the real notebooks are never
opened, modified or saved), with isolated Jupyter config/data/runtime folders, a token, a free loopback
port and ``COURSE_PROFILE=ci``. It is stopped by its process id at the end, also when a test fails.

Needs Debian's Chromium (``make browser-deps``; never ``playwright install``). Deselect with
``-m "not browser"``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import urllib.error
from pathlib import Path

import _jupyter_browser as jupyter_browser
import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))
SHOTS = ROOT / "out" / "browser"
TOKEN = "course-browser-test"
RUN_ALL_TIMEOUT_S = 600      # the ci profile runs a lab in about a minute; shared, loaded cores can be 5x slower
CHECK_TIMEOUT_S = 60
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|Cell In\[\d+\], line \d+")   # IPython's error display


# ----------------------------------------------------------------------------------------- helpers
def make_lab_command(port: int) -> list[str]:
    """The JupyterLab command line of ``make lab`` (dry run), with the jupyter executable made absolute."""
    stamp = ROOT / ".venv" / ".course-installed"
    dry = subprocess.run(["make", "-n", "-s", "--no-print-directory", "-o", str(stamp), "-o", ".venv/.course-installed",
                          "lab", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = [line for line in dry.splitlines() if re.search(r"jupyter(-lab)?\s+lab\b", line)]
    assert len(lines) == 1, f"expected one 'jupyter lab' line in `make -n lab`, got:\n{dry}"
    argv = shlex.split(lines[0])
    exe = Path(argv[0])
    argv[0] = str(exe if exe.is_absolute() else ROOT / exe)
    assert Path(argv[0]).exists(), f"{argv[0]} (from `make lab`) does not exist: run `make env`"
    return argv


def api(base: str, path: str, method: str = "GET"):
    return jupyter_browser.api(base, TOKEN, path, method)


def first_exercise(lab_path: Path) -> tuple[int, int, str, str]:
    """(lab cell index of the first exercise function, index of its check cell, exercise id, solution code).

    The exercise is the first cell of ``solutions/<same name>`` holding ``### BEGIN SOLUTION``; its lab cell
    is found by cell id, else by the function's name; the check cell is the next ``check("...")`` cell.
    """
    solution = nbformat.read(ROOT / "solutions" / lab_path.name, as_version=4)
    lab = nbformat.read(lab_path, as_version=4)
    cell = next(c for c in solution.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source)
    code = "\n".join(line for line in cell.source.split("\n")
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    ids = [c.get("id") for c in lab.cells]
    if cell.get("id") in ids:
        index = ids.index(cell.get("id"))
    else:
        name = re.search(r"^def (\w+)", cell.source, re.M).group(1)
        index = next(i for i, c in enumerate(lab.cells) if re.search(rf"^def {name}\b", c.source, re.M))
    check_index, exercise_id = next(
        (i, m.group(1)) for i, c in enumerate(lab.cells)
        if i > index and c.cell_type == "code" and (m := re.search(r"""check\(\s*["']([^"']+)["']""", c.source)))
    return index, check_index, exercise_id, code


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def chromium() -> str:
    return jupyter_browser.chromium_path()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """JupyterLab as `make lab` starts it, on a scratch copy of labs/; yields (base URL, copy root)."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "labs", root / "labs")
    port = jupyter_browser.free_port()
    lab = jupyter_browser.jupyterlab(make_lab_command(port), root, tmp_path_factory.mktemp("jupyter"), TOKEN, port)
    with lab as base:
        yield base, root


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, headless=True, args=jupyter_browser.CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


# ------------------------------------------------------------------------------------------- test
def wait_for_one_idle_kernel(page, base: str, timeout_s: float) -> None:
    """One kernel, idle, with a websocket attached, unchanged for 2 s (a second kernel once broke runs)."""
    deadline, stable, last = time.monotonic() + timeout_s, 0, None
    while stable < 4:
        try:
            kernels = api(base, "kernels")
        except urllib.error.HTTPError as err:  # a 500 while a kernel starts or dies (seen once in CI): ask again
            if err.code < 500:
                raise
            kernels = []
        current = [(k["id"], k["execution_state"], k["connections"]) for k in kernels]
        ok = len(current) == 1 and current[0][1] == "idle" and current[0][2] >= 1
        stable, last = (stable + 1 if ok and current == last else 0), current
        assert time.monotonic() < deadline, f"kernel not idle after {timeout_s:.0f} s: {current}"
        page.wait_for_timeout(500)          # never time.sleep here: it stalls page.route()


def shut_down_sessions(base: str) -> None:
    for session in api(base, "sessions"):
        api(base, f"sessions/{session['id']}", method="DELETE")
    deadline = time.monotonic() + 20
    while api(base, "kernels") and time.monotonic() < deadline:
        time.sleep(0.5)


def output_signature(cell) -> str:
    """Text and image sources of a cell's outputs: changes when the widget's callback redraws."""
    return cell.evaluate("""el => Array.from(el.querySelectorAll('.jp-OutputArea-output'))
        .map(o => o.innerText + Array.from(o.querySelectorAll('img')).map(i => i.src.slice(-200)).join('|'))
        .join('\\n')""")


@pytest.mark.parametrize("lab_path", LABS, ids=[p.stem for p in LABS])
def test_student_path_in_jupyterlab(lab_path, lab_server, browser):
    from playwright.sync_api import expect

    base, root = lab_server
    port = base.rsplit(":", 1)[1]
    lab = nbformat.read(lab_path, as_version=4)
    code_cells = [i for i, c in enumerate(lab.cells) if c.cell_type == "code" and c.source.strip()]
    exercise_index, check_index, exercise_id, solution_code = first_exercise(lab_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob(f"{lab_path.stem}_*.png"):
        old.unlink()
    started = time.monotonic()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
            (f"http://127.0.0.1:{port}", "data:", "blob:")) else r.abort())
        page.add_locator_handler(page.get_by_role("dialog").filter(has_text="Select Kernel"),
                                 lambda d: d.get_by_role("button", name="Select", exact=True).click())
        # a workspace of its own, so tabs of an earlier lab are not restored (no second kernel)
        page.goto(f"{base}/lab/workspaces/{lab_path.stem}/tree/labs/{lab_path.name}?reset&token={TOKEN}")
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        cells = notebook.locator(".jp-Cell")
        expect(cells.first).to_be_visible(timeout=60_000)
        expect(cells).to_have_count(len(lab.cells), timeout=30_000)
        wait_for_one_idle_kernel(page, base, 60)

        # 1. Run all cells, wait until every prompt is numbered or the run stopped, and the kernel is idle.
        prompts = notebook.locator(".jp-CodeCell .jp-InputPrompt")
        for _ in range(3):
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            try:
                expect(prompts.first).not_to_have_text(re.compile(r"\[\s*\]"), timeout=30_000)
                break
            except AssertionError:
                pass
        expect(notebook.locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0, timeout=RUN_ALL_TIMEOUT_S * 1000)
        wait_for_one_idle_kernel(page, base, 30)
        shown = cells.evaluate_all("""els => els.map(el => [
            (el.querySelector('.jp-InputPrompt') || {}).innerText || '',
            (el.querySelector('.jp-OutputArea') || {}).innerText || ''])""")
        assert len(shown) == len(lab.cells)
        outputs = [text for _, text in shown]
        for i in code_cells:
            prompt = shown[i][0]
            assert re.search(r"\[\d+\]", prompt), (
                f"cell {i} did not run (prompt {prompt!r}); the run stopped earlier. Outputs of the cells before it:\n"
                + "\n".join(o for o in outputs[:i] if o.strip())[-3000:])
            assert not ERROR_TEXT.search(outputs[i]), f"cell {i} shows an error:\n{outputs[i][-3000:]}"
        everything = "\n".join(outputs)
        assert f"{exercise_id} NOT IMPLEMENTED yet" in everything, outputs[check_index]
        assert "Using the reference solution" in everything or "fallback(" not in "".join(
            c.source for c in lab.cells), "no cell fell back to the reference solution"
        page.screenshot(path=str(SHOTS / f"{lab_path.stem}_run_all.png"))
        run_all_s = time.monotonic() - started

        # 2. Type the solution of the first exercise, re-run it and its check: the check passes.
        check_output = cells.nth(check_index).locator(".jp-OutputArea")
        expect(check_output).to_contain_text("NOT IMPLEMENTED yet")
        editor = cells.nth(exercise_index).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(solution_code)     # as typed text, without auto-indent or auto-closing
        assert editor.inner_text().split() == solution_code.split(), editor.inner_text()
        page.keyboard.press("Shift+Enter")            # runs the function cell, selects the next cell
        for i in range(exercise_index + 1, check_index + 1):
            expect(cells.nth(i)).to_have_class(re.compile(r"\bjp-mod-active\b"))
            page.keyboard.press("Shift+Enter")
        expect(check_output).to_contain_text(f"{exercise_id} PASSED", timeout=CHECK_TIMEOUT_S * 1000)
        cells.nth(check_index).scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"{lab_path.stem}_passed.png"))

        # 3. Sliders: ArrowRight on the first one re-runs its Python callback; its output changes.
        sliders = notebook.locator(".widget-slider [role=slider]")
        if sliders.count():
            widget_cell = cells.filter(has=page.locator(".widget-slider")).first
            expect(widget_cell.locator(".widget-output, .jp-OutputArea-output").last).to_be_visible()
            page.wait_for_timeout(500)
            before = output_signature(widget_cell)
            sliders.first.scroll_into_view_if_needed()
            sliders.first.focus()
            page.keyboard.press("ArrowRight")
            deadline = time.monotonic() + CHECK_TIMEOUT_S
            while output_signature(widget_cell) == before:
                assert time.monotonic() < deadline, "the slider moved but its output did not change"
                page.wait_for_timeout(250)
            wait_for_one_idle_kernel(page, base, CHECK_TIMEOUT_S)
            page.wait_for_timeout(300)
            page.screenshot(path=str(SHOTS / f"{lab_path.stem}_slider.png"))
        print(f"{lab_path.name}: run all {run_all_s:.0f} s, whole path {time.monotonic() - started:.0f} s")
    except Exception:
        page.screenshot(path=str(SHOTS / f"{lab_path.stem}_FAILED.png"))
        raise
    finally:
        context.close()
        shut_down_sessions(base)
