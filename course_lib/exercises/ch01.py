"""Chapter 01's exercises: convolution as a matrix product.

- **separable_ratio** (*derive*): MACs(depthwise k×k + pointwise 1×1) / MACs(regular k×k conv) as a
  function of ``c_in``, ``c_out`` and ``k`` — the notebook shows the per-layer MAC count and one
  measured ratio, not the formula. The checker builds both as real ``nn.Conv2d`` layers (``c_in ≠ c_out``
  among them) and counts with ``measure.count_macs``. Rejected: ``1/c_in + 1/k²`` (N taken as the
  input channels) and the inverted ratio; refused: ``smallnets.separable_cost_ratio``, ``conv.conv_cost``.
- **conv2d_as_matmul** (*build it and measure it*): a convolution with stride and padding written as
  your own im2col (slices of the padded image) and one matrix product. The checker measures it against
  ``torch.nn.functional.conv2d`` on six geometries (stride 1, 2, 3, padding 0–2, rectangular images,
  1×1 and 5×5 kernels). Rejected: the padding or the stride forgotten, columns in another order than
  the kernel's rows; refused: ``conv.im2col``, ``conv.conv2d_as_matmul``, ``conv.naive_conv2d`` and
  PyTorch's ``F.conv2d`` / ``F.unfold`` / ``nn.Conv2d`` (which would do the exercise for you).
- **coverage** (*derive*): how many k×k windows of a conv with a stride and padding read each input
  pixel — how many copies im2col makes of it (§2 drew it for stride 1, no padding). The checker
  compares with PyTorch's ``F.fold(F.unfold(ones))``. Rejected: the stride ignored, the padding ignored
  (windows start at pixel 0); refused: ``conv.im2col``, ``conv.col2im``, ``conv.im2col_state`` and
  PyTorch's ``F.unfold`` / ``F.fold``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import conv, measure, smallnets
from ..checks import ExerciseError, checker, expect_close, expect_equal, expect_true, library_calls

__all__ = ["check_separable_ratio", "check_conv2d_as_matmul", "check_coverage"]


@checker(
    "depthwise separable cost ratio",
    answers={
        "smallnets.separable_cost_ratio": smallnets.separable_cost_ratio,
        "conv.conv_cost": conv.conv_cost,
        "conv.mobilenet_table": conv.mobilenet_table,
    },
)
def check_separable_ratio(fn: Callable) -> None:
    """``fn(c_in, c_out, k)`` must give MACs(depthwise k×k + pointwise 1×1) / MACs(regular k×k conv),
    compared with ``measure.count_macs`` on real layers (same output size, 'same' padding)."""
    for c_in, c_out, k in ((512, 512, 3), (32, 64, 3), (64, 16, 5), (8, 8, 1), (3, 96, 7), (100, 10, 3)):
        shape = (c_in, 14, 14)
        regular = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        separable = nn.Sequential(
            nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False), nn.Conv2d(c_in, c_out, 1, bias=False)
        )
        expected = measure.count_macs(separable, shape) / measure.count_macs(regular, shape)
        got = fn(c_in, c_out, k)
        expect_true(
            isinstance(got, (int, float)) and not isinstance(got, bool),
            f"return a number (the ratio), got {type(got).__name__}",
        )
        expect_close(
            got,
            expected,
            f"MACs ratio separable / regular for {c_in} → {c_out} channels, {k}×{k}",
            rtol=1e-9,
            atol=1e-12,
        )


_TORCH_CONV = {"F.conv2d": F.conv2d, "F.unfold": F.unfold, "nn.Conv2d": nn.Conv2d}


@checker(
    "convolution as im2col + one matrix product",
    answers={
        "conv.im2col": conv.im2col,
        "conv.conv2d_as_matmul": conv.conv2d_as_matmul,
        "conv.naive_conv2d": conv.naive_conv2d,
    },
)
def check_conv2d_as_matmul(fn: Callable) -> None:
    """``fn(x, weight, stride, padding)`` for x (C, H, W) and weight (C_out, C, k, k) must return the
    (C_out, H_out, W_out) output of the convolution, measured against ``F.conv2d``."""
    used = library_calls(getattr(fn, "__wrapped__", fn), _TORCH_CONV)
    if used:
        raise ExerciseError(
            f"your function uses PyTorch's {', '.join(used)}, which does the convolution for you: "
            "cut the windows into columns yourself and multiply once"
        )
    g = torch.Generator().manual_seed(1)
    for (c, h, w), (c_out, k), stride, padding in (
        ((2, 5, 5), (3, 3), 1, 0),
        ((3, 7, 6), (4, 3), 2, 1),
        ((2, 9, 8), (2, 3), 3, 2),
        ((4, 6, 6), (5, 1), 1, 0),
        ((1, 8, 7), (2, 5), 2, 2),
        ((3, 6, 9), (2, 2), 2, 0),
    ):
        x = torch.randn(c, h, w, generator=g)
        weight = torch.randn(c_out, c, k, k, generator=g)
        expected = F.conv2d(x[None], weight, stride=stride, padding=padding)[0]
        got = fn(x.clone(), weight.clone(), stride, padding)
        what = f"conv2d_as_matmul(x of shape {(c, h, w)}, {k}×{k} kernels, stride={stride}, padding={padding})"
        expect_true(isinstance(got, torch.Tensor), f"{what} must return a tensor, got {type(got).__name__}")
        expect_equal(tuple(got.shape), tuple(expected.shape), f"shape of {what}")
        expect_close(
            got,
            expected,
            f"{what} (compared with F.conv2d; a column's order must match a kernel "
            "row's: channel, then kernel row, then kernel column)",
            rtol=1e-4,
            atol=1e-4,
        )


_COVERAGE_CASES = (
    (5, 5, 3, 1, 0),
    (7, 7, 3, 2, 1),
    (8, 6, 2, 2, 0),
    (9, 9, 1, 2, 0),
    (10, 7, 5, 3, 2),
    (6, 6, 4, 3, 1),
    (12, 12, 7, 2, 3),
)


@checker(
    "how many windows read each pixel",
    answers={"conv.im2col": conv.im2col, "conv.col2im": conv.col2im, "conv.im2col_state": conv.im2col_state},
)
def check_coverage(fn: Callable) -> None:
    """``fn(h, w, k, stride, padding)`` must return the (h, w) counts of k×k windows that read each input
    pixel — compared with PyTorch's ``F.fold(F.unfold(ones))``."""
    used = library_calls(getattr(fn, "__wrapped__", fn), {**_TORCH_CONV, "F.fold": F.fold})
    if used:
        raise ExerciseError(
            f"your function uses PyTorch's {', '.join(used)}, which counts the windows for you: "
            "work out where the windows sit"
        )
    for h, w, k, stride, padding in _COVERAGE_CASES:
        ones = torch.ones(1, 1, h, w)
        expected = (
            F.fold(F.unfold(ones, k, stride=stride, padding=padding), (h, w), k, stride=stride, padding=padding)[0, 0]
            .round()
            .long()
        )
        got = fn(h, w, k, stride, padding)
        what = f"coverage({h}, {w}, k={k}, stride={stride}, padding={padding})"
        expect_true(
            torch.is_tensor(got) and tuple(got.shape) == (h, w),
            f"{what} must return an ({h}, {w}) tensor, got "
            + (f"shape {tuple(got.shape)}" if torch.is_tensor(got) else type(got).__name__),
        )
        wrong = (got.round().long() != expected).nonzero()
        if len(wrong):
            i, j = wrong[0].tolist()
            raise ExerciseError(
                f"{what}: pixel ({i}, {j}) is read by {int(expected[i, j])} windows, your code says "
                f"{got[i, j].item():g} (the windows start at −padding and move by the stride)"
            )
