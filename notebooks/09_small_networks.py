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
# # 09 · Small networks: SqueezeNet, SqueezeNext, MobileNet — and their kinship with IGC
#
# *Chapters 01–06 made one weight matrix cheaper at a time. The small networks of 2016–2018 build
# whole architectures out of those cheap factors — 1×1 convs, squeezes, separable and depthwise
# convs, group convs with shuffles — so they are small before any compression.*
#
# **Why small matters.** (1) In distributed training the traffic per step is proportional to the
# parameters; (2) an over-the-air model update of 5 MB ships where one of 240 MB does not; (3) a
# model that fits in on-chip memory (FPGAs have less than 10 MB) never pays for DRAM. Section 1
# checks (1) and (3) for SqueezeNet and AlexNet.
#
# **Units.** The SqueezeNet paper's "MB" are MiB (2²⁰ bytes): its 1,248,424 float32 weights are
# 4.99 million bytes = 4.76 MiB, its "4.8 MB". This chapter prints every size in **MiB** and says so.

# %% [markdown] slideshow={"slide_type": "subslide"}
# **You will be able to**
# 1. state SqueezeNet's three strategies, build a **Fire module** and generate the whole network from
#    its five meta-parameters; add simple and complex bypasses;
# 2. build a **SqueezeNext** block (two-stage squeeze, 1×3 + 3×1, residual) and count SqNxt-23;
# 3. derive MobileNet's **1/N + 1/D_K²** and reproduce its width (α) and resolution (ρ) tables with
#    `measure.count_params` / `measure.count_macs` — then check whether the savings hold in seconds;
# 4. see the **IGC family**: depthwise separable = IGCV1 with M = 1, channel shuffle = IGC's
#    interleave, the inverted residual = IGCV3 with one group — in chapter 06's connectivity explorer;
# 5. compare small networks with chapter 07's ResNet-20 on accuracy, parameters, MACs and latency.

# %% slideshow={"slide_type": "skip"}
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from course_lib import channels, checks, compress, config, conv, data, igc, measure, recipes, smallnets as sn, stats, train
from course_lib.exercises import ch09 as ex

print(config.describe())
config.seed_everything(0)
notebook_start = time.perf_counter()
CH = "09"
MiB = 2 ** 20          # the SqueezeNet paper's "MB"

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · SqueezeNet: the Fire module from scratch
#
# Iandola et al. (2016) keep AlexNet's accuracy with three strategies:
#
# 1. **1×1 filters instead of 3×3** — 9× fewer weights each;
# 2. **fewer input channels to the remaining 3×3 filters** — a *squeeze* layer of `s₁ₓ₁` 1×1 filters
#    in front of them (a 3×3 layer costs `C_in · C_out · 9`);
# 3. **downsample late** — large activation maps in most layers, for accuracy.
#
# A **Fire module** is `squeeze 1×1 (s₁ₓ₁) → ReLU → [expand 1×1 (e₁ₓ₁) ‖ expand 3×3 (e₃ₓ₃)] → ReLU`,
# with `s₁ₓ₁ < e₁ₓ₁ + e₃ₓ₃`. Ten lines from scratch, then the tested version (whose layer names equal
# torchvision's, so torchvision's weights load into it):

# %% slideshow={"slide_type": "subslide"}
def fire_from_scratch(x, w_s, b_s, w_1, b_1, w_3, b_3):
    s = F.relu(F.conv2d(x, w_s, b_s))                                  # squeeze: 1×1
    return torch.cat([F.relu(F.conv2d(s, w_1, b_1)),                   # expand: 1×1 ...
                      F.relu(F.conv2d(s, w_3, b_3, padding=1))], 1)    # ... and 3×3, concatenated


fire = sn.Fire(96, 16, 64, 64)
x = torch.randn(2, 96, 13, 13)
with torch.no_grad():
    ours = fire_from_scratch(x, fire.squeeze.weight, fire.squeeze.bias, fire.expand1x1.weight, fire.expand1x1.bias,
                             fire.expand3x3.weight, fire.expand3x3.bias)
    diff = (ours - fire(x)).abs().max().item()
regular = 96 * 128 * 9 + 128
print(f"Fire(96, s=16, e1=64, e3=64): {measure.count_params(fire):,} parameters, output {tuple(fire(x).shape)}; "
      f"from scratch vs course_lib: max |diff| {diff:.1e}")
print(f"a regular 3×3 conv 96 → 128 has {regular:,}: the Fire module is {regular / measure.count_params(fire):.1f}× smaller")
assert diff < 1e-5

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The meta-parameters generate the network
#
# Eight Fire modules, module i (0-based) with `e_i = base_e + incr_e·⌊i / freq⌋` expand filters,
# `e₃ₓ₃ = pct₃ₓ₃ · e_i` of them 3×3, and `s₁ₓ₁ = SR · e_i` squeeze filters. With base_e = incr_e = 128,
# freq = 2, pct₃ₓ₃ = 0.5 and SR = 0.125 that is SqueezeNet v1.0's fire2 … fire9. Around them: conv1
# (96 7×7 filters, stride 2), max-pools after conv1, fire4 and fire8 (late), dropout, conv10 (1×1, one
# filter per class) and global average pooling — no fully connected layer at all.

# %%
configs = sn.fire_configs(base_e=128, incr_e=128, freq=2, pct3x3=0.5, sr=0.125)
print("module   in  s1x1  e1x1  e3x3")
for i, (c_in, s, e1, e3) in enumerate(configs):
    print(f"fire{i + 2}  {c_in:>4} {s:>5} {e1:>5} {e3:>5}")

ref_fires = [(m.squeeze.in_channels, m.squeeze.out_channels, m.expand1x1.out_channels, m.expand3x3.out_channels)
             for m in torchvision.models.squeezenet1_0(weights=None).features
             if isinstance(m, torchvision.models.squeezenet.Fire)]
assert configs == ref_fires

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim checks.** Our SqueezeNets have exactly torchvision's parameters; the paper's "50× fewer
# parameters than AlexNet" (240 MB / 4.8 MB) is checked against torchvision's AlexNet, and the "why
# small" arguments get their numbers: the gradient bytes each worker sends per training step, and
# whether the float32 weights fit an FPGA's on-chip memory (< 10 MB).

# %% slideshow={"slide_type": "fragment"}
counts = {}
for version in ("1_0", "1_1"):
    ours_n = measure.count_params(sn.squeezenet(version))
    ref_n = measure.count_params(getattr(torchvision.models, f"squeezenet{version}")(weights=None))
    counts[version] = ours_n
    checks.claim(CH, f"SqueezeNet v{version.replace('_', '.')} parameters equal torchvision's",
                 kind="derivation", paper=f"torchvision squeezenet{version}: {ref_n:,}", ours=f"{ours_n:,}",
                 holds=ours_n == ref_n, must_hold=True)
alexnet_params = measure.count_params(torchvision.models.alexnet(weights=None))
ratio_sq = alexnet_params / counts["1_0"]
checks.claim(CH, "SqueezeNet has 50× fewer parameters than AlexNet (within 5%)", kind="derivation", paper="50× (240 MB → 4.8 MB)",
             ours=f"{ratio_sq:.1f}× ({alexnet_params / 1e6:.1f}M → {counts['1_0'] / 1e6:.2f}M)",
             holds=abs(ratio_sq - 50) / 50 <= 0.05, must_hold=True)
