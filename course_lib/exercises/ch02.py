"""Chapter 02's exercises: low precision.

- **ttq_backward** (*derive*): TTQ's backward pass without autograd — ``(∂L/∂w̃, ∂L/∂Wp, ∂L/∂Wn)``
  from ∂L/∂w_t. The paper's printed ∂L/∂Wn leaves out the sign that w_t = −Wn implies; the learner
  finds it with the chain rule. The checker differentiates, with autograd, a ternary forward written
  here from PyTorch ops (the scales enter as ``Wp·[w̃ > Δ] − Wn·[w̃ < −Δ]``, the latent weights through
  a scaled straight-through term). Rejected: the paper's printed sign, an unscaled straight-through
  gradient, a threshold on mean|w̃|; refused: ``quant.ttq_ternarize`` and ``quant.TTQFunction``'s
  forward and backward.
- **codebook_linear** (*build it and measure it*): a shared-weight linear layer that adds the inputs of
  each cluster first and multiplies once per centroid: returns ``(y, sums)``. The checker measures
  ``y`` against ``x @ codebook[indices].T`` and ``sums`` against a brute-force loop over the weights.
  Rejected: ``y`` without the sums, sums taken over the first output row only; refused:
  ``quant.codebook_dot``.
- **codebook_bytes** (*derive*): the bytes of a layer shared at ``bits`` bits — indices packed into
  whole bytes plus a float32 codebook. The checker packs real index bits with NumPy's ``packbits`` and
  sizes a real float32 codebook. Rejected: a floor that drops the last partial byte, no codebook, bits
  instead of bytes; refused: ``surgery.pack_bits``, ``compressed_file.fixed_layer_bytes``,
  ``measure.model_bytes``.
- **bit allocation** (*decide*): bits per layer of LeNet-5 so that k-means sharing (no retraining)
  stays within 0.5 point of float and the real file is smaller than Deep Compression's 8-bit conv /
  5-bit fc allocation. The checker shares the weights at those widths, evaluates on the test images
  and measures the serialized bytes. Rejected: too few bits (accuracy), too many (bytes), a missing
  layer, a width outside 1–8.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn as nn

from .. import compressed_file, measure, quant, surgery
from ..checks import checker, expect_close, expect_equal, expect_true
from ..config import dry_run
from ..train import evaluate

__all__ = ["check_ttq_backward", "check_codebook_linear", "check_codebook_bytes", "check_bit_allocation"]


# --------------------------------------------------------------------------- TTQ backward


def _ttq_cases():
    g = torch.Generator().manual_seed(5)
    cases = [(torch.tensor([0.9, 0.03, -0.02, -0.6, 0.3]), 0.8, 0.5, 0.05)]
    cases.append((torch.randn(6, 4, generator=g), 1.3, 0.4, 0.05))
    cases.append((torch.randn(3, 2, 3, 3, generator=g) * 0.1, 0.05, 0.2, 0.3))
    return [(w, torch.tensor(p), torch.tensor(n), t, torch.randn(w.shape, generator=g)) for w, p, n, t in cases]


def _ttq_autograd(latent, wp, wn, t, grad):
    """Autograd through a ternary forward written from PyTorch ops (not the library's TTQFunction)."""
    lt, p, n = (v.clone().requires_grad_(True) for v in (latent, wp, wn))
    delta = t * latent.abs().max()
    pos, neg = (latent > delta).to(latent.dtype), (latent < -delta).to(latent.dtype)
    scale = pos * wp + neg * wn + (1 - pos - neg)  # Wp above Δ, Wn below −Δ, 1 between
    straight_through = lt * scale - (lt * scale).detach()  # 0 forward, scale·grad backward
    w_t = p * pos - n * neg + straight_through
    (w_t * grad).sum().backward()
    return lt.grad, p.grad, n.grad


@checker(
    "TTQ backward",
    answers={
        "quant.ttq_ternarize": quant.ttq_ternarize,  # (a Function's methods, not the
        "quant.TTQFunction.forward": quant.TTQFunction.forward,  # class: its vars loop back)
        "quant.TTQFunction.backward": quant.TTQFunction.backward,
    },
)
def check_ttq_backward(fn: Callable) -> None:
    """``fn(latent, wp, wn, t, grad) -> (grad_latent, grad_wp, grad_wn)``, compared with autograd through a
    ternary forward written from PyTorch ops (so with the sign that w_t = −Wn implies)."""
    for latent, wp, wn, t, grad in _ttq_cases():
        got = fn(latent.clone(), wp.clone(), wn.clone(), t, grad.clone())
        expect_true(isinstance(got, tuple) and len(got) == 3, "return three things: (grad_latent, grad_wp, grad_wn)")
        g_latent, g_wp, g_wn = _ttq_autograd(latent, wp, wn, t, grad)
        where = f"latent of shape {tuple(latent.shape)}, t = {t}"
        expect_close(torch.as_tensor(got[1]).reshape(()), g_wp, f"∂L/∂Wp ({where})", rtol=1e-4, atol=1e-5)
        expect_close(
            torch.as_tensor(got[2]).reshape(()),
            g_wn,
            f"∂L/∂Wn ({where}; mind the sign: w_t = −Wn)",
            rtol=1e-4,
            atol=1e-5,
        )
        expect_close(
            torch.as_tensor(got[0]),
            g_latent,
            f"∂L/∂w̃ ({where}; scaled by Wp above Δ, Wn below −Δ, 1 in between)",
            rtol=1e-4,
            atol=1e-5,
        )


# --------------------------------------------------------------------------- a shared-weight layer


def _cluster_sums(x, indices, k):
    """Brute force: sums[b, i, c] = Σ x[b, j] over the j where indices[i, j] = c, one weight at a time."""
    batch, (m, n) = x.shape[0], indices.shape
    sums = torch.zeros(batch, m, k, dtype=x.dtype)
    for i in range(m):
        for j in range(n):
            sums[:, i, int(indices[i, j])] += x[:, j]
    return sums


@checker("codebook layer", answers={"quant.codebook_dot": quant.codebook_dot})
def check_codebook_linear(fn: Callable) -> None:
    """``fn(x, codebook, indices) -> (y, sums)``: a shared-weight linear layer with 2**bits multiplies
    per output; ``sums[b, i, k]`` = Σ of x[b, j] over the j where indices[i, j] = k."""
    g = torch.Generator().manual_seed(7)
    for batch, m, n, k in ((1, 3, 8, 2), (4, 5, 12, 4), (2, 16, 40, 8)):
        x = torch.randn(batch, n, generator=g, dtype=torch.float64)
        codebook = torch.randn(k, generator=g, dtype=torch.float64).sort().values
        indices = torch.randint(0, k, (m, n), generator=g)
        got = fn(x.clone(), codebook.clone(), indices.clone())
        expect_true(isinstance(got, tuple) and len(got) == 2, "return two things: (y, sums)")
        y, sums = got
        expect_true(
            isinstance(sums, torch.Tensor) and isinstance(y, torch.Tensor),
            f"y and sums should be tensors, got {type(y).__name__} and {type(sums).__name__}",
        )
        ref_sums = _cluster_sums(x, indices, k)
        expect_close(
            sums,
            ref_sums,
            f"sums for x {tuple(x.shape)}, {m} outputs, {k} centroids (shape (N, m, K) = {tuple(ref_sums.shape)})",
        )
        expect_close(y, x @ codebook[indices].T, f"y for x {tuple(x.shape)}, {m} outputs")


# --------------------------------------------------------------------------- bytes of a shared layer


def _measured_codebook_bytes(n_weights: int, bits: int) -> int:
    """Pack real index bits with NumPy and size a real float32 codebook."""
    index_bits = np.zeros(n_weights * bits, dtype=bool)
    codebook = np.zeros(2**bits, dtype=np.float32)
    return np.packbits(index_bits).nbytes + codebook.nbytes


@checker(
    "codebook bytes",
    answers={
        "surgery.pack_bits": surgery.pack_bits,
        "measure.model_bytes": measure.model_bytes,
        "compressed_file.fixed_layer_bytes": compressed_file.fixed_layer_bytes,
    },
)
def check_codebook_bytes(fn: Callable) -> None:
    """``fn(n_weights, bits) -> bytes`` of packed indices + a float32 codebook."""
    for n, bits in ((431080, 5), (1000, 8), (7, 3), (25000, 2), (1, 1)):
        expect_equal(fn(n, bits), _measured_codebook_bytes(n, bits), f"codebook_bytes({n}, {bits})")


# --------------------------------------------------------------------------- bits per layer


def _eight_five(model: nn.Module) -> dict[str, int]:
    return {name: 5 if isinstance(m, nn.Linear) else 8 for name, m in surgery.weight_layers(model).items()}


@checker("bits per layer")
def check_bit_allocation(fn: Callable, model: nn.Module, data: Iterable, tolerance_pt: float = 0.5) -> None:
    """``fn(model) -> {layer name: bits}`` for every conv / linear layer. The model shared at those
    widths (k-means, no retraining) must stay within ``tolerance_pt`` points of the float model on
    ``data`` and store in fewer real bytes than Deep Compression's 8-bit conv / 5-bit fc allocation."""
    layers = list(surgery.weight_layers(model))
    allocation = fn(model)
    expect_true(isinstance(allocation, dict), f"return a dict {{layer name: bits}}, got {type(allocation).__name__}")
    expect_equal(sorted(allocation), sorted(layers), "the layers of your allocation (every conv / linear layer)")
    for name, b in allocation.items():
        expect_true(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 8,
            f"bits for layer {name!r} must be an int from 1 to 8, got {b!r}",
        )

    def shared(bits):
        m = quant.share_weights(copy.deepcopy(model), dict(bits))
        return evaluate(m, data), measure.file_bytes(quant.quantized_state_dict(m))

    float_acc = evaluate(model, data)
    acc, nbytes = shared(allocation)
    _, ref_bytes = shared(_eight_five(model))
    expect_true(
        dry_run() or acc >= float_acc - tolerance_pt / 100 - 1e-9,  # stand-in data: bytes only
        f"your allocation {allocation} reaches {100 * acc:.2f}%, more than {tolerance_pt} points below "
        f"float ({100 * float_acc:.2f}%): give the sensitive layers more bits",
    )
    expect_true(
        nbytes < ref_bytes,
        f"your allocation stores {nbytes:,} B, not less than Deep Compression's "
        f"8/5-bit allocation ({ref_bytes:,} B): the big layers can take fewer bits",
    )
    print(
        f"   {allocation}: {100 * acc:.2f}% (float {100 * float_acc:.2f}%), {nbytes:,} B "
        f"vs {ref_bytes:,} B for 8-bit conv / 5-bit fc"
    )
