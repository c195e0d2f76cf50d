"""Chapter 09's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's own version."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import igc, measure
from course_lib import smallnets as sn
from course_lib.checks import ExerciseError
from course_lib.exercises import ch09 as ex


def stub(*args):
    raise NotImplementedError("your code here")


def test_fire_params():
    ex.check_fire_params(lambda i, s, e1, e3: i * s + s + s * e1 + e1 + 9 * s * e3 + e3)
    for wrong in (stub, lambda i, s, e1, e3: i * s + s * e1 + 9 * s * e3,                 # no biases
                  lambda i, s, e1, e3: i * s + s + s * (e1 + e3) + e1 + e3):            # 3×3 counted as 1×1
        with pytest.raises(ExerciseError, match="Fire module parameters"):
            ex.check_fire_params(wrong)
    with pytest.raises(ExerciseError, match="smallnets.Fire"):
        ex.check_fire_params(lambda i, s, e1, e3: sum(p.numel() for p in sn.Fire(i, s, e1, e3).parameters()))


def share_right(M, N, D_F, alpha, rho):
    n = int(alpha * N)
    return 9 / (9 + n)


def test_depthwise_share_accepts_a_solution():
    ex.check_depthwise_share(share_right)
    ex.check_depthwise_share(lambda M, N, D, a, r: 9 * int(a * M) * round(r * D) ** 2 /
                             (9 * int(a * M) * round(r * D) ** 2 + int(a * M) * int(a * N) * round(r * D) ** 2))


@pytest.mark.parametrize("wrong", [
    stub,
    lambda M, N, D, a, r: 9 / (9 + N),                  # α forgotten
    lambda M, N, D, a, r: 1 / int(a * N) + 1 / 9,       # the cost ratio against a standard conv
    lambda M, N, D, a, r: int(a * N) / (9 + int(a * N)),  # the pointwise share
])
def test_depthwise_share_rejects(wrong):
    with pytest.raises(ExerciseError, match="depthwise share"):
        ex.check_depthwise_share(wrong)


def test_depthwise_share_refuses_the_library():
    def measured(M, N, D, a, r):
        m, n, d = int(a * M), int(a * N), round(r * D)
        dw = measure.count_macs(nn.Conv2d(m, m, 3, padding=1, groups=m), (m, d, d))
        return dw / measure.count_macs(sn.depthwise_separable_block(m, n), (m, d, d))

    with pytest.raises(ExerciseError, match="measure.count_macs|smallnets.depthwise_separable_block"):
        ex.check_depthwise_share(measured)


def shuffle_right(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def test_channel_shuffle():
    ex.check_channel_shuffle(shuffle_right)
    for wrong in (stub, lambda x, g: x.view(x.shape[0], -1, g, *x.shape[2:]).transpose(1, 2).reshape(x.shape),
                  lambda x, g: x):
        with pytest.raises(ExerciseError, match="channel shuffle"):
            ex.check_channel_shuffle(wrong)


@pytest.mark.parametrize("cheat, name", [
    (lambda x, g: sn.channel_shuffle(x, g), "smallnets.channel_shuffle"),
    (lambda x, g: nn.ChannelShuffle(g)(x), "torch.nn.ChannelShuffle"),
    (lambda x, g: F.channel_shuffle(x, g), "torch.channel_shuffle"),
    (lambda x, g: x[:, igc.interleave(g, x.shape[1] // g)], "igc.interleave"),
])
def test_channel_shuffle_refuses_the_library(cheat, name):
    with pytest.raises(ExerciseError, match=name):
        ex.check_channel_shuffle(cheat)
