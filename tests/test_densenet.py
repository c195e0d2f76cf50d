"""Tests of course_lib.densenet against independent references: torchvision's DenseNet (parameters,
outputs, weights), real modules' parameter counts, autograd's saved tensors (measure.activation_bytes),
and the naive implementation itself (the efficient one must give identical outputs, gradients and
BatchNorm buffers)."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
import torchvision
from torch.utils._python_dispatch import TorchDispatchMode

from course_lib import densenet, measure
from course_lib.checks import ExerciseError


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- structure

@pytest.mark.parametrize("L,k0,k,bn", [(1, 3, 2, 4), (5, 8, 4, 4), (4, 6, 3, 0), (3, 5, 7, 2)])
def test_dense_block_shapes_and_channels(L, k0, k, bn):
    block = densenet.DenseBlock(L, k0, k, bn_size=bn)
    x = torch.randn(2, k0, 5, 7)
    assert block(x).shape == (2, k0 + L * k, 5, 7)
    assert [layer.norm1.num_features for layer in block.values()] == \
        [densenet.layer_input_channels(l, k0, k) for l in range(1, L + 1)]
    assert torch.equal(block(x)[:, :k0], x)                    # the block input passes through unchanged
    assert n_params(block) == densenet.block_params(L, k0, k, bn)


def test_block_is_dense_connectivity_from_scratch():
    block = densenet.DenseBlock(4, 3, 2, bn_size=0).eval()
    x = torch.randn(2, 3, 6, 6)
    feats = [x]
    with torch.no_grad():
        for layer in block.values():
            feats.append(layer.conv1(torch.relu(layer.norm1(torch.cat(feats, 1)))))
        assert torch.allclose(block(x), torch.cat(feats, 1), atol=1e-6)
    assert densenet.num_connections(4) == 10


def test_densenet121_equals_torchvision():
    tv = torchvision.models.densenet121()
    ours = densenet.densenet121()
    assert n_params(ours) == n_params(tv) == 7_978_856
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in tv.named_parameters()]
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), tv.eval()(x), atol=1e-5)


def test_densenet_cifar_bc100_and_layouts():
    bc100 = densenet.densenet_cifar(100, 12)
    assert n_params(bc100) == 769_162                         # the paper's "0.8M"
    assert [b.num_layers for b in bc100.blocks()] == [16, 16, 16]
    plain = densenet.densenet_cifar(40, 12, bottleneck=False, compression=1.0)
    assert [b.num_layers for b in plain.blocks()] == [12, 12, 12]
    assert plain.features.conv0.out_channels == 16
    out = densenet.densenet_cifar(52, 12, num_classes=7, in_channels=1)(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 7)


def test_transition_compression():
    net = densenet.DenseNet(4, (2, 3), 8, bn_size=0, compression=0.3, num_classes=5, in_channels=1, stem="cifar")
    t = net.features.transition1
    assert (t.conv.in_channels, t.conv.out_channels) == (16, 4)      # ⌊0.3·16⌋ = 4
    assert densenet.transition_channels(1024, 0.5) == 512
    assert densenet.transition_channels(15, 1.0) == 15
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 5)


@pytest.mark.parametrize("call,err,match", [
    (lambda: densenet.DenseBlock(0, 4, 2), ValueError, "num_layers=0"),
    (lambda: densenet.DenseBlock(3, 4, 0), ValueError, "growth_rate=0"),
    (lambda: densenet.DenseBlock(3, 4, 2.5), TypeError, "growth_rate"),
    (lambda: densenet.DenseNet(0, (2,), 8), ValueError, "growth_rate=0"),
    (lambda: densenet.DenseNet(4, (), 8), ValueError, "block_config is empty"),
    (lambda: densenet.DenseNet(4, (2, 0), 8), ValueError, "block_config"),
    (lambda: densenet.DenseNet(4, (2,), 8, compression=0), ValueError, r"compression=0 must be in \(0, 1\]"),
    (lambda: densenet.DenseNet(4, (2,), 8, compression=1.5), ValueError, "compression=1.5"),
    (lambda: densenet.DenseNet(4, (2,), 8, stem="mnist"), ValueError, "stem"),
    (lambda: densenet.densenet_cifar(99), ValueError, "depth=99 must be 6n"),
    (lambda: densenet.densenet_cifar(41, bottleneck=False), ValueError, "3n"),
    (lambda: densenet.transition_channels(10, -0.1), ValueError, "compression"),
])
def test_bad_inputs(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_wrong_input_channels_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects \(N, 4, H, W\)"):
        densenet.DenseBlock(2, 4, 2)(torch.randn(1, 3, 5, 5))


# --------------------------------------------------------------------------- efficient implementation

def _pair(L=4, k0=6, k=3, bn=4):
    torch.manual_seed(0)
    naive = densenet.DenseBlock(L, k0, k, bn)
    eff = copy.deepcopy(naive)
    eff.efficient = True
    return naive, eff


@pytest.mark.parametrize("bn", [4, 0])
def test_efficient_same_outputs_and_gradients(bn):
    naive, eff = _pair(bn=bn)
    x = torch.randn(3, 6, 5, 5)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = naive(xa), eff(xb)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(xa.grad, xb.grad)
    for p, q in zip(naive.parameters(), eff.parameters()):
        assert torch.equal(p.grad, q.grad)


def test_efficient_one_step_leaves_bn_buffers_as_naive():
    torch.manual_seed(0)
    naive = densenet.densenet_cifar(22, 4, num_classes=3, in_channels=1)
    eff = copy.deepcopy(naive).set_efficient(True)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    densenet.train_step(naive, x, y)
    densenet.train_step(eff, x, y)
    diff = densenet.bn_buffer_differences(naive, eff)
    assert (diff.stats_differ, diff.counters_differ) == (0, 0)
    assert diff.stats_total == 2 * diff.counters_total > 0
    assert all(torch.equal(p, q) for p, q in zip(naive.parameters(), eff.parameters()))
    assert int(eff.features.denseblock1.denselayer1.norm1.num_batches_tracked) == 1


def test_torchvision_memory_efficient_moves_bn_stats_twice():
    """The trap our implementation fixes, shown on torchvision's own memory-efficient DenseNet."""
    torch.manual_seed(0)
    kw = dict(growth_rate=4, block_config=(2, 3), num_init_features=8, num_classes=3)
    naive = torchvision.models.DenseNet(**kw)
    eff = torchvision.models.DenseNet(memory_efficient=True, **kw)
    eff.load_state_dict(naive.state_dict())
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    densenet.train_step(naive, x, y)
    densenet.train_step(eff, x, y)
    diff = densenet.bn_buffer_differences(naive, eff)
    assert diff.counters_differ == 5 and diff.stats_differ == 10      # every norm1 (2 + 3 layers)
    assert "norm1.num_batches_tracked: 1 vs 2" in diff.example


