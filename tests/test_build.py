"""Lab generation: solutions are the single source of labs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.tools.build import BEGIN, END, BuildError, build, main, strip_solutions

ROOT = Path(__file__).resolve().parent.parent


def test_strip_keeps_indentation_and_surroundings():
    source = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n"
    assert strip_solutions(source) == ("def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n"
                                       "    raise NotImplementedError()\n")
    assert strip_solutions("Answer:\n<!-- BEGIN SOLUTION -->\nIt is 42.\n<!-- END SOLUTION -->", markdown=True) \
        == "Answer:\n*Write your answer here.*"


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_errors(source, message):
    with pytest.raises(BuildError, match=message):
        strip_solutions(source, where="nb cell 3")


def make_course(tmp_path: Path) -> Path:
    (tmp_path / "course_utils").mkdir()
    (tmp_path / "solutions").mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# Lab"), new_code_cell(
        "def f(x):\n    ### BEGIN SOLUTION\n    return secret_answer(x)\n    ### END SOLUTION", execution_count=3,
        outputs=[nbformat.v4.new_output("stream", text="hello")])])
    nbformat.write(nb, tmp_path / "solutions" / "07_demo.ipynb")
    return tmp_path


def test_build_writes_stubs_clears_outputs_and_check_detects_staleness(tmp_path, capsys):
    root = make_course(tmp_path)
    assert main(["--root", str(root), "--check"]) == 1
    assert "labs are stale" in capsys.readouterr().err
    assert main(["--root", str(root)]) == 0
    lab = nbformat.read(root / "labs" / "07_demo.ipynb", as_version=4)
    code = lab.cells[1]
    assert "secret_answer" not in code.source and "raise NotImplementedError()" in code.source
    assert code.outputs == [] and code.execution_count is None
    assert lab.metadata["course"]["lab"] == "07"
    assert main(["--root", str(root), "--check"]) == 0
    # a hand edit of a lab is detected
    text = (root / "labs" / "07_demo.ipynb").read_text().replace("YOUR CODE HERE", "my edit")
    (root / "labs" / "07_demo.ipynb").write_text(text)
    assert build(root, check=True) == [root / "labs" / "07_demo.ipynb"]


def test_bad_notebook_name_is_refused(tmp_path, capsys):
    root = make_course(tmp_path)
    shutil.copy(root / "solutions" / "07_demo.ipynb", root / "solutions" / "Demo Lab.ipynb")
    assert main(["--root", str(root)]) == 2
    assert "named NN_topic.ipynb" in capsys.readouterr().err


def test_committed_labs_are_up_to_date():
    assert build(ROOT, check=True) == [], "run `course build` and commit labs/"


@pytest.mark.parametrize("solution", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_solution_line_survives_in_the_lab(solution):
    lab = json.loads((ROOT / "labs" / solution.name).read_text())
    sol = json.loads(solution.read_text())
    lab_text = "\n".join("".join(c["source"]) for c in lab["cells"])
    assert BEGIN not in lab_text and END not in lab_text
    for cell in sol["cells"]:
        source = "".join(cell["source"])
        while BEGIN in source:
            block = source.split(BEGIN, 1)[1].split(END, 1)[0]
            body = "\n".join(line for line in block.split("\n")[1:-1])
            assert body.strip() == "" or body not in lab_text
            source = source.split(END, 1)[1]
    assert all(not c.get("outputs") for c in lab["cells"] if c["cell_type"] == "code"), "labs have no outputs"


def test_cli_entry_points():
    out = subprocess.run([sys.executable, "-m", "course_utils", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "build" in out.stdout and "doctor" in out.stdout
    out = subprocess.run([sys.executable, "-m", "course_utils", "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command 'frobnicate'" in out.stderr
    out = subprocess.run([sys.executable, "-m", "course_utils", "grdae"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "did you mean `course grade`?" in out.stderr
    out = subprocess.run([sys.executable, "-m", "course_utils", "doctor"], capture_output=True, text=True, cwd=ROOT)
    assert "torch" in out.stdout and "profile" in out.stdout and "device" in out.stdout
    assert "course_utils         0.2.0 (" in out.stdout and "chromium" in out.stdout and "npm" in out.stdout
    assert out.returncode == 0, out.stdout


def test_doctor_reports_a_broken_setup(monkeypatch):
    from course_utils.tools import doctor

    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    real_version = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: None if name == "tqdm" else real_version(name))
    _, problems = doctor.diagnose(ROOT)
    assert any("COURSE_PROFILE='turbo'" in p for p in problems)
    assert any(p.startswith("tqdm is not installed") and "make env" in p for p in problems)
