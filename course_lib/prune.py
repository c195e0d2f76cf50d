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
import warnings

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


def lowest_mask(scores, sparsity):
    """Bool mask that drops the ``round(sparsity · n)`` entries of lowest score (ties: lower index)."""
    sparsity = _check_fraction(sparsity, "sparsity")
    n = scores.numel()
    n_drop = int(round(sparsity * n))
    mask = torch.ones(n, dtype=torch.bool, device=scores.device)
    if n_drop:
        order = torch.argsort(scores.detach().flatten(), stable=True)
        mask[order[:n_drop]] = False
    return mask.view_as(scores)


def magnitude_mask(weight, sparsity):
    """Bool mask that drops the ``round(sparsity · n)`` weights of smallest ``|w|`` (ties: lower index)."""
    return lowest_mask(weight.detach().abs(), sparsity)


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
        keep = lowest_mask(flat, sparsity)
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
                set_mask(layers[name], lowest_mask(scores[name], s))
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


# --------------------------------------------------------------------------- storage formats

FORMATS = ("dense", "coo", "csr", "csr-relative")


def relative_indices(values, index_bits: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep Compression's relative index (Han, Mao & Dally 2016, Fig. 2) — the one implementation
    chapters 04 and 05 share.

    Each stored entry keeps its value and the **position difference** ``d`` to the previous stored
    entry (the first one counted from position −1), with ``1 ≤ d ≤ 2**index_bits``: a file stores
    ``d − 1`` (the number of zeros skipped) in ``index_bits`` bits. When the next non-zero is more
    than ``2**index_bits`` places away, a **filler zero** (value 0) is stored ``2**index_bits``
    places further on — in the paper's 3-bit example, after position 4 the filler lands at 12.

    ``values``: a tensor (or array-like), flattened. Returns ``(diffs, stored)``: ``diffs`` int64,
    ``stored`` the entries (fillers are 0), same length; entry k sits at ``diffs[:k + 1].sum() − 1``
    (:func:`decode_relative`). Trailing zeros cost nothing: the decoder knows the size.
    """
    if isinstance(index_bits, bool) or not isinstance(index_bits, (int, np.integer)) or not 1 <= index_bits <= 16:
        raise ValueError(f"index_bits={index_bits!r} must be an integer from 1 to 16")
    flat = (values.detach() if torch.is_tensor(values) else torch.as_tensor(np.asarray(values))).reshape(-1).cpu()
    span = 2 ** int(index_bits)                       # the largest difference one index can say
    positions = torch.nonzero(flat).flatten()
    run = torch.diff(positions, prepend=torch.tensor([-1])) # position differences, ≥ 1
    fillers = (run - 1) // span                       # fillers needed before each non-zero
    owner = torch.repeat_interleave(torch.arange(len(positions)), fillers + 1)
    is_last = torch.zeros(len(owner), dtype=torch.bool)
    is_last[torch.cumsum(fillers + 1, 0) - 1] = True
    diffs = torch.where(is_last, run[owner] - fillers[owner] * span, torch.full_like(owner, span))
    stored = torch.where(is_last, flat[positions][owner], torch.zeros((), dtype=flat.dtype))
    return diffs.to(torch.int64), stored


def decode_relative(gaps, stored, numel):
    """Inverse of ``relative_indices``: the dense 1-d tensor of length ``numel``."""
    out = torch.zeros(numel, dtype=stored.dtype)
    positions = torch.cumsum(gaps, 0) - 1
    out[positions] = stored
    return out


def _nbytes(t):
    return t.numel() * t.element_size()


def to_csr(weight):
    """``weight`` viewed as rows × (everything else), as a torch CSR tensor (beta warning silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return weight.reshape(weight.shape[0], -1).to_sparse_csr()


def storage_bytes(weight, fmt="csr", index_bits=5):
    """Real bytes of ``weight`` (float32 values) in a storage format, counted from real buffers.

    - ``dense``: every entry, 4 bytes each;
    - ``coo``: ``torch.Tensor.to_sparse()`` — int64 (row, col, ...) indices + values;
    - ``csr``: ``to_sparse_csr()`` of the weight viewed as rows × (everything else) — int64 row
      pointers + int64 column indices + values;
    - ``csr-relative``: values + ``index_bits``-bit gaps packed into bytes with ``numpy.packbits``,
      filler zeros included (Han et al. 2016 use 8 bits for conv, 5 for fc layers).
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} is unknown; choose one of {FORMATS}")
    w = weight.detach().cpu().float()
    if fmt == "dense":
        return _nbytes(w)
    if fmt == "coo":
        sp = w.to_sparse().coalesce()
        return _nbytes(sp.indices()) + _nbytes(sp.values())
    if fmt == "csr":
        sp = to_csr(w)
        return _nbytes(sp.crow_indices()) + _nbytes(sp.col_indices()) + _nbytes(sp.values())
    gaps, stored = relative_indices(w, index_bits)
    bits = (((gaps.numpy() - 1)[:, None] >> np.arange(index_bits)) & 1).astype(np.uint8)   # d − 1 in b bits
    return len(np.packbits(bits.flatten())) + stored.numpy().astype(np.float32).nbytes


def model_storage(model, index_bits=None):
    """``{fmt: bytes}`` summed over the conv/linear weights of ``model`` (8-bit gaps for conv,
    5-bit for fc unless ``index_bits`` is given)."""
    totals = dict.fromkeys(FORMATS, 0)
    for name, m in prunable_layers(model).items():
        w = m.weight.detach()
        bits = index_bits or (5 if isinstance(m, nn.Linear) else 8)
        for fmt in FORMATS:
            totals[fmt] += storage_bytes(w, fmt, bits)
    return totals


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


def _weight_params(model, layers=None):
    found = prunable_layers(model)
    names = list(found) if layers is None else list(layers)
    _check_layers(model, names, "layers")
    return {n: (found[n].weight_orig if is_reparametrized(found[n]) else found[n].weight) for n in names}


def hessian_diagonal(model, data, exact=True, samples=64, layers=None, max_examples=None, seed=0,
                     max_exact=5000):
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
        raise ValueError(f"exact=True needs one backward pass per weight: {n_weights} weights > "
                         f"max_exact={max_exact}; use exact=False (Hutchinson) or fewer layers")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} must be a positive integer")
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


def obd_saliency(model, data, exact=False, samples=64, layers=None, max_examples=None, seed=0):
    """OBD saliency s_k = h_kk · w_k² / 2 (LeCun et al. 1989, eq. 4) for every conv/linear weight.

    The estimated loss increase when w_k alone is set to zero, assuming a diagonal Hessian, a
    trained minimum (zero gradient) and a quadratic loss. ``exact``: see ``hessian_diagonal``.
    """
    h = hessian_diagonal(model, data, exact, samples, layers, max_examples, seed)
    weights = _weight_params(model, list(h))
    return {name: h[name] * weights[name].detach() ** 2 / 2 for name in h}


def obd_prune(model, saliency, sparsity, scope="global"):
    """Mask the weights of lowest OBD saliency (global by default: saliencies are loss units)."""
    return prune_by_scores(model, saliency, sparsity, scope=scope)


# --------------------------------------------------------------------------- Han et al.: train, prune, retrain

def kept_schedule(final, steps):
    """Sparsity targets for ``steps`` rounds whose kept fraction shrinks geometrically to ``final``.

    ``final`` is a fraction or ``{layer: fraction}``; returns a list of the same kind.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")

    def at(s, k):
        return 1 - (1 - _check_fraction(s, "final")) ** (k / steps)

    if isinstance(final, dict):
        return [{n: at(s, k) for n, s in final.items()} for k in range(1, steps + 1)]
    return [at(final, k) for k in range(1, steps + 1)]


def iterative_prune(model, train_data, test_data, targets, epochs=1, lr=0.01, progress=False, **fit_kwargs):
    """Han et al.'s loop: for each target, prune by magnitude (without retraining: measure), then
    retrain with the masks kept by ``keep_masks``. ``targets``: list of fractions or per-layer dicts.

    Returns one row per round: target, sparsity, accuracy after pruning and after retraining.
    """
    from .train import evaluate, fit

    rows = []
    for k, target in enumerate(targets, 1):
        if isinstance(target, dict):
            magnitude_prune(model, 0.0, per_layer=target)
        else:
            magnitude_prune(model, target)
        pruned_acc = evaluate(model, test_data)
        fit(model, train_data, None, epochs, lr=lr, progress=progress, after_step=keep_masks(model), **fit_kwargs)
        rows.append({"round": k, "sparsity": sparsity(model), "compression": compression_ratio(model),
                     "acc_pruned": pruned_acc, "acc_retrained": evaluate(model, test_data)})
    return rows


# --------------------------------------------------------------------------- sensitivity

@torch.no_grad()
def sensitivity_scan(model, data, sparsities, layers=None):
    """Accuracy when ONE layer at a time is magnitude-pruned to each sparsity (no retraining).

    Returns ``{"baseline": acc, "sparsities": [...], "layers": {name: [acc per sparsity]}}``.
    The model is left unchanged.
    """
    from .train import evaluate

    sparsities = [_check_fraction(s, "sparsities[i]") for s in sparsities]
    net = make_permanent(copy.deepcopy(model))
    found = prunable_layers(net)
    names = list(found) if layers is None else list(layers)
    _check_layers(net, names, "layers")
    result = {"baseline": evaluate(net, data), "sparsities": sparsities, "layers": {}}
    for name in names:
        w = found[name].weight
        saved = w.detach().clone()
        accs = []
        for s in sparsities:
            w.mul_(magnitude_mask(saved, s))
            accs.append(evaluate(net, data))
            w.copy_(saved)
        result["layers"][name] = accs
    return result


def choose_sparsities(scan, tolerance):
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

CHAIN_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d,
               nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)


def _chain(model):
    """The leaf modules of a plain feed-forward chain (nested ``nn.Sequential``s), in order."""
    leaves = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Sequential):
            continue
        if not isinstance(m, CHAIN_TYPES):
            raise TypeError(f"prune_channels handles plain chains of conv/BN/activation/pool/linear in "
                            f"nn.Sequential; {name!r} is a {type(m).__name__} (residual and other "
                            "multi-branch blocks need their own channel bookkeeping)")
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            raise TypeError(f"prune_channels: {name!r} is a grouped conv (groups={m.groups}); only groups=1")
        leaves.append((name, m))
    return leaves


