"""Checkpoints: the manifest of shipped models, their hashes, and safe loading.

Two kinds of file live here:

- *weights files* — ``{"model": state_dict, "recipe": ..., "test_accuracy": ...}``, the shipped
  checkpoints in ``data/checkpoints/`` and the caches of ``recipes.trained_model``; each shipped one
  has an entry (file name, recipe, sha256, accuracy) in ``data/checkpoints/manifest.json``;
- *training checkpoints* — the full state ``train.fit`` writes every epoch to resume a run.

Every file is written atomically (``save_atomically``: never a half-written file) and read with
``torch.load(..., weights_only=True)``, which refuses pickled code: a corrupted, foreign or
tampered file raises ``CheckpointError`` instead of running anything or loading wrong weights.

This module is part of the core: it builds no model. ``load_checkpoint`` fills in a model the
caller built; ``recipes.shipped_model(name)`` (the catalogue, above the chapters) builds the model
of a shipped checkpoint from its recipe and calls it.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn as nn

from . import config

__all__ = [
    "CheckpointError",
    "sha256",
    "read_manifest",
    "manifest_entry",
    "write_manifest_entry",
    "ship",
    "rebuild_command",
    "round_to_half",
    "verified_weights",
    "check_fits",
    "load_state",
    "load_checkpoint",
    "read_weights_file",
    "read_weights",
    "save_atomically",
    "load_training_checkpoint",
]

PathLike = str | os.PathLike
M = TypeVar("M", bound=nn.Module)
TRAINING_KEYS = frozenset({"model", "optimizer", "scheduler", "epoch", "history", "rng"})


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupted, foreign, or does not match its recorded hash."""


def sha256(path: PathLike) -> str:
    """The SHA-256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _folder(folder: PathLike | None) -> Path:
    return Path(folder) if folder is not None else config.checkpoints_dir()


def read_manifest(folder: PathLike | None = None) -> dict:
    """The manifest of shipped checkpoints: ``{name: {file, recipe, seed, epochs, test_accuracy, sha256}}``."""
    path = _folder(folder) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def manifest_entry(name: str, folder: PathLike | None = None) -> dict:
    """The manifest's entry of shipped checkpoint ``name``; ``CheckpointError`` naming the choices if none."""
    path = _folder(folder) / "manifest.json"
    if not path.exists():
        raise CheckpointError(
            f"no shipped checkpoints in {path.parent}: {path.name} is missing (the course's "
            "checkpoints are committed in data/checkpoints: restore them with git checkout)"
        )
    manifest = read_manifest(folder)
    if name not in manifest:
        raise CheckpointError(f"no shipped checkpoint named {name!r}; available: {sorted(manifest)}")
    return manifest[name]


