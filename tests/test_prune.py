import io

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.nn.utils import prune as torch_prune

from course_lib import prune, resnets
from course_lib.surgery import weight_layers
from course_lib.train import fit


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def batches(n_batches=6, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 20, generator=g), torch.randint(0, 3, (batch,), generator=g)) for _ in range(n_batches)]


# --------------------------------------------------------------------------- mask API

def test_magnitude_prune_matches_torch_l1_unstructured_and_uses_weight_mask():
    model, reference = mlp(), mlp()
    assert prune.magnitude_prune(model, 0.6) is model                          # in place, returns the model
    kept = {row.layer: row.kept_pct / 100 for row in prune.kept_table(model)}
    for name, m in weight_layers(reference).items():
        torch_prune.l1_unstructured(m, "weight", amount=0.6)
    for name, m in weight_layers(model).items():
        assert isinstance(m.weight_mask, torch.Tensor) and "weight_mask" in dict(m.named_buffers())
        assert torch.equal(m.weight_mask, weight_layers(reference)[name].weight_mask)
        assert kept[name] == pytest.approx(m.weight_mask.mean().item())
    assert prune.sparsity(model) == pytest.approx(0.6, abs=0.01)


def test_sparsity_dict_prunes_the_named_layers_only():
    model = mlp()
    prune.magnitude_prune(model, {"1": 0.9, "3": 0.5})                   # layer "5" not named: left dense
    s = prune.sparsity(model, per_layer=True)
    assert s["1"] == pytest.approx(0.9, abs=1e-3)
    assert s["3"] == pytest.approx(0.5, abs=1e-2)
    assert s["5"] == 0.0
    zeros = sum(int((~m).sum()) for m in prune.masks(model).values())
    total = sum(m.numel() for m in prune.masks(model).values())
    assert prune.sparsity(model) == pytest.approx(zeros / total)
    assert not prune.is_reparametrized(model[5])


def test_layers_chooses_the_layers():
    model = mlp()
    prune.magnitude_prune(model, 0.5, layers=["3"])
    assert prune.sparsity(model, per_layer=True) == {"1": 0.0, "3": pytest.approx(0.5), "5": 0.0}
    assert not prune.is_reparametrized(model[1])


def test_global_scope_uses_one_threshold():
    model = mlp()
    before = {n: m.weight.detach().abs().clone() for n, m in weight_layers(model).items()}
    prune.magnitude_prune(model, 0.7, scope="global")
    mks = prune.masks(model)
    kept = torch.cat([before[n][mks[n]] for n in before])
    dropped = torch.cat([before[n][~mks[n]] for n in before])
    assert kept.min() >= dropped.max()
    assert prune.sparsity(model) == pytest.approx(0.7, abs=0.01)


def test_pruning_again_never_resurrects_and_accepts_torch_pruned_model():
    model = mlp()
    torch_prune.l1_unstructured(model[1], "weight", amount=0.5)      # pruned by PyTorch itself
    first = prune.masks(model)["1"].clone()
    assert prune.sparsity(model, per_layer=True)["1"] == pytest.approx(0.5, abs=0.01)
    prune.magnitude_prune(model, 0.3)                                 # lower target: old zeros stay
    assert not (prune.masks(model)["1"] & ~first).any()
    prune.magnitude_prune(model, 0.8)
    assert prune.sparsity(model, per_layer=True)["1"] == pytest.approx(0.8, abs=0.01)
    assert not (prune.masks(model)["1"] & ~first).any()


def test_plain_zeros_count_as_pruned():
    model = mlp()
    with torch.no_grad():
        model[1].weight[:, :10] = 0
    assert prune.masks(model)["1"][:, :10].sum() == 0
    assert prune.sparsity(model, per_layer=True)["1"] == pytest.approx(0.5)


@pytest.mark.parametrize("bad, error", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                        ("0.5", TypeError), (True, TypeError)])
def test_bad_sparsity_is_rejected(bad, error):
    with pytest.raises(error, match=r"sparsity=.* must be a fraction"):
        prune.magnitude_prune(mlp(), bad)


