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

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

# ----------------------------------------------------------------------------------------------
# argument checking: every bad input gets a message naming the parameter and the rule


def _pair(value, name, minimum=1):
    """``3`` → ``(3, 3)``; ``(3, 5)`` stays; anything else is a clear error."""
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be an int or a pair of ints, not a bool")
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list, torch.Size)) and len(value) == 2 and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
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


def output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    """Length of a convolution's output along one axis.

    ``out = floor((n + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1``
    (the formula in the PyTorch ``nn.Conv2d`` docs; Dumoulin & Visin 2016, "A guide to
    convolution arithmetic"). Raises ``ValueError`` when the dilated kernel does not fit.
    """
    for name, v, lo in (("n", n, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                        ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name}={v!r} must be an int >= {lo}")
    span = dilation * (kernel_size - 1) + 1
    if span > n + 2 * padding:
        raise ValueError(f"kernel_size={kernel_size} with dilation={dilation} spans {span} pixels, more than "
                         f"the padded input (n={n} + 2·padding={2 * padding} = {n + 2 * padding}): output size < 1")
    return (n + 2 * padding - span) // stride + 1


def _output_hw(hw, kernel, stride, padding, dilation):
    try:
        return tuple(output_size(hw[i], kernel[i], stride[i], padding[i], dilation[i]) for i in range(2))
    except ValueError as err:
        raise ValueError(f"input of size {tuple(hw)} is too small: {err}") from None


# ----------------------------------------------------------------------------------------------
# im2col / col2im


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
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
    for i in range(kh):                       # one strided view of the input per kernel offset (i, j)
        for j in range(kw):
            top, left = i * dh, j * dw
            slices.append(xp[:, :, top: top + sh * (oh - 1) + 1: sh, left: left + sw * (ow - 1) + 1: sw])
    cols = torch.stack(slices, dim=2)         # (N, C, kh·kw, H_out, W_out)
    cols = cols.reshape(n, c * kh * kw, oh * ow)
    return cols[0] if unbatched else cols


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1):
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
        raise ValueError(f"cols has L={length} columns but output_size={(h, w)} with this kernel/stride/"
                         f"padding/dilation gives {oh}×{ow} = {oh * ow} windows")
    c = rows // (kh * kw)
    parts = cols.reshape(n, c, kh, kw, oh, ow)
    image = cols.new_zeros(n, c, h + 2 * ph, w + 2 * pw)
    for i in range(kh):                       # add each kernel offset's slice back where it came from
        for j in range(kw):
            top, left = i * dh, j * dw
            image[:, :, top: top + sh * (oh - 1) + 1: sh, left: left + sw * (ow - 1) + 1: sw] += parts[:, :, i, j]
    image = image[:, :, ph: ph + h, pw: pw + w]
    return image[0] if unbatched else image


# ----------------------------------------------------------------------------------------------
# the layer as one (batched, per-group) matrix product