def write_manifest_entry(folder: PathLike, name: str, entry: dict) -> None:
    """Add or replace one entry of ``manifest.json`` in ``folder`` (written atomically)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    manifest[name] = entry
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, folder / "manifest.json")


def ship(
    model: nn.Module,
    folder: PathLike | None,
    name: str,
    *,
    recipe: str,
    seed: int,
    epochs: int,
    test_accuracy: float | None,
    curve: list | None = None,
    command: str,
    train_images: int | None = None,
    half: bool = False,
    extra: dict | None = None,
) -> Path:
    """Ship ``model``: save its weights as ``folder/name.pt`` and write its manifest entry; the path.

    The one way a checkpoint enters ``manifest.json`` (``folder``: default ``config.checkpoints_dir()``).
    The entry holds the file, ``recipe`` (a name of ``recipes.RECIPES``, which rebuilds the
    architecture), ``seed``, ``epochs``, ``test_accuracy`` (rounded to 4 digits), the file's
    ``sha256``, the parameter count, ``train_images``, the ``command`` that rebuilds it
    (``python -m course_lib train --recipe NAME --register``), the test accuracy after every epoch as
    ``training_curve`` (``curve``: floats, rounded to 4 digits), and any ``extra`` fields (a WAE's
    PSNR curve). ``half``: store floating-point tensors in float16 (half the bytes).
    """
    folder = _folder(folder)
    state = model.state_dict()
    if half:
        state = {k: (v.half() if v.is_floating_point() and v.dim() > 0 else v) for k, v in state.items()}
    path = folder / f"{name}.pt"
    save_atomically(
        {"model": state, "recipe": recipe, "seed": seed, "epochs": epochs, "test_accuracy": test_accuracy}, path
    )
    entry: dict[str, Any] = {
        "file": path.name,
        "recipe": recipe,
        "seed": seed,
        "epochs": epochs,
        "test_accuracy": round(test_accuracy, 4) if test_accuracy is not None else None,
        "sha256": sha256(path),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": train_images,
        "command": command,
    }
    if curve is not None:
        entry["training_curve"] = [round(float(a), 4) for a in curve]
    entry.update(extra or {})
    write_manifest_entry(folder, name, entry)
    return path


def rebuild_command(recipe: str, epochs: int | None = None, default_epochs: int | None = None, seed: int = 0) -> str:
    """The command line that rebuilds shipped checkpoint ``recipe`` (a manifest entry's ``command``):
    ``python -m course_lib train --recipe NAME --register``, with ``--epochs`` where ``epochs`` is not
    ``default_epochs`` and ``--seed`` where ``seed`` is not 0."""
    command = f"python -m course_lib train --recipe {recipe} --register"
    command += f" --epochs {epochs}" if epochs != default_epochs else ""
    return command + (f" --seed {seed}" if seed else "")


@torch.no_grad()
def round_to_half(model: nn.Module) -> nn.Module:
    """In place: round every floating-point parameter to float16 and back; returns ``model``. These are
    the weights that ``ship(..., half=True)`` stores, so an accuracy measured after this is the shipped
    model's."""
    for p in model.parameters():
        if p.is_floating_point():
            p.copy_(p.half().float())
    return model


def _torch_load(path: PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)``; anything unreadable is a ``CheckpointError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zip files, foreign objects: all unsafe or broken
        raise CheckpointError(f"{path} is not a readable {what}: {type(err).__name__}: {err}") from None


def read_weights_file(path: PathLike) -> dict:
    """The whole course weights file ``{"model": state_dict, ...}``, loaded safely (``weights_only=True``)."""
    blob = _torch_load(path, "course checkpoint")
    if not isinstance(blob, dict) or "model" not in blob:
        raise CheckpointError(f"{path} is not a course checkpoint (no 'model' entry)")
    return blob


def read_weights(path: PathLike) -> dict:
    """The model weights (``state_dict``) of a course weights file, loaded safely (``weights_only=True``)."""
    return read_weights_file(path)["model"]


def verified_weights(name: str, folder: PathLike | None = None) -> dict:
    """The weights of shipped checkpoint ``name``, after checking the file against the manifest's sha256.

    Raises ``CheckpointError`` for an unknown name, a missing file, a hash mismatch or a file that is
    not a course checkpoint.
    """
    entry = manifest_entry(name, folder)
    path = _folder(folder) / entry["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} is missing")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"{path} has sha256 {digest[:12]}…, the manifest says {entry['sha256'][:12]}…: "
            "the file is corrupted or was replaced; restore it with git checkout"
        )
    return read_weights(path)


def check_fits(shapes: dict, state: dict, source: str, model_name: str) -> None:
    """Do the weights ``state`` fit a model whose entries have ``shapes`` (``{key: shape}``)?

    Else a ``CheckpointError`` naming ``source`` and what differs: missing and unexpected entries,
    mismatched shapes. ``load_state`` checks a model's own ``state_dict``; ``prune.load_pruned`` the
    layout a pruned model will have.
    """
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    mismatched = [
        f"{k} is {_shape(state[k])} there, {tuple(shapes[k])} in the model"
        for k in shapes
        if k in state and _shape(state[k]) != tuple(shapes[k])
    ]
    if missing or unexpected or mismatched:

        def few(names: list) -> str:
            return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

        problems = (
            ([f"missing {few(missing)}"] if missing else [])
            + ([f"unexpected {few(unexpected)}"] if unexpected else [])
            + ([few(mismatched)] if mismatched else [])
        )
        raise CheckpointError(
            f"{source} holds weights of another architecture than this {model_name}: {'; '.join(problems)}"
        )


def _shape(value: Any) -> tuple | None:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else None


def load_state(model: nn.Module, state: dict, source: str) -> nn.Module:
    """``model.load_state_dict(state)`` (in place; returns ``model``), after checking that the weights fit.

    Weights of another architecture raise ``CheckpointError`` naming ``source`` (the file they came
    from) and what differs (``check_fits``) instead of torch's ``RuntimeError``; the model is left
    unchanged.
    """
    check_fits({k: v.shape for k, v in model.state_dict().items()}, state, source, type(model).__name__)
    model.load_state_dict(state)
    return model


def load_checkpoint(name: str, model: M, device: str | torch.device = "cpu", folder: PathLike | None = None) -> M:
    """Fill ``model`` (in place) with the verified weights of shipped checkpoint ``name``.

    ``model`` is an untrained network of the checkpoint's architecture. Returns it on ``device``, in
    eval mode. Raises ``CheckpointError`` as ``verified_weights`` does. To build the model from the
    checkpoint's recipe as well, use ``recipes.shipped_model(name)``.
    """
    load_state(model, verified_weights(name, folder), f"shipped checkpoint {name!r}")
    return model.to(device).eval()


def save_atomically(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_training_checkpoint(path: PathLike) -> dict:
    """A training checkpoint written by ``train.fit``; a clear error for a corrupted or foreign file."""
    state = _torch_load(path, "training checkpoint")
    if not isinstance(state, dict) or not TRAINING_KEYS <= set(state):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path} is not a training checkpoint of course_lib.train.fit "
            f"(needs keys {sorted(TRAINING_KEYS)}, found {found})"
        )
    return state
