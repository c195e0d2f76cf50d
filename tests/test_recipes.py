"""Recipes: the catalogue of named models, and ``trained_model`` (train once, then read the cache)."""

import pytest
import torch

from course_lib import checkpoints, recipes, train


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_fit_and_loader_kwargs_are_the_recipe_settings(name):
    import inspect

    from course_lib import data

    recipe = recipes.RECIPES[name]
    fit_params, loader_params = inspect.signature(train.fit).parameters, inspect.signature(data.loaders).parameters
    for key, value in recipe.fit_kwargs().items():
        assert key in fit_params and value == getattr(recipe, key)
    for key, value in recipe.loader_kwargs().items():
        assert key in loader_params and value == getattr(recipe, "dataset" if key == "name" else key)
    assert set(recipe.fit_kwargs()) | set(recipe.loader_kwargs()) == \
        {f for f in recipe.__dataclass_fields__ if f not in ("model", "dataset", "epochs", "model_kwargs", "about", "maker")} | {"name"}


def test_trained_model_trains_with_the_recipe_once_then_reads_the_cache(tmp_path, monkeypatch, random_images):
    train_data, test_data = random_images(16, 8, 3, True), random_images(8, 8, 4, False)
    calls = []
    real_fit = train.fit

    def spy_fit(*args, **kwargs):
        calls.append(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", spy_fit)
    model, acc = recipes.trained_model("vgg-small-cifar10", train_data, test_data, tmp_path, epochs=1, device="cpu")
    recipe = recipes.RECIPES["vgg-small-cifar10"]
    assert len(calls) == 1
    assert (calls[0]["lr"], calls[0]["label_smoothing"], calls[0]["schedule"]) == \
        (recipe.lr, recipe.label_smoothing, recipe.schedule)
    assert model[0][0].out_channels == recipe.model_kwargs["widths"][0] and 0 <= acc <= 1
    assert (tmp_path / "vgg-small-cifar10.pt").exists() and not (tmp_path / "vgg-small-cifar10.train.pt").exists()
    again, acc_again = recipes.trained_model("vgg-small-cifar10", None, None, tmp_path, device="cpu")
    assert len(calls) == 1 and acc_again == acc                # read from the cache, not retrained
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_trained_model_uses_the_shipped_checkpoint(tmp_path):
    if "vgg-small-fmnist" not in checkpoints.read_manifest():
        pytest.skip("the shipped vgg-small-fmnist checkpoint is not there")
    model, acc = recipes.trained_model("vgg-small-fmnist", None, None, tmp_path)
    shipped = recipes.shipped_model("vgg-small-fmnist")
    assert acc == checkpoints.read_manifest()["vgg-small-fmnist"]["test_accuracy"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="recipe 'nope' is unknown"):
        recipes.trained_model("nope", None, None, tmp_path)


def test_the_cache_is_read_safely(tmp_path):
    (tmp_path / "vgg-small-cifar10.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoints.CheckpointError, match="not a readable course checkpoint"):
        recipes.trained_model("vgg-small-cifar10", None, None, tmp_path)


# The arms that chapters 07-09 compare: one recipe for all (data, epochs, schedule, augmentation,
# precision), only the architecture differs (issue "fair evidence").
COMPARED = {
    "06": ["igc-l4m4-fmnist", "igc-l8m2-fmnist", "igc-regconv-w9-fmnist", "igc-l1m16-fmnist", "igc-l2m8-fmnist",
           "igc-l16m1-fmnist", "igc-l1m9-fmnist", "igc-l2m6-fmnist"],
    "07-08": ["resnet20-plain-fmnist", "resnet20-post-fmnist", "resnet20-preact-fmnist", "resnet20-se-fmnist",
              "resnet20-sd-fmnist", "densenet-bc22-fmnist"],
    "07-56": ["resnet56-plain-fmnist", "resnet56-post-fmnist", "resnet56-preact-fmnist", "resnet56-sd-fmnist"],
    "09": ["resnet20-fmnist", "squeezenet-small-fmnist", "squeezenext-small-fmnist", "mobilenet-small-fmnist",
           "mobilenetv2-small-fmnist"],
}
# Below the 91% that these architectures reach, with the measured reason.
BELOW_TARGET = {"resnet20-sd-fmnist": "batch-mode stochastic depth leaves BatchNorm the statistics of the last "
                                      "batches' drop patterns: 83.1%, 91.0% once re-estimated",
                "resnet56-plain-fmnist": "He et al.'s degradation, measured (chapter 07): the 56-layer plain net "
                                         "trains worse than the 20-layer one, 89.5% vs 93.3%",
                "resnet56-sd-fmnist": "batch-mode stochastic depth's BatchNorm statistics, as at 20 layers: 90.6%, "
                                      "91.9% once re-estimated (chapter 07)",
                **{name: "chapter 06's depth-4 experiment nets have 1.8K-7.6K parameters: 87-90% after 20 epochs, "
                         "the last 3 adding <= 0.4 pt" for name in COMPARED["06"]}}


@pytest.mark.parametrize("group", sorted(COMPARED))
def test_compared_arms_share_one_recipe_on_all_training_images(group):
    def training(name):
        recipe = recipes.RECIPES[name]
        return {**recipe.fit_kwargs(), **recipe.loader_kwargs(), "epochs": recipe.epochs}

    reference = training(COMPARED[group][0])
    assert reference["train_subset"] is None and reference["test_subset"] is None   # 60,000 images, 10,000 tested
    assert all(training(name) == reference for name in COMPARED[group][1:])
    assert reference == {**reference, **recipes.FAST, "amp": "bf16"}                 # the fast recipe, bf16


@pytest.mark.parametrize("name", sorted(sum(COMPARED.values(), [])))
def test_compared_arms_are_shipped_from_their_recipe_with_a_curve(name):
    entry = checkpoints.read_manifest()[name]
    recipe = recipes.RECIPES[name]
    assert entry["epochs"] == recipe.epochs and entry["train_images"] == 60_000
    assert entry["command"] == f"python -m course_lib train --recipe {name} --register"
    assert len(entry["training_curve"]) == recipe.epochs and entry["training_curve"][-1] == entry["test_accuracy"]
    if name not in BELOW_TARGET:
        assert entry["test_accuracy"] >= 0.91, "these conv nets reach 91% on Fashion-MNIST's full test set"
