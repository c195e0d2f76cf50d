"""Chapter 04: sparsity and pruning — masks, magnitude pruning, OBD, sensitivity, channel removal.

Masks are PyTorch's own: ``torch.nn.utils.prune`` reparametrizes a pruned layer as
``weight = weight_orig * weight_mask`` (a parameter and a buffer) and re-applies the mask in a
forward pre-hook. Everything here reads and writes those masks, and also accepts a model whose
zeros were written directly into plain weights (e.g. a saved, ``make_permanent`` model).

Mask API (shared with chapter 05):

- ``magnitude_prune(model, sparsity, layers=None, scope="layer")`` — Han et al.'s pruning, in place:
  in every conv/linear layer, mask the ``sparsity`` fraction of weights with the smallest ``|w|``
  (``sparsity={"0": 0.9, ...}``: a fraction per named layer, the layers not named stay as they are;
  ``scope="global"`` uses one threshold for all layers). Already-pruned weights stay pruned (masks
  only shrink). Returns the model; ``kept_table(model)`` reports what is left.
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

Then: storage formats (``storage_bytes``, in ``course_lib.sparse``), Optimal Brain Damage (``hessian_diagonal``,
``obd_saliency``, ``prune_by_scores``), Han et al.'s loop (``iterative_prune``), the sensitivity
scan (``sensitivity_scan``, ``choose_sparsities``), structured L1 filter pruning with real removal
(``mask_channels``, ``prune_channels``), the explorers (``sparsity_explorer``,
``sensitivity_explorer``). The chapter's exercises live in ``course_lib.exercises.ch04``.

Composing with the other chapters: a pruned model can be copied (``copy.deepcopy`` fails on the
computed ``weight`` of a ``torch.nn.utils.prune`` layer; ``lowrank.compress_model`` and the copies
made here hand deepcopy a detached ``weight``). A layer with shared weights (``quant.share_weights``)
is pruned through its own mask (``quant.mask_shared_weights``): the pruned positions stay zero while
the centroids train. A layer under another parametrization (e.g. TTQ's) is not pruned:
``magnitude_prune`` raises a ``ValueError`` that says to call ``quant.unshare_weights(model)`` first.

References: LeCun, Denker, Solla, "Optimal Brain Damage", NeurIPS 1989; Han, Pool, Tran, Dally,
"Learning both Weights and Connections for Efficient Neural Networks", NeurIPS 2015; Li, Kadav,
Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017; Hutchinson, "A
stochastic estimator of the trace of the influence matrix", 1989.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize, prune

from . import checkpoints, data, models, quant
from .args import check_finite, check_float, check_fraction, check_int
from .checkpoints import check_fits
from .report import Rows
from .sparse import FORMATS, decode_relative, model_storage, relative_indices, storage_bytes, to_csr
from .states import State
from .surgery import copy_model, replace_layer, tensor_of, weight_layers
from .train import evaluate, fit

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.figure import Figure

    from .widgets import Explorer

Sparsity = float | dict[str, float]
"""A fraction of weights to remove: one for every layer, or ``{layer name: fraction}``."""


# --------------------------------------------------------------------------- masks


def is_reparametrized(module: nn.Module) -> bool:
    """True when ``torch.nn.utils.prune`` has replaced ``module.weight`` by ``weight_orig * weight_mask``."""
    return hasattr(module, "weight_mask") and hasattr(module, "weight_orig")


def plain_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its pruning masks folded into plain weights (``model`` is unchanged)."""
    return make_permanent(copy_model(model))


def _check_not_parametrized(name: str, module: nn.Module) -> None:
    """A weight computed by a parametrization other than shared weights cannot take a pruning mask."""
    if parametrize.is_parametrized(module, "weight") and quant.shared_weights_of(module) is None:
        kinds = [type(p).__name__ for p in getattr(module.parametrizations, "weight")]
        raise ValueError(
            f"layer {name!r}: its weight is computed by a parametrization {kinds} (e.g. "
            "quant.quantize_model); call quant.unshare_weights(model) before pruning it, "
            "or prune first and quantize afterwards (Deep Compression's order)"
        )


def layer_sparsities(
    model: nn.Module, sparsity: Sparsity, layers: str | Iterable[str] | None = None
) -> dict[str, float]:
    """``{layer name: fraction to remove}`` from one fraction or a ``{layer name: fraction}`` dict.

    One fraction applies to ``layers`` (default: every conv/linear layer); a dict names its layers
    itself (layers it does not name are not pruned), so ``layers`` must then be ``None``.
    """
    if isinstance(sparsity, dict):
        if layers is not None:
            raise ValueError("pass either layers= or a {layer name: fraction} sparsity dict, not both")
        weight_layers(model, list(sparsity))  # unknown names: a ValueError
        return {name: check_fraction(f"sparsity[{name!r}]", value) for name, value in sparsity.items()}
    return dict.fromkeys(weight_layers(model, layers), check_fraction("sparsity", sparsity))


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer name: bool mask}`` for every conv/linear layer: True = weight kept."""
    out = {}
    for name, m in weight_layers(model).items():
        out[name] = tensor_of(m, "weight_mask").bool().clone() if is_reparametrized(m) else tensor_of(m).detach() != 0
    return out


@overload
def sparsity(model: nn.Module, per_layer: Literal[False] = False) -> float: ...
@overload
def sparsity(model: nn.Module, per_layer: Literal[True]) -> dict[str, float]: ...
def sparsity(model: nn.Module, per_layer: bool = False) -> float | dict[str, float]:
    """Fraction of conv/linear *weights* that are zero (biases and BatchNorm are not counted)."""
    counts = {name: (int((~mask).sum()), mask.numel()) for name, mask in masks(model).items()}
    if per_layer:
        return {name: zeros / total for name, (zeros, total) in counts.items()}
    zeros = sum(z for z, _ in counts.values())
    total = sum(t for _, t in counts.values())
    if total == 0:
        raise ValueError("sparsity: the model has no conv or linear layer")
    return zeros / total


def _refresh_weight(module: nn.Module) -> None:
    """Recompute ``module.weight`` from ``weight_orig * weight_mask`` now (the forward hook does it too)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == "weight":
            setattr(module, "weight", hook.apply_mask(module))


