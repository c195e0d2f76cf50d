# ---
# jupyter:
#   jupytext:
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
# # 02 · Low precision: fewer bits for every entry of the weight matrix
#
# A convolution is a matrix–vector product (chapter 01). This chapter keeps the matrix's shape and
# makes each **entry** cheaper: 1 bit (binary), ~1.6 bits (ternary), 4–8 bits (integers, fixed
# point) or a few bits of an index into a shared codebook (k-means weight sharing).
#
# **You will**
# 1. binarize and ternarize weights by hand, and see why ±1 weights turn multiplies into additions
#    (and ±1 weights *and* activations into XNOR + popcount);
# 2. train ternary weights with learned scales (TTQ) through a scaled straight-through gradient;
# 3. quantize to integers exactly like PyTorch (`torch.fake_quantize_per_tensor_affine` / `_per_channel_affine`);
# 4. choose per-layer fixed-point formats (dynamic fixed point) by searching for the least error,
#    layer by layer, and compare them with the range rule and with one global format;
# 5. share weights with k-means, fine-tune the centroids, and compute with 2^b multiplies per output;
# 6. measure accuracy against **real file bytes** for all of them on a shipped LeNet-5.

# %% slideshow={"slide_type": "skip"}
import copy
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

from course_lib import checkpoints, checks, config, data, measure, models, quant, recipes, resnets, stats, train
from course_lib.exercises import ch02 as ex

print(config.describe())
config.seed_everything(0)
T0 = time.perf_counter()

TEST_SUBSET = config.pick(quick=1000, full=None)          # images used to score each compressed model
FINETUNE_SUBSET = config.pick(quick=2048, full=None)      # images used for the short fine-tuning runs
FINETUNE_EPOCHS = config.pick(quick=1, full=3)
DEVICE = config.device()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The idea from scratch
#
# ### Binary weights: ±1 and one scale per output channel
# BinaryConnect keeps `sign(w)`; XNOR-Net multiplies it by α = mean|w| of the output channel,
# which is the α minimising ‖w − α·sign(w)‖². A dot product with a ±1 row needs no multiplies:
# add the inputs where the weight is +1, subtract those where it is −1, multiply once by α.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** binary weights replace multiplies by adds — why is the speed-up not automatic on a CPU?

# %%
w = torch.tensor([[0.40, -0.10, 0.25, -0.70], [0.05, 0.02, -0.03, 0.10]])
signs = torch.where(w >= 0, 1.0, -1.0)
alpha = w.abs().mean(dim=1, keepdim=True)
by_hand = alpha * signs
print("by hand:\n", by_hand)
assert torch.allclose(by_hand, quant.binarize(w, "channel"))

x = torch.tensor([1.0, 2.0, 3.0, 4.0])
value, ops = quant.binary_dot(signs[0], x, alpha=alpha[0].item())
print(f"row 0 · x = {value:.3f} (torch: {torch.dot(by_hand[0], x):.3f}) with {ops}")
print("a float dot product of length 4 costs 4 multiplies + 3 additions")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Binary activations too: XNOR and popcount (XNOR-Net)
# XNOR-Net also binarizes the **inputs** of a convolution (with one more scale, K, per position).
# With ±1 on both sides, a dot product needs no arithmetic at all: pack the signs into the bits of
# a word, XOR the two words (1 where the signs differ) and count the ones: a·b = n − 2·popcount(a ⊕ b).
# A 64-bit word holds 64 products, which is where the paper's reported 58× faster convolutions
# (and 32× smaller weights) on a CPU come from.

# %% slideshow={"slide_type": "fragment"}
a = torch.where(torch.randn(50) >= 0, 1.0, -1.0)
b = torch.where(torch.randn(50) >= 0, 1.0, -1.0)
a_bits, b_bits = quant.pack_signs(a), quant.pack_signs(b)
differ = bin(a_bits ^ b_bits).count("1")                       # popcount of the XOR, by hand
value, ops = quant.xnor_dot(a_bits, b_bits, len(a))
print(f"±1 vectors of length {len(a)}: {differ} signs differ → {len(a)} − 2·{differ} = {len(a) - 2 * differ}; "
      f"torch.dot = {torch.dot(a, b).item():.0f}; course_lib: {value} with {ops}")