def test_bad_layer_dict_and_scope_are_rejected():
    with pytest.raises(ValueError, match="'fc9' is not a layer"):
        prune.magnitude_prune(mlp(), {"fc9": 0.5})
    with pytest.raises(ValueError, match=r"sparsity\['1'\]=1.2 must be a fraction"):
        prune.magnitude_prune(mlp(), {"1": 1.2})
    with pytest.raises(ValueError, match="scope='row' must be 'layer' or 'global'"):
        prune.magnitude_prune(mlp(), 0.5, scope="row")
    with pytest.raises(ValueError, match="not both"):
        prune.magnitude_prune(mlp(), {"1": 0.5}, layers=["1"])
    with pytest.raises(ValueError, match="scope='global'"):
        prune.magnitude_prune(mlp(), {"1": 0.5}, scope="global")


def test_masks_survive_training_steps_and_weight_orig_stays_zero():
    model = mlp()
    prune.magnitude_prune(model, 0.75)
    before = prune.masks(model)
    fit(model, batches(), epochs=2, lr=0.1, weight_decay=1e-3, progress=False, device="cpu",
        after_step=prune.keep_masks(model))
    after = prune.masks(model)
    for name in before:
        assert torch.equal(before[name], after[name])
        m = weight_layers(model)[name]
        assert (m.weight_orig[~before[name]] == 0).all()                 # what gets saved
        assert (m.weight[~before[name]] == 0).all()


def test_without_the_hook_the_forward_is_still_masked():
    model = mlp()
    fit(model, batches(), epochs=1, lr=0.1, progress=False, device="cpu")   # momentum buffers warm up inside fit
    prune.magnitude_prune(model, 0.75)
    mask = prune.masks(model)["1"]
    fit(model, batches(), epochs=1, lr=0.1, weight_decay=1e-2, progress=False, device="cpu")
    m = model[1]
    assert torch.equal(prune.masks(model)["1"], mask)                         # the mask buffer is untouched
    model(torch.zeros(1, 20))
    assert (m.weight[~mask] == 0).all()                                       # forward re-applies it


def test_keep_masks_on_plain_weights_prevents_resurrection():
    model = mlp()
    prune.magnitude_prune(model, 0.6)
    prune.make_permanent(model)
    mask = prune.masks(model)
    unhooked = mlp()
    unhooked.load_state_dict(model.state_dict())
    fit(model, batches(), epochs=1, lr=0.1, progress=False, device="cpu", after_step=prune.keep_masks(model))
    fit(unhooked, batches(), epochs=1, lr=0.1, progress=False, device="cpu")
    assert all(torch.equal(mask[n], prune.masks(model)[n]) for n in mask)
    assert prune.sparsity(unhooked) < 0.1                                   # plain training refills the zeros


def test_checkpoint_round_trip_reparametrized_and_permanent():
    model = mlp()
    prune.magnitude_prune(model, 0.7)
    fit(model, batches(), epochs=1, lr=0.05, progress=False, device="cpu", after_step=prune.keep_masks(model))
    x = torch.randn(5, 20)
    expected = model(x)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert any(k.endswith("weight_mask") for k in state)
    fresh = prune.load_pruned(mlp(seed=5), state)
    assert torch.allclose(fresh(x), expected)
    assert all(torch.equal(a, b) for a, b in zip(prune.masks(fresh).values(), prune.masks(model).values()))

    prune.make_permanent(model)
    state = model.state_dict()
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    plain = mlp(seed=7)
    plain.load_state_dict(state)
    assert torch.allclose(plain(x), expected)
    assert prune.sparsity(plain) == pytest.approx(0.7, abs=0.01)
    assert prune.remove_reparametrization is prune.make_permanent


def test_load_pruned_rejects_mask_for_unknown_layer():
    state = mlp().state_dict()
    state["9.weight_mask"] = torch.ones(3, 3)
    with pytest.raises(ValueError, match="mask for '9'"):
        prune.load_pruned(mlp(), state)


