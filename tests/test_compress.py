"""Tests of chapter 05 (Deep Compression): Huffman coding, relative index, file format, pipeline."""

import itertools
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import compress as C
from course_lib import compressed_file as F
from course_lib import huffman as H
from course_lib import measure, models, prune, quant, recipes, surgery

# --------------------------------------------------------------------------- Huffman


def brute_force_optimal_cost(freq):
    """Smallest sum f·len over all code-length vectors that satisfy Kraft's inequality."""
    symbols = list(freq)
    n = len(symbols)
    if n == 1:
        return freq[symbols[0]]
    best = math.inf
    for lengths in itertools.product(range(1, n), repeat=n):
        if sum(2.0 ** -l for l in lengths) <= 1:
            best = min(best, sum(freq[s] * l for s, l in zip(symbols, lengths)))
    return best


def test_huffman_clrs_example():
    freq = {"a": 45, "b": 13, "c": 12, "d": 16, "e": 9, "f": 5}      # CLRS 16.3: 224 bits per 100 chars
    code = H.huffman_code(freq)
    assert sum(freq[s] * len(w) for s, w in code.items()) == 224
    assert len(code["a"]) == 1


@given(st.dictionaries(st.integers(0, 20), st.integers(1, 50), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_huffman_equals_brute_force_optimum(freq):
    code = H.huffman_code(freq)
    assert sum(freq[s] * len(w) for s, w in code.items()) == brute_force_optimal_cost(freq)


@given(st.dictionaries(st.integers(0, 300), st.integers(1, 10_000), min_size=2, max_size=60))
@settings(max_examples=60, deadline=None)
def test_huffman_prefix_free_complete_and_within_one_bit_of_entropy(freq):
    code = H.huffman_code(freq)
    words = sorted(code.values())
    assert all(not b.startswith(a) for a, b in zip(words, words[1:]))
    assert sum(2.0 ** -len(w) for w in words) == pytest.approx(1.0)           # a full tree: Kraft equality
    h = H.entropy_bits(freq)
    assert h - 1e-9 <= H.expected_length(code, freq) < h + 1
    # canonical: the lengths alone rebuild the same code (what the file stores)
    assert H.canonical_code({s: len(w) for s, w in code.items()}) == code


@given(st.lists(st.integers(0, 40), max_size=400))
@settings(max_examples=80, deadline=None)
def test_encode_decode_round_trip(symbols):
    data, code, nbits = H.encode(symbols)
    assert H.decode(data, code, nbits) == symbols
    assert len(data) == -(-nbits // 8)


@given(st.integers(1, 50), st.sampled_from(["a", 7, (1, 2)]))
@settings(max_examples=20, deadline=None)
def test_encode_one_symbol_streams(n, symbol):
    data, code, nbits = H.encode([symbol] * n)
    assert code == {symbol: "0"} and nbits == n
    assert H.decode(data, code, nbits) == [symbol] * n


def test_encode_empty_and_errors():
    data, code, nbits = H.encode([])
    assert (data, code, nbits) == (b"", {}, 0)
    assert H.decode(b"", {}, 0) == []
    assert H.huffman_code({}) == {}
    with pytest.raises(TypeError, match="frequencies"):
        H.huffman_code([1, 2, 3])
    with pytest.raises(ValueError, match="non-negative integer"):
        H.huffman_code({"a": -1, "b": 2})
    with pytest.raises(ValueError, match="no code"):
        H.encode([1, 2, 9], code={1: "0", 2: "1"})
    data, code, nbits = H.encode([1, 2, 2, 3])
    with pytest.raises(ValueError, match="not a complete code word"):
        H.decode(data, code, nbits - 1)
    with pytest.raises(ValueError, match="nbits"):
        H.decode(data, code, 8 * len(data) + 1)
    with pytest.raises(ValueError, match="Kraft"):
        H.canonical_code({"a": 1, "b": 1, "c": 1})


# --------------------------------------------------------------------------- relative index


def test_relative_index_paper_example():
    # Han et al., Fig. 2 (3-bit index): non-zeros at 1, 4, 15; the filler sits 8 places after 4
    flat = np.zeros(16)
    flat[[1, 4, 15]] = 3.4, 0.9, 1.7
    gaps, entries = F.to_relative(flat, 3)
    assert gaps.tolist() == [1, 2, 7, 2]                       # zeros skipped = position difference − 1
    assert entries.tolist() == [3.4, 0.9, 0.0, 1.7]
    assert F.relative_index_entries([1, 4, 15], 3) == 4


def test_one_relative_index_for_chapters_04_and_05():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(500, generator=g) * (torch.rand(500, generator=g) < 0.05)
    for bits in (2, 3, 5):
        diffs, stored = prune.relative_indices(w, bits)
        gaps, entries = F.to_relative(w.numpy(), bits)
        assert gaps.tolist() == (diffs - 1).tolist() and entries.tolist() == stored.tolist()
        assert len(gaps) == F.relative_index_entries(torch.nonzero(w).flatten().tolist(), bits)
        # chapter 04's storage count packs exactly these d − 1 values
        assert prune.storage_bytes(w, "csr-relative", bits) == -(-len(gaps) * bits // 8) + 4 * len(gaps)


@given(st.lists(st.sampled_from([0, 0, 0, 0, 0, 1, -2, 3]), max_size=300), st.integers(1, 6))
@settings(max_examples=80, deadline=None)
def test_relative_index_round_trip(values, bits):
    flat = np.asarray(values, dtype=np.float32)
    gaps, entries = F.to_relative(flat, bits)
    assert (gaps <= 2 ** bits - 1).all() and (gaps >= 0).all()
    np.testing.assert_array_equal(F.from_relative(gaps, entries, len(flat)), flat)
    positions = np.flatnonzero(flat)
    assert F.relative_index_entries(positions.tolist(), bits) == len(gaps)
    # fillers: one per 2**bits zeros of each run before a non-zero (brute force)
    runs = np.diff(np.concatenate([[-1], positions])) - 1
    assert len(gaps) - len(positions) == sum(int(r) // 2 ** bits for r in runs)


def test_relative_index_errors():
    with pytest.raises(ValueError, match="index_bits"):
        F.to_relative([1, 0, 2], 0)
    with pytest.raises(ValueError, match="index_bits"):
        F.to_relative([1, 0, 2], 17)
    with pytest.raises(ValueError, match="same length"):
        F.from_relative([0, 1], [1.0], 5)
    with pytest.raises(ValueError, match="past the end"):
        F.from_relative([3, 3], [1.0, 2.0], 5)


@given(st.lists(st.integers(0, 2 ** 16 - 1), max_size=50), st.integers(1, 16))
@settings(max_examples=50, deadline=None)
def test_fixed_width_streams_are_the_bit_strings(symbols, bits):
    symbols = [s % (1 << bits) for s in symbols]
    stream = H.encode_stream(symbols, bits, huffman=False)
    bitstring = "".join(format(s, f"0{bits}b") for s in symbols)
    assert stream.data == (int(bitstring + "0" * (-len(bitstring) % 8), 2).to_bytes(len(bitstring) // 8 + (len(bitstring) % 8 > 0), "big") if bitstring else b"")
    assert stream.data == surgery.pack_bits(symbols, bits).numpy().tobytes()
    assert (stream.nbits, stream.count, stream.huffman) == (len(bitstring), len(symbols), False)
    assert H.decode_stream(stream).tolist() == symbols


# --------------------------------------------------------------------------- layers, models, files


def small_compressed_model(bits=5, sparsity=0.9, seed=0):
    torch.manual_seed(seed)
    model = models.lenet_300_100()
    prune.magnitude_prune(model, sparsity)
    prune.make_permanent(model)
    quant.share_weights(model, bits)
    quant.reserve_zero_code(model)
    return model.eval()


def test_quantize_values_rebuilds_exactly_and_checks_bits():
    w = torch.tensor([[0.0, 0.5, -0.25], [0.5, 0.0, 1.0]])
    codebook, indices = F.quantize_values(w, bits=2)
    assert codebook.tolist() == [0.0, -0.25, 0.5, 1.0]
    assert torch.equal(torch.from_numpy(codebook[indices]).reshape(2, 3), w)
    with pytest.raises(ValueError, match="bits=1.*3 distinct non-zero values"):
        F.quantize_values(w, bits=1)
    for bad in (0, 17):
        with pytest.raises(ValueError, match="bits"):
            F.quantize_values(w, bits=bad)
    for bad in (2.5, True):                                         # not a number of bits at all
        with pytest.raises(TypeError, match="bits"):
            F.quantize_values(w, bits=bad)


@pytest.mark.parametrize("bits,huffman", [(None, True), (6, False), ("float32", False), ("float32", True)])
def test_encode_layer_round_trip(bits, huffman):
    torch.manual_seed(1)
    w = torch.randn(40, 30)
    w[torch.rand_like(w) < 0.85] = 0
    if bits != "float32":
        w = torch.round(w * 4) / 4                         # few distinct values
    layer = F.encode_layer("fc", w, bits=bits, index_bits=3, huffman=huffman)
    assert torch.equal(F.decode_layer(layer), w)
    assert layer.nonzero == int((w != 0).sum())


def test_reserve_zero_code_frees_one_code():
    model = small_compressed_model(bits=3)
    for name, (codebook, indices) in quant.codebooks(model).items():
        weight = model.get_submodule(name).weight.detach()
        assert (codebook == 0).any()
        assert len(torch.unique(weight[weight != 0])) <= 2 ** 3 - 1
        assert torch.equal(weight != 0, prune.masks(model)[name])          # pruned weights stay pruned
    F.encode_model(model, bits=3)                                          # 3 bits now suffice


def test_save_load_predictions_equal_exactly(tmp_path):
    model = small_compressed_model()
    x = torch.randn(64, 1, 28, 28)
    path = tmp_path / "m.dcmp"
    size = F.save_compressed(model, path, bits=5, recipe="lenet300-fmnist")
    assert size == path.stat().st_size
    for loaded in (F.load_compressed(path, recipes.build_model), F.load_compressed(path, models.lenet_300_100())):
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
    for key, tensor in F.effective_state_dict(model).items():
        assert torch.equal(F.load_compressed(path, recipes.build_model).state_dict()[key], tensor)


def test_file_size_matches_report_and_beats_float32(tmp_path):
    model = small_compressed_model(sparsity=0.92)
    report = C.compression_report(model, bits=5, index_bits=5)
    size = F.save_compressed(model, tmp_path / "m.dcmp", bits=5, index_bits=5)
    overhead = size - report.bytes_huffman - report.other_bytes
    assert 0 < overhead < 400                          # names, shapes, lengths, checksum
    assert measure.file_bytes(models.lenet_300_100()) / size > 20
    sp = prune.sparsity(model, per_layer=True)
    for row in report:
        assert row.kept_pct == pytest.approx(100 * (1 - sp[row.layer]))
        assert row.weight_bits == 5 and row.index_bits == 5
        assert row.weight_bits_huffman <= 5 and row.index_bits_huffman <= 5     # Huffman never loses
        if row.weights >= 10_000:          # on a tiny layer the two 32-byte code tables can cost more
            assert row.ratio_huffman > row.ratio_fixed
    assert "ratio" in report.table() and "total" in str(report)
    total = str(report).splitlines()[-1].split()
    assert total[0] == "total" and total[-1] == f"{4 * report.weights / report.bytes_huffman:.1f}×"


def test_fixed_layer_bytes_matches_the_real_format():
    torch.manual_seed(0)
    for bits in (2, 4):
        w = torch.zeros(500)
        w[::3] = torch.arange(1, len(w[::3]) + 1) % (2 ** bits - 1) + 1.0      # all 2**bits - 1 values used
        layer = F.encode_layer("l", w, bits=bits, index_bits=2, huffman=False)
        assert layer.payload_bytes == F.fixed_layer_bytes(layer.entries, bits, 2)


def test_bit_widths_outside_1_to_16_are_rejected(tmp_path):
    model = small_compressed_model()
    for bad in (0, 17, -3):
        with pytest.raises(ValueError, match="bits"):
            F.save_compressed(model, tmp_path / "m.dcmp", bits=bad)
        with pytest.raises(ValueError, match="index_bits"):
            F.save_compressed(model, tmp_path / "m.dcmp", bits=5, index_bits=bad)
    with pytest.raises(ValueError, match="bits=2"):
        F.save_compressed(model, tmp_path / "m.dcmp", bits=2)       # 31 values do not fit 2 bits
    with pytest.raises(ValueError, match="unknown layers"):
        F.save_compressed(model, tmp_path / "m.dcmp", bits={"nope": 5})


@pytest.fixture(scope="module")
def saved_bytes():
    return F.to_bytes(small_compressed_model(), bits=5, recipe="lenet300-fmnist")


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_truncated_or_corrupted_files_raise(saved_bytes, data):
    cut = data.draw(st.integers(0, len(saved_bytes) - 1))
    with pytest.raises(F.CompressedFileError, match="truncated|corrupted|checksum"):
        F.from_bytes(saved_bytes[:cut])
    pos = data.draw(st.integers(0, len(saved_bytes) - 1))
    flip = data.draw(st.integers(1, 255))
    corrupted = bytearray(saved_bytes)
    corrupted[pos] ^= flip
    with pytest.raises(F.CompressedFileError):
        F.from_bytes(bytes(corrupted))


def test_foreign_and_future_files_raise(saved_bytes, tmp_path):
    with pytest.raises(F.CompressedFileError, match="magic"):
        F.from_bytes(b"PK\x03\x04" + saved_bytes[4:])
    body = bytearray(saved_bytes[:-4])
    body[4] = 99                                                    # a version we do not know, valid CRC
    with pytest.raises(F.CompressedFileError, match="version 99"):
        F.from_bytes(bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))))
    path = tmp_path / "float.pt"
    torch.save(models.lenet_300_100().state_dict(), path)
    with pytest.raises(F.CompressedFileError):
        F.load_compressed(path, recipes.build_model)
    (tmp_path / "nor.dcmp").write_bytes(F.to_bytes(small_compressed_model(), bits=5))
    with pytest.raises(ValueError, match="pass model="):
        F.load_compressed(tmp_path / "nor.dcmp", recipes.build_model)
    with pytest.raises(ValueError, match="does not fit"):
        F.load_compressed(tmp_path / "nor.dcmp", models.lenet5())


def test_effective_state_dict_folds_masks_and_codebooks():
    torch.manual_seed(0)
    model = models.lenet_300_100()
    prune.magnitude_prune(model, 0.5)                               # torch.nn.utils.prune reparametrization
    state = F.effective_state_dict(model)
    assert set(state) == set(models.lenet_300_100().state_dict())
    assert torch.equal(state["1.weight"], model[1].weight)
    shared = small_compressed_model()
    state = F.effective_state_dict(shared)
    assert set(state) == set(models.lenet_300_100().state_dict())
    assert torch.equal(state["3.weight"], shared[3].weight)


# --------------------------------------------------------------------------- pipeline


@pytest.mark.usefixtures("fashion_ready")
def test_pipeline_is_deterministic_for_a_seed(tmp_path):
    from course_lib import data

    runs = []
    for i in range(2):
        train, test = data.loaders("fashion-mnist", 128, train_subset=512, test_subset=256, augment=False,
                                   device="cpu")
        torch.manual_seed(3)
        model = models.lenet_300_100()
        path = tmp_path / f"run{i}.dcmp"
        _, stages = C.deep_compress(model, train, test, sparsity={"1": 0.9, "3": 0.8, "5": 0.5}, bits=4,
                                    seed=5, path=str(path), recipe="lenet300-fmnist")
        runs.append((path.read_bytes(), [(s.name, s.accuracy, s.bytes) for s in stages]))
    assert runs[0] == runs[1]
    names = [s[0] for s in runs[0][1]]
    assert names == ["pruned", "quantized", "huffman"]
    sizes = [s[2] for s in runs[0][1]]
    assert sizes[0] > sizes[1] > sizes[2]
    assert runs[0][1][1][1] == runs[0][1][2][1]          # Huffman coding is lossless


@pytest.mark.usefixtures("fashion_ready")
def test_centroids_fine_tune_with_adamw_by_default_because_sgd_blows_them_up():
    """A centroid's gradient sums its cluster's gradients: SGD at the pruning rate wrecks the shared
    weights, AdamW (the default of the quantized stage) keeps the pruned accuracy."""
    from course_lib import data, recipes

    train, test = data.loaders("fashion-mnist", 128, train_subset=4096, test_subset=1000, augment=False,
                               device="cpu")
    settings = dict(sparsity={"0": 0.34, "3": 0.88, "7": 0.92, "9": 0.81}, bits=5, index_bits=5, lr=0.05,
                    seed=0, device="cpu")
    _, adamw = C.deep_compress(recipes.shipped_model("lenet5-fmnist"), train, test, **settings)
    _, sgd = C.deep_compress(recipes.shipped_model("lenet5-fmnist"), train, test, quant_optimizer="sgd",
                             quant_lr=0.05, **settings)
    pruned = adamw[0].accuracy
    assert adamw[1].accuracy > pruned - 0.02                 # AdamW: the quantized net keeps its accuracy
    assert sgd[1].accuracy < pruned - 0.2                    # SGD at the pruning rate: collapse


VGG_SPARSITY = {"0.0": 0.3, "1.0": 0.6, "3.0": 0.65, "4.0": 0.7, "6.0": 0.7, "7.0": 0.7, "10": 0.5}


def test_pipeline_on_a_vgg_with_batchnorm_round_trips_exactly(tmp_path, random_images):
    """The notebook's conv-net section: conv weights sparse-coded, BatchNorm tensors (incl. 0-d) raw."""
    torch.manual_seed(0)
    model = models.vgg_small(num_classes=10, in_channels=3, widths=(8, 16, 32))
    train, test = random_images(64, 16, 1, True), random_images(32, 16, 2, False)
    path = tmp_path / "vgg.dcmp"
    model, stages = C.deep_compress(model, train, test, sparsity=VGG_SPARSITY, bits=dict.fromkeys(VGG_SPARSITY, 5),
                                    index_bits="auto", seed=0, path=str(path), device="cpu")
    assert [s.bytes for s in stages] == sorted((s.bytes for s in stages), reverse=True)
    assert stages[0].bytes > stages[1].bytes > stages[2].bytes
    assert model[0][1].num_batches_tracked.dim() == 0 and int(model[0][1].num_batches_tracked) > 0
    loaded = F.load_compressed(path, models.vgg_small(num_classes=10, in_channels=3, widths=(8, 16, 32)))
    x = next(iter(test))[0]
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    for key in ("0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked", "7.1.weight", "7.1.bias"):
        assert torch.equal(loaded.state_dict()[key], F.effective_state_dict(model)[key])
    assert loaded.state_dict()["0.1.num_batches_tracked"].dtype == torch.int64
    # the conv weights really are pruned and shared in the file: 4-bit codes + zero, sparse as asked
    w = loaded[7][0].weight
    assert len(torch.unique(w)) <= 2 ** 5 and (w == 0).float().mean() >= 0.69


def test_zero_dim_tensors_are_stored(tmp_path):
    bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    bn[1].num_batches_tracked.fill_(7)
    path = tmp_path / "bn.dcmp"
    F.save_compressed(bn, path, bits="float32")
    loaded = F.load_compressed(path, torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))
    assert int(loaded[1].num_batches_tracked) == 7 and loaded[1].num_batches_tracked.dim() == 0


# --------------------------------------------------------------------------- widget


def test_tradeoff_state_and_explorer():
    torch.manual_seed(0)
    model = models.lenet_300_100().eval()
    x, y = torch.randn(50, 1, 28, 28), torch.randint(0, 10, (50,))
    sparsity, bits = {"1": 0.9, "3": 0.8, "5": 0.5}, {"1": 4, "3": 4, "5": 5}
    s = C.tradeoff_state(model, x, y, sparsity, bits)
    assert [r["layer"] for r in s.layers] == ["1", "3", "5"]
    assert s.layers[0]["kept"] == pytest.approx(0.1, abs=1e-3)
    assert s.other_bytes == 4 * (300 + 100 + 10)
    assert s.total_bytes == sum(r["codebook"] + r["values"] + r["index"] for r in s.layers) + s.other_bytes
    assert s.reference_bytes == measure.file_bytes(model) and s.ratio == s.reference_bytes / s.total_bytes
    fewer = C.tradeoff_state(model, x, y, sparsity, {**bits, "1": 2})
    assert fewer.total_bytes < s.total_bytes
    assert C.tradeoff_state(model, x, y, 0.5, 4).layers[2]["kept"] == pytest.approx(0.5, abs=1e-2)   # one value: all
    with pytest.raises(ValueError, match=r"bits\['1'\]=9.*kept for zero"):
        C.tradeoff_state(model, x, y, sparsity, {**bits, "1": 9})
    with pytest.raises(ValueError, match=r"sparsity\['3'\]"):
        C.tradeoff_state(model, x, y, {**sparsity, "3": 1.0}, bits)
    with pytest.raises(TypeError, match=r"bits\['5'\]"):
        C.tradeoff_state(model, x, y, sparsity, {**bits, "5": 4.5})
    with pytest.raises(ValueError, match="unknown layers"):
        C.tradeoff_state(model, x, y, {"nope": 0.5}, bits)

    explorer = C.tradeoff_explorer(model, x, y, sparsity=sparsity, bits=bits, sparsity_options=(0.5, 0.8, 0.9))
    assert explorer.settings() == {"sparsity_0": 0.9, "sparsity_1": 0.8, "sparsity_2": 0.5,
                                   "bits_0": 4, "bits_1": 4, "bits_2": 5}
    assert explorer.error is None and "bytes" in explorer.readout.value
    assert explorer.state.total_bytes == s.total_bytes and explorer.state.accuracy == s.accuracy
    assert explorer.state_fn(**explorer.settings()) is explorer.state               # cached
    explorer.set(bits_2=1)
    assert "bits['5']=1" in explorer.error


def test_best_index_bits_gives_the_smallest_file():
    model = small_compressed_model(sparsity=0.95)
    best = F.best_index_bits(model, bits=5, huffman=True, candidates=range(2, 9))
    assert set(best) == {"1", "3", "5"}
    size_best = len(F.to_bytes(model, bits=5, index_bits=best))
    for b in range(2, 9):
        assert size_best <= len(F.to_bytes(model, bits=5, index_bits=b))


@given(st.lists(st.integers(0, 15), max_size=300), st.booleans())
@settings(max_examples=60, deadline=None)
def test_vectorized_stream_coding_matches_the_plain_coder(symbols, skewed):
    symbols = np.asarray([s % 3 if skewed else s for s in symbols], dtype=np.int64)
    stream = H.encode_stream(symbols, 4, huffman=True)
    code = H.canonical_code({s: int(n) for s, n in enumerate(stream.lengths) if n})
    data, _, nbits = H.encode(symbols.tolist(), code)                     # the readable coder
    assert (stream.data, stream.nbits) == (data, nbits)
    assert H.decode_stream(stream).tolist() == symbols.tolist()
    assert H._decode_canonical(stream.data, stream.nbits, stream.lengths, max_table_bits=0).tolist() == symbols.tolist()


def test_fc_speed_report_structure_and_errors():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 30, generator=g) * (torch.rand(40, 30, generator=g) < 0.1)
    report = C.fc_speed({"a": w, "b": w.t()}, batches=(1, 4), min_run_time=0.001)
    assert [(r.layer, r.batch) for r in report] == [("a", 1), ("a", 4), ("b", 1), ("b", 4)]
    assert all(r.dense_s > 0 and r.sparse_s > 0 for r in report)
    assert report[0].density == pytest.approx(float((w != 0).float().mean()))
    a1 = report[0]
    assert report.speedup(1, "a") == pytest.approx(a1.dense_s / a1.sparse_s)
    both = report[0].dense_s + report[2].dense_s
    assert report.speedup(1, ["a", "b"]) == pytest.approx(both / (report[0].sparse_s + report[2].sparse_s))
    assert report.speedup(1) == report.speedup(1, ["a", "b"])
    assert all(len(r.dense_rounds) == len(r.sparse_rounds) == 3 for r in report)          # interleaved rounds
    assert a1.dense_s == sorted(a1.dense_rounds)[1] and a1.sparse_s == sorted(a1.sparse_rounds)[1]
    assert "speed-up" in report.table() and "40×30" in report.table() and "rounds" not in report.table()
    with pytest.raises(ValueError, match="batch=2"):
        report.speedup(2)
    with pytest.raises(ValueError, match="2-d"):
        C.fc_speed({"c": torch.zeros(2, 2, 2)})
    with pytest.raises(ValueError, match="positive integers"):
        C.fc_speed({"a": w}, batches=(0,))
    with pytest.raises(TypeError, match="mapping"):
        C.fc_speed([w])


def test_deep_compress_without_retraining_keeps_a_pruned_net_as_it_is(tmp_path, fashion_ready):
    """prune_epochs=0 on a net already pruned to the targets (chapter 05's long run): the pruned stage
    is that very net, weight for weight (nothing new pruned, nothing retrained)."""
    from course_lib import data
    from course_lib.train import evaluate

    train, test = data.loaders("fashion-mnist", 64, train_subset=128, test_subset=128, augment=False, device="cpu")
    torch.manual_seed(0)
    net = models.lenet_300_100()
    targets = {"1": 0.92, "3": 0.91, "5": 0.74}
    prune.make_permanent(prune.magnitude_prune(net, targets))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _, stages = C.deep_compress(net, train, test, sparsity=targets, bits=5, prune_epochs=0, quant_epochs=0,
                                seed=0, path=str(tmp_path / "x.dcmp"), device="cpu")
    reference = models.lenet_300_100()
    reference.load_state_dict(before)
    assert stages[0].accuracy == evaluate(reference, test)
