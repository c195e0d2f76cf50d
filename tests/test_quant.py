"""Tests of course_lib.quant: every quantizer against a brute-force reference or PyTorch's own op."""

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize

from course_lib import measure, quant, surgery

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


@pytest.mark.parametrize("bits", [0, 17])
def test_kmeans_rejects_bad_bits(bits):
    with pytest.raises(ValueError, match="bits=.* between 1 and 16"):
        quant.kmeans_codebook(torch.randn(10), bits)


@pytest.mark.parametrize("bits", [2.5, True, "4"])
def test_kmeans_rejects_bits_of_a_wrong_type(bits):
    with pytest.raises(TypeError, match="bits=.* must be an integer number of bits"):
        quant.kmeans_codebook(torch.randn(10), bits)


def test_kmeans_rejects_bad_arguments():
    with pytest.raises(ValueError, match="init='kmeans\\+\\+' is unknown"):
        quant.kmeans_codebook(torch.randn(10), 2, init="kmeans++")
    with pytest.raises(TypeError, match="floating-point"):
        quant.kmeans_codebook(torch.arange(10), 2)
    with pytest.raises(ValueError, match="mask must be"):
        quant.kmeans_codebook(torch.randn(10), 2, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="iters=-1 must be >= 0"):
        quant.kmeans_codebook(torch.randn(10), 2, iters=-1)
    with pytest.raises(TypeError, match="iters=2.0 must be an int"):
        quant.kmeans_codebook(torch.randn(10), 2, iters=2.0)


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
    with pytest.raises(ValueError, match="'1' is a BatchNorm2d, not a Conv1d/Conv2d/Conv3d/Linear layer"):
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


def test_reserve_zero_code_merges_the_smallest_cluster():
    # 2 bits: clusters -1 (4 weights), 0.4 (1), 1 (2), 2 (3); the single 0.4 joins its neighbour 1
    layer = nn.Linear(10, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-1, -1, -1, -1, 0.4, 1, 1, 2, 2, 2]]))
    quant.share_weights(layer, 2)
    codebook, _ = quant.codebooks(layer)[""]
    assert torch.allclose(codebook, torch.tensor([-1, 0.4, 1, 2]))
    assert quant.reserve_zero_code(layer) == {"": 1}
    codebook, indices = quant.codebooks(layer)[""]
    merged = (1 * 2 + 0.4) / 3                                 # the mean of the two merged clusters
    assert torch.allclose(codebook, torch.tensor([-1, 0, merged, 2]))
    assert not bool((indices == 1).any())                      # code 1 now means 0 and is free
    expected = torch.tensor([[-1, -1, -1, -1, merged, merged, merged, 2, 2, 2]])
    assert torch.allclose(layer.weight, expected)              # only the merged clusters moved
    assert quant.reserve_zero_code(layer) == {"": 0}           # a second call finds the free zero


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
    assert torch.equal(surgery.unpack_bits(state["0.weight.codes"], 4, idx.numel()), idx.reshape(-1))


# ----------------------------------------------------------------------------------------------
# binary
# ----------------------------------------------------------------------------------------------

def test_binarize_values_and_xnor_scaling():
    w = torch.tensor([[0.5, -0.2, 0.0], [-3.0, 1.0, 2.0]])
    assert torch.equal(quant.binarize(w, "none"), torch.tensor([[1.0, -1, 1], [-1, 1, 1]]))
    expected = torch.tensor([[0.7 / 3] * 3, [2.0] * 3]) * torch.tensor([[1.0, -1, 1], [-1, 1, 1]])
    assert torch.allclose(quant.binarize(w, "channel"), expected)
    assert torch.allclose(quant.binarize(w, "tensor"), w.abs().mean() * torch.tensor([[1.0, -1, 1], [-1, 1, 1]]))
    # XNOR-Net: alpha = mean|w| minimises ||w - alpha * sign(w)||² over alpha (brute force over a grid)
    torch.manual_seed(0)
    row = torch.randn(40)
    grid = torch.linspace(0, 2, 20001)
    errors = ((row[None] - grid[:, None] * torch.sign(row)[None]) ** 2).sum(1)
    assert grid[errors.argmin()].item() == pytest.approx(row.abs().mean().item(), abs=2e-4)
    with pytest.raises(ValueError, match="scaling='row' is unknown"):
        quant.binarize(w, "row")


