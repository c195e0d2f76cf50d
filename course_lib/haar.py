"""The Haar wavelet and the quality measures of chapter 10 (Wavelet Auto-Encoder), apart from any network.

One level of the 2-D Haar transform splits an image into four half-resolution sub-images: ``cA``
(the 2×2 averages) and three details (horizontal, vertical, diagonal differences). It keeps the
energy (sum of squares) and is inverted exactly (``haar_idwt``). ``energy``, ``energy_fraction``
and ``psnr`` measure how a decomposition divides an image and how well it comes back. ``wae``
(the auto-encoder that learns such a split) re-exports every name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .args import check_finite

__all__ = ["pad_to_even", "haar_dwt", "haar_idwt", "haar_block", "energy", "energy_fraction", "psnr"]


# --------------------------------------------------------------------------- validation


def _tensor4(name, x, channels=None):
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels, this model expects in_channels={channels}")
    return x


def _even(name, x):
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(
            f"{name} is {h}×{w}: height and width must be even to split into half-resolution "
            "sub-images (pad_to_even(x) adds one replicated row/column)"
        )
    return x


# --------------------------------------------------------------------------- the Haar wavelet


def pad_to_even(x: torch.Tensor) -> torch.Tensor:
    """``x`` with one replicated row (column) appended when its height (width) is odd."""
    _tensor4("x", x)
    h, w = x.shape[-2:]
    return F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if h % 2 or w % 2 else x


def haar_dwt(x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One level of the orthonormal 2-D Haar transform: ``(cA, (cH, cV, cD))``, each (N, C, H/2, W/2).

    The same numbers and signs as ``pywt.dwt2(x, "haar", axes=(-2, -1))``. ``x`` must have an even
    height and width (``ValueError`` otherwise).
    """
    _even("x", _tensor4("x", x))
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a + b + c + d) / 2, ((a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2)


def haar_idwt(cA: torch.Tensor, details: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The exact inverse of :func:`haar_dwt`: the (N, C, 2h, 2w) image of four (N, C, h, w) sub-bands."""
    _tensor4("cA", cA)
    if not isinstance(details, (tuple, list)) or len(details) != 3:
        raise TypeError("details must be the tuple (cH, cV, cD) returned by haar_dwt")
    cH, cV, cD = details
    for name, t in (("cH", cH), ("cV", cV), ("cD", cD)):
        if _tensor4(name, t).shape != cA.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, cA has {tuple(cA.shape)}: they must match")
    n, ch, h, w = cA.shape
    x = cA.new_empty(n, ch, 2 * h, 2 * w)
    x[..., 0::2, 0::2] = (cA + cH + cV + cD) / 2
    x[..., 0::2, 1::2] = (cA + cH - cV - cD) / 2
    x[..., 1::2, 0::2] = (cA - cH + cV - cD) / 2
    x[..., 1::2, 1::2] = (cA - cH - cV + cD) / 2
    return x


def haar_block(a: float, b: float, c: float, d: float) -> tuple[float, float, float, float]:
    """The Haar step for one 2×2 block ``[[a, b], [c, d]]``: ``(cA, cH, cV, cD)``."""
    return (a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2


# --------------------------------------------------------------------------- energy and quality


def energy(t: torch.Tensor) -> torch.Tensor:
    """The energy of a tensor: its sum of squares."""
    if not torch.is_tensor(t):
        raise TypeError(f"energy needs a tensor, got {type(t).__name__}")
    return t.detach().double().pow(2).sum()


def energy_fraction(low: torch.Tensor, high: torch.Tensor) -> float:
    """The fraction of the total energy that sits in ``high``: ``E(high) / (E(low) + E(high))``.

    Sums, not means: Haar's details have three times the channels of ``cA``.
    """
    e_low, e_high = energy(low), energy(high)
    for name, e in (("low", e_low), ("high", e_high)):  # a NaN / inf energy has no fraction
        if not math.isfinite(float(e)):
            check_finite(name, low if name == "low" else high)
            raise ValueError(f"{name}'s energy overflows float64: it must be finite")
    total = e_low + e_high
    return float(e_high / total) if total > 0 else 0.0


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB of ``y`` against the reference ``x``.

    ``data_range`` defaults to ``x.max() − x.min()``; identical images give ``inf``.
    """
    if not torch.is_tensor(x) or not torch.is_tensor(y):
        raise TypeError("psnr needs two tensors")
    if x.shape != y.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    check_finite("x", x)
    check_finite("y", y)
    peak = float(x.max() - x.min()) if data_range is None else float(data_range)
    mse = float((x.double() - y.double()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)
