"""DenseNet and its memory: dense connectivity, and from quadratic to linear memory (chapter 08).

**Dense connectivity** (Huang, Liu, van der Maaten, Weinberger, *Densely Connected Convolutional
Networks*, CVPR 2017). Inside a dense block, layer l receives the concatenation of the block input
``x_0`` and the outputs of all earlier layers, ``x_l = H_l([x_0, x_1, …, x_{l-1}])``, so it has
``k_0 + k·(l − 1)`` input channels and a block of L layers has ``L(L + 1)/2`` connections (layer l
receives l of them). Every layer adds only ``k`` new channels, the *growth rate* (k = 12 on CIFAR,
32 on ImageNet). ``H_l`` is BN → ReLU → 3×3 conv; **DenseNet-B** puts a 1×1 *bottleneck*
BN → ReLU → 1×1 conv to ``4k`` channels in front of it; **DenseNet-C** makes the *transition
layers* between blocks (BN → ReLU → 1×1 conv → 2×2 average pooling) compress m channels to
``⌊θm⌋`` with θ = 0.5; **DenseNet-BC** does both. Without a bottleneck a block's parameters grow as
``O(k²L²)``.

**Why the naive implementation is quadratic** (Pleiss, Chen, Huang, Li, van der Maaten, Weinberger,
*Memory-Efficient Implementation of DenseNets*, 2017). Each layer concatenates its inputs into a new
tensor of ``k_0 + k(l − 1)`` channels and normalises it into another one; autograd keeps both for the
backward pass. Summed over the block that is ``O(kL²)`` bytes although the block only produces
``O(kL)`` features. Pleiss et al. write every layer's concatenation and BN output into two *shared*
buffers, and recompute them during the backward pass: concatenation and BatchNorm are cheap next to
the convolutions, so memory becomes linear for a little more time (the paper's text: +15 % in LuaTorch,
+20 % in PyTorch; the official PyTorch README's table: 0.165 → 0.207 s per batch, +25 %). Here
``efficient=True`` does the same with ``torch.utils.checkpoint`` around concat → BN → ReLU → 1×1 conv,
the way torchvision's ``memory_efficient=True`` does. The 1×1 convolution is inside the checkpoint but
is *not* re-run in the backward pass: non-reentrant checkpointing stops recomputing as soon as every
tensor the backward pass needs has been rebuilt (its *early stop*), and the last of them is the
ReLU output, the 1×1 conv's input. So only concat + BN + ReLU are recomputed and the 1×1 conv's output
is kept — Pleiss et al.'s scheme. (With ``torch.utils.checkpoint.set_checkpoint_early_stop(False)``
the conv would run again: 18 instead of 12 conv forwards per step in a 6-layer block.)
Unlike torchvision's, our version has the BatchNorm trap fixed: the recomputed forward pass runs
BatchNorm in training mode a second time, which (in torchvision) moves the running statistics twice
per step. Our recomputation normalises with the batch statistics and leaves the running ones alone,
so one training step leaves every buffer exactly as the naive implementation does.

Parts of this module: the blocks and networks (names follow torchvision, so its state dicts load);
the arithmetic (input channels, parameters, the naive saved-bytes formula); measurements of saved
bytes per layer (``saved_bytes_by_layer``) and per depth; the explorer (the exercises are in
``course_lib.exercises.ch08``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp

from .args import check_float, check_int
from .channels import draw_counts
from .measure import activation_bytes, human_bytes
from .models import check_input
from .states import State

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .widgets import Explorer

__all__ = [
    "DenseLayer",
    "DenseBlock",
    "Transition",
    "DenseNet",
    "densenet121",
    "densenet_cifar",
    "layer_input_channels",
    "num_connections",
    "transition_channels",
    "dense_layer_params",
    "block_params",
    "naive_block_saved_bytes",
    "efficient_block_saved_bytes",
    "saved_bytes_by_layer",
    "block_saved_bytes",
    "loglog_slope",
    "bn_buffer_differences",
    "BufferDiff",
    "train_step",
    "step_times",
    "step_seconds",
    "DepthFit",
    "fit_saved_bytes_vs_depth",
    "deepest_within_budget",
    "BlockState",
    "block_state",
    "block_readout",
    "draw_block",
    "block_explorer",
    "KINDS",
]

BYTES_PER_FLOAT = 4


# --------------------------------------------------------------------------- validation


def _compression(value) -> float:
    """θ: a transition keeps ⌊θ·m⌋ of m channels."""
    return check_float("compression", value, 0.0, 1.0, low_inclusive=False)


# --------------------------------------------------------------------------- the blocks


def _batch_stats_bn(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(x)`` for a recomputation: the same output, but the running statistics stay untouched.

    In training mode BatchNorm normalises with the batch statistics and *then* updates its running
    averages and ``num_batches_tracked``. The recomputed pass must give the same output (batch
    statistics) without a second update, so it updates throw-away copies of the running buffers
    (copies rather than none, so that the recomputation saves the same tensors as the forward pass,
    which ``torch.utils.checkpoint`` verifies) and leaves ``num_batches_tracked`` alone.
    """
    if not (bn.training and bn.track_running_stats):  # eval mode updates nothing; untracked BN has no buffers
        return bn(x)
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats, checked above
    return F.batch_norm(
        x,
        bn.running_mean.clone(),
        bn.running_var.clone(),
        bn.weight,
        bn.bias,
        True,
        bn.momentum if bn.momentum is not None else 0.1,
        bn.eps,
    )


