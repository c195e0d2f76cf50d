"""Tests of course_lib.igc: every result is compared with an independent reference
(PyTorch's own conv, brute-force path enumeration, exact arithmetic, real nn.Conv2d parameter counts)."""

import dataclasses
import itertools
import math
import random
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import channels, igc
from course_lib.conv import weight_matrix
from course_lib.report import Rows


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- interleave

@pytest.mark.parametrize("L,M", [(1, 1), (2, 3), (3, 2), (4, 8), (1, 6), (6, 1), (24, 2)])
def test_interleave_takes_one_channel_from_every_primary_partition(L, M):
    perm = igc.interleave(L, M).tolist()
    assert sorted(perm) == list(range(L * M))
    for m in range(M):                       # secondary partition m = positions m·L … m·L + L − 1
        block = perm[m * L:(m + 1) * L]
        assert sorted(c // M for c in block) == list(range(L))   # one from each primary partition
        assert all(c % M == m for c in block)                     # the m-th channel of each
    # the permutation back is interleave(M, L)
    back = igc.interleave(M, L)
    assert torch.equal(torch.tensor(perm)[back], torch.arange(L * M))


def test_interleave_is_shufflenet_channel_shuffle():
    x = torch.randn(2, 12, 3, 3)
    shuffled = x.view(2, 3, 4, 3, 3).transpose(1, 2).reshape(2, 12, 3, 3)     # ShuffleNet, g = 3
    assert torch.equal(x[:, igc.interleave(3, 4)], shuffled)


@pytest.mark.parametrize("L,M,err,match", [(0, 3, ValueError, "L=0"), (3, -1, ValueError, "M=-1"),
                                           (2.0, 3, TypeError, "L=2.0"), (True, 3, TypeError, "L=True")])
def test_interleave_bad_inputs(L, M, err, match):
    with pytest.raises(err, match=match):
        igc.interleave(L, M)


@pytest.mark.parametrize("perm", [igc.interleave(3, 5), igc.interleave(5, 3), torch.tensor([2, 0, 3, 1])])
def test_channel_permutation_matches_indexing(perm):
    module = igc.ChannelPermutation(perm)
    x = torch.randn(2, len(perm), 4, 4, requires_grad=True)
    assert torch.equal(module(x), x[:, perm])
    module(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    P = igc.permutation_matrix(perm)
    v = torch.randn(len(perm))
    assert torch.allclose(P @ v, v[perm])


def test_channel_permutation_bad_inputs():
    with pytest.raises(ValueError, match="permutation of 0..2"):
        igc.ChannelPermutation([0, 0, 1])
    with pytest.raises(ValueError, match="reorders 4"):
        igc.ChannelPermutation([1, 0, 3, 2])(torch.randn(1, 3, 2, 2))


# --------------------------------------------------------------------------- group conv = block-diagonal

@pytest.mark.parametrize("c_in,c_out,groups,k", [(8, 8, 4, 3), (6, 12, 3, 1), (4, 4, 4, 5), (5, 10, 1, 3)])
def test_dense_kernel_is_block_diagonal_and_equals_the_group_conv(c_in, c_out, groups, k):
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups, bias=False)
    W = igc.dense_kernel(conv)
    x = torch.randn(2, c_in, 6, 6)
    assert torch.allclose(F.conv2d(x, W, padding=k // 2), conv(x), atol=1e-5)
    # outputs of one group never see another group's inputs: zero off the diagonal blocks
    for o, i in itertools.product(range(c_out), range(c_in)):
        if o // (c_out // groups) != i // (c_in // groups):
            assert W[o, i].abs().sum() == 0
    # and it is exactly chapter 01's weight matrix
    assert torch.equal(W.reshape(c_out, -1), weight_matrix(conv))


def test_dense_kernel_rejects_non_conv():
    with pytest.raises(TypeError, match="nn.Conv2d"):
        igc.dense_kernel(nn.Linear(3, 3))


# --------------------------------------------------------------------------- IGCV1 and composed_kernel

@settings(max_examples=25, deadline=None)
@given(L=st.integers(1, 6), M=st.integers(1, 6), k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 3),
       size=st.integers(5, 9), seed=st.integers(0, 10_000))
def test_igcv1_equals_conv_with_composed_kernel(L, M, k, stride, size, seed):
    torch.manual_seed(seed)
    block = igc.IGCV1(L * M, L, M, kernel_size=k, stride=stride, norm=False, act=False)
    x = torch.randn(2, L * M, size, size)
    K = igc.composed_kernel(block)
    assert K.shape == (L * M, L * M, k, k)
    assert torch.allclose(block(x), F.conv2d(x, K, stride=stride, padding=k // 2), atol=1e-5)


def test_igcv1_composed_kernel_with_wider_output():
    block = igc.IGCV1(12, 3, 4, kernel_size=3, stride=2, norm=False, act=False, in_channels=6)
    x = torch.randn(2, 6, 8, 8)
    K = igc.composed_kernel(block)
    assert K.shape == (12, 6, 3, 3)
    assert torch.allclose(block(x), F.conv2d(x, K, stride=2, padding=1), atol=1e-5)


@pytest.mark.parametrize("L,M", [(2, 3), (4, 8), (3, 3), (8, 2)])
def test_product_of_two_block_diagonal_matrices_is_dense(L, M):
    torch.manual_seed(0)
    block = igc.IGCV1(L * M, L, M, kernel_size=1, norm=False, act=False)
    W1 = weight_matrix(block.primary)               # block-diagonal, L blocks
    W2 = weight_matrix(block.secondary)             # block-diagonal, M blocks
    P1 = igc.permutation_matrix(block.permute.perm)
    P2 = igc.permutation_matrix(block.permute_back.perm)
    assert (W1 == 0).float().mean() == pytest.approx(1 - 1 / L)
    assert (W2 == 0).float().mean() == pytest.approx(1 - 1 / M)
    W = P2 @ W2 @ P1 @ W1
    assert torch.allclose(W, igc.composed_kernel(block)[:, :, 0, 0], atol=1e-6)
    assert (W != 0).all()                                 # dense
    assert torch.equal(igc.connectivity(block), torch.ones(L * M, L * M, dtype=torch.long))


def test_igcv1_block_with_norm_and_act_runs_and_has_the_papers_parameters():
    block = igc.IGCV1(32, 4, 8)
    y = block(torch.randn(2, 32, 6, 6))
    assert y.shape == (2, 32, 6, 6) and (y >= 0).all()
    assert n_params(block.primary) + n_params(block.secondary) == igc.igcv1_params(4, 8, 3) == 2432


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(channels=30, L=4, M=8), ValueError, "channels=30 is not divisible by L=4"),
    (dict(channels=32, L=4, M=4), ValueError, r"must equal L·M = 4·4 = 16"),
    (dict(channels=8, L=0, M=8), ValueError, "L=0"),
    (dict(channels=8, L=8, M=0), ValueError, "M=0"),
    (dict(channels=8, L=2, M=4, kernel_size=4), ValueError, "kernel_size=4 must be odd"),
    (dict(channels=8, L=2, M=4, kernel_size=0), ValueError, "kernel_size=0"),
    (dict(channels=8, L=2, M=4, stride=0), ValueError, "stride=0"),
    (dict(channels=8, L=2, M=4, in_channels=5), ValueError, "in_channels=5 is not divisible by L=2"),
    (dict(channels=8, L=2.5, M=4), TypeError, "L=2.5"),
])
def test_igcv1_bad_inputs(kwargs, err, match):
    with pytest.raises(err, match=match):
        igc.IGCV1(**kwargs)


def test_composed_kernel_rejects_other_modules():
    with pytest.raises(TypeError, match="IGCV1, IGCV2 or IGCV3"):
        igc.composed_kernel(nn.Conv2d(3, 3, 3))


# --------------------------------------------------------------------------- extreme cases

@pytest.mark.parametrize("C,k,stride", [(6, 3, 1), (8, 5, 2)])
def test_M_equal_1_is_depthwise_then_pointwise(C, k, stride):
    torch.manual_seed(0)
    block = igc.IGCV1(C, C, 1, kernel_size=k, stride=stride, norm=False, act=False)
    assert torch.equal(block.permute.perm, torch.arange(C)) and torch.equal(block.permute_back.perm, torch.arange(C))
    name, plain = igc.extreme_case(block)
    dw, pw = plain
    assert name == "depthwise separable"
    assert dw.groups == C and dw.weight.shape == (C, 1, k, k)       # depthwise k×k
    assert pw.groups == 1 and pw.weight.shape == (C, C, 1, 1)       # dense 1×1
    x = torch.randn(2, C, 7, 7)
    expected = F.conv2d(F.conv2d(x, block.primary.weight, stride=stride, padding=k // 2, groups=C),
                        block.secondary.weight)
    assert torch.allclose(block(x), expected, atol=1e-5)
    assert torch.allclose(plain(x), expected, atol=1e-5)


@pytest.mark.parametrize("C,k,stride", [(6, 3, 1), (5, 1, 2)])
def test_L_equal_1_is_regular_conv_then_per_channel_scaling(C, k, stride):
    torch.manual_seed(0)
    block = igc.IGCV1(C, 1, C, kernel_size=k, stride=stride, norm=False, act=False)
    name, plain = igc.extreme_case(block)
    conv, scale = plain
    assert name == "regular conv + per-channel scaling"
    assert conv.groups == 1 and conv.weight.shape == (C, C, k, k)
    assert scale.groups == C and scale.weight.shape == (C, 1, 1, 1)  # one number per channel
    x = torch.randn(2, C, 7, 7)
    s = block.secondary.weight.view(1, C, 1, 1)
    expected = F.conv2d(x, block.primary.weight, stride=stride, padding=k // 2) * s
    assert torch.allclose(block(x), expected, atol=1e-5)
    assert torch.allclose(plain(x), expected, atol=1e-5)


def test_extreme_case_rejects_middle_blocks():
    with pytest.raises(ValueError, match="M = 1 or L = 1"):
        igc.extreme_case(igc.IGCV1(8, 2, 4))
    with pytest.raises(TypeError, match="IGCV1"):
        igc.extreme_case(nn.Conv2d(2, 2, 1))


# --------------------------------------------------------------------------- parameters and width

def test_parameter_formula_matches_real_layers():
    for L, M, k in itertools.product([1, 2, 3, 4, 24], [1, 2, 4, 8], [1, 3, 5]):
        block = igc.IGCV1(L * M, L, M, k, norm=False, act=False)
        assert igc.igcv1_params(L, M, k) == n_params(block) == L * M * M * k * k + M * L * L
        assert igc.regular_params(L * M, k) == n_params(nn.Conv2d(L * M, L * M, k, bias=False))


def test_wider_iff_M_k2_greater_than_L_over_L_minus_1():
    for L, M, k in itertools.product(range(1, 31), range(1, 31), [1, 3, 5]):
        wider = igc.igc_is_wider(L, M, k)
        assert wider == igc.wider_condition(L, M, k)
        # independent reference: exact rationals, the paper's inequality as written
        from fractions import Fraction
        paper = L > 1 and M * k * k > Fraction(L, L - 1)
        assert wider == paper
        # and the float widths agree with it (away from ties)
        width = igc.equal_param_width(L, M, k)
        if abs(L * M - width) > 1e-9:
            assert wider == (L * M > width)


def test_width_report_of_igc_L4M8():
    r = igc.width_report(4, 8, 3)
    assert r.params == 2432 and r.channels == 32
    assert r.params_ratio == pytest.approx(2432 / (32 * 32 * 9))
    assert r.equal_param_width == pytest.approx(math.sqrt(2432) / 3)
    assert r.width_ratio == pytest.approx(32 / (math.sqrt(2432) / 3)) and r.wider
    assert "width_ratio" in Rows([r, igc.width_report(24, 2)]).table()


# --------------------------------------------------------------------------- IGCV2

@pytest.mark.parametrize("C,sizes", [(24, (2, 3, 4)), (24, (4, 3, 2)), (27, (3, 3, 3)), (16, (1, 4, 4)),
                                     (12, (12,)), (8, (2, 2, 2)), (12, (3, 4))])
def test_igcv2_chain_is_strictly_complementary_and_a_conv(C, sizes):
    torch.manual_seed(0)
    block = igc.IGCV2(C, sizes, kernel_size=3, norm=False, act=False)
    x = torch.randn(2, C, 6, 6)
    assert torch.allclose(block(x), F.conv2d(x, igc.composed_kernel(block), padding=1), atol=1e-5)
    expected = "strict" if math.prod(sizes) == C else "loose"
    assert igc.classify(block) == expected
    assert n_params(block) == igc.igcv2_params(C, sizes, 3)


def test_igcv2_with_two_branches_is_igcv1():
    a = igc.IGCV1(12, 3, 4, norm=False, act=False)
    b = igc.IGCV2(12, (4, 3), norm=False, act=False)
    assert [type(m) for m in a.linear] == [type(m) for m in b.linear]
    for ma, mb in zip(a.linear, b.linear):
        if isinstance(ma, nn.Conv2d):
            assert (ma.groups, ma.kernel_size) == (mb.groups, mb.kernel_size)
        else:
            assert torch.equal(ma.perm, mb.perm)


def test_igcv2_with_too_small_product_is_disconnected():
    block = igc.IGCV2(16, (2, 2), norm=False, act=False)        # 2·2 = 4 < 16
    assert igc.classify(block) == "disconnected"


def test_igcv2_bad_inputs():
    with pytest.raises(ValueError, match=r"not divisible by branch size branch_sizes\[1\]=5"):
        igc.IGCV2(12, (3, 5))
    with pytest.raises(ValueError, match="at least one"):
        igc.IGCV2(12, ())


def _all_chains_brute_force(C):
    """Every multiset of integers ≥ 2 with product C, by trying all non-decreasing tuples."""
    found = set()
    for n in range(1, int(math.log2(C)) + 1):
        for combo in itertools.combinations_with_replacement(range(2, C + 1), n):
            if math.prod(combo) == C:
                found.add(combo)
    return found


@pytest.mark.parametrize("C", [2, 12, 16, 24, 30, 36])
def test_valid_chains_against_brute_force(C):
    assert set(igc.valid_chains(C)) == _all_chains_brute_force(C)


@pytest.mark.parametrize("C", [16, 27, 64, 81, 256])
def test_balance_condition_equal_branches_minimise_parameters(C):
    for length in range(1, 9):
        chains = [c for c in igc.valid_chains(C) if len(c) == length]
        if not chains:
            continue
        best = min(chains, key=sum)
        K = round(C ** (1 / length))
        if K ** length == C:                     # a balanced chain exists: it is the best of its length
            assert sum(best) == length * K
            assert igc.balanced_chain(C, length) == (K,) * length


def test_parameter_minimising_length_is_about_ln_C():
    # continuous relaxation: L·C^(1/L) is minimal at L = ln C
    for C in (16, 64, 128, 1024):
        grid = [1 + i / 1000 for i in range(1, 20000)]
        best_L = min(grid, key=lambda L: L * C ** (1 / L))
        assert best_L == pytest.approx(igc.optimal_length(C), abs=2e-3)
    # integer chains (brute force): for C with small prime factors an optimal chain has length ≈ ln C
    for C in (8, 16, 32, 64, 128, 256, 512, 27, 81, 243, 36, 72, 144, 216):
        lengths = {len(c) for c in igc.best_chains(C)}
        assert min(abs(n - math.log(C)) for n in lengths) <= 1.0, (C, lengths)
        # and an optimal chain is never the short, wide one (one dense conv) when C is composite
        assert 1 not in lengths


def test_igcv2_paper_form():
    # the paper's block: a channel-wise k×k (K_1 = 1) then L − 1 1×1 group convs with ΠK = C
    assert igc.igcv2_branches(64, 4) == (1, 4, 4, 4)
    assert igc.igcv2_branches(24, 3) == (1, 4, 6)
    block = igc.IGCV2(64, igc.igcv2_branches(64, 4), norm=False, act=False)
    assert block.layers[0].groups == 64 and block.layers[0].kernel_size == (3, 3)
    assert igc.classify(block) == "strict"
    assert sum(p.numel() for p in block.parameters()) == igc.igcv2_params(64, (1, 4, 4, 4)) == 64 * 9 + 64 * 12
    # brute force: the fewest parameters sit at L − 1 within one of ln C, and L > 2 for composite C
    for C in (16, 64, 81, 256, 1024):
        Ls, params = igc.best_igcv2_L(C)
        assert min(abs(L - 1 - math.log(C)) for L in Ls) <= 1.0 and min(Ls) > 2
        assert params == min(igc.igcv2_params(C, (1,) + c) for c in igc.valid_chains(C))
    with pytest.raises(ValueError, match="L − 1 = 3"):
        igc.igcv2_branches(14, 4)
    with pytest.raises(ValueError, match="L=1"):
        igc.igcv2_branches(16, 1)


def test_widest_igcv1_brute_force_and_am_gm():
    for budget, k in ((5_000, 3), (20_000, 3), (2_000, 1), (30_000, 5)):
        L, M = igc.widest_igcv1(budget, k)
        assert igc.igcv1_params(L, M, k) <= budget
        widest = max(a * b for a in range(1, 200) for b in range(1, 200) if igc.igcv1_params(a, b, k) <= budget)
        assert L * M == widest
        assert L * M <= igc.max_igcv1_width(budget, k) + 1e-9        # AM–GM bound
        assert 0.75 <= L / (M * k * k) <= 1.35                         # near L = M·k²
    # at a fixed width, the parameters are smallest at L = M·k² (G = 36, k = 3: L = 18, M = 2)
    G = 36
    pairs = [(L, G // L) for L in range(1, G + 1) if G % L == 0]
    assert min(pairs, key=lambda p: igc.igcv1_params(*p)) == (18, 2)
    with pytest.raises(ValueError, match="budget=5 is below"):
        igc.widest_igcv1(5, 3)


def test_balanced_chain_bad_inputs():
    with pytest.raises(ValueError, match="C=14 cannot be written as a product of L=3"):
        igc.balanced_chain(14, 3)
    with pytest.raises(ValueError, match="channels=1"):
        igc.valid_chains(1)


# --------------------------------------------------------------------------- IGCV3

def test_igcv3_branch_is_a_conv_and_loosely_complementary():
    torch.manual_seed(0)
    block = igc.IGCV3(8, expansion=6, groups=2, norm=False, act=False)
    x = torch.randn(2, 8, 6, 6)
    K = igc.composed_kernel(block)
    assert torch.allclose(block(x), F.conv2d(x, K, padding=1), atol=1e-5)
    counts = igc.connectivity(block)
    assert igc.classify(counts) == "loose"
    assert torch.equal(counts, torch.full((8, 8), 6 * 8 // 4))     # t·C / g² paths each
    # without the permutation the two group convs never mix
    no_perm = [block.expand, block.depthwise, block.project]
    assert igc.classify(no_perm) == "disconnected"
    # the official code's permutations: groups=2 after the expansion, groups=C/2 after the projection
    assert torch.equal(block.permute.perm, igc.interleave(2, 24))
    assert torch.equal(block.permute_out.perm, igc.interleave(4, 2))
    # the loose condition is the complementary condition over super-channels
    assert igc.classify(igc.super_channel_connectivity(block)) == "strict"
    assert igc.classify(igc.super_channel_connectivity(no_perm)) == "disconnected"


def test_super_channel_connectivity():
    # IGCV1 has no redundant channels: super-channel counts are the channel counts
    b = igc.IGCV1(12, 3, 4, norm=False, act=False)
    assert torch.equal(igc.super_channel_connectivity(b), igc.connectivity(b))
    # two dense convs: one inner super-channel, one path per pair (while channels have 4)
    assert igc.connectivity([igc.dense(4), igc.dense(4)]).unique().tolist() == [4]
    assert igc.super_channel_connectivity([igc.dense(4), igc.dense(4)]).unique().tolist() == [1]
    # IGCV3-like chain of ChannelOps with 4 groups
    ops = [igc.group_conv(16, 4, 32), igc.shuffle(32, 4), igc.depthwise(32), igc.group_conv(32, 4, 16)]
    assert igc.classify(ops) == "loose" and igc.classify(igc.super_channel_connectivity(ops)) == "strict"
    # a disconnected chain stays disconnected; a single op is its own adjacency
    assert igc.classify(igc.super_channel_connectivity([igc.group_conv(8, 2), igc.group_conv(8, 2)])) == "disconnected"
    assert torch.equal(igc.super_channel_connectivity([igc.group_conv(8, 2)]), igc.adjacency(igc.group_conv(8, 2)))


def test_igcv3_stride_two_has_no_residual_and_low_rank_pair():
    block = igc.IGCV3(8, expansion=4, groups=2, stride=2, out_channels=16, norm=False, act=False)
    assert not block.residual
    x = torch.randn(2, 8, 8, 8)
    assert torch.allclose(block(x), F.conv2d(x, igc.composed_kernel(block), stride=2, padding=1), atol=1e-5)
    # low rank: a wide (t·C) feature passes the narrow C-channel output on its way to the next
    # block's expansion, so the product expand_next · project has rank ≤ C
    nxt = igc.IGCV3(16, expansion=4, groups=2)
    product = weight_matrix(nxt.expand) @ weight_matrix(block.project)
    assert product.shape == (64, 32) and torch.linalg.matrix_rank(product.detach()) <= 16


def test_igcv3_full_block_runs():
    block = igc.IGCV3(8)
    y = block(torch.randn(2, 8, 5, 5))
    assert y.shape == (2, 8, 5, 5)


@pytest.mark.parametrize("kwargs,match", [(dict(channels=6, groups=4), "channels=6 is not divisible by groups=4"),
                                          (dict(channels=8, out_channels=9), "out_channels=9"),
                                          (dict(channels=8, expansion=0), "expansion=0"),
                                          (dict(channels=8, kernel_size=2), "kernel_size=2 must be odd")])
def test_igcv3_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        igc.IGCV3(**kwargs)


# --------------------------------------------------------------------------- connectivity

def _brute_force_paths(ops):
    """Count paths by walking every route through the layers, one connection at a time."""
    def sees(op, o, i):
        if op.kind == "perm":
            return op.perm[o] == i
        return o // (op.c_out // op.groups) == i // (op.c_in // op.groups)

    c_in, c_out = ops[0].c_in, ops[-1].c_out
    counts = torch.zeros(c_out, c_in, dtype=torch.long)

    def walk(layer, channel, start):
        if layer == len(ops):
            counts[channel, start] += 1
            return
        op = ops[layer]
        for o in range(op.c_out):
            if sees(op, o, channel):
                walk(layer + 1, o, start)

    for i in range(c_in):
        walk(0, i, i)
    return counts


def _ones_conv_paths(ops):
    """Path counts from PyTorch itself: 1×1 convs with all weights 1, fed one-hot channels."""
    x = torch.eye(ops[0].c_in).view(ops[0].c_in, ops[0].c_in, 1, 1)
    for op in ops:
        if op.kind == "perm":
            x = x[:, list(op.perm)]
        else:
            x = F.conv2d(x, torch.ones(op.c_out, op.c_in // op.groups, 1, 1), groups=op.groups)
    return x[:, :, 0, 0].t().round().long()


def _random_chain(rng):
    C = rng.choice([4, 6, 8, 12])
    ops, c = [], C
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["group", "perm", "dw", "dense", "shuffle", "expand"])
        divisors = [g for g in range(1, c + 1) if c % g == 0]
        if kind == "group":
            ops.append(igc.group_conv(c, rng.choice(divisors)))
        elif kind == "perm":
            p = list(range(c))
            rng.shuffle(p)
            ops.append(igc.permutation(p))
        elif kind == "dw":
            ops.append(igc.depthwise(c))
        elif kind == "dense":
            ops.append(igc.dense(c))
        elif kind == "shuffle":
            ops.append(igc.shuffle(c, rng.choice(divisors)))
        else:
            g = rng.choice(divisors)
            ops.append(igc.group_conv(c, g, 2 * c))
            c = 2 * c
    return ops


def test_connectivity_matches_brute_force_path_enumeration_and_pytorch():
    rng = random.Random(0)
    verdicts = set()
    for _ in range(60):
        ops = _random_chain(rng)
        counts = igc.connectivity(ops)
        assert torch.equal(counts, _brute_force_paths(ops))
        assert torch.equal(counts, _ones_conv_paths(ops))
        verdicts.add(igc.classify(counts))
    assert verdicts == set(igc.VERDICTS)        # the random chains reach all three verdicts


def test_connectivity_of_modules_matches_ops():
    block = igc.IGCV1(12, 3, 4)
    ops = igc.as_ops(block)
    assert [op.kind for op in ops] == ["conv", "perm", "conv", "perm"]
    assert torch.equal(igc.connectivity(block), igc.connectivity(ops))
    seq = nn.Sequential(nn.Conv2d(4, 4, 1, groups=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1, groups=2))
    assert igc.classify(seq) == "disconnected"


def test_connectivity_bad_inputs():
    with pytest.raises(ValueError, match="expects c_in=6 channels but the chain delivers 4"):
        igc.connectivity([igc.dense(4), igc.dense(6)])
    with pytest.raises(ValueError, match="empty"):
        igc.connectivity([])
    with pytest.raises(TypeError, match="MaxPool2d"):
        igc.connectivity([nn.MaxPool2d(2)])
    with pytest.raises(ValueError, match="c_in=6 is not divisible by groups=4"):
        igc.group_conv(6, 4)
    with pytest.raises(ValueError, match="permutation of 0..2"):
        igc.permutation([0, 1, 1])


def test_classify_matrices():
    assert igc.classify(torch.ones(3, 3, dtype=torch.long)) == "strict"
    assert igc.classify(torch.tensor([[1, 2], [3, 1]])) == "loose"
    assert igc.classify(torch.tensor([[1, 0], [1, 1]])) == "disconnected"
    assert igc.classify([igc.group_conv(8, 2), igc.shuffle(8, 2), igc.group_conv(8, 4)]) == "strict"


def test_chain_params():
    ops = [igc.depthwise(8, 3), igc.dense(8)]
    assert igc.chain_params(ops) == 8 * 9 + 64
    modules = [nn.Conv2d(8, 8, 3, groups=8, bias=False), nn.Conv2d(8, 8, 1, bias=False)]
    assert igc.chain_params(modules) == sum(n_params(m) for m in modules)


# --------------------------------------------------------------------------- explorer

@pytest.mark.parametrize("preset,verdict", [("regular", "strict"), ("group", "disconnected"),
                                            ("xception", "strict"), ("igcv1", "strict"),
                                            ("igcv2", "strict"), ("igcv3", "loose"),
                                            ("shuffle", "loose"), ("no shuffle", "disconnected")])
def test_connectivity_state_verdicts(preset, verdict):
    state = igc.connectivity_state(preset, C=16, L=2, M=4)
    assert state.verdict == verdict
    assert torch.equal(state.counts, igc.connectivity(state.ops))


def test_connectivity_state_parameters_against_formulas():
    s = igc.connectivity_state("igcv1", C=99, L=4, M=8)       # C is L·M for IGCV1
    assert s.channels == 32 and s.params == igc.igcv1_params(4, 8, 3)
    assert s.params_ratio == pytest.approx(2432 / 9216)
    assert s.width_ratio == pytest.approx(igc.width_report(4, 8).width_ratio)
    s = igc.connectivity_state("regular", C=16)
    assert s.params == 16 * 16 * 9 and s.params_ratio == 1.0
    s = igc.connectivity_state("igcv2", C=64, L=4)           # channel-wise 3×3 + three 1×1 with K = 4, 4, 4
    assert [op.groups for op in s.ops if op.kind == "conv"] == [64, 16, 16, 16]
    assert [op.kernel_size for op in s.ops if op.kind == "conv"] == [3, 1, 1, 1]
    assert s.params == igc.igcv2_params(64, (1, 4, 4, 4), 3) == 64 * 9 + 64 * 12
    assert "L = number of group convs" in s.sliders and "M unused" in s.sliders
    assert "primary partitions" in igc.connectivity_state("igcv1", L=2, M=4).sliders
    assert "expansion t" in igc.connectivity_state("igcv3", C=8, L=2, M=3).sliders


@pytest.mark.parametrize("settings,match", [
    (dict(preset="group", C=30, L=4), "C=30 is not divisible by L=4"),
    (dict(preset="shuffle", C=10, L=4), "C=10 is not divisible by L=4"),
    (dict(preset="igcv2", C=14, L=4), "C=14 cannot be written as a product of L − 1 = 3"),
    (dict(preset="igcv2", C=16, L=1), "L=1: an IGCV2 block has L ≥ 2 group convs"),
    (dict(preset="igcv1", L=32, M=32), "too many to draw"),
    (dict(preset="nope"), "preset='nope' is unknown"),
    (dict(preset="regular", C=0), "C=0"),
])
def test_connectivity_state_invalid_settings(settings, match):
    with pytest.raises(ValueError, match=match):
        igc.connectivity_state(**settings)


def test_explorer_widget_shows_message_and_figure():
    explorer = igc.connectivity_explorer("igcv1", C=16, L=4, M=4)
    assert explorer.error is None and explorer.state.verdict == "strict"
    assert "strict complementary" in explorer.readout.value
    assert explorer.image.value[:4] == b"\x89PNG"
    explorer.set(preset="group", C=30, L=4)
    assert explorer.error is not None and "not divisible by L=4" in explorer.error
    explorer.set(preset="igcv3", C=8, L=2, M=3)
    assert explorer.error is None and explorer.state.verdict == "loose"


def test_explorer_accepts_extra_presets():
    def resnext(C, L, M, k):
        return channels.Chain((igc.dense(C, C // 2), igc.group_conv(C // 2, L, kernel_size=k), igc.dense(C // 2, C)),
                              "ResNeXt", C)
    preset = channels.Preset("resnext", resnext, "C = channels, L = cardinality")
    explorer = igc.connectivity_explorer("resnext", C=16, L=4, M=1, presets=[preset])
    assert explorer.state.verdict == "loose" and "resnext" in explorer.controls["preset"].options
    assert "igcv1" in explorer.controls["preset"].options and "shuffle" in explorer.controls["preset"].options
    with pytest.raises(TypeError, match="channels.Preset"):            # the old (C, L, M, k) -> tuple protocol
        igc.connectivity_state("resnext", presets={"resnext": resnext})


def test_connectivity_state_is_a_frozen_value():
    s = igc.connectivity_state("igcv1", L=2, M=4)
    assert isinstance(s, channels.ConnectivityState) and s.verdict == "strict"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.verdict = "loose"
    with pytest.raises(AttributeError, match="verdicts"):              # a misspelt field fails where it is read
        s.verdicts
    with pytest.raises(AttributeError):
        s.verdicts


def test_chapters_07_to_09_use_the_core_toolkit_not_chapter_06():
    assert igc.connectivity is channels.connectivity and igc.ChannelOp is channels.ChannelOp
    assert list(igc.PRESETS) == ["regular", "group", "xception", "igcv1", "igcv2", "igcv3", "shuffle", "no shuffle"]
    assert set(channels.PRESETS) < set(igc.PRESETS)
    for chapter in ("resnets", "densenet", "smallnets"):                 # chapters 07-09 import the core module
        source = (Path(igc.__file__).parent / f"{chapter}.py").read_text()
        imports = [line for line in source.splitlines() if line.startswith(("from .", "import "))]
        assert not [line for line in imports if "igc" in line], chapter


# --------------------------------------------------------------------------- plain networks

def test_plain_nets_shapes_and_widths():
    net = igc.plain_net("igc", L=4, M=2, depth=8, stages=3, stem_stride=2)
    blocks = [m for m in net if isinstance(m, igc.IGCV1)]
    assert [(b.L, b.M) for b in blocks] == [(4, 2)] * 2 + [(4, 4)] * 2 + [(4, 8)] * 2   # M doubles, L fixed
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    reg = igc.plain_net("regular", 8, depth=5, stages=3)
    assert reg(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    assert sum(isinstance(m, nn.Conv2d) for m in reg.modules()) == 4


def test_regular_width_for_equal_parameters():
    target = n_params(igc.plain_net("igc", L=4, M=8, depth=5, stages=3))
    w = igc.regular_width_for(target, depth=5, stages=3)
    counts = {v: n_params(igc.plain_net("regular", v, depth=5, stages=3)) for v in (w - 1, w, w + 1)}
    assert abs(counts[w] - target) == min(abs(c - target) for c in counts.values())


def test_plain_net_bad_inputs():
    with pytest.raises(ValueError, match="depth=7 must be stages·B"):
        igc.plain_net("regular", 8, depth=7, stages=3)
    with pytest.raises(ValueError, match="kind='dense'"):
        igc.plain_net("dense")
