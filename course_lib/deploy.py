"""Chapter 12: deployment — win accuracy back by distillation, leave PyTorch, and measure what is real.

Every earlier chapter counts MACs and bytes and times PyTorch *eager* models. This module answers
"I pruned / quantized it: why is it not faster?" with a real runtime, ONNX Runtime on the CPU.

Knowledge distillation (Hinton, Vinyals & Dean 2015), in ``course_lib.distill`` (re-exported here)
    ``soft_targets(logits, T)`` — softmax at temperature T; ``distillation_loss(student, teacher,
    labels, T, alpha)`` — α·T²·KL(p_T(teacher) ‖ p_T(student)) + (1 − α)·CE(student, labels), with
    PyTorch's ``F.kl_div`` (the T² keeps the soft term's gradients at the same scale for every T:
    they shrink as 1/T²); ``Distiller(student, teacher)`` — a module whose training forward returns
    ``(student logits, teacher logits)`` (the teacher frozen, in eval mode), so ``train.fit`` trains
    it with ``loss_fn=distillation_criterion(T, alpha)``; ``distil(student, teacher, train_data, ...)``
    does both (in place, returns the ``History``).
Export and run outside PyTorch
    ``export_onnx(model, path, input_size)`` — ``torch.onnx.export`` with the **TorchScript-based
    exporter** (``dynamo=False`` where torch has that switch, PyTorch ≥ 2.5): the dynamo exporter
    needs the ``onnxscript`` package, which the course does not pin. Opset 17, a dynamic batch
    dimension; pruning masks and shared weights are folded into plain weights first
    (``capstone.as_plain``). A model that does not export is a ``ValueError`` that says why.
    ``OnnxModel(path, threads=, provider=)`` — an ``onnxruntime.InferenceSession`` you call like a
    model (a tensor in, a tensor out; an input of the wrong shape is a ``ValueError`` naming the
    dimension and the rule), so ``measure.latency_rounds`` times it like any model;
    ``onnx_predict`` / ``onnx_evaluate`` (as ``train.predict`` / ``train.evaluate``);
    ``compare_outputs(model, onnx_model, x)`` — the largest difference against PyTorch's output.
Real int8
    ``quantize_int8(path, out, calibration)`` — ONNX Runtime's post-training *static* quantization
    (``onnxruntime.quantization.quantize_static``): QDQ format, per-channel int8 weights, uint8
    activations whose ranges come from the calibration images (MinMax, or entropy / percentile);
    ``op_counts(path)`` — the operators of a graph; ``layer_times(path, x)`` — per-node kernel time
    from ONNX Runtime's profiler (which kernel actually ran: ``QLinearConv``, ``QGemm``, ``Conv``…);
    ``cpu_int8_features()`` / ``int8_kernel_note()`` — the CPU flags that decide which int8 GEMM
    kernel ONNX Runtime's MLAS library picks (AMX, AVX512-VNNI, AVX-VNNI, AVX2…);
    ``qlinear_matmul_ort(...)`` — one ``QLinearMatMul`` node run by ONNX Runtime (the integer
    arithmetic of an int8 layer, as the runtime does it).
The honest latency table
    ``effective_macs(model, input_size)`` — MACs counting only non-zero weights;
    ``honest_row(technique, base, variant, x, cost_ratio=...)`` — the cost ratio next to the measured
    latency ratio in PyTorch eager and in ONNX Runtime (interleaved rounds, ``stats.timing_verdict``),
    with the mechanism of the gap; ``HonestTable`` (``.table()``) and ``draw_honest`` (ratio vs
    ratio, with the y = x line).
The explorer
    ``STACKS``, ``apply_stack(model, stack, calib_x)``, ``measure_cell(...)`` → ``Cell``;
    ``deploy_state`` / ``draw_deploy`` / ``deploy_readout`` / ``deploy_explorer``: pick a model and a
    technique stack → bytes, MACs, accuracy and latency in both runtimes (precomputed cells, or
    measured live when a cell is missing and a ``live`` function is given).
Exercises
    In ``course_lib.exercises.ch12``.

``onnx`` and ``onnxruntime`` are imported inside the functions that need them, so ``import course_lib``
stays fast. ONNX Runtime's CUDA provider exists only in the ``onnxruntime-gpu`` package, which the
course does not pin: ``OnnxModel(..., provider="cuda")`` says so when it is missing.

References: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", NeurIPS
workshop 2015; B. Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018; the ONNX specification (QuantizeLinear,
DequantizeLinear, QLinearMatMul) and ONNX Runtime's quantization documentation.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import logging
import os
import re
import statistics
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn

from . import capstone, config, lowrank, measure, prune, quant, stats, train
from .args import check_float, check_int
from .distill import Distiller, distil, distillation_criterion, distillation_loss, soft_targets
from .report import Rows, column
from .states import State
from .surgery import tensor_of, weight_layers

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.figure import Figure

    from .widgets import Explorer

OPSET = 17


# --------------------------------------------------------------------------- export and run


def _check_size(input_size: object) -> tuple[int, ...]:
    size = tuple(input_size) if isinstance(input_size, (tuple, list, torch.Size)) else None
    if (
        size is None
        or len(size) not in (3, 4)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(
            f"input_size={input_size!r} must be a tuple of positive ints: (C, H, W) for one image "
            "or (N, C, H, W) for a batch"
        )
    return size if len(size) == 4 else (1,) + size


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the exporters' and quantizer's chatter (tracer warnings, root-logger warnings)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def export_onnx(
    model: nn.Module, path: str | os.PathLike, input_size: tuple, *, opset: int = OPSET, dynamic_batch: bool = True
) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (returned as a ``Path``); ``model`` is unchanged.

    The model is exported as deployed: a plain copy in eval mode on the CPU (``capstone.as_plain``:
    pruning masks and shared weights folded into plain weights). ``input_size`` is (C, H, W) or
    (N, C, H, W); the graph's input is called ``input``, its output ``logits``, and the batch
    dimension is dynamic unless ``dynamic_batch=False``. The TorchScript-based exporter is used
    (``dynamo=False`` where torch has the switch; the dynamo exporter needs ``onnxscript``).
    ``ValueError`` when the input does not fit the model or the model does not export (an operator
    without an ONNX equivalent, e.g. ``torch.fft``), naming the cause.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    size = _check_size(input_size)
    check_int("opset", opset, 7)
    measure.check_not_meta(model, "exported (it has no weights)")
    plain = capstone.as_plain(model)
    x = torch.zeros(size)
    try:
        with torch.no_grad():
            plain(x)
    except (RuntimeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"input_size {size} does not fit the model ({first})") from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = dict(
        input_names=["input"], output_names=["logits"], opset_version=opset, do_constant_folding=True
    )
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    try:
        with _quiet():
            torch.onnx.export(plain, (x,), str(path), **kwargs)
    except Exception as err:  # torch.onnx's errors have no common base class
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"model {type(model).__name__} does not export to ONNX (opset {opset}): "
            f"{type(err).__name__}: {first}. A model exports when every operation of its "
            "forward has an ONNX equivalent and its control flow does not depend on the data"
        ) from err
    return path


def onnx_providers() -> list[str]:
    """The execution providers this ``onnxruntime`` build offers (``CUDAExecutionProvider`` only
    with the ``onnxruntime-gpu`` package)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxModel:
    """An ONNX file in an ONNX Runtime session, called like a model: ``onnx_model(x)`` → logits.

    ``threads``: the session's intra-op threads (default: PyTorch's, for a fair comparison);
    ``provider``: "cpu" or "cuda" (needs ``onnxruntime-gpu``). The input must have the exported
    input's rank and fixed dimensions (a ``ValueError`` names the dimension otherwise); a float64 or
    float16 tensor is converted to float32, anything else is a ``TypeError``.
    """

    def __init__(
        self, path: str | os.PathLike, *, threads: int | None = None, provider: str = "cpu", profile: bool = False
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"OnnxModel: {self.path} does not exist (write it with export_onnx)")
        if provider not in PROVIDERS:
            raise ValueError(f"provider={provider!r} must be one of {sorted(PROVIDERS)}")
        if PROVIDERS[provider] not in ort.get_available_providers():
            raise ValueError(
                f"provider={provider!r}: this onnxruntime has only {ort.get_available_providers()}; "
                "the CUDA provider comes with the onnxruntime-gpu package"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = check_int("threads", threads) if threads is not None else torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort-profile")
        self.threads, self.provider = options.intra_op_num_threads, provider
        self.session = ort.InferenceSession(str(self.path), options, providers=[PROVIDERS[provider]])
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape = tuple(d if isinstance(d, int) else str(d) for d in first.shape)

    @property
    def file_bytes(self) -> int:
        """Bytes of the ONNX file: the deployable artefact."""
        return self.path.stat().st_size

    def _array(self, x: object) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            if not x.is_floating_point():
                raise TypeError(f"x must be a floating-point tensor (images), got {x.dtype}")
            x = x.detach().cpu().float().numpy()
        elif isinstance(x, np.ndarray):
            if not np.issubdtype(x.dtype, np.floating):
                raise TypeError(f"x must be a floating-point array (images), got {x.dtype}")
            x = x.astype(np.float32, copy=False)
        else:
            raise TypeError(f"x must be a tensor or a NumPy array, got {type(x).__name__}")
        want = self.input_shape
        if x.ndim != len(want):
            raise ValueError(
                f"x has shape {tuple(x.shape)} but the exported model takes {len(want)}-d input "
                f"{want}: x must have {len(want)} dimensions"
            )
        for i, (got, expected) in enumerate(zip(x.shape, want)):
            if isinstance(expected, int) and got != expected:
                raise ValueError(
                    f"x has shape {tuple(x.shape)} but the exported model takes {want}: "
                    f"dimension {i} must be {expected}, not {got}"
                )
        return np.ascontiguousarray(x)

    def run(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """The first output as a NumPy array."""
        return self.session.run(None, {self.input_name: self._array(x)})[0]

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.run(x))

    def __repr__(self) -> str:
        return f"OnnxModel({self.path.name}, input {self.input_shape}, {self.provider}, threads={self.threads})"


def onnx_predict(onnx_model: OnnxModel, data: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted classes, labels)`` of every ``(x, y)`` batch of ``data`` (as ``train.predict``;
    in the dry run at most ``config.DRY_RUN_EVAL_BATCHES`` batches)."""
    if not isinstance(onnx_model, OnnxModel):
        raise TypeError(f"onnx_model must be an OnnxModel, got {type(onnx_model).__name__}")
    if config.dry_run():
        data = itertools.islice(data, config.DRY_RUN_EVAL_BATCHES)
    predicted, labels = [], []
    for x, y in data:
        predicted.append(onnx_model(x).argmax(1))
        labels.append(y.cpu())
    if not labels:
        raise ValueError("onnx_predict got no examples: the data is empty")
    return torch.cat(predicted), torch.cat(labels)


def onnx_evaluate(onnx_model: OnnxModel, data: Iterable) -> float:
    """Top-1 accuracy of an ``OnnxModel`` over the ``(x, y)`` batches of ``data``."""
    predicted, labels = onnx_predict(onnx_model, data)
    return (predicted == labels).float().mean().item()


@dataclass
class OutputCheck:
    """ONNX Runtime's output against PyTorch's on the same input."""

    max_abs: float  # largest |ort − torch|
    scale: float  # largest |torch|: what max_abs is small against
    same_class: float  # fraction of inputs with the same arg-max
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        """Every output within ``atol + rtol · scale`` (the stated tolerance)."""
        return self.max_abs <= self.atol + self.rtol * self.scale

    def line(self) -> str:
        return (
            f"max |ORT − torch| = {self.max_abs:.2e} (outputs up to {self.scale:.3g}; tolerance "
            f"{self.atol:g} + {self.rtol:g}·{self.scale:.3g}) · same class {100 * self.same_class:.1f}% → "
            f"{'equal within tolerance' if self.ok else 'NOT equal'}"
        )


def compare_outputs(
    model: nn.Module, onnx_model: OnnxModel, x: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5
) -> OutputCheck:
    """Run ``model`` (as deployed, ``capstone.as_plain``) and ``onnx_model`` on ``x`` and compare."""
    if not isinstance(onnx_model, OnnxModel):
        raise TypeError(f"onnx_model must be an OnnxModel, got {type(onnx_model).__name__}")
    check_float("rtol", rtol, 0.0)
    check_float("atol", atol, 0.0)
    with torch.no_grad():
        ref = train._logits(capstone.as_plain(model)(x.cpu())).float()
    got = onnx_model(x)
    if got.shape != ref.shape:
        raise ValueError(f"ONNX output {tuple(got.shape)} and PyTorch output {tuple(ref.shape)} differ in shape")
    same = (got.argmax(-1) == ref.argmax(-1)).float().mean().item() if ref.ndim > 1 else 1.0
    return OutputCheck(float((got - ref).abs().max()), float(ref.abs().max()), same, rtol, atol)


# --------------------------------------------------------------------------- real int8

ACTIVATION_TYPES = ("uint8", "int8")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def _calibration_arrays(calibration: object, batch: int = 64) -> list[np.ndarray]:
    """Float32 arrays of at most ``batch`` images from a tensor of images or an iterable of batches."""
    if isinstance(calibration, torch.Tensor):
        if calibration.ndim != 4 or not calibration.is_floating_point():
            raise ValueError(
                f"calibration must be a float tensor of images (N, C, H, W), got "
                f"{calibration.dtype} {tuple(calibration.shape)}"
            )
        xs = list(calibration.split(batch))
    elif isinstance(calibration, Iterable) and not isinstance(calibration, (str, bytes)):
        xs = [b[0] if isinstance(b, (tuple, list)) else b for b in calibration]
        if not all(isinstance(x, torch.Tensor) and x.ndim == 4 for x in xs):
            raise TypeError("calibration must be a tensor of images or batches (x or (x, y)) of 4-d image tensors")
    else:
        raise TypeError(
            f"calibration must be a tensor of images or an iterable of batches, got {type(calibration).__name__}"
        )
    if not xs or sum(len(x) for x in xs) == 0:
        raise ValueError("calibration holds no images: static quantization needs at least one to set the ranges")
    return [x.detach().cpu().float().numpy() for x in xs]


def quantize_int8(
    path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: torch.Tensor | Iterable,
    *,
    per_channel: bool = True,
    activations: str = "uint8",
    method: str = "minmax",
    op_types: Sequence[str] | None = None,
    nodes: Sequence[str] | None = None,
) -> Path:
    """Post-training static int8 quantization of the ONNX file ``path`` into ``out_path`` (returned).

    ONNX Runtime's ``quantize_static`` in the QDQ format: every quantized tensor gets a
    ``QuantizeLinear → DequantizeLinear`` pair, which ONNX Runtime fuses with the operator between
    into an integer kernel (``QLinearConv``, ``QGemm``…). Weights: int8, symmetric, one scale per
    output channel (``per_channel``) or per tensor. Activations: ``activations`` ("uint8" asymmetric,
    or "int8"), their ranges measured on ``calibration`` (a tensor of images or batches ``x`` /
    ``(x, y)``) with ``method`` ("minmax", "entropy" or "percentile"). ``op_types`` / ``nodes``
    restrict what is quantized (default: every supported operator). The graph is first prepared
    with ONNX Runtime's ``quant_pre_process`` (shape inference, constant folding), as its
    documentation advises.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"quantize_int8: {path} does not exist (write it with export_onnx)")
    if activations not in ACTIVATION_TYPES:
        raise ValueError(f"activations={activations!r} must be one of {ACTIVATION_TYPES}")
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method={method!r} must be one of {CALIBRATION_METHODS}")
    if not isinstance(per_channel, bool):
        raise TypeError(f"per_channel={per_channel!r} must be a bool")
    arrays = _calibration_arrays(calibration)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(arrays)

        def get_next(self) -> dict | None:
            x = next(self.batches, None)
            return None if x is None else {"input": x}

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[method],
            op_types_to_quantize=list(op_types) if op_types is not None else None,
            nodes_to_quantize=list(nodes) if nodes is not None else None,
            extra_options={"ActivationSymmetric": activations == "int8"},
        )
    return out_path


