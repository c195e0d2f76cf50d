"""Tests of course_lib.wae: the Haar transform against PyWavelets, every shape contract, the loss
against its formula, the MAC arithmetic against measure.count_macs, the classifier's fusion against
a hand computation, the training stages, the explorer and the exercise checkers."""

import math

import numpy as np
import pytest
import pywt
import torch
import torch.nn as nn

from course_lib import checkpoints, data, measure, models, recipes, wae
from course_lib.checks import ExerciseError


def tiny_loader(n=32, channels=1, size=8, classes=3, batch=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, classes, (n,), generator=g)
    return data.DeviceLoader(images, labels, batch, shuffle=True, device="cpu", mean=[0.5] * channels,
                             std=[0.25] * channels)


# --------------------------------------------------------------------------- Haar

@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (1, 1, 28, 28), (3, 2, 2, 4)])
def test_haar_dwt_equals_pywavelets(shape):
    x = torch.randn(*shape, dtype=torch.float64)
    cA, (cH, cV, cD) = wae.haar_dwt(x)
    rA, (rH, rV, rD) = pywt.dwt2(x.numpy(), "haar", axes=(-2, -1))
    for ours, ref in ((cA, rA), (cH, rH), (cV, rV), (cD, rD)):
        assert ours.shape == (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)


def test_haar_idwt_is_the_exact_inverse_and_keeps_the_energy():
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    cA, details = wae.haar_dwt(x)
    assert torch.allclose(wae.haar_idwt(cA, details), x, atol=1e-12)
    ref = pywt.idwt2((cA.numpy(), tuple(d.numpy() for d in details)), "haar", axes=(-2, -1))
    np.testing.assert_allclose(wae.haar_idwt(cA, details).numpy(), ref, atol=1e-12)
    parts = wae.energy(cA) + sum(wae.energy(d) for d in details)                # Parseval: orthonormal
    assert float(parts) == pytest.approx(float(wae.energy(x)), rel=1e-12)
    assert wae.psnr(x, wae.haar_idwt(cA, details)) > 200


def test_haar_block_is_one_block_of_the_transform():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]], dtype=torch.float64)
    cA, details = wae.haar_dwt(x)
    assert wae.haar_block(1.0, 2.0, 3.0, 5.0) == pytest.approx((cA.item(), *(d.item() for d in details)))
    assert wae.haar_block(1.0, 2.0, 3.0, 5.0) == pytest.approx((5.5, -2.5, -1.5, 0.5))


def test_most_energy_of_a_smooth_image_is_in_cA():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    x = (torch.sin(3 * xx) + yy).view(1, 1, 16, 16)
    cA, details = wae.haar_dwt(x)
    assert wae.energy_fraction(cA, torch.cat(details, 1)) < 0.01


def test_odd_sizes_wrong_types_and_shapes_are_refused():
    with pytest.raises(ValueError, match="must be even"):
        wae.haar_dwt(torch.randn(1, 1, 7, 8))
    with pytest.raises(ValueError, match="must be even"):
        wae.WAE(1).encode(torch.randn(1, 1, 8, 9))
    with pytest.raises(ValueError, match="must be even"):
        wae.Downsample()(torch.randn(1, 1, 5, 5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        wae.haar_dwt(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        wae.haar_dwt(torch.randn(4, 4))
    with pytest.raises(ValueError, match="cH has shape"):
        wae.haar_idwt(torch.randn(1, 1, 2, 2), (torch.randn(1, 1, 2, 3), torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2)))
    with pytest.raises(TypeError, match="details"):
        wae.haar_idwt(torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2))


def test_pad_to_even_replicates_the_last_row_and_column():
    x = torch.randn(1, 2, 7, 5)
    y = wae.pad_to_even(x)
    assert y.shape == (1, 2, 8, 6)
    assert torch.equal(y[..., :7, :5], x) and torch.equal(y[..., 7, :5], x[..., 6, :])
    assert torch.equal(y[..., :7, 5], x[..., :, 4])
    even = torch.randn(1, 1, 4, 4)
    assert wae.pad_to_even(even) is even
    cA, _ = wae.haar_dwt(y)                                      # now splits
    assert cA.shape == (1, 2, 4, 3)


def test_energy_fraction_and_psnr():
    assert wae.energy_fraction(torch.ones(1, 1, 2, 2), 3 * torch.ones(1, 1, 2, 2)) == pytest.approx(0.9)
    assert wae.energy_fraction(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)) == 0.0
    x = torch.zeros(1, 1, 4, 4)
    x[..., 0, 0] = 1.0
    y = x.clone()
    y[..., 1, 1] = 0.1                                        # mse = 0.01 / 16, peak 1
    assert wae.psnr(x, y) == pytest.approx(10 * math.log10(16 / 0.01))
    assert wae.psnr(x, x) == math.inf
    with pytest.raises(ValueError, match="shapes differ"):
        wae.psnr(x, torch.zeros(1, 1, 2, 2))


