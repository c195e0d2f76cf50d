# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Low precision: fewer bits for every entry of the weight matrix
#
# A convolution is a matrix–vector product (chapter 01). This chapter keeps the matrix's shape and
# makes each **entry** cheaper: 1 bit (binary), ~1.6 bits (ternary), 4–8 bits (integers, fixed
# point) or a few bits of an index into a shared codebook (k-means weight sharing).
#
# **You will**
# 1. binarize and ternarize weights by hand, and see why ±1 weights turn multiplies into additions;
# 2. train ternary weights with learned scales (TTQ) through a straight-through gradient;
# 3. quantize to integers exactly like `torch.quantize_per_tensor` / `quantize_per_channel`;
# 4. choose per-layer fixed-point formats (dynamic fixed point) and compare them with one global format;
# 5. share weights with k-means and fine-tune the centroids;
# 6. measure accuracy against **real file bytes** for all of them on a shipped LeNet-5.

# %%
import copy
import time
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

from course_lib import config, data, measure, models, quant, train

print(config.describe())
config.seed_everything(0)
T0 = time.perf_counter()

TEST_SUBSET = config.pick(quick=1000, full=None)          # images used to score each compressed model
FINETUNE_SUBSET = config.pick(quick=2048, full=None)      # images used for the short fine-tuning runs
FINETUNE_EPOCHS = config.pick(quick=1, full=3)
DEVICE = config.device()

# %% [markdown]
# ## 1 · The idea from scratch
#
# ### Binary weights: ±1 and one scale per output channel
# BinaryConnect keeps `sign(w)`; XNOR-Net multiplies it by α = mean|w| of the output channel,
# which is the α minimising ‖w − α·sign(w)‖². A dot product with a ±1 row needs no multiplies:
# add the inputs where the weight is +1, subtract those where it is −1, multiply once by α.

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

# %% [markdown]
# ### Ternary weights: a threshold, then two learned scales (TTQ)
# TWN: Δ = 0.7·mean|w|, weights above Δ → +α, below −Δ → −α, the rest → 0.
# **Trained Ternary Quantization** (Zhu et al. 2017) scales the latent weights w̃ to [−1, 1],
# uses Δ = t·max|w̃| (t = 0.05) and learns *two* scales per layer: w_t = +Wp, 0 or −Wn.
# Backward: ∂L/∂Wp = Σ_{w̃>Δ} ∂L/∂w_t, ∂L/∂Wn = −Σ_{w̃<−Δ} ∂L/∂w_t (the minus because w_t = −Wn),
# and the latent weights receive Wp·∂L/∂w_t, 1·∂L/∂w_t or Wn·∂L/∂w_t (a *scaled* straight-through gradient).

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
print("∂L/∂Wp =", wp.grad.item(), "(= 1 + 5)   ∂L/∂Wn =", wn.grad.item(), "(= −4)")
print("∂L/∂w̃  =", latent.grad.tolist(), "(Wp·1, 1·2, 1·3, Wn·4, Wp·5)")
assert wp.grad.item() == 6 and wn.grad.item() == -4

# %% [markdown]
# ### Integers: scale, zero point, round, clamp
# Affine quantization stores q = clamp(round(x/s) + z, qmin, qmax) and reads back (q − z)·s. Ours
# must agree with PyTorch's quantized tensors bit for bit.