def channel_plan(model, amount):
    """``{conv name: sorted indices of the filters kept}``: in every conv that feeds another conv
    or the classifier, drop the ``round(amount · filters)`` filters of smallest L1 norm (Li et al.)."""
    amount = _check_fraction(amount, "amount")
    chain = _chain(model)
    convs = [(n, m) for n, m in chain if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("prune_channels: the model has no Conv2d layer")
    plan = {}
    for name, conv in convs:
        norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))
        n_keep = max(1, conv.out_channels - int(round(amount * conv.out_channels)))
        plan[name] = torch.sort(torch.argsort(norms, descending=True, stable=True)[:n_keep]).values
    return plan


def _consumers(chain):
    """For each conv: the BN that normalizes its output and the next conv/linear that reads it."""
    links, current = {}, None
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


def _linear_columns(linear, channels, keep):
    """Columns of ``linear`` that read the kept channels after a flatten of channels × H × W."""
    if linear.in_features % channels:
        raise TypeError(f"prune_channels: a Linear with {linear.in_features} inputs cannot read "
                        f"{channels} flattened channels")
    per = linear.in_features // channels
    return (keep[:, None] * per + torch.arange(per)).flatten()


@torch.no_grad()
def mask_channels(model, amount):
    """A copy of ``model`` whose dropped filters are zeroed (conv weight and bias, BN scale and shift),
    so those channels are exactly zero after BN: the same function as ``prune_channels``' output."""
    net = make_permanent(copy.deepcopy(model))
    plan = channel_plan(net, amount)
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


