"""The Deep Compression file format (chapter 05): how a pruned, weight-shared model is laid out on disk.

Every conv/linear weight is stored the paper's way: its non-zero entries as *codebook indices*,
their positions as a *relative index* (gaps), both streams Huffman-coded (``course_lib.huffman``).
Every other tensor (biases, BatchNorm) is stored raw. The whole file, byte by byte (integers are
little-endian; ``bytes`` = a u32 length, then the bytes; ``text`` = a u16 length, then UTF-8)::

    file    ┌──────┬─────────┬─────────────┬─────────────┬─────────────────────┬────────────┐
            │ DCMP │ version │ recipe text │ u32 records │ record × records    │ u32 CRC-32 │
            └──────┴─────────┴─────────────┴─────────────┴─────────────────────┴────────────┘
              4 B     u8       (may be "")                                      of all before it

    SPARSE  ┌──────┬──────┬──────────────────┬─────────────┬────────────┬─────────────┐
    record  │ u8 1 │ text │ u8 ndim          │ u8 value    │ u8 index   │ u32 nonzero │
            │      │ key  │ u32 × ndim shape │ bits: 0=f32 │ bits       │             │
            └──────┴──────┴──────────────────┴─────────────┴────────────┴─────────────┘
            then, if value bits > 0:  bytes codebook (float32; codebook[0] = 0.0), stream values
                 if value bits = 0:   bytes entries (float32 each: pruning only, no sharing)
            then: stream gaps (d − 1 per entry, fillers included)

    stream  ┌──────┬────────────┬───────────┬───────────┬──────────────────────────┬─────────────┐
            │ u8   │ u8 huffman │ u32 count │ u32 nbits │ if huffman: u8 × 2**bits │ bytes data  │
            │ bits │ (0 or 1)   │ (symbols) │           │ code lengths (canonical) │ (MSB first) │
            └──────┴────────────┴───────────┴───────────┴──────────────────────────┴─────────────┘

    RAW     ┌──────┬──────────┬───────┬───────────────┬────────────────────────┐
    record  │ u8 0 │ text key │ shape │ u8 dtype code │ bytes tensor (raw, LE) │
            └──────┴──────────┴───────┴───────────────┴────────────────────────┘

The relative index is chapter 04's (``prune.relative_indices``): each stored entry skips ``d − 1``
zeros, ``1 ≤ d ≤ 2**index_bits``, and a longer run of zeros is bridged by a *filler* entry of value
0 (code 0 of the codebook, which is why ``quant.reserve_zero_code`` frees it). Reading checks
everything (magic, version, CRC, lengths, ranges) before use: a truncated, corrupted or foreign
file is a ``CompressedFileError``, never a silently wrong model.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from . import prune
from .args import check_bits
from .huffman import Stream, decode_stream, encode_stream
from .measure import check_not_meta
from .surgery import WEIGHT_LAYERS, bits_needed, weight_layers

__all__ = [
    "MAX_BITS",
    "MAGIC",
    "VERSION",
    "CompressedFileError",
    "to_relative",
    "from_relative",
    "relative_index_entries",
    "quantize_values",
    "EncodedLayer",
    "encode_layer",
    "decode_layer",
    "effective_state_dict",
    "compressible_layers",
    "layer_values",
    "encode_model",
    "best_index_bits",
    "fixed_layer_bytes",
    "MAX_VALUES",
    "validate_path",
    "to_bytes",
    "save_compressed",
    "from_bytes",
    "load_compressed",
]

MAX_BITS = 16
"""Widest value code and gap the format stores."""
MAX_VALUES = 1 << 28
"""Most values (all records of a file together) a reader allocates: 268M, 1 GiB of float32 — more
than any network of the course (VGG-16 has 138M). A record's header gives its shape, and a sparse
layer's trailing zeros cost no bytes, so a crafted file could otherwise ask for any amount of memory."""
MAGIC = b"DCMP"
VERSION = 1
_DTYPES = {
    0: torch.float32,
    1: torch.float16,
    2: torch.int64,
    3: torch.int32,
    4: torch.uint8,
    5: torch.bool,
    6: torch.float64,
    7: torch.bfloat16,
}
_DTYPE_CODES = {v: k for k, v in _DTYPES.items()}
RAW, SPARSE = 0, 1


class CompressedFileError(ValueError):
    """A compressed model file is truncated, corrupted, foreign or of an unknown version."""


