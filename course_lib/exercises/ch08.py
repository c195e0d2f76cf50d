"""Chapter 08's exercises: DenseNet and its memory.

1. **The width at the classifier** (derive): ``fn(block_config, growth_rate, compression)`` → the
   channels a DenseNet-BC (CIFAR stem of ``2k`` channels, transitions ``⌊θ·m⌋`` between blocks, none
   after the last) hands to its classifier. Compared with real ``densenet.DenseNet`` networks;
   rejects rounding instead of the floor and a transition after the last block.
2. **Parameters of a DenseNet-B block** (derive): ``fn(L, k0, k)`` → the parameters of ``L`` layers
   BN → ReLU → 1×1 (→ 4k) → BN → ReLU → 3×3 (→ k), BN included. Compared with real blocks.
3. **One buffer for the whole block** (build and measure): ``fn(x, layers)`` runs a dense block's
   forward pass writing every feature map once into one pre-allocated buffer (Pleiss et al.'s shared
   storage), each layer reading a *view* of the channels before it. Compared with the naive
   ``torch.cat`` block; the checker *measures* with a dispatch mode the elements the forward pass
   copies (``aten.copy_`` / ``aten.cat``): at most the block's output once, where concatenating at
   every layer copies ``Σ c_l`` channels (quadratic in L) — and rejects a buffer re-allocated per layer.
4. **The largest batch that fits** (predict, then the checker measures): ``fn(L, k0, k, h, w,
   budget_bytes, efficient)`` → the largest batch whose training step saves at most
   ``budget_bytes`` for backward, for the naive and for the memory-efficient block. The checker
   *measures* saved bytes of real blocks (``measure.activation_bytes``) and accepts an answer that
   fits within 2 % and whose next batch would not; the naive formula used for the efficient block,
   or the per-image bytes without the batch, are rejected.

The library's own versions (``densenet.block_params``, the saved-bytes formulas, ``DenseNet``,
``DenseBlock``, ``deepest_within_budget``…) are refused inside a submission.
"""

from collections.abc import Callable

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from .. import densenet, measure
from ..checks import checker, expect_close, expect_equal, expect_true

__all__ = ["check_classifier_width", "check_block_params", "check_shared_storage", "check_largest_batch"]


@checker(
    "width at the classifier",
    answers={
        "densenet.DenseNet": densenet.DenseNet,
        "densenet.densenet_cifar": densenet.densenet_cifar,
        "densenet.DenseBlock": densenet.DenseBlock,
        "densenet.transition_channels": densenet.transition_channels,
        "densenet.layer_input_channels": densenet.layer_input_channels,
    },
)
def check_classifier_width(fn: Callable) -> None:
    """``fn(block_config, growth_rate, compression)`` → ``DenseNet(...).num_features`` (stem 2k)."""
    for config, k, theta in (
        ((16, 16, 16), 12, 0.5),
        ((6, 12, 24, 16), 32, 0.5),
        ((3, 3), 5, 0.5),
        ((4, 5, 7), 7, 0.3),
        ((3, 4), 5, 0.7),
        ((2,), 4, 0.5),
        ((5, 5, 5), 3, 1.0),
    ):
        net = densenet.DenseNet(
            k, config, num_init_features=2 * k, compression=theta, num_classes=10, in_channels=1, stem="cifar"
        )
        expect_equal(
            fn(tuple(config), k, theta),
            net.num_features,
            f"the classifier's input width for blocks {config}, k={k}, θ={theta}",
        )


@checker(
    "parameters of a DenseNet-B block",
    answers={
        "densenet.block_params": densenet.block_params,
        "densenet.dense_layer_params": densenet.dense_layer_params,
        "densenet.DenseBlock": densenet.DenseBlock,
        "densenet.DenseLayer": densenet.DenseLayer,
    },
)
def check_block_params(fn: Callable) -> None:
    """``fn(L, k0, k)`` → the parameters of a DenseNet-B block (bottleneck 4k), BN included."""
    for L, k0, k in ((1, 8, 4), (4, 24, 12), (16, 24, 12), (6, 64, 32), (3, 5, 2)):
        block = densenet.DenseBlock(L, k0, k, bn_size=4)
        expect_equal(fn(L, k0, k), sum(p.numel() for p in block.parameters()), f"block params(L={L}, k0={k0}, k={k})")


