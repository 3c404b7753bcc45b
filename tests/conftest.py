import functools
import os
import re
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # tests draw figures without a display
os.environ.setdefault("COURSE_PROFILE", "ci")

# One torch thread per test process: the suite runs on two workers (pytest -n 2) on two cores, so two
# intra-op threads per worker make every small op wait for a busy core (config.get_profile does the same for
# ci notebooks, with the measurements).
torch.set_num_threads(1)

# How the two workers share the suite (make unit: pytest -n 2 --dist loadfile --no-loadscope-reorder): a
# file at a time per worker, in the order given here: the long files first (longest first, as measured), the
# checks on 100 seeds last, so that they fill in around the long files. (Files with a module or session
# fixture also carry an xdist_group marker, for `--dist loadgroup`, which would spread the other files' tests
# one by one; it did not keep the groups together with pytest-xdist 3.8 here, see the closing note.)
LONGEST_FIRST = ("test_grade_every_lab.py", "test_browser_labs.py", "test_slides.py", "test_sandbox.py",
                 "test_slurm.py", "test_gradebook.py", "test_grade_shards.py", "test_grading.py")
FILL_IN = ("test_probes.py", "test_reference_seeds.py", "test_mutants.py")
_SHARED_FIXTURE = re.compile(r"""scope\s*=\s*["'](module|session)["']""")


@functools.lru_cache(maxsize=None)
def _has_shared_fixture(path: Path) -> bool:
    return bool(_SHARED_FIXTURE.search(path.read_text()))


def _rank(item: pytest.Item) -> tuple[int, str]:
    name = item.path.name
    if name in LONGEST_FIRST:
        return LONGEST_FIRST.index(name), ""
    if name in FILL_IN:  # one exercise's mutants, probes and reference runs together (_reference_outputs.py)
        callspec = getattr(item, "callspec", None)
        return len(LONGEST_FIRST) + 1, callspec.id.split(":")[0] if callspec else ""
    return len(LONGEST_FIRST), ""


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name != "conftest.py" and _has_shared_fixture(item.path):
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    items.sort(key=_rank)  # stable: the order inside a file is kept


