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
        ``unshare_weights(model)`` bakes ``codebook[indices]`` back into plain weights.
    ``pack_bits(indices, bits)`` / ``unpack_bits(packed, bits, n)``: indices stored at ``bits`` bits
        each in a uint8 tensor, so a real serialized file (``measure.file_bytes``) shows the saving.
    ``shared_state_dict(model)``: the compact state (packed indices + codebooks + other tensors).

Bit widths outside 1..16 raise ``ValueError``.
"""

import math

import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
KMEANS_INITS = ("linear", "density", "random")


# ----------------------------------------------------------------------------------------------
# argument checks shared by every quantizer
# ----------------------------------------------------------------------------------------------

def check_bits(bits, name="bits", low=1, high=16):
    """``bits`` must be an int in [low, high]; a clear ``ValueError`` otherwise."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not low <= bits <= high:
        raise ValueError(f"{name}={bits!r} must be an integer number of bits between {low} and {high}")
    return bits


def _check_tensor(weights, name="weights"):
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(weights).__name__}")
    if not weights.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {weights.dtype}")
    if weights.numel() == 0:
        raise ValueError(f"{name} is empty")


# ----------------------------------------------------------------------------------------------
# k-means weight sharing
# ----------------------------------------------------------------------------------------------

def _initial_centroids(values, k, init, generator):
    if init == "linear":            # Deep Compression's choice: keeps the rare large weights
        return torch.linspace(values.min().item(), values.max().item(), k, dtype=values.dtype)
    if init == "density":           # quantiles of the CDF: many centroids where weights are dense
        return torch.quantile(values, torch.linspace(0, 1, k, dtype=values.dtype))
    # Forgy: k weights drawn at random (with replacement only if there are fewer than k weights)
    if len(values) >= k:
        pick = torch.randperm(len(values), generator=generator)[:k]
    else:
        pick = torch.randint(len(values), (k,), generator=generator)
    return values[pick].sort().values


def nearest_centroid(values, codebook):
    """Index of the nearest entry of a *sorted* 1-d ``codebook`` for every value (ties go low).

    In 1-d the clusters are intervals between midpoints of neighbouring centroids, so a binary
    search (``torch.bucketize``) replaces the n x k distance matrix.
    """
    midpoints = (codebook[1:] + codebook[:-1]) / 2
    return torch.bucketize(values, midpoints, right=False)


def kmeans_codebook(weights, bits, init="linear", iters=30, mask=None, seed=0):
    """Cluster the values of ``weights`` into ``2**bits`` shared values (Lloyd's algorithm in 1-d).

    Returns ``(codebook, indices)``: ``codebook`` is a sorted float tensor of ``2**bits`` centroids
    (dtype of ``weights``), ``indices`` a long tensor of the shape of ``weights`` such that
    ``codebook[indices]`` is the quantized tensor. With a boolean ``mask`` only the weights where it
    is True are clustered (pruned weights stay out of the statistics); the indices of the others
    point at their nearest centroid but carry no meaning. Empty clusters keep their centroid.
    """
    _check_tensor(weights)
    check_bits(bits)
    if init not in KMEANS_INITS:
        raise ValueError(f"init={init!r} is unknown; choose one of {KMEANS_INITS}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters={iters!r} must be a non-negative integer")
    flat = weights.detach().reshape(-1).to(torch.float64)
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.shape != weights.shape:
            raise ValueError(f"mask must be a boolean tensor of the weights' shape {tuple(weights.shape)}")
        values = flat[mask.reshape(-1).to(torch.bool)]
    else:
        values = flat
    k = 2 ** bits
    if values.numel() == 0:          # everything masked out: any codebook rebuilds the zeros
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

    def __init__(self, codebook, indices, mask=None):
        super().__init__()
        self.codebook = nn.Parameter(codebook.detach().clone())
        self.register_buffer("indices", indices.detach().clone())
        self.register_buffer("mask", None if mask is None else mask.detach().to(torch.bool).clone())

    @property
    def bits(self):
        return max(1, math.ceil(math.log2(len(self.codebook))))

    def forward(self, original):
        weight = self.codebook[self.indices]
        if self.mask is not None:
            weight = weight * self.mask
        return weight.to(original.dtype)


def _named_quantizable(model, layers=None, types=QUANTIZABLE):
    found = {name: m for name, m in model.named_modules() if isinstance(m, types)}
    if layers is None:
        return found
    if isinstance(layers, str):
        layers = [layers]
    chosen = {}
    for name in layers:
        if name not in found:
            kind = type(dict(model.named_modules()).get(name)).__name__ if name in dict(model.named_modules()) else None
            why = f"is a {kind}, not a conv/linear layer" if kind else "is not a layer of the model"
            raise ValueError(f"layers: {name!r} {why}; quantizable layers are {sorted(found)}")
        chosen[name] = found[name]
    return chosen


