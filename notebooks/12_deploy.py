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
# # 12 · Deployment: distillation, ONNX Runtime, real int8 — and why "smaller" is not "faster"
#
# **Learning objectives.** After this notebook you can
# - write Hinton et al.'s distillation loss (soft targets at temperature T, the T² factor) and use
#   it to win back the accuracy a compressed network lost, judged by a paired test;
# - export a PyTorch model to ONNX, run it in ONNX Runtime and show that the outputs agree;
# - quantize a network to **real** int8 with calibration data (static, QDQ, per-channel weights),
#   and measure its accuracy, its file and its latency against fp32 and chapter 02's simulated int8;
# - say which CPU instructions make int8 fast (VNNI) and show where it is not faster;
# - read the **honest latency table**: for each technique of the course, the MAC (or byte) saving
#   next to the measured speed-up in PyTorch eager and in ONNX Runtime, and the mechanism of each gap.

# %% slideshow={"slide_type": "skip"}
import copy
import statistics
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from course_lib import (checks, compressed_file, config, data, deploy, igc, lowrank, measure, models, prune, quant,
                        recipes, smallnets, stats, train)
from course_lib.exercises import ch12 as ex

print(config.describe())
config.seed_everything(0)
T0 = time.perf_counter()
TEST_N = 10000                                                    # the full Fashion-MNIST test set
KD_TRAIN_N = config.pick(quick=2048, full=60000)                  # distillation / fine-tuning images
KD_EPOCHS = config.pick(quick=1, full=5)
CALIB_N = config.pick(quick=256, full=1024)                       # calibration images for static int8
LAT_S = config.pick(quick=0.03, full=0.3, dry=0.01)               # seconds per latency round
ROUNDS = config.pick(quick=3, full=7, dry=2)                      # interleaved latency rounds
CURVE = config.pick(quick=(4, 16, 64, 256), full=(4, 16, 64, 256, 1024), dry=(4, 16))   # calibration-size curve
WORK = config.data_dir() / "deploy"                              # ONNX files written here

# %%
WORK.mkdir(exist_ok=True)
train_kd, test_data = data.loaders("fashion-mnist", 64, train_subset=KD_TRAIN_N, test_subset=TEST_N, augment=False)
calib_loader, small_test = data.loaders("fashion-mnist", 64, train_subset=max(CURVE[-1], CALIB_N),
                                        test_subset=2000, augment=False, seed=1)
calib_x = torch.cat([x for x, _ in calib_loader])[:CALIB_N]
x1, x64 = calib_x[:1], calib_x[:1].repeat(64, 1, 1, 1)
SIZE = tuple(calib_x.shape[1:])                                   # (C, H, W)
print(f"test images {len(test_data.labels):,}, calibration images {len(calib_x)}, input {SIZE}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Knowledge distillation, from scratch
#
# A trained network's wrong answers carry information: a shirt that looks 10% like a T-shirt and
# 0.001% like a sandal. Hinton, Vinyals & Dean soften the teacher's softmax with a **temperature**
# $T$, $p_i = \exp(z_i/T) / \sum_j \exp(z_j/T)$, so that these small probabilities matter, and
# train the student to match them:
#
# $$L = \alpha\,T^2\,\mathrm{KL}\big(p^{\text{teacher}}_T \,\|\, p^{\text{student}}_T\big) + (1-\alpha)\,\mathrm{CE}(z^{\text{student}}, y).$$
#
# Why $T^2$? The gradient of the soft term with respect to a student logit is
# $(p^{s}_{T,i} - p^{t}_{T,i})/T$, and for large $T$ that difference itself shrinks like $1/T$:
# the gradients scale as $1/T^2$; multiplying by $T^2$ keeps the two terms in balance whatever $T$.

# %% slideshow={"slide_type": "subslide"}
teacher = recipes.shipped_model("vgg-small-fmnist")
xb, yb = next(iter(test_data))
with torch.no_grad():
    z = teacher(xb[:1])
classes = data.dataset_info("fashion-mnist").classes
for T in (1.0, 4.0):
    p = deploy.soft_targets(z, T)[0]
    top = p.argsort(descending=True)[:3]
    print(f"T = {T:g}: " + ", ".join(f"{classes[i]} {100 * p[i]:.2f}%" for i in top))


def kd_from_scratch(student_logits, teacher_logits, labels, T, alpha):
    log_ps = student_logits / T - torch.logsumexp(student_logits / T, dim=1, keepdim=True)
    log_pt = teacher_logits / T - torch.logsumexp(teacher_logits / T, dim=1, keepdim=True)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1).mean()
    ce = -(student_logits - torch.logsumexp(student_logits, dim=1, keepdim=True)).gather(1, labels[:, None]).mean()
    return alpha * T * T * kl + (1 - alpha) * ce


