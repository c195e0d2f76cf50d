"""Tests of course_lib.smallnets: torchvision's models and operators are the independent references."""

import pytest
import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from course_lib import channels, checks, igc, measure, smallnets as sn
from course_lib.conv import conv_cost


def _same_function(ours, ref, shape):
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        return torch.allclose(ours(x), ref(x), atol=1e-5)


# --------------------------------------------------------------------------- SqueezeNet

def test_fire_matches_torchvision_fire():
    ref = torchvision.models.squeezenet.Fire(96, 16, 64, 64)
    ours = sn.Fire(96, 16, 64, 64)
    assert measure.count_params(ours) == measure.count_params(ref) == 96 * 16 + 16 + 16 * 64 + 64 + 16 * 64 * 9 + 64
    assert _same_function(ours, ref, (2, 96, 9, 9))
    assert ours(torch.randn(1, 96, 5, 5)).shape == (1, 128, 5, 5)


@pytest.mark.parametrize("args", [(8, 16, 8, 8), (8, 17, 8, 8), (8, 4, 2, 2)])
def test_fire_rejects_squeeze_not_below_expand(args):
    with pytest.raises(ValueError, match="squeeze"):
        sn.Fire(*args)


def test_fire_type_errors():
    with pytest.raises(TypeError):
        sn.Fire(8.0, 2, 4, 4)
    with pytest.raises(TypeError):
        sn.FireBypass(nn.Conv2d(2, 2, 1))


def test_fire_configs_generate_squeezenet_1_0():
    ref = torchvision.models.squeezenet1_0(weights=None)
    fires = [(m.squeeze.in_channels, m.squeeze.out_channels, m.expand1x1.out_channels, m.expand3x3.out_channels)
             for m in ref.features if isinstance(m, torchvision.models.squeezenet.Fire)]
    assert sn.fire_configs() == fires
    with pytest.raises(ValueError, match="sr"):
        sn.fire_configs(sr=1.0)
    with pytest.raises(ValueError, match="pct3x3"):
        sn.fire_configs(pct3x3=1.5)


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_squeezenet_equals_torchvision(version):
    ref = getattr(torchvision.models, f"squeezenet{version}")(weights=None)
    ours = sn.squeezenet(version)
    assert measure.count_params(ours) == measure.count_params(ref)
    assert _same_function(ours, ref, (1, 3, 48, 48))


def test_squeezenet_bypass():
    plain, simple, cplx = (sn.squeezenet("1_0", num_classes=10, bypass=b) for b in (None, "simple", "complex"))
    assert measure.count_params(simple) == measure.count_params(plain)          # identity: free
    n_bypass = sum(isinstance(m, sn.FireBypass) for m in simple.features)
    assert n_bypass == 4                                                          # fire3, 5, 7, 9
    extra = measure.count_params(cplx) - measure.count_params(plain)
    assert extra == 96 * 128 + 128 * 256 + 256 * 384 + 384 * 512                  # 1×1 convs around fire2, 4, 6, 8
    assert cplx(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="simple bypass"):
        sn.FireBypass(sn.Fire(8, 2, 4, 8), "simple")
    with pytest.raises(ValueError, match="bypass"):
        sn.squeezenet("1_0", bypass="dense")
    with pytest.raises(ValueError, match="version"):
        sn.squeezenet("2_0")


def test_squeezenet_min_input_size():
    net = sn.squeezenet("1_0", num_classes=10)
    n = sn.min_input_size(net)
    net.eval()
    assert net(torch.randn(1, 3, n, n)).shape == (1, 10)
    with pytest.raises(ValueError, match="too small"):
        net(torch.randn(1, 3, n - 1, n - 1))
    with pytest.raises(TypeError):
        sn.min_input_size(nn.Linear(2, 2))


def test_squeezenet_fifty_times_fewer_than_alexnet():
    ratio = measure.count_params(torchvision.models.alexnet(weights=None)) / measure.count_params(sn.squeezenet())
    assert 48 < ratio < 50                                                          # 61.1M / 1.25M = 48.9


# --------------------------------------------------------------------------- SqueezeNext