def test_kept_table_and_compression_ratio():
    model = mlp()
    prune.magnitude_prune(model, 0.9)
    rows = prune.kept_table(model)
    assert [r.layer for r in rows] == ["1", "3", "5"]
    assert rows[0] == prune.KeptRow("1", 320, 32, pytest.approx(10.0))
    assert "kept_pct" in rows.table() and rows.as_dicts()[0]["kept"] == 32
    total = sum(p.numel() for p in mlp().parameters())
    nonzero = sum(r.kept for r in rows) + 16 + 8 + 3                          # + biases
    assert prune.compression_ratio(model) == pytest.approx(total / nonzero)
    prune.make_permanent(model)
    assert prune.compression_ratio(model) == pytest.approx(total / nonzero)


# --------------------------------------------------------------------------- storage formats

def sparse_matrix(rows=30, cols=40, density=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * (torch.rand(rows, cols, generator=g) < density)


def test_storage_bytes_match_hand_counts():
    w = sparse_matrix()
    nnz = int((w != 0).sum())
    assert prune.storage_bytes(w, "dense") == 30 * 40 * 4
    assert prune.storage_bytes(w, "coo") == nnz * (2 * 8 + 4)                  # int64 row, col + float32
    assert prune.storage_bytes(w, "csr") == (30 + 1) * 8 + nnz * (8 + 4)
    gaps, stored = prune.relative_indices(w, 5)
    assert prune.storage_bytes(w, "csr-relative", 5) == -(-len(gaps) * 5 // 8) + 4 * len(stored)
    conv = torch.randn(4, 3, 3, 3) * (torch.rand(4, 3, 3, 3) < 0.5)
    assert prune.storage_bytes(conv, "csr") == 5 * 8 + int((conv != 0).sum()) * 12
    with pytest.raises(ValueError, match="fmt='bsr' is unknown"):
        prune.storage_bytes(w, "bsr")


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_relative_indices_round_trip_with_fillers(bits):
    w = sparse_matrix(20, 30, 0.05, seed=bits).flatten()
    diffs, stored = prune.relative_indices(w, bits)
    assert diffs.max() <= 2 ** bits and diffs.min() >= 1          # stored as d − 1 in `bits` bits
    assert torch.equal(prune.decode_relative(diffs, stored, w.numel()), w)
    assert len(stored) >= int((w != 0).sum())
    with pytest.raises(ValueError, match="index_bits=0 must be an integer"):
        prune.relative_indices(w, 0)


def test_relative_indices_paper_figure_2():
    # Han et al. 2016, Fig. 2: non-zeros at 1, 4, 15, 3-bit index: the filler sits 8 places after 4
    row = torch.zeros(16)
    row[[1, 4, 15]] = torch.tensor([3.4, 0.9, 1.7])
    diffs, stored = prune.relative_indices(row, 3)
    assert diffs.tolist() == [2, 3, 8, 3]                         # the paper prints 1, 3, 8, 3 (first from 0)
    assert stored.tolist() == pytest.approx([3.4, 0.9, 0.0, 1.7])
    assert (torch.cumsum(diffs, 0) - 1).tolist() == [1, 4, 12, 15]
    # up to 2**b − 1 = 7 skipped zeros fit one entry (d ≤ 8); every further 8 zeros need one filler
    for zeros, entries in ((0, 1), (7, 1), (8, 2), (15, 2), (16, 3)):
        x = torch.zeros(zeros + 1)
        x[zeros] = 1.0
        assert len(prune.relative_indices(x, 3)[0]) == entries, zeros
    assert prune.relative_indices(torch.zeros(5), 3)[0].numel() == 0
    assert prune.relative_indices(np.array([0.0, 2.0]), 2)[0].tolist() == [2]   # array-like input


def test_model_storage_sums_layers():
    model = mlp()
    prune.magnitude_prune(model, 0.9)
    totals = prune.model_storage(model)
    assert totals["dense"] == 4 * sum(m.weight.numel() for m in weight_layers(model).values())
    assert totals["csr"] < totals["dense"] and totals["csr-relative"] < totals["csr"]


# --------------------------------------------------------------------------- OBD

def tiny_net(seed=0, act=nn.Tanh):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), act(), nn.Linear(5, 3)).double()