class _RecomputedBottleneck(torch.autograd.Function):
    """The notebook's from-scratch reference: concat → BN → ReLU → 1×1 conv keeping only its inputs;
    backward rebuilds concat + BN + ReLU with batch statistics (running stats untouched), not the conv."""

    @staticmethod
    def forward(ctx, running_mean, running_var, gamma, beta, weight, *features):
        y = F.relu(F.batch_norm(torch.cat(features, 1), running_mean, running_var, gamma, beta, True, 0.1))
        ctx.save_for_backward(gamma, beta, weight, *features)
        return F.conv2d(y, weight)

    @staticmethod
    def backward(ctx, grad_out):
        gamma, beta, weight, *features = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (gamma, beta, *features)]
            y = F.relu(F.batch_norm(torch.cat(leaves[2:], 1), None, None, leaves[0], leaves[1], training=True))
        grad_w = torch.nn.grad.conv2d_weight(y, weight.shape, grad_out)
        grad_y = torch.nn.grad.conv2d_input(y.shape, weight, grad_out)
        g_gamma, g_beta, *g_features = torch.autograd.grad(y, leaves, grad_y)
        return None, None, g_gamma, g_beta, grad_w, *g_features


class _ScratchBlock(nn.Module):
    def __init__(self, block, function=_RecomputedBottleneck):
        super().__init__()
        self.block, self.function = block, function

    def forward(self, x):
        features = [x]
        for layer in self.block.values():
            bn = layer.norm1
            bn.num_batches_tracked += 1
            out = self.function.apply(bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                      layer.conv1.weight, *features)
            features.append(layer.conv2(layer.relu2(layer.norm2(out))))
        return torch.cat(features, 1)


