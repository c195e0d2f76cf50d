import gzip
import struct
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from course_lib import data


def write_idx(path, array):
    """Write an idx file (the MNIST format) compressed with gzip."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def fake_system_copy(folder, n_train=20, n_test=10):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    return folder


def test_fashion_mnist_unpacked_from_system_copy(tmp_path, monkeypatch):
    system = fake_system_copy(tmp_path / "system")
    raw = data.prepare_fashion_mnist(tmp_path / "cache", system_dir=system, download=False)
    for name in data.FASHION_FILES:
        assert (raw / name).read_bytes() == gzip.open(system / (name + ".gz")).read()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    ds = torchvision.datasets.FashionMNIST(tmp_path / "cache", train=True)
    images, labels = data.as_tensors(ds)
    assert images.shape == (20, 1, 28, 28) and images.dtype == torch.uint8 and labels.shape == (20,)


def test_raw_files_already_present_are_used_as_they_are(tmp_path):
    raw = tmp_path / "cache" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.FASHION_FILES:
        (raw / name).write_bytes(b"x")
    assert data.prepare_fashion_mnist(tmp_path / "cache", system_dir=tmp_path / "none", download=False) == raw


def test_missing_fashion_mnist_without_network_fails_fast_naming_three_ways(tmp_path, monkeypatch):
    # Port 9 (discard) on loopback refuses at once: the same as a machine with no network.
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        data.prepare_fashion_mnist(tmp_path / "cache", system_dir=tmp_path / "none", download=True, timeout=5)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "raw idx files" in message and "apt-get install dataset-fashion-mnist" in message
    assert "download failed" in message


def test_unknown_and_missing_datasets(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="dataset 'mnist' is unknown"):
        data.load_dataset("mnist")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m course_lib data cifar10"):
        data.load_dataset("cifar10")


def test_as_tensors_handles_the_three_torchvision_layouts():
    hwc = SimpleNamespace(data=np.zeros((4, 32, 32, 3), np.uint8), targets=[0, 1, 2, 3])      # CIFAR
    chw = SimpleNamespace(data=np.zeros((4, 3, 32, 32), np.uint8), labels=np.arange(4))        # SVHN
    hw = SimpleNamespace(data=torch.zeros(4, 28, 28, dtype=torch.uint8), targets=torch.arange(4))  # MNIST
    for ds, shape in ((hwc, (4, 3, 32, 32)), (chw, (4, 3, 32, 32)), (hw, (4, 1, 28, 28))):
        images, labels = data.as_tensors(ds)
        assert images.shape == shape and labels.tolist() == [0, 1, 2, 3]
    with pytest.raises(TypeError, match="needs a dataset"):
        data.as_tensors(object())


def make_loader(n=50, **kwargs):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(n)
    return data.DeviceLoader(images, labels, batch_size=16, device="cpu", mean=[0.5], std=[0.25], **kwargs)


def test_loader_normalises_and_covers_every_example_once():
    loader = make_loader(shuffle=True)
    xs, ys = zip(*loader)
    assert len(xs) == len(loader) == 4
    y = torch.cat(ys)
    assert sorted(y.tolist()) == list(range(50))
    x = torch.cat(xs)
    expected = (loader.images[y].float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected)


def test_loader_epochs_are_reproducible_and_differ():
    a, b = make_loader(shuffle=True), make_loader(shuffle=True)
    a.set_epoch(3), b.set_epoch(3)
    assert torch.equal(torch.cat([y for _, y in a]), torch.cat([y for _, y in b]))
    b.set_epoch(4)
    assert not torch.equal(torch.cat([y for _, y in a]), torch.cat([y for _, y in b]))


def test_loader_shards_are_disjoint_and_cover_the_data():
    shards = [make_loader(shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    ys = [torch.cat([y for _, y in s]) for s in shards]
    assert len(ys[0]) == len(ys[1]) == 25
    assert set(ys[0].tolist()).isdisjoint(ys[1].tolist())
    assert len(set(ys[0].tolist()) | set(ys[1].tolist())) == 50


def test_random_crop_matches_pad_and_slice():
    x = torch.randn(6, 2, 5, 7)
    pad = 2
    out = data.random_crop(x, pad, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    dy = torch.randint(0, 2 * pad + 1, (6,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (6,), generator=g)
    padded = F.pad(x, (pad,) * 4)
    for i in range(6):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 5, dx[i]:dx[i] + 7])


def test_random_flip_flips_about_half():
    x = torch.randn(400, 1, 3, 3)
    out = data.random_flip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | kept).all())
    assert 150 < int(flipped.sum()) < 250


def test_subset_indices_are_deterministic():
    a = data.subset_indices(1000, 100, seed=0)
    assert torch.equal(a, data.subset_indices(1000, 100, seed=0))
    assert len(set(a.tolist())) == 100
    assert torch.equal(data.subset_indices(10, None), torch.arange(10))
    with pytest.raises(ValueError, match="subset size"):
        data.subset_indices(10, 0)


def test_loader_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        data.DeviceLoader(torch.zeros(4, 1, 2, 2), torch.zeros(4), device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        data.DeviceLoader(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4), batch_size=0, device="cpu")


def test_real_fashion_mnist_loaders(fashion_ready):
    train, test = data.loaders("fashion-mnist", 64, train_subset=256, test_subset=128, device="cpu")
    x, y = next(iter(train))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.max() < 10
    assert len(test) == 2 and train.classes[0] == "T-shirt/top"
    assert abs(float(test.images.float().mean() / 255) - 0.286) < 0.03   # the published mean
    fig = data.image_grid(train.images[:8], train.labels[:8], train.classes, n=8)
    assert len(fig.axes) == 8


# ----------------------------------------------------------------------- full-profile datasets
# CIFAR and SVHN cannot be downloaded here, so their code path is tested on small fake files in
# torchvision's own layouts (torchvision's md5 check is bypassed: the files are ours).

def fake_cifar(root, name, n=12):
    import pickle

    rng = np.random.default_rng(0)
    folder, label_key, meta, meta_key, files = {
        "cifar10": ("cifar-10-batches-py", "labels", "batches.meta", "label_names",
                    [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
        "cifar100": ("cifar-100-python", "fine_labels", "meta", "fine_label_names", ["train", "test"]),
    }[name]
    (root / folder).mkdir(parents=True)
    for f in files:
        entry = {"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8), label_key: list(range(n))}
        (root / folder / f).write_bytes(pickle.dumps(entry))
    (root / folder / meta).write_bytes(pickle.dumps({meta_key: [str(i) for i in range(100)]}))


def fake_svhn(root, n=12):
    from scipy.io import savemat

    (root / "svhn").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        savemat(root / "svhn" / f"{split}_32x32.mat",
                {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": np.where(np.arange(n) % 10 == 0, 10, np.arange(n) % 10)[:, None]})   # SVHN writes 0 as 10


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_full_profile_datasets_load_into_the_device_loader(name, tmp_path, monkeypatch):
    from course_lib import recipes

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    cls = getattr(torchvision.datasets, data.dataset_info(name).tv_class)
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)   # the meta file
    fake_svhn(tmp_path) if name == "svhn" else fake_cifar(tmp_path, name)
    train_data, test_data = data.loaders(name, 4, device="cpu")
    x, y = next(iter(train_data))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    images, labels = data.as_tensors(data.load_dataset(name, train=False))
    assert images.shape == (12, 3, 32, 32) and labels.tolist()[:3] == [0, 1, 2]
    assert train_data.flip == (name != "svhn")                    # digits must not be mirrored
    if name == "cifar10":
        for recipe in ("resnet20-cifar10", "vgg-small-cifar10"):
            assert recipes.build_model(recipe)(x).shape == (4, 10)


@pytest.mark.parametrize("name", sorted(data.DATASETS))
def test_dry_run_serves_stand_in_data_of_the_real_shape(name, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))       # an empty folder: no file is read
    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    info = data.dataset_info(name)
    assert isinstance(data.load_dataset(name), torchvision.datasets.FakeData)
    train, test = data.loaders(name, 64, train_subset=100, device="cpu")
    assert train.images.shape == (100, info.channels, info.size, info.size) and train.images.dtype == torch.uint8
    assert len(test.labels) == 128 and int(train.labels.max()) < len(info.classes)
    assert train.classes == info.classes and train.planned_images == 100 and test.planned_images == info.test_size
    small = data.config.DRY_RUN_BATCH
    assert train.batch_size == small < 64 == train.planned_batch_size          # dry run: smaller batches
    x, y = next(iter(train))
    assert x.shape == (small, info.channels, info.size, info.size) and x.dtype == torch.float32
    again, _ = data.loaders(name, 64, train_subset=100, device="cpu")
    assert torch.equal(again.images, train.images)                       # the same stand-in every time
    assert not torch.equal(train.images[:8], test.images[:8])              # train and test differ
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "dry-run"])


def test_stand_in_sizes_and_errors():
    assert len(data.stand_in("cifar100", size=7)) == 7
    images, labels = data.as_tensors(data.stand_in("svhn", size=5))
    assert images.shape == (5, 3, 32, 32) and labels.dtype == torch.int64
    with pytest.raises(ValueError, match="size=0"):
        data.stand_in("cifar10", size=0)
