"""ResNet variants: pre-activation, shortcut variants, ResNeXt, stochastic depth and SE (chapter 07).

A residual block computes ``x_{l+1} = h(x_l) + F(x_l)``; with an identity shortcut ``h(x) = x`` its
linear picture is the matrix ``I + W``. Every variant of this chapter changes that matrix or the
path the gradient takes through it.

- **Deep residual learning** (He, Zhang, Ren, Sun, CVPR 2016): the CIFAR ResNet of depth ``6n + 2``
  (three stages of n basic blocks, widths 16-32-64): ResNet-20 0.27M parameters, 8.75 % error;
  ResNet-110 1.7M, 6.43 %. :class:`BasicBlock` is its unit, with the ReLU *after* the addition.
- **Identity mappings** (He, Zhang, Ren, Sun, ECCV 2016): with ``h`` the identity and nothing after
  the addition, ``x_L = x_l + Σ_{i=l}^{L-1} F(x_i)`` and ``∂E/∂x_l = ∂E/∂x_L · (1 + ∂ΣF/∂x_l)``: the
  gradient reaches every block directly, whereas a plain net multiplies Jacobians
  (``x_L = Π W_i x_0``). :class:`PreActBlock` (BN → ReLU → conv, twice) makes the shortcut clean.
  Shortcut variants (``shortcut=``): constant scaling ``λ·x`` (the gradient path scales by
  ``λ^depth``), exclusive gating ``(1-g)·x + g·F``, shortcut-only gating ``(1-g)·x + F``, a 1×1 conv
  shortcut and a dropout shortcut; on a ResNet-110 all of them train worse than the identity, and the
  1×1 shortcut has *higher training error*: the problem is optimisation, not capacity
  (:data:`PAPER_SHORTCUT_TABLE`).
- **ResNeXt** (Xie, Girshick, Dollár, Tu, He, CVPR 2017): ``y = x + Σ_{i=1}^{C} T_i(x)``, C identical
  bottleneck paths of width d, in three equivalent forms: (a) C paths summed, (b) early
  concatenation, (c) one grouped 3×3 conv. It is the module ``resnext``, re-exported here
  (``resnets.ResNeXtBlock``, ``resnets.convert_resnext``, ``resnets.RESNEXT_PRESETS``).
- **Stochastic depth** (Huang, Sun, Liu, Sedra, Weinberger, ECCV 2016): in training, block l's whole
  residual branch is kept with probability ``p_l = 1 − (l/L)(1 − p_L)`` (:func:`survival_probabilities`),
  at test time it is scaled by ``p_l``; the expected depth is ``(3L − 1)/4`` for ``p_L = 0.5``.
- **Squeeze-and-Excitation** (Hu, Shen, Sun, CVPR 2018): ``s = σ(W₂ δ(W₁ z))`` from the channel
  means ``z``, then each channel is rescaled by ``s_c`` (:class:`SqueezeExcite`); ``2C²/r`` extra
  weights per block, +2.5M (≈10 %) on ResNet-50.

The module also measures: :func:`gradient_norms` (per block, at initialisation), and holds the
residual-network explorer.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from . import config, data, train
from .args import check_float, check_int
from .measure import layer_table
from .models import check_input, check_widths
from .report import Rows, column
from .resnext import (  # re-exported
    FORMS,
    RESNEXT_PRESETS,
    ResNeXtBlock,
    convert_resnext,
    resnext_connectivity_explorer,
    resnext_params,
)
from .states import State

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .widgets import Explorer

__all__ = [
    "resnet20",
    "recalibrate_batchnorm",
    "SHORTCUTS",
    "FORMS",
    "PAPER_SHORTCUT_TABLE",
    "PAPER_CIFAR_ERRORS",
    "PAPER_PREACT_IMAGENET",
    "PAPER_RESNEXT_CARDINALITY",
    "PAPER_STOCHASTIC_DEPTH",
    "BasicBlock",
    "PreActBlock",
    "ResNeXtBlock",
    "SqueezeExcite",
    "resnet_cifar",
    "residual_blocks",
    "convert_resnext",
    "zero_residual_branches",
    "survival_probabilities",
    "expected_depth",
    "set_stochastic_depth",
    "SHORTCUT_RACE",
    "shortcut_race",
    "final_losses",
    "RACE_FILE",
    "load_race",
    "resnext_params",
    "se_extra_params",
    "se_resnet50_params",
    "add_se_to_torchvision_resnet",
    "gradient_norms",
    "StageCost",
    "StageCostReport",
    "cost_report",
    "BLOCK_TYPES",
    "ResidualState",
    "residual_state",
    "residual_readout",
    "draw_residual",
    "residual_explorer",
    "RESNEXT_PRESETS",
    "resnext_connectivity_explorer",
]

SHORTCUTS = ("identity", "none", "scale", "exclusive_gate", "shortcut_gate", "conv1x1", "dropout")
SD_MODES = ("batch", "row")

# He et al., Identity Mappings (ECCV 2016), Table 1: ResNet-110 on CIFAR-10, test error (%),
# "fail" = more than 20 % error. (shortcut, on shortcut, on F, error, remark)
PAPER_SHORTCUT_TABLE = [
    ("original (identity)", "1", "1", "6.61", ""),
    ("constant scaling", "0", "1", "fail", "a plain net"),
    ("constant scaling", "0.5", "1", "fail", ""),
    ("constant scaling", "0.5", "0.5", "12.35", "frozen gating"),
    ("exclusive gating", "1 − g(x)", "g(x)", "fail", "init b_g = 0 to −5"),
    ("exclusive gating", "1 − g(x)", "g(x)", "8.70", "init b_g = −6"),
    ("exclusive gating", "1 − g(x)", "g(x)", "9.81", "init b_g = −7"),
    ("shortcut-only gating", "1 − g(x)", "1", "12.86", "init b_g = 0"),
    ("shortcut-only gating", "1 − g(x)", "1", "6.91", "init b_g = −6"),
    ("1×1 conv shortcut", "1×1 conv", "1", "12.22", ""),
    ("dropout shortcut", "dropout 0.5", "1", "fail", ""),
]
# He et al. (CVPR 2016), Table 6: CIFAR-10 test error (%) and parameters of the CIFAR ResNets.
PAPER_CIFAR_ERRORS = {
    20: (0.27e6, 8.75),
    32: (0.46e6, 7.51),
    44: (0.66e6, 7.17),
    56: (0.85e6, 6.97),
    110: (1.7e6, 6.43),
    1202: (19.4e6, 7.93),
}
# Identity Mappings (ECCV 2016), Table 5: ImageNet single-crop top-1 / top-5 error (%), test crop size.
PAPER_PREACT_IMAGENET = [
    ("ResNet-152 (original)", "224", 23.0, 6.7),
    ("ResNet-152 (original)", "320", 21.3, 5.5),
    ("ResNet-152, pre-activation", "320", 21.1, 5.5),
    ("ResNet-200 (original)", "320", 21.8, 6.0),
    ("ResNet-200, pre-activation", "320", 20.7, 5.3),
    ("ResNet-200, pre-act + scale/aspect augmentation", "320", 20.1, 4.8),
    ("Inception-v3", "299", 21.2, 5.6),
]
# Xie et al. (CVPR 2017), Table 3: ImageNet top-1 error (%) at equal complexity, by cardinality × width.
PAPER_RESNEXT_CARDINALITY = {
    "ResNet-50": {"1×64d": 23.9, "2×40d": 23.0, "4×24d": 22.6, "8×14d": 22.3, "32×4d": 22.2},
    "ResNet-101": {"1×64d": 22.0, "2×40d": 21.7, "4×24d": 21.4, "8×14d": 21.3, "32×4d": 21.2},
}
# Huang et al. (ECCV 2016): test error (%) with constant depth vs stochastic depth (linear decay, p_L = 0.5).
PAPER_STOCHASTIC_DEPTH = [
    ("CIFAR-10+ (ResNet-110)", 6.41, 5.25),
    ("CIFAR-100+ (ResNet-110)", 27.76, 24.98),
    ("ImageNet (ResNet-152, top-1)", 21.78, 21.98),
]


# --------------------------------------------------------------------------- validation helpers


def _prob(name: str, value) -> float:
    return check_float(name, value, 0.0, 1.0, low_inclusive=False, what="a probability")


def _check_depth(depth):
    check_int("depth", depth)
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"depth={depth} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)")
    return (depth - 2) // 6


# --------------------------------------------------------------------------- squeeze-and-excitation


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2018): ``x · σ(W₂ δ(W₁ mean_hw(x)))``, one scale per channel.

    ``fc1``: C → C/r (1×1 conv with bias), ReLU, ``fc2``: C/r → C, sigmoid. Extra weights
    ``2C²/r`` (+ ``C/r + C`` biases). ``reduction`` may not exceed ``channels``.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        check_int("channels", channels)
        check_int("reduction", reduction)
        if reduction > channels:
            raise ValueError(
                f"reduction={reduction} is larger than channels={channels}: the excitation "
                "needs channels // reduction >= 1 hidden units"
            )
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel scale ``s`` of shape (N, C, 1, 1)."""
        z = x.mean(dim=(2, 3), keepdim=True)  # squeeze
        return torch.sigmoid(self.fc2(F.relu(self.fc1(z))))  # excitation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale(x)


