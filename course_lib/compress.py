"""Deep Compression (Han, Mao & Dally, ICLR 2016): prune → trained quantization → Huffman coding.

The three stages, and where each one lives in the course:

1. **Pruning** (chapter 04, ``course_lib.prune``): most weights become exact zeros. A sparse layer
   is stored as its non-zero values plus their positions. Positions are stored *relative*
   (``prune.relative_indices``, the one implementation both chapters use): the position
   difference ``d`` to the previous stored entry, ``1 ≤ d ≤ 2**index_bits``, written as ``d − 1``
   (the zeros skipped) in ``index_bits`` bits. A longer jump is bridged by a **filler zero**: an
   entry whose value is 0, ``2**index_bits`` places on (the paper's Fig. 2).
2. **Trained quantization** (chapter 02, ``course_lib.quant``): the non-zero weights of a layer
   share ``2**bits - 1`` values (k-means centroids, fine-tuned with gradients summed per cluster);
   each entry stores a ``bits``-bit index into the layer's codebook. Index 0 is reserved for the
   value 0, which the filler entries use (``quant.reserve_zero_code``) — one centroid fewer than
   the paper's ``2**bits``.
3. **Huffman coding** (``course_lib.huffman``): the value indices and the relative positions are far
   from uniform, so a Huffman code spends fewer bits on the frequent symbols.

The chapter's code sits in three modules:

- ``huffman``: the from-scratch Huffman coder and the streams of integer symbols;
- ``compressed_file``: the on-disk format, byte by byte (``save_compressed`` / ``load_compressed``);
- ``compress`` (this module): the whole pipeline (``deep_compress``), the per-layer table of the
  paper (``compression_report``), the speed question — ``latency_as_stored`` (decode to dense: no
  faster) and ``fc_speed`` (pruned fc layers kept sparse, the paper's batch-1 setting of its 3–4×
  speed-up) —, the bytes-vs-accuracy explorer (``tradeoff_explorer``); the exercises live in
  ``course_lib.exercises.ch05``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn

from . import compressed_file, config, measure, prune, quant, train
from .args import check_bits, check_float, check_fraction, check_int
from .report import Rows, column, computed
from .states import State
from .surgery import copy_model

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.figure import Figure

    from .widgets import Explorer

__all__ = [
    "LayerRow",
    "CompressionReport",
    "compression_report",
    "Stage",
    "deep_compress",
    "latency_as_stored",
    "FcSpeedRow",
    "FcSpeedReport",
    "fc_speed",
    "TradeoffState",
    "tradeoff_state",
    "draw_tradeoff",
    "tradeoff_readout",
    "tradeoff_explorer",
]


# --------------------------------------------------------------------------- the paper's per-layer table


@dataclass
class LayerRow:
    """One row of the paper's LeNet tables (Han et al. 2016, Tables 2-3)."""

    layer: str = column(align="<")
    weights: int = column(format="{:,}")
    kept_pct: float = column("kept\n(P)", "{:.1f}%")
    weight_bits: float = column("w bits\n(P+Q)", "{:.0f}")  # bits per stored entry, fixed width; 32 if unquantized
    weight_bits_huffman: float = column("w bits\n(+H)", "{:.2f}")  # the same after Huffman coding (P+Q+H)
    index_bits: float = column("idx bits\n(P+Q)", "{:.0f}")
    index_bits_huffman: float = column("idx bits\n(+H)", "{:.2f}")
    fillers: int = column(hidden=True)
    bytes_fixed: int = column(hidden=True)  # codebook + values + index, fixed width
    bytes_huffman: int = column(hidden=True)  # codebook + values + index, Huffman-coded (tables included)

    @computed("ratio\n(P+Q)", "{:.1f}×")
    def ratio_fixed(self) -> float:
        return 4 * self.weights / self.bytes_fixed

    @computed("ratio\n(+H)", "{:.1f}×")
    def ratio_huffman(self) -> float:
        return 4 * self.weights / self.bytes_huffman


@dataclass
class _Total:
    """The total line of a ``CompressionReport`` table (the columns it leaves out show as ``-``)."""

    layer: str
    weights: int
    kept_pct: float
    ratio_fixed: float
    ratio_huffman: float