def op_counts(path: str | os.PathLike) -> dict[str, int]:
    """``{operator type: count}`` of the nodes of an ONNX graph (e.g. how many ``QuantizeLinear``)."""
    import onnx

    return dict(Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node))


@dataclass
class NodeTime:
    """One node of ONNX Runtime's profile: the layer it belongs to, the kernel that ran, its time."""

    layer: str  # the PyTorch module path (``features.0.0``), or the node's name
    op: str  # the kernel ONNX Runtime ran (Conv, QLinearConv, QGemm, QuantizeLinear…)
    seconds: float  # median time of the node per run


def _layer_of(node: str) -> str:
    name = re.sub(r"(_token_\d+)?_kernel_time$", "", node)
    parts = [p for p in name.split("/") if p]
    return parts[-2] if len(parts) >= 2 else name


def layer_times(path: str | os.PathLike, x: torch.Tensor, runs: int = 20, threads: int = 1) -> Rows:
    """Per-node kernel time of the ONNX file ``path`` on input ``x``, from ONNX Runtime's profiler:
    ``report.Rows`` of ``NodeTime`` (median over ``runs`` runs after one warm-up), in graph order.
    The ``op`` column shows the kernel that really ran after ONNX Runtime's fusions; a fused node
    keeps the name of its last module (fp32: conv ``0`` + ReLU ``2`` run as one ``Conv`` named ``2``;
    int8: the ``QLinearConv`` keeps the conv's name, the ReLU being folded into its output range)."""
    runs = check_int("runs", runs)
    model = OnnxModel(path, threads=threads, profile=True)
    model(x)
    for _ in range(runs):
        model(x)
    events = json.loads(Path(model.session.end_profiling()).read_text())
    times: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            times.setdefault(e["name"], []).append(e["dur"] * 1e-6)
            ops[e["name"]] = e.get("args", {}).get("op_name", "?")
    rows = Rows()
    for name, t in times.items():
        per_run = t[-runs:] if len(t) > runs else t
        rows.append(NodeTime(_layer_of(name), ops[name], statistics.median(per_run)))
    return rows


