"""``fit`` and ``evaluate``: one small, explicit training loop shared by every chapter.

What it does, in the order a training step meets it:

- SGD with Nesterov momentum or AdamW; no weight decay on BatchNorm weights and biases.
- A per-step learning-rate schedule: one-cycle, cosine or constant (``lr_factor``).
- Cross-entropy with optional label smoothing, or any ``loss_fn(outputs, targets)``.
- bf16 autocast on CUDA (fp16 with a gradient scaler on request), channels_last, ``torch.compile``.
- ``after_step`` hooks, called after every optimizer step (chapter 04 re-applies pruning masks there).
- ``ema=``: an exponential moving average of the weights (``WeightAverage``), tested and kept instead
  of the last step's weights.
- ``tta=``: flip test-time augmentation in ``evaluate`` (each image and its mirror image vote).
- ``evals_per_epoch=``: test more than once an epoch; ``History.curve_*`` is the test curve against
  training seconds (test time excluded), ``History.seconds_to(0.92)`` the time to an accuracy.
- A ``History`` of per-epoch figures with ``.plot()``.
- Checkpoints written atomically at the end of every epoch; ``fit(..., checkpoint=path)`` resumes
  an interrupted run, and refuses a checkpoint of another run (it records the settings that define
  it). Every epoch seeds its randomness from ``(seed, epoch)``, so a resumed run ends with exactly
  the weights of an uninterrupted one (on CPU).
- Under ``torch.distributed`` (``torchrun``) the model is wrapped in DistributedDataParallel and
  each process trains on its shard of every batch order.

Training fast (``benchmarks/time_to_accuracy.py``; README, "Measured", 2-core EPYC VM). The recipe
``fast-fmnist`` (``models.fast_cnn``, batch 256, lr 0.2, one-cycle over 4 epochs, label smoothing
0.1, ``tta=True``, flips as the only augmentation, channels_last) reaches 92% on the full
Fashion-MNIST test set after 26 s of training; LeNet-5's recipe needs 179 s (7x slower). What each
idea brings, each removed (or added) in turn in one run, on the full test set (an accuracy on
10,000 images is sure to about +-0.5 pt):

- the network: LeNet-5 in the same recipe ends at 91.1% instead of 92.5% and never reaches 92%;
- flips only: random crops as well end at 91.4% (they pay in long runs), no augmentation at 91.7%;
- channels_last: 1.5x faster training (52.7 s -> 35.3 s for 4 epochs);
- ``tta``: +0.5 pt (92.04% -> 92.52%; +0.35 pt on held-out training images) for twice the test
  time; label smoothing and batch 256 vs 128: within noise;
- ``ema=0.99`` did not pay in two runs (92.45% with it, 92.52% without, 92% reached 2 s later: a
  one-cycle schedule that anneals to zero already ends on smooth weights), so the recipe leaves it
  out; it remains an option (``WeightAverage``);
- two threads vs one: 1.5x; ``torch.compile`` (inductor): 51 s of compiling, 2.5x slower in all;
- bf16 autocast (``amp="bf16"``): 1.4x faster on this CPU, which has AVX512-BF16 instructions, at
  the same accuracy; ``amp="auto"`` still trains in fp32 on every CPU, because a CPU without bf16
  instructions emulates it, several times slower.

In the dry run (``COURSE_DRY_RUN=1``, see ``course_lib.config``) ``fit`` keeps every argument but
trains one epoch of at most ``config.DRY_RUN_STEPS`` batches, ``evaluate`` looks at no more than
``config.DRY_RUN_EVAL_BATCHES`` batches, and each ``fit`` records the work a real run would do in
``PLANNED`` (and, as JSON lines, in the file named by ``COURSE_DRY_RUN_PLAN``): the basis of the
README's estimate of full-profile time per chapter.
"""

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import config
from .args import check_float, check_fraction, check_int
from .checkpoints import CheckpointError, load_state, load_training_checkpoint, save_atomically
from .measure import count_macs
from .surgery import copy_model

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "History",
    "lr_factor",
    "make_optimizer",
    "predict",
    "evaluate",
    "deterministic_algorithms",
    "WeightAverage",
    "fit",
]

DeviceLike = str | torch.device

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")
PLANNED: list[dict[str, Any]] = []  # dry run: one dict per fit call, the work a real run would do


