import copy
import hashlib

import pytest
import torch
import torch.nn as nn
import torchvision

from course_lib import channels, checkpoints, checks, measure, recipes, resnets


def randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


# --------------------------------------------------------------------------- the move out of models.py

def test_models_resnet20_keeps_its_state_dict_and_param_count():
    model = resnets.resnet20()
    sd = model.state_dict()
    signature = " ".join(f"{k}:{tuple(v.shape)}" for k, v in sd.items())
    # the state-dict keys and shapes of the ResNet-20 that lived in models.py before chapter 07
    assert hashlib.md5(signature.encode()).hexdigest() == "af50d4661e5fd472e6bb4a43a779cb0c"
    assert measure.count_params(model) == 272_474
    assert isinstance(model[3], resnets.BasicBlock)
    assert resnets.resnet_cifar(20, num_classes=10, in_channels=1)[0].in_channels == 1   # chapter 02's call
    assert isinstance(resnets.resnet_cifar(20, preact=True)[3], resnets.PreActBlock)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_parameter_counts_match_he_et_al(depth):
    params, _ = resnets.PAPER_CIFAR_ERRORS[depth]
    # He et al. use zero-padding shortcuts (option A); our 1x1 projections add a few thousand weights
    assert measure.count_params(resnets.resnet_cifar(depth)) == pytest.approx(params, rel=0.03)


# --------------------------------------------------------------------------- units

def test_basic_block_equals_torchvision_basic_block():
    for c_in, c_out, stride in ((16, 16, 1), (16, 32, 2)):
        ours = randomize_bn(resnets.BasicBlock(c_in, c_out, stride)).eval()
        down = None
        if stride != 1 or c_in != c_out:
            down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        ref = torchvision.models.resnet.BasicBlock(c_in, c_out, stride, downsample=down).eval()
        mapping = {k.replace("shortcut", "downsample"): v for k, v in ours.state_dict().items()}
        ref.load_state_dict(mapping)
        x = torch.randn(2, c_in, 8, 8)
        with torch.no_grad():
            assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_preact_block_against_a_functional_reference():
    F = torch.nn.functional
    for c_in, c_out, stride in ((8, 8, 1), (8, 16, 2)):
        b = randomize_bn(resnets.PreActBlock(c_in, c_out, stride)).eval()
        x = torch.randn(2, c_in, 8, 8)

        def bn(m, t):
            return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False)

        with torch.no_grad():
            a = F.relu(bn(b.bn1, x))
            f = F.conv2d(F.relu(bn(b.bn2, F.conv2d(a, b.conv1.weight, stride=stride, padding=1))),
                         b.conv2.weight, padding=1)
            s = x if c_in == c_out and stride == 1 else F.conv2d(a, b.shortcut.weight, stride=stride)
            assert torch.allclose(b(x), s + f, atol=1e-5)


def test_zeroed_branch_preact_is_identity_postact_is_relu():
    x = torch.randn(2, 8, 6, 6)
    pre = resnets.zero_residual_branches(resnets.PreActBlock(8, 8)).train()
    post = resnets.zero_residual_branches(resnets.BasicBlock(8, 8)).train()
    with torch.no_grad():
        assert torch.equal(pre(x), x)
        assert torch.equal(post(x), torch.relu(x)) and not torch.equal(post(x), x)


@pytest.mark.parametrize("shortcut", resnets.SHORTCUTS)
@pytest.mark.parametrize("preact", [False, True])
def test_every_shortcut_variant_builds_and_runs(shortcut, preact):
    model = resnets.resnet_cifar(8, preact=preact, in_channels=1, widths=(4, 8), shortcut=shortcut,
                                 se=True, reduction=2, p_last=0.5)
    x = torch.randn(3, 1, 12, 12)
    assert model(x).shape == (3, 10)
    assert model.eval()(x).shape == (3, 10)


