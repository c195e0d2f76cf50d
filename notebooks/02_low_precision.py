# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
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
train_loader, test_loader = data.loaders("fashion-mnist", 256, train_subset=FINETUNE_SUBSET,
                                         test_subset=TEST_SUBSET, augment=False, device=DEVICE)
float_acc = train.evaluate(base, test_loader)
print(f"LeNet-5: {measure.count_params(base):,} weights, {measure.human_bytes(measure.file_bytes(base))} "
      f"on disk, {100 * float_acc:.2f}% on {len(test_loader.labels) if hasattr(test_loader, 'labels') else TEST_SUBSET} test images")

# %%
explorer = quant.quant_explorer(base[3].weight, title="LeNet-5 conv2 (25,000 weights)")
explorer.set(method="kmeans", bits=3)
explorer
