"""Honest measurements: parameters, multiply-accumulates, bytes, latency and memory.

Conventions used throughout the course:

- a MAC is one multiply-accumulate; FLOPs = 2 x MACs for convolutions and linear layers (this is
  how ``torch.utils.flop_counter.FlopCounterMode`` counts them, and the tests check we agree);
- ``count_macs`` counts ``nn.Conv1d/2d/3d`` (any stride, padding, dilation, groups, depthwise) and
  ``nn.Linear``; other layers (BatchNorm, activations, pooling, additions) are ignored because
  their cost is tiny next to the convolutions and depends on the kernel library;
- bytes "at b bits" are the parameter count times b/8; *real* bytes are the size of a serialized file.
"""

import io
import logging
import os
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .args import check_float, check_int
from .report import Rows
from .surgery import WEIGHT_LAYERS, forward_with_hooks

logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # its CUDA_HOME notice on a CPU machine
from torch.utils import benchmark  # noqa: E402  (after the line above, which silences its import)

__all__ = [
    "check_not_meta",
    "count_params",
    "LayerCost",
    "layer_macs",
    "layer_table",
    "count_macs",
    "model_bytes",
    "file_bytes",
    "latency",
    "latency_rounds",
    "latencies",
    "activation_bytes",
    "peak_cuda_bytes",
    "human_bytes",
]

COUNTED = WEIGHT_LAYERS  # the layers whose multiply-accumulates we count
Timed = nn.Module | Callable[[torch.Tensor], Any]
DeviceLike = str | torch.device


def _tensors(what: Any) -> list:
    if isinstance(what, nn.Module):
        return [*what.parameters(), *what.buffers()]
    if isinstance(what, torch.Tensor):
        return [what]
    if isinstance(what, Mapping):
        return [t for v in what.values() for t in _tensors(v)]
    if isinstance(what, (list, tuple)):
        return [t for v in what for t in _tensors(v)]
    return []


def check_not_meta(what: Any, task: str = "measured", name: str = "model") -> Any:
    """``what`` (a model, a tensor, a state_dict) unless a tensor of it is on the ``meta`` device.

    A meta tensor has a shape and no values: counting its parameters works, but its non-zeros, its
    saved activations and the bytes of its file do not exist. Measuring one silently would report
    0 bytes (or a file of headers only), so it is a ``ValueError`` that names the meta device.
    """
    if any(t.device.type == "meta" for t in _tensors(what)):
        raise ValueError(
            f"{name} is on the meta device (shapes without values): it cannot be {task}; "
            "build it on a real device (e.g. 'cpu', or model.to_empty(device='cpu') and load "
            "its weights) first"
        )
    return what


def count_params(model: nn.Module, nonzero: bool = False) -> int:
    """Number of parameters of ``model`` (only the non-zero ones if ``nonzero``).

    A model on the ``meta`` device has a parameter count but no values: ``nonzero=True`` is then a
    ``ValueError`` (``check_not_meta``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if nonzero:
        check_not_meta(model, "measured: its non-zeros are unknown")
        return sum(int(torch.count_nonzero(p)) for p in params)
    return sum(p.numel() for p in params)


@dataclass
class LayerCost:
    """One conv/linear call of a forward pass: its name, type, output shape, parameters and MACs."""

    name: str
    kind: str
    out_shape: tuple
    params: int
    macs: int


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """MACs of one call of a conv or linear layer, from the tensors it saw."""
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        raise TypeError(f"layer_macs counts conv and linear layers, not {type(module).__name__}")
    # conv: every output element is a dot product over (C_in / groups) * prod(kernel_size) inputs
    per_output = module.in_channels // module.groups
    for k in module.kernel_size:
        per_output *= k
    return output.numel() * per_output


def _check_input_size(input_size: Any) -> tuple:
    size = tuple(input_size) if isinstance(input_size, (tuple, list, torch.Size)) else None
    if size is None or len(size) not in (3, 4) or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(
            f"input_size={input_size!r} must be a tuple of positive ints: (C, H, W) for one "
            "image or (N, C, H, W) for a batch"
        )
    return size if len(size) == 4 else (1,) + size


def _misfit(model: nn.Module, size: tuple, err: Exception) -> ValueError:
    """A ``ValueError`` that names what the model's first conv/linear layer expects instead of ``size``."""
    name, first = next(((n, m) for n, m in model.named_modules() if isinstance(m, COUNTED)), (None, None))
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    source = "torch" if isinstance(err, RuntimeError) else "model"
    if first is None:
        return ValueError(f"input_size {size} does not fit the model: {detail}")
    if isinstance(first, nn.Linear):
        if first.in_features == size[1] * size[2] * size[3]:
            return ValueError(
                f"input_size {size} does not fit the model: its first layer `{name}` takes "
                f"{first.in_features} features, which fits, so a later layer does not ({source}: {detail})"
            )
        expects = f"{first.in_features} input feature(s) (C x H x W after flattening)"
    else:
        if first.in_channels == size[1]:  # the channels fit: the image is what does not
            return ValueError(
                f"input_size {size} does not fit the model: the {size[1]} channel(s) fit its first "
                f"layer `{name}`, but the {size[2]}x{size[3]} image is too small for its "
                f"convolutions and pooling, or a later layer does not fit ({source}: {detail})"
            )
        expects = f"{first.in_channels} input channel(s)"
    return ValueError(
        f"input_size {size} does not fit the model: its first layer `{name}` expects {expects} ({source}: {detail})"
    )