INT8_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
    "asimddp",
    "i8mm",
)


def cpu_int8_features(cpuinfo: str | None = None) -> dict[str, bool]:
    """``{flag: present}`` for the CPU features that int8 (and bf16) kernels use, read from the
    ``flags`` (x86) or ``Features`` (Arm) line of ``/proc/cpuinfo`` (or of the text ``cpuinfo``).
    An empty dict when there is no such file (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    if not isinstance(cpuinfo, str):
        raise TypeError(f"cpuinfo must be the text of /proc/cpuinfo, got {type(cpuinfo).__name__}")
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags |= set(value.split())
            break
    if not flags:
        return {}
    return {f: f in flags for f in INT8_FLAGS}


def int8_kernel_note(features: Mapping[str, bool] | None = None) -> str:
    """One sentence: which int8 GEMM path ONNX Runtime's MLAS library takes on a CPU with ``features``
    (``cpu_int8_features()`` by default). MLAS chooses at run time: AMX tiles > AVX512-VNNI >
    AVX-VNNI (``vpdpbusd``: u8 × s8 products summed into int32 in one instruction) > AVX512BW / AVX2
    (``vpmaddubsw`` + ``vpmaddwd``: three instructions, 16-bit intermediates) > Arm dot product."""
    f = cpu_int8_features() if features is None else dict(features)
    if not f:
        return "no /proc/cpuinfo: the CPU's int8 features are unknown here"
    if f.get("amx_int8"):
        path = "AMX tiles (amx_int8): int8 matrix multiply in hardware tiles"
    elif f.get("avx512_vnni"):
        path = "AVX512-VNNI (vpdpbusd: 64 u8×s8 products into int32 per instruction)"
    elif f.get("avx_vnni"):
        path = "AVX-VNNI (vpdpbusd on 256-bit registers)"
    elif f.get("avx512bw") or f.get("avx2"):
        path = (
            "AVX512BW/AVX2 without VNNI (vpmaddubsw + vpmaddwd: u8×s8 via 16-bit sums, "
            "about a third of VNNI's int8 throughput)"
        )
    elif f.get("asimddp") or f.get("i8mm"):
        path = "Arm dot-product instructions (sdot/udot" + (", i8mm smmla" if f.get("i8mm") else "") + ")"
    else:
        path = "no int8 dot-product instructions: int8 kernels gain little over fp32 here"
    present = ", ".join(k for k, v in f.items() if v) or "none of " + ", ".join(INT8_FLAGS)
    return f"int8 GEMMs run on {path}; flags present: {present}"


def qlinear_matmul_ort(
    a: torch.Tensor,
    a_scale: float,
    a_zero_point: int,
    b: torch.Tensor,
    b_scale: float,
    b_zero_point: int,
    y_scale: float,
    y_zero_point: int,
) -> torch.Tensor:
    """ONNX Runtime's ``QLinearMatMul`` on uint8 ``a`` (M×K) and int8 ``b`` (K×N) with per-tensor
    scales and zero points: ``y = saturate(round(a_scale·b_scale/y_scale · (a − a_zp)(b − b_zp)) + y_zp)``
    as uint8, computed by the runtime itself (a one-node ONNX graph)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    for name, t, dtype in (("a", a, torch.uint8), ("b", b, torch.int8)):
        if not isinstance(t, torch.Tensor) or t.dtype != dtype or t.ndim != 2:
            raise TypeError(f"{name} must be a 2-d {dtype} tensor")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a is {tuple(a.shape)} and b {tuple(b.shape)}: a's columns must equal b's rows")
    for name, s in (("a_scale", a_scale), ("b_scale", b_scale), ("y_scale", y_scale)):
        check_float(name, s, 0.0, low_inclusive=False, what="a scale")
    inputs: list[tuple[str, int, np.ndarray | np.generic]] = [
        ("a", TensorProto.UINT8, a.numpy()),
        ("a_scale", TensorProto.FLOAT, np.float32(a_scale)),
        ("a_zp", TensorProto.UINT8, np.uint8(a_zero_point)),
        ("b", TensorProto.INT8, b.numpy()),
        ("b_scale", TensorProto.FLOAT, np.float32(b_scale)),
        ("b_zp", TensorProto.INT8, np.int8(b_zero_point)),
        ("y_scale", TensorProto.FLOAT, np.float32(y_scale)),
        ("y_zp", TensorProto.UINT8, np.uint8(y_zero_point)),
    ]
    graph = helper.make_graph(
        [helper.make_node("QLinearMatMul", [n for n, _, _ in inputs], ["y"])],
        "qlinear",
        [helper.make_tensor_value_info(n, t, list(np.shape(v))) for n, t, v in inputs],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [a.shape[0], b.shape[1]])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(proto)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out = session.run(None, {n: np.asarray(v) for n, _, v in inputs})[0]
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- the honest latency table