def test_sign_ste_gradient_is_clipped_identity():
    w = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 1.5], requires_grad=True)
    g = torch.arange(1.0, 8.0)
    (quant.SignSTE.apply(w) * g).sum().backward()
    assert torch.equal(w.grad, torch.tensor([0.0, 2, 3, 4, 5, 6, 0]))


def test_binary_dot_uses_only_additions():
    torch.manual_seed(0)
    signs = torch.where(torch.rand(9) > 0.5, 1.0, -1.0)
    x = torch.randn(9)
    value, ops = quant.binary_dot(signs, x, alpha=0.25)
    assert value.item() == pytest.approx(0.25 * torch.dot(signs, x).item(), abs=1e-6)
    assert ops == {"multiplies": 1, "additions": 8}
    assert quant.binary_dot(signs, x)[1]["multiplies"] == 0
    with pytest.raises(ValueError, match="only \\+1 and -1"):
        quant.binary_dot(torch.tensor([1.0, 0.0]), torch.ones(2))
    with pytest.raises(ValueError, match="same length"):
        quant.binary_dot(torch.ones(3), torch.ones(2))


# ----------------------------------------------------------------------------------------------
# ternary: TWN and TTQ
# ----------------------------------------------------------------------------------------------

def test_twn_matches_brute_force():
    torch.manual_seed(0)
    w = torch.randn(500)
    w_t, codes, delta, alpha = quant.twn_ternarize(w)
    assert delta == pytest.approx(0.7 * w.abs().mean().item())
    for i in range(len(w)):                                     # element by element, the textbook rule
        expected = 1 if w[i] > delta else (-1 if w[i] < -delta else 0)
        assert codes[i].item() == expected
    assert alpha == pytest.approx(w.abs()[w.abs() > delta].mean().item(), rel=1e-6)
    assert torch.allclose(w_t, alpha * codes)


def test_ttq_forward_levels_and_threshold():
    latent = torch.tensor([-1.0, -0.06, -0.04, 0.0, 0.05, 0.051, 0.7])
    wp, wn = torch.tensor(0.8), torch.tensor(0.3)
    out = quant.ttq_ternarize(latent, wp, wn, t=0.05)
    assert torch.allclose(out, torch.tensor([-0.3, -0.3, 0, 0, 0, 0.8, 0.8]))
    assert quant.ttq_threshold(latent * 2, 0.05) == pytest.approx(0.1)
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="0 < t < 1"):
            quant.ttq_threshold(latent, bad)
    for bad in ("0.05", True):
        with pytest.raises(TypeError, match="must be a number"):
            quant.ttq_threshold(latent, bad)


def test_ttq_scale_gradients_match_finite_differences():
    torch.manual_seed(0)
    latent = torch.rand(30, dtype=torch.float64) * 2 - 1
    x = torch.randn(30, dtype=torch.float64)
    wp = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    wn = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)

    def loss(wp_, wn_):
        return (torch.tanh(quant.ttq_ternarize(latent, wp_, wn_, 0.05) * x)).pow(2).sum()

    loss(wp, wn).backward()
    h = 1e-6
    for param, grad in ((0, wp.grad), (1, wn.grad)):
        plus = [wp.detach().clone(), wn.detach().clone()]
        minus = [wp.detach().clone(), wn.detach().clone()]
        plus[param] += h
        minus[param] -= h
        fd = (loss(*plus) - loss(*minus)) / (2 * h)
        assert grad.item() == pytest.approx(fd.item(), rel=1e-6, abs=1e-9)
    assert torch.autograd.gradcheck(lambda a, b: quant.TTQFunction.apply(latent, a, b, 0.05), (wp, wn))


def test_ttq_latent_gradient_is_scaled_straight_through():
    latent = torch.tensor([-0.9, -0.02, 0.01, 0.6], requires_grad=True)
    wp, wn = torch.tensor(2.0), torch.tensor(3.0)
    g = torch.tensor([1.0, 1.0, 1.0, 1.0])
    (quant.ttq_ternarize(latent, wp, wn, 0.05) * g).sum().backward()
    assert torch.equal(latent.grad, torch.tensor([3.0, 1.0, 1.0, 2.0]))   # Wn below -Δ, 1 inside, Wp above