def layer_table(model: nn.Module, input_size: tuple) -> Rows:
    """``report.Rows`` of one ``LayerCost`` per conv/linear call in a forward pass at ``input_size``.

    ``input_size`` is (C, H, W) for one image, or (N, C, H, W) for a batch of N. A size the model
    cannot take is a ``ValueError`` naming what its first layer expects.
    """
    size = _check_input_size(input_size)
    rows = Rows()
    names = {m: n for n, m in model.named_modules()}

    def record(module, inputs, output):
        rows.append(
            LayerCost(
                names.get(module, "?"),
                type(module).__name__,
                tuple(output.shape),
                sum(p.numel() for p in module.parameters(recurse=False)),
                layer_macs(module, inputs, output),
            )
        )

    first = next(model.parameters(), None)
    device = first.device if first is not None else "cpu"
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    hooks: dict[nn.Module, Callable] = {module: record for module in model.modules() if isinstance(module, COUNTED)}
    try:
        forward_with_hooks(model, torch.zeros(size, device=device, dtype=dtype), hooks)
    except (RuntimeError, ValueError) as err:  # torch's shape error, or the model's own input check
        raise _misfit(model, size, err) from err
    return rows


def count_macs(model: nn.Module, input_size: tuple) -> int:
    """Multiply-accumulates of one forward pass at ``input_size`` ((C, H, W) or (N, C, H, W))."""
    return sum(row.macs for row in layer_table(model, input_size))


