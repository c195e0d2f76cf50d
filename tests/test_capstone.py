"""Chapter 11's own code: the Pareto front (against brute force) and the design challenge's checker."""

import itertools
import random

import pytest
import torch

from course_lib import capstone, checks, compress, data, models


def brute_front(costs, scores):
    n = len(scores)
    keep = []
    for i in range(n):
        dominated = False
        for j in range(n):
            cj = costs[j] if isinstance(costs[j], tuple) else (costs[j],)
            ci = costs[i] if isinstance(costs[i], tuple) else (costs[i],)
            if j != i and all(a <= b for a, b in zip(cj, ci)) and scores[j] >= scores[i] \
                    and (cj != ci or scores[j] != scores[i]):
                dominated = True
        if not dominated:
            keep.append(i)
    return keep


def test_front_small_example_with_ties_and_duplicates():
    costs = [1, 2, 2, 3, 3, 4, 1]
    scores = [0.5, 0.7, 0.6, 0.7, 0.9, 0.9, 0.5]
    # 0 and 6 are duplicates (both kept); 2 loses to 1 (same cost, lower score); 3 loses to 1 (cost
    # higher, score equal); 5 loses to 4 (same score, higher cost).
    assert capstone.pareto_front(costs, scores) == [0, 1, 4, 6]


@pytest.mark.parametrize("seed", range(25))
def test_front_equals_brute_force(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 30)
    k = rng.choice([1, 2])
    costs = [rng.randint(0, 6) if k == 1 else (rng.randint(0, 4), rng.randint(0, 4)) for _ in range(n)]
    scores = [rng.randint(0, 5) / 5 for _ in range(n)]
    assert capstone.pareto_front(costs, scores) == brute_front(costs, scores)


def test_front_bad_input():
    with pytest.raises(ValueError, match="one score per point"):
        capstone.pareto_front([1, 2], [0.5])
    with pytest.raises(ValueError, match="finite"):
        capstone.pareto_front([1, float("nan")], [0.5, 0.6])
    with pytest.raises(ValueError, match="same number of costs"):
        capstone.pareto_front([(1, 2), (3,)], [0.5, 0.6])
    with pytest.raises(TypeError, match="costs must be a sequence"):
        capstone.pareto_front(3, [0.5])
    assert capstone.pareto_front([], []) == []


def test_submission_checker_accepts_rejects_and_explains(tmp_path, fashion_ready, monkeypatch, capsys):
    lenet = data.load_checkpoint("lenet5-fmnist")
    path = tmp_path / "lenet5.dc"
    size = compress.save_compressed(lenet, path)                      # unshared weights: wide codes
    generous = capstone.Challenge(min_accuracy=0.5, max_bytes=10 * size, max_latency_ms=1000.0)
    result = capstone.check_submission(models.lenet5(), path, generous, test_subset=500)
    assert result.passed and result.file_bytes == size and result.accuracy > 0.85
    assert "✅ design challenge: correct." in capsys.readouterr().out
    tight = capstone.Challenge(min_accuracy=0.99, max_bytes=size - 1, max_latency_ms=1000.0)
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    with pytest.raises(checks.ExerciseError) as err:
        capstone.check_submission(models.lenet5(), path, tight, test_subset=500)
    assert "below the target 99.0%" in str(err.value) and "over the budget" in str(err.value)
    broken = tmp_path / "broken.dc"
    broken.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(checks.ExerciseError, match="does not reload"):
        capstone.check_submission(models.lenet5(), broken, generous, test_subset=500)
    with pytest.raises(checks.ExerciseError, match="does not reload"):
        capstone.check_submission(models.vgg_small(), path, generous, test_subset=500)   # wrong architecture
    monkeypatch.setenv("COURSE_CHECKS", "lenient")
    assert capstone.check_submission(models.lenet5(), path, tight, test_subset=500).passed is False
    assert "❌ design challenge" in capsys.readouterr().out
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        capstone.evaluate_submission("lenet5", path)