# %%
x = torch.randn(6, 16) * torch.linspace(0.1, 2, 6)[:, None]
scale, zp = quant.linear_qparams(x, bits=8)                     # per tensor
q = quant.quantize_linear(x, scale, zp, bits=8)
scale_c, zp_c = quant.linear_qparams(x, bits=8, axis=0)         # per output channel
q_c = quant.quantize_linear(x, scale_c, zp_c, bits=8, axis=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")                             # quantized dtypes are being deprecated
    torch_q = torch.quantize_per_tensor(x, scale.item(), int(zp), torch.qint8).int_repr()
    torch_q_c = torch.quantize_per_channel(x, scale_c.double(), zp_c, 0, torch.qint8).int_repr()
assert torch.equal(q, torch_q.long()) and torch.equal(q_c, torch_q_c.long())
err_t = (quant.dequantize_linear(q, scale, zp) - x).abs().mean().item()
err_c = (quant.dequantize_linear(q_c, scale_c, zp_c, axis=0) - x).abs().mean().item()
print(f"identical to torch. mean |error|: per tensor {err_t:.4f}, per channel {err_c:.4f}")

# %% [markdown]
# ### Fixed point: an integer and a binary point
# A `bits`-bit fixed-point number with fractional length fl is q·2^(−fl). Qiu et al. give every
# layer its own fl for weights and for feature maps (*dynamic* fixed point): the largest fl whose
# range still holds the layer's values.

# %%
x = torch.tensor([0.71, -0.33, 0.05, 1.2])
fl = quant.range_frac_len(x, bits=8)            # 1.2 < 127·2^-6 = 1.98, but not < 127·2^-7 = 0.99
by_hand = torch.clamp(torch.round(x * 2 ** fl), -128, 127) / 2 ** fl
print("fl =", fl, "→", by_hand.tolist())
assert torch.equal(by_hand, quant.to_fixed_point(x, 8, fl))

# %% [markdown]
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

# %% [markdown]
# ## 2 · The shipped LeNet-5 and a quantization explorer
# Caffe's LeNet-5 (431K weights) trained on Fashion-MNIST ships with the course. Pick a method,
# a bit width and TTQ's threshold: the histogram of its second convolution shows the levels, the
# readout the quantization error and the real bytes of the stored layer.

# %%
base = data.load_checkpoint("lenet5-fmnist")
train_loader, test_loader = data.loaders("fashion-mnist", 128, train_subset=FINETUNE_SUBSET,
                                         test_subset=TEST_SUBSET, augment=False, device=DEVICE)
float_acc = train.evaluate(base, test_loader)
print(f"LeNet-5: {measure.count_params(base):,} weights, {measure.human_bytes(measure.file_bytes(base))} "
      f"on disk, {100 * float_acc:.2f}% on {TEST_SUBSET or 10_000} test images")

# %%
explorer = quant.quant_explorer(base[3].weight, title="LeNet-5 conv2 (25,000 weights)")
explorer.set(method="kmeans", bits=3)
explorer

# %% [markdown]
# ## 3 · Experiment: accuracy against real bytes, every method, no retraining
# Each row quantizes **every** conv / linear weight of the shipped LeNet-5 and stores it the way a
# file would: codes packed at their bit width (`quant.pack_bits`) plus the scales, codebook or
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

# %%
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
# Down to 4 bits the three integer-like methods barely move; at 2 bits k-means keeps the most
# because its levels follow the weights. Ternary and binary weights need training (next sections).
#
# ## 4 · Dynamic fixed point: one format per layer beats one format for all
# Static precision gives every layer the same fractional length (the one the widest layer needs);
# dynamic precision (Qiu et al.) gives each layer's weights and each layer's outputs their own,
# chosen greedily layer by layer on calibration images, comparing with the float network's
# intermediate outputs. Weights **and** activations are in fixed point here.

# %%
calib_x = next(iter(train_loader))[0][:256]
fixed_rows = []
for bits in (16, 8, 6, 4):
    accs = {}
    for dynamic in (False, True):
        qmodel, plan = quant.fixed_point_model(base, calib_x, bits, dynamic=dynamic)
        accs[dynamic] = train.evaluate(qmodel, test_loader)
    fixed_rows.append((bits, accs[False], accs[True]))
    if bits == 6:
        plan_6 = plan
print(f"{'bits':>4s} {'static':>8s} {'dynamic':>8s}   (float {100 * float_acc:.2f}%)")
for bits, static, dynamic in fixed_rows:
    print(f"{bits:4d} {100 * static:7.2f}% {100 * dynamic:7.2f}%")
print("6-bit dynamic plan (fractional lengths):", plan_6)

# %% [markdown]
# ## 5 · Training low-precision weights on the shipped LeNet-5
# Three short fine-tuning runs with the course trainer (`train.fit`), starting from the shipped
# float weights. As in the TTQ, TWN and XNOR-Net papers, the first convolution and the last
# classifier stay in float (`quant.default_layers`; the next cell counts them: 500 + 5,000 = 5,500 of
# LeNet-5's 430,500 weights, 5,530 with their biases). k-means shares *every* layer at 5 bits and
# trains only the centroids.

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

# %%
def finetune(model, lr):
    before = train.evaluate(model, test_loader)
    history = train.fit(model, train_loader, test_loader, epochs=FINETUNE_EPOCHS, optimizer="adamw", lr=lr,
                        weight_decay=0.0, progress=False, device=DEVICE)
    return before, history.final_test_acc


trained = {}
for name, lr in (("ttq", 1e-3), ("binary", 1e-3), ("kmeans", 1e-4)):
    model = copy.deepcopy(base)
    if name == "kmeans":
        quant.share_weights(model, bits=5, train_others=False)
    else:
        quant.quantize_model(model, name)
    before, after = finetune(model, lr)
    trained[name] = {"before": before, "after": after, "bytes": measure.file_bytes(quant.quantized_state_dict(model)),
                     "model": model}
    print(f"{name:7s} before fine-tuning {100 * before:6.2f}%  after {100 * after:6.2f}%  "
          f"file {trained[name]['bytes']:,} B ({float_bytes / trained[name]['bytes']:.1f}× smaller)")
print("learned TTQ scales (Wp, Wn) per layer:",
      {k: (round(p, 4), round(n, 4)) for k, (p, n) in quant.ttq_scales(trained["ttq"]["model"]).items()})

# %% [markdown]
# ### Claim checks
# * **TTQ** (Zhu et al.): ternary ResNets on CIFAR-10 lose little or nothing (ResNet-20: 8.23% →
#   8.87% error). At our scale — LeNet-5, one epoch on a subset in the quick profile — we check a
#   gap we can state: ternary within 4 points of float (1 point in the full profile).
# * **Deep Compression**: weight sharing down to 5 bits costs nothing; we check ≤ 0.5 point.

# %%
ttq_gap = 100 * (float_acc - trained["ttq"]["after"])
allowed_gap = config.pick(quick=4.0, full=1.0)
print(f"TTQ ternary LeNet-5: {100 * trained['ttq']['after']:.2f}% vs float {100 * float_acc:.2f}% "
      f"→ gap {ttq_gap:.2f} points (allowed {allowed_gap}), file {float_bytes / trained['ttq']['bytes']:.1f}× smaller")
assert ttq_gap <= allowed_gap

kmeans5 = next(r for r in table if r["method"] == "kmeans" and r["bits"] == 5)
loss_5bit = 100 * (float_acc - max(kmeans5["accuracy"], trained["kmeans"]["after"]))
print(f"k-means 5 bits: {100 * kmeans5['accuracy']:.2f}% before / {100 * trained['kmeans']['after']:.2f}% after "
      f"centroid fine-tuning vs float {100 * float_acc:.2f}% → loss {loss_5bit:.2f} points")
assert loss_5bit <= 0.5

static4, dynamic4 = fixed_rows[-1][1:]
print(f"dynamic fixed point at 4 bits: {100 * dynamic4:.2f}% vs static {100 * static4:.2f}%")
assert dynamic4 > static4 + 0.05

# %% [markdown]
# ## 6 · TTQ on a ResNet-20
# The TTQ paper's CIFAR-10 experiment: train ResNet-20 in float, then ternarize every layer but
# the first and the last and keep training. The full profile does that on CIFAR-10 (paper: 8.23%
# error in float, 8.87% ternary). The quick profile runs the **same code** on a narrow ResNet-20
# and 512 Fashion-MNIST images for one epoch each: a smoke test of a few steps whose accuracy is
# near chance — it shows the mechanics (a ternary ResNet trained by `train.fit`, learned Wp / Wn per
# layer), not the paper's figure, which needs the full profile on a GPU.

# %%
R20_DATA = config.pick(quick="fashion-mnist", full="cifar10")
r_train, r_test = data.loaders(R20_DATA, 128, train_subset=config.pick(quick=512, full=None),
                               test_subset=config.pick(quick=500, full=None),
                               augment=config.pick(quick=False, full=True), device=DEVICE)
resnet = models.resnet_cifar(20, in_channels=data.dataset_info(R20_DATA).channels,
                             widths=config.pick(quick=(8, 16, 32), full=(16, 32, 64)))
fp_history = train.fit(resnet, r_train, r_test, epochs=config.pick(quick=1, full=60), optimizer="adamw",
                       lr=config.pick(quick=3e-3, full=2e-3), progress=False, device=DEVICE)
ternary_resnet = quant.quantize_model(copy.deepcopy(resnet), "ttq")
scales_before = quant.ttq_scales(ternary_resnet)
ttq_history = train.fit(ternary_resnet, r_train, r_test, epochs=config.pick(quick=1, full=30), optimizer="adamw",
                        lr=config.pick(quick=1e-3, full=2e-4), weight_decay=0.0, progress=False, device=DEVICE)
scales_after = quant.ttq_scales(ternary_resnet)
ternary_layers = len(scales_after)
r20_fp_err, r20_ttq_err = 100 * (1 - fp_history.final_test_acc), 100 * (1 - ttq_history.final_test_acc)
print(f"ResNet-20 ({measure.count_params(resnet):,} weights, {ternary_layers} ternary layers): "
      f"float error {r20_fp_err:.2f}%, ternary error {r20_ttq_err:.2f}%   (paper on CIFAR-10: 8.23% → 8.87%)")
moved = sum(abs(scales_after[k][0] - scales_before[k][0]) > 0 for k in scales_after)
print(f"Wp changed in {moved}/{ternary_layers} layers; e.g. {next(iter(scales_after))}: "
      f"{scales_before[next(iter(scales_after))]} → {tuple(round(v, 4) for v in scales_after[next(iter(scales_after))])}")
assert ternary_layers == len(quant.default_layers(resnet)) and moved == ternary_layers
assert all(len(torch.unique(m.weight.detach())) <= 3 for n, m in ternary_resnet.named_modules() if n in scales_after)
if config.profile() == "full":
    assert r20_ttq_err - r20_fp_err <= 1.5, "TTQ: the ternary ResNet-20 should be within 1.5 points of float"

# %% [markdown]
# ## 7 · Exercises
# ### Exercise 1 — symmetric int8
# Write `symmetric_int8(x)` returning `(q, scale)`: scale = max|x| / 127, q = round(x / scale)
# clamped to [−127, 127], as an `int8` tensor. The checker compares with `torch.quantize_per_tensor`.

# %%
def symmetric_int8(x):
    # BEGIN SOLUTION
    scale = x.abs().max().item() / 127
    q = torch.clamp(torch.round(x / scale), -127, 127).to(torch.int8)
    return q, scale
    # END SOLUTION


# %%
quant.check_symmetric_int8(symmetric_int8)

# %% [markdown]
# ### Exercise 2 — the ternary threshold
# Write `ternary_codes(w, t)` returning a tensor of −1 / 0 / +1: +1 where w > Δ, −1 where
# w < −Δ, 0 otherwise, with TTQ's Δ = t·max|w|.

# %%
def ternary_codes(w, t):
    # BEGIN SOLUTION
    delta = t * w.abs().max()
    return (w > delta).long() - (w < -delta).long()
    # END SOLUTION


# %%
quant.check_ternary_threshold(ternary_codes)

# %% [markdown]
# ### Exercise 3 — codebook bytes
# A layer of `n_weights` weights shared with k-means at `bits` bits stores one index per weight,
# packed tightly into whole bytes, plus a codebook of 2^bits float32 centroids. Write
# `codebook_bytes(n_weights, bits)`. Then use it: how many bytes does LeNet-5's fc1 (400,000
# weights) need at 5 bits, and how many times smaller than float32 is that?

# %%
def codebook_bytes(n_weights, bits):
    # BEGIN SOLUTION
    return -(-n_weights * bits // 8) + 4 * 2 ** bits
    # END SOLUTION


# %%
quant.check_codebook_bytes(codebook_bytes)
print(f"fc1 at 5 bits: {codebook_bytes(400_000, 5):,} B, {400_000 * 4 / codebook_bytes(400_000, 5):.1f}× smaller")

# %% [markdown]
# ### Exercise 4 (open) — where do the bits go?
# Use `quant.share_weights(model, bits={...})` with different bit widths per layer (Deep
# Compression used 8 bits for convolutions and 5 for fully connected layers) and find the smallest
# file that stays within 0.5 points of the float LeNet-5. Which layer tolerates the fewest bits?
# Try `init="density"` and `init="random"`: why does the paper prefer linear initialisation?

# %% [markdown]
# ## 8 · What we measured

# %%
summary = [("float LeNet-5", 32, float_acc, float_bytes)]
summary += [(f"{r['method']} {r['bits']} bits, no retraining", r["bits"], r["accuracy"], r["bytes"])
            for r in table if (r["method"], r["bits"]) in {("linear", 8), ("linear", 4), ("kmeans", 5), ("kmeans", 2)}]
summary += [(f"{name} + {FINETUNE_EPOCHS} epoch fine-tuning", {"ttq": "ternary", "binary": 1, "kmeans": 5}[name],
             t["after"], t["bytes"]) for name, t in trained.items()]
summary += [(f"dynamic fixed point {b} bits (weights + activations)", b, d, None) for b, _, d in fixed_rows[1:]]
print(f"{'model':52s} {'bits':>8s} {'accuracy':>9s} {'bytes':>10s} {'smaller':>8s}")
for name, bits, acc, nbytes in summary:
    size = f"{nbytes:10,d} {float_bytes / nbytes:7.1f}×" if nbytes else f"{'—':>10s} {'':>8s}"
    print(f"{name:52s} {str(bits):>8s} {100 * acc:8.2f}% {size}")
print(f"ResNet-20 TTQ ({config.profile()} profile): float error {r20_fp_err:.2f}%, ternary {r20_ttq_err:.2f}%")
print(f"notebook time: {time.perf_counter() - T0:.0f} s")

# %% [markdown]
# ## References
# * M. Courbariaux, Y. Bengio, J.-P. David, *BinaryConnect*, NeurIPS 2015.
# * M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi, *XNOR-Net*, ECCV 2016.
# * F. Li, B. Liu, *Ternary Weight Networks*, 2016.
# * C. Zhu, S. Han, H. Mao, W. Dally, *Trained Ternary Quantization*, ICLR 2017.
# * J. Qiu et al., *Going Deeper with Embedded FPGA Platform for Convolutional Neural Network*, FPGA 2016.
# * S. Han, H. Mao, W. Dally, *Deep Compression*, ICLR 2016 (weight sharing; chapter 05 adds pruning and Huffman coding).
# * PyTorch quantization: `torch.quantize_per_tensor`, `torch.quantize_per_channel`, `torch.ao.quantization` observers.
