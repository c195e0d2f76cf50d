"""stats.accuracy_interval against the Wilson score interval written out (Wilson, 1927) and published figures."""

import math

import pytest

from course_lib import stats


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