@dataclass
class History:
    """Per-epoch figures of a training run."""

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    images_per_s: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    # The test curve: one point per test (``evals_per_epoch`` a epoch): when (epochs, fractional),
    # after how many seconds of training (test time excluded), and the test accuracy.
    curve_epoch: list = field(default_factory=list)
    curve_seconds: list = field(default_factory=list)
    curve_test_acc: list = field(default_factory=list)

    def append(self, **row: Any) -> None:
        """Add one epoch's figures (a keyword per field)."""
        for key, value in row.items():
            getattr(self, key).append(value)

    def record_test(self, epoch: float, seconds: float, test_acc: float | None) -> None:
        """Add a point to the test curve (nothing without test data)."""
        if test_acc is not None:
            self.curve_epoch.append(epoch)
            self.curve_seconds.append(seconds)
            self.curve_test_acc.append(test_acc)

    def seconds_to(self, accuracy: float) -> float | None:
        """Training seconds until the first test at or above ``accuracy`` (a fraction); None if never."""
        for seconds, acc in zip(self.curve_seconds, self.curve_test_acc):
            if acc >= accuracy:
                return seconds
        return None

    def as_dict(self) -> dict:
        """The history as a plain dict of lists (what a training checkpoint stores)."""
        return asdict(self)

    @property
    def final_test_acc(self) -> float | None:
        """The test accuracy after the last epoch (None without test data)."""
        return self.test_acc[-1] if self.test_acc else None

    def plot(self) -> "Figure":
        """Loss and accuracy per epoch, as a matplotlib figure."""
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
        ax_loss.plot(self.epoch, self.train_loss, "o-", label="train loss")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_title("training loss")
        ax_acc.plot(self.epoch, [100 * a for a in self.train_acc], "o-", label="train")
        if self.curve_test_acc:  # every test, mid-epoch ones included
            ax_acc.plot(self.curve_epoch, [100 * a for a in self.curve_test_acc], "s-", label="test")
        elif any(a is not None for a in self.test_acc):
            ax_acc.plot(self.epoch, [None if a is None else 100 * a for a in self.test_acc], "s-", label="test")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("accuracy (%)")
        ax_acc.set_title("accuracy")
        ax_acc.legend()
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    """``ValueError`` naming ``name`` and the choices unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is unknown; choose one of {choices}")


def lr_factor(step: int, total_steps: int, schedule: str = "onecycle", warmup: float = 0.25) -> float:
    """The learning-rate multiplier at ``step`` of ``total_steps`` (peak 1).

    one-cycle: linear warm-up from 0.04 to 1 over the first ``warmup`` fraction, then cosine to 0;
    cosine: from 1 to 0; constant: 1.
    """
    _check_choice("schedule", schedule, SCHEDULES)
    progress = min(step / max(total_steps, 1), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if progress < warmup:
        return 0.04 + 0.96 * progress / warmup
    return 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))


def make_optimizer(
    model: nn.Module, name: str = "sgd", lr: float = 0.05, weight_decay: float = 5e-4, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """SGD-Nesterov or AdamW, with no weight decay on 1-d parameters (BatchNorm weights, biases)."""
    _check_choice("optimizer", name, OPTIMIZERS)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def _autocast(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA for "auto"/"bf16", fp16 on CUDA for "fp16"; on the CPU only an
    explicit "bf16" autocasts (it pays only on CPUs with bf16 instructions — AVX512-BF16 or AMX: 1.4x
    on the project's EPYC VM — and is several times slower elsewhere, so "auto" stays fp32, in the
    dry run too; tests/test_train.py runs the bf16 path on the CPU)."""
    _check_choice("amp", amp, AMP_MODES)
    if amp == "off":
        return None
    if device.type == "cuda":
        return torch.float16 if amp == "fp16" else torch.bfloat16
    if device.type == "cpu" and amp == "bf16":
        return torch.bfloat16
    return None


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)  # DistributedDataParallel


