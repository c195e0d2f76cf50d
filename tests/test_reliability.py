"""Issue 27: the catalogue of bad input, one line a case.

Every public function of the chapter modules refuses bad input with a ``TypeError`` (wrong type) or a
``ValueError`` (wrong value) whose message names the parameter and the rule — before it changes
anything. A case is ``(call, exception type, fragment of the message)``; the fragment is matched
literally. A new public function joins the catalogue under its module's heading.

``INPLACE`` holds the in-place transforms: after the rejected call the model must be exactly as it
was (same state_dict keys and values, same modules), because a transform that changes first and
checks later leaves a half-changed model behind.

(The train / CLI / checkpoint cases live in ``tests/test_reliability_train.py``.)
"""

import copy
import io
import math
import re
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn as nn

from course_lib import (args, capstone, compress, compressed_file as CF, data, densenet, huffman as H, measure,
                        models, prune, quant, resnets, smallnets as sn, wae)

NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------------- small things to break

def tiny(seed: int = 0) -> nn.Sequential:
    """A 2-layer net for 1×6×6 images."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def tiny_nan(value: float = NAN) -> nn.Sequential:
    """``tiny`` with one NaN (or inf) weight in its *second* layer: a transform that changes the first
    layer before it looks at the second would leave the model half-changed."""
    m = tiny()
    with torch.no_grad():
        m[3].weight[1, 5] = value
    return m


def shared_last() -> nn.Sequential:
    """``tiny`` whose last layer already has shared weights."""
    return quant.share_weights(tiny(), 2, layers="3")


def pruned_state(**change) -> dict:
    """The state_dict of a magnitude-pruned ``tiny`` (``weight_orig`` / ``weight_mask`` entries), with
    entries replaced (a tensor) or removed (None)."""
    state = prune.magnitude_prune(tiny(1), 0.5).state_dict()
    for key, value in change.items():
        key = key.replace("_", ".", 1)
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


def meta_lenet5() -> nn.Sequential:
    with torch.device("meta"):
        return models.lenet5()


W = torch.linspace(-1, 1, 24).reshape(4, 6)
W_NAN = W.clone()
W_NAN[2, 3] = NAN
W_INF = W.clone()
W_INF[0, 0] = INF
ALL_NAN = torch.full((8,), NAN)
IMAGES1 = torch.zeros(8, 1, 6, 6, dtype=torch.uint8)
LABELS = torch.zeros(8, dtype=torch.long)


def fit_stub():
    return densenet.DepthFit(False, (1.0, 0.0, 0.0), {})


def recipe_rows():
    return [capstone.RecipeRow("a", "", 0.9, 0, 0, 0, 1000, 1.0, 0.0)]


def crafted(records: int, write) -> bytes:
    """A compressed file with a valid magic, version and checksum around records written by ``write``."""
    w = CF._Writer()
    w.buffer.write(CF.MAGIC)
    w.pack("B", CF.VERSION)
    w.text("")
    w.pack("I", records)
    write(w)
    body = w.buffer.getvalue()
    return body + struct.pack("<I", zlib.crc32(body))


def raw_record(shape, payload: bytes, code: int = 0):
    def write(w):
        w.pack("B", CF.RAW)
        w.text("w")
        w.shape(shape)
        w.pack("B", code)
        w.bytes(payload)
    return write


def sparse_record(shape, values: bytes, gaps: H.Stream, nonzero: int = 0):
    def write(w):
        w.pack("B", CF.SPARSE)
        w.text("w")
        w.shape(shape)
        w.pack("BBI", 0, 5, nonzero)
        w.bytes(values)
        w.stream(gaps)
    return write


# --------------------------------------------------------------------------- the catalogue

CASES = [
    # ----------------------------------------------------------------- args
    ("args", lambda: args.check_finite("w", torch.tensor([1.0, NAN])), ValueError, "w contains 1 NaN or inf"),
    ("args", lambda: args.check_finite("w", torch.tensor([INF, -INF])), ValueError, "w contains 2 NaN or inf"),
    ("args", lambda: args.check_finite("w", [1.0, NAN]), ValueError, "w contains 1 NaN or inf"),
    ("args", lambda: args.check_finite("w", "abc"), TypeError, "w must be a tensor or numbers"),
    ("args", lambda: args.check_int("n", 1.5), TypeError, "n=1.5 must be an int"),
    ("args", lambda: args.check_int("n", True), TypeError, "n=True must be an int"),
    ("args", lambda: args.check_int("n", 0), ValueError, "n=0 must be >= 1"),
    ("args", lambda: args.check_float("x", NAN), ValueError, "x=nan must be in"),
    ("args", lambda: args.check_float("x", INF, 0), ValueError, "x=inf must be in"),
    ("args", lambda: args.check_bits("bits", 33), ValueError, "bits=33 must be an integer number of bits"),
    ("args", lambda: args.check_fraction("s", NAN), ValueError, "s=nan must be a fraction"),
    ("args", lambda: args.check_fraction("s", 1.0), ValueError, "s=1.0 must be a fraction in [0, 1)"),

    # ----------------------------------------------------------------- quant
    ("quant", lambda: quant.kmeans_codebook(W_NAN, 2), ValueError, "weights contains 1 NaN or inf"),
    ("quant", lambda: quant.kmeans_codebook(ALL_NAN, 2), ValueError, "weights contains 8 NaN or inf"),
    ("quant", lambda: quant.kmeans_codebook(W_INF, 3, init="density"), ValueError, "weights contains"),
    ("quant", lambda: quant.kmeans_codebook(W, 0), ValueError, "bits=0"),
    ("quant", lambda: quant.kmeans_codebook(W, 2.0), TypeError, "bits=2.0"),
    ("quant", lambda: quant.kmeans_codebook(W, 2, init="zip"), ValueError, "init='zip'"),
    ("quant", lambda: quant.kmeans_codebook(W, 2, iters=-1), ValueError, "iters=-1"),
    ("quant", lambda: quant.kmeans_codebook([1.0, 2.0], 2), TypeError, "weights must be a torch.Tensor"),
    ("quant", lambda: quant.kmeans_codebook(torch.zeros(0), 2), ValueError, "weights is empty"),
    ("quant", lambda: quant.kmeans_codebook(torch.arange(4), 2), TypeError, "floating-point"),
    ("quant", lambda: quant.kmeans_codebook(W, 2, mask=torch.ones(3, dtype=torch.bool)), ValueError, "mask"),
    ("quant", lambda: quant.encode_weights(W_NAN, "linear", 4), ValueError, "w contains"),
    ("quant", lambda: quant.encode_weights(W_NAN, "kmeans", 4), ValueError, "w contains"),
    ("quant", lambda: quant.encode_weights(W_INF, "fixed", 8), ValueError, "w contains"),
    ("quant", lambda: quant.encode_weights(W_NAN, "binary"), ValueError, "w contains"),
    ("quant", lambda: quant.encode_weights(W_NAN, "twn"), ValueError, "w contains"),
    ("quant", lambda: quant.encode_weights(W_NAN, "ttq"), ValueError, "w contains"),
    ("quant", lambda: quant.encode_weights(W, "linear"), ValueError, "needs bits"),
    ("quant", lambda: quant.encode_weights(W, "linear", 1), ValueError, "bits=1"),
    ("quant", lambda: quant.encode_weights(W, "zip", 4), ValueError, "method='zip'"),
    ("quant", lambda: quant.fake_quantize(W_NAN), ValueError, "x contains"),
    ("quant", lambda: quant.fake_quantize(W_INF, 4, axis=0), ValueError, "x contains"),
    ("quant", lambda: quant.fake_quantize(W, bits=1), ValueError, "bits=1"),
    ("quant", lambda: quant.fake_quantize(W, axis=5), ValueError, "axis=5"),
    ("quant", lambda: quant.linear_qparams(W_NAN), ValueError, "x contains"),
    ("quant", lambda: quant.quantize_linear(W_NAN, 0.1, 0), ValueError, "x contains"),
    ("quant", lambda: quant.quantize_linear(W, NAN, 0), ValueError, "scale contains"),
    ("quant", lambda: quant.binarize(W_NAN), ValueError, "w contains"),
    ("quant", lambda: quant.binarize(W, "row"), ValueError, "scaling='row'"),
    ("quant", lambda: quant.twn_ternarize(W_NAN), ValueError, "w contains"),
    ("quant", lambda: quant.ttq_threshold(W_NAN), ValueError, "latent contains"),
    ("quant", lambda: quant.ttq_threshold(W, 0), ValueError, "t=0"),
    ("quant", lambda: quant.ttq_init_scales(W_INF), ValueError, "w contains"),
    ("quant", lambda: quant.range_frac_len(W_NAN, 8), ValueError, "x contains"),
    ("quant", lambda: quant.to_fixed_point(W, 1, 2), ValueError, "bits=1"),
    ("quant", lambda: quant.to_fixed_point(W, 8, 0.5), TypeError, "frac_len=0.5"),
    ("quant", lambda: quant.frac_len_candidates(W, 8, search=(1, -1)), ValueError, "search=(1, -1)"),
    ("quant", lambda: quant.int_range(1), ValueError, "bits=1"),
    ("quant", lambda: quant.quant_state(W_NAN), ValueError, "weights contains"),
    ("quant", lambda: quant.quant_state(ALL_NAN, "linear", 4), ValueError, "weights contains 8 NaN or inf"),
    ("quant", lambda: quant.quant_state(torch.zeros(6)), ValueError, "weights are all zero"),
    ("quant", lambda: quant.quant_state(W, "zip"), ValueError, "method='zip'"),
    ("quant", lambda: quant.quant_state(W, "ttq", threshold=0), ValueError, "t=0"),
    ("quant", lambda: quant.quant_state(W, "linear", 1), ValueError, "bits=1"),
    ("quant", lambda: quant.quant_state(W, "kmeans", 17), ValueError, "bits=17"),
    ("quant", lambda: quant.quant_state(W, "kmeans", 2.5), TypeError, "bits=2.5"),
    ("quant", lambda: quant.share_weights(tiny(), 0), ValueError, "bits=0"),
    ("quant", lambda: quant.share_weights(tiny(), 2, init="zip"), ValueError, "init='zip'"),
    ("quant", lambda: quant.share_weights(tiny(), 2, layers="nope"), ValueError, "nope"),
    ("quant", lambda: quant.share_weights(tiny(), {"0": 2}, layers=["0", "3"]), ValueError, "no width for layers ['3']"),
    ("quant", lambda: quant.shareable_layers("model"), TypeError, "model must be an nn.Module"),
    ("quant", lambda: quant.shareable_layers(nn.ReLU()), ValueError, "no conv or linear layer"),
    ("quant", lambda: quant.quantize_model(tiny(), "zip"), ValueError, "method='zip'"),
    ("quant", lambda: quant.quantize_model(tiny(), "linear"), ValueError, "needs bits"),
    ("quant", lambda: quant.quantize_model(tiny(), "linear", 1), ValueError, "bits=1"),
    ("quant", lambda: quant.codebook_dot([0.5, 1.0], [0, 2], [1.0, 1.0]), ValueError, "indices must lie in [0, 2)"),
    ("quant", lambda: quant.binary_dot([1, 0], [1.0, 2.0]), ValueError, "+1 and -1"),
    ("quant", lambda: quant.xnor_dot(1, 1, 0), ValueError, "n=0"),

    # ----------------------------------------------------------------- prune
    ("prune", lambda: prune.magnitude_prune(tiny_nan(), 0.5), ValueError, "layer '3''s weight contains 1 NaN"),
    ("prune", lambda: prune.magnitude_prune(tiny_nan(INF), 0.5, scope="global"), ValueError, "contains 1 NaN or inf"),
    ("prune", lambda: prune.magnitude_prune(tiny(), 1.0), ValueError, "sparsity=1.0"),
    ("prune", lambda: prune.magnitude_prune(tiny(), NAN), ValueError, "sparsity=nan"),
    ("prune", lambda: prune.magnitude_prune(tiny(), "half"), TypeError, "sparsity='half'"),
    ("prune", lambda: prune.magnitude_prune(tiny(), {"nope": 0.5}), ValueError, "nope"),
    ("prune", lambda: prune.magnitude_prune(tiny(), {"0": 1.5}), ValueError, "sparsity['0']=1.5"),
    ("prune", lambda: prune.magnitude_prune(tiny(), 0.5, scope="row"), ValueError, "scope='row'"),
    ("prune", lambda: prune.magnitude_prune(tiny(), {"0": 0.5}, layers="0"), ValueError, "not both"),
    ("prune", lambda: prune.prune_by_scores(tiny(), {"0": torch.full((4, 1, 3, 3), NAN)}, 0.5), ValueError,
     "scores['0'] contains 36 NaN"),
    ("prune", lambda: prune.prune_by_scores(tiny(), {"0": torch.ones(3)}, 0.5), ValueError, "scores['0'] has shape (3,)"),
    ("prune", lambda: prune.prune_by_scores(tiny(), {"0": [1.0]}, 0.5), TypeError, "scores['0'] must be a tensor"),
    ("prune", lambda: prune.magnitude_mask(W_NAN, 0.5), ValueError, "weight contains"),
    ("prune", lambda: prune.magnitude_mask([1.0], 0.5), TypeError, "weight must be a tensor"),
    ("prune", lambda: prune.lowest_mask(W_INF, 0.5), ValueError, "scores contains"),
    ("prune", lambda: prune.lowest_mask(W, -0.1), ValueError, "sparsity=-0.1"),
    ("prune", lambda: prune.kept_schedule(0.5, 0), ValueError, "steps=0"),
    ("prune", lambda: prune.kept_schedule(1.5, 2), ValueError, "final=1.5"),
    ("prune", lambda: prune.relative_indices(W, 0), ValueError, "index_bits=0"),
    ("prune", lambda: prune.storage_bytes(W, "zip"), ValueError, "fmt='zip'"),
    ("prune", lambda: prune.channel_plan(tiny(), 1.0), ValueError, "sparsity=1.0"),
    ("prune", lambda: prune.choose_sparsities({"layers": {}}, -1), ValueError, "tolerance=-1"),
    ("prune", lambda: prune.sensitivity_scan(tiny(), [], [1.5]), ValueError, "sparsities[i]=1.5"),
    ("prune", lambda: prune.sparsity(nn.ReLU()), ValueError, "no conv or linear layer"),
    ("prune", lambda: prune.iterative_prune(tiny(), [], [], [0.5], lr=0), ValueError, "lr=0"),
    ("prune", lambda: prune.load_pruned(tiny(), [1, 2]), TypeError, "state_dict must be a mapping"),
    ("prune", lambda: prune.load_pruned(tiny(), {"9.weight_mask": torch.ones(1)}), ValueError, "mask for '9'"),
    ("prune", lambda: prune.iterative_prune(tiny(), [], [], [0.5], epochs=-1), ValueError, "epochs=-1"),

    # ----------------------------------------------------------------- huffman
    ("huffman", lambda: H.encode_stream([0, 5], 2, huffman=True), ValueError, "symbols must lie in [0, 2**bits) = [0, 4)"),
    ("huffman", lambda: H.encode_stream([0, 5], 2, huffman=False), ValueError, "[0, 4) for bits=2; got 5"),
    ("huffman", lambda: H.encode_stream([-1, 0], 2, huffman=True), ValueError, "got -1"),
    ("huffman", lambda: H.encode_stream(np.array([-3]), 4, huffman=False), ValueError, "got -3"),
    ("huffman", lambda: H.encode_stream([0.5, 1.0], 2, huffman=True), TypeError, "symbols must be integers"),
    ("huffman", lambda: H.encode_stream(np.array([1.0, 2.0]), 2, huffman=False), TypeError, "symbols must be integers"),
    ("huffman", lambda: H.encode_stream(torch.tensor([1.5]), 2, huffman=True), TypeError, "symbols must be integers"),
    ("huffman", lambda: H.encode_stream([True, False], 1, huffman=True), TypeError, "symbols must be integers"),
    ("huffman", lambda: H.encode_stream([1], 0, huffman=True), ValueError, "bits=0"),
    ("huffman", lambda: H.encode_stream([1], 17, huffman=False), ValueError, "bits=17"),
    ("huffman", lambda: H.encode_stream([1], 2.0, huffman=True), TypeError, "bits=2.0"),
    ("huffman", lambda: H.encode_stream([1], 2, huffman="yes"), TypeError, "huffman='yes'"),
    ("huffman", lambda: H.huffman_lengths([9], 3), ValueError, "[0, 8)"),
    ("huffman", lambda: H.expected_length({}, {}), ValueError, "count no symbol"),
    ("huffman", lambda: H.expected_length({"a": "0"}, {"a": 0}), ValueError, "count no symbol"),
    ("huffman", lambda: H.expected_length({"a": "0"}, {"a": 1, "b": 2}), ValueError, "['b'] are counted"),
    ("huffman", lambda: H.expected_length({"a": "0"}, {"a": -1}), ValueError, "frequencies['a']=-1"),
    ("huffman", lambda: H.expected_length({"a": "0"}, {"a": 1.5}), ValueError, "frequencies['a']=1.5"),
    ("huffman", lambda: H.expected_length([], {}), TypeError, "code must be a mapping"),
    ("huffman", lambda: H.entropy_bits({}), ValueError, "count no symbol"),
    ("huffman", lambda: H.entropy_bits([1, 2]), TypeError, "frequencies must be a mapping"),
    ("huffman", lambda: H.huffman_code({"a": 1.5}), ValueError, "frequencies['a']=1.5"),
    ("huffman", lambda: H.huffman_code([1, 2]), TypeError, "frequencies must be a mapping"),
    ("huffman", lambda: H.encode(["a"], {"b": "0"}), ValueError, "have no code"),
    ("huffman", lambda: H.decode(b"\x00", {"a": "0"}, 9), ValueError, "nbits=9"),
    ("huffman", lambda: H.canonical_code({"a": 0}), ValueError, "at least 1"),
    ("huffman", lambda: H.canonical_code({"a": 1, "b": 1, "c": 1}), ValueError, "Kraft"),

    # ----------------------------------------------------------------- compressed_file
    ("compressed_file", lambda: CF.from_bytes(crafted(1, raw_record((1 << 20, 1 << 20), b""))), CF.CompressedFileError,
     "MAX_VALUES"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, raw_record((1000,), b""))), CF.CompressedFileError,
     "needs 4,000 bytes, the record holds 0"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, raw_record((3,), b"\x00" * 4))), CF.CompressedFileError,
     "needs 12 bytes, the record holds 4"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, raw_record((1,), b"\x00" * 4, code=99))),
     CF.CompressedFileError, "unknown dtype code 99"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, sparse_record((1 << 29,), b"", H.Stream(5, 0, 0, b"")))),
     CF.CompressedFileError, "MAX_VALUES"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, sparse_record((4,), b"\x00" * 8, H.Stream(5, 1, 5, b"\x00")))),
     CF.CompressedFileError, "do not fit a layer of 4 values"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, sparse_record((4,), b"", H.Stream(5, 0, 0, b""), nonzero=3))),
     CF.CompressedFileError, "3 non-zeros do not fit"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, sparse_record((4,), b"", H.Stream(5, 3, 15, b"")))),
     CF.CompressedFileError, "corrupted stream header"),
    ("compressed_file", lambda: CF.from_bytes(crafted(1, sparse_record((4,), b"", H.Stream(5, 2, 9, b"\x00\x00")))),
     CF.CompressedFileError, "corrupted stream header"),
    ("compressed_file", lambda: CF.from_bytes(b"DCMP"), CF.CompressedFileError, "truncated"),
    ("compressed_file", lambda: CF.from_bytes(b"XXXX" + bytes(20)), CF.CompressedFileError, "bad magic"),
    ("compressed_file", lambda: CF.save_compressed(tiny(), 5), TypeError, "path=5 must be a str"),
    ("compressed_file", lambda: CF.save_compressed(meta_lenet5(), "x.dcmp"), ValueError, "meta device"),
    ("compressed_file", lambda: CF.to_bytes(meta_lenet5()), ValueError, "meta device"),
    ("compressed_file", lambda: CF.encode_model("model"), TypeError, "model must be an nn.Module"),
    ("compressed_file", lambda: CF.encode_layer("w", W, "float16"), ValueError, "bits='float16'"),
    ("compressed_file", lambda: CF.encode_layer("w", W, 0), ValueError, "bits=0"),
    ("compressed_file", lambda: CF.encode_layer("w", W, 8, index_bits=17), ValueError, "index_bits=17"),
    ("compressed_file", lambda: CF.to_relative(W, 0), ValueError, "index_bits=0"),
    ("compressed_file", lambda: CF.from_relative([1], [1.0, 2.0], 5), ValueError, "same length"),
    ("compressed_file", lambda: CF.from_relative([-1], [1.0], 5), ValueError, "non-negative"),
    ("compressed_file", lambda: CF.quantize_values(W, 1), ValueError, "distinct non-zero values"),
    ("compressed_file", lambda: CF.layer_values({"x": 1}, ["a"], "bits"), ValueError, "bits names unknown layers"),
    ("compressed_file", lambda: CF.validate_path(3.5), TypeError, "path=3.5"),

    # ----------------------------------------------------------------- compress
    ("compress", lambda: compress.tradeoff_state(tiny(), torch.zeros(1, 1, 6, 6), torch.zeros(1), 0.5, 1),
     ValueError, "bits['0']=1"),
    ("compress", lambda: compress.tradeoff_state(tiny(), torch.zeros(1, 1, 6, 6), torch.zeros(1), 1.0, 4),
     ValueError, "sparsity['0']=1.0"),
    ("compress", lambda: compress.fc_speed({"a": torch.ones(3)}), ValueError, "must be 2-d"),
    ("compress", lambda: compress.fc_speed({"a": torch.ones(3, 3)}, batches=(0,)), ValueError, "batches"),
    ("compress", lambda: compress.fc_speed([torch.ones(3, 3)]), TypeError, "weights must be a mapping"),
    ("compress", lambda: compress.deep_compress(meta_lenet5(), [], [], sparsity=0.5, bits=4), ValueError,
     "meta device"),
    ("compress", lambda: compress.deep_compress("model", [], [], sparsity=0.5, bits=4), TypeError,
     "model must be an nn.Module"),

    # ----------------------------------------------------------------- measure
    ("measure", lambda: measure.activation_bytes(meta_lenet5(), torch.zeros(1, 1, 28, 28, device="meta")),
     ValueError, "model is on the meta device"),
    ("measure", lambda: measure.file_bytes(meta_lenet5()), ValueError, "model is on the meta device"),
    ("measure", lambda: measure.file_bytes(meta_lenet5().state_dict()), ValueError, "state_dict is on the meta device"),
    ("measure", lambda: measure.count_params(meta_lenet5(), nonzero=True), ValueError, "meta device"),
    ("measure", lambda: measure.count_params("model"), TypeError, "model must be an nn.Module"),
    ("measure", lambda: measure.check_not_meta(torch.zeros(2, device="meta"), name="x"), ValueError,
     "x is on the meta device"),
    ("measure", lambda: measure.count_macs(models.lenet5(), (1, 8, 8)), ValueError,
     "the 1 channel(s) fit its first layer `0`, but the 8x8 image is too small"),
    ("measure", lambda: measure.count_macs(models.lenet5(), (3, 28, 28)), ValueError, "expects 1 input channel(s)"),
    ("measure", lambda: measure.count_macs(models.lenet5(), (28, 28)), ValueError, "(C, H, W)"),
    ("measure", lambda: measure.count_macs(models.lenet5(), (1, 0, 28)), ValueError, "(C, H, W)"),
    ("measure", lambda: measure.count_macs(sn.mobilenet_small(), (1, 8, 8)), ValueError, "too small"),
    ("measure", lambda: measure.model_bytes(tiny(), 0), ValueError, "bits=0"),
    ("measure", lambda: measure.model_bytes(tiny(), NAN), ValueError, "bits=nan"),
    ("measure", lambda: measure.latency(tiny(), torch.zeros(1, 1, 6, 6), rounds=0), ValueError, "rounds=0"),
    ("measure", lambda: measure.file_bytes(5), TypeError, "a model, a state_dict or a path"),
    ("measure", lambda: measure.file_bytes("/no/such/file.pt"), FileNotFoundError, "does not exist"),

    # ----------------------------------------------------------------- models
    ("models", lambda: models.lenet5(num_classes=0), ValueError, "num_classes=0 must be >= 1"),
    ("models", lambda: models.lenet5(in_channels=0), ValueError, "in_channels=0 must be >= 1"),
    ("models", lambda: models.lenet5(image_size=8), ValueError, "image_size=8 must be >= 16"),
    ("models", lambda: models.lenet5(in_channels=1.0), TypeError, "in_channels=1.0 must be an int"),
    ("models", lambda: models.lenet5()(torch.zeros(1, 3, 28, 28)), ValueError,
     "the input has 3 channel(s), this model expects in_channels=1"),
    ("models", lambda: models.lenet5()(torch.zeros(28, 28)), ValueError, "(N, C, H, W)"),
    ("models", lambda: models.lenet5()([1.0]), TypeError, "takes a tensor"),
    ("models", lambda: models.lenet_300_100(num_classes=0), ValueError, "num_classes=0"),
    ("models", lambda: models.lenet_300_100(in_channels=0), ValueError, "in_channels=0"),
    ("models", lambda: models.lenet_300_100()(torch.zeros(2, 3, 28, 28)), ValueError,
     "holds 2352 values, this model expects 784 (in_channels=1 × image_size²=28²)"),
    ("models", lambda: models.lenet_300_100()(torch.zeros(784)), ValueError, "holds no batch of values"),
    ("models", lambda: models.lenet_300_100(image_size=0), ValueError, "image_size=0"),
    ("models", lambda: models.vgg_small(widths=()), ValueError, "widths=() must hold at least one"),
    ("models", lambda: models.vgg_small(widths=(8, 0)), ValueError, "widths[1]=0"),
    ("models", lambda: models.vgg_small(widths=8), TypeError, "widths=8"),
    ("models", lambda: models.vgg_small(num_classes=0), ValueError, "num_classes=0"),
    ("models", lambda: models.vgg_small(widths=(4,))(torch.zeros(1, 3, 8, 8)), ValueError, "in_channels=1"),
    ("models", lambda: models.fast_cnn(widths=(8, 8)), ValueError, "must hold 3 channel width(s)"),
    ("models", lambda: models.fast_cnn(widths=(8, 0, 8)), ValueError, "widths[1]=0"),
    ("models", lambda: models.fast_cnn(in_channels=0), ValueError, "in_channels=0"),
    ("models", lambda: models.fast_cnn(num_classes=0), ValueError, "num_classes=0"),
    ("models", lambda: models.fast_cnn()(torch.zeros(1, 3, 28, 28)), ValueError, "in_channels=1"),
    ("models", lambda: models.conv_pool_bn_gelu(0, 4), ValueError, "c_in=0"),
    ("models", lambda: models.conv_pool_bn_gelu(4, 0), ValueError, "c_out=0"),
    ("models", lambda: models.conv_bn_relu(4, 6, groups=4), ValueError, "groups=4 must divide"),
    ("models", lambda: models.conv_bn_relu(4, 4, kernel_size=0), ValueError, "kernel_size=0"),
    ("models", lambda: models.InputCheck(0), ValueError, "in_channels=0"),

    # ----------------------------------------------------------------- resnets
    ("resnets", lambda: resnets.resnet20()(torch.zeros(1, 1, 8, 8)), ValueError,
     "the input has 1 channel(s), this model expects in_channels=3"),
    ("resnets", lambda: resnets.resnet20(num_classes=0), ValueError, "num_classes=0"),
    ("resnets", lambda: resnets.resnet20(in_channels=0), ValueError, "in_channels=0"),
    ("resnets", lambda: resnets.resnet_cifar(8, widths=(16, 0, 64)), ValueError, "widths[1]=0"),
    ("resnets", lambda: resnets.resnet_cifar(8, widths=()), ValueError, "widths=()"),
    ("resnets", lambda: resnets.resnet_cifar(21), ValueError, "depth=21"),
    ("resnets", lambda: resnets.resnet_cifar(8, preact=1), TypeError, "preact=1"),
    ("resnets", lambda: resnets.resnet_cifar(8, shortcut="zip"), ValueError, "shortcut='zip'"),
    ("resnets", lambda: resnets.resnet_cifar(8, preact=True)(torch.zeros(1, 2, 8, 8)), ValueError, "in_channels=3"),
    ("resnets", lambda: resnets.survival_probabilities(0), ValueError, "num_blocks=0"),
    ("resnets", lambda: resnets.survival_probabilities(5, NAN), ValueError, "p_last=nan"),
    ("resnets", lambda: resnets.SqueezeExcite(4, 8), ValueError, "reduction=8"),
    ("resnets", lambda: resnets.ResNeXtBlock(64, 3, 8), ValueError, "cardinality=3"),
    ("resnets", lambda: resnets.resnext_params(0, 4), ValueError, "cardinality=0"),
    ("resnets", lambda: resnets.add_se_to_torchvision_resnet(nn.Linear(1, 1)), TypeError, "torchvision ResNet"),
    ("resnets", lambda: resnets.add_se_to_torchvision_resnet(nn.Linear(1, 1), reduction=0), ValueError, "reduction=0"),
    ("resnets", lambda: resnets.residual_state(depth=200), ValueError, "depth=200"),

    # ----------------------------------------------------------------- densenet
    ("densenet", lambda: densenet.densenet_cifar(40)(torch.zeros(1, 1, 8, 8)), ValueError,
     "the input has 1 channel(s), this model expects in_channels=3"),
    ("densenet", lambda: densenet.densenet_cifar(40, num_classes=0), ValueError, "num_classes=0"),
    ("densenet", lambda: densenet.densenet_cifar(40, in_channels=0), ValueError, "in_channels=0"),
    ("densenet", lambda: densenet.densenet_cifar(40, growth_rate=0), ValueError, "growth_rate=0"),
    ("densenet", lambda: densenet.deepest_within_budget(fit_stub(), 1e6, batch=0), ValueError, "batch=0"),
    ("densenet", lambda: densenet.deepest_within_budget(fit_stub(), NAN, 1), ValueError, "budget_bytes=nan"),
    ("densenet", lambda: densenet.deepest_within_budget(fit_stub(), 0, 1), ValueError, "budget_bytes=0"),
    ("densenet", lambda: densenet.deepest_within_budget(fit_stub(), 1e6, 1, max_depth=4), ValueError, "max_depth=4"),
    ("densenet", lambda: densenet.deepest_within_budget("fit", 1e6, 1), TypeError, "must be a DepthFit"),
    ("densenet", lambda: densenet.loglog_slope([1, 1], [2, 3]), ValueError, "are all equal"),
    ("densenet", lambda: densenet.loglog_slope([1, 2], [0, 3]), ValueError, "ys=[0.0, 3.0] must hold finite numbers > 0"),
    ("densenet", lambda: densenet.loglog_slope([1, NAN], [1, 2]), ValueError, "xs=[1.0, nan]"),
    ("densenet", lambda: densenet.loglog_slope([1, 2, 3], [1, 2]), ValueError, "one y per x"),
    ("densenet", lambda: densenet.loglog_slope([1], [1]), ValueError, "at least two points"),
    ("densenet", lambda: densenet.loglog_slope(["a"], [1]), TypeError, "xs must be a sequence of numbers"),
    ("densenet", lambda: densenet.transition_channels(10, 0), ValueError, "compression=0"),
    ("densenet", lambda: densenet.layer_input_channels(0, 4, 2), ValueError, "l=0"),
    ("densenet", lambda: densenet.naive_block_saved_bytes(2, 4, 2, batch=0), ValueError, "batch=0"),
    ("densenet", lambda: densenet.block_state(depth=100), ValueError, "depth=100"),
    ("densenet", lambda: densenet.DenseBlock(2, 4, 2)(torch.zeros(1, 3, 4, 4)), ValueError, "expects (N, 4, H, W)"),

    # ----------------------------------------------------------------- smallnets
    ("smallnets", lambda: sn.mobilenet_small()(torch.zeros(1, 3, 32, 32)), ValueError,
     "MobileNet: the input has 3 channel(s), this model expects in_channels=1"),
    ("smallnets", lambda: sn.squeezenet_small()(torch.zeros(1, 3, 32, 32)), ValueError, "in_channels=1"),
    ("smallnets", lambda: sn.squeezenext_small()(torch.zeros(1, 3, 32, 32)), ValueError, "in_channels=1"),
    ("smallnets", lambda: sn.mobilenetv2_small()(torch.zeros(1, 2, 32, 32)), ValueError, "in_channels=1"),
    ("smallnets", lambda: sn.SqueezeNet(fires=[]), ValueError, "fires=[] is empty"),
    ("smallnets", lambda: sn.SqueezeNet([(96, 16, 64, 64)], stem=(64, 7, 2)), ValueError, "fires[0] reads 96 channels"),
    ("smallnets", lambda: sn.SqueezeNet([(96, 16, 64, 64), (100, 16, 64, 64)]), ValueError, "fires[1] reads 100"),
    ("smallnets", lambda: sn.SqueezeNet([(96, 16, 64)]), ValueError, "fires[0]=(96, 16, 64)"),
    ("smallnets", lambda: sn.SqueezeNet([(96, 16, 64, 64)], dropout=1.5), ValueError, "dropout=1.5"),
    ("smallnets", lambda: sn.SqueezeNet([(96, 16, 64, 64)], stem=(96, 0, 2)), ValueError, "stem kernel=0"),
    ("smallnets", lambda: sn.SqueezeNet([(96, 16, 64, 64)], num_classes=0), ValueError, "num_classes=0"),
    ("smallnets", lambda: sn.make_divisible(10, 0), ValueError, "divisor=0"),
    ("smallnets", lambda: sn.make_divisible(0), ValueError, "value=0"),
    ("smallnets", lambda: sn.make_divisible(NAN), ValueError, "value=nan"),
    ("smallnets", lambda: sn.make_divisible(10, 8, 0), ValueError, "min_value=0"),
    ("smallnets", lambda: sn.mobilenet_small(num_classes=0), ValueError, "num_classes=0"),
    ("smallnets", lambda: sn.mobilenet_small(in_channels=0), ValueError, "in_channels=0"),
    ("smallnets", lambda: sn.mobilenet_small(alpha=0), ValueError, "alpha=0"),
    ("smallnets", lambda: sn.squeezenext_small(width=0), ValueError, "width=0"),
    ("smallnets", lambda: sn.mobilenet_v2(width=NAN), ValueError, "width=nan"),
    ("smallnets", lambda: sn.MobileNetV2(0.25, dropout=-0.1), ValueError, "dropout=-0.1"),
    ("smallnets", lambda: sn.channel_shuffle(torch.zeros(1, 6, 2, 2), 4), ValueError, "not divisible"),
    ("smallnets", lambda: sn.separable_cost_ratio(0), ValueError, "channels_out=0"),
    ("smallnets", lambda: sn.mobilenet_state(alpha=0, measure_latency=False), ValueError, "alpha=0"),
    ("smallnets", lambda: sn.mobilenet_state(resolution=16, measure_latency=False), ValueError, "resolution=16"),
    ("smallnets", lambda: sn.fire_configs(sr=1.0), ValueError, "sr=1.0"),
    ("smallnets", lambda: sn.min_input_size(tiny()), TypeError, "course_lib.smallnets"),

    # ----------------------------------------------------------------- wae
    ("wae", lambda: wae.energy_fraction(torch.full((1, 1, 2, 2), NAN), torch.ones(1, 1, 2, 2)), ValueError,
     "low contains 4 NaN or inf"),
    ("wae", lambda: wae.energy_fraction(torch.ones(1, 1, 2, 2), torch.tensor([[[[INF]]]])), ValueError, "high contains"),
    ("wae", lambda: wae.energy_fraction(1.0, torch.ones(1)), TypeError, "energy needs a tensor"),
    ("wae", lambda: wae.psnr(torch.full((2, 2), NAN), torch.ones(2, 2)), ValueError, "x contains"),
    ("wae", lambda: wae.psnr(torch.ones(2, 2), torch.full((2, 2), INF)), ValueError, "y contains"),
    ("wae", lambda: wae.WAE(1)(torch.zeros(1, 3, 4, 4)), ValueError, "in_channels=1"),
    ("wae", lambda: wae.WAE(0), ValueError, "in_channels=0"),
    ("wae", lambda: wae.haar_dwt(torch.zeros(1, 1, 3, 3)), ValueError, "must be even"),
    ("wae", lambda: wae.build("full", num_classes=0), ValueError, "num_classes=0"),
    ("wae", lambda: wae.build("full", widths=(4,))(torch.zeros(1, 3, 8, 8)), ValueError, "in_channels=1"),
    ("wae", lambda: wae.build("resnet"), ValueError, "kind='resnet'"),

    # ----------------------------------------------------------------- data
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, mean=[0.5] * 3, std=[0.2] * 3, device="cpu"), ValueError,
     "mean=[0.5, 0.5, 0.5] has 3 value(s), the images have 1 channel(s)"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, std=[0.2] * 3, device="cpu"), ValueError, "std=[0.2, 0.2, 0.2]"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, std=[0.0], device="cpu"), ValueError, "std=[0.0] must be > 0"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, std=[NAN], device="cpu"), ValueError, "std[0]=nan"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, mean="0.5", device="cpu"), TypeError, "mean='0.5'"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, pad=-1, device="cpu"), ValueError, "pad=-1 must be >= 0"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, pad=1.5, device="cpu"), TypeError, "pad=1.5"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 0, device="cpu"), ValueError, "batch_size=0"),
    ("data", lambda: data.DeviceLoader(IMAGES1.float(), LABELS, 4, device="cpu"), TypeError, "uint8"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS[:3], 4, device="cpu"), ValueError, "differ in length"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, seed=-1, device="cpu"), ValueError, "seed=-1"),
    ("data", lambda: data.DeviceLoader(IMAGES1, LABELS, 4, rank=2, world_size=2, device="cpu"), ValueError,
     "rank=2 must be < world_size=2"),

    # ----------------------------------------------------------------- capstone
    ("capstone", lambda: capstone.Challenge(1.5, 1000, 5.0), ValueError, "min_accuracy=1.5"),
    ("capstone", lambda: capstone.Challenge(NAN, 1000, 5.0), ValueError, "min_accuracy=nan"),
    ("capstone", lambda: capstone.Challenge(0.5, -1, 5.0), ValueError, "max_bytes=-1"),
    ("capstone", lambda: capstone.Challenge(0.5, 1000.5, 5.0), TypeError, "max_bytes=1000.5"),
    ("capstone", lambda: capstone.Challenge(0.5, 1000, 0), ValueError, "max_latency_ms=0"),
    ("capstone", lambda: capstone.Challenge(1.5, -1, 0), ValueError, "min_accuracy=1.5"),
    ("capstone", lambda: capstone.Challenge(0.5, 1000, INF), ValueError, "max_latency_ms=inf"),
    ("capstone", lambda: capstone.Challenge(0.5, 1000, 5.0, dataset=""), TypeError, "dataset=''"),
    ("capstone", lambda: capstone.best_within(recipe_rows(), NAN, 5), ValueError, "max_bytes=nan"),
    ("capstone", lambda: capstone.best_within(recipe_rows(), 1000, NAN), ValueError, "max_latency_ms=nan"),
    ("capstone", lambda: capstone.best_within(recipe_rows(), -1, 5), ValueError, "max_bytes=-1"),
    ("capstone", lambda: capstone.best_within(recipe_rows(), "big", 5), TypeError, "max_bytes='big'"),
    ("capstone", lambda: capstone.best_within([1], 1000, 5), TypeError, "rows[0] must be a RecipeRow"),
    ("capstone", lambda: capstone.pareto_front([1, NAN], [1, 2]), ValueError, "finite"),
    ("capstone", lambda: capstone.pareto_front([1], [1, 2]), ValueError, "one score per point"),
]


def _id(case) -> str:
    return case[0]


@pytest.mark.parametrize("module, call, error, fragment", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_a_clear_error(module, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


# --------------------------------------------------------------------------- in place: rejected means untouched

def _snapshot(model: nn.Module) -> tuple:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, repr(model), sorted(n for n, _ in model.named_modules())


def _same(before: tuple, after: tuple) -> bool:
    (s1, r1, n1), (s2, r2, n2) = before, after
    return (r1 == r2 and n1 == n2 and s1.keys() == s2.keys()
            and all(torch.equal(s1[k], s2[k]) or (s1[k].is_floating_point() and
                                                  torch.equal(s1[k].isnan(), s2[k].isnan()) and
                                                  torch.equal(s1[k].nan_to_num(), s2[k].nan_to_num()))
                    for k in s1))


def _dc(**kw):
    settings = dict(sparsity=0.5, bits=4)
    settings.update(kw)
    return lambda m, p: compress.deep_compress(m, [], [], **settings)


INPLACE = [
    # ----------------------------------------------------------------- smallnets.deep_compress_bytes
    ("deep_compress_bytes bits=33", tiny, lambda m, p: sn.deep_compress_bytes(m, p, bits=33), ValueError, "bits=33"),
    ("deep_compress_bytes bits=0", tiny, lambda m, p: sn.deep_compress_bytes(m, p, bits=0), ValueError, "bits=0"),
    ("deep_compress_bytes bits=4.0", tiny, lambda m, p: sn.deep_compress_bytes(m, p, bits=4.0), TypeError, "bits=4.0"),
    ("deep_compress_bytes sparsity", tiny, lambda m, p: sn.deep_compress_bytes(m, p, sparsity=1.0), ValueError,
     "sparsity=1.0"),
    ("deep_compress_bytes index_bits", tiny, lambda m, p: sn.deep_compress_bytes(m, p, index_bits=0), ValueError,
     "index_bits=0"),
    ("deep_compress_bytes folder", tiny, lambda m, p: sn.deep_compress_bytes(m, p.parent / "no" / "x.dcmp"),
     ValueError, "does not exist"),
    ("deep_compress_bytes NaN", tiny_nan, lambda m, p: sn.deep_compress_bytes(m, p), ValueError, "NaN or inf"),
    ("deep_compress_bytes shared", shared_last, lambda m, p: sn.deep_compress_bytes(m, p), ValueError,
     "already has a weight parametrization"),
    # ----------------------------------------------------------------- compress.deep_compress
    ("deep_compress bits=0", tiny, _dc(bits=0), ValueError, "bits=0"),
    ("deep_compress bits=17", tiny, _dc(bits=17), ValueError, "bits=17"),
    ("deep_compress bits dict", tiny, _dc(bits={"0": 4, "3": 0}), ValueError, "bits['3']=0"),
    ("deep_compress sparsity", tiny, _dc(sparsity=1.5), ValueError, "sparsity=1.5"),
    ("deep_compress sparsity dict", tiny, _dc(sparsity={"0": 0.5, "3": NAN}), ValueError, "sparsity['3']=nan"),
    ("deep_compress unknown layer", tiny, _dc(sparsity={"nope": 0.5}), ValueError, "unknown layers ['nope']"),
    ("deep_compress index_bits", tiny, _dc(index_bits=0), ValueError, "index_bits=0"),
    ("deep_compress prune_steps", tiny, _dc(prune_steps=0), ValueError, "prune_steps=0"),
    ("deep_compress prune_epochs", tiny, _dc(prune_epochs=-1), ValueError, "prune_epochs=-1"),
    ("deep_compress quant_epochs", tiny, _dc(quant_epochs=1.5), TypeError, "quant_epochs=1.5"),
    ("deep_compress lr", tiny, _dc(lr=0), ValueError, "lr=0"),
    ("deep_compress quant_lr", tiny, _dc(quant_lr=NAN), ValueError, "quant_lr=nan"),
    ("deep_compress init", tiny, _dc(init="zip"), ValueError, "init='zip'"),
    ("deep_compress optimizer", tiny, _dc(optimizer="adam"), ValueError, "optimizer='adam'"),
    ("deep_compress quant_optimizer", tiny, _dc(quant_optimizer="lion"), ValueError, "quant_optimizer='lion'"),
    ("deep_compress path", tiny, _dc(path="/no/such/folder/x.dcmp"), ValueError, "does not exist"),
    ("deep_compress NaN", tiny_nan, _dc(), ValueError, "layer '3''s weight contains 1 NaN"),
    ("deep_compress shared", shared_last, _dc(), ValueError, "already has a weight parametrization"),
    # ----------------------------------------------------------------- quant
    ("share_weights NaN", tiny_nan, lambda m, p: quant.share_weights(m, 2), ValueError, "layer '3''s weight contains"),
    ("share_weights bits dict", tiny, lambda m, p: quant.share_weights(m, {"0": 2, "3": 0}), ValueError, "bits['3']=0"),
    ("share_weights one shared", shared_last, lambda m, p: quant.share_weights(m, 2, layers=["0", "3"]), ValueError,
     "'3' already has a weight parametrization"),
    ("quantize_model NaN", tiny_nan, lambda m, p: quant.quantize_model(m, "binary", layers=["0", "3"]), ValueError,
     "layer '3''s weight contains"),
    ("quantize_model ttq t", tiny, lambda m, p: quant.quantize_model(m, "ttq", t=0, layers=["0", "3"]), ValueError, "t=0"),
    ("quantize_model one quantized", shared_last, lambda m, p: quant.quantize_model(m, "twn", layers=["0", "3"]),
     ValueError, "'3' is already quantized"),
    # ----------------------------------------------------------------- prune
    ("magnitude_prune NaN", tiny_nan, lambda m, p: prune.magnitude_prune(m, 0.5), ValueError, "contains 1 NaN"),
    ("magnitude_prune inf global", lambda: tiny_nan(INF), lambda m, p: prune.magnitude_prune(m, 0.5, scope="global"),
     ValueError, "contains 1 NaN or inf"),
    ("magnitude_prune dict", tiny, lambda m, p: prune.magnitude_prune(m, {"0": 0.5, "3": 1.0}), ValueError,
     "sparsity['3']=1.0"),
    ("prune_by_scores NaN", tiny, lambda m, p: prune.prune_by_scores(
        m, {"0": torch.ones(4, 1, 3, 3), "3": torch.full((3, 64), NAN)}, 0.5), ValueError, "scores['3'] contains"),
    ("iterative_prune later target", tiny, lambda m, p: prune.iterative_prune(m, [], [], [0.5, 1.5]), ValueError,
     "sparsity=1.5"),
    ("iterative_prune lr", tiny, lambda m, p: prune.iterative_prune(m, [], [], [0.5], lr=-1), ValueError, "lr=-1"),
    ("iterative_prune NaN", tiny_nan, lambda m, p: prune.iterative_prune(m, [], [], [0.5]), ValueError, "contains 1 NaN"),
    ("load_pruned bad shape", tiny, lambda m, p: prune.load_pruned(m, pruned_state(**{"3_bias": torch.zeros(5)})),
     ValueError, "3.bias is (5,) there, (3,) in the model"),
    ("load_pruned missing key", tiny, lambda m, p: prune.load_pruned(m, pruned_state(**{"3_bias": None})),
     ValueError, "holds weights of another architecture than this Sequential: missing 3.bias"),
    # ----------------------------------------------------------------- resnets
    ("set_stochastic_depth mode", lambda: resnets.resnet_cifar(8),
     lambda m, p: resnets.set_stochastic_depth(m, 0.5, mode="zip"), ValueError, "mode='zip'"),
    ("set_stochastic_depth p_last", lambda: resnets.resnet_cifar(8),
     lambda m, p: resnets.set_stochastic_depth(m, 1.5), ValueError, "p_last=1.5"),
]


@pytest.mark.parametrize("what, build, transform, error, fragment", INPLACE, ids=[c[0] for c in INPLACE])
def test_a_rejected_in_place_transform_leaves_the_model_untouched(what, build, transform, error, fragment, tmp_path):
    model = build()
    before = _snapshot(model)
    path = tmp_path / "model.dcmp"
    with pytest.raises(error, match=re.escape(fragment)):
        transform(model, path)
    assert _same(before, _snapshot(model)), f"{what}: the model changed before the call was rejected"
    assert not path.exists()


def test_the_catalogue_is_large():
    assert len(CASES) + len(INPLACE) > 150


# --------------------------------------------------------------------------- what still works

def test_a_meta_model_counts_what_has_no_values():
    real, meta = models.lenet5(), meta_lenet5()
    assert measure.count_params(meta) == measure.count_params(real)
    assert measure.count_macs(meta, (1, 28, 28)) == measure.count_macs(real, (1, 28, 28))


def test_a_model_with_an_input_check_still_pickles_copies_and_runs():
    model = models.fast_cnn()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for m in (model, loaded, copy.deepcopy(model)):
        assert m.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        with pytest.raises(ValueError, match="in_channels=1"):
            m(torch.zeros(2, 3, 28, 28))


def test_finite_input_is_unchanged_by_the_checks():
    w = torch.randn(50, generator=torch.Generator().manual_seed(0))
    assert args.check_finite("w", w) is w
    assert args.check_finite("n", torch.arange(3)) is not None              # integers are always finite
    assert torch.equal(quant.fake_quantize(w, 8), quant.fake_quantize(w.clone(), 8))
    assert math.isfinite(quant.quant_state(w, "linear", 4).sqnr_db)
    assert densenet.loglog_slope([1, 2, 4], [3, 12, 48]) == pytest.approx(2.0)
    assert H.expected_length({"a": "0", "b": "1"}, {"a": 1, "b": 3}) == 1.0
    assert H.decode_stream(H.encode_stream(np.array([0, 3, 3, 1]), 2, True)).tolist() == [0, 3, 3, 1]


def test_the_quant_explorer_shows_a_nan_weight_as_a_message():
    pytest.importorskip("ipywidgets")
    explorer = quant.quant_explorer(W_NAN.reshape(-1))
    assert explorer.state is None and "weights contains 1 NaN or inf" in explorer.error


def test_a_crafted_file_is_refused_before_any_allocation(tmp_path):
    # a well-formed file still reads; a raw record of 2**40 values never reaches torch.zeros
    model = tiny()
    path = tmp_path / "ok.dcmp"
    CF.save_compressed(model, path, bits="float32")
    assert set(CF.load_compressed(path, tiny(1)).state_dict()) == set(model.state_dict())
    with pytest.raises(CF.CompressedFileError, match="MAX_VALUES"):
        CF.from_bytes(crafted(1, raw_record((1 << 20, 1 << 20), b"")))