g = torch.Generator().manual_seed(0)
s_logits, t_logits = torch.randn(32, 10, generator=g), 3 * torch.randn(32, 10, generator=g)
labels = torch.randint(0, 10, (32,), generator=g)
for T, alpha in ((1.0, 0.5), (4.0, 0.9), (16.0, 1.0)):
    ours = kd_from_scratch(s_logits, t_logits, labels, T, alpha)
    lib = deploy.distillation_loss(s_logits, t_logits, labels, T, alpha)     # F.kl_div inside
    assert torch.allclose(ours, lib, atol=1e-5), (T, alpha)
print("from-scratch loss == deploy.distillation_loss (PyTorch's F.kl_div) at three (T, alpha)")

# %% slideshow={"slide_type": "subslide"}
grads = {}
for T in (2.0, 8.0, 32.0):
    s = s_logits.clone().requires_grad_(True)
    deploy.distillation_loss(s, t_logits, None, T).backward()
    grads[T] = s.grad.norm().item()
print("gradient norm of the soft term, with T²:", {T: round(v, 4) for T, v in grads.items()},
      "→ without T² it would be", {T: round(v / T ** 2, 6) for T, v in grads.items()})
checks.claim("12", "Hinton et al.: the soft term's gradients scale as 1/T², so it is multiplied by T²",
             kind="derivation", paper="gradients scale as 1/T²; multiply the soft loss by T²",
             ours=f"with T²: gradient norm {grads[8.0]:.4f} at T=8, {grads[32.0]:.4f} at T=32 (ratio "
                  f"{grads[8.0] / grads[32.0]:.2f}); without, the ratio would be {16 * grads[8.0] / grads[32.0]:.0f}",
             holds=abs(grads[8.0] / grads[32.0] - 1) < 0.1, must_hold=True)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Distil the compressed student
#
# The capstone's student (chapter 11): VGG-small with half of every conv's filters removed
# (`prune.prune_channels`, Li et al.'s L1 rule, ~4× fewer MACs). Straight after the cut it has
# lost most of its accuracy. Two copies get **the same** training — same images, epochs, schedule,
# learning rate — one with plain cross-entropy, one distilled from the uncompressed teacher
# (T = 4, α = 0.9); then a paired McNemar test on the same test images.

# %% slideshow={"slide_type": "subslide"}
student0 = prune.prune_channels(teacher, 0.5)
print(f"student: {measure.count_params(student0):,} parameters, {measure.count_macs(student0, SIZE):,} MACs "
      f"(teacher {measure.count_params(teacher):,}, {measure.count_macs(teacher, SIZE):,}); "
      f"accuracy straight after the cut {100 * train.evaluate(student0, small_test):.1f}% (2,000 images)")
SETTINGS = dict(lr=0.02, schedule="onecycle", progress=False, seed=0)
t = time.perf_counter()
finetuned = copy.deepcopy(student0)
train.fit(finetuned, train_kd, epochs=KD_EPOCHS, **SETTINGS)
t_ft = time.perf_counter() - t
t = time.perf_counter()
distilled = copy.deepcopy(student0)
deploy.distil(distilled, teacher, train_kd, KD_EPOCHS, T=4.0, alpha=0.9, **SETTINGS)
t_kd = time.perf_counter() - t
pred_ft, test_labels = train.predict(finetuned, test_data)
pred_kd, _ = train.predict(distilled, test_data)
kd_vs_ft = stats.compare(pred_kd == test_labels, pred_ft == test_labels)
print(f"{KD_EPOCHS} epoch(s) on {len(train_kd.labels):,} images: fine-tuned ({t_ft:.0f} s) vs distilled ({t_kd:.0f} s, "
      f"teacher forward included)\n  distilled vs fine-tuned: {kd_vs_ft.summary()}")
low, high = kd_vs_ft.difference_interval()
verdict = kd_vs_ft.verdict()

# %% slideshow={"slide_type": "subslide"}
checks.claim("12", "Hinton et al.: distillation from the big model beats plain training of the small one",
             paper="distilled small model recovers most of the big model's accuracy (speech, MNIST)",
             ours=f"pruned VGG-small, {KD_EPOCHS} epoch(s) on {len(train_kd.labels):,} images: distilled "
                  f"{100 * kd_vs_ft.accuracy_a:.2f}% vs fine-tuned {100 * kd_vs_ft.accuracy_b:.2f}% "
                  f"(difference {100 * low:+.2f} to {100 * high:+.2f} pt, McNemar p = {kd_vs_ft.p_value:.2g})",
             holds=verdict == "holds", within_noise=verdict == "within noise",
             why="" if verdict == "holds" else "a short fine-tuning of a student cut from the teacher itself: "
                                               "the hard labels already carry what it can use; the soft targets "
                                               "pay with little data or a student trained from scratch")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Out of PyTorch: ONNX and ONNX Runtime