def effective_macs(model: nn.Module, input_size: tuple) -> int:
    """MACs of one forward pass counting only the non-zero weights: each conv/linear layer's MACs
    times the fraction of its weights that are non-zero (what a perfect sparse kernel would do)."""
    size = _check_size(input_size)
    plain = capstone.as_plain(model)
    density = {name: float((tensor_of(m) != 0).float().mean()) for name, m in weight_layers(plain).items()}
    rows = measure.layer_table(plain, size)
    return int(round(sum(r.macs * density.get(r.name, 1.0) for r in rows)))


@dataclass
class HonestRow:
    """One technique: how much cheaper it is on paper, and how much faster it runs in each runtime."""

    technique: str = column(align="<")
    cost: str = column()  # what the cost ratio counts: "MACs" or "bytes"
    cost_ratio: float = column("cost ×", "{:.2f}×")  # base cost / technique cost (× cheaper)
    eager_ratio: float = column("eager ×", "{:.2f}×")  # base latency / technique latency in PyTorch eager
    ort_ratio: float = column("ORT ×", "{:.2f}×")  # the same in ONNX Runtime
    eager_verdict: str = column(hidden=True)  # "technique is faster": holds / does not hold / within noise
    ort_verdict: str = column(hidden=True)
    mechanism: str = column(align="<", default="")
    eager_ms: tuple = column(hidden=True, default=())  # (base, technique) median ms
    ort_ms: tuple = column(hidden=True, default=())