class DenseLayer(nn.Module):
    """One layer ``H_l`` of a dense block: [BN → ReLU → 1×1 conv (bn_size·k)] → BN → ReLU → 3×3 conv (k).

    ``bn_size=0`` drops the bottleneck (plain DenseNet: BN → ReLU → 3×3 conv). Input: the list of
    earlier feature maps (or one tensor); output: the k new channels. With ``efficient=True`` and
    autograd recording, concat → BN → ReLU → first conv run under ``torch.utils.checkpoint``: their
    outputs are not stored but recomputed in the backward pass, without moving BN's running stats.
    The checkpoint's early stop ends the recomputation once the first conv's input is rebuilt, so
    the conv itself is not re-run (its output is the checkpoint's output, kept by ``norm2``).
    Module names follow torchvision (``norm1, relu1, conv1, norm2, relu2, conv2``).
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, efficient: bool = False):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("growth_rate", growth_rate)
        check_int("bn_size", bn_size, 0)
        self.in_channels, self.growth_rate, self.bn_size = in_channels, growth_rate, bn_size
        self.efficient = bool(efficient)
        self._recomputing = False
        first_out = bn_size * growth_rate if bn_size else growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        if bn_size:
            self.conv1 = nn.Conv2d(in_channels, first_out, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(first_out)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(first_out, growth_rate, 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=False)

    def bn_function(self, *inputs: torch.Tensor) -> torch.Tensor:
        """concat → BN → ReLU → first conv: the part that is recomputed when ``efficient``."""
        x = torch.cat(inputs, 1)
        x = _batch_stats_bn(self.norm1, x) if self._recomputing else self.norm1(x)
        return self.conv1(self.relu1(x))

    @contextlib.contextmanager
    def _recompute(self):
        self._recomputing = True
        try:
            yield
        finally:
            self._recomputing = False

    def forward(self, inputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        features = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
        if sum(f.shape[1] for f in features) != self.in_channels:
            raise ValueError(
                f"DenseLayer expects {self.in_channels} input channels in total, got "
                f"{sum(f.shape[1] for f in features)}"
            )
        if self.efficient and torch.is_grad_enabled() and any(f.requires_grad for f in features):
            out = cp.checkpoint(
                self.bn_function,
                *features,
                use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(), self._recompute()),
            )
        else:
            out = self.bn_function(*features)
        if self.bn_size:
            out = self.conv2(self.relu2(self.norm2(out)))
        return out


class DenseBlock(nn.ModuleDict):
    """A dense block: ``num_layers`` layers, layer l reads all earlier outputs (N, C, H, W) → (N, C + L·k, H, W).

    ``efficient=True`` recomputes each layer's concatenation and BN output in the backward pass
    (memory linear in L instead of quadratic); outputs and gradients are the same.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4, efficient: bool = False):
        check_int("num_layers", num_layers)
        check_int("in_channels", in_channels)
        check_int("growth_rate", growth_rate)
        check_int("bn_size", bn_size, 0)
        super().__init__()
        self.num_layers, self.in_channels, self.growth_rate, self.bn_size = (
            num_layers,
            in_channels,
            growth_rate,
            bn_size,
        )
        self.out_channels = in_channels + num_layers * growth_rate
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, efficient)
            )

    @property
    def efficient(self) -> bool:
        return all(layer.efficient for layer in self._layers())

    @efficient.setter
    def efficient(self, value: bool) -> None:
        for layer in self._layers():
            layer.efficient = bool(value)

    def _layers(self) -> list[DenseLayer]:
        return [layer for layer in self.values() if isinstance(layer, DenseLayer)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DenseBlock expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """Between two blocks: BN → ReLU → 1×1 conv (m → out_channels = ⌊θm⌋) → 2×2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet(nn.Module):
    """DenseNet(-B/-C/-BC): stem → [dense block → transition] … → dense block → BN → ReLU → GAP → linear.

    ``block_config``: layers per block; ``bn_size``: bottleneck width factor (0 = no bottleneck);
    ``compression``: θ of the transitions (1 = no compression). ``stem="imagenet"`` is torchvision's
    (7×7/2 conv, BN, ReLU, 3×3/2 max pool); ``stem="cifar"`` is the paper's CIFAR stem (one 3×3 conv).
    Module names follow torchvision, so ``densenet121()`` loads torchvision's state dict.
    """

    def __init__(
        self,
        growth_rate: int,
        block_config: Sequence[int],
        num_init_features: int,
        bn_size: int = 4,
        compression: float = 0.5,
        num_classes: int = 1000,
        efficient: bool = False,
        in_channels: int = 3,
        stem: str = "imagenet",
    ):
        super().__init__()
        check_int("growth_rate", growth_rate)
        check_int("num_init_features", num_init_features)
        check_int("bn_size", bn_size, 0)
        check_int("num_classes", num_classes)
        check_int("in_channels", in_channels)
        compression = _compression(compression)
        if not isinstance(block_config, (tuple, list)):
            raise TypeError(f"block_config={block_config!r} must be a tuple of layers per block")
        if len(block_config) == 0:
            raise ValueError("block_config is empty: a DenseNet needs at least one dense block")
        for n in block_config:
            check_int("block_config entries (layers per block)", n)
        if stem == "imagenet":
            layers = [
                ("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(3, 2, 1)),
            ]
        elif stem == "cifar":
            layers = [("conv0", nn.Conv2d(in_channels, num_init_features, 3, 1, 1, bias=False))]
        else:
            raise ValueError(f"stem={stem!r} must be 'imagenet' or 'cifar'")
        self.features = nn.Sequential(OrderedDict(layers))
        c = num_init_features
        for i, n in enumerate(block_config):
            block = DenseBlock(n, c, growth_rate, bn_size, efficient)
            self.features.add_module(f"denseblock{i + 1}", block)
            c = block.out_channels
            if i != len(block_config) - 1:
                out = transition_channels(c, compression)
                self.features.add_module(f"transition{i + 1}", Transition(c, out))
                c = out
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)
        self.num_features, self.in_channels = c, in_channels
        check_input(self, in_channels, "DenseNet")
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def blocks(self) -> list[DenseBlock]:
        return [m for m in self.features if isinstance(m, DenseBlock)]

    def set_efficient(self, efficient: bool = True) -> DenseNet:
        """Switch every block to the memory-efficient (or naive) implementation, in place; returns the model."""
        for block in self.blocks():
            block.efficient = efficient
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.classifier(out)


def densenet121(num_classes: int = 1000, in_channels: int = 3, *, efficient: bool = False) -> DenseNet:
    """DenseNet-121 (ImageNet layout: k = 32, blocks 6-12-24-16, 64 stem channels, θ = 0.5)."""
    return DenseNet(32, (6, 12, 24, 16), 64, 4, 0.5, num_classes, efficient, in_channels, "imagenet")


def densenet_cifar(
    depth: int = 100,
    growth_rate: int = 12,
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    bottleneck: bool = True,
    compression: float = 0.5,
    efficient: bool = False,
) -> DenseNet:
    """The paper's CIFAR DenseNets: 3 blocks, a 3×3 stem; DenseNet-BC by default.

    With the bottleneck each layer has two convs: ``depth = 6n + 4`` (n layers per block; BC-100 has
    n = 16) and the stem has 2k channels. Without it, ``depth = 3n + 4`` and the stem has 16 channels.
    """
    check_int("depth", depth)
    check_int("growth_rate", growth_rate)
    per_layer = 2 if bottleneck else 1
    if (depth - 4) % (3 * per_layer) or depth < 4 + 3 * per_layer:
        rule = "6n + 4 (40, 52, 100, 190, 250) with the bottleneck" if bottleneck else "3n + 4 (40, 100) without it"
        raise ValueError(f"depth={depth} must be {rule}")
    n = (depth - 4) // (3 * per_layer)
    stem = 2 * growth_rate if bottleneck else 16
    return DenseNet(
        growth_rate, (n, n, n), stem, 4 if bottleneck else 0, compression, num_classes, efficient, in_channels, "cifar"
    )


# --------------------------------------------------------------------------- arithmetic


def layer_input_channels(l: int, in_channels: int, growth_rate: int) -> int:  # noqa: E741  (the paper's ℓ)
    """Input channels of layer l (1-based) of a block: ``k_0 + k·(l − 1)``."""
    check_int("l", l)
    return check_int("in_channels", in_channels) + check_int("growth_rate", growth_rate) * (l - 1)


def num_connections(num_layers: int) -> int:
    """Direct connections into the L layers of a block (layer l receives l): ``L(L + 1)/2``."""
    L = check_int("num_layers", num_layers)
    return L * (L + 1) // 2


def transition_channels(channels: int, compression: float = 0.5) -> int:
    """Channels after a transition: ``⌊θ·m⌋`` (at least 1)."""
    check_int("channels", channels)
    return max(1, int(math.floor(_compression(compression) * channels)))


def dense_layer_params(in_channels: int, growth_rate: int, bn_size: int = 4) -> int:
    """Parameters of one dense layer (BN scales and shifts included)."""
    check_int("in_channels", in_channels)
    check_int("growth_rate", growth_rate)
    check_int("bn_size", bn_size, 0)
    if not bn_size:
        return 2 * in_channels + 9 * in_channels * growth_rate
    b = bn_size * growth_rate
    return 2 * in_channels + in_channels * b + 2 * b + 9 * b * growth_rate


def block_params(num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4) -> int:
    """Parameters of a dense block: the sum over its layers."""
    check_int("num_layers", num_layers)
    return sum(
        dense_layer_params(layer_input_channels(layer, in_channels, growth_rate), growth_rate, bn_size)
        for layer in range(1, num_layers + 1)
    )


def naive_block_saved_bytes(
    num_layers: int,
    in_channels: int,
    growth_rate: int,
    bn_size: int = 4,
    batch: int = 1,
    height: int = 8,
    width: int = 8,
    bytes_per_value: int = 4,
) -> int:
    """Bytes autograd saves in the naive block (training mode, float32 by default), from the formula.

    Per layer with ``c_l = k_0 + k(l − 1)`` inputs: the concatenation (kept by BN) and the BN output
    (kept by ReLU and the conv; ReLU is in place) — ``2·c_l`` maps; BN also keeps its per-channel
    mean and 1/std (``2·c_l`` numbers). With the bottleneck of ``b = bn_size·k`` channels: the 1×1
    conv output (kept by BN) and its BN-ReLU output (kept by the 3×3 conv) — ``2·b`` maps, plus
    ``2·b`` statistics. Summed over l this is ``O(kL²)``.
    """
    check_int("num_layers", num_layers)
    hw = check_int("batch", batch) * check_int("height", height) * check_int("width", width)
    b = check_int("bn_size", bn_size, 0) * growth_rate
    total = 0
    for layer in range(1, num_layers + 1):
        c = layer_input_channels(layer, in_channels, growth_rate)
        total += 2 * c * hw + 2 * c
        if b:
            total += 2 * b * hw + 2 * b
    return total * bytes_per_value


def efficient_block_saved_bytes(
    num_layers: int,
    in_channels: int,
    growth_rate: int,
    bn_size: int = 4,
    batch: int = 1,
    height: int = 8,
    width: int = 8,
    bytes_per_value: int = 4,
) -> int:
    """Bytes saved by the efficient block: each feature map once (the checkpoints' inputs) + the bottleneck.

    The block input and the outputs of layers 1 … L − 1 (``k_0 + k(L − 1)`` maps) are kept once,
    shared by every later layer; the bottleneck keeps ``2·b`` maps per layer. Linear in L.
    """
    check_int("num_layers", num_layers)
    hw = check_int("batch", batch) * check_int("height", height) * check_int("width", width)
    b = check_int("bn_size", bn_size, 0) * growth_rate
    total = layer_input_channels(num_layers, in_channels, growth_rate) * hw
    if b:
        total += num_layers * (2 * b * hw + 2 * b)
    return total * bytes_per_value


# --------------------------------------------------------------------------- measuring saved bytes

KINDS = ("concat + BN output", "bottleneck", "stored features", "BN statistics")
_REGION = {"norm1": 0, "relu1": 0, "conv1": 0, "norm2": 1, "relu2": 1, "conv2": 1}


def saved_bytes_by_layer(block: DenseBlock, x: torch.Tensor) -> list[dict]:
    """Bytes autograd saves for the backward pass, per layer of ``block`` and per kind, for input ``x``.

    Kinds (:data:`KINDS`): *concat + BN output* (what BN-ReLU-conv of the concatenation keeps),
    *bottleneck* (the 4k-channel maps of BN2-ReLU2-conv2), *stored features* (the checkpoints'
    inputs of the efficient block), *BN statistics* (per-channel mean and 1/std). Each storage is
    counted once, at the first layer that saves it, as ``measure.activation_bytes`` does; the sum over
    layers equals ``activation_bytes(block, x)``. Runs in the block's current mode (train by default).
    """
    if not isinstance(block, DenseBlock):
        raise TypeError(f"block must be a DenseBlock, got {type(block).__name__}")
    layers = list(block.values())
    rows = [dict.fromkeys(KINDS, 0) for _ in layers]
    where = {"layer": None, "region": None}
    param_ptrs = {p.untyped_storage().data_ptr() for p in [*block.parameters(), *block.buffers()]}
    seen = set()
    hooks = []

    def enter_layer(i):
        def hook(module, args):
            where["layer"], where["region"] = i, None

        return hook

    def enter(name):
        def hook(module, args):
            where["region"] = _REGION[name]

        return hook

    def leave(module, args, out):
        where["region"] = None

    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_pre_hook(enter_layer(i)))
        for name, sub in layer.named_children():
            hooks.append(sub.register_forward_pre_hook(enter(name)))
            hooks.append(sub.register_forward_hook(leave))

    def pack(t):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in param_ptrs and ptr not in seen and where["layer"] is not None:
            seen.add(ptr)
            if t.dim() <= 1:
                kind = KINDS[3]
            elif where["region"] is None:
                kind = KINDS[2]
            else:
                kind = KINDS[where["region"]]
            rows[where["layer"]][kind] += storage.nbytes()
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = block(x)
        del out
    finally:
        for h in hooks:
            h.remove()
    return rows


def block_saved_bytes(
    num_layers: int,
    in_channels: int,
    growth_rate: int,
    bn_size: int = 4,
    efficient: bool = False,
    batch: int = 1,
    height: int = 8,
    width: int = 8,
    seed: int = 0,
) -> int:
    """Measured bytes saved for backward by a fresh block (training mode) on a random input."""
    g = torch.Generator().manual_seed(seed)
    block = DenseBlock(num_layers, in_channels, growth_rate, bn_size, efficient)
    x = torch.randn(batch, in_channels, height, width, generator=g, requires_grad=True)
    return activation_bytes(block, x)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (the exponent p of y ∝ x^p).

    ``xs`` and ``ys``: equally many finite positive numbers (a logarithm needs > 0), at least two
    distinct ``xs`` (one x has no slope): else a ``ValueError``.
    """
    values = {}
    for name, v in (("xs", xs), ("ys", ys)):
        try:
            t = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a sequence of numbers, got {type(v).__name__}") from None
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ValueError(f"{name}={list(map(float, t))} must hold finite numbers > 0 (their logarithms are fitted)")
        values[name] = t
    lx, ly = torch.log(values["xs"]), torch.log(values["ys"])
    if lx.numel() != ly.numel():
        raise ValueError(f"xs has {lx.numel()} points but ys has {ly.numel()}: one y per x")
    if lx.numel() < 2:
        raise ValueError("loglog_slope needs at least two points")
    lx, ly = lx - lx.mean(), ly - ly.mean()
    if float((lx * lx).sum()) == 0:
        raise ValueError(f"xs={list(map(float, values['xs']))} are all equal: a slope needs at least two different x")
    return float((lx * ly).sum() / (lx * lx).sum())


# --------------------------------------------------------------------------- BatchNorm under recomputation


@dataclass
class BufferDiff:
    """How many BatchNorm buffers of two models differ after the same training step."""

    stats_differ: int  # running_mean / running_var tensors that differ
    stats_total: int
    counters_differ: int  # num_batches_tracked that differ
    counters_total: int
    example: str  # one differing buffer with both values of num_batches_tracked

    def summary(self) -> str:
        """Three lines of text (``str(diff)`` is the same): how many buffers differ, and one example."""
        return (
            f"running mean/var buffers that differ: {self.stats_differ} of {self.stats_total}\n"
            f"num_batches_tracked that differ:      {self.counters_differ} of {self.counters_total}\n"
            f"example: {self.example}"
        )

    __str__ = summary
    table = summary  # the older name (a single record, not a report.Rows table)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float = 0.1) -> float:
    """One SGD training step (cross-entropy) of ``model`` in place; returns the loss."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def bn_buffer_differences(a: nn.Module, b: nn.Module, atol: float = 0.0) -> BufferDiff:
    """Compare the BatchNorm buffers of two models with the same architecture (names must match)."""
    bufs_a, bufs_b = dict(a.named_buffers()), dict(b.named_buffers())
    if bufs_a.keys() != bufs_b.keys():
        raise ValueError("the two models have different buffers; compare the same architecture")
    stats = [n for n in bufs_a if n.endswith(("running_mean", "running_var"))]
    counters = [n for n in bufs_a if n.endswith("num_batches_tracked")]

    def differ(n):
        return not torch.allclose(bufs_a[n].double(), bufs_b[n].double(), rtol=0, atol=atol)

    bad_counters = [n for n in counters if differ(n)]
    example = (
        f"{bad_counters[0]}: {int(bufs_a[bad_counters[0]])} vs {int(bufs_b[bad_counters[0]])}"
        if bad_counters
        else "none"
    )
    return BufferDiff(sum(map(differ, stats)), len(stats), len(bad_counters), len(counters), example)


def step_times(
    models: dict, x: torch.Tensor, y: torch.Tensor, repeats: int = 5, clock: str | None = None
) -> dict[str, list[float]]:
    """Seconds of ``repeats`` forward + backward passes (training mode) of each model, measured in one run.

    Returns ``{name: [seconds of round 1, …, round repeats]}``: round i of every model was measured
    back to back, so ``times[a][i] / times[b][i]`` is one paired ratio. The models take turns
    (naive, efficient, naive, …) so that a busy machine slows them alike; one warm-up pass each is
    not timed. Gradients are computed, no optimizer step is taken.
    ``clock``: "wall" (default on a GPU, synchronised) or "cpu" (default on the CPU: the process's
    CPU time, all threads — the work done, which a machine shared with other jobs inflates less).
    """
    check_int("repeats", repeats)
    clock = clock or ("wall" if x.is_cuda else "cpu")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock={clock!r} must be 'wall' or 'cpu'")
    now = time.perf_counter if clock == "wall" else time.process_time
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(repeats + 1):
        for name, model in models.items():
            model.train()
            model.zero_grad(set_to_none=True)
            if x.is_cuda:
                torch.cuda.synchronize()
            t0 = now()
            F.cross_entropy(model(x), y).backward()
            if x.is_cuda:
                torch.cuda.synchronize()
            if i:
                times[name].append(now() - t0)
    return times


def step_seconds(models: dict, x: torch.Tensor, y: torch.Tensor, repeats: int = 5, clock: str | None = None) -> dict:
    """Median seconds of one forward + backward pass (training mode) of each model (``step_times``)."""
    return {name: sorted(t)[len(t) // 2] for name, t in step_times(models, x, y, repeats, clock).items()}


# --------------------------------------------------------------------------- bigger is possible


@dataclass
class DepthFit:
    """Measured saved bytes of DenseNet-BC (CIFAR layout) as a quadratic in n, layers per block."""

    efficient: bool
    coefficients: tuple  # bytes per image = a·n² + b·n + c
    measured: dict  # depth -> bytes per image (measured)

    def predict(self, depth: int, batch: int = 1) -> float:
        n = (depth - 4) / 6
        a, b, c = self.coefficients
        return batch * (a * n * n + b * n + c)

    def summary(self) -> str:
        """The fitted quadratic in one line (``str(fit)`` is the same)."""
        a, b, c = self.coefficients
        name = "efficient" if self.efficient else "naive"
        return (
            f"{name}: bytes/image = {a:,.0f}·n² + {b:,.0f}·n + {c:,.0f}  (n = layers per block; "
            f"measured at depths {sorted(self.measured)})"
        )

    __str__ = summary
    table = summary  # the older name (a single record, not a report.Rows table)


def fit_saved_bytes_vs_depth(
    depths: tuple = (16, 28, 40),
    growth_rate: int = 12,
    efficient: bool = False,
    in_channels: int = 3,
    size: int = 32,
    num_classes: int = 10,
) -> DepthFit:
    """Measure one image's saved bytes for DenseNet-BC at three depths and fit a quadratic in n.

    Saved bytes scale exactly with the batch size except for BN's per-channel statistics (a few
    KiB), so ``predict(depth, batch)`` multiplies by the batch.
    """
    if len(depths) != 3:
        raise ValueError(f"depths={depths!r} must be three depths 6n + 4 (a quadratic has three coefficients)")
    measured = {}
    for depth in depths:
        torch.manual_seed(0)
        net = densenet_cifar(depth, growth_rate, num_classes, in_channels, efficient=efficient)
        x = torch.randn(1, in_channels, size, size)
        measured[depth] = activation_bytes(net, x)
    ns = torch.tensor([(d - 4) / 6 for d in depths], dtype=torch.float64)
    A = torch.stack([ns**2, ns, torch.ones_like(ns)], 1)
    coef = torch.linalg.solve(A, torch.tensor([measured[d] for d in depths], dtype=torch.float64))
    return DepthFit(bool(efficient), tuple(float(v) for v in coef), measured)


def deepest_within_budget(fit: DepthFit, budget_bytes: float, batch: int, max_depth: int = 10_000) -> int:
    """The deepest DenseNet-BC (depth 6n + 4) whose predicted saved bytes at ``batch`` fit the budget."""
    if not isinstance(fit, DepthFit):
        raise TypeError(f"fit must be a DepthFit (fit_saved_bytes_vs_depth), got {type(fit).__name__}")
    check_float("budget_bytes", budget_bytes, 0.0, low_inclusive=False)
    check_int("batch", batch)
    check_int("max_depth", max_depth, 10)
    best = None
    depth = 10
    while depth <= max_depth and fit.predict(depth, batch) <= budget_bytes:
        best, depth = depth, depth + 6
    if best is None:
        raise ValueError(f"even DenseNet-BC-10 needs more than budget_bytes={budget_bytes:,.0f} at batch {batch}")
    return best


# --------------------------------------------------------------------------- explorer

MAX_EXPLORER_LAYERS = 48


@dataclass(frozen=True)
class BlockState(State):
    """What the dense-block explorer shows for one setting (one block and its transition)."""

    depth: int
    growth_rate: int
    bottleneck: bool
    compression: float
    efficient: bool
    in_channels: int
    size: int
    feeds: torch.Tensor  # row: layer 1..L, then the output; 1 where an earlier map feeds it
    channels: list[int]  # input channels per layer
    layer_params: list[int]
    params: int  # the block and its transition
    block_out: int
    transition_out: int
    connections: int  # + L + 1 into the output
    saved: list[dict[str, int]]  # saved bytes per layer and kind
    saved_total: int
    other_total: int  # the other implementation's total


def block_state(
    depth: int = 8,
    growth_rate: int = 12,
    bottleneck: bool = True,
    compression: float = 0.5,
    efficient: bool = False,
    in_channels: int | None = None,
    size: int = 8,
) -> BlockState:
    """The pure state of the dense-block explorer (one block + its transition).

    Returns which earlier maps feed every layer (a 0/1 matrix), the channels and parameters per
    layer, the transition's output channels, and the *measured* saved bytes per layer and kind for
    one ``size × size`` input, plus the other implementation's total for comparison.
    """
    check_int("depth", depth)
    check_int("growth_rate", growth_rate)
    if depth > MAX_EXPLORER_LAYERS:
        raise ValueError(f"depth={depth}: at most {MAX_EXPLORER_LAYERS} layers in the explorer")
    compression = _compression(compression)
    k0 = 2 * growth_rate if in_channels is None else check_int("in_channels", in_channels)
    bn_size = 4 if bottleneck else 0
    feeds = torch.zeros(depth + 1, depth + 1, dtype=torch.long)  # row: layer 1..L, then the output
    for layer in range(1, depth + 2):
        feeds[layer - 1, :layer] = 1
    channels = [layer_input_channels(layer, k0, growth_rate) for layer in range(1, depth + 1)]
    layer_params = [dense_layer_params(c, growth_rate, bn_size) for c in channels]
    m = k0 + depth * growth_rate
    out = transition_channels(m, compression)
    transition_params = 2 * m + m * out
    torch.manual_seed(0)
    block = DenseBlock(depth, k0, growth_rate, bn_size, efficient)
    x = torch.randn(1, k0, size, size, requires_grad=True)
    per_layer = saved_bytes_by_layer(block, x)
    block.efficient = not efficient
    other = activation_bytes(block, x)
    total = sum(sum(r.values()) for r in per_layer)
    return BlockState(
        depth=depth,
        growth_rate=growth_rate,
        bottleneck=bool(bottleneck),
        compression=compression,
        efficient=bool(efficient),
        in_channels=k0,
        size=size,
        feeds=feeds,
        channels=channels,
        layer_params=layer_params,
        params=sum(layer_params) + transition_params,
        block_out=m,
        transition_out=out,
        connections=num_connections(depth),
        saved=per_layer,
        saved_total=total,
        other_total=other,
    )


def block_readout(state: BlockState) -> str:
    """One line: connections, channels, parameters, saved bytes of this and the other implementation."""
    kind = "efficient" if state.efficient else "naive"
    other = "naive" if state.efficient else "efficient"
    name = "DenseNet-" + ("B" if state.bottleneck else "") + ("C" if state.compression < 1 else "")
    return (
        f"<b>{name.rstrip('-') if name == 'DenseNet-' else name} block, L={state.depth}, "
        f"k={state.growth_rate}</b>: {state.connections} connections; channels "
        f"{state.in_channels} → {state.block_out} → transition ⌊θm⌋ = {state.transition_out}; "
        f"{state.params:,} parameters.<br>Saved for backward ({state.size}×{state.size} input): "
        f"{kind} {human_bytes(state.saved_total)}, {other} {human_bytes(state.other_total)}."
    )


def draw_block(state: BlockState, fig: Figure) -> None:
    """Connectivity heatmap (``channels.draw_counts``), channels per layer, saved bytes per layer as stacked bars."""
    gs = fig.add_gridspec(1, 3, width_ratios=[1, 1.1, 1.5])
    ax_feed, ax_ch, ax_mem = (fig.add_subplot(gs[i]) for i in range(3))
    L = state.depth
    draw_counts(state.feeds, ax_feed)
    ax_feed.set_title("which maps feed layer l", fontsize=9)
    ax_feed.set_xlabel("map (0 = block input)")
    ax_feed.set_ylabel(f"layer l (row {L + 1} = block output)")
    ticks = list(range(0, L + 1, max(1, (L + 1) // 6)))
    ax_feed.set_xticks(ticks)
    ax_feed.set_yticks(ticks)
    ax_feed.set_yticklabels([str(t + 1) for t in ticks])
    ls = list(range(1, L + 1))
    ax_ch.bar(ls, state.channels, color="tab:blue")
    ax_ch.axhline(state.transition_out, color="tab:orange", ls="--", label=f"after transition: {state.transition_out}")
    ax_ch.set_xlabel("layer l")
    ax_ch.set_ylabel("input channels k₀ + k(l − 1)")
    ax_ch.legend(fontsize=7)
    ax_ch.set_title(f"channels ({state.params:,} parameters)", fontsize=9)
    bottom = [0.0] * L
    colors = ("tab:red", "tab:purple", "tab:green", "tab:gray")
    for kind, color in zip(KINDS, colors):
        vals = [r[kind] / 1024 for r in state.saved]
        if any(vals):
            ax_mem.bar(ls, vals, bottom=bottom, color=color, label=kind)
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax_mem.set_xlabel("layer l")
    ax_mem.set_ylabel("KiB saved for backward")
    ax_mem.legend(fontsize=7)
    ax_mem.set_title(("efficient" if state.efficient else "naive") + " implementation, measured", fontsize=9)
    fig.tight_layout()


def block_explorer(
    depth: int = 12,
    growth_rate: int = 12,
    bottleneck: bool = True,
    compression: float = 0.5,
    efficient: bool = False,
    figsize: tuple = (13, 3.8),
) -> Explorer:
    """The dense-block explorer (an ``Explorer``): depth, growth rate, bottleneck, θ, efficient."""
    from .widgets import Explorer, dropdown, float_slider, int_slider

    def state_fn(depth, growth_rate, bottleneck, compression, efficient):
        return block_state(depth, growth_rate, bottleneck, compression, efficient)

    controls = {
        "depth": int_slider("layers L", depth, 1, MAX_EXPLORER_LAYERS),
        "growth_rate": int_slider("growth rate k", growth_rate, 1, 48),
        "bottleneck": dropdown("bottleneck (B)", {"on": True, "off": False}, bottleneck),
        "compression": float_slider("compression θ", compression, 0.0, 1.0, 0.05),
        "efficient": dropdown("implementation", {"naive": False, "efficient": True}, efficient),
    }
    return Explorer(
        state_fn, draw_block, controls, title="dense-block explorer", readout_fn=block_readout, figsize=figsize
    )