def test_shortcut_variants_compute_what_the_paper_says():
    x = torch.randn(2, 4, 5, 5)
    for kind in ("identity", "scale", "exclusive_gate", "shortcut_gate", "dropout", "none"):
        b = resnets.PreActBlock(4, 4, shortcut=kind, scale=0.5, gate_bias=-1.0).eval()
        with torch.no_grad():
            f = b.conv2(torch.relu(b.bn2(b.conv1(torch.relu(b.bn1(x))))))
            g = torch.sigmoid(b.gate(x)) if "gate" in kind else None
            expected = {"identity": x + f, "scale": 0.5 * x + f, "dropout": 0.5 * x + f, "none": f,
                        "exclusive_gate": (1 - g) * x + g * f if g is not None else None,
                        "shortcut_gate": (1 - g) * x + f if g is not None else None}[kind]
            assert torch.allclose(b(x), expected, atol=1e-6), kind
    conv = resnets.BasicBlock(4, 4, shortcut="conv1x1")
    assert isinstance(conv.shortcut[0], nn.Conv2d) and conv.shortcut[0].kernel_size == (1, 1)
    # the dropout shortcut keeps each element with probability λ (no 1/λ rescaling), E = λ·x
    drop = resnets.zero_residual_branches(resnets.PreActBlock(4, 4, shortcut="dropout", scale=0.5)).train()
    big = torch.ones(1, 4, 64, 64)
    out = drop(big)
    assert set(torch.unique(out).tolist()) <= {0.0, 1.0} and abs(out.mean().item() - 0.5) < 0.03


def test_shortcut_scale_multiplies_the_gradient_path_by_lambda_per_unit():
    n = 6
    model = resnets.zero_residual_branches(resnets.resnet_cifar(6 * n + 2, preact=True, widths=(8,),
                                                                shortcut="scale", scale=0.5))
    norms = resnets.gradient_norms(model, torch.randn(4, 3, 8, 8))
    assert len(norms) == n
    assert norms[0] / norms[-1] == pytest.approx(0.5 ** (n - 1), rel=1e-4)


def test_gradient_norms_equal_autograd_on_the_block_inputs():
    torch.manual_seed(0)
    model = resnets.resnet_cifar(14, widths=(4, 8))
    x = torch.randn(4, 3, 8, 8)
    norms = resnets.gradient_norms(model, x)
    # brute force: run the Sequential by hand and differentiate w.r.t. each unit's input
    inputs, h = [], x
    for m in model:
        if isinstance(m, resnets.BasicBlock):
            h = h.clone().requires_grad_(True) if not h.requires_grad else h
            inputs.append(h)
        h = m(h)
    loss = torch.nn.functional.cross_entropy(h, torch.arange(4) % 10)
    grads = torch.autograd.grad(loss, inputs)
    assert norms == pytest.approx([g.norm().item() for g in grads], rel=1e-5)
    with pytest.raises(ValueError, match="no residual units"):
        resnets.gradient_norms(nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 10)), x)


# --------------------------------------------------------------------------- ResNeXt

@pytest.mark.parametrize("src", resnets.FORMS)
def test_resnext_forms_agree_in_eval_and_train(src):
    torch.manual_seed(1)
    block = randomize_bn(resnets.ResNeXtBlock(16, 4, 8, form=src)).eval()
    x = torch.randn(3, 16, 6, 6)
    for dst in resnets.FORMS:
        other = resnets.convert_resnext(block, dst)
        assert other.form == dst and measure.count_params(other) == measure.count_params(block)
        with torch.no_grad():
            assert torch.allclose(other(x), block(x), atol=1e-5)
            train_a, train_b = copy.deepcopy(block).train(), copy.deepcopy(other).train()
            assert torch.allclose(train_a(x), train_b(x), atol=1e-5)       # batch statistics too


def test_resnext_form_c_equals_torchvision_resnext_bottleneck():
    # torchvision's resnext50_32x4d layer1 block: inplanes 256, planes 64, groups 32, base width 4
    ref = torchvision.models.resnet.Bottleneck(256, 64, groups=32, base_width=4).eval()
    ours = resnets.ResNeXtBlock(256, 32, 128, form="c").eval()
    randomize_bn(ref)
    with torch.no_grad():
        ours.reduce.weight.copy_(ref.conv1.weight)
        ours.conv.weight.copy_(ref.conv2.weight)
        ours.expand.weight.copy_(ref.conv3.weight)
        for a, b in ((ours.bn1, ref.bn1), (ours.bn2, ref.bn2), (ours.bn, ref.bn3)):
            a.load_state_dict(b.state_dict())
        x = torch.randn(1, 256, 6, 6)
        assert torch.allclose(ours(x), ref(x), atol=1e-4)


