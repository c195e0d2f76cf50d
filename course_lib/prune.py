"""Chapter 04: sparsity and pruning — masks, magnitude pruning, OBD, sensitivity, channel removal.

Masks are PyTorch's own: ``torch.nn.utils.prune`` reparametrizes a pruned layer as
``weight = weight_orig * weight_mask`` (a parameter and a buffer) and re-applies the mask in a
forward pre-hook. Everything here reads and writes those masks, and also accepts a model whose
zeros were written directly into plain weights (e.g. a saved, ``make_permanent`` model).

Mask API (shared with chapter 05):

- ``magnitude_prune(model, sparsity, per_layer=None, scope="layer")`` — Han et al.'s pruning: in
  every conv/linear layer, mask the ``sparsity`` fraction of weights with the smallest ``|w|``
  (``per_layer={"0": 0.9, ...}`` overrides the fraction for named layers; ``scope="global"`` uses
  one threshold for all layers). Already-pruned weights stay pruned (masks only shrink).
- ``sparsity(model)`` — fraction of conv/linear weights that are zero (``per_layer=True``: a dict).
- ``masks(model)`` — ``{layer name: bool mask}`` (``weight_mask`` if reparametrized, else ``w != 0``).
- ``keep_masks(model)`` — an after-step hook for ``train.fit(..., after_step=keep_masks(model))``.
  With ``torch.nn.utils.prune`` the *forward* already multiplies by the mask, so the pruned weights
  never act; but SGD's momentum and weight decay still move ``weight_orig`` at masked positions.
  The hook writes zeros there after every step, so ``weight_orig`` (what is saved), and plain
  weights of a model pruned without reparametrization, stay exactly zero where the mask is off.
- ``make_permanent(model)`` (alias ``remove_reparametrization``) — ``prune.remove`` on every layer:
  the ``state_dict`` holds plain ``weight`` tensors with zeros, loadable into a fresh model.
- ``load_pruned(model, state_dict)`` — load a state_dict that still has ``weight_orig`` /
  ``weight_mask`` entries into a fresh (unpruned) model, re-creating the reparametrization.

Then: storage formats (``storage_bytes``), Optimal Brain Damage (``hessian_diagonal``,
``obd_saliency``, ``prune_by_scores``), Han et al.'s loop (``iterative_prune``), the sensitivity
scan (``sensitivity_scan``, ``choose_sparsities``), structured L1 filter pruning with real removal
(``mask_channels``, ``prune_channels``), widget state functions and the exercise checkers.

References: LeCun, Denker, Solla, "Optimal Brain Damage", NeurIPS 1989; Han, Pool, Tran, Dally,
"Learning both Weights and Connections for Efficient Neural Networks", NeurIPS 2015; Li, Kadav,
Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017; Hutchinson, "A
stochastic estimator of the trace of the influence matrix", 1989.
"""

import copy
import io
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import prune

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


# --------------------------------------------------------------------------- masks

def prunable_layers(model):
    """``{name: module}`` of the conv and linear layers of ``model`` (the ones we prune)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def is_reparametrized(module):
    """True when ``torch.nn.utils.prune`` has replaced ``module.weight`` by ``weight_orig * weight_mask``."""
    return hasattr(module, "weight_mask") and hasattr(module, "weight_orig")


def _check_fraction(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{what}={value!r} must be a fraction in [0, 1)")
    return float(value)


def _check_layers(model, names, what="per_layer"):
    layers = prunable_layers(model)
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise ValueError(f"{what} names unknown layers {unknown}; the conv/linear layers are {list(layers)}")
    return layers


def masks(model):
    """``{layer name: bool mask}`` for every conv/linear layer: True = weight kept."""
    out = {}
    for name, m in prunable_layers(model).items():
        out[name] = m.weight_mask.bool().clone() if is_reparametrized(m) else m.weight.detach() != 0
    return out


def sparsity(model, per_layer=False):
    """Fraction of conv/linear *weights* that are zero (biases and BatchNorm are not counted)."""
    counts = {name: (int((~mask).sum()), mask.numel()) for name, mask in masks(model).items()}
    if per_layer:
        return {name: zeros / total for name, (zeros, total) in counts.items()}
    zeros = sum(z for z, _ in counts.values())
    total = sum(t for _, t in counts.values())
    if total == 0:
        raise ValueError("sparsity: the model has no conv or linear layer")
    return zeros / total


def _refresh_weight(module):
    """Recompute ``module.weight`` from ``weight_orig * weight_mask`` now (the forward hook does it too)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == "weight":
            setattr(module, "weight", hook.apply_mask(module))


def set_mask(module, mask):
    """Make ``mask`` (bool, weight-shaped) the pruning mask of ``module``; old zeros stay zero.

    The first time, ``prune.custom_from_mask`` reparametrizes the layer; afterwards the existing
    ``weight_mask`` buffer is updated in place, so an optimizer holding ``weight_orig`` keeps working.
    """
    mask = mask.to(device=module.weight.device, dtype=torch.bool)
    if mask.shape != module.weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(module.weight.shape)}")
    if is_reparametrized(module):
        with torch.no_grad():
            module.weight_mask.mul_(mask.to(module.weight_mask.dtype))
            module.weight_orig.mul_(module.weight_mask)
        _refresh_weight(module)
    else:
        old = module.weight.detach() != 0                       # zeros already written stay pruned
        prune.custom_from_mask(module, "weight", mask & old)
        with torch.no_grad():
            module.weight_orig.mul_(module.weight_mask)
    return module


