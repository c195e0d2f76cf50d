"""Named training recipes: a model, a dataset and a schedule that together reproduce a checkpoint.

``python -m course_lib train --recipe NAME`` runs one; the shipped checkpoints in
``data/checkpoints/manifest.json`` record the recipe that made them.
"""

from dataclasses import dataclass, field

from . import data as data_mod
from .models import MODELS

__all__ = ["Recipe", "RECIPES", "get_recipe", "build_model"]


@dataclass(frozen=True)
class Recipe:
    model: str
    dataset: str
    epochs: int
    batch_size: int = 128
    lr: float = 0.05
    optimizer: str = "sgd"
    schedule: str = "onecycle"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = True
    train_subset: int = None
    test_subset: int = None
    model_kwargs: dict = field(default_factory=dict)
    about: str = ""


RECIPES = {
    "lenet300-fmnist": Recipe("lenet_300_100", "fashion-mnist", epochs=12, lr=0.05, augment=False,
                              about="LeNet-300-100 (Han et al.), the fully connected net of chapters 04-05"),
    "lenet5-fmnist": Recipe("lenet5", "fashion-mnist", epochs=12, lr=0.05, augment=False,
                            about="Caffe LeNet-5 (431K weights), the Deep Compression net"),
    "vgg-small-fmnist": Recipe("vgg_small", "fashion-mnist", epochs=18, lr=0.1, label_smoothing=0.1,
                               about="VGG-style 6-conv net with BatchNorm, the conv net most chapters compress"),
    "resnet20-cifar10": Recipe("resnet20", "cifar10", epochs=60, lr=0.1, batch_size=128,
                               about="He et al.'s ResNet-20 on CIFAR-10 (full profile, GPU)"),
    "vgg-small-cifar10": Recipe("vgg_small", "cifar10", epochs=40, lr=0.1, label_smoothing=0.1,
                                model_kwargs={"widths": (64, 128, 256)},
                                about="A wider VGG-style net on CIFAR-10 (full profile, GPU)"),
    "resnet20-plain-fmnist": Recipe("resnet_cifar", "fashion-mnist", epochs=5, lr=0.1, train_subset=10000, model_kwargs=dict(depth=20, widths=(8, 16, 32), shortcut="none"), about="ch07: plain 20-layer net (ResNet-20 without shortcuts), widths 8-16-32"),
    "resnet20-post-fmnist": Recipe("resnet_cifar", "fashion-mnist", epochs=5, lr=0.1, train_subset=10000, model_kwargs=dict(depth=20, widths=(8, 16, 32)), about="ch07: ResNet-20 (original post-activation units), widths 8-16-32"),
    "resnet20-preact-fmnist": Recipe("resnet_cifar", "fashion-mnist", epochs=5, lr=0.1, train_subset=10000, model_kwargs=dict(depth=20, widths=(8, 16, 32), preact=True), about="ch07: pre-activation ResNet-20, widths 8-16-32"),
    "resnet20-se-fmnist": Recipe("resnet_cifar", "fashion-mnist", epochs=5, lr=0.1, train_subset=10000, model_kwargs=dict(depth=20, widths=(8, 16, 32), preact=True, se=True, reduction=4), about="ch07: pre-act ResNet-20 + SE (r=4), widths 8-16-32"),
    "resnet20-sd-fmnist": Recipe("resnet_cifar", "fashion-mnist", epochs=5, lr=0.1, train_subset=10000, model_kwargs=dict(depth=20, widths=(8, 16, 32), preact=True, p_last=0.5), about="ch07: pre-act ResNet-20 + stochastic depth (p_L=0.5), widths 8-16-32"),
    "squeezenet-small-fmnist": Recipe("squeezenet_small", "fashion-mnist", epochs=4, lr=0.1, augment=False, train_subset=4096, test_subset=2000, about="ch09: SqueezeNet for 28x28, 4096-image subset"),
    "squeezenext-small-fmnist": Recipe("squeezenext_small", "fashion-mnist", epochs=4, lr=0.1, augment=False, train_subset=4096, test_subset=2000, about="ch09: SqueezeNext for 28x28, 4096-image subset"),
    "mobilenet-small-fmnist": Recipe("mobilenet_small", "fashion-mnist", epochs=4, lr=0.1, augment=False, train_subset=4096, test_subset=2000, about="ch09: 0.2-MobileNet for 28x28, 4096-image subset"),
    "mobilenetv2-small-fmnist": Recipe("mobilenetv2_small", "fashion-mnist", epochs=4, lr=0.1, augment=False, train_subset=4096, test_subset=2000, about="ch09: 0.25-MobileNetV2 for 28x28, 4096-image subset"),
    "resnet20-subset-fmnist": Recipe("resnet20", "fashion-mnist", epochs=4, lr=0.1, augment=False, train_subset=4096, test_subset=2000, about="ch09: ResNet-20 baseline for 28x28, 4096-image subset"),
    "squeezenet-small-cifar10": Recipe("squeezenet_small", "cifar10", epochs=60, lr=0.1, about="ch09: SqueezeNet for 32x32 CIFAR-10 (full profile, GPU)"),
    "squeezenext-small-cifar10": Recipe("squeezenext_small", "cifar10", epochs=60, lr=0.1, about="ch09: SqueezeNext for 32x32 CIFAR-10 (full profile, GPU)"),
    "mobilenet-small-cifar10": Recipe("mobilenet_small", "cifar10", epochs=60, lr=0.1, about="ch09: 0.2-MobileNet for 32x32 CIFAR-10 (full profile, GPU)"),
    "mobilenetv2-small-cifar10": Recipe("mobilenetv2_small", "cifar10", epochs=60, lr=0.1, about="ch09: 0.25-MobileNetV2 for 32x32 CIFAR-10 (full profile, GPU)"),
    "densenet-bc22-fmnist": Recipe("densenet_cifar", "fashion-mnist", epochs=2, lr=0.1, train_subset=8000, test_subset=2000, model_kwargs=dict(depth=22, growth_rate=12), about="ch08: DenseNet-BC-22 (k=12, 71K params), 2 epochs on 8,000 images"),
    "wae-l0-fmnist": Recipe("wae", "fashion-mnist", epochs=1, train_subset=3072, model_kwargs=dict(kind="wae"), about="ch10: WAE alone, lambda=0 (stage 1 only; made by python -m course_lib.wae ship)"),
    "wae-l0.1-fmnist": Recipe("wae", "fashion-mnist", epochs=1, train_subset=3072, model_kwargs=dict(kind="wae"), about="ch10: WAE alone, lambda=0.1 (stage 1 only; made by python -m course_lib.wae ship)"),
    "wae-l1-fmnist": Recipe("wae", "fashion-mnist", epochs=1, train_subset=3072, model_kwargs=dict(kind="wae"), about="ch10: WAE alone, lambda=1 (stage 1 only; made by python -m course_lib.wae ship)"),
    "wae-downsample-fmnist": Recipe("wae", "fashion-mnist", epochs=2, train_subset=3072, model_kwargs=dict(kind="downsample"), about="ch10: vgg-small-fmnist fine-tuned on 2x2-average-pooled input (made by python -m course_lib.wae ship)"),
    "wae-haar-fmnist": Recipe("wae", "fashion-mnist", epochs=2, train_subset=3072, model_kwargs=dict(kind="haar"), about="ch10: Wavelet+CNN, base from vgg-small-fmnist (made by python -m course_lib.wae ship)"),
    "wae-decomp-fmnist": Recipe("wae", "fashion-mnist", epochs=2, train_subset=3072, model_kwargs=dict(kind="wae-classifier"), about="ch10: Decomposition+CNN (lambda=0), 3 stages (made by python -m course_lib.wae ship)"),
    "wae-classifier-fmnist": Recipe("wae", "fashion-mnist", epochs=2, train_subset=3072, model_kwargs=dict(kind="wae-classifier", energy_weight=0.1), about="ch10: WAE+CNN (lambda=0.1), 3 stages (made by python -m course_lib.wae ship)"),
    "capstone-fmnist": Recipe("vgg_small", "fashion-mnist", epochs=2, lr=0.02, label_smoothing=0.1, train_subset=8192, model_kwargs=dict(widths=(12, 24, 48)), about="ch11: vgg-small-fmnist with half its filters removed (prune.prune_channels(0.5)) and fine-tuned: the capstone solution's start (made by python -m course_lib.capstone ship)"),
    "tiny-fmnist": Recipe("lenet_300_100", "fashion-mnist", epochs=2, augment=False,
                          train_subset=2048, test_subset=1024,
                          about="seconds-long smoke test of the CLI"),
}


def get_recipe(name):
    if name not in RECIPES:
        raise ValueError(f"recipe {name!r} is unknown; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def build_model(name):
    """The untrained model of recipe ``name``, sized for its dataset."""
    recipe = get_recipe(name)
    info = data_mod.dataset_info(recipe.dataset)
    builder = MODELS[recipe.model]
    return builder(num_classes=len(info.classes), in_channels=info.channels, **recipe.model_kwargs)
