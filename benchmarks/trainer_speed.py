"""The course's device-resident loader + trainer vs the idiomatic torchvision pipeline.

Same model, same images (a subset of the dataset), same augmentation (the dataset's random crop
padding, horizontal flip where it preserves labels, normalisation), same batch size, epochs and
mixed precision, measured in one run.

    python benchmarks/trainer_speed.py [--images 12000] [--epochs 1] [--workers 0 2]
    python benchmarks/trainer_speed.py --dataset cifar10 --model vgg_small --amp bf16 --channels-last  # full profile, GPU

Prints images/s of each pipeline and the ratio (goal: >= 1.3x on a 2-core CPU, >= 3x on a GPU).
Under ``COURSE_DRY_RUN=1`` it runs on stand-in data (a smoke test of the script, not a measurement).
"""

import argparse
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import DataLoader, Subset

from course_lib import config, data, models, recipes, train


def build(model, dataset):
    info = data.dataset_info(dataset)
    kwargs = {"image_size": info.size} if model.startswith("lenet") else {}
    torch.manual_seed(0)
    return recipes.MODELS[model](num_classes=len(info.classes), in_channels=info.channels, **kwargs)


def idiomatic(images, epochs, batch_size, workers, device, dataset="fashion-mnist", model="lenet5", amp="off",
              channels_last=False):
    """The textbook loop: torchvision dataset + transforms + DataLoader, one image at a time."""
    info = data.dataset_info(dataset)
    flips = [T.RandomHorizontalFlip()] if info.flip else []
    transform = T.Compose([T.RandomCrop(info.size, padding=info.pad), *flips, T.ToTensor(),
                           T.Normalize(info.mean, info.std)])
    ds = data.load_dataset(dataset, train=True)
    ds.transform = transform
    subset = Subset(ds, data.subset_indices(len(ds), images).tolist())
    loader = DataLoader(subset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        drop_last=True, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    net = build(model, dataset).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    dtype = train._autocast(device, amp)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def course(images, epochs, batch_size, device, dataset="fashion-mnist", model="lenet5", amp="off",
           channels_last=False):
    train_data, _ = data.loaders(dataset, batch_size, train_subset=images, device=device)
    history = train.fit(build(model, dataset), train_data, None, epochs=epochs, lr=0.05, device=device,
                        progress=False, channels_last=channels_last, amp=amp)
    return sum(s * r for s, r in zip(history.seconds, history.images_per_s)) / sum(history.seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(data.DATASETS))
    parser.add_argument("--model", default="lenet5", choices=["lenet5", "vgg_small", "resnet20"])
    parser.add_argument("--amp", default="off", choices=train.AMP_MODES, help="mixed precision, both pipelines")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format, both pipelines")
    args = parser.parse_args()
    device = config.device()
    print(config.describe())
    print(f"{args.model} on {args.dataset}, batch {args.batch_size}, amp={args.amp}, channels_last={args.channels_last}")
    same = dict(dataset=args.dataset, model=args.model, amp=args.amp, channels_last=args.channels_last)
    course(1024, 1, args.batch_size, device, **same)               # warm-up (allocator, kernels)
    ours = course(args.images, args.epochs, args.batch_size, device, **same)
    baselines = {w: idiomatic(args.images, args.epochs, args.batch_size, w, device, **same) for w in args.workers}
    best_w = max(baselines, key=baselines.get)
    for w, rate in baselines.items():
        print(f"torchvision DataLoader + transforms, num_workers={w}: {rate:8.0f} images/s")
    print(f"course DeviceLoader + fit:                          {ours:8.0f} images/s")
    print(f"speed-up over the best idiomatic pipeline (num_workers={best_w}): {ours / baselines[best_w]:.2f}x")
    if config.dry_run():
        print("(COURSE_DRY_RUN=1: stand-in data and capped work; a smoke test of this script, not a measurement)")


if __name__ == "__main__":
    main()
