"""Chapter 10's exercises: the Wavelet-like Auto-Encoder.

1. **Undo one Haar step** (derive): ``fn(cA, cH, cV, cD)`` → the 2×2 block ``(a, b, c, d)`` that
   PyWavelets' Haar step maps to those four coefficients. Compared with ``pywt.idwt2``; rejects
   ``/4`` in place of ``/2`` (the transform is orthonormal: its inverse is its transpose) and swapped
   ``cH`` / ``cV``.
2. **How wide may the encoder be?** (derive, then invert): ``fn(base_macs, in_channels, height,
   width, min_speedup)`` → the largest hidden width ``h`` of the WAE encoder for which the MAC bound
   ``base / (base/4 + E(h))`` still reaches ``min_speedup`` (0 if even ``h = 1`` does not). ``E(h)``
   is *measured* by the checker on real ``wae.WAE`` encoders (it is quadratic in ``h``); rejects the
   encoder without its two stride-2 branches and a base that only halves at half resolution.
3. **Haar's detail energy on real images** (build and measure): ``fn(images)`` → the fraction of a
   batch's energy (sums of squares) in one Haar level's three detail sub-bands. Compared with
   ``pywt.dwt2``; rejects means in place of sums (the detail bands have three times the values) and
   the square left out. The notebook then measures it on Fashion-MNIST beside the shipped WAEs' ``I_H``.

The library's own versions (``wae.haar_idwt``, ``haar_dwt``, ``encoder_macs``, ``speedup_bound``,
``energy_fraction``…) and PyWavelets' transforms are refused inside a submission.
"""

from collections.abc import Callable

import numpy as np
import pywt
import torch

from .. import measure, wae
from ..checks import checker, expect_close, expect_equal, expect_true

__all__ = ["check_haar_inverse", "check_widest_encoder", "check_detail_energy"]

_PYWT = {
    "pywt.dwt2": pywt.dwt2,
    "pywt.idwt2": pywt.idwt2,
    "pywt.dwtn": pywt.dwtn,
    "pywt.idwtn": pywt.idwtn,
    "pywt.wavedec2": pywt.wavedec2,
    "pywt.waverec2": pywt.waverec2,
}


@checker(
    "undo one Haar step",
    answers={"wae.haar_idwt": wae.haar_idwt, "wae.haar_dwt": wae.haar_dwt, "wae.haar_block": wae.haar_block, **_PYWT},
)
def check_haar_inverse(fn: Callable) -> None:
    """``fn(cA, cH, cV, cD)`` → ``(a, b, c, d)`` of the block ``[[a, b], [c, d]]`` (pywt's convention)."""
    g = torch.Generator().manual_seed(3)
    for coeffs in (
        [5.5, -2.5, -1.5, 0.5],
        [8.0, 0.0, 0.0, 0.0],
        [1.0, 2.0, 3.0, 4.0],
        torch.randn(4, generator=g).tolist(),
    ):
        cA, cH, cV, cD = coeffs
        got = fn(cA, cH, cV, cD)
        expect_true(isinstance(got, (tuple, list)) and len(got) == 4, f"return four numbers (a, b, c, d), got {got!r}")
        block = pywt.idwt2((np.array([[cA]]), (np.array([[cH]]), np.array([[cV]]), np.array([[cD]]))), "haar")
        for name, value, ref in zip("abcd", got, block.reshape(-1)):
            expect_close(
                float(value), float(ref), f"{name} from (cA, cH, cV, cD) = ({cA:.3g}, {cH:.3g}, {cV:.3g}, {cD:.3g})"
            )


