import os

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
# file at a time per worker (its module fixtures are built once), in the order given here: the long files first
# (longest first, as measured), the checks on many seeds last and a test at a time (they share no fixtures), so
# that they fill in around the long files and no worker waits at the end for the other to finish a whole file.
LONGEST_FIRST = ("test_grade_every_lab.py", "test_browser_labs.py", "test_slides.py", "test_sandbox.py",
                 "test_slurm.py", "test_gradebook.py", "test_grade_shards.py", "test_grading.py")
FILL_IN = ("test_probes.py", "test_reference_seeds.py", "test_mutants.py")


def _rank(item: pytest.Item) -> int:
    name = item.path.name
    if name in LONGEST_FIRST:
        return LONGEST_FIRST.index(name)
    return len(LONGEST_FIRST) + (name in FILL_IN)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order inside a file is kept


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile``, but the FILL_IN files' tests one at a time. (``--dist loadgroup`` with ``xdist_group``
    marks would say the same, but with pytest 9.2 it silently stops grouping: pytest-xdist issue #1386.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileAtATimeButTheSweeps(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.split("::", 1)[0].rsplit("/", 1)[-1] in FILL_IN else super()._split_scope(nodeid)

    return FileAtATimeButTheSweeps(config, log)