def test_squeezenext_block_structure():
    block = sn.SqueezeNextBlock(32, 32)
    kernels = [m.kernel_size for m in block.body.modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [(1, 1), (1, 1), (1, 3), (3, 1), (1, 1)]
    assert [m.out_channels for m in block.body.modules() if isinstance(m, nn.Conv2d)] == [16, 8, 16, 16, 32]
    assert isinstance(block.shortcut, nn.Identity)
    down = sn.SqueezeNextBlock(32, 64, stride=2)
    assert down(torch.randn(1, 32, 8, 8)).shape == (1, 64, 4, 4)
    with pytest.raises(ValueError, match="two-stage squeeze"):
        sn.SqueezeNextBlock(2, 2)


def test_squeezenext_23_parameters():
    net = sn.squeezenext(1.0, sn.SQNXT_23)
    assert abs(measure.count_params(net) - 0.72e6) / 0.72e6 < 0.01               # paper: 0.72M
    v5 = sn.squeezenext(1.0, sn.SQNXT_23_V5)
    assert v5.layout == (2, 4, 14, 1)
    # blocks of every stage cost the same MACs (channels double as the resolution halves)
    assert measure.count_macs(v5, (3, 224, 224)) == measure.count_macs(net, (3, 224, 224))
    assert measure.count_params(v5) > measure.count_params(net)
    for bad, err in ((dict(width=0), ValueError), (dict(width=-1.0), ValueError), (dict(width="1"), TypeError),
                     (dict(layout=(6, 6, 8)), ValueError), (dict(width=0.05), ValueError)):
        with pytest.raises(err):
            sn.squeezenext(**bad)


# --------------------------------------------------------------------------- MobileNet

@pytest.mark.parametrize("alpha, params_m, macs_m", [(1.0, 4.2, 569), (0.75, 2.6, 325), (0.5, 1.3, 149), (0.25, 0.5, 41)])
def test_mobilenet_width_table(alpha, params_m, macs_m):
    report = sn.cost_by_kind(sn.mobilenet_v1(alpha), (3, 224, 224))
    assert abs(sum(r.params for r in report) / 1e6 - params_m) <= 0.1
    assert abs(sum(r.macs for r in report) / 1e6 - macs_m) <= 1


def test_mobilenet_resolution_table():
    net = sn.mobilenet_v1(1.0)
    for size, macs_m in ((224, 569), (192, 418), (160, 290), (128, 186)):
        assert abs(measure.count_macs(net, (3, size, size)) / 1e6 - macs_m) <= 1


def test_mobilenet_one_by_one_share():
    report = sn.cost_by_kind(sn.mobilenet_v1(1.0), (3, 224, 224))
    assert round(100 * report.find(kind="1×1 conv").macs_share, 2) == 94.86
    assert round(100 * report.find(kind="1×1 conv").params_share, 2) == 74.59
    assert round(100 * report.find(kind="fc").params_share, 2) == 24.33
    assert "1×1 conv" in report.table()
    with pytest.raises(KeyError, match="depthwise"):                   # a missing kind names the kinds there are
        report.find(kind="group conv")
    header = report.table().splitlines()[0].split()
    assert header == ["layer", "kind", "layers", "params", "share", "MACs", "share"]


def test_mobilenet_macs_agree_with_flop_counter():
    net = sn.mobilenet_small(10, 3).eval()
    x = torch.randn(1, 3, 32, 32)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    assert counter.get_total_flops() == 2 * measure.count_macs(net, (3, 32, 32))


def test_mobilenet_full_conv_and_shallower_match_the_paper():
    # Howard et al. Table 4 (Conv MobileNet: 4866M mult-adds, 29.3M parameters) and Table 6
    # (shallower MobileNet: 307M, 2.9M); counted on the meta device
    with torch.device("meta"):
        full, shallow = sn.mobilenet_v1(separable=False), sn.mobilenet_v1(shallow=True)
    for net, macs_m, params_m in ((full, 4866, 29.3), (shallow, 307, 2.9)):
        report = sn.cost_by_kind(net, (3, 224, 224))
        assert abs(sum(r.macs for r in report) / 1e6 - macs_m) <= 2
        assert abs(sum(r.params for r in report) / 1e6 - params_m) <= 0.05
    assert not any(sn.layer_kind(m) == "depthwise" for m in full.modules() if isinstance(m, nn.Conv2d))
    assert len(shallow.features) == len(sn.mobilenet_v1().features) - 5
    with pytest.raises(TypeError, match="separable"):
        sn.mobilenet_v1(separable="no")


def test_mobilenet_bad_input():
    for alpha in (0, -0.5, float("inf")):
        with pytest.raises(ValueError, match="width"):
            sn.mobilenet_v1(alpha)
        with pytest.raises(ValueError, match="alpha"):                 # the paper's name is an alias
            sn.mobilenet_v1(alpha=alpha)
    with pytest.raises(TypeError, match="once"):
        sn.mobilenet_v1(0.5, alpha=0.5)
    assert sn.mobilenet_v1(alpha=0.5).width == sn.mobilenet_v1(0.5).width == 0.5
    with pytest.raises(TypeError, match="positional"):                 # after the width: keywords only
        sn.mobilenet_v1(0.5, 10)
    with pytest.raises(TypeError):
        sn.mobilenet_v1("0.5")
    net = sn.mobilenet_v1(0.25, num_classes=10).eval()
    with pytest.raises(ValueError, match="too small"):
        net(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        net(torch.randn(3, 32, 32))


def test_separable_cost_ratio_matches_conv_cost():
    regular = conv_cost(512, 512, 3, 14, padding=1).macs
    separable = conv_cost(512, 512, 3, 14, padding=1, groups=512).macs + conv_cost(512, 512, 1, 14).macs
    assert sn.separable_cost_ratio(512, 3) == pytest.approx(separable / regular)
    with pytest.raises(ValueError):
        sn.separable_cost_ratio(0)


def test_layer_kind():
    assert sn.layer_kind(nn.Conv2d(4, 4, 3, groups=4)) == "depthwise"
    assert sn.layer_kind(nn.Conv2d(4, 8, 3, groups=2)) == "group conv"
    assert sn.layer_kind(nn.Conv2d(4, 8, 1)) == "1×1 conv"
    assert sn.layer_kind(nn.Conv2d(4, 8, (1, 3))) == "1×3 / 3×1"
    assert sn.layer_kind(nn.Conv2d(4, 8, 3)) == "full conv"
    assert sn.layer_kind(nn.Linear(4, 8)) == "fc"
    with pytest.raises(TypeError):
        sn.layer_kind(nn.ReLU())


# --------------------------------------------------------------------------- the IGC family

@pytest.mark.parametrize("shape, groups", [((2, 12, 3, 3), 3), ((1, 8, 2, 2), 2), ((2, 6, 1, 1), 6), ((1, 5, 2, 2), 1)])
def test_channel_shuffle_is_igc_interleave(shape, groups):
    x = torch.randn(*shape)
    y = sn.channel_shuffle(x, groups)
    assert torch.equal(y, nn.ChannelShuffle(groups)(x))
    assert torch.equal(y, x[:, igc.interleave(groups, shape[1] // groups)])


def test_channel_shuffle_bad_input():
    with pytest.raises(ValueError, match="not divisible"):
        sn.channel_shuffle(torch.randn(1, 6, 2, 2), 4)
    with pytest.raises(TypeError):
        sn.channel_shuffle([1, 2], 1)
    with pytest.raises(TypeError):
        sn.channel_shuffle(torch.randn(1, 6, 2, 2), 2.0)
    with pytest.raises(ValueError):
        sn.channel_shuffle(torch.randn(1, 6, 2, 2), 0)


def test_make_divisible_matches_torchvision():
    from torchvision.models._utils import _make_divisible

    for v in (3.2, 8, 12, 16 * 0.35, 24 * 0.75, 1280 * 1.4, 96 * 0.5, 33):
        assert sn.make_divisible(v, 8) == _make_divisible(v, 8)


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_mobilenet_v2_equals_torchvision(width):
    ref = torchvision.models.mobilenet_v2(weights=None, width_mult=width)
    ours = sn.mobilenet_v2(width)
    assert measure.count_params(ours) == measure.count_params(ref)
    assert _same_function(ours, ref, (1, 3, 64, 64))


def test_inverted_residual():
    block = sn.InvertedResidual(16, 16, 1, 6)
    assert block.use_res_connect
    assert [m.groups for m in block.modules() if isinstance(m, nn.Conv2d)] == [1, 96, 1]
    assert not sn.InvertedResidual(16, 24, 1, 6).use_res_connect
    assert sn.InvertedResidual(16, 24, 2, 6)(torch.randn(1, 16, 8, 8)).shape == (1, 24, 4, 4)
    with pytest.raises(ValueError, match="stride"):
        sn.InvertedResidual(16, 16, 3)
    # IGCV3 with one group has the same weights and connectivity (chapter 06)
    igcv3 = igc.IGCV3(16, expansion=6, groups=1)
    assert igc.classify(igcv3) == igc.classify([m for m in block.modules() if isinstance(m, nn.Conv2d)]) == "loose"
    assert sum(m.weight.numel() for m in igcv3.modules() if isinstance(m, nn.Conv2d)) == \
        sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))


# --------------------------------------------------------------------------- small networks

@pytest.mark.parametrize("builder", [sn.squeezenet_small, sn.squeezenext_small, sn.mobilenet_small, sn.mobilenetv2_small])
@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32)])
def test_small_networks_run_on_small_images(builder, in_channels, size):
    net = builder(num_classes=10, in_channels=in_channels).eval()
    with torch.no_grad():
        assert net(torch.randn(2, in_channels, size, size)).shape == (2, 10)
    assert measure.count_params(net) < 200_000
    assert sn.min_input_size(net) <= 16


