"""Chapter 04's exercise checkers: each accepts an independent solution and rejects the stub, a
plausible wrong answer and a solution that calls the library's answer."""

import functools

import pytest
import torch
import torch.nn as nn

from course_lib import prune
from course_lib.checks import ExerciseError
from course_lib.exercises import ch04 as ex


def stub(*args):
    raise NotImplementedError("your code here")


# ------------------------------------------------------------------ OBD for a linear layer

def obd_right(x, weight):
    return (x ** 2).mean(0).expand_as(weight) * weight ** 2 / 2


def test_obd_linear(capsys):
    ex.check_obd_linear(obd_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_obd_linear(stub)
    for wrong in (lambda x, w: (x ** 2).mean(0).expand_as(w) * w ** 2,          # the ½ forgotten
                  lambda x, w: (x ** 2).sum(0).expand_as(w) * w ** 2 / 2,      # a sum over examples
                  lambda x, w: (x.mean(0) ** 2).expand_as(w) * w ** 2 / 2):    # (mean x)²
        with pytest.raises(ExerciseError, match="saliencies of a"):
            ex.check_obd_linear(wrong)


def test_obd_linear_refuses_the_library():
    def via_obd(x, weight):
        layer = nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            layer.weight.copy_(weight)
        return prune.obd_saliency(layer, (x, torch.zeros(len(x), weight.shape[0], dtype=x.dtype)), exact=True)[""]

    with pytest.raises(ExerciseError, match="prune.obd_saliency"):
        ex.check_obd_linear(via_obd)
    hessian = functools.partial(prune.hessian_diagonal, exact=True)             # through a partial
    with pytest.raises(ExerciseError, match="prune.hessian_diagonal"):
        ex.check_obd_linear(lambda x, w: hessian(nn.Linear(1, 1), (x, x)))


# ------------------------------------------------------------------ global magnitude masks

def global_right(weights, sparsity):
    everything = torch.cat([w.abs().flatten() for w in weights.values()])
    n_drop = round(sparsity * everything.numel())
    threshold = everything.sort().values[n_drop - 1] if n_drop else -1.0
    return {name: w.abs() > threshold for name, w in weights.items()}


def per_layer(weights, sparsity):                                                # every layer at the same sparsity
    masks = {}
    for name, w in weights.items():
        n_drop = round(sparsity * w.numel())
        m = torch.ones(w.numel(), dtype=torch.bool)
        m[w.abs().flatten().argsort()[:n_drop]] = False
        masks[name] = m.view_as(w)
    return masks


def by_value(weights, sparsity):                                                 # w, not |w|
    everything = torch.cat([w.flatten() for w in weights.values()])
    n_drop = round(sparsity * everything.numel())
    threshold = everything.sort().values[n_drop - 1] if n_drop else -float("inf")
    return {name: w > threshold for name, w in weights.items()}


def test_global_magnitude_masks(capsys):
    ex.check_global_magnitude_masks(global_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_global_magnitude_masks(stub)
    for wrong in (per_layer, by_value):
        with pytest.raises(ExerciseError, match="one threshold on \\|w\\| over the whole network"):
            ex.check_global_magnitude_masks(wrong)
    with pytest.raises(ExerciseError, match="a mask for each layer"):
        ex.check_global_magnitude_masks(lambda weights, s: [global_right(weights, s)])


def test_global_magnitude_masks_refuses_the_library():
    with pytest.raises(ExerciseError, match="prune.magnitude_mask"):
        ex.check_global_magnitude_masks(lambda ws, s: {k: prune.magnitude_mask(w, s) for k, w in ws.items()})

    def via_magnitude_prune(weights, sparsity):
        model = nn.ModuleDict({k: nn.Linear(w.shape[1], w.shape[0]) for k, w in weights.items()})
        prune.magnitude_prune(model, sparsity, scope="global")
        return prune.masks(model)

    with pytest.raises(ExerciseError, match="prune.magnitude_prune"):
        ex.check_global_magnitude_masks(via_magnitude_prune)


# ------------------------------------------------------------------ CSR break-even

def csr_right(rows, cols, value_dtype, index_dtype):
    vb, ib = torch.empty((), dtype=value_dtype).element_size(), torch.empty((), dtype=index_dtype).element_size()
    return max(0, (rows * cols * vb - (rows + 1) * ib) // (vb + ib))


def test_csr_max_nonzeros(capsys):
    ex.check_csr_max_nonzeros(csr_right)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        ex.check_csr_max_nonzeros(stub)
    for wrong in (lambda rows, cols, v, i: rows * cols // 2,                   # "half the entries"
                  lambda rows, cols, v, i: csr_right(rows, cols, v, torch.int32)):   # int32 assumed: PyTorch's are int64
        with pytest.raises(ExerciseError, match="the most non-zeros"):
            ex.check_csr_max_nonzeros(wrong)

    def no_row_pointers(rows, cols, value_dtype, index_dtype):
        vb, ib = (torch.empty((), dtype=d).element_size() for d in (value_dtype, index_dtype))
        return rows * cols * vb // (vb + ib)

    with pytest.raises(ExerciseError, match="the most non-zeros"):
        ex.check_csr_max_nonzeros(no_row_pointers)

    def by_storage_bytes(rows, cols, value_dtype, index_dtype):
        return max(n for n in range(rows * cols + 1)
                   if prune.storage_bytes(torch.ones(n).reshape(-1, 1) if n else torch.zeros(1, 1), "csr")
                   <= prune.storage_bytes(torch.ones(rows, cols), "dense"))

    with pytest.raises(ExerciseError, match="prune.storage_bytes"):
        ex.check_csr_max_nonzeros(by_storage_bytes)