def test_ttq_layer_trains_wp_wn_with_fit():
    from course_lib import train

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    w_before = model[3].weight.detach().clone()
    quant.quantize_model(model, "ttq")
    assert list(quant.ttq_scales(model)) == ["3"]                       # first and last stay float
    latent = model[3].parametrizations.weight.original
    assert latent.abs().max().item() == pytest.approx(1.0)             # scaled to [-1, 1]
    wp0, wn0 = quant.ttq_scales(model)["3"]
    assert wp0 == pytest.approx(w_before[w_before > 0.05 * w_before.abs().max()].mean().item(), rel=1e-5)
    levels = torch.unique(model[3].weight.detach())
    assert len(levels) == 3 and torch.allclose(levels, torch.tensor([-wn0, 0.0, wp0]))
    x, y = torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,))
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    train.fit(model, data, epochs=2, lr=0.1, progress=False, device="cpu")
    wp1, wn1 = quant.ttq_scales(model)["3"]
    assert (wp1, wn1) != (wp0, wn0)
    assert len(torch.unique(model[3].weight.detach())) <= 3


@pytest.mark.parametrize("method", ["binary", "twn", "linear"])
def test_quantize_model_gives_few_levels(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.Flatten(), nn.Linear(8, 2))
    quant.quantize_model(model, method, bits=3, layers=["2"])
    w = model[2].weight.detach()
    per_channel = max(len(torch.unique(row)) for row in w)
    assert per_channel <= {"binary": 2, "twn": 3, "linear": 8}[method]
    out = model(torch.randn(2, 1, 5, 5))
    out.sum().backward()
    assert model[2].parametrizations.weight.original.grad is not None     # STE lets gradients through


def test_quantize_model_errors():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(ValueError, match="method='int3' is unknown"):
        quant.quantize_model(model, "int3")
    with pytest.raises(ValueError, match="needs bits"):
        quant.quantize_model(model, "linear")
    with pytest.raises(ValueError, match="bits=1 must be an integer number of bits between 2 and 16"):
        quant.quantize_model(model, "linear", bits=1)
    with pytest.raises(ValueError, match="'1' is a ReLU, not a Conv1d/Conv2d/Conv3d/Linear layer"):
        quant.quantize_model(model, "ttq", layers=["1"])
    with pytest.raises(ValueError, match="0 < t < 1"):
        quant.quantize_model(model, "ttq", t=0.0, layers=["0"])
    quant.quantize_model(model, "twn", layers=["0"])
    with pytest.raises(ValueError, match="already quantized"):
        quant.quantize_model(model, "twn", layers=["0"])


# ----------------------------------------------------------------------------------------------
# linear quantization: equal to PyTorch's
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bits", [8, 4])
def test_linear_per_tensor_equals_torch(bits, symmetric):
    from torch.ao.quantization import MinMaxObserver

    torch.manual_seed(bits)
    x = torch.randn(1000) * 2 + 0.5
    qmin, qmax = quant.int_range(bits)
    observer = MinMaxObserver(dtype=torch.qint8, quant_min=qmin, quant_max=qmax,
                              qscheme=torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine)
    observer(x)
    ref_scale, ref_zp = observer.calculate_qparams()
    scale, zp = quant.linear_qparams(x, bits, symmetric=symmetric)
    assert scale.item() == pytest.approx(ref_scale.item(), rel=1e-6) and zp.item() == ref_zp.item()
    q = quant.quantize_linear(x, scale, zp, bits)
    # torch.quantize_per_tensor is deprecated; its maintained replacement returns (q - zp)·scale
    fq = torch.fake_quantize_per_tensor_affine(x, scale.item(), int(zp), qmin, qmax)
    assert torch.equal(quant.dequantize_linear(q, scale, zp), fq)
    assert torch.equal(q, quant.torch_codes(x, scale, zp, bits))
    assert q.min() >= qmin and q.max() <= qmax


