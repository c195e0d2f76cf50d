"""The benchmark scripts parse what they are told and run end to end (dry run: stand-in data, capped work).

They measure nothing here: the figures come from running them on a quiet machine (README, "Measured").
"""

import importlib.util
from pathlib import Path

import pytest
import torch

from course_lib import recipes

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_to_accuracy_knows_every_default_run_and_refuses_a_typo():
    tta = load("time_to_accuracy")
    for spec in tta.BASELINES + tta.FAST + tta.ABLATION:
        recipe, options, threads = tta.parse_run(spec)
        assert recipe.model in recipes.MODELS
    recipe, options, threads = tta.parse_run("fast-fmnist +ema -tta batch=128 +bf16 threads=1")
    base = recipes.get_recipe("fast-fmnist")
    assert recipe.ema == 0.99 and not recipe.tta and recipe.batch_size == 128
    assert recipe.lr == pytest.approx(base.lr / 2) and options["amp"] == "bf16" and threads == 1
    with pytest.raises(SystemExit, match="unknown change '-emma'"):
        tta.parse_run("fast-fmnist -emma")


def test_time_to_accuracy_runs_and_a_run_cut_short_reports_what_it_has(monkeypatch):
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    tta = load("time_to_accuracy")
    row = tta.run("fast-fmnist", max_seconds=600, evals_per_epoch=2)
    assert row["epochs"] == "1/4" and 0 <= row["accuracy"] <= 1 and row["trained_s"] > 0
    cut = tta.run("fast-fmnist", max_seconds=0, evals_per_epoch=2)
    assert cut["epochs"] == "0/4 (cut)" and cut["to"][0.90] is None


def test_validation_split_holds_out_training_images_and_never_touches_the_test_set(monkeypatch):
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    tta = load("time_to_accuracy")
    from course_lib import data

    train_data, _ = data.loaders("fashion-mnist", 16, device="cpu")
    fit_part, held = tta.held_out(train_data, 10)
    assert len(fit_part.labels) + len(held.labels) == len(train_data.labels) and len(held.labels) == 10
    rows = {tuple(img.flatten().tolist()) for img in train_data.images}
    fit_rows = {tuple(img.flatten().tolist()) for img in fit_part.images}
    assert all(tuple(img.flatten().tolist()) in rows - fit_rows for img in held.images)      # disjoint parts
    assert not held.augment and fit_part.augment == train_data.augment and fit_part.pad == train_data.pad
    assert torch.equal(fit_part.mean, train_data.mean)