class CompressionReport(Rows):
    """``LayerRow``s of the conv/linear weights, plus ``other_bytes``: the tensors stored raw
    (biases, BatchNorm). ``.table()`` prints the paper's layout, with a total line."""

    def __init__(self, rows: Iterable[LayerRow] = (), other_bytes: int = 0):
        super().__init__(rows)
        self.other_bytes = other_bytes

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self)

    @property
    def bytes_huffman(self) -> int:
        return sum(r.bytes_huffman for r in self)

    @property
    def bytes_fixed(self) -> int:
        return sum(r.bytes_fixed for r in self)

    def footer(self) -> list:
        """The total line: weights, the share kept, and the whole-model ratios."""
        kept = 100 * sum(r.weights * r.kept_pct / 100 for r in self) / max(self.weights, 1)
        fixed, huffman = 4 * self.weights / self.bytes_fixed, 4 * self.weights / self.bytes_huffman
        return [_Total("total", self.weights, kept, fixed, huffman)]


def _row(fixed: compressed_file.EncodedLayer, huff: compressed_file.EncodedLayer) -> LayerRow:
    entries = max(fixed.entries, 1)
    value_bits = fixed.value_bits or 32
    value_bits_h = 8 * len(huff.values) / entries if isinstance(huff.values, bytes) else huff.values.nbits / entries
    return LayerRow(
        fixed.name,
        fixed.weights,
        100 * fixed.nonzero / fixed.weights,
        value_bits,
        value_bits_h,
        fixed.index_bits,
        huff.gaps.nbits / entries,
        fixed.fillers,
        fixed.payload_bytes,
        huff.payload_bytes,
    )


def compression_report(
    model: nn.Module, bits: int | str | dict[str, int | str] | None = None, index_bits: int | dict[str, int] = 5
) -> CompressionReport:
    """Per-layer table like the paper's: weights, % kept, bits per weight and per index before and
    after Huffman coding, and the compression ratio (32-bit dense weights / stored bytes).

    Bits per weight/index are per *stored entry* (non-zeros + fillers); ratios count the codebook and
    the Huffman tables. Biases and BatchNorm tensors are in ``other_bytes`` (stored raw).
    """
    fixed, others = compressed_file.encode_model(model, bits, index_bits, huffman=False)
    huff, _ = compressed_file.encode_model(model, bits, index_bits, huffman=True)
    other = sum(t.numel() * t.element_size() for t in others.values())
    return CompressionReport([_row(f, h) for f, h in zip(fixed, huff)], other)


# --------------------------------------------------------------------------- the pipeline


@dataclass
class Stage:
    """One stage of ``deep_compress``: its accuracy and the real bytes of the file it wrote."""

    name: str
    accuracy: float
    bytes: int
    seconds: float
    index_bits: object = 5  # the gap width used: an int or {layer: int}

    def ratio(self, reference_bytes: int) -> float:
        return reference_bytes / self.bytes


def _write(
    model: nn.Module, path: str | os.PathLike, bits, index_bits, huffman: bool, recipe: str
) -> tuple[int, object]:
    """Save ``model`` at ``path``; ``(bytes written, gap widths used)`` (``"auto"``: ``best_index_bits``)."""
    if index_bits == "auto":
        index_bits = compressed_file.best_index_bits(model, bits, huffman)
    return compressed_file.save_compressed(model, path, bits, index_bits, huffman=huffman, recipe=recipe), index_bits


