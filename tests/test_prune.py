import io

import pytest
import torch
import torch.nn as nn
from torch.nn.utils import prune as torch_prune

from course_lib import prune
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
    kept = prune.magnitude_prune(model, 0.6)
    for name, m in prune.prunable_layers(reference).items():
        torch_prune.l1_unstructured(m, "weight", amount=0.6)
    for name, m in prune.prunable_layers(model).items():
        assert isinstance(m.weight_mask, torch.Tensor) and "weight_mask" in dict(m.named_buffers())
        assert torch.equal(m.weight_mask, prune.prunable_layers(reference)[name].weight_mask)
        assert kept[name] == pytest.approx(m.weight_mask.mean().item())
    assert prune.sparsity(model) == pytest.approx(0.6, abs=0.01)


def test_per_layer_overrides_and_zero_leaves_layer_dense():
    model = mlp()
    prune.magnitude_prune(model, 0.5, per_layer={"1": 0.9, "5": 0.0})
    s = prune.sparsity(model, per_layer=True)
    assert s["1"] == pytest.approx(0.9, abs=1e-3)
    assert s["3"] == pytest.approx(0.5, abs=1e-2)
    assert s["5"] == 0.0
    zeros = sum(int((~m).sum()) for m in prune.masks(model).values())
    total = sum(m.numel() for m in prune.masks(model).values())
    assert prune.sparsity(model) == pytest.approx(zeros / total)


def test_global_scope_uses_one_threshold():
    model = mlp()
    before = {n: m.weight.detach().abs().clone() for n, m in prune.prunable_layers(model).items()}
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


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.5", True])
def test_bad_sparsity_is_rejected(bad):
    with pytest.raises(ValueError, match=r"sparsity=.* must be a fraction in \[0, 1\)"):
        prune.magnitude_prune(mlp(), bad)


def test_bad_per_layer_and_scope_are_rejected():
    with pytest.raises(ValueError, match="unknown layers.*'fc9'"):
        prune.magnitude_prune(mlp(), 0.5, per_layer={"fc9": 0.5})
    with pytest.raises(ValueError, match=r"per_layer\['1'\]=1.2 must be a fraction"):
        prune.magnitude_prune(mlp(), 0.5, per_layer={"1": 1.2})
    with pytest.raises(ValueError, match="scope='row' must be 'layer' or 'global'"):
        prune.magnitude_prune(mlp(), 0.5, scope="row")


def test_masks_survive_training_steps_and_weight_orig_stays_zero():
    model = mlp()
    prune.magnitude_prune(model, 0.75)
    before = prune.masks(model)
    fit(model, batches(), epochs=2, lr=0.1, weight_decay=1e-3, progress=False, device="cpu",
        after_step=prune.keep_masks(model))
    after = prune.masks(model)
    for name in before:
        assert torch.equal(before[name], after[name])
        m = prune.prunable_layers(model)[name]
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
    assert [r["layer"] for r in rows] == ["1", "3", "5"]
    assert rows[0]["kept"] == 32 and rows[0]["weights"] == 320
    total = sum(p.numel() for p in mlp().parameters())
    nonzero = sum(r["kept"] for r in rows) + 16 + 8 + 3                       # + biases
    assert prune.compression_ratio(model) == pytest.approx(total / nonzero)
    prune.make_permanent(model)
    assert prune.compression_ratio(model) == pytest.approx(total / nonzero)
