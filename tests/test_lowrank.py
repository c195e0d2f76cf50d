import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import lowrank as lr
from course_lib import measure
from course_lib.models import vgg_small


def decaying_matrix(m, n, seed=0):
    """A random matrix with singular values 1, 0.8, 0.64, … (a clear spectrum, no ties)."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    k = min(m, n)
    return (U[:, :k] * 0.8 ** torch.arange(k, dtype=torch.float64)) @ V[:, :k].T


def conv_with(seed=0, **kwargs):
    torch.manual_seed(seed)
    return nn.Conv2d(**{"in_channels": 6, "out_channels": 10, "kernel_size": 3, "padding": 1, **kwargs})


# --------------------------------------------------------------------------- linear algebra

def test_truncated_svd_error_is_eckart_young_and_beats_other_rank_r_fits():
    W = decaying_matrix(30, 20)
    g = torch.Generator().manual_seed(1)
    for r in (1, 5, 19):
        U, S, Vh, all_s = lr.truncated_svd(W, r)
        err = torch.linalg.matrix_norm(W - U @ torch.diag(S) @ Vh).item()
        assert err == pytest.approx(lr.svd_error_bound(all_s, r), rel=1e-9)
        assert err == pytest.approx(math.sqrt(sum(0.8 ** (2 * i) for i in range(r, 20))), rel=1e-9)
        for _ in range(5):     # best fit in a random r-dim column space is never better
            Q, _ = torch.linalg.qr(torch.randn(30, r, generator=g, dtype=torch.float64))
            assert torch.linalg.matrix_norm(W - Q @ (Q.T @ W)).item() >= err - 1e-12
    U, S, Vh, _ = lr.truncated_svd(W, 20)
    assert torch.allclose(U @ torch.diag(S) @ Vh, W, atol=1e-12)


def test_energy_and_rank_for_energy_against_brute_force():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0, 0.5])
    total = float((s ** 2).sum())
    for r in range(1, 6):
        assert lr.kept_energy(s, r) == pytest.approx(float((s[:r] ** 2).sum()) / total)
    for energy in (0.1, 0.7, 0.8, 0.95, 0.99, 1.0):
        brute = min(r for r in range(1, 6) if float((s[:r] ** 2).sum()) / total >= energy - 1e-12)
        assert lr.rank_for_energy(s, energy) == brute
    with pytest.raises(ValueError, match=r"energy=1.5 must be in \(0, 1\]"):
        lr.rank_for_energy(s, 1.5)


def test_rank_for_budget_and_factorized_params_against_brute_force_and_real_layers():
    for m, n in ((100, 100), (96, 864), (10, 784), (24, 9)):
        for budget in (0.01, 0.2, 0.5, 0.9, 1.0):
            fits = [r for r in range(1, min(m, n) + 1) if r * (m + n) <= budget * m * n]
            assert lr.rank_for_budget(m, n, budget) == (max(fits) if fits else 1)
    assert lr.factorized_params(100, 100, 10) == 2000          # the seed's "one fifth"
    layer = nn.Linear(50, 30, bias=False)
    assert measure.count_params(lr.decompose_linear(layer, 7)) == lr.factorized_params(30, 50, 7)
    with pytest.raises(ValueError, match=r"budget=0 must be in \(0, 1\]"):
        lr.rank_for_budget(10, 10, 0)


@pytest.mark.parametrize("rank, error, match", [(0, ValueError, r"rank=0 is outside 1\.\.20"),
                                                (21, ValueError, r"rank=21 is outside 1\.\.20"),
                                                (2.5, TypeError, r"rank=2\.5 must be an integer"),
                                                (True, TypeError, "must be an integer")])
def test_ranks_outside_range_are_clear_errors(rank, error, match):
    with pytest.raises(error, match=match):
        lr.decompose_linear(nn.Linear(20, 30), rank)


# --------------------------------------------------------------------------- linear layers

def test_decompose_linear_reconstruction_bound_and_full_rank():
    torch.manual_seed(0)
    layer = nn.Linear(40, 25)
    x = torch.randn(64, 40)
    full = lr.decompose_linear(layer, 25)
    assert torch.allclose(full(x), layer(x), atol=1e-5)
    s = torch.linalg.svdvals(layer.weight.detach().double())
    for r in (1, 6, 24):
        small = lr.decompose_linear(layer, r)
        assert isinstance(small.first, nn.Linear) and small.first.out_features == r and small.first.bias is None
        assert torch.linalg.matrix_norm(lr.composed_weight(small) - layer.weight).item() == \
            pytest.approx(small.error_bound, rel=1e-4)
        assert small.error_bound == pytest.approx(float(s[r:].pow(2).sum().sqrt()), rel=1e-6)
        # per input: ||Wx − W_r x|| ≤ σ_{r+1} ||x||
        gap = (small(x) - layer(x)).norm(dim=1)
        assert torch.all(gap <= float(s[r]) * x.norm(dim=1) + 1e-4)
    no_bias = nn.Linear(8, 5, bias=False)
    assert lr.decompose_linear(no_bias, 3).second.bias is None


def test_decompose_linear_rejects_convs():
    with pytest.raises(TypeError, match="needs an nn.Linear, got Conv2d"):
        lr.decompose_linear(nn.Conv2d(3, 4, 3), 2)


# --------------------------------------------------------------------------- channel decomposition

@pytest.mark.parametrize("kwargs", [{}, {"stride": 2}, {"dilation": 2, "padding": 2}, {"bias": False},
                                    {"padding": "same"}, {"padding_mode": "reflect"}, {"kernel_size": (3, 5), "padding": (1, 2)}])
def test_channel_decomposition_full_rank_is_exact(kwargs):
    conv = conv_with(**kwargs)
    x = torch.randn(2, 6, 11, 12)
    max_rank = min(10, conv.weight[0].numel())
    out = lr.decompose_conv_channels(conv, max_rank)
    assert out.first.kernel_size == conv.kernel_size and out.second.kernel_size == (1, 1)
    assert torch.allclose(out(x), conv(x), atol=1e-5)
    assert out.error_bound == pytest.approx(0.0, abs=1e-5)


def test_channel_decomposition_matches_truncated_svd_and_output_bound():
    conv = conv_with(out_channels=16)
    x = torch.randn(3, 6, 9, 9)
    W = conv.weight.detach().reshape(16, -1).double()
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    patches = F.unfold(x, 3, padding=1).double()                      # (N, c·k·k, L)
    for r in (1, 4, 15):
        out = lr.decompose_conv_channels(conv, r)
        assert out.first.out_channels == r and out.second.weight.shape == (16, r, 1, 1)
        composed = lr.composed_weight(out).double().reshape(16, -1)
        assert torch.allclose(composed, U[:, :r] @ torch.diag(S[:r]) @ Vh[:r], atol=1e-5)
        assert torch.linalg.matrix_norm(composed - W).item() == pytest.approx(out.error_bound, rel=1e-4)
        # the two convs apply exactly the composed weight (independent reference: F.conv2d)
        assert torch.allclose(out(x), F.conv2d(x, lr.composed_weight(out), conv.bias, padding=1), atol=1e-5)
        # and each output vector moves by at most σ_{r+1} · ||patch||
        gap = (out(x) - conv(x)).double().flatten(2).norm(dim=1)       # (N, L)
        assert torch.all(gap <= float(S[r]) * patches.norm(dim=1) + 1e-4)


def test_channel_decomposition_rejects_grouped_and_non_conv_layers():
    with pytest.raises(ValueError, match="groups=2 is not supported"):
        lr.decompose_conv_channels(nn.Conv2d(4, 8, 3, groups=2), 2)
    with pytest.raises(TypeError, match="needs an nn.Conv2d, got Linear"):
        lr.decompose_conv_channels(nn.Linear(4, 8), 2)
    with pytest.raises(TypeError, match="got Conv1d"):
        lr.decompose_conv_channels(nn.Conv1d(4, 8, 3), 2)
    with pytest.raises(ValueError, match=r"rank=11 is outside 1\.\.10"):
        lr.decompose_conv_channels(conv_with(), 11)
    with pytest.raises(ValueError, match=r"data must be sample inputs of this layer, shape \(N, 6, H, W\)"):
        lr.decompose_conv_channels(conv_with(), 3, data=torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match="approx_data needs data"):
        lr.decompose_conv_channels(conv_with(), 3, approx_data=torch.randn(2, 6, 8, 8))


def low_rank_inputs(n=8, c=6, hw=10, seed=0):
    """Inputs whose channels are correlated, as real feature maps are."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, 2, generator=g)
    return torch.einsum("ck,nkhw->nchw", mix, torch.randn(n, 2, hw, hw, generator=g)) \
        + 0.1 * torch.randn(n, c, hw, hw, generator=g) + 0.5


