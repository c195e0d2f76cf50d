"""Chapter 02 — binary and ternary weights: one or two bits per weight, and what a dot product then costs.

    ``SignSTE`` (BinaryConnect's straight-through sign), ``binarize(w, scaling="channel")``
    (XNOR-Net: alpha = mean|w| per output channel), ``binary_dot(signs, x, alpha)`` (a dot product
    with additions only, and its operation count), ``pack_signs`` / ``xnor_dot`` (binary weights *and*
    activations: XNOR + popcount), ``codebook_dot`` (k-means weights: one multiply per centroid);
    ``twn_ternarize(w)`` (TWN: Δ = 0.7·mean|w|);
    ``TTQFunction`` / ``ttq_ternarize(latent, wp, wn, t=0.05)`` (Trained Ternary Quantization:
    learned Wp / Wn, Δ = t·max|w̃|, scaled straight-through gradient), ``ttq_init_scales``.

The drop-in layers that train with them (``quant.quantize_model``) are in ``quant``; every name here
is also ``quant.X`` (the chapter's module re-exports it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .args import check_float, check_int
from .fixedpoint import _check_tensor

__all__ = [
    "BINARY_SCALINGS",
    "SignSTE",
    "binarize",
    "binary_dot",
    "pack_signs",
    "xnor_dot",
    "codebook_dot",
    "twn_ternarize",
    "ttq_threshold",
    "TTQFunction",
    "ttq_ternarize",
    "ttq_init_scales",
]


def _check_delta(name, delta):
    """A threshold computed from ``max|w|`` or ``mean|w|`` is NaN / inf exactly when ``w`` holds one
    (the check costs nothing more than the ``.item()`` the caller already does)."""
    if not math.isfinite(delta):
        raise ValueError(f"{name} contains NaN or inf value(s): it must be finite")
    return delta


# ----------------------------------------------------------------------------------------------
# binary weights: BinaryConnect (sign + straight-through estimator) and XNOR-Net scaling
# ----------------------------------------------------------------------------------------------


class SignSTE(torch.autograd.Function):
    """``sign(w)`` (with sign(0) = +1) forward; straight-through backward clipped to |w| <= 1.

    BinaryConnect (Courbariaux et al. 2015) passes the gradient of the binary weight to the real
    weight unchanged, and cancels it where |w| > 1 (the "hard tanh" estimator).
    """

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


BINARY_SCALINGS = ("channel", "tensor", "none")


def binarize(w: torch.Tensor, scaling: str = "channel") -> torch.Tensor:
    """``alpha * sign(w)``: ±1 weights times a scale (XNOR-Net: alpha = mean |w| per output channel).

    ``scaling``: "channel" (one alpha per output channel, XNOR-Net), "tensor" (one alpha), "none"
    (plain BinaryConnect, alpha = 1). Differentiable: sign through ``SignSTE``, alpha exactly.
    """
    _check_tensor(w, "w")
    if scaling not in BINARY_SCALINGS:
        raise ValueError(f"scaling={scaling!r} is unknown; choose one of {BINARY_SCALINGS}")
    return _binarize(w, scaling)


def _binarize(w: torch.Tensor, scaling: str) -> torch.Tensor:
    """``binarize`` without the checks (a parametrization's forward: no host sync per step)."""
    signs = SignSTE.apply(w)
    if scaling == "none":
        return signs
    if scaling == "tensor" or w.ndim < 2:
        return w.abs().mean() * signs
    alpha = w.abs().mean(dim=tuple(range(1, w.ndim)), keepdim=True)
    return alpha * signs


def binary_dot(
    signs: torch.Tensor | Sequence[float], x: torch.Tensor | Sequence[float], alpha: float = 1.0
) -> tuple[torch.Tensor, dict[str, int]]:
    """``alpha * (signs · x)`` computed with additions only, and the operations it took.

    With ±1 weights every product is +x_i or -x_i, so a length-n dot product costs n - 1 additions
    or subtractions and a single multiply by alpha (none when alpha is 1), instead of n multiplies
    and n - 1 additions. Returns ``(value, {"multiplies": m, "additions": a})``.
    """
    signs, x = torch.as_tensor(signs), torch.as_tensor(x)
    if signs.shape != x.shape or signs.ndim != 1:
        raise ValueError(f"signs and x must be 1-d of the same length, got {tuple(signs.shape)} and {tuple(x.shape)}")
    if not torch.all((signs == 1) | (signs == -1)):
        raise ValueError("signs must contain only +1 and -1")
    total = x[signs > 0].sum() - x[signs < 0].sum()
    ops = {"multiplies": 0 if alpha == 1 else 1, "additions": len(x) - 1}
    return alpha * total, ops


def pack_signs(v: torch.Tensor | Sequence[int]) -> int:
    """Pack a ±1 vector into one Python int, bit i set where v[i] = +1 (a binary activation or weight)."""
    v = torch.as_tensor(v)
    if v.ndim != 1 or not torch.all((v == 1) | (v == -1)):
        raise ValueError("v must be a 1-d tensor of +1 and -1")
    return sum(1 << i for i, s in enumerate(v.tolist()) if s > 0)


def xnor_dot(a_bits: int, b_bits: int, n: int) -> tuple[int, dict[str, int]]:
    """The dot product of two ±1 vectors of length ``n`` packed by ``pack_signs``: XNOR, then popcount.

    Equal signs (XNOR bit 1) contribute +1, different signs −1, so a·b = 2·popcount(XNOR) − n =
    n − 2·popcount(XOR). XNOR-Net binarizes weights *and* activations so that a convolution becomes
    this: 64 products per machine word with one XOR and one popcount, no multiply at all.
    Returns ``(value, {"multiplies": 0, "word_ops": ...})`` (XOR + popcount per 64-bit word).
    """
    check_int("n", n)
    if not (0 <= a_bits < 2**n and 0 <= b_bits < 2**n):
        raise ValueError(f"a_bits and b_bits must be packed vectors of n={n} bits")
    differ = bin(a_bits ^ b_bits).count("1")
    return n - 2 * differ, {"multiplies": 0, "word_ops": 2 * -(-n // 64)}


def codebook_dot(
    codebook: torch.Tensor | Sequence[float], indices: torch.Tensor | Sequence[int], x: torch.Tensor | Sequence[float]
) -> tuple[torch.Tensor, dict[str, int]]:
    """``Σ_i codebook[indices[i]] · x[i]`` with one multiply per centroid, not one per weight.

    Weight sharing makes a dot product cheap as well as small: first add up the inputs of each
    cluster (s_k = Σ_{i: indices[i] = k} x_i, additions only), then multiply each sum by its
    centroid once: 2**bits multiplies per output instead of n (Deep Compression, Han et al. 2016).
    Returns ``(value, {"multiplies": k, "additions": ...})``.
    """
    codebook, indices, x = torch.as_tensor(codebook), torch.as_tensor(indices), torch.as_tensor(x)
    if indices.ndim != 1 or x.shape != indices.shape or codebook.ndim != 1:
        raise ValueError(
            f"indices and x must be 1-d of the same length and codebook 1-d, got "
            f"{tuple(indices.shape)}, {tuple(x.shape)}, {tuple(codebook.shape)}"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= len(codebook)):
        raise ValueError(f"indices must lie in [0, {len(codebook)}) (the codebook's length)")
    sums = torch.zeros(len(codebook), dtype=x.dtype).index_add_(0, indices.long(), x)
    used = int((torch.bincount(indices.long(), minlength=len(codebook)) > 0).sum())
    return (sums * codebook.to(x.dtype)).sum(), {"multiplies": used, "additions": len(x) - 1}


# ----------------------------------------------------------------------------------------------
# ternary weights: TWN (Li & Liu 2016) and Trained Ternary Quantization (Zhu et al. 2017)
# ----------------------------------------------------------------------------------------------


def twn_ternarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Ternary Weight Networks: Δ = 0.7·mean|w|, α = mean of |w| where |w| > Δ; returns
    ``(alpha * codes, codes, delta, alpha)`` with ``codes`` in {-1, 0, +1}."""
    _check_tensor(w, "w", finite=False)
    w = w.detach()
    delta = 0.7 * w.abs().mean()
    _check_delta("w", delta.item())  # NaN / inf in w make the mean NaN / inf
    codes = (w > delta).to(w.dtype) - (w < -delta).to(w.dtype)
    kept = codes != 0
    alpha = w.abs()[kept].mean() if kept.any() else w.new_tensor(0.0)
    return alpha * codes, codes, delta.item(), alpha.item()


def _check_threshold(t):
    check_float("t", t)
    if not 0 < t < 1:
        raise ValueError(f"threshold t={t!r} must be a number with 0 < t < 1 (Δ = t·max|w|; TTQ uses 0.05)")
    return float(t)


def ttq_threshold(latent: torch.Tensor, t: float = 0.05) -> float:
    """TTQ's threshold Δ = t · max|w̃| (a constant for the backward pass)."""
    if not isinstance(latent, torch.Tensor):
        raise TypeError(f"latent must be a torch.Tensor, got {type(latent).__name__}")
    if latent.numel() == 0:
        raise ValueError("latent is empty")
    return _check_delta("latent", _check_threshold(t) * latent.detach().abs().max().item())


class TTQFunction(torch.autograd.Function):
    """Trained ternary quantization of latent weights w̃ (Zhu et al., ICLR 2017, eqs. 6-8).

    forward: w_t = +Wp where w̃ > Δ, 0 where |w̃| <= Δ, -Wn where w̃ < -Δ.
    backward: ∂L/∂Wp = Σ_{w̃>Δ} ∂L/∂w_t;  ∂L/∂Wn = -Σ_{w̃<-Δ} ∂L/∂w_t (the minus because w_t = -Wn;
    the paper writes the sum without it); the latent weights get the scaled straight-through
    gradient Wp·∂L/∂w_t above Δ, 1·∂L/∂w_t inside, Wn·∂L/∂w_t below -Δ.
    """

    @staticmethod
    def forward(ctx: Any, latent: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor, delta: float) -> torch.Tensor:
        pos, neg = latent > delta, latent < -delta
        ctx.save_for_backward(pos, neg, wp, wn)
        return wp * pos.to(latent.dtype) - wn * neg.to(latent.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        pos, neg, wp, wn = ctx.saved_tensors
        grad_wp = (grad * pos).sum().reshape(wp.shape)
        grad_wn = -(grad * neg).sum().reshape(wn.shape)
        grad_latent = torch.where(pos, wp * grad, torch.where(neg, wn * grad, grad))
        return grad_latent, grad_wp, grad_wn, None


def ttq_ternarize(latent: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor, t: float = 0.05) -> torch.Tensor:
    """Ternary weights of TTQ, differentiable in ``latent``, ``wp`` and ``wn`` (see ``TTQFunction``)."""
    return TTQFunction.apply(latent, wp, wn, ttq_threshold(latent, t))


def ttq_init_scales(w: torch.Tensor, t: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial (Wp, Wn): the mean of the weights above Δ and of minus those below -Δ, where
    Δ = t·max|w| (so the ternary layer starts close to the float one)."""
    _check_tensor(w, "w")
    delta = _check_threshold(t) * w.abs().max()
    above, below = w[w > delta], -w[w < -delta]
    fallback = w.abs().mean()
    return (above.mean() if len(above) else fallback), (below.mean() if len(below) else fallback)
