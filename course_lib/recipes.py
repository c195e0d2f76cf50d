"""Named training recipes: a model, a dataset and a schedule that together reproduce a checkpoint.

``python -m course_lib train --recipe NAME`` runs one; the shipped checkpoints in
``data/checkpoints/manifest.json`` record the recipe that made them.

This module is the catalogue: it names every network of the course (``MODELS``, including those of
the later chapters) and so sits *above* the chapter modules (the layers are described in
``course_lib/__init__.py``; ``tests/test_project.py`` checks them). A chapter that needs a shipped
checkpoint builds the network itself and calls ``checkpoints.load_checkpoint(name, model)``; a
notebook calls ``shipped_model(name)``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from . import capstone, checkpoints, data, densenet, igc, models, prune, quant, resnets, smallnets, train, wae

__all__ = [
    "Recipe",
    "FAST",
    "EVIDENCE",
    "RECIPES",
    "IGC_SHAPE",
    "IGC_LM",
    "IGC_EQUAL_PARAMS_LM",
    "MODELS",
    "get_recipe",
    "build_model",
    "shipped_model",
    "trained_model",
]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet_300_100": models.lenet_300_100,
    "lenet5": models.lenet5,
    "vgg_small": models.vgg_small,
    "fast_cnn": models.fast_cnn,
    "resnet20": resnets.resnet20,
    "resnet_cifar": resnets.resnet_cifar,  # chapter 07 variants
    "densenet_cifar": densenet.densenet_cifar,  # chapter 08
    "squeezenet_small": smallnets.squeezenet_small,  # chapter 09
    "squeezenext_small": smallnets.squeezenext_small,
    "mobilenet_small": smallnets.mobilenet_small,
    "mobilenetv2_small": smallnets.mobilenetv2_small,
    "igc_plain_net": igc.plain_net,  # chapter 06
    "wae": wae.build,  # chapter 10
}


@dataclass(frozen=True)
class Recipe:
    """How to train one model: its builder (a ``MODELS`` name), dataset, epochs and ``train.fit`` settings."""

    model: str
    dataset: str
    epochs: int
    batch_size: int = 128
    lr: float = 0.05
    optimizer: str = "sgd"
    schedule: str = "onecycle"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    ema: float | None = None  # decay of the weights' moving average (train.fit's ema=)
    tta: bool = False  # flip test-time augmentation (train.fit's tta=)
    augment: bool = True
    crop: bool = True  # with augment: random crops as well as flips (False: flips only)
    channels_last: bool = False  # also on the CPU (on a GPU the CLI always uses channels_last)
    amp: str = "auto"  # train.fit's amp=: "bf16" autocasts on the CPU too (see EVIDENCE for what it pays)
    train_subset: int | None = None
    test_subset: int | None = None
    model_kwargs: dict = field(default_factory=dict)
    about: str = ""
    # "module:function" of course_lib that makes and ships this recipe instead of train.fit from scratch
    # (a model fine-tuned from another checkpoint): ``python -m course_lib train --recipe NAME --register``
    # calls ``function(NAME, folder=, epochs=, seed=)``, which ships it with ``checkpoints.ship``.
    maker: str = ""

    def fit_kwargs(self) -> dict:
        """The keywords of ``train.fit`` that this recipe fixes (optimizer, lr, weight decay, schedule,
        smoothing, weight averaging, test-time augmentation, memory format, autocast)."""
        return dict(
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            label_smoothing=self.label_smoothing,
            ema=self.ema,
            tta=self.tta,
            channels_last=self.channels_last,
            amp=self.amp,
        )

    def loader_kwargs(self) -> dict:
        """The keywords of ``data.loaders`` that this recipe fixes (dataset, batch size, augmentation, subsets)."""
        return dict(
            name=self.dataset,
            batch_size=self.batch_size,
            augment=self.augment,
            crop=self.crop,
            train_subset=self.train_subset,
            test_subset=self.test_subset,
        )


# The settings of the fast recipes (train's docstring and benchmarks/time_to_accuracy.py measure each):
# a batch of 256 at a peak lr of 0.2 (BatchNorm nets), label smoothing, flip test-time augmentation,
# flips as the only augmentation, channels_last on the CPU too. A moving average of the weights
# (ema=0.99) was measured and left out: it did not pay in these 4-8 epoch one-cycle runs.
FAST: dict[str, Any] = dict(batch_size=256, lr=0.2, label_smoothing=0.1, tta=True, crop=False, channels_last=True)

# The recipe of the models that chapters 07, 08 and 09 compare (issue "fair evidence"): the fast recipe's
# settings on all 60,000 training images, the same epochs for every arm of a comparison, tested on all
# 10,000 test images, with bf16 autocast for every arm, so all compute alike (one training step at batch
# 256, 2 threads, the project's EPYC VM: 1.2-1.9x faster for the ResNets, DenseNet, SqueezeNet/Next and
# VGG; 0.75-0.8x for the depthwise MobileNets). fit records the test accuracy after every epoch: the curve.
EVIDENCE: dict[str, Any] = dict(FAST, epochs=10, amp="bf16")

# Chapter 06's experiment (the quick profile's nets, trained long): plain depth-4 nets, IGC-L·M at width 16
# for every L that divides it, against the regular net of IGC-L4M4's parameter count (width 9). These
# 2-8K-parameter nets still gained 0.4-3.5 pt in the last 3 of 10 epochs, so they train for 20.
IGC_SHAPE: dict[str, Any] = dict(depth=4, stages=2, stem_stride=2)
IGC_LM = ((1, 16), (2, 8), (4, 4), (8, 2), (16, 1))
# The same L at (about) IGC-L4M4's parameters instead of its width: L1M9 2,557 and L2M6 2,470 vs 2,522. (At
# this size no L8 or L16 net comes within 25%: L8M2 1,850, L8M3 3,418, L16M1 1,802, L16M2 4,458.)
IGC_EQUAL_PARAMS_LM = ((1, 9), (2, 6))

RECIPES = {
    "lenet300-fmnist": Recipe(
        "lenet_300_100",
        "fashion-mnist",
        epochs=12,
        lr=0.05,
        augment=False,
        about="LeNet-300-100 (Han et al.), the fully connected net of chapters 04-05",
    ),
    "lenet5-fmnist": Recipe(
        "lenet5",
        "fashion-mnist",
        epochs=12,
        lr=0.05,
        augment=False,
        about="Caffe LeNet-5 (431K weights), the Deep Compression net",
    ),
    "vgg-small-fmnist": Recipe(
        "vgg_small",
        "fashion-mnist",
        epochs=18,
        lr=0.1,
        label_smoothing=0.1,
        about="VGG-style 6-conv net with BatchNorm, the conv net most chapters compress",
    ),
    "fast-fmnist": Recipe(
        "fast_cnn",
        "fashion-mnist",
        epochs=4,
        **FAST,
        about="fast_cnn, the time-to-accuracy recipe: 92% in under 30 s on 2 CPU cores "
        "(benchmarks/time_to_accuracy.py)",
    ),
    "fast-wide-fmnist": Recipe(
        "fast_cnn",
        "fashion-mnist",
        epochs=8,
        **FAST,
        model_kwargs=dict(widths=(24, 48, 96)),
        about="fast_cnn at 1.5x width for 8 epochs: the fast recipe that reaches 93%",
    ),
    "resnet20-cifar10": Recipe(
        "resnet20",
        "cifar10",
        epochs=60,
        lr=0.1,
        batch_size=128,
        about="He et al.'s ResNet-20 on CIFAR-10 (full profile, GPU)",
    ),
    "vgg-small-cifar10": Recipe(
        "vgg_small",
        "cifar10",
        epochs=40,
        lr=0.1,
        label_smoothing=0.1,
        model_kwargs={"widths": (64, 128, 256)},
        about="A wider VGG-style net on CIFAR-10 (full profile, GPU)",
    ),
    "resnet20-plain-fmnist": Recipe(
        "resnet_cifar",
        "fashion-mnist",
        **EVIDENCE,
        model_kwargs=dict(depth=20, widths=(8, 16, 32), shortcut="none"),
        about="ch07: plain 20-layer net (ResNet-20 without shortcuts), widths 8-16-32",
    ),
    "resnet20-post-fmnist": Recipe(
        "resnet_cifar",
        "fashion-mnist",
        **EVIDENCE,
        model_kwargs=dict(depth=20, widths=(8, 16, 32)),
        about="ch07: ResNet-20 (original post-activation units), widths 8-16-32",
    ),
    "resnet20-preact-fmnist": Recipe(
        "resnet_cifar",
        "fashion-mnist",
        **EVIDENCE,
        model_kwargs=dict(depth=20, widths=(8, 16, 32), preact=True),
        about="ch07: pre-activation ResNet-20, widths 8-16-32",
    ),
    "resnet20-se-fmnist": Recipe(
        "resnet_cifar",
        "fashion-mnist",
        **EVIDENCE,
        model_kwargs=dict(depth=20, widths=(8, 16, 32), preact=True, se=True, reduction=4),
        about="ch07: pre-act ResNet-20 + SE (r=4), widths 8-16-32",
    ),
    "resnet20-sd-fmnist": Recipe(
        "resnet_cifar",
        "fashion-mnist",
        **EVIDENCE,
        model_kwargs=dict(depth=20, widths=(8, 16, 32), preact=True, p_last=0.5),
        about="ch07: pre-act ResNet-20 + stochastic depth (p_L=0.5), widths 8-16-32",
    ),
    **{
        f"resnet56-{arm}-fmnist": Recipe(
            "resnet_cifar",
            "fashion-mnist",
            **EVIDENCE,
            model_kwargs=dict(depth=56, widths=(8, 16, 32), **kwargs),
            about=f"ch07: {about}, 56 layers, widths 8-16-32: the depth where He et al. see plain nets degrade",
        )
        for arm, kwargs, about in (
            ("plain", dict(shortcut="none"), "plain net (ResNet-56 without shortcuts)"),
            ("post", {}, "ResNet-56 (original post-activation units)"),
            ("preact", dict(preact=True), "pre-activation ResNet-56"),
            ("sd", dict(preact=True, p_last=0.5), "pre-act ResNet-56 + stochastic depth (p_L=0.5)"),
        )
    },
    "squeezenet-small-fmnist": Recipe(
        "squeezenet_small",
        "fashion-mnist",
        **EVIDENCE,
        about="ch09: SqueezeNet for 28x28, the recipe of the ResNet-20 it is compared with",
    ),
    "squeezenext-small-fmnist": Recipe(
        "squeezenext_small",
        "fashion-mnist",
        **EVIDENCE,
        about="ch09: SqueezeNext for 28x28, the recipe of the ResNet-20 it is compared with",
    ),
    "mobilenet-small-fmnist": Recipe(
        "mobilenet_small",
        "fashion-mnist",
        **EVIDENCE,
        about="ch09: 0.2-MobileNet for 28x28, the recipe of the ResNet-20 it is compared with",
    ),
    "mobilenetv2-small-fmnist": Recipe(
        "mobilenetv2_small",
        "fashion-mnist",
        **EVIDENCE,
        about="ch09: 0.25-MobileNetV2 for 28x28, the recipe of the ResNet-20 it is compared with",
    ),
    "resnet20-fmnist": Recipe(
        "resnet20",
        "fashion-mnist",
        **EVIDENCE,
        about="ch09: He et al.'s ResNet-20 (widths 16-32-64) for 28x28, the baseline of the small networks",
    ),
    "squeezenet-small-cifar10": Recipe(
        "squeezenet_small",
        "cifar10",
        epochs=60,
        lr=0.1,
        about="ch09: SqueezeNet for 32x32 CIFAR-10 (full profile, GPU)",
    ),
    "squeezenext-small-cifar10": Recipe(
        "squeezenext_small",
        "cifar10",
        epochs=60,
        lr=0.1,
        about="ch09: SqueezeNext for 32x32 CIFAR-10 (full profile, GPU)",
    ),
    "mobilenet-small-cifar10": Recipe(
        "mobilenet_small",
        "cifar10",
        epochs=60,
        lr=0.1,
        about="ch09: 0.2-MobileNet for 32x32 CIFAR-10 (full profile, GPU)",
    ),
    "mobilenetv2-small-cifar10": Recipe(
        "mobilenetv2_small",
        "cifar10",
        epochs=60,
        lr=0.1,
        about="ch09: 0.25-MobileNetV2 for 32x32 CIFAR-10 (full profile, GPU)",
    ),
    "densenet-bc22-fmnist": Recipe(
        "densenet_cifar",
        "fashion-mnist",
        **EVIDENCE,
        model_kwargs=dict(depth=22, growth_rate=12),
        about="ch08: DenseNet-BC-22 (k=12, 71K params), resnet20-post-fmnist's recipe",
    ),
    "wae-l0-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=1,
        model_kwargs=dict(kind="wae"),
        about="ch10: WAE alone, lambda=0 (stage 1 only)",
        maker="wae:ship_recipe",
    ),
    "wae-l0.1-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=1,
        model_kwargs=dict(kind="wae"),
        about="ch10: WAE alone, lambda=0.1 (stage 1 only)",
        maker="wae:ship_recipe",
    ),
    "wae-l1-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=1,
        model_kwargs=dict(kind="wae"),
        about="ch10: WAE alone, lambda=1 (stage 1 only)",
        maker="wae:ship_recipe",
    ),
    "wae-downsample-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=wae.CLASSIFIER_EPOCHS,
        model_kwargs=dict(kind="downsample"),
        about="ch10: vgg-small-fmnist fine-tuned on 2x2-average-pooled input",
        maker="wae:ship_recipe",
    ),
    "wae-haar-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=wae.CLASSIFIER_EPOCHS,
        model_kwargs=dict(kind="haar"),
        about="ch10: Wavelet+CNN, base from vgg-small-fmnist",
        maker="wae:ship_recipe",
    ),
    "wae-decomp-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=wae.CLASSIFIER_EPOCHS,
        model_kwargs=dict(kind="wae-classifier"),
        about="ch10: Decomposition+CNN (lambda=0), 3 stages",
        maker="wae:ship_recipe",
    ),
    "wae-classifier-fmnist": Recipe(
        "wae",
        "fashion-mnist",
        epochs=wae.CLASSIFIER_EPOCHS,
        model_kwargs=dict(kind="wae-classifier", energy_weight=0.1),
        about="ch10: WAE+CNN (lambda=0.1), 3 stages",
        maker="wae:ship_recipe",
    ),
    "capstone-fmnist": Recipe(
        "vgg_small",
        "fashion-mnist",
        epochs=capstone.SOLUTION_EPOCHS,
        lr=0.02,
        label_smoothing=0.1,
        model_kwargs=dict(widths=(12, 24, 48)),
        about="ch11: vgg-small-fmnist with half its filters removed (prune.prune_channels(0.5)) and fine-tuned "
        "on all 60,000 images: the capstone solution's start",
        maker="capstone:ship_solution",
    ),
    **{
        f"lenet5-{method}-fmnist": Recipe(
            "lenet5",
            "fashion-mnist",
            epochs=quant.LONG_EPOCHS,
            optimizer="adamw",
            lr=quant.FINETUNE_LR[method.removesuffix("-ft")],
            weight_decay=0.0,
            augment=False,
            about=f"ch02: lenet5-fmnist {about}, fine-tuned {quant.LONG_EPOCHS} epochs on all 60,000 images: "
            "the long run",
            maker="quant:ship_finetuned",
        )
        for method, about in (
            ("ttq", "with TTQ's ternary weights"),
            ("twn", "with TWN's ternary weights"),
            ("kmeans", "with Deep Compression's shared weights (8-bit conv, 5-bit fc)"),
            ("float-ft", "in float (the control: the same fine-tuning, no quantization)"),
        )
    },
    **{
        f"{net}-pruned-fmnist": Recipe(
            model,
            "fashion-mnist",
            epochs=prune.LONG_ROUNDS * prune.LONG_EPOCHS,
            augment=False,
            about=f"ch04: {net}-fmnist pruned to Han et al.'s per-layer targets (12x) in {prune.LONG_ROUNDS} "
            f"rounds of {prune.LONG_EPOCHS} retraining epochs on all 60,000 images: the long run",
            maker="prune:ship_pruned",
        )
        for net, model in (("lenet300", "lenet_300_100"), ("lenet5", "lenet5"))
    },
    **{
        f"igc-l{L}m{M}-fmnist": Recipe(
            "igc_plain_net",
            "fashion-mnist",
            **dict(EVIDENCE, epochs=20),
            model_kwargs=dict(IGC_SHAPE, kind="igc", L=L, M=M),
            about=f"ch06: IGC-L{L}M{M}, the plain depth-4 net of the quick profile's experiment, trained long",
        )
        for L, M in IGC_LM + IGC_EQUAL_PARAMS_LM
    },
    "igc-regconv-w9-fmnist": Recipe(
        "igc_plain_net",
        "fashion-mnist",
        **dict(EVIDENCE, epochs=20),
        model_kwargs=dict(IGC_SHAPE, kind="regular", width=9),
        about="ch06: RegConv-W9, the regular net with IGC-L4M4's parameters (2,530 vs 2,522), trained long",
    ),
    "tiny-fmnist": Recipe(
        "lenet_300_100",
        "fashion-mnist",
        epochs=2,
        augment=False,
        train_subset=2048,
        test_subset=1024,
        about="seconds-long smoke test of the CLI",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ``ValueError`` naming the choices if there is none."""
    if name not in RECIPES:
        raise ValueError(f"recipe {name!r} is unknown; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def build_model(name: str) -> nn.Module:
    """The untrained model of recipe ``name``, sized for its dataset."""
    recipe = get_recipe(name)
    info = data.dataset_info(recipe.dataset)
    builder = MODELS[recipe.model]
    return builder(num_classes=len(info.classes), in_channels=info.channels, **recipe.model_kwargs)


def shipped_model(name: str, device: str | torch.device = "cpu", folder: str | Path | None = None) -> nn.Module:
    """The shipped checkpoint ``name``, rebuilt from its recipe, with weights verified against the manifest.

    Returns the model in eval mode. Raises ``checkpoints.CheckpointError`` for an unknown name, a
    missing file, a hash mismatch or a file that is not a course checkpoint.
    """
    model = build_model(checkpoints.manifest_entry(name, folder)["recipe"])
    return checkpoints.load_checkpoint(name, model, device, folder)


def trained_model(
    name: str,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    cache_dir: str | Path,
    *,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, float]:
    """``(model, test accuracy)`` of recipe ``name``, trained once.

    A shipped checkpoint (``data/checkpoints/manifest.json``) is used as it is; any other recipe
    (e.g. ``"vgg-small-cifar10"`` of the full profile) is trained by ``train.fit`` with the recipe's
    settings (``Recipe.fit_kwargs``) for ``epochs`` (default: the recipe's), and its weights are
    cached at ``cache_dir/NAME.pt``, so a rerun does not retrain. The cache is read safely
    (``checkpoints.read_weights``). An interrupted training run resumes from ``cache_dir/NAME.train.pt``.
    """
    recipe = get_recipe(name)
    device = torch.device(device) if device is not None else None
    manifest = checkpoints.read_manifest()
    if name in manifest:
        return shipped_model(name, device or "cpu"), manifest[name]["test_accuracy"]
    cache = Path(cache_dir) / f"{name}.pt"
    model = build_model(name)
    if cache.exists():
        blob = checkpoints.read_weights_file(cache)
        checkpoints.load_state(model, blob["model"], f"the cache {cache}")
        return model.to(device or "cpu").eval(), blob["test_accuracy"]
    epochs = epochs or recipe.epochs
    resume = Path(cache_dir) / f"{name}.train.pt"
    history = train.fit(
        model,
        train_data,
        test_data,
        epochs,
        **recipe.fit_kwargs(),
        device=device,
        seed=seed,
        progress=progress,
        checkpoint=resume,
    )
    checkpoints.save_atomically(
        {
            "model": model.state_dict(),
            "recipe": name,
            "seed": seed,
            "epochs": epochs,
            "test_accuracy": history.final_test_acc,
        },
        cache,
    )
    resume.unlink(missing_ok=True)
    assert history.final_test_acc is not None  # fit was given test_data
    return model.eval(), history.final_test_acc