# --------------------------------------------------------------------------- relative sparse index


def to_relative(values: np.ndarray | torch.Tensor | Sequence[float], index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The two streams a file stores for a sparse flat array: ``(gaps, entries)`` as numpy arrays.

    The relative index itself is chapter 04's :func:`course_lib.prune.relative_indices` (the paper's
    Fig. 2: position differences ``d`` in ``1 … 2**index_bits``, filler zeros); the file stores
    ``gaps = d − 1``, the number of zeros skipped before each entry, which fits ``index_bits`` bits.
    Both views carry the same information: ``d`` is what the paper's figure prints, ``d − 1`` is
    what the bits hold.
    """
    index_bits = check_bits("index_bits", index_bits, 1, MAX_BITS)
    flat = np.asarray(values).reshape(-1)
    diffs, entries = prune.relative_indices(torch.from_numpy(np.ascontiguousarray(flat)), index_bits)
    return (diffs - 1).numpy(), entries.numpy().astype(flat.dtype)


def from_relative(gaps: np.ndarray | Sequence[int], entries: np.ndarray | Sequence[float], size: int) -> np.ndarray:
    """Inverse of :func:`to_relative` (checked, then :func:`course_lib.prune.decode_relative`)."""
    gaps, entries = np.asarray(gaps, dtype=np.int64), np.asarray(entries)
    if len(gaps) != len(entries):
        raise ValueError(f"gaps ({len(gaps)}) and entries ({len(entries)}) must have the same length")
    if len(gaps) and gaps.min() < 0:
        raise ValueError("gaps must be non-negative")
    if len(gaps) and int(np.sum(gaps + 1)) > size:
        raise ValueError(f"the gaps point past the end of a layer of {size} values")
    flat = prune.decode_relative(torch.from_numpy(gaps + 1), torch.from_numpy(np.ascontiguousarray(entries)), size)
    return flat.numpy()


def relative_index_entries(positions: Iterable[int], index_bits: int) -> int:
    """Number of stored entries (non-zeros + fillers) for sorted non-zero ``positions``: a position
    difference ``d`` costs ``1 + (d − 1) // 2**index_bits`` entries (what ``relative_indices`` stores)."""
    index_bits = check_bits("index_bits", index_bits, 1, MAX_BITS)
    span = 1 << index_bits
    count, previous = 0, -1
    for p in positions:
        count += 1 + (p - previous - 1) // span
        previous = p
    return count


# --------------------------------------------------------------------------- one layer, encoded


