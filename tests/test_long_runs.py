"""The long runs that decide the claims of chapters 02, 04, 06 and 10: the makers run the chapters' own
code (checked here on a few hundred images) and ship nets that load as their recipes say."""

import copy

import pytest
import torch

from course_lib import __main__ as cli
from course_lib import checkpoints, data, models, prune, quant, recipes, train, wae


def small_loaders(monkeypatch, module, n=256):
    """Make ``module``'s ``data.loaders`` read ``n`` training and ``n`` test images (the real code path)."""
    real = data.loaders

    def loaders(*args, **kwargs):
        return real(*args, **{**kwargs, "train_subset": n, "test_subset": n})

    monkeypatch.setattr(module.data, "loaders", loaders)


def test_the_pruned_long_run_ships_a_plain_net_with_the_papers_per_layer_zeros(tmp_path, monkeypatch, fashion_ready):
    small_loaders(monkeypatch, prune)
    out = tmp_path / "lenet300-pruned-fmnist.pt"
    command = ["train", "--recipe", "lenet300-pruned-fmnist", "--register", "--out", str(out), "--epochs", "1"]
    assert cli.main(command) == 0
    entry = checkpoints.manifest_entry("lenet300-pruned-fmnist", tmp_path)
    assert [r["round"] for r in entry["rounds"]] == list(range(1, prune.LONG_ROUNDS + 1))
    assert entry["training_curve"] == [r["acc_retrained"] for r in entry["rounds"]]
    assert entry["command"] == "python -m course_lib train --recipe lenet300-pruned-fmnist --register --epochs 1"
    net = recipes.shipped_model("lenet300-pruned-fmnist", folder=tmp_path)  # a plain LeNet-300-100
    kept = {name: f for name, f in prune.sparsity(net, per_layer=True).items()}
    for layer, fraction in prune.HAN_KEPT["lenet300-fmnist"].items():
        assert 1 - kept[layer] == pytest.approx(fraction, abs=2e-3), layer
    assert round(prune.compression_ratio(net)) == 12 and entry["compression"] == pytest.approx(12.0, abs=0.1)
    _, test = data.loaders("fashion-mnist", 128, test_subset=256, augment=False)
    assert train.evaluate(net, test) == pytest.approx(entry["test_accuracy"], abs=1e-4)  # the recorded figure


def test_a_recipe_that_is_not_a_pruned_net_is_refused():
    with pytest.raises(ValueError, match="not a pruned net"):
        prune.ship_pruned("vgg-small-fmnist")
    with pytest.raises(ValueError, match="--resume and --lr do not apply"):
        prune.ship_pruned("lenet5-pruned-fmnist", lr=0.1)


def test_finetune_quantized_is_the_chapters_steps(fashion_ready):
    """quant.finetune_quantized = quantize_model + train.fit(adamw, FINETUNE_LR, no decay), as chapter 02 writes it."""
    train_data, test_data = data.loaders("fashion-mnist", 64, train_subset=128, test_subset=64, augment=False)
    start = models.lenet5()
    ours, by_hand = copy.deepcopy(start), copy.deepcopy(start)
    quant.finetune_quantized(ours, "ttq", train_data, None, 1)
    quant.quantize_model(by_hand, "ttq")
    train.fit(by_hand, train_data, None, 1, optimizer="adamw", lr=quant.FINETUNE_LR["ttq"], weight_decay=0.0,
              progress=False)
    for (name, a), b in zip(ours.state_dict().items(), by_hand.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="method='int3' is unknown"):
        quant.finetune_quantized(models.lenet5(), "int3", train_data, None, 1)


@pytest.mark.parametrize("method", ["ttq", "kmeans"])
def test_bake_weights_keeps_the_quantized_function_in_a_plain_net(method):
    torch.manual_seed(0)
    net = models.lenet5()
    if method == "kmeans":
        quant.share_weights(net, bits=quant.deep_compression_bits(net), train_others=False)
    else:
        quant.quantize_model(net, method)
    x = torch.randn(4, 1, 28, 28)
    expected = net(x)
    plain = models.lenet5()
    plain.load_state_dict(quant.bake_weights(net).state_dict())  # loads into a fresh, unquantized net
    assert torch.allclose(plain(x), expected, atol=1e-6)
    if method == "ttq":
        for layer in quant.default_layers(plain):
            assert torch.unique(plain.get_submodule(layer).weight).numel() == 3, layer  # -Wn, 0, Wp
    else:
        bits = quant.deep_compression_bits(models.lenet5())
        for layer, b in bits.items():
            assert torch.unique(plain.get_submodule(layer).weight).numel() <= 2**b, layer