def _replace(model, name, new):
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


@torch.no_grad()
def prune_channels(model, amount):
    """L1-norm filter pruning (Li et al. 2017) with real removal ("thinning").

    Each conv loses the ``amount`` fraction of its filters with the smallest L1 norm; the BN after it
    and the input channels of the next conv (or the classifier's columns) go with them. Returns a new,
    physically smaller dense model; ``model`` is unchanged. Its output equals ``mask_channels``'s.
    """
    net = make_permanent(copy.deepcopy(model)).cpu()
    device = next(model.parameters()).device
    plan = channel_plan(net, amount)
    modules = dict(net.named_modules())
    in_keep = {}                                    # conv/linear name -> kept input channels/columns
    links = _consumers(_chain(net))
    for name, link in links.items():
        keep = plan[name]
        if link["next"] is not None:
            nxt_name, nxt = link["next"]
            in_keep[nxt_name] = keep if isinstance(nxt, nn.Conv2d) else \
                _linear_columns(nxt, modules[name].out_channels, keep)
    for name, link in links.items():
        old, keep = modules[name], plan[name]
        ins = in_keep.get(name, torch.arange(old.in_channels))
        new = nn.Conv2d(len(ins), len(keep), old.kernel_size, old.stride, old.padding, old.dilation,
                        bias=old.bias is not None, padding_mode=old.padding_mode)
        new.weight.copy_(old.weight[keep][:, ins])
        if old.bias is not None:
            new.bias.copy_(old.bias[keep])
        _replace(net, name, new)
        if link["bn"] is not None:
            bn_name, bn = link["bn"]
            new_bn = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                                    track_running_stats=bn.track_running_stats)
            for attr in ("weight", "bias", "running_mean", "running_var"):
                if getattr(bn, attr) is not None:
                    getattr(new_bn, attr).copy_(getattr(bn, attr)[keep])
            if bn.num_batches_tracked is not None:
                new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
            _replace(net, bn_name, new_bn)
    for name, cols in in_keep.items():
        old = modules[name]
        if isinstance(old, nn.Linear):
            new = nn.Linear(len(cols), old.out_features, bias=old.bias is not None)
            new.weight.copy_(old.weight[:, cols])
            if old.bias is not None:
                new.bias.copy_(old.bias)
            _replace(net, name, new)
    net.train(model.training)
    return net.to(device)


