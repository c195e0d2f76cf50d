"""SqueezeNet and SqueezeNext, and Deep Compression of a whole SqueezeNet (chapter 09).

- **SqueezeNet** (Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, 2016). Three strategies: use
  1×1 filters instead of 3×3 (9× fewer weights each), give the remaining 3×3 filters few input
  channels (a *squeeze* layer of ``s₁ₓ₁`` 1×1 filters in front of them), and downsample late (large
  activation maps for most layers). The **Fire module** is ``squeeze 1×1 (s₁ₓ₁) → [expand 1×1
  (e₁ₓ₁) ‖ expand 3×3 (e₃ₓ₃)]`` with ``s₁ₓ₁ < e₁ₓ₁ + e₃ₓ₃``. Five meta-parameters generate the
  eight Fire modules: ``e_i = base_e + incr_e·⌊i / freq⌋``, ``e₃ₓ₃ = pct₃ₓ₃·e_i``,
  ``s₁ₓ₁ = SR·e_i`` with base_e = incr_e = 128, freq = 2, pct₃ₓ₃ = 0.5, SR = 0.125. Simple bypass
  adds the identity around the Fire modules whose input and output widths agree; complex bypass
  adds a 1×1 conv around the others too. 4.8 MB (50× smaller than AlexNet's 240 MB); with Deep
  Compression at 6 bits, 0.47 MB (510×).
- **SqueezeNext** (Gholami, Kwon, Wu, Tai, Yue, Jin, Zhao, Keutzer, 2018). A two-stage squeeze
  (two 1×1 convs, each halving the channels), the 3×3 conv split into 1×3 + 3×1 (chapter 03's
  spatial low rank), a 1×1 expansion and a residual. 1.0-SqNxt-23 has blocks [6, 6, 8, 1] and
  0.72M parameters (84× fewer than AlexNet); the v5 layout [2, 4, 14, 1] moves blocks to the
  cheaper late stages.

The module has the two families with their ImageNet layouts (parameter counts equal torchvision's
where it has them), small variants for 28×28 / 32×32 inputs, the input-size bookkeeping every small
network shares (:func:`min_input_size`), and the SqueezeNet paper's Deep Compression accounting
(which layers keep how many weights, bits per weight, the bytes of the file). Every name here is
also ``smallnets.X`` (the chapter's module re-exports it); MobileNet, ShuffleNet and the cost
accounting per layer kind are in ``smallnets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from . import compressed_file, measure, prune, quant
from .args import check_bits, check_float, check_fraction, check_int
from .models import conv_norm_act
from .report import Rows

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
    "min_input_size",
    "SQUEEZENET_DC_DENSITY",
    "squeezenet_roles",
    "squeezenet_dc_sparsity",
    "deep_compress_bytes",
    "bits_per_weight",
    "layer_overhead_bytes",
    "projected_bytes",
]

SQNXT_23 = (6, 6, 8, 1)
SQNXT_23_V5 = (2, 4, 14, 1)


# --------------------------------------------------------------------------- validation


def _positive_float(name: str, value) -> float:
    """A width multiplier: a finite number > 0."""
    return check_float(name, value, 0.0, low_inclusive=False, what="a multiplier of the widths")


# --------------------------------------------------------------------------- input-size bookkeeping


def _out_size(layer, n):
    """Spatial size after one conv or pooling layer (None when the layer keeps the size)."""
    if isinstance(layer, nn.Conv2d):
        k, s, p, d = layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.dilation[0]
        return (n + 2 * p - d * (k - 1) - 1) // s + 1
    if isinstance(layer, nn.MaxPool2d):
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        num = n + 2 * p - k
        out = (-(-num // s) if layer.ceil_mode else num // s) + 1
        if layer.ceil_mode and (out - 1) * s >= n + p:
            out -= 1
        return out
    return n


class _SizeChecked(nn.Module):
    """A network that refuses inputs smaller than its downsampling needs, with a clear message."""

    min_size = 1
    name = "network"
    in_channels: int | None = None

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(
                f"{self.name} expects a batch of images (N, C, H, W), got "
                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.name}: the input has {x.shape[1]} channel(s), this model expects "
                f"in_channels={self.in_channels} (input shape {tuple(x.shape)})"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input of {tuple(x.shape[-2:])} pixels is too small for {self.name}: its "
                f"downsampling needs at least {self.min_size}×{self.min_size}"
            )


def min_input_size(model: nn.Module) -> int:
    """The smallest square input (pixels) a network of this module accepts."""
    if not isinstance(model, _SizeChecked):
        raise TypeError(f"model must be a network of course_lib.smallnets, got {type(model).__name__}")
    return model.min_size


def _smallest_input(layers, floor):
    """Smallest n ≥ floor such that every conv/pool of ``layers`` (in order) leaves ≥ 1 pixel."""
    for n in range(floor, 1024):
        size, ok = n, True
        for layer in layers:
            size = _out_size(layer, size)
            if size < 1:
                ok = False
                break
        if ok:
            return n
    raise ValueError("no input size up to 1024 fits this network")


# --------------------------------------------------------------------------- SqueezeNet


class Fire(nn.Module):
    """SqueezeNet's Fire module: ``squeeze 1×1 → ReLU → cat(expand 1×1, expand 3×3) → ReLU``.

    ``squeeze`` (s₁ₓ₁) must be smaller than ``expand1x1 + expand3x3`` — the squeeze layer limits
    the input channels of the 3×3 filters (strategy 2). Layer names equal torchvision's, so its
    ``Fire`` weights load into ours. Output channels: ``expand1x1 + expand3x3``.
    ``batch_norm=True`` puts a BatchNorm after each conv (not in the 2016 paper; it lets the small
    variants train at a high learning rate in a few epochs).
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, batch_norm: bool = False):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("squeeze", squeeze)
        check_int("expand1x1", expand1x1, 0)
        check_int("expand3x3", expand3x3, 0)
        if expand1x1 + expand3x3 < 1:
            raise ValueError("expand1x1 + expand3x3 must be >= 1")
        if squeeze >= expand1x1 + expand3x3:
            raise ValueError(
                f"squeeze={squeeze} must be < expand1x1 + expand3x3 = {expand1x1 + expand3x3} "
                "(the squeeze layer has fewer channels than the expand layer)"
            )
        self.in_channels, self.out_channels = in_channels, expand1x1 + expand3x3
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1) if expand1x1 else None
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1) if expand3x3 else None
        self.expand3x3_activation = nn.ReLU(inplace=True)
        if batch_norm:
            self.bn_squeeze, self.bn_expand1x1, self.bn_expand3x3 = (
                nn.BatchNorm2d(c) if c else None for c in (squeeze, expand1x1, expand3x3)
            )
        else:
            self.bn_squeeze = self.bn_expand1x1 = self.bn_expand3x3 = None

    @staticmethod
    def _norm(bn, x):
        return x if bn is None else bn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self._norm(self.bn_squeeze, self.squeeze(x)))
        outs = []
        if self.expand1x1 is not None:
            outs.append(self.expand1x1_activation(self._norm(self.bn_expand1x1, self.expand1x1(x))))
        if self.expand3x3 is not None:
            outs.append(self.expand3x3_activation(self._norm(self.bn_expand3x3, self.expand3x3(x))))
        return torch.cat(outs, 1)


