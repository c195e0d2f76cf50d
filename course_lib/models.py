"""The small reference networks that the chapters train, compress and measure.

Each builder is a few lines on purpose: the chapters take these models apart layer by layer.

- ``lenet_300_100``: the fully connected LeNet-300-100 of Han et al. (784-300-100-10, 266,610 weights).
- ``lenet5``: Caffe's LeNet-5 as used by Deep Compression (conv 20@5x5, conv 50@5x5, fc 500, fc 10;
  431,080 weights). Caffe's model has no nonlinearity after the convolutions; we add ReLUs, which
  costs nothing in weights and trains better.
- ``conv_norm_act`` (after torchvision's ``Conv2dNormActivation``; ``conv_bn_relu`` with its
  defaults): conv → norm → activation, the unit every chapter's networks are built from.
- ``vgg_small``: a VGG-style stack of 3x3 conv-BN-ReLU pairs with max pooling, global average pooling
  and one linear classifier.
- ``fast_cnn``: a small BatchNorm net built for time to accuracy (after Keller Jordan's airbench):
  the ``fast-fmnist`` recipe trains it to 92% on Fashion-MNIST in well under a minute on two CPU cores.

He et al.'s CIFAR ResNets (ResNet-20, used by chapter 02's TTQ experiment, and its variants) live with
their chapter: ``course_lib.resnets.resnet_cifar``.

Every builder checks its arguments (``args.check_int``) and registers :class:`InputCheck`, a forward
pre-hook that refuses an input with the wrong number of channels with a ``ValueError`` naming the
expected ``in_channels`` (instead of torch's conv error from deep inside); :func:`check_input` adds it
to any model.

Layering: this module is part of the core — it imports only torch and ``args`` — so every chapter may build on it;
the catalogue (``recipes``, whose ``MODELS`` names every network of every chapter) sits on top.
"""

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn as nn

from .args import check_int

ModuleT = TypeVar("ModuleT", bound=nn.Module)

__all__ = [
    "InputCheck",
    "FeatureCheck",
    "check_input",
    "check_widths",
    "lenet_300_100",
    "lenet5",
    "norm_act",
    "conv_norm_act",
    "conv_bn_relu",
    "vgg_small",
    "conv_pool_bn_gelu",
    "fast_cnn",
]


class InputCheck:
    """A forward pre-hook: the input must be images ``(N, C, H, W)`` (or one ``(C, H, W)``) with
    ``in_channels`` channels, else a ``ValueError`` that names the expected channels.

    A few integer comparisons per call (no host sync); a plain class, so a model carrying it still
    pickles and deep-copies.
    """

    def __init__(self, in_channels: int, name: str = "model") -> None:
        self.in_channels = check_int("in_channels", in_channels)
        self.name = name

    def __call__(self, module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.name} takes a tensor of images (N, C, H, W), got {type(x).__name__}")
        if x.dim() not in (3, 4):
            raise ValueError(f"{self.name} expects a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
        channels = x.shape[-3]
        if channels != self.in_channels:
            raise ValueError(
                f"{self.name}: the input has {channels} channel(s), this model expects "
                f"in_channels={self.in_channels} (input shape {tuple(x.shape)})"
            )


class FeatureCheck:
    """A forward pre-hook for a fully connected net: each example of the input (images or already
    flattened) must hold ``features`` values, else a ``ValueError`` naming what the model expects."""

    def __init__(self, features: int, name: str = "model", expects: str = "") -> None:
        self.features = check_int("features", features)
        self.name, self.expects = name, expects

    def __call__(self, module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.name} takes a tensor, got {type(x).__name__}")
        per_example = x[0].numel() if x.dim() >= 2 else -1
        if per_example != self.features:
            raise ValueError(
                f"{self.name}: each example of the input (shape {tuple(x.shape)}) holds "
                f"{per_example if per_example >= 0 else 'no batch of'} values, this model expects "
                f"{self.features}{f' ({self.expects})' if self.expects else ''}"
            )


def check_input(model: ModuleT, in_channels: int, name: str | None = None) -> ModuleT:
    """Register an :class:`InputCheck` on ``model`` (in place; returns ``model``)."""
    model.register_forward_pre_hook(InputCheck(in_channels, name or type(model).__name__))
    return model


def check_widths(name: str, widths: object, length: int | None = None) -> tuple:
    """``widths`` as a tuple of ints >= 1 (exactly ``length`` of them if given), else a clear error."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"{name}={widths!r} must be a tuple of channel widths")
    if not widths or (length is not None and len(widths) != length):
        need = f"{length}" if length is not None else "at least one"
        raise ValueError(f"{name}={tuple(widths)!r} must hold {need} channel width(s)")
    return tuple(check_int(f"{name}[{i}]", w) for i, w in enumerate(widths))


def lenet_300_100(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> nn.Sequential:
    """Han et al.'s fully connected LeNet-300-100: flatten, 300, 100, ``num_classes``."""
    check_int("num_classes", num_classes)
    check_int("in_channels", in_channels)
    check_int("image_size", image_size)
    d = in_channels * image_size * image_size
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(d, 300),
        nn.ReLU(inplace=True),
        nn.Linear(300, 100),
        nn.ReLU(inplace=True),
        nn.Linear(100, num_classes),
    )
    model.register_forward_pre_hook(
        FeatureCheck(d, "lenet_300_100", f"in_channels={in_channels} × image_size²={image_size}²")
    )
    return model


