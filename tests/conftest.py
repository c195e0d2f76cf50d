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


@pytest.fixture
def random_images():
    """A factory of small loaders of random 3×32×32 uint8 images (CIFAR's shape) with random labels."""
    import torch

    from course_lib.data import DeviceLoader

    def loader(n, batch_size, seed, shuffle):
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (n,), generator=g)
        return DeviceLoader(images, labels, batch_size, shuffle=shuffle, mean=[0.5] * 3, std=[0.25] * 3,
                            device="cpu", drop_last=shuffle)
    return loader
