"""Chapter 06's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's answer."""

import functools

import pytest
import torch

from course_lib import igc
from course_lib.checks import ExerciseError
from course_lib.exercises import ch06 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# ------------------------------------------------------------------ the permutations of a chain

def perms_right(C, branches):                      # mixed radix: move the digit just mixed to the slowest place
    perms, order = [], list(branches)
    for _ in branches[1:]:
        K0, perm = order[0], [0] * C
        for c in range(C):
            perm[c // K0 + (C // K0) * (c % K0)] = c
        perms.append(perm)
        order = order[1:] + [K0]
    return perms


def test_chain_permutations(capsys):
    ex.check_chain_permutations(perms_right)
    ex.check_chain_permutations(lambda C, b: [torch.arange(C).view(K, C // K).t().reshape(-1) for K in b[1:]])
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_chain_permutations(stub)
    for wrong in (lambda C, b: [torch.arange(C).view(b[1], C // b[1]).t().reshape(-1)] * (len(b) - 1),  # IGCV1's, reused
                  lambda C, b: [torch.arange(C)] * (len(b) - 1),                                     # no permutation
                  lambda C, b: [torch.arange(C).view(C // K, K).t().reshape(-1) for K in b[1:]]):    # the inverse
        with pytest.raises(ExerciseError, match="no path"):
            ex.check_chain_permutations(wrong)
    with pytest.raises(ExerciseError, match="each index"):
        ex.check_chain_permutations(lambda C, b: [[c % 2 for c in range(C)]] * (len(b) - 1))
    with pytest.raises(ExerciseError, match="return a list of"):
        ex.check_chain_permutations(lambda C, b: torch.arange(C))


def test_chain_permutations_refuses_the_library():
    with pytest.raises(ExerciseError, match="igc.interleave"):
        ex.check_chain_permutations(lambda C, b: [igc.interleave(K, C // K) for K in b[1:]])
    perm = igc.interleave                                                     # an alias in a closure
    with pytest.raises(ExerciseError, match="igc.interleave"):
        ex.check_chain_permutations(lambda C, b: [perm(K, C // K).tolist() for K in b[1:]])
    shuffle = functools.partial(igc.shuffle)                                  # a partial
    with pytest.raises(ExerciseError, match="igc.shuffle"):
        ex.check_chain_permutations(lambda C, b: [shuffle(C, K).perm for K in b[1:]])


# ------------------------------------------------------------------ the cheapest block of a width

def cheapest_right(G, k):
    divisors = [L for L in range(1, G + 1) if G % L == 0]
    return min(((L, G // L) for L in divisors), key=lambda p: p[0] * p[1] ** 2 * k * k + p[1] * p[0] ** 2)


def test_cheapest_igc(capsys):
    ex.check_cheapest_igc(cheapest_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_cheapest_igc(stub)

    def nearest(target):
        return lambda G, k: min(((L, G // L) for L in range(1, G + 1) if G % L == 0),
                                key=lambda p: abs(p[0] - target(G, k)))

    for wrong in (nearest(lambda G, k: G ** 0.5),                            # L = M
                  nearest(lambda G, k: k * G ** 0.5)):                       # the real optimum, rounded to a divisor
        with pytest.raises(ExerciseError, match="compare the divisors"):
            ex.check_cheapest_igc(wrong)
    with pytest.raises(ExerciseError, match="L·M must be"):                  # L = M·k², whatever G allows
        ex.check_cheapest_igc(lambda G, k: (round(k * G ** 0.5), round(G ** 0.5 / k) or 1))
    with pytest.raises(ExerciseError, match="pair of positive ints"):
        ex.check_cheapest_igc(lambda G, k: G)
    with pytest.raises(ExerciseError, match="igc.igcv1_params"):
        ex.check_cheapest_igc(lambda G, k: min(((L, G // L) for L in range(1, G + 1) if G % L == 0),
                                               key=lambda p: igc.igcv1_params(p[0], p[1], k)))


# ------------------------------------------------------------------ the chain verdict

def verdict_right(ops):
    paths = igc.adjacency(ops[0])
    for op in ops[1:]:
        paths = igc.adjacency(op) @ paths
    if (paths == 0).any():
        return "disconnected"
    return "strict" if (paths == 1).all() else "loose"


def test_chain_verdict(capsys):
    ex.check_chain_verdict(verdict_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_chain_verdict(stub)

    def connected_means_strict(ops):                                          # ignores multiple paths
        paths = igc.adjacency(ops[0])
        for op in ops[1:]:
            paths = igc.adjacency(op) @ paths
        return "disconnected" if (paths == 0).any() else "strict"

    def wrong_order(ops):                                                     # first op on the left
        paths = igc.adjacency(ops[0])
        for op in ops[1:]:
            paths = paths @ igc.adjacency(op) if paths.shape[1] == igc.adjacency(op).shape[0] else paths
        if (paths == 0).any():
            return "disconnected"
        return "strict" if (paths == 1).all() else "loose"

    for wrong in (connected_means_strict, wrong_order, lambda ops: "strict"):
        with pytest.raises(ExerciseError, match="verdict for"):
            ex.check_chain_verdict(wrong)
    with pytest.raises(ExerciseError, match="igc.classify"):
        ex.check_chain_verdict(igc.classify)
    with pytest.raises(ExerciseError, match="igc.connectivity"):
        ex.check_chain_verdict(lambda ops: verdict_right(ops) if igc.connectivity(ops) is not None else "")