alex_mib, sq_mib = 4 * alexnet_params / MiB, 4 * counts["1_0"] / MiB
print(f"float32 gradients per worker per step: AlexNet {alex_mib:.1f} MiB, SqueezeNet {sq_mib:.2f} MiB")
checks.claim(CH, "SqueezeNet's float32 weights fit an FPGA's < 10 MB of on-chip memory; AlexNet's do not",
             kind="derivation", paper="FPGAs have < 10 MB on-chip", ours=f"SqueezeNet {sq_mib:.2f} MiB, AlexNet {alex_mib:.0f} MiB",
             holds=sq_mib < 10 < alex_mib, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Simple and complex bypass
#
# A **simple bypass** adds the identity around the Fire modules whose input and output widths agree
# (fire3, 5, 7, 9): free in parameters (the paper: 60.4 / 82.5 % top-1 / top-5 at 4.8 MB, instead of
# 57.5 / 80.3 %). A **complex bypass** adds a 1×1 conv around the others too (the paper: 58.8 / 82.0 %
# at 7.7 MB). Our complex bypass adds the four 1×1 convs the paper describes; its 7.7 MB does not
# follow from them (we count 6.06 MiB), and the paper does not say what else it stored.

# %%
for bypass in (None, "simple", "complex"):
    with torch.device("meta"):                      # counting only: no memory, no initialisation
        net = sn.squeezenet("1_0", bypass=bypass)
    print(f"bypass={str(bypass):<8}: {measure.count_params(net):>10,} parameters, "
          f"{sum(isinstance(m, sn.FireBypass) for m in net.features)} bypassed Fire modules, "
          f"{4 * measure.count_params(net) / MiB:.2f} MiB at 32 bits")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The two design-space sweeps
#
# The paper varies one meta-parameter at a time (ImageNet top-5, quoted): the **squeeze ratio** SR
# from 0.125 to 1 — accuracy climbs from 80.3 % to a peak of **86.0 % at SR = 0.75 (19 MB)**; and the
# **fraction of 3×3 filters** pct₃ₓ₃ (at SR = 0.5, as we read its Fig. 2b) — **50 % 3×3 reaches 85.3 %**,
# more 3×3 filters add size, not accuracy. The sizes are ours: we build each network and count it.

# %% slideshow={"slide_type": "subslide"}
sr_grid, pct_grid = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875), (0.01, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 0.99)
with torch.device("meta"):
    sr_mib = [4 * measure.count_params(sn.SqueezeNet(sn.fire_configs(sr=r))) / MiB for r in sr_grid]
    pct_mib = [4 * measure.count_params(sn.SqueezeNet(sn.fire_configs(sr=0.5, pct3x3=p))) / MiB for p in pct_grid]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 2.8))
ax1.plot(sr_grid, sr_mib, "o-")
ax1.annotate("paper: 86.0% top-5\n(peak), 19 MB", (0.75, sr_mib[5]), xytext=(-95, 5), textcoords="offset points", fontsize=8)
ax1.set_xlabel("squeeze ratio SR (pct₃ₓ₃ = 0.5)")
ax2.plot([100 * p for p in pct_grid], pct_mib, "o-", color="tab:orange")
ax2.annotate("paper: 85.3% top-5,\nno gain beyond", (50, pct_mib[4]), xytext=(-90, 10), textcoords="offset points", fontsize=8)
ax2.set_xlabel("3×3 filters, % of expand filters (SR = 0.5)")
for ax in (ax1, ax2):
    ax.set_ylabel("float32 size (MiB, ours)")
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
checks.claim(CH, "SqueezeNet with SR = 0.75 is a 19 MB model (within 5%)", kind="derivation", paper="19 MB (86.0% top-5)",
             ours=f"{sr_mib[5]:.2f} MiB", holds=abs(sr_mib[5] - 19) / 19 <= 0.05, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### SqueezeNet + Deep Compression: the paper's 510×
#
# The paper's size table (ImageNet; quoted, not measured here):
#
# | model | size | vs AlexNet | top-1 / top-5 |
# |---|---|---|---|
# | AlexNet | 240 MB | 1× | 57.2 / 80.3 % |
# | AlexNet + SVD | 48 MB | 5× | 56.0 / 79.4 % |
# | AlexNet + network pruning | 27 MB | 9× | 57.2 / 80.3 % |
# | AlexNet + Deep Compression | 6.9 MB | 35× | 57.2 / 80.3 % |
# | SqueezeNet | 4.8 MB | 50× | 57.5 / 80.3 % |
# | SqueezeNet + Deep Compression, 8 bits | 0.66 MB | 363× | 57.5 / 80.3 % |
# | SqueezeNet + Deep Compression, 6 bits | **0.47 MB** | **510×** | 57.5 / 80.3 % |
#
# Its "33 % sparsity" means a third of the weights is **kept**: the 3×3 expand filters keep 33 %, the
# 1×1 layers and conv1 stay dense, conv10 keeps about 20 % (Table 1: 1,248,424 → 421,098 weights).
# `sn.SQUEEZENET_DC_DENSITY` holds that pattern as we read Table 1 (it also halves a few 1×1 layers of
# fire6–9, which we leave dense — so we keep a little more than the paper).

# %% [markdown] slideshow={"slide_type": "subslide"}
# Bits per weight depend on the weights: trained ones are more peaked and Huffman-code better than a
# fresh initialisation, and we have no ImageNet-trained SqueezeNet here. So we **measure** bits per
# weight, per kind of layer, on our trained Fashion-MNIST SqueezeNet (the shipped
# `squeezenet-small-fmnist`): prune it with the paper's densities, share weights at 6 and 8 bits
# (k-means, no retraining: bytes, not accuracy), write chapter 05's Huffman-coded file and read the
# per-layer table (`compress.compression_report`). Then we apply those rates to SqueezeNet v1.0's
# layers (`sn.projected_bytes`). As a cross-check we also write the real 6-bit file of a freshly
# initialised v1.0.

# %% slideshow={"slide_type": "subslide"}
t = time.perf_counter()
rows = [("AlexNet", 240), ("AlexNet + SVD", 48), ("AlexNet + pruning", 27), ("AlexNet + Deep Compression", 6.9),
        ("SqueezeNet", 4.8), ("SqueezeNet + DC, 8 bits", 0.66), ("SqueezeNet + DC, 6 bits", 0.47)]
quoted_ratios = (1, 5, 9, 35, 50, 363, 510)
ours_ratios = [240 / mb for _, mb in rows]
checks.claim(CH, "the SqueezeNet size table's ratios are 240 MB / size", kind="derivation",
             paper="5×, 9×, 35×, 50×, 363×, 510×", ours=", ".join(f"{r:.1f}×" for r in ours_ratios[1:]),
             holds=all(abs(r - q) / q < 0.05 for r, q in zip(ours_ratios, quoted_ratios)), must_hold=True)

work = config.data_dir() / "ch09"
work.mkdir(parents=True, exist_ok=True)
with torch.device("meta"):
    v10 = sn.squeezenet("1_0")                           # the ImageNet architecture, for counting
v10_roles = sn.squeezenet_roles(v10)
kept = sum(m.weight.numel() * sn.SQUEEZENET_DC_DENSITY[v10_roles[n]] for n, m in v10.named_modules() if n in v10_roles)
print(f"SqueezeNet v1.0 with these densities keeps {kept / 1e3:.0f}K of its {counts['1_0'] / 1e3:.0f}K weights (paper: 421K)")
dc = {}

# %% slideshow={"slide_type": "subslide"}
for bits in (6, 8):
    small = recipes.shipped_model("squeezenet-small-fmnist")
    roles = sn.squeezenet_roles(small)
    real = sn.deep_compress_bytes(small, work / f"squeezenet-small-{bits}bit.dcmp", sparsity=sn.squeezenet_dc_sparsity(small),
                                  bits=bits, index_bits=5)
    layer_report = compress.compression_report(small, bits, index_bits=5)
    rates = sn.bits_per_weight(layer_report, roles)
    projected = sn.projected_bytes(v10, v10_roles, rates, per_layer=sn.layer_overhead_bytes(layer_report))
    dc[bits] = dict(rates=rates, small=real, projected=projected)
    print(f"{bits} bits, measured on the trained small SqueezeNet ({real:,} B file): bits per original weight "
          + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()))
    print(f"   → SqueezeNet v1.0: {projected / MiB:.3f} MiB = {8 * projected / kept:.1f} bits per kept weight "
          f"(the paper's {0.47 if bits == 6 else 0.66} MiB over 421,098 weights: "
          f"{8 * (0.47 if bits == 6 else 0.66) * MiB / 421_098:.1f})")