# --------------------------------------------------------------------------- residual units


class _Residual(nn.Module):
    """What every CIFAR residual unit shares: the shortcut variant, SE and stochastic depth."""

    conv2: nn.Conv2d  # the branch's last conv (its width is the unit's output width)

    def _setup(self, c_in, c_out, stride, shortcut, scale):
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut={shortcut!r} is unknown; choose one of {SHORTCUTS}")
        check_int("c_in", c_in)
        check_int("c_out", c_out)
        check_int("stride", stride)
        self.kind, self.scale_value = shortcut, _prob("scale", scale)
        self.p_survive, self.sd_mode = 1.0, "batch"
        self.relu = nn.ReLU(inplace=True)

    def _make_shortcut(self, c_in, c_out, stride, shortcut, gate_bias, se, reduction, post_bn):
        project = stride != 1 or c_in != c_out
        if shortcut == "conv1x1" or (project and shortcut != "none"):
            layers = [nn.Conv2d(c_in, c_out, 1, stride, bias=False)]
            self.shortcut = nn.Sequential(*layers, nn.BatchNorm2d(c_out)) if post_bn else layers[0]
        else:
            self.shortcut = nn.Identity()
        if shortcut in ("exclusive_gate", "shortcut_gate"):
            self.gate = nn.Conv2d(c_in, c_out, 1, stride)
            nn.init.constant_(self.gate.bias, float(gate_bias))
        self.se = SqueezeExcite(c_out, reduction) if se else None

    def _branch_kept(self):
        """Stochastic depth, batch mode: is the whole branch kept for this training batch?"""
        if not self.training or self.p_survive >= 1.0 or self.sd_mode != "batch" or self.kind == "none":
            return True
        return bool(torch.rand(()) < self.p_survive)

    def _combine(self, x, s, f):
        """``h(x) + F(x)`` for this unit's shortcut variant; ``f=None`` is a dropped branch."""
        if f is not None:
            if self.se is not None:
                f = self.se(f)
            if self.p_survive < 1.0:
                if self.sd_mode == "row":  # torchvision scales by 1/p in training; undo it
                    f = self.p_survive * torchvision.ops.stochastic_depth(f, 1 - self.p_survive, "row", self.training)
                elif not self.training:
                    f = self.p_survive * f  # the paper's test-time scaling
        kind = self.kind
        if kind == "none":
            return f if f is not None else torch.zeros_like(s)
        if kind == "scale":
            s = self.scale_value * s
        elif kind == "dropout":  # keep each element with probability λ, E = λ·s
            s = self.scale_value * F.dropout(s, 1 - self.scale_value, self.training) if self.scale_value < 1 else s
        elif kind in ("exclusive_gate", "shortcut_gate"):
            g = torch.sigmoid(self.gate(x))
            s = (1 - g) * s
            if kind == "exclusive_gate" and f is not None:
                f = g * f
        return s if f is None else s + f


