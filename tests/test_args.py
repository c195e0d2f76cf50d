import pytest

from course_lib.args import check_int


def test_check_int_names_the_parameter_and_the_rule():
    assert check_int("layers", 3) == 3 and check_int("k", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"^growth_rate=0 must be >= 1$"):
        check_int("growth_rate", 0)
    with pytest.raises(TypeError, match=r"^depth=2.5 must be an int$"):
        check_int("depth", 2.5)
    with pytest.raises(TypeError, match=r"^depth=True must be an int$"):      # a bool is not a count
        check_int("depth", True)


def test_check_bits_float_fraction():
    from course_lib.args import check_bits, check_float, check_fraction

    assert check_bits("bits", 4) == 4
    with pytest.raises(TypeError, match="bits=2.5"):
        check_bits("bits", 2.5)
    with pytest.raises(ValueError, match="between 2 and 8"):
        check_bits("bits", 1, low=2, high=8)
    assert check_float("lr", 1) == 1.0
    with pytest.raises(TypeError, match="lr='x'"):
        check_float("lr", "x")
    with pytest.raises(ValueError, match=r"\[0, inf\)"):
        check_float("lr", -1, low=0)
    with pytest.raises(ValueError, match=r"^p=0 must be a probability in \(0, 1\]$"):
        check_float("p", 0, 0, 1, low_inclusive=False, what="a probability")
    with pytest.raises(ValueError):
        check_float("alpha", float("inf"), 0, low_inclusive=False)
    assert check_fraction("sparsity", 0.5) == 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        check_fraction("sparsity", 1.0)
    assert check_fraction("p", 1.0, allow_one=True) == 1.0
    with pytest.raises(TypeError):
        check_fraction("p", True)
