"""Chapter 03's exercises: low rank.

- **equal_cost_spatial_rank** (*derive*): §4 works out that for a 3×3 layer c → c, spatial rank
  K = 5r/3 costs what channel rank r costs. The learner derives the general case — any c, d and k —
  and returns the largest spatial rank K that costs no more MACs than channel rank r. The checker
  builds both decompositions as real ``nn.Conv2d`` layers and counts their MACs with
  ``measure.count_macs``. Rejected: §4's ``round(5r/3)`` (right only for c = d, k = 3), and the count
  that takes the channel decomposition's 1×1 conv as k×k; refused: ``lowrank.decompose_conv_channels``,
  ``lowrank.decompose_conv_spatial``, ``conv.conv_cost``, ``lowrank.factorized_params``.
- **rank_for_mac_budget** (*derive*): the largest rank d′ of Zhang et al.'s channel decomposition of a
  k×k conv c → d that keeps at most ``budget`` × its MACs. The checker counts the MACs of the real
  decomposed layers (``measure.count_macs``) for every rank and takes the largest that fits. Rejected:
  ``budget × d`` ("half the budget is half the rank") and the rule applied to a d × c matrix (k
  forgotten); refused: ``lowrank.rank_for_budget``, ``lowrank.factorized_params``, ``conv.conv_cost``.
- **response_fit** (*build it and measure it*): Zhang et al.'s data-driven decomposition written from
  scratch — the layer's responses to sample inputs, their principal directions, d′ filters, a 1×1 conv
  and the bias that carries the mean. The checker measures the response error of the returned
  layers on those inputs against the optimum that Eckart–Young gives for the centred responses
  (their discarded singular values, ``torch.linalg.svdvals``), and checks the layer shapes. Rejected:
  the weight SVD (ignores the data), PCA without the mean in the bias; refused:
  ``lowrank.decompose_conv_channels``, ``lowrank.fit_response_projection``, ``lowrank.conv_responses``,
  ``lowrank.truncated_svd``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from .. import conv, lowrank, measure
from ..checks import ExerciseError, checker, expect_equal, expect_true
from ..surgery import tensor_of

__all__ = ["check_equal_cost_spatial_rank", "check_rank_for_mac_budget", "check_response_fit"]


def _channel_layers(c: int, d: int, k: int, r: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, r, k, padding=k // 2, bias=False), nn.Conv2d(r, d, 1, bias=False))


def _spatial_layers(c: int, d: int, k: int, K: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c, K, (k, 1), padding=(k // 2, 0), bias=False),
        nn.Conv2d(K, d, (1, k), padding=(0, k // 2), bias=False),
    )


def _largest(cost_of: Callable[[int], int], limit: float, top: int) -> int:
    """The largest r in 1..top with cost_of(r) <= limit (cost grows with r); 1 if none fits."""
    best = 1
    for r in range(1, top + 1):
        if cost_of(r) > limit:
            break
        best = r
    return best


_LOW_RANK = {
    "lowrank.decompose_conv_channels": lowrank.decompose_conv_channels,
    "lowrank.decompose_conv_spatial": lowrank.decompose_conv_spatial,
    "lowrank.factorized_params": lowrank.factorized_params,
    "conv.conv_cost": conv.conv_cost,
}


@checker("spatial rank at the cost of a channel rank", answers=_LOW_RANK)
def check_equal_cost_spatial_rank(fn: Callable) -> None:
    """``fn(c, d, k, r)`` = the largest spatial rank K whose k×1 + 1×k layers cost no more MACs than
    channel rank r (r k×k filters + a 1×1 conv), measured on real layers."""

    def shape_of(c: int) -> tuple[int, int, int]:
        return (c, 6, 6)  # MACs scale with H·W on both sides

    for c, d, k, r in ((48, 48, 3, 6), (16, 64, 3, 4), (64, 16, 5, 3), (32, 32, 7, 2), (8, 96, 3, 5), (24, 24, 3, 12)):
        channel = measure.count_macs(_channel_layers(c, d, k, r), shape_of(c))
        per_rank = measure.count_macs(_spatial_layers(c, d, k, 1), shape_of(c))  # exactly linear in K
        expected = _largest(lambda K: K * per_rank, channel, 10 * c * d)
        got = fn(c, d, k, r)
        expect_true(isinstance(got, int) and not isinstance(got, bool), f"return an int (a rank), got {got!r}")
        expect_equal(
            got,
            expected,
            f"the largest spatial rank costing at most channel rank {r} for a {k}×{k} conv "
            f"{c} → {d} ({channel:,} MACs on a 6×6 map)",
        )


@checker("channel rank for a MAC budget", answers={"lowrank.rank_for_budget": lowrank.rank_for_budget, **_LOW_RANK})
def check_rank_for_mac_budget(fn: Callable) -> None:
    """``fn(c, d, k, budget)`` = the largest d′ (1 ≤ d′ ≤ min(d, c·k²)) whose channel decomposition costs
    at most ``budget`` × the k×k conv's MACs (at least 1), counted on real layers for every rank."""
    for c, d, k, budget in (
        (48, 48, 3, 0.5),
        (16, 64, 3, 0.25),
        (64, 16, 5, 0.5),
        (3, 24, 3, 0.3),
        (96, 96, 3, 0.1),
        (32, 8, 1, 0.9),
        (24, 48, 3, 0.02),
    ):
        shape = (c, 6, 6)
        full = measure.count_macs(nn.Conv2d(c, d, k, padding=k // 2, bias=False), shape)
        per_rank = measure.count_macs(_channel_layers(c, d, k, 1), shape)  # exactly linear in d′
        expected = _largest(lambda r: r * per_rank, budget * full, min(d, c * k * k))
        got = fn(c, d, k, budget)
        expect_true(isinstance(got, int) and not isinstance(got, bool), f"return an int (a rank), got {got!r}")
        expect_equal(got, expected, f"the largest channel rank within {budget} × the MACs of a {k}×{k} conv {c} → {d}")


def _sample_inputs(c: int, seed: int) -> torch.Tensor:
    """Inputs whose channels are correlated (as real feature maps are): 3 sources mixed into c channels."""
    g = torch.Generator().manual_seed(seed)
    sources = torch.randn(16, 3, 8, 8, generator=g, dtype=torch.float64)
    mix = torch.randn(c, 3, generator=g, dtype=torch.float64)
    return (
        torch.einsum("cs,nshw->nchw", mix, sources)
        + 0.05 * torch.randn(16, c, 8, 8, generator=g, dtype=torch.float64)
        + 0.7
    )


@checker(
    "data-driven channel decomposition",
    answers={
        "lowrank.decompose_conv_channels": lowrank.decompose_conv_channels,
        "lowrank.fit_response_projection": lowrank.fit_response_projection,
        "lowrank.conv_responses": lowrank.conv_responses,
        "lowrank.truncated_svd": lowrank.truncated_svd,
        "lowrank.compress_model": lowrank.compress_model,
    },
)
def check_response_fit(fn: Callable) -> None:
    """``fn(conv, x, rank)`` → ``nn.Sequential(k×k conv c → rank, 1×1 conv rank → d with bias)`` whose
    outputs on ``x`` are as close to ``conv(x)`` as any rank-``rank`` decomposition can be."""
    for seed, (c, d, k, rank) in enumerate(((6, 12, 3, 2), (8, 16, 3, 3), (5, 10, 1, 2))):
        g = torch.Generator().manual_seed(100 + seed)
        layer = nn.Conv2d(c, d, k, padding=k // 2).double()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=torch.float64))
            tensor_of(layer, "bias").copy_(torch.randn(d, generator=g, dtype=torch.float64))
        x = _sample_inputs(c, seed)
        with torch.no_grad():
            y = layer(x)
        responses = y.transpose(0, 1).reshape(d, -1)
        centred = responses - responses.mean(1, keepdim=True)
        optimum = torch.linalg.svdvals(centred)[rank:].square().sum().sqrt().item()
        out = fn(layer, x.clone(), rank)
        expect_true(
            isinstance(out, nn.Module), f"return the decomposed layers (an nn.Module), got {type(out).__name__}"
        )
        convs = [m for m in out.modules() if isinstance(m, nn.Conv2d)]
        expect_true(
            len(convs) == 2
            and convs[0].out_channels == rank
            and convs[1].kernel_size == (1, 1)
            and convs[1].out_channels == d,
            f"return a {k}×{k} conv {c} → {rank} then a 1×1 conv "
            f"{rank} → {d}; got {[tuple(m.weight.shape) for m in convs]}",
        )
        with torch.no_grad():
            got = out.double()(x)
        expect_true(
            got.shape == y.shape, f"the decomposed layers give shape {tuple(got.shape)}, the conv {tuple(y.shape)}"
        )
        error = (got - y).norm().item()
        if error > optimum * (1 + 1e-4) + 1e-8:  # (float32 layers pass too)
            raise ExerciseError(
                f"your rank-{rank} layers miss the responses of a {k}×{k} conv {c} → {d} by "
                f"{error:.4g} (Frobenius norm over the sample), the best rank-{rank} fit misses by "
                f"{optimum:.4g}: fit the principal directions of the *centred* responses, and "
                "carry the mean response in the 1×1 conv's bias"
            )
