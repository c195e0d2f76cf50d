"""Small networks: SqueezeNet, SqueezeNext, MobileNet and their kinship with IGC (chapter 09).

Chapters 01–06 made one matrix cheaper at a time: fewer bits, lower rank, zeros, products of
block-diagonal matrices. The small networks of 2016–2018 build *whole architectures* from those
cheap factors, so they are small before any compression — which matters for distributed training
(the traffic is proportional to the parameters), for over-the-air model updates, and for chips with
a few MB of on-chip memory (FPGAs have less than 10 MB).

- **SqueezeNet** and **SqueezeNext** (Iandola et al. 2016; Gholami et al. 2018): squeeze layers,
  1×1 filters, late downsampling; 1×3 + 3×1 instead of 3×3. They and the SqueezeNet paper's Deep
  Compression accounting are in ``squeezenets``, re-exported here (``smallnets.squeezenet`` ...).
- **MobileNet** (Howard et al., 2017). A *depthwise separable* convolution — a k×k depthwise conv
  then a 1×1 pointwise conv — costs ``D_K²·M·D_F² + M·N·D_F²`` instead of ``D_K²·M·N·D_F²``: a
  ratio of ``1/N + 1/D_K²`` (chapter 01). It is IGCV1 with M = 1 (chapter 06). The width
  multiplier α thins every layer (cost ∝ α²), the resolution multiplier ρ shrinks the input
  (cost ∝ ρ²).
- **The IGC family.** ShuffleNet's channel shuffle (Zhang et al., 2018) is IGC's interleaving
  permutation; MobileNetV2's inverted residual (Sandler et al., 2018) — 1×1 expansion, 3×3
  depthwise, linear 1×1 projection, residual — is IGCV3 with one group (dense 1×1 convs).

This module has the MobileNets with their ImageNet layouts (parameter counts equal torchvision's),
small variants for 28×28 / 32×32 inputs, ShuffleNet's channel shuffle, cost accounting per layer
kind, the roofline's arithmetic intensity, the
connectivity presets for the channel-connectivity explorer (``channels``), the MobileNet α/ρ explorer
(the exercises are in ``course_lib.exercises.ch09``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import channels, measure
from .args import check_float, check_int
from .models import conv_norm_act
from .report import Rows, column
from .squeezenets import (  # SqueezeNet, SqueezeNext and their Deep Compression, re-exported
    SQNXT_23,
    SQNXT_23_V5,
    SQUEEZENET_DC_DENSITY,
    Fire,
    FireBypass,
    SqueezeNet,
    SqueezeNext,
    SqueezeNextBlock,
    _positive_float,
    _SizeChecked,
    bits_per_weight,
    deep_compress_bytes,
    fire_configs,
    layer_overhead_bytes,
    min_input_size,
    projected_bytes,
    squeezenet,
    squeezenet_dc_sparsity,
    squeezenet_roles,
    squeezenet_small,
    squeezenext,
    squeezenext_small,
)
from .states import State

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .widgets import Explorer

__all__ = [
    "Fire",
    "FireBypass",
    "SqueezeNet",
    "fire_configs",
    "squeezenet",
    "squeezenet_small",
    "SqueezeNextBlock",
    "SqueezeNext",
    "squeezenext",
    "squeezenext_small",
    "SQNXT_23",
    "SQNXT_23_V5",
    "depthwise_separable_block",
    "MobileNetV1",
    "mobilenet_v1",
    "mobilenet_small",
    "channel_shuffle",
    "InvertedResidual",
    "MobileNetV2",
    "mobilenet_v2",
    "mobilenetv2_small",
    "make_divisible",
    "layer_kind",
    "CostRow",
    "KindCostReport",
    "cost_by_kind",
    "min_input_size",
    "separable_cost_ratio",
    "robust_latency",
    "PRESETS",
    "PRESET_HELP",
    "connectivity_explorer",
    "MobileNetState",
    "mobilenet_state",
    "draw_mobilenet",
    "mobilenet_readout",
    "mobilenet_explorer",
    "SQUEEZENET_DC_DENSITY",
    "squeezenet_roles",
    "squeezenet_dc_sparsity",
    "deep_compress_bytes",
    "bits_per_weight",
    "layer_overhead_bytes",
    "projected_bytes",
    "arithmetic_intensity",
]

# --------------------------------------------------------------------------- MobileNet v1


def depthwise_separable_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """MobileNet's unit: 3×3 depthwise conv → BN → ReLU → 1×1 pointwise conv → BN → ReLU."""
    check_int("c_in", c_in)
    check_int("c_out", c_out)
    check_int("stride", stride)
    return nn.Sequential(*conv_norm_act(c_in, c_in, 3, stride=stride, groups=c_in), *conv_norm_act(c_in, c_out, 1))