def tiny_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (32,), generator=g)


def brute_force_diagonal(model, x, y, h=1e-4):
    """Second differences (L(w + h) - 2 L(w) + L(w - h)) / h² for each weight, one at a time."""
    import torch.nn.functional as F
    out = {}
    with torch.no_grad():
        base = F.cross_entropy(model(x), y).item()
        for name, m in weight_layers(model).items():
            d = torch.zeros_like(m.weight).flatten()
            flat = m.weight.view(-1)
            for k in range(flat.numel()):
                old = flat[k].item()
                flat[k] = old + h
                up = F.cross_entropy(model(x), y).item()
                flat[k] = old - h
                down = F.cross_entropy(model(x), y).item()
                flat[k] = old
                d[k] = (up - 2 * base + down) / h ** 2
            out[name] = d.view_as(m.weight)
    return out


@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_exact_hessian_diagonal_matches_second_differences(act):
    model, (x, y) = tiny_net(act=act), tiny_data()
    exact = prune.hessian_diagonal(model, (x, y), exact=True)
    brute = brute_force_diagonal(model, x, y)
    for name in exact:
        assert torch.allclose(exact[name], brute[name], rtol=1e-3, atol=1e-5), name


def test_hutchinson_agrees_with_exact_diagonal():
    model, data = tiny_net(), tiny_data()
    exact = torch.cat([d.flatten() for d in prune.hessian_diagonal(model, data, exact=True).values()])
    est = torch.cat([d.flatten() for d in prune.hessian_diagonal(model, data, exact=False, samples=300).values()])
    corr = torch.corrcoef(torch.stack([exact, est]))[0, 1]
    assert corr > 0.9                                             # measured 0.945 with seed 0
    assert torch.allclose(est.sum(), exact.sum(), rtol=0.15)      # the trace: 0.93 of the exact one


def test_obd_saliency_is_half_h_w_squared_and_accepts_batches():
    model, (x, y) = tiny_net(), tiny_data()
    batches_ = [(x[:16], y[:16]), (x[16:], y[16:])]
    s = prune.obd_saliency(model, batches_, exact=True)
    h = prune.hessian_diagonal(model, (x, y), exact=True)
    for name, m in weight_layers(model).items():
        assert torch.allclose(s[name], h[name] * m.weight.detach() ** 2 / 2)


def test_obd_predicts_the_loss_increase_of_removing_one_weight():
    """Near a minimum, δL ≈ s_k (the gradient term vanishes): train the tiny net first."""
    import torch.nn.functional as F
    model, (x, y) = tiny_net(), tiny_data()
    opt = torch.optim.LBFGS(model.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y) + 1e-3 * sum((p ** 2).sum() for p in model.parameters())
        loss.backward()
        return loss
    opt.step(closure)
    s = prune.obd_saliency(model, (x, y), exact=True)["2"]
    w = model[2].weight
    with torch.no_grad():
        base = F.cross_entropy(model(x), y).item()
        k = int(torch.argmin((s - s.median()).abs()))       # a typical weight
        old = w.view(-1)[k].item()
        w.view(-1)[k] = 0
        delta = F.cross_entropy(model(x), y).item() - base
    assert delta == pytest.approx(s.flatten()[k].item(), rel=0.5, abs=1e-3)


def test_hessian_diagonal_bad_inputs():
    model, data = tiny_net(), tiny_data()
    with pytest.raises(ValueError, match="max_exact=10"):
        prune.hessian_diagonal(model, data, exact=True, max_exact=10)
    with pytest.raises(ValueError, match="samples=0 must be >= 1"):
        prune.hessian_diagonal(model, data, exact=False, samples=0)
    with pytest.raises(ValueError, match="'7' is not a layer"):
        prune.hessian_diagonal(model, data, layers=["7"])
    with pytest.raises(ValueError, match="data is empty"):
        prune.hessian_diagonal(model, [])


