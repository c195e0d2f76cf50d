"""The course's device-resident loader + trainer vs the idiomatic torchvision pipeline.

Same model (LeNet-5), same images (a Fashion-MNIST subset), same augmentation (random crop with
2-pixel padding, horizontal flip, normalisation), same batch size and epochs, measured in one run.

    python benchmarks/trainer_speed.py [--images 12000] [--epochs 1] [--workers 0 2]

Prints images/s of each pipeline and the ratio (goal: >= 1.3x on a 2-core CPU, >= 3x on a GPU).
"""

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import DataLoader, Subset

from course_lib import config, data, models, train


def idiomatic(images, epochs, batch_size, workers, device):
    """The textbook loop: torchvision dataset + transforms + DataLoader, one image at a time."""
    info = data.DATASETS["fashion-mnist"]
    transform = T.Compose([T.RandomCrop(28, padding=info.pad), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(info.mean, info.std)])
    ds = data.load_dataset("fashion-mnist", train=True)
    ds.transform = transform
    subset = Subset(ds, data.subset_indices(len(ds), images).tolist())
    loader = DataLoader(subset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        drop_last=True, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    torch.manual_seed(0)
    model = models.lenet5().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def course(images, epochs, batch_size, device):
    train_data, _ = data.loaders("fashion-mnist", batch_size, train_subset=images, device=device)
    torch.manual_seed(0)
    history = train.fit(models.lenet5(), train_data, None, epochs=epochs, lr=0.05, device=device,
                        progress=False, channels_last=False)
    return sum(len(train_data) * batch_size for _ in range(epochs)) / sum(history.seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    device = config.device()
    print(config.describe())
    course(1024, 1, args.batch_size, device)                       # warm-up (allocator, kernels)
    ours = course(args.images, args.epochs, args.batch_size, device)
    baselines = {w: idiomatic(args.images, args.epochs, args.batch_size, w, device) for w in args.workers}
    best_w = max(baselines, key=baselines.get)
    for w, rate in baselines.items():
        print(f"torchvision DataLoader + transforms, num_workers={w}: {rate:8.0f} images/s")
    print(f"course DeviceLoader + fit:                          {ours:8.0f} images/s")
    print(f"speed-up over the best idiomatic pipeline (num_workers={best_w}): {ours / baselines[best_w]:.2f}x")


if __name__ == "__main__":
    main()
