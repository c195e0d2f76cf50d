"""Chapter 12's exercises: deployment.

1. **The gradient of the distillation loss** (derive): ``fn(student_logits, teacher_logits, labels,
   T, alpha)`` → ∂L/∂z of the batch-mean loss, in closed form — section 1 gives the soft term's
   gradient per logit; the ``T²`` factor, the cross-entropy term and the batch mean are yours.
   Compared with autograd through a brute-force loss in float64; rejects the gradient without ``T²``,
   without the cross-entropy term, summed instead of averaged. Autograd and ``deploy``'s loss are refused.
2. **How many calibration images?** (decide): ``fn(sizes, accuracies, tolerance_pt)`` → the smallest
   calibration size from which on every measured accuracy stays within the tolerance of the best
   (on the notebook's measured curve too); rejects a lucky early point.
3. **The integer arithmetic of an int8 layer** (build and measure): ``fn(a, a_scale, a_zp, b,
   b_scale, b_zp, y_scale, y_zp)`` → the uint8 output, bit for bit what ONNX Runtime's
   ``QLinearMatMul`` computes (the checker runs the runtime); ``deploy.qlinear_matmul_ort`` is refused.
"""

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .. import deploy
from ..checks import checker, expect_close, expect_equal, expect_true

__all__ = ["check_distillation_gradient", "check_calibration_size", "check_int8_matmul"]


