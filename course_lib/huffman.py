"""Huffman coding from scratch (chapter 05, Deep Compression's third stage).

A Huffman code gives frequent symbols short code words and rare ones long code words; its expected
length is within one bit of the entropy, the bound no code can beat. Deep Compression codes two
streams of every layer this way: the codebook indices of the values and the gaps of the relative
index (``compressed_file``).

- ``huffman_code(frequencies)``: the optimal prefix code ``{symbol: "0101…"}``, made *canonical*,
  so that each symbol's code *length* is all a decoder needs (that is what a file stores);
  ``canonical_code(lengths)`` rebuilds the code words from the lengths.
- ``encode`` / ``decode``: the readable coder, bit by bit, for any hashable symbols.
- ``Stream``, ``encode_stream`` / ``decode_stream``: integer symbols ``< 2**bits`` stored either
  fixed-width (``surgery.pack_bits``) or with their own canonical Huffman code, vectorized with
  numpy; the tests check they give exactly the bits of the readable coder.
- ``expected_length`` / ``entropy_bits``: bits per symbol of a code, and the bound.

Bits are written most significant first and the last byte is zero-padded (``surgery.pack_bits``).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .args import check_bits
from .surgery import pack_bits, unpack_bits

S = TypeVar("S", bound=Hashable)  # a symbol type: a code table maps the symbols it was built for

__all__ = [
    "huffman_code",
    "canonical_code",
    "expected_length",
    "entropy_bits",
    "encode",
    "decode",
    "Stream",
    "huffman_lengths",
    "encode_stream",
    "decode_stream",
]


# --------------------------------------------------------------------------- the code


def huffman_code(frequencies: Mapping[S, int]) -> dict[S, str]:
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
        for s in left + right:  # every symbol under the new node goes one level deeper
            depth[s] += 1
        heapq.heappush(heap, (c1 + c2, order, left + right))
        order += 1
    return canonical_code(depth)


def canonical_code(lengths: Mapping[S, int]) -> dict[S, str]:
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


def expected_length(code: Mapping[Hashable, str], frequencies: Mapping[Hashable, int]) -> float:
    """Average bits per symbol of ``code`` on ``frequencies`` (every counted symbol needs a code word)."""
    for name, m in (("code", code), ("frequencies", frequencies)):
        if not hasattr(m, "items"):
            raise TypeError(f"{name} must be a mapping, got {type(m).__name__}")
    total = _total_count(frequencies)
    missing = [s for s, c in frequencies.items() if c and s not in code]
    if missing:
        raise ValueError(f"symbols {sorted(missing, key=repr)[:5]} are counted in frequencies but have no code word")
    return sum(frequencies[s] * len(code[s]) for s in frequencies if frequencies[s]) / total


def entropy_bits(frequencies: Mapping[Hashable, int]) -> float:
    """Shannon entropy (bits per symbol): the lower bound on any code's expected length."""
    if not hasattr(frequencies, "items"):
        raise TypeError(f"frequencies must be a mapping {{symbol: count}}, got {type(frequencies).__name__}")
    total = _total_count(frequencies)
    return -sum(c / total * math.log2(c / total) for c in frequencies.values() if c)


def _total_count(frequencies: Mapping[Hashable, int]) -> int:
    """The sum of the counts, each a non-negative integer; 0 (nothing counted) is a ``ValueError``."""
    for s, c in frequencies.items():
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0:
            raise ValueError(f"frequencies[{s!r}]={c!r} must be a non-negative integer count")
    total = sum(frequencies.values())
    if total == 0:
        raise ValueError(f"frequencies={dict(frequencies)!r} count no symbol: an average per symbol needs at least one")
    return total


# --------------------------------------------------------------------------- the readable coder


def _read_bits(data: bytes, nbits: int) -> np.ndarray:
    """The first ``nbits`` bits of ``data``, most significant first, as an array of 0/1."""
    if nbits > 8 * len(data):
        raise ValueError(f"nbits={nbits} but the data holds only {8 * len(data)} bits")
    return unpack_bits(data, 1, nbits).numpy()


def encode(symbols: Iterable[S], code: Mapping[S, str] | None = None) -> tuple[bytes, Mapping[S, str], int]:
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
    bits = np.frombuffer(bitstring.encode("ascii"), dtype=np.uint8) - ord("0")
    return pack_bits(bits, 1).numpy().tobytes(), code, len(bitstring)


def decode(data: bytes, code: Mapping[S, str], nbits: int) -> list[S]:
    """Inverse of ``encode``: the list of symbols in the first ``nbits`` bits of ``data``.

    Reads bit by bit and emits a symbol whenever the bits read so far are a code word (a prefix
    code guarantees that this is never ambiguous).
    """
    lookup = {(len(word), int(word, 2)): s for s, word in code.items()}
    symbols: list[S] = []
    value = length = 0
    for bit in _read_bits(data, nbits).tolist():
        value, length = 2 * value + bit, length + 1
        if (length, value) in lookup:
            symbols.append(lookup[length, value])
            value = length = 0
    if length:
        raise ValueError(f"the last {length} bits are not a complete code word: corrupted data or wrong code")
    return symbols