def magnitude_mask(weight, sparsity):
    """Bool mask that drops the ``round(sparsity · n)`` weights of smallest ``|w|`` (ties: lower index)."""
    sparsity = _check_fraction(sparsity, "sparsity")
    n = weight.numel()
    n_drop = int(round(sparsity * n))
    mask = torch.ones(n, dtype=torch.bool, device=weight.device)
    if n_drop:
        order = torch.argsort(weight.detach().abs().flatten(), stable=True)
        mask[order[:n_drop]] = False
    return mask.view_as(weight)


def prune_by_scores(model, scores, sparsity, per_layer=None, scope="layer"):
    """Mask, in each layer, the weights with the lowest ``scores[name]`` (same shape as the weight).

    ``scope="layer"``: each layer loses its own fraction (``per_layer[name]`` or ``sparsity``);
    ``scope="global"``: one threshold over all scored layers removes ``sparsity`` of their weights.
    Returns ``{name: kept fraction}``.
    """
    sparsity = _check_fraction(sparsity, "sparsity")
    per_layer = dict(per_layer or {})
    for name, value in per_layer.items():
        _check_fraction(value, f"per_layer[{name!r}]")
    if scope not in ("layer", "global"):
        raise ValueError(f"scope={scope!r} must be 'layer' or 'global'")
    layers = _check_layers(model, list(scores) + list(per_layer))
    if scope == "global":
        if per_layer:
            raise ValueError("per_layer cannot be combined with scope='global' (one threshold for all)")
        flat = torch.cat([scores[n].detach().flatten().float().cpu() for n in scores])
        keep = magnitude_mask(flat, sparsity)
        # a global threshold: same rule as per layer, on the concatenated scores
        start = 0
        for name in scores:
            size = scores[name].numel()
            set_mask(layers[name], keep[start:start + size].view_as(scores[name]))
            start += size
    else:
        for name in scores:
            s = per_layer.get(name, sparsity)
            if s > 0:
                set_mask(layers[name], magnitude_mask(scores[name], s))
    return {name: float(masks(model)[name].float().mean()) for name in scores}


def magnitude_prune(model, sparsity, per_layer=None, scope="layer"):
    """Han et al.'s magnitude pruning: drop the smallest ``|w|`` of every conv/linear layer.

    ``sparsity``: the fraction each layer loses (or all layers together with ``scope="global"``);
    ``per_layer``: ``{layer name: fraction}`` overriding it for the named layers (0 leaves a layer
    dense). Masks are ``torch.nn.utils.prune`` reparametrizations (``weight_mask`` buffers).
    Returns ``{layer name: kept fraction}``.
    """
    scores = {name: m.weight.detach().abs() for name, m in prunable_layers(model).items()}
    return prune_by_scores(model, scores, sparsity, per_layer, scope)


def keep_masks(model):
    """An ``after_step`` hook for ``fit``: zero the pruned weights after every optimizer step.

    The masks are read when the hook runs (``weight_mask`` of reparametrized layers) or captured now
    from the zeros of plain weights, so both ways of pruning stay pruned through training.
    """
    plain = {name: m.weight.detach() != 0 for name, m in prunable_layers(model).items()
             if not is_reparametrized(m)}

    @torch.no_grad()
    def hook(net):
        for name, m in prunable_layers(net).items():
            if is_reparametrized(m):
                m.weight_orig.mul_(m.weight_mask)
                _refresh_weight(m)
            elif name in plain:
                m.weight.mul_(plain[name].to(m.weight.device))
    return hook


def make_permanent(model):
    """Fold every mask into its weight (``prune.remove``): a plain state_dict with zeros. In place."""
    for m in prunable_layers(model).values():
        if is_reparametrized(m):
            prune.remove(m, "weight")
    return model


remove_reparametrization = make_permanent


def load_pruned(model, state_dict):
    """Load a state_dict saved from a reparametrized model (``*.weight_orig``/``*.weight_mask``).

    Layers whose entries carry a mask are reparametrized first; plain entries load as usual.
    """
    layers = prunable_layers(model)
    for key in state_dict:
        if key.endswith(".weight_mask") or key == "weight_mask":
            name = key[: -len("weight_mask")].rstrip(".")
            if name not in layers:
                raise ValueError(f"state_dict has a mask for {name!r}, which is not a conv/linear layer "
                                 f"of this model ({list(layers)})")
            if not is_reparametrized(layers[name]):
                prune.identity(layers[name], "weight")
    model.load_state_dict(state_dict)
    for m in layers.values():
        if is_reparametrized(m):
            _refresh_weight(m)
    return model


def kept_table(model):
    """Per-layer rows like Han et al.'s Table 1: name, weights, kept weights, kept fraction."""
    rows = []
    for name, mask in masks(model).items():
        rows.append({"layer": name, "weights": mask.numel(), "kept": int(mask.sum()),
                     "kept_pct": 100.0 * float(mask.float().mean())})
    return rows


def compression_ratio(model):
    """All parameters / non-zero parameters (biases and BatchNorm count as kept): "× fewer weights"."""
    total = nonzero = 0
    for name, p in model.named_parameters():
        total += p.numel()
        nonzero += int(torch.count_nonzero(p))
    # a reparametrized layer's weight_orig is counted through its masked weight instead
    for m in prunable_layers(model).values():
        if is_reparametrized(m):
            nonzero += int(torch.count_nonzero(m.weight)) - int(torch.count_nonzero(m.weight_orig))
    return total / max(nonzero, 1)
