"""Chapter 01's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's (or PyTorch's) answer."""

import functools

import pytest
import torch
import torch.nn.functional as F

from course_lib import conv, smallnets
from course_lib.checks import ExerciseError
from course_lib.exercises import ch01 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# ------------------------------------------------------------------ separable ratio

def ratio_right(c_in, c_out, k):
    return (c_in * k * k + c_in * c_out) / (c_in * c_out * k * k)


def test_separable_ratio(capsys):
    ex.check_separable_ratio(ratio_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_separable_ratio(stub)
    with pytest.raises(ExerciseError, match="MACs ratio"):            # N taken as the input channels
        ex.check_separable_ratio(lambda c_in, c_out, k: 1 / c_in + 1 / k ** 2)
    with pytest.raises(ExerciseError, match="MACs ratio"):            # regular / separable
        ex.check_separable_ratio(lambda c_in, c_out, k: 1 / (1 / c_out + 1 / k ** 2))
    with pytest.raises(ExerciseError, match="smallnets.separable_cost_ratio"):
        ex.check_separable_ratio(lambda c_in, c_out, k: smallnets.separable_cost_ratio(c_out, k))
    cost = conv.conv_cost                                             # an alias
    with pytest.raises(ExerciseError, match="conv.conv_cost"):
        ex.check_separable_ratio(lambda c_in, c_out, k: cost(c_in, c_out, k, 14).macs)


# ------------------------------------------------------------------ conv as im2col + matmul

def conv_right(x, weight, stride, padding):
    c, h, w = x.shape
    c_out, _, k, _ = weight.shape
    xp = torch.zeros(c, h + 2 * padding, w + 2 * padding)
    xp[:, padding:padding + h, padding:padding + w] = x
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    cols = torch.stack([xp[:, r * stride:r * stride + k, q * stride:q * stride + k].reshape(-1)
                        for r in range(oh) for q in range(ow)], dim=1)
    return (weight.reshape(c_out, -1) @ cols).reshape(c_out, oh, ow)


def conv_no_padding(x, weight, stride, padding):
    return conv_right(x, weight, stride, 0)


def conv_no_stride(x, weight, stride, padding):
    return conv_right(x, weight, 1, padding)


def conv_wrong_order(x, weight, stride, padding):                     # kernel rows channel-last
    return conv_right(x, weight.permute(0, 2, 3, 1).reshape(weight.shape), stride, padding)


def test_conv2d_as_matmul(capsys):
    ex.check_conv2d_as_matmul(conv_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_conv2d_as_matmul(stub)
    for wrong in (conv_no_padding, conv_no_stride, conv_wrong_order):
        with pytest.raises(ExerciseError, match="conv2d_as_matmul"):
            ex.check_conv2d_as_matmul(wrong)


def test_conv2d_as_matmul_refuses_the_library_and_pytorch():
    with pytest.raises(ExerciseError, match="conv.conv2d_as_matmul"):
        ex.check_conv2d_as_matmul(lambda x, w, s, p: conv.conv2d_as_matmul(x[None], w, stride=s, padding=p)[0])
    unfold = functools.partial(conv.im2col, padding=1)                 # a partial of the library's im2col
    with pytest.raises(ExerciseError, match="conv.im2col"):
        ex.check_conv2d_as_matmul(lambda x, w, s, p: unfold(x, w.shape[-1], stride=s))

    def via_getattr(x, w, s, p):                                        # only the run-time tripwire sees this
        return getattr(conv, "naive_" + "conv2d")(x[None], w, stride=s, padding=p)[0]

    with pytest.raises(ExerciseError, match="conv.naive_conv2d"):
        ex.check_conv2d_as_matmul(via_getattr)
    with pytest.raises(ExerciseError, match="PyTorch's F.conv2d"):
        ex.check_conv2d_as_matmul(lambda x, w, s, p: F.conv2d(x[None], w, stride=s, padding=p)[0])
    with pytest.raises(ExerciseError, match="F.unfold"):
        ex.check_conv2d_as_matmul(lambda x, w, s, p: w.reshape(len(w), -1) @ F.unfold(x[None], w.shape[-1])[0])


# ------------------------------------------------------------------ coverage

def coverage_right(h, w, k, stride, padding):
    def along(n):
        starts = range(-padding, n + padding - k + 1, stride)               # where each window begins
        return torch.tensor([sum(s <= i < s + k for s in starts) for i in range(n)])
    return along(h)[:, None] * along(w)[None, :]


def test_coverage(capsys):
    ex.check_coverage(coverage_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_coverage(stub)
    for wrong in (lambda h, w, k, s, p: coverage_right(h, w, k, 1, p),       # the stride ignored
                  lambda h, w, k, s, p: coverage_right(h, w, k, s, 0),       # the padding ignored
                  lambda h, w, k, s, p: torch.full((h, w), k * k)):          # "k² copies", as in the interior at stride 1
        with pytest.raises(ExerciseError, match="is read by"):
            ex.check_coverage(wrong)
    with pytest.raises(ExerciseError, match="must return an"):
        ex.check_coverage(lambda h, w, k, s, p: coverage_right(h, w, k, s, p).tolist())


def test_coverage_refuses_the_library_and_pytorch():
    def via_col2im(h, w, k, stride, padding):
        ones = torch.ones(1, 1, h, w)
        return conv.col2im(conv.im2col(ones, k, stride=stride, padding=padding), (h, w), k, stride=stride,
                           padding=padding)[0, 0]

    with pytest.raises(ExerciseError, match="conv.col2im|conv.im2col"):
        ex.check_coverage(via_col2im)
    fold = F.fold
    with pytest.raises(ExerciseError, match="PyTorch's F.fold"):
        ex.check_coverage(lambda h, w, k, s, p: fold(F.unfold(torch.ones(1, 1, h, w), k, stride=s, padding=p),
                                                     (h, w), k, stride=s, padding=p)[0, 0])
