"""Knowledge distillation (Hinton, Vinyals & Dean 2015), chapter 12's way to win accuracy back.

``soft_targets(logits, T)`` — softmax at temperature T; ``distillation_loss(student, teacher, labels,
T, alpha)`` — the T²-scaled KL to the teacher's soft targets plus the hard-label cross-entropy;
``Distiller(student, teacher)`` — a module whose training forward returns both logits, so that
``train.fit`` trains it with ``loss_fn=distillation_criterion(T, alpha)``; ``distil(student, teacher,
train_data, ...)`` — that training run. ``deploy`` re-exports every name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import capstone, train
from .args import check_float, check_fraction

__all__ = ["soft_targets", "distillation_loss", "Distiller", "distillation_criterion", "distil"]


# --------------------------------------------------------------------------- distillation


def _check_logits(name: str, logits: object) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of logits, got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, classes), got {tuple(logits.shape)}")
    return logits


def _check_temperature(T: object) -> float:
    return check_float("T", T, 0.0, low_inclusive=False, what="a temperature")


def soft_targets(logits: torch.Tensor, T: float = 4.0) -> torch.Tensor:
    """Softmax of ``logits / T`` over the last dimension: T = 1 is the usual softmax, a larger T
    spreads the probability over the wrong classes (Hinton et al.'s "dark knowledge")."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got {type(logits).__name__}")
    return torch.softmax(logits / _check_temperature(T), dim=-1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    T: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Hinton et al.'s loss: ``alpha · T² · KL(p_T(teacher) ‖ p_T(student)) + (1 − alpha) · CE(student, labels)``.

    The KL term is PyTorch's ``F.kl_div`` (batch mean); the gradient of the soft term with respect to
    the student's logits is ``(p_T(student) − p_T(teacher)) / T`` per image, which a further 1/T of the
    softmax's slope makes ~1/T² in size: the T² factor keeps the two terms balanced whatever T.
    ``labels=None`` (or ``alpha=1``) gives the soft term alone. No gradient flows into the teacher.
    """
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} must have the same shape (batch, classes)"
        )
    T = _check_temperature(T)
    alpha = check_fraction("alpha", alpha, allow_one=True)
    soft = F.kl_div(
        F.log_softmax(student_logits / T, dim=1),
        F.log_softmax(teacher_logits.detach() / T, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (T * T)
    if labels is None or alpha == 1.0:
        return soft
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must be an int64 tensor of shape ({student_logits.shape[0]},), one class per image")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


class Distiller(nn.Module):
    """A student trained against a frozen teacher: in training mode ``forward(x)`` returns
    ``(student logits, teacher logits)``; in eval mode the student's logits alone.

    The teacher is a frozen *copy* (no gradients, always in eval mode): the caller's teacher is not
    changed. ``train.fit(Distiller(student, teacher), data, loss_fn=distillation_criterion(T, alpha))``
    then trains ``student`` (the very module passed in) — ``distil`` does exactly that.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        for name, value in (("student", student), ("teacher", teacher)):
            if not isinstance(value, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(value).__name__}")
        self.student = student
        self.teacher = capstone.as_plain(teacher)
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Distiller:
        """Set the student's mode; the teacher stays in eval mode (its BatchNorm statistics are fixed)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.student(x)
        if not self.training:
            return out
        with torch.no_grad():
            target = self.teacher(x)
        return out, target


def distillation_criterion(T: float = 4.0, alpha: float = 0.9) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """``loss_fn(outputs, labels)`` for ``train.fit`` with a ``Distiller``: ``distillation_loss`` of
    the ``(student, teacher)`` logits the Distiller returns in training."""
    T = _check_temperature(T)
    alpha = check_fraction("alpha", alpha, allow_one=True)

    def loss_fn(outputs: Any, labels: torch.Tensor) -> torch.Tensor:
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise TypeError("distillation_criterion needs (student logits, teacher logits): train a Distiller")
        return distillation_loss(outputs[0], outputs[1], labels, T, alpha)

    return loss_fn


def distil(
    student: nn.Module,
    teacher: nn.Module,
    train_data: Iterable,
    epochs: int = 1,
    *,
    T: float = 4.0,
    alpha: float = 0.9,
    **fit_kwargs: Any,
) -> train.History:
    """Train ``student`` in place against ``teacher`` for ``epochs`` with ``train.fit`` and the
    distillation loss; returns the ``History``. ``fit_kwargs`` go to ``train.fit`` (lr, schedule,
    test_data, ...; not ``loss_fn``)."""
    if "loss_fn" in fit_kwargs:
        raise TypeError("distil sets loss_fn itself (the distillation loss); pass T and alpha instead")
    loss_fn = distillation_criterion(T, alpha)
    net = Distiller(student, teacher)
    x = next(iter(train_data))[0][:1]
    device = next(student.parameters()).device
    with torch.no_grad():
        was = student.training
        classes = (student.eval()(x.to(device)).shape[-1], net.teacher.to(device)(x.to(device)).shape[-1])
        student.train(was)
    if classes[0] != classes[1]:
        raise ValueError(
            f"student has {classes[0]} outputs and teacher {classes[1]}: they must classify the same classes"
        )
    history = train.fit(net, train_data, epochs=epochs, loss_fn=loss_fn, **fit_kwargs)
    student.eval()
    return history