class BasicBlock(_Residual):
    """The original residual unit (He et al. 2016): conv-BN-ReLU-conv-BN, add, then ReLU.

    ``shortcut``: one of :data:`SHORTCUTS` (``"none"`` = a plain unit). A change of size or
    stride uses a 1×1 conv + BN projection. ``se=True`` puts a :class:`SqueezeExcite` on the
    residual branch before the addition.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int = 1,
        *,
        shortcut: str = "identity",
        scale: float = 0.5,
        gate_bias: float = -6.0,
        se: bool = False,
        reduction: int = 16,
    ):
        super().__init__()
        self._setup(c_in, c_out, stride, shortcut, scale)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self._make_shortcut(c_in, c_out, stride, shortcut, gate_bias, se, reduction, post_bn=True)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shortcut(x)
        f = self.residual(x) if self._branch_kept() else None
        return self.relu(self._combine(x, s, f))


class PreActBlock(_Residual):
    """The full pre-activation unit (He et al., ECCV 2016): BN → ReLU → conv, twice; nothing after the add.

    A projection shortcut (1×1 conv, no BN) reads the pre-activated input, as in the paper's code.
    With the residual branch zeroed the unit is exactly the identity.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int = 1,
        *,
        shortcut: str = "identity",
        scale: float = 0.5,
        gate_bias: float = -6.0,
        se: bool = False,
        reduction: int = 16,
    ):
        super().__init__()
        self._setup(c_in, c_out, stride, shortcut, scale)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self._make_shortcut(c_in, c_out, stride, shortcut, gate_bias, se, reduction, post_bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        s = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(a)
        f = self.conv2(F.relu(self.bn2(self.conv1(a)))) if self._branch_kept() else None
        return self._combine(x, s, f)


def resnet_cifar(
    depth: int = 20,
    *,
    preact: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
    widths: tuple = (16, 32, 64),
    shortcut: str = "identity",
    scale: float = 0.5,
    gate_bias: float = -6.0,
    se: bool = False,
    reduction: int = 16,
    p_last: float | None = None,
    sd_mode: str = "batch",
) -> nn.Sequential:
    """He et al.'s CIFAR ResNet of depth ``6n + 2``: stem conv, 3 stages of n units, pool, linear.

    ``preact``: :class:`PreActBlock` units (and a final BN-ReLU before pooling) instead of
    :class:`BasicBlock`. ``shortcut``: one of :data:`SHORTCUTS` for every unit (``"none"`` builds
    the plain net of the same depth; ``scale`` is λ for ``"scale"`` and the keep probability for
    ``"dropout"``, ``gate_bias`` the gates' initial bias). ``se``: SE (reduction ``reduction``) on
    every unit. ``p_last``: stochastic depth with linearly decaying survival (``None`` = off),
    ``sd_mode`` "batch" or "row" (see :func:`set_stochastic_depth`). Default arguments give the ResNet-20 of chapter 02
    (0.27M weights, same state-dict keys).
    """
    n = _check_depth(depth)
    for name, flag in (("preact", preact), ("se", se)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name}={flag!r} must be a bool")
    check_int("num_classes", num_classes)
    check_int("in_channels", in_channels)
    if not isinstance(widths, (tuple, list)) or len(widths) < 1:
        raise ValueError(f"widths={widths!r} must be a non-empty tuple of stage widths")
    widths = check_widths("widths", widths)
    block = PreActBlock if preact else BasicBlock
    layers: list[nn.Module]
    if preact:
        layers = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)]
    else:
        layers = [
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
    c = widths[0]
    for stage, w in enumerate(widths):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(
                block(c, w, stride, shortcut=shortcut, scale=scale, gate_bias=gate_bias, se=se, reduction=reduction)
            )
            c = w
    if preact:
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    model = check_input(nn.Sequential(*layers), in_channels, f"resnet_cifar (depth {depth})")
    if p_last is not None:
        set_stochastic_depth(model, p_last, sd_mode)
    return model


def resnet20(num_classes: int = 10, in_channels: int = 3) -> nn.Sequential:
    """He et al.'s ResNet-20 for CIFAR (widths 16-32-64, 0.27M weights): ``resnet_cifar(20)``."""
    return resnet_cifar(20, num_classes=num_classes, in_channels=in_channels)


def residual_blocks(model: nn.Module) -> list:
    """The residual units of a model, in forward order."""
    return [m for m in model.modules() if isinstance(m, _Residual)]


@torch.no_grad()
def zero_residual_branches(model: nn.Module) -> nn.Module:
    """Make every residual branch output zero (last conv weights = 0), in place; returns the model."""
    for b in residual_blocks(model):
        b.conv2.weight.zero_()
    return model


# --------------------------------------------------------------------------- stochastic depth


def survival_probabilities(num_blocks: int, p_last: float = 0.5) -> list:
    """``[p_1, …, p_L]`` with ``p_l = 1 − (l/L)(1 − p_L)`` (Huang et al.'s linear decay)."""
    L = check_int("num_blocks", num_blocks)
    p_last = _prob("p_last", p_last)
    return [1 - (unit / L) * (1 - p_last) for unit in range(1, L + 1)]


def expected_depth(num_blocks: int, p_last: float = 0.5) -> float:
    """Expected number of residual blocks kept in training: ``Σ p_l`` (= (3L − 1)/4 for p_L = 0.5)."""
    return sum(survival_probabilities(num_blocks, p_last))


def set_stochastic_depth(model: nn.Module, p_last: float | None = 0.5, mode: str = "batch") -> nn.Module:
    """Give every residual unit its survival probability, in place; returns the model.

    ``mode="batch"``: one coin per unit and batch; a dropped branch is *not computed* (the time
    saving). ``mode="row"``: one coin per sample, through ``torchvision.ops.stochastic_depth``
    (the branch is computed, then masked). Either way the test-time output is ``h(x) + p_l·F(x)``,
    the paper's convention (torchvision's own op scales by ``1/p_l`` in training instead).
    ``p_last=None`` turns stochastic depth off.
    """
    if mode not in SD_MODES:
        raise ValueError(f"mode={mode!r} is unknown; choose one of {SD_MODES}")
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError("model has no residual units (BasicBlock / PreActBlock)")
    probs = [1.0] * len(blocks) if p_last is None else survival_probabilities(len(blocks), p_last)
    for b, p in zip(blocks, probs):
        b.p_survive, b.sd_mode = p, mode
    return model


def recalibrate_batchnorm(model: nn.Module, data: Iterable, batches: int = 50) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics with the *test-time* network, in place.

    Why: under batch-mode stochastic depth each training batch drops its own random set of units, and
    BatchNorm's running statistics (an exponential average over the last few dozen batches) follow
    the drop patterns of those last batches — while the test-time network keeps every unit, scaled by
    ``p_l``, and so feeds each BatchNorm other statistics. This does what
    ``torch.optim.swa_utils.update_bn`` does (a plain average over ``batches`` batches of ``data``,
    without gradients), except that only the BatchNorm layers are put in training mode: the residual
    units stay in test mode, so no unit is dropped. On a network without stochastic depth the result
    equals ``update_bn`` on the same batches (tests/test_resnets.py checks it). Returns the model in
    eval mode.
    """
    check_int("batches", batches)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ValueError("model has no BatchNorm layer to recalibrate")
    device = next(model.parameters()).device
    model.eval()
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the batches below
        bn.train()
    with torch.no_grad():
        for x, _ in itertools.islice(data, batches):
            model(x.to(device))
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
        bn.eval()
    return model


# --------------------------------------------------------------------------- SE parameter arithmetic


def se_extra_params(stage_channels: list, blocks_per_stage: list, reduction: int = 16) -> int:
    """The paper's count of SE weights: ``(2/r)·Σ_s N_s·C_s²`` (biases ignored)."""
    check_int("reduction", reduction)
    if len(stage_channels) != len(blocks_per_stage):
        raise ValueError("stage_channels and blocks_per_stage must have the same length")
    return sum(2 * n * (c * c // reduction) for c, n in zip(stage_channels, blocks_per_stage))


def _stages_of_torchvision_resnet(model):
    stages = []
    for name in ("layer1", "layer2", "layer3", "layer4"):
        layer = getattr(model, name)
        last = layer[0].conv3 if hasattr(layer[0], "conv3") else layer[0].conv2
        stages.append((last.out_channels, len(layer)))
    return stages


def se_resnet50_params(reduction: int = 16, skip_last_stage: bool = False) -> dict:
    """SE's extra weights on torchvision's ``resnet50`` stage widths (formula and real modules)."""
    base = torchvision.models.resnet50()
    stages = _stages_of_torchvision_resnet(base)
    if skip_last_stage:
        stages = stages[:-1]
    formula = se_extra_params([c for c, _ in stages], [n for _, n in stages], reduction)
    params = sum(p.numel() for p in base.parameters())
    with_se = add_se_to_torchvision_resnet(base, reduction, skip_last_stage)
    real = sum(p.numel() for p in with_se.parameters()) - params
    return {"resnet50": params, "stages": stages, "formula": formula, "real": real, "fraction": formula / params}


class _SEBottleneck(nn.Module):
    def __init__(self, block, reduction):
        super().__init__()
        self.block = block
        last = block.bn3 if hasattr(block, "bn3") else block.bn2
        self.se = SqueezeExcite(last.num_features, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        identity = b.downsample(x) if b.downsample is not None else x
        if hasattr(b, "conv3"):
            out = b.relu(b.bn1(b.conv1(x)))
            out = b.relu(b.bn2(b.conv2(out)))
            out = b.bn3(b.conv3(out))
        else:
            out = b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x)))))
        return b.relu(self.se(out) + identity)


