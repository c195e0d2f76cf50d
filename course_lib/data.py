"""Datasets through torchvision, and a loader that keeps the whole dataset on the training device.

Why a loader of our own? The idiomatic ``DataLoader`` + ``transforms`` pipeline decodes, crops and
flips one PIL image at a time in Python. For the small images of this course that costs more than
the network itself. ``DeviceLoader`` instead holds the dataset once as a ``uint8`` tensor on the
training device and augments a whole batch at a time with tensor operations
(``benchmarks/trainer_speed.py`` measures the difference).

Fashion-MNIST must work offline. ``prepare_fashion_mnist`` looks, in order, for

1. the raw idx files in ``<data dir>/FashionMNIST/raw`` (torchvision's layout),
2. the system copy of Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
   which it unpacks into the data directory,
3. a download through torchvision, with a bounded wait,

and otherwise stops with an error that names all three ways.

In the dry run (``COURSE_DRY_RUN=1``, see ``course_lib.config``) every dataset is replaced by
stand-in data, ``torchvision.datasets.FakeData`` with the dataset's image shape and class count
(``stand_in``): the full profile's code path runs with no file and no download, on at most
``config.DRY_RUN_TRAIN_IMAGES`` training and ``config.DRY_RUN_TEST_IMAGES`` test images, in
batches of at most ``config.DRY_RUN_BATCH``.
"""

import gzip
import os
import shutil
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from . import config
from .args import check_float, check_int

PathLike = str | os.PathLike
DeviceLike = str | torch.device

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = [
    "DatasetInfo",
    "dataset_info",
    "prepare_fashion_mnist",
    "stand_in",
    "load_dataset",
    "as_tensors",
    "subset_indices",
    "random_crop",
    "random_flip",
    "DeviceLoader",
    "loaders",
    "image_grid",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What the loader needs to know about a dataset."""

    tv_class: str  # the torchvision.datasets class
    channels: int
    size: int  # images are size x size
    classes: tuple
    mean: tuple  # per-channel mean and std of the training images, in [0, 1]
    std: tuple
    pad: int  # random-crop padding used for augmentation
    flip: bool  # is a horizontal flip label-preserving?
    train_size: int = 0  # images in the real training and test splits
    test_size: int = 0


FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

DATASETS = {
    "fashion-mnist": DatasetInfo(
        "FashionMNIST",
        1,
        28,
        FASHION_CLASSES,
        (0.2860,),
        (0.3530,),
        pad=2,
        flip=True,
        train_size=60_000,
        test_size=10_000,
    ),
    "cifar10": DatasetInfo(
        "CIFAR10",
        3,
        32,
        CIFAR10_CLASSES,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        pad=4,
        flip=True,
        train_size=50_000,
        test_size=10_000,
    ),
    "cifar100": DatasetInfo(
        "CIFAR100",
        3,
        32,
        tuple(str(i) for i in range(100)),
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        pad=4,
        flip=True,
        train_size=50_000,
        test_size=10_000,
    ),
    "svhn": DatasetInfo(
        "SVHN",
        3,
        32,
        tuple(str(i) for i in range(10)),
        (0.4377, 0.4438, 0.4728),
        (0.1980, 0.2010, 0.1970),
        pad=4,
        flip=False,
        train_size=73_257,
        test_size=26_032,
    ),
}

FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def dataset_info(name: str) -> "DatasetInfo":
    """The ``DatasetInfo`` of a dataset name, with a clear error for unknown names."""
    if name not in DATASETS:
        raise ValueError(f"dataset {name!r} is unknown; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


# --------------------------------------------------------------------------- getting the files


def prepare_fashion_mnist(
    root: PathLike | None = None,
    system_dir: PathLike = SYSTEM_FASHION_MNIST,
    download: bool = True,
    timeout: float = 8.0,
) -> Path:
    """Make sure Fashion-MNIST's raw files are in ``root/FashionMNIST/raw``; return that folder."""
    root = Path(root) if root is not None else config.data_dir()
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).exists() for f in FASHION_FILES):
        return raw
    system_dir = Path(system_dir)
    if all((system_dir / (f + ".gz")).exists() for f in FASHION_FILES):
        raw.mkdir(parents=True, exist_ok=True)
        for f in FASHION_FILES:
            _gunzip_atomically(system_dir / (f + ".gz"), raw / f)
        return raw
    reason = "download=False"
    if download:
        try:
            _download_with_deadline(root, timeout)
            return raw
        except OSError as err:  # URLError, socket.timeout and friends are all OSErrors
            reason = f"download failed: {err}"
    raise FileNotFoundError(
        "Fashion-MNIST is not available. Three ways to get it:\n"
        f"  1. put the four raw idx files ({', '.join(FASHION_FILES)}) in {raw}\n"
        f"  2. install Debian's package: sudo apt-get install dataset-fashion-mnist "
        f"(files under {system_dir})\n"
        f"  3. connect to the internet and let torchvision download it ({reason})"
    )