def _measured_encoder_macs(in_channels: int, height: int, width: int) -> Callable[[int], int]:
    """``E(h)`` of real WAE encoders (full-resolution convs + both stride-2 branches), from two
    measurements: ``E(h) = a·h² + b·h`` exactly (every conv's MACs are a product of its widths)."""

    def measured(h: int) -> int:
        model = wae.WAE(in_channels, h)
        full = measure.count_macs(model.encoder, (in_channels, height, width))
        return full + sum(measure.count_macs(m, (h, height, width)) for m in (model.low, model.high))

    e1, e2 = measured(1), measured(2)
    a, b = (e2 - 2 * e1) // 2, (4 * e1 - e2) // 2
    if measured(3) != 9 * a + 3 * b:  # the model is exact, or the checker says so
        raise RuntimeError("the WAE encoder's MACs are not quadratic in its width: update the checker")
    return lambda h: a * h * h + b * h


@checker(
    "widest WAE encoder for a speed-up",
    answers={
        "wae.encoder_macs": wae.encoder_macs,
        "wae.speedup_bound": wae.speedup_bound,
        "wae.WAE": wae.WAE,
        "wae.cost_report": wae.cost_report,
        "wae.speedup_sweep": wae.speedup_sweep,
        "measure.count_macs": measure.count_macs,
    },
)
def check_widest_encoder(fn: Callable) -> None:
    """``fn(base_macs, in_channels, height, width, min_speedup)`` → the largest ``h`` with
    ``base / (base/4 + E(h)) ≥ min_speedup``, ``E`` measured on real encoders; 0 when none."""
    for base, c, h, w, target in (
        (15.5e9, 3, 224, 224, 3.0),
        (15.5e9, 3, 224, 224, 3.5),
        (0.31e9, 3, 32, 32, 2.0),
        (2.0e6, 1, 28, 28, 2.0),
        (2.0e6, 1, 28, 28, 3.9),
        (1.8e9, 3, 112, 112, 3.0),
    ):
        E = _measured_encoder_macs(c, h, w)
        expected = 0
        while base / (base / 4 + E(expected + 1)) >= target:
            expected += 1
        got = fn(base, c, h, w, target)
        expect_true(
            isinstance(got, int) or (torch.is_tensor(got) and got.numel() == 1 and not got.is_floating_point()),
            f"return a whole number of channels, got {type(got).__name__} {got!r}",
        )
        expect_equal(
            int(got), expected, f"the widest encoder for a {base:.3g}-MAC base on {c}×{h}×{w} reaching {target}×"
        )


def _detail_fraction_by_pywt(images: torch.Tensor) -> float:
    cA, (cH, cV, cD) = pywt.dwt2(images.double().numpy(), "haar", axes=(-2, -1))
    high = float((cH**2).sum() + (cV**2).sum() + (cD**2).sum())
    return high / (high + float((cA**2).sum()))


@checker(
    "Haar's detail energy",
    answers={
        "wae.haar_dwt": wae.haar_dwt,
        "wae.haar_block": wae.haar_block,
        "wae.energy_fraction": wae.energy_fraction,
        "wae.energy": wae.energy,
        "wae.HaarSplit": wae.HaarSplit,
        **_PYWT,
    },
)
def check_detail_energy(fn: Callable, images: torch.Tensor | None = None) -> None:
    """``fn(images)`` (N, C, H, W with H, W even) → the fraction of the energy in Haar's cH, cV, cD;
    also checked on the notebook's own ``images`` when given."""
    g = torch.Generator().manual_seed(5)
    cases = [
        torch.rand(2, 1, 8, 8, generator=g),
        torch.randn(3, 3, 4, 6, generator=g),
        torch.ones(1, 1, 4, 4),
        torch.arange(16.0).reshape(1, 1, 4, 4) % 2,
    ]  # flat: 0; stripes: all detail
    if images is not None:
        cases.append(images.detach().cpu().float())
    for x in cases:
        got = fn(x.clone())
        expect_true(
            isinstance(got, (float, int)) or (torch.is_tensor(got) and got.numel() == 1),
            f"return one fraction, got {type(got).__name__}",
        )
        expect_close(
            float(got),
            _detail_fraction_by_pywt(x),
            f"the detail energy of a batch of shape {tuple(x.shape)}",
            rtol=1e-4,
            atol=1e-7,
        )
