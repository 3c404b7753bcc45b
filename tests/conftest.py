import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # tests draw figures without a display
os.environ.setdefault("COURSE_PROFILE", "ci")


@pytest.fixture(scope="module")
def one_thread():
    """For tiny problems: one torch thread avoids OpenMP synchronisation (slow on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