# --------------------------------------------------------------------------- the WAE

@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (2, 6)])
def test_wae_contract_shapes(channels, size):
    model = wae.WAE(in_channels=channels, hidden=16)
    x = torch.randn(2, channels, size, size)
    low, high = model.encode(x)
    assert low.shape == high.shape == (2, channels, size // 2, size // 2)
    recon = model.decode(low, high)
    assert recon.shape == x.shape
    l2, h2, r2 = model(x)
    assert torch.equal(l2, low) and torch.equal(h2, high) and torch.equal(r2, recon)


def test_wae_architecture_is_the_papers():
    model = wae.WAE(3, 16)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == \
        [(3, 16, (3, 3), (1, 1)), (16, 16, (3, 3), (1, 1)), (16, 16, (3, 3), (1, 1))]
    assert sum(isinstance(m, nn.ReLU) for m in model.encoder) == 3
    for branch in (model.low, model.high):
        assert (branch.in_channels, branch.out_channels, branch.kernel_size, branch.stride) == (16, 3, (3, 3), (2, 2))


def test_wae_bad_inputs():
    with pytest.raises(ValueError, match="in_channels=3"):
        wae.WAE(3).encode(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="in_channels=1"):
        wae.WAE(1).decode(torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        wae.WAE(1).decode(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 2))
    with pytest.raises(ValueError, match="hidden=0"):
        wae.WAE(1, 0)
    with pytest.raises(TypeError, match="in_channels"):
        wae.WAE(1.5)


def test_wae_loss_is_reconstruction_plus_weighted_high_energy():
    x, recon = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    low, high = torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2)
    expected = ((recon - x) ** 2).mean() + 0.3 * (high ** 2).mean()
    assert torch.allclose(wae.wae_loss(x, low, high, recon, 0.3), expected)
    assert torch.allclose(wae.wae_loss(x, low, high, recon, 0), ((recon - x) ** 2).mean())
    with pytest.raises(ValueError, match="energy_weight=-0.1"):
        wae.wae_loss(x, low, high, recon, -0.1)
    with pytest.raises(ValueError, match="energy_weight=nan"):
        wae.wae_loss(x, low, high, recon, float("nan"))
    with pytest.raises(TypeError, match="energy_weight"):
        wae.wae_loss(x, low, high, recon, True)
    with pytest.raises(ValueError, match="recon"):
        wae.wae_loss(x, low, high, recon[..., :2], 0.1)


def test_pretraining_with_the_energy_term_empties_the_high_image():
    loader = tiny_loader(n=64, size=8, batch=16)
    fractions = {}
    for lam in (0.0, 1.0):
        torch.manual_seed(0)
        model = wae.WAE(1, 8)
        rows = wae.pretrain_wae(model, loader, epochs=6, energy_weight=lam, lr=1e-2)
        assert len(rows) == 24 and set(rows[0]) == {"step", "loss", "recon", "high_fraction"}
        assert rows[-1]["loss"] < rows[0]["loss"]
        fractions[lam] = np.mean([r["high_fraction"] for r in rows[-4:]])
    assert fractions[1.0] < fractions[0.0] / 2
    with pytest.raises(ValueError, match="energy_weight=-1"):
        wae.pretrain_wae(wae.WAE(1, 4), loader, energy_weight=-1)
    with pytest.raises(TypeError, match="WAE"):
        wae.pretrain_wae(nn.Linear(2, 2), loader)