def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> nn.Sequential:
    """Caffe's LeNet-5 of Deep Compression: conv 20@5x5, pool, conv 50@5x5, pool, fc 500, fc ``num_classes``."""
    check_int("num_classes", num_classes)
    check_int("in_channels", in_channels)
    check_int("image_size", image_size, 16)  # 16 → 12 → 6 → 2 → 1: the smallest that fits
    side = ((image_size - 4) // 2 - 4) // 2  # two valid 5x5 convs, each followed by 2x2 pooling
    return check_input(
        nn.Sequential(
            nn.Conv2d(in_channels, 20, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(50 * side * side, 500),
            nn.ReLU(inplace=True),
            nn.Linear(500, num_classes),
        ),
        in_channels,
        "lenet5",
    )


def norm_act(
    channels: int,
    *,
    norm: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
    activation: Callable[..., nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """The normalization and activation that follow a conv: ``norm(channels)`` → ``activation(inplace=True)``.

    ``None`` leaves either out (an IGC block without BN, a linear bottleneck without activation).
    """
    check_int("channels", channels)
    layers = [] if norm is None else [norm(channels)]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int] = 3,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] | None = None,
    groups: int = 1,
    norm: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
    activation: Callable[..., nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """The basic unit of most networks in this course: conv → norm → activation.

    Modelled on torchvision's ``Conv2dNormActivation``: the same module tree (``0`` the conv, ``1``
    the norm, ``2`` the activation, so torchvision's weights load into ours and ours into it), a
    padding that keeps the size at stride 1 (``kernel_size // 2`` per side; ``(1, 3)`` pads
    ``(0, 1)``), and a conv bias only without a norm. ``norm=None`` / ``activation=None`` leave them
    out; ``activation=nn.ReLU6`` is MobileNetV2's. Everything after the kernel size is keyword-only.
    """
    check_int("in_channels", in_channels)
    check_int("out_channels", out_channels)
    kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(kernel) != 2:
        raise ValueError(f"kernel_size={kernel_size!r} must be an int or a pair (height, width)")
    for k in kernel:
        check_int("kernel_size", k)
    check_int("stride", stride)
    check_int("groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    if padding is None:
        padding = (kernel[0] // 2, kernel[1] // 2)
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=padding, groups=groups, bias=norm is None)
    return nn.Sequential(conv, *norm_act(out_channels, norm=norm, activation=activation))


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3, *, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """:func:`conv_norm_act` with its defaults: conv (no bias) → BatchNorm → ReLU (the name notebooks use)."""
    return conv_norm_act(in_channels, out_channels, kernel_size, stride=stride, groups=groups)


def vgg_small(num_classes: int = 10, in_channels: int = 1, widths: tuple = (24, 48, 96)) -> nn.Sequential:
    """Three stages of two conv-BN-ReLU units each, 2x2 max pooling between stages."""
    check_int("num_classes", num_classes)
    check_int("in_channels", in_channels)
    widths = check_widths("widths", widths)
    layers: list[nn.Module] = []
    c = in_channels
    for i, w in enumerate(widths):
        layers += [conv_bn_relu(c, w), conv_bn_relu(w, w)]
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return check_input(nn.Sequential(*layers), in_channels, "vgg_small")


def conv_pool_bn_gelu(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    """3x3 conv (no bias), then 2x2 max pooling if ``pool``, then BatchNorm and GELU.

    Pooling straight after the convolution (airbench's order) lets BatchNorm and GELU work on a
    quarter of the pixels.
    """
    check_int("c_in", c_in)
    check_int("c_out", c_out)
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.BatchNorm2d(c_out), nn.GELU())


def fast_cnn(num_classes: int = 10, in_channels: int = 1, widths: tuple = (16, 32, 64)) -> nn.Sequential:
    """A net for time to accuracy: cheap at full resolution, wide where the image is small.

    ``stem``: one conv at full resolution, pooled at once (28 -> 14 on Fashion-MNIST); two stages of
    [conv + pool, conv] (14 -> 7 -> 3); global max pooling; one linear layer. With the default widths
    it costs 2.7M MACs per 28x28 image (LeNet-5: 2.3M), so it trains as fast as LeNet-5 per image,
    and BatchNorm lets it take a learning rate that reaches 92% in 3-4 epochs instead of 11.
    """
    check_int("num_classes", num_classes)
    check_int("in_channels", in_channels)
    stem, mid, last = check_widths("widths", widths, 3)
    return check_input(
        nn.Sequential(
            conv_pool_bn_gelu(in_channels, stem, pool=True),
            conv_pool_bn_gelu(stem, mid, pool=True),
            conv_pool_bn_gelu(mid, mid),
            conv_pool_bn_gelu(mid, last, pool=True),
            conv_pool_bn_gelu(last, last),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(last, num_classes),
        ),
        in_channels,
        "fast_cnn",
    )
