import pytest
import torch

from course_utils.config import Profile, get_device, get_profile, profile_name, seed_everything


def test_profile_defaults_to_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert profile_name(get_device()) == expected


def test_profile_override_and_choose(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    profile = get_profile()
    assert profile.name == "ci"
    assert profile.choose(ci=1, cpu=2, gpu=3) == 1
    assert Profile("gpu", torch.device("cpu")).choose(ci=1, cpu=2, gpu=3) == 3


def test_bad_profile_and_device_are_clear(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="COURSE_PROFILE='fast' is not a profile; expected one of ci, cpu, gpu"):
        get_profile()
    monkeypatch.delenv("COURSE_PROFILE")
    monkeypatch.setenv("COURSE_DEVICE", "banana")
    with pytest.raises(ValueError, match="not a device name"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device()
    with pytest.raises(ValueError, match="profile must be one of"):
        Profile("tiny", torch.device("cpu"))


def test_seeding_repeats():
    seed_everything(3)
    a = torch.rand(4)
    g = seed_everything(3)
    assert torch.equal(a, torch.rand(4))
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)


def test_a_bad_profile_in_a_notebook_is_one_line_and_gpu_without_cuda_warns(monkeypatch):
    from course_utils.config import SetupError

    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(SetupError) as info:
        get_profile()
    [line] = info.value._render_traceback_()  # what IPython shows instead of a traceback
    assert "COURSE_PROFILE='fast'" in line and "ci, cpu, gpu" in line and "unset COURSE_PROFILE" in line
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_PROFILE", "gpu")
        with pytest.warns(UserWarning, match="gpu profile"):
            assert get_profile().name == "gpu"