# --------------------------------------------------------------------------- splitters and classifiers

def test_downsampling_by_two_bilinear_equals_average_pooling_equals_half_of_cA():
    x = torch.randn(2, 3, 8, 10, dtype=torch.float64)
    avg, bil = wae.Downsample("avg")(x), wae.Downsample("bilinear")(x)
    cA = pywt.dwt2(x.numpy(), "haar", axes=(-2, -1))[0]
    np.testing.assert_allclose(avg.numpy(), cA / 2, atol=1e-12)
    np.testing.assert_allclose(bil.numpy(), cA / 2, atol=1e-12)
    with pytest.raises(ValueError, match="mode='nearest'"):
        wae.Downsample("nearest")


def test_haar_split_has_the_wae_interface():
    split = wae.HaarSplit(2)
    x = torch.randn(1, 2, 6, 6)
    low, high = split.encode(x)
    cA, details = wae.haar_dwt(x)
    assert torch.equal(low, cA) and torch.equal(high, torch.cat(details, 1)) and split.high_channels == 6
    assert torch.allclose(split(x)[2], x, atol=1e-6)
    with pytest.raises(ValueError, match="in_channels=2"):
        split.encode(torch.randn(1, 3, 6, 6))


def test_classifier_adds_fusion_logits_to_the_base_logits():
    torch.manual_seed(0)
    base = models.vgg_small(5, 1, (4, 8, 8))
    model = wae.WAEClassifier(base, wae.high_branch(1, (4, 6)), wae.WAE(1, 4), 5, fusion_hidden=7).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        low, high = model.splitter.encode(x)
        f = base[:-1](low)
        expected = base[-1](f) + model.fusion(torch.cat([f, model.high_net(high)], 1))
        assert torch.allclose(model(x), expected, atol=1e-6)
    assert model.fusion[0].in_features == 8 + 6
    model.train().joint = True
    logits, aux = model(x)
    assert logits.shape == (3, 5) and aux.dim() == 0


def test_classifier_bad_inputs():
    base = models.vgg_small(4, 1, (4, 4, 4))
    with pytest.raises(TypeError, match="nn.Sequential ending"):
        wae.WAEClassifier(nn.Conv2d(1, 1, 3), wae.high_branch(1), wae.WAE(1), 4)
    with pytest.raises(TypeError, match="splitter"):
        wae.WAEClassifier(base, wae.high_branch(1), nn.Identity(), 4)
    with pytest.raises(TypeError, match="out_features"):
        wae.WAEClassifier(base, nn.Identity(), wae.WAE(1), 4)
    with pytest.raises(ValueError, match="num_classes=10"):
        wae.WAEClassifier(base, wae.high_branch(1), wae.WAE(1), 10)
    with pytest.raises(ValueError, match="kind='resnet'"):
        wae.build("resnet")


@pytest.mark.parametrize("kind", ["wae", "full", "downsample", "haar", "wae-classifier"])
def test_build_and_the_models_registry(kind):
    model = recipes.MODELS["wae"](kind=kind, num_classes=10, in_channels=3, widths=(4, 8, 8))
    x = torch.randn(2, 3, 32, 32)
    out = model.eval()(x)
    if kind == "wae":
        assert [t.shape[-1] for t in out] == [16, 16, 32]
    else:
        assert out.shape == (2, 10)


def test_train_classifier_stages_freeze_then_fine_tune_the_splitter():
    loader = tiny_loader()
    torch.manual_seed(0)
    model = wae.build("wae-classifier", num_classes=3, in_channels=1, widths=(4, 4, 4), high_widths=(4,),
                      energy_weight=0.1)
    before = {k: v.clone() for k, v in model.splitter.state_dict().items()}
    hist = wae.train_classifier(model, loader, epochs=1, joint_epochs=0, progress=False, device="cpu")
    assert len(hist) == 1
    assert all(torch.equal(before[k], v) for k, v in model.splitter.state_dict().items())   # stage 2: frozen
    assert all(p.requires_grad for p in model.splitter.parameters()) and not model.joint
    wae.train_classifier(model, loader, epochs=1, joint_epochs=1, progress=False, device="cpu")
    assert any(not torch.equal(before[k], v) for k, v in model.splitter.state_dict().items())  # stage 3
    assert not model.joint
    with pytest.raises(ValueError, match="joint_epochs=3"):
        wae.train_classifier(model, loader, epochs=2, joint_epochs=3)