def _gunzip_atomically(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".partial")
    with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    os.replace(tmp, dst)


def _download_with_deadline(root: Path, timeout: float) -> None:
    """torchvision's download, but every network wait bounded by ``timeout`` seconds."""
    mirror = urlparse(torchvision.datasets.FashionMNIST.mirrors[0])
    port = mirror.port or (443 if mirror.scheme == "https" else 80)
    socket.create_connection((mirror.hostname, port), timeout=timeout).close()  # fail fast offline
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torchvision.datasets.FashionMNIST(root, train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def stand_in(name: str, train: bool = True, size: int | None = None) -> torchvision.datasets.FakeData:
    """Stand-in data for dataset ``name``: ``torchvision.datasets.FakeData`` of its image shape and classes.

    Random images (a different, fixed set for train and test) with random labels: nothing to learn,
    but every shape, channel count and class count is the real dataset's. The dry run uses it.
    """
    info = dataset_info(name)
    if size is None:
        size = config.DRY_RUN_TRAIN_IMAGES if train else config.DRY_RUN_TEST_IMAGES
    check_int("size", size)
    return torchvision.datasets.FakeData(
        size=size,
        image_size=(info.channels, info.size, info.size),
        num_classes=len(info.classes),
        random_offset=0 if train else 1 << 20,
    )


def load_dataset(name: str, train: bool = True, download: bool = False) -> torchvision.datasets.VisionDataset:
    """The torchvision dataset ``name`` ("fashion-mnist", "cifar10", "cifar100", "svhn").

    Fashion-MNIST is prepared offline when possible (see ``prepare_fashion_mnist``). The others
    are read from the data directory; pass ``download=True`` on a machine with internet access.
    In the dry run (``COURSE_DRY_RUN=1``) it returns ``stand_in(name, train)`` unless asked to download.
    """
    info = dataset_info(name)
    if config.dry_run() and not download:
        return stand_in(name, train)
    root = config.data_dir()
    cls = getattr(torchvision.datasets, info.tv_class)
    if name == "fashion-mnist":
        prepare_fashion_mnist(root)
        return cls(root, train=train, download=False)
    try:
        if name == "svhn":
            return cls(root / "svhn", split="train" if train else "test", download=download)
        return cls(root, train=train, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(
            f"{name} is not in {root}. On a machine with internet access run "
            f"`python -m course_lib data {name}` (or load_dataset({name!r}, download=True)); "
            f"the quick profile uses Fashion-MNIST only. ({err})"
        ) from None


@dataclass
class _Arrays:
    data: np.ndarray
    targets: list


def as_tensors(dataset: torch.utils.data.Dataset | _Arrays) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision dataset as ``(images uint8 [N, C, H, W], labels int64 [N])``."""
    if isinstance(dataset, torchvision.datasets.FakeData):
        transform, dataset.transform = dataset.transform, None
        try:
            items = [dataset[i] for i in range(len(dataset))]
        finally:
            dataset.transform = transform
        stacked = np.stack([np.asarray(img, dtype=np.uint8) for img, _ in items])
        return as_tensors(_Arrays(stacked, [int(label) for _, label in items]))
    data = getattr(dataset, "data", None)
    labels = getattr(dataset, "targets", getattr(dataset, "labels", None))
    if data is None or labels is None:
        raise TypeError(f"as_tensors needs a dataset with .data and .targets/.labels, got {type(dataset).__name__}")
    images = torch.as_tensor(np.asarray(data))
    if images.dtype != torch.uint8:
        raise TypeError(f"as_tensors expects uint8 images, got {images.dtype}")
    if images.ndim == 3:  # MNIST-like: N, H, W
        images = images.unsqueeze(1)
    elif images.shape[-1] in (1, 3):  # CIFAR: N, H, W, C
        images = images.permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def subset_indices(n_total: int, n: int | None, seed: int = 0) -> torch.Tensor:
    """A deterministic random subset of ``n`` of ``n_total`` indices (the same for every run)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    if n < 1:
        raise ValueError(f"subset size n={n} must be at least 1")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:n].sort().values


# --------------------------------------------------------------------------- the loader


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad a batch by ``pad`` pixels and cut a random window of the original size from each image."""
    if pad == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # b, h
    cols = dx[:, None] + torch.arange(w, device=x.device)  # b, w
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of a batch left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def _per_channel(name: str, values: Sequence[float] | None, channels: int, default: float) -> list[float]:
    """One finite number per image channel (``None``: ``default`` for every channel)."""
    if values is None:
        return [default] * channels
    if isinstance(values, torch.Tensor):
        values = values.reshape(-1).tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name}={values!r} must be a sequence of numbers, one per channel")
    out = [check_float(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if len(out) != channels:
        raise ValueError(
            f"{name}={list(values)} has {len(out)} value(s), the images have {channels} channel(s): "
            "give one per channel (a 3-value mean would turn 1-channel images into 3-channel batches)"
        )
    return out


class DeviceLoader:
    """Batches of a dataset held on the training device as uint8, augmented there.

    Each epoch's shuffling and augmentation come from a generator seeded by ``(seed, epoch)``:
    call ``set_epoch(e)`` (``fit`` does) and epoch ``e`` is the same in every run, which is what
    makes an interrupted training run resume exactly. Under ``torch.distributed`` each process
    takes every ``world_size``-th example of the shuffled order.
    """

    planned_images: int | None = None  # what a real run would read (set by ``loaders`` in the dry run)
    planned_batch_size: int | None = None

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 128,
        *,
        shuffle: bool = False,
        augment: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        pad: int = 0,
        flip: bool = False,
        device: DeviceLike | None = None,
        seed: int = 0,
        drop_last: bool = False,
        classes: Sequence[str] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise TypeError(f"images must be a uint8 tensor [N, C, H, W], got {got}")
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels must be a tensor, got {type(labels).__name__}")
        if len(images) != len(labels):
            raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) differ in length")
        check_int("batch_size", batch_size)
        check_int("pad", pad, 0)
        check_int("seed", seed, 0)
        channels = images.shape[1]
        mean = _per_channel("mean", mean, channels, 0.0)
        std = _per_channel("std", std, channels, 1.0)
        if any(v <= 0 for v in std):
            raise ValueError(f"std={std} must be > 0 in every channel (the images are divided by it)")
        if rank is not None or world_size is not None:
            world = check_int("world_size", world_size if world_size is not None else 1)
            check_int("rank", rank if rank is not None else 0, 0)
            if (rank or 0) >= world:
                raise ValueError(f"rank={rank} must be < world_size={world}")
        self.device = torch.device(device) if device is not None else config.device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.pad, self.flip, self.seed, self.drop_last = pad, flip, seed, drop_last
        self.classes = classes
        if rank is None and torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        self.rank, self.world_size = rank or 0, world_size or 1
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        n = len(self.labels)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            order = order[: n - n % self.world_size][self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = len(self.labels) // self.world_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._order().to(self.device)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 7)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[idx].float().div_(255)
            if self.augment:
                x = random_crop(x, self.pad, g)
                if self.flip:
                    x = random_flip(x, g)
            yield (x - self.mean) / self.std, self.labels[idx]

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation, for showing images."""
        return (x * self.std.to(x.device) + self.mean.to(x.device)).clamp(0, 1)


def loaders(
    name: str = "fashion-mnist",
    batch_size: int = 128,
    *,
    train_subset: int | None = None,
    test_subset: int | None = None,
    augment: bool = True,
    crop: bool = True,
    device: DeviceLike | None = None,
    seed: int = 0,
) -> tuple["DeviceLoader", "DeviceLoader"]:
    """``(train_loader, test_loader)`` for a dataset, with deterministic subsets if asked.

    ``augment``: random crops of the padded training images and (where the dataset allows) flips;
    ``crop=False`` keeps the flips only (what a run of a few epochs prefers: see ``train``'s docstring).

    In the dry run the loaders serve ``stand_in`` data (at most as many images as asked) in batches
    of at most ``config.DRY_RUN_BATCH``, and carry ``planned_images`` and ``planned_batch_size``, what
    the real run would use, for ``train.fit``'s record.
    """
    info = dataset_info(name)
    made = []
    planned_batch = batch_size
    if config.dry_run():
        batch_size = min(batch_size, config.DRY_RUN_BATCH)
    for train, n in ((True, train_subset), (False, test_subset)):
        images, labels = as_tensors(load_dataset(name, train=train))
        keep = subset_indices(len(labels), n, seed=0)
        made.append(
            DeviceLoader(
                images[keep],
                labels[keep],
                batch_size,
                shuffle=train,
                augment=augment and train,
                mean=info.mean,
                std=info.std,
                pad=info.pad if crop else 0,
                flip=info.flip,
                device=device,
                seed=seed,
                drop_last=train and len(keep) > batch_size,
                classes=info.classes,
            )
        )
        real = info.train_size if train else info.test_size
        made[-1].planned_images = min(n, real) if n is not None else real
        made[-1].planned_batch_size = planned_batch
    return made[0], made[1]


def image_grid(
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    n: int = 32,
    ncols: int = 8,
) -> "Figure":
    """A matplotlib figure showing the first ``n`` images (uint8 or floats in [0, 1])."""
    import matplotlib.pyplot as plt

    n = min(n, len(images))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.5 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].detach().cpu()
        img = img.float() / 255 if img.dtype == torch.uint8 else img
        ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[0] == 1 else None)
        if labels is not None:
            label = int(labels[i])
            ax.set_title(classes[label] if classes else str(label), fontsize=8)
    fig.tight_layout()
    return fig