def test_resnext_budget_and_torchvision_pair():
    assert resnets.resnext_params(32, 4) == 70_144 and resnets.resnext_params(1, 64) == 69_632
    block = resnets.ResNeXtBlock(256, 32, 128)
    convs = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
    assert convs == resnets.resnext_params(32, 4)
    a, b = torchvision.models.resnext50_32x4d(), torchvision.models.resnet50()
    ratio = measure.count_params(a) / measure.count_params(b)
    assert 0.95 < ratio < 1.0                       # 25.0M vs 25.6M
    macs = measure.count_macs(a, (3, 64, 64)) / measure.count_macs(b, (3, 64, 64))
    assert 0.97 < macs < 1.07


def test_resnext_bad_inputs():
    with pytest.raises(ValueError, match="cardinality=3 does not divide width=8"):
        resnets.ResNeXtBlock(16, 3, 8)
    with pytest.raises(ValueError, match="form='d'"):
        resnets.ResNeXtBlock(16, 4, 8, form="d")
    with pytest.raises(TypeError, match="ResNeXtBlock"):
        resnets.convert_resnext(nn.Conv2d(1, 1, 1), "a")
    with pytest.raises(TypeError, match="cardinality"):
        resnets.ResNeXtBlock(16, 2.0, 8)


def test_resnext_connectivity_preset_is_block_diagonal():
    s = channels.connectivity_state("resnext 3×3", C=16, L=4, M=2, presets=resnets.RESNEXT_PRESETS)
    counts = s.counts
    blocks = torch.block_diag(*[torch.ones(2, 2, dtype=torch.long)] * 4)
    assert torch.equal(counts, blocks) and s.verdict == "disconnected"
    whole = channels.connectivity_state("resnext", C=16, L=4, M=2, presets=resnets.RESNEXT_PRESETS)
    assert whole.verdict == "loose" and whole.params == 16 * 8 + 4 * 2 * 2 * 9 + 8 * 16
    e = resnets.resnext_connectivity_explorer()
    assert e.error is None and "ResNeXt" in e.readout.value


# --------------------------------------------------------------------------- stochastic depth

def test_survival_probabilities_and_expected_depth():
    for L in (1, 3, 27, 54):
        ps = resnets.survival_probabilities(L, 0.5)
        assert ps == pytest.approx([1 - l / L * 0.5 for l in range(1, L + 1)])
        assert ps[-1] == pytest.approx(0.5)
        assert resnets.expected_depth(L, 0.5) == pytest.approx((3 * L - 1) / 4)
    assert resnets.survival_probabilities(4, 1.0) == [1.0] * 4
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"p_last=.* must be a probability in \(0, 1\]"):
            resnets.survival_probabilities(5, bad)
    with pytest.raises(ValueError, match="num_blocks=0"):
        resnets.survival_probabilities(0)


@pytest.mark.parametrize("mode", ["batch", "row"])
def test_stochastic_depth_train_outputs_average_to_the_test_output(mode):
    torch.manual_seed(0)
    block = randomize_bn(resnets.PreActBlock(4, 4)).eval()
    block.p_survive, block.sd_mode = 0.7, mode
    x = torch.randn(8, 4, 5, 5)
    with torch.no_grad():
        test = block(x)
        # in training, use eval-mode BN so that only the coin differs
        block.training = True
        outs = torch.stack([block(x) for _ in range(1500)])
    f = test - x                                                        # = p · F(x)
    mean = outs.mean(0)
    assert torch.allclose(mean, test, atol=0.06 * f.abs().max().item())
    kept = ((outs - x).abs().flatten(2).amax(2) > 0).float()           # per sample: branch kept?
    assert kept.mean().item() == pytest.approx(0.7, abs=0.04)
    if mode == "batch":
        assert ((kept == kept[:, :1]).all()).item()                     # one coin for the whole batch


def test_torchvision_stochastic_depth_scaling_convention():
    x = torch.ones(20000, 1, dtype=torch.float64)
    train = torchvision.ops.stochastic_depth(x, 0.25, "row", training=True)
    assert set(torch.unique(train).tolist()) <= {0.0, 1 / 0.75}                  # scaled by 1/p in training
    assert torch.equal(torchvision.ops.stochastic_depth(x, 0.25, "row", training=False), x)
    assert train.mean().item() == pytest.approx(1.0, abs=0.02)


