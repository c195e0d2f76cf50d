"""Chapter 11's own code: the Pareto front (against brute force) and the design challenge's checker."""

import random

import pytest
import torch
from torch.nn.utils import parametrize

from course_lib import capstone, checks, compressed_file, data, models, recipes


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


def _row(name, acc, size, ms, settings=(), ms64=1.0, macs=100):
    return capstone.RecipeRow(name, "", acc, 10, 5, macs, size, ms, ms64, settings)


def test_challenge_rejects_chapter05_lenet5_and_names_every_budget():
    c = capstone.CHALLENGE
    lenet5_dc = capstone.Submission(0.895, 42_062, 0.5, c)         # chapter 05's quick-profile result
    assert not lenet5_dc.passed and "over the budget" in lenet5_dc.failures[0]
    section2 = capstone.Submission(0.8678, 20_348, 1.91, c)           # section 2's VGG-½ + DC, as measured
    assert not section2.passed and "over the budget" in section2.failures[0]
    solution = capstone.Submission(0.8615, 14_358, 1.91, c)           # the instructor's, as measured
    assert solution.passed and solution.accuracy - c.min_accuracy >= 0.01 and solution.file_bytes < 0.95 * c.max_bytes
    assert capstone.Submission(c.min_accuracy, c.max_bytes, c.max_latency_ms, c).passed   # boundaries pass
    assert "KB of real file bytes" in c.describe()


def test_measure_recipe_counts_what_it_says(tmp_path, fashion_ready):
    from course_lib import measure, prune, surgery, train
    model = models.lenet_300_100()
    prune.magnitude_prune(model, 0.5)
    _, test = data.loaders("fashion-mnist", 100, train_subset=1, test_subset=200, augment=False, device="cpu")
    row = capstone.measure_recipe("lenet", model, test, latency_s=0.01, settings=("a",))
    plain = capstone.as_plain(model)
    assert not any(prune.is_reparametrized(m) for m in surgery.weight_layers(plain).values())
    assert row.params == measure.count_params(models.lenet_300_100())
    assert abs(row.nonzero - measure.count_params(plain, nonzero=True)) == 0 and row.nonzero < row.params
    assert row.macs == measure.count_macs(plain, (1, 1, 28, 28))
    assert row.file_bytes == measure.file_bytes(plain) and row.accuracy == train.evaluate(plain, test)
    assert row.latency_1_ms > 0 and row.latency_64_ms > 0 and row.settings == ("a",)
    path = tmp_path / "m.dc"
    size = compressed_file.save_compressed(model, path)
    assert capstone.measure_recipe("lenet", model, test, path=path, latency_s=0.01).file_bytes == size
    assert all(prune.is_reparametrized(m) for m in surgery.weight_layers(model).values())    # left as it was
    with pytest.raises(TypeError):
        capstone.as_plain("model")
    assert capstone.batch_of(test, 64).shape == (64, 1, 28, 28)
    with pytest.raises(ValueError, match="n=0"):
        capstone.batch_of(test, 0)


def test_composition_factors_and_report():
    base, a, b = _row("base", 0.93, 1000, 4.0), _row("a", 0.92, 250, 2.0), _row("b", 0.91, 100, 4.0)
    ab = _row("ab", 0.9, 25, 2.0)
    c = capstone.composition(base, a, b, ab, "file_bytes")
    assert (c.factor_a, c.factor_b, c.factor_ab, c.predicted, c.ratio) == (4.0, 10.0, 40.0, 40.0, 1.0)
    assert c.multiplicative() and "ratio 1.00" in c.line()
    lat = capstone.composition(base, a, b, ab, "latency_1_ms")
    assert lat.ratio == 1.0
    assert not capstone.composition(base, a, b, _row("ab", 0.9, 100, 2.0)).multiplicative(1.5)
    with pytest.raises(ValueError, match="cost="):
        capstone.composition(base, a, b, ab, "joules")
    with pytest.raises(TypeError):
        capstone.composition(base, a, b, "ab")
    report = capstone.RecipeReport([base, a, b, _row("worse", 0.8, 500, 9.0)])
    assert report.front("file_bytes") == ["base", "a", "b"] and report.find(recipe="b") is b
    assert report.find(recipe="b") is b and not hasattr(capstone, "Report")
    head = report.table().splitlines()[0]
    assert "worse" not in report.front("latency_1_ms") and head.startswith("recipe") and "acc %" in head
    with pytest.raises(KeyError, match="recipe='nope'.*'worse'"):
        report.find(recipe="nope")


def test_best_within():
    rows = [_row("big", 0.94, 600_000, 1.0), _row("small", 0.92, 20_000, 0.9), _row("edge", 0.925, 30_000, 0.5)]
    assert capstone.best_within(rows, 30_000, 0.5) == "edge"         # the boundary counts
    assert capstone.best_within(rows, 1e9, 1e9) == "big" and capstone.best_within(rows, 10, 10) is None


