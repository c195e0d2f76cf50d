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
   value 0, which the filler entries use — one centroid fewer than the paper's ``2**bits``.
3. **Huffman coding** (this module): the value indices and the relative positions are far from
   uniform, so a Huffman code spends fewer bits on the frequent symbols.

This module holds the from-scratch Huffman coder, the relative-index streams, a real on-disk format
(``save_compressed`` / ``load_compressed``), the per-layer table of the paper
(``compression_report``), the whole pipeline (``deep_compress``) and the speed question:
``latency_as_stored`` (decode to dense: no faster) and ``fc_speed`` (pruned fc layers kept sparse,
the paper's batch-1 setting of its 3–4× speed-up).
"""

import heapq
import io
import math
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from . import checks, prune

__all__ = [
    'MAX_BITS', 'CompressedFileError', 'huffman_code', 'canonical_code', 'expected_length',
    'entropy_bits', 'encode', 'decode', 'to_relative', 'from_relative', 'relative_index_entries',
    'COMPRESSIBLE', 'quantize_values', 'bits_needed', 'Stream', 'pack_fixed', 'unpack_fixed',
    'encode_stream', 'huffman_lengths', 'decode_stream', 'EncodedLayer', 'encode_layer',
    'decode_layer', 'effective_state_dict', 'compressible_layers', 'encode_model',
    'best_index_bits', 'MAGIC', 'VERSION', 'to_bytes', 'save_compressed', 'from_bytes',
    'load_compressed', 'LayerRow', 'Report', 'compression_report', 'reserve_zero_code', 'Stage',
    'deep_compress', 'latency_as_stored', 'FcSpeedRow', 'FcSpeedReport', 'fc_speed',
    'TradeoffState', 'draw_tradeoff', 'tradeoff_readout', 'fixed_layer_bytes', 'check_huffman',
    'check_index_bits', 'check_layer_bytes',
]


MAX_BITS = 16


class CompressedFileError(ValueError):
    """A compressed model file is truncated, corrupted, foreign or of an unknown version."""


# --------------------------------------------------------------------------- Huffman coding

def huffman_code(frequencies):
    """An optimal prefix code ``{symbol: bitstring}`` for ``{symbol: count}`` (Huffman, 1952).

    Repeatedly merge the two least frequent subtrees; a symbol's code length is its depth. The
    codes are then made *canonical* (sorted by length, then symbol, and counted up), so a decoder
    only needs each symbol's code length: that is what the file format stores. Symbols with count
    0 get no code. One symbol gets the code ``"0"``; no symbols give ``{}``.
    """
    if not hasattr(frequencies, "items"):
        raise TypeError(f"frequencies must be a mapping {{symbol: count}}, got {type(frequencies).__name__}")
    counts = {s: c for s, c in frequencies.items() if c != 0}
    for s, c in counts.items():
        if not isinstance(c, (int, np.integer)) or c < 0:
            raise ValueError(f"frequencies[{s!r}]={c!r} must be a non-negative integer count")
    if not counts:
        return {}
    if len(counts) == 1:
        return {next(iter(counts)): "0"}
    # heap of (count, tie-breaker, symbols in the subtree); ties broken by creation order: deterministic
    heap = [(c, i, [s]) for i, (s, c) in enumerate(sorted(counts.items()))]
    heapq.heapify(heap)
    depth = dict.fromkeys(counts, 0)
    order = len(heap)
    while len(heap) > 1:
        c1, _, left = heapq.heappop(heap)
        c2, _, right = heapq.heappop(heap)
        for s in left + right:           # every symbol under the new node goes one level deeper
            depth[s] += 1
        heapq.heappush(heap, (c1 + c2, order, left + right))
        order += 1
    return canonical_code(depth)


def canonical_code(lengths):
    """Canonical prefix code from ``{symbol: code length}``: shorter codes first, then by symbol."""
    code, value, previous = {}, 0, 0
    for symbol, length in sorted(lengths.items(), key=lambda item: (item[1], item[0])):
        if length < 1:
            raise ValueError(f"code length of symbol {symbol!r} is {length}; it must be at least 1")
        value <<= length - previous
        if value >= 1 << length:
            raise ValueError("these code lengths break Kraft's inequality: no prefix code has them")
        code[symbol] = format(value, f"0{length}b")
        value, previous = value + 1, length
    return code


def expected_length(code, frequencies):
    """Average bits per symbol of ``code`` on ``frequencies``."""
    total = sum(frequencies.values())
    return sum(frequencies[s] * len(code[s]) for s in frequencies if frequencies[s]) / total


def entropy_bits(frequencies):
    """Shannon entropy (bits per symbol): the lower bound on any code's expected length."""
    total = sum(frequencies.values())
    return -sum(c / total * math.log2(c / total) for c in frequencies.values() if c)


def _pack_bits(bitstring):
    """``"1011"`` → bytes, zero-padded at the end to a whole byte."""
    if not bitstring:
        return b""
    bits = np.frombuffer(bitstring.encode("ascii"), dtype=np.uint8) - ord("0")
    return np.packbits(bits).tobytes()


def _unpack_bits(data, nbits):
    """The first ``nbits`` bits of ``data`` as a string of '0'/'1'."""
    if nbits > 8 * len(data):
        raise ValueError(f"nbits={nbits} but the data holds only {8 * len(data)} bits")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:nbits]
    return (bits + ord("0")).tobytes().decode("ascii")


def encode(symbols, code=None):
    """Huffman-encode a sequence of symbols: returns ``(data, code, nbits)``.

    ``code`` defaults to the Huffman code of the stream's own symbol counts. ``data`` holds
    ``nbits`` bits (the last byte is zero-padded).
    """
    symbols = list(symbols)
    if code is None:
        code = huffman_code(Counter(symbols))
    missing = set(symbols) - set(code)
    if missing:
        raise ValueError(f"symbols {sorted(missing, key=repr)[:5]} have no code in the given code table")
    bitstring = "".join(code[s] for s in symbols)
    return _pack_bits(bitstring), code, len(bitstring)


