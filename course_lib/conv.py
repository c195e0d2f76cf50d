"""Chapter 01: a convolution is a matrix multiplication.

The whole chapter rests on one picture (the IGC lecture; Chellapilla et al. 2006, "High
Performance Convolutional Neural Networks for Document Processing", which introduced the
"unfold" trick, and the cuDNN paper, Chetlur et al. 2014):

* **im2col** cuts every k×k window of a C-channel input into a *column* of length C·k·k
  (a 3×3 window over 4 channels is a 36-vector);
* every output channel's kernel, flattened the same way, is a *row* of the **weight matrix**
  (100 output channels of 3×3×100 kernels → a 100 × 900 matrix);
* the layer is one matrix product ``W @ columns``; **col2im** is its adjoint (it sums columns
  back into an image, which is how the backward pass and transposed convolutions work).

A group convolution makes ``W`` block-diagonal: that is the first "cheaper matrix" of the course.

Contract (other chapters import these): ``im2col``, ``col2im``, ``conv2d_as_matmul``,
``weight_matrix``, ``plot_weight_matrix``, ``output_size``, ``conv_cost``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn

from . import measure
from .args import check_int
from .report import Rows
from .states import State
from .surgery import dense_group_weight

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .widgets import Explorer

__all__ = [
    "output_size",
    "im2col",
    "col2im",
    "conv2d_as_matmul",
    "naive_conv2d",
    "weight_matrix",
    "block_structure",
    "plot_weight_matrix",
    "ConvCost",
    "conv_cost",
    "MOBILENET_PUBLISHED",
    "depthwise_separable",
    "MobileNetRow",
    "mobilenet_table",
    "round_sig",
    "Im2colState",
    "im2col_state",
    "draw_im2col",
    "im2col_readout",
    "im2col_explorer",
]


# ----------------------------------------------------------------------------------------------
# argument checking: every bad input gets a message naming the parameter and the rule


def _pair(value, name, minimum=1):
    """``3`` → ``(3, 3)``; ``(3, 5)`` stays; anything else is a clear error."""
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be an int or a pair of ints, not a bool")
    if isinstance(value, int):
        pair = (value, value)
    elif (
        isinstance(value, (tuple, list, torch.Size))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name}={value!r} must be an int or a pair of ints (height, width)")
    if min(pair) < minimum:
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name}={value!r} must be {rule}")
    return pair


def _check_image(x, name="x"):
    """Accept (N, C, H, W) or an unbatched (C, H, W) floating tensor; return it batched + a flag."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        return x.unsqueeze(0), True
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x, False