def set_mask(module: nn.Module, mask: torch.Tensor) -> nn.Module:
    """Make ``mask`` (bool, weight-shaped) the pruning mask of ``module``, in place; old zeros stay zero.

    The first time, ``prune.custom_from_mask`` reparametrizes the layer; afterwards the existing
    ``weight_mask`` buffer is updated in place, so an optimizer holding ``weight_orig`` keeps working.
    A layer with shared weights (``quant.share_weights``) takes the mask into its ``SharedWeights``.
    """
    _check_not_parametrized(type(module).__name__, module)
    mask = mask.to(device=tensor_of(module).device, dtype=torch.bool)
    if mask.shape != module.weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(tensor_of(module).shape)}")
    if quant.shared_weights_of(module) is not None:  # shared weights carry their own mask
        quant.mask_shared_weights(module, mask & (tensor_of(module).detach() != 0))
    elif is_reparametrized(module):
        with torch.no_grad():
            tensor_of(module, "weight_mask").mul_(mask.to(tensor_of(module, "weight_mask").dtype))
            tensor_of(module, "weight_orig").mul_(tensor_of(module, "weight_mask"))
        _refresh_weight(module)
    else:
        old = tensor_of(module).detach() != 0  # zeros already written stay pruned
        prune.custom_from_mask(module, "weight", mask & old)
        with torch.no_grad():
            tensor_of(module, "weight_orig").mul_(tensor_of(module, "weight_mask"))
    return module


def lowest_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask that drops the ``round(sparsity · n)`` entries of lowest score (ties: lower index)."""
    sparsity = check_fraction("sparsity", sparsity)
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a tensor, got {type(scores).__name__}")
    check_finite("scores", scores)  # a NaN score sorts last: it would always be kept
    n = scores.numel()
    n_drop = int(round(sparsity * n))
    mask = torch.ones(n, dtype=torch.bool, device=scores.device)
    if n_drop:
        order = torch.argsort(scores.detach().flatten(), stable=True)
        mask[order[:n_drop]] = False
    return mask.view_as(scores)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask that drops the ``round(sparsity · n)`` weights of smallest ``|w|`` (ties: lower index)."""
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a tensor, got {type(weight).__name__}")
    check_finite("weight", weight)
    return lowest_mask(weight.detach().abs(), sparsity)


