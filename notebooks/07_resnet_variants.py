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
# # 07 · ResNet variants: pre-activation, shortcuts, ResNeXt, stochastic depth, SE
#
# *A residual block computes `x + F(x)`: as a matrix, `I + W`. Every variant in this chapter changes
# that matrix — or the path the gradient takes through it.* Chapters 01–06 made one layer's matrix
# cheaper; this chapter is about the architecture around it: why the identity in `I + W` lets a
# 110-layer network train, what happens when you touch it, and three ways to spend parameters better
# (cardinality, random depth, channel attention).
#
# **You will be able to**
# 1. derive `x_L = x_l + Σ F(x_i)` and `∂E/∂x_l = ∂E/∂x_L · (1 + ∂ΣF/∂x_l)`, and measure the
#    gradient reaching every block of a plain net, a ResNet and a pre-activation ResNet;
# 2. build the **post-** and **pre-activation** units and the paper's **shortcut variants**
#    (scaling, gating, 1×1 conv, dropout), and show that scaling by λ scales the gradient path by λ^depth;
# 3. build a **ResNeXt** block in its three equivalent forms and see form (c) as a block-diagonal matrix;
# 4. compute **stochastic depth**'s survival probabilities and expected depth, and measure its saving;
# 5. add **Squeeze-and-Excitation** and count what it costs;
# 6. compare plain, post-act, pre-act, +SE and +stochastic depth nets at equal depth.

# %% slideshow={"slide_type": "skip"}
import copy
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from course_lib import channels, checkpoints, checks, config, data, measure, recipes, resnets, stats, train
from course_lib.conv import plot_weight_matrix
from course_lib.exercises import ch07 as ex

print(config.describe())
config.seed_everything(0)
notebook_start = time.perf_counter()
DATASET = config.pick(quick="fashion-mnist", full="cifar10")
INFO = data.dataset_info(DATASET)
SHAPE = (INFO.channels, INFO.size, INFO.size)             # one image: (C, H, W)
CLASSES = len(INFO.classes)
DEVICE = config.device()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Why identity shortcuts matter
#
# Write a residual unit as `x_{l+1} = x_l + F(x_l)` (identity shortcut, nothing after the
# addition). Unrolling from any shallower unit l to any deeper unit L:
#
# `x_L = x_l + Σ_{i=l}^{L−1} F(x_i)` — the deep feature is the shallow one **plus a sum** of residuals.
#
# By the chain rule, for a loss E:
#
# `∂E/∂x_l = ∂E/∂x_L · (1 + ∂/∂x_l Σ_{i=l}^{L−1} F(x_i))`.
#
# The `1` carries the gradient from the top straight to unit l; the second term would have to be
# exactly −1 for every example of a mini-batch to cancel it. A **plain** net instead has
# `x_L = W_{L−1} ⋯ W_l x_l` (linear picture) and `∂E/∂x_l = ∂E/∂x_L · Π W_i`: a product of L − l
# matrices, which shrinks or grows geometrically. The linear picture, from scratch:

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
C_demo, depth_demo = 32, 50
Ws = [torch.randn(C_demo, C_demo) / math.sqrt(C_demo) * 0.9 for _ in range(depth_demo)]
g = torch.randn(C_demo)                                 # ∂E/∂x_L
plain_g, res_g = [g.norm().item()], [g.norm().item()]
gp, gr = g.clone(), g.clone()
for W in reversed(Ws):                                  # back-propagate one layer at a time
    gp = W.T @ gp                                        # plain: multiply by W
    gr = (torch.eye(C_demo) + 0.1 * W).T @ gr            # residual: multiply by I + W (a small F)
    plain_g.append(gp.norm().item())
    res_g.append(gr.norm().item())
print(f"after {depth_demo} linear layers: plain ‖g‖ = {plain_g[-1]:.2e}, residual ‖g‖ = {res_g[-1]:.2e} "
      f"(start {plain_g[0]:.2f})")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Measured on real networks at initialisation
#
# `resnets.gradient_norms(model, x)` returns `‖∂E/∂x_l‖` at the input of every residual unit for one
# batch (training-mode BatchNorm, as at the first step). Three nets of the same depth: **plain**
# (`shortcut="none"`), the original **post-activation** ResNet and the **pre-activation** ResNet.
# With BatchNorm in every layer, a plain net's gradient does not simply vanish at initialisation — it
# *explodes* towards the input (BN rescales every layer's Jacobian); either way it is a product, and
# its size swings by orders of magnitude across depth. The residual nets' gradients vary too (BN
# rescales their branches as well), but far less: the identity path adds a `1` to every factor.

# %% slideshow={"slide_type": "subslide"}
GRAD_DEPTH = config.pick(quick=56, full=110)
x_grad = torch.randn(config.pick(quick=16, full=64, dry=4), *SHAPE)
grad_curves = {}
for label, preact, shortcut in (("plain", False, "none"), ("post-act ResNet", False, "identity"),
                                ("pre-act ResNet", True, "identity")):
    torch.manual_seed(0)
    net = resnets.resnet_cifar(GRAD_DEPTH, preact=preact, shortcut=shortcut, num_classes=CLASSES,
                               in_channels=INFO.channels)
    grad_curves[label] = resnets.gradient_norms(net.to(DEVICE), x_grad.to(DEVICE))
spread = {k: max(v) / min(v) for k, v in grad_curves.items()}
fig, ax = plt.subplots(figsize=(7, 3.2))
for label, norms in grad_curves.items():
    ax.semilogy(range(1, len(norms) + 1), norms, "o-", ms=3, label=f"{label} (max/min {spread[label]:.3g})")
ax.set_xlabel("residual unit l (input side → output side)")
ax.set_ylabel("‖∂E/∂x_l‖")
ax.set_title(f"gradient reaching each unit at initialisation, depth {GRAD_DEPTH}")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.show()
for label, norms in grad_curves.items():
    print(f"{label:>16}: first unit {norms[0]:.3g}, last unit {norms[-1]:.3g}, max/min over units {spread[label]:.3g}")