def _check_pipeline(
    model,
    *,
    sparsity,
    bits,
    index_bits,
    prune_steps,
    prune_epochs,
    quant_epochs,
    lr,
    quant_lr,
    init,
    optimizer,
    quant_optimizer,
    path,
) -> list[str]:
    """Every argument of ``deep_compress`` checked before the model changes; the layer names."""
    quant.shareable_layers(model)  # a model, conv/linear layers, none quantized, finite
    measure.check_not_meta(model, "compressed")
    names = list(compressed_file.compressible_layers(model).values())
    for name, value in compressed_file.layer_values(sparsity, names, "sparsity").items():
        if value is not None or not isinstance(sparsity, Mapping):
            check_fraction(f"sparsity[{name!r}]" if isinstance(sparsity, Mapping) else "sparsity", value)
    for name, value in compressed_file.layer_values(bits, names, "bits").items():
        if value is not None or not isinstance(bits, Mapping):
            check_bits(f"bits[{name!r}]" if isinstance(bits, Mapping) else "bits", value, 1, compressed_file.MAX_BITS)
    if index_bits != "auto":
        for name, value in compressed_file.layer_values(index_bits, names, "index_bits").items():
            if value is not None or not isinstance(index_bits, Mapping):
                check_bits(
                    f"index_bits[{name!r}]" if isinstance(index_bits, Mapping) else "index_bits",
                    value,
                    1,
                    compressed_file.MAX_BITS,
                )
    check_int("prune_steps", prune_steps)
    check_int("prune_epochs", prune_epochs, 0)
    check_int("quant_epochs", quant_epochs, 0)
    check_float("lr", lr, 0.0, low_inclusive=False)
    check_float("quant_lr", quant_lr, 0.0, low_inclusive=False)
    if init not in quant.KMEANS_INITS:
        raise ValueError(f"init={init!r} is unknown; choose one of {quant.KMEANS_INITS}")
    for name, value in (("optimizer", optimizer), ("quant_optimizer", quant_optimizer)):
        if value not in train.OPTIMIZERS:
            raise ValueError(f"{name}={value!r} is unknown; choose one of {train.OPTIMIZERS}")
    if path is not None:
        compressed_file.validate_path(path)
    return names


def deep_compress(
    model: nn.Module,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    sparsity: float | dict[str, float],
    bits: int | dict[str, int],
    index_bits: int | dict[str, int] | str = 5,
    prune_epochs: int = 1,
    quant_epochs: int = 1,
    prune_steps: int = 1,
    lr: float = 0.01,
    quant_lr: float = 1e-3,
    init: str = "linear",
    seed: int = 0,
    optimizer: str = "sgd",
    quant_optimizer: str = "adamw",
    recipe: str = "",
    path: str | os.PathLike | None = None,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, Rows]:
    """Han et al.'s three stages on ``model`` (changed in place): returns ``(model, stages)``.

    1. prune: ``prune.magnitude_prune`` to ``sparsity`` (one fraction or ``{layer: fraction}``) in
       ``prune_steps`` geometric steps, each followed by ``prune_epochs`` of retraining with the masks kept;
    2. quantize: ``quant.share_weights`` (``bits`` per layer, ``init`` = the centroid initialisation),
       one code reserved for zero, then ``quant_epochs`` of centroid fine-tuning with
       ``quant_optimizer`` at ``quant_lr`` — AdamW at 1e-3 by default. A centroid's gradient is the
       *sum* of its cluster's weight gradients (thousands of weights), so its size grows with the
       cluster: SGD at the pruning ``lr`` blows the centroids apart (LeNet-5 on Fashion-MNIST:
       91.6% → 30.5% at lr 0.05) and needs a hand-tuned tiny rate, while AdamW divides each step by
       the gradient's running size and works at its usual rate (91.6% kept);
    3. Huffman-code the value indices and the relative index; the file is read back and its
       weights must equal the model's bit for bit (so its accuracy is the quantized stage's).
    ``index_bits``: int, ``{layer: int}`` or ``"auto"`` (per stage and layer, the width of the
    smallest file: ``compressed_file.best_index_bits``).
    ``stages`` (a ``report.Rows`` of ``Stage``) lists the accuracy and the real bytes written by
    ``save_compressed`` after each stage (float32 values + fixed-width index; codebook indices
    fixed width; Huffman), at ``path`` (default: a new temporary file).
    """
    names = _check_pipeline(
        model,
        sparsity=sparsity,
        bits=bits,
        index_bits=index_bits,
        prune_steps=prune_steps,
        prune_epochs=prune_epochs,
        quant_epochs=quant_epochs,
        lr=lr,
        quant_lr=quant_lr,
        init=init,
        optimizer=optimizer,
        quant_optimizer=quant_optimizer,
        path=path,
    )
    config.seed_everything(seed)
    device = torch.device(device) if device is not None else config.device()
    if path is None:
        handle, path = tempfile.mkstemp(suffix=".dcmp")
        os.close(handle)
    stages = Rows()
    t0 = time.perf_counter()
    targets = compressed_file.layer_values(sparsity, names, "sparsity")
    for step in range(1, prune_steps + 1):
        goal = {n: 1 - (1 - (targets[n] or 0.0)) ** (step / prune_steps) for n in names}  # geometric steps
        prune.magnitude_prune(model, goal)
        if prune_epochs:  # 0: no retraining (e.g. a net pruned to these targets already, by a long run)
            train.fit(
                model,
                train_data,
                None,
                prune_epochs,
                optimizer=optimizer,
                lr=lr,
                after_step=prune.keep_masks(model),
                progress=progress,
                seed=seed + step,
                device=device,
            )
    prune.make_permanent(model)
    size, widths = _write(model, path, "float32", index_bits, False, recipe)
    stages.append(Stage("pruned", train.evaluate(model, test_data), size, time.perf_counter() - t0, widths))

    t0 = time.perf_counter()
    quant.share_weights(model, bits, init=init, seed=seed)
    quant.reserve_zero_code(model)
    if quant_epochs:
        # the backward of codebook[indices] sums each cluster's gradients; on CPU it adds in parallel
        # in a varying order unless deterministic algorithms are on (needed for a repeatable run)
        train.fit(
            model,
            train_data,
            None,
            quant_epochs,
            optimizer=quant_optimizer,
            lr=quant_lr,
            progress=progress,
            seed=seed + 1000,
            device=device,
            deterministic=True,
        )
    bits_of = compressed_file.layer_values(bits, names, "bits")
    size, widths = _write(model, path, bits_of, index_bits, False, recipe)
    stages.append(Stage("quantized", train.evaluate(model, test_data), size, time.perf_counter() - t0, widths))

    t0 = time.perf_counter()
    size, widths = _write(model, path, bits_of, index_bits, True, recipe)
    with open(path, "rb") as f:
        _, decoded = compressed_file.from_bytes(f.read(), str(path))  # the decoded tensors; no second model needed
    expected = compressed_file.effective_state_dict(model)
    if set(decoded) != set(expected) or not all(torch.equal(decoded[k].cpu(), expected[k].cpu()) for k in expected):
        raise RuntimeError(f"{path}: the decoded weights differ from the model's: a bug in the format")
    # the very same weights compute the very same function: the accuracy is the quantized stage's
    stages.append(Stage("huffman", stages[-1].accuracy, size, time.perf_counter() - t0, widths))
    return model, stages