def add_se_to_torchvision_resnet(model: nn.Module, reduction: int = 16, skip_last_stage: bool = False) -> nn.Module:
    """Put an SE module on the residual branch of every block of a torchvision ResNet, in place; returns it."""
    check_int("reduction", reduction)
    if not isinstance(skip_last_stage, bool):
        raise TypeError(f"skip_last_stage={skip_last_stage!r} must be a bool")
    names = ("layer1", "layer2", "layer3") if skip_last_stage else ("layer1", "layer2", "layer3", "layer4")
    missing = [name for name in names if not isinstance(getattr(model, name, None), nn.Sequential)]
    if missing:
        raise TypeError(f"model must be a torchvision ResNet (stages layer1 … layer4); it has no {missing}")
    # build every new block first: a reduction too large for one stage fails before anything changes
    new = {name: [_SEBottleneck(block, reduction) for block in getattr(model, name)] for name in names}
    for name in names:
        layer = getattr(model, name)
        for i, block in enumerate(new[name]):
            layer[i] = block
    return model


# --------------------------------------------------------------------------- the shortcut race

# The paper's shortcuts that fail or lose to the identity (ResNet-110, CIFAR-10), with the paper's
# failing initialisation of the gates (b_g = 0): (name, resnet_cifar keywords, paper's test error).
SHORTCUT_RACE = (
    ("identity", dict(shortcut="identity"), "6.61%"),
    ("scale 0.5", dict(shortcut="scale", scale=0.5), "fail"),
    ("exclusive gate, b_g = 0", dict(shortcut="exclusive_gate", gate_bias=0.0), "fail"),
    ("shortcut-only gate, b_g = 0", dict(shortcut="shortcut_gate", gate_bias=0.0), "12.86%"),
    ("1×1 conv", dict(shortcut="conv1x1"), "12.22%"),
    ("dropout 0.5", dict(shortcut="dropout", scale=0.5), "fail"),
)