def output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Length of a convolution's output along one axis.

    ``out = floor((n + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``
    (the formula in the PyTorch ``nn.Conv2d`` docs; Dumoulin & Visin 2016, "A guide to
    convolution arithmetic"). Raises ``ValueError`` when the dilated kernel does not fit.
    """
    for name, v, lo in (
        ("n", n, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        check_int(name, v, lo)
    span = dilation * (kernel_size - 1) + 1
    if span > n + 2 * padding:
        raise ValueError(
            f"kernel_size={kernel_size} with dilation={dilation} spans {span} pixels, more than "
            f"the padded input (n={n} + 2·padding={2 * padding} = {n + 2 * padding}): output size < 1"
        )
    return (n + 2 * padding - span) // stride + 1


def _output_hw(hw, kernel, stride, padding, dilation):
    try:
        return tuple(output_size(hw[i], kernel[i], stride[i], padding[i], dilation[i]) for i in range(2))
    except ValueError as err:
        raise ValueError(f"input of size {tuple(hw)} is too small: {err}") from None


# ----------------------------------------------------------------------------------------------
# im2col / col2im


def im2col(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Cut every kernel window of ``x`` into a column: (N, C, H, W) → (N, C·kh·kw, L).

    ``L = H_out · W_out`` is the number of output positions. Column ``l`` holds the window of output
    position ``l`` (row-major), channel-major like ``torch.nn.functional.unfold``: entry
    ``c·kh·kw + i·kw + j`` is input pixel ``(c, oh·s + i·d − p, ow·s + j·d − p)`` (zero if padding).

    Built from ``kh·kw`` strided slices of the padded input (one per kernel offset), so it is
    differentiable and needs no Python loop over output positions.
    """
    x, unbatched = _check_image(x)
    kh, kw = _pair(kernel_size, "kernel_size")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
    dh, dw = _pair(dilation, "dilation")
    n, c, h, w = x.shape
    oh, ow = _output_hw((h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    slices = []
    for i in range(kh):  # one strided view of the input per kernel offset (i, j)
        for j in range(kw):
            top, left = i * dh, j * dw
            slices.append(xp[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw])
    cols = torch.stack(slices, dim=2)  # (N, C, kh·kw, H_out, W_out)
    cols = cols.reshape(n, c * kh * kw, oh * ow)
    return cols[0] if unbatched else cols


def col2im(
    cols: torch.Tensor,
    output_size: int | tuple[int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """The adjoint of :func:`im2col` (like ``torch.nn.functional.fold``): sum columns back into an image.

    ``cols`` is (N, C·kh·kw, L) (or unbatched (C·kh·kw, L)); ``output_size`` is the image size (H, W).
    Pixels covered by several windows receive the *sum* of their copies, so
    ``col2im(im2col(x)) = x · (number of windows covering each pixel)``, not ``x``.
    """
    if not isinstance(cols, torch.Tensor):
        raise TypeError(f"cols must be a torch.Tensor, got {type(cols).__name__}")
    unbatched = cols.dim() == 2
    if unbatched:
        cols = cols.unsqueeze(0)
    if cols.dim() != 3:
        raise ValueError(f"cols must have shape (N, C·kh·kw, L) or (C·kh·kw, L), got {tuple(cols.shape)}")
    h, w = _pair(output_size, "output_size")
    kh, kw = _pair(kernel_size, "kernel_size")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding", minimum=0)
    dh, dw = _pair(dilation, "dilation")
    oh, ow = _output_hw((h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    n, rows, length = cols.shape
    if rows % (kh * kw):
        raise ValueError(f"cols has {rows} rows, not a multiple of kh·kw = {kh * kw} (kernel_size={kernel_size!r})")
    if length != oh * ow:
        raise ValueError(
            f"cols has L={length} columns but output_size={(h, w)} with this kernel/stride/"
            f"padding/dilation gives {oh}×{ow} = {oh * ow} windows"
        )
    c = rows // (kh * kw)
    parts = cols.reshape(n, c, kh, kw, oh, ow)
    image = cols.new_zeros(n, c, h + 2 * ph, w + 2 * pw)
    for i in range(kh):  # add each kernel offset's slice back where it came from
        for j in range(kw):
            top, left = i * dh, j * dw
            image[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw] += parts[:, :, i, j]
    image = image[:, :, ph : ph + h, pw : pw + w]
    return image[0] if unbatched else image


# ----------------------------------------------------------------------------------------------
# the layer as one (batched, per-group) matrix product


def conv2d_as_matmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` computed as im2col + one matrix product per group.

    ``weight`` is (C_out, C_in/groups, kh, kw). Each group g multiplies its (C_out/g) × (C_in/g·kh·kw)
    block of the weight matrix by its slice of the columns: ``out = W_g @ cols_g``.
    """
    x, unbatched = _check_image(x)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a tensor of shape (C_out, C_in/groups, kh, kw), got {type(weight).__name__}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be a tensor of shape (C_out, C_in/groups, kh, kw), got {tuple(weight.shape)}")
    check_int("groups", groups)
    c_out, c_in_per_group, kh, kw = weight.shape
    n, c_in = x.shape[:2]
    if c_in % groups:
        raise ValueError(f"input channels C_in={c_in} are not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"output channels C_out={c_out} are not divisible by groups={groups}")
    if c_in_per_group * groups != c_in:
        raise ValueError(
            f"weight expects C_in/groups={c_in_per_group} input channels per group, i.e. "
            f"C_in={c_in_per_group * groups} with groups={groups}, but x has C_in={c_in}"
        )
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},) (one per output channel), got {tuple(bias.shape)}")
    cols = im2col(x, (kh, kw), stride, padding, dilation)  # (N, C_in·kh·kw, L)
    oh, ow = _output_hw(
        x.shape[2:], (kh, kw), _pair(stride, "stride"), _pair(padding, "padding", 0), _pair(dilation, "dilation")
    )
    cols = cols.reshape(n, groups, c_in_per_group * kh * kw, oh * ow)  # the columns of each group
    w_blocks = weight.reshape(groups, c_out // groups, c_in_per_group * kh * kw)
    out = torch.matmul(w_blocks, cols)  # (N, groups, C_out/groups, L)
    out = out.reshape(n, c_out, oh, ow)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out[0] if unbatched else out


def naive_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """The textbook loop: one dot product per output pixel (slow; for tiny inputs and teaching)."""
    x, unbatched = _check_image(x)
    c_out, cpg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding", 0), _pair(dilation, "dilation")
    oh, ow = _output_hw(x.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    if x.shape[1] != cpg * groups or c_out % groups:
        raise ValueError(
            f"x has C_in={x.shape[1]}, weight {tuple(weight.shape)} with groups={groups} needs "
            f"C_in={cpg * groups} and C_out divisible by groups"
        )
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    out = x.new_zeros(x.shape[0], c_out, oh, ow)
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for r in range(oh):
            for q in range(ow):
                window = xp[
                    :,
                    g * cpg : (g + 1) * cpg,
                    r * sh : r * sh + dh * (kh - 1) + 1 : dh,
                    q * sw : q * sw + dw * (kw - 1) + 1 : dw,
                ]
                out[:, o, r, q] = (window * weight[o]).sum(dim=(1, 2, 3))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out[0] if unbatched else out


# ----------------------------------------------------------------------------------------------
# the weight matrix and its picture


def _weight_and_groups(conv_or_weight, groups):
    """(4-D weight, groups) from an nn.Conv2d, a 4-D conv weight, an nn.Linear or a 2-D matrix."""
    if isinstance(conv_or_weight, nn.Conv2d):
        conv = conv_or_weight
        if groups not in (1, conv.groups):
            raise ValueError(f"groups={groups} contradicts the layer's own groups={conv.groups}; leave it out")
        return conv.weight, conv.groups
    if isinstance(conv_or_weight, nn.Linear):
        return conv_or_weight.weight[:, :, None, None], groups
    if not isinstance(conv_or_weight, torch.Tensor):
        raise TypeError(
            f"conv_or_weight must be an nn.Conv2d, nn.Linear or a weight tensor, got {type(conv_or_weight).__name__}"
        )
    weight = conv_or_weight
    if weight.dim() == 2:  # a 1×1 conv / linear weight (C_out, C_in/groups)
        weight = weight[:, :, None, None]
    if weight.dim() != 4:
        raise ValueError(
            f"weight must have shape (C_out, C_in/groups, kh, kw) or (C_out, C_in/groups), "
            f"got {tuple(conv_or_weight.shape)}"
        )
    return weight, groups


def weight_matrix(conv_or_weight: nn.Conv2d | nn.Linear | torch.Tensor, groups: int = 1) -> torch.Tensor:
    """The dense C_out × (C_in·kh·kw) matrix that a conv layer multiplies im2col's columns by.

    Row ``o`` is output channel ``o``'s kernel flattened channel-major (the order of :func:`im2col`).
    For a group conv (weight (C_out, C_in/groups, kh, kw)) group ``g``'s rows are placed in its own
    column block (input channels ``g·C_in/groups …``), zeros elsewhere: the matrix is
    **block-diagonal** — the structured sparsity that IGC (chapter 06) builds on.
    ``conv_or_weight``: an ``nn.Conv2d`` (its ``groups`` is used), a 4-D weight, an ``nn.Linear`` or a
    2-D weight (a 1×1 conv). Keeps autograd (does not detach).
    """
    check_int("groups", groups)
    weight, groups = _weight_and_groups(conv_or_weight, groups)
    dense = dense_group_weight(weight, groups)  # C_out × C_in × kh × kw, zeros off the groups
    return dense.reshape(dense.shape[0], -1)


def block_structure(matrix: torch.Tensor | np.ndarray) -> int:
    """The largest number of equal diagonal blocks ``g`` such that ``matrix`` is zero off them.

    (1 for a dense matrix.) Used to outline group blocks of a matrix handed over without its layer.
    """
    m = torch.as_tensor(matrix).detach()
    rows, cols = m.shape
    nonzero = m != 0
    for g in range(math.gcd(rows, cols), 1, -1):
        if rows % g or cols % g:
            continue
        br, bc = rows // g, cols // g
        mask = torch.zeros_like(nonzero)
        for b in range(g):
            mask[b * br : (b + 1) * br, b * bc : (b + 1) * bc] = True
        if not (nonzero & ~mask).any():
            return g
    return 1


def plot_weight_matrix(
    W_or_conv: nn.Conv2d | nn.Linear | torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    groups: int | None = None,
    kernel_area: int | None = None,
) -> Axes:
    """Draw a weight matrix: zeros blank (white), non-zeros in a diverging colour map, group blocks outlined.

    ``W_or_conv``: an ``nn.Conv2d`` / ``nn.Linear`` / 4-D conv weight (turned into
    :func:`weight_matrix`) or a 2-D matrix. Group blocks come from the layer's ``groups``, from
    ``groups=`` if given, else from the zero pattern (:func:`block_structure`). ``kernel_area``
    (kh·kw) draws faint lines between input channels. Returns the axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    layer_groups = None
    if isinstance(W_or_conv, nn.Conv2d):
        layer_groups = W_or_conv.groups
        kernel_area = kernel_area or W_or_conv.kernel_size[0] * W_or_conv.kernel_size[1]
        matrix = weight_matrix(W_or_conv)
    elif isinstance(W_or_conv, nn.Linear) or (isinstance(W_or_conv, torch.Tensor) and W_or_conv.dim() == 4):
        g = groups or 1
        if isinstance(W_or_conv, torch.Tensor):
            kernel_area = kernel_area or W_or_conv.shape[2] * W_or_conv.shape[3]
        matrix, layer_groups = weight_matrix(W_or_conv, g), g
    elif isinstance(W_or_conv, (torch.Tensor, np.ndarray)) and np.ndim(W_or_conv) == 2:
        matrix = torch.as_tensor(W_or_conv)
    else:
        raise TypeError(
            "W_or_conv must be an nn.Conv2d, nn.Linear, a 4-D conv weight or a 2-D matrix, "
            f"got {type(W_or_conv).__name__}"
        )
    m = matrix.detach().float().cpu().numpy()
    g = groups or layer_groups or block_structure(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, max(2.5, min(6.0, 6 * m.shape[0] / max(m.shape[1], 1)) + 1.0)))
    limit = float(np.abs(m).max()) or 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    ax.imshow(np.ma.masked_equal(m, 0.0), cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
    rows, cols = m.shape
    if kernel_area and kernel_area > 1 and cols // kernel_area <= 64:
        for c in range(kernel_area, cols, kernel_area):
            ax.axvline(c - 0.5, color="0.85", lw=0.5)
    if g > 1 and rows % g == 0 and cols % g == 0:
        br, bc = rows // g, cols // g
        for b in range(g):
            ax.add_patch(Rectangle((b * bc - 0.5, b * br - 0.5), bc, br, fill=False, ec="k", lw=1.2))
    ax.add_patch(Rectangle((-0.5, -0.5), cols, rows, fill=False, ec="0.4", lw=0.8))
    zeros = 1 - np.count_nonzero(m) / m.size
    ax.set_title(title or f"W: {rows}×{cols}, groups={g}, {zeros:.0%} zeros", fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(-0.5, cols - 0.5), ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel("input (channel, kernel offset)  = im2col row")
    ax.set_ylabel("output channel")
    return ax


# ----------------------------------------------------------------------------------------------
# cost model: parameters, MACs and memory of one conv layer, on paper


@dataclass
class ConvCost:
    """What one conv layer costs for a batch (elements counted in ``bytes_per_element`` bytes)."""

    out_hw: tuple  # (H_out, W_out)
    params: int  # C_out · C_in/groups · kh · kw (+ C_out with bias)
    macs: int  # N · C_out · H_out · W_out · C_in/groups · kh · kw
    input_bytes: int  # the input feature map: what autograd saves for the weight gradient
    output_bytes: int  # the output feature map (the "activation" the next layer reads)
    im2col_bytes: int  # the column matrix: N · C_in·kh·kw · H_out·W_out elements (≈ k²× the input)

    @property
    def flops(self) -> int:
        return 2 * self.macs


def conv_cost(
    c_in: int,
    c_out: int,
    kernel_size: int | tuple[int, int],
    input_hw: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    bias: bool = False,
    batch: int = 1,
    bytes_per_element: int = 4,
) -> ConvCost:
    """Parameters, MACs and memory of ``nn.Conv2d(c_in, c_out, kernel_size, ...)`` on a ``batch`` of
    ``input_hw`` images, derived on paper (MobileNet, Howard et al. 2017, §3.1 uses the same count:
    D_K·D_K·M·N·D_F·D_F for a regular conv, D_K·D_K·M·D_F·D_F for a depthwise one)."""
    for name, v in (
        ("c_in", c_in),
        ("c_out", c_out),
        ("groups", groups),
        ("batch", batch),
        ("bytes_per_element", bytes_per_element),
    ):
        check_int(name, v)
    if c_in % groups:
        raise ValueError(f"c_in={c_in} is not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"c_out={c_out} is not divisible by groups={groups}")
    kh, kw = _pair(kernel_size, "kernel_size")
    h, w = _pair(input_hw, "input_hw")
    oh, ow = _output_hw(
        (h, w), (kh, kw), _pair(stride, "stride"), _pair(padding, "padding", 0), _pair(dilation, "dilation")
    )
    per_output = (c_in // groups) * kh * kw
    return ConvCost(
        out_hw=(oh, ow),
        params=c_out * per_output + (c_out if bias else 0),
        macs=batch * c_out * oh * ow * per_output,
        input_bytes=batch * c_in * h * w * bytes_per_element,
        output_bytes=batch * c_out * oh * ow * bytes_per_element,
        im2col_bytes=batch * c_in * kh * kw * oh * ow * bytes_per_element,
    )


# The MobileNet v1 paper's Table 3 ("resource usage for modifications to standard convolution") for one
# 14×14×512 → 512, 3×3 layer (Howard et al. 2017): (mult-adds in millions, parameters in millions).
MOBILENET_PUBLISHED = {
    "regular 3×3 conv": (462, 2.36),
    "depthwise separable": (52.3, 0.27),
    "α = 0.75": (29.6, 0.15),
    "α = 0.75, ρ = 0.714": (15.1, 0.15),
}


def depthwise_separable(c_in: int, c_out: int, kernel_size: int = 3, padding: int = 1) -> nn.Sequential:
    """A depthwise k×k conv (groups = c_in) followed by a pointwise 1×1 conv, no bias (MobileNet §3.1)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, kernel_size, padding=padding, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
    )


@dataclass
class MobileNetRow:
    """One row of the MobileNet table, measured on real layers."""

    layer: str  # the row's name, a key of MOBILENET_PUBLISHED
    macs: int  # multiply-accumulates (the paper's mult-adds)
    params: int  # parameters


def mobilenet_table(channels: int = 512, size: int = 14, alpha: float = 0.75, rho: float = 0.714) -> Rows:
    """Measure the four rows of the MobileNet table on real ``nn.Conv2d`` layers with course_lib.measure.

    Returns one ``MobileNetRow(layer, macs, params)`` per row (exact integers), in the paper's order;
    ``MOBILENET_PUBLISHED[row.layer]`` is the published pair. ρ scales the 14×14 input to
    ``round(14·ρ) = 10``; α scales 512 channels to 384.
    """
    thin, small = int(round(alpha * channels)), int(round(rho * size))
    layers = {
        "regular 3×3 conv": (nn.Conv2d(channels, channels, 3, padding=1, bias=False), (channels, size, size)),
        "depthwise separable": (depthwise_separable(channels, channels), (channels, size, size)),
        "α = 0.75": (depthwise_separable(thin, thin), (thin, size, size)),
        "α = 0.75, ρ = 0.714": (depthwise_separable(thin, thin), (thin, small, small)),
    }
    return Rows(
        MobileNetRow(name, measure.count_macs(layer, shape), measure.count_params(layer))
        for name, (layer, shape) in layers.items()
    )


def round_sig(value: float, digits: int = 3) -> float:
    """Round to ``digits`` significant figures (how the papers print their tables)."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


# ----------------------------------------------------------------------------------------------
# the im2col explorer: a pure state function + a draw function (course_lib.widgets pattern)


def _small_ints(shape, seed, low=-3, high=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, shape, generator=g).float()


@dataclass(frozen=True, eq=False)
class Im2colState(State):
    """The im2col explorer's state (``im2col_state``): the settings, the input, the column and weight
    matrices, and the output value computed both ways."""

    size: int
    channels: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    groups: int
    padded: int
    out: int
    formula: str
    out_row: int
    out_col: int
    out_channel: int
    cells: list[tuple[int, int]]
    x: torch.Tensor
    cols: torch.Tensor
    column: int
    W: torch.Tensor
    group: int
    group_channels: list[int]
    value_matmul: float
    value_torch: float


def im2col_state(
    size: int = 6,
    channels: int = 2,
    kernel: int = 3,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    out_row: int = 0,
    out_col: int = 0,
    out_channel: int = 0,
) -> Im2colState:
    """Everything the im2col explorer shows, for a ``size``×``size`` input with ``channels`` channels
    and a conv with ``channels`` output channels. Pure; raises ``ValueError`` naming the setting.

    Returns a dict with the input ``x`` (C, H, W) of small integers, the padded size, the output size
    and its formula, the window's (row, col) cells in padded coordinates, the column matrix ``cols``
    (C·k·k, L), the column index ``l``, the weight matrix ``W`` (C_out, C·k·k), the chosen row, and
    the output value computed both as ``W[row] · cols[:, l]`` and by ``F.conv2d``.
    """
    for name, v, lo in (
        ("size", size, 1),
        ("channels", channels, 1),
        ("kernel", kernel, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
        ("groups", groups, 1),
        ("out_row", out_row, 0),
        ("out_col", out_col, 0),
        ("out_channel", out_channel, 0),
    ):
        check_int(name, v, lo)
    if channels % groups:
        raise ValueError(f"channels={channels} is not divisible by groups={groups}")
    padded = size + 2 * padding
    span = dilation * (kernel - 1) + 1
    if span > padded:
        raise ValueError(
            f"kernel={kernel} with dilation={dilation} spans {span} pixels but the padded input is "
            f"only size + 2·padding = {padded}: the output would have size < 1"
        )
    out = output_size(size, kernel, stride, padding, dilation)
    if out_row >= out or out_col >= out:
        raise ValueError(
            f"output position (out_row={out_row}, out_col={out_col}) is outside the "
            f"{out}×{out} output: rows and columns go from 0 to {out - 1}"
        )
    if out_channel >= channels:
        raise ValueError(f"out_channel={out_channel} must be < {channels} (this conv has channels={channels} outputs)")
    x = _small_ints((channels, size, size), seed=1)
    weight = _small_ints((channels, channels // groups, kernel, kernel), seed=2, low=-1, high=2)
    cols = im2col(x, kernel, stride, padding, dilation)
    W = weight_matrix(weight, groups)
    column = out_row * out + out_col
    via_matmul = float(W[out_channel] @ cols[:, column])
    via_torch = float(
        torch.nn.functional.conv2d(x[None], weight, None, stride, padding, dilation, groups)[
            0, out_channel, out_row, out_col
        ]
    )
    cells = [
        (out_row * stride + i * dilation, out_col * stride + j * dilation) for i in range(kernel) for j in range(kernel)
    ]
    group = out_channel // (channels // groups)
    formula = (
        f"H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊({size} + 2·{padding} − {dilation}·({kernel}−1) − 1)"
        f"/{stride}⌋ + 1 = {out}"
    )
    return Im2colState(
        size=size,
        channels=channels,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padded=padded,
        out=out,
        formula=formula,
        out_row=out_row,
        out_col=out_col,
        out_channel=out_channel,
        cells=cells,
        x=x,
        cols=cols,
        column=column,
        W=W,
        group=group,
        group_channels=list(range(group * channels // groups, (group + 1) * channels // groups)),
        value_matmul=via_matmul,
        value_torch=via_torch,
    )


def draw_im2col(state: Im2colState, fig: Figure) -> None:
    """Input channels with the window highlighted | the column matrix | the weight matrix."""
    from matplotlib.patches import Rectangle

    c, p, n, k = state.channels, state.padding, state.size, state.kernel
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.3], hspace=0.3, wspace=0.3)
    top = grid[0, :].subgridspec(1, c, wspace=0.15)
    for ch in range(c):
        ax = fig.add_subplot(top[0, ch])
        padded = np.pad(state.x[ch].numpy(), p, constant_values=np.nan)
        ax.imshow(np.nan_to_num(padded, nan=0.0), cmap="Greys", vmin=-6, vmax=6, alpha=0.35)
        active = ch in state.group_channels
        for r, q in state.cells:  # the window; dashed where this output channel does not look
            ax.add_patch(
                Rectangle(
                    (q - 0.5, r - 0.5),
                    1,
                    1,
                    fc="#ff7f0e" if active else "none",
                    alpha=0.7 if active else 1,
                    ec="none" if active else "#ff7f0e",
                    ls="--",
                    lw=0.8,
                )
            )
        if p:
            ax.add_patch(Rectangle((p - 0.5, p - 0.5), n, n, fill=False, ec="k", lw=1))
        if state.padded <= 12:
            for r in range(state.padded):
                for q in range(state.padded):
                    v = padded[r, q]
                    ax.text(
                        q,
                        r,
                        "0" if np.isnan(v) else f"{v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="0.6" if np.isnan(v) else "k",
                    )
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"input ch {ch}" + ("" if active else " (other group)"), fontsize=8)
    ax = fig.add_subplot(grid[1, 0])
    cols = state.cols.numpy()
    ax.imshow(cols, cmap="RdBu_r", vmin=-4, vmax=4, aspect="auto", interpolation="nearest")
    ax.add_patch(Rectangle((state.column - 0.5, -0.5), 1, cols.shape[0], fill=False, ec="#ff7f0e", lw=2))
    ax.set_title(f"im2col: {cols.shape[0]}×{cols.shape[1]} (column {state.column} outlined)", fontsize=9)
    ax.set_xlabel("output position l"), ax.set_ylabel("C·k·k")
    ax = fig.add_subplot(grid[1, 1])
    plot_weight_matrix(
        state.W,
        ax=ax,
        groups=state.groups,
        kernel_area=k * k,
        title=f"W: {state.W.shape[0]}×{state.W.shape[1]} (row {state.out_channel} outlined)",
    )
    ax.add_patch(Rectangle((-0.5, state.out_channel - 0.5), state.W.shape[1], 1, fill=False, ec="#ff7f0e", lw=2))
    ax.set_xlabel("C·k·k"), ax.set_ylabel("out channel")
    ax.title.set_fontsize(9)


def im2col_readout(state: Im2colState) -> str:
    """One line of HTML under the controls: the formula and the dot product."""
    return (
        f"{state.formula} &nbsp;|&nbsp; column l = out_row·W_out + out_col = {state.column} of "
        f"{state.out**2} &nbsp;|&nbsp; W[{state.out_channel}] · column = {state.value_matmul:g} "
        f"(F.conv2d: {state.value_torch:g})"
    )


def im2col_explorer(**settings: int) -> Explorer:
    """The interactive im2col explorer (a ``course_lib.widgets.Explorer``); ``settings`` override defaults."""
    from . import widgets as w

    controls = {
        "size": w.int_slider("input size", 6, 1, 10),
        "channels": w.int_slider("channels", 2, 1, 4),
        "kernel": w.int_slider("kernel", 3, 1, 7),
        "stride": w.int_slider("stride", 1, 1, 4),
        "padding": w.int_slider("padding", 0, 0, 3),
        "dilation": w.int_slider("dilation", 1, 1, 3),
        "groups": w.int_slider("groups", 1, 1, 4),
        "out_row": w.int_slider("out row", 0, 0, 15),
        "out_col": w.int_slider("out col", 0, 0, 15),
        "out_channel": w.int_slider("out channel", 0, 0, 3),
    }
    explorer = w.Explorer(
        im2col_state, draw_im2col, controls, title="im2col explorer", readout_fn=im2col_readout, figsize=(9, 5.5)
    )
    if settings:
        explorer.set(**settings)
    return explorer