class HonestTable(Rows):
    """``HonestRow``s: ``.table()`` shows the ratios and the one-line mechanism of each gap."""


def _as_onnx(
    what: OnnxModel | str | os.PathLike | None,
    model: nn.Module | None,
    x: torch.Tensor,
    folder: Path,
    name: str,
    threads: int,
) -> OnnxModel:
    if isinstance(what, OnnxModel):
        return what
    if what is None:
        if model is None:
            raise ValueError(f"{name}: give an nn.Module or an ONNX file")
        what = export_onnx(model, folder / f"{name}.onnx", tuple(x.shape))
    return OnnxModel(what, threads=threads)


def honest_row(
    technique: str,
    base: nn.Module | Callable,
    variant: nn.Module | Callable,
    x: torch.Tensor,
    *,
    cost_ratio: float,
    cost: str = "MACs",
    mechanism: str = "",
    base_onnx: OnnxModel | str | os.PathLike | None = None,
    variant_onnx: OnnxModel | str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
    threads: int = 1,
    min_run_time: float = 0.05,
    rounds: int = 3,
) -> HonestRow:
    """Measure one technique against its base on input ``x`` in both runtimes.

    ``base`` / ``variant``: what PyTorch eager runs (modules or functions of ``x``); ``base_onnx`` /
    ``variant_onnx``: what ONNX Runtime runs (an ``OnnxModel`` or a file; exported from the module
    into ``folder`` when not given — a temporary folder by default). ``cost_ratio``: base cost /
    technique cost, computed by the caller (``measure.count_macs``, ``effective_macs``, file bytes).
    Each runtime's pair is timed in ``rounds`` interleaved rounds (``measure.latency_rounds``, on
    ``threads`` threads, ONNX Runtime's sessions too); the ratios are of the medians, the verdicts
    ``stats.timing_verdict`` of "the technique is faster".
    """
    if not isinstance(technique, str) or not technique:
        raise TypeError("technique must be a non-empty name")
    if cost not in ("MACs", "bytes"):
        raise ValueError(f"cost={cost!r} must be 'MACs' or 'bytes'")
    cost_ratio = check_float("cost_ratio", cost_ratio, 0.0, low_inclusive=False, what="a ratio")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    with contextlib.ExitStack() as stack:
        where = Path(folder) if folder is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        where.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", technique.lower()).strip("-")
        ort_base = _as_onnx(base_onnx, base if isinstance(base, nn.Module) else None, x, where, f"{slug}-base", threads)
        ort_var = _as_onnx(
            variant_onnx, variant if isinstance(variant, nn.Module) else None, x, where, f"{slug}-variant", threads
        )
        eager = measure.latency_rounds(
            {"base": base, "variant": variant}, x, min_run_time=min_run_time, threads=threads, rounds=rounds
        )
        onnx_t = measure.latency_rounds(
            {"base": ort_base, "variant": ort_var}, x, min_run_time=min_run_time, threads=threads, rounds=rounds
        )
    med = statistics.median
    return HonestRow(
        technique,
        cost,
        cost_ratio,
        med(eager["base"]) / med(eager["variant"]),
        med(onnx_t["base"]) / med(onnx_t["variant"]),
        stats.timing_verdict(eager["variant"], eager["base"]),
        stats.timing_verdict(onnx_t["variant"], onnx_t["base"]),
        mechanism,
        (1e3 * med(eager["base"]), 1e3 * med(eager["variant"])),
        (1e3 * med(onnx_t["base"]), 1e3 * med(onnx_t["variant"])),
    )


