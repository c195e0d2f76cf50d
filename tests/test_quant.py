"""Tests of course_lib.quant: every quantizer against a brute-force reference or PyTorch's own op."""

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize

from course_lib import measure, quant

# ----------------------------------------------------------------------------------------------
# k-means weight sharing
# ----------------------------------------------------------------------------------------------

# Figure 3 of Deep Compression: a 4x4 weight matrix clustered into 4 shared values.
PAPER_WEIGHTS = torch.tensor([[2.09, -0.98, 1.48, 0.09],
                              [0.05, -0.14, -1.08, 2.12],
                              [-0.91, 1.92, 0.00, -1.03],
                              [1.87, 0.00, 1.53, 1.49]])


def brute_force_kmeans(values, centroids, iters):
    """Lloyd's algorithm with a full distance matrix (the textbook version)."""
    c = centroids.clone().double()
    v = values.double().reshape(-1)
    for _ in range(iters):
        assign = (v[:, None] - c[None, :]).abs().argmin(1)
        for j in range(len(c)):
            if (assign == j).any():
                c[j] = v[assign == j].mean()
    return c, (v[:, None] - c[None, :]).abs().argmin(1)


def test_kmeans_reproduces_deep_compression_figure():
    codebook, indices = quant.kmeans_codebook(PAPER_WEIGHTS, bits=2, init="linear")
    assert torch.allclose(codebook, torch.tensor([-1.0, 0.0, 1.5, 2.0]), atol=1e-6)
    assert indices.shape == PAPER_WEIGHTS.shape and indices.dtype == torch.long
    assert torch.allclose(codebook[indices], torch.tensor([[2.0, -1, 1.5, 0], [0, 0, -1, 2],
                                                           [-1, 2, 0, -1], [2, 0, 1.5, 1.5]]))


def test_kmeans_seed_article_example_shares_one_value():
    w = torch.tensor([2.91, 3.06, 3.21, -1.0, 0.0])
    codebook, indices = quant.kmeans_codebook(w, bits=2)
    assert len(set(indices[:3].tolist())) == 1
    assert codebook[indices[0]].item() == pytest.approx(3.06, abs=1e-5)


@pytest.mark.parametrize("init", ["linear", "density", "random"])
def test_kmeans_matches_brute_force_lloyd(init):
    torch.manual_seed(0)
    w = torch.randn(300) * torch.rand(300)
    generator = torch.Generator().manual_seed(0)
    start = quant._initial_centroids(w.double(), 8, init, generator)
    ref_c, ref_idx = brute_force_kmeans(w, start, iters=30)
    codebook, indices = quant.kmeans_codebook(w, bits=3, init=init, iters=30, seed=0)
    assert torch.allclose(codebook.double(), ref_c.sort().values, atol=1e-5)
    assert torch.allclose(codebook[indices], ref_c[ref_idx].float(), atol=1e-5)


def test_kmeans_inits_are_what_they_say():
    w = torch.linspace(-1, 3, 101) ** 3
    lin = quant._initial_centroids(w.double(), 4, "linear", None)
    assert torch.allclose(lin, torch.linspace(w.min(), w.max(), 4).double())
    dens = quant._initial_centroids(w.double(), 5, "density", None)
    assert torch.allclose(dens, torch.quantile(w.double(), torch.linspace(0, 1, 5).double()))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    r1 = quant._initial_centroids(w.double(), 4, "random", g1)
    assert torch.equal(r1, quant._initial_centroids(w.double(), 4, "random", g2))   # seeded
    assert all(v in w.double() for v in r1)                                             # Forgy: real weights


def test_kmeans_mask_ignores_pruned_weights():
    torch.manual_seed(1)
    w = torch.randn(20, 20)
    mask = torch.rand(20, 20) > 0.7
    w_pruned = w * mask
    codebook, indices = quant.kmeans_codebook(w_pruned, 2, mask=mask)
    ref, _ = quant.kmeans_codebook(w[mask], 2)
    assert torch.allclose(codebook, ref)
    all_masked, _ = quant.kmeans_codebook(w, 2, mask=torch.zeros_like(mask))
    assert torch.equal(all_masked, torch.zeros(4))


def test_kmeans_error_shrinks_with_bits_and_handles_few_values():
    torch.manual_seed(0)
    w = torch.randn(2000)
    errors = [(c[i] - w).pow(2).mean().item() for c, i in (quant.kmeans_codebook(w, b) for b in (1, 2, 4, 6))]
    assert errors == sorted(errors, reverse=True)
    c, i = quant.kmeans_codebook(torch.tensor([0.5, -0.5]), 4, init="random")   # fewer weights than clusters
    assert len(c) == 16 and torch.allclose(c[i], torch.tensor([0.5, -0.5]))


@pytest.mark.parametrize("bits", [0, 17, 2.5, True, "4"])
def test_kmeans_rejects_bad_bits(bits):
    with pytest.raises(ValueError, match="bits=.* between 1 and 16"):
        quant.kmeans_codebook(torch.randn(10), bits)


