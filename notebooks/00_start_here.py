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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   rise:
#     scroll: true
#     theme: white
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # 00 · Start here: efficient CNNs, from the weight matrix up
#
# **The one idea of this course:** a convolution is a matrix–vector product. Every efficiency idea
# you will meet is a way to make that matrix cheaper:
#
# | chapter | notebook | how the matrix gets cheaper |
# |---|---|---|
# | 01 | `01_conv_as_matmul` | first, *see* the matrix: im2col, cost model (parameters, MACs, memory) |
# | 02 | `02_low_precision` | fewer bits per entry: binary, ternary (TTQ), fixed point, k-means sharing |
# | 03 | `03_low_rank` | fewer independent entries: SVD, channel and spatial decompositions |
# | 04 | `04_sparse_pruning` | zeros: Optimal Brain Damage, magnitude and structured pruning |
# | 05 | `05_deep_compression` | all of it at once: prune → share weights → Huffman, in real bytes |
# | 06 | `06_interleaved_group_conv` | products of structured sparse matrices: IGCV1/2/3 |
# | 07 | `07_resnet_variants` | architectures: pre-activation, ResNeXt, stochastic depth, SE |
# | 08 | `08_densenet_memory` | DenseNet and the memory it needs (and how to make it linear) |
# | 09 | `09_small_networks` | SqueezeNet, SqueezeNext, MobileNet, ShuffleNet |
# | 10 | `10_wavelet_autoencoder` | a cheaper *input*: the Wavelet-like Auto-Encoder |
# | 11 | `11_capstone` | combine them: accuracy–MACs–bytes–latency trade-offs |
#
# **In this notebook you will**
# 1. check your set-up (profile, device, dataset);
# 2. learn how the notebooks are built: *claim checks*, *exercises with checkers*, *explorers*;
# 3. train a small network to 92% in half a minute with the course's trainer and read its history.

# %% slideshow={"slide_type": "skip"}
import matplotlib.pyplot as plt
import torch

from course_lib import checkpoints, checks, config, data, measure, models, recipes, stats, train, widgets
from course_lib.exercises import ch00 as ex

print(config.describe())

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Profiles and devices
#
# Every notebook runs in one of two **profiles**, chosen with the environment variable
# `COURSE_PROFILE` before you start JupyterLab (`COURSE_PROFILE=full make lab`):
#
# - `quick` (the default): a laptop CPU is enough; each notebook runs in about two minutes on
#   small subsets of Fashion-MNIST and on checkpoints shipped with the course;
# - `full`: the paper-scale version (CIFAR-10, real epoch counts) for a GPU.
#
# A notebook never has two code paths: sizes come from `config.pick(quick=..., full=...)`.
# The device is chosen for you (CUDA, then Apple's MPS, then the CPU); set `COURSE_DEVICE=cpu` to
# override it.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** Why a 2-minute CPU profile *and* a GPU profile of the same notebook?