def test_set_stochastic_depth_assigns_linear_decay():
    model = resnets.set_stochastic_depth(resnets.resnet_cifar(20), 0.5)
    ps = [b.p_survive for b in resnets.residual_blocks(model)]
    assert ps == pytest.approx(resnets.survival_probabilities(9, 0.5))
    with pytest.raises(ValueError, match="mode='x'"):
        resnets.set_stochastic_depth(model, 0.5, "x")
    resnets.set_stochastic_depth(model, None)
    assert all(b.p_survive == 1.0 for b in resnets.residual_blocks(model))


# --------------------------------------------------------------------------- SE

def test_squeeze_excite_equals_torchvision_and_is_per_channel():
    torch.manual_seed(0)
    se = resnets.SqueezeExcite(32, reduction=8)
    ref = torchvision.ops.SqueezeExcitation(32, 4)
    ref.load_state_dict(se.state_dict())
    x = torch.randn(2, 32, 7, 7)
    with torch.no_grad():
        assert torch.allclose(se(x), ref(x), atol=1e-6)
        ratio = se(x) / x
        assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)   # constant over positions
    assert measure.count_params(se) == 2 * 32 * 32 // 8 + 4 + 32
    with pytest.raises(ValueError, match="reduction=64 is larger than channels=32"):
        resnets.SqueezeExcite(32, 64)


