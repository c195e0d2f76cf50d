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

Binary and ternary weights
    ``SignSTE`` (BinaryConnect's straight-through sign), ``binarize(w, scaling="channel")``
    (XNOR-Net: alpha = mean|w| per output channel), ``binary_dot(signs, x, alpha)`` (a dot product
    with additions only, and its operation count), ``pack_signs`` / ``xnor_dot`` (binary weights *and*
    activations: XNOR + popcount), ``codebook_dot`` (k-means weights: one multiply per centroid);
    ``twn_ternarize(w)`` (TWN: Δ = 0.7·mean|w|);
    ``TTQFunction`` / ``ttq_ternarize(latent, wp, wn, t=0.05)`` (Trained Ternary Quantization:
    learned Wp / Wn, Δ = t·max|w̃|, scaled straight-through gradient), ``ttq_init_scales``.
Drop-in quantized layers (``torch.nn.utils.parametrize``, trained with ``course_lib.train.fit``)
    ``quantize_model(model, "binary"|"twn"|"ttq"|"linear"|"kmeans", bits=None, t=0.05, layers=None)``
    with ``BinaryWeight``, ``TWNWeight``, ``TTQWeight``, ``FakeLinearWeight``; ``default_layers(model)``
    (all conv / linear layers but the first and the last); ``ttq_scales(model)``;
    ``quantized_state_dict(model)`` (packed codes + scales: the real bytes of the result).
Linear (affine) quantization, equal to PyTorch's quantizer (``torch_codes``: ``torch.fake_quantize_per_tensor_affine``)
    ``int_range(bits)``, ``linear_qparams(x, bits, symmetric=False, axis=None)`` (min/max calibration,
    PyTorch's observer rule), ``quantize_linear``, ``dequantize_linear``, ``fake_quantize``.
Dynamic fixed point (Qiu et al., FPGA 2016)
    ``to_fixed_point(x, bits, frac_len)``, ``fixed_point_codes``, ``range_frac_len(x, bits)`` (the largest
    fractional length with no overflow), ``frac_len_candidates`` (the range rule and its neighbours),
    ``best_frac_len`` (least Σ|error|), and ``fixed_point_model(model, calib_x, bits, dynamic=True,
    search=(1, 4))`` -> (model, plan): a greedy layer-by-layer search of every layer's weight and
    output formats by measured output error (``plan_table(plan)`` shows where it left the range rule).
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize
import torch.nn.utils.prune as torch_prune

from .args import check_bits, check_finite, check_float, check_int
from .measure import file_bytes
from .report import Rows
from .states import State
from .surgery import bits_needed, forward_with_hooks, pack_bits, weight_layers

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.figure import Figure

    from .widgets import Explorer

KMEANS_INITS = ("linear", "density", "random")


# ----------------------------------------------------------------------------------------------
# argument checks shared by every quantizer (bit widths: args.check_bits)
# ----------------------------------------------------------------------------------------------


def _check_tensor(weights, name="weights", finite=True):
    """A non-empty float tensor; with ``finite`` also free of NaN and inf (``args.check_finite``)."""
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(weights).__name__}")
    if not weights.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {weights.dtype}")
    if weights.numel() == 0:
        raise ValueError(f"{name} is empty")
    if finite:
        check_finite(name, weights)


def _check_delta(name, delta):
    """A threshold computed from ``max|w|`` or ``mean|w|`` is NaN / inf exactly when ``w`` holds one
    (the check costs nothing more than the ``.item()`` the caller already does)."""
    if not math.isfinite(delta):
        raise ValueError(f"{name} contains NaN or inf value(s): it must be finite")
    return delta


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
        weight = fold_pruning_mask(module).weight.detach()
        mask = weight != 0
        codebook, indices = kmeans_codebook(weight, layer_bits, init=init, iters=iters, mask=mask, seed=seed)
        parametrize.register_parametrization(
            module, "weight", SharedWeights(codebook, indices, None if bool(mask.all()) else mask)
        )
        module.parametrizations.weight.original.requires_grad_(False)  # the float copy is frozen
    if not train_others:
        shared = {id(p) for p in (m.parametrizations.weight[0].codebook for m in chosen.values())}
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


def shared_weights_of(module: nn.Module) -> SharedWeights | None:
    """The ``SharedWeights`` that computes ``module.weight``, or None if ``share_weights`` did not convert it."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    first = module.parametrizations.weight[0]
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
            chain = module.parametrizations.weight
            storage = _layer_storage(module, chain[0])
            if isinstance(chain[-1], KeepZeros):  # pruned, then quantized: 1 bit per weight
                storage["mask"] = pack_bits(chain[-1].mask.to(torch.int64), 1)
            storage["shape"] = torch.tensor(module.weight.shape)
            state.update({f"{prefix}weight.{k}": v for k, v in storage.items()})
    for key, value in model.state_dict().items():
        if not any(key.startswith(s) for s in replaced):
            state[key] = value.detach().cpu().clone()
    return state


# ----------------------------------------------------------------------------------------------
# binary weights: BinaryConnect (sign + straight-through estimator) and XNOR-Net scaling
# ----------------------------------------------------------------------------------------------


class SignSTE(torch.autograd.Function):
    """``sign(w)`` (with sign(0) = +1) forward; straight-through backward clipped to |w| <= 1.

    BinaryConnect (Courbariaux et al. 2015) passes the gradient of the binary weight to the real
    weight unchanged, and cancels it where |w| > 1 (the "hard tanh" estimator).
    """

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


BINARY_SCALINGS = ("channel", "tensor", "none")


def binarize(w: torch.Tensor, scaling: str = "channel") -> torch.Tensor:
    """``alpha * sign(w)``: ±1 weights times a scale (XNOR-Net: alpha = mean |w| per output channel).

    ``scaling``: "channel" (one alpha per output channel, XNOR-Net), "tensor" (one alpha), "none"
    (plain BinaryConnect, alpha = 1). Differentiable: sign through ``SignSTE``, alpha exactly.
    """
    _check_tensor(w, "w")
    if scaling not in BINARY_SCALINGS:
        raise ValueError(f"scaling={scaling!r} is unknown; choose one of {BINARY_SCALINGS}")
    return _binarize(w, scaling)


def _binarize(w: torch.Tensor, scaling: str) -> torch.Tensor:
    """``binarize`` without the checks (a parametrization's forward: no host sync per step)."""
    signs = SignSTE.apply(w)
    if scaling == "none":
        return signs
    if scaling == "tensor" or w.ndim < 2:
        return w.abs().mean() * signs
    alpha = w.abs().mean(dim=tuple(range(1, w.ndim)), keepdim=True)
    return alpha * signs


def binary_dot(
    signs: torch.Tensor | Sequence[float], x: torch.Tensor | Sequence[float], alpha: float = 1.0
) -> tuple[torch.Tensor, dict[str, int]]:
    """``alpha * (signs · x)`` computed with additions only, and the operations it took.

    With ±1 weights every product is +x_i or -x_i, so a length-n dot product costs n - 1 additions
    or subtractions and a single multiply by alpha (none when alpha is 1), instead of n multiplies
    and n - 1 additions. Returns ``(value, {"multiplies": m, "additions": a})``.
    """
    signs, x = torch.as_tensor(signs), torch.as_tensor(x)
    if signs.shape != x.shape or signs.ndim != 1:
        raise ValueError(f"signs and x must be 1-d of the same length, got {tuple(signs.shape)} and {tuple(x.shape)}")
    if not torch.all((signs == 1) | (signs == -1)):
        raise ValueError("signs must contain only +1 and -1")
    total = x[signs > 0].sum() - x[signs < 0].sum()
    ops = {"multiplies": 0 if alpha == 1 else 1, "additions": len(x) - 1}
    return alpha * total, ops


def pack_signs(v: torch.Tensor | Sequence[int]) -> int:
    """Pack a ±1 vector into one Python int, bit i set where v[i] = +1 (a binary activation or weight)."""
    v = torch.as_tensor(v)
    if v.ndim != 1 or not torch.all((v == 1) | (v == -1)):
        raise ValueError("v must be a 1-d tensor of +1 and -1")
    return sum(1 << i for i, s in enumerate(v.tolist()) if s > 0)


def xnor_dot(a_bits: int, b_bits: int, n: int) -> tuple[int, dict[str, int]]:
    """The dot product of two ±1 vectors of length ``n`` packed by ``pack_signs``: XNOR, then popcount.

    Equal signs (XNOR bit 1) contribute +1, different signs −1, so a·b = 2·popcount(XNOR) − n =
    n − 2·popcount(XOR). XNOR-Net binarizes weights *and* activations so that a convolution becomes
    this: 64 products per machine word with one XOR and one popcount, no multiply at all.
    Returns ``(value, {"multiplies": 0, "word_ops": ...})`` (XOR + popcount per 64-bit word).
    """
    check_int("n", n)
    if not (0 <= a_bits < 2**n and 0 <= b_bits < 2**n):
        raise ValueError(f"a_bits and b_bits must be packed vectors of n={n} bits")
    differ = bin(a_bits ^ b_bits).count("1")
    return n - 2 * differ, {"multiplies": 0, "word_ops": 2 * -(-n // 64)}


def codebook_dot(
    codebook: torch.Tensor | Sequence[float], indices: torch.Tensor | Sequence[int], x: torch.Tensor | Sequence[float]
) -> tuple[torch.Tensor, dict[str, int]]:
    """``Σ_i codebook[indices[i]] · x[i]`` with one multiply per centroid, not one per weight.

    Weight sharing makes a dot product cheap as well as small: first add up the inputs of each
    cluster (s_k = Σ_{i: indices[i] = k} x_i, additions only), then multiply each sum by its
    centroid once: 2**bits multiplies per output instead of n (Deep Compression, Han et al. 2016).
    Returns ``(value, {"multiplies": k, "additions": ...})``.
    """
    codebook, indices, x = torch.as_tensor(codebook), torch.as_tensor(indices), torch.as_tensor(x)
    if indices.ndim != 1 or x.shape != indices.shape or codebook.ndim != 1:
        raise ValueError(
            f"indices and x must be 1-d of the same length and codebook 1-d, got "
            f"{tuple(indices.shape)}, {tuple(x.shape)}, {tuple(codebook.shape)}"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= len(codebook)):
        raise ValueError(f"indices must lie in [0, {len(codebook)}) (the codebook's length)")
    sums = torch.zeros(len(codebook), dtype=x.dtype).index_add_(0, indices.long(), x)
    used = int((torch.bincount(indices.long(), minlength=len(codebook)) > 0).sum())
    return (sums * codebook.to(x.dtype)).sum(), {"multiplies": used, "additions": len(x) - 1}


# ----------------------------------------------------------------------------------------------
# ternary weights: TWN (Li & Liu 2016) and Trained Ternary Quantization (Zhu et al. 2017)
# ----------------------------------------------------------------------------------------------


def twn_ternarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Ternary Weight Networks: Δ = 0.7·mean|w|, α = mean of |w| where |w| > Δ; returns
    ``(alpha * codes, codes, delta, alpha)`` with ``codes`` in {-1, 0, +1}."""
    _check_tensor(w, "w", finite=False)
    w = w.detach()
    delta = 0.7 * w.abs().mean()
    _check_delta("w", delta.item())  # NaN / inf in w make the mean NaN / inf
    codes = (w > delta).to(w.dtype) - (w < -delta).to(w.dtype)
    kept = codes != 0
    alpha = w.abs()[kept].mean() if kept.any() else w.new_tensor(0.0)
    return alpha * codes, codes, delta.item(), alpha.item()


def _check_threshold(t):
    check_float("t", t)
    if not 0 < t < 1:
        raise ValueError(f"threshold t={t!r} must be a number with 0 < t < 1 (Δ = t·max|w|; TTQ uses 0.05)")
    return float(t)


def ttq_threshold(latent: torch.Tensor, t: float = 0.05) -> float:
    """TTQ's threshold Δ = t · max|w̃| (a constant for the backward pass)."""
    if not isinstance(latent, torch.Tensor):
        raise TypeError(f"latent must be a torch.Tensor, got {type(latent).__name__}")
    if latent.numel() == 0:
        raise ValueError("latent is empty")
    return _check_delta("latent", _check_threshold(t) * latent.detach().abs().max().item())


class TTQFunction(torch.autograd.Function):
    """Trained ternary quantization of latent weights w̃ (Zhu et al., ICLR 2017, eqs. 6-8).

    forward: w_t = +Wp where w̃ > Δ, 0 where |w̃| <= Δ, -Wn where w̃ < -Δ.
    backward: ∂L/∂Wp = Σ_{w̃>Δ} ∂L/∂w_t;  ∂L/∂Wn = -Σ_{w̃<-Δ} ∂L/∂w_t (the minus because w_t = -Wn;
    the paper writes the sum without it); the latent weights get the scaled straight-through
    gradient Wp·∂L/∂w_t above Δ, 1·∂L/∂w_t inside, Wn·∂L/∂w_t below -Δ.
    """

    @staticmethod
    def forward(ctx: Any, latent: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor, delta: float) -> torch.Tensor:
        pos, neg = latent > delta, latent < -delta
        ctx.save_for_backward(pos, neg, wp, wn)
        return wp * pos.to(latent.dtype) - wn * neg.to(latent.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        pos, neg, wp, wn = ctx.saved_tensors
        grad_wp = (grad * pos).sum().reshape(wp.shape)
        grad_wn = -(grad * neg).sum().reshape(wn.shape)
        grad_latent = torch.where(pos, wp * grad, torch.where(neg, wn * grad, grad))
        return grad_latent, grad_wp, grad_wn, None


def ttq_ternarize(latent: torch.Tensor, wp: torch.Tensor, wn: torch.Tensor, t: float = 0.05) -> torch.Tensor:
    """Ternary weights of TTQ, differentiable in ``latent``, ``wp`` and ``wn`` (see ``TTQFunction``)."""
    return TTQFunction.apply(latent, wp, wn, ttq_threshold(latent, t))


def ttq_init_scales(w: torch.Tensor, t: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial (Wp, Wn): the mean of the weights above Δ and of minus those below -Δ, where
    Δ = t·max|w| (so the ternary layer starts close to the float one)."""
    _check_tensor(w, "w")
    delta = _check_threshold(t) * w.abs().max()
    above, below = w[w > delta], -w[w < -delta]
    fallback = w.abs().mean()
    return (above.mean() if len(above) else fallback), (below.mean() if len(below) else fallback)


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
        return share_weights(model, bits, layers=layers)
    chosen = weight_layers(model, layers)
    for name, module in chosen.items():  # check every layer before changing any
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"layers: {name!r} is already quantized")
        check_finite(f"layer {name!r}'s weight", module.weight)
    for name, module in chosen.items():
        kept = fold_pruning_mask(module).weight.detach() != 0
        if method == "binary":
            p = BinaryWeight()
        elif method == "twn":
            p = TWNWeight()
        elif method == "ttq":
            p = TTQWeight(module.weight, t)
        else:
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
# linear (affine) quantization, per tensor and per channel — the same arithmetic as PyTorch's
# ----------------------------------------------------------------------------------------------


def int_range(bits: int) -> tuple[int, int]:
    """The signed ``bits``-bit integer range (qmin, qmax) = (-2**(bits-1), 2**(bits-1) - 1)."""
    check_bits("bits", bits, low=2)
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _reduce_dims(x, axis):
    if axis is None:
        return x.min(), x.max()
    if not isinstance(axis, int):
        raise TypeError(f"axis={axis!r} must be None (per tensor) or a dimension of the {x.ndim}-d tensor")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis!r} must be None (per tensor) or a dimension of the {x.ndim}-d tensor")
    moved = x.detach().movedim(axis, 0).reshape(x.shape[axis], -1)
    return moved.min(1).values, moved.max(1).values


def linear_qparams(
    x: torch.Tensor, bits: int = 8, symmetric: bool = False, axis: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Calibrate ``(scale, zero_point)`` from the min / max of ``x`` (per tensor, or per slice of
    dimension ``axis``), for signed ``bits``-bit integers — PyTorch's ``MinMaxObserver`` rule:
    the range always contains 0; symmetric ranges have zero_point 0."""
    _check_tensor(x, "x")
    return _linear_qparams(x, bits, symmetric, axis)


def _linear_qparams(x, bits, symmetric, axis):
    qmin, qmax = int_range(bits)
    lo, hi = _reduce_dims(x.detach().float(), axis)
    lo, hi = torch.clamp(lo, max=0), torch.clamp(hi, min=0)
    eps = torch.finfo(torch.float32).eps
    if symmetric:
        scale = torch.clamp(torch.maximum(-lo, hi) / ((qmax - qmin) / 2), min=eps)
        zero_point = torch.zeros_like(scale, dtype=torch.int64)
    else:
        scale = torch.clamp((hi - lo) / (qmax - qmin), min=eps)
        zero_point = torch.clamp(qmin - torch.round(lo / scale).to(torch.int64), qmin, qmax)
    return scale, zero_point


def _broadcast(v, x, axis):
    if axis is None:
        return v
    shape = [1] * x.ndim
    shape[axis] = -1
    return v.reshape(shape)


def quantize_linear(
    x: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | int, bits: int = 8, axis: int | None = None
) -> torch.Tensor:
    """Integers ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` (round half to even)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    check_finite("x", x)
    check_finite("scale", scale)
    return _quantize_linear(x, scale, zero_point, bits, axis)


def _quantize_linear(x, scale, zero_point, bits, axis):
    qmin, qmax = int_range(bits)
    scale = _broadcast(torch.as_tensor(scale, dtype=torch.float32), x, axis)
    zero_point = _broadcast(torch.as_tensor(zero_point, dtype=torch.int64), x, axis)
    return torch.clamp(torch.round(x.float() / scale).to(torch.int64) + zero_point, qmin, qmax)


def dequantize_linear(
    q: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | int, axis: int | None = None
) -> torch.Tensor:
    """Back to floats: ``(q - zero_point) * scale``."""
    scale = _broadcast(torch.as_tensor(scale, dtype=torch.float32), q, axis)
    zero_point = _broadcast(torch.as_tensor(zero_point, dtype=torch.int64), q, axis)
    return (q - zero_point).to(torch.float32) * scale


def torch_codes(
    x: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | int, bits: int = 8, axis: int | None = None
) -> torch.Tensor:
    """PyTorch's own integer codes of ``x`` (signed ``bits``-bit), to check ``quantize_linear`` against.

    Computed with ``torch.fake_quantize_per_tensor_affine`` / ``fake_quantize_per_channel_affine``
    (maintained operators: ``torch.quantize_per_tensor`` and the quantized dtypes are deprecated),
    which return ``(q − zero_point)·scale``; dividing by ``scale`` and rounding recovers ``q`` exactly.
    """
    qmin, qmax = int_range(bits)
    if axis is None:
        fq = torch.fake_quantize_per_tensor_affine(x.float(), float(scale), int(zero_point), qmin, qmax)
    else:
        scale = torch.as_tensor(scale, dtype=torch.float32)
        zero_point = torch.as_tensor(zero_point).to(torch.int32)
        fq = torch.fake_quantize_per_channel_affine(x.float(), scale, zero_point, axis, qmin, qmax)
    scale = _broadcast(torch.as_tensor(scale, dtype=torch.float32), x, axis)
    zero_point = _broadcast(torch.as_tensor(zero_point, dtype=torch.int64), x, axis)
    return torch.round(fq / scale).to(torch.int64) + zero_point


def fake_quantize(x: torch.Tensor, bits: int = 8, symmetric: bool = False, axis: int | None = None) -> torch.Tensor:
    """Quantize then dequantize ``x`` with min/max calibration on ``x`` itself (NaN / inf: ``ValueError``)."""
    _check_tensor(x, "x")
    return _fake_quantize(x, bits, symmetric, axis)


def _fake_quantize(x, bits, symmetric, axis):
    """``fake_quantize`` without the checks (``FakeLinearWeight``'s forward: no host sync per step)."""
    scale, zero_point = _linear_qparams(x, bits, symmetric, axis)
    return dequantize_linear(_quantize_linear(x, scale, zero_point, bits, axis), scale, zero_point, axis).to(x.dtype)


# ----------------------------------------------------------------------------------------------
# dynamic fixed point (Qiu et al., FPGA 2016): x ≈ q · 2^(-fl), q a signed `bits`-bit integer
# ----------------------------------------------------------------------------------------------


def fixed_point_codes(x: torch.Tensor, bits: int, frac_len: int) -> torch.Tensor:
    """Signed integer codes of ``x`` in fixed point with ``frac_len`` fractional bits (saturating)."""
    qmin, qmax = int_range(bits)
    return torch.clamp(torch.round(x * 2.0**frac_len), qmin, qmax)


def to_fixed_point(x: torch.Tensor, bits: int, frac_len: int) -> torch.Tensor:
    """``x`` rounded to the grid 2^(-frac_len) and saturated to the ``bits``-bit range."""
    check_bits("bits", bits, low=2, high=32)
    if isinstance(frac_len, bool) or not isinstance(frac_len, int):
        raise TypeError(f"frac_len={frac_len!r} must be an int (it may be negative)")
    return (fixed_point_codes(x, bits, frac_len) * 2.0**-frac_len).to(x.dtype)


def range_frac_len(x: torch.Tensor, bits: int) -> int:
    """The largest fractional length whose range holds every value of ``x``: nothing overflows."""
    qmin, qmax = int_range(bits)
    _check_tensor(x, "x")  # NaN / inf: no fixed-point format can hold them
    hi, lo = x.detach().max().item(), x.detach().min().item()
    limits = [math.log2(qmax / hi)] if hi > 0 else []
    limits += [math.log2(-qmin / -lo)] if lo < 0 else []
    fl = math.floor(min(limits)) if limits else bits - 1
    while hi > qmax * 2.0**-fl or lo < qmin * 2.0**-fl:  # guard against rounding in log2
        fl -= 1
    return fl


FRAC_SEARCH = (1, 4)  # candidates: range rule - 1 ... range rule + 4 fractional bits


def _check_search(search):
    rule = (
        f"search={search!r} must be a pair (below, above) of non-negative ints: the "
        "fractional lengths tried around the range rule; (0, 0) is the range rule alone"
    )
    if not isinstance(search, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) for s in search):
        raise TypeError(rule)
    if len(search) != 2 or any(s < 0 for s in search):
        raise ValueError(rule)
    return search


def frac_len_candidates(x: torch.Tensor, bits: int, search: tuple[int, int] = FRAC_SEARCH) -> list[int]:
    """The fractional lengths tried around the range rule: ``range_frac_len(x) - search[0]`` …
    ``range_frac_len(x) + search[1]``. Longer ones saturate the largest values but round the rest
    more finely; shorter ones never help ``x`` itself but can help a *target* it is compared with."""
    below, above = _check_search(search)
    start = range_frac_len(x, bits)
    return list(range(start - below, start + above + 1))


def fixed_point_error(x: torch.Tensor, bits: int, frac_len: int, target: torch.Tensor | None = None) -> float:
    """Qiu et al.'s criterion: Σ |target − fixed(x)| (``target`` defaults to ``x``)."""
    target = x if target is None else target
    return (to_fixed_point(x, bits, frac_len) - target).abs().sum().item()


def best_frac_len(
    x: torch.Tensor, bits: int, target: torch.Tensor | None = None, search: tuple[int, int] = FRAC_SEARCH
) -> int:
    """The fractional length among ``frac_len_candidates`` minimising Σ|target − fixed(x)| (Qiu et al.).

    ``target`` defaults to ``x``; with ``search=(0, 0)`` only the range rule is tried. Ties go to the
    shorter length (no saturation)."""
    candidates = frac_len_candidates(x, bits, search)
    errors = [fixed_point_error(x, bits, fl, target) for fl in candidates]
    return candidates[min(range(len(errors)), key=errors.__getitem__)]


def _output_names_in_order(model, x):
    """Names of the conv / linear layers in the order a forward pass calls them, and their outputs."""
    order, outputs = [], {}

    def recorder(name):
        def record(module, inputs, out):
            order.append(name)
            outputs[name] = out.detach()

        return record

    forward_with_hooks(model, x, {module: recorder(name) for name, module in weight_layers(model).items()})
    return order, outputs


def fixed_point_model(
    model: nn.Module, calib_x: torch.Tensor, bits: int, dynamic: bool = True, search: tuple[int, int] = FRAC_SEARCH
) -> tuple[nn.Module, dict]:
    """A copy of ``model`` in (dynamic) fixed point, and its plan of fractional lengths.

    **Static** (``dynamic=False``): one fractional length for every layer's weights and one for every
    activation, the range rule of the widest tensor (nothing overflows anywhere).
    **Dynamic** (Qiu et al.): every layer gets its own lengths, chosen greedily, layer by layer in
    forward order on ``calib_x``, with every earlier layer (weights *and* outputs) already in fixed
    point. For each layer the candidates around the range rule (``frac_len_candidates``, ``search``)
    are tried: first the weights' length, keeping the one whose layer output is closest to the float
    network's (Σ|error|), then the output's length, keeping the one closest to the float output.
    ``search=(0, 0)`` is the plain range rule (the search then decides nothing).
    Activations — the network input and every conv / linear output — are quantized by forward
    hooks; biases stay in float (they are added in the wide accumulator).

    Returns ``(qmodel, plan)``: ``plan["input"]`` the input's length and, per layer,
    ``plan[name] = {"weight": fl, "output": fl, "weight_range": fl, "output_range": fl}`` (the
    ``*_range`` entries are what the range rule alone would have chosen).
    """
    check_bits("bits", bits, low=2)
    _check_search(search)
    float_model = copy.deepcopy(model).eval()
    order, float_out = _output_names_in_order(float_model, calib_x)
    if not order:
        raise ValueError("fixed_point_model: the model has no conv or linear layer")
    qmodel = copy.deepcopy(model).eval()
    layers = weight_layers(qmodel)
    weights = {name: layers[name].weight.detach().clone() for name in order}
    plan = {}
    if not dynamic:
        wfl = min(range_frac_len(w, bits) for w in weights.values())
        afl = min([range_frac_len(calib_x, bits)] + [range_frac_len(o, bits) for o in float_out.values()])
        plan["input"] = afl
        with torch.no_grad():
            for name in order:
                layers[name].weight.copy_(to_fixed_point(weights[name], bits, wfl))
                layers[name].register_forward_hook(lambda m, i, out, fl=afl: to_fixed_point(out, bits, fl))
                plan[name] = {"weight": wfl, "output": afl, "weight_range": wfl, "output_range": afl}
        qmodel.register_forward_pre_hook(lambda m, args, fl=afl: (to_fixed_point(args[0], bits, fl),) + args[1:])
        return qmodel, plan
    plan["input"] = best_frac_len(calib_x, bits, search=search)
    qmodel.register_forward_pre_hook(lambda m, args, fl=plan["input"]: (to_fixed_point(args[0], bits, fl),) + args[1:])
    for name in order:  # greedy: earlier layers are already fixed point
        layer, w, target = layers[name], weights[name], float_out[name]
        errors = {}
        for fl in frac_len_candidates(w, bits, search):
            with torch.no_grad():
                layer.weight.copy_(to_fixed_point(w, bits, fl))
            errors[fl] = (_output_names_in_order(qmodel, calib_x)[1][name] - target).abs().sum().item()
        w_fl = min(errors, key=errors.get)
        with torch.no_grad():
            layer.weight.copy_(to_fixed_point(w, bits, w_fl))
        raw = _output_names_in_order(qmodel, calib_x)[1][name]
        out_fl = best_frac_len(raw, bits, target=target, search=search)
        layer.register_forward_hook(lambda m, i, out, fl=out_fl: to_fixed_point(out, bits, fl))
        plan[name] = {
            "weight": w_fl,
            "output": out_fl,
            "weight_range": range_frac_len(w, bits),
            "output_range": range_frac_len(raw, bits),
        }
    return qmodel, plan


@dataclass
class PlanRow:
    """One line of a fixed-point plan: the chosen fractional lengths and the range rule's."""

    layer: str
    weight_fl: int | None  # None for the network input (it has no weights)
    weight_rule: int | None  # what the range rule alone would have chosen
    output_fl: int
    output_rule: int | None  # None for the input: its length is not searched against a layer
    differs: str  # "weight", "output", "weight+output" or "" (where the search moved)


def plan_table(plan: dict) -> Rows:
    """The plan of ``fixed_point_model`` as a report: per layer, chosen vs range-rule lengths.

    ``differs`` names the formats where the search left the range rule (``.table()`` to print).
    """
    rows = Rows([PlanRow("input", None, None, plan["input"], None, "")])
    for name, entry in plan.items():
        if name == "input":
            continue
        moved = [k for k in ("weight", "output") if entry[k] != entry[f"{k}_range"]]
        rows.append(
            PlanRow(
                name, entry["weight"], entry["weight_range"], entry["output"], entry["output_range"], "+".join(moved)
            )
        )
    return rows


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
        check_bits("bits", bits, low=1 if method == "kmeans" else 2)
    if method == "linear":
        axis = 0 if per_channel and w.ndim > 1 else None
        scale, zp = linear_qparams(w, bits, axis=axis)
        q = quantize_linear(w, scale, zp, bits, axis)
        storage = {"codes": pack_bits(q - int_range(bits)[0], bits), "scale": scale, "zero_point": zp.to(torch.int16)}
        return dequantize_linear(q, scale, zp, axis), {**storage, "shape": shape}, bits
    if method == "fixed":
        fl = range_frac_len(w, bits)  # the range rule: nothing saturates
        q = fixed_point_codes(w, bits, fl).to(torch.int64)
        storage = {"codes": pack_bits(q - int_range(bits)[0], bits), "frac_len": torch.tensor(fl)}
        return q * 2.0**-fl, {**storage, "shape": shape}, bits
    if method == "kmeans":
        codebook, idx = kmeans_codebook(w, bits)
        return codebook[idx], {"codes": pack_bits(idx, bits), "codebook": codebook, "shape": shape}, bits
    if method == "binary":
        w_hat = binarize(w, "channel")
        codes = (w >= 0).to(torch.int64)
        alpha = w.abs().mean(dim=tuple(range(1, w.ndim))) if w.ndim > 1 else w.abs().mean()
        return w_hat, {"codes": pack_bits(codes, 1), "alpha": alpha, "shape": shape}, 1
    if method == "twn":
        w_hat, codes, _, alpha = twn_ternarize(w)
        return (
            w_hat,
            {"codes": pack_bits(codes.to(torch.int64) + 1, 2), "alpha": torch.tensor(alpha), "shape": shape},
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
        w_hat, storage, _ = encode_weights(module.weight, method, bits, t, per_channel)
        with torch.no_grad():
            module.weight.copy_(w_hat.reshape(module.weight.shape))
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


__all__ = [
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