def test_data_driven_is_pca_of_responses_and_beats_weight_svd_on_the_sample():
    conv = conv_with(out_channels=12)
    x = low_rank_inputs()
    with torch.no_grad():
        y = conv(x) - conv.bias[:, None, None]
    responses = y.transpose(0, 1).reshape(12, -1).double()
    eig = torch.linalg.eigvalsh(torch.cov(responses, correction=0))        # ascending
    for r in (1, 3, 8):
        data_fit = lr.decompose_conv_channels(conv, r, data=x)
        weight_fit = lr.decompose_conv_channels(conv, r)
        with torch.no_grad():
            rms = (data_fit(x) - conv(x)).pow(2).sum(1).mean().sqrt().item()
            rms_weight = (weight_fit(x) - conv(x)).pow(2).sum(1).mean().sqrt().item()
        assert rms == pytest.approx(data_fit.error_bound, rel=1e-3, abs=1e-6)
        assert rms == pytest.approx(float(eig[: 12 - r].sum().sqrt()), rel=1e-3, abs=1e-6)
        assert rms <= rms_weight + 1e-6
        assert data_fit.method == "data"
    full = lr.decompose_conv_channels(conv, 12, data=x)
    assert torch.allclose(full(x), conv(x), atol=1e-4)


def test_asymmetric_equals_symmetric_on_exact_inputs_and_corrects_shifted_inputs():
    conv = conv_with(out_channels=12)
    x = low_rank_inputs()
    x_hat = x + 0.3 * low_rank_inputs(seed=5)                  # the approximated network's inputs
    sym = lr.decompose_conv_channels(conv, 4, data=x)
    same = lr.decompose_conv_channels(conv, 4, data=x, approx_data=x)
    with torch.no_grad():
        assert torch.allclose(sym(x), same(x), atol=1e-6)
        asym = lr.decompose_conv_channels(conv, 4, data=x, approx_data=x_hat)
        err_asym = (asym(x_hat) - conv(x)).pow(2).sum(1).mean().sqrt().item()
        err_sym = (sym(x_hat) - conv(x)).pow(2).sum(1).mean().sqrt().item()
    assert asym.method == "asymmetric"
    assert err_asym == pytest.approx(asym.error_bound, rel=1e-3)
    assert err_asym < err_sym
    # full rank: the least-squares map ŷ → y (reference: torch.linalg.lstsq with a constant column)
    full = lr.decompose_conv_channels(conv, 12, data=x, approx_data=x_hat)
    with torch.no_grad():
        y = (conv(x) - conv.bias[:, None, None]).transpose(0, 1).reshape(12, -1).double()
        y_hat = (conv(x_hat) - conv.bias[:, None, None]).transpose(0, 1).reshape(12, -1).double()
        design = torch.cat([y_hat, torch.ones(1, y_hat.shape[1], dtype=torch.float64)]).T
        coef = torch.linalg.lstsq(design, y.T).solution
        reference = (design @ coef).T.reshape(12, x.shape[0], 10, 10).transpose(0, 1) + conv.bias[:, None, None]
        assert torch.allclose(full(x_hat).double(), reference, atol=1e-4)


