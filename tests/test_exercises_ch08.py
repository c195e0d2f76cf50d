"""Chapter 08's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's own version."""

import math

import pytest
import torch

from course_lib import densenet
from course_lib.checks import ExerciseError
from course_lib.exercises import ch08 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# --------------------------------------------------------------------------- width at the classifier

def width_right(block_config, k, theta):
    c = 2 * k
    for i, layers in enumerate(block_config):
        c += layers * k
        if i < len(block_config) - 1:
            c = max(1, math.floor(theta * c))
    return c


def test_classifier_width_accepts_a_solution():
    ex.check_classifier_width(width_right)


def width_rounded(block_config, k, theta):
    c = 2 * k
    for i, layers in enumerate(block_config):
        c = c + layers * k
        if i < len(block_config) - 1:
            c = round(theta * c)
    return c


@pytest.mark.parametrize("wrong", [
    stub, width_rounded,
    lambda cfg, k, theta: math.floor(theta * width_right(cfg, k, theta)),        # a transition after the last block
    lambda cfg, k, theta: 2 * k + k * sum(cfg),                                  # no compression at all
])
def test_classifier_width_rejects(wrong):
    with pytest.raises(ExerciseError, match="width at the classifier"):
        ex.check_classifier_width(wrong)


def test_classifier_width_refuses_the_library():
    with pytest.raises(ExerciseError, match="densenet.DenseNet"):
        ex.check_classifier_width(lambda cfg, k, theta: densenet.DenseNet(k, cfg, 2 * k, compression=theta,
                                                                          stem="cifar").num_features)


# --------------------------------------------------------------------------- block parameters

def params_right(L, k0, k):
    total = 0
    for l in range(1, L + 1):
        c = k0 + k * (l - 1)
        total += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k
    return total


def test_block_params_accepts_a_solution():
    ex.check_block_params(params_right)


@pytest.mark.parametrize("wrong", [
    stub,
    lambda L, k0, k: sum((k0 + k * (l - 1)) * 4 * k + 36 * k * k for l in range(1, L + 1)),   # no BN parameters
    lambda L, k0, k: sum(2 * (k0 + k * l) + (k0 + k * l) * 4 * k + 8 * k + 36 * k * k for l in range(1, L + 1)),
])
def test_block_params_rejects(wrong):
    with pytest.raises(ExerciseError, match="DenseNet-B block"):
        ex.check_block_params(wrong)


def test_block_params_refuses_the_library():
    from course_lib.densenet import block_params as count
    with pytest.raises(ExerciseError, match="densenet.block_params"):
        ex.check_block_params(lambda L, k0, k: count(L, k0, k))
    with pytest.raises(ExerciseError, match="densenet.dense_layer_params"):
        ex.check_block_params(lambda L, k0, k: sum(densenet.dense_layer_params(k0 + k * i, k) for i in range(L)))


# --------------------------------------------------------------------------- one buffer for the whole block

def shared_right(x, layers):
    n, k0, h, w = x.shape
    k = layers[0][-1].out_channels
    out = x.new_empty(n, k0 + len(layers) * k, h, w)
    out[:, :k0] = x
    c = k0
    for layer in layers:
        out[:, c:c + k] = layer(out[:, :c])
        c += k
    return out


def concat_every_layer(x, layers):
    features = [x]
    for layer in layers:
        features.append(layer(torch.cat(features, 1)))
    return torch.cat(features, 1)


def buffer_per_layer(x, layers):                 # no torch.cat, but every layer copies all before it
    out = x
    for layer in layers:
        new = out.new_empty(out.shape[0], out.shape[1] + layers[0][-1].out_channels, *out.shape[2:])
        new[:, :out.shape[1]] = out
        new[:, out.shape[1]:] = layer(out)
        out = new
    return out


def test_shared_storage_accepts_a_solution():
    ex.check_shared_storage(shared_right)


@pytest.mark.parametrize("wrong, message", [
    (stub, "not done yet"),
    (concat_every_layer, "concatenations"),
    (buffer_per_layer, "copied"),
    (lambda x, layers: shared_right(x, layers[:-1]), "shape of the output"),
])
def test_shared_storage_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ex.check_shared_storage(wrong)


# --------------------------------------------------------------------------- largest batch

def batch_right(L, k0, k, h, w, budget, efficient):
    b = 4 * k
    if efficient:
        per_image = 4 * h * w * (k0 + k * (L - 1) + 2 * b * L)
        fixed = 4 * 2 * b * L
    else:
        per_image = 4 * h * w * sum(2 * (k0 + k * (l - 1)) + 2 * b for l in range(1, L + 1))
        fixed = 4 * sum(2 * (k0 + k * (l - 1)) + 2 * b for l in range(1, L + 1))
    return (budget - fixed) // per_image


def test_largest_batch_accepts_a_solution():
    ex.check_largest_batch(batch_right)


@pytest.mark.parametrize("wrong, message", [
    (stub, "not done yet"),
    (lambda L, k0, k, h, w, budget, eff: batch_right(L, k0, k, h, w, budget, False), "aim higher"),   # naive for both
    (lambda L, k0, k, h, w, budget, eff: batch_right(L, k0, k, h, w, budget, eff) + 3, "more than the budget"),
    (lambda L, k0, k, h, w, budget, eff: float(batch_right(L, k0, k, h, w, budget, eff)), "whole number"),
])
def test_largest_batch_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ex.check_largest_batch(wrong)


def test_largest_batch_refuses_the_library():
    def via_formula(L, k0, k, h, w, budget, efficient):
        f = densenet.efficient_block_saved_bytes if efficient else densenet.naive_block_saved_bytes
        return budget // f(L, k0, k, 4, 1, h, w)

    with pytest.raises(ExerciseError, match="densenet.efficient_block_saved_bytes|densenet.naive_block_saved_bytes"):
        ex.check_largest_batch(via_formula)