# --------------------------------------------------------------------------- is it faster?


def latency_as_stored(
    path: str | os.PathLike, x: torch.Tensor, model: nn.Module | Callable[[str], nn.Module], min_run_time: float = 0.3
) -> tuple[float, float]:
    """Cost of serving from the file: ``(decode seconds, seconds of one forward of x)``.

    Decoding (``load_compressed``, with ``model`` as the architecture to fill, or ``recipes.build_model``)
    is timed once; the forward of the decoded *dense* model with ``measure.latency``.
    """
    t0 = time.perf_counter()
    decoded = compressed_file.load_compressed(path, model)
    decode_s = time.perf_counter() - t0
    return decode_s, measure.latency(decoded, x, min_run_time=min_run_time)


@dataclass
class FcSpeedRow:
    """One fully connected weight, dense ``W @ x`` against chapter 04's CSR ``torch.sparse.mm``."""

    layer: str = column(align="<")
    shape: tuple = column(format=lambda shape: "×".join(map(str, shape)))
    density: float = column(format="{:.1f}%", scale=100)
    batch: int = column()
    dense_s: float = column("dense ms", "{:.3f}", scale=1e3)
    sparse_s: float = column("CSR ms", "{:.3f}", scale=1e3)
    dense_rounds: tuple = column(hidden=True)  # seconds, one per interleaved round (dense_s: their median)
    sparse_rounds: tuple = column(hidden=True)

    @computed("speed-up", "{:.2f}×")
    def speedup(self) -> float:
        return self.dense_s / self.sparse_s


class FcSpeedReport(Rows):
    """``FcSpeedRow``s of ``fc_speed``; ``.speedup(batch, layers)`` sums them as a forward pass does."""

    def speedup(self, batch: int, layers: str | Iterable[str] | None = None) -> float:
        """Dense / sparse time at one ``batch``: of one layer (a name), of several (a list of names,
        times summed, as in a forward pass), or of all layers (None)."""
        names = None if layers is None else {layers} if isinstance(layers, str) else set(layers)
        rows = [r for r in self if r.batch == batch and (names is None or r.layer in names)]
        if not rows:
            raise ValueError(
                f"batch={batch}, layers={layers!r}: not measured; batches are "
                f"{sorted({r.batch for r in self})}, layers {sorted({r.layer for r in self})}"
            )
        return sum(r.dense_s for r in rows) / sum(r.sparse_s for r in rows)