def quantize_values(weight: torch.Tensor | np.ndarray, bits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Codebook form of a tensor whose non-zero values are few: ``(codebook, indices)``.

    ``codebook[0]`` is 0.0 (pruned weights and filler entries), ``codebook[1:]`` the distinct
    non-zero values in increasing order; ``codebook[indices]`` rebuilds ``weight`` exactly. A
    ``bits``-bit index has ``2**bits`` codes, so at most ``2**bits - 1`` distinct non-zero values fit.
    """
    flat = torch.as_tensor(weight).detach().reshape(-1).to(torch.float32).cpu().numpy()
    distinct = np.unique(flat[flat != 0])
    if bits is not None:
        bits = check_bits("bits", bits, 1, MAX_BITS)
        if len(distinct) + 1 > 1 << bits:
            raise ValueError(
                f"bits={bits}: the tensor has {len(distinct)} distinct non-zero values but a "
                f"{bits}-bit index holds only {(1 << bits) - 1} plus zero; share weights first "
                "(course_lib.quant.share_weights) or use more bits"
            )
    codebook = np.concatenate([np.zeros(1, np.float32), distinct.astype(np.float32)])
    indices = np.where(flat != 0, np.searchsorted(distinct, flat) + 1, 0)
    return codebook, indices


@dataclass
class EncodedLayer:
    """A conv/linear weight in Deep Compression's format: codebook + relative index + two streams.

    ``value_bits == 0`` means unquantized: the entries are float32 numbers (pruning only).
    """

    name: str
    shape: tuple
    value_bits: int
    index_bits: int
    codebook: np.ndarray | None
    gaps: Stream
    values: Stream | bytes  # a Stream of codebook indices, or float32 bytes
    nonzero: int

    @property
    def weights(self) -> int:
        return int(np.prod(self.shape))

    @property
    def entries(self) -> int:
        return self.gaps.count

    @property
    def fillers(self) -> int:
        return self.entries - self.nonzero

    @property
    def value_bytes(self) -> int:
        return len(self.values) if isinstance(self.values, bytes) else self.values.total_bytes

    @property
    def codebook_bytes(self) -> int:
        return 0 if self.codebook is None else 4 * len(self.codebook)

    @property
    def payload_bytes(self) -> int:
        """Bytes of codebook, value stream and index stream (with their Huffman tables)."""
        return self.codebook_bytes + self.value_bytes + self.gaps.total_bytes


def encode_layer(
    name: str,
    weight: torch.Tensor | np.ndarray,
    bits: int | str | None = None,
    index_bits: int = 5,
    huffman: bool = True,
) -> EncodedLayer:
    """Encode one weight tensor. ``bits``: None = the fewest that hold its distinct values
    (float32 values if more than 65535), an int 1..16, or ``"float32"`` for unquantized values."""
    index_bits = check_bits("index_bits", index_bits, 1, MAX_BITS)
    weight = torch.as_tensor(weight).detach().to(torch.float32).cpu()
    flat = weight.reshape(-1).numpy()
    nonzero = int(np.count_nonzero(flat))
    raw = bits == "float32"
    if bits is None:
        n_distinct = len(np.unique(flat[flat != 0]))
        raw = n_distinct + 1 > 1 << MAX_BITS
        bits = None if raw else bits_needed(n_distinct + 1)
    if raw:
        gaps, entries = to_relative(flat, index_bits)
        return EncodedLayer(
            name,
            tuple(weight.shape),
            0,
            index_bits,
            None,
            encode_stream(gaps, index_bits, huffman),
            entries.astype("<f4").tobytes(),
            nonzero,
        )
    if isinstance(bits, str):
        raise ValueError(f"bits={bits!r} must be None, an integer 1..{MAX_BITS} or 'float32'")
    bits = check_bits("bits", bits, 1, MAX_BITS)
    codebook, indices = quantize_values(weight, bits)
    gaps, entries = to_relative(indices, index_bits)
    return EncodedLayer(
        name,
        tuple(weight.shape),
        bits,
        index_bits,
        codebook,
        encode_stream(gaps, index_bits, huffman),
        encode_stream(entries, bits, huffman),
        nonzero,
    )


def decode_layer(layer: EncodedLayer) -> torch.Tensor:
    """The dense float32 weight tensor of an ``EncodedLayer``."""
    gaps = decode_stream(layer.gaps)
    if isinstance(layer.values, bytes):  # value_bits 0: the float32 values themselves
        entries = np.frombuffer(layer.values, dtype="<f4").astype(np.float32)
    else:
        if layer.codebook is None:
            raise ValueError(f"{layer.name}: {layer.value_bits}-bit indices need a codebook")
        indices = decode_stream(layer.values)
        if len(indices) and indices.max() >= len(layer.codebook):
            raise ValueError(f"{layer.name}: index {indices.max()} outside the codebook of {len(layer.codebook)}")
        entries = layer.codebook[indices]
    flat = from_relative(gaps, entries, layer.weights)
    return torch.from_numpy(flat.astype(np.float32)).reshape(layer.shape)


# --------------------------------------------------------------------------- which tensors, which bits


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The plain ``state_dict`` a model *computes with*: pruning masks and shared weights folded in.

    A pruned (``torch.nn.utils.prune``) or weight-shared (``quant.share_weights``, a
    ``torch.nn.utils.parametrize`` parametrization) conv/linear layer stores its weight in other
    tensors, but its ``.weight`` is the weight it computes with. So each conv/linear layer gives its
    ``weight`` and ``bias``; every other module gives its own parameters and saved buffers. The
    keys and their order are those of the same model without masks or sharing.
    """
    saved = set(model.state_dict())
    state = {}

    def visit(module: nn.Module, prefix: str) -> None:
        if isinstance(module, WEIGHT_LAYERS):
            state[prefix + "weight"] = module.weight.detach()
            if module.bias is not None:
                state[prefix + "bias"] = module.bias.detach()
            return
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if prefix + name in saved:
                state[prefix + name] = tensor.detach()
        for name, child in module.named_children():
            visit(child, f"{prefix}{name}.")

    visit(model, "")
    return state


def compressible_layers(model: nn.Module) -> dict[str, str]:
    """``{state_dict key: layer name}`` of the conv/linear weights that get the sparse format."""
    return {f"{name}.weight" if name else "weight": name for name in weight_layers(model)}


def layer_values(setting: object, names: Iterable[str], what: str) -> dict:
    """``{layer name: value}`` from a setting that is one value for all layers or ``{layer name: value}``
    (layers it does not name get ``None``: the default); ``what`` names the setting in errors."""
    names = list(names)
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - set(names))
        if unknown:
            raise ValueError(f"{what} names unknown layers {unknown}; the conv/linear layers are {names}")
        return {n: setting.get(n) for n in names}
    return dict.fromkeys(names, setting)