def shortcut_race(
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    depth: int = 110,
    widths: tuple = (4, 8, 16),
    epochs: int = 1,
    lr: float = 0.1,
    in_channels: int = 3,
    num_classes: int = 10,
    device: str | torch.device | None = None,
    seed: int = 0,
    names: tuple | None = None,
) -> dict:
    """Train one post-activation ResNet per shortcut of :data:`SHORTCUT_RACE` on the same data with
    the same schedule (``train.fit``, same seed), recording the training loss of every step.

    Returns ``{name: {"loss": [per-step losses], "params": parameter count, "paper": error}}``.
    The paper's point is about *optimisation* (the failing shortcuts reach a higher training
    error), so the training loss is what is compared. ``names``: only these shortcuts (e.g. to
    split the race over processes).
    """
    _check_depth(depth)
    known = [name for name, _, _ in SHORTCUT_RACE]
    if names is not None and not set(names) <= set(known):
        raise ValueError(f"names={names!r}: each must be one of {known}")
    runs = {}
    for name, kwargs, paper in SHORTCUT_RACE:
        if names is not None and name not in names:
            continue
        torch.manual_seed(seed)
        net = resnet_cifar(depth, widths=widths, num_classes=num_classes, in_channels=in_channels, **kwargs)
        losses: list = []

        def loss_fn(out, y, losses=losses):
            loss = F.cross_entropy(out, y)
            losses.append(loss.item())
            return loss

        train.fit(
            net, train_data, None, epochs=epochs, lr=lr, progress=False, device=device, seed=seed, loss_fn=loss_fn
        )
        runs[name] = {"loss": losses, "params": sum(p.numel() for p in net.parameters()), "paper": paper}
    return runs


