import pytest
import torch

from course_lib import config


def test_profile_defaults_to_quick_and_reads_env(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert config.profile() == "quick"
    assert config.pick(quick=1, full=2) == 1
    monkeypatch.setenv("COURSE_PROFILE", "FULL")
    assert config.profile() == "full"
    assert config.pick(quick=1, full=2) == 2


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="COURSE_PROFILE='fast' is not a profile"):
        config.profile()


def test_device_override_and_errors(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE='tpu' is not a device"):
        config.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="cuda.is_available"):
            config.device()


def test_device_default_prefers_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert config.device().type == expected


def test_seed_everything_repeats_random_draws():
    config.seed_everything(123)
    a = torch.rand(5)
    config.seed_everything(123)
    assert torch.equal(a, torch.rand(5))
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(-1)


def test_data_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    assert config.data_dir() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert config.data_dir() == config.REPO_ROOT / "data"
    assert "profile=" in config.describe()


def test_dry_run_keeps_full_choices_and_caps_only_with_dry(monkeypatch):
    monkeypatch.delenv("COURSE_DRY_RUN", raising=False)
    assert not config.dry_run()
    monkeypatch.setenv("COURSE_PROFILE", "full")
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    assert config.dry_run()
    assert config.pick(quick=(1, 28, 28), full=(3, 32, 32)) == (3, 32, 32)     # choices stay full
    assert config.pick(quick=1, full=60, dry=2) == 2                             # work may be capped
    assert config.cap([0.1, 0.2, 0.3], dry=[0.1]) == [0.1]
    assert "dry run" in config.describe()
    monkeypatch.setenv("COURSE_PROFILE", "quick")
    assert config.pick(quick=1, full=60, dry=2) == 1                             # quick is quick
    monkeypatch.setenv("COURSE_DRY_RUN", "off")
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert not config.dry_run() and config.pick(quick=1, full=60, dry=2) == 60
    assert config.cap(5, dry=1) == 5
    monkeypatch.setenv("COURSE_DRY_RUN", "maybe")
    with pytest.raises(ValueError, match="COURSE_DRY_RUN='maybe'"):
        config.dry_run()


def test_dry_run_caches_live_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    assert config.data_dir() == tmp_path / "dry-run"
    monkeypatch.setenv("COURSE_DRY_RUN", "0")
    assert config.data_dir() == tmp_path


def test_course_threads_is_set_once_at_import_and_checked(monkeypatch):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COURSE_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", "import course_lib.config, torch; print(torch.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
    monkeypatch.setenv("COURSE_THREADS", "zero")
    with pytest.raises(ValueError, match="COURSE_THREADS='zero' must be a positive integer"):
        config.threads()
    monkeypatch.delenv("COURSE_THREADS")
    assert config.threads() is None and config.apply_threads() == torch.get_num_threads()


def test_every_set_knob_is_a_line_of_describe(monkeypatch, tmp_path):
    for knob in ("COURSE_THREADS", "COURSE_DRY_RUN", "COURSE_DATA_DIR", "COURSE_DEVICE"):
        monkeypatch.delenv(knob, raising=False)
    assert config.knobs() == [] and "\n" not in config.describe()
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    monkeypatch.setenv("COURSE_THREADS", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    lines = config.describe().splitlines()
    assert lines[0].startswith("profile=") and len(lines) == 4
    assert any("train.evaluate reads <= 2 batches" in line for line in lines)
    assert any(line.strip().startswith("COURSE_THREADS=1") for line in lines)
    assert any(str(tmp_path) in line and "COURSE_DATA_DIR" in line for line in lines)


def test_an_installed_package_finds_its_data_through_course_data_dir(monkeypatch, tmp_path):
    assert config.checkout() == config.REPO_ROOT
    assert config.checkpoints_dir() == config.REPO_ROOT / "data" / "checkpoints"
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path / "site-packages")     # no checkout beside the package
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert config.checkout() is None
    with pytest.raises(RuntimeError, match="set COURSE_DATA_DIR"):
        config.data_dir()
    with pytest.raises(RuntimeError, match="set COURSE_DATA_DIR"):
        config.checkpoints_dir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    assert config.data_dir() == tmp_path / "data" and config.checkpoints_dir() == tmp_path / "data" / "checkpoints"