@pytest.mark.parametrize("axis", [0, 1])
def test_linear_per_channel_equals_torch(axis):
    from torch.ao.quantization import PerChannelMinMaxObserver

    torch.manual_seed(axis)
    x = torch.randn(6, 5, 3, 3) * torch.rand(6, 5, 1, 1) * 3
    observer = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_affine)
    observer(x)
    ref_scale, ref_zp = observer.calculate_qparams()
    scale, zp = quant.linear_qparams(x, 8, axis=axis)
    assert torch.allclose(scale, ref_scale) and torch.equal(zp, ref_zp.long())
    q = quant.quantize_linear(x, scale, zp, 8, axis=axis)
    fq = torch.fake_quantize_per_channel_affine(x, scale, zp.int(), axis, -128, 127)
    assert torch.equal(quant.dequantize_linear(q, scale, zp, axis), fq)
    assert torch.equal(q, quant.torch_codes(x, scale, zp, 8, axis=axis))
    assert torch.allclose(quant.fake_quantize(x, 8, axis=axis), fq)


def test_linear_errors():
    with pytest.raises(ValueError, match="axis=4 must be None"):
        quant.linear_qparams(torch.randn(2, 3), 8, axis=4)
    with pytest.raises(ValueError, match="bits=17"):
        quant.linear_qparams(torch.randn(3), 17)
    with pytest.raises(ValueError, match="bits=1 .*between 2 and 16"):
        quant.int_range(1)


# ----------------------------------------------------------------------------------------------
# dynamic fixed point
# ----------------------------------------------------------------------------------------------

def test_fixed_point_against_brute_force_grid():
    torch.manual_seed(0)
    x = torch.randn(200) * 3
    for bits, fl in ((8, 4), (6, 2), (4, -1)):
        grid = torch.arange(-(2 ** (bits - 1)), 2 ** (bits - 1)) * 2.0 ** -fl      # every representable value
        nearest = grid[(x[:, None] - grid[None]).abs().argmin(1)]
        got = quant.to_fixed_point(x, bits, fl)
        # ties (exactly half-way) may go either way; there are none with random data
        assert torch.allclose(got, nearest)


def test_range_frac_len_is_largest_without_overflow():
    torch.manual_seed(0)
    for bits in (4, 8, 16):
        for scale in (0.01, 1.0, 37.0):
            x = torch.randn(300) * scale
            fl = quant.range_frac_len(x, bits)
            qmin, qmax = quant.int_range(bits)
            assert x.max() <= qmax * 2.0 ** -fl and x.min() >= qmin * 2.0 ** -fl
            assert x.max() > qmax * 2.0 ** -(fl + 1) or x.min() < qmin * 2.0 ** -(fl + 1)
    assert quant.range_frac_len(torch.tensor([-1.0, 0.5]), 8) == 7        # -1 = -128·2^-7 fits exactly
    with pytest.raises(ValueError, match="NaN or inf"):
        quant.range_frac_len(torch.tensor([1.0, float("inf")]), 8)
    with pytest.raises(TypeError, match="frac_len=0.5"):
        quant.to_fixed_point(torch.ones(2), 8, 0.5)


def test_best_frac_len_minimises_error():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(1000) * 0.1, torch.tensor([4.0])])         # one outlier
    fl = quant.best_frac_len(x, 6)
    start = quant.range_frac_len(x, 6)
    assert quant.frac_len_candidates(x, 6) == list(range(start - 1, start + 5))
    errors = {f: (quant.to_fixed_point(x, 6, f) - x).abs().sum().item() for f in range(start - 1, start + 5)}
    assert fl == min(errors, key=errors.get) and fl > start                # clipping the outlier wins
    assert quant.fixed_point_error(x, 6, fl) == errors[fl]
    assert quant.best_frac_len(x, 6, search=(0, 0)) == start               # the range rule alone
    # without an outlier nothing is worth saturating: the search keeps the range rule
    y = torch.linspace(-1.9, 1.9, 101)
    assert quant.best_frac_len(y, 8) == quant.range_frac_len(y, 8)
    with pytest.raises(ValueError, match="search="):
        quant.best_frac_len(x, 6, search=(1,))


def _small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 10)).eval()