config.seed_everything(0)
sq = sn.squeezenet("1_0")
sq_bytes = sn.deep_compress_bytes(sq, work / "squeezenet1_0-6bit.dcmp", sparsity=sn.squeezenet_dc_sparsity(sq),
                                  bits=6, index_bits=5)
alexnet_bytes = 4 * alexnet_params                     # AlexNet's float32 weights, in bytes
print(f"real 6-bit file of a freshly initialised v1.0: {sq_bytes / MiB:.3f} MiB ({time.perf_counter() - t:.0f} s)")

# %% slideshow={"slide_type": "subslide"}
for bits, paper_mib, paper_x in ((6, 0.47, 510), (8, 0.66, 363)):
    p = dc[bits]["projected"]
    checks.claim(CH, f"SqueezeNet + Deep Compression ({bits} bits) is {paper_x}× smaller than AlexNet (≥ 0.9 × {paper_x}×)",
                 paper=f"{paper_mib} MB, {paper_x}×",
                 ours=f"{p / MiB:.3f} MiB, {alexnet_bytes / p:.0f}× (bits per weight measured on our trained SqueezeNet, "
                      f"applied to v1.0)" + (f"; fresh-init real file {sq_bytes / MiB:.3f} MiB" if bits == 6 else ""),
                 holds=alexnet_bytes / p >= 0.9 * paper_x)

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh([n for n, _ in rows], [mb for _, mb in rows], color="0.7", label="paper (quoted, MB)")
ours_rows = [("SqueezeNet", 4 * counts["1_0"] / MiB), ("SqueezeNet + DC, 8 bits", dc[8]["projected"] / MiB),
             ("SqueezeNet + DC, 6 bits", dc[6]["projected"] / MiB)]
ax.scatter([v for _, v in ours_rows], [n for n, _ in ours_rows], color="tab:blue", zorder=3, label="ours (MiB)")
ax.set_xscale("log")
ax.set_xlabel("model size (log)")
ax.invert_yaxis()
ax.legend(fontsize=8, loc="lower right")
ax.grid(alpha=0.3, axis="x")
plt.tight_layout()
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · SqueezeNext: two squeezes and a separable 3×3
#
# Gholami et al. (2018) squeeze twice (two 1×1 convs, each halving the channels), replace the 3×3 by
# **1×3 + 3×1** (chapter 03's spatial low rank: 6 taps instead of 9), expand with a 1×1 and add a
# residual. 1.0-SqNxt-23 stacks [6, 6, 8, 1] blocks in four stages; the v5 layout [2, 4, 14, 1] moves
# blocks to the low-resolution stages, which use the hardware better.

# %% slideshow={"slide_type": "subslide"}
block = sn.SqueezeNextBlock(64, 64)
print("SqueezeNext block, 64 channels:")
for m in block.body.modules():
    if isinstance(m, nn.Conv2d):
        print(f"  {m.in_channels:>3} → {m.out_channels:<3} {m.kernel_size[0]}×{m.kernel_size[1]}: {m.weight.numel():>6,} weights")
block_w = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
print(f"  total {block_w:,} weights vs {64 * 64 * 9:,} for one regular 3×3 conv 64 → 64 ({64 * 64 * 9 / block_w:.1f}×)")

sqnxt = {name: sn.squeezenext(1.0, layout) for name, layout in (("SqNxt-23", sn.SQNXT_23), ("SqNxt-23v5", sn.SQNXT_23_V5))}
for name, net in sqnxt.items():
    print(f"1.0-{name} {net.layout}: {measure.count_params(net) / 1e6:.3f}M parameters, "
          f"{measure.count_macs(net, (3, 224, 224)) / 1e6:.0f}M MACs at 224")
n23 = measure.count_params(sqnxt["SqNxt-23"])
checks.claim(CH, "1.0-SqNxt-23 has 0.72M parameters (within 5%)", kind="derivation", paper="0.72M",
             ours=f"{n23 / 1e6:.3f}M", holds=abs(n23 - 0.72e6) / 0.72e6 <= 0.05, must_hold=True)
checks.claim(CH, "1.0-SqNxt-23 has 84× fewer parameters than AlexNet (within 5%)", kind="derivation", paper="84×",
             ours=f"{alexnet_params / n23:.1f}×", holds=abs(alexnet_params / n23 - 84) / 84 <= 0.05)

# %% [markdown] slideshow={"slide_type": "subslide"}
# The two layouts cost the **same MACs**: in each stage the channels double as the resolution
# halves, so every identity block costs `C²·H·W`-proportional work that does not change from stage to
# stage. v5 is about hardware utilisation (and spends more parameters), not about MACs.
#
# **The paper's results** (ImageNet top-1, quoted): 1.0-SqNxt-23 59.05 % (top-5 82.60 %) with 0.72M
# parameters; with group convs (G-23) 57.16 % at 0.54M (112× fewer than AlexNet); deeper, 34 and 44
# layers: 61.39 % at 1.0M and 62.64 % at 1.2M; twice as wide: 2.0-SqNxt-44 69.59 % at 4.4M and
# 2.0-SqNxt-23v5 67.44 % at 3.2M — against MobileNet's 67.5 % at 4.2M (as the SqueezeNext paper
# reports it).

# %%
published = {"1.0-SqNxt-23": (59.05, 0.72), "1.0-G-SqNxt-23": (57.16, 0.54), "1.0-SqNxt-34": (61.39, 1.0),
             "1.0-SqNxt-44": (62.64, 1.2), "2.0-SqNxt-44": (69.59, 4.4), "2.0-SqNxt-23v5": (67.44, 3.2),
             "MobileNet": (67.5, 4.2), "SqueezeNet": (57.5, 1.25)}