# %%
config.seed_everything(0)
device = config.device()
TRAIN_IMAGES = config.pick(quick=6_000, full=60_000)
EPOCHS = config.pick(quick=2, full=10)
print(f"profile={config.profile()}  device={device}  train images={TRAIN_IMAGES}  epochs={EPOCHS}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. The data
#
# The quick profile uses **Fashion-MNIST**: 70,000 grey 28×28 images of clothes in 10 classes,
# a harder drop-in for MNIST. `course_lib.data` finds it offline (a system copy from Debian's
# `dataset-fashion-mnist`, or files you put in `data/`) or downloads it.
#
# `data.loaders` returns a `DeviceLoader`: the whole dataset sits on the training device as
# `uint8`, and each batch is cropped, flipped and normalised there, in one tensor operation —
# much faster than transforming images one at a time in Python.

# %%
train_data, test_data = data.loaders("fashion-mnist", batch_size=128, train_subset=TRAIN_IMAGES,
                                     device=device)
print(f"{len(train_data.labels)} training images in {len(train_data)} batches, "
      f"{len(test_data.labels)} test images")
fig = data.image_grid(train_data.images[:24], train_data.labels[:24], train_data.classes, n=24, ncols=12)

# %% [markdown]
# A batch as the network sees it: normalised floats, randomly shifted by up to 2 pixels and
# flipped left–right (compare with the originals above).

# %%
x, y = next(iter(train_data))
print("batch:", tuple(x.shape), x.dtype, f"mean {x.mean():.2f}, std {x.std():.2f}")
fig = data.image_grid(train_data.denormalize(x[:12]), y[:12], train_data.classes, n=12, ncols=12)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Claim checks
#
# Papers make claims; this course turns each one into a cell that **measures** and then
# **asserts**, printing the figure it measured. When a claim does not hold at our scale, the
# notebook says so with the numbers (and, where it can, the mechanism) instead of asserting it; when
# the measurement cannot tell the two sides apart (a paired test, overlapping timing rounds), the
# verdict is *within noise*. `checks.claim(...)` does this:
# it prints the verdict with the paper's figure and ours, records it in `build/claims.json`, and
# with `must_hold=True` fails the cell when the claim does not hold.
#
# Two small ones. Deep Compression (Han et al., 2016) prunes Caffe's **LeNet-5** of 431K weights;
# our `models.lenet5` must have exactly that many. And the course ships a LeNet-5 trained on
# Fashion-MNIST that should score at least 90% on the test set.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Ask:** why is a claim that does *not* reproduce still worth printing? Why does the ledger count a
# parameter count (a derivation) apart from an accuracy (an empirical claim)?

# %%
lenet = models.lenet5()
n_params = measure.count_params(lenet)
n_macs = measure.count_macs(lenet, (1, 28, 28))
print(f"LeNet-5: {n_params:,} parameters, {n_macs / 1e6:.2f}M multiply-accumulates per image")
assert n_params == 431_080, "Han et al.'s LeNet-5 has 431,080 weights"

# %% slideshow={"slide_type": "fragment"}
shipped = recipes.shipped_model("lenet5-fmnist", device=device)
accuracy = train.evaluate(shipped, test_data)
print(f"shipped LeNet-5: {100 * accuracy:.2f}% test accuracy "
      f"(manifest says {100 * checkpoints.read_manifest()['lenet5-fmnist']['test_accuracy']:.2f}%)")
checks.claim("00", "the shipped LeNet-5 scores at least 90% on Fashion-MNIST's test set", kind="course", paper="≥ 90%",
             ours=f"{100 * accuracy:.2f}%", holds=accuracy >= 0.90, must_hold=True)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Exercises
#
# An exercise is a function you write. The cell after it calls a **checker** from
# `course_lib.exercises` (one module per chapter, imported here as `ex`) that tries your function on
# a few cases and either prints ✅ or tells you what went wrong. In the student edition
# (`make student`) the body of each exercise is replaced by `raise NotImplementedError("your code here")`.
# Exercises come in four kinds — *derive* a formula the notebook has not shown, *build it and measure
# it*, *predict then measure*, *decide* from measurements — and a checker refuses a solution that
# calls the `course_lib` function that already does what the exercise asks: the point is to write it.
#
# **Exercise 0** (*build it and measure it*, the warm-up). Write `accuracy(logits, labels)`: the
# fraction (between 0 and 1) of rows of `logits` (a batch × classes tensor of scores) whose highest
# score is at the true label. (`train.evaluate` computes this for a whole model; here you write it.)

# %%
def accuracy(logits, labels):
    # BEGIN SOLUTION
    return (logits.argmax(dim=1) == labels).float().mean().item()
    # END SOLUTION


# %%
ex.check_accuracy(accuracy)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Explorers
#
# Each chapter has interactive **explorers**: move a control and the figure is recomputed. They
# all follow one pattern (`course_lib.widgets.Explorer`): a pure, tested *state function*, a
# *drawing*, and the *controls*. Invalid settings are shown as a message, never as a traceback;
# and when no kernel is running (an HTML export) you still see the last figure.
#
# This one shows the **learning-rate schedules** the trainer offers. Try `warmup` = 0 with
# `onecycle`, or a step count that is too small.

# %% slideshow={"slide_type": "subslide"}
def schedule_state(schedule, warmup, steps):
    if steps < 2:
        raise ValueError(f"steps={steps} must be at least 2 to draw a schedule")
    if not 0 < warmup < 1:
        raise ValueError(f"warmup={warmup} must be strictly between 0 and 1")
    factors = [train.lr_factor(s, steps, schedule, warmup) for s in range(steps + 1)]
    return {"schedule": schedule, "factors": factors, "peak_step": max(range(steps + 1), key=factors.__getitem__)}


def draw_schedule(state, fig):
    ax = fig.add_subplot()
    ax.plot(state["factors"])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate / peak")
    ax.set_title(f"{state['schedule']} schedule")
    ax.grid(alpha=0.3)


widgets.Explorer(
    schedule_state, draw_schedule,
    {"schedule": widgets.dropdown("schedule", train.SCHEDULES),
     "warmup": widgets.float_slider("warmup", 0.25, 0.0, 0.9, 0.05),
     "steps": widgets.int_slider("steps", 200, 0, 1000, 10)},
    title="Learning-rate schedules", readout_fn=lambda s: f"peak at step {s['peak_step']}", figsize=(6, 2.8))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Half a minute of training
#
# `train.fit` is the one training loop of the course: SGD with Nesterov momentum, a one-cycle
# schedule, weight decay except on biases and BatchNorm, mixed precision on a GPU, and a
# checkpoint after every epoch if you give it a path (so an interrupted run resumes where it
# stopped). It returns a `History`.
#
# A course about efficiency should train efficiently. The recipe `fast-fmnist` brings the ideas of
# Keller Jordan's *airbench* (94% on CIFAR-10 in seconds on a GPU) to a laptop CPU:
#
# - **a net built for time to accuracy** (`models.fast_cnn`): one cheap convolution at full
#   resolution, pooled at once, then the width where the image is small; BatchNorm after every
#   convolution, so a high learning rate (0.2) is stable. 2.7M MACs per image, about LeNet-5's —
#   but LeNet-5 in the same recipe ends 1.5 points lower;
# - **flips as the only augmentation**: random crops as well cost a point in a 4-epoch run (they
#   pay off in longer runs), no augmentation almost a point;
# - **test-time augmentation** (`tta=True`): each test image and its mirror image vote together;
# - **channels_last** memory, which the CPU's convolution kernels run about 1.5× faster;
# - a batch of 256 and label smoothing 0.1 (`label_smoothing=`).
#
# It trains on all 60,000 images and is tested after every epoch on all 10,000 test images (the
# test time is not counted). `benchmarks/time_to_accuracy.py` measures what each idea contributes,
# and some that did not pay — a moving average of the weights (`ema=`), `torch.compile` — in one
# run (README, "Measured"): LeNet-5's recipe needs about 3 minutes to reach 92%, this one about 30 s.

# %% slideshow={"slide_type": "subslide"}
recipe = recipes.get_recipe("fast-fmnist")
fast_train, fast_test = data.loaders(**recipe.loader_kwargs(), device=device)
config.seed_everything(0)
net = recipes.build_model("fast-fmnist")
print(f"fast_cnn: {measure.count_params(net):,} parameters, "
      f"{measure.count_macs(net, (1, 28, 28)) / 1e6:.1f}M MACs per image; {recipe.epochs} epochs of "
      f"{len(fast_train.labels):,} images")
history = train.fit(net, fast_train, fast_test, recipe.epochs, **recipe.fit_kwargs(), device=device)
fig = history.plot()

# %% slideshow={"slide_type": "fragment"}
low, high = stats.accuracy_interval(history.final_test_acc, len(fast_test.labels))
to_92 = history.seconds_to(0.92)
print(f"after {recipe.epochs} epochs ({sum(history.seconds):.0f} s of training on {device}): "
      f"{100 * history.final_test_acc:.2f}% test accuracy (95% interval {100 * low:.1f}-{100 * high:.1f}%), "
      f"{history.images_per_s[-1]:.0f} training images/s")
print("92% first reached after", "never" if to_92 is None else f"{to_92:.0f} s of training")
checks.claim("00", "the fast recipe reaches 92% on the full Fashion-MNIST test set", kind="course", paper="≥ 92%",
             ours=f"{100 * history.final_test_acc:.2f}% (95% interval {100 * low:.1f}-{100 * high:.1f}%)",
             holds=history.final_test_acc >= 0.92)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7. What we measured
#
# | what | value |
# |---|---|
# | LeNet-5 parameters | 431,080 (Han et al.'s count) |
# | shipped LeNet-5, Fashion-MNIST test accuracy | printed above (≥ 90%) |
# | `fast-fmnist` (fast_cnn, 4 epochs on 60k images) | printed above (≥ 92%), with its training time |
#
# **Next:** `01_conv_as_matmul` — the matrix inside every convolution.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
# - S. Han, H. Mao, W. J. Dally. *Deep Compression.* ICLR 2016 (the LeNet-5 count).
# - H. Xiao, K. Rasul, R. Vollgraf. *Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
#   Learning Algorithms.* 2017.
