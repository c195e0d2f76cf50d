"""Chapter 12's exercise checkers: each accepts an independent solution and rejects the stub,
plausible wrong answers and a solution that calls the library's own version; ``checks.library_calls``
sees through modules, closures, partials, defaults and the learner's own helpers."""

import functools

import pytest
import torch
import torch.nn.functional as F

from course_lib import checks, deploy
from course_lib.exercises import ch12 as ex


def my_kd(s, t, y, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t.detach() / T, 1), reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def stub(*args):
    raise NotImplementedError("your code here")


def test_library_calls_sees_through_modules_closures_partials_and_helpers():
    forbidden = {"distillation_loss": deploy.distillation_loss}
    assert checks.library_calls(my_kd, forbidden) == []
    assert checks.library_calls(lambda s, t, y, T, a: deploy.distillation_loss(s, t, y, T, a), forbidden) == \
        ["distillation_loss"]
    loss = deploy.distillation_loss

    def closure(s, t, y, T, a):
        return loss(s, t, y, T, a)

    assert checks.library_calls(closure, forbidden) == ["distillation_loss"]
    assert checks.library_calls(functools.partial(deploy.distillation_loss, T=2.0), forbidden) == ["distillation_loss"]
    assert checks.library_calls(deploy.distillation_loss, forbidden) == ["distillation_loss"]

    def helper(s, t, y, T, a):
        return closure(s, t, y, T, a)

    assert checks.library_calls(helper, forbidden) == ["distillation_loss"]
    assert checks.library_calls(lambda s, t, y, T, a, f=loss: f(s, t, y, T, a), forbidden) == ["distillation_loss"]


def kd_gradient(s, t, y, T, alpha):
    ps, pt = torch.softmax(s / T, 1), torch.softmax(t / T, 1)
    onehot = F.one_hot(y, s.shape[1]).to(s.dtype)
    return (alpha * T * (ps - pt) + (1 - alpha) * (torch.softmax(s, 1) - onehot)) / s.shape[0]


def kd_gradient_by_autograd(s, t, y, T, alpha):
    with torch.enable_grad():
        s = s.clone().requires_grad_(True)
        my_kd(s, t, y, T, alpha).backward()
    return s.grad


def test_distillation_gradient_accepts_the_closed_form_and_rejects_wrong_ones():
    ex.check_distillation_gradient(kd_gradient)
    wrong = {
        "stub": stub,
        "no T²": lambda s, t, y, T, a: kd_gradient(s, t, y, T, a) - a * (T - 1 / T) * (torch.softmax(s / T, 1)
                                                                                       - torch.softmax(t / T, 1)) / len(s),
        "no cross-entropy": lambda s, t, y, T, a: a * T * (torch.softmax(s / T, 1) - torch.softmax(t / T, 1)) / len(s),
        "summed, not averaged": lambda s, t, y, T, a: kd_gradient(s, t, y, T, a) * len(s),
        "sign": lambda s, t, y, T, a: -kd_gradient(s, t, y, T, a),
    }
    for name, fn in wrong.items():
        with pytest.raises(checks.ExerciseError, match="not done yet" if name == "stub" else "the gradient at"):
            ex.check_distillation_gradient(fn)


def test_distillation_gradient_refuses_autograd_and_the_library():
    with pytest.raises(checks.ExerciseError, match="torch.Tensor.backward"):
        ex.check_distillation_gradient(kd_gradient_by_autograd)

    def via_library(s, t, y, T, a):
        with torch.enable_grad():
            leaf = s.clone().requires_grad_(True)
            return torch.autograd.grad(deploy.distillation_loss(leaf, t, y, T, a), leaf)[0]

    with pytest.raises(checks.ExerciseError, match="deploy.distillation_loss|torch.autograd.grad"):
        ex.check_distillation_gradient(via_library)


def smallest_sufficient(sizes, accuracies, tol):
    pairs = sorted(zip(sizes, accuracies))
    best = max(accuracies)
    for i, (n, _) in enumerate(pairs):
        if all(a >= best - tol / 100 - 1e-12 for _, a in pairs[i:]):
            return n


def test_calibration_checker_accepts_the_answer_and_rejects_wrong_ones():
    ex.check_calibration_size(smallest_sufficient, [8, 32, 128], [0.9, 0.93, 0.931])

    def first_within(sizes, accuracies, tol):          # ignores a later dip
        pairs = sorted(zip(sizes, accuracies))
        return next(n for n, a in pairs if a >= max(accuracies) - tol / 100)

    def most_accurate(sizes, accuracies, tol):
        return max(zip(accuracies, sizes))[1]

    def unsorted(sizes, accuracies, tol):              # assumes the sizes come sorted
        best = max(accuracies)
        for i in range(len(sizes)):
            if all(a >= best - tol / 100 for a in accuracies[i:]):
                return sizes[i]

    for fn in (stub, first_within, most_accurate, unsorted):
        with pytest.raises(checks.ExerciseError):
            ex.check_calibration_size(fn)


def int8_matmul(a, sa, za, b, sb, zb, sy, zy):
    acc = (a.to(torch.int32) - za) @ (b.to(torch.int32) - zb)
    return (torch.round(acc.float() * (sa * sb / sy)) + zy).clamp(0, 255).to(torch.uint8)


def test_int8_matmul_checker_accepts_the_answer_and_rejects_wrong_ones():
    ex.check_int8_matmul(int8_matmul)
    wrong = [
        stub,
        lambda a, sa, za, b, sb, zb, sy, zy: (torch.round((a.int() @ b.int()).float() * (sa * sb / sy)) + zy)
        .clamp(0, 255).to(torch.uint8),                                             # zero points forgotten
        lambda a, sa, za, b, sb, zb, sy, zy: (((a.int() - za) @ (b.int() - zb)).float() * (sa * sb / sy) + zy)
        .clamp(0, 255).to(torch.uint8),                                             # truncates, no rounding
        lambda a, sa, za, b, sb, zb, sy, zy: (torch.round(((a.int() - za) @ (b.int() - zb)).float() * (sa * sb / sy))
                                              + zy).to(torch.uint8),                # no saturation: wraps around
        lambda a, sa, za, b, sb, zb, sy, zy: deploy.qlinear_matmul_ort(a, sa, za, b, sb, zb, sy, zy),
    ]
    for fn in wrong:
        with pytest.raises(checks.ExerciseError):
            ex.check_int8_matmul(fn)