#
# `deploy.export_onnx` writes the model as an ONNX graph (the TorchScript-based exporter, opset 17,
# a dynamic batch dimension; masks and shared weights folded first). `deploy.OnnxModel` loads it in
# an ONNX Runtime session and is called like a model. The tolerance we state: every output within
# `1e-5 + 1e-4·max|output|` of PyTorch's — the two runtimes add in different orders, so bit-equality
# is not to be expected, float32 rounding is.

# %% slideshow={"slide_type": "subslide"}
IMAGENET = (3, 224, 224)
exports = {"LeNet-5": (recipes.shipped_model("lenet5-fmnist"), SIZE),
           "VGG-small": (teacher, SIZE),
           "VGG-small, distilled student": (distilled, SIZE),
           "MobileNet-small (ch. 09)": (recipes.shipped_model("mobilenet-small-fmnist"), SIZE),
           "torchvision ResNet-18": (torchvision.models.resnet18(weights=None).eval(), IMAGENET),
           "torchvision MobileNetV2": (torchvision.models.mobilenet_v2(weights=None).eval(), IMAGENET)}
onnx_models, checks_out = {}, {}
print(f"{'model':<30}{'params':>11}{'ONNX file':>12}  check")
for name, (net, size) in exports.items():
    path = deploy.export_onnx(net, WORK / f"{name.split(' (')[0].replace(' ', '-').replace(',', '')}.onnx", size)
    onnx_models[name] = deploy.OnnxModel(path)
    probe = torch.randn(2, *size, generator=torch.Generator().manual_seed(1)) if size == IMAGENET else xb[:2]
    checks_out[name] = deploy.compare_outputs(net, onnx_models[name], probe)
    print(f"{name:<30}{measure.count_params(net):>11,}{measure.human_bytes(onnx_models[name].file_bytes):>12}  "
          f"{checks_out[name].line()}")
checks.claim("12", "ONNX Runtime computes what PyTorch computes (the course's models and two torchvision nets)",
             kind="course", paper="an exported graph is the same function",
             ours=f"{sum(c.ok for c in checks_out.values())}/{len(checks_out)} models within 1e-5 + 1e-4·max|y|; "
                  f"largest difference {max(c.max_abs for c in checks_out.values()):.1e}",
             holds=all(c.ok for c in checks_out.values()), must_hold=True)

# %% [markdown]
# Bad input gets a clear error, not a crash deep inside the runtime:

# %% slideshow={"slide_type": "subslide"}
class Spectrum(nn.Module):                     # torch.fft has no ONNX equivalent in opset 17
    def forward(self, x):
        return torch.fft.fft2(x).abs().flatten(1)


for attempt in (lambda: onnx_models["VGG-small"](torch.randn(2, 3, 28, 28)),
                lambda: deploy.export_onnx(Spectrum(), WORK / "spectrum.onnx", (1, 8, 8))):
    try:
        attempt()
    except ValueError as err:
        print("ValueError:", str(err)[:160])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Real int8: static quantization with calibration
#
# Chapter 02 *simulated* int8: the weights and activations were rounded to 8-bit values but the
# arithmetic stayed float32. A real int8 kernel multiplies 8-bit integers and sums them in 32 bits:
#
# $$y_q = \mathrm{sat}\Big(\mathrm{round}\big(\tfrac{s_x s_w}{s_y}\textstyle\sum_k (x_q - z_x)(w_q - z_w)\big) + z_y\Big).$$
#
# **Static** quantization fixes every activation's scale $s$ and zero point $z$ ahead of time, from
# the ranges seen on **calibration** images (here MinMax on `CALIB_N` training images); the weights
# get one scale per output channel. ONNX Runtime's tool writes a **QDQ** graph: a
# `QuantizeLinear → DequantizeLinear` pair on every tensor, which the runtime fuses with the
# operator between into an integer kernel. Which kernel runs depends on the CPU:

# %% slideshow={"slide_type": "subslide"}
features = deploy.cpu_int8_features()
print(deploy.int8_kernel_note(features))
fp32_path = onnx_models["VGG-small"].path
int8_path = deploy.quantize_int8(fp32_path, WORK / "VGG-small.int8.onnx", calib_x)
print("operators of the QDQ graph:", deploy.op_counts(int8_path))
ort_fp32, ort_int8 = deploy.OnnxModel(fp32_path), deploy.OnnxModel(int8_path)
sim_int8 = quant.fixed_point_model(teacher, calib_x[:32], 8)[0]        # chapter 02: simulated 8-bit, dynamic fixed point

pred_fp, _ = deploy.onnx_predict(ort_fp32, test_data)
pred_q, _ = deploy.onnx_predict(ort_int8, test_data)
pred_sim, _ = train.predict(sim_int8, test_data)
int8_vs_fp = stats.compare(pred_q == test_labels, pred_fp == test_labels)
agree_sim = (pred_q == pred_sim).float().mean().item()
agree_fp = (pred_q == pred_fp).float().mean().item()
acc = {"fp32": int8_vs_fp.accuracy_b, "int8 (ORT)": int8_vs_fp.accuracy_a,
       "int8 simulated (ch. 02)": (pred_sim == test_labels).float().mean().item()}
for k, v in acc.items():
    lo, hi = stats.accuracy_interval(v, len(test_labels))
    print(f"{k:<26}{100 * v:6.2f}%  (95% interval {100 * lo:.2f}–{100 * hi:.2f}%)")
print(f"real int8 vs fp32: {int8_vs_fp.summary()}")
print(f"real int8 predicts the same class as fp32 on {100 * agree_fp:.2f}% and as chapter 02's simulation on "
      f"{100 * agree_sim:.2f}% of the {len(test_labels):,} test images")

# %% [markdown]
# The simulation and the runtime do not quantize the same way (chapter 02: power-of-two scales,
# one per layer, round-to-nearest; ONNX Runtime: any scale, per output channel, uint8 activations
# with a zero point), so they disagree on a few images — mostly where fp32's top two classes are
# close. Now the artefact and the time: the ONNX file is what one would ship.

# %% slideshow={"slide_type": "subslide"}
size = {"torch.save (fp32)": measure.file_bytes(teacher), "ONNX fp32": ort_fp32.file_bytes,
        "ONNX int8 (QDQ)": ort_int8.file_bytes}
print("  ".join(f"{k}: {measure.human_bytes(v)}" for k, v in size.items()),
      f"→ int8 file {size['ONNX fp32'] / size['ONNX int8 (QDQ)']:.2f}× smaller")
