"""Chapter 02 — integer formats: linear (affine) quantization and dynamic fixed point.

Linear (affine) quantization, equal to PyTorch's quantizer (``torch_codes``: ``torch.fake_quantize_per_tensor_affine``)
    ``int_range(bits)``, ``linear_qparams(x, bits, symmetric=False, axis=None)`` (min/max calibration,
    PyTorch's observer rule), ``quantize_linear``, ``dequantize_linear``, ``fake_quantize``.
Dynamic fixed point (Qiu et al., FPGA 2016)
    ``to_fixed_point(x, bits, frac_len)``, ``fixed_point_codes``, ``range_frac_len(x, bits)`` (the largest
    fractional length with no overflow), ``frac_len_candidates`` (the range rule and its neighbours),
    ``best_frac_len`` (least Σ|error|), and ``fixed_point_model(model, calib_x, bits, dynamic=True,
    search=(1, 4))`` -> (model, plan): a greedy layer-by-layer search of every layer's weight and
    output formats by measured output error (``plan_table(plan)`` shows where it left the range rule).

Every name here is also ``quant.X`` (the chapter's module re-exports it). Bit widths outside 2..16
raise ``ValueError``, a bit width that is not an int ``TypeError`` (``args.check_bits``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .args import check_bits, check_finite
from .report import Rows
from .surgery import forward_with_hooks, weight_layers

__all__ = [
    "FRAC_SEARCH",
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
]


# ----------------------------------------------------------------------------------------------
# the argument check every quantizer of the chapter shares (bit widths: args.check_bits)
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


def _weight(layer: nn.Module) -> torch.Tensor:
    """A conv / linear layer's weight tensor (``Module.__getattr__`` is typed as tensor *or* module)."""
    weight = layer.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(layer).__name__}.weight is not a tensor")
    return weight


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
    weights = {name: _weight(layers[name]).detach().clone() for name in order}
    plan: dict[str, Any] = {}
    if not dynamic:
        wfl = min(range_frac_len(w, bits) for w in weights.values())
        afl = min([range_frac_len(calib_x, bits)] + [range_frac_len(o, bits) for o in float_out.values()])
        plan["input"] = afl
        with torch.no_grad():
            for name in order:
                _weight(layers[name]).copy_(to_fixed_point(weights[name], bits, wfl))
                layers[name].register_forward_hook(lambda m, i, out, fl=afl: to_fixed_point(out, bits, fl))
                plan[name] = {"weight": wfl, "output": afl, "weight_range": wfl, "output_range": afl}
        qmodel.register_forward_pre_hook(lambda m, args, fl=afl: (to_fixed_point(args[0], bits, fl),) + args[1:])
        return qmodel, plan
    plan["input"] = best_frac_len(calib_x, bits, search=search)
    qmodel.register_forward_pre_hook(lambda m, args, fl=plan["input"]: (to_fixed_point(args[0], bits, fl),) + args[1:])
    for name in order:  # greedy: earlier layers are already fixed point
        layer, w, target = layers[name], weights[name], float_out[name]
        errors: dict[int, float] = {}
        for fl in frac_len_candidates(w, bits, search):
            with torch.no_grad():
                _weight(layer).copy_(to_fixed_point(w, bits, fl))
            errors[fl] = (_output_names_in_order(qmodel, calib_x)[1][name] - target).abs().sum().item()
        w_fl = min(errors, key=errors.__getitem__)
        with torch.no_grad():
            _weight(layer).copy_(to_fixed_point(w, bits, w_fl))
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