# --------------------------------------------------------------------------- widget state functions

def sparsity_state_fn(model, data, max_examples=None):
    """``state(layer, sparsity)`` for the sparsity-slider explorer: every conv/linear layer is
    magnitude-pruned to ``sparsity`` (no retraining); the state holds the chosen layer's weights,
    threshold and mask, the accuracy, and the real bytes of the weights in each storage format."""
    from .train import evaluate

    base = make_permanent(copy.deepcopy(model)).eval()
    names = list(prunable_layers(base))
    x, y = _examples(data, max_examples)

    def state(layer, sparsity):
        if layer not in names:
            raise ValueError(f"layer={layer!r} is not a conv/linear layer; choose one of {names}")
        if not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity={sparsity!r} must be a fraction in [0, 1): pruning every "
                             "weight leaves no network")
        net = copy.deepcopy(base)
        magnitude_prune(net, float(sparsity))
        make_permanent(net)
        w = prunable_layers(base)[layer].weight.detach()
        kept = masks(net)[layer]
        dropped = w.abs()[~kept]
        return {"layer": layer, "sparsity": float(sparsity),
                "weights": w.flatten().cpu().numpy(),
                "threshold": float(dropped.max()) if dropped.numel() else 0.0,
                "mask": kept.reshape(kept.shape[0], -1).cpu().numpy(),
                "accuracy": evaluate(net, [(x, y)]), "bytes": model_storage(net),
                "compression": compression_ratio(net)}
    return state


def draw_sparsity(state, fig):
    """Histogram of the layer's weights with ±threshold, and its mask (kept = dark)."""
    ax_hist, ax_mask = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    ax_hist.hist(state["weights"], bins=80, color="#4477aa")
    for t in (-state["threshold"], state["threshold"]):
        ax_hist.axvline(t, color="#cc3311", lw=1.5)
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("weight value")
    ax_hist.set_title(f"layer {state['layer']}: |w| ≤ {state['threshold']:.3g} pruned")
    ax_mask.imshow(state["mask"], aspect="auto", cmap="Greys", interpolation="nearest")
    ax_mask.set_title(f"mask of layer {state['layer']} ({100 * state['mask'].mean():.1f}% kept)")
    ax_mask.set_xlabel("input (flattened)")
    ax_mask.set_ylabel("output")
    fig.tight_layout()


