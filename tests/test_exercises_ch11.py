"""Chapter 11's exercise checkers: the fronts accept an independent solution and reject the stub, a
plausible wrong answer and the library's own; the design challenge's checker reloads, measures and
explains."""

import pytest

from course_lib import capstone, checks, compressed_file, models, recipes
from course_lib.checks import ExerciseError
from course_lib.exercises import ch11 as ex


def stub(*args):
    raise NotImplementedError("your code here")


def beats(cj, sj, ci, si):
    return all(a <= b for a, b in zip(cj, ci)) and sj >= si and (any(a < b for a, b in zip(cj, ci)) or sj > si)


def front_right(costs, scores):
    return [i for i in range(len(costs)) if not any(beats(costs[j], scores[j], costs[i], scores[i])
                                                    for j in range(len(costs)))]


def front_first_cost_only(costs, scores):
    return front_right([c[:1] for c in costs], scores)


def front_without_duplicates(costs, scores):
    seen, out = set(), []
    for i in front_right(costs, scores):
        if (costs[i], scores[i]) not in seen:
            seen.add((costs[i], scores[i]))
            out.append(i)
    return out


def gap_right(costs, scores):
    return [max(0.0, max(scores[j] for j in range(len(costs)) if all(a <= b for a, b in zip(costs[j], costs[i])))
                - scores[i]) for i in range(len(costs))]


def test_front(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    ex.check_front(front_right)
    for wrong in (stub, front_first_cost_only, front_without_duplicates):
        with pytest.raises(ExerciseError, match="Pareto front of several costs"):
            ex.check_front(wrong)
    with pytest.raises(ExerciseError, match="capstone.pareto_front"):
        ex.check_front(lambda costs, scores: capstone.pareto_front(costs, scores))


def test_gap_to_front(monkeypatch):
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    ex.check_gap_to_front(gap_right)
    for wrong in (stub, lambda costs, scores: [max(scores) - s for s in scores],            # against the best overall
                  lambda costs, scores: [0.0 if i in front_right(costs, scores) else 1.0 for i in range(len(costs))]):
        with pytest.raises(ExerciseError, match="gap to the front"):
            ex.check_gap_to_front(wrong)

    def via_front(costs, scores):
        front = capstone.pareto_front(costs, scores)
        return [0.0 if i in front else gap_right(costs, scores)[i] for i in range(len(costs))]

    with pytest.raises(ExerciseError, match="capstone.pareto_front"):
        ex.check_gap_to_front(via_front)


def test_submission_checker_accepts_rejects_and_explains(tmp_path, fashion_ready, monkeypatch, capsys):
    lenet = recipes.shipped_model("lenet5-fmnist")
    path = tmp_path / "lenet5.dc"
    size = compressed_file.save_compressed(lenet, path)                      # unshared weights: wide codes
    generous = capstone.Challenge(min_accuracy=0.5, max_bytes=10 * size, max_latency_ms=1000.0)
    result = ex.check_submission(models.lenet5(), path, generous, test_subset=500)
    assert result.passed and result.file_bytes == size and result.accuracy > 0.85
    assert "✅ design challenge: correct." in capsys.readouterr().out
    tight = capstone.Challenge(min_accuracy=0.99, max_bytes=size - 1, max_latency_ms=1000.0)
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    with pytest.raises(checks.ExerciseError) as err:
        ex.check_submission(models.lenet5(), path, tight, test_subset=500)
    assert "below the target 99.0%" in str(err.value) and "over the budget" in str(err.value)
    broken = tmp_path / "broken.dc"
    broken.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(checks.ExerciseError, match="does not reload"):
        ex.check_submission(models.lenet5(), broken, generous, test_subset=500)
    with pytest.raises(checks.ExerciseError, match="does not reload"):
        ex.check_submission(models.vgg_small(), path, generous, test_subset=500)   # wrong architecture
    monkeypatch.setenv("COURSE_CHECKS", "lenient")
    assert ex.check_submission(models.lenet5(), path, tight, test_subset=500).passed is False
    assert "❌ design challenge" in capsys.readouterr().out
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        capstone.evaluate_submission("lenet5", path)


# --------------------------------------------------------------------------- the pipeline's measurements

def test_check_challenge_stub_wrong_and_right(tmp_path, fashion_ready):
    def stub(path):
        raise NotImplementedError

    with pytest.raises(checks.ExerciseError, match="not done yet"):
        ex.check_challenge(stub, path=tmp_path / "s.dc")
    lenet = recipes.shipped_model("lenet5-fmnist")

    def submit(path):
        compressed_file.save_compressed(lenet, path, recipe="lenet5-fmnist")
        return models.lenet5()

    with pytest.raises(checks.ExerciseError, match="over the budget"):       # float LeNet-5: far too big
        ex.check_challenge(submit, path=tmp_path / "l.dc", test_subset=300)
    generous = capstone.Challenge(0.5, 10**7, 1000.0)
    assert ex.check_challenge(submit, generous, path=tmp_path / "l.dc", test_subset=300).passed
    with pytest.raises(TypeError, match="pass your function"):
        ex.check_challenge("my_submission")


