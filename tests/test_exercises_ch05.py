"""Chapter 05's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's answer."""

import heapq
import math

import numpy as np
import pytest

from course_lib import compressed_file, huffman, prune
from course_lib.checks import ExerciseError
from course_lib.exercises import ch05 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# ------------------------------------------------------------------ Huffman

def huffman_right(freq, merge=heapq.heappop):
    if len(freq) == 1:
        return {s: "0" for s in freq}
    heap = [(f, i, {s: ""}) for i, (s, f) in enumerate(freq.items())]
    heapq.heapify(heap)
    counter = len(heap)
    while len(heap) > 1:
        f1, _, left = heapq.heappop(heap)
        f2, _, right = heapq.heappop(heap)
        heapq.heappush(heap, (f1 + f2, counter, {s: "0" + w for s, w in left.items()} | {s: "1" + w for s, w in right.items()}))
        counter += 1
    return heap[0][2]


def merge_most_frequent(freq):                                          # the two *largest* subtrees first
    if len(freq) == 1:
        return {s: "0" for s in freq}
    trees = [(f, {s: ""}) for s, f in freq.items()]
    while len(trees) > 1:
        trees.sort(key=lambda t: t[0])
        (f2, right), (f1, left) = trees.pop(), trees.pop()
        trees.append((f1 + f2, {s: "0" + w for s, w in left.items()} | {s: "1" + w for s, w in right.items()}))
    return trees[0][1]


def fixed_length(freq):
    width = max(1, math.ceil(math.log2(len(freq))))
    return {s: format(i, f"0{width}b") for i, s in enumerate(freq)}


def shannon(freq):                                                      # ⌈−log₂ p⌉ lengths, made canonical
    total = sum(freq.values())
    lengths = {s: max(1, math.ceil(-math.log2(c / total))) for s, c in freq.items()}
    code, value, previous = {}, 0, None
    for s in sorted(lengths, key=lambda s: (lengths[s], str(s))):
        if previous is not None:
            value = (value + 1) << (lengths[s] - previous)
        code[s], previous = format(value, f"0{lengths[s]}b"), lengths[s]
    return code


def test_huffman(capsys):
    ex.check_huffman(huffman_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_huffman(stub)
    for wrong in (merge_most_frequent, fixed_length, shannon):
        with pytest.raises(ExerciseError, match="bits to encode a message"):
            ex.check_huffman(wrong)
    with pytest.raises(ExerciseError, match="not a prefix code"):
        ex.check_huffman(lambda freq: {s: "1" * (i + 1) for i, s in enumerate(freq)} | {next(iter(freq)): "11"})


def test_huffman_refuses_the_library():
    with pytest.raises(ExerciseError, match="huffman.huffman_code"):
        ex.check_huffman(huffman.huffman_code)
    code = huffman.huffman_code                                          # an alias in a closure
    with pytest.raises(ExerciseError, match="huffman.huffman_code"):
        ex.check_huffman(lambda freq: dict(code(freq)))
    with pytest.raises(ExerciseError, match="huffman.canonical_code"):
        ex.check_huffman(lambda freq: huffman.canonical_code({s: 3 for s in freq}))


# ------------------------------------------------------------------ decoding the relative index

def decode_right(gaps, values, size):
    row, position = np.zeros(size), -1
    for gap, value in zip(gaps, values):
        position += gap + 1
        row[position] = value
    return row


def test_decode_relative(capsys):
    ex.check_decode_relative(decode_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_decode_relative(stub)

    def gaps_as_differences(gaps, values, size):                       # d, not d − 1
        row, position = np.zeros(size), -1
        for gap, value in zip(gaps, values):
            position += gap
            row[position] = value
        return row

    def fillers_take_no_place(gaps, values, size):                      # a filler only skips zeros
        row, position = np.zeros(size), -1
        for gap, value in zip(gaps, values):
            position += gap + (value != 0)
            row[position] = value
        return row

    for wrong in (gaps_as_differences, fillers_take_no_place):
        with pytest.raises(ExerciseError, match="decode to a row"):
            ex.check_decode_relative(wrong)
    with pytest.raises(ExerciseError, match="compressed_file.from_relative"):
        ex.check_decode_relative(compressed_file.from_relative)
    with pytest.raises(ExerciseError, match="prune.decode_relative"):
        ex.check_decode_relative(lambda g, v, n: prune.decode_relative(
            __import__("torch").tensor(g) + 1, __import__("torch").tensor(v), n).numpy())


# ------------------------------------------------------------------ the best gap width

def entries(positions, b):
    count, previous = 0, -1
    for p in positions:
        count += 1 + (p - previous - 1) // 2 ** b
        previous = p
    return count


def best_right(positions, value_bits):
    return min(range(2, 11), key=lambda b: (entries(positions, b) * (b + value_bits), b))


def test_best_gap_width(capsys):
    ex.check_best_gap_width(best_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_best_gap_width(stub)
    for wrong in (lambda positions, value_bits: 5,                                            # the paper's width
                  lambda positions, value_bits: min(range(2, 11), key=lambda b: (entries(positions, b) * b, b)),  # fillers' values free
                  lambda positions, value_bits: 2):                                           # fillers forgotten
        with pytest.raises(ExerciseError, match="count the filler entries"):
            ex.check_best_gap_width(wrong)
    with pytest.raises(ExerciseError, match="compressed_file.relative_index_entries"):
        ex.check_best_gap_width(lambda positions, value_bits: min(
            range(2, 11), key=lambda b: compressed_file.relative_index_entries(positions, b) * (b + value_bits)))