def test_dynamic_fixed_point_never_overflows_on_calibration_data():
    model = _small_cnn()
    calib = torch.randn(32, 1, 8, 8) * 2
    for bits in (4, 8):
        qmodel, plan = quant.fixed_point_model(model, calib, bits, search=(0, 0))     # the range rule
        names = ["0", "2", "5"]
        assert set(plan) == {"input", *names}
        qmin, qmax = quant.int_range(bits)
        captured = {}
        hooks = [dict(qmodel.named_modules())[n].register_forward_hook(
            lambda m, i, o, n=n: captured.__setitem__(n, o)) for n in names]
        # pre-hook output of each layer = what the fixed-point hook receives: record it raw
        raw = {}
        for n in names:
            layer = dict(qmodel.named_modules())[n]
            hooks.append(layer.register_forward_hook(lambda m, i, o, n=n: raw.__setitem__(n, o), prepend=True))
        with torch.no_grad():
            qmodel(calib)
        for h in hooks:
            h.remove()
        for n in names:
            fl = plan[n]["output"]
            assert raw[n].max() <= qmax * 2.0 ** -fl and raw[n].min() >= qmin * 2.0 ** -fl, n   # no overflow
            codes = captured[n] * 2.0 ** fl
            assert torch.equal(codes, codes.round())                                          # on the grid
            w = dict(qmodel.named_modules())[n].weight * 2.0 ** plan[n]["weight"]
            assert torch.equal(w, w.round()) and w.min() >= qmin and w.max() <= qmax
            assert plan[n]["weight"] == plan[n]["weight_range"] and plan[n]["output"] == plan[n]["output_range"]


def test_fixed_point_search_is_greedy_and_beats_the_range_rule():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).eval()
    x = torch.randn(256, 16)
    x[0] *= 20                                          # one outlier image: the range rule wastes bits on it
    ref = model(x)
    q_rule, plan_rule = quant.fixed_point_model(model, x, 4, search=(0, 0))
    q_search, plan = quant.fixed_point_model(model, x, 4)
    moved = [(n, k) for n, row in plan.items() if n != "input" for k in ("weight", "output") if row[k] != row[f"{k}_range"]]
    assert moved                                        # the search decided something
    err = lambda q: (q(x)[1:] - ref[1:]).abs().mean().item()
    assert err(q_search) < err(q_rule)
    # greedy and by measured error: layer 0's output length is the candidate closest to the float output
    raw = {}
    hook = q_search[0].register_forward_hook(lambda m, i, o: raw.setdefault("0", o), prepend=True)
    with torch.no_grad():
        q_search(x)
    hook.remove()
    target = model[0](x)
    errors = {fl: quant.fixed_point_error(raw["0"], 4, fl, target) for fl in quant.frac_len_candidates(raw["0"], 4)}
    assert plan["0"]["output"] == min(errors, key=errors.get)
    table = quant.plan_table(plan)
    assert [row.layer for row in table] == list(plan)
    assert any(row.differs for row in table) and "weight_rule" in table.table()
    assert table[1] == quant.PlanRow("0", plan["0"]["weight"], plan["0"]["weight_range"], plan["0"]["output"],
                                     plan["0"]["output_range"], table[1].differs)


def test_dynamic_beats_static_fixed_point():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 5)).eval()
    with torch.no_grad():
        model[0].weight.mul_(0.02)          # two layers with very different ranges
        model[2].weight.mul_(30)
    x = torch.randn(64, 20)
    ref = model(x)
    errs = {}
    for dynamic in (False, True):
        qmodel, plan = quant.fixed_point_model(model, x, 6, dynamic=dynamic, search=(0, 0))
        errs[dynamic] = (qmodel(x) - ref).abs().mean().item()
        if not dynamic:
            assert plan["0"]["weight"] == plan["2"]["weight"] and plan["0"]["output"] == plan["2"]["output"]
    assert errs[True] < errs[False] / 2
    q16, _ = quant.fixed_point_model(model, x, 16)
    assert torch.allclose(q16(x), ref, atol=1e-2 * ref.abs().max().item())
    with pytest.raises(ValueError, match="no conv or linear"):
        quant.fixed_point_model(nn.Sequential(nn.ReLU()), x, 8)


# ----------------------------------------------------------------------------------------------
# whole-model post-training compression and real bytes
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,bits,levels", [("linear", 4, 16), ("fixed", 4, 16), ("kmeans", 3, 8),
                                                ("twn", None, 3), ("ttq", None, 3), ("binary", None, 2)])
def test_compress_weights_levels_and_real_bytes(method, bits, levels):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    qmodel, state = quant.compress_weights(model, method, bits)
    for layer in (qmodel[0], qmodel[2]):
        assert max(len(torch.unique(row)) for row in layer.weight) <= levels
    assert torch.equal(qmodel[0].bias, model[0].bias)
    assert measure.file_bytes(state) < measure.file_bytes(model) / 4
    assert not torch.equal(qmodel[0].weight, model[0].weight) and model[0].weight.requires_grad


