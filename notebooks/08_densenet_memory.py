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
# # 08 · DenseNet and its memory: from quadratic to linear, measured
#
# *Parameters are not the only cost.* DenseNet-BC-100 has only 0.8M parameters, yet the naive
# implementation needs almost 3 GB to train it at batch 64 on 32×32 images. Where those bytes go is
# something we can derive, measure and fix — and the fix has a trap of its own.
#
# **You will be able to**
# 1. build a **dense block** (layer l reads the concatenation of all earlier maps: `k₀ + k(l − 1)`
#    channels, `L(L + 1)/2` connections) and DenseNet-B, -C and -BC with transition layers (`⌊θm⌋`);
# 2. check our DenseNet-121 against torchvision's, parameter for parameter and output for output, and
#    read the ImageNet family (121 … 264) and the overfitting of wide nets without BC;
# 3. derive why the naive implementation keeps **O(kL²)** bytes for the backward pass, and measure it;
# 4. implement the **memory-efficient** version from scratch (recompute concat + BN + ReLU in the
#    backward pass, Pleiss et al.), show the library's is the same, and **count** the convolutions
#    it re-runs (none: checkpointing's *early stop*);
# 5. find and fix the **BatchNorm-under-recomputation** bug that torchvision's `memory_efficient=True` has;
# 6. use the measured bytes to say how deep a DenseNet fits a memory budget, and compare a DenseNet
#    with a ResNet fairly: same training, same test images, a paired test.

# %% slideshow={"slide_type": "skip"}
import copy
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torchvision

import torch.nn.functional as F

from course_lib import checks, config, data, densenet, measure, recipes, resnets, stats, train
from course_lib.exercises import ch08 as ex

print(config.describe())
config.seed_everything(0)
notebook_start = time.perf_counter()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Dense connectivity from scratch
#
# A dense block of L layers keeps a list of feature maps. Layer l concatenates **all** of them —
# the block input `x₀` (k₀ channels) and the k-channel outputs of layers 1 … l − 1 — and adds k new
# channels: `x_l = H_l([x₀, x₁, …, x_{l−1}])`. So layer l has **k₀ + k·(l − 1)** input channels, the
# block ends with `k₀ + k·L`, and there are **L(L + 1)/2** direct connections (layer l receives l
# of them; the block output concatenates all L + 1 maps once more). The growth rate k is small (12 on CIFAR).
#
# `H_l` is BN → ReLU → 3×3 conv. Ten lines, from scratch:

# %% slideshow={"slide_type": "subslide"}
def dense_block_from_scratch(x, layers):
    features = [x]
    for bn, conv in layers:
        features.append(conv(torch.relu(bn(torch.cat(features, 1)))))
    return torch.cat(features, 1)


k0, k, L = 6, 4, 5
block = densenet.DenseBlock(L, k0, k, bn_size=0).eval()               # no bottleneck: BN-ReLU-3×3 conv
scratch_layers = [(layer.norm1, layer.conv1) for layer in block.values()]
x = torch.randn(2, k0, 8, 8)
with torch.no_grad():
    diff = (dense_block_from_scratch(x, scratch_layers) - block(x)).abs().max().item()
print(f"from scratch vs densenet.DenseBlock: max |diff| = {diff:.1e}; output {tuple(block(x).shape)} "
      f"= k₀ + L·k = {k0} + {L}·{k} = {k0 + L * k} channels")
print("input channels per layer:", [layer.norm1.num_features for layer in block.values()],
      "= k₀ + k(l − 1):", [densenet.layer_input_channels(l, k0, k) for l in range(1, L + 1)])
print(f"connections: L(L + 1)/2 = {densenet.num_connections(L)}")
assert diff < 1e-6

# %% [markdown] slideshow={"slide_type": "subslide"}
# **DenseNet-B** puts a *bottleneck* in front of the 3×3 conv: BN → ReLU → 1×1 conv to `4k`
# channels, so a wide concatenation is first squeezed to 4k. **DenseNet-C** compresses in the
# *transition layers* between blocks (BN → ReLU → 1×1 conv → 2×2 average pooling): m channels
# become `⌊θm⌋`, θ = 0.5. **DenseNet-BC** does both. `densenet.DenseNet(growth_rate, block_config,
# num_init_features, bn_size=4, compression=0.5, …)` builds any of them (`bn_size=0`: no bottleneck,
# `compression=1`: no compression); module names follow torchvision, so its weights load into ours.
#
# ### Claim checks: the same network as torchvision's, and the paper's parameter counts

# %% slideshow={"slide_type": "subslide"}
tv121 = torchvision.models.densenet121()
ours121 = densenet.densenet121()
ours121.load_state_dict(tv121.state_dict())                # same names, same shapes
x = torch.randn(1, 3, 64, 64)
with torch.no_grad():
    out_diff = (tv121.eval()(x) - ours121.eval()(x)).abs().max().item()
p_tv, p_ours = measure.count_params(tv121), measure.count_params(ours121)
checks.claim("08", "DenseNet-121 has exactly torchvision's parameters and outputs",
             kind="derivation", paper=f"{p_tv:,} (torchvision densenet121)", ours=f"{p_ours:,}; outputs max |diff| {out_diff:.1e}",
             holds=p_ours == p_tv and out_diff < 1e-5, must_hold=True)
bc100 = densenet.densenet_cifar(100, 12, num_classes=10, in_channels=3)
p100 = measure.count_params(bc100)
checks.claim("08", "DenseNet-BC-100 (k = 12) has 0.8M parameters",
             kind="derivation", paper="0.8M (Table 2, CIFAR-10)", ours=f"{p100:,} = {p100 / 1e6:.2f}M",
             holds=round(p100 / 1e6, 1) == 0.8, must_hold=True)
t1 = ours121.features.transition1
print(f"DenseNet-121 transition 1: {t1.conv.in_channels} → ⌊0.5·{t1.conv.in_channels}⌋ = {t1.conv.out_channels} channels")
del tv121, ours121

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The ImageNet family: DenseNet-121 … 264
#
# On ImageNet (k = 32, a 7×7/2 stem with 2k = 64 channels, θ = 0.5) the four DenseNet-BCs differ only
# in the layers per block. Below: the paper's ImageNet errors (Table 3, quoted) against the parameters
# of our builders, built on PyTorch's `meta` device (shapes only: no memory, no time). The paper's
# headline: **DenseNet-201 (20M parameters) ≈ ResNet-101 (more than 40M) in error**. The paper's
# ResNets were trained by another code base, so for a like-for-like look we add torchvision's own
# published single-crop figures for both families (the same training pipeline, no download).

# %% slideshow={"slide_type": "subslide"}
IMAGENET = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32), 264: (6, 12, 64, 48)}
PAPER_ERR = {121: (25.02, 23.61, 7.71, 6.66), 169: (23.80, 22.08, 6.85, 5.92),     # % top-1 single / 10-crop,
             201: (22.58, 21.46, 6.34, 5.54), 264: (22.15, 20.80, 6.12, 5.29)}      # top-5 single / 10-crop
with torch.device("meta"):
    family = {d: measure.count_params(densenet.DenseNet(32, cfg, 64)) for d, cfg in IMAGENET.items()}
    tv_params = {name: measure.count_params(getattr(torchvision.models, name)()) for name in ("resnet50", "resnet101")}
tv_meta = {name: getattr(torchvision.models, f"{name.replace('resnet', 'ResNet').replace('densenet', 'DenseNet')}_Weights").IMAGENET1K_V1.meta
           for name in ("densenet121", "densenet169", "densenet201", "resnet50", "resnet101")}