fig, ax = plt.subplots(figsize=(6, 3))
for name, (top1, params) in published.items():
    ax.scatter(params, top1, color="tab:green" if "SqNxt" in name else "tab:gray")
    ax.annotate(name, (params, top1), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.set_xlabel("parameters (millions; published)")
ax.set_ylabel("ImageNet top-1 (%; published)")
ax.set_title("SqueezeNext: accuracy against parameters (quoted from the paper)", fontsize=9)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Why SqueezeNext avoids depthwise convolutions: arithmetic intensity
#
# SqueezeNext was designed with a **hardware simulator** (8×8 and 16×16 arrays of multiply units with
# 32 / 128 KB buffers), not by counting MACs. Its argument: a depthwise conv does very little
# arithmetic per byte it moves, so the multiply units wait for memory. **Arithmetic intensity** =
# MACs / bytes moved (weights + input + output, each once: `sn.arithmetic_intensity`). We compute it
# for MobileNet's 14×14×512 layer as a regular 3×3 conv, a 3×3 depthwise conv and a 1×1 conv — and
# time the regular and the depthwise conv on this CPU (one thread) to see MACs per second.

# %% slideshow={"slide_type": "subslide"}
x14 = torch.randn(1, 512, 14, 14)
layers = {"regular 3×3": nn.Conv2d(512, 512, 3, padding=1, bias=False),
          "depthwise 3×3": nn.Conv2d(512, 512, 3, padding=1, groups=512, bias=False),
          "pointwise 1×1": nn.Conv2d(512, 512, 1, bias=False)}
intensity = {n: sn.arithmetic_intensity(m, (512, 14, 14)) for n, m in layers.items()}
secs = measure.latencies({n: layers[n] for n in ("regular 3×3", "depthwise 3×3")}, x14, device="cpu",
                         min_run_time=config.pick(quick=0.05, full=0.2, dry=0.01), threads=1, rounds=3, best=True)
rate = {n: measure.count_macs(layers[n], (512, 14, 14)) / secs[n] / 1e9 for n in secs}
for n, m in layers.items():
    print(f"{n:<14} {measure.count_macs(m, (512, 14, 14)) / 1e6:7.1f}M MACs, {intensity[n]:5.1f} MACs per byte moved"
          + (f", {rate[n]:5.1f} GMAC/s on this CPU" if n in rate else ""))
checks.claim(CH, "a depthwise conv does far less arithmetic per byte than a regular conv (14×14×512, float32)",
             kind="derivation", paper="SqueezeNext: depthwise convs have low compute per byte moved",
             ours=f"{intensity['depthwise 3×3']:.2f} vs {intensity['regular 3×3']:.1f} MACs/byte",
             holds=intensity["depthwise 3×3"] < intensity["regular 3×3"] / 10, must_hold=True)
checks.claim(CH, "the depthwise conv runs at a lower MAC rate than the regular conv on this CPU",
             paper="SqueezeNext: low arithmetic intensity → poor hardware utilisation (simulated)",
             ours=f"{rate['depthwise 3×3']:.1f} vs {rate['regular 3×3']:.1f} GMAC/s (one thread)",
             holds=rate["depthwise 3×3"] < rate["regular 3×3"],
             why="" if rate["depthwise 3×3"] < rate["regular 3×3"] else "this CPU's depthwise kernel keeps up here")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · MobileNet: depthwise separable convolutions
#
# A regular k×k conv from M to N channels on a D_F × D_F map costs `D_K²·M·N·D_F²` mult-adds. A
# **depthwise** k×k conv (one filter per channel) followed by a **pointwise** 1×1 conv costs
# `D_K²·M·D_F² + M·N·D_F²`, a ratio of
#
# $$\frac{D_K^2 M D_F^2 + M N D_F^2}{D_K^2 M N D_F^2} = \frac{1}{N} + \frac{1}{D_K^2}.$$
#
# In chapter 06's language it is **IGCV1 with M = 1**: the primary group conv has one channel per
# partition (depthwise), the secondary is one dense 1×1 conv. Chapter 01 measured the paper's
# 14×14×512 layer table; we reuse it here.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** depthwise convs cut MACs ~8–9× — why much less latency? What is arithmetic intensity?

# %% slideshow={"slide_type": "fragment"}
block = igc.IGCV1(32, L=32, M=1, norm=False, act=False)
name, plain = igc.extreme_case(block)
print(f"IGCV1(L=32, M=1) is '{name}': {[type(m).__name__ + str(tuple(m.weight.shape)) for m in plain]}")
table = conv.mobilenet_table()
for row in table:
    paper_macs, paper_params = conv.MOBILENET_PUBLISHED[row.layer]
    print(f"  {row.layer:<22} {row.macs / 1e6:6.1f}M mult-adds (paper {paper_macs}M)  {row.params / 1e6:.2f}M params (paper {paper_params}M)")
measured = table[1].macs / table[0].macs          # depthwise separable / regular 3×3 conv
formula = sn.separable_cost_ratio(512, 3)
checks.claim(CH, "a depthwise separable 3×3 layer costs 1/N + 1/D_K² of a regular one (14×14×512)",
             kind="derivation", paper=f"1/512 + 1/9 = {formula:.4f}", ours=f"{measured:.4f} (count_macs)",
             holds=abs(measured - formula) < 1e-9, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The whole network: width α and resolution ρ
#
# MobileNet = a 3×3 conv (stride 2) + 13 depthwise separable layers + global average + fc. The
# **width multiplier** α thins every layer (cost ∝ α²); the **resolution multiplier** ρ shrinks the
# input (cost ∝ ρ²). We rebuild the paper's tables from our model with `measure.count_params` and
# `measure.count_macs`, to the paper's printed precision (0.1M parameters, 1M mult-adds); the
# accuracy column is the paper's ImageNet top-1, quoted.

# %% slideshow={"slide_type": "subslide"}
print(f"{'model':<22}{'params':>9}{'paper':>8}{'mult-adds':>12}{'paper':>8}{'top-1 (paper)':>15}")
width_rows, width_ok, width_macs = [], True, {}
for alpha, p_params, p_macs, top1 in ((1.0, 4.2, 569, 70.6), (0.75, 2.6, 325, 68.4), (0.5, 1.3, 149, 63.7),
                                      (0.25, 0.5, 41, 50.6)):
    report = sn.cost_by_kind(sn.mobilenet_v1(alpha), (3, 224, 224))
    params, macs = sum(r.params for r in report) / 1e6, sum(r.macs for r in report) / 1e6
    width_ok &= abs(params - p_params) <= 0.1 and abs(macs - p_macs) <= 1
    width_rows.append(f"{params:.2f}M/{macs:.0f}M")
    width_macs[alpha] = (macs, top1)
    print(f"{f'{alpha}-MobileNet-224':<22}{params:>8.2f}M{p_params:>7}M{macs:>11.1f}M{p_macs:>7}M{top1:>14}%")
res_rows, res_ok, res_macs = [], True, {}
mb1 = sn.mobilenet_v1(1.0)
for size, p_macs, top1 in ((224, 569, 70.6), (192, 418, 69.1), (160, 290, 67.2), (128, 186, 64.4)):
    macs = measure.count_macs(mb1, (3, size, size)) / 1e6
    res_ok &= abs(macs - p_macs) <= 1
    res_rows.append(f"{macs:.0f}M")
    res_macs[size] = (macs, top1)
    print(f"{f'1.0-MobileNet-{size}':<22}{'':>9}{'':>8}{macs:>11.1f}M{p_macs:>7}M{top1:>14}%")
checks.claim(CH, "MobileNet α = 1/0.75/0.5/0.25 at 224: params and mult-adds", kind="derivation", paper="4.2/2.6/1.3/0.5M, 569/325/149/41M",
             ours=", ".join(width_rows), holds=bool(width_ok), must_hold=True)
checks.claim(CH, "1.0-MobileNet at 224/192/160/128: mult-adds", kind="derivation", paper="569/418/290/186M",
             ours="/".join(res_rows), holds=bool(res_ok), must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Why "≈ α²".** The 1×1 convs (95 % of the mult-adds) have α·M inputs and α·N outputs, so they
# scale with α²; the first conv, the depthwise convs and the fc have only one thinned side and scale
# with α. So `MACs(α) = α·(rest) + α²·(1×1)` — a little more than α² of the full cost. Every layer's
# cost scales with its map area, so ρ enters as ρ² exactly (up to rounding of map sizes).

# %% slideshow={"slide_type": "fragment"}
base_cost = sn.cost_by_kind(mb1, (3, 224, 224))
one_macs = base_cost.find(kind="1×1 conv").macs / 1e6
rest_macs = sum(r.macs for r in base_cost) / 1e6 - one_macs
alpha_pred = {a: a * rest_macs + a * a * one_macs for a in width_macs}
alpha_ok = all(abs(alpha_pred[a] - width_macs[a][0]) / width_macs[a][0] < 0.01 for a in width_macs)
rho_ok = all(abs(res_macs[s][0] / res_macs[224][0] - (s / 224) ** 2) < 0.01 for s in res_macs)
checks.claim(CH, "MobileNet's mult-adds scale with ≈ α² (α·rest + α²·1×1 convs) and with ρ²", kind="derivation",
             paper="cost ∝ α² (roughly) and ∝ ρ²",
             ours=", ".join(f"α={a}: {width_macs[a][0] / width_macs[1.0][0]:.3f} (α² {a * a:.3f})" for a in (0.75, 0.5, 0.25))
                  + "; " + ", ".join(f"ρ={s}/224: {res_macs[s][0] / res_macs[224][0]:.3f} (ρ² {(s / 224) ** 2:.3f})"
                                    for s in (192, 160, 128)),
             holds=bool(alpha_ok and rho_ok), must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Separable against full convs, thinner against shallower
#
# The paper's Tables 4 and 6 (ImageNet top-1, quoted): the same network with regular 3×3 convs
# ("Conv MobileNet") reaches **71.7 % at 4,866M mult-adds and 29.3M parameters**, MobileNet **70.6 % at
# 569M and 4.2M** — 1 point for 8.6× less compute. At equal cost, **thinner beats shallower**:
# 0.75-MobileNet (68.4 %, 325M, 2.6M) against MobileNet without its five 14×14×512 layers (65.3 %,
# 307M, 2.9M). We build both variants (`sn.mobilenet_v1(separable=False)`, `shallow=True`) on the
# meta device and count them.

# %% slideshow={"slide_type": "subslide"}
variants = {}
for label, kw in (("full conv", dict(separable=False)), ("shallower", dict(shallow=True))):
    with torch.device("meta"):
        net = sn.mobilenet_v1(1.0, **kw)
    rep_ = sn.cost_by_kind(net, (3, 224, 224))
    variants[label] = (sum(r.params for r in rep_) / 1e6, sum(r.macs for r in rep_) / 1e6)
    print(f"{label:<10}: {variants[label][0]:.2f}M parameters, {variants[label][1]:.0f}M mult-adds")
(fp, fm), (sp, sm) = variants["full conv"], variants["shallower"]
checks.claim(CH, "full-conv MobileNet: 4,866M mult-adds and 29.3M parameters", kind="derivation", paper="4866M, 29.3M",
             ours=f"{fm:.0f}M, {fp:.1f}M", holds=abs(fm - 4866) <= 2 and abs(fp - 29.3) <= 0.1, must_hold=True)
checks.claim(CH, "shallower MobileNet (five 14×14×512 layers removed): 307M mult-adds, 2.9M parameters",
             kind="derivation", paper="307M, 2.9M", ours=f"{sm:.0f}M, {sp:.1f}M",
             holds=abs(sm - 307) <= 1 and abs(sp - 2.9) <= 0.1, must_hold=True)

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot([m for m, _ in width_macs.values()], [t for _, t in width_macs.values()], "o-", label="width α = 1 … 0.25")
ax.plot([m for m, _ in res_macs.values()], [t for _, t in res_macs.values()], "s-", label="resolution 224 … 128")
for label, (macs, top1) in (("full conv", (fm, 71.7)), ("shallower", (sm, 65.3))):
    ax.scatter(macs, top1, color="tab:red", zorder=3)
    ax.annotate(label, (macs, top1), fontsize=8, xytext=(-20, -12), textcoords="offset points")

# %% slideshow={"slide_type": "subslide"}
ax.set_xscale("log")
ax.set_xlabel("mult-adds (millions; counted by us)")
ax.set_ylabel("ImageNet top-1 (%; paper)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Thinning and lowering the resolution trade accuracy for compute smoothly, and the two curves lie
# close together: read off which knob costs less accuracy at your budget. **Training detail:** the paper puts little or no weight
# decay (L2) on the depthwise filters — they have so few parameters that there is little to
# regularise (share computed below). **Against SqueezeNet**, the paper says 0.5-MobileNet-160 gets
# 60.2 % against SqueezeNet's 57.5 % with **22× fewer mult-adds** (76M against 1,700M): we count both.

# %% slideshow={"slide_type": "fragment"}
print(f"depthwise filters: {100 * base_cost.find(kind='depthwise').params_share:.2f}% of MobileNet's weights")
with torch.device("meta"):
    sq_meta = sn.squeezenet("1_0")
sq_macs = measure.count_macs(sq_meta, (3, 227, 227)) / 1e6
half160 = measure.count_macs(sn.mobilenet_v1(0.5), (3, 160, 160)) / 1e6
checks.claim(CH, "0.5-MobileNet-160 needs 22× fewer mult-adds than SqueezeNet", kind="derivation",
             paper="76M vs 1,700M: 22×", ours=f"{half160:.0f}M vs {sq_macs:.0f}M MACs (SqueezeNet v1.0 at 227 px): "
                                           f"{sq_macs / half160:.1f}×",
             holds=abs(sq_macs / half160 - 22) / 22 <= 0.1,
             why=f"the quoted 1,700M for SqueezeNet is ≈ 2× its {sq_macs:.0f}M MACs, as if each multiply and each add were counted")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Where the cost sits.** The paper's Table 2: the 1×1 convs hold 94.86 % of the mult-adds and
# 74.59 % of the parameters (the fc 24.33 %). Weights only, as in the paper.

# %% slideshow={"slide_type": "fragment"}
report = sn.cost_by_kind(mb1, (3, 224, 224))
print(report.table())
one = report.find(kind="1×1 conv")
checks.claim(CH, "MobileNet: 1×1 convs hold 94.86% of mult-adds and 74.59% of parameters",
             kind="derivation", paper="94.86% / 74.59%", ours=f"{100 * one.macs_share:.2f}% / {100 * one.params_share:.2f}%",
             holds=round(100 * one.macs_share, 2) == 94.86 and round(100 * one.params_share, 2) == 74.59,
             must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Do the savings hold in seconds?
#
# The tables count mult-adds. Chapter 03 found that fewer MACs often do *not* mean proportionally
# less time (depthwise convs read a lot of memory for little arithmetic). We time one image (batch 1,
# one thread, this CPU; the best of three short medians, `sn.robust_latency`) for every α and ρ and compare the latency ratio with the MACs ratio, both against
# 1.0-MobileNet-224. Criterion, fixed before measuring: the saving in seconds is at least two thirds
# of the saving in MACs (latency ratio ≤ 1.5 × MACs ratio) for every setting. This criterion is
# **ours** (`kind="course"`): the paper claims only that the mult-adds scale with α² and ρ² (checked
# above), not that the seconds do.

# %% slideshow={"slide_type": "subslide"}
RUN = config.pick(quick=0.2, full=0.5, dry=0.02)
settings = [(1.0, 224), (0.75, 224), (0.5, 224), (0.25, 224), (1.0, 192), (1.0, 160), (1.0, 128)]
speed = {}
for alpha, size in settings:
    s = sn.mobilenet_state(alpha, size, min_run_time=RUN)
    speed[(alpha, size)] = s
    print(f"{alpha}-MobileNet-{size}: MACs {s.macs_ratio:.3f}×, latency {s.latency_ratio:.3f}× "
          f"({1e3 * s.latency:.1f} ms) → seconds saved / MACs saved: "
          f"{(1 - s.latency_ratio) / max(1 - s.macs_ratio, 1e-9):.2f}" if (alpha, size) != (1.0, 224) else
          f"1.0-MobileNet-224: {s.macs / 1e6:.0f}M MACs, {1e3 * s.latency:.1f} ms")
held = all(s.latency_ratio <= 1.5 * s.macs_ratio for s in speed.values())
worst = max(speed.values(), key=lambda s: s.latency_ratio / s.macs_ratio)
checks.claim(CH, "our check: MobileNet's α and ρ savings in MACs show up in CPU latency (latency ratio ≤ 1.5× the MACs ratio)",
             kind="course", paper="not a paper claim (the paper: mult-adds ∝ α², ∝ ρ²); our criterion",
             ours=f"worst {worst.alpha}-{worst.resolution}: latency {worst.latency_ratio:.2f}× vs MACs {worst.macs_ratio:.2f}×",
             holds=held, why="" if held else "thin layers keep per-layer overheads, and depthwise convs are "
                                             "memory-bound on this CPU (low arithmetic intensity)")

# %% slideshow={"slide_type": "subslide"}
fig, ax = plt.subplots(figsize=(6, 3.4))
for (alpha, size), s in speed.items():
    ax.scatter(s.macs_ratio, s.latency_ratio, color="tab:blue" if size == 224 else "tab:orange")
    ax.annotate(f"{alpha}-{size}", (s.macs_ratio, s.latency_ratio), fontsize=8, xytext=(3, 3),
                textcoords="offset points")
ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="latency ∝ MACs")
ax.set_xlabel("MACs / MACs of 1.0-MobileNet-224")
ax.set_ylabel("latency ratio (CPU, batch 1, 1 thread)")
ax.set_title("blue: width α, orange: resolution ρ", fontsize=9)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Read the plot: points above the dashed line save less time than MACs. Thinning (α) leaves the
# per-layer overheads and the memory-bound depthwise convs, so small α typically saves less in
# seconds than in MACs; shrinking the input (ρ) keeps the layers' shapes and usually tracks MACs more
# closely. The verdict above is what this machine measured.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · The IGC family
#
# **ShuffleNet** (Zhang et al., 2018) stacks 1×1 *group* convs; to let the groups talk, it shuffles
# the channels between them: reshape to (groups, C / groups), transpose, flatten. That is exactly
# IGC's interleaving permutation (chapter 06). **MobileNetV2** (Sandler et al., 2018) uses the
# *inverted residual*: 1×1 expansion (×t) → 3×3 depthwise → *linear* 1×1 projection, + residual —
# IGCV3 with a single group (dense 1×1 convs).

# %% slideshow={"slide_type": "subslide"}
x = torch.randn(2, 12, 5, 5)
shuffled = sn.channel_shuffle(x, 3)
same = torch.equal(shuffled, nn.ChannelShuffle(3)(x)) and torch.equal(shuffled, x[:, channels.interleave(3, 4)])
checks.claim(CH, "channel shuffle = torch.nn.ChannelShuffle = IGC's interleave", kind="derivation", paper="ShuffleNet §3.1 / IGCV1",
             ours="bit-identical" if same else "differs", holds=same, must_hold=True)

ir = sn.InvertedResidual(16, 16, 1, expand_ratio=6)
igcv3 = igc.IGCV3(16, expansion=6, groups=1)
ir_w = sum(m.weight.numel() for m in ir.modules() if isinstance(m, nn.Conv2d))
igc_w = sum(m.weight.numel() for m in igcv3.modules() if isinstance(m, nn.Conv2d))
print(f"inverted residual (16, t=6): {ir_w:,} conv weights; IGCV3(16, t=6, 1 group): {igc_w:,}; "
      f"connectivity {channels.classify([m for m in ir.modules() if isinstance(m, nn.Conv2d)])}")
assert ir_w == igc_w
v2_ours, v2_ref = measure.count_params(sn.mobilenet_v2()), measure.count_params(torchvision.models.mobilenet_v2(weights=None))
checks.claim(CH, "MobileNetV2 parameters equal torchvision's", kind="derivation", paper=f"torchvision mobilenet_v2: {v2_ref:,}",
             ours=f"{v2_ours:,}", holds=v2_ours == v2_ref, must_hold=True)

# %% [markdown]
# **Bad input gets a clear message**, never a shape error from deep inside torch:

# %% slideshow={"slide_type": "subslide"}
for call in (lambda: sn.mobilenet_v1(alpha=0), lambda: sn.channel_shuffle(torch.randn(1, 6, 2, 2), 4),
             lambda: sn.Fire(64, 128, 64, 64), lambda: sn.mobilenet_v1(0.25)(torch.randn(1, 3, 16, 16)),
             lambda: sn.squeezenet("1_0")(torch.randn(1, 3, 16, 16))):
    try:
        call()
    except (ValueError, TypeError) as err:
        print(f"{type(err).__name__}: {err}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Every block in the channel-connectivity explorer
#
# Chapter 06's explorer with this chapter's presets added (`sn.PRESETS`): the Fire module (C = expand
# width, L = squeeze width), the SqueezeNext block, the depthwise separable conv, two group convs with
# a channel shuffle (L groups) and the inverted residual (M = expansion t). Each verdict is computed
# from the path counts:

# %%
for preset, help_text in sn.PRESET_HELP.items():
    s = channels.connectivity_state(preset, C=16, L=4, M=4, presets=sn.PRESETS)
    print(f"{preset:>20}: {s.verdict:<12} {s.params:>5} weights = {s.params_ratio:.2f}× a regular 3×3 "
          f"conv of width 16  ({help_text})")
try:
    channels.connectivity_state("fire", C=16, L=16, presets=sn.PRESETS)
except ValueError as err:
    print("invalid setting →", err)

# %%
connectivity = sn.connectivity_explorer("fire", C=16, L=4, M=4)
connectivity

# %% [markdown]
# Try: `fire` with L = 2 … 15 (more squeeze channels = more paths, more weights); `channel shuffle`
# with C = 16 and L = 4 (strict: exactly one path) versus L = 2 (loose); `inverted residual` with M = 1
# … 6; chapter 06's `no shuffle` preset is still in the list.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · The MobileNet explorer
#
# Pick α and the input resolution: parameters, mult-adds, where they sit per layer kind, and the
# measured CPU latency (batch 1) against 1.0-MobileNet-224.

# %%
mobilenet = sn.mobilenet_explorer(alpha=0.5, resolution=160)
mobilenet

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Experiment: small networks against ResNet-20
#
# Four small networks adapted to 28×28 / 32×32 inputs (`sn.squeezenet_small`, `sn.squeezenext_small`,
# `sn.mobilenet_small`, `sn.mobilenetv2_small`: stride-1 stems, fewer channels) against chapter 07's
# ResNet-20, all trained with the same recipe. **Quick**: the shipped Fashion-MNIST checkpoints — the
# course's fast recipe on all 60,000 training images for 10 epochs (batch 256, one-cycle to lr 0.2,
# label smoothing 0.1, flips, bf16 autocast; `python -m course_lib train --recipe NAME`, the test
# accuracy after every epoch in the manifest) — evaluated here on all 10,000 test images as their
# recipe tests them (each image and its mirror image vote). **Full**: CIFAR-10 recipes (60 epochs on
# all 50,000 images), trained once by this cell and cached. Latency: one image, one thread, this CPU.

# %% slideshow={"slide_type": "subslide"}
EXP = config.pick(
    quick=dict(dataset="fashion-mnist", recipes={"SqueezeNet": "squeezenet-small-fmnist",
               "SqueezeNext": "squeezenext-small-fmnist", "MobileNet": "mobilenet-small-fmnist",
               "MobileNetV2": "mobilenetv2-small-fmnist", "ResNet-20": "resnet20-fmnist"},
               train_subset=None, test_subset=None),
    full=dict(dataset="cifar10", recipes={"SqueezeNet": "squeezenet-small-cifar10",
              "SqueezeNext": "squeezenext-small-cifar10", "MobileNet": "mobilenet-small-cifar10",
              "MobileNetV2": "mobilenetv2-small-cifar10", "ResNet-20": "resnet20-cifar10"},
              train_subset=None, test_subset=None))
info = data.dataset_info(EXP["dataset"])
shape = (info.channels, info.size, info.size)
DEVICE = config.device()
train_data, test_data = data.loaders(EXP["dataset"], 128, train_subset=EXP["train_subset"],
                                     test_subset=EXP["test_subset"], augment=config.profile() == "full", device=DEVICE)
results, t = {}, time.perf_counter()
for name, recipe in EXP["recipes"].items():
    # quick: the shipped checkpoint; full: trained once here, then cached
    model, _ = recipes.trained_model(recipe, train_data, test_data, config.data_dir() / "checkpoints-full",
                                     device=DEVICE)
    model = model.to("cpu").eval()
    predicted, labels = train.predict(model, test_data, "cpu", tta=True)  # per test image, for the paired claim
    correct = predicted == labels.cpu()
    results[name] = {"params": measure.count_params(model), "macs": measure.count_macs(model, shape),
                     "acc": correct.float().mean().item(), "correct": correct,
                     "latency": sn.robust_latency(model, torch.randn(1, *shape), min_run_time=RUN)}
n_test = sum(len(y) for _, y in test_data)

# %% slideshow={"slide_type": "subslide"}
print(f"({time.perf_counter() - t:.0f} s)\n{'network':<13}{'params':>10}{'MACs':>10}{'latency':>10}{'accuracy (95% interval)':>26}")

# %%
for name, r in results.items():
    low, high = stats.accuracy_interval(r["acc"], n_test)
    print(f"{name:<13}{r['params']:>10,}{r['macs'] / 1e6:>9.2f}M{1e3 * r['latency']:>8.2f}ms"
          f"{100 * r['acc']:>9.2f}% ({100 * low:.1f}–{100 * high:.1f}%)")

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, r in results.items():
    ax.scatter(r["macs"] / 1e6, 100 * r["acc"], s=20 + r["params"] / 2000, alpha=0.7)
    ax.annotate(f"{name}\n{r['params'] / 1e3:.0f}K params, {1e3 * r['latency']:.1f} ms", (r["macs"] / 1e6, 100 * r["acc"]),
                fontsize=7, xytext=(4, -4), textcoords="offset points")
ax.set_xscale("log")
ax.set_xlabel(f"MACs per {info.size}×{info.size} image (millions, log)")
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"{EXP['dataset']}: accuracy vs MACs (marker size ∝ parameters)", fontsize=9)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim check at our scale.** The papers' promise is near-baseline accuracy at a fraction of the
# parameters and compute. Criterion, fixed in advance: some small network is within 2 points of
# ResNet-20's accuracy with at most half its parameters and a quarter of its MACs. The points lost
# are a paired 95% interval on the same test images: *holds* when a network's whole interval is at
# most 2 points, *does not hold* when every cheap enough network's interval is above, *within
# noise* otherwise. We also report whether it is faster in seconds.

# %% slideshow={"slide_type": "subslide"}
base = results["ResNet-20"]
small = {n: r for n, r in results.items() if n != "ResNet-20"}
cheap = [n for n, r in small.items() if r["params"] <= base["params"] / 2 and r["macs"] <= base["macs"] / 4]
lost = {}  # network → (low, high): points lost against ResNet-20, paired 95% interval
for n in cheap:
    low, high = stats.compare(small[n]["correct"], base["correct"]).difference_interval()
    lost[n] = (-100 * high, -100 * low)
verdicts = {n: stats.bound_verdict(*lost[n], 2.0) for n in cheap}
verdict = next((v for v in ("holds", "within noise") if v in verdicts.values()), "does not hold")
best = max(cheap or small, key=lambda n: small[n]["acc"])
b = small[best]
checks.claim(CH, f"a small network is within 2 points of ResNet-20 at ≤ 1/2 the parameters and ≤ 1/4 the MACs ({config.profile()})",
             paper="SqueezeNet: AlexNet accuracy at 1/50 of the parameters",
             ours=f"most accurate cheap enough: {best}, {100 * b['acc']:.1f}% vs {100 * base['acc']:.1f}% at "
                  f"{b['params'] / base['params']:.2f}× params, {b['macs'] / base['macs']:.2f}× MACs; points lost "
                  "(95%, paired, " + f"{len(base['correct']):,} images): "
                  + ("; ".join(f"{n} {lo:+.1f} to {hi:+.1f}" for n, (lo, hi) in lost.items()) or "no network cheap enough"),
             holds=verdict == "holds", within_noise=verdict == "within noise")
for n, r in small.items():
    print(f"{n:<12} {r['macs'] / base['macs']:.2f}× the MACs of ResNet-20, {r['latency'] / base['latency']:.2f}× its latency")
chance = 1 / len(info.classes)
assert all(r["acc"] > chance + 0.3 for r in results.values()) or config.dry_run(), results

# %%
per_mac = {n: (r["latency"] / base["latency"]) / (r["macs"] / base["macs"]) for n, r in small.items()}
print("time per MAC relative to ResNet-20:", ", ".join(f"{n} {v:.1f}×" for n, v in per_mac.items()))

# %% [markdown] slideshow={"slide_type": "subslide"}
# All five nets are trained alike (10 epochs on all 60,000 images) and land within about a point of
# each other, near the 92–95 % that these architectures reach on Fashion-MNIST: the small nets give
# up little accuracy for their parameters and MACs. Look at the time per MAC: when it is well above
# 1×, a small network saves far less in seconds than in MACs — depthwise and 1×1 layers on small maps
# do little arithmetic per byte moved, and many thin layers each pay a fixed overhead. That is the
# same lesson as the MobileNet latency plot, and the reason SqueezeNext was designed with a hardware
# simulator rather than a MAC count.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · Exercises
#
# Three exercises: derive, derive-then-predict, build. The checkers live in
# `course_lib.exercises.ch09`; each refuses an answer that calls the library's own version.
#
# ### Exercise 1 — parameters of a Fire module (derive)
# Count the weights **and biases** of `Fire(in_channels, squeeze, expand1x1, expand3x3)`: a 1×1
# squeeze conv, a 1×1 expand conv and a 3×3 expand conv (padding 1), every conv with a bias. (A
# branch of width 0 is absent.)

# %%
def my_fire_params(in_channels, squeeze, expand1x1, expand3x3):
    # BEGIN SOLUTION
    squeeze_p = in_channels * squeeze + squeeze
    expand1_p = squeeze * expand1x1 + expand1x1
    expand3_p = squeeze * expand3x3 * 9 + expand3x3
    return squeeze_p + expand1_p + expand3_p
    # END SOLUTION


# %%
ex.check_fire_params(my_fire_params)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 2 — where a thinned separable layer spends its mult-adds (derive, then predict)
# A 3×3 depthwise separable layer from M to N channels on a D_F × D_F map (padding 1, stride 1) is
# thinned to `int(α·M)` → `int(α·N)` channels on a `round(ρ·D_F)` map. Return the **fraction of its
# mult-adds spent in the depthwise conv**. Simplify before you code: which of M, N, D_F, α, ρ does
# the fraction depend on? The checker measures real layers. Then predict, before running the cell
# after it: what share of MobileNet's 512→512 layers is depthwise, and does halving α change it much?

# %%
def my_depthwise_share(M, N, D_F, alpha, rho):
    # BEGIN SOLUTION
    return 9 / (9 + int(alpha * N))          # 9·m·d² / (9·m·d² + m·n·d²): M, D_F and ρ cancel
    # END SOLUTION


# %%
ex.check_depthwise_share(my_depthwise_share)
for a in (1.0, 0.5, 0.25):
    print(f"α = {a}: a 512→512 layer spends {100 * my_depthwise_share(512, 512, 14, a, 1.0):.1f}% of its "
          "mult-adds in the depthwise conv")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 3 — write the channel shuffle (build)
# Given `x` of shape (N, C, H, W) and `groups` dividing C, return ShuffleNet's channel shuffle (the
# checker compares with `torch.nn.ChannelShuffle`, and refuses an answer that calls it — or the
# library's `sn.channel_shuffle`, or chapter 06's `igc.interleave`).

# %%
def my_channel_shuffle(x, groups):
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
    # END SOLUTION


# %%
ex.check_channel_shuffle(my_channel_shuffle)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · Summary of what we measured

# %%
print(f"{'claim':<58} measured")
print(f"{'SqueezeNet v1.0 / v1.1 parameters (= torchvision)':<58} {counts['1_0']:,} / {counts['1_1']:,}")
print(f"{'SqueezeNet vs AlexNet parameters':<58} {ratio_sq:.1f}× fewer (paper 50×)")
for bits, paper in ((6, "0.47 MB, 510×"), (8, "0.66 MB, 363×")):
    p = dc[bits]["projected"]
    print(f"{f'SqueezeNet v1.0 + {bits}-bit DC (trained bits per weight)':<58} {p / MiB:.3f} MiB = "
          f"{alexnet_bytes / p:.0f}× < AlexNet (paper {paper})")
print(f"{'SqueezeNet v1.0 + 6-bit DC, fresh init (real file)':<58} {sq_bytes / MiB:.3f} MiB")
print(f"{'depthwise vs regular 3×3 (14×14×512): MACs per byte':<58} {intensity['depthwise 3×3']:.2f} vs "
      f"{intensity['regular 3×3']:.1f}; {rate['depthwise 3×3']:.1f} vs {rate['regular 3×3']:.1f} GMAC/s")
print(f"{'full-conv / shallower MobileNet (mult-adds, params)':<58} {fm:.0f}M, {fp:.1f}M / {sm:.0f}M, {sp:.1f}M")
print(f"{'1.0-SqNxt-23 parameters':<58} {n23 / 1e6:.3f}M (paper 0.72M), {alexnet_params / n23:.0f}× < AlexNet (paper 84×)")
print(f"{'MobileNet α = 1/.75/.5/.25 (params/mult-adds)':<58} {', '.join(width_rows)}")
print(f"{'MobileNet ρ: 224/192/160/128 mult-adds':<58} {'/'.join(res_rows)}")
print(f"{'MobileNet 1×1 share of mult-adds / parameters':<58} {100 * one.macs_share:.2f}% / {100 * one.params_share:.2f}%")
print(f"{'MobileNet latency vs MACs, worst setting (our check)':<58} {worst.alpha}-{worst.resolution}: {worst.latency_ratio:.2f}× vs {worst.macs_ratio:.2f}×")
for name, r in results.items():
    print(f"{name + ' (' + EXP['dataset'] + ')':<58} {100 * r['acc']:.1f}%, {r['params']:,} params, "
          f"{r['macs'] / 1e6:.1f}M MACs, {1e3 * r['latency']:.2f} ms")
print(f"\nnotebook wall time: {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
#
# * F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer. *SqueezeNet:
#   AlexNet-level accuracy with 50× fewer parameters and < 0.5 MB model size.* arXiv 1602.07360, 2016.
# * A. Gholami, K. Kwon, B. Wu, Z. Tai, X. Yue, P. Jin, S. Zhao, K. Keutzer. *SqueezeNext:
#   Hardware-Aware Neural Network Design.* CVPR Workshops 2018.
# * A. G. Howard et al. *MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
#   Applications.* arXiv 1704.04861, 2017.
# * X. Zhang, X. Zhou, M. Lin, J. Sun. *ShuffleNet.* CVPR 2018 · M. Sandler, A. Howard, M. Zhu,
#   A. Zhmoginov, L.-C. Chen. *MobileNetV2: Inverted Residuals and Linear Bottlenecks.* CVPR 2018.
# * S. Han, H. Mao, W. J. Dally. *Deep Compression.* ICLR 2016 (chapter 05) · K. Sun et al. *IGCV3.*
#   BMVC 2018 (chapter 06).
