"""stats: the Wilson interval against the formula written out (Wilson, 1927) and published figures, McNemar against a brute-force count, timing verdicts on interleaved rounds."""

import math

import pytest
import torch

from course_lib import measure, stats


def wilson_by_hand(correct, n, z=1.959963984540054):
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("correct,n", [(9_200, 10_000), (1_840, 2_000), (0, 50), (50, 50), (7, 9)])
def test_wilson_interval_equals_the_formula(correct, n):
    low, high = stats.accuracy_interval(correct / n, n)
    ref_low, ref_high = wilson_by_hand(correct, n)
    assert low == pytest.approx(ref_low, abs=1e-9) and high == pytest.approx(ref_high, abs=1e-9)
    assert 0 <= low <= correct / n <= high <= 1


def test_the_figures_of_the_module_docstring():
    low, high = stats.accuracy_interval(0.92, 10_000)
    assert (round(100 * low, 1), round(100 * high, 1)) == (91.5, 92.5)
    low, high = stats.accuracy_interval(0.92, 2_000)
    assert (round(100 * low, 1), round(100 * high, 1)) == (90.7, 93.1)
    narrow, wide = stats.accuracy_interval(0.92, 10_000, 0.5), stats.accuracy_interval(0.92, 10_000, 0.99)
    assert wide[0] < narrow[0] < 0.92 < narrow[1] < wide[1]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="accuracy=1.2"):
        stats.accuracy_interval(1.2, 10)
    with pytest.raises(ValueError, match="accuracy=nan"):
        stats.accuracy_interval(float("nan"), 10)
    with pytest.raises(ValueError, match="n=0"):
        stats.accuracy_interval(0.5, 0)
    with pytest.raises(TypeError, match="n=10.0 must be an int"):
        stats.accuracy_interval(0.5, 10.0)
    with pytest.raises(ValueError, match="confidence=1"):
        stats.accuracy_interval(0.5, 10, confidence=1)


# --------------------------------------------------------------------------- paired comparisons

def mcnemar_by_hand(k, m):
    """Exact two-sided binomial test of k successes in m fair coin flips, by enumeration."""
    probs = [math.comb(m, i) / 2 ** m for i in range(m + 1)]
    return min(1.0, sum(p for p in probs if p <= probs[k] * (1 + 1e-7)))


def correctness(n, only_a, only_b, both):
    a = torch.zeros(n, dtype=torch.bool)
    b = torch.zeros(n, dtype=torch.bool)
    a[:only_a] = True
    b[only_a:only_a + only_b] = True
    a[only_a + only_b:only_a + only_b + both] = True
    b[only_a + only_b:only_a + only_b + both] = True
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return a[perm], b[perm]


@pytest.mark.parametrize("only_a,only_b", [(45, 15), (300, 270), (10, 0), (0, 10), (7, 7), (0, 0), (1, 30)])
def test_compare_is_the_exact_mcnemar_test(only_a, only_b):
    a, b = correctness(10_000, only_a, only_b, 9_000)
    result = stats.compare(a, b)
    assert (result.only_a, result.only_b, result.n) == (only_a, only_b, 10_000)
    assert result.accuracy_a == pytest.approx((only_a + 9_000) / 10_000)
    expected = mcnemar_by_hand(only_a, only_a + only_b) if only_a + only_b else 1.0
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_verdicts_of_the_module_docstring():
    assert stats.compare(*correctness(10_000, 45, 15, 9_000)).verdict() == "holds"
    assert stats.compare(*correctness(10_000, 15, 45, 9_000)).verdict() == "does not hold"
    assert stats.compare(*correctness(10_000, 300, 270, 9_000)).verdict() == "within noise"
    assert stats.compare(*correctness(100, 0, 0, 50)).verdict() == "within noise"
    text = stats.compare(*correctness(10_000, 45, 15, 9_000)).summary()
    assert "90.45% vs 90.15% on 10,000 images (45 vs 15" in text and "McNemar p = 0.0001" in text


def test_compare_refuses_what_it_cannot_pair():
    a = torch.ones(5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"correct_a \(5 images\) and correct_b \(4\)"):
        stats.compare(a, a[:4])
    with pytest.raises(TypeError, match="correct_b must be a 1-d boolean tensor"):
        stats.compare(a, a.long())
    with pytest.raises(TypeError, match="correct_a must be a 1-d boolean tensor"):
        stats.compare([True], a)
    with pytest.raises(ValueError, match="images=0"):
        stats.compare(a[:0], a[:0])
    with pytest.raises(ValueError, match="alpha=1.5"):
        stats.compare(a, a).verdict(alpha=1.5)


def test_timing_verdict_needs_every_round_on_one_side():
    assert stats.timing_verdict([1.0, 1.1, 1.2], [1.3, 1.5]) == "holds"
    assert stats.timing_verdict([1.3, 1.5], [1.0, 1.2]) == "does not hold"
    assert stats.timing_verdict([1.0, 1.4], [1.3, 1.5]) == "within noise"       # overlapping rounds
    assert stats.timing_verdict([1.2], [1.2]) == "within noise"


@pytest.mark.parametrize("bad, error", [([], TypeError), ("fast", TypeError), ([1.0, float("nan")], ValueError),
                                        ([0.0], ValueError), ([-1.0], ValueError), ([True], TypeError)])
def test_timing_verdict_refuses_what_is_not_a_list_of_times(bad, error):
    with pytest.raises(error, match="faster"):
        stats.timing_verdict(bad, [1.0])


def test_latency_rounds_interleaves_and_latencies_takes_their_median():
    calls = []
    models = {"a": lambda x: calls.append("a"), "b": lambda x: calls.append("b")}
    rounds = measure.latency_rounds(models, torch.zeros(1), min_run_time=0.001, rounds=3)
    assert {k: len(v) for k, v in rounds.items()} == {"a": 3, "b": 3} and all(t > 0 for v in rounds.values() for t in v)
    first_b = calls.index("b")
    assert "a" in calls[first_b:]                       # a is timed again after b: the rounds interleave


def test_difference_interval_matches_a_paired_bootstrap():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4000, generator=g) < 0.90
    b = torch.where(torch.rand(4000, generator=g) < 0.8, a, torch.rand(4000, generator=g) < 0.86)
    c = stats.compare(a, b)
    low, high = c.difference_interval()
    assert low < c.accuracy_a - c.accuracy_b < high
    idx = torch.randint(0, 4000, (2000, 4000), generator=g)           # 2,000 paired bootstrap resamples
    diffs = (a[idx].float().mean(1) - b[idx].float().mean(1)).sort().values
    assert abs(low - diffs[50].item()) < 0.002 and abs(high - diffs[1949].item()) < 0.002
    assert stats.compare(a, a).difference_interval() == (0.0, 0.0)


def test_bound_verdict_reads_the_whole_interval_against_the_bound():
    assert stats.bound_verdict(-0.2, 0.6, 1.0) == "holds"
    assert stats.bound_verdict(1.2, 2.0, 1.0) == "does not hold"
    assert stats.bound_verdict(0.5, 1.5, 1.0) == "within noise"
    assert stats.bound_verdict(1.0, 1.0, 1.0) == "holds"
    with pytest.raises(ValueError, match="low=2 is above high=1"):
        stats.bound_verdict(2, 1, 0.5)
    with pytest.raises(ValueError, match="bound"):
        stats.bound_verdict(0.0, 1.0, float("nan"))