def test_obd_prune_global_drops_lowest_saliency():
    model, data = tiny_net(), tiny_data()
    s = prune.obd_saliency(model, data, exact=True)
    prune.obd_prune(model, s, 0.5)
    mks = prune.masks(model)
    kept = torch.cat([s[n][mks[n]] for n in s])
    dropped = torch.cat([s[n][~mks[n]] for n in s])
    assert kept.min() >= dropped.max()


# --------------------------------------------------------------------------- Han et al. loop, sensitivity

def test_kept_schedule_is_geometric_and_ends_at_target():
    steps = prune.kept_schedule(0.96, 2)
    assert steps == pytest.approx([0.8, 0.96])
    per = prune.kept_schedule({"a": 0.75}, 2)
    assert per[-1]["a"] == pytest.approx(0.75) and per[0]["a"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="steps=0"):
        prune.kept_schedule(0.5, 0)
    with pytest.raises(TypeError, match="steps=1.5"):
        prune.kept_schedule(0.5, 1.5)


def test_iterative_prune_reaches_targets_and_keeps_masks():
    model = mlp()
    rows = prune.iterative_prune(model, batches(), batches(seed=1), [0.5, {"1": 0.8, "3": 0.8, "5": 0.5}],
                                 epochs=1, lr=0.05, device="cpu")
    assert [r.round for r in rows] == [1, 2]
    s = prune.sparsity(model, per_layer=True)
    assert s["1"] == pytest.approx(0.8, abs=0.01) and s["5"] == pytest.approx(0.5, abs=0.05)
    assert rows[1].sparsity == pytest.approx(prune.sparsity(model))
    assert all(0 <= r.acc_pruned <= 1 and 0 <= r.acc_retrained <= 1 for r in rows)


def test_sensitivity_scan_matches_pruning_one_layer_by_hand():
    from course_lib.train import evaluate
    model, data = mlp(), batches(seed=2)
    scan = prune.sensitivity_scan(model, data, [0.0, 0.5, 0.9], layers=["1", "5"])
    assert scan["baseline"] == evaluate(model, data)
    assert scan["layers"]["1"][0] == scan["baseline"]
    by_hand = mlp()
    prune.magnitude_prune(by_hand, {"5": 0.9})
    assert scan["layers"]["5"][2] == evaluate(by_hand, data)
    assert prune.sparsity(model) == 0.0                                    # model unchanged
    with pytest.raises(ValueError, match=r"sparsities\[i\]=1.0"):
        prune.sensitivity_scan(model, data, [1.0])


def test_choose_sparsities():
    scan = {"baseline": 0.9, "sparsities": [0.0, 0.5, 0.9], "layers": {"a": [0.9, 0.899, 0.7], "b": [0.9, 0.88, 0.5]}}
    assert prune.choose_sparsities(scan, 0.005) == {"a": 0.5, "b": 0.0}
    assert prune.choose_sparsities(scan, 0.5) == {"a": 0.9, "b": 0.9}
    with pytest.raises(ValueError, match="tolerance=-1"):
        prune.choose_sparsities(scan, -1)


# --------------------------------------------------------------------------- structured pruning