def _kd_reference(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """Brute force, image by image: Σ_c p_t(c)·(log p_t(c) − log p_s(c)) at temperature T."""
    total = torch.zeros((), dtype=torch.float64)
    for i in range(len(s)):
        p_t = torch.softmax(t[i].double() / T, 0)
        log_p_s = torch.log_softmax(s[i].double() / T, 0)
        kl = (p_t * (p_t.log() - log_p_s)).sum()
        ce = -torch.log_softmax(s[i].double(), 0)[y[i]]
        total = total + alpha * T * T * kl + (1 - alpha) * ce
    return total / len(s)


@checker(
    "gradient of the distillation loss",
    answers={
        "deploy.distillation_loss": deploy.distillation_loss,
        "deploy.distillation_criterion": deploy.distillation_criterion,
        "deploy.Distiller": deploy.Distiller,
        "deploy.distil": deploy.distil,
        "torch.autograd.grad": torch.autograd.grad,
        "torch.autograd.backward": torch.autograd.backward,
        "torch.Tensor.backward": torch.Tensor.backward,
    },
)
def check_distillation_gradient(fn: Callable) -> None:
    """``fn(student_logits, teacher_logits, labels, T, alpha)`` → ∂L/∂(student logits) of the batch-mean
    loss ``alpha·T²·KL(p_T(teacher) ‖ p_T(student)) + (1 − alpha)·CE(student, labels)``, in closed
    form: compared with autograd through a brute-force loss in float64; autograd itself is refused."""
    g = torch.Generator().manual_seed(12)
    for batch, classes, T, alpha in (
        (4, 3, 1.0, 0.5),
        (8, 10, 4.0, 0.9),
        (5, 6, 8.0, 1.0),
        (3, 10, 2.0, 0.0),
        (6, 10, 20.0, 0.7),
    ):
        s = 3 * torch.randn(batch, classes, generator=g, dtype=torch.float64)
        t = 3 * torch.randn(batch, classes, generator=g, dtype=torch.float64)
        y = torch.randint(0, classes, (batch,), generator=g)
        leaf = s.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(_kd_reference(leaf, t, y, T, alpha), leaf)
        with torch.no_grad():
            got = fn(s.clone(), t.clone(), y.clone(), T, alpha)
        expect_true(torch.is_tensor(got), f"return a tensor of the student logits' shape, got {type(got).__name__}")
        expect_close(got, expected, f"the gradient at T={T}, alpha={alpha} on a batch of {batch}", rtol=1e-6, atol=1e-9)


def _sufficient_size(sizes: Sequence[int], accuracies: Sequence[float], tolerance_pt: float) -> int:
    pairs = sorted(zip(sizes, accuracies))
    best = max(a for _, a in pairs)
    for i, (n, _) in enumerate(pairs):
        if all(a >= best - tolerance_pt / 100 - 1e-12 for _, a in pairs[i:]):
            return n
    return pairs[-1][0]


@checker("calibration set size")
def check_calibration_size(
    fn: Callable, sizes: Sequence[int] | None = None, accuracies: Sequence[float] | None = None
) -> None:
    """``fn(sizes, accuracies, tolerance_pt)`` → the smallest calibration size from which on every
    measured accuracy stays within ``tolerance_pt`` points of the best one on the curve (sizes may
    come in any order). Also checked on the notebook's own curve (``sizes``, ``accuracies``) if given."""
    cases = [
        ([1, 4, 16, 64, 256], [0.60, 0.85, 0.91, 0.915, 0.914], 0.5),
        ([256, 1, 64, 16, 4], [0.914, 0.60, 0.915, 0.91, 0.85], 0.5),  # any order
        ([2, 8, 32, 128, 512], [0.80, 0.93, 0.88, 0.931, 0.932], 0.3),  # a lucky early point
        ([1, 10, 100], [0.9, 0.9, 0.9], 0.0),
        ([5, 50, 500, 5000], [0.70, 0.80, 0.899, 0.90], 1.0),
        ([16, 64, 256, 1024], [0.9, 0.905, 0.88, 0.91], 2.0),
    ]
    if sizes is not None and accuracies is not None:
        cases.append((list(sizes), list(accuracies), 0.5))
    for s, a, tol in cases:
        got = fn(list(s), list(a), tol)
        expect_equal(
            got if not isinstance(got, (np.integer, torch.Tensor)) else int(got),
            _sufficient_size(s, a, tol),
            f"the calibration size for sizes={s}, accuracies={a}, tolerance {tol} pt",
        )


@checker(
    "int8 matrix product",
    answers={"deploy.qlinear_matmul_ort": deploy.qlinear_matmul_ort, "deploy.quantize_int8": deploy.quantize_int8},
)
def check_int8_matmul(fn: Callable) -> None:
    """``fn(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)`` → the uint8 output of an int8 layer,
    bit-for-bit what ONNX Runtime's ``QLinearMatMul`` computes (the checker runs the runtime)."""
    g = torch.Generator().manual_seed(8)
    cases = [
        (3, 5, 4, 0.02, 128, 0.01, 0, 0.05, 120),
        (8, 36, 6, 0.05, 3, 0.004, 0, 0.02, 0),
        (4, 64, 5, 0.1, 250, 0.02, 0, 0.3, 128),
        (2, 9, 3, 0.5, 0, 0.5, 0, 0.25, 255),
    ]
    for m, k, n, sa, za, sb, zb, sy, zy in cases:
        a = torch.randint(0, 256, (m, k), generator=g, dtype=torch.int64).to(torch.uint8)
        b = torch.randint(-127, 128, (k, n), generator=g, dtype=torch.int64).to(torch.int8)
        expected = deploy.qlinear_matmul_ort(a, sa, za, b, sb, zb, sy, zy)
        got = fn(a.clone(), sa, za, b.clone(), sb, zb, sy, zy)
        expect_true(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
        expect_true(got.dtype == torch.uint8, f"return uint8 codes (the next layer's input), got {got.dtype}")
        expect_true(got.shape == expected.shape, f"shape should be {tuple(expected.shape)}, got {tuple(got.shape)}")
        wrong = int((got.to(torch.int16) - expected.to(torch.int16)).abs().gt(0).sum())
        expect_true(
            wrong == 0,
            f"{wrong} of {expected.numel()} outputs differ from ONNX Runtime's for a "
            f"{m}×{k} · {k}×{n} product (zero points {za}, {zb}, {zy})",
        )