def test_efficient_equals_from_scratch_recomputation_and_naive():
    """Library efficient mode = a hook-free autograd.Function that recomputes concat + BN + ReLU = naive:
    outputs, input and weight gradients, running statistics (and the same saved bytes as the Function)."""
    torch.manual_seed(0)
    naive = densenet.DenseBlock(4, 5, 3).train()
    impls = {"naive": naive, "scratch": _ScratchBlock(copy.deepcopy(naive)), "efficient": copy.deepcopy(naive)}
    impls["efficient"].efficient = True
    x = torch.randn(3, 5, 6, 6)
    got = {}
    for name, impl in impls.items():
        xi = x.clone().requires_grad_()
        out = impl(xi)
        out.backward(torch.ones_like(out) * torch.arange(out.shape[1]).view(1, -1, 1, 1))
        got[name] = (out, xi.grad, [p.grad for p in impl.parameters()], [b.clone() for b in impl.buffers()])
    for name in ("scratch", "efficient"):
        assert torch.allclose(got[name][0], got["naive"][0], atol=1e-6)
        assert torch.allclose(got[name][1], got["naive"][1], atol=1e-6)
        assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(got[name][2], got["naive"][2]))
        assert all(torch.allclose(p.double(), q.double(), atol=1e-7) for p, q in zip(got[name][3], got["naive"][3]))
    assert int(impls["efficient"]["denselayer1"].norm1.num_batches_tracked) == 1
    saved = {name: measure.activation_bytes(impl, x.clone().requires_grad_()) for name, impl in impls.items()}
    assert saved["scratch"] == saved["efficient"] < saved["naive"]


class _RecomputeMovesStatsTwice(_RecomputedBottleneck):
    """The trap: the recomputation hands BN the running buffers again."""

    @staticmethod
    def forward(ctx, running_mean, running_var, gamma, beta, weight, *features):
        ctx.running = (running_mean, running_var)
        return _RecomputedBottleneck.forward(ctx, running_mean, running_var, gamma, beta, weight, *features)

    @staticmethod
    def backward(ctx, grad_out):
        gamma, beta, _, *features = ctx.saved_tensors
        with torch.no_grad():
            F.batch_norm(torch.cat(features, 1), *ctx.running, gamma, beta, True, 0.1)
        return _RecomputedBottleneck.backward(ctx, grad_out)


def test_recomputing_with_the_running_buffers_is_caught():
    """The comparison above can fail: a recomputation that updates running stats again differs from naive."""
    torch.manual_seed(0)
    naive = densenet.DenseBlock(2, 4, 3).train()
    trap = _ScratchBlock(copy.deepcopy(naive), _RecomputeMovesStatsTwice)
    x = torch.randn(3, 4, 5, 5)
    for block in (naive, trap):
        block(x.clone().requires_grad_()).sum().backward()
    assert not torch.allclose(trap.block["denselayer1"].norm1.running_mean, naive["denselayer1"].norm1.running_mean)
    assert torch.allclose(trap.block["denselayer1"].conv1.weight.grad, naive["denselayer1"].conv1.weight.grad, atol=1e-6)


