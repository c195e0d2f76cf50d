"""Chapter 04's exercises: sparsity and pruning.

- **obd_linear** (*derive*): the Optimal Brain Damage saliency of every weight of a linear layer under
  the squared error — the learner works out the Hessian diagonal on paper (it needs neither W nor the
  targets). The checker computes the exact diagonal with autograd (double backward, one weight at a
  time). Rejected: the saliency without the ½, a sum instead of the mean over examples, (mean x)²
  instead of mean x²; refused: ``prune.hessian_diagonal``, ``prune.obd_saliency``.
- **global_magnitude_masks** (*build it and measure it*): one magnitude threshold for all layers of a
  network (instead of one sparsity per layer). The checker applies the masks to a small MLP whose layers
  have different weight scales, measures each layer's sparsity and the total, and compares with a
  brute-force sort of every |w| of the network. Rejected: the same sparsity in every layer, a threshold
  on w instead of |w|; refused: ``prune.magnitude_mask``, ``prune.lowest_mask``, ``prune.prune_by_scores``,
  ``prune.magnitude_prune``.
- **csr_max_nonzeros** (*derive*, then measured): the most non-zeros an m×n matrix may have for CSR to
  take no more bytes than dense, for given value and index dtypes. The checker builds real
  ``torch.sparse_csr_tensor`` buffers of those dtypes and searches the largest count whose bytes do not
  exceed the dense tensor's. Rejected: "half the entries" (true only when an index is as wide as a value,
  and even then off by the row pointers), the row pointers forgotten; refused: ``prune.storage_bytes``,
  ``prune.to_csr``, ``prune.model_storage``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn as nn

from .. import prune
from ..checks import checker, expect_close, expect_equal, expect_true

__all__ = ["check_obd_linear", "check_global_magnitude_masks", "check_csr_max_nonzeros"]


@checker(
    "OBD saliency of a linear layer",
    answers={"prune.hessian_diagonal": prune.hessian_diagonal, "prune.obd_saliency": prune.obd_saliency},
)
def check_obd_linear(fn: Callable) -> None:
    """``fn(x, weight) -> saliency`` (shape of ``weight``) for E = ½·mean_n ‖x_n Wᵀ + b − t_n‖²,
    compared with the exact Hessian diagonal from autograd (double backward)."""
    g = torch.Generator().manual_seed(6)
    for n, d_in, d_out in ((16, 3, 2), (40, 7, 5), (1, 4, 3)):
        x = torch.randn(n, d_in, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, d_in, dtype=torch.float64)
        x = x + 0.5  # a mean ≠ 0, so mean x² ≠ (mean x)²
        layer = nn.Linear(d_in, d_out).double()
        targets = torch.randn(n, d_out, generator=g, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(d_out, d_in, generator=g, dtype=torch.float64))
        loss = 0.5 * (layer(x) - targets).pow(2).sum(1).mean()
        (grad,) = torch.autograd.grad(loss, layer.weight, create_graph=True)
        grad = grad.flatten()
        h = torch.stack(
            [torch.autograd.grad(grad[k], layer.weight, retain_graph=True)[0].flatten()[k] for k in range(grad.numel())]
        ).view_as(layer.weight)
        expected = h.detach() * layer.weight.detach() ** 2 / 2
        got = fn(x.clone(), layer.weight.detach().clone())
        expect_true(torch.is_tensor(got), f"return a tensor, got {type(got).__name__}")
        expect_close(
            got,
            expected,
            f"saliencies of a {d_out}×{d_in} layer on {n} examples (h from autograd)",
            rtol=1e-6,
            atol=1e-9,
        )


def _mlp_weights(seed: int) -> dict[str, torch.Tensor]:
    """Three layers with different weight scales (as a trained network's first and last layers differ)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "fc1": torch.randn(30, 20, generator=g) * 0.1,
        "fc2": torch.randn(20, 30, generator=g) * 0.3,
        "fc3": torch.randn(5, 20, generator=g),
    }