# --------------------------------------------------------------------------- spatial decomposition

@pytest.mark.parametrize("kwargs", [{}, {"stride": 2}, {"stride": (2, 1), "dilation": (1, 2), "padding": (1, 2)},
                                    {"bias": False}, {"padding": "same"}, {"padding_mode": "reflect"},
                                    {"kernel_size": (3, 5), "padding": 0}])
def test_spatial_decomposition_full_rank_is_exact(kwargs):
    conv = conv_with(**kwargs)
    d, c, kh, kw = conv.weight.shape
    x = torch.randn(2, 6, 11, 12)
    out = lr.decompose_conv_spatial(conv, min(c * kh, d * kw))
    assert out.first.kernel_size == (kh, 1) and out.second.kernel_size == (1, kw)
    assert torch.allclose(out(x), conv(x), atol=1e-5)


def test_spatial_decomposition_matches_svd_of_rearranged_kernel():
    conv = conv_with()
    x = torch.randn(2, 6, 9, 9)
    M = conv.weight.detach().double().permute(1, 2, 0, 3).reshape(18, 30)      # rows (c, i), columns (d, j)
    s = torch.linalg.svdvals(M)
    for r in (1, 2, 7):
        out = lr.decompose_conv_spatial(conv, r)
        assert out.first.out_channels == r
        assert out.error_bound == pytest.approx(float(s[r:].pow(2).sum().sqrt()), rel=1e-6)
        W = lr.composed_weight(out)
        assert torch.linalg.matrix_norm((W - conv.weight).flatten(1)).item() == pytest.approx(out.error_bound, rel=1e-4)
        assert torch.allclose(out(x), F.conv2d(x, W, conv.bias, padding=1), atol=1e-5)
    # rank 1 of a single filter is an outer product: a separable filter is recovered exactly
    sep = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        sep.weight.copy_(torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0]))[None, None])
    assert torch.allclose(lr.decompose_conv_spatial(sep, 1)(x[:, :1]), sep(x[:, :1]), atol=1e-5)


