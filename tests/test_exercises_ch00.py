"""Chapter 00's exercise checker: accepts an independent solution, rejects the stub, wrong answers
and the library's own accuracy."""

import functools

import pytest
import torch.nn as nn

from course_lib import train
from course_lib.checks import ExerciseError
from course_lib.exercises import ch00 as ex


def stub(*args):
    raise NotImplementedError("your code here")


def right(logits, labels):
    return (logits.argmax(dim=1) == labels).float().mean().item()


def test_accuracy_accepts_a_solution(capsys):
    ex.check_accuracy(right)
    ex.check_accuracy(lambda logits, labels: (logits.argmax(1) == labels).float().mean())   # a 0-d tensor is fine
    assert "✅ accuracy: correct." in capsys.readouterr().out


def test_accuracy_rejects_the_stub():
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_accuracy(stub)


@pytest.mark.parametrize("wrong, message", [
    (lambda logits, labels: (logits.argmax(1) == labels).sum().item(), "accuracy of a batch"),     # a count
    (lambda logits, labels: (logits.argmin(1) == labels).float().mean().item(), "accuracy of a batch"),
    (lambda logits, labels: logits.argmax(1) == labels, "return one number"),
])
def test_accuracy_rejects_wrong_answers(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ex.check_accuracy(wrong)


def by_evaluate(logits, labels):
    return train.evaluate(nn.Identity(), [(logits, labels)])


def test_accuracy_refuses_the_library():
    with pytest.raises(ExerciseError, match="train.evaluate"):
        ex.check_accuracy(by_evaluate)
    evaluate = train.evaluate                                        # an alias in a closure
    with pytest.raises(ExerciseError, match="train.evaluate"):
        ex.check_accuracy(lambda logits, labels: evaluate(nn.Identity(), [(logits, labels)]))
    partial = functools.partial(train.evaluate, nn.Identity())
    with pytest.raises(ExerciseError, match="train.evaluate"):
        ex.check_accuracy(lambda logits, labels: partial([(logits, labels)]))
