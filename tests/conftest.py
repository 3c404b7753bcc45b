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
# file at a time per worker, in the order given here: the long files first (longest first, as measured), the
# checks on 100 seeds last, so that they fill in around the long files.
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