def trained_like(model, seed=0):
    """Randomize BN statistics so that removing channels is a real test."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


@pytest.mark.parametrize("builder", ["vgg_small", "lenet5"])
def test_prune_channels_equals_masked_model_and_is_smaller(builder):
    from course_lib import models
    from course_lib.measure import count_params
    model = trained_like(getattr(models, builder)())
    x = torch.randn(3, 1, 28, 28)
    thin = prune.prune_channels(model, 0.5).eval()
    masked = prune.mask_channels(model, 0.5).eval()
    assert torch.allclose(thin(x), masked(x), atol=1e-5)
    assert not torch.allclose(thin(x), model(x), atol=1e-3)
    assert count_params(thin) < 0.55 * count_params(model)
    convs = [m for m in thin.modules() if isinstance(m, nn.Conv2d)]
    originals = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [o.out_channels - round(0.5 * o.out_channels) for o in originals]
    # the kept filters are the ones of largest L1 norm
    norms = originals[0].weight.abs().sum(dim=(1, 2, 3))
    kept = prune.channel_plan(model, 0.5)[[n for n, m in model.named_modules() if m is originals[0]][0]]
    assert norms[kept].min() >= norms.max() * 0 + torch.sort(norms, descending=True).values[len(kept) - 1]


def test_prune_channels_zero_sparsity_is_identity_and_bad_inputs():
    from course_lib import models
    model = trained_like(models.vgg_small())
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(prune.prune_channels(model, 0.0).eval()(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="sparsity=1.0 must be a fraction"):
        prune.prune_channels(model, 1.0)
    with pytest.raises(TypeError, match="BasicBlock"):
        prune.prune_channels(resnets.resnet20(), 0.5)
    with pytest.raises(ValueError, match="no Conv2d"):
        prune.prune_channels(mlp(), 0.5)


# --------------------------------------------------------------------------- widgets

def test_sparsity_state_and_explorer_error():
    from course_lib.train import evaluate
    model, data = mlp(), batches(seed=3)
    st = prune.sparsity_state(model, data, "1", 0.8)
    ref = mlp()
    prune.magnitude_prune(ref, 0.8)
    assert st.accuracy == evaluate(ref, data)
    assert st.mask.mean() == pytest.approx(0.2, abs=0.01)
    assert (abs(st.weights[~st.mask.flatten()]) <= st.threshold).all()
    assert st.bytes["csr"] < st.bytes["dense"]
    with pytest.raises(ValueError, match="'9' is not a layer"):
        prune.sparsity_state(model, data, "9", 0.5)
    pruned = prune.magnitude_prune(mlp(), 0.5)                               # a pruned model copies fine
    assert prune.sparsity_state(pruned, data, "3", 0.5).accuracy == evaluate(pruned, data)
    ex = prune.sparsity_explorer(model, data, layer="3", sparsity=0.8)
    assert ex.error is None and "accuracy" in ex.readout.value
    assert ex.state.accuracy == st.accuracy and bytes(ex.image.value).startswith(b"\x89PNG")
    assert list(ex.controls["layer"].options) == ["1", "3", "5"]
    with pytest.raises(ValueError, match=r"must be a fraction in \[0, 1\)"):    # the slider stops at 0.99
        ex.state_fn(layer="3", sparsity=1.0)


def test_sensitivity_state():
    scan = {"baseline": 0.9, "sparsities": [0.0, 0.5, 0.9], "layers": {"a": [0.9, 0.899, 0.7], "b": [0.9, 0.88, 0.5]}}
    scans, sizes = {"m": scan}, {"m": {"a": 100, "b": 10}}
    st = prune.sensitivity_state(scans, sizes, "m", 0.5)
    assert st.chosen == {"a": 0.5, "b": 0.0} and st.kept == pytest.approx(60)
    with pytest.raises(ValueError, match="model='x' has no scan"):
        prune.sensitivity_state(scans, sizes, "x", 0.5)
    with pytest.raises(ValueError, match="tolerance_pt=-2"):
        prune.sensitivity_state(scans, sizes, "m", -2)
    ex = prune.sensitivity_explorer(scans, sizes, tolerance_pt=0.5)
    assert ex.error is None and ex.state.chosen == st.chosen and "60 of 110" in ex.readout.value
    assert bytes(ex.image.value).startswith(b"\x89PNG")
    data = ex._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "image/png" in data                                               # a static figure without a front end
    import matplotlib.pyplot as plt
    fig = plt.figure()
    prune.draw_sensitivity(st, fig)
    assert len(fig.axes[0].lines) >= 3
    plt.close(fig)