def test_se_resnet50_adds_about_2_5m():
    r = resnets.se_resnet50_params()
    assert r["stages"] == [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    assert r["formula"] == 2_514_944 and r["real"] - r["formula"] == sum(c // 16 + c for c, n in r["stages"] for _ in range(n))
    assert 0.09 < r["fraction"] < 0.11
    assert resnets.se_resnet50_params(skip_last_stage=True)["fraction"] < 0.04
    with pytest.raises(ValueError, match="same length"):
        resnets.se_extra_params([64, 128], [3])


# --------------------------------------------------------------------------- bad input, reports, explorer

def test_bad_depth_and_variant_options():
    for depth in (19, 21, 2, 7):
        with pytest.raises(ValueError, match=f"depth={depth} must be 6n \\+ 2"):
            resnets.resnet_cifar(depth)
    with pytest.raises(TypeError, match="depth"):
        resnets.resnet_cifar(20.0)
    with pytest.raises(ValueError, match="shortcut='skip' is unknown"):
        resnets.resnet_cifar(20, shortcut="skip")
    with pytest.raises(ValueError, match="reduction=16 is larger than channels=8"):
        resnets.resnet_cifar(20, widths=(8, 16, 32), se=True)
    with pytest.raises(ValueError, match="p_last=0"):
        resnets.resnet_cifar(20, p_last=0)
    with pytest.raises(TypeError, match="preact='yes' must be a bool"):
        resnets.resnet_cifar(20, preact="yes")


def test_cost_report_matches_measure():
    model = resnets.resnet_cifar(20)
    report = resnets.cost_report(model, (3, 32, 32))
    assert [r.part for r in report] == ["stem", "stage 1", "stage 2", "stage 3", "classifier", "total"]
    assert report[-1].params == measure.count_params(model)
    assert report[-1].macs == measure.count_macs(model, (3, 32, 32))
    assert "stage 2" in report.table()
    with pytest.raises(TypeError, match="nn.Sequential"):
        resnets.cost_report(resnets.BasicBlock(4, 4), (4, 8, 8))


def test_residual_explorer_state_and_errors():
    s = resnets.residual_state(20, "pre-act", "identity", "off")
    assert s.blocks == 9 and len(s.norms) == 9 and len(s.plain_norms) == 9
    assert s.params == measure.count_params(resnets.resnet_cifar(20, preact=True, widths=(8, 16, 32)))
    scaled = resnets.residual_state(20, "pre-act", "scale", "off")
    assert scaled.ratio != s.ratio and scaled.shortcut == "scale"
    for bad, msg in (({"depth": 21}, "6n \\+ 2"), ({"block": "x"}, "block='x'"), ({"shortcut": "x"}, "shortcut='x'"),
                     ({"se": "maybe"}, "se='maybe'")):
        with pytest.raises(ValueError, match=msg):
            resnets.residual_state(**dict(dict(depth=20, block="pre-act", shortcut="identity", se="off"), **bad))
    e = resnets.residual_explorer(depth=14)
    assert e.error is None and "ResNet-14" in e.readout.value
    before = bytes(e.image.value)
    e.set(depth=20)
    assert "ResNet-20" in e.readout.value and bytes(e.image.value) != before


# --------------------------------------------------------------------------- shipped checkpoints

SHIPPED = ["resnet20-plain-fmnist", "resnet20-post-fmnist", "resnet20-preact-fmnist", "resnet20-se-fmnist",
           "resnet20-sd-fmnist"]


def test_shipped_resnet_checkpoints_load_and_learned(fashion_ready):
    from course_lib import config, data, train

    manifest = checkpoints.read_manifest()
    total = sum((config.checkpoints_dir() / manifest[n]["file"]).stat().st_size for n in SHIPPED)
    assert total <= 2 * 1024 * 1024, f"chapter 07's checkpoints take {total} bytes"   # five fp32 nets
    _, test_data = data.loaders("fashion-mnist", 500, test_subset=1000, device="cpu")
    for name in SHIPPED:
        model = recipes.shipped_model(name)
        assert measure.count_params(model) == manifest[name]["parameters"]
        assert len(resnets.residual_blocks(model)) == 9
        assert train.evaluate(model, test_data) > 0.7, name
    assert recipes.shipped_model("resnet20-se-fmnist")[3].se is not None
    assert recipes.shipped_model("resnet20-sd-fmnist")[3].p_survive < 1.0


def test_shortcut_race_trains_every_variant_on_the_same_steps_and_final_losses_average_the_end(tmp_path):
    from course_lib import data
    train_data, _ = data.loaders("fashion-mnist", 32, train_subset=64, test_subset=32, augment=False, device="cpu")
    runs = resnets.shortcut_race(train_data, depth=8, widths=(4, 4, 4), in_channels=1)
    assert list(runs) == [name for name, _, _ in resnets.SHORTCUT_RACE]
    assert {len(r["loss"]) for r in runs.values()} == {2}                 # 64 images, batch 32: two steps each
    assert runs["1×1 conv"]["params"] > runs["identity"]["params"]
    final = resnets.final_losses({"a": {"loss": [9.0] * 18 + [1.0, 3.0]}})
    assert final["a"][0] == pytest.approx(2.0) and final["a"][1] == pytest.approx(1.0)   # std 1.414 / sqrt(2)
    with pytest.raises(ValueError, match="fraction"):
        resnets.final_losses(runs, fraction=0)
    with pytest.raises(FileNotFoundError, match="python -m course_lib.resnets race"):
        resnets.load_race(tmp_path)


def test_recalibrate_batchnorm_equals_update_bn_without_stochastic_depth_and_keeps_every_unit_with_it():
    from torch.optim.swa_utils import update_bn

    torch.manual_seed(0)
    batches = [(torch.randn(8, 1, 12, 12), torch.zeros(8, dtype=torch.long)) for _ in range(3)]
    net = resnets.resnet_cifar(8, widths=(4, 8, 16), num_classes=10, in_channels=1, preact=True)
    ours, reference = copy.deepcopy(net), copy.deepcopy(net)
    resnets.recalibrate_batchnorm(ours, batches, batches=3)
    update_bn([x for x, _ in batches], reference)
    for a, b in zip(ours.modules(), reference.modules()):
        if isinstance(a, torch.nn.BatchNorm2d):
            assert torch.allclose(a.running_mean, b.running_mean, atol=1e-6)
            assert torch.allclose(a.running_var, b.running_var, atol=1e-6)
            assert a.momentum == b.momentum == 0.1 and not a.training
    # with stochastic depth every unit is kept and scaled (the test-time net): two runs agree exactly,
    # where update_bn (training mode) drops random units
    sd = resnets.set_stochastic_depth(copy.deepcopy(net), 0.2)
    first = resnets.recalibrate_batchnorm(copy.deepcopy(sd), batches, batches=3)
    torch.manual_seed(1)
    second = resnets.recalibrate_batchnorm(copy.deepcopy(sd), batches, batches=3)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    with pytest.raises(ValueError, match="batches"):
        resnets.recalibrate_batchnorm(sd, batches, batches=0)