class _ConvKernels(TorchDispatchMode):
    """Counts aten.convolution kernels that run (below autograd: independent of module hooks)."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._overloadpacket.__name__ == "convolution":
            self.n += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("early_stop", [True, False])
def test_efficient_reruns_no_convolution_thanks_to_checkpoint_early_stop(early_stop):
    """6-layer block, one training step: naive 12 convs; efficient 12 with early stop, 18 without
    (the 1×1 conv would be replayed) — counted by forward hooks and by the kernels that run."""
    naive, eff = _pair(L=6, k0=8, k=4)
    for block, expected in ((naive, 12), (eff, 12 if early_stop else 18)):
        hooks_done = [0]
        hooks = [m.register_forward_hook(lambda *_: hooks_done.__setitem__(0, hooks_done[0] + 1))
                 for m in block.modules() if isinstance(m, nn.Conv2d)]
        x = torch.randn(2, 8, 5, 5, requires_grad=True)
        with cp.set_checkpoint_early_stop(early_stop), _ConvKernels() as kernels:
            block(x).sum().backward()
        for h in hooks:
            h.remove()
        assert hooks_done[0] == kernels.n == expected


def test_efficient_in_eval_and_no_grad_is_the_plain_path():
    naive, eff = _pair()
    x = torch.randn(2, 6, 4, 4)
    with torch.no_grad():
        assert torch.equal(naive.eval()(x), eff.eval()(x))


# --------------------------------------------------------------------------- saved bytes

@pytest.mark.parametrize("L,k0,k,bn,n,h,w", [(1, 4, 2, 4, 2, 3, 3), (6, 8, 4, 4, 1, 4, 5), (5, 6, 3, 0, 3, 2, 2)])
def test_saved_bytes_formulas_equal_autograd(L, k0, k, bn, n, h, w):
    assert densenet.block_saved_bytes(L, k0, k, bn, False, n, h, w) == \
        densenet.naive_block_saved_bytes(L, k0, k, bn, n, h, w)
    assert densenet.block_saved_bytes(L, k0, k, bn, True, n, h, w) == \
        densenet.efficient_block_saved_bytes(L, k0, k, bn, n, h, w)


def test_saved_bytes_by_layer_sums_to_activation_bytes_and_names_kinds():
    for eff in (False, True):
        naive, effb = _pair(L=5)
        block = effb if eff else naive
        x = torch.randn(2, 6, 4, 4, requires_grad=True)
        rows = densenet.saved_bytes_by_layer(block, x)
        assert len(rows) == 5 and set(rows[0]) == set(densenet.KINDS)
        assert sum(sum(r.values()) for r in rows) == measure.activation_bytes(block, x)
        concat = [r["concat + BN output"] for r in rows]
        if eff:
            assert sum(concat) == 0 and all(r["stored features"] > 0 for r in rows)
        else:
            assert concat == [2 * densenet.layer_input_channels(l, 6, 3) * 2 * 16 * 4 for l in range(1, 6)]
    with pytest.raises(TypeError):
        densenet.saved_bytes_by_layer(nn.Conv2d(2, 2, 1), x)


def test_activation_bytes_excludes_buffers_and_counts_checkpoint_inputs():
    """measure.activation_bytes: BN running stats are not activations; a checkpoint keeps only its inputs."""
    bn = nn.BatchNorm2d(3)
    x = torch.randn(2, 3, 4, 4)
    assert measure.activation_bytes(bn, x) == x.nbytes + 2 * 3 * 4      # input + per-channel mean, 1/std

    class Ckpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            y = x * 2
            return torch.utils.checkpoint.checkpoint(lambda t: torch.relu(self.conv(t)) * 3, y, use_reentrant=False)

    assert measure.activation_bytes(Ckpt(), x.requires_grad_()) == x.nbytes     # only y, kept by the checkpoint


def test_slopes_and_budget():
    Ls = [8, 16, 32, 64]
    naive = [densenet.naive_block_saved_bytes(L, 24, 12) for L in Ls]
    eff = [densenet.efficient_block_saved_bytes(L, 24, 12) for L in Ls]
    assert round(densenet.loglog_slope(Ls, naive)) == 2 and round(densenet.loglog_slope(Ls, eff)) == 1
    assert densenet.loglog_slope([1, 2, 4], [3, 12, 48]) == pytest.approx(2.0)
    fit = densenet.DepthFit(False, (1.0, 0.0, 0.0), {})
    assert fit.predict(16, batch=2) == 8.0                             # n = 2 → 4 bytes × batch 2
    assert str(fit) == fit.summary() == fit.table() and "1·n²" in str(fit)
    assert densenet.deepest_within_budget(fit, 2 * 10 * 10, batch=2) == 64     # n = 10
    with pytest.raises(ValueError):
        densenet.deepest_within_budget(fit, 0.5, batch=1)


def test_fit_saved_bytes_vs_depth_predicts_a_fourth_depth():
    fit = densenet.fit_saved_bytes_vs_depth((10, 16, 22), growth_rate=4, in_channels=1, size=8)
    net = densenet.densenet_cifar(28, 4, in_channels=1)
    measured = measure.activation_bytes(net, torch.randn(1, 1, 8, 8))
    assert abs(fit.predict(28) - measured) / measured < 1e-3
    assert fit.coefficients[0] > 0                     # quadratic term
    eff = densenet.fit_saved_bytes_vs_depth((10, 16, 22), growth_rate=4, efficient=True, in_channels=1, size=8)
    assert abs(eff.coefficients[0]) < 1e-3 * abs(eff.coefficients[1])      # linear


def test_step_seconds_returns_both():
    naive, eff = _pair(L=2)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 3))
    models = {"naive": nn.Sequential(naive, head), "efficient": nn.Sequential(eff, copy.deepcopy(head))}
    secs = densenet.step_seconds(models, torch.randn(2, 6, 4, 4), torch.tensor([0, 1]), repeats=1)
    assert set(secs) == {"naive", "efficient"} and all(s > 0 for s in secs.values())
    times = densenet.step_times(models, torch.randn(2, 6, 4, 4), torch.tensor([0, 1]), repeats=3, clock="wall")
    assert {name: len(t) for name, t in times.items()} == {"naive": 3, "efficient": 3}
    assert all(s > 0 for t in times.values() for s in t)
    with pytest.raises(ValueError, match="clock"):
        densenet.step_times(models, torch.randn(2, 6, 4, 4), torch.tensor([0, 1]), repeats=1, clock="gpu")


# --------------------------------------------------------------------------- explorer

def test_explorer_state_and_errors():
    s = densenet.block_state(depth=5, growth_rate=4, bottleneck=True, compression=0.5, efficient=False)
    assert s.feeds.shape == (6, 6) and int(s.feeds.sum()) == densenet.num_connections(5) + 6
    assert s.channels == [8, 12, 16, 20, 24] and s.block_out == 28 and s.transition_out == 14
    assert s.params == densenet.block_params(5, 8, 4) + 2 * 28 + 28 * 14
    assert s.saved_total == densenet.naive_block_saved_bytes(5, 8, 4, 4, 1, 8, 8)
    assert s.other_total == densenet.efficient_block_saved_bytes(5, 8, 4, 4, 1, 8, 8)
    e = densenet.block_state(depth=5, growth_rate=4, efficient=True)
    assert e.saved_total == s.other_total and "efficient" in densenet.block_readout(e)
    with pytest.raises(ValueError, match="compression=0"):
        densenet.block_state(compression=0.0)
    with pytest.raises(ValueError, match="depth=0"):
        densenet.block_state(depth=0)


def test_block_explorer_widget_redraws_and_shows_errors():
    ex = densenet.block_explorer(depth=4, growth_rate=4)
    before = ex.readout.value
    ex.set(growth_rate=5)
    assert ex.readout.value != before and ex.error is None
    ex.set(compression=0.0)
    assert "compression" in ex.error
    ex.set(compression=0.5, efficient=True)
    assert ex.error is None and "efficient" in ex.readout.value
