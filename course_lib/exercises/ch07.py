"""Chapter 07's exercises: ResNet variants.

1. **The parameter-free shortcut** (build and measure): He et al.'s CIFAR ResNets use "option A" at
   a stride-2 unit — the input sampled at every other pixel, zero channels appended — where the
   course's networks use a 1×1 projection. ``fn(x, out_channels)`` is compared with a loop over the
   pixels; rejects average pooling and zeros put first. The notebook
   then measures what option A saves on ResNet-20 against He et al.'s 0.27M.
2. **The uniform survival with the same expected depth** (derive): ``fn(L, p_L)`` → the single
   survival probability ``p`` for all ``L`` units that keeps, on average, as many residual branches
   as the linear-decay rule. Compared with the brute-force sum over the units; rejects the
   large-``L`` limit ``(1 + p_L)/2``. ``resnets.expected_depth`` and ``survival_probabilities`` are refused.
3. **ResNeXt form (a) → form (c)** (build and measure): copy the weights of ``C`` separate paths into
   one grouped convolution; the checker measures that both blocks compute the same function (BN in
   eval mode with random statistics). ``resnets.convert_resnext`` is refused.
"""

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

from .. import resnets
from ..checks import checker, expect_close, expect_equal, expect_true

__all__ = ["check_zero_pad_shortcut", "check_uniform_survival", "check_resnext_to_grouped"]


def _zero_pad_by_loops(x: torch.Tensor, out_channels: int) -> torch.Tensor:
    """Option A, element by element: keep every other row and column, new channels are zeros."""
    n, c, h, w = x.shape
    out = torch.zeros(n, out_channels, (h + 1) // 2, (w + 1) // 2, dtype=x.dtype)
    for i in range(0, h, 2):
        for j in range(0, w, 2):
            out[:, :c, i // 2, j // 2] = x[:, :, i, j]
    return out


@checker("the parameter-free shortcut")
def check_zero_pad_shortcut(fn: Callable) -> None:
    """``fn(x, out_channels)`` → He et al.'s option-A shortcut of a stride-2 unit: ``x`` sampled at
    every other row and column, its ``C`` channels followed by ``out_channels − C`` zero channels."""
    g = torch.Generator().manual_seed(7)
    for n, c, out, h, w in ((2, 4, 8, 6, 6), (1, 16, 32, 8, 8), (3, 3, 5, 7, 5), (1, 8, 8, 4, 4)):
        x = torch.randn(n, c, h, w, generator=g)
        x.requires_grad_(True)
        got = fn(x, out)
        expect_true(torch.is_tensor(got), f"return a tensor, got {type(got).__name__}")
        expected = _zero_pad_by_loops(x.detach(), out)
        expect_true(
            tuple(got.shape) == tuple(expected.shape),
            f"for x of shape {tuple(x.shape)} and {out} output channels the shortcut has shape "
            f"{tuple(expected.shape)}, your code gave {tuple(got.shape)}",
        )
        expect_close(
            got.detach(),
            expected,
            f"shortcut of a {n}×{c}×{h}×{w} input to {out} channels "
            "(every other row and column, zeros after the old channels)",
        )
        expect_true(got.requires_grad, "the shortcut must pass the gradient to x (it is part of the network)")


@checker(
    "uniform survival with the same expected depth",
    answers={
        "resnets.expected_depth": resnets.expected_depth,
        "resnets.survival_probabilities": resnets.survival_probabilities,
    },
)
def check_uniform_survival(fn: Callable) -> None:
    """``fn(num_blocks, p_last)`` → the uniform ``p`` with ``L·p = Σ_l (1 − (l/L)(1 − p_L))``."""
    for L, p_last in ((4, 0.5), (1, 0.5), (54, 0.5), (9, 0.2), (18, 1.0), (3, 0.0)):
        brute = sum(1 - (unit / L) * (1 - p_last) for unit in range(1, L + 1)) / L
        got = fn(L, p_last)
        expect_true(
            isinstance(got, (int, float)) or (torch.is_tensor(got) and got.numel() == 1),
            f"return one probability, got {type(got).__name__}",
        )
        expect_close(float(got), brute, f"the uniform survival for L={L}, p_L={p_last}", atol=1e-9)


def _random_form_a(channels: int, cardinality: int, width: int, seed: int) -> resnets.ResNeXtBlock:
    torch.manual_seed(seed)
    block = resnets.ResNeXtBlock(channels, cardinality, width, form="a")
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                assert m.running_mean is not None and m.running_var is not None  # BatchNorm2d tracks them
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return block.eval()


@checker("ResNeXt form (a) → form (c)", answers={"resnets.convert_resnext": resnets.convert_resnext})
def check_resnext_to_grouped(fn: Callable) -> None:
    """``fn(block_a)`` → a form-(c) ``resnets.ResNeXtBlock`` computing the same function."""
    for channels, C, width, seed in ((8, 2, 4, 0), (12, 3, 6, 1), (16, 4, 16, 2)):
        a = _random_form_a(channels, C, width, seed)
        reference = copy.deepcopy(a)
        got = fn(a)
        expect_true(
            isinstance(got, resnets.ResNeXtBlock) and got.form == "c",
            f"return a ResNeXtBlock with form='c', got {type(got).__name__} {getattr(got, 'form', '')!r}",
        )
        expect_equal(got.conv.groups, C, f"groups of the 3×3 conv (cardinality {C})")
        x = torch.randn(2, channels, 5, 5, generator=torch.Generator().manual_seed(seed))
        got.eval()
        with torch.no_grad():
            expect_close(got(x), reference(x), f"output of the converted block (C={C}, width={width})", atol=1e-5)
