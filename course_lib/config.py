"""Profiles, device choice, seeding and paths: the few settings every notebook shares.

Two profiles run the *same* code path at two sizes:

- ``quick`` (default): a 2-core CPU, no GPU, at most two minutes a notebook. Small subsets of
  Fashion-MNIST and shipped checkpoints.
- ``full``: the paper-scale run (CIFAR-10, real epoch counts) on a GPU.

Pick the profile with the environment variable ``COURSE_PROFILE`` and choose sizes with
``pick(quick=..., full=...)`` so that one notebook serves both.
"""

import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("quick", "full")
DEVICES = ("cpu", "cuda", "mps")
REPO_ROOT = Path(__file__).resolve().parent.parent


def profile():
    """The active profile, read from ``COURSE_PROFILE`` ("quick" when unset)."""
    name = os.environ.get("COURSE_PROFILE", "quick").strip().lower() or "quick"
    if name not in PROFILES:
        raise ValueError(f"COURSE_PROFILE={name!r} is not a profile; choose one of {PROFILES}")
    return name


def pick(quick, full):
    """Return ``quick`` in the quick profile and ``full`` in the full profile."""
    return quick if profile() == "quick" else full


def device():
    """The training device: ``COURSE_DEVICE`` if set, else cuda > mps > cpu."""
    wanted = os.environ.get("COURSE_DEVICE", "").strip().lower()
    if wanted:
        kind = wanted.split(":")[0]
        if kind not in DEVICES:
            raise ValueError(f"COURSE_DEVICE={wanted!r} is not a device; choose one of {DEVICES}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError("COURSE_DEVICE=cuda but torch.cuda.is_available() is False on this machine")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise ValueError("COURSE_DEVICE=mps but torch.backends.mps.is_available() is False on this machine")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed=0):
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so that a run repeats exactly on CPU."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def data_dir():
    """Where datasets and checkpoints live: ``COURSE_DATA_DIR``, default ``data/`` in the repository."""
    path = Path(os.environ.get("COURSE_DATA_DIR", REPO_ROOT / "data")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoints_dir():
    """The shipped checkpoints: always ``data/checkpoints`` in the repository (they are committed)."""
    return REPO_ROOT / "data" / "checkpoints"


def describe():
    """A one-line summary for the top of a notebook."""
    dev = device()
    extra = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    return (f"profile={profile()}  device={dev}{extra}  torch={torch.__version__}  "
            f"threads={torch.get_num_threads()}  data={data_dir()}")
