import shutil

import pytest
import torch

from course_lib import checkpoints, config, data, measure, recipes, train

MINIMUM = {"lenet5-fmnist": 0.90, "vgg-small-fmnist": 0.93, "lenet300-fmnist": 0.88}


def test_manifest_lists_the_promised_models_within_20_mb():
    """All shipped checkpoints together take at most 20 MB: COURSE_DESIGN §3's 12 MB, raised to 20 MB by the
    issue "fair evidence" for the long runs that decide the claims (fp16 where the results do not change)."""
    manifest = checkpoints.read_manifest()
    assert set(MINIMUM) <= set(manifest)
    total = sum((config.checkpoints_dir() / e["file"]).stat().st_size for e in manifest.values())
    assert total <= 20 * 1024 * 1024, f"shipped checkpoints take {total} bytes"
    shipped = {p.name for p in config.checkpoints_dir().glob("*.pt")}
    assert shipped == {e["file"] for e in manifest.values()}, "every shipped file has a manifest entry, and back"


@pytest.mark.parametrize("name", sorted(checkpoints.read_manifest()))
def test_every_shipped_checkpoint_verifies_and_loads(name):
    entry = checkpoints.read_manifest()[name]
    assert checkpoints.sha256(config.checkpoints_dir() / entry["file"]) == entry["sha256"]
    model = recipes.shipped_model(name)
    assert measure.count_params(model) == entry["parameters"]


@pytest.mark.parametrize("name", sorted(MINIMUM))
def test_shipped_checkpoint_hash_and_accuracy(name, fashion_ready):
    entry = checkpoints.read_manifest()[name]
    assert checkpoints.sha256(config.checkpoints_dir() / entry["file"]) == entry["sha256"]
    model = recipes.shipped_model(name)
    _, test_data = data.loaders("fashion-mnist", 500, device="cpu")
    accuracy = train.evaluate(model, test_data)
    assert accuracy == pytest.approx(entry["test_accuracy"], abs=2e-3)
    assert accuracy >= MINIMUM[name]
    assert measure.count_params(model) == entry["parameters"]


def test_tampered_foreign_and_unknown_checkpoints_are_refused(tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(config.checkpoints_dir(), folder)
    entry = checkpoints.read_manifest(folder)["lenet5-fmnist"]
    path = folder / entry["file"]
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(checkpoints.CheckpointError, match="sha256"):
        recipes.shipped_model("lenet5-fmnist", folder=folder)

    path.write_bytes(b"not a checkpoint at all")                       # foreign file, hash updated
    checkpoints.write_manifest_entry(folder, "lenet5-fmnist", {**entry, "sha256": checkpoints.sha256(path)})
    with pytest.raises(checkpoints.CheckpointError, match="not a readable course checkpoint"):
        recipes.shipped_model("lenet5-fmnist", folder=folder)

    torch.save({"weights": {}}, path)                                   # a torch file, but not ours
    checkpoints.write_manifest_entry(folder, "lenet5-fmnist", {**entry, "sha256": checkpoints.sha256(path)})
    with pytest.raises(checkpoints.CheckpointError, match="no 'model' entry"):
        recipes.shipped_model("lenet5-fmnist", folder=folder)

    with pytest.raises(checkpoints.CheckpointError, match="no shipped checkpoint named 'resnet50'"):
        recipes.shipped_model("resnet50")


def test_ship_saves_hashes_and_writes_the_manifest_entry(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    path = checkpoints.ship(model, tmp_path, "toy", recipe="tiny-fmnist", seed=1, epochs=2, test_accuracy=0.912345,
                            curve=[0.5, 0.912345], command="python -m course_lib train --recipe tiny-fmnist --register",
                            train_images=10, extra={"note": "x"})
    entry = checkpoints.read_manifest(tmp_path)["toy"]
    assert path == tmp_path / "toy.pt" and entry["file"] == "toy.pt" and entry["sha256"] == checkpoints.sha256(path)
    assert (entry["recipe"], entry["seed"], entry["epochs"], entry["test_accuracy"]) == ("tiny-fmnist", 1, 2, 0.9123)
    assert entry["training_curve"] == [0.5, 0.9123] and entry["parameters"] == 8 and entry["note"] == "x"
    assert entry["train_images"] == 10 and entry["command"].startswith("python -m course_lib train")
    assert torch.equal(checkpoints.verified_weights("toy", tmp_path)["0.weight"], model[0].weight)
    checkpoints.ship(model, tmp_path, "half", recipe="r", seed=0, epochs=1, test_accuracy=None, command="c", half=True)
    assert checkpoints.verified_weights("half", tmp_path)["0.weight"].dtype == torch.float16
    assert "training_curve" not in checkpoints.read_manifest(tmp_path)["half"]


def test_every_shipped_checkpoint_names_a_recipe_and_its_command():
    for name, entry in checkpoints.read_manifest().items():
        recipe = recipes.get_recipe(entry["recipe"])
        assert "command" in entry, name
        if not recipe.maker:                     # a plain classifier: trained from scratch by its recipe
            assert entry["command"].startswith(f"python -m course_lib train --recipe {entry['recipe']} "), name
            assert entry["epochs"] == recipe.epochs and entry["seed"] == 0, name


def test_rebuild_command_names_only_what_differs_from_the_recipe():
    assert checkpoints.rebuild_command("x-fmnist", 4, 4) == "python -m course_lib train --recipe x-fmnist --register"
    assert checkpoints.rebuild_command("x-fmnist", 2, 4, seed=3) == (
        "python -m course_lib train --recipe x-fmnist --register --epochs 2 --seed 3")


def test_round_to_half_gives_the_weights_that_a_half_ship_stores(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    model.weight.data[0, 0] = 1 + 2**-12  # not a float16 number
    checkpoints.round_to_half(model)
    checkpoints.ship(model, tmp_path, "half", recipe="tiny-fmnist", seed=0, epochs=1, test_accuracy=None,
                     command="c", half=True)
    stored = checkpoints.read_weights_file(tmp_path / "half.pt")["model"]
    assert model.weight[0, 0].item() == 1.0
    assert all(torch.equal(stored[k].float(), v) for k, v in model.state_dict().items())