def test_spatial_decomposition_errors():
    with pytest.raises(ValueError, match=r"kernel_size=\(1, 1\): a kernel with a side of 1"):
        lr.decompose_conv_spatial(nn.Conv2d(4, 4, 1), 1)
    with pytest.raises(ValueError, match="groups=4 is not supported"):
        lr.decompose_conv_spatial(nn.Conv2d(4, 4, 3, groups=4), 1)
    with pytest.raises(ValueError, match=r"rank=19 is outside 1\.\.18"):
        lr.decompose_conv_spatial(conv_with(), 19)
    with pytest.raises(TypeError, match="needs an nn.Conv2d"):
        lr.decompose_conv_spatial(nn.Linear(3, 3), 1)


def test_output_scale_weights_the_error_per_output_channel():
    conv = conv_with(out_channels=16)
    scale = torch.linspace(0.2, 3.0, 16)
    x = low_rank_inputs()
    for fn, rank, full in ((lr.decompose_conv_channels, 5, 16), (lr.decompose_conv_spatial, 5, 18)):
        weighted, plain = fn(conv, rank, output_scale=scale), fn(conv, rank)
        err = lambda out: ((lr.composed_weight(out) - conv.weight) * scale[:, None, None, None]).norm().item()
        assert err(weighted) == pytest.approx(weighted.error_bound, rel=1e-4)
        assert err(weighted) < err(plain)
        with torch.no_grad():
            assert torch.allclose(fn(conv, full, output_scale=scale)(x), conv(x), atol=1e-4)
    data_fit = lr.decompose_conv_channels(conv, 5, data=x, output_scale=scale)
    with torch.no_grad():
        weighted_rms = lambda out: ((out(x) - conv(x)) * scale[:, None, None]).pow(2).sum(1).mean().sqrt().item()
        assert weighted_rms(data_fit) == pytest.approx(data_fit.error_bound, rel=1e-3)
        assert weighted_rms(data_fit) < weighted_rms(lr.decompose_conv_channels(conv, 5, data=x))
    with pytest.raises(ValueError, match="output_scale must hold 16 positive finite numbers"):
        lr.decompose_conv_channels(conv, 5, output_scale=torch.zeros(16))


# --------------------------------------------------------------------------- whole models

@pytest.fixture
def small_vgg():
    torch.manual_seed(0)
    model = vgg_small(widths=(8, 16, 24)).eval()
    for m in model.modules():                  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