def test_compress_weights_codes_rebuild_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 7))
    qmodel, state = quant.compress_weights(model, "linear", 5)
    codes = surgery.unpack_bits(state["0.weight.codes"], 5, 210) + quant.int_range(5)[0]
    rebuilt = quant.dequantize_linear(codes.reshape(7, 30), state["0.weight.scale"],
                                      state["0.weight.zero_point"].long(), axis=0)
    assert torch.allclose(rebuilt, qmodel[0].weight)
    _, st = quant.compress_weights(model, "float")
    assert torch.equal(st["0.weight.weight"], model[0].weight)
    with pytest.raises(ValueError, match="method='pq' is unknown"):
        quant.encode_weights(model[0].weight, "pq")
    with pytest.raises(ValueError, match="needs bits"):
        quant.encode_weights(model[0].weight, "kmeans")


# ----------------------------------------------------------------------------------------------
# explorer
# ----------------------------------------------------------------------------------------------

def test_quant_state_and_errors():
    torch.manual_seed(0)
    w = torch.randn(32, 16) * 0.1
    s = quant.quant_state(w, "kmeans", 3, 0.05)
    assert len(s.levels) == 8 and s.bytes < s.float_bytes
    assert s.mse == pytest.approx((s.quantized - w.reshape(-1)).pow(2).mean().item())
    assert quant.quant_state(w, "kmeans", 5).sqnr_db > s.sqnr_db
    assert len(quant.quant_state(w, "binary", 3).levels) == 2
    assert len(quant.quant_state(w, "ttq", 3, 0.3).levels) == 3
    with pytest.raises(ValueError, match="bits=1: linear quantization needs at least 2 bits"):
        quant.quant_state(w, "linear", 1)
    with pytest.raises(ValueError, match="0 < t < 1"):
        quant.quant_state(w, "ttq", 2, 0.0)
    with pytest.raises(ValueError, match="method='x' is unknown"):
        quant.quant_state(w, "x", 2)


def test_explorer_widget_shows_message_not_traceback():
    explorer = quant.quant_explorer(torch.randn(64) * 0.1)
    assert explorer.error is None and explorer.image.value[:4] == b"\x89PNG"
    assert "SQNR" in explorer.readout.value
    explorer.set(method="fixed", bits=1)
    assert "needs at least 2 bits" in explorer.error
    explorer.set(method="ttq", bits=2, threshold=0.0)
    assert "0 < t < 1" in explorer.error
    explorer.set(threshold=0.1)
    assert explorer.error is None and len(explorer.state.levels) == 3


@pytest.mark.parametrize("method,bits_per_weight", [("ttq", 2), ("twn", 2), ("binary", 1), ("linear", 4),
                                                    ("kmeans", 4)])
def test_quantized_state_dict_real_bytes(method, bits_per_weight):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    quant.quantize_model(model, method, bits=4)
    state = quant.quantized_state_dict(model)
    assert "2.weight.codes" in state and "0.weight" in state and "2.bias" in state
    assert not any("parametrizations" in k for k in state)
    assert len(state["2.weight.codes"]) == 512 * 512 * bits_per_weight // 8
    # rebuild the middle layer's weight from the codes
    w = model[2].weight.detach()
    codes = surgery.unpack_bits(state["2.weight.codes"], bits_per_weight, w.numel()).reshape(w.shape)
    if method in ("ttq", "twn"):
        lo, hi = state["2.weight.levels"]
        rebuilt = torch.where(codes == 2, hi, torch.where(codes == 0, lo, torch.zeros(())))
    elif method == "binary":
        rebuilt = state["2.weight.alpha"][:, None] * (2 * codes - 1)
    elif method == "kmeans":
        rebuilt = state["2.weight.codebook"][codes]
    else:
        q = codes + quant.int_range(4)[0]
        rebuilt = quant.dequantize_linear(q, state["2.weight.scale"], state["2.weight.zero_point"].long(), axis=0)
    assert torch.allclose(rebuilt, w, atol=1e-6)
    dense = measure.file_bytes(nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                             nn.Linear(512, 10)))
    saved = dense - measure.file_bytes(state)
    assert saved > 0.95 * 512 * 512 * (4 - bits_per_weight / 8)         # the middle layer's float bytes are gone


