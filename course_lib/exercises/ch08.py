"""Chapter 08's exercises: DenseNet and its memory.

1. **The width at the classifier** (derive): ``fn(block_config, growth_rate, compression)`` → the
   channels a DenseNet-BC (CIFAR stem of ``2k`` channels, transitions ``⌊θ·m⌋`` between blocks, none
   after the last) hands to its classifier. Compared with real ``densenet.DenseNet`` networks;
   rejects rounding instead of the floor and a transition after the last block.
2. **Parameters of a DenseNet-B block** (derive): ``fn(L, k0, k)`` → the parameters of ``L`` layers
   BN → ReLU → 1×1 (→ 4k) → BN → ReLU → 3×3 (→ k), BN included. Compared with real blocks.
3. **The largest batch that fits** (predict, then the checker measures): ``fn(L, k0, k, h, w,
   budget_bytes, efficient)`` → the largest batch whose training step saves at most
   ``budget_bytes`` for backward, for the naive and for the memory-efficient block. The checker
   *measures* saved bytes of real blocks (``measure.activation_bytes``) and accepts an answer that
   fits within 2 % and whose next batch would not; the naive formula used for the efficient block,
   or the per-image bytes without the batch, are rejected.

The library's own versions (``densenet.block_params``, the saved-bytes formulas, ``DenseNet``,
``DenseBlock``, ``deepest_within_budget``…) are refused inside a submission.
"""

from typing import Callable

import torch

from .. import densenet, measure
from ..checks import checker, expect_equal, expect_true

__all__ = ["check_classifier_width", "check_block_params", "check_largest_batch"]


@checker("width at the classifier", answers={
    "densenet.DenseNet": densenet.DenseNet, "densenet.densenet_cifar": densenet.densenet_cifar,
    "densenet.DenseBlock": densenet.DenseBlock, "densenet.transition_channels": densenet.transition_channels,
    "densenet.layer_input_channels": densenet.layer_input_channels})
def check_classifier_width(fn: Callable) -> None:
    """``fn(block_config, growth_rate, compression)`` → ``DenseNet(...).num_features`` (stem 2k)."""
    for config, k, theta in (((16, 16, 16), 12, 0.5), ((6, 12, 24, 16), 32, 0.5), ((3, 3), 5, 0.5),
                             ((4, 5, 7), 7, 0.3), ((3, 4), 5, 0.7), ((2,), 4, 0.5), ((5, 5, 5), 3, 1.0)):
        net = densenet.DenseNet(k, config, num_init_features=2 * k, compression=theta, num_classes=10,
                                in_channels=1, stem="cifar")
        expect_equal(fn(tuple(config), k, theta), net.num_features,
                     f"the classifier's input width for blocks {config}, k={k}, θ={theta}")


@checker("parameters of a DenseNet-B block", answers={
    "densenet.block_params": densenet.block_params, "densenet.dense_layer_params": densenet.dense_layer_params,
    "densenet.DenseBlock": densenet.DenseBlock, "densenet.DenseLayer": densenet.DenseLayer})
def check_block_params(fn: Callable) -> None:
    """``fn(L, k0, k)`` → the parameters of a DenseNet-B block (bottleneck 4k), BN included."""
    for L, k0, k in ((1, 8, 4), (4, 24, 12), (16, 24, 12), (6, 64, 32), (3, 5, 2)):
        block = densenet.DenseBlock(L, k0, k, bn_size=4)
        expect_equal(fn(L, k0, k), sum(p.numel() for p in block.parameters()),
                     f"block params(L={L}, k0={k0}, k={k})")


def _measured_bytes(L: int, k0: int, k: int, h: int, w: int, efficient: bool):
    """Saved bytes of a real block as a function of the batch: measured at batches 1 and 2 (the
    cost is affine in the batch: maps grow with it, BN's per-channel statistics do not)."""
    one, two = (densenet.block_saved_bytes(L, k0, k, 4, efficient, n, h, w) for n in (1, 2))
    return lambda n: one + (two - one) * (n - 1)


@checker("largest batch within a memory budget", answers={
    "densenet.naive_block_saved_bytes": densenet.naive_block_saved_bytes,
    "densenet.efficient_block_saved_bytes": densenet.efficient_block_saved_bytes,
    "densenet.block_saved_bytes": densenet.block_saved_bytes,
    "densenet.deepest_within_budget": densenet.deepest_within_budget,
    "measure.activation_bytes": measure.activation_bytes, "densenet.DenseBlock": densenet.DenseBlock})
def check_largest_batch(fn: Callable) -> None:
    """``fn(L, k0, k, h, w, budget_bytes, efficient)`` → the largest batch whose measured saved bytes fit."""
    for L, k0, k, h, w, budget in ((12, 16, 8, 8, 8, 4 << 20), (24, 16, 12, 8, 8, 32 << 20), (6, 24, 12, 12, 12, 8 << 20),
                                   (40, 8, 4, 6, 6, 16 << 20)):
        for efficient in (False, True):
            saved = _measured_bytes(L, k0, k, h, w, efficient)
            got = fn(L, k0, k, h, w, budget, efficient)
            expect_true(isinstance(got, int) or (torch.is_tensor(got) and got.numel() == 1),
                        f"return a whole number of images, got {type(got).__name__}")
            got = int(got)
            kind = "efficient" if efficient else "naive"
            what = f"the largest batch for the {kind} block (L={L}, k0={k0}, k={k}, {h}×{w}) within {budget:,} B"
            expect_true(got >= 1 and saved(got) <= 1.02 * budget,
                        f"{what}: at batch {got} it saves {saved(got):,} B (measured), more than the budget")
            expect_true(saved(got + 1) > 0.98 * budget,
                        f"{what}: batch {got + 1} still fits ({saved(got + 1):,} B measured): aim higher")
