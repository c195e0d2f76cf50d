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
from dataclasses import dataclass

import torch
import torch.nn as nn

__all__ = ["count_params", "LayerCost", "layer_macs", "layer_table", "count_macs", "model_bytes",
           "file_bytes", "latency", "activation_bytes", "peak_cuda_bytes", "human_bytes"]

COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_params(model, nonzero=False):
    """Number of parameters of ``model`` (only the non-zero ones if ``nonzero``)."""
    params = list(model.parameters())
    if nonzero:
        return sum(int(torch.count_nonzero(p)) for p in params)
    return sum(p.numel() for p in params)


@dataclass
class LayerCost:
    name: str
    kind: str
    out_shape: tuple
    params: int
    macs: int


def layer_macs(module, inputs, output):
    """MACs of one call of a conv or linear layer, from the tensors it saw."""
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    # conv: every output element is a dot product over (C_in / groups) * prod(kernel_size) inputs
    per_output = module.in_channels // module.groups
    for k in module.kernel_size:
        per_output *= k
    return output.numel() * per_output


def _check_input_size(input_size):
    size = tuple(input_size) if isinstance(input_size, (tuple, list, torch.Size)) else None
    if size is None or len(size) not in (3, 4) or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"input_size={input_size!r} must be a tuple of positive ints: (C, H, W) for one "
                         "image or (N, C, H, W) for a batch")
    return size if len(size) == 4 else (1,) + size


def layer_table(model, input_size):
    """One ``LayerCost`` per conv/linear call in a forward pass of one input of ``input_size``.

    ``input_size`` is (C, H, W) for one image, or (N, C, H, W) for a batch of N.
    """
    size = _check_input_size(input_size)
    rows, hooks = [], []
    names = {m: n for n, m in model.named_modules()}

    def record(module, inputs, output):
        rows.append(LayerCost(names.get(module, "?"), type(module).__name__, tuple(output.shape),
                              sum(p.numel() for p in module.parameters(recurse=False)),
                              layer_macs(module, inputs, output)))

    for module in model.modules():
        if isinstance(module, COUNTED):
            hooks.append(module.register_forward_hook(record))
    first = next(model.parameters(), None)
    device = first.device if first is not None else "cpu"
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(size, device=device, dtype=dtype)
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def count_macs(model, input_size):
    """Multiply-accumulates of one forward pass at ``input_size`` ((C, H, W) or (N, C, H, W))."""
    return sum(row.macs for row in layer_table(model, input_size))


def model_bytes(model, bits=32):
    """Bytes to store every parameter at ``bits`` bits each (no index or codebook overhead)."""
    if not isinstance(bits, (int, float)) or not 1 <= bits <= 64:
        raise ValueError(f"bits={bits!r} must be a number of bits between 1 and 64")
    return int(-(-count_params(model) * bits // 8))


def file_bytes(path_or_model):
    """Real bytes: the size of a file, or of a model's ``state_dict`` serialized with ``torch.save``."""
    if isinstance(path_or_model, nn.Module):
        buffer = io.BytesIO()
        torch.save(path_or_model.state_dict(), buffer)
        return buffer.getbuffer().nbytes
    if isinstance(path_or_model, dict):
        buffer = io.BytesIO()
        torch.save(path_or_model, buffer)
        return buffer.getbuffer().nbytes
    if not os.path.exists(path_or_model):
        raise FileNotFoundError(f"file_bytes: {path_or_model} does not exist")
    return os.path.getsize(path_or_model)


def latency(model, x, device=None, min_run_time=0.5, threads=None):
    """Median seconds of one ``model(x)`` call, measured with ``torch.utils.benchmark``.

    ``model`` is a module (timed in eval mode, without autograd) or any function of ``x``.
    """
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)   # a CUDA_HOME notice on CPU
    from torch.utils import benchmark

    is_module = isinstance(model, nn.Module)
    if device is not None:
        x = x.to(device)
        model = model.to(device) if is_module else model
    was_training = model.training if is_module else False
    if is_module:
        model.eval()
    try:
        with torch.no_grad():
            model(x)                                                   # warm-up
            timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x},
                                    num_threads=threads or torch.get_num_threads())
            result = timer.blocked_autorange(min_run_time=min_run_time)
    finally:
        if is_module:
            model.train(was_training)
    return result.median


def activation_bytes(model, x):
    """Bytes of the tensors autograd saves for the backward pass of ``model(x)`` (parameters excluded).

    Each storage is counted once, however many operations save it. Works on CPU and GPU. Buffers
    (BatchNorm's running statistics, which BN saves in training mode) are model state, not
    activations, and are excluded like parameters. Under ``torch.utils.checkpoint`` only what the
    checkpoint keeps (its inputs) is counted, not the tensors it will recompute.
    """
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


def peak_cuda_bytes(fn, device=None):
    """Peak CUDA memory allocated while ``fn()`` runs, in bytes (needs a CUDA device)."""
    if not torch.cuda.is_available():
        raise RuntimeError("peak_cuda_bytes needs a CUDA device; on CPU use activation_bytes")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def human_bytes(n):
    """``1536`` → ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