assert all(family[d] == tv_meta[f"densenet{d}"]["num_params"] for d in (121, 169, 201))   # = torchvision's counts
print(f"{'':>13} {'params':>7}  {'top-1 err. single / 10-crop':>27}  {'top-5 err. single / 10-crop':>27}")
for d, p in family.items():
    e = PAPER_ERR[d]
    print(f"DenseNet-{d:<4} {p / 1e6:6.1f}M  {e[0]:>19.2f} / {e[1]:.2f}  {e[2]:>19.2f} / {e[3]:.2f}")
tv_err = {name: 100 - m["_metrics"]["ImageNet-1K"]["acc@1"] for name, m in tv_meta.items()}
print(f"torchvision's weights, top-1 single crop: DenseNet-201 {tv_err['densenet201']:.2f}% ({family[201] / 1e6:.1f}M, "
      f"{tv_meta['densenet201']['_ops']:.1f} GFLOPS) vs ResNet-101 {tv_err['resnet101']:.2f}% ({tv_params['resnet101'] / 1e6:.1f}M, "
      f"{tv_meta['resnet101']['_ops']:.1f} GFLOPS); ResNet-50 {tv_err['resnet50']:.2f}% ({tv_meta['resnet50']['_ops']:.1f} GFLOPS)")
checks.claim("08", "DenseNet-201 has less than half the parameters of ResNet-101", kind="derivation",
             paper="20M vs more than 40M, at similar ImageNet error", ours=f"{family[201]:,} vs {tv_params['resnet101']:,} "
             f"({family[201] / tv_params['resnet101']:.2f}×)", holds=2 * family[201] < tv_params["resnet101"], must_hold=True)

# %% slideshow={"slide_type": "subslide"}
fig, ax = plt.subplots(figsize=(6, 3.4))
ps = [family[d] / 1e6 for d in IMAGENET]
ax.plot(ps, [PAPER_ERR[d][0] for d in IMAGENET], "o-", label="DenseNet, paper, single crop")
ax.plot(ps, [PAPER_ERR[d][1] for d in IMAGENET], "s--", label="DenseNet, paper, 10-crop")
ax.plot([family[d] / 1e6 for d in (121, 169, 201)], [tv_err[f"densenet{d}"] for d in (121, 169, 201)], "^:",
        color="tab:blue", alpha=0.6, label="DenseNet, torchvision, single crop")
ax.plot([tv_params[n] / 1e6 for n in ("resnet50", "resnet101")], [tv_err[n] for n in ("resnet50", "resnet101")], "D:",
        color="tab:red", label="ResNet-50 / 101, torchvision, single crop")
for d, p in zip(IMAGENET, ps):
    ax.annotate(str(d), (p, PAPER_ERR[d][0]), textcoords="offset points", xytext=(3, 4), fontsize=8)
ax.set_xlabel("parameters (M), counted on our builders / torchvision's")
ax.set_ylabel("ImageNet top-1 error (%)")
ax.set_title("DenseNet-121 … 264: error falls with size")
ax.legend(fontsize=7)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Without a bottleneck, parameters grow as O(k²L²)
#
# Layer l's 3×3 conv has `9·k·(k₀ + k(l − 1))` weights; summed over the block that is
# `≈ 9k²L²/2` for large L. Fitted exponents of the exact count (k₀ = 2k), checked against real blocks:

# %% slideshow={"slide_type": "fragment"}
Ls, ks = [8, 16, 32, 64], [6, 12, 24, 48]
for L_, k_ in [(4, 12), (9, 5)]:
    assert densenet.block_params(L_, 2 * k_, k_, 0) == measure.count_params(densenet.DenseBlock(L_, 2 * k_, k_, 0))