@checker(
    "one magnitude threshold for the whole network",
    answers={
        "prune.magnitude_mask": prune.magnitude_mask,
        "prune.lowest_mask": prune.lowest_mask,
        "prune.prune_by_scores": prune.prune_by_scores,
        "prune.magnitude_prune": prune.magnitude_prune,
    },
)
def check_global_magnitude_masks(fn: Callable) -> None:
    """``fn({name: weight}, sparsity) -> {name: bool mask}`` dropping the ``round(sparsity · N)`` weights of
    smallest |w| among all N weights of the network; measured layer by layer on a small MLP."""
    for seed, sparsity in ((0, 0.5), (1, 0.8), (2, 0.0), (3, 0.95)):
        weights = _mlp_weights(seed)
        masks = fn({k: w.clone() for k, w in weights.items()}, sparsity)
        expect_true(
            isinstance(masks, dict) and sorted(masks) == sorted(weights),
            f"return a dict with a mask for each layer {sorted(weights)}",
        )
        for name, w in weights.items():
            m = masks[name]
            expect_true(
                torch.is_tensor(m) and m.dtype == torch.bool and m.shape == w.shape,
                f"the mask of {name} must be a bool tensor of shape {tuple(w.shape)}",
            )
        everything = torch.cat([w.abs().flatten() for w in weights.values()])
        n_drop = round(sparsity * everything.numel())
        threshold = everything.sort().values[n_drop - 1].item() if n_drop else -1.0
        measured = {name: 1 - masks[name].float().mean().item() for name in weights}
        expected = {name: (w.abs() <= threshold).float().mean().item() for name, w in weights.items()}
        shown = ", ".join(f"{name} {100 * s:.0f}%" for name, s in measured.items())
        wanted = ", ".join(f"{name} {100 * s:.0f}%" for name, s in expected.items())
        for name, w in weights.items():
            expect_true(
                torch.equal(masks[name], w.abs() > threshold),
                f"at network sparsity {sparsity} your masks prune {shown}; one threshold on |w| over the "
                f"whole network prunes {wanted} (layers with small weights lose more)",
            )
        kept = sum(int(m.sum()) for m in masks.values())
        expect_equal(kept, everything.numel() - n_drop, f"weights kept at network sparsity {sparsity}")


_DTYPES = {torch.float32: 4, torch.float16: 2, torch.float64: 8}


def _csr_bytes(rows: int, cols: int, nnz: int, value_dtype: torch.dtype, index_dtype: torch.dtype) -> int:
    """Bytes of a real torch CSR tensor's three buffers with ``nnz`` non-zeros (first in row-major order)."""
    flat = torch.arange(nnz)
    counts = torch.bincount(flat // cols, minlength=rows)
    crow = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).to(index_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        t = torch.sparse_csr_tensor(
            crow, (flat % cols).to(index_dtype), torch.ones(nnz, dtype=value_dtype), (rows, cols)
        )
    return sum(b.numel() * b.element_size() for b in (t.crow_indices(), t.col_indices(), t.values()))


@checker(
    "when CSR is smaller than dense",
    answers={
        "prune.storage_bytes": prune.storage_bytes,
        "prune.to_csr": prune.to_csr,
        "prune.model_storage": prune.model_storage,
    },
)
def check_csr_max_nonzeros(fn: Callable) -> None:
    """``fn(rows, cols, value_dtype, index_dtype)`` = the largest number of non-zeros whose CSR buffers
    (row pointers, column indices, values) take no more bytes than the dense matrix, measured on real
    ``torch.sparse_csr_tensor`` buffers (0 if even an empty CSR matrix is larger)."""
    for rows, cols, value_dtype, index_dtype in (
        (20, 30, torch.float32, torch.int32),
        (20, 30, torch.float32, torch.int64),
        (64, 16, torch.float16, torch.int32),
        (3, 1, torch.float32, torch.int32),
        (50, 8, torch.float64, torch.int64),
    ):
        dense = rows * cols * torch.empty((), dtype=value_dtype).element_size()
        lo, hi = -1, rows * cols  # largest nnz with CSR bytes <= dense
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _csr_bytes(rows, cols, mid, value_dtype, index_dtype) <= dense:
                lo = mid
            else:
                hi = mid - 1
        expected = max(lo, 0)
        got = fn(rows, cols, value_dtype, index_dtype)
        expect_true(isinstance(got, int) and not isinstance(got, bool), f"return an int (a count), got {got!r}")
        expect_equal(
            got,
            expected,
            f"the most non-zeros for which CSR ({index_dtype} indices, {value_dtype} values) "
            f"of a {rows}×{cols} matrix is no larger than dense ({dense:,} B)",
        )