def fc_speed(
    weights: Mapping[str, torch.Tensor],
    batches: Iterable[int] = (1, 64),
    threads: int = 1,
    min_run_time: float = 0.1,
    rounds: int = 3,
) -> FcSpeedReport:
    """Time pruned fc layers as the paper's speed-up claim does: ``y = W x`` with a batch of 1.

    ``weights``: ``{name: 2-d weight tensor}`` (zeros = pruned). For each batch size, the dense
    product ``W @ X`` and chapter 04's sparse kernel ``torch.sparse.mm(prune.to_csr(W), X)`` are
    timed by ``measure.latency_rounds`` (``rounds`` interleaved rounds, ``threads`` CPU threads; the
    row keeps each round and their median), each dense run next to its sparse run so that machine
    load hits both alike. At batch 1 the product is a matrix–vector
    product, bound by reading W: skipping the zeros saves memory traffic. At a large batch the dense
    GEMM reuses each weight for many columns and wins back its advantage.
    """
    if not hasattr(weights, "items"):
        raise TypeError(f"weights must be a mapping {{name: 2-d tensor}}, got {type(weights).__name__}")
    batches = tuple(batches)
    for b in batches:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"batches must be positive integers, got {b!r}")
    rows, g = FcSpeedReport(), torch.Generator().manual_seed(0)
    for name, w in weights.items():
        w = torch.as_tensor(w).detach().float().cpu()
        if w.dim() != 2:
            raise ValueError(f"weights[{name!r}] must be 2-d (out × in), got shape {tuple(w.shape)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csr = prune.to_csr(w)
            products = {"dense": lambda x, w=w: w @ x, "sparse": lambda x, csr=csr: torch.sparse.mm(csr, x)}
            for b in batches:
                x = torch.randn(w.shape[1], b, generator=g)
                times = measure.latency_rounds(products, x, min_run_time=min_run_time, threads=threads, rounds=rounds)
                dense, sparse = tuple(times["dense"]), tuple(times["sparse"])
                density = float((w != 0).float().mean())
                medians = statistics.median(dense), statistics.median(sparse)
                rows.append(FcSpeedRow(name, tuple(w.shape), density, b, *medians, dense, sparse))
    return rows


# ------------------------------------------------------------------ explorer: bits and sparsity → bytes, accuracy


def _check_settings(names: list[str], sparsity: dict, bits: dict) -> None:
    for name in names:
        check_fraction(f"sparsity[{name!r}]", sparsity[name])
        try:
            check_bits(f"bits[{name!r}]", bits[name], 2, 8)
        except ValueError as err:
            raise ValueError(f"{err} (one of the 2**bits codes is kept for zero)") from None


@dataclass(frozen=True, eq=False)
class TradeoffState(State):
    """The bytes-vs-accuracy explorer's state (``tradeoff_state``)."""

    layers: list
    other_bytes: int
    total_bytes: int
    accuracy: float
    reference_bytes: int
    ratio: float


def tradeoff_state(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    sparsity: float | dict[str, float],
    bits: int | dict[str, int],
    index_bits: int = 5,
    iters: int = 10,
    reference_bytes: int | None = None,
) -> TradeoffState:
    """What Deep Compression *without retraining* does to ``model`` at these settings (pure).

    A copy of ``model`` is pruned per layer (magnitude, ``sparsity``: one fraction or
    ``{layer: fraction}``), its weights shared with ``2**bits - 1`` k-means values + zero (``bits``:
    2..8, one value or ``{layer: bits}``). Returns the stored bytes of each layer (codebook,
    Huffman-coded values, Huffman-coded index) and its kept fraction, the raw bytes of the other
    tensors, the total, the accuracy on ``(images, labels)``, and the ratio to ``reference_bytes``
    (default: ``measure.file_bytes(model)``, the float32 ``state_dict`` file).
    """
    names = list(compressed_file.compressible_layers(model).values())
    sparsity = compressed_file.layer_values(sparsity, names, "sparsity")
    bits = compressed_file.layer_values(bits, names, "bits")
    _check_settings(names, sparsity, bits)
    if reference_bytes is None:
        reference_bytes = measure.file_bytes(model)
    net = copy_model(model)
    prune.magnitude_prune(net, {n: float(s) for n, s in sparsity.items()})
    prune.make_permanent(net)
    quant.share_weights(net, bits, iters=iters)
    quant.reserve_zero_code(net)
    encoded, others = compressed_file.encode_model(net, bits, index_bits, huffman=True)
    with torch.no_grad():
        accuracy = float((net(images).argmax(1) == labels).float().mean())
    layers: list[dict[str, Any]] = [
        {
            "layer": e.name,
            "codebook": e.codebook_bytes,
            "values": e.value_bytes,
            "index": e.gaps.total_bytes,
            "kept": e.nonzero / e.weights,
        }
        for e in encoded
    ]
    other = sum(t.numel() * t.element_size() for t in others.values())
    total = sum(r["codebook"] + r["values"] + r["index"] for r in layers) + other
    return TradeoffState(
        layers=layers,
        other_bytes=other,
        total_bytes=total,
        accuracy=accuracy,
        reference_bytes=reference_bytes,
        ratio=reference_bytes / total,
    )


def draw_tradeoff(state: TradeoffState, fig: Figure) -> None:
    """Stacked bars: bytes of codebook / values / index per layer (+ biases), with the totals."""
    ax = fig.add_subplot(1, 1, 1)
    names = [r["layer"] for r in state.layers] + ["biases etc."]
    bottom = np.zeros(len(names))
    for part, colour in (("codebook", "#7f7f7f"), ("values", "#1f77b4"), ("index", "#ff7f0e")):
        heights = np.array([r[part] for r in state.layers] + [0]) / 1024
        ax.bar(names, heights, bottom=bottom, color=colour, label=part)
        bottom += heights
    ax.bar(names[-1:], [state.other_bytes / 1024], color="#2ca02c", label="raw float32")
    for i, r in enumerate(state.layers):
        ax.text(i, bottom[i], f"{100 * r['kept']:.0f}% kept", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("KiB in the file")
    ax.set_title(
        f"{state.total_bytes / 1024:.1f} KiB = {state.ratio:.1f}× smaller than float32; "
        f"accuracy {100 * state.accuracy:.1f}% (no retraining)"
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def tradeoff_readout(state: TradeoffState) -> str:
    """One line: bytes, ratio and accuracy."""
    return (
        f"<b>{state.total_bytes:,} bytes</b> ({state.ratio:.1f}× smaller), accuracy <b>{100 * state.accuracy:.2f}%</b>"
    )


def tradeoff_explorer(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    sparsity: float | dict[str, float] = 0.9,
    bits: int | dict[str, int] = 5,
    sparsity_options: Iterable[float] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98),
    index_bits: int = 5,
    iters: int = 10,
    title: str = "",
    figsize: tuple[float, float] = (8, 3.6),
) -> Explorer:
    """The explorer of ``tradeoff_state``: a sparsity menu and a bits slider per conv/linear layer.

    Controls ``sparsity_<i>`` / ``bits_<i>`` (the ``i``-th layer; start values ``sparsity`` and
    ``bits``, each one value or ``{layer: value}``). Each setting is computed once and cached, so
    moving a control back is free. Returns a ``widgets.Explorer``.
    """
    from .widgets import Explorer, dropdown, int_slider

    names = list(compressed_file.compressible_layers(model).values())
    start_sparsity = compressed_file.layer_values(sparsity, names, "sparsity")
    start_bits = compressed_file.layer_values(bits, names, "bits")
    reference_bytes = measure.file_bytes(model)
    cache = {}

    def state(**settings):
        key = tuple(sorted(settings.items()))
        if key not in cache:
            cache[key] = tradeoff_state(
                model,
                images,
                labels,
                {n: settings[f"sparsity_{i}"] for i, n in enumerate(names)},
                {n: settings[f"bits_{i}"] for i, n in enumerate(names)},
                index_bits,
                iters,
                reference_bytes,
            )
        return cache[key]

    controls = {}
    for i, layer in enumerate(names):
        controls[f"sparsity_{i}"] = dropdown(f"layer {layer} sparsity", list(sparsity_options), start_sparsity[layer])
        controls[f"bits_{i}"] = int_slider(f"layer {layer} bits", start_bits[layer], 1, 8)
    return Explorer(state, draw_tradeoff, controls, readout_fn=tradeoff_readout, title=title, figsize=figsize)