# --------------------------------------------------------------------------- explorers

def test_presets_verdicts():
    expected = {"fire": "loose", "squeezenext": "loose", "depthwise separable": "strict",
                "channel shuffle": "strict", "inverted residual": "loose"}
    for preset, verdict in expected.items():
        state = channels.connectivity_state(preset, C=16, L=4, M=4, presets=sn.PRESETS)
        assert state.verdict == verdict, preset
    assert set(sn.PRESET_HELP) == set(sn.PRESETS)
    fire = channels.connectivity_state("fire", C=16, L=4, M=1, presets=sn.PRESETS)
    assert fire.params == measure.count_params(sn.Fire(16, 4, 8, 8)) - (4 + 16)      # weights, no biases
    shuffle = channels.connectivity_state("channel shuffle", C=8, L=2, M=1, presets=sn.PRESETS)
    assert shuffle.verdict == "loose"
    with pytest.raises(ValueError, match="squeeze"):
        channels.connectivity_state("fire", C=16, L=16, M=1, presets=sn.PRESETS)
    with pytest.raises(ValueError, match="divisible by 4"):
        channels.connectivity_state("squeezenext", C=18, L=1, M=1, presets=sn.PRESETS)


def test_connectivity_explorer_shows_errors():
    ex = sn.connectivity_explorer("fire", C=16, L=4, M=4)
    assert ex.error is None and "Fire" in ex.readout.value
    ex.set(L=20)
    assert ex.error is not None and "squeeze" in ex.error
    assert "xception" in ex.controls["preset"].options             # the shared presets stay available