def encode_model(
    model: nn.Module,
    bits: int | str | Mapping[str, int | str] | None = None,
    index_bits: int | Mapping[str, int] = 5,
    huffman: bool = True,
) -> tuple[list[EncodedLayer], dict[str, torch.Tensor]]:
    """``(encoded layers, other tensors)`` of a model: what ``save_compressed`` writes."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_not_meta(model, "compressed (it has no values to store)")
    layers = compressible_layers(model)
    bits_of = layer_values(bits, layers.values(), "bits")
    index_of = layer_values(index_bits, layers.values(), "index_bits")
    encoded, others = [], {}
    for key, tensor in effective_state_dict(model).items():
        if key in layers:
            name = layers[key]
            encoded.append(encode_layer(name, tensor, bits_of[name], index_of[name], huffman))
        else:
            others[key] = tensor.detach().cpu()
    return encoded, others


def best_index_bits(
    model: nn.Module,
    bits: int | str | dict[str, int | str] | None = None,
    huffman: bool = True,
    candidates: Iterable[int] = range(2, 11),
) -> dict[str, int]:
    """``{layer: index width}`` that makes each layer's stored bytes smallest.

    Narrow gaps need many filler entries (each also costs a value code); wide gaps cost more bits
    per entry, which Huffman coding largely takes back, but bigger code tables. We just try them.
    """
    layers = compressible_layers(model)
    bits_of = layer_values(bits, layers.values(), "bits")
    state = effective_state_dict(model)
    best = {}
    for key, name in layers.items():
        sizes = {b: encode_layer(name, state[key], bits_of[name], b, huffman).payload_bytes for b in candidates}
        best[name] = min(sizes, key=lambda b: (sizes[b], b))
    return best


def fixed_layer_bytes(entries: int, bits: int, index_bits: int) -> int:
    """Bytes of a layer stored fixed-width in this format: a full codebook of ``2**bits`` float32
    values, ``entries`` value codes of ``bits`` bits and ``entries`` gaps of ``index_bits`` bits,
    each stream padded to whole bytes."""
    return 4 * (1 << bits) + -(-entries * bits // 8) + -(-entries * index_bits // 8)


# --------------------------------------------------------------------------- writing and reading bytes


class _Writer:
    def __init__(self):
        self.buffer = io.BytesIO()

    def pack(self, fmt, *values):
        self.buffer.write(struct.pack("<" + fmt, *values))

    def bytes(self, data):
        self.pack("I", len(data))
        self.buffer.write(data)

    def text(self, s):
        data = s.encode("utf-8")
        self.pack("H", len(data))
        self.buffer.write(data)

    def shape(self, shape):
        self.pack("B", len(shape))
        for s in shape:
            self.pack("I", s)

    def stream(self, stream):
        self.pack("BBII", stream.bits, stream.huffman, stream.count, stream.nbits)
        if stream.huffman:
            self.buffer.write(stream.lengths.tobytes())
        self.bytes(stream.data)


class _Reader:
    """Reads what ``_Writer`` wrote; running off the end is a ``CompressedFileError``."""

    def __init__(self, data, path):
        self.data, self.pos, self.path = data, 0, path
        self.values = 0  # values declared by the shapes read so far

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise CompressedFileError(
                f"{self.path}: truncated or corrupted (needed {n} bytes at offset "
                f"{self.pos}, the file has {len(self.data)})"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt):
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def bytes(self):
        (n,) = self.unpack("I")
        return self.take(n)

    def text(self):
        (n,) = self.unpack("H")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise CompressedFileError(f"{self.path}: corrupted (a name is not valid UTF-8)") from None

    def shape(self):
        (ndim,) = self.unpack("B")
        shape = tuple(self.unpack("I")[0] for _ in range(ndim))
        numel = 1
        for s in shape:
            numel *= s
        self.values += numel
        if self.values > MAX_VALUES:  # checked before anything is allocated
            raise CompressedFileError(
                f"{self.path}: corrupted: its records declare {self.values:,} values, "
                f"more than the MAX_VALUES={MAX_VALUES:,} this reader allocates"
            )
        return shape

    def stream(self):
        bits, huffman, count, nbits = self.unpack("BBII")
        if not 1 <= bits <= MAX_BITS or huffman > 1:
            raise CompressedFileError(f"{self.path}: corrupted stream header (bits={bits}, huffman={huffman})")
        lengths = np.frombuffer(self.take(1 << bits), dtype=np.uint8).copy() if huffman else None
        data = self.bytes()
        # sizes before any use: a fixed-width stream holds exactly count·bits bits, a Huffman one at
        # least one bit per symbol, and neither more bits than its bytes
        if nbits > 8 * len(data) or (not huffman and nbits != count * bits) or (huffman and count > nbits):
            raise CompressedFileError(
                f"{self.path}: corrupted stream header ({count} symbols of {bits} bits "
                f"in {nbits} bits, {len(data)} bytes of data)"
            )
        return Stream(bits, count, nbits, data, lengths)


def _write_sparse(w: _Writer, layer: EncodedLayer) -> None:
    w.pack("B", SPARSE)
    w.text(f"{layer.name}.weight" if layer.name else "weight")
    w.shape(layer.shape)
    w.pack("BBI", layer.value_bits, layer.index_bits, layer.nonzero)
    if isinstance(layer.values, bytes):  # value_bits 0: the float32 values themselves
        w.bytes(layer.values)
    else:
        assert layer.codebook is not None  # a quantized layer (value_bits > 0) has its codebook
        w.bytes(layer.codebook.astype("<f4").tobytes())
        w.stream(layer.values)
    w.stream(layer.gaps)


def _write_raw(w: _Writer, key: str, tensor: torch.Tensor) -> None:
    if tensor.dtype not in _DTYPE_CODES:
        raise TypeError(f"tensor {key!r} has dtype {tensor.dtype}, which the format does not store")
    w.pack("B", RAW)
    w.text(key)
    w.shape(tuple(tensor.shape))
    w.pack("B", _DTYPE_CODES[tensor.dtype])
    # reshape(-1): a 0-d tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes
    w.bytes(tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def _read_sparse(r: _Reader, key: str, shape: tuple) -> torch.Tensor:
    value_bits, index_bits, nonzero = r.unpack("BBI")
    if value_bits:
        codebook = np.frombuffer(r.bytes(), dtype="<f4").astype(np.float32)
        values = r.stream()
    else:
        codebook, values = None, r.bytes()
    gaps = r.stream()
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    entries = values.count if value_bits else len(values) // 4
    if (not value_bits and len(values) % 4) or gaps.count != entries or entries > numel or nonzero > entries:
        raise CompressedFileError(
            f"{r.path}: corrupted record {key!r}: {gaps.count} gaps, {entries} entries and "
            f"{nonzero} non-zeros do not fit a layer of {numel} values"
        )
    return decode_layer(EncodedLayer(key, shape, value_bits, index_bits, codebook, gaps, values, nonzero))


def _read_raw(r: _Reader, shape: tuple) -> torch.Tensor:
    (code,) = r.unpack("B")
    if code not in _DTYPES:
        raise ValueError(f"unknown dtype code {code}")
    raw = bytearray(r.bytes())
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    itemsize = torch.empty((), dtype=_DTYPES[code]).element_size()
    if len(raw) != numel * itemsize:  # before allocating the tensor of the header's shape
        raise CompressedFileError(
            f"{r.path}: corrupted record: shape {shape} of {_DTYPES[code]} needs "
            f"{numel * itemsize:,} bytes, the record holds {len(raw):,}"
        )
    if not raw:
        return torch.zeros(shape, dtype=_DTYPES[code])
    return torch.frombuffer(raw, dtype=_DTYPES[code]).reshape(shape).clone()


# --------------------------------------------------------------------------- the file


def validate_path(path: object) -> str | os.PathLike:
    """``path`` if a file can be written there: a str or PathLike whose folder exists and which is
    not itself a folder (checked before an in-place pipeline changes its model)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path={path!r} must be a str or os.PathLike")
    folder = os.path.dirname(os.fspath(path)) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"path={os.fspath(path)!r}: its folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"path={os.fspath(path)!r} is a folder; give a file name")
    return path


