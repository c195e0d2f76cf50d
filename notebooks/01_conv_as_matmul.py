# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: rise
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   rise:
#     scroll: true
#     theme: white
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 01 · Convolution as matrix multiplication
#
# *A convolution is a matrix–vector product; every efficiency idea in this course is a way to make
# that matrix cheaper.* This chapter builds the matrix.
#
# **You will be able to**
# 1. turn every k×k×C window of an image into a column (**im2col**) and every kernel into a row of a
#    **weight matrix**, so that the whole layer is one matrix product;
# 2. handle stride, padding, dilation and groups — and see that groups make the matrix block-diagonal;
# 3. count a layer's parameters, multiply-accumulates (MACs) and activation memory on paper, and
#    check the count against `course_lib.measure` and the MobileNet paper's table;
# 4. measure why libraries use im2col + GEMM, and what it costs in memory.

# %% slideshow={"slide_type": "skip"}
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import checks, config, conv, measure
from course_lib.exercises import ch01 as ex

print(config.describe())
config.seed_everything(0)
notebook_start = time.perf_counter()
MIN_RUN_TIME = config.pick(quick=0.1, full=0.5)      # seconds per latency measurement
BATCH = config.pick(quick=4, full=32)                  # images per batch in the speed experiment

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The idea from scratch
#
# A conv layer slides a k×k×C kernel over the input. At one output position it multiplies the
# **window** under the kernel element by element with the kernel and sums: a dot product of two
# C·k·k-vectors. So:
#
# * cut every window into a **column** (a 3×3 window over 4 channels is a 36-vector);
# * flatten every output channel's kernel into a **row** (100 kernels of 3×3×100 → a 100 × 900 matrix);
# * the layer is **one matrix product**: `out = W @ columns`, one column per output position.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** the 3×3×4 patch is a 36-vector — how long is the column for 3×3×256? How many columns for a
# 56×56 output?

# %%
def im2col_from_scratch(x, k):
    """x: (C, H, W) → (C·k·k, number of windows); stride 1, no padding."""
    C, H, W = x.shape
    windows = [x[:, r:r + k, c:c + k].reshape(-1)          # one k×k×C window → one column
               for r in range(H - k + 1) for c in range(W - k + 1)]
    return torch.stack(windows, dim=1)


x = torch.randn(4, 6, 6)                 # 4 channels, 6×6 pixels
cols = im2col_from_scratch(x, 3)
print("one window is a column of length", cols.shape[0], "| columns (output positions):", cols.shape[1])

weight = torch.randn(100, 4, 3, 3)       # 100 output channels
W = weight.reshape(100, -1)              # each kernel becomes a row
out = (W @ cols).reshape(100, 4, 4)      # the whole layer: one matrix product
print("W:", tuple(W.shape), " out:", tuple(out.shape))
print("max |difference| from F.conv2d:", (out - F.conv2d(x[None], weight)[0]).abs().max().item())

# %% [markdown] slideshow={"slide_type": "subslide"}
# With 100 input channels instead of 4 the same kernels give the lecture's **100 × 900** matrix:

# %%
print("weight matrix of nn.Conv2d(100, 100, 3):", tuple(conv.weight_matrix(nn.Conv2d(100, 100, 3)).shape))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · The tested library version agrees
#
# `course_lib.conv` does the same with stride, padding, dilation, rectangular kernels, batches and
# groups, without a Python loop over output positions (one strided slice per kernel offset). Its unit
# tests compare it with PyTorch on hundreds of random configurations; here are a few.
#
# Output size along each axis: $\;\lfloor (n + 2p - d(k-1) - 1)/s \rfloor + 1$.

# %% slideshow={"slide_type": "fragment"}
torch.testing.assert_close(conv.im2col(x, 3), im2col_from_scratch(x, 3))

xb = torch.randn(2, 6, 9, 8)
agree = True
for geometry in (dict(), dict(stride=2, padding=1), dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1))):
    ours, ref = conv.im2col(xb, (3, 2), **geometry), F.unfold(xb, (3, 2), **geometry)
    wgt = torch.randn(4, 3, 3, 2)                       # groups=2: each output sees 3 of the 6 channels
    same_conv = torch.allclose(conv.conv2d_as_matmul(xb, wgt, groups=2, **geometry),
                               F.conv2d(xb, wgt, groups=2, **geometry), atol=1e-5)
    print(f"{str(geometry):50s} columns {tuple(ours.shape)}  == F.unfold: {torch.equal(ours, ref)}  "
          f"conv == F.conv2d: {same_conv}")
    agree = agree and torch.equal(ours, ref) and same_conv