def test_explorer_state_finds_measured_and_explains_unmeasured():
    rows = [_row("VGG", 0.93, 600_000, 1.0, ("VGG", "off", 0.0, 32, "off")),
            _row("VGG+DC", 0.92, 50_000, 1.0, ("VGG", "off", 0.6, 6, "off")),
            _row("other", 0.80, 70_000, 3.0)]
    state = capstone.recipe_state(rows, "VGG", "off", 0.6, 6, "off")
    assert state.row.recipe == "VGG+DC" and state.on_front and "VGG+DC" in capstone.recipe_readout(state)
    missing = capstone.recipe_state(rows, "VGG", "spatial ½", 0.6, 6, "on")
    assert missing.row is None and "not measured" in missing.message and "VGG+DC" in missing.message
    assert "not measured" in capstone.recipe_readout(missing)
    assert "must be one of" in capstone.recipe_state(rows, "VGG", "off", 0.0, 32, "off", cost="joules").message
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for s in (state, missing):
        fig = plt.figure()
        capstone.draw_recipe(s, fig)
        plt.close(fig)
    explorer = capstone.recipe_explorer(rows)
    explorer.set(arch="VGG", sparsity=0.6, bits=6)
    assert explorer.state.row.recipe == "VGG+DC"


def test_course_claims_reads_ledger_then_snapshot(tmp_path, monkeypatch):
    from course_lib import claims as claims_mod
    ledger = tmp_path / "claims.json"
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(ledger))
    monkeypatch.setattr(claims_mod, "SNAPSHOT", tmp_path / "missing.json")
    assert capstone.course_claims() == ([], "")
    checks.claim("05", "a", paper="p", ours="o", holds=True)
    checks.claim("11", "b", paper="p", ours="o", holds=False)
    checks.claim("01", "c", paper="p", ours="o", holds=True)
    found, source = capstone.course_claims()
    assert [c.chapter for c in found] == ["01", "05"] and source == str(ledger)
    ledger.unlink()
    snapshot = tmp_path / "snap.json"
    monkeypatch.setattr(claims_mod, "SNAPSHOT", snapshot)
    snapshot.write_text('[{"chapter": "03", "text": "t", "paper": "p", "ours": "o", "holds": true, '
                        '"profile": "quick", "machine": "m"}]')
    found, source = capstone.course_claims()
    assert [c.chapter for c in found] == ["03"] and source == str(snapshot)


def test_libraries_when_installed():
    tp = pytest.importorskip("torch_pruning")
    from course_lib import measure, prune
    vgg = models.vgg_small()
    small = capstone.library_prune(vgg, 0.5, (1, 1, 28, 28))
    assert measure.count_params(small) == measure.count_params(prune.prune_channels(vgg, 0.5))
    assert measure.count_params(vgg) == 162_562                       # the original is left alone
    with pytest.raises(ValueError, match="sparsity="):
        capstone.library_prune(vgg, 1.0, (1, 1, 28, 28))
    pytest.importorskip("torchao")
    lenet = models.lenet5()
    q = capstone.library_int8(lenet)
    x = torch.randn(4, 1, 28, 28)
    assert measure.file_bytes(q) < measure.file_bytes(lenet) / 3
    assert torch.allclose(q(x), lenet.eval()(x), atol=0.05)


def test_as_plain_leaves_shared_weights_working():
    # a copy shares torch's generated Parametrized… class with the original; unsharing the copy must not
    # delete the original's weight property (regression: the original raised AttributeError: no 'weight')
    from course_lib import quant
    torch.manual_seed(0)
    model = models.lenet5()
    quant.share_weights(model, 4)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        before = model(x)
    for _ in range(2):
        plain = capstone.as_plain(model)
        assert not any(parametrize.is_parametrized(m) for m in plain.modules())
        with torch.no_grad():
            assert torch.equal(plain(x), before)
    with torch.no_grad():
        assert torch.equal(model(x), before)                                  # the original still computes
    assert all(quant.shared_weights_of(m) is not None for m in model.modules() if parametrize.is_parametrized(m))
    compressed_file.effective_state_dict(model)                                # reads every weight


def test_explorer_states_are_frozen_dataclasses():
    import dataclasses

    from course_lib import compress, conv, deploy, lowrank, prune, wae
    classes = [conv.Im2colState, lowrank.SpectrumState, prune.SparsityState, prune.SensitivityState,
               compress.TradeoffState, deploy.DeployState, wae.DecompositionState, capstone.RecipeState]
    for cls in classes:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls.__name__
    state = conv.im2col_state(size=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.size = 6
    with pytest.raises(TypeError, match="unexpected keyword"):
        capstone.RecipeState([], "file_bytes", mesage="typo")          # a misspelt field fails where it is built
    assert capstone.recipe_state([], "VGG", "off", 0.6, 6, "off", cost="joules").message == "cost='joules' must be one of " \
        + str(list(capstone.COSTS))
    with pytest.raises(TypeError):                                      # a state is read by attribute, not by key
        capstone.recipe_state([], "VGG", "off", 0.6, 6, "off", cost="joules")["message"]
