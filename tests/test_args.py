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
