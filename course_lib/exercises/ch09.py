"""Chapter 09's exercises: small networks.

1. **Parameters of a Fire module** (derive): ``fn(in_channels, squeeze, expand1x1, expand3x3)`` →
   weights and biases of squeeze 1×1 → (expand 1×1 ‖ expand 3×3). Compared with real
   ``smallnets.Fire`` modules, including one without a 1×1 and one without a 3×3 expand branch.
2. **Where a thinned separable layer spends its mult-adds** (derive, then predict): ``fn(M, N, D_F,
   alpha, rho)`` → the fraction of a 3×3 depthwise separable layer's mult-adds spent in the
   depthwise conv, after the width multiplier α (``int(α·M)`` → ``int(α·N)`` channels) and the
   resolution multiplier ρ (``round(ρ·D_F)``). The checker *measures* real layers with
   ``measure.count_macs``; it rejects ``9/(9 + N)`` (α forgotten) and the cost ratio against a
   standard conv ``1/N + 1/9`` (a different quantity).
3. **The channel shuffle** (build): ``fn(x, groups)`` compared with PyTorch's ``nn.ChannelShuffle``;
   ``smallnets.channel_shuffle``, ``igc.interleave``, ``torch.nn.ChannelShuffle`` and
   ``torch.channel_shuffle`` are the answer and are refused inside a submission.
"""

from collections.abc import Callable

import torch
import torch.nn as nn

from .. import conv, igc, measure, smallnets
from ..checks import checker, expect_close, expect_equal, expect_true

__all__ = ["check_fire_params", "check_depthwise_share", "check_channel_shuffle"]


@checker(
    "Fire module parameters", answers={"smallnets.Fire": smallnets.Fire, "smallnets.FireBypass": smallnets.FireBypass}
)
def check_fire_params(fn: Callable) -> None:
    """``fn(in_channels, squeeze, expand1x1, expand3x3)`` = parameters (weights + biases) of a Fire module."""
    for cfg in (
        (96, 16, 64, 64),
        (128, 32, 128, 128),
        (512, 64, 256, 256),
        (10, 3, 5, 7),
        (64, 8, 0, 32),
        (7, 2, 9, 0),
    ):
        expect_equal(fn(*cfg), sum(p.numel() for p in smallnets.Fire(*cfg).parameters()), f"params of Fire{cfg}")


@checker(
    "depthwise share of a separable layer",
    answers={
        "smallnets.depthwise_separable_block": smallnets.depthwise_separable_block,
        "conv.depthwise_separable": conv.depthwise_separable,
        "smallnets.separable_cost_ratio": smallnets.separable_cost_ratio,
        "smallnets.cost_by_kind": smallnets.cost_by_kind,
        "measure.count_macs": measure.count_macs,
    },
)
def check_depthwise_share(fn: Callable) -> None:
    """``fn(M, N, D_F, alpha, rho)`` → depthwise MACs / (depthwise + pointwise MACs), measured on real layers."""
    for m, n, d, a, r in (
        (512, 512, 14, 1.0, 1.0),
        (512, 512, 14, 0.75, 0.714),
        (32, 64, 112, 0.5, 1.0),
        (256, 128, 28, 0.25, 0.5),
        (10, 20, 7, 1.0, 1.0),
        (1024, 1024, 7, 0.25, 0.571),
    ):
        cm, cn, side = int(a * m), int(a * n), round(r * d)
        depthwise = measure.count_macs(nn.Conv2d(cm, cm, 3, padding=1, groups=cm, bias=False), (cm, side, side))
        pointwise = measure.count_macs(nn.Conv2d(cm, cn, 1, bias=False), (cm, side, side))
        got = fn(m, n, d, a, r)
        expect_true(
            isinstance(got, (int, float)) or (torch.is_tensor(got) and got.numel() == 1),
            f"return one fraction, got {type(got).__name__}",
        )
        expect_close(
            float(got),
            depthwise / (depthwise + pointwise),
            f"the depthwise share at M={m}, N={n}, D_F={d}, α={a}, ρ={r}",
            rtol=1e-9,
            atol=1e-12,
        )


@checker(
    "channel shuffle",
    answers={
        "smallnets.channel_shuffle": smallnets.channel_shuffle,
        "igc.interleave": igc.interleave,
        "torch.nn.ChannelShuffle": nn.ChannelShuffle,
        "torch.channel_shuffle": torch.channel_shuffle,
    },
)
def check_channel_shuffle(fn: Callable) -> None:
    """``fn(x, groups)`` must equal ``torch.nn.ChannelShuffle(groups)(x)``."""
    g = torch.Generator().manual_seed(0)
    for shape, groups in (
        ((2, 6, 3, 3), 2),
        ((1, 6, 2, 2), 3),
        ((2, 12, 4, 4), 4),
        ((1, 8, 1, 1), 8),
        ((3, 5, 2, 2), 1),
    ):
        x = torch.randn(*shape, generator=g)
        got = fn(x.clone(), groups)
        expect_true(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
        expected = nn.ChannelShuffle(groups)(x)
        expect_equal(tuple(got.shape), tuple(expected.shape), f"shape of shuffle(x of {shape}, groups={groups})")
        expect_close(got, expected, f"shuffle(x of {shape}, groups={groups})")