checks.claim("01", "a convolution is one matrix product W @ im2col(x) (stride, padding, dilation, groups)",
             kind="derivation", paper="conv = unfold + GEMM (Chellapilla et al. 2006)",
             ours=f"equal to F.unfold / F.conv2d on 3 geometries with groups=2: {agree}", holds=agree, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **col2im** goes back: it adds every column into the pixels it came from (PyTorch calls it
# `F.fold`). It is the *adjoint* of im2col, not its inverse — a pixel covered by several windows gets
# the sum of its copies. That sum is exactly the gradient of im2col, which is how a conv's backward
# pass (and a transposed conv) is computed.

# %%
ones = torch.ones(1, 1, 5, 5)
coverage = conv.col2im(conv.im2col(ones, 3), (5, 5), 3)
assert torch.equal(coverage, F.fold(F.unfold(ones, 3), (5, 5), 3))
print("how many 3×3 windows cover each pixel of a 5×5 image:\n", coverage[0, 0].int())

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The cost model, on paper
#
# For `nn.Conv2d(C_in, C_out, k, groups=g)` producing an H_out × W_out map from an H × W input:
#
# | quantity | formula |
# |---|---|
# | parameters | C_out · (C_in/g) · k² (+ C_out for a bias) |
# | MACs | C_out · H_out · W_out · (C_in/g) · k² — one dot product of length (C_in/g)·k² per output element |
# | output activations | C_out · H_out · W_out elements |
# | saved for backward | the input, C_in · H · W elements (to compute the weight gradient) |
# | im2col columns | C_in · k² · H_out · W_out elements — about k² × the input |
#
# `conv.conv_cost` writes those formulas down; `course_lib.measure` measures the same on a real layer.

# %%
layer = nn.Conv2d(32, 64, 3, stride=2, padding=1, groups=4)
x32 = torch.randn(BATCH, 32, 28, 28)
cost = conv.conv_cost(32, 64, 3, (28, 28), stride=2, padding=1, groups=4, bias=True, batch=BATCH)
measured = dict(params=measure.count_params(layer), macs=measure.count_macs(layer, tuple(x32.shape)),
                input_bytes=measure.activation_bytes(layer, x32), output_bytes=layer(x32).numel() * 4)
for name, value in measured.items():
    print(f"{name:13s} on paper {getattr(cost, name):>10,}   measured {value:>10,}")
assert all(getattr(cost, name) == value for name, value in measured.items())   # the formulas above are right

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Claim check: the MobileNet table
# Howard et al. (2017) cost one 14×14×512 → 512, 3×3 layer four ways. We build each as real
# `nn.Conv2d` layers and count with `measure.count_macs` / `measure.count_params`.

# %% slideshow={"slide_type": "fragment"}
table = conv.mobilenet_table()
print(f"{'layer':22s} {'mult-adds':>12s} {'paper':>7s} {'params':>10s} {'paper':>6s}")
for row in table:
    pub_macs, pub_params = conv.MOBILENET_PUBLISHED[row.layer]
    print(f"{row.layer:22s} {row.macs / 1e6:10.2f} M {pub_macs:>6}M {row.params / 1e6:8.3f} M {pub_params:>5}M")
    checks.claim("01", f"MobileNet Table 3, {row.layer}", kind="derivation", paper=f"{pub_macs}M mult-adds, {pub_params}M params",
                 ours=f"{row.macs / 1e6:.1f}M, {row.params / 1e6:.2f}M (real nn.Conv2d layers)",
                 holds=conv.round_sig(row.macs / 1e6, 3) == pub_macs and round(row.params / 1e6, 2) == pub_params,
                 must_hold=True)
by_layer = {row.layer: row for row in table}
regular, separable = by_layer["regular 3×3 conv"], by_layer["depthwise separable"]
checks.claim("01", "3×3 depthwise separable convs use 8 to 9 times less computation",
             kind="derivation", paper="8–9× fewer mult-adds (MobileNet §3.1)",
             ours=f"{regular.macs / separable.macs:.2f}× fewer MACs, {regular.params / separable.params:.2f}× fewer "
                  "parameters (14×14×512 layer)", holds=8 <= regular.macs / separable.macs <= 9, must_hold=True)

# %% [markdown]
# All four rows reproduce to the published precision (ρ = 0.714 turns 14 × 14 into 10 × 10).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · The picture of the weight matrix
#
# A regular conv's W is dense. A **group conv** (g groups) lets each output channel see only C_in/g
# input channels: W becomes **block-diagonal**, g× fewer parameters and MACs. A depthwise conv is the
# extreme (g = C). Blank = zero, boxes = groups, faint lines separate input channels (k² columns each).
#
# Every efficiency idea of the course makes this matrix cheaper: fewer bits per entry (02), low rank
# (03), zeros (04, 05), products of structured sparse matrices (06).

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, groups in zip(axes, (1, 4, 8)):
    kind = {1: "regular", 4: "group conv, g=4", 8: "depthwise, g=C=8"}[groups]
    layer_g = nn.Conv2d(8, 8, 3, groups=groups, bias=False)
    conv.plot_weight_matrix(layer_g, ax=ax, title=f"{kind}: {measure.count_params(layer_g)} params")
plt.tight_layout()
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Widget: the im2col explorer
#
# Choose the input size, channels, kernel, stride, padding, dilation and groups; pick an output
# position and output channel. Orange: the input window (top), the column it becomes (bottom left)
# and the weight row it meets (bottom right). The readout shows the output-size formula and checks
# `W[row] · column` against `F.conv2d`. Try a kernel bigger than the padded input, or 3 channels with
# 2 groups. (Without a running kernel you see a static figure.)

# %%
conv.im2col_explorer(size=6, channels=4, kernel=3, stride=2, padding=1, groups=2, out_row=1, out_col=2, out_channel=3)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Experiment: speed and memory
#
# Three ways to compute the same layer: the textbook loop (one dot product per output pixel, in
# Python), im2col + one GEMM, and PyTorch's own `F.conv2d` (oneDNN on CPU, cuDNN on GPU). Times with
# `measure.latency` (`torch.utils.benchmark`, median; one thread on CPU). The loop is so slow that it gets a tiny input.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** What does that cost in memory?

# %% slideshow={"slide_type": "subslide"}
def paths(weight, padding):
    return {"naive loop": lambda x: conv.naive_conv2d(x, weight, padding=padding),
            "im2col + GEMM": lambda x: conv.conv2d_as_matmul(x, weight, padding=padding),
            "F.conv2d": lambda x: F.conv2d(x, weight, padding=padding)}


devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
THREADS = {"cpu": 1, "cuda": None}    # one CPU thread: we compare algorithms, not thread scheduling
tiny_x, tiny_w = torch.randn(1, 4, 8, 8), torch.randn(8, 4, 3, 3)
timings = {}
for dev in devices:
    for name, module in paths(tiny_w.to(dev), 1).items():
        timings[(dev, "tiny", name)] = measure.latency(module, tiny_x.to(dev), min_run_time=MIN_RUN_TIME,
                                                     threads=THREADS[dev])
big_x, big_w = torch.randn(BATCH, 32, 32, 32), torch.randn(64, 32, 3, 3)
for dev in devices:
    for name, module in list(paths(big_w.to(dev), 1).items())[1:]:      # the loop would take minutes
        timings[(dev, "32×32×32→64", name)] = measure.latency(module, big_x.to(dev), min_run_time=MIN_RUN_TIME,
                                                              threads=THREADS[dev])
for (dev, size, name), seconds in timings.items():
    print(f"{dev:4s} {size:12s} {name:14s} {seconds * 1e3:9.3f} ms")
speedup = timings[("cpu", "tiny", "naive loop")] / timings[("cpu", "tiny", "im2col + GEMM")]
gemm_vs_torch = timings[("cpu", "32×32×32→64", "im2col + GEMM")] / timings[("cpu", "32×32×32→64", "F.conv2d")]
# (timings vary from run to run and machine to machine, most of all on a busy shared machine)
print(f"on the larger layer im2col + GEMM takes {gemm_vs_torch:.2f}× the time of F.conv2d (CPU, 1 thread).")

# %% slideshow={"slide_type": "subslide"}
checks.claim("01", "im2col + one GEMM is faster than a direct loop over output positions",
             paper="unfold + GEMM beats direct convolution (Chellapilla et al. 2006)",
             ours=f"{speedup:.0f}× faster on the tiny input (CPU, 1 thread, one run)", holds=speedup > 1, must_hold=True)

# %% [markdown]
# The loop pays Python overhead for each of the 512 output elements; im2col + GEMM hands the whole
# layer to one optimized matrix multiply. `F.conv2d` uses direct or im2col-like kernels tuned per
# shape, so how close our GEMM path gets depends on the machine (see `benchmarks/conv_gemm.py` for
# GFLOP/s and the fraction of `torch.mm`'s peak).
#
# The price of im2col is memory: each input pixel is copied into up to k² columns.

# %% slideshow={"slide_type": "fragment"}
print(f"{'k':>3s} {'input':>10s} {'im2col':>10s} {'ratio':>6s}")
blowup = {}
for k in (1, 3, 5, 7):
    cols_k = conv.im2col(big_x, k, padding=k // 2)                  # 'same' padding, stride 1
    in_bytes, col_bytes = big_x.numel() * big_x.element_size(), cols_k.numel() * cols_k.element_size()
    print(f"{k:3d} {measure.human_bytes(in_bytes):>10s} {measure.human_bytes(col_bytes):>10s} {col_bytes / in_bytes:6.0f}×")
    blowup[k] = col_bytes / in_bytes
checks.claim("01", "im2col copies each input pixel into k² columns (stride 1, 'same' padding)",
             kind="derivation", paper="k² × the input", ours=", ".join(f"k={k}: {b:.0f}×" for k, b in blowup.items()),
             holds=all(b == k * k for k, b in blowup.items()), must_hold=True)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · Exercises
#
# ### Exercise 1 — how much cheaper is a depthwise separable conv? (*derive*)
# A regular k×k conv maps `c_in` to `c_out` channels. MobileNet replaces it by a k×k **depthwise**
# conv (one k×k filter per input channel) followed by a 1×1 **pointwise** conv `c_in → c_out`.
# §3 measured the ratio for one layer (512 → 512); derive it on paper for any layer, as a function of
# `c_in`, `c_out` and `k`: *MACs(separable) / MACs(regular)* for the same output size. (Hint: write
# both MAC counts with the table of §3 — a depthwise conv is a group conv with g = c_in — and divide.
# Which of the three sizes cancels? The checker measures real layers with `measure.count_macs`,
# including layers with `c_in ≠ c_out`; it refuses `conv.conv_cost`, which does the counting for you.)

# %%
def separable_ratio(c_in, c_out, k):
    # BEGIN SOLUTION
    # regular: c_out·H·W·c_in·k²; separable: c_in·H·W·k² (depthwise) + c_out·H·W·c_in (pointwise)
    return 1 / c_out + 1 / k ** 2           # = (c_in·k² + c_in·c_out) / (c_in·c_out·k²)
    # END SOLUTION


# %%
ex.check_separable_ratio(separable_ratio)

# %% [markdown] slideshow={"slide_type": "subslide"}
# The MobileNet paper writes this as $\frac{1}{N} + \frac{1}{D_K^2}$ with N output channels: the
# input channels cancel, and for 3×3 kernels the saving is 8 to 9 times, whatever the width, as long
# as N is large.
#
# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 2 — build a strided, padded convolution from im2col and one matrix product (*build it and measure it*)
# §1 built stride-1 columns without padding. Write `conv2d_as_matmul(x, weight, stride, padding)` for
# `x` of shape (C, H, W) and `weight` of shape (C_out, C, k, k): zero-pad the image, cut every k×k×C
# window the stride lands on into a column (plain slicing — no `F.unfold`, `Tensor.unfold` or
# `conv.im2col`), multiply once by the weight matrix and reshape to (C_out, H_out, W_out). The checker
# measures your layer against `F.conv2d` on six geometries (strides 1–3, paddings 0–2, 1×1 to 5×5
# kernels, rectangular images). Think first: in which order must a column list its C·k·k numbers so
# that it meets the right weights?

# %%
def conv2d_as_matmul(x, weight, stride, padding):
    # BEGIN SOLUTION
    C, H, W = x.shape
    c_out, _, k, _ = weight.shape
    padded = x.new_zeros(C, H + 2 * padding, W + 2 * padding)
    padded[:, padding:padding + H, padding:padding + W] = x
    rows, cols_ = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    windows = [padded[:, stride * r:stride * r + k, stride * c:stride * c + k].reshape(-1)   # channel, row, col
               for r in range(rows) for c in range(cols_)]
    return (weight.reshape(c_out, -1) @ torch.stack(windows, dim=1)).reshape(c_out, rows, cols_)
    # END SOLUTION


# %% slideshow={"slide_type": "subslide"}
ex.check_conv2d_as_matmul(conv2d_as_matmul)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 3 — how many copies of each pixel? (*derive*)
# §2 drew how many 3×3 windows cover each pixel of a 5×5 image (stride 1, no padding): that is how
# many times im2col copies the pixel, and how many gradients col2im adds up for it. Real layers have
# strides and padding. Write `coverage(h, w, k, stride, padding)`: an (h, w) tensor whose entry (i, j)
# is the number of k×k windows of such a conv that read input pixel (i, j). Work out where the windows
# start along one axis first. Before you run the checker (it compares with PyTorch's
# `F.fold(F.unfold(ones))`), predict: with a 3×3 kernel, stride 2 and padding 1 on a 7×7 image, which
# pixels are copied 4 times? And with a 1×1 kernel at stride 2 — which pixels does the layer never read?

# %%
def coverage(h, w, k, stride, padding):
    # BEGIN SOLUTION
    def along(n):                                  # windows start at −padding, −padding + stride, …
        starts = range(-padding, n + padding - k + 1, stride)
        return torch.tensor([sum(s <= i < s + k for s in starts) for i in range(n)])
    return along(h)[:, None] * along(w)[None, :]   # a window covers (i, j) iff it covers i and j
    # END SOLUTION


# %%
ex.check_coverage(coverage)

# %% [markdown] slideshow={"slide_type": "subslide"}
# With stride 2 the copies alternate 1, 2, 1, 2 along each axis (4 where two overlaps cross); a kernel
# smaller than its stride skips pixels altogether — their values never reach the output, and their
# gradient is zero. Summed over the image, the coverage is the number of non-padding entries in the
# columns: at stride 1 about k² per pixel — the memory, not the arithmetic, that im2col costs.
#
# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · What we measured

# %%
rows = [("im2col / conv2d_as_matmul vs F.unfold / F.conv2d", "equal (3 geometries + unit tests)"),
        ("cost model vs measure (params, MACs, bytes)", "equal"),
        ("MobileNet regular 3×3", f"{regular.macs / 1e6:.1f}M MACs / {regular.params / 1e6:.2f}M params (paper 462M / 2.36M)"),
        ("MobileNet depthwise separable", f"{separable.macs / 1e6:.1f}M / {separable.params / 1e6:.2f}M (paper 52.3M / 0.27M)"),
        ("MobileNet α = 0.75", f"{by_layer['α = 0.75'].macs / 1e6:.1f}M / {by_layer['α = 0.75'].params / 1e6:.2f}M (paper 29.6M / 0.15M)"),
        ("MobileNet α = 0.75, ρ = 0.714", f"{by_layer['α = 0.75, ρ = 0.714'].macs / 1e6:.1f}M / {by_layer['α = 0.75, ρ = 0.714'].params / 1e6:.2f}M (paper 15.1M / 0.15M)"),
        ("im2col + GEMM vs naive loop (tiny, CPU)", f"{speedup:.0f}× faster"),
        ("im2col + GEMM vs F.conv2d (CPU)", f"{gemm_vs_torch:.2f}× the time"),
        ("MobileNet separable vs regular 3×3 MACs", f"{regular.macs / separable.macs:.2f}× fewer (paper: 8–9×)"),
        ("im2col memory, k = 3 / 7", f"{blowup[3]:.0f}× / {blowup[7]:.0f}× the input")]
for what, figure in rows:
    print(f"{what:50s} {figure}")
print(f"\nnotebook ran in {time.perf_counter() - notebook_start:.1f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
# * Chellapilla, Puri, Simard, *High Performance Convolutional Neural Networks for Document
#   Processing*, 2006 — the unfold (im2col) trick.
# * Chetlur et al., *cuDNN: Efficient Primitives for Deep Learning*, 2014 — convolution as GEMM on GPUs.
# * Howard et al., *MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
#   Applications*, 2017 — depthwise separable convs and the 14×14×512 table.
# * Dumoulin & Visin, *A guide to convolution arithmetic for deep learning*, 2016 — output sizes.
# * Seed article: the IGC lecture (Jingdong Wang) — "a conv is a matrix–vector product", the 36-vector
#   and the 100 × 900 matrix.