LATER = ["1.0", "3.0", "4.0", "6.0", "7.0"]                       # every conv but the first


def test_following_batchnorm_scale_and_bn_aware_compression(small_vgg):
    scales = lr.following_batchnorm_scale(small_vgg)
    assert sorted(scales) == ["0.0", "1.0", "3.0", "4.0", "6.0", "7.0"]
    bn = small_vgg.get_submodule("4.1")
    assert torch.allclose(scales["4.0"], bn.weight.abs() / (bn.running_var + bn.eps).sqrt())
    aware = lr.compress_model(small_vgg, 0.5, "channels", layers=LATER, bn_aware=True)
    direct = lr.decompose_conv_channels(small_vgg.get_submodule("4.0"), aware.get_submodule("4.0").rank,
                                        output_scale=scales["4.0"])
    assert torch.allclose(lr.composed_weight(aware.get_submodule("4.0")), lr.composed_weight(direct), atol=1e-6)
    with pytest.raises(ValueError, match=r"output_scale must hold 16 positive finite numbers"):
        lr.decompose_conv_spatial(small_vgg.get_submodule("4.0"), 2, output_scale=torch.ones(15))


def test_decomposable_layers_and_layer_inputs(small_vgg):
    assert list(lr.decomposable_layers(small_vgg, "channels")) == ["0.0", "1.0", "3.0", "4.0", "6.0", "7.0"]
    assert lr.decomposable_layers(small_vgg, "svd") == {"10": small_vgg[10]}
    with pytest.raises(ValueError, match="method='tucker' is unknown"):
        lr.decomposable_layers(small_vgg, "tucker")
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(lr.layer_inputs(small_vgg, "3.0", x), small_vgg[:3](x))


@pytest.mark.parametrize("method", ["channels", "data", "asymmetric", "spatial"])
def test_compress_model_meets_budget_and_leaves_original_alone(small_vgg, method):
    x = torch.randn(8, 1, 16, 16)
    before = {k: v.clone() for k, v in small_vgg.state_dict().items()}
    compressed = lr.compress_model(small_vgg, 0.5, method, data=x, layers=LATER)
    assert all(torch.equal(v, small_vgg.state_dict()[k]) for k, v in before.items())
    assert not compressed.training and isinstance(small_vgg.get_submodule("1.0"), nn.Conv2d)
    decomposed = {row.layer: row.rank for row in lr.lowrank_summary(compressed)}
    assert "0.0" not in decomposed and set(decomposed) == {"1.0", "3.0", "4.0", "6.0", "7.0"}
    old = {row.name: row.macs for row in measure.layer_table(small_vgg, (1, 16, 16))}
    new = {row.name: row.macs for row in measure.layer_table(compressed, (1, 16, 16))}
    for name in decomposed:      # each layer's two thin convs cost at most half of the original
        assert new[name + ".first"] + new[name + ".second"] <= 0.5 * old[name]
    assert measure.count_macs(compressed, (1, 16, 16)) < 0.55 * measure.count_macs(small_vgg, (1, 16, 16))
    assert compressed(x).shape == (8, 10)


def test_compress_model_full_ranks_reproduce_the_model(small_vgg):
    x = torch.randn(4, 1, 16, 16)
    full = {"1.0": 8, "3.0": 16, "4.0": 16, "6.0": 24, "7.0": 24}
    for method in ("channels", "data", "asymmetric"):
        out = lr.compress_model(small_vgg, None, method, data=x, ranks=full)
        with torch.no_grad():
            assert torch.allclose(out(x), small_vgg(x), atol=1e-4), method
    spatial = lr.compress_model(small_vgg, None, "spatial", ranks={"4.0": 48})
    with torch.no_grad():
        assert torch.allclose(spatial(x), small_vgg(x), atol=1e-4)


