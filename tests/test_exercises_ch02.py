"""Chapter 02's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's answer."""

import functools

import pytest
import torch
import torch.nn as nn

from course_lib import compressed_file, quant, surgery
from course_lib.checks import ExerciseError
from course_lib.exercises import ch02 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# ------------------------------------------------------------------ TTQ backward

def ttq_right(latent, wp, wn, t, grad):
    delta = t * latent.abs().max()
    pos, neg = latent > delta, latent < -delta
    grad_latent = torch.where(pos, wp * grad, torch.where(neg, wn * grad, grad))
    return grad_latent, grad[pos].sum(), -grad[neg].sum()


def test_ttq_backward(capsys):
    ex.check_ttq_backward(ttq_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_ttq_backward(stub)

    def papers_sign(latent, wp, wn, t, grad):                           # the paper's printed equation
        g, p, n = ttq_right(latent, wp, wn, t, grad)
        return g, p, -n

    def plain_ste(latent, wp, wn, t, grad):                             # unscaled straight-through
        g, p, n = ttq_right(latent, wp, wn, t, grad)
        return grad, p, n

    def mean_threshold(latent, wp, wn, t, grad):
        return ttq_right(latent, wp, wn, t * latent.abs().mean() / latent.abs().max(), grad)

    for wrong, message in ((papers_sign, "mind the sign"), (plain_ste, "scaled by Wp"), (mean_threshold, "∂L/∂W")):
        with pytest.raises(ExerciseError, match=message):
            ex.check_ttq_backward(wrong)


def by_autograd(latent, wp, wn, t, grad):
    lt, p, n = (v.clone().requires_grad_(True) for v in (latent, wp, wn))
    (quant.ttq_ternarize(lt, p, n, t) * grad).sum().backward()
    return lt.grad, p.grad, n.grad


def test_ttq_backward_refuses_the_library():
    with pytest.raises(ExerciseError, match="quant.ttq_ternarize"):
        ex.check_ttq_backward(by_autograd)
    apply = quant.TTQFunction.apply                                     # through the autograd.Function

    def via_function(latent, wp, wn, t, grad):
        lt, p, n = (v.clone().requires_grad_(True) for v in (latent, wp, wn))
        (apply(lt, p, n, t) * grad).sum().backward()
        return lt.grad, p.grad, n.grad

    with pytest.raises(ExerciseError, match="quant.TTQFunction.forward"):
        ex.check_ttq_backward(via_function)


# ------------------------------------------------------------------ codebook layer

def codebook_right(x, codebook, indices):
    sums = torch.zeros(x.shape[0], indices.shape[0], len(codebook), dtype=x.dtype)
    sums.scatter_add_(2, indices[None].expand(x.shape[0], -1, -1), x[:, None, :].expand(-1, indices.shape[0], -1))
    return sums @ codebook, sums


def test_codebook_linear(capsys):
    ex.check_codebook_linear(codebook_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_codebook_linear(stub)

    def no_sums(x, codebook, indices):                                  # right y, but no grouping
        return x @ codebook[indices].T, None

    def sums_over_first_row(x, codebook, indices):                      # every output row given row 0's clusters
        onehot = torch.nn.functional.one_hot(indices[0], len(codebook)).to(x.dtype)
        sums = (x @ onehot)[:, None].expand(-1, indices.shape[0], -1)
        return sums @ codebook, sums

    with pytest.raises(ExerciseError, match="should be tensors"):
        ex.check_codebook_linear(no_sums)
    with pytest.raises(ExerciseError, match="sums for x"):
        ex.check_codebook_linear(sums_over_first_row)

    dot = quant.codebook_dot

    def rows_by_codebook_dot(x, codebook, indices):
        y = torch.stack([torch.stack([dot(codebook, idx, xb)[0] for idx in indices]) for xb in x])
        return codebook_right(x, codebook, indices)[1] @ codebook * 0 + y, codebook_right(x, codebook, indices)[1]

    with pytest.raises(ExerciseError, match="quant.codebook_dot"):
        ex.check_codebook_linear(rows_by_codebook_dot)


# ------------------------------------------------------------------ codebook bytes

def test_codebook_bytes(capsys):
    ex.check_codebook_bytes(lambda n, b: (n * b + 7) // 8 + 4 * 2 ** b)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_codebook_bytes(stub)
    for wrong in (lambda n, b: n * b // 8 + 4 * 2 ** b,                 # floor: drops the last partial byte
                  lambda n, b: -(-n * b // 8),                          # forgets the codebook
                  lambda n, b: n * b + 32 * 2 ** b):                    # bits, not bytes
        with pytest.raises(ExerciseError, match="codebook_bytes"):
            ex.check_codebook_bytes(wrong)
    with pytest.raises(ExerciseError, match="surgery.pack_bits"):
        ex.check_codebook_bytes(lambda n, b: len(surgery.pack_bits(torch.zeros(n, dtype=torch.long), b)) + 4 * 2 ** b)
    layer_bytes = functools.partial(compressed_file.fixed_layer_bytes, index_bits=0)
    with pytest.raises(ExerciseError, match="compressed_file.fixed_layer_bytes"):
        ex.check_codebook_bytes(lambda n, b: layer_bytes(n, b))


# ------------------------------------------------------------------ bit allocation

def test_bit_allocation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 256), nn.ReLU(),
                          nn.Linear(256, 5)).eval()
    x = torch.randn(200, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)                                         # the float model is 100% right by construction
    data = [(x[i:i + 50], y[i:i + 50]) for i in range(0, 200, 50)]
    ex.check_bit_allocation(lambda m: {"0": 8, "3": 4, "5": 6}, model, data, tolerance_pt=2.0)
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_bit_allocation(stub, model, data)
    for wrong, why in ((lambda m: {"0": 1, "3": 1, "5": 1}, "points below"),          # too few bits
                       (lambda m: {"0": 8, "3": 8, "5": 8}, "not less than"),         # too many bytes
                       (lambda m: quant.deep_compression_bits(m), "not less than"),   # the paper's own 8/5
                       (lambda m: {"0": 8, "3": 4}, "layers of your allocation"),
                       (lambda m: {"0": 8, "3": 4, "5": 9}, "int from 1 to 8")):
        with pytest.raises(ExerciseError, match=why):
            ex.check_bit_allocation(wrong, model, data, tolerance_pt=2.0)