def test_mobilenet_state_and_explorer():
    s = sn.mobilenet_state(0.5, 224, measure_latency=False)
    assert s.params_ratio == pytest.approx(0.31, abs=0.02)                     # ≈ α² (fc keeps 1000 outputs)
    r = sn.mobilenet_state(1.0, 128, measure_latency=False)
    assert r.macs_ratio == pytest.approx((128 / 224) ** 2, abs=0.01)           # ∝ ρ²
    assert r.params_ratio == 1.0
    with pytest.raises(ValueError, match="alpha"):
        sn.mobilenet_state(0.0, 224, measure_latency=False)
    with pytest.raises(ValueError, match="resolution"):
        sn.mobilenet_state(1.0, 16, measure_latency=False)
    ex = sn.mobilenet_explorer(0.25, 128, measure_latency=False)
    assert ex.error is None and "0.25-MobileNet-128" in ex.readout.value
    ex.set(resolution=16)
    assert "too small" in ex.error
    ex.set(alpha=0.35, resolution=96)
    assert ex.error is None and "0.35-MobileNet-96" in ex.readout.value


def test_mobilenet_state_measures_latency(monkeypatch):
    seen = []

    def fake_latency(model, x, min_run_time):
        seen.append((model.width, x.shape[-1], min_run_time))
        return model.width * x.shape[-1] / 1000

    monkeypatch.setattr(sn.measure, "latency", lambda model, x, min_run_time, threads, **rounds: fake_latency(model, x, min_run_time))
    sn._mobilenet_latency.cache_clear()
    s = sn.mobilenet_state(0.5, 96, min_run_time=0.03)
    sn._mobilenet_latency.cache_clear()
    assert (0.5, 96, 0.01) in seen and (1.0, 224, 0.01) in seen                  # this setting and the baseline
    assert s.latency == pytest.approx(0.048) and s.latency_ratio == pytest.approx(0.048 / 0.224)
    assert "latency" in sn.mobilenet_readout(s)


