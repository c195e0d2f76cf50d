"""Chapter 02 — low-precision weights: fewer bits for every entry of the weight matrix.

Every quantizer here maps a float weight tensor to a few levels, and every one is tested against a
brute-force reference or PyTorch's own operator.

k-means weight sharing (Han, Mao, Dally, "Deep Compression", ICLR 2016)
    ``kmeans_codebook(weights, bits, init="linear"|"density"|"random", iters=30, mask=None, seed=0)``
        -> ``(codebook, indices)``: 1-d k-means over the weight values; ``codebook[indices]``
        rebuilds the weights. Linear init (evenly spaced between min and max) is the paper's choice.
    ``SharedWeights``: a ``torch.nn.utils.parametrize`` parametrization whose output is
        ``codebook[indices] * mask``; autograd's ``index`` backward sums the gradients of each
        cluster, which is exactly the paper's centroid fine-tuning rule.
    ``share_weights(model, bits, init="linear", layers=None, train_others=True)`` converts the
        conv / linear layers of a model in place (``bits`` an int or ``{layer name: bits}``);
        ``course_lib.train.fit`` then fine-tunes the centroids (and, if ``train_others``, biases,
        BatchNorm and unshared layers). ``codebooks(model)`` -> ``{layer name: (codebook, indices)}``;
        ``shared_layers(model)`` yields ``(name, module, SharedWeights)`` to edit them in place;
        ``unshare_weights(model)`` bakes ``codebook[indices]`` back into plain weights.
    Indices are stored at ``bits`` bits each with ``surgery.pack_bits`` (most significant bit first),
        so a real serialized file (``measure.file_bytes``) shows the saving. ``reserve_zero_code(model)``
        frees one code per layer for the value 0; ``fold_pruning_mask`` lets a layer pruned with
        ``torch.nn.utils.prune`` be shared (its zeros stay zero).
    ``shared_state_dict(model)`` / ``quantized_state_dict(model)``: the compact state to store
        (packed indices + codebooks + every other tensor) of a model quantized in place.

Binary and ternary weights (``ternary``, re-exported here)
    BinaryConnect's ``SignSTE``, XNOR-Net's ``binarize``, ``binary_dot`` / ``xnor_dot`` / ``codebook_dot``
    (what a dot product costs), TWN's ``twn_ternarize``, TTQ's ``ttq_ternarize`` and ``ttq_init_scales``.
Drop-in quantized layers (``torch.nn.utils.parametrize``, trained with ``course_lib.train.fit``)
    ``quantize_model(model, "binary"|"twn"|"ttq"|"linear"|"kmeans", bits=None, t=0.05, layers=None)``
    with ``BinaryWeight``, ``TWNWeight``, ``TTQWeight``, ``FakeLinearWeight``; ``default_layers(model)``
    (all conv / linear layers but the first and the last); ``ttq_scales(model)``;
    ``quantized_state_dict(model)`` (packed codes + scales: the real bytes of the result).
Linear quantization and dynamic fixed point (``fixedpoint``, re-exported here)
    ``linear_qparams`` / ``quantize_linear`` / ``dequantize_linear`` / ``fake_quantize`` (PyTorch's
    affine arithmetic), ``to_fixed_point`` / ``range_frac_len`` / ``best_frac_len`` and
    ``fixed_point_model(model, calib_x, bits)`` (Qiu et al.'s layer-by-layer format search).
Whole models, widget
    ``encode_weights(w, method, bits, t)`` / ``compress_weights(model, method, bits)`` -> quantized copy +
    compact state (real bytes); ``quant_state`` / ``draw_quant`` / ``quant_readout`` / ``quant_explorer(weights)``;
    ``deep_compression_bits`` (8-bit conv / 5-bit fc). The chapter's exercises live in
    ``course_lib.exercises.ch02``.

Bit widths outside 1..16 (2..16 for integer and fixed-point formats) raise ``ValueError``, a bit
width that is not an int ``TypeError`` (``args.check_bits``).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize
import torch.nn.utils.prune as torch_prune

from . import checkpoints, data, models, train
from .args import check_bits, check_finite, check_int
from .fixedpoint import (  # linear quantization and fixed point, re-exported
    FRAC_SEARCH,
    PlanRow,
    _check_tensor,
    _fake_quantize,
    _weight,
    best_frac_len,
    dequantize_linear,
    fake_quantize,
    fixed_point_codes,
    fixed_point_error,
    fixed_point_model,
    frac_len_candidates,
    int_range,
    linear_qparams,
    plan_table,
    quantize_linear,
    range_frac_len,
    to_fixed_point,
    torch_codes,
)
from .measure import file_bytes
from .states import State
from .surgery import bits_needed, pack_bits, weight_layers
from .ternary import (  # binary and ternary weights, re-exported
    BINARY_SCALINGS,
    SignSTE,
    TTQFunction,
    _binarize,
    _check_threshold,
    binarize,
    binary_dot,
    codebook_dot,
    pack_signs,
    ttq_init_scales,
    ttq_ternarize,
    ttq_threshold,
    twn_ternarize,
    xnor_dot,
)

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.figure import Figure

    from .widgets import Explorer

KMEANS_INITS = ("linear", "density", "random")


# ----------------------------------------------------------------------------------------------
# argument checks shared by every quantizer (bit widths: args.check_bits)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# k-means weight sharing
# ----------------------------------------------------------------------------------------------


def _initial_centroids(values, k, init, generator):
    if init == "linear":  # Deep Compression's choice: keeps the rare large weights
        return torch.linspace(values.min().item(), values.max().item(), k, dtype=values.dtype)
    if init == "density":  # quantiles of the CDF: many centroids where weights are dense
        return torch.quantile(values, torch.linspace(0, 1, k, dtype=values.dtype))
    # Forgy: k weights drawn at random (with replacement only if there are fewer than k weights)
    if len(values) >= k:
        pick = torch.randperm(len(values), generator=generator)[:k]
    else:
        pick = torch.randint(len(values), (k,), generator=generator)
    return values[pick].sort().values


def nearest_centroid(values: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest entry of a *sorted* 1-d ``codebook`` for every value (ties go low).

    In 1-d the clusters are intervals between midpoints of neighbouring centroids, so a binary
    search (``torch.bucketize``) replaces the n x k distance matrix.
    """
    midpoints = (codebook[1:] + codebook[:-1]) / 2
    return torch.bucketize(values, midpoints, right=False)