def draw_honest(rows: Iterable[HonestRow], fig: Figure, title: str = "Cheaper on paper vs faster in practice") -> None:
    """Measured speed-up against the cost ratio, both on log axes, for PyTorch eager (●) and ONNX
    Runtime (▲), one colour per technique, with the y = x line (speed-up = saving) and y = 1."""
    rows = list(rows)
    ax = fig.subplots()
    values = [v for r in rows for v in (r.cost_ratio, r.eager_ratio, r.ort_ratio)]
    lo, hi = min(values + [1.0]) / 1.5, max(values + [1.0]) * 1.5
    ax.plot([lo, hi], [lo, hi], color="0.5", ls="--", lw=1, label="y = x (speed-up = saving)")
    ax.axhline(1.0, color="0.7", lw=1)
    colours = [f"C{i % 10}" for i in range(len(rows))]
    for r, c in zip(rows, colours):
        ax.plot([r.cost_ratio] * 2, [r.eager_ratio, r.ort_ratio], color=c, lw=1, alpha=0.6)
        ax.scatter([r.cost_ratio], [r.eager_ratio], color=c, marker="o", s=40, label=f"{r.technique} ({r.cost})")
        ax.scatter([r.cost_ratio], [r.ort_ratio], color=c, marker="^", s=50)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("cost ratio (base / technique: MACs or bytes)")
    ax.set_ylabel("measured speed-up (base / technique latency)")
    ax.set_title(f"{title}  (● PyTorch eager, ▲ ONNX Runtime)")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()