checks.claim("02", "XNOR-Net: a ±1 dot product is n − 2·popcount(XOR), no multiply",
             kind="derivation", paper="exact (XNOR + bit-count)", ours=f"{value} = torch.dot {torch.dot(a, b).item():.0f}, 0 multiplies",
             holds=value == len(a) - 2 * differ == torch.dot(a, b).item() and ops["multiplies"] == 0, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Ternary weights: a threshold, then two learned scales (TTQ)
# TWN: Δ = 0.7·mean|w|, weights above Δ → +α, below −Δ → −α, the rest → 0.
# **Trained Ternary Quantization** (Zhu et al. 2017) scales the latent weights w̃ to [−1, 1],
# uses Δ = t·max|w̃| (t = 0.05) and learns *two* scales per layer: w_t = +Wp, 0 or −Wn.
# Backward (the paper's eqs. 7–8): Wp collects the gradients of the weights it stands for,
# ∂L/∂Wp = Σ_{i: w̃_i > Δ} ∂L/∂w_t(i), and Wn those of the negative ones — the paper prints
# ∂L/∂Wn = Σ_{i: w̃_i < −Δ} ∂L/∂w_t(i) and leaves the sign that w_t = −Wn implies to the reader
# (exercise 1). The latent weights get a *scaled* straight-through gradient: Wp·∂L/∂w_t above Δ,
# 1·∂L/∂w_t in between, Wn·∂L/∂w_t below −Δ, so the float weights keep learning where they may
# change sign.

# %%
latent = torch.tensor([0.9, 0.03, -0.02, -0.6, 0.3], requires_grad=True)
wp, wn = torch.tensor(0.8, requires_grad=True), torch.tensor(0.5, requires_grad=True)
delta = 0.05 * latent.abs().max().item()
by_hand = torch.where(latent > delta, wp, torch.where(latent < -delta, -wn, torch.zeros(())))
ternary = quant.ttq_ternarize(latent, wp, wn, t=0.05)
print("Δ =", delta, " ternary =", ternary.tolist())
assert torch.allclose(by_hand, ternary)

upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])   # pretend ∂L/∂w_t
(ternary * upstream).sum().backward()
print("∂L/∂Wp =", wp.grad.item(), "(= 1 + 5, the gradients of the two weights above Δ)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Integers: scale, zero point, round, clamp
# Affine quantization stores q = clamp(round(x/s) + z, qmin, qmax) and reads back (q − z)·s. Ours
# must agree with PyTorch's quantized tensors bit for bit.

# %%
x = torch.randn(6, 16) * torch.linspace(0.1, 2, 6)[:, None]
scale, zp = quant.linear_qparams(x, bits=8)                     # per tensor
q = quant.quantize_linear(x, scale, zp, bits=8)
scale_c, zp_c = quant.linear_qparams(x, bits=8, axis=0)         # per output channel
q_c = quant.quantize_linear(x, scale_c, zp_c, bits=8, axis=0)
torch_q = quant.torch_codes(x, scale, zp, bits=8)              # via torch.fake_quantize_per_tensor_affine
torch_q_c = quant.torch_codes(x, scale_c, zp_c, bits=8, axis=0)
assert torch.equal(q, torch_q) and torch.equal(q_c, torch_q_c)
err_t = (quant.dequantize_linear(q, scale, zp) - x).abs().mean().item()
err_c = (quant.dequantize_linear(q_c, scale_c, zp_c, axis=0) - x).abs().mean().item()
print(f"identical to torch. mean |error|: per tensor {err_t:.4f}, per channel {err_c:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Fixed point: an integer and a binary point
# A `bits`-bit fixed-point number with fractional length fl is q·2^(−fl), q a signed `bits`-bit
# integer: the grid step is 2^(−fl) and the range [−2^(bits−1), 2^(bits−1) − 1]·2^(−fl). A longer
# fl rounds more finely but holds a smaller range. Qiu et al. give every layer its own fl for its
# weights and for its feature maps (*dynamic* fixed point) and choose it by the error it causes,
# fl = argmin Σ|x − fixed(x, fl)|. From scratch: the **range rule** (the longest fl that still holds
# every value) and the **error-minimising search** around it.

# %% slideshow={"slide_type": "subslide"}
def fixed(x, bits, fl):
    q = torch.clamp(torch.round(x * 2 ** fl), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
    return q / 2 ** fl


def range_rule(x, bits):                       # longest fl with max and min inside the range
    fl = bits
    while x.max() > (2 ** (bits - 1) - 1) / 2 ** fl or x.min() < -2 ** (bits - 1) / 2 ** fl:
        fl -= 1
    return fl


def search(x, bits):                           # Qiu et al.: the fl with the least Σ|error|
    return min(range(range_rule(x, bits) - 1, range_rule(x, bits) + 5),
               key=lambda fl: (fixed(x, bits, fl) - x).abs().sum().item())


x = torch.tensor([0.71, -0.33, 0.05, 1.2])
fl = range_rule(x, 8)                          # 1.2 < 127·2^-6 = 1.98, but not < 127·2^-7 = 0.99
print("fl =", fl, "→", fixed(x, 8, fl).tolist())
assert fl == quant.range_frac_len(x, 8) and torch.equal(fixed(x, 8, fl), quant.to_fixed_point(x, 8, fl))
# many small values and one outlier: saturating the outlier buys 2 bits of resolution for the rest
x = torch.cat([torch.randn(500) * 0.05, torch.tensor([1.5])])
for f in range(range_rule(x, 6) - 1, range_rule(x, 6) + 5):
    print(f"6 bits, fl = {f}: range ±{2 ** (6 - 1) / 2 ** f:.3f}, step {2 ** -f:.4f}, "
          f"Σ|error| = {(fixed(x, 6, f) - x).abs().sum().item():.3f}")
print("range rule:", range_rule(x, 6), " error-minimising search:", search(x, 6))
assert search(x, 6) == quant.best_frac_len(x, 6) > range_rule(x, 6)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### k-means weight sharing: store an index per weight and a small codebook
# Weights that are close share one value: the seed article's 2.91, 3.06 and 3.21 all become the
# centroid 3.06. Deep Compression starts the centroids evenly spaced between min and max.

# %%
w = torch.tensor([2.91, 3.06, 3.21, -1.10, -0.90, 0.02, -0.03, 1.50])
codebook, indices = quant.kmeans_codebook(w, bits=2, init="linear")
print("codebook:", [round(c, 3) for c in codebook.tolist()], " indices:", indices.tolist())
print("shared weights:", [round(v, 3) for v in codebook[indices].tolist()])
assert len(set(indices[:3].tolist())) == 1 and abs(codebook[indices[0]].item() - 3.06) < 1e-6

# %% [markdown]
# Fine-tuning the shared weights: the gradient of a centroid is the **sum** of the gradients of its
# cluster. `share_weights` puts `weight = codebook[indices]` behind a `torch.nn.utils.parametrize`
# parametrization, so autograd's indexing backward does exactly that sum.

# %%
layer = torch.nn.Linear(8, 4)
quant.share_weights(layer, bits=2)
codebook, indices = quant.codebooks(layer)[""]
x = torch.randn(5, 8)
plain = codebook[indices].clone().requires_grad_(True)            # the same weights, unshared
torch.nn.functional.linear(x, plain, layer.bias.detach()).square().sum().backward()
summed = torch.stack([plain.grad[indices == k].sum() for k in range(len(codebook))])
layer(x).square().sum().backward()
print("sum of each cluster's gradients:", summed.numpy().round(3))
print("centroid gradients from autograd:", layer.parametrizations.weight[0].codebook.grad.numpy().round(3))
assert torch.allclose(summed, layer.parametrizations.weight[0].codebook.grad, atol=1e-5)

# %% [markdown] slideshow={"slide_type": "subslide"}
# Shared weights save **multiplies** as well as bytes. A row of n weights that take only 2^b values
# needs n multiplies as a float dot product, but only 2^b after grouping: first add up the inputs
# that share a centroid (s_k = Σ_{i: idx_i = k} x_i, additions only), then multiply each sum by its
# centroid once. For fc1 of LeNet-5 at 5 bits: 32 multiplies per output instead of 800.

# %% slideshow={"slide_type": "fragment"}
codebook, indices = quant.kmeans_codebook(torch.randn(800), bits=5)
x = torch.randn(800)
value, ops = quant.codebook_dot(codebook, indices, x)
value = value.item()
direct = torch.dot(codebook[indices], x).item()
print(f"codebook dot product {value:.4f} = direct {direct:.4f}, with {ops['multiplies']} multiplies instead of 800")
checks.claim("02", "k-means codebook: 2^b multiplies per output instead of one per weight",
             kind="derivation", paper="2^b (shared weights)", ours=f"{ops['multiplies']} multiplies for 800 weights at 5 bits",
             holds=abs(value - direct) < 1e-4 and ops["multiplies"] <= 2 ** 5, must_hold=True)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · The shipped LeNet-5 and a quantization explorer
# Caffe's LeNet-5 (431K weights) trained on Fashion-MNIST ships with the course. Pick a method,
# a bit width and TTQ's threshold: the histogram of its second convolution shows the levels, the
# readout the quantization error and the real bytes of the stored layer.

# %%
base = recipes.shipped_model("lenet5-fmnist")
train_loader, test_loader = data.loaders("fashion-mnist", 128, train_subset=FINETUNE_SUBSET,
                                         test_subset=TEST_SUBSET, augment=False, device=DEVICE)
float_acc = train.evaluate(base, test_loader)
print(f"LeNet-5: {measure.count_params(base):,} weights, {measure.human_bytes(measure.file_bytes(base))} "
      f"on disk, {100 * float_acc:.2f}% on {TEST_SUBSET or 10_000} test images")

# %%
explorer = quant.quant_explorer(base[3].weight, title="LeNet-5 conv2 (25,000 weights)")
explorer.set(method="kmeans", bits=3)
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Experiment: accuracy against real bytes, every method, no retraining
# Each row quantizes **every** conv / linear weight of the shipped LeNet-5 and stores it the way a
# file would: codes packed at their bit width (`surgery.pack_bits`) plus the scales, codebook or
# fractional length. Bytes are the size of that state serialized by `torch.save`
# (`measure.file_bytes`); biases stay float.

# %%
ROWS = [("float", None), ("linear", 8), ("linear", 4), ("linear", 2), ("fixed", 8), ("fixed", 4),
        ("fixed", 2), ("kmeans", 8), ("kmeans", 5), ("kmeans", 4), ("kmeans", 2),
        ("twn", None), ("ttq", None), ("binary", None)]
BITS_OF = {"twn": "ternary", "ttq": "ternary", "binary": 1, "float": 32}
table = []
for method, bits in ROWS:
    qmodel, state = quant.compress_weights(base, method, bits)
    table.append({"method": method, "bits": bits or BITS_OF[method], "accuracy": train.evaluate(qmodel, test_loader),
                  "bytes": measure.file_bytes(state)})
float_bytes = table[0]["bytes"]
print(f"{'method':8s} {'bits':>8s} {'accuracy':>9s} {'file bytes':>11s} {'smaller':>8s}")
for row in table:
    print(f"{row['method']:8s} {str(row['bits']):>8s} {100 * row['accuracy']:8.2f}% {row['bytes']:11,d} "
          f"{float_bytes / row['bytes']:7.1f}×")

# %% slideshow={"slide_type": "subslide"}
fig, ax = plt.subplots(figsize=(7, 3.6))
for method, marker in (("linear", "o"), ("fixed", "s"), ("kmeans", "^"), ("twn", "D"), ("ttq", "v"),
                       ("binary", "X"), ("float", "*")):
    rows = [r for r in table if r["method"] == method]
    ax.plot([r["bytes"] / 1024 for r in rows], [100 * r["accuracy"] for r in rows], marker=marker, label=method)
ax.set_xscale("log")
ax.set_xlabel("real file size (KiB, log scale)")
ax.set_ylabel("test accuracy (%)")
ax.set_title("LeNet-5 on Fashion-MNIST, post-training quantization of every layer")
ax.grid(alpha=0.3)
ax.legend(ncol=2, fontsize=8)
plt.show()

# %% [markdown]
# Down to 4 bits linear and k-means quantization barely move (fixed point, with one range-rule
# format per layer and every layer at the same width, loses a few points — §4 does better); at 2
# bits k-means keeps the most because its levels follow the weights. Ternary and binary weights
# need training (next sections).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · Dynamic fixed point: one format per layer beats one format for all
# Why did Qiu et al. care? On their FPGA accelerator the **convolutions are compute-bound** (many
# multiply-accumulates per weight: each kernel slides over the whole feature map) while the **fully
# connected layers are memory-bound** (one MAC per weight per image): conv layers want cheap
# arithmetic, fc layers want few bytes. Measured per layer at batch 1, on our LeNet-5 and on
# torchvision's VGG-16 (built on the `meta` device: shapes only, no memory):

# %% slideshow={"slide_type": "subslide"}
import torchvision

with torch.device("meta"):
    vgg16 = torchvision.models.vgg16(weights=None)
info = data.dataset_info("fashion-mnist")
intensity = {}
for model_name, model, size in (("LeNet-5", base, (info.channels, info.size, info.size)),
                                ("VGG-16", vgg16, (3, 224, 224))):
    rows = measure.layer_table(model, size)
    macs = {kind: sum(r.macs for r in rows if r.kind == kind) for kind in ("Conv2d", "Linear")}
    params = {kind: sum(r.params for r in rows if r.kind == kind) for kind in ("Conv2d", "Linear")}
    intensity[model_name] = {kind: [r.macs / r.params for r in rows if r.kind == kind] for kind in macs}
    print(f"{model_name}: conv layers do {100 * macs['Conv2d'] / sum(macs.values()):.1f}% of the MACs with "
          f"{100 * params['Conv2d'] / sum(params.values()):.1f}% of the weights; MACs per weight: conv "
          f"{min(intensity[model_name]['Conv2d']):.0f}–{max(intensity[model_name]['Conv2d']):.0f}, "
          f"fc {min(intensity[model_name]['Linear']):.2f}–{max(intensity[model_name]['Linear']):.2f}")
checks.claim("02", "Qiu et al.: conv layers are compute-bound, fc layers memory-bound",
             kind="derivation", paper="CONV computation-centric, FC memory-centric (VGG-16)",
             ours="; ".join(f"{k}: ≥ {min(v['Conv2d']):.0f} MACs per conv weight vs ≤ {max(v['Linear']):.2f} per fc weight"
                            for k, v in intensity.items()),
             holds=all(min(v["Conv2d"]) > 10 * max(v["Linear"]) for v in intensity.values()), must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# *Static* precision gives every layer the same fractional length (the one the widest tensor
# needs); *dynamic* precision gives each layer's weights and each layer's outputs their own. Qiu
# et al. choose them greedily, layer by layer in forward order on calibration images, with every
# earlier layer already in fixed point: for each layer, try the lengths around the range rule and
# keep the one whose output is closest (Σ|error|) to the float network's — first for the weights,
# then for the output. Weights **and** activations are in fixed point here. Three columns per width:
# static, dynamic with the range rule alone (`search=(0, 0)`), dynamic with the search.

# %% slideshow={"slide_type": "subslide"}
calib_x = next(iter(train_loader))[0][:128]
fixed_rows, plans = [], {}
for bits in (8, 4):
    accs = {}
    for variant, kwargs in (("static", dict(dynamic=False)), ("range rule", dict(search=(0, 0))),
                            ("searched", dict())):
        qmodel, plans[bits, variant] = quant.fixed_point_model(base, calib_x, bits, **kwargs)
        accs[variant] = train.evaluate(qmodel, test_loader)
    fixed_rows.append((bits, accs))
print(f"{'bits':>4s} {'static':>8s} {'dynamic, range rule':>20s} {'dynamic, searched':>18s}   (float {100 * float_acc:.2f}%)")
for bits, accs in fixed_rows:
    print(f"{bits:4d} {100 * accs['static']:7.2f}% {100 * accs['range rule']:19.2f}% {100 * accs['searched']:17.2f}%")
print("\n8-bit plan chosen by the search (differs: where it left the range rule):")
print(quant.plan_table(plans[8, "searched"]).table())
moved = [(bits, name, key) for (bits, variant), plan in plans.items() if variant == "searched"
         for name, row in plan.items() if name != "input" for key in ("weight", "output") if row[key] != row[f"{key}_range"]]
print(f"the search left the range rule in {len(moved)} of {2 * 4 * len(fixed_rows)} (bits, layer, weights/output) choices")
assert moved or config.dry_run(), "the search should decide something"     # (stand-in images in a dry run)

# %% [markdown] slideshow={"slide_type": "subslide"}
# Where the search moves, it almost always picks a **longer** fractional length than the range rule:
# it lets the few largest outputs saturate and rounds all the others more finely. At 8 bits the
# three rows are close to float; at 4 bits one static format ruins the network and the searched
# per-layer formats keep most of the accuracy — Qiu et al.'s argument for dynamic precision, which
# let them run VGG-16 with 8-bit weights and feature maps on an embedded FPGA.

# %% slideshow={"slide_type": "fragment"}
acc4 = dict(fixed_rows)[4]
checks.claim("02", "dynamic fixed point beats static at 4 bits (weights + activations)",
             paper="dynamic precision much better than static (Qiu et al.)",
             ours=f"4 bits: static {100 * acc4['static']:.2f}%, dynamic {100 * acc4['searched']:.2f}%",
             holds=acc4["searched"] > acc4["static"])
checks.claim("02", "choosing fractional lengths by measured error beats the range rule at 4 bits",
             paper="fl chosen by least Σ|error| (Qiu et al.)",
             ours=f"4 bits: range rule {100 * acc4['range rule']:.2f}%, searched {100 * acc4['searched']:.2f}%",
             holds=acc4["searched"] >= acc4["range rule"])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Training low-precision weights on the shipped LeNet-5
# Four short fine-tuning runs with the course trainer (`train.fit`), starting from the shipped
# float weights. As in the TTQ, TWN and XNOR-Net papers, the first convolution and the last
# classifier stay in float (`quant.default_layers`; the next cell counts them: 500 + 5,000 = 5,500 of
# LeNet-5's 430,500 weights, 5,530 with their biases). k-means shares *every* layer with Deep
# Compression's widths — 8 bits for convolutions, 5 for fully connected layers
# (`quant.deep_compression_bits`) — and trains only the centroids (the paper's *trained quantization*).

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** Why does the first/last layer stay in full precision?

# %%
kept = [name for name, m in base.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
        and name not in quant.default_layers(base)]
kept_weights = sum(base.get_submodule(n).weight.numel() for n in kept)
kept_biases = sum(base.get_submodule(n).bias.numel() for n in kept)
all_weights = sum(m.weight.numel() for m in base.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
print(f"kept in float: layers {kept}, {kept_weights:,} of {all_weights:,} weights ({kept_weights + kept_biases:,} with biases)")
assert (kept_weights, kept_weights + kept_biases) == (5_500, 5_530)
#
# The scale gradients are sums over a whole layer (TTQ's Wp / Wn, every k-means centroid), so we
# use Adam, which normalises step sizes, with a small learning rate.

# %% slideshow={"slide_type": "subslide"}
def finetune(model, lr):
    before = train.evaluate(model, test_loader)
    history = train.fit(model, train_loader, test_loader, epochs=FINETUNE_EPOCHS, optimizer="adamw", lr=lr,
                        weight_decay=0.0, progress=False, device=DEVICE)
    return before, history.final_test_acc


trained = {}
for name in ("ttq", "twn", "binary", "kmeans"):
    lr = quant.FINETUNE_LR[name]                     # 1e-3; 1e-4 for the k-means centroids
    model = copy.deepcopy(base)
    if name == "kmeans":
        quant.share_weights(model, bits=quant.deep_compression_bits(model), train_others=False)
    else:
        quant.quantize_model(model, name)
    before, after = finetune(model, lr)
    predicted, labels = train.predict(model, test_loader)
    trained[name] = {"before": before, "after": after, "bytes": measure.file_bytes(quant.quantized_state_dict(model)),
                     "model": model, "correct": (predicted == labels).cpu()}
    print(f"{name:7s} before fine-tuning {100 * before:6.2f}%  after {100 * after:6.2f}%  "
          f"file {trained[name]['bytes']:,} B ({float_bytes / trained[name]['bytes']:.1f}× smaller)")
print("learned TTQ scales (Wp, Wn) per layer:",
      {k: (round(p, 4), round(n, 4)) for k, (p, n) in quant.ttq_scales(trained["ttq"]["model"]).items()})

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Claim checks
# * **TTQ** (Zhu et al., Table 1, CIFAR-10 error, float → ternary): ResNet-20 8.23 → 8.87 (the one
#   depth where ternary *loses*, 0.64 points), ResNet-32 7.67 → 7.63, ResNet-44 7.18 → 7.02,
#   ResNet-56 6.80 → 6.44 (ternary *better* by 0.04 / 0.16 / 0.36); on ImageNet the ternary AlexNet
#   beats full precision by 0.3 points top-1 and earlier ternary methods (TWN) by about 3.
#   We check the paper's worst case — ternary at most 0.64 points below float — and TTQ above TWN,
#   on LeNet-5, every arm from the same float weights with the same budget. A "loses at most x points" claim *holds* when the
#   whole 95 % paired interval of the loss is below x, *does not hold* when all of it is above,
#   and is *within noise* otherwise.
# * **Deep Compression**: shared weights at 8 bits (conv) / 5 bits (fc) lose nothing. The paper's
#   figure is for *trained* quantization — after the centroids are fine-tuned — so that is the
#   number we check ("nothing" read as at most 0.5 point, by the same interval rule); the row
#   without fine-tuning is printed too.

# %% slideshow={"slide_type": "subslide"}
predicted, labels = train.predict(base, test_loader)
float_correct = (predicted == labels).cpu()


short = {"float": float_correct, **{name: r["correct"] for name, r in trained.items()}}   # per test image


def loss_within(arms, name, bound):
    """The paired 95% interval of ``arms["float"]`` − ``arms[name]`` (points lost, on the same test
    images) and the verdict of "loses at most ``bound``"."""
    low, high = (100 * v for v in stats.compare(arms["float"], arms[name]).difference_interval())
    return low, high, stats.bound_verdict(low, high, bound)


print(f"short run ({FINETUNE_EPOCHS} epoch(s) on {len(train_loader.labels):,} images, {len(labels):,} test images):")
for name, bound in (("ttq", 0.64), ("twn", 0.64), ("kmeans", 0.5)):
    lo, hi, v = loss_within(short, name, bound)
    print(f"  {name:7s} {100 * trained[name]['after']:.2f}% vs float {100 * float_acc:.2f}%: {lo:+.2f} to {hi:+.2f} pt lost")

# %% [markdown] slideshow={"slide_type": "subslide"}
# One epoch on 2,048 images is a short run: it shows the method, not where it ends. The claims are
# decided on the **long run** — the same fine-tuning (`quant.finetune_quantized`: the steps above,
# at the same learning rates), `quant.LONG_EPOCHS` epochs on all 60,000 training images — with a
# **float control**: the float LeNet-5 fine-tuned exactly alike, so both arms of a comparison have
# had the same training. Each result is shipped as a plain LeNet-5 that holds the quantized values
# (`quant.bake_weights`: ternary levels, shared centroids), made by `python -m course_lib train
# --recipe lenet5-ttq-fmnist --register` (likewise `-twn-`, `-kmeans-`, `-float-ft-`; a few CPU-minutes each), and
# evaluated here, live, on all 10,000 test images. (The full profile's own run is long: it decides there.)

# %% slideshow={"slide_type": "subslide"}
LONG = {"float": "lenet5-float-ft-fmnist", "ttq": "lenet5-ttq-fmnist", "twn": "lenet5-twn-fmnist",
        "kmeans": "lenet5-kmeans-fmnist"}
_, full_test = data.loaders("fashion-mnist", 1000, augment=False)
long_correct = {}
for name, recipe in LONG.items():
    net = recipes.shipped_model(recipe)
    predicted_full, labels_full = train.predict(net, full_test)
    long_correct[name] = (predicted_full == labels_full).cpu()
    levels = checkpoints.manifest_entry(recipe)["levels"]
    print(f"{recipe:24s} {100 * long_correct[name].float().mean().item():.2f}% on {len(labels_full):,} test images; "
          f"distinct weight values per quantized layer {levels or '(float)'}")
if config.profile() == "quick":       # decided on the long run, against the float control
    decide = long_correct
    RUN = f"long run: {quant.LONG_EPOCHS} epochs on 60,000 images, vs the float control fine-tuned alike"
else:
    decide = short
    RUN = f"{FINETUNE_EPOCHS} epochs on {len(train_loader.labels):,} images"


def pct(name):
    return 100 * decide[name].float().mean().item()


# %% slideshow={"slide_type": "subslide"}
lo, hi, v = loss_within(decide, "ttq", 0.64)
print(f"TTQ ternary LeNet-5: {pct('ttq'):.2f}% vs float {pct('float'):.2f}% "
      f"→ {lo:+.2f} to {hi:+.2f} points lost (95% paired interval), file {float_bytes / trained['ttq']['bytes']:.1f}× smaller")
checks.claim("02", "TTQ: ternary weights within the paper's worst gap (0.64 pt) of float",
             paper="ResNet-20 −0.64, ResNet-32/44/56 +0.04/+0.16/+0.36, AlexNet +0.3 top-1",
             ours=f"LeNet-5 {pct('float'):.2f}% → {pct('ttq'):.2f}% ({lo:+.2f} to {hi:+.2f} pt lost, "
                  f"{RUN}, {len(decide['ttq']):,} test images)",
             holds=v == "holds", within_noise=v == "within noise")
ttq_twn = stats.compare(decide["ttq"], decide["twn"])
checks.claim("02", "TTQ's learned scales beat TWN's fixed ones",
             paper="AlexNet: TTQ ≈ 3 pt above earlier ternary methods",
             ours=f"LeNet-5, TTQ vs TWN: {ttq_twn.summary()} ({RUN})",
             holds=ttq_twn.verdict() == "holds", within_noise=ttq_twn.verdict() == "within noise")

lo, hi, v = loss_within(decide, "kmeans", 0.5)

# %% slideshow={"slide_type": "fragment"}
print(f"k-means 8/5 bits: {100 * trained['kmeans']['before']:.2f}% before / {100 * trained['kmeans']['after']:.2f}% "
      f"after centroid fine-tuning (short run); decided: {pct('kmeans'):.2f}% vs float {pct('float'):.2f}%")
checks.claim("02", "Deep Compression: trained weight sharing (8-bit conv, 5-bit fc) loses nothing",
             paper="no loss (LeNet, AlexNet, VGG-16)",
             ours=f"LeNet-5 {pct('float'):.2f}% → {pct('kmeans'):.2f}% after centroid fine-tuning "
                  f"({lo:+.2f} to {hi:+.2f} pt lost, 95% paired interval; {RUN})",
             holds=v == "holds", within_noise=v == "within noise")

# %% [markdown] slideshow={"slide_type": "subslide"}
# What the long run says (the verdicts are computed; read them above). Trained alike, the ternary
# and the shared-weight LeNet-5 end within about half a point of the float control — where the
# 95 % intervals straddle the paper's bounds, the honest verdict is *within noise*. TTQ's learned
# scales and TWN's fixed ones end level on this small net: the paper's 3-point gap is on AlexNet and
# ImageNet, where the earlier ternary methods lost far more to begin with.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · TTQ on a ResNet trained from scratch
# The TTQ paper's CIFAR-10 experiment: train a ResNet in float, then ternarize every layer but the
# first and the last and keep training. The **full profile** does exactly that with ResNet-20 on
# CIFAR-10 (60 + 30 epochs on a GPU; paper: 8.23% error in float, 8.87% ternary). The **quick
# profile** runs the same code on a model that can learn in a few CPU seconds: a narrow ResNet-8
# (one residual block per stage) on 4,096 Fashion-MNIST images, one epoch in float, then one
# ternary — far from converged, but well above chance, so the float → ternary step is visible.
# **Equal budgets:** the float arm gets the same extra training as the ternary one (the same
# epochs, optimizer and learning rate, from the same float weights), so the comparison is of the
# weights' precision, not of who trained longer. Both arms are scored on the same test images with
# the paired test; the claim is the paper's ResNet-20 figure, ternary at most 0.64 points below float.

# %% slideshow={"slide_type": "subslide"}
R_DATA = config.pick(quick="fashion-mnist", full="cifar10")
R_DEPTH = config.pick(quick=8, full=20)
r_train, r_test = data.loaders(R_DATA, 128, train_subset=config.pick(quick=4096, full=None),
                               test_subset=None,
                               augment=config.pick(quick=False, full=True), device=DEVICE)
resnet = resnets.resnet_cifar(R_DEPTH, in_channels=data.dataset_info(R_DATA).channels,
                             num_classes=len(data.dataset_info(R_DATA).classes),
                             widths=config.pick(quick=(8, 16, 32), full=(16, 32, 64)))
train.fit(resnet, r_train, None, epochs=config.pick(quick=1, full=60), optimizer="adamw",
          lr=config.pick(quick=3e-3, full=2e-3), progress=False, device=DEVICE)
ternary_resnet = quant.quantize_model(copy.deepcopy(resnet), "ttq")
scales_before = quant.ttq_scales(ternary_resnet)
ttq_start = train.evaluate(ternary_resnet, r_test)
second_stage = dict(epochs=config.pick(quick=1, full=30), optimizer="adamw", lr=config.pick(quick=1e-3, full=2e-4),
                    weight_decay=0.0, progress=False, device=DEVICE)
train.fit(ternary_resnet, r_train, None, **second_stage)
train.fit(resnet, r_train, None, **second_stage)                  # the float arm: the same extra training
scales_after = quant.ttq_scales(ternary_resnet)
ternary_layers = len(scales_after)
r_correct = {}
for arm, net in (("float", resnet), ("ternary", ternary_resnet)):
    predicted, labels = train.predict(net, r_test)
    r_correct[arm] = (predicted == labels).cpu()
r_cmp = stats.compare(r_correct["ternary"], r_correct["float"])
r_fp_err, r_ttq_err = 100 * (1 - r_cmp.accuracy_b), 100 * (1 - r_cmp.accuracy_a)
r_gap_low, r_gap_high = (-100 * v for v in reversed(r_cmp.difference_interval()))     # float − ternary, points

# %% slideshow={"slide_type": "subslide"}
print(f"ResNet-{R_DEPTH} on {R_DATA} ({measure.count_params(resnet):,} weights, {ternary_layers} ternary layers): "
      f"float error {r_fp_err:.2f}%, ternary error {100 * (1 - ttq_start):.2f}% right after ternarizing → "
      f"{r_ttq_err:.2f}% after training   (paper, ResNet-20 on CIFAR-10: 8.23% → 8.87%)")
moved = sum(abs(scales_after[k][0] - scales_before[k][0]) > 0 for k in scales_after)
first = next(iter(scales_after))
print(f"Wp changed in {moved}/{ternary_layers} layers; e.g. {first}: {tuple(round(v, 4) for v in scales_before[first])} "
      f"→ {tuple(round(v, 4) for v in scales_after[first])}")
assert ternary_layers == len(quant.default_layers(resnet)) and moved == ternary_layers
assert all(len(torch.unique(m.weight.detach())) <= 3 for n, m in ternary_resnet.named_modules() if n in scales_after)
r_verdict = stats.bound_verdict(r_gap_low, r_gap_high, 0.64)
checks.claim("02", "TTQ: a ternary ResNet within 0.64 pt of float (the paper's ResNet-20 gap)",
             paper="ResNet-20 on CIFAR-10: 8.23% → 8.87% error",
             ours=f"ResNet-{R_DEPTH} on {R_DATA}, equal training: {r_fp_err:.2f}% → {r_ttq_err:.2f}% error "
                  f"(ternary {r_gap_low:+.2f} to {r_gap_high:+.2f} pt behind, 95% paired interval, "
                  f"{r_cmp.n:,} test images)",
             holds=r_verdict == "holds", within_noise=r_verdict == "within noise",
             why="a net trained for one epoch on 4,096 images is still learning fast: the float arm gains more "
                 "from the extra epoch than a ternary net can" if r_verdict == "does not hold" and config.profile() == "quick" else "")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · Exercises
# ### Exercise 1 — TTQ's backward pass, by hand (*derive*)
# Write `ttq_backward(latent, wp, wn, t, grad)` that returns `(grad_latent, grad_wp, grad_wn)` for
# the ternary weights w_t = +Wp / 0 / −Wn (Δ = t·max|w̃|), given `grad` = ∂L/∂w_t, **without
# autograd**. §1 gives the paper's equations; one of them leaves out a sign that w_t = −Wn implies —
# work out which (the chain rule on one weight is enough). The checker compares with autograd through
# a ternary forward pass it writes from PyTorch ops; it refuses `quant.ttq_ternarize` (autograd through
# the library's TTQ would hand you the answer).

# %%
def ttq_backward(latent, wp, wn, t, grad):
    # BEGIN SOLUTION
    delta = t * latent.abs().max()
    pos, neg = latent > delta, latent < -delta
    grad_latent = torch.where(pos, wp * grad, torch.where(neg, wn * grad, grad))
    return grad_latent, grad[pos].sum(), -grad[neg].sum()
    # END SOLUTION


# %%
ex.check_ttq_backward(ttq_backward)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 2 — a shared-weight layer with 2^b multiplies per output (*build it and measure it*)
# A linear layer y = x Wᵀ whose m×n weights are `codebook[indices]` (K = 2^b centroids). Write
# `codebook_linear(x, codebook, indices)` for a batch x of shape (N, n) that first builds
# `sums` of shape (N, m, K) — sums[b, i, k] is the sum of the inputs x[b, j] over the j where
# indices[i, j] = k — and then y (N, m) with only K multiplies per output. Return `(y, sums)`.
# No Python loop over the weights (a one-hot tensor or `scatter_add_` will do), and not
# `quant.codebook_dot`, §1's one-row version. The checker measures `y` against the dense layer
# `x @ codebook[indices].T` and `sums` against a loop over every weight.

# %%
def codebook_linear(x, codebook, indices):
    # BEGIN SOLUTION
    onehot = torch.nn.functional.one_hot(indices, len(codebook)).to(x.dtype)      # (m, n, K)
    sums = torch.einsum("bn,mnk->bmk", x, onehot)                                  # additions only
    return sums @ codebook.to(x.dtype), sums
    # END SOLUTION


# %%
ex.check_codebook_linear(codebook_linear)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 3 — codebook bytes (*derive*)
# A layer of `n_weights` weights shared with k-means at `bits` bits stores an index per weight,
# packed tightly into whole bytes (only the last byte may have unused bits), and a codebook of float32
# centroids. How many centroids can `bits` bits address? Write
# `codebook_bytes(n_weights, bits)`; the checker packs real index bits with NumPy and sizes a real
# float32 codebook. Then use it: how many bytes does LeNet-5's fc1 (400,000
# weights) need at 5 bits, and how many times smaller than float32 is that?

# %%
def codebook_bytes(n_weights, bits):
    # BEGIN SOLUTION
    return -(-n_weights * bits // 8) + 4 * 2 ** bits
    # END SOLUTION


# %%
ex.check_codebook_bytes(codebook_bytes)

# %%
try:
    print(f"fc1 at 5 bits: {codebook_bytes(400_000, 5):,} B, {400_000 * 4 / codebook_bytes(400_000, 5):.1f}× smaller")
except NotImplementedError:
    print("fc1 at 5 bits: run this cell again once codebook_bytes works")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 4 — where do the bits go? (*decide*)
# Deep Compression stores LeNet-5 with 8 bits per conv weight and 5 per fc weight. Write
# `my_bits(model)` returning `{layer name: bits}` (1 to 8) for every conv / linear layer, such that
# k-means sharing at those widths (no retraining) stays within 0.5 point of the float LeNet-5 on our
# test images **and** the real file is smaller than with 8/5 bits. Use the table of §3 and try a
# few: which layer holds most of the bytes, and which one tolerates the fewest bits? (Then try
# `init="density"` and `init="random"` in `quant.share_weights`: why does the paper prefer linear?)

# %%
def my_bits(model):
    # BEGIN SOLUTION
    return {"0": 8, "3": 5, "7": 4, "9": 5}
    # END SOLUTION


# %%
ex.check_bit_allocation(my_bits, base, test_loader)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · What we measured

# %%
summary = [("float LeNet-5", 32, float_acc, float_bytes)]
summary += [(f"{r['method']} {r['bits']} bits, no retraining", r["bits"], r["accuracy"], r["bytes"])
            for r in table if (r["method"], r["bits"]) in {("linear", 8), ("linear", 4), ("kmeans", 5), ("kmeans", 2)}]
summary += [(f"{name} + {FINETUNE_EPOCHS} epoch fine-tuning", {"ttq": "ternary", "twn": "ternary", "binary": 1,
                                                              "kmeans": "8/5"}[name], t["after"], t["bytes"])
            for name, t in trained.items()]
summary += [(f"fixed point {b} bits (weights + activations), {v}", b, accs[v], None)
            for b, accs in fixed_rows for v in ("static", "searched")]
print(f"{'model':52s} {'bits':>8s} {'accuracy':>9s} {'bytes':>10s} {'smaller':>8s}")
for name, bits, acc, nbytes in summary:
    size = f"{nbytes:10,d} {float_bytes / nbytes:7.1f}×" if nbytes else f"{'—':>10s} {'':>8s}"
    print(f"{name:52s} {str(bits):>8s} {100 * acc:8.2f}% {size}")
print(f"ResNet-{R_DEPTH} TTQ ({config.profile()} profile): float error {r_fp_err:.2f}%, ternary {r_ttq_err:.2f}%")
print(f"notebook time: {time.perf_counter() - T0:.0f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
# * M. Courbariaux, Y. Bengio, J.-P. David, *BinaryConnect*, NeurIPS 2015.
# * M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi, *XNOR-Net*, ECCV 2016.
# * F. Li, B. Liu, *Ternary Weight Networks*, 2016.
# * C. Zhu, S. Han, H. Mao, W. Dally, *Trained Ternary Quantization*, ICLR 2017.
# * J. Qiu et al., *Going Deeper with Embedded FPGA Platform for Convolutional Neural Network*, FPGA 2016.
# * S. Han, H. Mao, W. Dally, *Deep Compression*, ICLR 2016 (weight sharing; chapter 05 adds pruning and Huffman coding).
# * PyTorch quantization: `torch.quantize_per_tensor`, `torch.quantize_per_channel`, `torch.ao.quantization` observers.