one = {}
for batch, x in ((1, x1), (64, x64)):
    for threads in (1,):
        ort_fp32_1, ort_int8_1 = deploy.OnnxModel(fp32_path, threads=threads), deploy.OnnxModel(int8_path, threads=threads)
        rounds = measure.latency_rounds({"eager fp32": teacher, "eager simulated int8": sim_int8,
                                         "ORT fp32": ort_fp32_1, "ORT int8": ort_int8_1}, x, min_run_time=LAT_S,
                                        threads=threads, rounds=ROUNDS)
        one[batch] = rounds
        med = {k: sorted(v)[len(v) // 2] for k, v in rounds.items()}
        print(f"batch {batch:>2}, {threads} thread: " + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in med.items())
              + f" → ORT int8 {med['ORT fp32'] / med['ORT int8']:.2f}× faster than ORT fp32 "
                f"({stats.timing_verdict(rounds['ORT int8'], rounds['ORT fp32'])})")

# %% slideshow={"slide_type": "subslide"}
gain_lo, gain_hi = (100 * v for v in int8_vs_fp.difference_interval())      # int8 − fp32, paired, 95%
lost_lo, lost_hi = -gain_hi, -gain_lo                                         # points lost by int8
int8_verdict = stats.bound_verdict(lost_lo, lost_hi, 1.0)
checks.claim("12", "Jacob et al.: 8-bit integer inference keeps the float accuracy",
             paper="int8 within ~1-2 pt of float on ImageNet classifiers; 4× smaller weights",
             ours=f"VGG-small, static QDQ per-channel: {100 * int8_vs_fp.accuracy_b:.2f}% → "
                  f"{100 * int8_vs_fp.accuracy_a:.2f}%: {lost_lo:+.2f} to {lost_hi:+.2f} points lost (95% interval, "
                  f"paired; McNemar p = {int8_vs_fp.p_value:.2g}) on {len(test_labels):,} images; "
                  f"file {size['ONNX fp32'] / size['ONNX int8 (QDQ)']:.2f}× smaller",
             holds=int8_verdict == "holds", within_noise=int8_verdict == "within noise")
v64 = stats.timing_verdict(one[64]["ORT int8"], one[64]["ORT fp32"])
checks.claim("12", "real int8 kernels are faster than fp32 on a CPU with int8 dot-product instructions",
             paper="int8 inference 2-4× faster on CPUs (Jacob et al., on Arm)",
             ours=f"VGG-small, ONNX Runtime, batch 64, 1 thread: "
                  f"{statistics.median(one[64]['ORT fp32']) / statistics.median(one[64]['ORT int8']):.2f}× "
                  f"({'VNNI' if features.get('avx512_vnni') or features.get('avx_vnni') else 'no VNNI'} CPU)",
             holds=v64 == "holds", within_noise=v64 == "within noise",
             why="" if v64 == "holds" else "the quantize / dequantize steps and layout changes cost more than the "
                                           "integer GEMMs save on this CPU")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Where int8 is *not* faster
#
# int8 pays where a big GEMM does many MACs per value it loads. A depthwise separable block
# (chapter 09) and an IGC block (chapter 06) do few: a 3×3 depthwise conv does 9 MACs per input
# value, a grouped 1×1 conv a handful, and a permutation none — while every QuantizeLinear /
# DequantizeLinear still reads and writes the whole tensor. Measured next to a regular 3×3 block
# (64 channels, 14×14, batch 64, one thread):

# %%
SMALL = (64, 14, 14)
blocks = {"depthwise separable (ch. 09)": smallnets.depthwise_separable_block(64, 64).eval(),
          "IGCV1 L=4, M=16 (ch. 06)": igc.IGCV1(64, 4, 16).eval(),
          "regular 3×3 conv-BN-ReLU": models.conv_bn_relu(64, 64).eval()}
xs = torch.randn(64, *SMALL, generator=torch.Generator().manual_seed(2))
block_int8 = {}
for name, block in blocks.items():
    slug = name.split(" ")[0]
    p32 = deploy.export_onnx(block, WORK / f"block-{slug}.onnx", SMALL)
    p8 = deploy.quantize_int8(p32, WORK / f"block-{slug}.int8.onnx", xs[:32])
    r = measure.latency_rounds({"fp32": deploy.OnnxModel(p32, threads=1), "int8": deploy.OnnxModel(p8, threads=1)},
                               xs, min_run_time=LAT_S, threads=1, rounds=ROUNDS)
    block_int8[name] = (statistics.median(r["fp32"]) / statistics.median(r["int8"]), stats.timing_verdict(r["int8"], r["fp32"]))
    print(f"{name:<30} {measure.count_macs(block, SMALL) / 1e6:6.1f}M MACs/image  ORT int8 / fp32 speed-up "
          f"{block_int8[name][0]:.2f}× ({block_int8[name][1]})")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Predict first:** which VGG-small layer gains most from int8? Its three 3×3 convs after the first
# do the same number of MACs (each stage halves the image and doubles the channels). ONNX Runtime's
# profiler then times every node of both graphs (batch 64; the layer is the PyTorch block).

# %% slideshow={"slide_type": "subslide"}
def by_block(rows):
    out = {}
    for r in rows:
        if "Conv" in r.op or "Gemm" in r.op:
            block = r.layer.split(".")[0]
            out[block] = out.get(block, 0.0) + r.seconds
    return out


runs = config.pick(quick=5, full=30, dry=2)
t32, t8 = by_block(deploy.layer_times(fp32_path, x64, runs)), by_block(deploy.layer_times(int8_path, x64, runs))
layer_rows = {r.name.split(".")[0]: r for r in measure.layer_table(teacher, SIZE)}
print(f"{'block':>6}{'MACs':>10}{'in→out':>10}{'fp32 µs':>10}{'int8 µs':>10}{'saved µs':>10}")
for b in t32:
    row = layer_rows.get(b)
    conv = teacher[int(b)][0] if isinstance(teacher[int(b)], nn.Sequential) else teacher[int(b)]
    shape = f"{conv.in_channels}→{conv.out_channels}" if isinstance(conv, nn.Conv2d) else f"{conv.in_features}→{conv.out_features}"
    print(f"{b:>6}{row.macs if row else 0:>10,}{shape:>10}{1e6 * t32[b]:>10.0f}{1e6 * t8.get(b, 0):>10.0f}"
          f"{1e6 * (t32[b] - t8.get(b, 0)):>10.0f}")
winner = max(t32, key=lambda b: t32[b] - t8.get(b, 0))
print(f"the block that gained most: {winner}")
slower = [f"VGG-small block {b} ({1e6 * t32[b]:.0f} → {1e6 * t8.get(b, 0):.0f} µs)" for b in t32 if t8.get(b, 0) > t32[b]]
slower += [f"{name} ({ratio:.2f}×)" for name, (ratio, _) in block_int8.items() if ratio < 1]
print("int8 NOT faster here:", "; ".join(slower) if slower else "nowhere on this CPU in this run")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. The honest latency table
#
# Every chapter claimed a saving in MACs or bytes. Here each technique is measured against its
# base in **both** runtimes (batch 64, one thread, interleaved rounds): the saving on paper, the
# speed-up in PyTorch eager, the speed-up in ONNX Runtime, and the mechanism of the gap.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** (before running this section) predict which technique gains the most measured time per MAC
# saved, and why unstructured pruning gains almost none; why simulated int8 is *slower* in PyTorch
# eager.

# %%
base_macs = measure.count_macs(teacher, SIZE)
unstructured = deploy.apply_stack(teacher, "unstructured 90%")
thin = prune.prune_channels(teacher, 0.5)
low = lowrank.compress_model(teacher, 0.5, "channels").eval()
dc_path = WORK / "vgg-small.dc"
dc_bytes = compressed_file.save_compressed(unstructured, dc_path)      # relative indices + Huffman, fewest bits
dc_model = compressed_file.load_compressed(dc_path, models.vgg_small())
wae_net = recipes.shipped_model("wae-classifier-fmnist")
rows = deploy.HonestTable()

# %% slideshow={"slide_type": "subslide"}
plan = [  # technique, base, variant, cost ratio, cost, mechanism, onnx (base, variant) or None, input
    ("unstructured 90% (ch. 04)", teacher, unstructured, base_macs / deploy.effective_macs(unstructured, SIZE), "MACs",
     "dense kernels multiply the zeros: the same GEMMs run", None, x64),
    ("channels 50% (ch. 04)", teacher, thin, base_macs / measure.count_macs(thin, SIZE), "MACs",
     "smaller GEMMs run less efficiently; pooling, BN, copies do not shrink as much", None, x64),
    ("low rank 50% (ch. 03)", teacher, low, base_macs / measure.count_macs(low, SIZE), "MACs",
     "two thin convs per layer: more kernel launches and an extra tensor written and read", None, x64),
    ("depthwise separable (ch. 09)", blocks["regular 3×3 conv-BN-ReLU"], blocks["depthwise separable (ch. 09)"],
     measure.count_macs(blocks["regular 3×3 conv-BN-ReLU"], SMALL) / measure.count_macs(blocks["depthwise separable (ch. 09)"], SMALL),
     "MACs", "the depthwise conv is memory-bound (9 MACs per value loaded): no GEMM to run fast", None, xs),
    ("IGCV1 block (ch. 06)", blocks["regular 3×3 conv-BN-ReLU"], blocks["IGCV1 L=4, M=16 (ch. 06)"],
     measure.count_macs(blocks["regular 3×3 conv-BN-ReLU"], SMALL) / measure.count_macs(blocks["IGCV1 L=4, M=16 (ch. 06)"], SMALL),
     "MACs", "grouped convs are small GEMMs, and the two permutations copy the whole tensor", None, xs),
    ("int8 (ch. 02 / here)", teacher, sim_int8, size["ONNX fp32"] / size["ONNX int8 (QDQ)"], "bytes",
     "eager: simulated int8 is float plus rounding; ORT: VNNI integer GEMMs minus the Q/DQ cost", (ort_fp32, ort_int8), x64),
    ("Deep Compression file (ch. 05)", teacher, dc_model, measure.file_bytes(teacher) / dc_bytes, "bytes",
     "the file is decoded to dense float weights before it runs: bytes on disk shrink, not work", None, x64),
    ("WAE's cheaper input (ch. 10)", teacher, wae_net, base_macs / measure.count_macs(wae_net, SIZE), "MACs",
     "the base net sees a 14×14 image, but the encoder and high-frequency branch add small, slow layers", None, x64),
]

# %% slideshow={"slide_type": "subslide"}
for technique, b, v, ratio, cost, why, onnx_pair, x in plan:
    kw = dict(base_onnx=onnx_pair[0], variant_onnx=onnx_pair[1]) if onnx_pair else {}
    rows.append(deploy.honest_row(technique, b, v, x, cost_ratio=ratio, cost=cost, mechanism=why,
                                  folder=WORK, min_run_time=LAT_S, rounds=ROUNDS, **kw))
print(rows.table())
fig = plt.figure(figsize=(8, 5.5))
deploy.draw_honest(rows, fig)
plt.show()

# %% slideshow={"slide_type": "fragment"}
close = [r for r in rows if r.cost == "MACs" and r.ort_ratio >= r.cost_ratio / 1.5]
checks.claim("12", "a MAC saving becomes the same speed-up (the cost model of chapters 01-11)",
             kind="course", paper="speed-up ≈ MAC ratio (the premise of counting MACs)",
             ours=f"ONNX Runtime: {len(close)} of {sum(r.cost == 'MACs' for r in rows)} MAC-saving techniques reach "
                  f"2/3 of their MAC ratio; " + ", ".join(f"{r.technique.split(' (')[0]} {r.cost_ratio:.1f}×→{r.ort_ratio:.1f}×"
                                                         for r in rows if r.cost == "MACs"),
             holds=len(close) == sum(r.cost == "MACs" for r in rows),
             why="memory traffic, small GEMMs, layer launches and unused zeros: MACs are not time")

# %% [markdown]
# Reading the table: unstructured zeros save nothing in either runtime (dense kernels); channel
# pruning is the technique whose saving most becomes speed; depthwise and grouped blocks fall far
# short of their MAC ratios — in ONNX Runtime even more than in eager on this CPU; int8 is only
# faster in a runtime with integer kernels (eager's simulation is *slower*); Deep Compression
# saves disk and download, not time.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Explorer: a model and a technique stack in both runtimes
#
# Cells measured above are shown at once; any other (model, stack, precision) is measured live when
# picked (export, quantization, accuracy on 2,000 images, latency at batch 64: a few seconds).
# The full profile measures every cell of VGG-small up front.

# %% slideshow={"slide_type": "subslide"}
EXPLORE = {"VGG-small": teacher, "VGG-small distilled student": distilled, "LeNet-5": exports["LeNet-5"][0]}


def live(name, stack, precision):
    return deploy.measure_cell(name, EXPLORE[name], stack, precision, small_test, x64, calib_x[:64], WORK,
                               min_run_time=LAT_S)


cells = {("VGG-small", "none", "fp32"): deploy.Cell("VGG-small", "none", "fp32", ort_fp32.file_bytes, base_macs,
                                                    acc["fp32"], 1e3 * statistics.median(one[64]["eager fp32"]),
                                                    1e3 * statistics.median(one[64]["ORT fp32"])),
         ("VGG-small", "none", "int8"): deploy.Cell("VGG-small", "none", "int8", ort_int8.file_bytes, base_macs,
                                                    acc["int8 (ORT)"], 1e3 * statistics.median(one[64]["eager simulated int8"]),
                                                    1e3 * statistics.median(one[64]["ORT int8"]))}
for stack in config.pick(quick=(), full=deploy.STACKS[1:], dry=("channels 50%",)):
    for precision in deploy.PRECISIONS:
        cells["VGG-small", stack, precision] = live("VGG-small", stack, precision)
explorer = deploy.deploy_explorer(cells, "VGG-small", "none", "int8", live=live)
explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. Exercises
#
# **Exercise 1 — the gradient of the distillation loss (derive).** Section 1 wrote the loss and
# gave the soft term's gradient per logit. Derive ∂L/∂z for the whole batch-mean loss
# α·T²·KL(p_T(teacher) ‖ p_T(student)) + (1 − α)·CE(student, labels) with respect to the student's
# logits — with the `T²` factor, the cross-entropy term and the mean over the batch — and write it
# in closed form (no autograd: the checker refuses `backward` and `torch.autograd.grad`, and compares
# your formula with autograd itself). Then read it: at large T, what does the soft term's gradient
# tend to?

# %%
def my_distillation_gradient(student_logits, teacher_logits, labels, T, alpha):
    # BEGIN SOLUTION
    p_student, p_teacher = torch.softmax(student_logits / T, 1), torch.softmax(teacher_logits / T, 1)
    onehot = F.one_hot(labels, student_logits.shape[1]).to(student_logits.dtype)
    soft = alpha * T * (p_student - p_teacher)                 # T² · (p_s − p_t) / T
    hard = (1 - alpha) * (torch.softmax(student_logits, 1) - onehot)
    return (soft + hard) / student_logits.shape[0]
    # END SOLUTION


# %%
ex.check_distillation_gradient(my_distillation_gradient)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 2 — how many calibration images?** Below, VGG-small is quantized with calibration
# sets of growing size and each int8 model is scored on 2,000 test images. Write
# `calibration_size(sizes, accuracies, tolerance_pt)`: the smallest size **from which on** every
# measured accuracy stays within `tolerance_pt` points of the best one on the curve. Careful: a
# small set can be lucky once, and the sizes may come in any order.

# %%
curve = {}
for n in CURVE:
    p = deploy.quantize_int8(fp32_path, WORK / f"VGG-small.calib{n}.onnx", calib_x[:n] if n <= len(calib_x)
                             else torch.cat([x for x, _ in calib_loader])[:n])
    curve[n] = deploy.onnx_evaluate(deploy.OnnxModel(p), small_test)
print("calibration images → int8 accuracy on 2,000 test images:",
      ", ".join(f"{n}: {100 * a:.2f}%" for n, a in curve.items()))


def calibration_size(sizes, accuracies, tolerance_pt):
    # BEGIN SOLUTION
    pairs = sorted(zip(sizes, accuracies))
    best = max(accuracies)
    for i, (n, _) in enumerate(pairs):
        if all(a >= best - tolerance_pt / 100 - 1e-12 for _, a in pairs[i:]):
            return n
    return pairs[-1][0]
    # END SOLUTION


# %%
ex.check_calibration_size(calibration_size, list(curve), list(curve.values()))

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Exercise 3 — the integer arithmetic of an int8 layer.** Write `int8_matmul(a, a_scale, a_zp, b,
# b_scale, b_zp, y_scale, y_zp)`: `a` is uint8 (activations, M×K), `b` int8 (weights, K×N); return
# the uint8 output codes exactly as ONNX Runtime's `QLinearMatMul` does (the formula of §4: integer
# products summed in int32, one float rescale, round half to even, add the zero point, saturate).
# The checker runs ONNX Runtime itself and compares every code.

# %%
def int8_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
    # BEGIN SOLUTION
    acc = (a.to(torch.int32) - a_zp) @ (b.to(torch.int32) - b_zp)
    y = torch.round(acc.to(torch.float32) * (a_scale * b_scale / y_scale)) + y_zp
    return y.clamp(0, 255).to(torch.uint8)
    # END SOLUTION


# %%
ex.check_int8_matmul(int8_matmul)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8. What we measured
#
# (Latency figures depend on the machine and its load: the README's Measured section records them
# from a quiet run, with the CPU named.)

# %%
print(f"{'measurement':<58}{'value':>24}")
print(f"{'pruned VGG-small: distilled / fine-tuned accuracy':<58}"
      f"{100 * kd_vs_ft.accuracy_a:>14.2f}% / {100 * kd_vs_ft.accuracy_b:.2f}%")
print(f"{'ONNX Runtime vs PyTorch: largest output difference':<58}{max(c.max_abs for c in checks_out.values()):>24.1e}")
print(f"{'VGG-small accuracy fp32 / int8 ORT / int8 simulated':<58}"
      f"{100 * acc['fp32']:>8.2f}% {100 * acc['int8 (ORT)']:.2f}% {100 * acc['int8 simulated (ch. 02)']:.2f}%")
print(f"{'int8 ORT predicts as fp32 / as simulated int8':<58}{100 * agree_fp:>15.2f}% / {100 * agree_sim:.2f}%")
print(f"{'ONNX file fp32 / int8':<58}{measure.human_bytes(size['ONNX fp32']):>13} / {measure.human_bytes(size['ONNX int8 (QDQ)'])}")
for batch in (1, 64):
    r = one[batch]
    print(f"{f'ORT int8 speed-up over ORT fp32, batch {batch}':<58}"
          f"{statistics.median(r['ORT fp32']) / statistics.median(r['ORT int8']):>23.2f}×")
for name, (ratio, verdict) in block_int8.items():
    print(f"{'ORT int8 speed-up, ' + name:<58}{ratio:>23.2f}×")
for r in rows:
    print(f"{r.technique + ': ' + r.cost + ' / eager / ORT ×':<58}{r.cost_ratio:>10.2f} {r.eager_ratio:5.2f} {r.ort_ratio:5.2f}")
print(f"notebook wall time: {time.perf_counter() - T0:.0f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
# - G. Hinton, O. Vinyals, J. Dean, *Distilling the Knowledge in a Neural Network*, NeurIPS Deep Learning
#   Workshop 2015.
# - B. Jacob, S. Kligys, B. Chen et al., *Quantization and Training of Neural Networks for Efficient
#   Integer-Arithmetic-Only Inference*, CVPR 2018.
# - H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf, *Pruning Filters for Efficient ConvNets*, ICLR 2017
#   (the student of §2).
# - ONNX operator specification: QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv (onnx.ai).
# - ONNX Runtime documentation, *Quantize ONNX models* (static quantization, QDQ format, calibration).
# - Intel, *Deep Learning Boost (VNNI)*: the `vpdpbusd` instruction.