def decode(data, code, nbits):
    """Inverse of ``encode``: the list of symbols in the first ``nbits`` bits of ``data``.

    Reads bit by bit and emits a symbol whenever the bits read so far are a code word (a prefix
    code guarantees that this is never ambiguous).
    """
    lookup = {(len(word), int(word, 2)): s for s, word in code.items()}
    symbols, value, length = [], 0, 0
    for bit in _unpack_bits(data, nbits):
        value, length = 2 * value + (bit == "1"), length + 1
        symbol = lookup.get((length, value), lookup)
        if symbol is not lookup:
            symbols.append(symbol)
            value = length = 0
    if length:
        raise ValueError(f"the last {length} bits are not a complete code word: corrupted data or wrong code")
    return symbols


# --------------------------------------------------------------------------- relative sparse index

def _check_bits(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_BITS:
        raise ValueError(f"{name}={value!r} must be an integer number of bits from 1 to {MAX_BITS}")
    return int(value)


def to_relative(values, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The two streams a file stores for a sparse flat array: ``(gaps, entries)`` as numpy arrays.

    The relative index itself is chapter 04's :func:`course_lib.prune.relative_indices` (the paper's
    Fig. 2: position differences ``d`` in ``1 … 2**index_bits``, filler zeros); the file stores
    ``gaps = d − 1``, the number of zeros skipped before each entry, which fits ``index_bits`` bits.
    Both views carry the same information: ``d`` is what the paper's figure prints, ``d − 1`` is
    what the bits hold.
    """
    index_bits = _check_bits(index_bits, "index_bits")
    flat = np.asarray(values).reshape(-1)
    diffs, entries = prune.relative_indices(torch.from_numpy(np.ascontiguousarray(flat)), index_bits)
    return (diffs - 1).numpy(), entries.numpy().astype(flat.dtype)


def from_relative(gaps, entries, size: int) -> np.ndarray:
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


def relative_index_entries(positions, index_bits):
    """Number of stored entries (non-zeros + fillers) for sorted non-zero ``positions``: a position
    difference ``d`` costs ``1 + (d − 1) // 2**index_bits`` entries (what ``relative_indices`` stores)."""
    index_bits = _check_bits(index_bits, "index_bits")
    span = 1 << index_bits
    count, previous = 0, -1
    for p in positions:
        count += 1 + (p - previous - 1) // span
        previous = p
    return count


# --------------------------------------------------------------------------- one layer, encoded

COMPRESSIBLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def quantize_values(weight, bits=None):
    """Codebook form of a tensor whose non-zero values are few: ``(codebook, indices)``.

    ``codebook[0]`` is 0.0 (pruned weights and filler entries), ``codebook[1:]`` the distinct
    non-zero values in increasing order; ``codebook[indices]`` rebuilds ``weight`` exactly. A
    ``bits``-bit index has ``2**bits`` codes, so at most ``2**bits - 1`` distinct non-zero values fit.
    """
    flat = torch.as_tensor(weight).detach().reshape(-1).to(torch.float32).cpu().numpy()
    distinct = np.unique(flat[flat != 0])
    if bits is not None:
        bits = _check_bits(bits, "bits")
        if len(distinct) + 1 > 1 << bits:
            raise ValueError(f"bits={bits}: the tensor has {len(distinct)} distinct non-zero values but a "
                             f"{bits}-bit index holds only {(1 << bits) - 1} plus zero; share weights first "
                             "(course_lib.quant.share_weights) or use more bits")
    codebook = np.concatenate([np.zeros(1, np.float32), distinct.astype(np.float32)])
    indices = np.where(flat != 0, np.searchsorted(distinct, flat) + 1, 0)
    return codebook, indices


def bits_needed(n_symbols):
    """Bits of a fixed-width index that can name ``n_symbols`` different symbols (at least 1)."""
    return max(1, math.ceil(math.log2(max(n_symbols, 1))))


@dataclass
class Stream:
    """A sequence of ``count`` symbols < ``2**bits``, stored fixed-width or Huffman-coded."""

    bits: int
    count: int
    nbits: int
    data: bytes
    lengths: np.ndarray = None          # Huffman code length of every symbol (0 = unused); None = fixed

    @property
    def huffman(self):
        return self.lengths is not None

    @property
    def table_bytes(self):
        return 0 if self.lengths is None else len(self.lengths)

    @property
    def total_bytes(self):
        return len(self.data) + self.table_bytes


def pack_fixed(symbols, bits):
    """Symbols at ``bits`` bits each, most significant bit first, zero-padded to whole bytes."""
    symbols = np.asarray(symbols, dtype=np.int64)
    shifts = np.arange(bits - 1, -1, -1)
    bit_array = ((symbols[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bit_array).tobytes()


def unpack_fixed(data, bits, count):
    """Inverse of ``pack_fixed``."""
    if count * bits > 8 * len(data):
        raise ValueError(f"{count} symbols of {bits} bits need {count * bits} bits, the data has {8 * len(data)}")
    bit_array = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].astype(np.int64)
    return (bit_array.reshape(count, bits) << np.arange(bits - 1, -1, -1)).sum(1)


def encode_stream(symbols, bits, huffman):
    """Store integer ``symbols`` (each < ``2**bits``) fixed-width or with their own Huffman code."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if not huffman:
        return Stream(bits, len(symbols), len(symbols) * bits, pack_fixed(symbols, bits))
    lengths = huffman_lengths(symbols, bits)
    data, nbits = _encode_canonical(symbols, lengths)
    return Stream(bits, len(symbols), nbits, data, lengths)


def huffman_lengths(symbols, bits):
    """Code length of every symbol ``0..2**bits - 1`` of the Huffman code of ``symbols`` (0 = unused)."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64), minlength=1 << bits)
    code = huffman_code({s: int(c) for s, c in enumerate(counts) if c})
    lengths = np.zeros(1 << bits, dtype=np.uint8)
    for s, word in code.items():
        lengths[s] = len(word)
    return lengths


def _encode_canonical(symbols, lengths):
    """``encode`` for integer symbols with a canonical code given by its lengths, vectorized."""
    code = canonical_code({s: int(n) for s, n in enumerate(lengths) if n})
    longest = int(lengths.max()) if len(lengths) else 0
    if not len(symbols):
        return b"", 0
    if longest > 62:                                        # (never for our streams) the plain way
        data, _, nbits = encode(symbols.tolist(), code)
        return data, nbits
    values = np.zeros(len(lengths), dtype=np.int64)
    for s, word in code.items():
        values[s] = int(word, 2)
    v, n = values[symbols], lengths.astype(np.int64)[symbols]
    shifts = np.arange(longest - 1, -1, -1)
    bits = (v[:, None] << (longest - n)[:, None] >> shifts) & 1      # each code left-aligned in `longest` bits
    keep = np.arange(longest)[None, :] < n[:, None]
    return np.packbits(bits[keep].astype(np.uint8)).tobytes(), int(n.sum())


def decode_stream(stream):
    """The symbols of a ``Stream`` as an int64 array."""
    if not stream.huffman:
        return unpack_fixed(stream.data, stream.bits, stream.count)
    symbols = _decode_canonical(stream.data, stream.nbits, stream.lengths)
    if len(symbols) != stream.count:
        raise ValueError(f"decoded {len(symbols)} symbols, the stream should hold {stream.count}")
    return symbols


def _decode_canonical(data, nbits, lengths, max_table_bits=20):
    """``decode`` with a lookup table: peek at the next ``L`` bits (``L`` = longest code), and the
    table says which symbol starts there and how long its code is. Same result, far fewer steps."""
    code = canonical_code({s: int(n) for s, n in enumerate(lengths) if n})
    longest = max((len(w) for w in code.values()), default=0)
    if longest == 0 or longest > max_table_bits:
        return np.asarray(decode(data, code, nbits), dtype=np.int64)
    table_symbol = np.zeros(1 << longest, dtype=np.int64)
    table_length = np.zeros(1 << longest, dtype=np.int64)
    for symbol, word in code.items():
        start = int(word, 2) << (longest - len(word))
        table_symbol[start:start + (1 << (longest - len(word)))] = symbol
        table_length[start:start + (1 << (longest - len(word)))] = len(word)
    if nbits > 8 * len(data):
        raise ValueError(f"nbits={nbits} but the data holds only {8 * len(data)} bits")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:nbits].astype(np.int64)
    padded = np.concatenate([bits, np.zeros(longest, dtype=np.int64)])
    windows = (np.lib.stride_tricks.sliding_window_view(padded, longest)[:nbits]
               @ (1 << np.arange(longest - 1, -1, -1))).tolist()
    lengths_at, symbols_at = table_length.tolist(), table_symbol.tolist()
    out, p = [], 0
    while p < nbits:
        w = windows[p]
        if not lengths_at[w]:
            raise ValueError(f"bits at offset {p} are not a code word: corrupted data")
        out.append(symbols_at[w])
        p += lengths_at[w]
    if p != nbits:
        raise ValueError("the last code word runs past the end of the data: corrupted data")
    return np.asarray(out, dtype=np.int64)


@dataclass
class EncodedLayer:
    """A conv/linear weight in Deep Compression's format: codebook + relative index + two streams.

    ``value_bits == 0`` means unquantized: the entries are float32 numbers (pruning only).
    """

    name: str
    shape: tuple
    value_bits: int
    index_bits: int
    codebook: np.ndarray
    gaps: Stream
    values: object                       # a Stream of codebook indices, or float32 bytes
    nonzero: int

    @property
    def weights(self):
        return int(np.prod(self.shape))

    @property
    def entries(self):
        return self.gaps.count

    @property
    def fillers(self):
        return self.entries - self.nonzero

    @property
    def value_bytes(self):
        return len(self.values) if isinstance(self.values, bytes) else self.values.total_bytes

    @property
    def codebook_bytes(self):
        return 0 if self.codebook is None else 4 * len(self.codebook)

    @property
    def payload_bytes(self):
        """Bytes of codebook, value stream and index stream (with their Huffman tables)."""
        return self.codebook_bytes + self.value_bytes + self.gaps.total_bytes


def encode_layer(name, weight, bits=None, index_bits=5, huffman=True):
    """Encode one weight tensor. ``bits``: None = the fewest that hold its distinct values
    (float32 values if more than 65535), an int 1..16, or ``"float32"`` for unquantized values."""
    index_bits = _check_bits(index_bits, "index_bits")
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
        return EncodedLayer(name, tuple(weight.shape), 0, index_bits, None,
                            encode_stream(gaps, index_bits, huffman), entries.astype("<f4").tobytes(), nonzero)
    if isinstance(bits, str):
        raise ValueError(f"bits={bits!r} must be None, an integer 1..{MAX_BITS} or 'float32'")
    bits = _check_bits(bits, "bits")
    codebook, indices = quantize_values(weight, bits)
    gaps, entries = to_relative(indices, index_bits)
    return EncodedLayer(name, tuple(weight.shape), bits, index_bits, codebook,
                        encode_stream(gaps, index_bits, huffman), encode_stream(entries, bits, huffman), nonzero)


def decode_layer(layer):
    """The dense float32 weight tensor of an ``EncodedLayer``."""
    gaps = decode_stream(layer.gaps)
    if layer.value_bits == 0:
        entries = np.frombuffer(layer.values, dtype="<f4").astype(np.float32)
    else:
        indices = decode_stream(layer.values)
        if len(indices) and indices.max() >= len(layer.codebook):
            raise ValueError(f"{layer.name}: index {indices.max()} outside the codebook of {len(layer.codebook)}")
        entries = layer.codebook[indices]
    flat = from_relative(gaps, entries, layer.weights)
    return torch.from_numpy(flat.astype(np.float32)).reshape(layer.shape)


# --------------------------------------------------------------------------- which tensors, which bits

def effective_state_dict(model):
    """The plain ``state_dict`` a model *computes with*: pruning masks and shared weights folded in.

    ``torch.nn.utils.prune`` keeps ``weight_orig`` and ``weight_mask``; ``torch.nn.utils.parametrize``
    (``quant.share_weights``) keeps ``parametrizations.weight.original`` and the codebook. Both are
    replaced by the weight the layer really uses, under the plain name ``weight``.
    """
    raw = model.state_dict()
    state = {}
    for key, value in raw.items():
        if "parametrizations." in key:
            prefix, rest = key.split("parametrizations.", 1)
            tensor_name, _, tail = rest.partition(".")
            if tail == "original":
                module = model.get_submodule(prefix.rstrip(".")) if prefix else model
                state[prefix + tensor_name] = getattr(module, tensor_name).detach()
            continue
        if key.endswith("_orig") and key[:-5] + "_mask" in raw:
            state[key[:-5]] = (value * raw[key[:-5] + "_mask"]).detach()
            continue
        if key.endswith("_mask") and key[:-5] + "_orig" in raw:
            continue
        state[key] = value.detach()
    return state


def compressible_layers(model):
    """``{state_dict key: layer name}`` of the conv/linear weights that get the sparse format."""
    return {f"{name}.weight" if name else "weight": name
            for name, m in model.named_modules() if isinstance(m, COMPRESSIBLE)}


def _per_layer(setting, names, what):
    """A setting that is one value for all layers or ``{layer name: value}``."""
    if isinstance(setting, dict):
        unknown = sorted(set(setting) - set(names))
        if unknown:
            raise ValueError(f"{what} names unknown layers {unknown}; the conv/linear layers are {list(names)}")
        return {n: setting.get(n) for n in names}
    return dict.fromkeys(names, setting)


def encode_model(model, bits=None, index_bits=5, huffman=True):
    """``(encoded layers, other tensors)`` of a model: what ``save_compressed`` writes."""
    layers = compressible_layers(model)
    bits_of = _per_layer(bits, list(layers.values()), "bits")
    index_of = _per_layer(index_bits, list(layers.values()), "index_bits")
    encoded, others = [], {}
    for key, tensor in effective_state_dict(model).items():
        if key in layers:
            name = layers[key]
            encoded.append(encode_layer(name, tensor, bits_of[name], index_of[name], huffman))
        else:
            others[key] = tensor.detach().cpu()
    return encoded, others


def best_index_bits(model, bits=None, huffman=True, candidates=range(2, 11)):
    """``{layer: index width}`` that makes each layer's stored bytes smallest.

    Narrow gaps need many filler entries (each also costs a value code); wide gaps cost more bits
    per entry, which Huffman coding largely takes back, but bigger code tables. We just try them.
    """
    layers = compressible_layers(model)
    bits_of = _per_layer(bits, list(layers.values()), "bits")
    state = effective_state_dict(model)
    best = {}
    for key, name in layers.items():
        sizes = {b: encode_layer(name, state[key], bits_of[name], b, huffman).payload_bytes for b in candidates}
        best[name] = min(sizes, key=lambda b: (sizes[b], b))
    return best


# --------------------------------------------------------------------------- the file format

MAGIC = b"DCMP"
VERSION = 1
_DTYPES = {0: torch.float32, 1: torch.float16, 2: torch.int64, 3: torch.int32, 4: torch.uint8,
           5: torch.bool, 6: torch.float64, 7: torch.bfloat16}
_DTYPE_CODES = {v: k for k, v in _DTYPES.items()}
RAW, SPARSE = 0, 1


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


class _Reader:
    """Reads what ``_Writer`` wrote; running off the end is a ``CompressedFileError``."""

    def __init__(self, data, path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise CompressedFileError(f"{self.path}: truncated or corrupted (needed {n} bytes at offset "
                                      f"{self.pos}, the file has {len(self.data)})")
        chunk = self.data[self.pos:self.pos + n]
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


def _write_stream(w, stream):
    w.pack("BBII", stream.bits, stream.huffman, stream.count, stream.nbits)
    if stream.huffman:
        w.buffer.write(stream.lengths.tobytes())
    w.bytes(stream.data)


def _read_stream(r):
    bits, huffman, count, nbits = r.unpack("BBII")
    if not 1 <= bits <= MAX_BITS or huffman > 1:
        raise CompressedFileError(f"{r.path}: corrupted stream header (bits={bits}, huffman={huffman})")
    lengths = np.frombuffer(r.take(1 << bits), dtype=np.uint8).copy() if huffman else None
    return Stream(bits, count, nbits, r.bytes(), lengths)


def _write_shape(w, shape):
    w.pack("B", len(shape))
    for s in shape:
        w.pack("I", s)


def _read_shape(r):
    (ndim,) = r.unpack("B")
    return tuple(r.unpack("I")[0] for _ in range(ndim))


def to_bytes(model, bits=None, index_bits=5, huffman=True, recipe=""):
    """The bytes of ``save_compressed``: magic, version, recipe, records, CRC-32 of all before it."""
    encoded, others = encode_model(model, bits, index_bits, huffman)
    w = _Writer()
    w.buffer.write(MAGIC)
    w.pack("B", VERSION)
    w.text(recipe or "")
    w.pack("I", len(encoded) + len(others))
    for layer in encoded:
        w.pack("B", SPARSE)
        w.text(f"{layer.name}.weight" if layer.name else "weight")
        _write_shape(w, layer.shape)
        w.pack("BBI", layer.value_bits, layer.index_bits, layer.nonzero)
        if layer.value_bits:
            w.bytes(layer.codebook.astype("<f4").tobytes())
            _write_stream(w, layer.values)
        else:
            w.bytes(layer.values)
        _write_stream(w, layer.gaps)
    for key, tensor in others.items():
        if tensor.dtype not in _DTYPE_CODES:
            raise TypeError(f"tensor {key!r} has dtype {tensor.dtype}, which the format does not store")
        w.pack("B", RAW)
        w.text(key)
        _write_shape(w, tuple(tensor.shape))
        w.pack("B", _DTYPE_CODES[tensor.dtype])
        # reshape(-1): a 0-d tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes
        w.bytes(tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    body = w.buffer.getvalue()
    return body + struct.pack("<I", zlib.crc32(body))


def save_compressed(model, path, bits=None, index_bits=5, huffman=True, recipe=""):
    """Write ``model`` in the Deep Compression format; returns the file's size in bytes.

    Conv/linear weights: sparse relative index (``index_bits``, int or ``{layer: bits}``) + codebook
    indices (``bits``: None = fewest that fit, int 1..16 or ``{layer: bits}``, ``"float32"`` =
    unquantized values), both Huffman-coded if ``huffman``. Everything else (biases, BatchNorm): raw.
    ``recipe`` (a ``course_lib.recipes`` name) lets ``load_compressed`` rebuild the architecture.
    """
    data = to_bytes(model, bits, index_bits, huffman, recipe)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def from_bytes(data, path="<bytes>"):
    """``(recipe, state_dict)`` from the bytes of a compressed file; every check before any use."""
    if len(data) < len(MAGIC) + 1 + 2 + 4 + 4:
        raise CompressedFileError(f"{path}: truncated ({len(data)} bytes is too short for a compressed model)")
    if data[:len(MAGIC)] != MAGIC:
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
        shape = _read_shape(r)
        try:
            if kind == SPARSE:
                value_bits, index_bits, nonzero = r.unpack("BBI")
                if value_bits:
                    codebook = np.frombuffer(r.bytes(), dtype="<f4").astype(np.float32)
                    values = _read_stream(r)
                else:
                    codebook, values = None, r.bytes()
                gaps = _read_stream(r)
                layer = EncodedLayer(key, shape, value_bits, index_bits, codebook, gaps, values, nonzero)
                state[key] = decode_layer(layer)
            elif kind == RAW:
                (code,) = r.unpack("B")
                if code not in _DTYPES:
                    raise ValueError(f"unknown dtype code {code}")
                raw = bytearray(r.bytes())
                state[key] = torch.frombuffer(raw, dtype=_DTYPES[code]).reshape(shape).clone() if raw else \
                    torch.zeros(shape, dtype=_DTYPES[code])
            else:
                raise ValueError(f"unknown record kind {kind}")
        except CompressedFileError:
            raise
        except (ValueError, RuntimeError) as err:
            raise CompressedFileError(f"{path}: corrupted record {key!r}: {err}") from None
    if r.pos != len(body):
        raise CompressedFileError(f"{path}: {len(body) - r.pos} unexpected bytes after the last record")
    return recipe, state


def load_compressed(path, model):
    """Read a file of ``save_compressed``: a plain model (eval mode) with the decoded weights.

    ``model``: an untrained model of the right architecture to fill in, or a function that builds
    one from the recipe name stored in the file (``recipes.build_model``: the recipes live above
    the chapters, so this module does not import them). Raises ``CompressedFileError`` for a
    truncated, corrupted or foreign file: never a silently wrong model.
    """
    with open(path, "rb") as f:
        data = f.read()
    recipe, state = from_bytes(data, str(path))
    if callable(model) and not isinstance(model, nn.Module):
        if not recipe:
            raise ValueError(f"{path} names no recipe; pass model= (a fresh model of the same architecture)")
        model = model(recipe)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit this model: {err}") from None
    return model.eval()


# --------------------------------------------------------------------------- the paper's per-layer table

@dataclass
class LayerRow:
    """One row of the paper's LeNet tables (Han et al. 2016, Tables 2-3)."""

    layer: str
    weights: int
    kept_pct: float
    weight_bits: float            # bits per stored entry, fixed width (P+Q); 32 if unquantized
    weight_bits_huffman: float    # the same after Huffman coding (P+Q+H)
    index_bits: float
    index_bits_huffman: float
    fillers: int
    bytes_fixed: int              # codebook + values + index, fixed width
    bytes_huffman: int            # codebook + values + index, Huffman-coded (tables included)

    @property
    def ratio_fixed(self):
        return 4 * self.weights / self.bytes_fixed

    @property
    def ratio_huffman(self):
        return 4 * self.weights / self.bytes_huffman


@dataclass
class Report:
    rows: list
    other_bytes: int = 0          # biases, BatchNorm: stored raw
    notes: list = field(default_factory=list)

    @property
    def weights(self):
        return sum(r.weights for r in self.rows)

    @property
    def bytes_huffman(self):
        return sum(r.bytes_huffman for r in self.rows)

    @property
    def bytes_fixed(self):
        return sum(r.bytes_fixed for r in self.rows)

    def table(self):
        """The table as aligned text, one line per layer plus a total."""
        head = (f"{'layer':<8}{'weights':>9}{'kept':>8}{'w bits':>8}{'w bits':>8}{'idx bits':>9}"
                f"{'idx bits':>9}{'ratio':>8}{'ratio':>8}\n{'':<8}{'':>9}{'(P)':>8}{'(P+Q)':>8}{'(+H)':>8}"
                f"{'(P+Q)':>9}{'(+H)':>9}{'(P+Q)':>8}{'(+H)':>8}")
        lines = [head]
        for r in self.rows:
            lines.append(f"{r.layer:<8}{r.weights:>9,}{r.kept_pct:>7.1f}%{r.weight_bits:>8.0f}"
                         f"{r.weight_bits_huffman:>8.2f}{r.index_bits:>9.0f}{r.index_bits_huffman:>9.2f}"
                         f"{r.ratio_fixed:>7.1f}×{r.ratio_huffman:>7.1f}×")
        kept = 100 * sum(r.weights * r.kept_pct / 100 for r in self.rows) / max(self.weights, 1)
        lines.append(f"{'total':<8}{self.weights:>9,}{kept:>7.1f}%{'':>8}{'':>8}{'':>9}{'':>9}"
                     f"{4 * self.weights / self.bytes_fixed:>7.1f}×{4 * self.weights / self.bytes_huffman:>7.1f}×")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _row(fixed, huff):
    entries = max(fixed.entries, 1)
    value_bits = fixed.value_bits or 32
    value_bits_h = 8 * len(huff.values) / entries if huff.value_bits == 0 else huff.values.nbits / entries
    return LayerRow(fixed.name, fixed.weights, 100 * fixed.nonzero / fixed.weights, value_bits, value_bits_h,
                    fixed.index_bits, huff.gaps.nbits / entries, fixed.fillers, fixed.payload_bytes,
                    huff.payload_bytes)


def compression_report(model, bits=None, index_bits=5):
    """Per-layer table like the paper's: weights, % kept, bits per weight and per index before and
    after Huffman coding, and the compression ratio (32-bit dense weights / stored bytes).

    Bits per weight/index are per *stored entry* (non-zeros + fillers); ratios count the codebook and
    the Huffman tables. Biases and BatchNorm tensors are in ``other_bytes`` (stored raw).
    """
    fixed, others = encode_model(model, bits, index_bits, huffman=False)
    huff, _ = encode_model(model, bits, index_bits, huffman=True)
    other = sum(t.numel() * t.element_size() for t in others.values())
    return Report([_row(f, h) for f, h in zip(fixed, huff)], other)


# --------------------------------------------------------------------------- trained quantization helpers

def reserve_zero_code(model):
    """Free one code of every shared-weight layer for the value 0 (pruned weights, filler entries).

    ``quant.share_weights(model, bits)`` gives ``2**bits`` centroids for the non-zero weights; the
    format needs one of the ``2**bits`` codes for zero. The smallest cluster is merged into its
    nearest neighbour (whose centroid becomes the mean of both) and its centroid set to 0.
    Returns ``{layer name: merged cluster size}``.
    """
    from . import quant

    merged = {}
    with torch.no_grad():
        for name, _, p in quant.shared_layers(model):
            codebook, indices = p.codebook, p.indices
            active = indices if p.mask is None else indices[p.mask]
            counts = torch.bincount(active.reshape(-1), minlength=len(codebook))
            if len(codebook) < 2:
                continue
            if bool((codebook == 0).any()) and counts[codebook == 0].sum() == 0:
                merged[name] = 0                         # a zero code is already free
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


# --------------------------------------------------------------------------- the pipeline

@dataclass
class Stage:
    name: str
    accuracy: float
    bytes: int
    seconds: float
    index_bits: object = 5

    def ratio(self, reference_bytes):
        return reference_bytes / self.bytes


def deep_compress(model, train_data, test_data, *, sparsity, bits, index_bits=5, prune_epochs=1,
                  quant_epochs=1, prune_steps=1, lr=0.01, quant_lr=None, init="linear", seed=0,
                  optimizer="sgd", recipe="", path=None, progress=False, device=None):
    """Han et al.'s three stages on ``model`` (changed in place): returns ``(model, stages)``.

    1. prune: ``prune.magnitude_prune`` to ``sparsity`` (``{layer: fraction}``) in ``prune_steps``
       equal steps, each followed by ``prune_epochs`` of retraining with the masks kept;
    2. quantize: ``quant.share_weights`` (``bits`` per layer, ``init`` = the centroid initialisation),
       one code reserved for zero, then ``quant_epochs`` of centroid fine-tuning;
    3. Huffman-code the value indices and the relative index; the file is read back and its
       weights must equal the model's bit for bit (so its accuracy is the quantized stage's).
    ``index_bits``: int, ``{layer: int}`` or ``"auto"`` (per stage and layer, the width of the
    smallest file: ``best_index_bits``).
    ``stages`` lists the accuracy and the real bytes written by ``save_compressed`` after each stage
    (float32 values + fixed-width index; codebook indices fixed width; Huffman), at ``path``.
    """
    import tempfile
    import time

    from . import config, prune, quant, train

    if not isinstance(prune_steps, int) or prune_steps < 1:
        raise ValueError(f"prune_steps={prune_steps!r} must be a positive integer")
    config.seed_everything(seed)
    device = torch.device(device) if device is not None else config.device()
    path = path or tempfile.mktemp(suffix=".dcmp")
    stages = []
    t0 = time.perf_counter()
    names = list(compressible_layers(model).values())
    targets = _per_layer(sparsity, names, "sparsity")
    for step in range(1, prune_steps + 1):
        goal = {n: 1 - (1 - (targets[n] or 0.0)) ** (step / prune_steps) for n in names}   # geometric steps
        prune.magnitude_prune(model, 0.0, per_layer=goal)
        train.fit(model, train_data, None, prune_epochs, optimizer=optimizer, lr=lr,
                  after_step=prune.keep_masks(model),
                  progress=progress, seed=seed + step, device=device)
    prune.make_permanent(model)
    widths = _index_widths(model, index_bits, "float32", huffman=False)
    size = save_compressed(model, path, "float32", widths, huffman=False, recipe=recipe)
    stages.append(Stage("pruned", train.evaluate(model, test_data), size, time.perf_counter() - t0, widths))

    t0 = time.perf_counter()
    quant.share_weights(model, bits, init=init, seed=seed)
    reserve_zero_code(model)
    if quant_epochs:
        # the backward of codebook[indices] sums each cluster's gradients; on CPU it adds in parallel
        # in a varying order unless deterministic algorithms are on (needed for a repeatable run)
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            train.fit(model, train_data, None, quant_epochs, optimizer=optimizer, lr=quant_lr or lr,
                      progress=progress,
                      seed=seed + 1000, device=device)
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
    bits_of = _per_layer(bits, names, "bits")
    widths = _index_widths(model, index_bits, bits_of, huffman=False)
    size = save_compressed(model, path, bits_of, widths, huffman=False, recipe=recipe)
    stages.append(Stage("quantized", train.evaluate(model, test_data), size, time.perf_counter() - t0, widths))

    t0 = time.perf_counter()
    widths = _index_widths(model, index_bits, bits_of, huffman=True)
    size = save_compressed(model, path, bits_of, widths, huffman=True, recipe=recipe)
    with open(path, "rb") as f:
        _, decoded = from_bytes(f.read(), path)      # the decoded tensors; no second model needed
    expected = effective_state_dict(model)
    if set(decoded) != set(expected) or not all(torch.equal(decoded[k].cpu(), expected[k].cpu()) for k in expected):
        raise RuntimeError(f"{path}: the decoded weights differ from the model's: a bug in the format")
    # the very same weights compute the very same function: the accuracy is the quantized stage's
    stages.append(Stage("huffman", stages[-1].accuracy, size, time.perf_counter() - t0, widths))
    return model, stages


def _index_widths(model, index_bits, bits, huffman):
    if index_bits == "auto":
        return best_index_bits(model, bits, huffman)
    return index_bits


def latency_as_stored(path, x, model, min_run_time=0.3):
    """Cost of serving from the file: ``(decode seconds, seconds of one forward of x)``.

    Decoding (``load_compressed``, with ``model`` as the architecture to fill, or ``recipes.build_model``)
    is timed once; the forward of the decoded *dense* model with ``measure.latency``.
    """
    import time

    from . import measure

    t0 = time.perf_counter()
    decoded = load_compressed(path, model)
    decode_s = time.perf_counter() - t0
    return decode_s, measure.latency(decoded, x, min_run_time=min_run_time)


@dataclass
class FcSpeedRow:
    """One fully connected weight, dense ``W @ x`` against chapter 04's CSR ``torch.sparse.mm``."""

    layer: str
    shape: tuple
    density: float
    batch: int
    dense_s: float
    sparse_s: float

    @property
    def speedup(self):
        return self.dense_s / self.sparse_s


@dataclass
class FcSpeedReport:
    rows: list

    def speedup(self, batch: int, layers=None) -> float:
        """Dense / sparse time at one ``batch``: of one layer (a name), of several (a list of names,
        times summed, as in a forward pass), or of all layers (None)."""
        names = None if layers is None else {layers} if isinstance(layers, str) else set(layers)
        rows = [r for r in self.rows if r.batch == batch and (names is None or r.layer in names)]
        if not rows:
            raise ValueError(f"batch={batch}, layers={layers!r}: not measured; batches are "
                             f"{sorted({r.batch for r in self.rows})}, layers {sorted({r.layer for r in self.rows})}")
        return sum(r.dense_s for r in rows) / sum(r.sparse_s for r in rows)

    def table(self):
        lines = [f"{'layer':<14}{'shape':>13}{'density':>9}{'batch':>7}{'dense ms':>10}{'CSR ms':>9}{'speed-up':>10}"]
        for r in self.rows:
            lines.append(f"{r.layer:<14}{'×'.join(map(str, r.shape)):>13}{100 * r.density:>8.1f}%{r.batch:>7}"
                         f"{1e3 * r.dense_s:>10.3f}{1e3 * r.sparse_s:>9.3f}{r.speedup:>9.2f}×")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def fc_speed(weights: dict, batches: tuple = (1, 64), threads: int = 1, min_run_time: float = 0.1) -> "FcSpeedReport":
    """Time pruned fc layers as the paper's speed-up claim does: ``y = W x`` with a batch of 1.

    ``weights``: ``{name: 2-d weight tensor}`` (zeros = pruned). For each batch size, the dense
    product ``W @ X`` and chapter 04's sparse kernel ``torch.sparse.mm(prune.to_csr(W), X)`` are
    timed with ``torch.utils.benchmark`` (median, ``threads`` CPU threads), each dense run next to
    its sparse run so that machine load hits both alike. At batch 1 the product is a matrix–vector
    product, bound by reading W: skipping the zeros saves memory traffic. At a large batch the dense
    GEMM reuses each weight for many columns and wins back its advantage.
    """
    import warnings

    from torch.utils import benchmark

    if not hasattr(weights, "items"):
        raise TypeError(f"weights must be a mapping {{name: 2-d tensor}}, got {type(weights).__name__}")
    batches = tuple(batches)
    for b in batches:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"batches must be positive integers, got {b!r}")
    rows, g = [], torch.Generator().manual_seed(0)
    for name, w in weights.items():
        w = torch.as_tensor(w).detach().float().cpu()
        if w.dim() != 2:
            raise ValueError(f"weights[{name!r}] must be 2-d (out × in), got shape {tuple(w.shape)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csr = prune.to_csr(w)
            for b in batches:
                x = torch.randn(w.shape[1], b, generator=g)
                env = {"w": w, "x": x, "csr": csr, "torch": torch}
                times = [benchmark.Timer(stmt=stmt, globals=env, num_threads=threads)
                         .blocked_autorange(min_run_time=min_run_time).median
                         for stmt in ("w @ x", "torch.sparse.mm(csr, x)")]
                rows.append(FcSpeedRow(name, tuple(w.shape), float((w != 0).float().mean()), b, *times))
    return FcSpeedReport(rows)


# --------------------------------------------------------------------------- widget: bits and sparsity → bytes, accuracy

class TradeoffState:
    """Pure, cached state function of the chapter's explorer (no retraining: a what-if view).

    ``state(sparsity_<i>=..., bits_<i>=...)`` prunes a copy of ``model`` per layer (magnitude),
    shares weights with ``2**bits - 1`` k-means values (+ zero) and returns the stored bytes of each
    layer (codebook, Huffman-coded values, Huffman-coded index), the raw bytes of the rest, and the
    accuracy on ``(images, labels)``. Results are cached per setting, so moving a slider back is free.
    """

    def __init__(self, model, images, labels, index_bits=5, iters=10):
        self.model, self.images, self.labels = model, images, labels
        self.index_bits, self.iters = index_bits, iters
        self.layers = list(compressible_layers(model).values())
        self.reference_bytes = None
        self.cache = {}

    def __call__(self, **settings):
        expected = {f"sparsity_{i}" for i in range(len(self.layers))} | {f"bits_{i}" for i in range(len(self.layers))}
        if set(settings) != expected:
            raise ValueError(f"settings must be exactly {sorted(expected)}, got {sorted(settings)}")
        for i, name in enumerate(self.layers):
            s, b = settings[f"sparsity_{i}"], settings[f"bits_{i}"]
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s < 1:
                raise ValueError(f"sparsity_{i} (layer {name}) = {s!r} must be a fraction in [0, 1)")
            if isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 8:
                raise ValueError(f"bits_{i} (layer {name}) = {b!r} must be an integer from 2 to 8 "
                                 "(one of the 2**bits codes is kept for zero)")
        key = tuple(sorted(settings.items()))
        if key not in self.cache:
            self.cache[key] = self._compute(settings)
        return self.cache[key]

    def _compute(self, settings):
        import copy

        from . import measure, prune, quant

        if self.reference_bytes is None:
            self.reference_bytes = measure.file_bytes(self.model)
        model = copy.deepcopy(self.model)
        sparsity = {n: float(settings[f"sparsity_{i}"]) for i, n in enumerate(self.layers)}
        bits = {n: settings[f"bits_{i}"] for i, n in enumerate(self.layers)}
        prune.magnitude_prune(model, 0.0, per_layer=sparsity)
        prune.make_permanent(model)
        quant.share_weights(model, bits, iters=self.iters)
        reserve_zero_code(model)
        encoded, others = encode_model(model, bits, self.index_bits, huffman=True)
        with torch.no_grad():
            accuracy = float((model(self.images).argmax(1) == self.labels).float().mean())
        layers = [{"layer": e.name, "codebook": e.codebook_bytes, "values": e.value_bytes,
                   "index": e.gaps.total_bytes, "kept": e.nonzero / e.weights} for e in encoded]
        other = sum(t.numel() * t.element_size() for t in others.values())
        total = sum(r["codebook"] + r["values"] + r["index"] for r in layers) + other
        return {"layers": layers, "other_bytes": other, "total_bytes": total, "accuracy": accuracy,
                "reference_bytes": self.reference_bytes, "ratio": self.reference_bytes / total}


def draw_tradeoff(state, fig):
    """Stacked bars: bytes of codebook / values / index per layer (+ biases), with the totals."""
    ax = fig.add_subplot(1, 1, 1)
    names = [r["layer"] for r in state["layers"]] + ["biases etc."]
    bottom = np.zeros(len(names))
    for part, colour in (("codebook", "#7f7f7f"), ("values", "#1f77b4"), ("index", "#ff7f0e")):
        heights = np.array([r[part] for r in state["layers"]] + [0]) / 1024
        ax.bar(names, heights, bottom=bottom, color=colour, label=part)
        bottom += heights
    ax.bar(names[-1:], [state["other_bytes"] / 1024], color="#2ca02c", label="raw float32")
    for i, r in enumerate(state["layers"]):
        ax.text(i, bottom[i], f"{100 * r['kept']:.0f}% kept", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("KiB in the file")
    ax.set_title(f"{state['total_bytes'] / 1024:.1f} KiB = {state['ratio']:.1f}× smaller than float32; "
                 f"accuracy {100 * state['accuracy']:.1f}% (no retraining)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def tradeoff_readout(state):
    return (f"<b>{state['total_bytes']:,} bytes</b> ({state['ratio']:.1f}× smaller), "
            f"accuracy <b>{100 * state['accuracy']:.2f}%</b>")


# --------------------------------------------------------------------------- exercise checkers

def fixed_layer_bytes(entries, bits, index_bits):
    """Bytes of a layer stored fixed-width in this format: a full codebook of ``2**bits`` float32
    values, ``entries`` value codes of ``bits`` bits and ``entries`` gaps of ``index_bits`` bits,
    each stream padded to whole bytes."""
    return 4 * (1 << bits) + -(-entries * bits // 8) + -(-entries * index_bits // 8)


def _is_prefix_free(words):
    words = sorted(words)
    return all(not b.startswith(a) for a, b in zip(words, words[1:]))


@checks.checker("Huffman code")
def check_huffman(fn):
    """``fn(frequencies) -> {symbol: bitstring}`` must be a prefix code of optimal expected length."""
    cases = [{"a": 45, "b": 13, "c": 12, "d": 16, "e": 9, "f": 5},       # the CLRS example
             {0: 1, 1: 1, 2: 2, 3: 4, 4: 8},
             {"x": 3, "y": 3, "z": 3},
             {7: 10}]
    for freq in cases:
        code = fn(dict(freq))
        checks.expect_true(isinstance(code, dict) and set(code) == set(freq),
                           f"for frequencies {freq} return a dict with a code for every symbol, got {code!r}")
        checks.expect_true(all(isinstance(w, str) and w and set(w) <= {"0", "1"} for w in code.values()),
                           f"codes must be non-empty strings of '0'/'1', got {code!r}")
        checks.expect_true(_is_prefix_free(code.values()),
                           f"{code} is not a prefix code: one code word starts another, so decoding is ambiguous")
        best = expected_length(huffman_code(freq), freq)
        got = expected_length(code, freq)
        checks.expect_close(got, best, f"average bits per symbol for {freq}")


@checks.checker("bits of a relative index with filler zeros")
def check_index_bits(fn):
    """``fn(positions, index_bits) -> bits`` of the relative index (fillers included)."""
    cases = [([1, 4, 15], 3), ([0, 1, 2], 2), ([20], 2), ([3, 100, 101, 400], 4), ([], 5), ([8, 16], 3)]
    for positions, b in cases:
        expected = relative_index_entries(positions, b) * b
        checks.expect_equal(fn(list(positions), b), expected, f"index bits for positions {positions} at {b} bits")


@checks.checker("bytes of a compressed layer")
def check_layer_bytes(fn):
    """``fn(entries, bits, index_bits) -> bytes`` for the fixed-width format (see ``fixed_layer_bytes``)."""
    for entries, bits, index_bits in [(21_000, 5, 5), (3, 2, 3), (0, 4, 4), (1_001, 8, 5), (7, 1, 1)]:
        checks.expect_equal(fn(entries, bits, index_bits), fixed_layer_bytes(entries, bits, index_bits),
                            f"layer_bytes(entries={entries}, bits={bits}, index_bits={index_bits})")
