"""ResNeXt: aggregated residual transformations (Xie, Girshick, Dollár, Tu, He, CVPR 2017; chapter 07).

``y = x + Σ_{i=1}^{C} T_i(x)``: C identical bottleneck paths of width d, in three equivalent forms —
(a) C paths summed, (b) early concatenation, (c) one grouped 3×3 conv (:class:`ResNeXtBlock`;
:func:`convert_resnext` copies the weights of one form into another, the outputs stay equal). The
template keeps ``C·(256·d + 9·d² + 256·d) ≈ 70k`` parameters per block (:func:`resnext_params`).
:data:`RESNEXT_PRESETS` draws the branch in the channel-connectivity explorer (``channels``). Every
name here is also ``resnets.X`` (the chapter's module re-exports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import channels
from .args import check_int

if TYPE_CHECKING:
    from .widgets import Explorer

__all__ = [
    "FORMS",
    "ResNeXtBlock",
    "convert_resnext",
    "resnext_params",
    "RESNEXT_PRESETS",
    "resnext_connectivity_explorer",
]

FORMS = ("a", "b", "c")

# --------------------------------------------------------------------------- ResNeXt


class ResNeXtBlock(nn.Module):
    """A ResNeXt bottleneck unit ``y = ReLU(x + BN(Σ_i T_i(x)))`` in one of three equivalent forms.

    ``channels`` in and out; ``cardinality`` C paths; ``width`` the total bottleneck width C·d
    (d = width / C per path, e.g. 128 for 32×4d). Each path T_i: 1×1 (channels → d) BN ReLU,
    3×3 (d → d) BN ReLU, 1×1 (d → channels). Forms: ``"a"`` C separate paths summed;
    ``"b"`` paths up to the 3×3, concatenated, then one 1×1; ``"c"`` one 1×1, a grouped 3×3
    (``groups = C``), one 1×1. The BN after the aggregation makes the three exactly equivalent.
    """

    def __init__(self, channels: int, cardinality: int, width: int, form: str = "c"):
        super().__init__()
        check_int("channels", channels)
        check_int("cardinality", cardinality)
        check_int("width", width)
        if width % cardinality:
            raise ValueError(
                f"cardinality={cardinality} does not divide width={width}: the bottleneck width must be cardinality × d"
            )
        if form not in FORMS:
            raise ValueError(f"form={form!r} is unknown; choose one of {FORMS}")
        self.channels, self.cardinality, self.width, self.form = channels, cardinality, width, form
        d = self.d = width // cardinality

        def head():
            return nn.Sequential(
                nn.Conv2d(channels, d, 1, bias=False),
                nn.BatchNorm2d(d),
                nn.ReLU(inplace=True),
                nn.Conv2d(d, d, 3, 1, 1, bias=False),
                nn.BatchNorm2d(d),
                nn.ReLU(inplace=True),
            )

        if form == "a":
            self.paths = nn.ModuleList(
                nn.Sequential(*head(), nn.Conv2d(d, channels, 1, bias=False)) for _ in range(cardinality)
            )
        elif form == "b":
            self.paths = nn.ModuleList(head() for _ in range(cardinality))
            self.expand = nn.Conv2d(width, channels, 1, bias=False)
        else:
            self.reduce = nn.Conv2d(channels, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv = nn.Conv2d(width, width, 3, 1, 1, groups=cardinality, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.expand = nn.Conv2d(width, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)  # after the aggregation
        self.relu = nn.ReLU(inplace=True)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ_i T_i(x)`` (before the final BN)."""
        if self.form == "a":
            return sum(path(x) for path in self.paths)
        if self.form == "b":
            return self.expand(torch.cat([path(x) for path in self.paths], dim=1))
        y = F.relu(self.bn1(self.reduce(x)))
        return self.expand(F.relu(self.bn2(self.conv(y))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.bn(self.aggregate(x)))


def _path_parts(block):
    """Per path i: (reduce weight, bn1, 3×3 weight, bn2, expand weight) as tensors/BN-state dicts."""
    d, C = block.d, block.cardinality

    def bn_slice(bn, i):
        return {k: v[i * d : (i + 1) * d] for k, v in bn.state_dict().items() if v.dim() == 1} | {
            "num_batches_tracked": bn.num_batches_tracked
        }

    parts = []
    for i in range(C):
        if block.form == "c":
            sl = slice(i * d, (i + 1) * d)
            parts.append(
                (
                    block.reduce.weight[sl],
                    bn_slice(block.bn1, i),
                    block.conv.weight[sl],
                    bn_slice(block.bn2, i),
                    block.expand.weight[:, sl],
                )
            )
        else:
            p = block.paths[i]
            expand = p[6].weight if block.form == "a" else block.expand.weight[:, i * d : (i + 1) * d]
            parts.append((p[0].weight, p[1].state_dict(), p[3].weight, p[4].state_dict(), expand))
    return parts


def _copy_weight(layer: nn.Module, value: torch.Tensor) -> None:
    weight = layer.weight
    assert isinstance(weight, torch.Tensor)  # a conv of a path
    weight.copy_(value)


@torch.no_grad()
def convert_resnext(block: ResNeXtBlock, form: str) -> ResNeXtBlock:
    """A new :class:`ResNeXtBlock` in ``form`` that computes exactly what ``block`` computes.

    The weights are moved, not learned: path i of form (a) is the i-th slice of d channels of
    form (c)'s reduce / grouped / expand convs (and of its BNs). ``block`` is unchanged.
    """
    if not isinstance(block, ResNeXtBlock):
        raise TypeError(f"block must be a ResNeXtBlock, got {type(block).__name__}")
    if form not in FORMS:
        raise ValueError(f"form={form!r} is unknown; choose one of {FORMS}")
    new = ResNeXtBlock(block.channels, block.cardinality, block.width, form)
    new.bn.load_state_dict(block.bn.state_dict())
    parts = _path_parts(block)
    d = block.d
    for i, (w1, bn1, w2, bn2, w3) in enumerate(parts):
        sl = slice(i * d, (i + 1) * d)
        if form == "c":
            new.reduce.weight[sl] = w1
            new.conv.weight[sl] = w2
            new.expand.weight[:, sl] = w3
            for bn, state in ((new.bn1, bn1), (new.bn2, bn2)):
                for k in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, k)[sl] = state[k]
                assert bn.num_batches_tracked is not None  # track_running_stats=True
                bn.num_batches_tracked.copy_(state["num_batches_tracked"])
        else:
            p = new.paths[i]
            assert isinstance(p, nn.Sequential)  # forms a and b build every path as one
            _copy_weight(p[0], w1)
            p[1].load_state_dict(bn1)
            _copy_weight(p[3], w2)
            p[4].load_state_dict(bn2)
            if form == "a":
                _copy_weight(p[6], w3)
            else:
                new.expand.weight[:, sl] = w3
    return new.train(block.training)