def sparsity_readout(state):
    b = state["bytes"]
    return (f"accuracy without retraining <b>{100 * state['accuracy']:.2f}%</b> · "
            f"{state['compression']:.1f}× fewer weights · weights: dense {b['dense'] / 1024:.0f} KiB, "
            f"CSR {b['csr'] / 1024:.0f} KiB, CSR relative {b['csr-relative'] / 1024:.0f} KiB")


def sensitivity_state_fn(scans, sizes):
    """``state(model, tolerance_pt)`` for the sensitivity explorer: ``scans[model]`` is a
    ``sensitivity_scan`` result, ``sizes[model]`` ``{layer: weights}``. Each layer gets the largest
    sparsity whose drop ≤ tolerance; the state holds the curves, choices and resulting kept weights."""
    def state(model, tolerance_pt):
        if model not in scans:
            raise ValueError(f"model={model!r} has no scan; choose one of {sorted(scans)}")
        if not isinstance(tolerance_pt, (int, float)) or not 0 <= tolerance_pt <= 100:
            raise ValueError(f"tolerance_pt={tolerance_pt!r} must be an accuracy drop in points, 0 to 100")
        scan = scans[model]
        chosen = choose_sparsities(scan, tolerance_pt / 100)
        weights = sizes[model]
        kept = sum(weights[n] * (1 - chosen[n]) for n in chosen)
        return {"model": model, "scan": scan, "chosen": chosen, "tolerance_pt": tolerance_pt,
                "kept": kept, "total": sum(weights.values())}
    return state


def draw_sensitivity(state, fig):
    ax = fig.subplots()
    scan = state["scan"]
    xs = [100 * s for s in scan["sparsities"]]
    for name, accs in scan["layers"].items():
        line, = ax.plot(xs, [100 * a for a in accs], "o-", ms=3, label=f"{name} → {100 * state['chosen'][name]:.0f}%")
        ax.axvline(100 * state["chosen"][name], color=line.get_color(), ls=":", lw=1)
    ax.axhline(100 * scan["baseline"] - state["tolerance_pt"], color="k", ls="--", lw=1, label="tolerance")
    ax.set_xlabel("sparsity of that one layer (%)")
    ax.set_ylabel("accuracy, no retraining (%)")
    ax.set_title(f"{state['model']}: per-layer sensitivity")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()


def sensitivity_readout(state):
    return (f"chosen per-layer sparsities keep {state['kept']:.0f} of {state['total']} weights "
            f"(<b>{state['total'] / max(state['kept'], 1):.1f}×</b> fewer) before retraining")


# --------------------------------------------------------------------------- exercise checkers

from .checks import checker, expect_close, expect_equal, expect_true   # noqa: E402


@checker("OBD saliency")
def check_obd_saliency(fn):
    """``fn(weight, hessian_diag)`` → tensor of saliencies h_kk · w_k² / 2."""
    g = torch.Generator().manual_seed(3)
    for shape in ((5,), (4, 3)):
        w, h = torch.randn(shape, generator=g), torch.rand(shape, generator=g) + 0.1
        got = fn(w.clone(), h.clone())
        expect_true(torch.is_tensor(got), f"return a tensor, got {type(got).__name__}")
        expect_close(got, h * w ** 2 / 2, f"saliency for shape {shape}")


@checker("magnitude mask")
def check_magnitude_mask(fn):
    """``fn(weight, sparsity)`` → bool mask keeping the (1 - sparsity) largest |w|."""
    g = torch.Generator().manual_seed(4)
    for shape, s in (((10,), 0.3), ((8, 6), 0.75), ((4, 3, 2), 0.5), ((7,), 0.0)):
        w = torch.randn(shape, generator=g)
        got = fn(w.clone(), s)
        expect_true(torch.is_tensor(got) and got.dtype == torch.bool and got.shape == w.shape,
                    f"return a bool tensor shaped like the weight {tuple(w.shape)}")
        expect_equal(int(got.sum()), w.numel() - int(round(s * w.numel())), f"kept count at sparsity {s}")
        expect_true(torch.equal(got, magnitude_mask(w, s)),
                    f"at sparsity {s} the kept weights must be those of largest |w| (magnitude, not value)")