@torch.no_grad()
def predict(
    model: nn.Module, data: Iterable, device: DeviceLike | None = None, *, tta: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted classes, labels)`` of every example of ``data``, two 1-d tensors on the device.

    What a paired comparison of two models on the same test images needs (``stats.compare``).
    ``tta``: test-time augmentation by a horizontal flip, the logits of each image and of its mirror
    image summed (use it only where a flip keeps the label). Images go in channels_last when the
    model's first convolution is. Nothing is read back to the host.

    In the dry run (``COURSE_DRY_RUN=1``) only the first ``config.DRY_RUN_EVAL_BATCHES`` batches of
    ``data`` are read (``config.describe()`` prints this): the accuracy is of those images alone.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    channels_last = _is_channels_last(model)
    predicted, labels = [], []
    if config.dry_run():
        data = itertools.islice(data, config.DRY_RUN_EVAL_BATCHES)
    for x, y in data:
        x, y = x.to(device), y.to(device)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out = _logits(model(x))
        if tta:
            out = out + _logits(model(x.flip(-1)))
        predicted.append(out.argmax(1))
        labels.append(y)
    model.train(was_training)
    if not labels:
        return torch.zeros(0, dtype=torch.int64, device=device), torch.zeros(0, dtype=torch.int64, device=device)
    return torch.cat(predicted), torch.cat(labels)


def evaluate(model: nn.Module, data: Iterable, device: DeviceLike | None = None, *, tta: bool = False) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) of ``model`` over the batches ``(x, y)`` of ``data``.

    ``tta`` as in ``predict``. The count of correct predictions is read once, at the end.

    In the dry run (``COURSE_DRY_RUN=1``) it reads only the first ``config.DRY_RUN_EVAL_BATCHES``
    batches (``predict``; ``config.describe()`` prints this line): never a real accuracy.
    """
    predicted, labels = predict(model, data, device, tta=tta)
    if len(labels) == 0:
        raise ValueError("evaluate got no examples: the data is empty")
    return (predicted == labels).sum().item() / len(labels)


def _logits(out: Any) -> torch.Tensor:
    """The logits of a model's output (the first element of a tuple, as models with side outputs return)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _is_channels_last(model: nn.Module) -> bool:
    """Is the first 4-d weight of ``model`` whose layout tells (not a 1-channel one) stored channels_last?"""
    for p in model.parameters():
        if p.ndim == 4 and not (p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)):
            return p.is_contiguous(memory_format=torch.channels_last)
    return False


@contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Run the block with ``torch.use_deterministic_algorithms(True, warn_only=True)``, then restore
    the previous setting (also on an error). ``enabled=False`` leaves the setting as it is."""
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def fit(
    model: nn.Module,
    train_data: Iterable,
    test_data: Iterable | None = None,
    epochs: int = 1,
    *,
    optimizer: str = "sgd",
    lr: float = 0.05,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    schedule: str = "onecycle",
    label_smoothing: float = 0.0,
    ema: float | None = None,
    tta: bool = False,
    evals_per_epoch: int = 1,
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
    after_step: Callable[[nn.Module], Any] | Sequence[Callable[[nn.Module], Any]] = (),
    device: DeviceLike | None = None,
    amp: str = "auto",
    channels_last: bool = False,
    compile: bool | str = False,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    max_grad_norm: float | None = None,
    deterministic: bool = False,
) -> History:
    """Train ``model`` on ``train_data`` for ``epochs`` and return a ``History``.

    ``train_data``/``test_data`` yield ``(x, y)`` batches (a ``DeviceLoader`` or a ``DataLoader``).
    ``ema``: keep an exponential moving average of the weights (and BatchNorm statistics) with this
    decay per step, evaluate it instead of the raw weights, and leave it in ``model`` at the end.
    ``tta``: evaluate on each image and its mirror image (only where a flip keeps the label).
    ``evals_per_epoch``: test this many times per epoch (the curve is in ``History.curve_*``).
    ``after_step``: a callable or list of callables ``hook(model)`` run after each optimizer step.
    ``loss_fn(outputs, targets)``: replaces the (label-smoothed) cross-entropy.
    ``checkpoint``: a path written at the end of every epoch; if it already holds this run (the same
    architecture and settings: optimizer, lr, weight decay, momentum, schedule, smoothing, ema, epochs,
    batches an epoch, seed, gradient clipping), training continues from there; a checkpoint of another
    run raises ``checkpoints.CheckpointError`` naming what differs.
    Every setting, and the labels of ``train_data`` against the model's outputs, are checked before
    the model changes (``TypeError`` / ``ValueError`` naming the parameter and the rule).
    ``amp``: "auto" (bf16 autocast on CUDA), "bf16" (also on the CPU), "fp16" (CUDA, with a gradient
    scaler) or "off". ``compile``: ``True`` for ``torch.compile``'s default backend, or a backend name.
    ``deterministic``: run with ``torch.use_deterministic_algorithms(True, warn_only=True)`` and
    restore the previous setting afterwards. Needed for a repeatable run of a model with shared
    weights (``codebook[indices]``, an embedding): the backward of that gather is an ``index_add`` /
    scatter that sums each shared weight's gradients in parallel, in a varying order, so two runs
    differ in the last bits unless deterministic algorithms are on.
    The epoch's loss and accuracy are summed on the device and read once per epoch: no host
    synchronisation inside the step loop.
    In the dry run: one epoch of at most ``config.DRY_RUN_STEPS`` batches (see the module docstring).
    """
    run = _check_settings(
        train_data,
        epochs=epochs,
        evals_per_epoch=evals_per_epoch,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        momentum=momentum,
        schedule=schedule,
        label_smoothing=label_smoothing,
        ema=ema,
        max_grad_norm=max_grad_norm,
        seed=seed,
    )
    device = torch.device(device) if device is not None else config.device()
    dtype = _autocast(device, amp)
    # Labels outside the model's classes: checked once, now (a loader that holds its whole dataset,
    # like DeviceLoader) or at the first step (any other iterable of batches).
    images, labels = getattr(train_data, "images", None), getattr(train_data, "labels", None)
    known = loss_fn is None and images is not None and labels is not None
    if loss_fn is None and images is not None and labels is not None:
        where = next((p.device for p in model.parameters()), torch.device("cpu"))
        _check_labels(model, images[:1].float().to(where), labels)
    hooks = [after_step] if callable(after_step) else list(after_step)
    steps_per_epoch = len(train_data) if isinstance(train_data, Sized) else 0  # sized: _check_settings said so
    dry = config.dry_run()
    if dry:
        _plan(model, train_data, epochs)
        epochs, steps_per_epoch = 1, min(steps_per_epoch, config.DRY_RUN_STEPS)
    total_steps = epochs * steps_per_epoch
    run.update(epochs=epochs, steps_per_epoch=steps_per_epoch)  # what defines the run (dry run: capped)

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, optimizer, lr, weight_decay, momentum)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, schedule))
    averaged = WeightAverage(model, ema) if ema is not None else None
    history, start_epoch = History(), 0
    if checkpoint is not None and Path(checkpoint).exists():
        history, start_epoch = _resume(checkpoint, run, model, opt, sched, averaged)

    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    is_main = not distributed or torch.distributed.get_rank() == 0
    net = _wrap(model, device, distributed, compile)
    criterion = loss_fn or (lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing))
    step = _training_step(
        net,
        model,
        opt,
        sched,
        criterion,
        hooks,
        averaged,
        device=device,
        dtype=dtype,
        channels_last=channels_last,
        max_grad_norm=max_grad_norm,
        check_labels=loss_fn is None and not known,
    )
    evaluated = averaged.module if averaged is not None else model

    def test() -> float | None:
        return evaluate(evaluated, test_data, device, tta=tta) if test_data is not None else None

    # Mid-epoch tests happen after these steps of every epoch (the last one is the end-of-epoch test).
    test_after = {steps_per_epoch * k // evals_per_epoch - 1 for k in range(1, evals_per_epoch)}
    epoch_bar = _progress(
        range(start_epoch, epochs), progress and is_main, desc="epochs", total=epochs, initial=start_epoch
    )
    with deterministic_algorithms(deterministic):
        for epoch in epoch_bar:
            torch.manual_seed(seed * 100_003 + epoch)  # dropout etc.: the same in every run
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            net.train()
            batches = itertools.islice(train_data, steps_per_epoch) if dry else train_data
            batches = _progress(
                batches, progress and is_main, desc=f"epoch {epoch + 1}", leave=False, total=steps_per_epoch
            )
            trained_before = sum(history.seconds)

            def test_mid_epoch(i: int, seconds: float) -> None:
                history.record_test(epoch + (i + 1) / steps_per_epoch, trained_before + seconds, test())

            loss_sum, correct, seen, seconds = _run_epoch(step, batches, device, test_after, test_mid_epoch)
            test_acc = test()
            history.append(
                epoch=epoch + 1,
                train_loss=loss_sum / max(seen, 1),
                train_acc=correct / max(seen, 1),
                test_acc=test_acc,
                seconds=seconds,
                images_per_s=seen / seconds,
                lr=opt.param_groups[0]["lr"],
            )
            history.record_test(epoch + 1, trained_before + seconds, test_acc)
            if hasattr(epoch_bar, "set_postfix"):
                epoch_bar.set_postfix(
                    loss=f"{history.train_loss[-1]:.3f}", test=f"{100 * test_acc:.2f}%" if test_acc is not None else "-"
                )
            if checkpoint is not None and is_main:
                _save(checkpoint, run, model, opt, sched, averaged, epoch + 1, history)
    if averaged is not None:  # the averaged weights are the result
        model.load_state_dict(averaged.module.state_dict())
    return history


# --------------------------------------------------------------------------- the pieces of fit


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics (``fit(ema=...)``).

    After every optimizer step, ``update(model)`` moves each averaged tensor a fraction ``1 - decay``
    of the way to the model's: with ``decay=0.99`` the average is dominated by the last ~100 steps,
    and it is smoother (and usually better) than the weights of the last step. The average starts
    from the model's weights when it is made; integer buffers (BatchNorm's step count) are copied.

    Written out instead of ``torch.optim.swa_utils.AveragedModel``, which reads its step counter on
    the host at every update: on a GPU that is a host synchronisation per step (``fit``'s loop has none).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy_model(_unwrap(model))
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights and buffers."""
        for averaged, current in zip(self.module.state_dict().values(), _unwrap(model).state_dict().values()):
            if averaged.is_floating_point():
                averaged.lerp_(current, 1.0 - self.decay)
            else:
                averaged.copy_(current)


