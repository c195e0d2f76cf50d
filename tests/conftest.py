import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("COURSE_PROFILE", "quick")
os.environ.setdefault("COURSE_DEVICE", "cpu")
os.environ.setdefault("COURSE_CHECKS", "strict")         # checkers fail hard under test (lenient is for learners)


@pytest.fixture
def fashion_ready():
    """Skip cleanly only if Fashion-MNIST cannot be prepared at all (CI always has it)."""
    from course_lib.data import prepare_fashion_mnist

    try:
        prepare_fashion_mnist(download=False)
    except FileNotFoundError as err:
        pytest.skip(f"Fashion-MNIST unavailable: {err}")