def test_experiment_builds_every_variant_from_the_base():
    loader = tiny_loader(n=16, size=8, batch=8)
    base = models.vgg_small(3, 1, (4, 4, 4))
    out = wae.experiment(base, loader, epochs=1, joint_epochs=1, wae_epochs=1, lambdas=(0.0, 0.5), wae_lambda=0.5)
    assert set(out) == {"waes", *wae.VARIANTS} and set(out["waes"]) == {0.0, 0.5}
    assert isinstance(out["haar"].splitter, wae.HaarSplit) and out["wae"].energy_weight == 0.5
    with pytest.raises(ValueError, match="must contain 0"):
        wae.experiment(base, loader, lambdas=(0.1,), wae_lambda=0.1)


# --------------------------------------------------------------------------- costs

@pytest.mark.parametrize("c,hidden,h,w", [(1, 16, 28, 28), (3, 16, 32, 32), (2, 5, 6, 10)])
def test_encoder_macs_equal_measured_macs(c, hidden, h, w):
    model = wae.WAE(c, hidden)
    enc = nn.Sequential(model.encoder, model.low)
    measured = measure.count_macs(enc, (c, h, w)) + measure.count_macs(model.high, (hidden, h, w))
    assert wae.encoder_macs(c, hidden, h, w) == measured
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model.encode(torch.randn(1, c, h, w))
    assert counter.get_total_flops() == 2 * measured


def test_classifier_macs_are_base_at_half_resolution_plus_encoder_and_high_branch():
    kw = dict(num_classes=10, in_channels=1, widths=(8, 8, 8))
    full, half = wae.build("full", **kw), wae.build("wae-classifier", **kw)
    base_half = measure.count_macs(models.vgg_small(10, 1, (8, 8, 8)), (1, 14, 14))
    high = measure.count_macs(wae.high_branch(1), (1, 14, 14))
    fusion = (8 + 32) * 64 + 64 * 10
    assert measure.count_macs(half, (1, 28, 28)) == base_half + wae.encoder_macs(1, 16, 28, 28) + high + fusion
    assert base_half < measure.count_macs(full, (1, 28, 28)) / 3.9
    assert wae.speedup_bound(400, 0) == 4.0 and wae.speedup_bound(400, 100) == 2.0
    with pytest.raises(ValueError, match="base_macs_full"):
        wae.speedup_bound(0, 1)


def test_cost_report_and_sweep():
    kw = dict(num_classes=4, in_channels=1, widths=(4, 4, 4))
    report = wae.cost_report({"full": wae.build("full", **kw), "down": wae.build("downsample", **kw)}, (1, 8, 8),
                             {"full": 0.9}, min_run_time=0.01)
    assert report[0].mac_ratio == 1.0 and report[0].speedup == 1.0
    assert report.find(name="down").mac_ratio > 3 and report.find(name="down").accuracy is None
    assert isinstance(report, wae.WaeCostReport) and report.table().splitlines()[2].split()[:2] == ["full", "90.00"]
    assert report.table().splitlines()[3].split()[1] == "-"
    assert "full" in report.table() and "90.00" in report.table()
    rows = wae.speedup_sweep([4], size=8, batch=2, min_run_time=0.01)
    assert rows[0].mac_speedup == pytest.approx(rows[0].base_macs / rows[0].wae_macs)
    with pytest.raises(ValueError, match="named_models"):
        wae.cost_report({}, (1, 8, 8))


# --------------------------------------------------------------------------- explorer