# %% slideshow={"slide_type": "fragment"}
checks.claim("07", f"identity shortcuts keep the gradient far steadier across depth than a plain net (depth {GRAD_DEPTH}, at init)",
             kind="derivation", paper="∂E/∂x_l = ∂E/∂x_L·(1 + …): no product of Jacobians",
             ours=f"max/min of ‖∂E/∂x_l‖ over units: plain {spread['plain']:.3g}, post-act "
                  f"{spread['post-act ResNet']:.3g}, pre-act {spread['pre-act ResNet']:.3g}",
             holds=max(spread["post-act ResNet"], spread["pre-act ResNet"]) < spread["plain"], must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Relatives.** ResNet was not the first net with skips: **Highway networks** (Srivastava et al.
# 2015) gate them, `y = T(x)·F(x) + (1 − T(x))·x`, and trained 100+ layers, but their gates can
# close the shortcut — exactly the "exclusive gating" of section 3; ResNet drops the gate and
# trains 1,000 layers. GoogLeNet mixes branches of different depth in one module; **deeply-fused
# nets** and **FractalNet** build a net from many paths of different lengths (long and short ones
# together) — the same ensemble-of-paths view that stochastic depth (section 5) makes explicit.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Post- versus pre-activation units
#
# The **original** unit (He et al., CVPR 2016) is `x_{l+1} = ReLU(x_l + BN(conv(ReLU(BN(conv(x_l))))))`:
# the ReLU *after* the addition sits on the shortcut path, so `x_{l+1} ≠ x_l + F(x_l)` and the clean
# derivation above does not apply. The **full pre-activation** unit (He et al., ECCV 2016) moves BN
# and ReLU in front of each conv: `x_{l+1} = x_l + conv(ReLU(BN(conv(ReLU(BN(x_l))))))` — nothing after
# the addition. (The paper compares five orders; with ReLU *before* the addition the residual is
# ≥ 0 and the signal can only grow.) Here is the pre-activation unit from scratch, compared with
# `resnets.PreActBlock`:

# %%
def preact_from_scratch(x, block):
    a = F.relu(block.bn1(x))                           # BN → ReLU, before the first conv
    f = block.conv2(F.relu(block.bn2(block.conv1(a))))  # BN → ReLU, before the second conv
    return x + f                                       # nothing after the addition


block = resnets.PreActBlock(8, 8).eval()
x = torch.randn(2, 8, 6, 6)
with torch.no_grad():
    print(f"from scratch vs resnets.PreActBlock: max |diff| = {(preact_from_scratch(x, block) - block(x)).abs().max():.1e}")
    assert torch.allclose(preact_from_scratch(x, block), block(x), atol=1e-6)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Why full pre-activation wins** (the paper's two reasons). (1) *A clean shortcut*: nothing after
# the addition, so the `1 + …` of section 1 holds exactly and the signal of any unit reaches any
# other directly — this matters more the deeper the net (ResNet-1001: 7.61 % → 4.92 % error on
# CIFAR-10). (2) *Normalised inputs to both weight layers*: in the original unit the second conv's
# output is added to an un-normalised shortcut and the sum is never normalised before the next
# unit's first conv; with BN → ReLU in front of each conv, **both** weight layers of every unit see
# a batch-normalised input, which regularises (the paper sees a *higher* training loss but a
# *lower* test error than post-activation). The ImageNet figures (single crop, top-1/top-5 error, %)
# show the same gain growing with depth:

# %% slideshow={"slide_type": "fragment"}
print(f"{'ImageNet model (Identity Mappings, Table 5)':<50} {'crop':>5} {'top-1':>6} {'top-5':>6}")
for name, crop, top1, top5 in resnets.PAPER_PREACT_IMAGENET:
    print(f"{name:<50} {crop:>5} {top1:>6.1f} {top5:>6.1f}")
gain = {d: next(r[2] for r in resnets.PAPER_PREACT_IMAGENET if r[0] == f"ResNet-{d} (original)" and r[1] == "320")
        - next(r[2] for r in resnets.PAPER_PREACT_IMAGENET if r[0] == f"ResNet-{d}, pre-activation") for d in (152, 200)}
checks.claim("07", "the pre-activation gain on ImageNet grows with depth (paper's figures, 320 crop)", kind="derivation",
             paper="ResNet-152 21.3 → 21.1, ResNet-200 21.8 → 20.7 top-1",
             ours=f"gain {gain[152]:.1f} pt (152 layers) vs {gain[200]:.1f} pt (200 layers)",
             holds=gain[200] > gain[152] > 0, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim check: with its residual branch zeroed, a pre-activation unit is exactly the identity; a
# post-activation unit is not — it is a ReLU.** (`resnets.zero_residual_branches` sets every last
# conv of a branch to zero.)

# %% slideshow={"slide_type": "fragment"}
pre0 = resnets.zero_residual_branches(resnets.PreActBlock(8, 8))
post0 = resnets.zero_residual_branches(resnets.BasicBlock(8, 8))
with torch.no_grad():
    pre_is_id = torch.equal(pre0(x), x)
    post_is_id, post_is_relu = torch.equal(post0(x), x), torch.equal(post0(x), F.relu(x))
checks.claim("07", "a pre-act unit with a zero residual is the identity; a post-act unit is a ReLU",
             kind="derivation", paper="pre-activation: clean identity shortcut",
             ours=f"pre-act = identity: {pre_is_id}; post-act = identity: {post_is_id}, = ReLU: {post_is_relu}",
             holds=pre_is_id and not post_is_id and post_is_relu, must_hold=True)

# %% [markdown]
# `resnets.resnet_cifar(depth, preact, num_classes, in_channels, widths)` builds the CIFAR ResNet of
# depth `6n + 2`: a 3×3 stem, three stages of n units (widths 16-32-64, stride 2 at each new stage,
# 1×1 projection shortcuts there), global pooling and one linear layer. Parameter counts against
# He et al.'s table (they use parameter-free zero-padding shortcuts, so ours is a little larger):

# %% slideshow={"slide_type": "subslide"}
for depth, (paper_params, paper_err) in resnets.PAPER_CIFAR_ERRORS.items():
    if depth > 110:
        continue
    ours = measure.count_params(resnets.resnet_cifar(depth, num_classes=10, in_channels=3))
    print(f"ResNet-{depth:<3}: paper {paper_params / 1e6:.2f}M ({paper_err}% CIFAR-10 error), ours {ours / 1e6:.3f}M")
r110 = measure.count_params(resnets.resnet_cifar(110, num_classes=10, in_channels=3))
checks.claim("07", "CIFAR ResNet-110 has 1.7M parameters", kind="derivation", paper="1.7M", ours=f"{r110 / 1e6:.3f}M",
             holds=abs(r110 / 1.7e6 - 1) < 0.03, must_hold=True)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Shortcut variants
#
# Identity Mappings (ECCV 2016) keeps the unit and changes only `h(x)` in `x_{l+1} = h(x_l) + F(x_l)`
# (`resnets.resnet_cifar(..., shortcut=...)`):
#
# | `shortcut=` | computes | |
# |---|---|---|
# | `"identity"` | `x + F` | |
# | `"scale"` | `λ·x + F` | constant scaling, λ = `scale` |
# | `"exclusive_gate"` | `(1 − g)·x + g·F`, `g = σ(W_g x + b_g)` | 1×1 conv gate, bias init `gate_bias` |
# | `"shortcut_gate"` | `(1 − g)·x + F` | shortcut-only gating |
# | `"conv1x1"` | `W_s x + F` | a 1×1 conv on every shortcut |
# | `"dropout"` | `mask ⊙ x + F`, keep probability λ | dropout shortcut (E = λ·x) |
# | `"none"` | `F` | the plain net |
#
# With `h(x) = λx`, unrolling gives `x_L = λ^{L−l} x_l + Σ λ^{…} F(x_i)` and the gradient's direct
# path becomes `λ^{L−l}`: it vanishes for λ < 1 and explodes for λ > 1. A nonlinear `h` gives a
# product of `h′` instead. The paper's ResNet-110 on CIFAR-10 (test error, %; *fail* = more than 20 %):

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** why does a 1×1 shortcut, with *more* capacity, train worse?

# %%
print(f"{'shortcut':<22} {'on shortcut':<13} {'on F':<6} {'error':<7} remark")
for row in resnets.PAPER_SHORTCUT_TABLE:
    print(f"{row[0]:<22} {row[1]:<13} {row[2]:<6} {row[3]:<7} {row[4]}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim check: scaling the shortcut by λ scales the gradient path by λ per unit.** Take one stage
# of n units (no projection shortcut in it) with every residual branch zeroed, so that only the
# shortcut path is left: the gradient at the first unit must be exactly `λ^{n−1}` times the gradient
# at the last.

# %% slideshow={"slide_type": "fragment"}
n_stage, lam = config.pick(quick=18, full=18), 0.5
stage = resnets.zero_residual_branches(resnets.resnet_cifar(6 * n_stage + 2, preact=True, widths=(16,), shortcut="scale",
                                                            scale=lam, num_classes=CLASSES, in_channels=INFO.channels))
norms_lam = resnets.gradient_norms(stage.to(DEVICE), x_grad[:4].to(DEVICE))
measured, predicted = norms_lam[0] / norms_lam[-1], lam ** (n_stage - 1)
checks.claim("07", f"shortcut scaled by λ = {lam}: gradient path scaled by λ^(units − 1) over {n_stage} units",
             kind="derivation", paper="Π λ vanishes for λ < 1", ours=f"first/last unit gradient {measured:.4g}, λ^{n_stage - 1} = {predicted:.4g}",
             holds=abs(measured / predicted - 1) < 1e-3, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The residual-network explorer
#
# Before training anything, see the gradient flow of every variant. Choose the depth, the unit
# (post-/pre-activation), the shortcut variant and SE on/off. Left: the gradient norm reaching each
# unit at initialisation (grey: the same net without shortcuts). Right: parameters and MACs per
# part. The net is narrow (8-16-32) on 16×16 inputs so that it answers fast. Try: `scale` (λ = 0.5)
# vs `identity` at depth 110; `none`; `post-act` vs `pre-act`.

# %%
explorer = resnets.residual_explorer(depth=56, block="pre-act", shortcut="identity", se="off")
explorer

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Training with each shortcut
#
# The paper's point is that the variants fail to **optimise**: the 1×1 conv shortcut has *more*
# capacity than the identity, yet a *higher training error*. A fair test races the paper's own
# failing set-ups — λ = 0.5 on the shortcut, exclusive gating initialised at **b_g = 0**, dropout
# 0.5 (all "fail" in Table 1), the shortcut-only gate at b_g = 0 (12.86 %) and the 1×1 conv
# (12.22 %) — against the identity, at a depth where the product of shortcut factors can act
# (56 layers: 27 units, and 0.5^26 ≈ 1.5·10⁻⁸), on the same images with the same schedule and seed.
# `resnets.shortcut_race(train_data, depth, widths, epochs, lr)` does exactly that (post-act units,
# as in the paper's table) and records the training loss of every step.
#
# It runs here in a short version (quick: ResNet-20, 1,024 images — seconds). The claims are
# decided on the **long run** shipped with the course: the same function at depth 56 (widths
# 4-8-16) for one epoch over all 60,000 training images (`python -m course_lib.resnets race`; the
# paper's 110 layers cost more than this CPU could give), loaded and drawn next to it. Full profile:
# ResNet-110 (16-32-64) on CIFAR-10 for 30 epochs, here, and that run decides.

# %% slideshow={"slide_type": "subslide"}
SV = config.pick(quick=dict(depth=20, widths=(4, 8, 16), train_subset=1024, epochs=1, batch=32, lr=0.05),
                 full=dict(depth=110, widths=(16, 32, 64), train_subset=None, epochs=30, batch=config.cap(128, dry=8), lr=0.1))
sv_train, _ = data.loaders(DATASET, SV["batch"], train_subset=SV["train_subset"], test_subset=256,
                           augment=False, device=DEVICE)
live_runs = resnets.shortcut_race(sv_train, SV["depth"], SV["widths"], SV["epochs"], SV["lr"],
                                  in_channels=INFO.channels, num_classes=CLASSES, device=DEVICE)
panels = {f"live: ResNet-{SV['depth']}, {SV['epochs']} epoch(s) on {len(sv_train.labels):,} images": live_runs}
if config.profile() == "quick":
    race = resnets.load_race()
    decided_by = (f"the shipped long run, ResNet-{race['depth']} ({'-'.join(map(str, race['widths']))}), "
                  f"{race['epochs']} epoch(s) on {race['train_images']:,} images")
    panels[decided_by] = race["runs"]
else:
    decided_by = f"this run, ResNet-{SV['depth']}, {SV['epochs']} epochs"
decisive = list(panels.values())[-1]
fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 3.2), squeeze=False)
for ax, (title, runs) in zip(axes[0], panels.items()):
    steps = len(next(iter(runs.values()))["loss"])
    window = max(1, steps // 20)                        # smooth the per-step losses over this many steps
    for kind, r in runs.items():
        smooth = torch.tensor(r["loss"]).unfold(0, window, 1).mean(1)
        ax.plot(range(window, len(r["loss"]) + 1), smooth, label=f"{kind} (paper {r['paper']})")
    ax.set(xlabel="training step", ylabel=f"training loss (mean of {window} steps)", title=title)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
plt.show()

# %% slideshow={"slide_type": "subslide"}
final = resnets.final_losses(decisive)
for kind, (loss, se) in sorted(final.items(), key=lambda kv: kv[1][0]):
    print(f"{kind:>28}: training loss over the last 10% of steps {loss:.3f} ± {se:.3f} (paper: {decisive[kind]['paper']})")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim checks**, decided on the run named in each line. Two losses whose difference is within
# two standard errors of the end-of-training noise are *within noise*.

# %% slideshow={"slide_type": "fragment"}
def loss_verdict(worse, better):
    """"holds" when ``worse`` ends above ``better`` by more than 2 standard errors, "within noise"
    when they are that close, else "does not hold"."""
    (lw, sw), (lb, sb) = final[worse], final[better]
    if abs(lw - lb) <= 2 * (sw ** 2 + sb ** 2) ** 0.5:
        return "within noise"
    return "holds" if lw > lb else "does not hold"


others = [k for k in final if k != "identity"]
verdicts = {k: loss_verdict(k, "identity") for k in others}
best_kind = min(final, key=lambda k: final[k][0])
checks.claim("07", "the identity shortcut optimises best among the six shortcuts (training loss)",
             paper="identity 6.61% vs 8.70%–fail for the others (ResNet-110, CIFAR-10)",
             ours=f"{decided_by}: identity {final['identity'][0]:.3f}; "
                  + ", ".join(f"{k} {final[k][0]:.3f} ({verdicts[k]})" for k in others),
             holds=all(v == "holds" for v in verdicts.values()),
             within_noise=all(v != "does not hold" for v in verdicts.values()) and "within noise" in verdicts.values())
v = verdicts["1×1 conv"]
checks.claim("07", "a 1×1 conv shortcut (more capacity) trains worse than the identity",
             paper="1×1 conv 12.22% error, higher training error than identity",
             ours=f"{decided_by}: training loss 1×1 {final['1×1 conv'][0]:.3f} ± {final['1×1 conv'][1]:.3f} vs identity "
                  f"{final['identity'][0]:.3f} ± {final['identity'][1]:.3f}",
             holds=v == "holds", within_noise=v == "within noise")

# %% [markdown] slideshow={"slide_type": "subslide"}
# Read the curves, not just the verdicts: a shortcut that "fails" in the paper cannot bring its
# training loss down with the others, because its gradient's direct path is a product of factors
# below 1 (λ = 0.5 per unit; `1 − σ(b_g)` = 0.5 per unit for a gate at b_g = 0; dropout's mask
# keeps half the shortcut) — section 1's `1 + …` is gone. The live short run is too short and too
# shallow for that product to matter (20 layers: 9 units), so its order can differ from the long run's.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · ResNeXt: cardinality
#
# Xie et al. (CVPR 2017) start from the simplest neuron, `Σ w_i x_i` — split, transform, merge —
# and build the unit `y = x + Σ_{i=1}^{C} T_i(x)`: **C** identical bottleneck paths (1×1 reduce to d
# channels → 3×3 → 1×1 expand). The **cardinality** C is a new dimension besides depth and width.
# Three equivalent forms:
#
# * **(a)** C separate paths, outputs summed;
# * **(b)** early concatenation: the paths' 3×3 outputs concatenated, then **one** 1×1 conv (a sum of
#   1×1 convs on separate inputs = one 1×1 conv on their concatenation);
# * **(c)** one 1×1 conv to C·d channels, **one grouped 3×3 conv** with C groups, one 1×1 conv.
#
# `resnets.ResNeXtBlock(channels, cardinality, width, form)` (width = C·d; a BN after the aggregation,
# so the forms are exactly equivalent) and `resnets.convert_resnext(block, form)` (moves the weights):

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
rx = resnets.ResNeXtBlock(64, cardinality=8, width=32, form="a").eval()
x = torch.randn(2, 64, 8, 8)
forms = {f: resnets.convert_resnext(rx, f).eval() for f in resnets.FORMS}
with torch.no_grad():
    diffs = {f: (b(x) - rx(x)).abs().max().item() for f, b in forms.items()}
print({f: f"{d:.1e}" for f, d in diffs.items()}, "| params:", {f: measure.count_params(b) for f, b in forms.items()})
checks.claim("07", "ResNeXt forms (a), (b), (c) compute the same function", kind="derivation", paper="equivalent forms",
             ours=f"max |diff| {max(diffs.values()):.1e}", holds=max(diffs.values()) < 1e-5, must_hold=True)

# %% [markdown]
# In chapter 01's weight-matrix picture, form (c)'s grouped 3×3 conv is **block-diagonal**: C blocks of
# d × 9d (the C paths never talk inside the 3×3); the 1×1 convs on either side are dense.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3))
plot_weight_matrix(forms["c"].reduce, ax=axes[0], title="1×1 reduce 64 → 32: dense")
plot_weight_matrix(forms["c"].conv, ax=axes[1], title="grouped 3×3, C = 8: block-diagonal")
plot_weight_matrix(forms["c"].expand, ax=axes[2], title="1×1 expand 32 → 64: dense")
fig.tight_layout()
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim checks: the template's budget, and ResNeXt-50 vs ResNet-50.** The paper keeps a block's
# parameters at `C·(256·d + 9·d² + d·256) ≈ 70k` (ResNeXt 32×4d vs the ResNet bottleneck, C = 1,
# d = 64), so that cardinality is compared at equal cost; ResNeXt-50 (32×4d) is then about the size
# and cost of ResNet-50 (22.2 % vs 23.9 % top-1 error on ImageNet).

# %% slideshow={"slide_type": "fragment"}
budgets = {(c, d): resnets.resnext_params(c, d) for c, d in ((1, 64), (2, 40), (4, 24), (8, 14), (32, 4))}
real = sum(m.weight.numel() for m in resnets.ResNeXtBlock(256, 32, 128).modules() if isinstance(m, nn.Conv2d))
print(", ".join(f"C={c}, d={d}: {p:,}" for (c, d), p in budgets.items()), f"| real 32×4d convs: {real:,}")
checks.claim("07", "ResNeXt template: C·(256d + 9d² + 256d) ≈ 70k for (32, 4d) and (1, 64d)", kind="derivation", paper="≈ 70k",
             ours=f"{budgets[(32, 4)]:,} and {budgets[(1, 64)]:,} (real block {real:,})",
             holds=real == budgets[(32, 4)] and all(abs(p / 70e3 - 1) < 0.03 for p in (budgets[(32, 4)], budgets[(1, 64)])),
             must_hold=True)
side = config.pick(quick=112, full=224)
tv = {name: getattr(torchvision.models, name)() for name in ("resnet50", "resnext50_32x4d")}
tv_cost = {name: (measure.count_params(m), measure.count_macs(m, (3, side, side))) for name, m in tv.items()}
p_ratio = tv_cost["resnext50_32x4d"][0] / tv_cost["resnet50"][0]
m_ratio = tv_cost["resnext50_32x4d"][1] / tv_cost["resnet50"][1]
checks.claim("07", f"torchvision resnext50_32x4d vs resnet50: same size and cost ({side}×{side} input)",
             kind="derivation", paper="≈ equal complexity (25.0M vs 25.5M, 4.2 vs 4.1 GFLOPs)",
             ours=f"params {tv_cost['resnext50_32x4d'][0] / 1e6:.2f}M vs {tv_cost['resnet50'][0] / 1e6:.2f}M "
                  f"({p_ratio:.3f}×), MACs {m_ratio:.3f}×",
             holds=abs(p_ratio - 1) < 0.05 and abs(m_ratio - 1) < 0.05, must_hold=True)
del tv

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Cardinality against depth and width.** The paper's Table 3 changes C and d together so that
# every net keeps the same complexity, and the error falls as cardinality rises. Its conclusion:
# *increasing cardinality is more effective than going deeper or wider* — ResNeXt-101 (32×4d) has a
# lower error than ResNet-200 at about half its compute, and ResNeXt was 2nd in ILSVRC 2016.

# %% slideshow={"slide_type": "fragment"}
fig, ax = plt.subplots(figsize=(6, 2.8))
for base_net, row in resnets.PAPER_RESNEXT_CARDINALITY.items():
    ax.plot(list(row), list(row.values()), "o-", label=f"{base_net} complexity")
    print(f"{base_net:<11}", "  ".join(f"{k}: {v:.1f}%" for k, v in row.items()))
ax.set(xlabel="cardinality × bottleneck width (equal complexity)", ylabel="ImageNet top-1 error (%)",
       title="ResNeXt, Table 3 (the paper's figures)")
ax.legend(fontsize=8)
plt.show()
falls = all(list(r.values()) == sorted(r.values(), reverse=True) for r in resnets.PAPER_RESNEXT_CARDINALITY.values())
checks.claim("07", "at equal complexity, more cardinality gives a lower error (paper's Table 3)", kind="derivation",
             paper="ResNet-50 23.9 → 22.2, ResNet-101 22.0 → 21.2 top-1 (1×64d → 32×4d)",
             ours=f"error falls monotonically with C in both rows: {falls}", holds=falls, must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The ResNeXt presets of the channel-connectivity explorer
#
# Chapter 06's explorer with two extra presets: `resnext 3×3` (the grouped conv alone: L = cardinality,
# M = d — a block-diagonal path matrix, "disconnected") and `resnext` (the whole branch: dense 1×1 →
# grouped 3×3 → dense 1×1: every output sees every input again). Move L (cardinality) and M (d).

# %%
for preset in resnets.RESNEXT_PRESETS:
    s = channels.connectivity_state(preset, C=16, L=4, M=2, presets=resnets.RESNEXT_PRESETS)
    print(f"{preset:>12}: {s.verdict:<12} {s.params:>5} params | {s.title}")
resnext_explorer = resnets.resnext_connectivity_explorer(C=16, cardinality=4, d=2)
resnext_explorer

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Stochastic depth
#
# Huang et al. (ECCV 2016) drop **whole residual branches** at random while training:
# `x_{l+1} = ReLU(b_l · F(x_l) + x_l)` with `b_l ~ Bernoulli(p_l)` and a survival probability that
# decays linearly with depth, `p_l = 1 − (l/L)(1 − p_L)`, `p_L = 0.5`. At test time every branch is
# kept and scaled by its expected value: `x_{l+1} = ReLU(p_l · F(x_l) + x_l)`. The expected number of
# branches computed in training is
#
# `E[depth] = Σ_{l=1}^{L} p_l = L − (1 − p_L)(L + 1)/2 = (3L − 1)/4` for `p_L = 0.5`,
#
# so training is about 25 % cheaper; and the net is an implicit ensemble of 2^L nets of different depth
# (what dropout is for width, stochastic depth is for depth). Unlike dropout, which the paper notes
# fails to help next to BatchNorm, it works *with* BN: a dropped unit is still a valid ResNet unit.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** What does stochastic depth save at training time, and at test time?

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Uniform or linear?** The paper also tries the same `p_l = p_L` for every unit; the linear rule
# (keep the early units, which compute the low-level features every later unit depends on, almost
# always) is better. **Smaller `p_L`** trains faster (fewer branches computed) but its error is
# higher. **ResNet-1202** on CIFAR-10 overfits with constant depth (He et al.: 7.93 % error, worse
# than ResNet-110's 6.43 %); with stochastic depth it *beats* ResNet-110 (Huang et al.: 4.91 %). On
# ImageNet there is no gain — the paper's figures:

# %% slideshow={"slide_type": "fragment"}
L_sd = 54                                          # ResNet-110: 54 residual units
probs = resnets.survival_probabilities(L_sd, p_last=0.5)
print("p_1, p_2, …, p_L:", [f"{p:.3f}" for p in probs[:3]], "…", [f"{p:.3f}" for p in probs[-2:]])
brute = sum(probs)
checks.claim("07", "stochastic depth: expected depth (3L − 1)/4 for p_L = 0.5 (L = 54)", kind="derivation", paper=f"{(3 * L_sd - 1) / 4}",
             ours=f"Σ p_l = {brute:.4f}", holds=abs(brute - (3 * L_sd - 1) / 4) < 1e-9, must_hold=True)
for where, constant, stochastic in resnets.PAPER_STOCHASTIC_DEPTH:
    print(f"{where:<30} constant depth {constant:5.2f}%  stochastic depth {stochastic:5.2f}%  ({stochastic - constant:+.2f} pt)")
fig, ax = plt.subplots(figsize=(6.5, 2.6))
for p_last in (0.2, 0.5, 0.8):
    ax.plot(range(1, L_sd + 1), resnets.survival_probabilities(L_sd, p_last), label=f"linear, p_L = {p_last} "
            f"(E[depth] {resnets.expected_depth(L_sd, p_last):.1f})")
ax.axhline(0.5, color="grey", ls="--", label=f"uniform p = 0.5 (E[depth] {0.5 * L_sd:.1f})")
ax.set(xlabel="unit l", ylabel="survival probability p_l", title=f"survival rules, L = {L_sd} units")
ax.legend(fontsize=7)
plt.show()

# %% [markdown] slideshow={"slide_type": "subslide"}
# **From scratch: a skipped unit costs nothing.** One post-activation unit with stochastic depth,
# written out (identity shortcut): in training a coin `b_l` decides, and a dropped unit **does not
# compute its branch at all** — the saving is real, not a multiplication by zero. At test time every
# branch is computed and scaled by `p_l`.

# %% slideshow={"slide_type": "subslide"}
def sd_unit_from_scratch(unit, x, p_keep, training):
    """``ReLU(b·F(x) + x)`` in training (b ~ Bernoulli(p_keep)), ``ReLU(p_keep·F(x) + x)`` at test time."""
    if not training:
        return F.relu(p_keep * unit.residual(x) + x)
    if torch.rand(()) < p_keep:                     # b = 1: compute the branch
        return F.relu(unit.residual(x) + x)
    return F.relu(x)                                # b = 0: the branch is never computed


torch.manual_seed(0)
sd_net = resnets.set_stochastic_depth(resnets.resnet_cifar(20, widths=(8, 8, 8), num_classes=CLASSES,
                                                           in_channels=INFO.channels), p_last=0.5)
units = [b for b in resnets.residual_blocks(sd_net) if isinstance(b.shortcut, nn.Identity)]
x_sd = F.relu(torch.randn(8, 8, 6, 6))              # a unit's input: the previous unit's ReLU output
same = True
for step in range(50):                              # the same coins (same seed): the same outputs
    for unit in units:
        for training in (True, False):
            unit.train(training)
            torch.manual_seed(step)
            lib = unit(x_sd)
            torch.manual_seed(step)
            same &= torch.allclose(lib, sd_unit_from_scratch(unit, x_sd, unit.p_survive, training), atol=1e-6)
print(f"library unit = from scratch, in training and at test time: {same}")
assert same

branch_calls = [0]
hooks = [u.conv1.register_forward_hook(lambda *_: branch_calls.__setitem__(0, branch_calls[0] + 1)) for u in units]

# %% slideshow={"slide_type": "subslide"}
steps = 200
for unit in units:
    unit.train()
with torch.no_grad():
    for _ in range(steps):
        for unit in units:
            unit(x_sd)
for h in hooks:
    h.remove()
expected = steps * sum(u.p_survive for u in units)
print(f"branches the library computed in {steps} training steps of {len(units)} units: {branch_calls[0]} "
      f"of {steps * len(units)} (Σ p_l × steps = {expected:.0f})")

# %% [markdown]
# **torchvision's `StochasticDepth`** (`torchvision.ops.stochastic_depth(x, p, mode, training)`, where
# p is the *drop* probability) has two modes: `"row"` draws one coin **per sample** (each example of
# the batch has its own depth), `"batch"` one coin for the **whole batch**. And it follows the
# *inverted* convention: in training it divides kept branches by the survival probability, at test
# time it does nothing — the paper instead does nothing in training and multiplies by `p_l` at test
# time. Both agree in expectation: the training-time mean equals the test-time output, each in its
# own convention. `resnets` uses torchvision's op for `"row"` and converts it to the paper's
# convention; in `"batch"` mode a dropped branch is **not computed at all** — which is where the
# time saving comes from.

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
f_branch = torch.randn(4, 3)
p_keep = 0.7
tv_train = torch.stack([torchvision.ops.stochastic_depth(f_branch, 1 - p_keep, "row", True) for _ in range(20000)])
paper_train = torch.stack([f_branch * (torch.rand(4, 1) < p_keep) for _ in range(20000)])
print(f"torchvision: E[train] vs test (identity): max |diff| {(tv_train.mean(0) - f_branch).abs().max():.3f}")
print(f"paper:       E[train] vs test (× p):      max |diff| {(paper_train.mean(0) - p_keep * f_branch).abs().max():.3f}")
print("a 'batch'-mode draw drops all rows or none:",
      [int((torchvision.ops.stochastic_depth(torch.ones(4, 1), 0.5, 'batch', True) != 0).sum()) for _ in range(8)])

# %% [markdown]
# **Measured: the training-time saving.** One epoch of the same pre-act ResNet with and without
# stochastic depth (`p_L = 0.5`, batch mode), on the same data; one run each.

# %% slideshow={"slide_type": "subslide"}
SDT = config.pick(quick=dict(depth=56, widths=(8, 16, 32), train_subset=512, batch=64),
                  full=dict(depth=110, widths=(16, 32, 64), train_subset=None, batch=config.cap(128, dry=8)))
sd_train, _ = data.loaders(DATASET, SDT["batch"], train_subset=SDT["train_subset"], test_subset=256, device=DEVICE)
epoch_s = {}
for label, p_last in (("without", None), ("with", 0.5)):
    config.seed_everything(0)
    net = resnets.resnet_cifar(SDT["depth"], preact=True, widths=SDT["widths"], p_last=p_last,
                               num_classes=CLASSES, in_channels=INFO.channels)
    epoch_s[label] = train.fit(net, sd_train, None, epochs=1, lr=0.05, progress=False, device=DEVICE).seconds[0]
units = 3 * (SDT["depth"] - 2) // 6
sd_ratio = epoch_s["with"] / epoch_s["without"]
print(f"ResNet-{SDT['depth']}: {epoch_s['without']:.2f} s/epoch without, {epoch_s['with']:.2f} s with stochastic depth "
      f"→ {sd_ratio:.2f}× (branches computed: {resnets.expected_depth(units) / units:.2f}× on average)")
checks.claim("07", f"stochastic depth trains faster (ResNet-{SDT['depth']}, seconds per epoch, one run)",
             paper="≈ 25% less training time (p_L = 0.5)", ours=f"{sd_ratio:.2f}× the time per epoch",
             holds=sd_ratio < 1.0)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Squeeze-and-Excitation
#
# Hu et al. (CVPR 2018) recalibrate channels. For a feature map `u` with C channels:
# **squeeze** `z_c = (1/HW) Σ_{i,j} u_c(i, j)` (global average); **excitation**
# `s = σ(W₂ δ(W₁ z))` with `W₁: C/r × C`, `δ` = ReLU, `W₂: C × C/r`; **scale** `x̃_c = s_c · u_c`. On a
# residual unit it sits on the branch, before the addition. The reduction ratio r = 16 by default.

# %% slideshow={"slide_type": "subslide"}
def se_from_scratch(u, se):
    z = u.mean(dim=(2, 3))                                         # squeeze: (N, C)
    W1, b1 = se.fc1.weight[:, :, 0, 0], se.fc1.bias
    W2, b2 = se.fc2.weight[:, :, 0, 0], se.fc2.bias
    s = torch.sigmoid(F.relu(z @ W1.T + b1) @ W2.T + b2)           # excitation: (N, C)
    return u * s[:, :, None, None]                                 # scale each channel


se = resnets.SqueezeExcite(32, reduction=16)
u = torch.randn(2, 32, 7, 7)
with torch.no_grad():
    out = se(u)
    diff = (se_from_scratch(u, se) - out).abs().max().item()
    ratio_map = out / u
    per_channel = torch.allclose(ratio_map, ratio_map[:, :, :1, :1].expand_as(ratio_map), atol=1e-5)
print(f"from scratch vs resnets.SqueezeExcite: max |diff| = {diff:.1e}")
checks.claim("07", "SE rescales each channel by one factor (constant over positions)", kind="derivation", paper="x̃_c = s_c · u_c",
             ours=f"output/input constant over H×W per channel: {per_channel}", holds=per_channel and diff < 1e-6,
             must_hold=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim check: the parameter cost.** Each SE adds `2C²/r` weights; over a network
# `(2/r) Σ_s N_s C_s²` (N_s units of C_s output channels in stage s). On torchvision's `resnet50`
# stage widths (256, 512, 1024, 2048 with 3, 4, 6, 3 units) the paper says +2.5M on ≈ 25M (≈ 10 %);
# without the last stage's SE, ≈ 4 %.

# %% slideshow={"slide_type": "fragment"}
se50 = resnets.se_resnet50_params()
se50_short = resnets.se_resnet50_params(skip_last_stage=True)
print(f"stages {se50['stages']}: (2/16)·Σ N_s C_s² = {se50['formula']:,} weights "
      f"(+ biases: {se50['real']:,} in real modules) on {se50['resnet50']:,}")
checks.claim("07", "SE-ResNet-50 adds ≈ 2.5M parameters (≈ 10 %) to ResNet-50", kind="derivation", paper="+2.5M on 25M (≈ 10 %)",
             ours=f"+{se50['formula'] / 1e6:.2f}M = {100 * se50['fraction']:.1f} %", holds=round(se50["formula"] / 1e6, 1) == 2.5,
             must_hold=True)
checks.claim("07", "dropping the last stage's SE cuts the overhead to ≈ 4 %", kind="derivation", paper="≈ 4 %",
             ours=f"{100 * se50_short['fraction']:.1f} %", holds=round(100 * se50_short["fraction"]) == 4, must_hold=True)

# %% [markdown]
# Three more findings of the SE paper, to know rather than to measure here: the reduction ratio r
# is **not monotonic** — a smaller r (more parameters) does not reliably give a lower error, and
# r = 16 is a balance of accuracy and cost; the excitations of **early** SE blocks are nearly the
# same for every class (they recalibrate generic features), those of **late** blocks are
# **class-specific** (which is why the last stage's SE can be dropped cheaply, above: it matters
# least); and an ensemble of SENets **won ILSVRC 2017** with 2.251 % top-5 error.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · Experiment: plain, post-act, pre-act, +SE, +stochastic depth at equal depth
#
# Five nets of the same depth and widths, trained with the **same recipe** (data, epochs, schedule,
# seed) and compared on the **same test images**, every accuracy with its 95 % interval and every
# comparison with the paired test (`stats.compare`: exact McNemar on the images only one of the two
# gets right). **Quick**: ResNet-20 with widths 8-16-32 on Fashion-MNIST, shipped checkpoints
# (`resnet20-*-fmnist`, `python -m course_lib train --recipe NAME`: the fast recipe on all 60,000
# training images for 10 epochs — batch 256, one-cycle to lr 0.2, label smoothing 0.1, flips — the
# test accuracy after every epoch in the manifest), evaluated here on all 10,000 test images as their
# recipe tests them (each image and its mirror image vote). **Full**: ResNet-56 with widths 16-32-64
# on CIFAR-10, trained here for 160 epochs (the paper's schedule length) and cached.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** Why can't a 20-layer net show a *depth* effect (§7's verdicts)?

# %% slideshow={"slide_type": "subslide"}
VARIANTS = {"plain": dict(shortcut="none"), "post-act": dict(), "pre-act": dict(preact=True),
            "pre-act + SE": dict(preact=True, se=True, reduction=4),
            "pre-act + SD": dict(preact=True, p_last=0.5)}
CKPT = {"plain": "resnet20-plain-fmnist", "post-act": "resnet20-post-fmnist", "pre-act": "resnet20-preact-fmnist",
        "pre-act + SE": "resnet20-se-fmnist", "pre-act + SD": "resnet20-sd-fmnist"}
EXP = config.pick(quick=dict(depth=20, widths=(8, 16, 32)),
                  full=dict(depth=56, widths=(16, 32, 64), epochs=160, batch=config.cap(128, dry=8), lr=0.1))
_, exp_test = data.loaders(DATASET, config.cap(500, dry=8), train_subset=1000, device=DEVICE)
if config.profile() == "full":
    exp_train, _ = data.loaders(DATASET, EXP["batch"], device=DEVICE)
    cache = config.data_dir() / "checkpoints-full"
    cache.mkdir(parents=True, exist_ok=True)
nets = {}
for name, kw in VARIANTS.items():
    if config.profile() == "quick":
        nets[name] = recipes.shipped_model(CKPT[name]).to(memory_format=torch.channels_last)  # as trained
    else:
        config.seed_everything(0)
        net = resnets.resnet_cifar(EXP["depth"], widths=EXP["widths"], num_classes=CLASSES, in_channels=INFO.channels, **kw)
        train.fit(net, exp_train, None, epochs=EXP["epochs"], lr=EXP["lr"], progress=True, device=DEVICE,
                  checkpoint=cache / f"ch07-resnet{EXP['depth']}-{name.replace(' ', '').replace('+', '-')}.pt")
        nets[name] = net.eval()

RUN = config.pick(quick="shipped, each 10 epochs on all 60,000 training images (the fast recipe)",
                  full=f"each {EXP.get('epochs')} epochs here")
x1 = torch.zeros(1, *SHAPE)

# %% slideshow={"slide_type": "subslide"}
correct, rows = {}, []

# %%
for name, net in nets.items():
    predictions, labels = train.predict(net.to(DEVICE).eval(), exp_test, tta=True)
    correct[name] = (predictions == labels).cpu()
    acc = correct[name].float().mean().item()
    cpu_net = copy.deepcopy(net).cpu().float()
    rows.append(dict(name=name, acc=acc, ci=stats.accuracy_interval(acc, len(labels)), params=measure.count_params(net),
                     macs=measure.count_macs(cpu_net, SHAPE), net=cpu_net))
lat = measure.latency_rounds({r["name"]: r.pop("net") for r in rows}, x1, rounds=3,
                             min_run_time=config.cap(0.1, dry=0.01))
n_test = len(labels)
print(f"{'ResNet-' + str(EXP['depth']):<14} {'test acc (95% interval)':>24} {'params':>9} {'MACs':>12} {'CPU ms/img (rounds)':>22}")
for r in rows:
    r["ms"] = 1e3 * sorted(lat[r["name"]])[1]
    rounds_ms = f"{1e3 * min(lat[r['name']]):.2f}–{1e3 * max(lat[r['name']]):.2f}"
    print(f"{r['name']:<14} {100 * r['acc']:>8.2f}% ({100 * r['ci'][0]:.1f}–{100 * r['ci'][1]:.1f}) {r['params']:>9,} "
          f"{r['macs']:>12,} {r['ms']:>9.2f} ({rounds_ms})")
res = {r["name"]: r for r in rows}

# %% [markdown] slideshow={"slide_type": "subslide"}
# **A diagnosis before the verdicts.** Batch-mode stochastic depth drops a random set of units for
# each training batch, and BatchNorm's running statistics — an average over the last few dozen
# batches — follow the drop patterns of those last batches, while the test-time network keeps every
# unit (scaled by `p_l`). `resnets.recalibrate_batchnorm` re-estimates the statistics on 50 training
# batches *with the test-time network* (what `torch.optim.swa_utils.update_bn` does, but with no unit
# dropped): how much of stochastic depth's loss is the statistics, and how much is the method?

# %%
sd_net = copy.deepcopy(nets["pre-act + SD"]).to(DEVICE)
calibration, _ = data.loaders(DATASET, 256, train_subset=config.cap(None, dry=64), augment=False, device=DEVICE)
resnets.recalibrate_batchnorm(sd_net, calibration, batches=config.cap(50, dry=2))
correct["SD, BN recalibrated"] = (train.predict(sd_net, exp_test, tta=True)[0] == labels).cpu()
recalibrated = stats.compare(correct["SD, BN recalibrated"], correct["pre-act"])
SIDE = {"holds": "significantly above", "does not hold": "significantly below", "within noise": "within noise"}
print(f"pre-act + SD as trained: {100 * res['pre-act + SD']['acc']:.2f}%; with its BatchNorm statistics re-estimated "
      f"on the test-time net: {recalibrated.summary()} against pre-act")

# %% [markdown] slideshow={"slide_type": "subslide"}
# **Claim checks**, each decided by the paired test on the same test images: *holds* when
# the paper's side is significantly better (p < 0.05), *does not hold* when the other side is, and
# *within noise* when the test cannot tell them apart.

# %% slideshow={"slide_type": "fragment"}
def paired_claim(text, better, worse, paper, why="", depth=EXP["depth"], run=RUN):
    comparison = stats.compare(correct[better], correct[worse])
    verdict = comparison.verdict()
    checks.claim("07", f"{text} (ResNet-{depth}, {DATASET})", paper=paper,
                 ours=f"{better} vs {worse}: {comparison.summary()}; {run}", holds=verdict == "holds",
                 within_noise=verdict == "within noise", why=why if verdict == "does not hold" else "")
    return comparison


cmp_plain = paired_claim("residual beats plain at equal depth", "post-act", "plain",
                         "plain-56 worse than plain-20; ResNets gain from depth")
cmp_pre = paired_claim("pre-activation ≥ post-activation", "pre-act", "post-act", "ResNet-110: 6.37% vs 6.61% error",
                       why="pre-activation's gains (a clean shortcut, normalised inputs to both convs) grow with "
                           "the number of stacked units: 9 units are too few for them to limit training")
cmp_se = paired_claim("SE improves accuracy", "pre-act + SE", "pre-act", "SE-ResNet-50 −1.5 top-1 error (ImageNet)",
                      why="SE's gain comes from reweighting many channels; with 8–32 channels per unit and r = 4 "
                          "the excitation has 2–8 hidden units")

# %% slideshow={"slide_type": "subslide"}
cmp_sd = paired_claim("stochastic depth improves accuracy", "pre-act + SD", "pre-act",
                      "ResNet-110 CIFAR-10: 6.41% → 5.25% error",
                      why="batch-mode stochastic depth leaves BatchNorm with the statistics of the last batches' "
                          "drop patterns, not of the test-time net: re-estimated (recalibrate_batchnorm) it reaches "
                          f"{100 * recalibrated.accuracy_a:.2f}% against pre-act's {100 * recalibrated.accuracy_b:.2f}% "
                          f"({SIDE[recalibrated.verdict()]}); and it regularises very deep nets whose many units "
                          "are redundant (ResNet-110 to 1202): with 9 units, dropping up to half of them at a step "
                          "takes away much of a small net's depth")

# %% [markdown]
# **At 56 layers, where the paper's mechanisms can act.** The shortcut, pre-activation and
# stochastic depth are *depth* effects: He et al. see the plain net degrade from 20 to 56 layers, and
# the later papers' gains grow with the number of units. So the quick profile runs the same
# comparisons again at 56 layers (27 units), the same widths 8-16-32 and the same recipe — 10 epochs on
# all 60,000 images — shipped (`python -m course_lib train --recipe resnet56-preact-fmnist --register`,
# about 25 CPU-minutes a net) and evaluated here on all 10,000 test images. To fit the notebook's time
# budget they are scored without the flip vote and in bf16 (the precision they trained in; the
# manifest's figures are fp32 with the flip), and for the comparisons across depths the ResNet-20 nets
# are scored again the same way. (The full profile's own run is ResNet-56.)

# %% slideshow={"slide_type": "subslide"}
if config.profile() == "quick":
    CKPT56 = {"plain": "resnet56-plain-fmnist", "post-act": "resnet56-post-fmnist",
              "pre-act": "resnet56-preact-fmnist", "pre-act + SD": "resnet56-sd-fmnist"}
    e56 = checkpoints.manifest_entry(CKPT56["post-act"])
    RUN56 = f"shipped, {e56['epochs']} epochs on {e56['train_images']:,} images, widths 8-16-32; bf16, no flip vote"
    print(f"{'(bf16, no flip)':<14} {'ResNet-20':>10} {'ResNet-56 (95% interval)':>30}")
    bf16 = torch.autocast(DEVICE.type, dtype=torch.bfloat16)
    for name, recipe_name in CKPT56.items():
        net56 = recipes.shipped_model(recipe_name).to(DEVICE, memory_format=torch.channels_last)
        with bf16:
            correct[f"{name}, 56"] = (train.predict(net56, exp_test)[0] == labels).cpu()
            correct[f"{name}, 20"] = (train.predict(nets[name].to(DEVICE), exp_test)[0] == labels).cpu()
        acc56, acc20 = (correct[f"{name}, {d}"].float().mean().item() for d in (56, 20))
        low, high = stats.accuracy_interval(acc56, n_test)
        print(f"{name:<14} {100 * acc20:>9.2f}% {100 * acc56:>12.2f}% ({100 * low:.1f}–{100 * high:.1f})")
    resnets.recalibrate_batchnorm(net56, calibration, batches=config.cap(20, dry=2))   # net56 is the SD net
    with bf16:
        correct["pre-act + SD, 56, BN recalibrated"] = (train.predict(net56, exp_test)[0] == labels).cpu()
    recal56 = stats.compare(correct["pre-act + SD, 56, BN recalibrated"], correct["pre-act, 56"])
    print(f"pre-act + SD at 56 with its BatchNorm statistics re-estimated: {recal56.summary()} against pre-act")
    WHY_56 = {"sd": "batch-mode stochastic depth leaves BatchNorm with the statistics of the last batches' drop "
                    f"patterns: re-estimated on the test-time net it reaches {100 * recal56.accuracy_a:.2f}% against "
                    f"pre-act's {100 * recal56.accuracy_b:.2f}% ({SIDE[recal56.verdict()]}); 27 units are still far "
                    "from the 54–600 of the paper's ResNet-110 to 1202, where dropping units regularises"}

# %% slideshow={"slide_type": "subslide"}
if config.profile() == "quick":
    paired_claim("residual beats plain at equal depth", "post-act, 56", "plain, 56",
                 "plain-56 worse than plain-20; ResNets gain from depth", depth=56, run=RUN56,
                 why=WHY_56.get("plain", ""))
    paired_claim("a deeper plain net trains worse (degradation): plain-20 beats plain-56", "plain, 20", "plain, 56",
                 "CIFAR-10: plain-56 has higher training and test error than plain-20", depth="20 vs 56", run=RUN56,
                 why=WHY_56.get("degradation", ""))
    paired_claim("a deeper residual net is more accurate: ResNet-56 beats ResNet-20", "post-act, 56", "post-act, 20",
                 "CIFAR-10: 8.75% (20) → 6.97% (56) error", depth="56 vs 20", run=RUN56,
                 why=WHY_56.get("deeper", ""))
    paired_claim("pre-activation ≥ post-activation", "pre-act, 56", "post-act, 56", "ResNet-110: 6.37% vs 6.61% error",
                 depth=56, run=RUN56, why=WHY_56.get("preact", ""))
    paired_claim("stochastic depth improves accuracy", "pre-act + SD, 56", "pre-act, 56",
                 "ResNet-110 CIFAR-10: 6.41% → 5.25% error", depth=56, run=RUN56, why=WHY_56.get("sd", ""))

# %% [markdown]
# **SE's latency where the paper measured it.** The SE paper times ResNet-50 against SE-ResNet-50
# at 224×224 on a CPU (one image: 164 ms vs 167 ms, +2 %). Here the same pair — torchvision's
# `resnet50` and the same net with SE blocks added (`resnets.add_se_to_torchvision_resnet`), random
# weights — in interleaved rounds; the claim "SE costs at most 10 % more time" *holds* when every
# round of SE-ResNet-50 beats 1.1 × every round of ResNet-50, and is *within noise* when they overlap.

# %% slideshow={"slide_type": "subslide"}
torch.manual_seed(0)
r50 = torchvision.models.resnet50()
se_r50 = resnets.add_se_to_torchvision_resnet(copy.deepcopy(r50))
x224 = torch.randn(1, 3, 224, 224)
se_rounds = measure.latency_rounds({"ResNet-50": r50, "SE-ResNet-50": se_r50}, x224, rounds=3,
                                   min_run_time=config.cap(0.3, dry=0.01))
r50_ms, se_ms = (1e3 * sorted(se_rounds[k])[1] for k in ("ResNet-50", "SE-ResNet-50"))
for k, t in se_rounds.items():
    print(f"{k:>13}: {', '.join(f'{1e3 * v:.1f}' for v in t)} ms per image (rounds)")
se_verdict = stats.timing_verdict(se_rounds["SE-ResNet-50"], [1.1 * t for t in se_rounds["ResNet-50"]])
checks.claim("07", "SE-ResNet-50 costs at most ≈ 10 % more CPU time than ResNet-50 (224×224, batch 1)",
             paper="164 ms vs 167 ms (+2 %)", ours=f"{r50_ms:.1f} ms vs {se_ms:.1f} ms ({se_ms / r50_ms - 1:+.1%}, medians of 3 rounds)",
             holds=se_verdict == "holds", within_noise=se_verdict == "within noise",
             why="SE's pooling, two small fc layers and a multiplication per block are memory-bound operations "
                 "that this CPU runs slowly next to the convolutions" if se_verdict == "does not hold" else "")
del r50, se_r50

# %% [markdown] slideshow={"slide_type": "subslide"}
# What to read from this: the parameter and MAC columns are exact (SE adds weights but almost no
# MACs; stochastic depth adds nothing at test time). On the tiny ResNet-20 the latency column shows
# SE's small operations costing far more time than their MACs suggest; on ResNet-50 at 224×224,
# where the convolutions dominate, they are a small fraction — the paper's setting. The accuracy
# verdicts come in two depths, every net trained alike: the shortcut, pre-activation and stochastic
# depth are *depth* effects (He et al. show the plain net degrading as it goes from 20 to 56 layers;
# the later papers' gains are at 110–1001 layers), so the 20-layer verdicts say little about them,
# and the 56-layer ones are the test; a *does not hold* names the mechanism that keeps an effect from
# acting. (The full profile trains ResNet-56 at widths 16-32-64 for 160 epochs on CIFAR-10.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · Exercises
#
# Three exercises: one to build and measure, one to derive, one to build and measure again. The
# checkers live in `course_lib.exercises.ch07`; each refuses an answer that calls the library's own
# version of what it asks for.
#
# ### Exercise 1 — the parameter-free shortcut (build it, then measure it)
# Section 2's networks use a 1×1 projection where a unit halves the resolution and doubles the
# width; He et al.'s CIFAR ResNets use **option A** instead: the input sampled at every other row
# and column (stride 2), its `C` channels followed by `out_channels − C` channels of zeros. Write it
# (it must keep the gradient to `x`). The cell after the checker then measures what option A saves
# on ResNet-20 — before you run it, predict: more or less than 10% of the network's parameters?

# %%
def my_zero_pad_shortcut(x, out_channels):
    # BEGIN SOLUTION
    sub = x[:, :, ::2, ::2]
    zeros = sub.new_zeros(sub.shape[0], out_channels - sub.shape[1], sub.shape[2], sub.shape[3])
    return torch.cat([sub, zeros], dim=1)
    # END SOLUTION


# %%
ex.check_zero_pad_shortcut(my_zero_pad_shortcut)

# %% slideshow={"slide_type": "subslide"}
r20 = resnets.resnet20(num_classes=10, in_channels=1)
projection = sum(p.numel() for name, p in r20.named_parameters() if ".shortcut." in name)
total = sum(p.numel() for p in r20.parameters())
print(f"ResNet-20: {total:,} parameters, of which the projection shortcuts own {projection:,} "
      f"({100 * projection / total:.1f}%); with option A it has {total - projection:,} (He et al.: 0.27M)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 2 — one survival probability for every unit (derive)
# Section 5's linear rule gives unit `l` of `L` the survival probability `1 − (l/L)(1 − p_L)`.
# A simpler rule gives every unit the **same** `p`. Which `p` keeps, on average, exactly as many
# residual branches per training step as the linear rule? Derive it in closed form (the sum has a
# closed form), then write it. Is it `(1 + p_L)/2`? For which `L` is that close?

# %%
def my_uniform_survival(num_blocks, p_last):
    # BEGIN SOLUTION
    L = num_blocks
    return 1 - (1 - p_last) * (L + 1) / (2 * L)
    # END SOLUTION


# %%
ex.check_uniform_survival(my_uniform_survival)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Exercise 3 — form (a) to form (c) (build it; the checker measures that it computes the same function)
# `block` is a `resnets.ResNeXtBlock` in form (a): `block.paths[i]` is
# `Sequential(conv 1×1, BN, ReLU, conv 3×3, BN, ReLU, conv 1×1)`. Build
# `resnets.ResNeXtBlock(block.channels, block.cardinality, block.width, form="c")` and copy the
# weights (and BN parameters and running statistics) so that it computes the same function. Path i
# owns channels `i·d … (i+1)·d − 1` of form (c)'s `reduce`, `bn1`, `conv`, `bn2` and the matching
# input columns of `expand`; `bn` (after the aggregation) is shared.

# %%
def my_to_grouped(block):
    # BEGIN SOLUTION
    new = resnets.ResNeXtBlock(block.channels, block.cardinality, block.width, form="c")
    d = block.d
    with torch.no_grad():
        for i, path in enumerate(block.paths):
            sl = slice(i * d, (i + 1) * d)
            new.reduce.weight[sl] = path[0].weight
            new.conv.weight[sl] = path[3].weight
            new.expand.weight[:, sl] = path[6].weight
            for bn_new, bn_old in ((new.bn1, path[1]), (new.bn2, path[4])):
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn_new, key)[sl] = getattr(bn_old, key)
        new.bn.load_state_dict(block.bn.state_dict())
    return new
    # END SOLUTION


# %% slideshow={"slide_type": "subslide"}
ex.check_resnext_to_grouped(my_to_grouped)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9 · Summary of what we measured

# %%
print(f"{'what':<58} measured")
print(f"{'gradient max/min over units at init (plain, post, pre)':<58} "
      f"{spread['plain']:.3g} / {spread['post-act ResNet']:.3g} / {spread['pre-act ResNet']:.3g}")
print(f"{'shortcut × λ=0.5: gradient path over ' + str(n_stage) + ' units':<58} {measured:.3g} (λ^{n_stage - 1} = {predicted:.3g})")
print(f"{'lowest training loss among shortcut variants (' + decided_by.split(',')[0] + ')':<58} {best_kind}")
print(f"{'training loss at the end: identity / 1×1 conv / dropout':<58} "
      f"{final['identity'][0]:.3f} / {final['1×1 conv'][0]:.3f} / {final['dropout 0.5'][0]:.3f}")
print(f"{'ResNeXt forms (a)/(b)/(c) agree':<58} max |diff| {max(diffs.values()):.1e}")
print(f"{'ResNeXt-50 32×4d / ResNet-50 params, MACs':<58} {p_ratio:.3f}×, {m_ratio:.3f}×")
print(f"{'stochastic depth: time per epoch':<58} {sd_ratio:.2f}×")
print(f"{'SE-ResNet-50 extra parameters':<58} +{se50['formula'] / 1e6:.2f}M ({100 * se50['fraction']:.1f} %)")
print(f"{'SE-ResNet-50 vs ResNet-50, CPU, 224×224, batch 1':<58} {se_ms:.1f} vs {r50_ms:.1f} ms")
for r in rows:
    print(f"{r['name'] + ' accuracy (' + config.profile() + ')':<58} {100 * r['acc']:.2f}%, {r['params']:,} params, {r['ms']:.2f} ms")
print(f"\nnotebook wall time: {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
#
# * K. He, X. Zhang, S. Ren, J. Sun. *Deep Residual Learning for Image Recognition.* CVPR 2016
#   (CIFAR-10: ResNet-20 0.27M 8.75 %, -56 0.85M 6.97 %, -110 1.7M 6.43 %, -1202 19.4M 7.93 %).
# * K. He, X. Zhang, S. Ren, J. Sun. *Identity Mappings in Deep Residual Networks.* ECCV 2016
#   (shortcut table on ResNet-110; pre-act ResNet-110 6.37 %, ResNet-1001 4.92 %).
# * S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He. *Aggregated Residual Transformations for Deep Neural
#   Networks.* CVPR 2017 (ResNeXt-50 32×4d 22.2 % vs ResNet-50 23.9 % top-1 error).
# * G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Q. Weinberger. *Deep Networks with Stochastic Depth.* ECCV 2016
#   (ResNet-110 CIFAR-10 6.41 → 5.25 %, CIFAR-100 27.76 → 24.98 %).
# * J. Hu, L. Shen, G. Sun. *Squeeze-and-Excitation Networks.* CVPR 2018 (r = 16; SE-ResNet-50 +2.5M).
# * R. K. Srivastava, K. Greff, J. Schmidhuber. *Highway Networks.* 2015 — the gated ancestor.
# * Seed material: the CNN-architecture notes (pre-activation, ResNeXt, stochastic depth, SENet) and
#   the IGC lecture's history of skip connections (Highway → ResNet → deeply-fused nets, FractalNet).