def kmeans_codebook(
    weights: torch.Tensor,
    bits: int,
    init: str = "linear",
    iters: int = 30,
    mask: torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the values of ``weights`` into ``2**bits`` shared values (Lloyd's algorithm in 1-d).

    Returns ``(codebook, indices)``: ``codebook`` is a sorted float tensor of ``2**bits`` centroids
    (dtype of ``weights``), ``indices`` a long tensor of the shape of ``weights`` such that
    ``codebook[indices]`` is the quantized tensor. With a boolean ``mask`` only the weights where it
    is True are clustered (pruned weights stay out of the statistics); the indices of the others
    point at their nearest centroid but carry no meaning. Empty clusters keep their centroid.
    """
    _check_tensor(weights)
    check_bits("bits", bits)
    if init not in KMEANS_INITS:
        raise ValueError(f"init={init!r} is unknown; choose one of {KMEANS_INITS}")
    check_int("iters", iters, minimum=0)
    flat = weights.detach().reshape(-1).to(torch.float64)
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            raise TypeError(
                f"mask must be a boolean tensor of the weights' shape {tuple(weights.shape)}, got {type(mask).__name__}"
            )
        if mask.shape != weights.shape:
            raise ValueError(f"mask must be a boolean tensor of the weights' shape {tuple(weights.shape)}")
        values = flat[mask.reshape(-1).to(torch.bool)]
    else:
        values = flat
    k = 2**bits
    if values.numel() == 0:  # everything masked out: any codebook rebuilds the zeros
        codebook = torch.zeros(k, dtype=torch.float64)
    else:
        generator = torch.Generator().manual_seed(seed)
        codebook = _initial_centroids(values.cpu(), k, init, generator).to(values.device)
        for _ in range(iters):
            assign = nearest_centroid(values, codebook)
            sums = torch.zeros(k, dtype=values.dtype, device=values.device).index_add_(0, assign, values)
            counts = torch.bincount(assign, minlength=k)
            updated = torch.where(counts > 0, sums / counts.clamp(min=1), codebook)
            updated = updated.sort().values
            if torch.equal(updated, codebook):
                break
            codebook = updated
    indices = nearest_centroid(flat, codebook).reshape(weights.shape)
    return codebook.to(weights.dtype), indices


class SharedWeights(nn.Module):
    """Parametrization ``weight = codebook[indices] * mask`` (Deep Compression's shared weights).

    ``codebook`` is the only trainable tensor. Because ``codebook[indices]`` is an indexing
    operation, autograd's backward scatters-and-adds: the gradient of centroid k is the sum of the
    gradients of all (unmasked) weights of cluster k — Han et al.'s fine-tuning rule, for free.
    """

    indices: torch.Tensor  # buffers (move with the module, saved in its state dict)
    mask: torch.Tensor | None

    def __init__(self, codebook: torch.Tensor, indices: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.codebook = nn.Parameter(codebook.detach().clone())
        self.register_buffer("indices", indices.detach().clone())
        self.register_buffer("mask", None if mask is None else mask.detach().to(torch.bool).clone())

    @property
    def bits(self) -> int:
        """Bits of one index: enough to name every centroid."""
        return bits_needed(len(self.codebook))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        weight = self.codebook[self.indices]
        if self.mask is not None:
            weight = weight * self.mask
        return weight.to(original.dtype)


def fold_pruning_mask(module: nn.Module) -> nn.Module:
    """Fold torch's pruning reparametrization of ``module.weight`` into a plain weight, in place.

    ``torch.nn.utils.prune`` (chapter 04's ``prune.magnitude_prune``) replaces ``weight`` by
    ``weight_orig * weight_mask``; a parametrization needs a real ``weight`` parameter, so the
    product is written back as one (``torch.nn.utils.prune.remove``). The pruned entries are then
    exact zeros, which ``share_weights`` keeps zero. A module without that reparametrization is
    returned unchanged.
    """
    if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
        torch_prune.remove(module, "weight")
    return module


def share_weights(
    model: nn.Module,
    bits: int | dict[str, int],
    init: str = "linear",
    layers: str | list[str] | None = None,
    train_others: bool = True,
    iters: int = 30,
    seed: int = 0,
) -> nn.Module:
    """In place: replace the weight of each conv / linear layer by shared weights; returns ``model``.

    ``bits``: one int for every layer, or ``{layer name: bits}`` (e.g. 8 for convs, 5 for fully
    connected layers as in Deep Compression); ``layers``: names to convert (default: all, or the
    keys of a ``bits`` dict). Weights that are exactly zero (pruned) stay zero and out of the
    clustering; a layer pruned with ``torch.nn.utils.prune`` (``weight_orig * weight_mask``) has
    its mask folded into its weight first (``fold_pruning_mask``), so pruning then sharing works and
    the pruned weights stay zero while the centroids train. With ``train_others=False`` every other
    parameter is frozen, so ``fit`` trains only the centroids.

    Fine-tune with ``train.fit(..., optimizer="adamw")``: the gradient of a centroid is the *sum*
    over its cluster (thousands of weights), so plain SGD at a usual learning rate takes steps
    thousands of times too large and blows up; AdamW normalises each centroid's step.
    """
    if isinstance(bits, dict):
        for name, b in bits.items():
            check_bits(f"bits[{name!r}]", b)
        layers = list(bits) if layers is None else layers
    else:
        check_bits("bits", bits)
    if init not in KMEANS_INITS:
        raise ValueError(f"init={init!r} is unknown; choose one of {KMEANS_INITS}")
    check_int("iters", iters, minimum=0)
    chosen = shareable_layers(model, layers)
    if isinstance(bits, dict):
        missing = [name for name in chosen if name not in bits]
        if missing:
            raise ValueError(f"bits names no width for layers {missing}; give every chosen layer one")
    for name, module in chosen.items():
        layer_bits = bits[name] if isinstance(bits, dict) else bits
        weight = _weight(fold_pruning_mask(module)).detach()
        mask = weight != 0
        codebook, indices = kmeans_codebook(weight, layer_bits, init=init, iters=iters, mask=mask, seed=seed)
        parametrize.register_parametrization(
            module, "weight", SharedWeights(codebook, indices, None if bool(mask.all()) else mask)
        )
        _parametrization(module).original.requires_grad_(False)  # the float copy is frozen
    if not train_others:
        shared = {id(p) for p in (_parametrization(m)[0].codebook for m in chosen.values())}
        for p in model.parameters():
            if id(p) not in shared:
                p.requires_grad_(False)
    return model


def shareable_layers(model: nn.Module, layers: str | Iterable[str] | None = None) -> dict[str, nn.Module]:
    """The conv / linear layers ``share_weights`` would convert (``layers``, default all), after
    checking every one of them *before* anything changes: at least one layer, none already under a
    weight parametrization, every weight finite. In-place pipelines (``compress.deep_compress``,
    ``smallnets.deep_compress_bytes``) call it first, so a bad model fails before it is pruned."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    chosen = weight_layers(model, layers)
    if not chosen:
        raise ValueError("share_weights: the model has no conv or linear layer to share")
    for name, module in chosen.items():
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(
                f"layers: {name!r} already has a weight parametrization; call unshare_weights(model) first"
            )
        check_finite(f"layer {name!r}'s weight", module.weight)
    return chosen


def _parametrization(module: nn.Module) -> parametrize.ParametrizationList:
    """``module.parametrizations.weight``: the parametrizations of a parametrized layer's weight."""
    found = getattr(module.parametrizations, "weight", None)
    if not isinstance(found, parametrize.ParametrizationList):
        raise TypeError(f"{type(module).__name__}.weight is not parametrized")
    return found


def shared_weights_of(module: nn.Module) -> SharedWeights | None:
    """The ``SharedWeights`` that computes ``module.weight``, or None if ``share_weights`` did not convert it."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    first = _parametrization(module)[0]
    return first if isinstance(first, SharedWeights) else None


def shared_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module, SharedWeights]]:
    """``(name, module, SharedWeights)`` for every layer that ``share_weights`` converted."""
    for name, module in model.named_modules():
        shared = shared_weights_of(module)
        if shared is not None:
            yield name, module, shared


def codebooks(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{layer name: (codebook, indices)}`` of every shared-weight layer (detached copies)."""
    return {name: (p.codebook.detach().clone(), p.indices.clone()) for name, _, p in shared_layers(model)}


def unshare_weights(model: nn.Module) -> nn.Module:
    """Bake ``codebook[indices]`` into plain weights and remove the parametrizations; returns ``model``."""
    for _, module, _ in list(shared_layers(model)):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        module.weight.requires_grad_(True)
    return model


def mask_shared_weights(module: nn.Module, keep: torch.Tensor) -> nn.Module:
    """Prune a shared-weight layer, in place: where ``keep`` is False the weight becomes exactly 0.

    The positions go into the ``SharedWeights`` mask (``weight = codebook[indices] * mask``), so they
    stay zero through centroid fine-tuning; positions masked before stay masked. This is how
    chapter 04's pruning reaches a layer that ``share_weights`` has already converted. Returns ``module``.
    """
    shared = shared_weights_of(module)
    if shared is None:
        raise ValueError(f"module ({type(module).__name__}) has no shared weights: call share_weights first")
    if not isinstance(keep, torch.Tensor) or keep.shape != shared.indices.shape:
        raise ValueError(f"keep must be a boolean tensor of the weight's shape {tuple(shared.indices.shape)}")
    keep = keep.to(device=shared.indices.device, dtype=torch.bool)
    shared.mask = keep.clone() if shared.mask is None else shared.mask & keep
    return module


def reserve_zero_code(model: nn.Module) -> dict[str, int]:
    """Free one code of every shared-weight layer for the value 0 (pruned weights, filler entries).

    ``quant.share_weights(model, bits)`` gives ``2**bits`` centroids for the non-zero weights; the
    format needs one of the ``2**bits`` codes for zero. The smallest cluster is merged into its
    nearest neighbour (whose centroid becomes the mean of both) and its centroid set to 0.
    Returns ``{layer name: merged cluster size}``.
    """
    merged = {}
    with torch.no_grad():
        for name, _, p in shared_layers(model):
            codebook, indices = p.codebook, p.indices
            active = indices if p.mask is None else indices[p.mask]
            counts = torch.bincount(active.reshape(-1), minlength=len(codebook))
            if len(codebook) < 2:
                continue
            if bool((codebook == 0).any()) and counts[codebook == 0].sum() == 0:
                merged[name] = 0  # a zero code is already free
                continue
            j = int(torch.argmin(counts))
            distance = (codebook - codebook[j]).abs()
            distance[j] = float("inf")
            k = int(torch.argmin(distance))
            total = counts[j] + counts[k]
            if total > 0:
                codebook[k] = (codebook[k] * counts[k] + codebook[j] * counts[j]) / total
            indices[indices == j] = k
            codebook[j] = 0.0
            merged[name] = int(counts[j])
    return merged


def shared_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The compact state of a shared-weight model (see ``quantized_state_dict``)."""
    return quantized_state_dict(model)


def _layer_storage(module, p):
    w = module.weight.detach()
    if isinstance(p, SharedWeights):
        storage = {"codes": pack_bits(p.indices, p.bits), "codebook": p.codebook.detach().clone()}
        if p.mask is not None:  # pruned: 1 bit per weight
            storage["mask"] = pack_bits(p.mask.to(torch.int64), 1)
        return storage
    if isinstance(p, FakeLinearWeight):
        return encode_weights(module.parametrizations.weight.original, "linear", p.bits)[1]
    if isinstance(p, BinaryWeight):
        alpha = w.abs().amax(dim=tuple(range(1, w.ndim))) if w.ndim > 1 else w.abs().max()
        return {"codes": pack_bits((w >= 0).to(torch.int64), 1), "alpha": alpha}
    if isinstance(p, (TTQWeight, TWNWeight)):  # levels -Wn, 0, +Wp
        codes = (w > 0).to(torch.int64) - (w < 0).to(torch.int64)
        return {"codes": pack_bits(codes + 1, 2), "levels": torch.stack([w.min(), w.max()])}
    raise TypeError(f"no compact storage for a {type(p).__name__} parametrization")


def quantized_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a file must hold for a model quantized in place (``share_weights`` / ``quantize_model``):
    per quantized layer its codes packed at their bit width plus codebook / scales; every other
    tensor as it is. ``measure.file_bytes(quantized_state_dict(model))`` is the real size.
    """
    state, replaced = {}, []
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            prefix = f"{name}." if name else ""
            replaced.append(f"{prefix}parametrizations.weight")
            chain = _parametrization(module)
            storage = _layer_storage(module, chain[0])
            last = chain[-1]
            if isinstance(last, KeepZeros):  # pruned, then quantized: 1 bit per weight
                storage["mask"] = pack_bits(last.mask.to(torch.int64), 1)
            storage["shape"] = torch.tensor(_weight(module).shape)
            state.update({f"{prefix}weight.{k}": v for k, v in storage.items()})
    for key, value in model.state_dict().items():
        if not any(key.startswith(s) for s in replaced):
            state[key] = value.detach().cpu().clone()
    return state


# ----------------------------------------------------------------------------------------------
# drop-in quantized layers (torch.nn.utils.parametrize): train them with course_lib.train.fit
# ----------------------------------------------------------------------------------------------


class BinaryWeight(nn.Module):
    """Parametrization: weight = XNOR-Net ``binarize(latent)`` (latent weights stay float, trainable)."""

    def __init__(self, scaling: str = "channel") -> None:
        super().__init__()
        if scaling not in BINARY_SCALINGS:
            raise ValueError(f"scaling={scaling!r} is unknown; choose one of {BINARY_SCALINGS}")
        self.scaling = scaling

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return _binarize(latent, self.scaling)


class TWNWeight(nn.Module):
    """Parametrization: TWN ternary weights with a straight-through gradient to the latent weights."""

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        ternary = twn_ternarize(latent)[0]
        return latent + (ternary - latent).detach()


class TTQWeight(nn.Module):
    """Parametrization of Trained Ternary Quantization: learned ``wp``, ``wn`` per layer.

    On registration the float weights become the latent weights, scaled to [-1, 1] by their
    largest magnitude (the paper's normalisation); ``wp``/``wn`` start at ``ttq_init_scales``.
    """

    def __init__(self, weight: torch.Tensor, t: float = 0.05) -> None:
        super().__init__()
        self.t = _check_threshold(t)
        wp, wn = ttq_init_scales(weight.detach(), self.t)
        self.wp = nn.Parameter(wp.clone().reshape(()))
        self.wn = nn.Parameter(wn.clone().reshape(()))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return ttq_ternarize(latent, self.wp, self.wn, self.t)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / weight.abs().max().clamp(min=torch.finfo(weight.dtype).tiny)


class FakeLinearWeight(nn.Module):
    """Parametrization: per-output-channel affine ``bits``-bit fake quantization, straight-through."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = check_bits("bits", bits, low=2)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return latent + (_fake_quantize(latent.detach(), self.bits, False, 0) - latent).detach()


class KeepZeros(nn.Module):
    """Parametrization ``weight * mask``: after a quantizer, keeps a pruned layer's zeros at zero."""

    mask: torch.Tensor  # a buffer

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


QAT_METHODS = ("binary", "twn", "ttq", "linear", "kmeans")


def default_layers(model: nn.Module, keep_first_last: bool = True) -> list[str]:
    """Names of the conv / linear layers; without the first and the last if ``keep_first_last``
    (TWN, TTQ and XNOR-Net keep those two in full precision: they are small and sensitive)."""
    names = list(weight_layers(model))
    return names[1:-1] if keep_first_last and len(names) > 2 else names


def quantize_model(
    model: nn.Module,
    method: str,
    bits: int | dict[str, int] | None = None,
    t: float = 0.05,
    layers: str | list[str] | None = None,
) -> nn.Module:
    """In place: make the conv / linear layers of ``model`` quantized; returns ``model``.

    ``method``: "binary" (XNOR-Net scaling, STE), "twn", "ttq" (learned Wp/Wn, threshold ``t``),
    "linear" (``bits``-bit per-channel fake quantization, STE) or "kmeans" (``share_weights``;
    ``bits`` may then be ``{layer name: bits}``). ``layers`` defaults to ``default_layers(model)``
    (first and last layers stay float). A layer pruned with ``torch.nn.utils.prune`` has its mask
    folded into its weight (``fold_pruning_mask``) and kept: its pruned weights stay zero.
    The quantized model trains with ``course_lib.train.fit``; the float latent weights train too.
    Use ``optimizer="adamw"``: TTQ's scales and k-means centroids receive gradients summed over
    whole layers or clusters, on which SGD's fixed step size diverges.
    """
    if method not in QAT_METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {QAT_METHODS}")
    if method in ("linear", "kmeans") and bits is None:
        raise ValueError(f"method={method!r} needs bits (an integer, e.g. 4)")
    if method == "linear":
        check_bits("bits", bits, low=2)
    if method == "ttq":
        _check_threshold(t)
    layers = default_layers(model) if layers is None else layers
    if method == "kmeans":
        assert bits is not None  # checked above
        return share_weights(model, bits, layers=layers)
    chosen = weight_layers(model, layers)
    for name, module in chosen.items():  # check every layer before changing any
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"layers: {name!r} is already quantized")
        check_finite(f"layer {name!r}'s weight", _weight(module))
    for name, module in chosen.items():
        kept = _weight(fold_pruning_mask(module)).detach() != 0
        p: nn.Module
        if method == "binary":
            p = BinaryWeight()
        elif method == "twn":
            p = TWNWeight()
        elif method == "ttq":
            p = TTQWeight(_weight(module), t)
        else:
            assert isinstance(bits, int)  # checked above: linear takes one width
            p = FakeLinearWeight(bits)
        parametrize.register_parametrization(module, "weight", p)
        if not bool(kept.all()):  # pruned: keep the zeros after quantizing
            parametrize.register_parametrization(module, "weight", KeepZeros(kept))
    return model


def ttq_scales(model: nn.Module) -> dict[str, tuple[float, float]]:
    """``{layer name: (Wp, Wn)}`` of every TTQ layer."""
    return {
        name: (m.parametrizations.weight[0].wp.item(), m.parametrizations.weight[0].wn.item())
        for name, m in model.named_modules()
        if parametrize.is_parametrized(m, "weight") and isinstance(m.parametrizations.weight[0], TTQWeight)
    }


# ----------------------------------------------------------------------------------------------
# post-training compression of a whole model, with the real bytes of what must be stored
# ----------------------------------------------------------------------------------------------

WEIGHT_METHODS = ("float", "linear", "fixed", "kmeans", "twn", "ttq", "binary")


def encode_weights(
    w: torch.Tensor, method: str, bits: int | None = None, t: float = 0.05, per_channel: bool = True
) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """Quantize one weight tensor; returns ``(w_hat, storage, bits_per_weight)``.

    ``storage`` is the dict of tensors a file must hold to rebuild ``w_hat`` (codes packed at
    ``bits`` bits + scales / codebook / fractional length), so ``measure.file_bytes(storage)`` is real.
    """
    _check_tensor(w, "w")
    if method not in WEIGHT_METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {WEIGHT_METHODS}")
    w = w.detach().float()
    shape = torch.tensor(w.shape)
    if method == "float":
        return w.clone(), {"weight": w.clone()}, 32
    if method in ("linear", "fixed", "kmeans"):
        if bits is None:
            raise ValueError(f"method={method!r} needs bits (an integer)")
        bits = check_bits("bits", bits, low=1 if method == "kmeans" else 2)
    if method == "linear":
        assert bits is not None
        axis = 0 if per_channel and w.ndim > 1 else None
        scale, zp = linear_qparams(w, bits, axis=axis)
        q = quantize_linear(w, scale, zp, bits, axis)
        storage = {"codes": pack_bits(q - int_range(bits)[0], bits), "scale": scale, "zero_point": zp.to(torch.int16)}
        return dequantize_linear(q, scale, zp, axis), {**storage, "shape": shape}, bits
    if method == "fixed":
        assert bits is not None
        fl = range_frac_len(w, bits)  # the range rule: nothing saturates
        q = fixed_point_codes(w, bits, fl).to(torch.int64)
        storage = {"codes": pack_bits(q - int_range(bits)[0], bits), "frac_len": torch.tensor(fl)}
        return q * 2.0**-fl, {**storage, "shape": shape}, bits
    if method == "kmeans":
        assert bits is not None
        codebook, idx = kmeans_codebook(w, bits)
        return codebook[idx], {"codes": pack_bits(idx, bits), "codebook": codebook, "shape": shape}, bits
    if method == "binary":
        w_hat = binarize(w, "channel")
        codes = (w >= 0).to(torch.int64)
        alpha = w.abs().mean(dim=tuple(range(1, w.ndim))) if w.ndim > 1 else w.abs().mean()
        return w_hat, {"codes": pack_bits(codes, 1), "alpha": alpha, "shape": shape}, 1
    if method == "twn":
        w_hat, codes, _, twn_alpha = twn_ternarize(w)
        return (
            w_hat,
            {"codes": pack_bits(codes.to(torch.int64) + 1, 2), "alpha": torch.tensor(twn_alpha), "shape": shape},
            2,
        )
    wp, wn = ttq_init_scales(w, t)  # "ttq" before any training
    w_hat = ttq_ternarize(w / w.abs().max(), wp, wn, t)
    codes = (w_hat > 0).to(torch.int64) - (w_hat < 0).to(torch.int64)
    return w_hat, {"codes": pack_bits(codes + 1, 2), "wp": wp, "wn": wn, "shape": shape}, 2


def compress_weights(
    model: nn.Module,
    method: str,
    bits: int | None = None,
    t: float = 0.05,
    layers: str | Iterable[str] | None = None,
    per_channel: bool = True,
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A copy of ``model`` whose conv / linear weights (``layers``, default all) are quantized, and
    the compact state dict to store it: ``measure.file_bytes(state)`` is the real size."""
    qmodel = copy.deepcopy(model)
    chosen = weight_layers(qmodel, layers)
    state = {k: v.detach().clone() for k, v in qmodel.state_dict().items()}
    for name, module in chosen.items():
        weight = _weight(module)
        w_hat, storage, _ = encode_weights(weight, method, bits, t, per_channel)
        with torch.no_grad():
            weight.copy_(w_hat.reshape(weight.shape))
        prefix = f"{name}.weight" if name else "weight"
        del state[prefix]
        state.update({f"{prefix}.{k}": v for k, v in storage.items()})
    return qmodel, state


# ----------------------------------------------------------------------------------------------
# the explorer: method / bits / threshold -> histogram with the levels, error and bytes
# ----------------------------------------------------------------------------------------------

EXPLORER_METHODS = ("kmeans", "linear", "fixed", "ttq", "twn", "binary")


@dataclass(frozen=True)
class QuantState(State):
    """What the one-layer quantization explorer shows for one setting."""

    method: str
    bits: float  # stored bits per weight
    threshold: float
    weights: torch.Tensor
    quantized: torch.Tensor
    levels: torch.Tensor
    mse: float
    sqnr_db: float
    float_bytes: int
    bytes: int


def quant_state(weights: torch.Tensor, method: str = "kmeans", bits: int = 4, threshold: float = 0.05) -> QuantState:
    """Everything the quantization explorer shows for one weight tensor (pure; ValueError if invalid).

    ``bits`` applies to kmeans (1-16), linear and fixed (2-16); ``threshold`` is TTQ's t (0 < t < 1);
    ternary methods store 2 bits per weight and binary 1.
    """
    if method not in EXPLORER_METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {EXPLORER_METHODS}")
    if method in ("kmeans", "linear", "fixed"):
        check_bits("bits", bits)
    if method in ("linear", "fixed") and bits < 2:
        raise ValueError(f"bits={bits}: {method} quantization needs at least 2 bits (a sign and a magnitude)")
    threshold = _check_threshold(threshold)
    _check_tensor(weights, "weights")  # NaN / inf: a message, not "SQNR nan dB"
    w = weights.detach().float().reshape(-1)
    if not bool(w.any()):
        raise ValueError(
            "weights are all zero: there is nothing to quantize (the SQNR, signal / error power, is undefined)"
        )
    w_hat, storage, stored_bits = encode_weights(w, method, bits, threshold, per_channel=False)
    error = w_hat - w
    mse = error.pow(2).mean().item()
    return QuantState(
        method=method,
        bits=stored_bits,
        threshold=threshold,
        weights=w,
        quantized=w_hat,
        levels=torch.unique(w_hat),
        mse=mse,
        sqnr_db=10 * math.log10(w.pow(2).mean().item() / max(mse, 1e-30)),
        float_bytes=file_bytes({"weight": w}),
        bytes=file_bytes(storage),
    )


def draw_quant(state: QuantState, fig: Figure) -> None:
    """Histogram of the weights with the quantization levels as vertical lines."""
    ax = fig.add_subplot(1, 1, 1)
    w = state.weights.numpy()
    ax.hist(w, bins=120, color="#7a9cc6", alpha=0.9, label="float weights")
    levels = state.levels.numpy()
    shown = levels if len(levels) <= 64 else levels[:: math.ceil(len(levels) / 64)]
    for i, level in enumerate(shown):
        ax.axvline(level, color="#c0392b", lw=1, alpha=0.8, label="quantization levels" if i == 0 else None)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title(f"{state.method}: {len(levels)} levels, {state.bits} bits/weight, SQNR {state.sqnr_db:.1f} dB")
    ax.legend(loc="upper right")


def quant_readout(state: QuantState) -> str:
    """One line under the controls: levels, error and the real bytes against float."""
    return (
        f"levels <b>{len(state.levels)}</b> · MSE <b>{state.mse:.2e}</b> · "
        f"SQNR <b>{state.sqnr_db:.1f} dB</b> · file <b>{state.bytes:,} B</b> vs float "
        f"{state.float_bytes:,} B (<b>{state.float_bytes / state.bytes:.1f}×</b> smaller)"
    )


def quant_explorer(weights: torch.Tensor, title: str = "Quantize one layer") -> Explorer:
    """The interactive explorer for one weight tensor (a ``course_lib.widgets.Explorer``)."""
    from .widgets import Explorer, dropdown, float_slider, int_slider

    controls = {
        "method": dropdown("method", EXPLORER_METHODS, "kmeans"),
        "bits": int_slider("bits", 3, 1, 8),
        "threshold": float_slider("TTQ threshold t", 0.05, 0.0, 0.5, 0.01),
    }
    return Explorer(
        functools.partial(quant_state, weights),
        draw_quant,
        controls,
        title=title,
        readout_fn=quant_readout,
        figsize=(8, 3.4),
    )


# ----------------------------------------------------------------------------------------------
# Deep Compression's allocation
# ----------------------------------------------------------------------------------------------


def deep_compression_bits(model: nn.Module, conv_bits: int = 8, fc_bits: int = 5) -> dict[str, int]:
    """Deep Compression's allocation: ``{layer: 8}`` for conv layers, ``{layer: 5}`` for linear ones."""
    return {name: fc_bits if isinstance(m, nn.Linear) else conv_bits for name, m in weight_layers(model).items()}


# Fine-tuning a quantized LeNet-5 from the shipped float weights (chapter 02): Adam(W), which
# normalises the steps of the layer-wide scale gradients, at these learning rates, no weight decay.
# "float" is the control: the same fine-tuning without quantization, so both arms train alike.
FINETUNE_LR: dict[str, float] = {"float": 1e-3, "ttq": 1e-3, "twn": 1e-3, "binary": 1e-3, "kmeans": 1e-4}
# The long run (ship_finetuned): epochs on all 60,000 training images (the notebook's quick run: 1 on 2,048).
LONG_EPOCHS = 4


def finetune_quantized(
    model: nn.Module,
    method: str,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None,
    epochs: int,
    **fit_kwargs,
) -> train.History:
    """In place: quantize ``model`` by ``method`` (``"float"``: leave it float) as chapter 02 does, then
    fine-tune it with ``train.fit`` (Adam at ``FINETUNE_LR[method]``, no weight decay); the history.

    ``"kmeans"`` shares every layer at Deep Compression's widths (``deep_compression_bits``) and
    trains only the centroids; ``"ttq"``, ``"twn"``, ``"binary"`` quantize ``default_layers``.
    """
    if method not in FINETUNE_LR:
        raise ValueError(f"method={method!r} is unknown; choose one of {sorted(FINETUNE_LR)}")
    if method == "kmeans":
        share_weights(model, bits=deep_compression_bits(model), train_others=False)
    elif method != "float":
        quantize_model(model, method)
    options = dict(optimizer="adamw", lr=FINETUNE_LR[method], weight_decay=0.0, progress=False)
    return train.fit(model, train_data, test_data, epochs, **{**options, **fit_kwargs})


def bake_weights(model: nn.Module) -> nn.Module:
    """In place: replace every parametrized weight by the values it computes (ternary levels, shared
    centroids…) and remove the parametrization; returns ``model``, now a plain network with the
    quantized values, loadable into a fresh one."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def ship_finetuned(
    recipe: str,
    folder: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    lr: float | None = None,
    resume: bool = False,
) -> None:
    """The long run of chapter 02's fine-tuning, which ships a quantized LeNet-5 (``python -m course_lib
    train --recipe lenet5-ttq-fmnist --register``; ``-twn-``, ``-kmeans-`` and the float control
    ``lenet5-float-ft-fmnist`` likewise; a few CPU-minutes each).

    The same :func:`finetune_quantized` as the notebook, from the shipped ``lenet5-fmnist``, for
    ``epochs`` (default ``LONG_EPOCHS``) on all 60,000 training images, its test accuracy after every
    epoch recorded as its curve. The result is shipped as a plain LeNet-5 holding the quantized values
    (:func:`bake_weights`), in float16, which keeps them ternary / shared; the recorded accuracy is that
    of the float16 weights. The entry also records the levels of every quantized layer.
    """
    method = recipe.removeprefix("lenet5-").removesuffix("-fmnist").removesuffix("-ft")
    if not recipe.startswith("lenet5-") or method not in FINETUNE_LR:
        raise ValueError(
            f"recipe={recipe!r} is not a fine-tuned LeNet-5; those are lenet5-(ttq|twn|kmeans|float-ft)-fmnist"
        )
    if resume or lr is not None:
        raise ValueError(f"{recipe}: --resume and --lr do not apply (the learning rate is FINETUNE_LR[{method!r}])")
    epochs = LONG_EPOCHS if epochs is None else check_int("epochs", epochs)
    train_data, test_data = data.loaders("fashion-mnist", 128, augment=False, device="cpu", seed=seed)
    model = checkpoints.load_checkpoint("lenet5-fmnist", models.lenet5())
    history = finetune_quantized(model, method, train_data, test_data, epochs, seed=seed)
    checkpoints.round_to_half(bake_weights(model).eval())  # what is shipped: float16
    layers = default_layers(model) if method != "kmeans" else [n for n, _ in shareable_layers(model).items()]
    levels = {name: int(torch.unique(model.get_submodule(name).weight).numel()) for name in layers}
    levels = levels if method != "float" else {}  # the control has no levels
    path = checkpoints.ship(
        model,
        folder,
        recipe,
        recipe=recipe,
        seed=seed,
        epochs=epochs,
        test_accuracy=train.evaluate(model, test_data),
        curve=history.test_acc,
        command=checkpoints.rebuild_command(recipe, epochs, LONG_EPOCHS, seed),
        train_images=len(train_data.labels),
        half=True,
        extra={"method": method, "levels": levels},
    )
    print(f"{recipe}: {path.stat().st_size} bytes, curve {history.test_acc}, levels {levels}", flush=True)


__all__ = [
    "FINETUNE_LR",
    "LONG_EPOCHS",
    "finetune_quantized",
    "bake_weights",
    "ship_finetuned",
    "KMEANS_INITS",
    "BINARY_SCALINGS",
    "QAT_METHODS",
    "FRAC_SEARCH",
    "WEIGHT_METHODS",
    "EXPLORER_METHODS",
    "nearest_centroid",
    "kmeans_codebook",
    "SharedWeights",
    "fold_pruning_mask",
    "share_weights",
    "shareable_layers",
    "shared_weights_of",
    "shared_layers",
    "codebooks",
    "unshare_weights",
    "mask_shared_weights",
    "reserve_zero_code",
    "shared_state_dict",
    "quantized_state_dict",
    "SignSTE",
    "binarize",
    "binary_dot",
    "pack_signs",
    "xnor_dot",
    "codebook_dot",
    "twn_ternarize",
    "ttq_threshold",
    "TTQFunction",
    "ttq_ternarize",
    "ttq_init_scales",
    "BinaryWeight",
    "TWNWeight",
    "TTQWeight",
    "FakeLinearWeight",
    "KeepZeros",
    "default_layers",
    "quantize_model",
    "ttq_scales",
    "int_range",
    "linear_qparams",
    "quantize_linear",
    "dequantize_linear",
    "torch_codes",
    "fake_quantize",
    "fixed_point_codes",
    "to_fixed_point",
    "range_frac_len",
    "frac_len_candidates",
    "fixed_point_error",
    "best_frac_len",
    "fixed_point_model",
    "PlanRow",
    "plan_table",
    "encode_weights",
    "compress_weights",
    "QuantState",
    "quant_state",
    "draw_quant",
    "quant_readout",
    "quant_explorer",
    "deep_compression_bits",
]