def test_explorer_state_and_widget():
    images = torch.randn(3, 1, 8, 8)
    waes = {0.0: wae.WAE(1, 4), 0.1: wae.WAE(1, 4)}
    s = wae.decomposition_state(1, 0.1, images, waes)
    assert s.low.shape == s.high.shape == (1, 4, 4) and s.details.shape == (3, 4, 4)
    assert s.haar_psnr > 100 and 0 <= s.high_fraction <= 1
    cA, details = wae.haar_dwt(images[1:2])
    assert s.haar_high_fraction == pytest.approx(wae.energy_fraction(cA, torch.cat(details, 1)))
    with pytest.raises(ValueError, match="image=3"):
        wae.decomposition_state(3, 0.1, images, waes)
    with pytest.raises(ValueError, match="energy_weight=0.5"):
        wae.decomposition_state(0, 0.5, images, waes)
    box = wae.decomposition_explorer(images, waes)
    assert box.error is None and "PSNR" in box.readout.value
    before = box.readout.value
    box.set(image=2)
    assert box.error is None and box.readout.value != before
    rgb = wae.decomposition_explorer(torch.randn(2, 3, 8, 8), {0.0: wae.WAE(3, 4)})
    assert rgb.error is None


def test_shipped_checkpoints_load_and_lambda_empties_the_high_image(fashion_ready):
    shipped = wae.load_shipped()
    entries = checkpoints.read_manifest()
    for name in wae.SHIPPED.values():
        assert entries[name]["parameters"] == measure.count_params(recipes.shipped_model(name))
    x, _ = next(iter(data.loaders("fashion-mnist", 64, test_subset=64, device="cpu")[1]))
    with torch.no_grad():
        fractions = {lam: wae.energy_fraction(*m(x)[:2]) for lam, m in shipped["waes"].items()}
    assert fractions[0.1] < fractions[0.0] / 10 and fractions[1.0] <= fractions[0.1]


def test_evaluate_wae_is_the_mean_of_per_image_psnrs_and_the_pooled_energy_fraction():
    torch.manual_seed(0)
    model = wae.WAE(1).eval()
    x = torch.randn(6, 1, 8, 8)
    batches = [(x[:4], torch.zeros(4)), (x[4:], torch.zeros(2))]
    db, high = wae.evaluate_wae(model, batches)
    with torch.no_grad():
        low_t, high_t, recon = model(x)
    by_hand = sum(wae.psnr(x[i:i + 1], recon[i:i + 1]) for i in range(6)) / 6
    assert db == pytest.approx(by_hand, rel=1e-6)
    assert high == pytest.approx(wae.energy_fraction(low_t, high_t), rel=1e-6)
    assert not model.training
    with pytest.raises(ValueError, match="no images"):
        wae.evaluate_wae(model, [])
    with pytest.raises(TypeError, match="must be a WAE"):
        wae.evaluate_wae(torch.nn.Conv2d(1, 1, 1), batches)


def test_pretrain_wae_records_each_epoch_on_the_test_set_and_stops_at_the_plateau():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    batches = [(x[:4], torch.zeros(4)), (x[4:], torch.zeros(4))]
    rows = wae.pretrain_wae(wae.WAE(1), batches, epochs=5, test_data=batches, min_gain_db=1e6)
    epochs = [r for r in rows if "epoch" in r]
    assert [r["epoch"] for r in epochs] == [1, 2] and len(rows) == 4    # epoch 2 gains < 1e6 dB: stop
    assert all(r["test_psnr"] > 0 and 0 <= r["test_high_fraction"] <= 1 for r in epochs)
    assert len(wae.pretrain_wae(wae.WAE(1), batches, epochs=3, test_data=batches)) == 6     # no rule: every epoch
    with pytest.raises(ValueError, match="min_gain_db needs test_data"):
        wae.pretrain_wae(wae.WAE(1), batches, min_gain_db=0.1)


def test_pretrain_wae_keeps_the_best_weights_when_an_epoch_makes_it_worse():
    """Early stopping: a resumed run whose first epoch does not beat ``baseline_db`` ends with the
    weights it started from; a run that improves keeps its last epoch."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    batches = [(x[:4], torch.zeros(4)), (x[4:], torch.zeros(4))]
    model = wae.WAE(1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    rows = wae.pretrain_wae(model, batches, epochs=3, test_data=batches, min_gain_db=0.1, baseline_db=1e6, lr=0.1)
    assert [r["epoch"] for r in rows if "epoch" in r] == [1]
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
    model = wae.WAE(1)
    wae.pretrain_wae(model, batches, epochs=1, test_data=batches, min_gain_db=0.0, baseline_db=-1e6)
    assert not all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
