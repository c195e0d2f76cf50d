"""Model surgery: the few operations every compression chapter performs on a network.

Chapters 02–05 each change a trained model: they pick the conv and linear layers to change, look at
the tensors those layers see in one forward pass, swap a layer for another, and write weights with a
few bits each. Those operations live here, once, tested once:

- ``weight_layers(model, layers=None)``: ``{name: module}`` of the conv / linear layers, in
  registration order; ``layers`` chooses some of them by name (the one keyword every chapter uses)
  and an unknown or non-weight name is a ``ValueError`` that lists the valid names.
- ``replace_layer(model, name, new)``: put ``new`` where the submodule ``name`` was.
- ``copy_model(model)``: ``copy.deepcopy`` that also copies a model pruned with ``torch.nn.utils.prune``.
- ``forward_with_hooks(model, x, hooks)``: register forward hooks, run one forward pass without
  gradients in eval mode, remove the hooks (even on error) and restore the training mode.
- ``dense_group_weight(weight, groups)``: the dense kernel of a group convolution — its groups sit
  in the diagonal blocks, zeros elsewhere (chapters 01 and 06).
- ``pack_bits`` / ``unpack_bits`` / ``bits_needed``: integers stored at ``bits`` bits each, most
  significant bit first (the order of ``numpy.packbits``), as chapter 02's quantized state and
  chapter 05's file format store them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .args import check_bits

__all__ = [
    "WEIGHT_LAYERS",
    "weight_layers",
    "tensor_of",
    "replace_layer",
    "copy_model",
    "forward_with_hooks",
    "dense_group_weight",
    "pack_bits",
    "unpack_bits",
    "bits_needed",
]

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
"""The layers that hold the weight matrices the course compresses."""


# --------------------------------------------------------------------------- which layers


def tensor_of(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """``module.<name>`` (a parameter or buffer: ``weight``, ``weight_mask``, ``weight_orig``…) as a tensor.

    ``nn.Module.__getattr__`` is typed ``Tensor | Module``; this says which one, and a ``TypeError``
    names the module when the attribute is a submodule (or anything else) instead."""
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is a {type(value).__name__}, not a tensor")
    return value


def weight_layers(
    model: nn.Module, layers: str | Iterable[str] | None = None, types: tuple[type[nn.Module], ...] = WEIGHT_LAYERS
) -> dict[str, nn.Module]:
    """``{name: module}`` of the layers of ``model`` of ``types`` (conv / linear), in registration order.

    ``layers`` chooses some of them by name (one name or several; ``None``: all of them). A name that
    is not a layer of the model, or a layer of another type, is a ``ValueError`` that lists the names
    one may choose.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    found: dict[str, nn.Module] = {name: m for name, m in model.named_modules() if isinstance(m, types)}
    if layers is None:
        return found
    if isinstance(layers, str):
        layers = [layers]
    modules = dict(model.named_modules())
    chosen: dict[str, nn.Module] = {}
    for name in layers:
        if not isinstance(name, str):
            raise TypeError(f"layers must hold layer names (str), got {name!r}")
        if name not in found:
            kinds = "/".join(t.__name__ for t in types)
            why = (
                f"is a {type(modules[name]).__name__}, not a {kinds} layer"
                if name in modules
                else "is not a layer of the model"
            )
            raise ValueError(f"layers: {name!r} {why}; choose from {list(found)}")
        chosen[name] = found[name]
    return chosen