def share_weights(model, bits, init="linear", layers=None, train_others=True, iters=30, seed=0):
    """Replace the weight of each conv / linear layer by shared weights, in place; returns ``model``.

    ``bits``: one int for every layer, or ``{layer name: bits}`` (e.g. 8 for convs, 5 for fully
    connected layers as in Deep Compression); ``layers``: names to convert (default: all, or the
    keys of a ``bits`` dict). Weights that are exactly zero (pruned) stay zero and out of the
    clustering. With ``train_others=False`` every other parameter is frozen, so ``fit`` trains
    only the centroids.
    """
    if isinstance(bits, dict):
        for name, b in bits.items():
            check_bits(b, f"bits[{name!r}]")
        layers = list(bits) if layers is None else layers
    else:
        check_bits(bits)
    chosen = _named_quantizable(model, layers)
    if not chosen:
        raise ValueError("share_weights: the model has no conv or linear layer to share")
    for name, module in chosen.items():
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"layers: {name!r} already has a weight parametrization; "
                             "call unshare_weights(model) first")
        layer_bits = bits[name] if isinstance(bits, dict) else bits
        weight = module.weight.detach()
        mask = weight != 0
        codebook, indices = kmeans_codebook(weight, layer_bits, init=init, iters=iters, mask=mask, seed=seed)
        parametrize.register_parametrization(
            module, "weight", SharedWeights(codebook, indices, None if bool(mask.all()) else mask))
        module.parametrizations.weight.original.requires_grad_(False)   # the float copy is frozen
    if not train_others:
        shared = {id(p) for p in (m.parametrizations.weight[0].codebook for m in chosen.values())}
        for p in model.parameters():
            if id(p) not in shared:
                p.requires_grad_(False)
    return model


def _shared_layers(model):
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            first = module.parametrizations.weight[0]
            if isinstance(first, SharedWeights):
                yield name, module, first


def codebooks(model):
    """``{layer name: (codebook, indices)}`` of every shared-weight layer (detached copies)."""
    return {name: (p.codebook.detach().clone(), p.indices.clone()) for name, _, p in _shared_layers(model)}


def unshare_weights(model):
    """Bake ``codebook[indices]`` into plain weights and remove the parametrizations; returns ``model``."""
    for _, module, _ in list(_shared_layers(model)):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        module.weight.requires_grad_(True)
    return model


def pack_bits(indices, bits):
    """Store non-negative integers < 2**bits at ``bits`` bits each, little-endian, in a uint8 tensor."""
    check_bits(bits)
    flat = indices.reshape(-1).to(torch.int64).cpu()
    if flat.numel() and (flat.min() < 0 or flat.max() >= 2 ** bits):
        raise ValueError(f"indices must lie in [0, 2**bits) = [0, {2 ** bits}) to be packed at bits={bits}")
    shifts = torch.arange(bits, dtype=torch.int64)
    bit_stream = ((flat[:, None] >> shifts) & 1).reshape(-1)             # bits of each index, LSB first
    pad = (-len(bit_stream)) % 8
    bit_stream = torch.cat([bit_stream, bit_stream.new_zeros(pad)]).reshape(-1, 8)
    return (bit_stream << torch.arange(8, dtype=torch.int64)).sum(1).to(torch.uint8)


def unpack_bits(packed, bits, n):
    """Inverse of ``pack_bits``: the first ``n`` integers stored at ``bits`` bits each."""
    check_bits(bits)
    bit_stream = ((packed.to(torch.int64)[:, None] >> torch.arange(8)) & 1).reshape(-1)[: n * bits]
    return (bit_stream.reshape(n, bits) << torch.arange(bits, dtype=torch.int64)).sum(1)


def shared_state_dict(model):
    """The compact state of a shared-weight model: packed indices + codebook per shared layer,
    every other tensor as it is. ``measure.file_bytes(shared_state_dict(model))`` is the real size.
    """
    state = {}
    shared_names = set()
    for name, _, p in _shared_layers(model):
        prefix = f"{name}." if name else ""
        shared_names.add(f"{prefix}parametrizations.weight")
        state[f"{prefix}weight.codebook"] = p.codebook.detach().cpu().clone()
        state[f"{prefix}weight.indices"] = pack_bits(p.indices, p.bits)
        if p.mask is not None:                                     # pruned: 1 bit per weight
            state[f"{prefix}weight.mask"] = pack_bits(p.mask.to(torch.int64), 1)
    for key, value in model.state_dict().items():
        if not any(key.startswith(s) for s in shared_names):
            state[key] = value.detach().cpu().clone()
    return state