def to_bytes(
    model: nn.Module,
    bits: int | str | dict[str, int | str] | None = None,
    index_bits: int | dict[str, int] = 5,
    huffman: bool = True,
    recipe: str = "",
) -> bytes:
    """The bytes of ``save_compressed``: magic, version, recipe, records, CRC-32 of all before it."""
    encoded, others = encode_model(model, bits, index_bits, huffman)
    w = _Writer()
    w.buffer.write(MAGIC)
    w.pack("B", VERSION)
    w.text(recipe or "")
    w.pack("I", len(encoded) + len(others))
    for layer in encoded:
        _write_sparse(w, layer)
    for key, tensor in others.items():
        _write_raw(w, key, tensor)
    body = w.buffer.getvalue()
    return body + struct.pack("<I", zlib.crc32(body))


def save_compressed(
    model: nn.Module,
    path: str | os.PathLike,
    bits: int | str | dict[str, int | str] | None = None,
    index_bits: int | dict[str, int] = 5,
    huffman: bool = True,
    recipe: str = "",
) -> int:
    """Write ``model`` in the Deep Compression format; returns the file's size in bytes.

    Conv/linear weights: sparse relative index (``index_bits``, int or ``{layer: bits}``) + codebook
    indices (``bits``: None = fewest that fit, int 1..16 or ``{layer: bits}``, ``"float32"`` =
    unquantized values), both Huffman-coded if ``huffman``. Everything else (biases, BatchNorm): raw.
    ``recipe`` (a ``course_lib.recipes`` name) lets ``load_compressed`` rebuild the architecture.
    """
    validate_path(path)
    data = to_bytes(model, bits, index_bits, huffman, recipe)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def from_bytes(data: bytes, path: str = "<bytes>") -> tuple[str, dict[str, torch.Tensor]]:
    """``(recipe, state_dict)`` from the bytes of a compressed file; every check before any use."""
    if len(data) < len(MAGIC) + 1 + 2 + 4 + 4:
        raise CompressedFileError(f"{path}: truncated ({len(data)} bytes is too short for a compressed model)")
    if data[: len(MAGIC)] != MAGIC:
        raise CompressedFileError(f"{path}: not a course_lib compressed model (bad magic {data[:4]!r})")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise CompressedFileError(f"{path}: checksum mismatch: the file is truncated or corrupted")
    r = _Reader(body, path)
    r.take(len(MAGIC))
    (version,) = r.unpack("B")
    if version != VERSION:
        raise CompressedFileError(f"{path}: format version {version}; this course_lib reads version {VERSION}")
    recipe = r.text()
    (n_records,) = r.unpack("I")
    state = {}
    for _ in range(n_records):
        (kind,) = r.unpack("B")
        key = r.text()
        shape = r.shape()
        try:
            if kind == SPARSE:
                state[key] = _read_sparse(r, key, shape)
            elif kind == RAW:
                state[key] = _read_raw(r, shape)
            else:
                raise ValueError(f"unknown record kind {kind}")
        except CompressedFileError:
            raise
        except (ValueError, RuntimeError) as err:
            raise CompressedFileError(f"{path}: corrupted record {key!r}: {err}") from None
    if r.pos != len(body):
        raise CompressedFileError(f"{path}: {len(body) - r.pos} unexpected bytes after the last record")
    return recipe, state


def load_compressed(path: str | os.PathLike, model: nn.Module | Callable[[str], nn.Module]) -> nn.Module:
    """Read a file of ``save_compressed``: a plain model (eval mode) with the decoded weights.

    ``model``: an untrained model of the right architecture to fill in, or a function that builds
    one from the recipe name stored in the file (``recipes.build_model``: the recipes live above
    the chapters, so this module does not import them). Raises ``CompressedFileError`` for a
    truncated, corrupted or foreign file: never a silently wrong model.
    """
    with open(path, "rb") as f:
        data = f.read()
    recipe, state = from_bytes(data, str(path))
    if model is None:
        raise TypeError(
            f"load_compressed needs model=: a fresh model of the architecture, or recipes.build_model "
            f"to rebuild the stored recipe {recipe!r}"
        )
    if callable(model) and not isinstance(model, nn.Module):
        if not recipe:
            raise ValueError(f"{path} names no recipe; pass model= (a fresh model of the same architecture)")
        model = model(recipe)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit this model: {err}") from None
    return model.eval()