class FireBypass(nn.Module):
    """A Fire module with a bypass: ``fire(x) + shortcut(x)``.

    ``kind="simple"``: the identity (only when input and output widths agree); ``"complex"``: a 1×1
    conv when they differ (the identity otherwise), as in the SqueezeNet paper's §6.
    """

    def __init__(self, fire: Fire, kind: str = "simple"):
        super().__init__()
        if not isinstance(fire, Fire):
            raise TypeError(f"fire must be a Fire module, got {type(fire).__name__}")
        if kind not in ("simple", "complex"):
            raise ValueError(f"kind={kind!r} must be 'simple' or 'complex'")
        same = fire.in_channels == fire.out_channels
        if kind == "simple" and not same:
            raise ValueError(
                f"a simple bypass needs in_channels == out_channels, this Fire maps "
                f"{fire.in_channels} → {fire.out_channels}; use kind='complex'"
            )
        self.fire = fire
        self.shortcut = nn.Identity() if same else nn.Conv2d(fire.in_channels, fire.out_channels, 1, bias=False)
        self.in_channels, self.out_channels = fire.in_channels, fire.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fire(x) + self.shortcut(x)


def fire_configs(
    base_e: int = 128,
    incr_e: int = 128,
    freq: int = 2,
    pct3x3: float = 0.5,
    sr: float = 0.125,
    n_fire: int = 8,
    first_in: int = 96,
) -> list:
    """The Fire modules generated by SqueezeNet's meta-parameters, as ``(in, s₁ₓ₁, e₁ₓ₁, e₃ₓ₃)``.

    ``e_i = base_e + incr_e·⌊i / freq⌋`` expand filters in module i (0-based), of which
    ``e₃ₓ₃ = pct₃ₓ₃·e_i`` are 3×3, and ``s₁ₓ₁ = SR·e_i`` squeeze filters. The defaults generate
    SqueezeNet v1.0's fire2 … fire9 (first_in = 96 channels from conv1).
    """
    for name, v in (("base_e", base_e), ("freq", freq), ("n_fire", n_fire), ("first_in", first_in)):
        check_int(name, v)
    check_int("incr_e", incr_e, 0)
    if not 0 <= pct3x3 <= 1:
        raise ValueError(f"pct3x3={pct3x3} must be between 0 and 1 (the fraction of 3×3 expand filters)")
    if not 0 < sr < 1:
        raise ValueError(f"sr={sr} must be between 0 and 1: the squeeze ratio s₁ₓ₁ / e must keep squeeze < expand")
    configs, c_in = [], first_in
    for i in range(n_fire):
        e = base_e + incr_e * (i // freq)
        e3 = int(round(pct3x3 * e))
        s = max(1, int(round(sr * e)))
        configs.append((c_in, s, e - e3, e3))
        c_in = e
    return configs


_SQUEEZENET_LAYOUTS = {
    # stem (channels, kernel, stride), indices of the Fire modules followed by a max-pool
    "1_0": ((96, 7, 2), (2, 6)),
    "1_1": ((64, 3, 2), (1, 3)),
}


class SqueezeNet(_SizeChecked):
    """Stem conv → [max-pool] → Fire modules with max-pools → dropout → 1×1 conv → ReLU → global average."""

    name = "SqueezeNet"

    def __init__(
        self,
        fires: Sequence[tuple[int, int, int, int]],
        stem: tuple[int, int, int] = (96, 7, 2),
        pool_after: Sequence[int] = (2, 6),
        num_classes: int = 1000,
        in_channels: int = 3,
        bypass: str | None = None,
        dropout: float = 0.5,
        stem_pool: bool = True,
        batch_norm: bool = False,
    ):
        super().__init__()
        check_int("num_classes", num_classes)
        self.in_channels = check_int("in_channels", in_channels)
        if bypass not in (None, "simple", "complex"):
            raise ValueError(f"bypass={bypass!r} must be None, 'simple' or 'complex'")
        if isinstance(fires, (str, bytes)) or not isinstance(fires, Sequence):
            raise TypeError(f"fires={fires!r} must be a sequence of (in, squeeze, expand1x1, expand3x3) tuples")
        if not fires:
            raise ValueError("fires=[] is empty: a SqueezeNet needs at least one Fire module")
        for i, cfg in enumerate(fires):
            if isinstance(cfg, (str, bytes)) or not isinstance(cfg, Sequence) or len(cfg) != 4:
                raise ValueError(f"fires[{i}]={cfg!r} must be a tuple (in, squeeze, expand1x1, expand3x3)")
        if isinstance(stem, (str, bytes)) or not isinstance(stem, Sequence) or len(stem) != 3:
            raise ValueError(f"stem={stem!r} must be a tuple (channels, kernel, stride)")
        for name, v in zip(("stem channels", "stem kernel", "stem stride"), stem):
            check_int(name, v)
        if fires[0][0] != stem[0]:
            raise ValueError(f"fires[0] reads {fires[0][0]} channels but the stem gives {stem[0]}: they must agree")
        for i in range(1, len(fires)):
            if fires[i][0] != fires[i - 1][2] + fires[i - 1][3]:
                raise ValueError(
                    f"fires[{i}] reads {fires[i][0]} channels but fires[{i - 1}] gives "
                    f"{fires[i - 1][2] + fires[i - 1][3]}: they must agree"
                )
        for p in pool_after:
            check_int("pool_after entries", p, 0)
        check_float("dropout", dropout, 0.0, 1.0)
        c, k, s = stem
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, k, s)]
        layers += ([nn.BatchNorm2d(c)] if batch_norm else []) + [nn.ReLU(inplace=True)]
        if stem_pool:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        for i, cfg in enumerate(fires):
            fire = Fire(*cfg, batch_norm=batch_norm)
            if bypass == "complex" or (bypass == "simple" and fire.in_channels == fire.out_channels):
                layers.append(FireBypass(fire, bypass))
            else:
                layers.append(fire)
            if i in pool_after:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        c_last = fires[-1][2] + fires[-1][3]
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Conv2d(c_last, num_classes, 1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.min_size = _smallest_input([m for m in self.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet(
    version: str = "1_0", *, num_classes: int = 1000, in_channels: int = 3, bypass: str | None = None
) -> SqueezeNet:
    """SqueezeNet v1.0 or v1.1 for 224×224 ImageNet images (parameters equal torchvision's).

    The Fire modules come from :func:`fire_configs` with the paper's meta-parameters; v1.1 uses a
    3×3 stem of 64 channels and pools earlier (2.4× less computation, same accuracy).
    ``bypass``: None, ``"simple"`` or ``"complex"``.
    """
    if version not in _SQUEEZENET_LAYOUTS:
        raise ValueError(f"version={version!r} must be one of {sorted(_SQUEEZENET_LAYOUTS)}")
    stem, pools = _SQUEEZENET_LAYOUTS[version]
    fires = fire_configs(first_in=stem[0])
    return SqueezeNet(fires, stem, pools, num_classes, in_channels, bypass)


def squeezenet_small(
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    base_e: int = 32,
    incr_e: int = 32,
    sr: float = 0.25,
    n_fire: int = 6,
    bypass: str | None = "simple",
) -> SqueezeNet:
    """A SqueezeNet for 28×28 / 32×32 images: 3×3 stem (stride 1, no pool), Fire modules from the
    meta-parameters, max-pools after the 2nd and 4th Fire (late downsampling), simple bypass, and
    BatchNorm after every conv (without it, this net did not learn in 4 epochs at lr 0.1)."""
    stem = (base_e, 3, 1)
    fires = fire_configs(base_e, incr_e, 2, 0.5, sr, n_fire, first_in=base_e)
    return SqueezeNet(
        fires, stem, (1, 3), num_classes, in_channels, bypass, dropout=0.2, stem_pool=False, batch_norm=True
    )


# --------------------------------------------------------------------------- SqueezeNext


class SqueezeNextBlock(nn.Module):
    """SqueezeNext block: two-stage squeeze (1×1, 1×1) → 1×3 → 3×1 → 1×1 expansion, + shortcut, ReLU.

    The first 1×1 keeps a fraction ``r`` of the input channels (½; 1 in a downsampling block, which
    also carries the stride; ¼ when the block narrows), the second halves them again, the 1×3 and
    3×1 convs (a separable 3×3, chapter 03) restore ``r·C_in``, and the last 1×1 maps to
    ``out_channels``. The shortcut is the identity, or a 1×1 conv + BN when the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        check_int("stride", stride)
        r = 1.0 if stride == 2 else (0.25 if in_channels > out_channels else 0.5)
        c1 = int(in_channels * r)
        c2 = int(c1 * 0.5)
        if c2 < 1:
            raise ValueError(
                f"in_channels={in_channels} is too few for the two-stage squeeze "
                f"(keeps {c1}, then {c2} channels); use at least 4"
            )
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.body = nn.Sequential(
            conv_norm_act(in_channels, c1, 1, stride=stride),
            conv_norm_act(c1, c2, 1),
            conv_norm_act(c2, c1, (1, 3)),
            conv_norm_act(c1, c1, (3, 1)),
            nn.Sequential(nn.Conv2d(c1, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class SqueezeNext(_SizeChecked):
    """Stem → four stages of SqueezeNext blocks → 1×1 conv → global average → fc."""

    name = "SqueezeNext"

    def __init__(
        self,
        width: float = 1.0,
        layout: Sequence[int] = SQNXT_23,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
    ):
        super().__init__()
        width = _positive_float("width", width)
        layout = tuple(layout)
        if len(layout) != 4:
            raise ValueError(f"layout={layout} must give the number of blocks of the 4 stages")
        for i, n in enumerate(layout):
            check_int(f"layout[{i}]", n)
        check_int("num_classes", num_classes)
        self.in_channels = check_int("in_channels", in_channels)
        stem_c = int(64 * width)
        widths = [int(c * width) for c in (32, 64, 128, 256)]
        if min(widths) < 4:
            raise ValueError(f"width={width} makes stages of {widths} channels; the two-stage squeeze needs >= 4")
        stem: list[nn.Module]
        if small_input:
            stem = [conv_norm_act(in_channels, stem_c, 3)]
        else:
            stem = [conv_norm_act(in_channels, stem_c, 7, stride=2), nn.MaxPool2d(3, 2, ceil_mode=True)]
        blocks, c = [], stem_c
        for stage, (w, n) in enumerate(zip(widths, layout)):
            for b in range(n):
                blocks.append(SqueezeNextBlock(c, w, 2 if stage > 0 and b == 0 else 1))
                c = w
        self.features = nn.Sequential(*stem, *blocks, conv_norm_act(c, int(128 * width), 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(int(128 * width), num_classes)
        self.min_size = 16 if small_input else 32  # total stride of the network
        self.width, self.layout = width, layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def squeezenext(
    width: float = 1.0,
    layout: tuple = SQNXT_23,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
) -> SqueezeNext:
    """``width``-SqNxt with ``layout`` blocks per stage (``(6, 6, 8, 1)`` = SqNxt-23, ``(2, 4, 14, 1)`` = v5).

    ImageNet stem: 7×7 conv, stride 2, + 3×3 max-pool; ``small_input=True``: a 3×3 stride-1 stem
    for 28×28 / 32×32 images.
    """
    return SqueezeNext(width, layout, num_classes, in_channels, small_input=small_input)


def squeezenext_small(
    num_classes: int = 10, in_channels: int = 1, *, width: float = 0.5, layout: Sequence[int] = (2, 2, 2, 1)
) -> SqueezeNext:
    """A half-width, 11-layer SqueezeNext for 28×28 / 32×32 images."""
    return SqueezeNext(width, layout, num_classes, in_channels, small_input=True)


# --------------------------------------------------------------------------- Deep Compression of a whole network

SQUEEZENET_DC_DENSITY = {
    "conv1": 1.0,
    "squeeze": 1.0,
    "expand1x1": 1.0,
    "expand3x3": 0.33,
    "conv10": 0.2,
    "bypass": 1.0,
}
"""Fraction of the weights each kind of SqueezeNet layer *keeps* in the SqueezeNet paper's Deep
Compression (Iandola et al. 2016, Table 1, as the course reads it): its "33% sparsity" of the 3×3
expand filters means a third of them is kept. The 1×1 layers and conv1 stay dense, conv10 keeps about
20%; 1,248,424 weights → 421,098. (The table keeps half of a few squeeze / 1×1 expand layers too —
fire6–9 — and 30% of fire9's 3×3; this rounded pattern leaves them dense.) Complex-bypass 1×1 convs,
which that table does not have, stay dense."""


def squeezenet_roles(model: nn.Module) -> dict[str, str]:
    """``{layer name: kind}`` of a SqueezeNet's convs: ``conv1`` (the stem), ``squeeze``,
    ``expand1x1``, ``expand3x3`` (Fire modules), ``bypass`` (a complex bypass) or ``conv10`` (the
    classifier conv), for any :class:`SqueezeNet` of this module (``squeezenet``, ``squeezenet_small``)."""
    if not isinstance(model, SqueezeNet):
        raise TypeError(f"model must be a SqueezeNet of course_lib.smallnets, got {type(model).__name__}")
    roles = {}
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        last = name.rsplit(".", 1)[-1]
        if last in ("squeeze", "expand1x1", "expand3x3"):
            roles[name] = last
        elif last == "shortcut":
            roles[name] = "bypass"
        elif name.startswith("classifier"):
            roles[name] = "conv10"
        else:
            roles[name] = "conv1"
    return roles


def squeezenet_dc_sparsity(model: nn.Module, density: dict[str, float] | None = None) -> dict[str, float]:
    """``{layer name: sparsity}`` (the fraction *removed*, the course's word) for
    :func:`deep_compress_bytes`, from the fraction each kind of layer keeps (``density``, default
    :data:`SQUEEZENET_DC_DENSITY`; kinds as in :func:`squeezenet_roles`)."""
    density = dict(SQUEEZENET_DC_DENSITY if density is None else density)
    roles = squeezenet_roles(model)
    missing = sorted(set(roles.values()) - set(density))
    if missing:
        raise ValueError(f"density has no entry for the layer kind(s) {missing}; kinds: {sorted(set(roles.values()))}")
    for kind, value in density.items():
        check_float(f"density[{kind!r}]", value, 0.0, 1.0, low_inclusive=False, what="a fraction of weights kept")
    return {name: 1.0 - density[kind] for name, kind in roles.items()}


def deep_compress_bytes(
    model: nn.Module,
    path: str | Path,
    *,
    sparsity: float | dict[str, float] = 0.33,
    bits: int | dict[str, int] = 6,
    index_bits: int | str = "auto",
) -> int:
    """Prune ``sparsity`` of every conv/linear layer by magnitude (one fraction removed, or
    ``{layer: fraction}``, e.g. :func:`squeezenet_dc_sparsity`), share weights at ``bits`` bits
    (k-means, one code reserved for zero) and write the Huffman-coded file of chapter 05 at ``path``.

    No retraining: this measures the *bytes*, not the accuracy. Changes ``model`` in place;
    returns the file's size in bytes (``compress.compression_report(model, bits, index_bits)`` then
    breaks it down per layer).
    """
    if isinstance(sparsity, dict):  # every check before the model changes
        prune.layer_sparsities(model, sparsity)
    else:
        check_fraction("sparsity", sparsity)
    if isinstance(bits, dict):
        for name, b in bits.items():
            check_bits(f"bits[{name!r}]", b, 1, compressed_file.MAX_BITS)
    else:
        check_bits("bits", bits, 1, compressed_file.MAX_BITS)
    if index_bits != "auto":
        check_bits("index_bits", index_bits, 1, compressed_file.MAX_BITS)
    compressed_file.validate_path(path)
    quant.shareable_layers(model)
    measure.check_not_meta(model, "compressed")
    prune.magnitude_prune(model, sparsity)
    prune.make_permanent(model)
    quant.share_weights(model, bits, iters=10)
    quant.reserve_zero_code(model)
    file_bits: int | dict[str, int | str] = dict(bits) if isinstance(bits, dict) else bits
    resolved: int | dict[str, int]
    if index_bits == "auto":
        resolved = compressed_file.best_index_bits(model, file_bits, True, candidates=(3, 4, 5, 6))
    else:
        resolved = check_bits("index_bits", index_bits, 1, compressed_file.MAX_BITS)
    return compressed_file.save_compressed(model, path, file_bits, resolved, huffman=True)


def _stream_bits(r) -> float:
    """Huffman-coded bits of one ``compress.LayerRow``'s two streams (values + relative index)."""
    entries = round(r.weights * r.kept_pct / 100) + r.fillers
    return entries * (r.weight_bits_huffman + r.index_bits_huffman)


def bits_per_weight(report: Rows, roles: dict[str, str]) -> dict[str, float]:
    """``{kind: bits per original weight}`` from a per-layer ``compress.compression_report``: the
    Huffman-coded value and index streams of the layers of each kind (``roles``: ``{layer: kind}``,
    e.g. :func:`squeezenet_roles`) / their weights before pruning. A layer's codebook and Huffman
    tables are a fixed cost per layer, not per weight: they are left out here (see
    :func:`layer_overhead_bytes`)."""
    totals: dict[str, list[float]] = {}
    for r in report:
        if r.layer not in roles:
            raise ValueError(f"layer {r.layer!r} of the report has no kind in roles")
        t = totals.setdefault(roles[r.layer], [0.0, 0])
        t[0] += _stream_bits(r)
        t[1] += r.weights
    return {kind: b / w for kind, (b, w) in totals.items()}


def layer_overhead_bytes(report: Rows) -> float:
    """Mean bytes per layer of a ``compress.compression_report`` that do not grow with the weights:
    codebook, Huffman code tables and headers (the layer's bytes minus its two streams)."""
    if not len(report):
        raise ValueError("report has no layers")
    return sum(r.bytes_huffman - _stream_bits(r) / 8 for r in report) / len(report)


def projected_bytes(model: nn.Module, roles: dict[str, str], bits: dict[str, float], per_layer: float = 0.0) -> int:
    """Bytes of ``model`` stored at ``bits[kind]`` bits per conv/linear weight (``roles``: ``{layer:
    kind}``; e.g. measured by :func:`bits_per_weight` on another network), plus ``per_layer`` bytes
    for each of those layers (:func:`layer_overhead_bytes`), plus every other parameter and buffer
    raw, as chapter 05's file stores them. Works on the ``meta`` device."""
    check_float("per_layer", per_layer, 0.0)
    if any(parametrize.is_parametrized(m) or hasattr(m, "weight_orig") for m in model.modules()):
        raise ValueError(
            "model must be a plain network (no pruning masks or shared weights): project onto a fresh "
            "copy of the architecture, e.g. one built on the meta device"
        )
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    missing = sorted(set(layers) - set(roles))
    if missing:
        raise ValueError(f"roles has no kind for the layer(s) {missing[:5]}")
    unknown = sorted({roles[n] for n in layers} - set(bits))
    if unknown:
        raise ValueError(f"bits has no entry for the kind(s) {unknown}")
    weight_bits = sum(layers[n].weight.numel() * bits[roles[n]] for n in layers)
    weights = {id(m.weight) for m in layers.values()}
    other = sum(
        t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()) if id(t) not in weights
    )
    return int(round(weight_bits / 8 + per_layer * len(layers))) + other