def test_robust_latency_is_the_best_of_repeats(monkeypatch):
    times = iter([0.3, 0.1, 0.2])
    calls = []

    def fake(model, x, min_run_time, threads):
        calls.append((min_run_time, threads))
        return next(times)

    monkeypatch.setattr(sn.measure, "_latency_once", fake)
    assert sn.robust_latency(nn.Identity(), torch.zeros(1), min_run_time=0.3, repeats=3) == 0.1
    assert calls == [(pytest.approx(0.1), 1)] * 3
    with pytest.raises(ValueError):
        sn.robust_latency(nn.Identity(), torch.zeros(1), repeats=0)


# --------------------------------------------------------------------------- Deep Compression of a small net

def test_deep_compress_bytes(tmp_path):
    from course_lib import compressed_file

    torch.manual_seed(0)
    net = sn.squeezenet_small(10, 1)
    dense = measure.file_bytes(net)
    size = sn.deep_compress_bytes(net, tmp_path / "sq.dcmp", sparsity=0.33, bits=6, index_bits=5)
    assert size == (tmp_path / "sq.dcmp").stat().st_size
    assert size < dense / 4                                                       # 6 bits of 32, 2/3 kept
    _, state = compressed_file.from_bytes((tmp_path / "sq.dcmp").read_bytes())
    weight = state["features.3.fire.squeeze.weight"]
    assert (weight == 0).float().mean() >= 0.32 and len(torch.unique(weight)) <= 64
    with pytest.raises(ValueError, match="sparsity"):
        sn.deep_compress_bytes(net, tmp_path / "x", sparsity=1.0)


def test_squeezenet_roles_and_paper_densities():
    net = sn.squeezenet("1_0")
    roles = sn.squeezenet_roles(net)
    assert roles["features.0"] == "conv1" and roles["classifier.1"] == "conv10"
    assert roles["features.3.expand3x3"] == "expand3x3" and roles["features.12.squeeze"] == "squeeze"
    assert len(roles) == 26                                   # conv1 + 8 × 3 + conv10
    sparsity = sn.squeezenet_dc_sparsity(net)
    assert sparsity["features.0"] == 0.0 and sparsity["features.3.expand1x1"] == 0.0
    assert sparsity["features.3.expand3x3"] == pytest.approx(0.67) and sparsity["classifier.1"] == pytest.approx(0.8)
    kept = sum(m.weight.numel() * (1 - sparsity[n]) for n, m in net.named_modules() if n in roles)
    assert 0.33 < kept / measure.count_params(net) < 0.4       # the paper keeps 421,098 of 1,248,424 (34%)
    complex_net = sn.squeezenet_small(bypass=None)
    assert set(sn.squeezenet_roles(sn.squeezenet("1_0", bypass="complex")).values()) >= {"bypass"}
    assert "conv1" in sn.squeezenet_roles(complex_net).values()
    with pytest.raises(TypeError, match="SqueezeNet"):
        sn.squeezenet_roles(nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="no entry"):
        sn.squeezenet_dc_sparsity(net, {"conv1": 1.0})
    with pytest.raises(ValueError, match="density"):
        sn.squeezenet_dc_sparsity(net, {**sn.SQUEEZENET_DC_DENSITY, "conv10": 0.0})