def conv2d_as_matmul(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv2d`` computed as im2col + one matrix product per group.

    ``weight`` is (C_out, C_in/groups, kh, kw). Each group g multiplies its (C_out/g) × (C_in/g·kh·kw)
    block of the weight matrix by its slice of the columns: ``out = W_g @ cols_g``.
    """
    x, unbatched = _check_image(x)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a tensor of shape (C_out, C_in/groups, kh, kw), got {shape}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups={groups!r} must be a positive int")
    c_out, c_in_per_group, kh, kw = weight.shape
    n, c_in = x.shape[:2]
    if c_in % groups:
        raise ValueError(f"input channels C_in={c_in} are not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"output channels C_out={c_out} are not divisible by groups={groups}")
    if c_in_per_group * groups != c_in:
        raise ValueError(f"weight expects C_in/groups={c_in_per_group} input channels per group, i.e. "
                         f"C_in={c_in_per_group * groups} with groups={groups}, but x has C_in={c_in}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},) (one per output channel), got {tuple(bias.shape)}")
    cols = im2col(x, (kh, kw), stride, padding, dilation)                # (N, C_in·kh·kw, L)
    oh, ow = _output_hw(x.shape[2:], (kh, kw), _pair(stride, "stride"),
                        _pair(padding, "padding", 0), _pair(dilation, "dilation"))
    cols = cols.reshape(n, groups, c_in_per_group * kh * kw, oh * ow)   # the columns of each group
    w_blocks = weight.reshape(groups, c_out // groups, c_in_per_group * kh * kw)
    out = torch.matmul(w_blocks, cols)                                   # (N, groups, C_out/groups, L)
    out = out.reshape(n, c_out, oh, ow)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out[0] if unbatched else out


def naive_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The textbook loop: one dot product per output pixel (slow; for tiny inputs and teaching)."""
    x, unbatched = _check_image(x)
    c_out, cpg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding", 0), _pair(dilation, "dilation")
    oh, ow = _output_hw(x.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    if x.shape[1] != cpg * groups or c_out % groups:
        raise ValueError(f"x has C_in={x.shape[1]}, weight {tuple(weight.shape)} with groups={groups} needs "
                         f"C_in={cpg * groups} and C_out divisible by groups")
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    out = x.new_zeros(x.shape[0], c_out, oh, ow)
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for r in range(oh):
            for q in range(ow):
                window = xp[:, g * cpg:(g + 1) * cpg, r * sh: r * sh + dh * (kh - 1) + 1: dh,
                            q * sw: q * sw + dw * (kw - 1) + 1: dw]
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
        raise TypeError(f"conv_or_weight must be an nn.Conv2d, nn.Linear or a weight tensor, "
                        f"got {type(conv_or_weight).__name__}")
    weight = conv_or_weight
    if weight.dim() == 2:                      # a 1×1 conv / linear weight (C_out, C_in/groups)
        weight = weight[:, :, None, None]
    if weight.dim() != 4:
        raise ValueError(f"weight must have shape (C_out, C_in/groups, kh, kw) or (C_out, C_in/groups), "
                         f"got {tuple(conv_or_weight.shape)}")
    return weight, groups


def weight_matrix(conv_or_weight, groups=1):
    """The dense C_out × (C_in·kh·kw) matrix that a conv layer multiplies im2col's columns by.

    Row ``o`` is output channel ``o``'s kernel flattened channel-major (the order of :func:`im2col`).
    For a group conv (weight (C_out, C_in/groups, kh, kw)) group ``g``'s rows are placed in its own
    column block (input channels ``g·C_in/groups …``), zeros elsewhere: the matrix is
    **block-diagonal** — the structured sparsity that IGC (chapter 06) builds on.
    ``conv_or_weight``: an ``nn.Conv2d`` (its ``groups`` is used), a 4-D weight, an ``nn.Linear`` or a
    2-D weight (a 1×1 conv). Keeps autograd (does not detach).
    """
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups={groups!r} must be a positive int")
    weight, groups = _weight_and_groups(conv_or_weight, groups)
    c_out, cpg, kh, kw = weight.shape
    if c_out % groups:
        raise ValueError(f"C_out={c_out} output channels are not divisible by groups={groups}")
    per_group_out, block_cols = c_out // groups, cpg * kh * kw
    flat = weight.reshape(c_out, block_cols)
    if groups == 1:
        return flat
    matrix = flat.new_zeros(c_out, groups * block_cols)
    for g in range(groups):
        rows = slice(g * per_group_out, (g + 1) * per_group_out)
        matrix[rows, g * block_cols:(g + 1) * block_cols] = flat[rows]
    return matrix


def block_structure(matrix):
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
            mask[b * br:(b + 1) * br, b * bc:(b + 1) * bc] = True
        if not (nonzero & ~mask).any():
            return g
    return 1


def plot_weight_matrix(W_or_conv, ax=None, title=None, groups=None, kernel_area=None):
    """Draw a weight matrix: zeros blank (white), non-zeros in a diverging colour map, group blocks outlined.

    ``W_or_conv``: an ``nn.Conv2d`` / ``nn.Linear`` / 4-D conv weight (turned into
    :func:`weight_matrix`) or a 2-D matrix. Group blocks come from the layer's ``groups``, from
    ``groups=`` if given, else from the zero pattern (:func:`block_structure`). ``kernel_area``
    (kh·kw) draws faint lines between input channels. Returns the axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

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
        raise TypeError("W_or_conv must be an nn.Conv2d, nn.Linear, a 4-D conv weight or a 2-D matrix, "
                        f"got {type(W_or_conv).__name__}")
    m = matrix.detach().float().cpu().numpy()
    g = groups or layer_groups or block_structure(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, max(2.5, min(6.0, 6 * m.shape[0] / max(m.shape[1], 1)) + 1.0)))
    limit = float(np.abs(m).max()) or 1.0
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("white")
    ax.imshow(np.ma.masked_equal(m, 0.0), cmap=cmap, vmin=-limit, vmax=limit,
              interpolation="nearest", aspect="auto")
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
    ax.set_xlabel("input (channel, kernel offset)  = im2col row")
    ax.set_ylabel("output channel")
    return ax