def test_the_quantized_long_run_ships_ternary_levels_and_its_curve(tmp_path, monkeypatch, fashion_ready):
    small_loaders(monkeypatch, quant)
    out = tmp_path / "lenet5-ttq-fmnist.pt"
    assert cli.main(["train", "--recipe", "lenet5-ttq-fmnist", "--register", "--out", str(out), "--epochs", "1"]) == 0
    entry = checkpoints.manifest_entry("lenet5-ttq-fmnist", tmp_path)
    assert entry["method"] == "ttq" and entry["levels"] == {"3": 3, "7": 3}
    assert len(entry["training_curve"]) == 1 and entry["train_images"] == 256
    net = recipes.shipped_model("lenet5-ttq-fmnist", folder=tmp_path)
    assert {torch.unique(net.get_submodule(n).weight).numel() for n in ("3", "7")} == {3}
    _, test = data.loaders("fashion-mnist", 128, test_subset=256, augment=False)
    assert train.evaluate(net, test) == pytest.approx(entry["test_accuracy"], abs=1e-4)
    with pytest.raises(ValueError, match="not a fine-tuned LeNet-5"):
        quant.ship_finetuned("lenet5-int3-fmnist")


def test_the_wae_experiment_uses_trained_waes_instead_of_stage_1(random_images):
    """experiment(waes=...) copies the given WAEs (the long run of stage 1) and trains only stages 2-3."""
    train_data = random_images(64, 32, 0, True)
    gray = [(x[:, :1], y) for x, y in train_data]  # 1-channel images, as the shipped WAEs read
    base = models.vgg_small(in_channels=1, num_classes=10, widths=(4, 8, 16))
    torch.manual_seed(1)
    stage1 = {lam: wae.WAE(1) for lam in (0.0, 0.1, 1.0)}
    result = wae.experiment(base, gray, None, epochs=1, joint_epochs=0, waes=stage1, lr=0.01)
    for lam, trained in stage1.items():
        for a, b in zip(result["waes"][lam].state_dict().values(), trained.state_dict().values()):
            assert torch.equal(a, b)
    assert torch.equal(result["wae"].splitter.encoder[0].weight, stage1[0.1].encoder[0].weight)  # frozen in stage 2
    with pytest.raises(ValueError, match="it needs exactly lambdas"):
        wae.experiment(base, gray, None, epochs=1, waes={0.1: stage1[0.1]})


def test_every_long_run_net_is_a_recipe_that_rebuilds_its_architecture():
    for name in ("lenet5-ttq-fmnist", "lenet5-float-ft-fmnist", "lenet5-pruned-fmnist", "igc-l8m2-fmnist"):
        assert recipes.get_recipe(name)
    shapes = {name: sum(p.numel() for p in recipes.build_model(name).parameters()) for name in recipes.RECIPES
              if name.startswith("igc-")}
    assert abs(shapes["igc-regconv-w9-fmnist"] - shapes["igc-l4m4-fmnist"]) <= 0.01 * shapes["igc-l4m4-fmnist"]


LONG_RUNS = ["lenet300-pruned-fmnist", "lenet5-pruned-fmnist", "lenet5-ttq-fmnist", "lenet5-twn-fmnist",
             "lenet5-kmeans-fmnist", "lenet5-float-ft-fmnist", "wae-downsample-fmnist", "wae-haar-fmnist",
             "wae-decomp-fmnist", "wae-classifier-fmnist"]


@pytest.mark.parametrize("name", LONG_RUNS)
def test_the_shipped_long_runs_used_all_training_images_and_name_their_command(name):
    entry = checkpoints.manifest_entry(name)
    assert entry["train_images"] == 60_000
    assert entry["command"] == f"python -m course_lib train --recipe {name} --register"
    assert entry["epochs"] == recipes.get_recipe(name).epochs


def test_the_joint_stage_clips_its_gradient_and_stage_2_does_not(random_images, monkeypatch):
    """Stage 3 diverged to NaN without clipping (wae.JOINT_MAX_GRAD_NORM's comment has the measurement)."""
    calls = []
    real_fit = train.fit

    def spy(model, *args, **kwargs):
        calls.append(kwargs.get("max_grad_norm"))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(wae.train, "fit", spy)
    gray = [(x[:, :1], y) for x, y in random_images(32, 16, 0, True)]
    base = models.vgg_small(in_channels=1, num_classes=10, widths=(4, 8, 16))
    model = wae.variants(base, 1)["wae"]
    wae.train_classifier(model, gray, None, epochs=2, joint_epochs=1, lr=0.01, progress=False)
    assert calls == [None, wae.JOINT_MAX_GRAD_NORM]