def replace_layer(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` where the submodule ``name`` (dotted path, e.g. ``"features.3"``) was; returns ``model``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not hasattr(parent, child):
        raise ValueError(f"{name!r} is not a submodule of the model")
    setattr(parent, child, new)
    return model


def copy_model(model: nn.Module) -> nn.Module:
    """An independent copy of ``model`` — ``copy.deepcopy`` that also copies a pruned model.

    ``torch.nn.utils.prune`` recomputes a pruned layer's ``weight`` as ``weight_orig * weight_mask``
    and keeps it as a plain attribute; that tensor is not a leaf of autograd, and deepcopy refuses
    non-leaf tensors. Handing deepcopy a detached copy of each such tensor (its ``memo``) fixes that;
    the copy's forward pre-hook recomputes the weight from the copied ``weight_orig`` and mask.
    """
    memo = {
        id(t): t.detach().clone()
        for m in model.modules()
        for t in vars(m).values()
        if isinstance(t, torch.Tensor) and not t.is_leaf
    }
    return copy.deepcopy(model, memo)


# --------------------------------------------------------------------------- look inside one forward pass


def forward_with_hooks(model: nn.Module, x: torch.Tensor, hooks: dict[nn.Module, Callable], pre: bool = False) -> Any:
    """Run ``model(x)`` once with a forward hook on each module of ``hooks``; return the output.

    ``hooks`` maps a module to ``fn(module, inputs, output)`` (or ``fn(module, inputs)`` with
    ``pre=True``: a forward *pre*-hook, called before the module runs). The pass runs in eval mode
    without gradients; the hooks are removed and the training mode restored afterwards, even when
    the forward (or a hook, e.g. one that stops the pass early) raises.
    """
    handles = [m.register_forward_pre_hook(fn) if pre else m.register_forward_hook(fn) for m, fn in hooks.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


# --------------------------------------------------------------------------- group convolutions


def dense_group_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """The dense ``C_out × C_in × …`` kernel of a group conv's weight ``C_out × C_in/groups × …``.

    Group ``g``'s filters fill the diagonal block (outputs of group g) × (inputs of group g); every
    other entry is zero, so ``F.conv2d(x, dense_group_weight(w, g))`` equals
    ``F.conv2d(x, w, groups=g)``. Keeps autograd (does not detach).
    """
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"groups={groups!r} must be an int")
    if groups < 1:
        raise ValueError(f"groups={groups} must be >= 1")
    c_out, in_per_group = weight.shape[:2]
    if c_out % groups:
        raise ValueError(f"C_out={c_out} output channels are not divisible by groups={groups}")
    if groups == 1:
        return weight
    out_per_group = c_out // groups
    dense = weight.new_zeros(c_out, groups * in_per_group, *weight.shape[2:])
    for g in range(groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        dense[rows, g * in_per_group : (g + 1) * in_per_group] = weight[rows]
    return dense


# --------------------------------------------------------------------------- bit packing


def bits_needed(n_symbols: int) -> int:
    """Bits of a fixed-width code that can name ``n_symbols`` different symbols (at least 1)."""
    return max(1, math.ceil(math.log2(max(n_symbols, 1))))


def pack_bits(values: torch.Tensor | np.ndarray | Sequence[int], bits: int) -> torch.Tensor:
    """Non-negative integers < ``2**bits`` at ``bits`` bits each, most significant bit first.

    Returns a uint8 tensor of ``ceil(n · bits / 8)`` bytes; the last byte is zero-padded.
    ``values``: any integer tensor or array-like. ``unpack_bits`` is the inverse.
    """
    check_bits("bits", bits, high=32)
    flat = torch.as_tensor(values).reshape(-1).to(torch.int64).cpu()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise ValueError(f"values must lie in [0, 2**bits) = [0, {2**bits}) to be packed at bits={bits}")
    shifts = torch.arange(bits - 1, -1, -1, dtype=torch.int64)
    stream = ((flat[:, None] >> shifts) & 1).reshape(-1)  # each value's bits, MSB first
    stream = torch.cat([stream, stream.new_zeros((-len(stream)) % 8)]).reshape(-1, 8)
    return (stream << torch.arange(7, -1, -1, dtype=torch.int64)).sum(1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor | bytes, bits: int, count: int) -> torch.Tensor:
    """The first ``count`` integers stored by ``pack_bits(values, bits)`` in ``packed`` (int64 tensor).

    ``packed``: a uint8 tensor or ``bytes``.
    """
    check_bits("bits", bits, high=32)
    if isinstance(packed, (bytes, bytearray, memoryview)):  # (torch.frombuffer refuses empty bytes)
        packed = (
            torch.tensor(list(bytes(packed)), dtype=torch.uint8)
            if len(packed) == 0
            else torch.frombuffer(bytearray(packed), dtype=torch.uint8)
        )
    packed = torch.as_tensor(packed).reshape(-1).to(torch.int64).cpu()
    if count * bits > 8 * packed.numel():
        raise ValueError(f"{count} values of {bits} bits need {count * bits} bits, the data has {8 * packed.numel()}")
    stream = ((packed[:, None] >> torch.arange(7, -1, -1)) & 1).reshape(-1)[: count * bits]
    return (stream.reshape(count, bits) << torch.arange(bits - 1, -1, -1, dtype=torch.int64)).sum(1)