# --------------------------------------------------------------------------- streams of integer symbols


@dataclass
class Stream:
    """A sequence of ``count`` symbols < ``2**bits``, stored fixed-width or Huffman-coded."""

    bits: int
    count: int
    nbits: int
    data: bytes
    lengths: np.ndarray | None = None  # Huffman code length of every symbol (0 = unused); None = fixed

    @property
    def huffman(self) -> bool:
        return self.lengths is not None

    @property
    def table_bytes(self) -> int:
        """Bytes of the Huffman table: one code length per symbol."""
        return 0 if self.lengths is None else len(self.lengths)

    @property
    def total_bytes(self) -> int:
        return len(self.data) + self.table_bytes


def huffman_lengths(symbols: np.ndarray | Sequence[int], bits: int) -> np.ndarray:
    """Code length of every symbol ``0..2**bits - 1`` of the Huffman code of ``symbols`` (0 = unused)."""
    symbols, bits = _check_symbols(symbols, bits)
    counts = np.bincount(symbols, minlength=1 << bits)
    code = huffman_code({s: int(c) for s, c in enumerate(counts) if c})
    lengths = np.zeros(1 << bits, dtype=np.uint8)
    for s, word in code.items():
        lengths[s] = len(word)
    return lengths


def encode_stream(symbols: np.ndarray | Sequence[int], bits: int, huffman: bool) -> Stream:
    """Store integer ``symbols`` (each < ``2**bits``) fixed-width or with their own Huffman code.

    The same checks either way: ``bits`` an int 1..16, the symbols integers in ``[0, 2**bits)``
    (a float, even 2.0, is a ``TypeError``: a symbol is never rounded).
    """
    symbols, bits = _check_symbols(symbols, bits)
    if not isinstance(huffman, (bool, np.bool_)):
        raise TypeError(f"huffman={huffman!r} must be a bool")
    if not huffman:
        return Stream(bits, len(symbols), len(symbols) * bits, pack_bits(symbols, bits).numpy().tobytes())
    lengths = huffman_lengths(symbols, bits)
    data, nbits = _encode_canonical(symbols, lengths)
    return Stream(bits, len(symbols), nbits, data, lengths)


MAX_STREAM_BITS = 16
"""Widest symbol a stream stores (a Huffman table has one code length per possible symbol)."""


def _check_symbols(symbols: np.ndarray | Sequence[int], bits: int) -> tuple[np.ndarray, int]:
    """``(symbols as a 1-d int64 array, bits)`` if every symbol is an integer in ``[0, 2**bits)``."""
    bits = check_bits("bits", bits, 1, MAX_STREAM_BITS)
    if hasattr(symbols, "detach"):  # a torch tensor
        symbols = symbols.detach().cpu().numpy()
    array = np.asarray(symbols)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64), bits
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"symbols must be integers, got dtype {array.dtype} (e.g. {array.reshape(-1)[0]!r})")
    array = array.reshape(-1).astype(np.int64)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= 1 << bits:
        bad = low if low < 0 else high
        raise ValueError(f"symbols must lie in [0, 2**bits) = [0, {1 << bits}) for bits={bits}; got {bad}")
    return array, bits


def decode_stream(stream: Stream) -> np.ndarray:
    """The symbols of a ``Stream`` as an int64 array."""
    if not stream.huffman or stream.lengths is None:
        return unpack_bits(stream.data, stream.bits, stream.count).numpy()
    symbols = _decode_canonical(stream.data, stream.nbits, stream.lengths)
    if len(symbols) != stream.count:
        raise ValueError(f"decoded {len(symbols)} symbols, the stream should hold {stream.count}")
    return symbols


def _encode_canonical(symbols: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """``encode`` for integer symbols with a canonical code given by its lengths, vectorized."""
    code = canonical_code({s: int(n) for s, n in enumerate(lengths) if n})
    longest = int(lengths.max()) if len(lengths) else 0
    if not len(symbols):
        return b"", 0
    if longest > 62:  # (never for our streams) the plain way
        data, _, nbits = encode(symbols.tolist(), code)
        return data, nbits
    values = np.zeros(len(lengths), dtype=np.int64)
    for s, word in code.items():
        values[s] = int(word, 2)
    v, n = values[symbols], lengths.astype(np.int64)[symbols]
    shifts = np.arange(longest - 1, -1, -1)
    bits = (v[:, None] << (longest - n)[:, None] >> shifts) & 1  # each code left-aligned in `longest` bits
    keep = np.arange(longest)[None, :] < n[:, None]
    return pack_bits(bits[keep], 1).numpy().tobytes(), int(n.sum())


def _decode_canonical(data: bytes, nbits: int, lengths: np.ndarray, max_table_bits: int = 20) -> np.ndarray:
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
        table_symbol[start : start + (1 << (longest - len(word)))] = symbol
        table_length[start : start + (1 << (longest - len(word)))] = len(word)
    bits = _read_bits(data, nbits)
    padded = np.concatenate([bits, np.zeros(longest, dtype=np.int64)])
    windows = (
        np.lib.stride_tricks.sliding_window_view(padded, longest)[:nbits] @ (1 << np.arange(longest - 1, -1, -1))
    ).tolist()
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