# --------------------------------------------------------------------------- the explorer

STACKS = ("none", "unstructured 90%", "channels 50%", "low rank 50%")
PRECISIONS = ("fp32", "int8")


def apply_stack(model: nn.Module, stack: str) -> nn.Module:
    """A copy of ``model`` with one technique of ``STACKS`` applied (no retraining; ``model`` unchanged):
    "unstructured 90%" (``prune.magnitude_prune``, folded), "channels 50%" (``prune.prune_channels``),
    "low rank 50%" (``lowrank.compress_model(budget=0.5, method="channels")``), "none"."""
    if stack not in STACKS:
        raise ValueError(f"stack={stack!r} must be one of {STACKS}")
    plain = capstone.as_plain(model)
    if stack == "none":
        return plain
    if stack == "unstructured 90%":
        return prune.make_permanent(prune.magnitude_prune(plain, 0.9)).eval()
    if stack == "channels 50%":
        return prune.prune_channels(plain, 0.5).eval()
    return lowrank.compress_model(plain, 0.5, "channels").eval()


@dataclass
class Cell:
    """One (model, stack, precision) of the explorer: its costs and measurements."""

    model: str
    stack: str
    precision: str
    file_bytes: int  # the ONNX file (the deployable artefact)
    macs: int  # effective MACs per image (non-zero weights only)
    accuracy: float
    eager_ms: float  # PyTorch eager (int8: chapter 02's simulated int8, which runs in float)
    ort_ms: float  # ONNX Runtime (int8: real QDQ int8 kernels)


def measure_cell(
    name: str,
    model: nn.Module,
    stack: str,
    precision: str,
    test_data: Iterable,
    x: torch.Tensor,
    calib_x: torch.Tensor,
    folder: str | os.PathLike,
    *,
    threads: int = 1,
    min_run_time: float = 0.05,
) -> Cell:
    """Build ``apply_stack(model, stack)`` at ``precision`` ("fp32" or "int8": ``quantize_int8`` for
    ONNX Runtime, ``quant.fixed_point_model`` at 8 bits — chapter 02's simulated int8 — for eager),
    and measure it: ONNX file bytes, effective MACs, accuracy on ``test_data`` (of the ONNX model)
    and the latency of ``x`` in both runtimes."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} must be one of {PRECISIONS}")
    net = apply_stack(model, stack)
    folder = Path(folder)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{name}-{stack}".lower()).strip("-")
    path = export_onnx(net, folder / f"{slug}.onnx", tuple(x.shape[1:]))
    eager: nn.Module = net
    if precision == "int8":
        path = quantize_int8(path, folder / f"{slug}.int8.onnx", calib_x)
        eager = quant.fixed_point_model(net, calib_x, 8)[0]
    runtime = OnnxModel(path, threads=threads)
    times = measure.latency_rounds(
        {"eager": eager, "ort": runtime}, x, min_run_time=min_run_time, threads=threads, rounds=1
    )
    return Cell(
        name,
        stack,
        precision,
        runtime.file_bytes,
        effective_macs(net, tuple(x.shape[1:])),
        onnx_evaluate(runtime, test_data),
        1e3 * times["eager"][0],
        1e3 * times["ort"][0],
    )


@dataclass(frozen=True, eq=False)
class DeployState(State):
    """The deployment explorer's state (``deploy_state``): the chosen cell and the cells of its model."""

    cell: Cell
    model: str
    cells: list[Cell]  # the measured cells of this model


def deploy_state(
    cells: dict, model: str, stack: str, precision: str = "fp32", live: Callable[[str, str, str], Cell] | None = None
) -> DeployState:
    """The explorer's numbers: the cell ``(model, stack, precision)`` of ``cells`` (a dict keyed by
    those triples) — measured by ``live(model, stack, precision)`` and added to ``cells`` when missing
    and ``live`` is given — and every cell of the same model, for the figure."""
    if not isinstance(cells, dict):
        raise TypeError(f"cells must be a dict {{(model, stack, precision): Cell}}, got {type(cells).__name__}")
    models = sorted({k[0] for k in cells})
    if stack not in STACKS:
        raise ValueError(f"stack={stack!r} must be one of {STACKS}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} must be one of {PRECISIONS}")
    key = (model, stack, precision)
    if key not in cells:
        if live is None:
            raise ValueError(
                f"{model} · {stack} · {precision} was not measured (measured models: {models}); "
                "pass live= to measure it now"
            )
        cells[key] = live(model, stack, precision)
    same = [c for k, c in cells.items() if k[0] == model]
    return DeployState(cell=cells[key], model=model, cells=same)


