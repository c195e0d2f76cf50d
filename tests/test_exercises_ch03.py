"""Chapter 03's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's answer."""

import functools
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import lowrank
from course_lib.checks import ExerciseError
from course_lib.exercises import ch03 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# ------------------------------------------------------------------ equal-cost spatial rank

def spatial_right(c, d, k, r):
    return r * (c * k * k + d) // (k * (c + d))


def test_equal_cost_spatial_rank(capsys):
    ex.check_equal_cost_spatial_rank(spatial_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_equal_cost_spatial_rank(stub)
    with pytest.raises(ExerciseError, match="the largest spatial rank"):          # §4's special case
        ex.check_equal_cost_spatial_rank(lambda c, d, k, r: round(5 * r / 3))
    with pytest.raises(ExerciseError, match="the largest spatial rank"):          # the 1×1 taken as k×k
        ex.check_equal_cost_spatial_rank(lambda c, d, k, r: r * (c + d) * k * k // (k * (c + d)))
    with pytest.raises(ExerciseError, match="lowrank.decompose_conv_spatial"):
        ex.check_equal_cost_spatial_rank(
            lambda c, d, k, r: sum(p.numel() for p in lowrank.decompose_conv_spatial(nn.Conv2d(c, d, k), 1).parameters()))


# ------------------------------------------------------------------ rank for a MAC budget

def budget_right(c, d, k, budget):
    return max(1, min(math.floor(budget * d * c * k * k / (c * k * k + d) + 1e-9), d, c * k * k))


def test_rank_for_mac_budget(capsys):
    ex.check_rank_for_mac_budget(budget_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_rank_for_mac_budget(stub)
    with pytest.raises(ExerciseError, match="the largest channel rank"):          # half the budget, half the rank
        ex.check_rank_for_mac_budget(lambda c, d, k, budget: max(1, int(budget * d)))
    with pytest.raises(ExerciseError, match="the largest channel rank"):          # a d × c matrix: k forgotten
        ex.check_rank_for_mac_budget(lambda c, d, k, budget: max(1, min(int(budget * d * c / (c + d)), d, c)))
    with pytest.raises(ExerciseError, match="lowrank.rank_for_budget"):
        ex.check_rank_for_mac_budget(lambda c, d, k, budget: lowrank.rank_for_budget(d, c * k * k, budget))
    rule = functools.partial(lowrank.rank_for_budget)                             # through a partial
    with pytest.raises(ExerciseError, match="lowrank.rank_for_budget"):
        ex.check_rank_for_mac_budget(lambda c, d, k, budget: rule(d, c * k * k, budget))


# ------------------------------------------------------------------ data-driven decomposition

def _layers(conv, filters, P, bias):
    rank, d = filters.shape[0], conv.out_channels
    first = nn.Conv2d(conv.in_channels, rank, conv.kernel_size, padding=conv.padding, bias=False).double()
    second = nn.Conv2d(rank, d, 1).double()
    with torch.no_grad():
        first.weight.copy_(filters.reshape(rank, *conv.weight.shape[1:]))
        second.weight.copy_(P[:, :, None, None])
        second.bias.copy_(bias)
    return nn.Sequential(first, second)


def fit_right(conv, x, rank, with_mean=True):
    d = conv.out_channels
    y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding).transpose(0, 1).reshape(d, -1)
    mean = y.mean(1) if with_mean else torch.zeros(d, dtype=y.dtype)
    V = torch.linalg.svd(y - mean[:, None], full_matrices=False)[0][:, :rank]
    W = conv.weight.detach().reshape(d, -1)
    return _layers(conv, V.T @ W, V, mean - V @ (V.T @ mean) + conv.bias.detach())


def fit_weights_only(conv, x, rank):                                              # the weight SVD: no data
    d = conv.out_channels
    U, S, Vh = torch.linalg.svd(conv.weight.detach().reshape(d, -1), full_matrices=False)
    return _layers(conv, S[:rank, None] * Vh[:rank], U[:, :rank], conv.bias.detach())


def test_response_fit(capsys):
    ex.check_response_fit(fit_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_response_fit(stub)
    with pytest.raises(ExerciseError, match="the best rank-2 fit misses"):
        ex.check_response_fit(fit_weights_only)
    with pytest.raises(ExerciseError, match="centred"):
        ex.check_response_fit(lambda conv, x, rank: fit_right(conv, x, rank, with_mean=False))
    with pytest.raises(ExerciseError, match="then a 1×1 conv"):
        ex.check_response_fit(lambda conv, x, rank: nn.Sequential(conv))


def test_response_fit_refuses_the_library():
    with pytest.raises(ExerciseError, match="lowrank.decompose_conv_channels"):
        ex.check_response_fit(lambda conv, x, rank: lowrank.decompose_conv_channels(conv, rank, data=x))
    responses = lowrank.conv_responses                                            # an alias in a closure

    def via_responses(conv, x, rank):
        responses(conv, x)
        return fit_right(conv, x, rank)

    with pytest.raises(ExerciseError, match="lowrank.conv_responses"):
        ex.check_response_fit(via_responses)
