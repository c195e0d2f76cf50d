import base64

import pytest

from course_lib import checks, widgets


def square_state(n, label):
    if n < 1:
        raise ValueError(f"n={n} must be at least 1")
    return {"n": n, "squares": [i * i for i in range(n)], "label": label}


def draw(state, fig):
    ax = fig.add_subplot()
    ax.plot(state["squares"], label=state["label"])


def make_explorer():
    return widgets.Explorer(square_state, draw,
                            {"n": widgets.int_slider("n", 4, -3, 10), "label": widgets.dropdown("label", ["a", "b"])},
                            title="squares", readout_fn=lambda s: f"sum = {sum(s['squares'])}")


def test_explorer_recomputes_when_a_control_moves():
    e = make_explorer()
    assert e.state["n"] == 4 and e.readout.value == "sum = 14"
    png = bytes(e.image.value)
    assert png.startswith(b"\x89PNG")
    e.controls["n"].value = 6                      # what a learner's slider drag does
    assert e.state["n"] == 6 and e.readout.value == "sum = 55" and bytes(e.image.value) != png


def test_explorer_shows_invalid_settings_as_a_message():
    e = make_explorer().set(n=0)
    assert e.state is None and e.error == "n=0 must be at least 1"
    assert "n=0 must be at least 1" in e.message.value and e.readout.value == ""
    assert bytes(e.image.value).startswith(b"\x89PNG")
    e.set(n=2)
    assert e.error is None and e.message.value == ""
    with pytest.raises(ValueError, match="unknown settings"):
        e.set(m=3)


def test_explorer_carries_a_static_figure_for_frontends_without_widgets():
    e = make_explorer()
    bundle = e._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]) == bytes(e.image.value)
    assert "squares" in data["text/plain"] and "sum = 14" in data["text/plain"]


def square_all(xs):
    return [x * x for x in xs]


@checks.checker("squares")
def check_squares(fn):
    for xs in ([1, 2, 3], [-2, 0]):
        checks.expect_equal(fn(xs), [x * x for x in xs], f"fn({xs})")


def test_checker_accepts_right_and_rejects_stub_and_wrong(capsys):
    check_squares(square_all)
    assert "✅ squares: correct." in capsys.readouterr().out

    def stub(xs):
        raise NotImplementedError("your code here")

    with pytest.raises(AssertionError, match="squares: not done yet"):
        check_squares(stub)
    with pytest.raises(AssertionError, match=r"squares: fn\(\[-2, 0\]\) should be \[4, 0\]"):
        check_squares(lambda xs: [x * abs(x) for x in xs])      # right for positives only
    with pytest.raises(TypeError, match="pass your function itself"):
        check_squares([1, 4, 9])


def test_expect_close_and_true():
    checks.expect_close(0.1 + 0.2, 0.3, "sum")
    with pytest.raises(checks.ExerciseError, match="sum should equal 0.3"):
        checks.expect_close(0.31, 0.3, "sum")
    with pytest.raises(checks.ExerciseError, match=r"shape \(2,\)"):
        checks.expect_close([1.0], [1.0, 2.0], "vector")
    with pytest.raises(checks.ExerciseError, match="largest difference"):
        checks.expect_close([1.0, 2.0], [1.0, 2.5], "vector")
    with pytest.raises(checks.ExerciseError, match="nope"):
        checks.expect_true(False, "nope")


def test_claim_records_replaces_and_fails_when_it_must(tmp_path, monkeypatch, capsys):
    from course_lib import checks

    ledger = tmp_path / "claims.json"
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(ledger))
    checks.claim("07", "pre-act trains deeper", paper="6.37%", ours="7.1%", holds=False)
    assert "does not hold" in capsys.readouterr().out
    checks.claim("07", "pre-act trains deeper", paper="6.37%", ours="6.2%", holds=True)
    checks.claim("08", "linear memory", paper="slope 1", ours="slope 1.02", holds=True, must_hold=True)
    rows = checks.read_claims(ledger)
    assert [(r.chapter, r.ours, r.holds) for r in rows] == [("07", "6.2%", True), ("08", "slope 1.02", True)]
    assert rows[0].profile == "quick" and "PyTorch" in rows[0].machine
    with pytest.raises(AssertionError, match="claim check failed"):
        checks.claim("08", "x", paper="1", ours="2", holds=False, must_hold=True)
    with pytest.raises(TypeError, match="holds must be a bool"):
        checks.claim("08", "x", paper="1", ours="2", holds="yes")
    with pytest.raises(TypeError, match="paper must be a non-empty string"):
        checks.claim("08", "x", paper="", ours="2", holds=True)


@checks.checker("double")
def _check_double(fn):
    for x in (1, 2, 5):
        checks.expect_equal(fn(x), 2 * x, f"double({x})")


def _stub(x):
    raise NotImplementedError("your code here")


@pytest.mark.parametrize("answer,verdict", [(_stub, "⏳ double: not done yet"),
                                            (lambda x: x + x + (x == 5), "❌ double: double(5) should be 10"),
                                            (lambda x: x / 0, "❌ double: your function raised ZeroDivisionError")])
def test_checkers_fail_hard_when_strict_and_only_report_when_lenient(answer, verdict, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CHECKS", "strict")
    with pytest.raises((checks.ExerciseError, ZeroDivisionError)):
        _check_double(answer)
    monkeypatch.setenv("COURSE_CHECKS", "lenient")
    assert _check_double(answer) is None                     # the notebook goes on
    assert capsys.readouterr().out.startswith(verdict)
    assert _check_double(lambda x: 2 * x) is None and "✅ double: correct." in capsys.readouterr().out


def test_check_mode_defaults_to_strict_under_ci_only(monkeypatch):
    monkeypatch.delenv("COURSE_CHECKS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert checks.strict_checks()
    monkeypatch.delenv("CI")
    assert not checks.strict_checks()
    monkeypatch.setenv("COURSE_CHECKS", "loose")
    with pytest.raises(ValueError, match="COURSE_CHECKS='loose' is not a mode"):
        checks.strict_checks()