def deploy_readout(state: DeployState) -> str:
    """One line: bytes, MACs, accuracy and latency in both runtimes of the chosen cell."""
    c = state.cell
    eager = "simulated int8 in eager" if c.precision == "int8" else "eager"
    return (
        f"{c.model} · {c.stack} · {c.precision}: ONNX file <b>{measure.human_bytes(c.file_bytes)}</b>, "
        f"{c.macs / 1e6:.2f}M effective MACs/image, accuracy <b>{100 * c.accuracy:.2f}%</b>, "
        f"{eager} {c.eager_ms:.2f} ms, ONNX Runtime <b>{c.ort_ms:.2f} ms</b>"
    )


def draw_deploy(state: DeployState, fig: Figure) -> None:
    """Left: latency of every measured cell of the model in both runtimes (the chosen one outlined);
    right: accuracy against ONNX file bytes."""
    ax_t, ax_a = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    cells = sorted(state.cells, key=lambda c: (STACKS.index(c.stack), PRECISIONS.index(c.precision)))
    labels = [f"{c.stack}\n{c.precision}" for c in cells]
    pos = np.arange(len(cells))
    chosen = state.cell
    edge = ["k" if c is chosen else "none" for c in cells]
    ax_t.bar(pos - 0.2, [c.eager_ms for c in cells], 0.4, label="PyTorch eager", color="#4477aa", edgecolor=edge)
    ax_t.bar(pos + 0.2, [c.ort_ms for c in cells], 0.4, label="ONNX Runtime", color="#ee7733", edgecolor=edge)
    ax_t.set_xticks(pos, labels, fontsize=7)
    ax_t.set_ylabel("latency (ms)")
    ax_t.set_title(f"{state.model}: latency per stack")
    ax_t.legend(fontsize=8)
    for c in cells:
        ax_a.scatter(
            c.file_bytes / 1024,
            100 * c.accuracy,
            s=80 if c is chosen else 30,
            color="#cc3311" if c is chosen else "#4477aa",
        )
        ax_a.annotate(f"{c.stack}, {c.precision}", (c.file_bytes / 1024, 100 * c.accuracy), fontsize=7)
    ax_a.set_xscale("log")
    ax_a.set_xlabel("ONNX file (KiB)")
    ax_a.set_ylabel("accuracy (%)")
    ax_a.grid(alpha=0.3)
    fig.tight_layout()


def deploy_explorer(
    cells: dict,
    model: str | None = None,
    stack: str = "none",
    precision: str = "fp32",
    live: Callable[[str, str, str], Cell] | None = None,
    title: str = "Deploy explorer: a model and a technique stack in two runtimes",
    figsize: tuple[float, float] = (11, 3.8),
) -> Explorer:
    """The explorer (a ``widgets.Explorer``): pick a model, a stack and a precision → bytes, MACs,
    accuracy and latency in PyTorch eager and ONNX Runtime (``deploy_state``)."""
    from . import widgets

    models = sorted({k[0] for k in cells}) if cells else []
    if not models:
        raise ValueError("cells is empty: measure at least one cell (measure_cell)")
    controls = {
        "model": widgets.dropdown("model", models, model if model is not None else models[0]),
        "stack": widgets.dropdown("stack", list(STACKS), stack),
        "precision": widgets.dropdown("precision", list(PRECISIONS), precision),
    }
    return widgets.Explorer(
        functools.partial(deploy_state, cells, live=live),
        draw_deploy,
        controls,
        title=title,
        readout_fn=deploy_readout,
        figsize=figsize,
    )


__all__ = [
    "OPSET",
    "soft_targets",
    "distillation_loss",
    "Distiller",
    "distillation_criterion",
    "distil",
    "export_onnx",
    "onnx_providers",
    "PROVIDERS",
    "OnnxModel",
    "onnx_predict",
    "onnx_evaluate",
    "OutputCheck",
    "compare_outputs",
    "ACTIVATION_TYPES",
    "CALIBRATION_METHODS",
    "quantize_int8",
    "op_counts",
    "NodeTime",
    "layer_times",
    "INT8_FLAGS",
    "cpu_int8_features",
    "int8_kernel_note",
    "qlinear_matmul_ort",
    "effective_macs",
    "HonestRow",
    "HonestTable",
    "honest_row",
    "draw_honest",
    "STACKS",
    "PRECISIONS",
    "apply_stack",
    "Cell",
    "measure_cell",
    "DeployState",
    "deploy_state",
    "deploy_readout",
    "draw_deploy",
    "deploy_explorer",
]