def model_bytes(model: nn.Module, bits: float = 32) -> int:
    """Bytes to store every parameter at ``bits`` bits each (no index or codebook overhead)."""
    check_float("bits", bits, 1, 64)
    return int(-(-count_params(model) * bits // 8))


def file_bytes(what: nn.Module | Mapping | str | os.PathLike) -> int:
    """Real bytes: the size of the file ``torch.save`` writes, the one definition the course uses.

    ``what`` is a model (its ``state_dict`` is serialized), a ``state_dict`` (or any dict
    ``torch.save`` takes), or the path of a file already written (its size on disk). A model or
    state_dict on the ``meta`` device is a ``ValueError`` (``torch.save`` would write its headers only).
    """
    if isinstance(what, nn.Module):
        check_not_meta(what, "measured in file bytes (torch.save would write no values)")
        what = what.state_dict()
    if isinstance(what, Mapping):
        check_not_meta(what, "measured in file bytes (torch.save would write no values)", "state_dict")
        buffer = io.BytesIO()
        torch.save(what, buffer)
        return buffer.getbuffer().nbytes
    if not isinstance(what, (str, os.PathLike)):
        raise TypeError(f"file_bytes takes a model, a state_dict or a path, not {type(what).__name__}")
    if not os.path.exists(what):
        raise FileNotFoundError(f"file_bytes: {what} does not exist")
    return os.path.getsize(what)


def _latency_once(model: Timed, x: torch.Tensor, min_run_time: float, threads: int | None) -> float:
    """Median seconds of ``model(x)`` over one ``blocked_autorange`` of ``min_run_time`` (after a warm-up)."""
    module = model if isinstance(model, nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        with torch.no_grad():
            model(x)  # warm-up
            timer = benchmark.Timer(
                stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads or torch.get_num_threads()
            )
            return timer.blocked_autorange(min_run_time=min_run_time).median
    finally:
        if module is not None:
            module.train(was_training)


def latency_rounds(
    models: Mapping[str, Timed],
    x: torch.Tensor,
    device: DeviceLike | None = None,
    min_run_time: float = 0.5,
    threads: int | None = None,
    rounds: int = 5,
) -> dict[str, list[float]]:
    """Seconds of one ``model(x)`` call for every model of ``models``, one figure per round.

    The models are timed in turn, round after round (``rounds`` rounds of ``min_run_time`` each,
    each round the median of a ``torch.utils.benchmark`` autorange): a slow spell of a shared
    machine then touches every model alike instead of whichever happened to run during it. The
    spread of a model's rounds is the noise of its figure (``stats.timing_verdict`` compares two).
    """
    rounds = check_int("rounds", rounds)
    if device is not None:
        x = x.to(device)
        models = {name: m.to(device) if isinstance(m, nn.Module) else m for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(_latency_once(model, x, min_run_time, threads))
    return times


def latencies(
    models: Mapping[str, Timed],
    x: torch.Tensor,
    device: DeviceLike | None = None,
    min_run_time: float = 0.5,
    threads: int | None = None,
    rounds: int = 5,
    best: bool = False,
) -> dict[str, float]:
    """Median seconds of one ``model(x)`` call for every model of ``models``, compared fairly.

    The median of each model's interleaved rounds (``latency_rounds``). ``best=True`` keeps each
    model's fastest round instead (the least disturbed one: what the model itself costs).
    """
    times = latency_rounds(models, x, device, min_run_time, threads, rounds)
    pick = min if best else statistics.median
    return {name: pick(t) for name, t in times.items()}


def latency(
    model: Timed,
    x: torch.Tensor,
    device: DeviceLike | None = None,
    min_run_time: float = 0.5,
    threads: int | None = None,
    rounds: int = 1,
    best: bool = False,
) -> float:
    """Median seconds of one ``model(x)`` call, measured with ``torch.utils.benchmark``.

    ``model`` is a module (timed in eval mode, without autograd) or any function of ``x``.
    ``rounds`` > 1 repeats the measurement and returns the median of the rounds (for noisy shared
    machines; ``best=True``: the fastest round); to compare several models, ``latencies`` interleaves
    their rounds.
    """
    return latencies({"model": model}, x, device, min_run_time, threads, rounds, best)["model"]


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for the backward pass of ``model(x)`` (parameters excluded).

    Each storage is counted once, however many operations save it. Works on CPU and GPU. Buffers
    (BatchNorm's running statistics, which BN saves in training mode) are model state, not
    activations, and are excluded like parameters. Under ``torch.utils.checkpoint`` only what the
    checkpoint keeps (its inputs) is counted, not the tensors it will recompute.
    """
    check_not_meta(model, "measured: its saved tensors have no storage")
    if isinstance(x, torch.Tensor):
        check_not_meta(x, "measured: it has no storage", "x")
    param_ptrs = {p.untyped_storage().data_ptr() for p in [*model.parameters(), *model.buffers()]}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in param_ptrs:
            seen[ptr] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(seen.values())


def peak_cuda_bytes(fn: Callable[[], Any], device: DeviceLike | None = None) -> int:
    """Peak CUDA memory allocated while ``fn()`` runs, in bytes (needs a CUDA device)."""
    if not torch.cuda.is_available():
        raise RuntimeError("peak_cuda_bytes needs a CUDA device; on CPU use activation_bytes")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def human_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
