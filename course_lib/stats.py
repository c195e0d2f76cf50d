"""How sure is a measured accuracy? Confidence intervals for figures measured on a finite test set.

An accuracy of 92.0% on 10,000 test images is 9,200 right answers out of 10,000 trials; another test
set of the same size would give a slightly different figure. The **Wilson score interval** says
where the true accuracy lies with 95% confidence: for 9,200 of 10,000 it is 91.5-92.5%, and for
the same 92% on a 2,000-image subset, 90.7-93.1%. Two models whose intervals overlap this much are
not told apart by their accuracies alone (chapters compare them on the same images with a paired
test).

The interval comes from ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``.
"""

from scipy.stats import binomtest

from .args import check_fraction, check_int

__all__ = ["accuracy_interval"]


def accuracy_interval(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson ``confidence`` interval ``(low, high)`` of an ``accuracy`` (a fraction) measured on ``n`` images.

    The interval is that of ``round(accuracy * n)`` right answers out of ``n``.
    """
    check_int("n", n)
    check_fraction("accuracy", accuracy, allow_one=True)
    check_fraction("confidence", confidence)
    correct = round(accuracy * n)
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)