def test_asymmetric_first_layer_equals_data_version(small_vgg):
    x = torch.randn(8, 1, 16, 16)
    sym = lr.compress_model(small_vgg, 0.3, "data", data=x, layers=LATER)
    asym = lr.compress_model(small_vgg, 0.3, "asymmetric", data=x, layers=LATER)
    assert torch.allclose(sym.get_submodule("1.0").first.weight, asym.get_submodule("1.0").first.weight, atol=1e-6)
    assert not torch.allclose(sym.get_submodule("4.0").first.weight, asym.get_submodule("4.0").first.weight, atol=1e-4)


def test_compress_model_svd_on_linear_layers_and_errors(small_vgg):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10))
    out = lr.compress_model(mlp, 0.5, "svd")
    assert [(row.layer, row.rank) for row in lr.lowrank_summary(out)] == [("1", 12), ("3", 4)]
    assert "error_bound" in lr.lowrank_summary(out).table()
    assert measure.count_params(out.get_submodule("1")) <= 0.5 * 64 * 40 + 40
    assert lr.compress_model(mlp, 0.01, "svd", layers=["3"]).get_submodule("1") is not mlp[1]   # a copy
    by_dict = lr.compress_model(mlp, {"3": 0.5}, "svd")                         # the dict names the layers
    assert [(row.layer, row.rank) for row in lr.lowrank_summary(by_dict)] == [("3", 4)]
    with pytest.raises(ValueError, match="not both"):
        lr.compress_model(mlp, {"3": 0.5}, "svd", layers=["1"])
    with pytest.raises(ValueError, match=r"\['1.0'\] that method 'svd' cannot decompose"):
        lr.compress_model(small_vgg, 0.5, "svd", layers=["1.0"])
    with pytest.raises(TypeError, match="budget='half'"):
        lr.compress_model(mlp, "half", "svd")
    with pytest.raises(ValueError, match="pass data=a batch of inputs"):
        lr.compress_model(small_vgg, 0.5, "data")
    with pytest.raises(ValueError, match=r"budget=1.5 must be in \(0, 1\]"):
        lr.compress_model(small_vgg, 1.5, "channels")
    with pytest.raises(ValueError, match="method='pca' is unknown"):
        lr.compress_model(small_vgg, 0.5, "pca")
    with pytest.raises(ValueError, match=r"ranks names layers \['10'\]"):
        lr.compress_model(small_vgg, None, "channels", ranks={"10": 2})
    with pytest.raises(ValueError, match="needs a budget"):
        lr.compress_model(small_vgg, None, "channels")


# --------------------------------------------------------------------------- widget

def test_layer_spectrum_state_agrees_with_decomposition_and_measure(small_vgg):
    conv = small_vgg.get_submodule("4.0")
    state = lr.spectrum_state(conv, 5, "channels", out_hw=(14, 14))
    out = lr.decompose_conv_channels(conv, 5)
    norm = float(conv.weight.detach().double().norm())
    assert state.relative_error == pytest.approx(out.error_bound / norm, rel=1e-5)
    assert state.params == (measure.count_params(conv), measure.count_params(out))
    assert state.macs == (measure.count_macs(conv, (16, 14, 14)), measure.count_macs(out, (16, 14, 14)))
    assert state.kept_energy == pytest.approx(1 - state.relative_error ** 2, rel=1e-6)
    spatial = lr.spectrum_state(conv, 5, "spatial", out_hw=(14, 14))
    assert spatial.macs[1] == measure.count_macs(lr.decompose_conv_spatial(conv, 5), (16, 14, 14))
    with pytest.raises(ValueError, match=r"rank=17 is outside 1\.\.16"):
        lr.spectrum_state(conv, 17)


def test_spectrum_explorer_draws_and_shows_errors(small_vgg):
    explorer = lr.spectrum_explorer(small_vgg, (1, 16, 16), rank=4)
    assert explorer.error is None and explorer.image.value[:4] == b"\x89PNG"
    assert "kept energy" in explorer.readout.value
    explorer.set(layer="7.0", method="channels", rank=30)
    assert explorer.error is not None and "rank=30 is outside 1..24" in explorer.error
    explorer.set(layer="10", method="channels", rank=3)
    assert "choose method 'svd'" in explorer.error
    explorer.set(layer="10", method="svd", rank=3)
    assert explorer.error is None and explorer.state.params == (240, 3 * 34)