@checker("CSR bytes")
def check_csr_bytes(fn):
    """``fn(matrix)`` → bytes of CSR with int32 row pointers and column indices, float32 values."""
    g = torch.Generator().manual_seed(5)
    for rows, cols, density in ((6, 8, 0.3), (10, 4, 0.0), (3, 50, 0.9)):
        w = torch.randn(rows, cols, generator=g) * (torch.rand(rows, cols, generator=g) < density)
        sp = to_csr(w)
        expected = 4 * sp.crow_indices().numel() + 4 * sp.col_indices().numel() + 4 * sp.values().numel()
        expect_equal(fn(w.clone()), expected, f"CSR bytes of a {rows}×{cols} matrix with {int((w != 0).sum())} non-zeros")


def reference_obd_linear(x, weight):
    """OBD saliency of every weight of a linear layer y = x Wᵀ + b under E = ½·mean_n ‖y_n − t_n‖²:
    h_ij = ∂²E/∂W_ij² = mean_n x_nj² (the same for every output i, independent of W and t)."""
    h = x.pow(2).mean(0).expand_as(weight)
    return h * weight ** 2 / 2


@checker("OBD saliency of a linear layer")
def check_obd_linear(fn):
    """``fn(x, weight) -> saliency`` (shape of ``weight``) for E = ½·mean_n ‖x_n Wᵀ + b − t_n‖²,
    compared with the exact Hessian diagonal from autograd (double backward)."""
    g = torch.Generator().manual_seed(6)
    for n, d_in, d_out in ((16, 3, 2), (40, 7, 5), (1, 4, 3)):
        x = torch.randn(n, d_in, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, d_in, dtype=torch.float64)
        layer = nn.Linear(d_in, d_out).double()
        targets = torch.randn(n, d_out, generator=g, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(d_out, d_in, generator=g, dtype=torch.float64))
        loss_fn = lambda out, t: 0.5 * (out - t).pow(2).sum(1).mean()
        loss = loss_fn(layer(x), targets)
        (grad,) = torch.autograd.grad(loss, layer.weight, create_graph=True)
        grad = grad.flatten()
        h = torch.stack([torch.autograd.grad(grad[k], layer.weight, retain_graph=True)[0].flatten()[k]
                         for k in range(grad.numel())]).view_as(layer.weight)
        expected = h.detach() * layer.weight.detach() ** 2 / 2
        got = fn(x.clone(), layer.weight.detach().clone())
        expect_true(torch.is_tensor(got), f"return a tensor, got {type(got).__name__}")
        expect_close(got, expected, f"saliencies of a {d_out}×{d_in} layer on {n} examples (h from autograd)",
                     rtol=1e-6, atol=1e-9)


__all__ = [
    "PRUNABLE", "FORMATS", "CHAIN_TYPES", "prunable_layers", "is_reparametrized", "masks", "sparsity",
    "set_mask", "lowest_mask", "magnitude_mask", "prune_by_scores", "magnitude_prune", "keep_masks",
    "make_permanent", "remove_reparametrization", "load_pruned", "kept_table", "compression_ratio",
    "relative_indices", "decode_relative", "to_csr", "storage_bytes", "model_storage", "hessian_diagonal",
    "obd_saliency", "obd_prune", "kept_schedule", "iterative_prune", "sensitivity_scan", "choose_sparsities",
    "channel_plan", "mask_channels", "prune_channels", "sparsity_state_fn", "draw_sparsity",
    "sparsity_readout", "sensitivity_state_fn", "draw_sensitivity", "sensitivity_readout",
    "check_obd_saliency", "check_magnitude_mask", "check_csr_bytes", "reference_obd_linear",
    "check_obd_linear",
]