def test_deep_compress_bytes_per_layer_sparsity_and_projection(tmp_path):
    from course_lib import compress

    torch.manual_seed(0)
    net = sn.squeezenet_small(10, 1)
    roles = sn.squeezenet_roles(net)
    sparsity = sn.squeezenet_dc_sparsity(net)
    size = sn.deep_compress_bytes(net, tmp_path / "sq.dcmp", sparsity=sparsity, bits=6, index_bits=5)
    assert size == (tmp_path / "sq.dcmp").stat().st_size
    for name, m in net.named_modules():
        if name in roles:
            zeros = (m.weight == 0).float().mean().item()
            assert abs(zeros - sparsity[name]) < 0.01, name
    report = compress.compression_report(net, 6, index_bits=5)
    rates = sn.bits_per_weight(report, roles)
    assert rates["expand3x3"] < rates["expand1x1"]            # a third of the entries, plus their gaps
    assert rates["conv10"] < rates["expand3x3"]
    overhead = sn.layer_overhead_bytes(report)
    assert overhead > 4 * 63                                   # at least the float32 codebook of each layer
    # projected onto a fresh copy of its own architecture: exactly the report's bytes
    fresh = sn.squeezenet_small(10, 1)
    assert abs(sn.projected_bytes(fresh, roles, rates, overhead) - (report.bytes_huffman + report.other_bytes)) <= 1
    with torch.device("meta"):                                 # the meta device: counting only
        meta = sn.squeezenet_small(10, 1)
    assert sn.projected_bytes(meta, roles, rates, overhead) == sn.projected_bytes(fresh, roles, rates, overhead)
    with pytest.raises(ValueError, match="plain network"):
        sn.projected_bytes(net, roles, rates)
    with pytest.raises(ValueError, match="no kind"):
        sn.projected_bytes(fresh, {}, rates)
    with pytest.raises(ValueError, match="no entry"):
        sn.projected_bytes(fresh, roles, {"conv1": 8.0})
    with pytest.raises(ValueError, match="sparsity"):
        sn.deep_compress_bytes(sn.squeezenet_small(10, 1), tmp_path / "x", sparsity={"features.0": 1.5})
    with pytest.raises(ValueError):
        sn.deep_compress_bytes(sn.squeezenet_small(10, 1), tmp_path / "x", sparsity={"no.such.layer": 0.5})


def test_arithmetic_intensity_by_hand():
    regular = nn.Conv2d(512, 512, 3, padding=1, bias=False)
    depthwise = nn.Conv2d(512, 512, 3, padding=1, groups=512, bias=False)
    n = 512 * 14 * 14
    assert sn.arithmetic_intensity(regular, (512, 14, 14)) == pytest.approx(9 * 512 * n / (4 * (9 * 512 * 512 + 2 * n)))
    assert sn.arithmetic_intensity(depthwise, (512, 14, 14)) == pytest.approx(9 * n / (4 * (9 * 512 + 2 * n)))
    assert sn.arithmetic_intensity(regular, (512, 14, 14)) * 4 == pytest.approx(
        measure.count_macs(regular, (512, 14, 14)) / (regular.weight.numel() + 2 * n))
    strided = nn.Conv2d(3, 8, 3, stride=2)                     # 9×9 → 4×4
    assert sn.arithmetic_intensity(strided, (3, 9, 9), bytes_per_value=1) == pytest.approx(
        8 * 16 * 27 / (8 * 27 + 3 * 81 + 8 * 16))
    fc = nn.Linear(100, 10)
    assert sn.arithmetic_intensity(fc, (100,)) == pytest.approx(1000 / (4 * (1000 + 110)))
    with pytest.raises(ValueError, match="input_size"):
        sn.arithmetic_intensity(regular, (3, 14, 14))
    with pytest.raises(ValueError, match="too small"):
        sn.arithmetic_intensity(nn.Conv2d(1, 1, 5), (1, 3, 3))
    with pytest.raises(TypeError, match="nn.Conv2d"):
        sn.arithmetic_intensity(nn.ReLU(), (1, 3, 3))

