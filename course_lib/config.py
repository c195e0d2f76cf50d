"""Profiles, device choice, seeding and paths: the few settings every notebook shares.

Two profiles run the *same* code path at two sizes:

- ``quick`` (default): a 2-core CPU, no GPU, at most two minutes a notebook. Small subsets of
  Fashion-MNIST and shipped checkpoints.
- ``full``: the paper-scale run (CIFAR-10, real epoch counts) on a GPU.

Pick the profile with the environment variable ``COURSE_PROFILE`` and choose sizes with
``pick(quick=..., full=...)`` so that one notebook serves both.

The dry run, ``COURSE_DRY_RUN=1`` (meant for ``COURSE_PROFILE=full``), runs the full profile's code
path on a CPU in seconds, so that CI executes every notebook's full branch without a GPU or CIFAR:

- every *choice* stays the full one: ``pick`` still returns ``full`` (model, widths, input size,
  channels, number of classes, dataset name, batch size, code path);
- only the *work* is capped, in the core: ``train.fit`` runs one epoch of at most
  ``DRY_RUN_STEPS`` batches, ``data.loaders`` serves stand-in data
  (``torchvision.datasets.FakeData`` with the dataset's image shape and class count, no file, no
  download) of at most ``DRY_RUN_TRAIN_IMAGES`` / ``DRY_RUN_TEST_IMAGES`` images in batches of
  at most ``DRY_RUN_BATCH``, and ``train.evaluate`` looks at no more than
  ``DRY_RUN_EVAL_BATCHES`` batches;
- a notebook loop that is neither training nor data (a sweep over twenty budgets, a long latency
  measurement) caps itself with ``pick(quick=..., full=..., dry=...)`` or ``cap(value, dry=...)``:
  the ``dry`` value is used only in the dry run, and must never change a shape;
- what a run caches goes under ``data_dir()``, which is ``<data>/dry-run`` in the dry run, so a
  model trained for a few batches can never be mistaken for a real run's;
- ``checks.claim`` records claims in ``build/claims-dry-run.json`` (unless ``COURSE_CLAIMS_FILE``
  says otherwise) and does not raise for ``must_hold=True``: a few batches of random images cannot
  reproduce an accuracy, so a dry run only proves that the cell runs and prints its verdict.

``COURSE_DRY_RUN`` accepts 1/true/yes/on (and 0/false/no/off or unset for a real run).

``COURSE_THREADS=N`` sets PyTorch's intra-op threads once, when ``course_lib`` is imported (e.g. 1
for steadier latency figures on a shared machine); unset, PyTorch's default (one per core) stays.

Where the files are: in a checkout of the course (the usual case, an editable install included)
datasets and caches live in its ``data/`` and the shipped checkpoints in ``data/checkpoints/``. An
installed ``course_lib`` (a wheel in site-packages) has no checkout beside it: point
``COURSE_DATA_DIR`` at a copy of the course's ``data/`` folder (with its ``checkpoints/``); without
it ``data_dir()`` and ``checkpoints_dir()`` raise an error that says so.

Every knob acts where its function's docstring says, and ``describe()`` (the first line every
notebook prints) adds one line for each knob that is set: what it changes, and where.
"""

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "threads",
    "apply_threads",
    "profile",
    "dry_run",
    "pick",
    "cap",
    "device",
    "seed_everything",
    "data_dir",
    "checkpoints_dir",
    "describe",
    "knobs",
    "checkout",
]

PROFILES = ("quick", "full")
DEVICES = ("cpu", "cuda", "mps")
REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout when course_lib runs from one (see checkout())


def checkout() -> Path | None:
    """The course checkout this ``course_lib`` runs from (``REPO_ROOT``), or None for an installed
    package: a checkout has ``data/checkpoints/manifest.json`` beside ``course_lib/``."""
    return REPO_ROOT if (REPO_ROOT / "data" / "checkpoints" / "manifest.json").is_file() else None


