"""Command line: ``python -m course_lib train --recipe NAME [--epochs N] [--out PATH] [--register]``.

``--register`` ships the model (``checkpoints.ship``: weights, sha256 and the manifest entry with
the recipe, seed, epochs, accuracy and training curve); every shipped checkpoint is rebuilt this way,
by ``train.fit`` from scratch or, for a model fine-tuned from another checkpoint, by its recipe's
``maker`` (``capstone``, ``wae``).

Also runs under ``torchrun --nproc_per_node=K python -m course_lib train ...`` (gloo on CPU, NCCL
on GPU). Other commands: ``recipes`` lists the recipes, ``data NAME`` prepares a dataset, ``grade PATH…``
grades submitted notebooks (``course_lib.grading``).
"""

import argparse
import importlib
import os
import sys
from pathlib import Path

import torch

from . import checkpoints, config, data
from .grading import main as grade_main
from .grading import positive_int
from .recipes import RECIPES, build_model, get_recipe
from .train import fit

__all__ = ["train_command", "main"]


def train_command(args: argparse.Namespace) -> int:
    """``train --recipe NAME``: train the recipe (on every process under torchrun); 0 on success."""
    recipe = get_recipe(args.recipe)
    if recipe.maker:  # fine-tuned from another checkpoint: the recipe's own maker trains and ships it
        if not args.register:
            raise ValueError(f"recipe {args.recipe!r} is made by {recipe.maker}: run it with --register")
        module, function = recipe.maker.split(":")
        make = getattr(importlib.import_module(f"course_lib.{module}"), function)
        folder = Path(args.out).parent if args.out else None
        make(args.recipe, folder=folder, epochs=args.epochs, seed=args.seed, lr=args.lr, resume=args.resume)
        return 0
    if args.resume:
        raise ValueError(f"--resume continues a shipped fine-tuned model; to resume {args.recipe}, use --checkpoint")
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = config.device()
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank = torch.distributed.get_rank() if distributed else 0
    config.seed_everything(args.seed)
    loader_kwargs = recipe.loader_kwargs()
    loader_kwargs["train_subset"] = args.subset if args.subset is not None else recipe.train_subset
    train_data, test_data = data.loaders(**loader_kwargs, device=device, seed=args.seed)
    model = build_model(args.recipe)
    epochs = args.epochs if args.epochs is not None else recipe.epochs
    fit_kwargs = recipe.fit_kwargs()
    fit_kwargs["lr"] = args.lr if args.lr is not None else recipe.lr
    fit_kwargs["channels_last"] = recipe.channels_last or device.type == "cuda"
    history = fit(
        model,
        train_data,
        test_data,
        epochs,
        **fit_kwargs,
        device=device,
        seed=args.seed,
        checkpoint=args.checkpoint,
        progress=not args.no_progress,
        compile=args.compile,
    )
    acc = history.final_test_acc
    assert acc is not None  # fit was given the recipe's test data
    if rank == 0:
        print(
            f"recipe={args.recipe} epochs={epochs} test_accuracy={100 * acc:.2f}% "
            f"images/s={history.images_per_s[-1]:.0f}"
        )
    out = args.out or (str(config.checkpoints_dir() / f"{args.recipe}.pt") if args.register else None)
    if out and ("{rank}" in out or rank == 0):
        out = out.format(rank=rank)
        if args.register and rank == 0:
            command = f"python -m course_lib train --recipe {args.recipe}"
            command += f" --out {Path(out).name}" if args.out else ""
            command += " --register"
            command += f" --epochs {epochs}" if epochs != recipe.epochs else ""
            command += f" --seed {args.seed}" if args.seed else ""
            command += f" --lr {args.lr:g}" if args.lr is not None else ""
            checkpoints.ship(
                model,
                Path(out).parent,
                Path(out).stem,
                recipe=args.recipe,
                seed=args.seed,
                epochs=epochs,
                test_accuracy=acc,
                curve=history.test_acc,
                command=command,
                train_images=len(train_data.labels) if hasattr(train_data, "labels") else None,
            )
        else:
            weights = {"model": model.state_dict(), "recipe": args.recipe, "seed": args.seed, "epochs": epochs}
            checkpoints.save_atomically({**weights, "test_accuracy": acc}, out)
    if distributed:
        torch.distributed.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2 for a wrong argument, with the reason on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a recipe")
    t.add_argument("--recipe", required=True, help=f"one of {sorted(RECIPES)}")
    t.add_argument("--epochs", type=positive_int, help="override the recipe's epoch count")
    t.add_argument("--out", help="write the trained weights here ('{rank}' gives one file per process)")
    t.add_argument(
        "--register",
        action="store_true",
        help="ship it: --out (default data/checkpoints/RECIPE.pt) and its entry in manifest.json in its folder",
    )
    t.add_argument("--checkpoint", help="training checkpoint: written every epoch, resumed if present")
    t.add_argument("--lr", type=float, help="override the recipe's (peak) learning rate")
    t.add_argument("--resume", action="store_true", help="a fine-tuned recipe's maker: continue the shipped model")
    t.add_argument("--subset", type=positive_int, help="train on a deterministic subset of this many images")
    t.add_argument("--seed", type=int, default=0, help="a whole number >= 0")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("recipes", help="list the recipes")
    d = sub.add_parser("data", help="prepare (or download) a dataset")
    d.add_argument("name", choices=sorted(data.DATASETS))
    sub.add_parser("grade", add_help=False, help="grade submitted notebooks (python -m course_lib grade --help)")
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["grade"]:  # the lecturer's grading command has its own options
        return grade_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return train_command(args)
        if args.command == "recipes":
            for name, r in sorted(RECIPES.items()):
                print(f"{name:20s} {r.model:14s} {r.dataset:14s} {r.epochs:3d} epochs  {r.about}")
            return 0
        if args.command == "data":
            for train in (True, False):
                ds = data.load_dataset(args.name, train=train, download=True)
                print(f"{args.name} {'train' if train else 'test'}: {len(ds)} images")
            return 0
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # argparse's choices make this unreachable


if __name__ == "__main__":
    sys.exit(main())