# (output channels, stride) of the 13 depthwise separable layers (Howard et al. 2017, Table 1)
_MOBILENET_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class MobileNetV1(_SizeChecked):
    """3×3 conv (stride 2) → 13 depthwise separable layers → global average → fc (Table 1).

    ``separable=False``: every separable layer becomes one regular 3×3 conv (the paper's "Conv
    MobileNet", Table 4); ``shallow=True``: the five separable 14×14×512 layers are left out (the
    "shallower MobileNet" of Table 6).
    """

    name = "MobileNet"

    def __init__(
        self,
        width: float = 1.0,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        min_depth: int = 8,
        separable: bool = True,
        shallow: bool = False,
    ):
        super().__init__()
        self.width = _positive_float("width", width)
        check_int("num_classes", num_classes)
        self.in_channels = check_int("in_channels", in_channels)
        check_int("min_depth", min_depth)
        for name, value in (("separable", separable), ("shallow", shallow)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")

        def thin(c):
            return max(int(c * width), min_depth)

        c = thin(32)
        layers = [conv_norm_act(in_channels, c, 3, stride=1 if small_input else 2)]
        layout = _MOBILENET_V1[:6] + _MOBILENET_V1[11:] if shallow else _MOBILENET_V1
        for c_out, s in layout:
            if separable:
                layers.append(depthwise_separable_block(c, thin(c_out), s))
            else:  # the paper's "Conv MobileNet" (Table 4): a regular 3×3 conv where MobileNet has a separable one
                layers.append(conv_norm_act(c, thin(c_out), 3, stride=s))
            c = thin(c_out)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self.min_size = 16 if small_input else 32  # total stride of the network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _width(width: float | None, alpha: float | None, default: float) -> float:
    """The width multiplier, given as ``width`` or by the MobileNet paper's name ``alpha`` (an alias)."""
    if alpha is None:
        return _positive_float("width", default if width is None else width)
    if width is not None:
        raise TypeError(f"give the width multiplier once: width={width!r} or its alias alpha={alpha!r}")
    return _positive_float("alpha", alpha)


def mobilenet_v1(
    width: float | None = None,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    separable: bool = True,
    shallow: bool = False,
    alpha: float | None = None,
) -> MobileNetV1:
    """α-MobileNet (v1) of width multiplier ``width`` = α (default 1.0; ``alpha=`` is the same
    argument by the paper's name). Channels ``max(int(α·c), 8)`` as in the reference TF-slim code; the
    resolution multiplier ρ is the input size you feed it (224·ρ). ``small_input``: stride-1 stem.
    ``separable=False``: regular 3×3 convs instead (the paper's full-conv MobileNet); ``shallow=True``:
    without the five 14×14×512 layers (the paper's shallower MobileNet)."""
    return MobileNetV1(
        _width(width, alpha, 1.0),
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        separable=separable,
        shallow=shallow,
    )


def mobilenet_small(
    num_classes: int = 10, in_channels: int = 1, *, width: float | None = None, alpha: float | None = None
) -> MobileNetV1:
    """0.2-MobileNet (``width`` = α = 0.2; ``alpha=`` is an alias) with a stride-1 stem, for 28×28 /
    32×32 images (0.14M parameters at 10 classes)."""
    return MobileNetV1(_width(width, alpha, 0.2), num_classes=num_classes, in_channels=in_channels, small_input=True)


# --------------------------------------------------------------------------- ShuffleNet's channel shuffle


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: view the channels as (groups, C / groups), transpose, flatten.

    Equal to ``torch.nn.ChannelShuffle(groups)(x)`` and to ``x[:, channels.interleave(groups, C // groups)]``:
    the IGC interleaving permutation (chapter 06).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    check_int("groups", groups)
    if x.dim() < 2:
        raise ValueError(f"x must have a channel dimension (N, C, ...), got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c % groups:
        raise ValueError(f"channels={c} is not divisible by groups={groups}")
    return x.unflatten(1, (groups, c // groups)).transpose(1, 2).flatten(1, 2)


# --------------------------------------------------------------------------- MobileNetV2


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor``, never more than 10% below it (MobileNetV2's rule)."""
    check_float("value", value, 0.0, low_inclusive=False, what="a channel count")
    check_int("divisor", divisor)
    if min_value is not None:
        check_int("min_value", min_value)
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class InvertedResidual(nn.Module):
    """MobileNetV2's inverted residual: 1×1 expansion (×t, ReLU6) → 3×3 depthwise (ReLU6) → linear
    1×1 projection, + the input when the stride is 1 and the widths agree.

    It is IGCV3 (chapter 06) with one group: the expansion and projection are dense 1×1 convs.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expand_ratio: int = 6):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        check_int("expand_ratio", expand_ratio)
        if stride not in (1, 2):
            raise ValueError(f"stride={stride} must be 1 or 2")
        hidden = int(round(in_channels * expand_ratio))
        self.stride, self.use_res_connect = stride, stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_norm_act(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            conv_norm_act(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# (expansion t, channels c, repeats n, stride s) of MobileNetV2 (Sandler et al. 2018, Table 2)
_MOBILENET_V2 = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2(_SizeChecked):
    """3×3 conv → 17 inverted residuals → 1×1 conv (1280) → global average → dropout → fc."""

    name = "MobileNetV2"

    def __init__(
        self,
        width: float = 1.0,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        last_channel: int = 1280,
        dropout: float = 0.2,
    ):
        super().__init__()
        width = _positive_float("width", width)
        check_int("num_classes", num_classes)
        self.in_channels = check_int("in_channels", in_channels)
        check_int("last_channel", last_channel)
        check_float("dropout", dropout, 0.0, 1.0)
        c = make_divisible(32 * width)
        self.last_channel = make_divisible(last_channel * max(1.0, width))
        features: list[nn.Module] = [
            conv_norm_act(in_channels, c, 3, stride=1 if small_input else 2, activation=nn.ReLU6)
        ]
        for t, ch, n, s in _MOBILENET_V2:
            out = make_divisible(ch * width)
            for b in range(n):
                features.append(InvertedResidual(c, out, s if b == 0 else 1, t))
                c = out
        features.append(conv_norm_act(c, self.last_channel, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        self.min_size = 16 if small_input else 32  # total stride of the network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(
    width: float = 1.0,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    last_channel: int = 1280,
) -> MobileNetV2:
    """MobileNetV2 (parameters equal torchvision's ``mobilenet_v2(width_mult=width)``)."""
    return MobileNetV2(width, num_classes, in_channels, small_input=small_input, last_channel=last_channel)


def mobilenetv2_small(
    num_classes: int = 10, in_channels: int = 1, *, width: float = 0.25, last_channel: int = 256
) -> MobileNetV2:
    """0.25-MobileNetV2 with a stride-1 stem (total stride 16) and a 256-channel last conv, for
    28×28 / 32×32 images."""
    return MobileNetV2(width, num_classes, in_channels, small_input=True, last_channel=last_channel, dropout=0.1)


# --------------------------------------------------------------------------- where the cost sits

KINDS = ("full conv", "depthwise", "1×1 conv", "1×3 / 3×1", "group conv", "fc")


def layer_kind(module: nn.Module) -> str:
    """The kind of a conv/linear layer: full conv, depthwise, 1×1 conv, 1×3 / 3×1, group conv or fc."""
    if isinstance(module, nn.Linear):
        return "fc"
    if not isinstance(module, nn.Conv2d):
        raise TypeError(f"module must be an nn.Conv2d or nn.Linear, got {type(module).__name__}")
    if module.groups > 1 and module.groups == module.in_channels:
        return "depthwise"
    if module.groups > 1:
        return "group conv"
    kh, kw = module.kernel_size
    if kh == kw == 1:
        return "1×1 conv"
    if kh == 1 or kw == 1:
        return "1×3 / 3×1"
    return "full conv"


@dataclass
class CostRow:
    """The conv / linear layers of one :func:`layer_kind`: how many, their weights and MACs, and shares."""

    kind: str = column("layer kind", align="<")
    layers: int = column()
    params: int = column(format="{:,}")
    params_share: float = column("share", "{:.2f}%", scale=100)
    macs: int = column("MACs", "{:,}")
    macs_share: float = column("share", "{:.2f}%", scale=100)


class KindCostReport(Rows):
    """``report.Rows`` of :func:`cost_by_kind`, one :class:`CostRow` per layer kind present:
    ``.find(kind="depthwise")`` (``KeyError`` naming the kinds there are)."""


def cost_by_kind(model: nn.Module, input_size: tuple[int, ...]) -> KindCostReport:
    """Parameters and MACs of the conv/linear layers, summed per :func:`layer_kind` (one forward pass).

    Parameters are the *weights* of the conv/linear layers (biases and BatchNorm left out, as in
    MobileNet's Table 2). Shares are fractions of the conv + linear totals.
    """
    rows = measure.layer_table(model, input_size)
    modules = dict(model.named_modules())
    acc: dict[str, tuple[int, int, int]] = {}
    for r in rows:
        module = modules[r.name]
        kind = layer_kind(module)
        n, p, m = acc.get(kind, (0, 0, 0))
        acc[kind] = (n + 1, p + module.weight.numel(), m + r.macs)
    total_p = sum(p for _, p, _ in acc.values()) or 1
    total_m = sum(m for _, _, m in acc.values()) or 1
    return KindCostReport(
        CostRow(k, acc[k][0], acc[k][1], acc[k][1] / total_p, acc[k][2], acc[k][2] / total_m) for k in KINDS if k in acc
    )


def separable_cost_ratio(channels_out: int, kernel_size: int = 3) -> float:
    """MobileNet's cost of a depthwise separable conv over a regular one: ``1/N + 1/D_K²``."""
    check_int("channels_out", channels_out)
    check_int("kernel_size", kernel_size)
    return 1 / channels_out + 1 / kernel_size**2


# --------------------------------------------------------------------------- connectivity presets (``channels``)


def _fire(C: int, L: int, M: int, k: int) -> channels.Chain:
    if C % 2:
        raise ValueError(f"C={C} must be even: the Fire module's expand layer is C/2 1×1 + C/2 3×3 filters")
    if L >= C:
        raise ValueError(f"L={L} squeeze channels must be < C={C} expand channels (squeeze < expand)")
    e = C // 2
    expand = channels.ChannelOp("conv", L, C, label=f"expand {e}×1×1 ‖ {e}×3×3", fixed_params=L * e + L * e * 9)
    ops = (channels.dense(C, L, label=f"squeeze 1×1 → {L}"), expand)
    return channels.Chain(ops, f"Fire module: C={C}, squeeze s₁ₓ₁ = L = {L} (SR = {L / C:.2f})", C)


def _squeezenext(C: int, L: int, M: int, k: int) -> channels.Chain:
    if C % 4:
        raise ValueError(f"C={C} must be divisible by 4 (two squeezes, each halving the channels)")
    h, q = C // 2, C // 4
    ops = (
        channels.dense(C, h, label="1×1 squeeze"),
        channels.dense(h, q, label="1×1 squeeze"),
        channels.ChannelOp("conv", q, h, label="1×3", fixed_params=q * h * 3),
        channels.ChannelOp("conv", h, h, label="3×1", fixed_params=h * h * 3),
        channels.dense(h, C, label="1×1 expand"),
    )
    return channels.Chain(ops, f"SqueezeNext block, C={C} (+ residual)", C)


def _separable(C: int, L: int, M: int, k: int) -> channels.Chain:
    ops = (channels.depthwise(C, k, label=f"{k}×{k} depthwise"), channels.dense(C, label="1×1 pointwise"))
    return channels.Chain(ops, f"depthwise separable (MobileNet) = IGCV1 with M = 1, C={C}", C)


def _channel_shuffle(C: int, L: int, M: int, k: int) -> channels.Chain:
    if C % L:
        raise ValueError(f"C={C} is not divisible by L={L} groups")
    ops = (
        channels.group_conv(C, L, label=f"1×1 group conv, {L} groups"),
        channels.shuffle(C, L, "channel shuffle"),
        channels.group_conv(C, L, label=f"1×1 group conv, {L} groups"),
    )
    return channels.Chain(ops, f"two group convs with a channel shuffle, C={C}, {L} groups", C)


def _inverted_residual(C: int, L: int, M: int, k: int) -> channels.Chain:
    hidden = C * M
    ops = (
        channels.dense(C, hidden, label=f"1×1 expand ×{M}"),
        channels.depthwise(hidden, k, label=f"{k}×{k} depthwise"),
        channels.dense(hidden, C, label="1×1 linear projection"),
    )
    title = f"inverted residual (MobileNetV2 = IGCV3 with 1 group), C={C}, t = M = {M} (+ residual)"
    return channels.Chain(ops, title, C)


PRESETS = channels.presets_table(
    [
        channels.Preset("fire", _fire, "uses C (expand width) and L (squeeze width)"),
        channels.Preset("squeezenext", _squeezenext, "uses C"),
        channels.Preset("depthwise separable", _separable, "uses C"),
        channels.Preset("channel shuffle", _channel_shuffle, "uses C and L (= groups)"),
        channels.Preset("inverted residual", _inverted_residual, "uses C and M (= expansion t)"),
    ]
)
PRESET_HELP = {name: preset.help for name, preset in PRESETS.items()}


def connectivity_explorer(preset: str = "fire", C: int = 16, L: int = 4, M: int = 4) -> Explorer:
    """The channel-connectivity explorer (``channels``, chapter 06) with this chapter's presets added."""
    return channels.connectivity_explorer(preset, C, L, M, presets=PRESETS)


# --------------------------------------------------------------------------- the MobileNet α/ρ explorer


def robust_latency(model: nn.Module, x: torch.Tensor, min_run_time: float = 0.2, repeats: int = 3) -> float:
    """Seconds of one ``model(x)`` on one thread: the best of ``repeats`` medians (``measure.latency``).

    On a shared machine a burst of other work inflates a median; the best of a few short medians is
    a steadier estimate of what the model itself costs. One thread, so that the comparison between
    models is not a comparison of how well each one parallelises on a busy CPU.
    """
    check_int("repeats", repeats)
    return measure.latency(model, x, min_run_time=min_run_time / repeats, threads=1, rounds=repeats, best=True)


@lru_cache(maxsize=64)
def _mobilenet_latency(alpha, resolution, min_run_time):
    torch.manual_seed(0)
    model = mobilenet_v1(alpha).eval()
    return robust_latency(model, torch.randn(1, 3, resolution, resolution), min_run_time)


@dataclass(frozen=True)
class MobileNetState(State):
    """What the MobileNet α/ρ explorer shows for one setting (ratios against 1.0-MobileNet-224)."""

    alpha: float
    resolution: int
    rho: float
    params: int
    macs: int
    report: KindCostReport
    params_ratio: float
    macs_ratio: float
    latency: float | None  # seconds, batch 1, one thread; None when not measured
    latency_ratio: float | None


def mobilenet_state(
    alpha: float = 1.0, resolution: int = 224, measure_latency: bool = True, min_run_time: float = 0.2
) -> MobileNetState:
    """State of the MobileNet explorer: parameters, MACs, cost per layer kind and CPU latency.

    ``resolution`` = 224·ρ. Ratios are against 1.0-MobileNet-224. Latency (batch 1, one thread,
    this machine: :func:`robust_latency`) is measured once per setting and cached. Invalid α or
    resolution raise ValueError.
    """
    alpha = _positive_float("alpha", alpha)
    check_int("resolution", resolution)
    if resolution < 32:
        raise ValueError(
            f"resolution={resolution} is too small for MobileNet's five stride-2 layers "
            "(total stride 32): use at least 32"
        )
    model = mobilenet_v1(alpha)
    report = cost_by_kind(model, (3, resolution, resolution))
    base = _base_mobilenet_cost()
    params, macs = sum(r.params for r in report), sum(r.macs for r in report)
    latency = latency_ratio = None
    if measure_latency:
        latency = _mobilenet_latency(alpha, resolution, min_run_time)
        latency_ratio = latency / _mobilenet_latency(1.0, 224, min_run_time)
    return MobileNetState(
        alpha=alpha,
        resolution=resolution,
        rho=resolution / 224,
        params=params,
        macs=macs,
        report=report,
        params_ratio=params / base[0],
        macs_ratio=macs / base[1],
        latency=latency,
        latency_ratio=latency_ratio,
    )


@lru_cache(maxsize=1)
def _base_mobilenet_cost():
    report = cost_by_kind(mobilenet_v1(1.0), (3, 224, 224))
    return sum(r.params for r in report), sum(r.macs for r in report)


def draw_mobilenet(state: MobileNetState, fig: Figure) -> None:
    """Bar charts of MACs and parameters per layer kind."""
    ax1, ax2 = fig.subplots(1, 2)
    kinds = [r.kind for r in state.report]
    ax1.bar(kinds, [r.macs / 1e6 for r in state.report], color="tab:blue")
    ax1.set_ylabel("mult-adds (millions)")
    ax1.set_title(f"MACs: {state.macs / 1e6:.0f}M", fontsize=10)
    ax2.bar(kinds, [r.params / 1e6 for r in state.report], color="tab:orange")
    ax2.set_ylabel("parameters (millions)")
    ax2.set_title(f"parameters: {state.params / 1e6:.2f}M", fontsize=10)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{state.alpha:g}-MobileNet-{state.resolution} (ρ = {state.rho:.3f})", fontsize=11)


def mobilenet_readout(state: MobileNetState) -> str:
    text = (
        f"<b>{state.alpha:g}-MobileNet-{state.resolution}</b>: {state.params / 1e6:.2f}M parameters "
        f"({state.params_ratio:.2f}× of 1.0-MobileNet-224), {state.macs / 1e6:.0f}M mult-adds "
        f"({state.macs_ratio:.2f}×)"
    )
    if state.latency is not None:
        text += (
            f", CPU latency {1e3 * state.latency:.1f} ms (batch 1, one thread; {state.latency_ratio:.2f}× "
            f"— compare with the MACs ratio)"
        )
    return text + "."


def mobilenet_explorer(alpha: float = 1.0, resolution: int = 224, measure_latency: bool = True) -> Explorer:
    """Width multiplier α and input resolution → parameters, MACs, latency and cost per layer kind."""
    from .widgets import Explorer, float_slider, int_slider

    def state_fn(alpha, resolution):
        return mobilenet_state(round(alpha, 4), resolution, measure_latency)

    controls = {
        "alpha": float_slider("α (width)", alpha, 0.1, 1.0, 0.05),
        "resolution": int_slider("resolution", resolution, 16, 224, 16),
    }
    return Explorer(
        state_fn,
        draw_mobilenet,
        controls,
        title="MobileNet width α and resolution ρ",
        readout_fn=mobilenet_readout,
        figsize=(10, 3.4),
    )


def arithmetic_intensity(layer: nn.Module, input_size: tuple[int, int, int], bytes_per_value: int = 4) -> float:
    """MACs per byte moved of one conv/linear layer on one ``(C, H, W)`` input (``(features,)`` for a
    linear layer): its MACs / ``bytes_per_value`` × (weights + input values + output values), each
    read or written once — the best case of a perfect cache. Low intensity means memory-bound: the
    arithmetic units wait for data (SqueezeNext's argument against depthwise convs)."""
    check_int("bytes_per_value", bytes_per_value)
    if isinstance(layer, nn.Linear):
        if tuple(input_size) != (layer.in_features,):
            raise ValueError(f"input_size={input_size} must be ({layer.in_features},) for this linear layer")
        macs, n_in, n_out = layer.in_features * layer.out_features, layer.in_features, layer.out_features
    elif isinstance(layer, nn.Conv2d):
        if len(input_size) != 3 or input_size[0] != layer.in_channels:
            raise ValueError(f"input_size={input_size} must be (C, H, W) with C = {layer.in_channels}")
        c, h, w = (check_int("input_size entries", v) for v in input_size)
        if isinstance(layer.padding, str):
            raise ValueError(f"padding={layer.padding!r}: give the layer numeric padding")
        oh = (h + 2 * layer.padding[0] - layer.dilation[0] * (layer.kernel_size[0] - 1) - 1) // layer.stride[0] + 1
        ow = (w + 2 * layer.padding[1] - layer.dilation[1] * (layer.kernel_size[1] - 1) - 1) // layer.stride[1] + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input_size={input_size} is too small for this layer's kernel")
        n_out = layer.out_channels * oh * ow
        macs = n_out * (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]
        n_in = c * h * w
    else:
        raise TypeError(f"layer must be an nn.Conv2d or nn.Linear, got {type(layer).__name__}")
    return macs / (bytes_per_value * (layer.weight.numel() + n_in + n_out))