p_vs_L = [densenet.block_params(L_, 24, 12, bn_size=0) for L_ in Ls]
p_vs_k = [densenet.block_params(16, 2 * k_, k_, bn_size=0) for k_ in ks]
slope_L, slope_k = densenet.loglog_slope(Ls, p_vs_L), densenet.loglog_slope(ks, p_vs_k)
print("params vs L (k = 12):", dict(zip(Ls, p_vs_L)), f"→ exponent {slope_L:.2f}")
print("params vs k (L = 16):", dict(zip(ks, p_vs_k)), f"→ exponent {slope_k:.2f}")
print(f"params / (k²L²) at L = 64, k = 12: {p_vs_L[-1] / (144 * 64 ** 2):.2f} (→ 9/2 = 4.5 for large L)")
checks.claim("08", "a block without bottleneck has O(k²L²) parameters",
             kind="derivation", paper="O(k²L²)", ours=f"fitted exponents L^{slope_L:.2f}, k^{slope_k:.2f} (L = 8…64, k = 6…48)",
             holds=round(slope_L) == 2 and round(slope_k) == 2, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Wider without BC overfits
#
# The k² term has a price beyond parameters. In the paper, the plain DenseNet (no bottleneck, no
# compression) with L = 100 goes from k = 12 to k = 24 — four times the parameters — and its CIFAR-10
# error *without augmentation* **rises**, 5.77 % → 5.83 % (Table 2): the extra capacity overfits.
# DenseNet-BC keeps improving as it grows; bottleneck and compression are the paper's answer. The
# parameter side we can check on our builders:

# %% slideshow={"slide_type": "fragment"}
with torch.device("meta"):
    plain = {k_: measure.count_params(densenet.densenet_cifar(100, k_, bottleneck=False, compression=1.0)) for k_ in (12, 24)}
print(f"DenseNet (L = 100, no B, no C): k = 12 → {plain[12] / 1e6:.1f}M, k = 24 → {plain[24] / 1e6:.1f}M "
      f"({plain[24] / plain[12]:.2f}×); paper's C10 error 5.77% → 5.83%")
checks.claim("08", "doubling k quadruples a plain DenseNet-100's parameters (7.0M → 27.2M)", kind="derivation",
             paper="7.0M → 27.2M (Table 2)", ours=f"{plain[12] / 1e6:.1f}M → {plain[24] / 1e6:.1f}M ({plain[24] / plain[12]:.2f}×)",
             holds=(round(plain[12] / 1e6, 1), round(plain[24] / 1e6, 1)) == (7.0, 27.2), must_hold=True)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Why the naive implementation is quadratic
#
# Follow one naive layer through autograd. `torch.cat` writes a **new** tensor of `c_l = k₀ + k(l − 1)`
# channels; BatchNorm keeps it (its backward needs the input) and writes another `c_l`-channel output;
# ReLU works in place and the conv keeps that output. With the bottleneck, the 1×1 conv's `4k`-channel
# output and its BN-ReLU output are kept too. Per layer, with `n = N·H·W` pixels and 4 bytes a value:
#
# `bytes_l = 4·n·(2·c_l + 2·4k)` (+ BN's per-channel mean and 1/std, a few hundred bytes)
#
# and summed over l: `4n·(2Lk₀ + kL(L − 1) + 8kL)` — **O(kL²)**, although the block only *produces*
# `k₀ + kL` channels. The concatenations are the culprit: each one copies every earlier map again.
#
# The efficient implementation keeps only the maps themselves (each once, shared by all later layers)
# and the bottleneck's 4k channels per layer, and recomputes concat → BN → ReLU → 1×1 conv in the
# backward pass: `4n·(k₀ + k(L − 1) + 8kL)` — **O(kL)**.
#
# `measure.activation_bytes` counts what autograd really saves (each storage once; parameters and
# BN's running buffers excluded). The formulas must match it exactly:

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** what exactly is stored for backward?

# %% slideshow={"slide_type": "subslide"}
MEM = dict(k0=24, k=12, batch=1, size=4, Ls=[8, 16, 32, 64])       # bytes scale exactly with N·H·W
saved = {"naive": [], "efficient": []}
for L_ in MEM["Ls"]:
    for name, eff in (("naive", False), ("efficient", True)):
        saved[name].append(densenet.block_saved_bytes(L_, MEM["k0"], MEM["k"], 4, eff, MEM["batch"], MEM["size"], MEM["size"]))
formula = {"naive": [densenet.naive_block_saved_bytes(L_, MEM["k0"], MEM["k"], 4, MEM["batch"], MEM["size"], MEM["size"]) for L_ in MEM["Ls"]],
           "efficient": [densenet.efficient_block_saved_bytes(L_, MEM["k0"], MEM["k"], 4, MEM["batch"], MEM["size"], MEM["size"]) for L_ in MEM["Ls"]]}
slopes = {name: densenet.loglog_slope(MEM["Ls"], v) for name, v in saved.items()}
top_slopes = {name: densenet.loglog_slope(MEM["Ls"][-2:], v[-2:]) for name, v in saved.items()}
for i, L_ in enumerate(MEM["Ls"]):
    print(f"L = {L_:>2}: naive {saved['naive'][i]:>9,} B (formula {formula['naive'][i]:>9,})   "
          f"efficient {saved['efficient'][i]:>8,} B (formula {formula['efficient'][i]:>8,})   "
          f"ratio {saved['naive'][i] / saved['efficient'][i]:.1f}×")
print(f"fitted slopes of log bytes vs log L (L = 8…64): naive {slopes['naive']:.2f}, efficient {slopes['efficient']:.2f}; "
      f"between L = 32 and 64: {top_slopes['naive']:.2f} and {top_slopes['efficient']:.2f}")
checks.claim("08", "the saved-bytes formulas equal autograd's saved tensors",
             kind="derivation", paper="naive 2·c_l + 8k maps per layer, efficient k₀ + k(L − 1) + 8kL maps",
             ours=f"exact at L = 8…64 (k₀ = {MEM['k0']}, k = {MEM['k']})", holds=saved == formula, must_hold=True)

# %% slideshow={"slide_type": "subslide"}
fig, ax = plt.subplots(figsize=(6, 3.4))
for name, marker in (("naive", "o"), ("efficient", "s")):
    ax.loglog(MEM["Ls"], [b / 1024 for b in saved[name]], marker + "-", base=2,
              label=f"{name}: slope {slopes[name]:.2f}")
ref = saved["naive"][0] / 1024
ax.loglog(MEM["Ls"], [ref * (L_ / 8) ** 2 for L_ in MEM["Ls"]], "k:", base=2, label="∝ L²")
ax.loglog(MEM["Ls"], [saved["efficient"][0] / 1024 * L_ / 8 for L_ in MEM["Ls"]], "k--", base=2, label="∝ L")
ax.set_xlabel("layers L in the block")
ax.set_ylabel(f"KiB saved ({MEM['size']}×{MEM['size']}, batch {MEM['batch']})")
ax.set_title(f"DenseNet-B block, k₀ = {MEM['k0']}, k = {MEM['k']}: measured")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim checks.** The exponent of a sum `aL² + bL` only approaches 2 as L grows (here the
# bottleneck's linear term is large at small L), so the verdict is the *nearest integer* exponent:

# %% slideshow={"slide_type": "fragment"}
ratio64 = saved["naive"][-1] / saved["efficient"][-1]
checks.claim("08", "naive DenseNet memory is quadratic in depth", kind="derivation", paper="O(kL²)",
             ours=f"fitted exponent {slopes['naive']:.2f} (L = 8…64), {top_slopes['naive']:.2f} at L = 32…64",
             holds=round(slopes["naive"]) == 2, must_hold=True)
checks.claim("08", "efficient DenseNet memory is linear in depth", kind="derivation", paper="O(kL)",
             ours=f"fitted exponent {slopes['efficient']:.2f} (L = 8…64)", holds=round(slopes["efficient"]) == 1, must_hold=True)
checks.claim("08", "at L = 64 the naive block saves ≥ 4× the bytes of the efficient one", kind="derivation", paper="quadratic vs linear",
             ours=f"{ratio64:.1f}× ({measure.human_bytes(saved['naive'][-1])} vs {measure.human_bytes(saved['efficient'][-1])})",
             holds=ratio64 >= 4, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Why copy at all — and whose cost is it?
#
# A convolution kernel (GEMM, cuDNN, oneDNN) wants its input as **one contiguous array**. The earlier
# maps live in separate tensors, so `torch.cat` must copy them into a new one. Even a single shared
# buffer with every map in its own channel slice does not help directly: in N×C×H×W layout a channel
# slice of a batch is *not* contiguous (image n's channels sit between image n − 1's and n + 1's), so
# the conv would copy it anyway. The copy itself is cheap; what is quadratic is **keeping** it. That
# is the framework's choice, not DenseNet's: autograd keeps every intermediate that a backward
# formula needs — BN needs its input (the copy), the conv needs its input (the BN output). In
# inference nothing is kept and each copy is freed as soon as its conv has read it.

# %%
maps = [torch.randn(4, 8, 6, 6) for _ in range(3)]
joined = torch.cat(maps, 1)
shared_buffer = torch.empty(4, 24, 6, 6)                 # one buffer, layer l's maps in channels 8(l−1) … 8l − 1
print(f"torch.cat: a new contiguous tensor ({joined.is_contiguous()}), sharing no storage with its inputs "
      f"({all(joined.untyped_storage().data_ptr() != m.untyped_storage().data_ptr() for m in maps)}); "
      f"a channel slice of a shared buffer is contiguous: {shared_buffer[:, :16].is_contiguous()}")
blk = densenet.DenseBlock(8, 24, 12)
with torch.no_grad():
    inference_bytes = measure.activation_bytes(blk, torch.randn(1, 24, 4, 4))
print(f"the same L = 8 block saves {measure.human_bytes(saved['naive'][0])} for backward in training, "
      f"{inference_bytes} B under torch.no_grad()")

# %% [markdown] slideshow={"slide_type": "subslide"}
# On a GPU (full profile) the same comparison is made with the allocator's **peak** memory during
# forward + backward, which also includes parameters, gradients and cuDNN workspaces:

# %%
if config.device().type == "cuda":
    dev = config.device()
    for L_ in MEM["Ls"]:
        peaks = {}
        for name, eff in (("naive", False), ("efficient", True)):
            blk = densenet.DenseBlock(L_, MEM["k0"], MEM["k"], 4, eff).to(dev)
            xb = torch.randn(64, MEM["k0"], 32, 32, device=dev, requires_grad=True)
            peaks[name] = measure.peak_cuda_bytes(lambda: blk(xb).sum().backward(), dev)
            del blk, xb
        print(f"L = {L_:>2}: peak CUDA memory naive {measure.human_bytes(peaks['naive'])}, "
              f"efficient {measure.human_bytes(peaks['efficient'])} ({peaks['naive'] / peaks['efficient']:.1f}×)")
else:
    print("no CUDA device: peak CUDA memory is measured in the full profile on a GPU")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The memory-efficient implementation
#
# Pleiss et al. (2017) observe that the concatenations and BN outputs are *cheap to compute* and
# *expensive to store*. Their implementation writes every layer's concatenation into **one shared
# buffer** (and every BN output into a second one) as large as the block's widest map, `k₀ + kL`
# channels; each layer overwrites it, so the storage is `O(kL)`. In the backward pass the buffer no
# longer holds layer l's values, so concat and BN are **recomputed** before layer l's gradient is
# computed. The 1×1 conv's output (4k channels) is kept, so no convolution is re-run. Concatenation
# and BatchNorm are memory-bound and a few percent of the convolutions' arithmetic (the paper: BN
# recomputation ≈ 5 % extra compute). What the time costs, as published:
#
# | source | naive → efficient |
# |---|---|
# | the paper's text (whole network) | **+15 %** in LuaTorch, **+20 %** in PyTorch |
# | the official PyTorch README (DenseNet-BC-100, batch 64, Pascal Titan X) | 2.863 GB → 1.605 GB, **0.165 s → 0.207 s** per batch = **+25 %** |
#
# The two do not agree: the README's own table is above the paper's PyTorch figure. We test the
# paper's +20 % below and keep the README's +25 % next to it.
#
# ### From scratch: recompute in backward, and keep BatchNorm's statistics honest

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** What does recomputation cost in time?

# %% [markdown] slideshow={"slide_type": "subslide"}
# A custom `torch.autograd.Function` does it in a few lines. Its `forward` concatenates, normalises,
# applies ReLU and the 1×1 conv, and saves **only its inputs** — the earlier maps, which exist anyway —
# so the concatenation and the BN output are freed when it returns. Its `backward` rebuilds
# concat → BN → ReLU and differentiates through them; the 1×1 conv is *not* re-run: its gradients
# need only its input (just rebuilt), its weight and the incoming gradient.
#
# **The BatchNorm fix.** In training mode BN normalises with the *batch* statistics and then moves
# its running mean/variance towards them (momentum 0.1). Run it twice per step and the running
# statistics move twice — the model you evaluate drifts from the one you would have trained. So only
# the forward pass hands BN the running buffers; the recomputation passes `None`: batch statistics
# (the same output), nothing updated.

# %% slideshow={"slide_type": "subslide"}
class RecomputedBottleneck(torch.autograd.Function):
    """concat → BN → ReLU → 1×1 conv, keeping only its inputs; concat + BN + ReLU are rebuilt in backward."""

    @staticmethod
    def forward(ctx, running_mean, running_var, gamma, beta, weight, *features):
        x = torch.cat(features, 1)                                       # freed when forward returns
        y = F.relu(F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=0.1))
        ctx.save_for_backward(gamma, beta, weight, *features)            # the running stats moved: once
        return F.conv2d(y, weight)

    @staticmethod
    def backward(ctx, grad_out):
        gamma, beta, weight, *features = ctx.saved_tensors
        with torch.enable_grad():                                        # rebuild concat → BN → ReLU ...
            leaves = [t.detach().requires_grad_() for t in (gamma, beta, *features)]
            y = F.relu(F.batch_norm(torch.cat(leaves[2:], 1), None, None, leaves[0], leaves[1], training=True))
        grad_weight = torch.nn.grad.conv2d_weight(y, weight.shape, grad_out)   # ... but not the conv:
        grad_y = torch.nn.grad.conv2d_input(y.shape, weight, grad_out)         # its gradients need only y
        grad_gamma, grad_beta, *grad_features = torch.autograd.grad(y, leaves, grad_y)
        return None, None, grad_gamma, grad_beta, grad_weight, *grad_features


# %% slideshow={"slide_type": "subslide"}
class ScratchBlock(nn.Module):
    """A DenseBlock's weights, run through RecomputedBottleneck (BN2 → ReLU → 3×3 conv as usual)."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        features = [x]
        for layer in self.block.values():
            bn = layer.norm1
            if self.training:
                bn.num_batches_tracked += 1                              # what nn.BatchNorm2d counts
            out = RecomputedBottleneck.apply(bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                             layer.conv1.weight, *features)
            features.append(layer.conv2(layer.relu2(layer.norm2(out))))
        return torch.cat(features, 1)


# %% [markdown]
# The library does the same with `torch.utils.checkpoint` around concat → BN → ReLU → 1×1 conv
# (`efficient=True`): autograd keeps only the checkpoint's inputs and reruns the function in the
# backward pass (section 4 shows how it keeps BN's statistics honest). PyTorch's allocator reuses
# the freed memory, which plays the role of the shared buffers. Three copies of one block — naive,
# from scratch, library — one training-mode forward and backward each:

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
naive_block = densenet.DenseBlock(5, 6, 4).train()
impls = {"naive": naive_block, "from scratch": ScratchBlock(copy.deepcopy(naive_block)),
         "library, efficient": copy.deepcopy(naive_block)}
impls["library, efficient"].efficient = True
x5 = torch.randn(3, 6, 7, 7)
results = {}
for name, impl in impls.items():
    xi = x5.clone().requires_grad_()
    out = impl(xi)
    out.backward(torch.ones_like(out) * torch.arange(out.shape[1]).view(1, -1, 1, 1))   # a gradient that differs per channel
    results[name] = (out, xi.grad, [p.grad for p in impl.parameters()], [b.double() for b in impl.buffers()])
    results[name] += (measure.activation_bytes(impl, x5.clone().requires_grad_()),)


def same(a, b):
    return all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a, b))


agree = {name: dict(outputs=same([results["naive"][0]], [r[0]]), input_grad=same([results["naive"][1]], [r[1]]),
                    weight_grads=same(results["naive"][2], r[2]), running_stats=same(results["naive"][3], r[3]))
         for name, r in results.items() if name != "naive"}
for name, a in agree.items():
    print(f"{name:>18} vs naive: " + ", ".join(f"{k} {'equal' if v else 'DIFFER'}" for k, v in a.items()))
print("saved for backward: " + ", ".join(f"{name} {measure.human_bytes(r[4])}" for name, r in results.items()))

# %% slideshow={"slide_type": "subslide"}
checks.claim("08", "recomputing concat + BN + ReLU in backward (from scratch and the library) trains exactly as the naive layer",
             kind="derivation", paper="recomputation is exact; BN's running statistics move once per step",
             ours=f"5-layer block: outputs, input and weight gradients, running stats allclose for both; saved bytes "
             f"{measure.human_bytes(results['naive'][4])} naive vs {measure.human_bytes(results['from scratch'][4])} / "
             f"{measure.human_bytes(results['library, efficient'][4])}",
             holds=all(all(a.values()) for a in agree.values()) and results["from scratch"][4] == results["library, efficient"][4],
             must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Claim check: exactly the same network
# Same weights, same input, a whole DenseNet-BC-22: the outputs, the input gradient and every
# parameter gradient must be identical (the recomputation runs the same kernels on the same values).

# %% slideshow={"slide_type": "fragment"}
DATA = config.pick(quick="fashion-mnist", full="cifar10")
info = data.dataset_info(DATA)
config.seed_everything(0)
naive_net = densenet.densenet_cifar(22, 12, num_classes=len(info.classes), in_channels=info.channels)
efficient_net = copy.deepcopy(naive_net).set_efficient(True)
xs = torch.randn(4, info.channels, info.size, info.size)
x_a, x_b = xs.clone().requires_grad_(), xs.clone().requires_grad_()
out_a, out_b = naive_net(x_a), efficient_net(x_b)
g = torch.randn_like(out_a)
out_a.backward(g)
out_b.backward(g)
grad_diff = max((p.grad - q.grad).abs().max().item() for p, q in zip(naive_net.parameters(), efficient_net.parameters()))
same = torch.equal(out_a, out_b) and torch.equal(x_a.grad, x_b.grad) and grad_diff == 0
checks.claim("08", "efficient=True gives the same outputs and gradients as the naive DenseNet",
             kind="derivation", paper="recomputation is exact", ours=f"DenseNet-BC-22: outputs, input and {sum(1 for _ in naive_net.parameters())} "
             f"parameter gradients equal (max |diff| {grad_diff:.1e})", holds=same, must_hold=True)
b_naive = measure.activation_bytes(naive_net.train(), xs)
b_eff = measure.activation_bytes(efficient_net.train(), xs)
print(f"whole DenseNet-BC-22, batch {len(xs)} at {info.size}×{info.size}: saved {measure.human_bytes(b_naive)} naive vs "
      f"{measure.human_bytes(b_eff)} efficient ({b_naive / b_eff:.1f}×)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Why the 1×1 conv is not re-run: checkpointing's early stop
#
# The library's checkpoint wraps concat → BN → ReLU → **1×1 conv**, yet the from-scratch version
# above, which never re-runs the conv, saves the same bytes. The reason is a feature of
# *non-reentrant* `torch.utils.checkpoint` (`use_reentrant=False`): in the backward pass it replays
# the function only until every tensor the backward needs has been rebuilt, then **stops** (*early
# stop*). The last tensor needed is the ReLU output — the 1×1 conv's input — so the replay ends as the
# conv starts, before it computes anything. That is exactly Pleiss et al.'s scheme: recompute concat
# + BN + ReLU, keep the 1×1 conv's output. Count the convolutions that run in one training step of a
# 6-layer block (forward hooks fire when a conv has *finished*), with early stop on and off:

# %% slideshow={"slide_type": "subslide"}
def conv_forwards(block, early_stop=True):
    """How many Conv2d forwards complete during one forward + backward pass of ``block``."""
    count = [0]
    hooks = [m.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
             for m in block.modules() if isinstance(m, nn.Conv2d)]
    x = torch.randn(2, block.in_channels, 6, 6, requires_grad=True)
    with torch.utils.checkpoint.set_checkpoint_early_stop(early_stop):
        block(x).sum().backward()
    for h in hooks:
        h.remove()
    return count[0]


torch.manual_seed(0)
block6 = densenet.DenseBlock(6, 8, 4).train()
block6_eff = copy.deepcopy(block6)
block6_eff.efficient = True
counts = {"naive": conv_forwards(block6), "efficient": conv_forwards(block6_eff),
          "efficient, early stop off": conv_forwards(block6_eff, early_stop=False)}
print("conv forwards per training step, 6-layer block (2 convs per layer): "
      + ", ".join(f"{name} {n}" for name, n in counts.items()))
checks.claim("08", "the efficient layer recomputes concat + BN + ReLU but no convolution", kind="derivation",
             paper="Pleiss et al.: recompute concat and BN, keep the 1×1 conv's output",
             ours=f"conv forwards per step, 6-layer block: naive {counts['naive']}, efficient {counts['efficient']}, "
             f"with early stop off {counts['efficient, early stop off']}",
             holds=counts["naive"] == counts["efficient"] == 12 and counts["efficient, early stop off"] == 18, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# Two more parts of Pleiss et al.'s accounting:
# * **Shared gradient storage is free.** The backward of a concatenation hands every input a *view*
#   of the one incoming gradient — no copy, no recomputation (checked below).
# * **Recomputation is cheap arithmetic.** Per recomputed value: a copy, BN's statistics and affine
#   map, a ReLU — about 8 floating-point operations. The convolutions spend 2 per multiply-add in the
#   forward pass and about twice that again in the backward. The estimate for DenseNet-BC-100 follows;
#   in *time* the share is larger, because these operations are limited by memory traffic, not
#   arithmetic (the paper: BN recomputation ≈ 5 % extra compute).

# %%
a_, b_ = torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 5, 4, 4, requires_grad=True)
a2, b2 = a_ * 1, b_ * 1
grads = {}
a2.register_hook(lambda g: grads.__setitem__("a", g))
b2.register_hook(lambda g: grads.__setitem__("b", g))
g_out = torch.randn(2, 8, 4, 4)
torch.cat([a2, b2], 1).backward(g_out)
views = all(g.untyped_storage().data_ptr() == g_out.untyped_storage().data_ptr() for g in grads.values())
print(f"the gradients of both inputs of torch.cat are views of the output's gradient: {views}")
bc100_macs = measure.count_macs(bc100, (3, 32, 32))
recomputed = sum(layer.in_channels * side * side                       # each layer's concatenation, per image
                 for b, side in zip(bc100.blocks(), (32, 16, 8)) for layer in b.values())
share = 8 * recomputed / (3 * 2 * bc100_macs)
print(f"DenseNet-BC-100, one 32×32 image: {recomputed:,} values recomputed (concat inputs of every layer) vs "
      f"{bc100_macs / 1e6:.0f}M conv multiply-adds → ≈ {100 * share:.1f}% extra arithmetic per training step")
assert views

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The price: time, measured in one run
# Forward + backward of naive and efficient, taking turns round by round. On a GPU we time the wall
# clock (synchronised); on a CPU the process's CPU time (all threads), which measures the work done
# and is inflated less than the wall clock when other jobs share the machine. Each round gives one
# paired ratio; the verdict uses their spread (all rounds above or below the bound, or straddling it:
# *within noise*). Quick profile: DenseNet-BC-22 at batch 16 on the CPU; full profile: DenseNet-BC-100
# at batch 64 on 32×32 images, as in the paper.

# %% slideshow={"slide_type": "subslide"}
TIME = config.pick(quick=dict(depth=22, batch=16, repeats=3), full=dict(depth=100, batch=64, repeats=20),
                   dry=dict(depth=100, batch=4, repeats=1))
dev = config.device()
config.seed_everything(0)
t_naive = densenet.densenet_cifar(TIME["depth"], 12, len(info.classes), info.channels).to(dev)
t_eff = copy.deepcopy(t_naive).set_efficient(True)
xt = torch.randn(TIME["batch"], info.channels, info.size, info.size, device=dev)
yt = torch.randint(0, len(info.classes), (TIME["batch"],), device=dev)
times = densenet.step_times({"naive": t_naive, "efficient": t_eff}, xt, yt, repeats=TIME["repeats"])
ratios = sorted(e / n for n, e in zip(times["naive"], times["efficient"]))      # one paired ratio per round
overhead, low, high = ratios[len(ratios) // 2] - 1, ratios[0] - 1, ratios[-1] - 1
secs = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
BOUND, README_OVERHEAD = 0.20, 0.207 / 0.165 - 1         # the paper's PyTorch figure; the README's table
time_verdict = stats.bound_verdict(low, high, BOUND)
print(f"DenseNet-BC-{TIME['depth']}, batch {TIME['batch']}, {dev}: naive {1000 * secs['naive']:.0f} ms, "
      f"efficient {1000 * secs['efficient']:.0f} ms per forward + backward ({'wall' if dev.type == 'cuda' else 'CPU'} time); "
      f"overhead {100 * overhead:+.0f}%, rounds {100 * low:+.0f}% … {100 * high:+.0f}% → {time_verdict}")

# %% slideshow={"slide_type": "subslide"}
checks.claim("08", "recomputing concat + BN costs at most 20% more time",
             paper=f"+15% (LuaTorch) / +20% (PyTorch) in the paper's text; the official README's table: 0.165 → 0.207 s "
             f"per batch = {100 * README_OVERHEAD:+.0f}% (BC-100, batch 64, Pascal Titan X)",
             ours=f"{100 * overhead:+.0f}% (median of {len(ratios)} paired rounds, {100 * low:+.0f}% … {100 * high:+.0f}%; "
             f"DenseNet-BC-{TIME['depth']}, batch {TIME['batch']}, {dev.type})",
             holds=time_verdict == "holds", within_noise=time_verdict == "within noise",
             why="" if time_verdict == "holds" else
             "the recomputed concat, BN and ReLU are memory-bound; next to the small convolutions of a narrow net "
             "(and on a CPU) they are a larger share of the step than in the paper's GPU runs — the authors' own "
             "README table shows +25%")
del t_naive, t_eff

# %% [markdown]
# On a CPU the recomputed BatchNorm and concatenation are a larger share of the time than on a
# GPU (the convolutions are relatively slower there too, but small convs on few channels are
# dominated by memory traffic), so expect the overhead to differ from the paper's; the verdict above
# says which way it went on this machine. No convolution is re-run (the count above): all of the
# overhead is concat + BN + ReLU, and the allocator's work for the freed and re-made buffers.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · BatchNorm under recomputation — a real trap
#
# The recomputed forward pass runs BatchNorm **in training mode a second time**. Its output is the
# same (batch statistics), but training-mode BN also *updates its running mean and variance* and
# counts `num_batches_tracked` — so every recomputed BN moves its running statistics **twice per
# step**, and the model you evaluate is not the one you would have trained naively.
#
# torchvision's `densenet121(memory_efficient=True)` checkpoints exactly concat → `norm1` → ReLU →
# `conv1`. One training step, same weights, same batch, compared with `memory_efficient=False`:

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
tv_naive = torchvision.models.densenet121(num_classes=len(info.classes))
tv_eff = torchvision.models.densenet121(num_classes=len(info.classes), memory_efficient=True)
tv_eff.load_state_dict(tv_naive.state_dict())
xb = torch.randn(2, 3, 32, 32)                  # torchvision's stem takes 3 channels
yb = torch.tensor([1, 2])
densenet.train_step(tv_naive, xb, yb)
densenet.train_step(tv_eff, xb, yb)
tv_diff = densenet.bn_buffer_differences(tv_naive, tv_eff)
print(tv_diff.table())
n_norm1 = sum(1 for n, _ in tv_naive.named_modules() if n.endswith("norm1"))
checks.claim("08", "torchvision's memory_efficient DenseNet updates BN running stats twice per step",
             kind="derivation", paper="known problem of checkpointing BN", ours=f"{tv_diff.stats_differ} of {tv_diff.stats_total} running "
             f"mean/var differ after one step (= 2 × {n_norm1} norm1 layers); {tv_diff.example}",
             holds=tv_diff.stats_differ == 2 * n_norm1)
del tv_naive, tv_eff

# %% [markdown] slideshow={"slide_type": "subslide"}
# Pleiss et al.'s original LuaTorch/PyTorch code saved and restored BN's running statistics around
# the recomputation by hand; later versions left it to `torch.utils.checkpoint`, which knows nothing
# about BatchNorm. Our fix (in `DenseLayer`): the checkpoint's *recompute context* sets a flag, and
# while it is set `norm1` is computed by `F.batch_norm` with **batch statistics** (the same output)
# updating throw-away copies of the running buffers — so the real buffers and `num_batches_tracked`
# move once per step. (Copies rather than no buffers at all: `torch.utils.checkpoint` checks that the
# recomputation saves the same tensors as the forward pass did.)
#
# ### Claim check: one training step leaves every buffer equal to the naive implementation's

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
our_naive = densenet.densenet121(num_classes=len(info.classes))
our_eff = copy.deepcopy(our_naive).set_efficient(True)
densenet.train_step(our_naive, xb, yb)
densenet.train_step(our_eff, xb, yb)
our_diff = densenet.bn_buffer_differences(our_naive, our_eff)
params_equal = all(torch.equal(p, q) for p, q in zip(our_naive.parameters(), our_eff.parameters()))
print(our_diff.table())
checks.claim("08", "our efficient DenseNet-121: one step leaves every BN buffer and weight as the naive one",
             kind="derivation", paper="the same training as the naive implementation",
             ours=f"{our_diff.stats_differ} of {our_diff.stats_total} running stats and {our_diff.counters_differ} of "
             f"{our_diff.counters_total} counters differ; weights equal: {params_equal}",
             holds=our_diff.stats_differ == 0 and our_diff.counters_differ == 0 and params_equal, must_hold=True)
del our_naive, our_eff

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Bigger is possible
#
# How deep a DenseNet-BC (k = 12, CIFAR layout, depth `6n + 4`) can we train if activations may
# take **1 GiB at batch 64 on 32×32 RGB images**? Saved bytes are a quadratic (naive) or linear
# (efficient) function of n, the layers per block, and scale exactly with the batch. We measure one
# image at three depths, fit the three coefficients, check the fit at a fourth depth, and solve.

# %% slideshow={"slide_type": "subslide"}
BUDGET = dict(dataset="cifar10", budget=2 ** 30, batch=64)
binfo = data.dataset_info(BUDGET["dataset"])
fits, verify = {}, {}
for name, eff in (("naive", False), ("efficient", True)):
    fits[name] = densenet.fit_saved_bytes_vs_depth((16, 28, 40), 12, eff, binfo.channels, binfo.size, len(binfo.classes))
    torch.manual_seed(0)
    net52 = densenet.densenet_cifar(52, 12, len(binfo.classes), binfo.channels, efficient=eff)
    verify[name] = (measure.activation_bytes(net52, torch.randn(1, binfo.channels, binfo.size, binfo.size)),
                    fits[name].predict(52))
    print(fits[name].table())
worst = max(abs(m - p) / m for m, p in verify.values())
checks.claim("08", "saved bytes of DenseNet-BC are quadratic (naive) / linear (efficient) in depth",
             kind="derivation", paper="O(kL²) vs O(kL)", ours=f"3-point fits predict depth 52 within {100 * worst:.3f}%; "
             f"naive n² coefficient {fits['naive'].coefficients[0]:,.0f} B, efficient {fits['efficient'].coefficients[0]:,.1f} B",
             holds=worst < 0.01, must_hold=True)
deepest = {name: densenet.deepest_within_budget(f, BUDGET["budget"], BUDGET["batch"]) for name, f in fits.items()}
for name, d in deepest.items():
    n = (d - 4) // 6
    p = measure.count_params(densenet.densenet_cifar(d, 12, len(binfo.classes), binfo.channels))
    print(f"{name:>9}: deepest DenseNet-BC within 1 GiB at batch 64 = DenseNet-BC-{d} (n = {n}, {p / 1e6:.2f}M parameters, "
          f"{measure.human_bytes(fits[name].predict(d, BUDGET['batch']))})")
bc100_bytes = {name: f.predict(100, BUDGET["batch"]) for name, f in fits.items()}

# %% slideshow={"slide_type": "subslide"}
print(f"DenseNet-BC-100 at batch 64: naive {measure.human_bytes(bc100_bytes['naive'])}, efficient "
      f"{measure.human_bytes(bc100_bytes['efficient'])} of saved activations "
      f"(the paper's peak GPU memory, everything included: 2.863 GB vs 1.605 GB)")

# %%
depths = list(range(10, 2 * deepest["efficient"], 12))
fig, ax = plt.subplots(figsize=(6, 3.2))
for name in fits:
    ax.plot(depths, [fits[name].predict(d, BUDGET["batch"]) / 2 ** 30 for d in depths], label=name)
    ax.axvline(deepest[name], ls=":", color="gray")
ax.axhline(1, color="tab:red", ls="--", label="1 GiB budget")
ax.set_xlabel("depth of DenseNet-BC (k = 12)")
ax.set_ylabel("GiB saved, batch 64, 32×32")
ax.set_ylim(0, 3)
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · The dense-block explorer
#
# Move the depth L, the growth rate k, the bottleneck, the compression θ and the implementation.
# Left: which maps feed each layer (row l = layer l; the last row is the block output, which reads
# everything). Middle: input channels per layer and the transition's `⌊θm⌋`. Right: the bytes each
# layer saves for the backward pass — **measured** for one 8×8 input, stacked by kind. Switch
# *implementation* to see the red bars (concatenation + BN output, growing with l) disappear.

# %%
explorer = densenet.block_explorer(depth=12, growth_rate=12)
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · Experiment: DenseNet-BC vs ResNet at similar parameters, trained alike
#
# A fair comparison trains both networks **the same way** — the same images in the same order, the
# same augmentation, epochs, optimiser and schedule — and tests them on **the same images**, image by
# image (a paired McNemar test: only the images one gets right and the other wrong tell them apart).
#
# * **Quick profile**: DenseNet-BC-22 (k = 12, 71K parameters) and chapter 07's ResNet-20 with
#   widths 8-16-32 (69K), shipped checkpoints trained with **the same recipe** — the course's fast
#   recipe on all 60,000 Fashion-MNIST training images for 10 epochs: SGD-Nesterov, batch 256,
#   one-cycle to lr 0.2, label smoothing 0.1, flips, bf16 autocast
#   (`python -m course_lib train --recipe densenet-bc22-fmnist` / `resnet20-post-fmnist`; the test
#   accuracy after every epoch is in the manifest) — and tested here on all 10,000 test images as
#   their recipe tests them (each image and its mirror image vote). (A DenseNet epoch costs about
#   twice a ResNet epoch on this CPU, so training them here does not fit the 2-minute budget.)
# * **Full profile**: DenseNet-BC-100 (k = 12, efficient on) and ResNet-56 (0.85M parameters) on
#   CIFAR-10, both with the DenseNet paper's budget: 300 epochs, batch 64, SGD-Nesterov, lr 0.1,
#   weight decay 1e-4 (cosine decay instead of the paper's steps at 150 and 225), tested on all 10,000
#   test images; trained once by this notebook and cached under `checkpoints-full/`.
#
# Activation bytes are per batch of 64 in training mode; latency is inference on one batch of 16.

# %% slideshow={"slide_type": "subslide"}
EXP = config.pick(
    quick=dict(dataset="fashion-mnist", dense_depth=22, resnet_depth=20, resnet_widths=(8, 16, 32), train_subset=None,
               test_subset=None, epochs=10, batch=256, shipped=("densenet-bc22-fmnist", "resnet20-post-fmnist")),
    full=dict(dataset="cifar10", dense_depth=100, resnet_depth=56, resnet_widths=(16, 32, 64), train_subset=None,
              test_subset=None, epochs=300, batch=64, lr=0.1, weight_decay=1e-4, schedule="cosine"))
einfo = data.dataset_info(EXP["dataset"])
full = config.profile() == "full"
tr, te = data.loaders(EXP["dataset"], EXP["batch"], train_subset=EXP["train_subset"], test_subset=EXP["test_subset"],
                      augment=True, device=config.device())
config.seed_everything(0)
labels_of = (f"DenseNet-BC-{EXP['dense_depth']}", f"ResNet-{EXP['resnet_depth']}")

# %% slideshow={"slide_type": "subslide"}
if full:
    nets = {labels_of[0]: densenet.densenet_cifar(EXP["dense_depth"], 12, len(einfo.classes), einfo.channels, efficient=True),
            labels_of[1]: resnets.resnet_cifar(EXP["resnet_depth"], num_classes=len(einfo.classes),
                                               in_channels=einfo.channels, widths=EXP["resnet_widths"])}
    cache = config.data_dir() / "checkpoints-full"
    cache.mkdir(parents=True, exist_ok=True)
    for label, net in nets.items():                  # the same loaders, settings and seed for both arms
        train.fit(net, tr, None, EXP["epochs"], optimizer="sgd", lr=EXP["lr"], weight_decay=EXP["weight_decay"],
                  schedule=EXP["schedule"], seed=0, checkpoint=cache / f"ch08-{label.lower()}-{EXP['dataset']}-"
                  f"{EXP['epochs']}ep.pt", progress=True)
else:                                                # shipped, trained with one recipe (same images, epochs, schedule)
    nets = {label: recipes.shipped_model(name) for label, name in zip(labels_of, EXP["shipped"])}
correct = {}
for label, net in nets.items():
    predicted, labels = train.predict(net.to(config.device()), te, tta=True)  # each image and its mirror vote
    correct[label] = (predicted == labels).cpu()
n_test = len(labels)
accs = {label: float(c.float().mean()) for label, c in correct.items()}

# %% slideshow={"slide_type": "subslide"}
rows = []
shape = (einfo.channels, einfo.size, einfo.size)
for label, net in nets.items():
    net = net.cpu()
    if isinstance(net, densenet.DenseNet):
        net.set_efficient(False)                                          # the naive bytes first
    x1 = torch.randn(1, *shape)
    act = measure.activation_bytes(net.train(), x1) * 64                 # exact scaling with the batch
    net.eval()
    lat = measure.latency(net, torch.randn(16, *shape), min_run_time=config.pick(quick=0.2, full=1.0, dry=0.05))
    rows.append(dict(model=label, acc=accs[label], ci=stats.accuracy_interval(accs[label], n_test),
                     params=measure.count_params(net), macs=measure.count_macs(net, shape), act=act, ms=1000 * lat))
print(f"{'model':<16} {'accuracy (95% interval)':>24} {'params':>9} {'MACs/image':>11} {'saved bytes, batch 64':>22} {'latency, batch 16':>18}")
for r in rows:
    acc = f"{100 * r['acc']:.1f}% ({100 * r['ci'][0]:.1f}–{100 * r['ci'][1]:.1f})"
    print(f"{r['model']:<16} {acc:>24} {r['params']:>9,} {r['macs'] / 1e6:>10.1f}M {measure.human_bytes(r['act']):>22} {r['ms']:>15.1f} ms")
d, rn = rows[0], rows[1]
print(f"\n{d['model']} vs {rn['model']}: {d['params'] / rn['params']:.2f}× the parameters, {d['macs'] / rn['macs']:.2f}× the MACs, "
      f"{d['act'] / rn['act']:.2f}× the saved activations (naive), {d['ms'] / rn['ms']:.2f}× the latency on this machine")
dense_eff = copy.deepcopy(nets[d["model"]]).set_efficient(True).train()
act_eff = measure.activation_bytes(dense_eff, torch.randn(1, *shape)) * 64
print(f"with efficient=True its saved activations drop to {measure.human_bytes(act_eff)} ({act_eff / rn['act']:.2f}× {rn['model']}'s)")

# %% slideshow={"slide_type": "subslide"}
paired = stats.compare(correct[d["model"]], correct[rn["model"]])
verdict = paired.verdict()
print(f"paired test on the same {n_test:,} test images: {paired.summary()} → {verdict}")
budget = (f"{EXP['train_subset'] or len(tr.labels):,} images × {EXP['epochs']} epochs, "
          f"{'the same recipe' if not full else 'the paper budget'}")
checks.claim("08", "DenseNet-BC is more accurate than a ResNet with similar parameters (equal training)",
             paper="DenseNet-BC-100 (0.8M) 4.51% C10+ error vs ResNet-110 (1.7M) 6.41%",
             ours=f"{d['model']} {100 * d['acc']:.1f}% ({100 * d['ci'][0]:.1f}–{100 * d['ci'][1]:.1f}) vs {rn['model']} "
             f"{100 * rn['acc']:.1f}% ({100 * rn['ci'][0]:.1f}–{100 * rn['ci'][1]:.1f}), {d['params'] / 1e6:.2f}M vs "
             f"{rn['params'] / 1e6:.2f}M params, both {budget}, same {n_test:,} test images, McNemar p = {paired.p_value:.2g}",
             holds=verdict == "holds", within_noise=verdict == "within noise",
             why="" if verdict != "does not hold" else
             ("at equal training and equal parameters the gap the paper reports against ResNet-110 (trained by He et "
              "al.'s shorter recipe) does not carry over" if full else
              "DenseNet-BC-22's blocks have 3 layers each: the reuse of features across many layers that the paper "
              "credits has little to act on"))

# %% [markdown] slideshow={"slide_type": "subslide"}
# Parameters are similar by construction, but the DenseNet costs more MACs and — naively — far more
# activation memory and latency than a ResNet of the same size: many narrow layers, each reading a
# wide concatenation. The memory-efficient implementation removes only the concatenation/BN copies;
# in a shallow net (DenseNet-BC-22 has 3 layers per block) the bottleneck's 4k-channel maps dominate,
# so part of the gap remains — the quadratic term only wins in deep blocks (section 2). The latency
# gap (many small kernels) remains too. In the quick profile both nets are trained alike to about
# 93 % (10 epochs on all 60,000 images; the manifest holds each one's test accuracy after every
# epoch): the interval of each accuracy (about ±0.5 points on 10,000 images) and the paired test say
# how sure the difference is. The paper's gap is at 100 layers on CIFAR-10 after 300 epochs — the
# full profile's test.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · Exercises
#
# Four exercises: derive, derive, build and measure, then predict a budget the checker measures. The
# checkers live in `course_lib.exercises.ch08`; each refuses an answer that calls the library's own
# version (`densenet.DenseNet`, `block_params`, the saved-bytes formulas…).
#
# ### Exercise 1 — the width at the classifier (derive)
# A DenseNet-BC for CIFAR starts with a 3×3 stem of `2k` channels; each block of `L_i` layers adds
# `k` channels per layer; between two blocks a transition keeps `⌊θ·m⌋` of its `m` channels (there
# is no transition after the last block). Return how many channels reach the classifier. Check
# yourself on DenseNet-BC-100 (k = 12, three blocks of 16): the paper's network ends with 342.

# %%
def my_classifier_width(block_config, growth_rate, compression):
    # BEGIN SOLUTION
    c = 2 * growth_rate
    for i, layers in enumerate(block_config):
        c += layers * growth_rate
        if i < len(block_config) - 1:
            c = max(1, math.floor(compression * c))
    return c
    # END SOLUTION


# %%
ex.check_classifier_width(my_classifier_width)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 2 — parameters of a DenseNet-B block (derive)
# Count the parameters of a block of `L` layers, each BN(c) → ReLU → 1×1 conv (c → 4k) →
# BN(4k) → ReLU → 3×3 conv (4k → k), where c is layer l's input width. Convs have no bias; a BN has
# 2 parameters per channel. The checker compares with real blocks.

# %%
def my_block_params(L, k0, k):
    # BEGIN SOLUTION
    total = 0
    for l in range(1, L + 1):
        c = k0 + k * (l - 1)
        total += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k
    return total
    # END SOLUTION


# %%
ex.check_block_params(my_block_params)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 3 — one buffer for the whole block (build it; the checker measures the copies)
# Section 3's shared storage, in the forward pass: allocate the block's output **once**
# (`k0 + L·k` channels), put `x` in its first `k0` channels, and let layer `l` read a *view* of the
# channels before it and write its `k` new channels into their slice. `layers[l]` maps `c_l`
# channels to `k` (BN → ReLU → 1×1 → BN → ReLU → 3×3). The checker compares your output with the
# naive `torch.cat` block and *measures* how many elements your forward pass copies: one buffer
# written once copies the output once; concatenating at every layer copies `Σ c_l` channels.

# %%
def my_shared_forward(x, layers):
    # BEGIN SOLUTION
    n, k0, h, w = x.shape
    k = layers[0][-1].out_channels
    out = x.new_empty(n, k0 + len(layers) * k, h, w)
    out[:, :k0] = x
    c = k0
    for layer in layers:
        out[:, c:c + k] = layer(out[:, :c])          # a view in, a slice out: no concatenation
        c += k
    return out
    # END SOLUTION


# %%
ex.check_shared_storage(my_shared_forward)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 4 — the largest batch that fits (predict; the checker measures)
# Your accelerator leaves `budget_bytes` for what autograd saves in one dense block (float32,
# training mode, bottleneck 4k). Return the **largest batch** that fits, for the naive block
# (`efficient=False`) and for the memory-efficient one (`efficient=True`), from section 2's
# accounting: what is kept per image, and what does not grow with the batch? The checker *measures*
# real blocks at your batch and at the next one: yours must fit (within 2 %), the next must not.
# Then read the two answers side by side: how many times larger a batch does the efficient block
# allow for L = 40?

# %%
def my_largest_batch(L, k0, k, h, w, budget_bytes, efficient):
    # BEGIN SOLUTION
    b = 4 * k
    if efficient:        # every feature map once (shared) + the bottleneck's two maps per layer
        per_image = 4 * h * w * (k0 + k * (L - 1) + 2 * b * L)
        fixed = 4 * 2 * b * L                                   # the bottleneck BN's statistics
    else:                # per layer: concatenation + BN output (2·c_l maps) + two bottleneck maps
        maps = sum(2 * (k0 + k * (l - 1)) + 2 * b for l in range(1, L + 1))
        per_image, fixed = 4 * h * w * maps, 4 * maps           # BN statistics: one number per channel
    return (budget_bytes - fixed) // per_image
    # END SOLUTION


# %%
ex.check_largest_batch(my_largest_batch)
naive, efficient = (my_largest_batch(40, 8, 4, 6, 6, 16 << 20, e) for e in (False, True))
print(f"16 MiB, L = 40, k = 4, 6×6 maps: naive batch {naive}, efficient batch {efficient} ({efficient / naive:.1f}×)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9 · Summary of what we measured

# %%
summary = [
    ("DenseNet-121 parameters (= torchvision)", f"{p_ours:,}"),
    ("DenseNet-BC-100 (k = 12) parameters", f"{p100 / 1e6:.2f}M (paper 0.8M)"),
    ("no-bottleneck block parameters", f"∝ L^{slope_L:.2f} · k^{slope_k:.2f}"),
    ("saved bytes vs L, naive / efficient", f"slopes {slopes['naive']:.2f} / {slopes['efficient']:.2f}"),
    ("naive / efficient at L = 64", f"{ratio64:.1f}×"),
    ("DenseNet-201 / ResNet-101 parameters", f"{family[201] / 1e6:.1f}M / {tv_params['resnet101'] / 1e6:.1f}M"),
    ("plain DenseNet-100 parameters, k = 12 → 24", f"{plain[12] / 1e6:.1f}M → {plain[24] / 1e6:.1f}M"),
    ("from scratch / library efficient = naive", f"{all(agree['from scratch'].values())} / {all(agree['library, efficient'].values())}"),
    ("conv forwards/step: naive / eff. / no early stop", " / ".join(str(n) for n in counts.values())),
    ("efficient time overhead (fwd + bwd)", f"{100 * overhead:+.0f}% ({dev.type}, DenseNet-BC-{TIME['depth']}): {time_verdict}"),
    ("torchvision memory_efficient BN stats off", f"{tv_diff.stats_differ} of {tv_diff.stats_total}"),
    ("ours, BN buffers off after one step", f"{our_diff.stats_differ + our_diff.counters_differ}"),
    ("deepest BC within 1 GiB, batch 64: naive / eff.", f"{deepest['naive']} / {deepest['efficient']}"),
] + [(f"{r['model']} accuracy ({config.profile()})", f"{100 * r['acc']:.1f}% ({100 * r['ci'][0]:.1f}–{100 * r['ci'][1]:.1f})")
      for r in rows] + [("DenseNet vs ResNet, paired test", verdict)]
for what, value in summary:
    print(f"{what:<50} {value}")
print(f"\nnotebook wall time: {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
#
# * G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger. *Densely Connected Convolutional
#   Networks.* CVPR 2017 (DenseNet-BC-100, k = 12: 0.8M parameters, 4.51 % C10+ error; DenseNet-121
#   25.02 % / 7.71 % ImageNet top-1 / top-5 error, single crop).
# * G. Pleiss, D. Chen, G. Huang, T. Li, L. van der Maaten, K. Q. Weinberger. *Memory-Efficient
#   Implementation of DenseNets.* arXiv:1707.06990, 2017 (code: gpleiss/efficient_densenet_pytorch):
#   shared memory allocations + recomputation, quadratic → linear memory; +15 % (LuaTorch) / +20 %
#   (PyTorch) time in the text, 0.165 → 0.207 s per batch (+25 %) in the official README's table.
# * torchvision `densenet121(memory_efficient=True)` (uses `torch.utils.checkpoint`); PyTorch's
#   `torch.utils.checkpoint` documentation (non-reentrant checkpointing, `set_checkpoint_early_stop`).
# * Seed material: the notes on CNN architectures, §8 (DenseNet memory).