def _check_settings(train_data: Iterable, **run: Any) -> dict:
    """Check ``fit``'s settings before anything changes; returns those that define a run (for resuming)."""
    check_int("epochs", run["epochs"])
    check_int("evals_per_epoch", run["evals_per_epoch"])
    check_int("seed", run["seed"], minimum=0)
    _check_choice("optimizer", run["optimizer"], OPTIMIZERS)
    _check_choice("schedule", run["schedule"], SCHEDULES)
    check_float("lr", run["lr"], 0.0, low_inclusive=False, what="a learning rate")
    check_float("weight_decay", run["weight_decay"], 0.0)
    check_fraction("momentum", run["momentum"])
    check_fraction("label_smoothing", run["label_smoothing"])
    if run["ema"] is not None and check_fraction("ema", run["ema"]) == 0.0:
        raise ValueError(f"ema={run['ema']} must be a decay in (0, 1), e.g. 0.99, or None for no averaging")
    if run["max_grad_norm"] is not None:
        check_float("max_grad_norm", run["max_grad_norm"], 0.0, low_inclusive=False, what="a gradient norm")
    if not isinstance(train_data, Sized):
        raise TypeError(
            f"train_data must know its length (a DeviceLoader, a DataLoader or a list of batches), "
            f"got a {type(train_data).__name__}"
        )
    if len(train_data) == 0:
        raise ValueError("train_data has no batches: there is nothing to train on")
    del run["evals_per_epoch"]  # how often we look does not change the run
    return run