def _plain_layers(k0: int, k: int, L: int, seed: int) -> list[nn.Sequential]:
    """Dense layers as plain modules: BN → ReLU → 1×1 (4k) → BN → ReLU → 3×3 (k), eval mode."""
    torch.manual_seed(seed)
    layers = []
    for i in range(L):
        c = k0 + i * k
        layer = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, 4 * k, 1, bias=False),
            nn.BatchNorm2d(4 * k),
            nn.ReLU(),
            nn.Conv2d(4 * k, k, 3, padding=1, bias=False),
        )
        for m in layer:
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None  # BatchNorm2d tracks them
                nn.init.uniform_(m.running_mean, -0.5, 0.5)
                nn.init.uniform_(m.running_var, 0.5, 2.0)
        layers.append(layer.eval())
    return layers


class _CopyCounter(TorchDispatchMode):
    """Counts the elements written by copies and concatenations while it is active."""

    def __init__(self):
        super().__init__()
        self.copied, self.cats = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.copy_.default:
            self.copied += args[0].numel()
        elif func is torch.ops.aten.cat.default:
            self.cats += 1
            self.copied += out.numel()
        return out


@checker(
    "one buffer for the whole block",
    answers={"densenet.DenseBlock": densenet.DenseBlock, "densenet.DenseLayer": densenet.DenseLayer},
)
def check_shared_storage(fn: Callable) -> None:
    """``fn(x, layers)`` → the block's output (input + every layer's k new channels), written once
    into one buffer; measured: elements copied ≤ the output's, never more than one allocation of it."""
    for n, k0, k, L, size in ((2, 8, 4, 5, 6), (1, 16, 12, 8, 5), (3, 3, 2, 12, 4)):
        layers = _plain_layers(k0, k, L, seed=L)
        x = torch.randn(n, k0, size, size, generator=torch.Generator().manual_seed(L))
        with torch.no_grad():
            features = [x]
            for layer in layers:
                features.append(layer(torch.cat(features, 1)))
            expected = torch.cat(features, 1)
            counter = _CopyCounter()
            with counter:
                got = fn(x.clone(), layers)
        expect_true(torch.is_tensor(got), f"return the block's output tensor, got {type(got).__name__}")
        expect_equal(tuple(got.shape), tuple(expected.shape), f"shape of the output of {L} layers (k0={k0}, k={k})")
        expect_close(got, expected, f"the block's output (L={L}, k0={k0}, k={k})", atol=1e-5)
        once = expected.numel()
        expect_true(
            counter.copied <= once,
            f"the forward pass copied {counter.copied:,} elements ({counter.cats} concatenations); one "
            f"buffer written once copies at most {once:,} (L={L}, k0={k0}, k={k}): let each layer read a "
            "view of the buffer and write its k channels into their slice",
        )


def _measured_bytes(L: int, k0: int, k: int, h: int, w: int, efficient: bool):
    """Saved bytes of a real block as a function of the batch: measured at batches 1 and 2 (the
    cost is affine in the batch: maps grow with it, BN's per-channel statistics do not)."""
    one, two = (densenet.block_saved_bytes(L, k0, k, 4, efficient, n, h, w) for n in (1, 2))
    return lambda n: one + (two - one) * (n - 1)


@checker(
    "largest batch within a memory budget",
    answers={
        "densenet.naive_block_saved_bytes": densenet.naive_block_saved_bytes,
        "densenet.efficient_block_saved_bytes": densenet.efficient_block_saved_bytes,
        "densenet.block_saved_bytes": densenet.block_saved_bytes,
        "densenet.deepest_within_budget": densenet.deepest_within_budget,
        "measure.activation_bytes": measure.activation_bytes,
        "densenet.DenseBlock": densenet.DenseBlock,
    },
)
def check_largest_batch(fn: Callable) -> None:
    """``fn(L, k0, k, h, w, budget_bytes, efficient)`` → the largest batch whose measured saved bytes fit."""
    for L, k0, k, h, w, budget in (
        (12, 16, 8, 8, 8, 4 << 20),
        (24, 16, 12, 8, 8, 32 << 20),
        (6, 24, 12, 12, 12, 8 << 20),
        (40, 8, 4, 6, 6, 16 << 20),
    ):
        for efficient in (False, True):
            saved = _measured_bytes(L, k0, k, h, w, efficient)
            got = fn(L, k0, k, h, w, budget, efficient)
            expect_true(
                isinstance(got, int) or (torch.is_tensor(got) and got.numel() == 1),
                f"return a whole number of images, got {type(got).__name__}",
            )
            got = int(got)
            kind = "efficient" if efficient else "naive"
            what = f"the largest batch for the {kind} block (L={L}, k0={k0}, k={k}, {h}×{w}) within {budget:,} B"
            expect_true(
                got >= 1 and saved(got) <= 1.02 * budget,
                f"{what}: at batch {got} it saves {saved(got):,} B (measured), more than the budget",
            )
            expect_true(
                saved(got + 1) > 0.98 * budget,
                f"{what}: batch {got + 1} still fits ({saved(got + 1):,} B measured): aim higher",
            )