def test_kmeans_rejects_bad_arguments():
    with pytest.raises(ValueError, match="init='kmeans\\+\\+' is unknown"):
        quant.kmeans_codebook(torch.randn(10), 2, init="kmeans++")
    with pytest.raises(TypeError, match="floating-point"):
        quant.kmeans_codebook(torch.arange(10), 2)
    with pytest.raises(ValueError, match="mask must be"):
        quant.kmeans_codebook(torch.randn(10), 2, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="iters"):
        quant.kmeans_codebook(torch.randn(10), 2, iters=-1)


def test_centroid_gradient_is_sum_of_cluster_gradients():
    torch.manual_seed(0)
    layer = nn.Linear(6, 5)
    quant.share_weights(layer, bits=2)
    codebook, indices = quant.codebooks(layer)[""]
    x = torch.randn(7, 6)
    # reference: gradient w.r.t. a plain weight tensor equal to codebook[indices], summed per cluster
    w = codebook[indices].clone().requires_grad_(True)
    (x @ w.T + layer.bias.detach()).pow(2).sum().backward()
    expected = torch.stack([w.grad[indices == k].sum() for k in range(4)])
    layer(x).pow(2).sum().backward()
    shared = layer.parametrizations.weight[0]
    assert torch.allclose(shared.codebook.grad, expected, atol=1e-5)
    assert layer.parametrizations.weight.original.grad is None          # the float copy is frozen


def test_masked_weights_stay_zero_and_get_no_gradient():
    torch.manual_seed(0)
    layer = nn.Linear(8, 8, bias=False)
    with torch.no_grad():
        layer.weight[torch.rand(8, 8) < 0.5] = 0
    zeros = layer.weight == 0
    quant.share_weights(layer, bits=3)
    assert torch.all(layer.weight[zeros] == 0)
    x = torch.randn(4, 8)
    w = layer.weight.detach().clone().requires_grad_(True)
    (x @ w.T).sum().backward()
    _, indices = quant.codebooks(layer)[""]
    expected = torch.stack([w.grad[(indices == k) & ~zeros].sum() for k in range(8)])
    layer(x).sum().backward()
    assert torch.allclose(layer.parametrizations.weight[0].codebook.grad, expected, atol=1e-5)


def test_share_weights_fit_trains_only_centroids():
    from course_lib import train

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    quant.share_weights(model, bits={"1": 3, "3": 2}, train_others=False)
    before = quant.codebooks(model)
    bias_before = model[1].bias.detach().clone()
    x, y = torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,))
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    train.fit(model, data, epochs=2, lr=0.1, progress=False, device="cpu")
    after = quant.codebooks(model)
    assert len(after["1"][0]) == 8 and len(after["3"][0]) == 4
    assert not torch.allclose(before["1"][0], after["1"][0])          # centroids moved
    assert torch.equal(before["1"][1], after["1"][1])                  # indices did not
    assert torch.equal(model[1].bias, bias_before)                     # frozen
    assert torch.allclose(model[1].weight, after["1"][0][after["1"][1]])
    assert len(torch.unique(model[3].weight)) <= 4


def test_share_weights_layers_and_errors():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    quant.share_weights(model, 4, layers=["0"])
    assert list(quant.codebooks(model)) == ["0"]
    with pytest.raises(ValueError, match="already has a weight parametrization"):
        quant.share_weights(model, 4, layers=["0"])
    with pytest.raises(ValueError, match="'1' is a BatchNorm2d, not a conv/linear layer"):
        quant.share_weights(model, 4, layers=["1"])
    with pytest.raises(ValueError, match="'9' is not a layer"):
        quant.share_weights(model, 4, layers=["9"])
    with pytest.raises(ValueError, match="bits\\['3'\\]=20"):
        quant.share_weights(model, {"3": 20})
    with pytest.raises(ValueError, match="no conv or linear"):
        quant.share_weights(nn.Sequential(nn.ReLU()), 4)


def test_unshare_bakes_weights():
    torch.manual_seed(0)
    layer = nn.Conv2d(3, 4, 3)
    quant.share_weights(layer, 2)
    baked = layer.weight.detach().clone()
    quant.unshare_weights(layer)
    assert not parametrize.is_parametrized(layer)
    assert torch.equal(layer.weight.detach(), baked) and layer.weight.requires_grad


@pytest.mark.parametrize("bits", [1, 3, 5, 8, 11])
def test_pack_bits_roundtrip_and_size(bits):
    torch.manual_seed(bits)
    idx = torch.randint(0, 2 ** bits, (1001,))
    packed = quant.pack_bits(idx, bits)
    assert packed.dtype == torch.uint8 and len(packed) == -(-1001 * bits // 8)
    assert torch.equal(quant.unpack_bits(packed, bits, 1001), idx)
    with pytest.raises(ValueError, match="must lie in"):
        quant.pack_bits(torch.tensor([2 ** bits]), bits)


def test_shared_state_dict_is_smaller_on_disk():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    dense = measure.file_bytes(model)
    quant.share_weights(model, 4)
    state = quant.shared_state_dict(model)
    assert "0.weight.codebook" in state and "0.bias" in state
    assert not any("original" in k for k in state)
    small = measure.file_bytes(state)
    assert small < dense / 6                         # 32 -> 4 bits plus headers
    _, idx = quant.codebooks(model)["0"]
    assert torch.equal(quant.unpack_bits(state["0.weight.indices"], 4, idx.numel()), idx.reshape(-1))
