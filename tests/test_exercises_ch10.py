"""Chapter 10's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's own version."""

import pytest
import pywt
import torch

from course_lib import wae
from course_lib.checks import ExerciseError
from course_lib.exercises import ch10 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# --------------------------------------------------------------------------- the inverse Haar step

def inverse_right(cA, cH, cV, cD):
    return (cA + cH + cV + cD) / 2, (cA + cH - cV - cD) / 2, (cA - cH + cV - cD) / 2, (cA - cH - cV + cD) / 2


def test_haar_inverse_accepts_a_solution():
    ex.check_haar_inverse(inverse_right)


@pytest.mark.parametrize("wrong", [
    stub,
    lambda cA, cH, cV, cD: tuple(v / 2 for v in inverse_right(cA, cH, cV, cD)),           # /4: not orthonormal
    lambda cA, cH, cV, cD: inverse_right(cA, cV, cH, cD),                                # cH and cV swapped
])
def test_haar_inverse_rejects(wrong):
    with pytest.raises(ExerciseError, match="undo one Haar step"):
        ex.check_haar_inverse(wrong)


def test_haar_inverse_refuses_the_library():
    def via_library(cA, cH, cV, cD):
        t = [torch.tensor([[[[v]]]]) for v in (cA, cH, cV, cD)]
        return tuple(wae.haar_idwt(t[0], tuple(t[1:])).flatten().tolist())

    with pytest.raises(ExerciseError, match="wae.haar_idwt"):
        ex.check_haar_inverse(via_library)
    with pytest.raises(ExerciseError, match="pywt.idwt2"):
        ex.check_haar_inverse(lambda cA, cH, cV, cD: tuple(pywt.idwt2(([[cA]], ([[cH]], [[cV]], [[cD]])), "haar").flat))


# --------------------------------------------------------------------------- the widest encoder

def encoder_macs(c, h, H, W):
    return H * W * 9 * (c * h + 2 * h * h) + (H // 2) * (W // 2) * 9 * h * c * 2


def widest_right(base, c, H, W, target):
    h = 0
    while base / (base / 4 + encoder_macs(c, h + 1, H, W)) >= target:
        h += 1
    return h


def test_widest_encoder_accepts_a_solution():
    ex.check_widest_encoder(widest_right)


def widest_without_branches(base, c, H, W, target):
    h = 0
    while base / (base / 4 + H * W * 9 * (c * (h + 1) + 2 * (h + 1) ** 2)) >= target:
        h += 1
    return h


def widest_half_cost(base, c, H, W, target):
    h = 0
    while base / (base / 2 + encoder_macs(c, h + 1, H, W)) >= target:
        h += 1
    return h


@pytest.mark.parametrize("wrong", [stub, widest_without_branches, widest_half_cost,
                                   lambda *args: float(widest_right(*args))])
def test_widest_encoder_rejects(wrong):
    with pytest.raises(ExerciseError, match="widest WAE encoder"):
        ex.check_widest_encoder(wrong)


def test_widest_encoder_refuses_the_library():
    def via_library(base, c, H, W, target):
        h = 0
        while wae.speedup_bound(base, wae.encoder_macs(c, h + 1, H, W)) >= target:
            h += 1
        return h

    with pytest.raises(ExerciseError, match="wae.encoder_macs|wae.speedup_bound"):
        ex.check_widest_encoder(via_library)


# --------------------------------------------------------------------------- Haar's detail energy

def detail_right(x):
    a, b = x[..., 0::2, 0::2].double(), x[..., 0::2, 1::2].double()
    c, d = x[..., 1::2, 0::2].double(), x[..., 1::2, 1::2].double()
    low = ((a + b + c + d) / 2).pow(2).sum()
    high = sum(((p / 2) ** 2).sum() for p in (a + b - c - d, a - b + c - d, a - b - c + d))
    total = low + high
    return float(high / total) if total > 0 else 0.0


def test_detail_energy_accepts_a_solution():
    ex.check_detail_energy(detail_right)
    ex.check_detail_energy(detail_right, images=torch.rand(4, 1, 28, 28))


def detail_with_means(x):
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    low = ((a + b + c + d) / 2).pow(2).mean()
    high = torch.cat([(a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2]).pow(2).mean()
    return float(high / (low + high)) if low + high > 0 else 0.0


def detail_without_square(x):
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    low = ((a + b + c + d) / 2).abs().sum()
    high = sum(((p / 2).abs()).sum() for p in (a + b - c - d, a - b + c - d, a - b - c + d))
    return float(high / (low + high)) if low + high > 0 else 0.0


@pytest.mark.parametrize("wrong", [stub, detail_with_means, detail_without_square])
def test_detail_energy_rejects(wrong):
    with pytest.raises(ExerciseError, match="Haar's detail energy"):
        ex.check_detail_energy(wrong)


def test_detail_energy_refuses_the_library():
    def via_library(x):
        cA, details = wae.haar_dwt(x)
        return wae.energy_fraction(cA, torch.cat(details, 1))

    with pytest.raises(ExerciseError, match="wae.haar_dwt|wae.energy_fraction"):
        ex.check_detail_energy(via_library)