def prune_by_scores(
    model: nn.Module, scores: dict[str, torch.Tensor], sparsity: Sparsity, scope: str = "layer"
) -> nn.Module:
    """Mask, in place, the weights with the lowest ``scores[name]`` (weight-shaped) of each scored layer.

    ``scope="layer"``: each scored layer loses ``sparsity`` of its weights (a dict: its own fraction;
    scored layers the dict does not name are not pruned); ``scope="global"``: one threshold over all
    scored layers removes ``sparsity`` (one fraction) of their weights. Returns ``model``.
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"scope={scope!r} must be 'layer' or 'global'")
    if scope == "global" and isinstance(sparsity, dict):
        raise ValueError(
            "a {layer name: fraction} sparsity cannot be combined with scope='global' (one threshold for all layers)"
        )
    layers = weight_layers(model, list(scores))
    fractions = (
        layer_sparsities(model, sparsity)
        if isinstance(sparsity, dict)
        else dict.fromkeys(scores, check_fraction("sparsity", sparsity))
    )
    unscored = [name for name in fractions if name not in scores]
    if unscored:
        raise ValueError(f"sparsity names layers {unscored} that have no scores; scored: {list(scores)}")
    for name in fractions:  # check every layer before changing any
        if fractions[name] > 0:
            _check_not_parametrized(name, layers[name])
            score = scores[name]
            if not isinstance(score, torch.Tensor):
                raise TypeError(f"scores[{name!r}] must be a tensor shaped like the weight, got {type(score).__name__}")
            weight_shape = tuple(tensor_of(layers[name]).shape)
            if tuple(score.shape) != weight_shape:
                raise ValueError(f"scores[{name!r}] has shape {tuple(score.shape)}, the weight {weight_shape}")
            check_finite(f"scores[{name!r}]", score)
    if scope == "global":
        _prune_global(layers, scores, fractions[next(iter(scores))] if scores else 0.0)
    else:
        for name, fraction in fractions.items():
            if fraction > 0:
                set_mask(layers[name], lowest_mask(scores[name], fraction))
    return model


def _prune_global(layers: dict[str, nn.Module], scores: dict[str, torch.Tensor], fraction: float) -> None:
    """One threshold for all scored layers: the rule of ``lowest_mask`` on the concatenated scores."""
    flat = torch.cat([scores[n].detach().flatten().float().cpu() for n in scores])
    keep = lowest_mask(flat, fraction)
    start = 0
    for name in scores:
        size = scores[name].numel()
        set_mask(layers[name], keep[start : start + size].view_as(scores[name]))
        start += size


def magnitude_prune(
    model: nn.Module, sparsity: Sparsity, layers: str | Iterable[str] | None = None, scope: str = "layer"
) -> nn.Module:
    """Han et al.'s magnitude pruning, in place: drop the smallest ``|w|`` of the conv/linear layers.

    ``sparsity``: the fraction each of ``layers`` (default: every conv/linear layer) loses, or all
    of them together with ``scope="global"``; or ``{layer name: fraction}`` — each named layer loses
    its fraction, the layers it does not name are left as they are. Masks are
    ``torch.nn.utils.prune`` reparametrizations (``weight_mask`` buffers); already-pruned weights
    stay pruned. Returns ``model`` (``kept_table(model)`` / ``sparsity(model, per_layer=True)``
    report what is left). A layer with shared weights (``quant.share_weights``) is pruned through
    its own ``SharedWeights`` mask; a layer under another quantizer (TTQ, binary, linear) is a
    ``ValueError`` that says to call ``quant.unshare_weights(model)`` first.
    """
    chosen = layer_sparsities(model, sparsity, layers)
    found = weight_layers(model, list(chosen))
    for name, m in found.items():  # a NaN has no magnitude: it would be kept, always
        check_finite(f"layer {name!r}'s weight", m.weight)
    scores = {name: tensor_of(m).detach().abs() for name, m in found.items()}
    return prune_by_scores(model, scores, chosen if isinstance(sparsity, dict) else float(sparsity), scope)


def keep_masks(model: nn.Module) -> Callable[[nn.Module], None]:
    """An ``after_step`` hook for ``fit``: zero the pruned weights after every optimizer step.

    The masks are read when the hook runs (``weight_mask`` of reparametrized layers) or captured now
    from the zeros of plain weights, so both ways of pruning stay pruned through training. Shared
    weights (``quant.share_weights``) keep their zeros by their own mask and are left alone.
    """
    plain = {
        name: tensor_of(m).detach() != 0
        for name, m in weight_layers(model).items()
        if not is_reparametrized(m) and not parametrize.is_parametrized(m, "weight")
    }

    @torch.no_grad()
    def hook(net):
        for name, m in weight_layers(net).items():
            if is_reparametrized(m):
                m.weight_orig.mul_(m.weight_mask)
                _refresh_weight(m)
            elif name in plain:
                m.weight.mul_(plain[name].to(m.weight.device))

    return hook


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every mask into its weight (``prune.remove``), in place: a plain state_dict with zeros."""
    for m in weight_layers(model).values():
        if is_reparametrized(m):
            prune.remove(m, "weight")
    return model


remove_reparametrization = make_permanent


