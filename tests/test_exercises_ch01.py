"""Chapter 01's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's (or PyTorch's) answer."""

import functools

import pytest
import torch
import torch.nn.functional as F

from course_lib import conv, smallnets
from course_lib.checks import ExerciseError
from course_lib.exercises import ch01 as ex


@pytest.fixture(autouse=True)
def strict(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS", "strict")


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


# ------------------------------------------------------------------ im2col bytes

def bytes_right(layer, shape):
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return 4 * c * kh * kw * oh * ow


def test_im2col_bytes(capsys):
    ex.check_im2col_bytes(bytes_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_im2col_bytes(stub)
    with pytest.raises(ExerciseError, match="ResNet-18 conv1"):        # "k² × the input"
        ex.check_im2col_bytes(lambda layer, shape: 4 * shape[0] * shape[1] * shape[2] * layer.kernel_size[0] ** 2)

    def no_stride(layer, shape):
        c, h, w = shape
        k, p, d = layer.kernel_size[0], layer.padding[0], layer.dilation[0]
        return 4 * c * k * k * (h + 2 * p - d * (k - 1)) * (w + 2 * p - d * (k - 1))

    with pytest.raises(ExerciseError, match="bytes of the im2col columns"):
        ex.check_im2col_bytes(no_stride)
    with pytest.raises(ExerciseError, match="conv.conv_cost"):
        ex.check_im2col_bytes(lambda layer, shape: conv.conv_cost(
            shape[0], layer.out_channels, layer.kernel_size, shape[1:], layer.stride, layer.padding,
            layer.dilation).im2col_bytes)

    def with_output_size(layer, shape):
        oh, ow = (conv.output_size(n, layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.dilation[0])
                  for n in shape[1:])
        return 4 * shape[0] * layer.kernel_size[0] ** 2 * oh * ow

    with pytest.raises(ExerciseError, match="conv.output_size"):
        ex.check_im2col_bytes(with_output_size)
