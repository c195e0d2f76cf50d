"""How a pruned weight is stored (chapter 04): dense, COO, CSR, and CSR with relative indices.

Han et al. (2015, 2016) store only the non-zero weights and, for each, the gap to the previous one in
a few bits (``relative_indices``: a gap too large for ``index_bits`` is bridged by filler zeros);
``storage_bytes`` counts the real bytes of every format, ``model_storage`` sums them over a model,
``to_csr`` is PyTorch's CSR tensor. ``prune`` re-exports every name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from .args import check_bits
from .surgery import pack_bits, tensor_of, weight_layers

__all__ = ["FORMATS", "relative_indices", "decode_relative", "to_csr", "storage_bytes", "model_storage"]


# --------------------------------------------------------------------------- storage formats

FORMATS = ("dense", "coo", "csr", "csr-relative")


def relative_indices(
    values: torch.Tensor | np.ndarray | Sequence[float], index_bits: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep Compression's relative index (Han, Mao & Dally 2016, Fig. 2) — the one implementation
    chapters 04 and 05 share.

    Each stored entry keeps its value and the **position difference** ``d`` to the previous stored
    entry (the first one counted from position −1), with ``1 ≤ d ≤ 2**index_bits``: a file stores
    ``d − 1`` (the number of zeros skipped) in ``index_bits`` bits. When the next non-zero is more
    than ``2**index_bits`` places away, a **filler zero** (value 0) is stored ``2**index_bits``
    places further on — in the paper's 3-bit example, after position 4 the filler lands at 12.

    ``values``: a tensor (or array-like), flattened. Returns ``(diffs, stored)``: ``diffs`` int64,
    ``stored`` the entries (fillers are 0), same length; entry k sits at ``diffs[:k + 1].sum() − 1``
    (:func:`decode_relative`). Trailing zeros cost nothing: the decoder knows the size.
    """
    check_bits("index_bits", index_bits, 1, 16)
    flat = (values.detach() if torch.is_tensor(values) else torch.as_tensor(np.asarray(values))).reshape(-1).cpu()
    span = 2 ** int(index_bits)  # the largest difference one index can say
    positions = torch.nonzero(flat).flatten()
    run = torch.diff(positions, prepend=torch.tensor([-1]))  # position differences, ≥ 1
    fillers = (run - 1) // span  # fillers needed before each non-zero
    owner = torch.repeat_interleave(torch.arange(len(positions)), fillers + 1)
    is_last = torch.zeros(len(owner), dtype=torch.bool)
    is_last[torch.cumsum(fillers + 1, 0) - 1] = True
    diffs = torch.where(is_last, run[owner] - fillers[owner] * span, torch.full_like(owner, span))
    stored = torch.where(is_last, flat[positions][owner], torch.zeros((), dtype=flat.dtype))
    return diffs.to(torch.int64), stored


def decode_relative(gaps: torch.Tensor, stored: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of ``relative_indices``: the dense 1-d tensor of length ``numel``."""
    out = torch.zeros(numel, dtype=stored.dtype)
    positions = torch.cumsum(gaps, 0) - 1
    out[positions] = stored
    return out


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def to_csr(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` viewed as rows × (everything else), as a torch CSR tensor (beta warning silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return weight.reshape(weight.shape[0], -1).to_sparse_csr()


def storage_bytes(weight: torch.Tensor, fmt: str = "csr", index_bits: int = 5) -> int:
    """Real bytes of ``weight`` (float32 values) in a storage format, counted from real buffers.

    - ``dense``: every entry, 4 bytes each;
    - ``coo``: ``torch.Tensor.to_sparse()`` — int64 (row, col, ...) indices + values;
    - ``csr``: ``to_sparse_csr()`` of the weight viewed as rows × (everything else) — int64 row
      pointers + int64 column indices + values;
    - ``csr-relative``: values + ``index_bits``-bit gaps packed into bytes (``surgery.pack_bits``),
      filler zeros included (Han et al. 2016 use 8 bits for conv, 5 for fc layers).
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} is unknown; choose one of {FORMATS}")
    w = weight.detach().cpu().float()
    if fmt == "dense":
        return _nbytes(w)
    if fmt == "coo":
        sp = w.to_sparse().coalesce()
        return _nbytes(sp.indices()) + _nbytes(sp.values())
    if fmt == "csr":
        sp = to_csr(w)
        return _nbytes(sp.crow_indices()) + _nbytes(sp.col_indices()) + _nbytes(sp.values())
    gaps, stored = relative_indices(w, index_bits)
    return len(pack_bits(gaps - 1, index_bits)) + stored.numpy().astype(np.float32).nbytes  # d − 1 in b bits


def model_storage(model: nn.Module, index_bits: int | None = None) -> dict[str, int]:
    """``{fmt: bytes}`` summed over the conv/linear weights of ``model`` (8-bit gaps for conv,
    5-bit for fc unless ``index_bits`` is given)."""
    totals = dict.fromkeys(FORMATS, 0)
    for name, m in weight_layers(model).items():
        w = tensor_of(m).detach()
        bits = index_bits or (5 if isinstance(m, nn.Linear) else 8)
        for fmt in FORMATS:
            totals[fmt] += storage_bytes(w, fmt, bits)
    return totals
