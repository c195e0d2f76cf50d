"""Chapter 06's exercises: interleaved group convolutions.

- **chain_permutations** (*build it and measure it*): the permutations of an IGCV2-style chain of group
  convs with branch sizes K_1, …, K_n (ΠK = C; conv i has C/K_i groups of K_i channels) so that every
  input channel reaches every output channel by exactly one path. §6 states the mixed-radix idea; the
  learner builds it. The checker builds the chain from real ``nn.Conv2d`` layers (all-ones weights) with
  the learner's permutations between them, sends one input channel at a time through it and
  **measures** the path counts. Rejected: IGCV1's one interleaving reused at every step (right only when
  all branches are equal), no permutation, a list that is not a permutation; refused:
  ``igc.interleave``, ``igc.shuffle``, ``igc.permutation``, ``igc.IGCV2``, ``igc.IGCV1``.
- **cheapest_igc** (*derive*, by search): the (L, M) with L·M = G exactly whose IGCV1 block has the
  fewest parameters — §4's real-valued optimum L = M·k² is rarely a divisor of G. The checker counts
  the learner's block on real ``nn.Conv2d`` layers and compares with a brute force over the divisors of
  G. Rejected: L = M, the divisor nearest to √G (forgets k²), an (L, M) whose product is not G;
  refused: ``igc.igcv1_params``, ``igc.widest_igcv1``, ``igc.max_igcv1_width``, ``igc.equal_param_width``,
  ``igc.IGCV1``.
- **chain_verdict** (*decide*): "strict", "loose" or "disconnected" for a chain of channel operations,
  from the path-count matrix the learner multiplies together (``igc.adjacency`` gives each factor).
  The checker knows the verdict of each of eleven chains (IGCV1, IGCV2, IGCV3-like, Xception, a wrong
  shuffle, …), worked out by hand. Rejected: "connected" taken as "strict", the product multiplied in
  the wrong order; refused: ``igc.classify``, ``igc.connectivity``, ``igc.super_channel_connectivity``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from .. import igc
from ..checks import ExerciseError, checker, expect_equal, expect_true

__all__ = ["CHAIN_CASES", "check_chain_permutations", "CHEAPEST_CASES", "check_cheapest_igc", "check_chain_verdict"]


def _path_counts(C: int, branches, perms) -> torch.Tensor:
    """paths[input, output] through real 1×1 group convs with all-ones weights and ``perms`` between them."""
    x = torch.eye(C).reshape(C, C, 1, 1)  # image i: only input channel i is 1
    with torch.no_grad():
        for i, K in enumerate(branches):
            conv = nn.Conv2d(C, C, 1, groups=C // K, bias=False)  # C/K groups of K channels
            nn.init.ones_(conv.weight)
            x = conv(x)
            if i < len(perms):
                x = x[:, perms[i]]
    return x.reshape(C, C).round().long()


CHAIN_CASES = (
    (12, (3, 4)),
    (8, (2, 2, 2)),
    (24, (2, 3, 4)),
    (24, (4, 3, 2)),
    (30, (5, 3, 2)),
    (24, (1, 4, 6)),
    (27, (3, 3, 3)),
)


@checker(
    "the permutations of a complementary chain",
    answers={
        "igc.interleave": igc.interleave,
        "igc.shuffle": igc.shuffle,
        "igc.permutation": igc.permutation,
        "igc.IGCV2": igc.IGCV2,
        "igc.IGCV1": igc.IGCV1,
    },
)
def check_chain_permutations(fn: Callable) -> None:
    """``fn(C, branches) -> [perm_1, …, perm_{n−1}]``: between group conv i (C/K_i groups of K_i channels)
    and conv i+1, ``x[:, perm_i]``; the chain must have exactly one path from every input to every output."""
    for C, branches in CHAIN_CASES:
        perms = fn(C, tuple(branches))
        expect_true(
            isinstance(perms, (list, tuple)) and len(perms) == len(branches) - 1,
            f"for branches {branches} return a list of {len(branches) - 1} permutations, got {perms!r}",
        )
        perms = [torch.as_tensor(p).long().reshape(-1) for p in perms]
        for p in perms:
            expect_true(
                sorted(p.tolist()) == list(range(C)),
                f"a permutation of C={C} channels must hold each index 0…{C - 1} once, got {p.tolist()}",
            )
        paths = _path_counts(C, branches, perms)
        if not bool((paths == 1).all()):
            none, many = int((paths == 0).sum()), int((paths > 1).sum())
            raise ExerciseError(
                f"C={C}, branches {branches}: with your permutations {none} (input, output) channel "
                f"pairs have no path and {many} more than one; write a channel in mixed radix, one "
                "digit per conv, and before each conv bring *its* digit to the fastest-varying place"
            )


def _igcv1_params(L: int, M: int, k: int) -> int:
    primary = nn.Conv2d(L * M, L * M, k, groups=L, bias=False)
    secondary = nn.Conv2d(L * M, L * M, 1, groups=M, bias=False)
    return primary.weight.numel() + secondary.weight.numel()


CHEAPEST_CASES = ((36, 3), (64, 3), (96, 3), (100, 3), (120, 5), (48, 1), (128, 3), (210, 3))


@checker(
    "the cheapest IGCV1 block of a given width",
    answers={
        "igc.igcv1_params": igc.igcv1_params,
        "igc.widest_igcv1": igc.widest_igcv1,
        "igc.max_igcv1_width": igc.max_igcv1_width,
        "igc.equal_param_width": igc.equal_param_width,
        "igc.IGCV1": igc.IGCV1,
    },
)
def check_cheapest_igc(fn: Callable) -> None:
    """``fn(G, k) -> (L, M)`` with L·M = G and the fewest IGCV1 parameters (counted on real nn.Conv2d layers)."""
    for G, k in CHEAPEST_CASES:
        got = fn(G, k)
        expect_true(
            isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(v, int) and v >= 1 for v in got),
            f"return a pair of positive ints (L, M), got {got!r}",
        )
        L, M = got
        expect_true(L * M == G, f"width {G}: L·M must be {G}, your (L, M) = ({L}, {M}) gives {L * M}")
        params = {d: _igcv1_params(d, G // d, k) for d in range(1, G + 1) if G % d == 0}
        best = min(params.values())
        if params[L] > best:
            bL = min(d for d, p in params.items() if p == best)
            raise ExerciseError(
                f"width {G}, k={k}: (L, M) = ({L}, {M}) costs {params[L]:,} parameters, "
                f"({bL}, {G // bL}) only {best:,}: L = M·k² is the real-valued optimum, but L must "
                "divide G — compare the divisors"
            )


def _chains():
    g, sh, dw, dn = igc.group_conv, igc.shuffle, igc.depthwise, igc.dense
    return [
        ([g(12, 3, kernel_size=3), sh(12, 3), g(12, 4)], "strict"),  # IGCV1, L = 3, M = 4
        ([g(12, 3, kernel_size=3), g(12, 4)], "disconnected"),  # no permutation
        ([g(8, 2), g(8, 2)], "disconnected"),
        ([g(8, 2), sh(8, 2), g(8, 2)], "loose"),
        ([dw(6), dn(6)], "strict"),  # Xception
        ([dn(4, 8), dw(8)], "strict"),
        ([dn(4), dn(4)], "loose"),
        ([g(16, 4, 32), sh(32, 4), dw(32), g(32, 4, 16)], "loose"),  # IGCV3-like
        ([g(6, 2), sh(6, 3), g(6, 2)], "loose"),
        ([g(27, 9), sh(27, 3), g(27, 9), sh(27, 3), g(27, 9)], "strict"),  # IGCV2, three groups of 3
        ([g(27, 9), sh(27, 9), g(27, 9), sh(27, 3), g(27, 9)], "disconnected"),
    ]


@checker(
    "is this chain complementary?",
    answers={
        "igc.classify": igc.classify,
        "igc.connectivity": igc.connectivity,
        "igc.super_channel_connectivity": igc.super_channel_connectivity,
    },
)
def check_chain_verdict(fn: Callable) -> None:
    """``fn(ops)`` must return "strict", "loose" or "disconnected" for each chain of ChannelOps."""
    for ops, verdict in _chains():
        got = fn(ops)
        expect_true(got in igc.VERDICTS, f"answers must be one of {igc.VERDICTS}, your code gave {got!r}")
        expect_equal(got, verdict, f"verdict for [{', '.join(op.describe() for op in ops)}]")
