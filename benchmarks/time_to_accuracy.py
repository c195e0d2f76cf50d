"""Time to accuracy on Fashion-MNIST: how many seconds of training until the full test set says 90-93%.

Every run is one ``train.fit`` of a named recipe (``course_lib.recipes``), tested on all 10,000 test
images ``--evals-per-epoch`` times an epoch. The clock counts training only (model set-up, compilation
and every step); test time is measured apart and printed in its own column. All runs happen in this
one process, one after the other, so their ratios are comparable; run it on a quiet machine.

    python benchmarks/time_to_accuracy.py                      # today's recipes, the fast ones, the ablation
    python benchmarks/time_to_accuracy.py --runs fast-fmnist "fast-fmnist -ema"
    python benchmarks/time_to_accuracy.py --list               # the runs it knows
    python benchmarks/time_to_accuracy.py --validation ...     # tested on 10k images held out of the training set

A run is a recipe name, optionally followed by changes: ``+ema`` / ``-ema`` (weight averaging, decay
0.99, or none), ``-tta``,
``-smoothing``, ``-channels_last``, ``-augment``, ``+crop`` (random crops as well as flips),
``batch=128`` (the learning rate scaled with the batch), ``model=lenet5``, ``+compile``
(torch.compile, inductor; its compile time is training time), ``+bf16`` (bf16 autocast), ``threads=1``.
A run that has not finished after ``--max-seconds`` of training stops at the end of that epoch;
its curve up to there is reported.
"""

import argparse
import dataclasses
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from course_lib import checkpoints, config, data, recipes, stats, train

TARGETS = (0.90, 0.91, 0.92, 0.93)
VALIDATION_IMAGES = 10_000
BASELINES = ["lenet5-fmnist", "vgg-small-fmnist"]
FAST = ["fast-fmnist", "fast-wide-fmnist"]
ABLATION = ["fast-fmnist +ema", "fast-fmnist -tta", "fast-fmnist -smoothing", "fast-fmnist -channels_last",
            "fast-fmnist +crop", "fast-fmnist -augment", "fast-fmnist batch=128", "fast-fmnist model=lenet5",
            "fast-fmnist +compile", "fast-fmnist +bf16", "fast-fmnist threads=1", "lenet5-fmnist +channels_last"]


class TimeUp(Exception):
    """Raised by the step hook once a run has trained for ``--max-seconds``."""


def parse_run(spec):
    """``(recipe, fit options, threads)`` of a run description such as ``"fast-fmnist -ema batch=128"``."""
    name, *changes = spec.split()
    recipe = recipes.get_recipe(name)
    options, threads = {"amp": "off", "compile": False}, None
    for change in changes:
        if change in ("-ema", "+ema"):
            recipe = dataclasses.replace(recipe, ema=0.99 if change == "+ema" else None)
        elif change == "-tta":
            recipe = dataclasses.replace(recipe, tta=False)
        elif change == "-smoothing":
            recipe = dataclasses.replace(recipe, label_smoothing=0.0)
        elif change in ("-channels_last", "+channels_last"):
            recipe = dataclasses.replace(recipe, channels_last=change.startswith("+"))
        elif change == "-augment":
            recipe = dataclasses.replace(recipe, augment=False)
        elif change == "+crop":
            recipe = dataclasses.replace(recipe, augment=True, crop=True)
        elif change.startswith("batch="):
            batch = int(change.split("=")[1])
            recipe = dataclasses.replace(recipe, batch_size=batch, lr=recipe.lr * batch / recipe.batch_size)
        elif change.startswith("model="):
            recipe = dataclasses.replace(recipe, model=change.split("=")[1], model_kwargs={})
        elif change == "+compile":
            options["compile"] = True
        elif change == "+bf16":
            options["amp"] = "bf16"
        elif change.startswith("threads="):
            threads = int(change.split("=")[1])
        else:
            raise SystemExit(f"unknown change {change!r} in run {spec!r} (see --help)")
    return recipe, options, threads