RACE_FILE = "resnet56-shortcut-race-fmnist.json"  # in the checkpoints folder
RACE = dict(depth=56, widths=(4, 8, 16), epochs=1, lr=0.1, batch_size=128)


def load_race(folder: str | Path | None = None) -> dict:
    """The shipped long run of :func:`shortcut_race` (``python -m course_lib.resnets race``): the
    settings it ran with and ``runs`` as :func:`shortcut_race` returns them."""
    path = (Path(folder) if folder is not None else config.checkpoints_dir()) / RACE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m course_lib.resnets race`")
    return json.loads(path.read_text())


def _ship_race(folder=None, threads=1, names=None):
    """The long run of the shortcut race on the whole Fashion-MNIST training set (:data:`RACE`).

    ``names``: only these shortcuts, into ``RACE_FILE`` + ``.part-<first name>`` (run two processes
    on two cores, then merge the parts' ``runs``). One thread per process: several processes with
    several threads each on a 2-core machine spin-wait on each other and crawl.
    """
    torch.set_num_threads(int(threads))
    folder = Path(folder) if folder is not None else config.checkpoints_dir()
    train_data, _ = data.loaders("fashion-mnist", RACE["batch_size"], augment=False, device="cpu")
    runs = shortcut_race(
        train_data, RACE["depth"], RACE["widths"], RACE["epochs"], RACE["lr"], in_channels=1, names=names
    )
    for run in runs.values():
        run["loss"] = [round(v, 4) for v in run["loss"]]
    record = {
        "command": "python -m course_lib.resnets race",
        "dataset": "fashion-mnist",
        "train_images": len(train_data.labels),
        **RACE,
        "runs": runs,
    }
    suffix = "" if names is None else f".part-{names[0].split()[0]}"
    (folder / (RACE_FILE + suffix)).write_text(json.dumps(record) + "\n")
    print({name: round(mean, 4) for name, (mean, _) in final_losses(runs).items()})


def final_losses(runs: dict, fraction: float = 0.1) -> dict:
    """Each run's training loss at the end: ``{name: (mean, standard error)}`` over the last
    ``fraction`` of its steps.

    The standard error (``std / sqrt(steps)``) treats those steps' losses as independent draws; they
    are not quite (neighbouring batches share weights), so read it as a rough width of the noise.
    """
    check_float("fraction", fraction, 0.0, 1.0, low_inclusive=False)
    out = {}
    for name, run in runs.items():
        n = max(2, round(fraction * len(run["loss"])))
        tail = torch.tensor(run["loss"][-n:], dtype=torch.float64)
        out[name] = (float(tail.mean()), float(tail.std() / len(tail) ** 0.5))
    return out


# --------------------------------------------------------------------------- gradient flow


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> list:
    """‖∂E/∂x_l‖ at the input of every residual unit l (forward order), for one batch.

    ``E`` is the cross-entropy against ``y`` (default: labels 0, 1, 2, … cycling). The model runs
    in training mode (batch statistics), as at the first step of training; weights are not changed.
    """
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError("model has no residual units (BasicBlock / PreActBlock)")
    inputs, hooks = [], []

    def grab(module, args):
        t = args[0]
        if not t.requires_grad:
            t = t.detach().requires_grad_(True)
        t.retain_grad()
        inputs.append(t)
        return (t,) + tuple(args[1:])

    for b in blocks:
        hooks.append(b.register_forward_pre_hook(grab))
    was_training = model.training
    model.train()
    try:
        out = model(x)
        if y is None:
            y = torch.arange(len(x), device=x.device) % out.shape[1]
        loss = F.cross_entropy(out, y)
        grads = torch.autograd.grad(loss, inputs)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [g.norm().item() for g in grads]


# --------------------------------------------------------------------------- cost report


@dataclass
class StageCost:
    """Parameters and MACs of one part of a CIFAR ResNet."""

    part: str = column(align="<")
    params: int = column(format="{:,}")
    macs: int = column("MACs", "{:,}")


class StageCostReport(Rows):
    """``report.Rows`` of :class:`StageCost` (stem, stage 1…3, classifier, total): ``.find(part="total")``."""


def cost_report(model: nn.Sequential, input_size: tuple) -> StageCostReport:
    """Parameters and MACs per part (stem, stage 1…3, classifier, total) of a :func:`resnet_cifar` net."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from resnet_cifar, got {type(model).__name__}")
    stage_of, stage, prev_width = {}, 0, None
    units = [i for i, m in enumerate(model) if isinstance(m, _Residual)]
    if not units:
        raise ValueError("model has no residual units (BasicBlock / PreActBlock)")
    for i, m in enumerate(model):
        if isinstance(m, _Residual):
            if m.conv2.out_channels != prev_width:
                stage, prev_width = stage + 1, m.conv2.out_channels
            stage_of[str(i)] = f"stage {stage}"
        else:
            stage_of[str(i)] = "stem" if i < units[0] else "classifier"
    rows: dict[str, list[int]] = {}
    for i, m in enumerate(model):
        part = stage_of[str(i)]
        rows.setdefault(part, [0, 0])[0] += sum(p.numel() for p in m.parameters())
    for r in layer_table(model, input_size):
        rows[stage_of[r.name.split(".")[0]]][1] += r.macs
    report = StageCostReport(StageCost(k, v[0], v[1]) for k, v in rows.items())
    report.append(StageCost("total", sum(r.params for r in report), sum(r.macs for r in report)))
    return report


# --------------------------------------------------------------------------- the residual-network explorer

BLOCK_TYPES = ("post-act", "pre-act")
EXPLORER_WIDTHS = (8, 16, 32)
EXPLORER_INPUT = (3, 16, 16)


@lru_cache(maxsize=64)
def _explore(depth, block, shortcut, se):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = resnet_cifar(
            depth,
            preact=block == "pre-act",
            widths=EXPLORER_WIDTHS,
            shortcut=shortcut,
            se=se,
            reduction=4,
            in_channels=EXPLORER_INPUT[0],
        )
        x = torch.randn(16, *EXPLORER_INPUT)
        norms = gradient_norms(model, x)
    costs = cost_report(model, EXPLORER_INPUT)
    return tuple(norms), tuple(costs)


@dataclass(frozen=True)
class ResidualState(State):
    """What the residual-network explorer shows for one setting."""

    depth: int
    block: str
    shortcut: str
    se: str
    blocks: int  # residual units
    norms: list[float]  # gradient norm per unit at init
    plain_norms: list[float]  # the same net without shortcuts
    ratio: float  # unit 1 over the last unit
    plain_ratio: float
    costs: StageCostReport
    params: int
    macs: int


def residual_state(
    depth: int = 56, block: str = "pre-act", shortcut: str = "identity", se: str = "off"
) -> ResidualState:
    """Pure state of the residual-network explorer: gradient norm per unit at init, params and MACs.

    The net is a :func:`resnet_cifar` of widths 8-16-32 on 16×16 RGB inputs (small, so that the
    explorer answers fast), seeded so that the figure repeats. ``plain`` is the same net with
    ``shortcut="none"``, drawn for comparison.
    """
    n = _check_depth(depth)
    if block not in BLOCK_TYPES:
        raise ValueError(f"block={block!r} is unknown; choose one of {BLOCK_TYPES}")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut={shortcut!r} is unknown; choose one of {SHORTCUTS}")
    if se not in ("off", "on"):
        raise ValueError(f"se={se!r} must be 'off' or 'on'")
    if depth > 164:
        raise ValueError(f"depth={depth} is too deep for the explorer (at most 164)")
    norms, costs = _explore(depth, block, shortcut, se == "on")
    plain, _ = _explore(depth, block, "none", se == "on")
    return ResidualState(
        depth=depth,
        block=block,
        shortcut=shortcut,
        se=se,
        blocks=3 * n,
        norms=list(norms),
        plain_norms=list(plain),
        ratio=norms[0] / norms[-1],
        plain_ratio=plain[0] / plain[-1],
        costs=StageCostReport(costs),
        params=costs[-1].params,
        macs=costs[-1].macs,
    )


def residual_readout(state: ResidualState) -> str:
    return (
        f"<b>ResNet-{state.depth}</b> ({state.block}, shortcut {state.shortcut}, SE {state.se}): "
        f"{state.params:,} parameters, {state.macs / 1e6:.1f}M MACs on a 16×16 input. "
        f"Gradient norm at unit 1 / unit {state.blocks}: {state.ratio:.3g} "
        f"(plain net: {state.plain_ratio:.3g})."
    )


def draw_residual(state: ResidualState, fig: Figure) -> None:
    ax, ax_t = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    units = range(1, state.blocks + 1)
    ax.semilogy(units, state.norms, "o-", ms=3, label=f"{state.block}, {state.shortcut}")
    if state.shortcut != "none":
        ax.semilogy(units, state.plain_norms, "s-", ms=3, color="gray", alpha=0.7, label="plain (no shortcut)")
    ax.set_xlabel("residual unit l (input side → output side)")
    ax.set_ylabel("‖∂E/∂x_l‖ at initialisation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(f"gradient reaching each unit, ResNet-{state.depth}", fontsize=9)
    ax_t.axis("off")
    cells = [[r.part, f"{r.params:,}", f"{r.macs / 1e6:.2f}M"] for r in state.costs]
    table = ax_t.table(cellText=cells, colLabels=["part", "params", "MACs"], loc="center")
    table.scale(1, 1.4)
    ax_t.set_title("parameters and MACs (16×16 input)", fontsize=9)


def residual_explorer(depth: int = 56, block: str = "pre-act", shortcut: str = "identity", se: str = "off") -> Explorer:
    """The residual-network explorer (an ``Explorer``): depth, block type, shortcut variant, SE."""
    from .widgets import Explorer, dropdown, int_slider

    controls = {
        "depth": int_slider("depth", depth, 8, 110, step=6),
        "block": dropdown("block", list(BLOCK_TYPES), block),
        "shortcut": dropdown("shortcut", list(SHORTCUTS), shortcut),
        "se": dropdown("SE", ["off", "on"], se),
    }
    return Explorer(
        residual_state,
        draw_residual,
        controls,
        title="residual-network explorer",
        readout_fn=residual_readout,
        figsize=(11, 4),
    )


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["race"]:
        _ship_race(*sys.argv[2:3])
    else:
        print("usage: python -m course_lib.resnets race [FOLDER]")