def test_xnor_dot_equals_the_dot_product_of_signs():
    g = torch.Generator().manual_seed(0)
    for n in (1, 7, 64, 130):
        a = torch.where(torch.randn(n, generator=g) >= 0, 1.0, -1.0)
        b = torch.where(torch.randn(n, generator=g) >= 0, 1.0, -1.0)
        value, ops = quant.xnor_dot(quant.pack_signs(a), quant.pack_signs(b), n)
        assert value == torch.dot(a, b).item() and ops["multiplies"] == 0 and ops["word_ops"] == 2 * -(-n // 64)
    assert quant.pack_signs(torch.tensor([1.0, -1.0, 1.0])) == 0b101
    with pytest.raises(ValueError, match="\\+1 and -1"):
        quant.pack_signs(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="n=0"):
        quant.xnor_dot(0, 0, 0)


def test_codebook_dot_uses_one_multiply_per_centroid():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(500, generator=g, dtype=torch.float64)
    codebook, idx = quant.kmeans_codebook(w, 3)
    x = torch.randn(500, generator=g, dtype=torch.float64)
    value, ops = quant.codebook_dot(codebook, idx, x)
    assert torch.isclose(value, torch.dot(codebook[idx], x)) and ops == {"multiplies": 8, "additions": 499}
    with pytest.raises(ValueError, match="indices must lie"):
        quant.codebook_dot(codebook, idx + 8, x)


def test_deep_compression_bits_gives_8_bit_conv_5_bit_fc():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 256), nn.ReLU(),
                          nn.Linear(256, 5))
    assert quant.deep_compression_bits(model) == {"0": 8, "3": 5, "5": 5}
    assert quant.deep_compression_bits(model, conv_bits=6, fc_bits=3) == {"0": 6, "3": 3, "5": 3}


# ----------------------------------------------------------------------------------------------
# the transforms compose: pruned (torch.nn.utils.prune, as prune.magnitude_prune does), then shared
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_share_weights_after_pruning_keeps_the_zeros(arch):
    import torch.nn.utils.prune as torch_prune
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    names = list(surgery.weight_layers(model))[1:4]
    for name in names:
        torch_prune.l1_unstructured(model.get_submodule(name), "weight", amount=0.6)
    masks = {name: model.get_submodule(name).weight_mask.bool().clone() for name in names}
    quant.share_weights(model, 3, layers=names, iters=3, train_others=False)
    for name in names:
        assert not hasattr(model.get_submodule(name), "weight_mask")      # folded into the weight
        assert bool((model.get_submodule(name).weight[~masks[name]] == 0).all())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    for name in names:
        weight = model.get_submodule(name).weight
        assert bool((weight[~masks[name]] == 0).all()) and bool((weight[masks[name]] != 0).any())
        assert len(torch.unique(weight)) <= 2 ** 3 + 1


def test_quantize_model_after_pruning_keeps_the_zeros():
    import torch.nn.utils.prune as torch_prune

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    torch_prune.l1_unstructured(model[2], "weight", amount=0.5)
    mask = model[2].weight_mask.bool().clone()
    quant.quantize_model(model, "binary")
    assert bool((model[2].weight[~mask] == 0).all()) and bool((model[2].weight[mask] != 0).all())
    assert "2.weight.mask" in quant.quantized_state_dict(model)


def test_mask_shared_weights_zeroes_and_keeps_earlier_masks():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    quant.share_weights(layer, 2, iters=3)
    first = torch.rand(4, 6) > 0.3
    quant.mask_shared_weights(layer, first)
    assert torch.equal(layer.weight.detach() != 0, first & (layer.weight.detach() != 0)) and not layer.weight[~first].any()
    second = torch.rand(4, 6) > 0.3
    quant.mask_shared_weights(layer, second)
    assert not layer.weight[~(first & second)].any()                   # positions masked before stay masked
    with pytest.raises(ValueError, match="shape"):
        quant.mask_shared_weights(layer, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="share_weights first"):
        quant.mask_shared_weights(nn.Linear(2, 2), torch.ones(2, 2, dtype=torch.bool))