def resnext_params(cardinality: int, d: int, channels: int = 256) -> int:
    """Weights of the template's conv layers: ``C·(channels·d + 9·d² + d·channels)``."""
    for name, v in (("cardinality", cardinality), ("d", d), ("channels", channels)):
        check_int(name, v)
    return cardinality * (channels * d + 9 * d * d + d * channels)


def _connectivity_resnext(C: int, L: int, M: int, k: int) -> channels.Chain:
    width = L * M
    ops = (
        channels.dense(C, width, label="1×1 reduce"),
        channels.group_conv(width, L, kernel_size=k, label=f"3×3 grouped, {L} paths"),
        channels.dense(width, C, label="1×1 expand"),
    )
    return channels.Chain(ops, f"ResNeXt branch: C={C} channels, cardinality {L} × d={M} (form c)", C)


def _connectivity_resnext_3x3(C: int, L: int, M: int, k: int) -> channels.Chain:
    ops = (channels.group_conv(L * M, L, kernel_size=k, label=f"3×3 grouped, {L} paths of d={M}"),)
    return channels.Chain(ops, f"ResNeXt grouped 3×3: cardinality {L}, d={M}: block-diagonal", L * M)


RESNEXT_PRESETS = channels.presets_table(
    [
        channels.Preset("resnext", _connectivity_resnext, "C = channels, L = cardinality, M = d (width of a path)"),
        channels.Preset(
            "resnext 3×3", _connectivity_resnext_3x3, "L = cardinality, M = d (C = L·d; the C slider is unused)"
        ),
    ]
)


def resnext_connectivity_explorer(C: int = 16, cardinality: int = 4, d: int = 2) -> Explorer:
    """The channel-connectivity explorer (``channels``, chapter 06) with the ResNeXt presets.

    The sliders: L = cardinality, M = d (the width of one path)."""
    return channels.connectivity_explorer("resnext", C=C, L=cardinality, M=d, presets=RESNEXT_PRESETS)