def run(spec, max_seconds, evals_per_epoch, seed=0, validation=False):
    """Train one run; returns its figures (a dict)."""
    recipe, options, threads = parse_run(spec)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    device = torch.device("cpu") if config.device().type == "cpu" else config.device()
    train_data, test_data = data.loaders(**recipe.loader_kwargs(), device=device, seed=seed)
    if validation:
        train_data, test_data = held_out(train_data, VALIDATION_IMAGES)
    info = data.dataset_info(recipe.dataset)
    torch.manual_seed(seed)
    model = recipes.MODELS[recipe.model](num_classes=len(info.classes), in_channels=info.channels,
                                         **recipe.model_kwargs)
    started = time.perf_counter()

    def stop_when_time_is_up(_model):
        if time.perf_counter() - started > max_seconds:
            raise TimeUp

    with tempfile.TemporaryDirectory() as folder:
        resume = Path(folder) / "run.pt"
        wall = time.perf_counter()
        try:
            history = train.fit(model, train_data, test_data, recipe.epochs, **{**recipe.fit_kwargs(), **options},
                                evals_per_epoch=evals_per_epoch, device=device, seed=seed, progress=False,
                                checkpoint=resume, after_step=stop_when_time_is_up)
            finished = True
        except TimeUp:                 # the curve up to the last finished epoch is in the training checkpoint
            history = train.History(**checkpoints.load_training_checkpoint(resume)["history"]) \
                if resume.exists() else train.History()
            finished = False
        wall = time.perf_counter() - wall
    torch.set_num_threads(before)
    trained = sum(history.seconds)
    accuracy = history.curve_test_acc[-1] if history.curve_test_acc else float("nan")
    return {"run": spec, "epochs": f"{history.epoch[-1] if history.epoch else 0}/{recipe.epochs}"
                                   + ("" if finished else " (cut)"),
            "to": {t: history.seconds_to(t) for t in TARGETS}, "trained_s": trained,
            "tested_s": wall - trained, "accuracy": accuracy, "n_test": len(test_data.labels),
            "best": max(history.curve_test_acc, default=float("nan"))}


def held_out(train_data, n):
    """``(train, validation)``: the training loader split into two, ``n`` random images held out for testing.

    Choosing a recipe by its test accuracy would be model selection on the test set; ``--validation``
    runs every comparison on images held out from the training set instead.
    """
    order = torch.randperm(len(train_data.labels), generator=torch.Generator().manual_seed(12345))
    keep, held = order[n:], order[:n]
    common = dict(mean=train_data.mean.flatten().tolist(), std=train_data.std.flatten().tolist(),
                  device=train_data.device, classes=train_data.classes)
    fit_part = data.DeviceLoader(train_data.images[keep], train_data.labels[keep], train_data.batch_size,
                                 shuffle=True, augment=train_data.augment, pad=train_data.pad, flip=train_data.flip,
                                 seed=train_data.seed, drop_last=True, **common)
    test_part = data.DeviceLoader(train_data.images[held], train_data.labels[held], 1000, **common)
    return fit_part, test_part


def table(rows, reference):
    """Print the runs and, for 92%, how many times faster than ``reference`` each one is."""
    head = " | ".join(f"to {100 * t:.0f}%" for t in TARGETS)
    print(f"| run | epochs | {head} | x faster to 92% than {reference} | final test accuracy (95% CI) "
          f"| trained s | tested s |")
    print("|---|---|" + "---|" * len(TARGETS) + "---|---|---|---|")
    ref = next((r["to"][0.92] for r in rows if r["run"] == reference), None)
    for r in rows:
        times = " | ".join("-" if r["to"][t] is None else f"{r['to'][t]:.1f} s" for t in TARGETS)
        t92 = r["to"][0.92]
        speedup = f"{ref / t92:.1f}x" if ref and t92 else "-"
        final = "-"
        if not math.isnan(r["accuracy"]):
            low, high = stats.accuracy_interval(r["accuracy"], r["n_test"])
            final = f"{100 * r['accuracy']:.2f}% ({100 * low:.1f}-{100 * high:.1f})"
        print(f"| {r['run']} | {r['epochs']} | {times} | {speedup} | {final} | {r['trained_s']:.1f} "
              f"| {r['tested_s']:.1f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=BASELINES + FAST + ABLATION)
    parser.add_argument("--max-seconds", type=float, default=420.0, help="stop a run after this much training")
    parser.add_argument("--evals-per-epoch", type=int, default=2)
    parser.add_argument("--validation", action="store_true",
                        help=f"train on 50k training images, test on the other {VALIDATION_IMAGES:,} (for choosing a recipe)")
    parser.add_argument("--list", action="store_true", help="print the default runs and stop")
    args = parser.parse_args()
    if args.list:
        print("\n".join(BASELINES + FAST + ABLATION))
        return 0
    for spec in args.runs:
        parse_run(spec)                                     # every description is valid before hours of work
    cpu = platform.processor() or platform.machine()
    tested_on = f"{VALIDATION_IMAGES:,} held-out training images" if args.validation else "the full 10k test set"
    print(f"# time to accuracy, Fashion-MNIST, tested on {tested_on}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({cpu}), device {config.device()}")
    if config.dry_run():
        print("# COURSE_DRY_RUN=1: stand-in data and capped work, a smoke test of the script, not a measurement")
    run(args.runs[0], 5.0, args.evals_per_epoch, validation=args.validation)   # warm-up (threads, caches): not reported
    rows = []
    for spec in args.runs:
        rows.append(run(spec, args.max_seconds, args.evals_per_epoch, validation=args.validation))
        print(f"# {spec}: {rows[-1]['epochs']} epochs, {100 * rows[-1]['accuracy']:.2f}%, "
              f"{rows[-1]['trained_s']:.1f} s training", flush=True)
    reference = min((r for r in rows if r["run"] in BASELINES and r["to"][0.92]),
                    key=lambda r: r["to"][0.92], default=rows[0])["run"]
    print()
    table(rows, reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
