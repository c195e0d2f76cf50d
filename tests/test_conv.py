"""Tests of course_lib.conv against PyTorch's own operators (F.unfold, F.fold, F.conv2d) and measure."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from course_lib import conv, measure  # noqa: E402


# ---------------------------------------------------------------------------------------------
# randomized configurations: a valid (x, kernel, stride, padding, dilation, groups) every time

@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # the input must hold the dilated kernel after padding
    h_min, w_min = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(h_min, h_min + 6)), draw(st.integers(w_min, w_min + 6))
    batch = draw(st.integers(1, 3))
    return dict(batch=batch, c_in=c_in, c_out=c_out, groups=groups, hw=(h, w), kernel=(kh, kw),
                stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))


def _tensors(cfg, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["batch"], cfg["c_in"], *cfg["hw"], generator=g, dtype=dtype)
    w = torch.randn(cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"], generator=g, dtype=dtype)
    b = torch.randn(cfg["c_out"], generator=g, dtype=dtype)
    return x, w, b


def _geometry(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_im2col_equals_unfold(cfg):
    x, _, _ = _tensors(cfg)
    ours = conv.im2col(x, cfg["kernel"], **_geometry(cfg))
    ref = F.unfold(x, cfg["kernel"], **_geometry(cfg))
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_col2im_equals_fold(cfg):
    x, _, _ = _tensors(cfg)
    cols = F.unfold(x, cfg["kernel"], **_geometry(cfg))
    cols = cols + torch.randn_like(cols)           # any column matrix, not only one that came from an image
    ours = conv.col2im(cols, cfg["hw"], cfg["kernel"], **_geometry(cfg))
    ref = F.fold(cols, cfg["hw"], cfg["kernel"], **_geometry(cfg))
    torch.testing.assert_close(ours, ref)


@settings(max_examples=40, deadline=None)
@given(conv_configs(), st.booleans())
def test_conv2d_as_matmul_equals_conv2d(cfg, with_bias):
    x, w, b = _tensors(cfg)
    b = b if with_bias else None
    ours = conv.conv2d_as_matmul(x, w, b, groups=cfg["groups"], **_geometry(cfg))
    ref = F.conv2d(x, w, b, groups=cfg["groups"], **_geometry(cfg))
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref)


@settings(max_examples=15, deadline=None)
@given(conv_configs())
def test_conv2d_as_matmul_gradients_equal_conv2d(cfg):
    x, w, b = _tensors(cfg)
    grads = []
    for fn in (conv.conv2d_as_matmul, F.conv2d):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        out = fn(xs, ws, bs, groups=cfg["groups"], **_geometry(cfg))
        upstream = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        (out * upstream).sum().backward()
        grads.append((xs.grad, ws.grad, bs.grad))
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref)


def test_gradcheck_im2col_and_col2im():
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: conv.im2col(t, (2, 3), stride=(2, 1), padding=1), (x,))
    cols = torch.randn(1, 12, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: conv.col2im(c, (4, 5), (2, 3), stride=(1, 2)), (cols,))


@settings(max_examples=10, deadline=None)
@given(conv_configs())
def test_naive_conv2d_equals_conv2d(cfg):
    x, w, b = _tensors(cfg)
    torch.testing.assert_close(conv.naive_conv2d(x, w, b, groups=cfg["groups"], **_geometry(cfg)),
                               F.conv2d(x, w, b, groups=cfg["groups"], **_geometry(cfg)))


def test_unbatched_inputs_and_the_seed_example():
    # the seed's example: a 3×3 window over 4 channels is a 36-vector; 100 kernels of 3×3×100 → 100×900
    x = torch.randn(4, 8, 8)
    cols = conv.im2col(x, 3)
    assert cols.shape == (36, 36)
    torch.testing.assert_close(cols, F.unfold(x[None], 3)[0])
    assert conv.weight_matrix(nn.Conv2d(100, 100, 3)).shape == (100, 900)
    torch.testing.assert_close(conv.col2im(cols, 8, 3), F.fold(cols[None], 8, 3)[0])
    w = torch.randn(5, 4, 3, 3)
    torch.testing.assert_close(conv.conv2d_as_matmul(x, w, padding=1), F.conv2d(x[None], w, padding=1)[0])


def test_output_size_matches_conv2d():
    for n, k, s, p, d in [(7, 3, 2, 0, 1), (32, 3, 1, 1, 1), (10, 3, 3, 2, 2), (5, 5, 1, 0, 1), (1, 1, 1, 0, 1)]:
        out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
        assert conv.output_size(n, k, s, p, d) == out.shape[-1]


# ---------------------------------------------------------------------------------------------
# the weight matrix

@pytest.mark.parametrize("groups", [1, 2, 4])
def test_weight_matrix_times_columns_is_the_conv(groups):
    layer = nn.Conv2d(8, 12, (3, 2), stride=2, padding=1, groups=groups, bias=False)
    x = torch.randn(2, 8, 7, 6)
    W = conv.weight_matrix(layer)
    assert W.shape == (12, 8 * 3 * 2)
    out = W @ conv.im2col(x, (3, 2), stride=2, padding=1)
    torch.testing.assert_close(out.reshape(2, 12, *layer(x).shape[2:]), layer(x), rtol=1e-4, atol=1e-5)


def test_weight_matrix_is_block_diagonal_for_groups():
    weight = torch.randn(6, 2, 3, 3)                  # 3 groups, C_in = 6
    W = conv.weight_matrix(weight, groups=3)
    assert W.shape == (6, 54)
    for g in range(3):
        block = W[2 * g:2 * g + 2]
        torch.testing.assert_close(block[:, 18 * g:18 * (g + 1)], weight[2 * g:2 * g + 2].reshape(2, 18))
        off = torch.cat([block[:, :18 * g], block[:, 18 * (g + 1):]], dim=1)
        assert torch.count_nonzero(off) == 0
    assert conv.block_structure(W) == 3
    assert conv.block_structure(conv.weight_matrix(torch.randn(6, 6, 3, 3))) == 1
    # 2-D weights (1×1 conv / linear) are accepted, and a linear layer's matrix is its weight
    lin = nn.Linear(5, 3)
    torch.testing.assert_close(conv.weight_matrix(lin), lin.weight)
    assert conv.block_structure(conv.weight_matrix(torch.randn(4, 2), groups=2)) == 2


def test_weight_matrix_keeps_gradients():
    weight = torch.randn(4, 1, 3, 3, requires_grad=True)
    conv.weight_matrix(weight, groups=4).sum().backward()
    torch.testing.assert_close(weight.grad, torch.ones_like(weight))


def test_plot_weight_matrix_blanks_zeros_and_outlines_groups():
    fig, axes = plt.subplots(1, 3)
    conv.plot_weight_matrix(nn.Conv2d(4, 4, 3, groups=2), ax=axes[0])
    conv.plot_weight_matrix(conv.weight_matrix(torch.randn(4, 1, 3, 3), groups=4), ax=axes[1], title="dw")
    conv.plot_weight_matrix(torch.randn(4, 4, 1, 1), ax=axes[2])
    image = axes[0].images[0].get_array()
    assert image.mask.sum() == 4 * 36 // 2            # half the entries are zeros, drawn blank
    outlines = [p for p in axes[0].patches if p.get_edgecolor()[:3] == (0, 0, 0)]
    assert len(outlines) == 2                          # one outline per group block
    assert axes[1].get_title() == "dw"
    assert len([p for p in axes[1].patches if p.get_edgecolor()[:3] == (0, 0, 0)]) == 4  # inferred
    plt.close(fig)
    ax = conv.plot_weight_matrix(nn.Conv2d(2, 3, 1))  # makes its own axes
    assert "groups=1" in ax.get_title()
    plt.close(ax.figure)


# ---------------------------------------------------------------------------------------------
# bad inputs → clear errors

def test_bad_inputs_give_clear_errors():
    x = torch.randn(1, 4, 5, 5)
    with pytest.raises(ValueError, match="kernel_size=7.*padded input"):
        conv.im2col(x, 7)
    with pytest.raises(ValueError, match="stride=0 must be positive"):
        conv.im2col(x, 3, stride=0)
    with pytest.raises(ValueError, match="padding=-1 must be >= 0"):
        conv.im2col(x, 3, padding=-1)
    with pytest.raises(TypeError, match="kernel_size=.*int or a pair"):
        conv.im2col(x, (3, 3, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        conv.im2col(x.numpy(), 3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\)"):
        conv.im2col(torch.randn(5, 5), 3)
    with pytest.raises(ValueError, match="input channels C_in=4 are not divisible by groups=3"):
        conv.conv2d_as_matmul(x, torch.randn(3, 1, 3, 3), groups=3)
    with pytest.raises(ValueError, match="output channels C_out=3 are not divisible by groups=2"):
        conv.conv2d_as_matmul(x, torch.randn(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="weight expects C_in/groups=3"):
        conv.conv2d_as_matmul(x, torch.randn(6, 3, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        conv.conv2d_as_matmul(x, torch.randn(6, 4, 3, 3), torch.randn(5))
    with pytest.raises(ValueError, match="weight must be a tensor of shape"):
        conv.conv2d_as_matmul(x, torch.randn(6, 4))
    with pytest.raises(ValueError, match="cols has L=10 columns"):
        conv.col2im(torch.randn(1, 36, 10), (5, 5), 3)
    with pytest.raises(ValueError, match="not a multiple of kh·kw = 9"):
        conv.col2im(torch.randn(1, 35, 9), (5, 5), 3)
    with pytest.raises(ValueError, match="C_out=6 output channels are not divisible by groups=4"):
        conv.weight_matrix(torch.randn(6, 1, 3, 3), groups=4)
    with pytest.raises(ValueError, match="contradicts the layer's own groups=2"):
        conv.weight_matrix(nn.Conv2d(4, 4, 3, groups=2), groups=4)
    with pytest.raises(TypeError, match="conv_or_weight must be"):
        conv.weight_matrix([1, 2, 3])
    with pytest.raises(TypeError, match="W_or_conv must be"):
        conv.plot_weight_matrix("W")
    with pytest.raises(ValueError, match="dilation=2 spans 5 pixels"):
        conv.output_size(3, 3, 1, 0, 2)
    with pytest.raises(ValueError, match="needs C_in=3"):
        conv.naive_conv2d(x, torch.randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match="c_in=6 is not divisible by groups=4"):
        conv.conv_cost(6, 8, 3, 10, groups=4)


# ---------------------------------------------------------------------------------------------
# cost model, checked with course_lib.measure on real layers

@pytest.mark.parametrize("c_in,c_out,k,hw,stride,padding,dilation,groups,bias,batch", [
    (3, 16, 3, (32, 32), 1, 1, 1, 1, True, 1),
    (16, 32, (3, 5), (15, 11), 2, (1, 2), 1, 4, False, 3),
    (32, 32, 3, (14, 14), 1, 2, 2, 32, False, 2),
    (8, 4, 1, (7, 9), 1, 0, 1, 2, True, 1),
])
def test_conv_cost_agrees_with_measure(c_in, c_out, k, hw, stride, padding, dilation, groups, bias, batch):
    layer = nn.Conv2d(c_in, c_out, k, stride, padding, dilation, groups, bias=bias)
    cost = conv.conv_cost(c_in, c_out, k, hw, stride, padding, dilation, groups, bias=bias, batch=batch)
    x = torch.randn(batch, c_in, *hw)
    y = layer(x)
    assert cost.out_hw == tuple(y.shape[2:])
    assert cost.params == measure.count_params(layer)
    assert cost.macs == measure.count_macs(layer, (batch, c_in, *hw))
    assert cost.flops == 2 * cost.macs
    assert cost.output_bytes == y.numel() * 4
    assert cost.input_bytes == measure.activation_bytes(layer, x)   # autograd saves the input
    assert cost.im2col_bytes == conv.im2col(x, k, stride, padding, dilation).numel() * 4


def test_mobilenet_table_reproduces_the_published_figures():
    measured = conv.mobilenet_table()
    assert [row.layer for row in measured] == list(conv.MOBILENET_PUBLISHED)
    for row in measured:
        pub_macs, pub_params = conv.MOBILENET_PUBLISHED[row.layer]
        assert conv.round_sig(row.macs / 1e6, 3) == pub_macs, row.layer
        assert round(row.params / 1e6, 2) == pub_params, row.layer
    assert measured[0] == conv.MobileNetRow("regular 3×3 conv", 14 * 14 * 512 * 512 * 9, 512 * 512 * 9)
    assert "depthwise separable" in measured.table()


def test_round_sig():
    assert conv.round_sig(462.422016) == 462
    assert conv.round_sig(52.283392) == 52.3
    assert conv.round_sig(0.0012345, 2) == 0.0012
    assert conv.round_sig(0) == 0.0


# ---------------------------------------------------------------------------------------------
# the im2col explorer

def test_im2col_state_agrees_with_torch():
    for settings_ in (dict(), dict(size=7, channels=4, groups=2, kernel=3, stride=2, padding=1, dilation=1,
                                   out_row=2, out_col=1, out_channel=3),
                      dict(size=8, channels=3, kernel=2, dilation=3, padding=2, out_row=5, out_col=4)):
        s = conv.im2col_state(**settings_)
        assert s.value_matmul == s.value_torch
        assert s.cols.shape == (s.channels * s.kernel ** 2, s.out ** 2)
        assert s.W.shape == (s.channels, s.channels * s.kernel ** 2)
        x = s.x[None]
        torch.testing.assert_close(s.cols, F.unfold(x, s.kernel, s.dilation, s.padding, s.stride)[0])
        assert len(s.cells) == s.kernel ** 2 and all(0 <= r < s.padded for r, _ in s.cells)
        assert str(s.out) in s.formula
    # pure: the same settings give the same state
    a, b = conv.im2col_state(size=5), conv.im2col_state(size=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.W, b.W)


BAD_SETTINGS = [
    (dict(size=4, kernel=7), "kernel=7 with dilation=1 spans 7 pixels"),
    (dict(size=4, kernel=3, dilation=3, padding=1), "output would have size < 1"),
    (dict(channels=3, groups=2), "channels=3 is not divisible by groups=2"),
    (dict(size=6, kernel=3, out_row=4), r"outside the 4×4 output"),
    (dict(channels=2, out_channel=2), "out_channel=2 must be < 2"),
]
DEFAULTS = dict(size=6, channels=2, kernel=3, stride=1, padding=0, dilation=1, groups=1,
                out_row=0, out_col=0, out_channel=0)


def test_explorer_invalid_settings_show_a_message():
    explorer = conv.im2col_explorer()
    assert explorer.error is None and explorer.image.value[:4] == b"\x89PNG"
    for bad, message in BAD_SETTINGS:
        with pytest.raises(ValueError, match=message):
            conv.im2col_state(**dict(DEFAULTS, **bad))
        explorer.set(**dict(DEFAULTS, **bad))
        assert explorer.state is None and re.search(message, explorer.error), (bad, explorer.error)
        assert explorer.image.value[:4] == b"\x89PNG"       # the message is drawn, no traceback
        assert message.split()[0] in explorer.message.value
    explorer.set(**DEFAULTS)
    assert explorer.error is None and explorer.state is not None


def test_explorer_static_figure_and_readout():
    explorer = conv.im2col_explorer(channels=4, groups=2, stride=2, padding=1, out_row=1, out_col=2, out_channel=3)
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "image/png" in data and "H_out" in data["text/plain"]
    assert "F.conv2d" in explorer.readout.value