def _check_labels(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> None:
    """Are ``labels`` classes of the model (``0 .. outputs - 1``)? ``x``: an input of the model's shape.

    One forward pass of one image in eval mode (nothing changes) tells the number of outputs.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = _logits(model(x[:1])).shape[-1]
    model.train(was_training)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= outputs:
        bad = low if low < 0 else high
        raise ValueError(
            f"label {bad} of train_data is not a class of this model: it has {outputs} outputs, "
            f"so labels must be in 0..{outputs - 1}"
        )


def _resume(
    checkpoint: str | os.PathLike,
    run: dict,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    averaged: WeightAverage | None,
) -> tuple[History, int]:
    """Load a training checkpoint of the same run into the model, optimizer, scheduler (and average).

    Returns ``(history, epochs done)``. A checkpoint of another run (other settings, another
    architecture) raises ``CheckpointError`` naming what differs; nothing is loaded.
    """
    state = load_training_checkpoint(checkpoint)
    saved = state.get("run")  # checkpoints of older versions record no run
    if saved is not None:
        differ = [
            f"{k}={saved[k]!r} in the checkpoint, {run[k]!r} now" for k in run if k in saved and saved[k] != run[k]
        ]
        if differ:
            raise CheckpointError(
                f"{checkpoint} holds another training run ({'; '.join(differ)}): pass the same "
                "settings to continue it, or another checkpoint path to start a new run"
            )
    load_state(model, state["model"], str(checkpoint))
    try:
        opt.load_state_dict(state["optimizer"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(
            f"{checkpoint} holds the state of another optimizer: {type(err).__name__}: {err}"
        ) from None
    sched.load_state_dict(state["scheduler"])
    if averaged is not None and state.get("ema") is not None:
        load_state(averaged.module, state["ema"], f"{checkpoint} (weight average)")
    torch.set_rng_state(state["rng"])
    return History(**state["history"]), state["epoch"]


def _save(
    checkpoint: str | os.PathLike,
    run: dict,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    averaged: WeightAverage | None,
    epoch: int,
    history: History,
) -> None:
    """Write everything a resumed run needs, and the settings that define the run, atomically."""
    save_atomically(
        {
            "model": _unwrap(model).state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": torch.get_rng_state(),
            "ema": averaged.module.state_dict() if averaged is not None else None,
            "run": run,
            "epoch": epoch,
            "history": history.as_dict(),
        },
        checkpoint,
    )


def _wrap(model: nn.Module, device: torch.device, distributed: bool, compile: bool | str) -> nn.Module:
    """The module the steps call: ``model``, in DistributedDataParallel under torchrun, compiled on request."""
    net = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        # torch.compile(module) returns an OptimizedModule, an nn.Module: its stub says a callable
        net = torch.compile(net, backend=compile) if isinstance(compile, str) else torch.compile(net)  # type: ignore[assignment]
    return net


def _training_step(
    net: nn.Module,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    criterion: Callable,
    hooks: Sequence[Callable],
    averaged: WeightAverage | None,
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
    max_grad_norm: float | None,
    check_labels: bool = True,
) -> Callable:
    """``step(x, y)``: one optimizer step on a batch; returns the loss, the logits and ``y`` on the device.

    The first step checks the labels against the model's outputs (``_check_labels``) when ``check_labels``.
    """
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    unchecked = [check_labels]

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if unchecked[0]:
            _check_labels(model, x, y)
            unchecked[0] = False
        with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
            out = net(x)
            loss = criterion(out, y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if max_grad_norm is not None:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(opt)
        scaler.update()
        sched.step()
        for hook in hooks:
            hook(model)
        if averaged is not None:
            averaged.update(model)
        return loss, _logits(out), y

    return step


def _run_epoch(
    step: Callable,
    batches: Iterable,
    device: torch.device,
    pause_after: Collection[int] = (),
    pause: Callable[[int, float], Any] | None = None,
) -> tuple[float, int, int, float]:
    """Run ``step(x, y)`` on every batch; ``(summed loss, correct predictions, examples, seconds)``.

    After step ``i`` in ``pause_after``, ``pause(i, seconds trained so far)`` runs (a mid-epoch test);
    its time is not counted in the training seconds.
    The sums stay on the device (float64 where the device has it) and are read once, after the last
    step: reading ``loss.item()`` every step would make the host wait for the GPU every step.
    """
    acc_dtype = torch.float32 if device.type == "mps" else torch.float64
    loss_sum = torch.zeros((), dtype=acc_dtype, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen, paused, start = 0, 0.0, time.perf_counter()
    for i, (x, y) in enumerate(batches):
        loss, logits, y = step(x, y)
        loss_sum += loss.detach().to(acc_dtype) * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if i in pause_after and pause is not None:
            _synchronize(device)
            t = time.perf_counter()
            pause(i, t - start - paused)
            paused += time.perf_counter() - t
    _synchronize(device)
    seconds = time.perf_counter() - start - paused
    return loss_sum.item(), int(correct.item()), seen, seconds


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (so the clock measures it); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plan(model: nn.Module, train_data: Iterable, epochs: int) -> None:
    """Dry run: record the work the real run of this ``fit`` call would do (see ``PLANNED``)."""
    images = getattr(train_data, "planned_images", None)
    batch = getattr(train_data, "planned_batch_size", getattr(train_data, "batch_size", None))
    if images is None:
        images = (len(train_data) if isinstance(train_data, Sized) else 0) * (batch or 1)
    row = {
        "model": type(_unwrap(model)).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": epochs,
        "images_per_epoch": images,
        "batch_size": batch,
        "macs_per_image": None,
    }
    shape = getattr(train_data, "images", None)
    if shape is not None:
        try:
            row["macs_per_image"] = count_macs(model, tuple(shape.shape[1:]))
        except Exception:  # an exotic model the hook counter cannot size: leave it unknown
            pass
    PLANNED.append(row)
    path = os.environ.get("COURSE_DRY_RUN_PLAN")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def _progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    """``iterable`` with a tqdm.auto progress bar when ``enabled``, else unchanged."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
