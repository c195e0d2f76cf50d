"""Chapter 05's exercises: Deep Compression's storage.

- **huffman** (*build it and measure it*): a Huffman code ``{symbol: count} → {symbol: bitstring}``.
  The checker encodes a message drawn from the counts with the learner's code, decodes it with its own
  prefix decoder, and measures the bits against the optimum — the CLRS example's published 224 bits
  per 100 characters, and otherwise the cost of an optimal merge tree summed here with ``heapq``.
  Rejected: a code that is not prefix-free, a fixed-length code, merging the two *most* frequent
  subtrees, Shannon's ⌈−log₂ p⌉ lengths; refused: ``huffman.huffman_code``, ``huffman.canonical_code``,
  ``huffman.huffman_lengths``, ``huffman.encode``, ``huffman.encode_stream``.
- **decode_relative** (*build*): §1 wrote the encoder of the relative index; the learner writes its
  inverse, from the file's gaps (zeros skipped, d − 1) and stored values back to the dense row. The
  checker encodes random sparse rows with its own brute-force encoder (fillers included) and measures
  whether the round trip gives the row back. Rejected: gaps read as position differences (off by one
  each), the first position counted from 0; refused: ``compressed_file.from_relative``,
  ``prune.decode_relative``.
- **best_gap_width** (*decide*): the gap width b (2–10) that stores a sparse layer in the fewest bits,
  given its non-zero positions and the value-code width — narrow gaps need fillers, and each filler
  also costs a value code. The checker simulates the stream for every width, one zero at a time.
  Rejected: the paper's 5 bits for every layer, a cost that forgets the fillers' value codes, a cost
  that forgets the fillers; refused: ``compressed_file.best_index_bits``,
  ``compressed_file.relative_index_entries``, ``compressed_file.to_relative``, ``prune.relative_indices``,
  ``compressed_file.fixed_layer_bytes``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

import numpy as np

from .. import compressed_file, huffman, prune
from ..checks import ExerciseError, checker, expect_equal, expect_true

__all__ = ["check_huffman", "check_decode_relative", "check_best_gap_width"]


# --------------------------------------------------------------------------- Huffman


def _optimal_bits(counts: Mapping) -> int:
    """Total bits of an optimal prefix code: the sum of every merge of the two lightest subtrees."""
    heap = [c for c in counts.values() if c]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


def _decode(bits: str, code: Mapping) -> list:
    by_word = {w: s for s, w in code.items()}
    out, word = [], ""
    for b in bits:
        word += b
        if word in by_word:
            out.append(by_word[word])
            word = ""
    if word:
        raise ExerciseError(f"decoding with your code left the bits {word!r} over")
    return out


_CLRS = {"a": 45, "b": 13, "c": 12, "d": 16, "e": 9, "f": 5}  # CLRS §16.3: 224 bits for 100 characters


@checker(
    "Huffman code",
    answers={
        "huffman.huffman_code": huffman.huffman_code,
        "huffman.canonical_code": huffman.canonical_code,
        "huffman.huffman_lengths": huffman.huffman_lengths,
        "huffman.encode": huffman.encode,
        "huffman.encode_stream": huffman.encode_stream,
    },
)
def check_huffman(fn: Callable) -> None:
    """``fn(frequencies) -> {symbol: bitstring}`` must be a prefix code that encodes a message with
    those counts in the fewest bits any prefix code can."""
    cases: list[tuple[dict, int | None]] = [
        (_CLRS, 224),
        ({0: 1, 1: 1, 2: 2, 3: 4, 4: 8}, None),
        ({"x": 3, "y": 3, "z": 3}, None),
        ({7: 10}, None),
        ({k: c for k, c in enumerate((60, 20, 9, 5, 3, 1, 1, 1))}, None),
    ]
    rng = np.random.default_rng(0)
    for freq, published in cases:
        code = fn(dict(freq))
        expect_true(
            isinstance(code, dict) and set(code) == set(freq),
            f"for frequencies {freq} return a dict with a code for every symbol, got {code!r}",
        )
        expect_true(
            all(isinstance(w, str) and w and set(w) <= {"0", "1"} for w in code.values()),
            f"codes must be non-empty strings of '0'/'1', got {code!r}",
        )
        words = sorted(code.values())
        expect_true(
            all(not b.startswith(a) for a, b in zip(words, words[1:])),
            f"{code} is not a prefix code: one code word starts another, so decoding is ambiguous",
        )
        message = [s for s, c in freq.items() for _ in range(c)]
        rng.shuffle(message)
        bits = "".join(code[s] for s in message)
        expect_true(_decode(bits, code) == list(message), "your code does not decode back to the message")
        best = published if published is not None else _optimal_bits(freq)
        expect_equal(len(bits), best, f"bits to encode a message with counts {freq} (the fewest any prefix code needs)")


# --------------------------------------------------------------------------- the relative index


def _encode(row: np.ndarray, b: int) -> tuple[list[int], list[float]]:
    """Brute force, one position at a time: (zeros skipped before each entry, its value), fillers included."""
    gaps, values, skipped = [], [], 0
    nonzero = np.flatnonzero(row)
    for v in row[: nonzero[-1] + 1 if len(nonzero) else 0]:  # nothing is stored after the last non-zero
        if v != 0 or skipped == 2**b - 1:  # a non-zero, or a filler when b bits can skip no more
            gaps.append(skipped)
            values.append(float(v))
            skipped = 0
        else:
            skipped += 1
    return gaps, values


@checker(
    "decoding the relative index",
    answers={
        "compressed_file.from_relative": compressed_file.from_relative,
        "prune.decode_relative": prune.decode_relative,
    },
)
def check_decode_relative(fn: Callable) -> None:
    """``fn(gaps, values, size) -> row`` (a length-``size`` array) inverts the relative index."""
    rng = np.random.default_rng(5)
    rows = [np.array([0, 3.4, 0, 0, 0.9] + [0] * 10 + [1.7]), np.array([2.0, 0, 0, -1.0])]
    rows += [np.where(rng.random(n) < p, rng.normal(size=n), 0.0) for n, p in ((60, 0.1), (200, 0.02), (40, 0.5))]
    for row, b in zip(rows, (3, 2, 3, 4, 2)):
        gaps, values = _encode(row, b)
        got = fn(list(gaps), list(values), len(row))
        got = np.asarray(got, dtype=float)
        expect_equal(got.shape, row.shape, f"shape of the decoded row of {len(row)} values")
        wrong = np.flatnonzero(got != row)
        if len(wrong):
            raise ExerciseError(
                f"gaps {gaps} and values {values} ({b}-bit gaps: zeros skipped before each entry) "
                f"decode to a row with {row[wrong[0]]} at position {wrong[0]}, yours has "
                f"{got[wrong[0]]} there"
            )


# --------------------------------------------------------------------------- how wide a gap


def _stream_bits(positions: list[int], b: int, value_bits: int) -> int:
    row = np.zeros(positions[-1] + 1 if positions else 0)
    row[positions] = 1.0
    gaps, _ = _encode(row, b)
    return len(gaps) * (b + value_bits)


def _sparse_positions(rng: np.random.Generator, n: int, density: float, clustered: bool) -> list[int]:
    if clustered:  # rows of a pruned fc layer: dense bursts, long gaps
        mask = np.zeros(n, dtype=bool)
        for start in rng.integers(0, n, size=max(1, int(n * density / 20))):
            mask[start : start + 20] = rng.random(min(20, n - start)) < 0.8
        return np.flatnonzero(mask).tolist()
    return np.flatnonzero(rng.random(n) < density).tolist()


@checker(
    "the best gap width",
    answers={
        "compressed_file.best_index_bits": compressed_file.best_index_bits,
        "compressed_file.relative_index_entries": compressed_file.relative_index_entries,
        "compressed_file.to_relative": compressed_file.to_relative,
        "compressed_file.fixed_layer_bytes": compressed_file.fixed_layer_bytes,
        "prune.relative_indices": prune.relative_indices,
    },
)
def check_best_gap_width(fn: Callable) -> None:
    """``fn(positions, value_bits) -> b`` in 2..10: the gap width with the fewest bits of gaps + value
    codes (fillers included; the smallest b on a tie), found by simulating every width."""
    rng = np.random.default_rng(11)
    cases = [
        (_sparse_positions(rng, 4000, 0.1, False), 5),
        (_sparse_positions(rng, 4000, 0.02, False), 5),
        (_sparse_positions(rng, 4000, 0.3, False), 8),
        (_sparse_positions(rng, 6000, 0.05, True), 5),
        (_sparse_positions(rng, 4000, 0.005, False), 2),
        ([3, 100, 101, 400], 4),
    ]
    for positions, value_bits in cases:
        costs = {b: _stream_bits(positions, b, value_bits) for b in range(2, 11)}
        expected = min(costs, key=lambda b: (costs[b], b))
        got = fn(list(positions), value_bits)
        expect_true(
            isinstance(got, (int, np.integer)) and not isinstance(got, bool) and 2 <= got <= 10,
            f"return a gap width from 2 to 10, got {got!r}",
        )
        if costs[int(got)] > costs[expected]:
            raise ExerciseError(
                f"for {len(positions)} non-zeros spread over {positions[-1] + 1} positions with "
                f"{value_bits}-bit values, {got}-bit gaps take {costs[int(got)]:,} bits, {expected}-bit "
                f"gaps {costs[expected]:,}: count the filler entries each width needs, and what "
                "each entry costs"
            )
        expect_equal(
            int(got), expected, f"the best gap width (the smallest of equally good ones) for {value_bits}-bit values"
        )
