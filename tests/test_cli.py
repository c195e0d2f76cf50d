import subprocess
import sys

import torch

from course_lib import __main__ as cli
from course_lib.checkpoints import read_manifest, read_weights


def test_recipes_listing(capsys):
    assert cli.main(["recipes"]) == 0
    assert "vgg-small-fmnist" in capsys.readouterr().out


def test_unknown_recipe_is_a_clear_error(capsys):
    assert cli.main(["train", "--recipe", "alexnet-imagenet"]) == 2
    assert "recipe 'alexnet-imagenet' is unknown" in capsys.readouterr().err


def test_train_writes_weights_and_manifest(tmp_path, fashion_ready, capsys):
    out = tmp_path / "tiny.pt"
    assert cli.main(["train", "--recipe", "tiny-fmnist", "--epochs", "1", "--out", str(out), "--register",
                     "--no-progress"]) == 0
    assert "test_accuracy=" in capsys.readouterr().out
    entry = read_manifest(tmp_path)["tiny"]
    assert entry["recipe"] == "tiny-fmnist" and entry["epochs"] == 1 and len(entry["sha256"]) == 64
    assert len(entry["training_curve"]) == 1 and entry["training_curve"][0] == entry["test_accuracy"]
    assert entry["command"] == "python -m course_lib train --recipe tiny-fmnist --out tiny.pt --register --epochs 1"
    assert entry["train_images"] > 0
    assert set(read_weights(out)) == {"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"}


def test_torchrun_two_cpu_processes_end_with_equal_replicas(tmp_path, fashion_ready):
    out = str(tmp_path / "replica{rank}.pt")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "course_lib", "train", "--recipe", "tiny-fmnist", "--epochs", "1", "--out", out, "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                            env={**__import__("os").environ, "COURSE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = read_weights(tmp_path / "replica0.pt"), read_weights(tmp_path / "replica1.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    torch.manual_seed(0)
    from course_lib.recipes import build_model
    untrained = build_model("tiny-fmnist").state_dict()
    assert not torch.equal(a["1.weight"], untrained["1.weight"])


def test_a_fine_tuned_recipe_is_made_by_its_maker_and_needs_register(capsys):
    assert cli.main(["train", "--recipe", "capstone-fmnist"]) == 2
    assert "capstone:ship_solution" in capsys.readouterr().err
    assert cli.main(["train", "--recipe", "tiny-fmnist", "--resume"]) == 2
    assert "use --checkpoint" in capsys.readouterr().err


def test_every_maker_takes_what_the_command_line_passes(tmp_path, monkeypatch):
    """`train --recipe NAME --register` calls a maker with these keywords (it once failed for capstone-fmnist)."""
    import importlib
    import inspect

    from course_lib import capstone, recipes, train

    makers = {r.maker for r in recipes.RECIPES.values() if r.maker}
    assert makers == {"capstone:ship_solution", "wae:ship_recipe", "prune:ship_pruned", "quant:ship_finetuned"}
    for maker in makers:
        module, function = maker.split(":")
        make = getattr(importlib.import_module(f"course_lib.{module}"), function)
        inspect.signature(make).bind("name", folder=None, epochs=None, seed=0, lr=None, resume=False)
    # the capstone's maker end to end, with a stand-in for the minutes-long fine-tuning
    calls = []

    def quick_solution(**kwargs):
        calls.append(kwargs)
        history = train.History(test_acc=[0.5, 0.75])
        return torch.nn.Linear(2, 2), history

    monkeypatch.setattr(capstone, "make_solution", quick_solution)
    out = tmp_path / "capstone-fmnist.pt"
    assert cli.main(["train", "--recipe", "capstone-fmnist", "--register", "--out", str(out), "--lr", "0.01"]) == 0
    entry = read_manifest(tmp_path)["capstone-fmnist"]
    assert calls == [{"epochs": capstone.SOLUTION_EPOCHS, "seed": 0, "lr": 0.01}]
    assert entry["training_curve"] == [0.5, 0.75] and entry["test_accuracy"] == 0.75
    assert entry["command"] == "python -m course_lib train --recipe capstone-fmnist --register --lr 0.01"
    assert cli.main(["train", "--recipe", "capstone-fmnist", "--register", "--out", str(out), "--resume"]) == 2
