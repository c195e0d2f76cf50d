"""Chapter 07's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's own version."""

import functools

import pytest
import torch
import torch.nn.functional as F

from course_lib import resnets
from course_lib.checks import ExerciseError
from course_lib.exercises import ch07 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# --------------------------------------------------------------------------- the parameter-free shortcut

def zero_pad_right(x, out_channels):
    sub = x[:, :, ::2, ::2]
    return torch.cat([sub, sub.new_zeros(sub.shape[0], out_channels - sub.shape[1], *sub.shape[2:])], dim=1)


def test_zero_pad_shortcut_accepts_a_solution():
    ex.check_zero_pad_shortcut(zero_pad_right)
    ex.check_zero_pad_shortcut(lambda x, out: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, out - x.shape[1])))


@pytest.mark.parametrize("wrong, message", [
    (stub, "not done yet"),
    (lambda x, out: F.pad(F.avg_pool2d(x, 2, ceil_mode=True), (0, 0, 0, 0, 0, out - x.shape[1])), "shortcut of a"),
    (lambda x, out: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, out - x.shape[1], 0)), "shortcut of a"),   # zeros first
    (lambda x, out: F.pad(x[:, :, 1::2, 1::2], (0, 0, 0, 0, 0, out - x.shape[1])), "has shape|shortcut of a"),
    (lambda x, out: zero_pad_right(x, out).detach(), "gradient"),
])
def test_zero_pad_shortcut_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ex.check_zero_pad_shortcut(wrong)


# --------------------------------------------------------------------------- uniform survival

def uniform_right(L, p_last):
    return 1 - (1 - p_last) * (L + 1) / (2 * L)


def test_uniform_survival_accepts_a_solution():
    ex.check_uniform_survival(uniform_right)


@pytest.mark.parametrize("wrong", [
    stub,
    lambda L, p: (1 + p) / 2,                                     # the large-L limit
    lambda L, p: sum(1 - l / L * (1 - p) for l in range(L)) / L,   # off by one unit
    lambda L, p: sum(1 - l / L * (1 - p) for l in range(1, L + 1)),  # the expected depth, not a probability
])
def test_uniform_survival_rejects(wrong):
    with pytest.raises(ExerciseError, match="uniform survival"):
        ex.check_uniform_survival(wrong)


@pytest.mark.parametrize("cheat", [
    lambda L, p: resnets.expected_depth(L, p) / L,
    lambda L, p: sum(resnets.survival_probabilities(L, p)) / L,
    functools.partial(lambda L, p, f: f(L, p) / L, f=resnets.expected_depth),
    lambda L, p: getattr(resnets, "expected_" + "depth")(L, p) / L,            # only the tripwire sees this one
])
def test_uniform_survival_refuses_the_library(cheat):
    with pytest.raises(ExerciseError, match="resnets.expected_depth|resnets.survival_probabilities"):
        ex.check_uniform_survival(cheat)


# --------------------------------------------------------------------------- ResNeXt (a) → (c)

def to_grouped_right(block):
    new = resnets.ResNeXtBlock(block.channels, block.cardinality, block.width, form="c")
    d = block.d
    with torch.no_grad():
        for i, path in enumerate(block.paths):
            sl = slice(i * d, (i + 1) * d)
            new.reduce.weight[sl] = path[0].weight
            new.conv.weight[sl] = path[3].weight
            new.expand.weight[:, sl] = path[6].weight
            for bn_new, bn_old in ((new.bn1, path[1]), (new.bn2, path[4])):
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn_new, key)[sl] = getattr(bn_old, key)
        new.bn.load_state_dict(block.bn.state_dict())
    return new


def to_grouped_wrong_no_bn(block):
    new = resnets.ResNeXtBlock(block.channels, block.cardinality, block.width, "c")
    with torch.no_grad():
        for i, p in enumerate(block.paths):
            sl = slice(i * block.d, (i + 1) * block.d)
            new.reduce.weight[sl] = p[0].weight
            new.conv.weight[sl] = p[3].weight
            new.expand.weight[:, sl] = p[6].weight
    new.bn.load_state_dict(block.bn.state_dict())
    return new


def test_resnext_to_grouped_accepts_a_solution():
    ex.check_resnext_to_grouped(to_grouped_right)


@pytest.mark.parametrize("wrong, message", [
    (stub, "not done yet"),
    (to_grouped_wrong_no_bn, "output of the converted block"),                 # BN statistics not copied
    (lambda b: resnets.ResNeXtBlock(b.channels, b.cardinality, b.width, "c"), "output of the converted block"),
])
def test_resnext_to_grouped_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ex.check_resnext_to_grouped(wrong)


def test_resnext_to_grouped_refuses_the_library():
    from course_lib.resnets import convert_resnext as convert
    with pytest.raises(ExerciseError, match="resnets.convert_resnext"):
        ex.check_resnext_to_grouped(lambda b: convert(b, "c"))