def load_pruned(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Load, in place, a state_dict saved from a reparametrized model (``*.weight_orig``/``*.weight_mask``).

    Layers whose entries carry a mask are reparametrized first; plain entries load as usual.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be a mapping {{key: tensor}}, got {type(state_dict).__name__}")
    layers = weight_layers(model)
    masked = []
    for key in state_dict:
        if key.endswith(".weight_mask") or key == "weight_mask":
            name = key[: -len("weight_mask")].rstrip(".")
            if name not in layers:
                raise ValueError(
                    f"state_dict has a mask for {name!r}, which is not a conv/linear layer "
                    f"of this model ({list(layers)})"
                )
            if not is_reparametrized(layers[name]):
                masked.append(name)
    # every key and shape checked before the first layer is reparametrized (torch's load_state_dict
    # would copy the matching tensors and only then complain about the others)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name in masked:
        prefix = f"{name}." if name else ""
        shape = expected.pop(f"{prefix}weight")
        expected[f"{prefix}weight_orig"] = expected[f"{prefix}weight_mask"] = shape
    check_fits(expected, state_dict, "state_dict", type(model).__name__)
    for name in masked:
        prune.identity(layers[name], "weight")
    model.load_state_dict(state_dict)
    for m in layers.values():
        if is_reparametrized(m):
            _refresh_weight(m)
    return model


@dataclass
class KeptRow:
    """One layer of ``kept_table``: its weights, how many are kept, and that as a percentage."""

    layer: str
    weights: int
    kept: int
    kept_pct: float


def kept_table(model: nn.Module) -> Rows:
    """Per-layer ``KeptRow``s like Han et al.'s Table 1: name, weights, kept weights, kept percentage."""
    return Rows(
        KeptRow(name, mask.numel(), int(mask.sum()), 100.0 * float(mask.float().mean()))
        for name, mask in masks(model).items()
    )


def compression_ratio(model: nn.Module) -> float:
    """All parameters / non-zero parameters (biases and BatchNorm count as kept): "× fewer weights"."""
    total = nonzero = 0
    for name, p in model.named_parameters():
        total += p.numel()
        nonzero += int(torch.count_nonzero(p))
    # a reparametrized layer's weight_orig is counted through its masked weight instead
    for m in weight_layers(model).values():
        if is_reparametrized(m):
            nonzero += int(torch.count_nonzero(tensor_of(m))) - int(torch.count_nonzero(tensor_of(m, "weight_orig")))
    return total / max(nonzero, 1)


# --------------------------------------------------------------------------- Optimal Brain Damage


def _examples(data, max_examples=None):
    """One ``(x, y)`` pair from a pair or an iterable of batches (at most ``max_examples``)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        x, y = data
    else:
        xs, ys, n = [], [], 0
        for x, y in data:
            xs.append(x)
            ys.append(y)
            n += len(y)
            if max_examples is not None and n >= max_examples:
                break
        if not xs:
            raise ValueError("data is empty: pass (x, y) or an iterable of (x, y) batches")
        x, y = torch.cat(xs), torch.cat(ys)
    if max_examples is not None:
        x, y = x[:max_examples], y[:max_examples]
    return x, y


def _weight_params(model: nn.Module, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The trainable weight tensor of each chosen layer (``weight_orig`` of a pruned one)."""
    return {
        n: (tensor_of(m, "weight_orig") if is_reparametrized(m) else tensor_of(m))
        for n, m in weight_layers(model, layers).items()
    }


def hessian_diagonal(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[tuple[torch.Tensor, torch.Tensor]],
    exact: bool = True,
    samples: int = 64,
    layers: str | Iterable[str] | None = None,
    max_examples: int | None = None,
    seed: int = 0,
    max_exact: int = 5000,
) -> dict[str, torch.Tensor]:
    """Diagonal of the Hessian of the mean cross-entropy w.r.t. each conv/linear weight.

    ``exact=True``: one double-backward per weight, ∂(∂L/∂w_k)/∂w_k — only for small nets
    (at most ``max_exact`` weights). ``exact=False``: Hutchinson's estimator
    diag(H) ≈ mean over ``samples`` Rademacher vectors v of v ⊙ (H v), each H v one
    Hessian-vector product (a double backward through the gradient).
    Returns ``{layer name: tensor shaped like the weight}``. The model is evaluated in eval mode.
    """
    params = _weight_params(model, layers)
    x, y = _examples(data, max_examples)
    device = next(iter(params.values())).device
    x, y = x.to(device), y.to(device)
    n_weights = sum(p.numel() for p in params.values())
    if exact and n_weights > max_exact:
        raise ValueError(
            f"exact=True needs one backward pass per weight: {n_weights} weights > "
            f"max_exact={max_exact}; use exact=False (Hutchinson) or fewer layers"
        )
    check_int("samples", samples)
    was_training = model.training
    model.eval()
    try:
        loss = F.cross_entropy(model(x), y)
        tensors = list(params.values())
        grads = torch.autograd.grad(loss, tensors, create_graph=True)
        if exact:
            diag = []
            for p, g in zip(tensors, grads):
                flat, d = g.flatten(), torch.zeros(p.numel(), device=device, dtype=p.dtype)
                for k in range(p.numel()):
                    d[k] = torch.autograd.grad(flat[k], p, retain_graph=True)[0].flatten()[k]
                diag.append(d.view_as(p))
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            diag = [torch.zeros_like(p) for p in tensors]
            for _ in range(samples):
                vs = [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(device, p.dtype) for p in tensors]
                hvs = torch.autograd.grad(grads, tensors, grad_outputs=vs, retain_graph=True)
                for d, v, hv in zip(diag, vs, hvs):
                    d += v * hv / samples
    finally:
        model.train(was_training)
    return {name: d.detach() for name, d in zip(params, diag)}


def obd_saliency(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[tuple[torch.Tensor, torch.Tensor]],
    exact: bool = False,
    samples: int = 64,
    layers: str | Iterable[str] | None = None,
    max_examples: int | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """OBD saliency s_k = h_kk · w_k² / 2 (LeCun et al. 1989, eq. 4) for every conv/linear weight.

    The estimated loss increase when w_k alone is set to zero, assuming a diagonal Hessian, a
    trained minimum (zero gradient) and a quadratic loss. ``exact``: see ``hessian_diagonal``.
    """
    h = hessian_diagonal(model, data, exact, samples, layers, max_examples, seed)
    weights = _weight_params(model, list(h))
    return {name: h[name] * weights[name].detach() ** 2 / 2 for name in h}


def obd_prune(
    model: nn.Module, saliency: dict[str, torch.Tensor], sparsity: Sparsity, scope: str = "global"
) -> nn.Module:
    """Mask, in place, the weights of lowest OBD saliency (global by default: saliencies are loss units).

    ``sparsity``: one fraction, or ``{layer name: fraction}`` with ``scope="layer"``. Returns ``model``.
    """
    return prune_by_scores(model, saliency, sparsity, scope=scope)


# --------------------------------------------------------------------------- Han et al.: train, prune, retrain


def kept_schedule(final: Sparsity, steps: int) -> list[Sparsity]:
    """Sparsity targets for ``steps`` rounds whose kept fraction shrinks geometrically to ``final``.

    ``final`` is a fraction or ``{layer: fraction}``; returns a list of the same kind.
    """
    check_int("steps", steps)

    def at(s, k):
        return 1 - (1 - check_fraction("final", s)) ** (k / steps)

    if isinstance(final, dict):
        return [{n: at(s, k) for n, s in final.items()} for k in range(1, steps + 1)]
    return [at(final, k) for k in range(1, steps + 1)]


@dataclass
class RoundRow:
    """One round of ``iterative_prune``: sparsity reached, × fewer weights, accuracy pruned / retrained."""

    round: int
    sparsity: float
    compression: float
    acc_pruned: float
    acc_retrained: float


def iterative_prune(
    model: nn.Module,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    targets: Sequence[Sparsity],
    epochs: int = 1,
    lr: float = 0.01,
    progress: bool = False,
    **fit_kwargs,
) -> Rows:
    """Han et al.'s loop, in place: for each target, prune by magnitude (without retraining: measure),
    then retrain with the masks kept by ``keep_masks``. ``targets``: list of fractions or per-layer dicts.

    Returns one ``RoundRow`` per round: sparsity, compression, accuracy after pruning and after retraining.
    """
    targets, pruned = list(targets), set()
    for target in targets:  # every round's target checked before the first prune
        pruned |= {name for name, f in layer_sparsities(model, target).items() if f > 0}
    check_int("epochs", epochs, 0)
    check_float("lr", lr, 0.0, low_inclusive=False)
    for name, m in weight_layers(model, sorted(pruned)).items() if pruned else ():
        _check_not_parametrized(name, m)
        check_finite(f"layer {name!r}'s weight", m.weight)
    rows = Rows()
    for k, target in enumerate(targets, 1):
        magnitude_prune(model, target)
        pruned_acc = evaluate(model, test_data)
        fit(model, train_data, None, epochs, lr=lr, progress=progress, after_step=keep_masks(model), **fit_kwargs)
        rows.append(RoundRow(k, sparsity(model), compression_ratio(model), pruned_acc, evaluate(model, test_data)))
    return rows


# Han et al. (2015), Table 1: the fraction of each layer's weights kept (12x fewer weights for both nets;
# layer names of models.lenet_300_100 and models.lenet5), and the retraining after each round that
# chapter 04 uses (train.fit's lr and schedule; LeNet-5 starts from trained weights, so a small lr).
HAN_KEPT: dict[str, dict[str, float]] = {
    "lenet300-fmnist": {"1": 0.08, "3": 0.09, "5": 0.26},
    "lenet5-fmnist": {"0": 0.66, "3": 0.12, "7": 0.08, "9": 0.19},
}
HAN_RETRAIN: dict[str, dict[str, Any]] = {
    "lenet300-fmnist": dict(lr=0.05, schedule="onecycle"),
    "lenet5-fmnist": dict(lr=0.005, schedule="cosine"),
}
# The long run of chapter 04's experiment (ship_pruned): rounds, and retraining epochs per round on all
# 60,000 training images. The notebook's quick run: 2 rounds of 1-2 epochs (LeNet-5 on 6,000 images).
LONG_ROUNDS, LONG_EPOCHS = 3, 4


def ship_pruned(
    recipe: str,
    folder: str | Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    lr: float | None = None,
    resume: bool = False,
) -> None:
    """The long run of Han et al.'s loop, which ships a pruned net (``python -m course_lib train --recipe
    lenet5-pruned-fmnist --register``; ``lenet300-pruned-fmnist`` likewise; a few CPU-minutes each).

    The same :func:`iterative_prune` as chapter 04, from the shipped dense net, to the paper's per-layer
    targets (``HAN_KEPT``) in ``LONG_ROUNDS`` rounds, each retrained for ``epochs`` (default
    ``LONG_EPOCHS``) on all 60,000 training images. The pruned net is saved as a plain net with zeros
    (``make_permanent``; float16 keeps every zero and changes no prediction that the recorded accuracy
    does not already count: the accuracy is measured on the float16-rounded weights). The manifest entry
    records every round (``rounds``) and the dense net's accuracy.
    """
    dense = recipe.removesuffix("-pruned-fmnist") + "-fmnist"
    if dense not in HAN_KEPT:
        choices = sorted(k.removesuffix("-fmnist") + "-pruned-fmnist" for k in HAN_KEPT)
        raise ValueError(f"recipe={recipe!r} is not a pruned net; those are {choices}")
    if resume or lr is not None:
        raise ValueError(f"{recipe}: --resume and --lr do not apply (the retraining is HAN_RETRAIN[{dense!r}])")
    epochs = LONG_EPOCHS if epochs is None else check_int("epochs", epochs)
    torch.manual_seed(seed)
    train_data, test_data = data.loaders("fashion-mnist", 128, augment=False, device="cpu", seed=seed)
    model = (models.lenet5 if dense == "lenet5-fmnist" else models.lenet_300_100)()
    checkpoints.load_checkpoint(dense, model)
    dense_acc = evaluate(model, test_data)
    targets = kept_schedule({layer: 1 - k for layer, k in HAN_KEPT[dense].items()}, LONG_ROUNDS)
    rows = iterative_prune(model, train_data, test_data, targets, epochs=epochs, seed=seed, **HAN_RETRAIN[dense])
    checkpoints.round_to_half(make_permanent(model).eval())  # what is shipped: float16
    extra = {
        "dense_test_accuracy": round(dense_acc, 4),
        "rounds": [{k: round(v, 4) if isinstance(v, float) else v for k, v in vars(r).items()} for r in rows],
        "compression": round(compression_ratio(model), 2),
    }
    path = checkpoints.ship(
        model,
        folder,
        recipe,
        recipe=recipe,
        seed=seed,
        epochs=LONG_ROUNDS * epochs,
        test_accuracy=evaluate(model, test_data),
        curve=[r.acc_retrained for r in rows],  # the test accuracy after each round's retraining
        command=checkpoints.rebuild_command(recipe, epochs, LONG_EPOCHS, seed),
        train_images=len(train_data.labels),
        half=True,
        extra=extra,
    )
    print(f"{recipe}: {path.stat().st_size} bytes, {extra}", flush=True)


# --------------------------------------------------------------------------- sensitivity


@torch.no_grad()
def sensitivity_scan(
    model: nn.Module,
    data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    sparsities: Sequence[float],
    layers: str | Iterable[str] | None = None,
) -> dict:
    """Accuracy when ONE layer at a time is magnitude-pruned to each sparsity (no retraining).

    Returns ``{"baseline": acc, "sparsities": [...], "layers": {name: [acc per sparsity]}}``.
    The model is left unchanged.
    """
    sparsities = [check_fraction("sparsities[i]", s) for s in sparsities]
    net = plain_copy(model)
    found = weight_layers(net, layers)
    accuracies: dict[str, list[float]] = {}
    result = {"baseline": evaluate(net, data), "sparsities": sparsities, "layers": accuracies}
    for name in found:
        w = tensor_of(found[name])
        saved = w.detach().clone()
        accs = []
        for s in sparsities:
            w.mul_(magnitude_mask(saved, s))
            accs.append(evaluate(net, data))
            w.copy_(saved)
        accuracies[name] = accs
    return result


def choose_sparsities(scan: dict, tolerance: float) -> dict[str, float]:
    """Per layer, the largest scanned sparsity whose accuracy drop stays within ``tolerance`` (a
    fraction, e.g. 0.005 = 0.5 pt): the per-layer thresholds Han et al. pick from the scan."""
    if not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} must be a non-negative accuracy drop (fraction)")
    chosen = {}
    for name, accs in scan["layers"].items():
        ok = [s for s, a in zip(scan["sparsities"], accs) if scan["baseline"] - a <= tolerance]
        chosen[name] = max(ok, default=0.0)
    return chosen


# --------------------------------------------------------------------------- structured pruning

CHAIN_TYPES = (
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.Linear,
    nn.ReLU,
    nn.ReLU6,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Dropout,
    nn.Identity,
)


def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf modules of a plain feed-forward chain (nested ``nn.Sequential``s), in order."""
    leaves: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Sequential):
            continue
        if not isinstance(m, CHAIN_TYPES):
            raise TypeError(
                f"prune_channels handles plain chains of conv/BN/activation/pool/linear in "
                f"nn.Sequential; {name!r} is a {type(m).__name__} (residual and other "
                "multi-branch blocks need their own channel bookkeeping)"
            )
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            raise TypeError(f"prune_channels: {name!r} is a grouped conv (groups={m.groups}); only groups=1")
        leaves.append((name, m))
    return leaves


def channel_plan(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """``{conv name: sorted indices of the filters kept}``: in every conv that feeds another conv
    or the classifier, drop the ``round(sparsity · filters)`` filters of smallest L1 norm (Li et al.)."""
    sparsity = check_fraction("sparsity", sparsity)
    chain = _chain(model)
    convs = [(n, m) for n, m in chain if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("prune_channels: the model has no Conv2d layer")
    plan = {}
    for name, conv in convs:
        norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))
        n_keep = max(1, conv.out_channels - int(round(sparsity * conv.out_channels)))
        plan[name] = torch.sort(torch.argsort(norms, descending=True, stable=True)[:n_keep]).values
    return plan


def _consumers(chain: list[tuple[str, nn.Module]]) -> dict[str, dict]:
    """For each conv: the BN that normalizes its output and the next conv/linear that reads it."""
    links: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for name, m in chain:
        if isinstance(m, nn.Conv2d):
            if current is not None:
                links[current]["next"] = (name, m)
            current = name
            links[name] = {"bn": None, "next": None}
        elif isinstance(m, nn.BatchNorm2d) and current is not None and links[current]["next"] is None:
            links[current]["bn"] = (name, m)
        elif isinstance(m, nn.Linear) and current is not None and links[current]["next"] is None:
            links[current]["next"] = (name, m)
    return links


def _linear_columns(linear: nn.Linear, channels: int, keep: torch.Tensor) -> torch.Tensor:
    """Columns of ``linear`` that read the kept channels after a flatten of channels × H × W."""
    if linear.in_features % channels:
        raise TypeError(
            f"prune_channels: a Linear with {linear.in_features} inputs cannot read {channels} flattened channels"
        )
    per = linear.in_features // channels
    return (keep[:, None] * per + torch.arange(per)).flatten()


@torch.no_grad()
def mask_channels(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy of ``model`` whose dropped filters are zeroed (conv weight and bias, BN scale and shift),
    so those channels are exactly zero after BN: the same function as ``prune_channels``' output."""
    net = plain_copy(model)
    plan = channel_plan(net, sparsity)
    modules = dict(net.named_modules())
    for name, link in _consumers(_chain(net)).items():
        conv = modules[name]
        drop = torch.ones(conv.out_channels, dtype=torch.bool)
        drop[plan[name]] = False
        conv.weight[drop] = 0
        if conv.bias is not None:
            conv.bias[drop] = 0
        if link["bn"] is not None:
            bn = link["bn"][1]
            bn.weight[drop] = 0
            bn.bias[drop] = 0
    return net


@torch.no_grad()
def prune_channels(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy of ``model`` with filters removed: L1-norm filter pruning (Li et al. 2017), "thinning".

    Each conv loses the ``sparsity`` fraction of its filters with the smallest L1 norm; the BN after it
    and the input channels of the next conv (or the classifier's columns) go with them. Returns a new,
    physically smaller dense model; ``model`` is unchanged. Its output equals ``mask_channels``'s.
    """
    net = plain_copy(model).cpu()
    device = next(model.parameters()).device
    plan = channel_plan(net, sparsity)
    modules = dict(net.named_modules())
    in_keep = {}  # conv/linear name -> kept input channels/columns
    links = _consumers(_chain(net))
    for name, link in links.items():
        keep = plan[name]
        if link["next"] is not None:
            nxt_name, nxt = link["next"]
            in_keep[nxt_name] = (
                keep if isinstance(nxt, nn.Conv2d) else _linear_columns(nxt, modules[name].out_channels, keep)
            )
    for name, link in links.items():
        old, keep = modules[name], plan[name]
        ins = in_keep.get(name, torch.arange(old.in_channels))
        new = nn.Conv2d(
            len(ins),
            len(keep),
            old.kernel_size,
            old.stride,
            old.padding,
            old.dilation,
            bias=old.bias is not None,
            padding_mode=old.padding_mode,
        )
        new.weight.copy_(old.weight[keep][:, ins])
        if old.bias is not None:
            tensor_of(new, "bias").copy_(old.bias[keep])
        replace_layer(net, name, new)
        if link["bn"] is not None:
            bn_name, bn = link["bn"]
            new_bn = nn.BatchNorm2d(
                len(keep),
                eps=bn.eps,
                momentum=bn.momentum,
                affine=bn.affine,
                track_running_stats=bn.track_running_stats,
            )
            for attr in ("weight", "bias", "running_mean", "running_var"):
                if getattr(bn, attr) is not None:
                    getattr(new_bn, attr).copy_(getattr(bn, attr)[keep])
            if bn.num_batches_tracked is not None:
                tensor_of(new_bn, "num_batches_tracked").copy_(bn.num_batches_tracked)
            replace_layer(net, bn_name, new_bn)
    for name, cols in in_keep.items():
        old = modules[name]
        if isinstance(old, nn.Linear):
            linear = nn.Linear(len(cols), old.out_features, bias=old.bias is not None)
            linear.weight.copy_(old.weight[:, cols])
            if old.bias is not None:
                tensor_of(linear, "bias").copy_(old.bias)
            replace_layer(net, name, linear)
    net.train(model.training)
    return net.to(device)


# --------------------------------------------------------------------------- explorers


@dataclass(frozen=True, eq=False)
class SparsityState(State):
    """The sparsity explorer's state (``sparsity_state``): one layer's weights, threshold and mask, and the
    pruned model's accuracy and storage."""

    layer: str
    sparsity: float
    weights: np.ndarray
    threshold: float
    mask: np.ndarray
    accuracy: float
    bytes: dict[str, int]
    compression: float


def sparsity_state(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[tuple[torch.Tensor, torch.Tensor]],
    layer: str,
    sparsity: float,
    max_examples: int | None = None,
) -> SparsityState:
    """The sparsity slider's numbers (pure): every conv/linear layer of a copy of ``model`` is
    magnitude-pruned to ``sparsity`` (no retraining); the state holds layer ``layer``'s weights,
    threshold and mask, the accuracy on ``data`` (an ``(x, y)`` pair or batches, at most
    ``max_examples``), and the bytes of the weights in each storage format."""
    weight_layers(model, layer)
    sparsity = check_fraction("sparsity", sparsity)
    base = plain_copy(model).eval()
    net = magnitude_prune(plain_copy(base), sparsity)
    make_permanent(net)
    w = tensor_of(weight_layers(base)[layer]).detach()
    kept = masks(net)[layer]
    dropped = w.abs()[~kept]
    x, y = _examples(data, max_examples)
    return SparsityState(
        layer=layer,
        sparsity=sparsity,
        weights=w.flatten().cpu().numpy(),
        threshold=float(dropped.max()) if dropped.numel() else 0.0,
        mask=kept.reshape(kept.shape[0], -1).cpu().numpy(),
        accuracy=evaluate(net, [(x, y)]),
        bytes=model_storage(net),
        compression=compression_ratio(net),
    )


def draw_sparsity(state: SparsityState, fig: Figure) -> None:
    """Histogram of the layer's weights with ±threshold, and its mask (kept = dark)."""
    ax_hist, ax_mask = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    ax_hist.hist(state.weights, bins=80, color="#4477aa")
    for t in (-state.threshold, state.threshold):
        ax_hist.axvline(t, color="#cc3311", lw=1.5)
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("weight value")
    ax_hist.set_title(f"layer {state.layer}: |w| ≤ {state.threshold:.3g} pruned")
    ax_mask.imshow(state.mask, aspect="auto", cmap="Greys", interpolation="nearest")
    ax_mask.set_title(f"mask of layer {state.layer} ({100 * state.mask.mean():.1f}% kept)")
    ax_mask.set_xlabel("input (flattened)")
    ax_mask.set_ylabel("output")
    fig.tight_layout()


def sparsity_readout(state: SparsityState) -> str:
    """One line: accuracy without retraining, × fewer weights, bytes dense / CSR / CSR relative."""
    b = state.bytes
    return (
        f"accuracy without retraining <b>{100 * state.accuracy:.2f}%</b> · "
        f"{state.compression:.1f}× fewer weights · weights: dense {b['dense'] / 1024:.0f} KiB, "
        f"CSR {b['csr'] / 1024:.0f} KiB, CSR relative {b['csr-relative'] / 1024:.0f} KiB"
    )


def sparsity_explorer(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[tuple[torch.Tensor, torch.Tensor]],
    layer: str | None = None,
    sparsity: float = 0.9,
    max_examples: int | None = None,
    title: str = "Magnitude pruning",
    figsize: tuple[float, float] = (9, 3.2),
) -> Explorer:
    """The sparsity slider (a ``widgets.Explorer``): pick a layer and a sparsity for every layer →
    the layer's weight histogram with the threshold, its mask, the accuracy and the bytes."""
    from . import widgets

    base = plain_copy(model).eval()
    names = list(weight_layers(base))
    controls = {
        "layer": widgets.dropdown("layer", names, layer if layer is not None else names[0]),
        "sparsity": widgets.float_slider("sparsity", sparsity, 0.0, 0.99, 0.01),
    }
    state = functools.partial(sparsity_state, base, _examples(data, max_examples))
    return widgets.Explorer(state, draw_sparsity, controls, title=title, readout_fn=sparsity_readout, figsize=figsize)


@dataclass(frozen=True, eq=False)
class SensitivityState(State):
    """The sensitivity explorer's state (``sensitivity_state``): one model's scans and the sparsity chosen
    per layer within the tolerance."""

    model: str
    scan: dict
    chosen: dict
    tolerance_pt: float
    kept: float
    total: int


def sensitivity_state(
    scans: dict[str, dict], sizes: dict[str, dict[str, int]], model: str, tolerance_pt: float
) -> SensitivityState:
    """The sensitivity explorer's numbers (pure): ``scans[model]`` is a ``sensitivity_scan`` result,
    ``sizes[model]`` ``{layer: weights}``. Each layer gets the largest scanned sparsity whose
    accuracy drop ≤ ``tolerance_pt`` points; the state holds the curves, choices and kept weights."""
    if model not in scans:
        raise ValueError(f"model={model!r} has no scan; choose one of {sorted(scans)}")
    if isinstance(tolerance_pt, bool) or not isinstance(tolerance_pt, (int, float)) or not 0 <= tolerance_pt <= 100:
        raise ValueError(f"tolerance_pt={tolerance_pt!r} must be an accuracy drop in points, 0 to 100")
    scan = scans[model]
    chosen = choose_sparsities(scan, tolerance_pt / 100)
    weights = sizes[model]
    kept = sum(weights[n] * (1 - chosen[n]) for n in chosen)
    return SensitivityState(
        model=model,
        scan=scan,
        chosen=chosen,
        tolerance_pt=tolerance_pt,
        kept=kept,
        total=sum(weights.values()),
    )


def draw_sensitivity(state: SensitivityState, fig: Figure) -> None:
    """Accuracy against one layer's sparsity, per layer, with each layer's chosen sparsity and the tolerance."""
    ax = fig.subplots()
    scan = state.scan
    xs = [100 * s for s in scan["sparsities"]]
    for name, accs in scan["layers"].items():
        (line,) = ax.plot(xs, [100 * a for a in accs], "o-", ms=3, label=f"{name} → {100 * state.chosen[name]:.0f}%")
        ax.axvline(100 * state.chosen[name], color=line.get_color(), ls=":", lw=1)
    ax.axhline(100 * scan["baseline"] - state.tolerance_pt, color="k", ls="--", lw=1, label="tolerance")
    ax.set_xlabel("sparsity of that one layer (%)")
    ax.set_ylabel("accuracy, no retraining (%)")
    ax.set_title(f"{state.model}: per-layer sensitivity")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()


def sensitivity_readout(state: SensitivityState) -> str:
    """One line: the weights the chosen sparsities keep, and × fewer."""
    return (
        f"chosen per-layer sparsities keep {state.kept:.0f} of {state.total} weights "
        f"(<b>{state.total / max(state.kept, 1):.1f}×</b> fewer) before retraining"
    )


def sensitivity_explorer(
    scans: dict[str, dict],
    sizes: dict[str, dict[str, int]],
    model: str | None = None,
    tolerance_pt: float = 1.0,
    title: str = "Sensitivity scan → per-layer sparsity",
    figsize: tuple[float, float] = (6.5, 3.5),
) -> Explorer:
    """The sensitivity explorer (a ``widgets.Explorer``): pick a model and a tolerated accuracy drop →
    each layer's scan curve and the sparsity it may take (``scans``/``sizes``: see ``sensitivity_state``)."""
    from . import widgets

    controls = {
        "model": widgets.dropdown("model", list(scans), model if model is not None else next(iter(scans))),
        "tolerance_pt": widgets.float_slider("tolerance (pt)", tolerance_pt, 0.0, 10.0, 0.25),
    }
    return widgets.Explorer(
        functools.partial(sensitivity_state, scans, sizes),
        draw_sensitivity,
        controls,
        title=title,
        readout_fn=sensitivity_readout,
        figsize=figsize,
    )


__all__ = [
    "HAN_KEPT",
    "HAN_RETRAIN",
    "LONG_ROUNDS",
    "LONG_EPOCHS",
    "ship_pruned",
    "Sparsity",
    "FORMATS",
    "CHAIN_TYPES",
    "is_reparametrized",
    "plain_copy",
    "layer_sparsities",
    "masks",
    "sparsity",
    "set_mask",
    "lowest_mask",
    "magnitude_mask",
    "prune_by_scores",
    "magnitude_prune",
    "keep_masks",
    "make_permanent",
    "remove_reparametrization",
    "load_pruned",
    "KeptRow",
    "kept_table",
    "compression_ratio",
    "relative_indices",
    "decode_relative",
    "to_csr",
    "storage_bytes",
    "model_storage",
    "hessian_diagonal",
    "obd_saliency",
    "obd_prune",
    "kept_schedule",
    "RoundRow",
    "iterative_prune",
    "sensitivity_scan",
    "choose_sparsities",
    "channel_plan",
    "mask_channels",
    "prune_channels",
    "SparsityState",
    "sparsity_state",
    "draw_sparsity",
    "sparsity_readout",
    "sparsity_explorer",
    "SensitivityState",
    "sensitivity_state",
    "draw_sensitivity",
    "sensitivity_readout",
    "sensitivity_explorer",
]