def _data_root() -> Path:
    """``COURSE_DATA_DIR``, else the checkout's ``data/``; a clear error for an installed package."""
    value = os.environ.get("COURSE_DATA_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    root = checkout()
    if root is None:
        raise RuntimeError(
            f"course_lib is installed in {REPO_ROOT} without the course's data beside it: set COURSE_DATA_DIR "
            "to a copy of the course's data/ folder (with its checkpoints/), or run from a checkout "
            "(pip install -e .)"
        )
    return root / "data"


def threads() -> int | None:
    """The intra-op thread count asked for with ``COURSE_THREADS``, or None when unset."""
    value = os.environ.get("COURSE_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"COURSE_THREADS={value!r} must be a positive integer (threads for PyTorch's CPU ops)")
    return int(value)


def apply_threads() -> int:
    """Set PyTorch's intra-op threads from ``COURSE_THREADS`` (nothing when unset); return the count in use.

    ``course_lib`` calls it once, when it is imported (the last line of this module), so that every
    PyTorch op of a notebook runs on that many threads; ``describe()`` prints the line that says so."""
    wanted = threads()
    if wanted is not None and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def profile() -> str:
    """The active profile, read from ``COURSE_PROFILE`` ("quick" when unset)."""
    name = os.environ.get("COURSE_PROFILE", "quick").strip().lower() or "quick"
    if name not in PROFILES:
        raise ValueError(f"COURSE_PROFILE={name!r} is not a profile; choose one of {PROFILES}")
    return name


_UNSET = object()
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

DRY_RUN_STEPS = 2  # training batches per epoch in the dry run (and one epoch)
DRY_RUN_BATCH = 16  # largest batch ``data.loaders`` serves in the dry run
DRY_RUN_TRAIN_IMAGES = 256  # stand-in training images per dataset in the dry run
DRY_RUN_TEST_IMAGES = 128  # stand-in test images per dataset in the dry run
DRY_RUN_EVAL_BATCHES = 2  # batches ``evaluate`` looks at in the dry run


def dry_run() -> bool:
    """Is the dry run on (``COURSE_DRY_RUN=1``)? Full choices, capped work, stand-in data."""
    value = os.environ.get("COURSE_DRY_RUN", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"COURSE_DRY_RUN={value!r} must be one of {_TRUE} (dry run) or {_FALSE[1:]} (real run)")


def pick(quick: Any, full: Any, *, dry: Any = _UNSET) -> Any:
    """Return ``quick`` in the quick profile and ``full`` in the full profile.

    ``dry``, when given, replaces ``full`` in the dry run (``COURSE_DRY_RUN=1``): use it only to cap
    an amount of work (loop lengths, timing budgets), never for a shape or a choice of model.
    """
    if profile() == "quick":
        return quick
    return dry if dry is not _UNSET and dry_run() else full


def cap(value: Any, dry: Any) -> Any:
    """``value`` in a real run, ``dry`` in the dry run: caps work that is not training or data."""
    return dry if dry_run() else value


def device() -> torch.device:
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


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so that a run repeats exactly on CPU."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def data_dir() -> Path:
    """Where datasets and caches live: ``COURSE_DATA_DIR``, default ``data/`` in the checkout.

    In the dry run it is the folder ``dry-run`` inside it: caches of a dry run stay apart. An
    installed ``course_lib`` without ``COURSE_DATA_DIR`` raises ``RuntimeError`` (module docstring).
    """
    path = _data_root()
    if dry_run():
        path = path / "dry-run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoints_dir() -> Path:
    """The shipped checkpoints: ``data/checkpoints`` in the checkout (they are committed there).

    An installed ``course_lib`` reads them from ``$COURSE_DATA_DIR/checkpoints``; without
    ``COURSE_DATA_DIR`` it raises ``RuntimeError``. The dry run reads the same real checkpoints."""
    root = checkout()
    return root / "data" / "checkpoints" if root is not None else _data_root() / "checkpoints"


def knobs() -> list[str]:
    """One line for each environment knob that is set: its value, what it changes and where."""
    lines = []
    if threads() is not None:
        lines.append(
            f"COURSE_THREADS={threads()}: PyTorch's intra-op threads, set when course_lib was imported "
            "(config.apply_threads)"
        )
    if dry_run():
        lines.append(
            f"COURSE_DRY_RUN=1: train.fit trains 1 epoch of <= {DRY_RUN_STEPS} batches, train.evaluate reads "
            f"<= {DRY_RUN_EVAL_BATCHES} batches, data.loaders serves stand-in data (<= {DRY_RUN_TRAIN_IMAGES} "
            f"train / {DRY_RUN_TEST_IMAGES} test images, batches <= {DRY_RUN_BATCH}), caches under data/dry-run"
        )
    if os.environ.get("COURSE_DATA_DIR", "").strip():
        lines.append(f"COURSE_DATA_DIR: datasets and caches in {_data_root()} (config.data_dir)")
    if os.environ.get("COURSE_DEVICE", "").strip():
        lines.append(f"COURSE_DEVICE={os.environ['COURSE_DEVICE'].strip()}: the training device (config.device)")
    return lines


def describe() -> str:
    """A summary for the top of a notebook: one line (profile, device, versions, threads, data), then
    one line for each environment knob that is set (``knobs()``)."""
    dev = device()
    extra = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    mode = f"{profile()} (dry run: capped work, stand-in data)" if dry_run() else profile()
    head = (
        f"profile={mode}  device={dev}{extra}  torch={torch.__version__}  "
        f"threads={torch.get_num_threads()}  data={data_dir()}"
    )
    return "\n".join([head, *("  " + line for line in knobs())])


apply_threads()  # once, when course_lib is imported
