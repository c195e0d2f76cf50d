"""Low-rank kernels: replace one wide layer by two thin ones (chapter 03).

A layer is a matrix. If that matrix is close to one of rank r, it can be stored and applied as a
product of two thin matrices, and a 100×100 matrix at rank 10 costs 100·10 + 10·100 = 2,000 numbers
and multiplies instead of 10,000: one fifth. The Eckart–Young theorem says the truncated SVD is the
best rank-r approximation, with Frobenius error sqrt(σ²_{r+1} + … + σ²_min) — every decomposition
below records that error as ``error_bound``, and is exact at full rank.

- ``decompose_linear``: ``W ≈ (U√Σ)(√Σ Vᵀ)``, a Linear(n → r) followed by a Linear(r → m).
- ``decompose_conv_channels`` (Zhang, Zou, He & Sun, "Efficient and Accurate Approximations of
  Nonlinear Convolutional Networks", CVPR 2015): d filters of size k×k×c become d′ = r filters k×k×c
  followed by a 1×1 conv P (d×d′). From the weights alone (SVD of the d × ckk filter matrix), or
  from data: the principal subspace of the layer's *responses* on sample inputs, and the asymmetric
  variant that maps the responses of the already-approximated network onto the original ones, so
  that errors do not accumulate layer after layer. (Zhang et al. also fit through the ReLU with a
  generalized SVD; we keep to the linear responses.)
- ``decompose_conv_spatial`` (Jaderberg, Vedaldi & Zisserman, "Speeding up Convolutional Neural
  Networks with Low Rank Expansions", BMVC 2014, scheme 2): a k×k conv becomes a k×1 conv to K = r
  channels then a 1×k conv. We fit it in closed form with the SVD of the (c·k) × (d·k) rearranged
  kernel (Tai et al. 2016 observed this), where Jaderberg et al. used conjugate gradients.
- ``compress_model``: a copy of a model with every eligible layer (or the ``layers=`` chosen) decomposed
  to a budget. It also takes a pruned model (chapter 04) or one with shared weights (chapter 02):
  each decomposition sees the layer's effective (masked / shared) weight, the decomposed layers come
  out dense, and the layers left alone keep their masks and parametrizations.
- ``lowrank_summary``: the ``LowRankRow``s of a model's decomposed layers; ``spectrum_state`` /
  ``draw_spectrum`` / ``spectrum_readout`` / ``spectrum_explorer``: the explorer of one layer's spectrum.
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, SupportsIndex, cast

import numpy as np
import torch
import torch.nn as nn

from .args import check_float
from .measure import layer_table
from .report import Rows
from .states import State
from .surgery import copy_model, forward_with_hooks, replace_layer, tensor_of, weight_layers

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.figure import Figure

    from .widgets import Explorer

METHODS = ("svd", "channels", "data", "asymmetric", "spatial")
DATA_METHODS = ("data", "asymmetric")


# --------------------------------------------------------------------------- the linear algebra


def validate_rank(rank: object, max_rank: int, what: str = "the matrix") -> int:
    """``rank`` as an int, or a clear error unless 1 <= rank <= max_rank."""
    if isinstance(rank, bool):
        raise TypeError(f"rank={rank!r} must be an integer, not a bool")
    try:
        rank = operator.index(cast(SupportsIndex, rank))  # ints, NumPy and 0-d torch integers (else TypeError)
    except TypeError:
        raise TypeError(f"rank={rank!r} must be an integer") from None
    if not 1 <= rank <= max_rank:
        raise ValueError(f"rank={rank} is outside 1..{max_rank}: the rank of {what} is at most min(m, n) = {max_rank}")
    return rank


def truncated_svd(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(U_r, S_r, Vh_r, S)``: the top-``rank`` singular triplets of a 2-d tensor and all singular values.

    Computed in float64 (then cast back), so that the error bound is checked to rounding.
    """
    if matrix.ndim != 2:
        raise ValueError(f"truncated_svd needs a 2-d matrix, got shape {tuple(matrix.shape)}")
    rank = validate_rank(rank, min(matrix.shape), f"a {matrix.shape[0]}×{matrix.shape[1]} matrix")
    U, S, Vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    dtype = matrix.dtype
    return U[:, :rank].to(dtype), S[:rank].to(dtype), Vh[:rank].to(dtype), S.to(dtype)


def svd_error_bound(singular_values: torch.Tensor | np.ndarray | Sequence[float], rank: int) -> float:
    """Eckart–Young: ``||W − W_r||_F = sqrt(σ²_{r+1} + … )``, the error of the best rank-r approximation."""
    s = torch.as_tensor(singular_values, dtype=torch.float64)
    return float(s[rank:].pow(2).sum().sqrt())


def kept_energy(singular_values: torch.Tensor | np.ndarray | Sequence[float], rank: int) -> float:
    """Fraction of ``Σσ²`` (the squared Frobenius norm) that the top ``rank`` singular values keep."""
    s2 = torch.as_tensor(singular_values, dtype=torch.float64).pow(2)
    return float(s2[:rank].sum() / s2.sum()) if s2.sum() > 0 else 1.0


def rank_for_energy(singular_values: torch.Tensor | np.ndarray | Sequence[float], energy: float) -> int:
    """The smallest rank whose singular values keep at least ``energy`` of ``Σσ²``."""
    if not 0 < energy <= 1:
        raise ValueError(f"energy={energy} must be in (0, 1]: the fraction of Σσ² to keep")
    s2 = torch.as_tensor(singular_values, dtype=torch.float64).pow(2)
    cumulative = s2.cumsum(0) / s2.sum()
    return int(torch.searchsorted(cumulative, torch.tensor(energy - 1e-12, dtype=torch.float64))) + 1


def factorized_params(m: int, n: int, rank: int) -> int:
    """Numbers in ``U (m×r)`` and ``V (r×n)``: ``r·(m + n)``, against ``m·n`` for the full matrix."""
    return rank * (m + n)


def rank_for_budget(m: int, n: int, budget: float) -> int:
    """The largest rank whose factorization costs at most ``budget`` × the ``m×n`` matrix (at least 1).

    Cost (parameters, and MACs of a stride-1 layer) grows as ``r·(m + n)``, not as ``r``: keeping
    half the cost keeps rank ``m·n / (2(m + n))``, a quarter of min(m, n) for a square matrix.
    """
    budget = _check_budget("budget", budget)
    rank = math.floor(budget * m * n / (m + n) + 1e-9)
    return max(1, min(rank, m, n))


# --------------------------------------------------------------------------- the factorized layer


class LowRank(nn.Sequential):
    """Two thin layers, ``second(first(x))``, that replace one wide layer.

    ``method`` says how they were fitted, ``rank`` is the inner width, ``error_bound`` the error
    the fit predicts (``||W − W_r||_F`` for the weight methods; the RMS response error on the
    sample inputs for the data methods).
    """

    first: nn.Module  # the two children, by name (for the type checker: Sequential registers them)
    second: nn.Module

    def __init__(self, first: nn.Module, second: nn.Module, *, method: str, rank: int, error_bound: float):
        super().__init__(OrderedDict(first=first, second=second))
        self.method, self.rank, self.error_bound = method, rank, error_bound

    def extra_repr(self) -> str:
        return f"method={self.method!r}, rank={self.rank}"


def composed_weight(module: LowRank) -> torch.Tensor:
    """The single weight a ``LowRank`` module applies (same shape as the layer it replaced)."""
    if not isinstance(module, LowRank):
        raise TypeError(f"composed_weight needs a LowRank module, got {type(module).__name__}")
    a, b = tensor_of(module.first), tensor_of(module.second)
    if isinstance(module.first, nn.Linear):
        return b @ a
    if module.method == "spatial":  # a: (r, c, kh, 1), b: (d, r, 1, kw)
        return torch.einsum("rci,drj->dcij", a[..., 0], b[:, :, 0, :])
    r = a.shape[0]  # a: (r, c, k, k), b: (d, r, 1, 1)
    return (b.flatten(1) @ a.reshape(r, -1)).reshape(b.shape[0], *a.shape[1:])


def _check_conv(conv, where):
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(
            f"{where} needs an nn.Conv2d, got {type(conv).__name__}"
            + (" (use decompose_linear for a Linear layer)" if isinstance(conv, nn.Linear) else "")
        )
    if conv.groups != 1:
        raise ValueError(
            f"{where}: groups={conv.groups} is not supported; grouped convolutions are already "
            "block-diagonal (chapter 06) — decompose each group separately or use groups=1"
        )


def decompose_linear(layer: nn.Linear, rank: int) -> LowRank:
    """Replace ``nn.Linear`` W (m×n) by Linear(n→r, no bias) then Linear(r→m) from the truncated SVD."""
    if not isinstance(layer, nn.Linear):
        raise TypeError(
            f"decompose_linear needs an nn.Linear, got {type(layer).__name__}"
            + (" (use decompose_conv_channels or decompose_conv_spatial)" if isinstance(layer, nn.Conv2d) else "")
        )
    m, n = layer.weight.shape
    rank = validate_rank(rank, min(m, n), f"the {m}×{n} weight")
    U, S, Vh, all_s = truncated_svd(layer.weight, rank)
    root = S.sqrt()
    first = nn.Linear(n, rank, bias=False)
    second = nn.Linear(rank, m, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(root[:, None] * Vh)
        second.weight.copy_(U * root)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    out = LowRank(first, second, method="svd", rank=rank, error_bound=svd_error_bound(all_s, rank))
    return out.to(layer.weight.device).train(layer.training)


def _channel_convs(conv, rank, filters, projection, bias, method, error_bound):
    """First conv: ``rank`` k×k filters (the original's geometry); second: the 1×1 conv P (d×r)."""
    first = nn.Conv2d(
        conv.in_channels,
        rank,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=False,
        padding_mode=conv.padding_mode,
    )
    second = nn.Conv2d(rank, conv.out_channels, 1, bias=bias is not None)
    with torch.no_grad():
        first.weight.copy_(filters.reshape(first.weight.shape))
        second.weight.copy_(projection.reshape(second.weight.shape))
        if bias is not None:
            second.bias.copy_(bias)
    out = LowRank(first, second, method=method, rank=rank, error_bound=error_bound)
    return out.to(conv.weight.device).train(conv.training)


def conv_responses(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The layer's linear responses (no bias) at every output position, as a (d, N·H·W) matrix."""
    y = conv._conv_forward(x, conv.weight, None)
    return y.transpose(0, 1).reshape(conv.out_channels, -1)


def fit_response_projection(
    y: torch.Tensor, y_hat: torch.Tensor, rank: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Rank-r ``M`` and shift ``s`` minimising ``Σ ||y − (M ŷ + s)||²`` over the columns (float64).

    ``y``: the original layer's responses (d × N), ``ŷ``: the responses the layer gets to see from
    the approximated network (``ŷ = y`` in the symmetric case). Returns ``(P, Q, s, rms_error)``
    with ``M = P Q`` (P: d×r with orthonormal columns, Q: r×d).

    This is reduced-rank regression: ``M_ols = C_yŷ C_ŷŷ⁺`` is the best full-rank map, and the best
    rank-r one projects it onto the top-r eigenvectors V of ``G = C_yŷ C_ŷŷ⁺ C_ŷy``: ``M = V Vᵀ M_ols``.
    When ŷ = y this is PCA of the responses (Zhang et al., eq. 5–6): ``M = V Vᵀ`` and the error is
    the sum of the discarded eigenvalues of the response covariance.
    """
    y, y_hat = y.double(), y_hat.double()
    count = y.shape[1]
    mean, mean_hat = y.mean(1, keepdim=True), y_hat.mean(1, keepdim=True)
    yc, yc_hat = y - mean, y_hat - mean_hat
    c_yy = yc @ yc.T / count
    c_yh = yc @ yc_hat.T / count
    c_hh = yc_hat @ yc_hat.T / count
    m_ols = c_yh @ torch.linalg.pinv(c_hh, hermitian=True)
    g = m_ols @ c_yh.T
    eigenvalues, vectors = torch.linalg.eigh((g + g.T) / 2)  # ascending order
    top = vectors[:, -rank:].flip(1)
    P, Q = top, top.T @ m_ols
    shift = (mean - P @ (Q @ mean_hat)).squeeze(1)
    residual = (torch.trace(c_yy) - eigenvalues[-rank:].sum()).clamp_min(0)
    return P, Q, shift, float(residual.sqrt())


def _check_scale(output_scale, d):
    """The per-output-channel weights of the error (e.g. a following BatchNorm's |γ|/σ), or ones."""
    if output_scale is None:
        return None
    scale = torch.as_tensor(output_scale).detach().double().flatten()
    if scale.numel() != d or not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
        raise ValueError(
            f"output_scale must hold {d} positive finite numbers (one per output channel), "
            f"got shape {tuple(torch.as_tensor(output_scale).shape)}"
        )
    return scale


def decompose_conv_channels(
    conv: nn.Conv2d,
    rank: int,
    data: torch.Tensor | None = None,
    approx_data: torch.Tensor | None = None,
    output_scale: torch.Tensor | Sequence[float] | None = None,
) -> LowRank:
    """Zhang et al.'s channel decomposition: d filters k×k×c → ``rank`` filters k×k×c + a 1×1 conv P.

    - ``data=None``: from the weights, the truncated SVD of the filter matrix W (d × c·k·k):
      filters = Σ_r V_rᵀ, P = U_r; ``error_bound = ||W − P·filters||_F`` (exact at full rank).
    - ``data`` = a batch of sample inputs to this layer (N, c, H, W): the responses y = W x are
      projected on their top-r principal directions V (PCA): filters = Vᵀ W, P = V, and the mean
      response that is discarded moves into the bias.
    - ``approx_data`` = the same samples as seen by this layer in the already-approximated network
      (asymmetric: fit M ŷ ≈ y, so the errors of earlier layers are corrected, not accumulated).
    - ``output_scale`` (d positive numbers): measure the error of output channel i scaled by
      ``output_scale[i]`` — pass a following BatchNorm's |γ|/σ so that the fit minimises the error
      the next layer actually sees (BatchNorm blows up channels with small responses).
    """
    _check_conv(conv, "decompose_conv_channels")
    d = conv.out_channels
    matrix = conv.weight.detach().reshape(d, -1)
    rank = validate_rank(rank, min(matrix.shape), f"the {d}×{matrix.shape[1]} filter matrix (d × c·k·k)")
    bias = None if conv.bias is None else conv.bias.detach()
    scale = _check_scale(output_scale, d)
    row = torch.ones(d, dtype=torch.float64) if scale is None else scale  # weight of each output channel
    if data is None:
        if approx_data is not None:
            raise ValueError("approx_data needs data: pass the original inputs as data as well")
        U, S, Vh, all_s = truncated_svd(row[:, None] * matrix.double(), rank)
        P = (U / row[:, None]).to(matrix.dtype)
        return _channel_convs(
            conv, rank, (S[:, None] * Vh).to(matrix.dtype), P, bias, "channels", svd_error_bound(all_s, rank)
        )
    for name, x in (("data", data), ("approx_data", approx_data)):
        if x is not None and (not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != conv.in_channels):
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(
                f"{name} must be sample inputs of this layer, shape (N, {conv.in_channels}, H, W); got {shape}"
            )
    if approx_data is not None and approx_data.shape != data.shape:
        raise ValueError(f"approx_data {tuple(approx_data.shape)} must have the shape of data {tuple(data.shape)}")
    with torch.no_grad():
        y = conv_responses(conv, data)
        y_hat = y if approx_data is None else conv_responses(conv, approx_data)
    P, Q, shift, rms = fit_response_projection(row[:, None] * y.double(), row[:, None] * y_hat.double(), rank)
    filters = (Q @ (row[:, None] * matrix.double())).to(matrix.dtype)
    P, shift = P / row[:, None], shift / row
    new_bias = shift if bias is None else shift + bias.double()
    method = "data" if approx_data is None else "asymmetric"
    return _channel_convs(conv, rank, filters, P.to(matrix.dtype), new_bias.to(matrix.dtype), method, rms)


def spatial_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The kernel (d, c, kh, kw) rearranged as a (c·kh) × (d·kw) matrix: rows (c, i), columns (n, j).

    Its rank-K factorizations are exactly the pairs "k×1 conv to K channels, then 1×k conv".
    """
    d, c, kh, kw = weight.shape
    return weight.permute(1, 2, 0, 3).reshape(c * kh, d * kw)


def decompose_conv_spatial(
    conv: nn.Conv2d, rank: int, output_scale: torch.Tensor | Sequence[float] | None = None
) -> LowRank:
    """Jaderberg et al.'s scheme 2: a kh×kw conv → kh×1 conv (c → K=rank) then 1×kw conv (K → d).

    Fitted to the original filters by the truncated SVD of ``spatial_matrix(W)``;
    ``error_bound = ||W − W_K||_F``, exact at full rank min(c·kh, d·kw). ``output_scale``: as in
    ``decompose_conv_channels`` (the error of output channel i counts ``output_scale[i]`` times).
    """
    _check_conv(conv, "decompose_conv_spatial")
    d, c, kh, kw = conv.weight.shape
    if kh == 1 or kw == 1:
        raise ValueError(
            f"kernel_size={conv.kernel_size}: a kernel with a side of 1 has nothing to split "
            "into k×1 and 1×k; use decompose_conv_channels"
        )
    matrix = spatial_matrix(conv.weight.detach())
    rank = validate_rank(
        rank, min(matrix.shape), f"the {matrix.shape[0]}×{matrix.shape[1]} rearranged kernel (c·kh × d·kw)"
    )
    scale = _check_scale(output_scale, d)
    column = torch.ones(d * kw, dtype=torch.float64) if scale is None else scale.repeat_interleave(kw)
    U, S, Vh, all_s = truncated_svd(matrix.double() * column, rank)
    root = S.sqrt()
    U, Vh = U.to(matrix.dtype), (Vh / column).to(matrix.dtype)
    root = root.to(matrix.dtype)
    pad, (ph, pw) = (conv.padding, (0, 0)) if isinstance(conv.padding, str) else (None, conv.padding)
    sh, sw = conv.stride
    dh, dw = conv.dilation
    vertical = nn.Conv2d(c, rank, (kh, 1), (sh, 1), pad or (ph, 0), (dh, 1), bias=False, padding_mode=conv.padding_mode)
    horizontal = nn.Conv2d(
        rank, d, (1, kw), (1, sw), pad or (0, pw), (1, dw), bias=conv.bias is not None, padding_mode=conv.padding_mode
    )
    with torch.no_grad():
        vertical.weight.copy_((U * root).reshape(c, kh, rank).permute(2, 0, 1).unsqueeze(-1))
        horizontal.weight.copy_((root[:, None] * Vh).reshape(rank, d, kw).permute(1, 0, 2).unsqueeze(2))
        if conv.bias is not None:
            tensor_of(horizontal, "bias").copy_(conv.bias)
    out = LowRank(vertical, horizontal, method="spatial", rank=rank, error_bound=svd_error_bound(all_s, rank))
    return out.to(conv.weight.device).train(conv.training)


# --------------------------------------------------------------------------- whole models


def layer_matrix(layer: nn.Module, method: str) -> torch.Tensor:
    """The matrix whose rank ``method`` truncates: Linear W, the d × ckk filter matrix, or the spatial one."""
    if method == "svd":
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"method 'svd' decomposes nn.Linear layers, got {type(layer).__name__}")
        return layer.weight.detach()
    _check_conv(layer, f"method {method!r}")
    return spatial_matrix(tensor_of(layer).detach()) if method == "spatial" else tensor_of(layer).detach().flatten(1)


def can_decompose(layer: nn.Module, method: str) -> bool:
    """Whether ``method`` applies to ``layer``: Linear for "svd", a groups=1 Conv2d for the others
    (with a kernel larger than 1×1 for "spatial")."""
    if method == "svd":
        return isinstance(layer, nn.Linear)
    if not isinstance(layer, nn.Conv2d) or layer.groups != 1:
        return False
    return method != "spatial" or min(layer.kernel_size) > 1


def decomposable_layers(model: nn.Module, method: str) -> dict[str, nn.Module]:
    """``{name: module}`` of the layers ``method`` can decompose, in forward (registration) order."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}")
    return {name: m for name, m in weight_layers(model).items() if can_decompose(m, method)}


def following_batchnorm_scale(model: nn.Module) -> dict[str, torch.Tensor]:
    """{conv name: |γ|/sqrt(var + ε)} for each Conv2d whose next registered module is its BatchNorm2d.

    In eval mode BatchNorm multiplies output channel i by γ_i/σ_i: an error in a channel with a small
    σ_i (small responses) is blown up. Fitting with these weights minimises the error after BN.
    """
    scales, previous = {}, None
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.BatchNorm2d)
            and isinstance(previous, tuple)
            and previous[1].out_channels == module.num_features
            and module.running_var is not None
        ):
            gamma = module.weight.detach().abs() if module.affine else torch.ones(module.num_features)
            scale = gamma / (module.running_var + module.eps).sqrt()
            scales[previous[0]] = scale.clamp_min(1e-6 * float(scale.max()) + 1e-12)
        if len(module._modules) == 0:  # leaves only, in forward-registration order
            previous = (name, module) if isinstance(module, nn.Conv2d) else None
    return scales


class _Stop(Exception):
    """Raised by ``layer_inputs``' hook: the rest of the forward pass is not needed."""


def layer_inputs(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """The tensor that layer ``name`` receives when ``model(x)`` runs (the pass stops right there)."""
    seen = {}

    def grab(module, inputs):
        seen["x"] = inputs[0].detach()
        raise _Stop

    try:
        forward_with_hooks(model, x, {model.get_submodule(name): grab}, pre=True)
    except _Stop:
        pass
    if "x" not in seen:
        raise ValueError(f"layer {name!r} is not called in the forward pass")
    return seen["x"]


def _check_budget(name: str, value: object) -> float:
    """``value`` as a float if it is a fraction of a layer's cost to keep, in (0, 1]."""
    return check_float(name, value, 0.0, 1.0, low_inclusive=False)


def _layer_ranks(
    model: nn.Module,
    budget: float | dict[str, float] | None,
    method: str,
    layers: str | Iterable[str] | None,
    ranks: dict[str, int] | None,
) -> dict[str, int]:
    """``{layer name: rank}`` of the layers ``compress_model`` decomposes (those with no saving left out)."""
    decomposable = decomposable_layers(model, method)
    if budget is None and ranks is None:
        raise ValueError("compress_model needs a budget (fraction in (0, 1]) or ranks={layer name: rank}")
    if isinstance(budget, dict) and layers is not None:
        raise ValueError("pass either layers= or a {layer name: budget} dict, not both")
    if budget is not None and not isinstance(budget, dict):
        budget = _check_budget("budget", budget)
    chosen = (
        list(budget)
        if isinstance(budget, dict)
        else list(decomposable if layers is None else weight_layers(model, layers))
    )
    ranks = dict(ranks or {})
    wrong = [n for n in chosen + list(ranks) if n not in decomposable]
    if wrong:
        what = "ranks names layers" if set(wrong) <= set(ranks) else "layers/budget name layers"
        raise ValueError(
            f"{what} {sorted(set(wrong))} that method {method!r} cannot decompose; decomposable: {list(decomposable)}"
        )
    out = {}
    for name in dict.fromkeys(chosen + list(ranks)):
        if name in ranks:
            out[name] = ranks[name]
            continue
        if budget is None:
            continue
        fraction = _check_budget(
            f"budget[{name!r}]" if isinstance(budget, dict) else "budget",
            budget[name] if isinstance(budget, dict) else budget,
        )
        m, n = layer_matrix(decomposable[name], method).shape
        rank = rank_for_budget(m, n, fraction)
        if factorized_params(m, n, rank) < m * n:  # else no saving: keep the layer as it is
            out[name] = rank
    return out


def compress_model(
    model: nn.Module,
    budget: float | dict[str, float] | None,
    method: str,
    *,
    data: torch.Tensor | None = None,
    layers: str | Iterable[str] | None = None,
    ranks: dict[str, int] | None = None,
    bn_aware: bool = False,
) -> nn.Module:
    """A copy of ``model`` whose chosen layers are replaced by ``LowRank`` pairs (``model`` is unchanged).

    ``budget``: the fraction (0, 1] of each layer's parameters (= its MACs at stride 1) to keep —
    one fraction, or ``{layer name: fraction}`` (the layers it names are the ones decomposed); each
    layer gets ``rank_for_budget`` of its matrix, and layers where the factorization would not be
    cheaper are left alone. ``layers``: the layers to decompose (default: every layer ``method``
    can decompose, ``decomposable_layers``; Zhang et al. leave the first conv: few input channels,
    little to gain). ``ranks``: ``{layer name: rank}``, an explicit rank that overrides the budget
    for those layers (``budget`` may then be None: only those layers are decomposed).
    ``method``: "svd" (Linear layers), "channels", "data", "asymmetric" (conv channel
    decomposition from weights, from responses, asymmetric) or "spatial" (k×1 + 1×k).
    ``data``: a batch of model inputs, needed by "data" and "asymmetric".
    ``bn_aware``: weight each conv's output channels by its following BatchNorm's |γ|/σ
    (``following_batchnorm_scale``), so that the fit minimises the error right after BN. (An
    option to try: on the course's VGG-small it did not help — an error after BN is not yet an
    error in the next layer's output.)

    A pruned model (chapter 04) or one with shared weights (chapter 02) works too: each layer is
    decomposed from its effective weight (masked, or ``codebook[indices]``); a decomposed layer is
    dense (its zeros and shared values are not kept), the layers left alone keep their masks and
    parametrizations. The copy keeps the model's train/eval mode.
    """
    plan = _layer_ranks(model, budget, method, layers, ranks)
    if method in DATA_METHODS and data is None:
        raise ValueError(f"method {method!r} fits the layers' responses: pass data=a batch of inputs")
    new = copy_model(model)
    scales = following_batchnorm_scale(model) if bn_aware else {}
    for name, layer in decomposable_layers(model, method).items():
        if name not in plan:
            continue
        rank = plan[name]
        if method == "svd":
            assert isinstance(layer, nn.Linear)  # decomposable_layers: Linear layers for svd, Conv2d otherwise
            replacement = decompose_linear(layer, rank)
        elif not isinstance(layer, nn.Conv2d):
            raise TypeError(f"{name}: method {method!r} decomposes Conv2d layers, got {type(layer).__name__}")
        elif method == "spatial":
            replacement = decompose_conv_spatial(layer, rank, output_scale=scales.get(name))
        elif method == "channels":
            replacement = decompose_conv_channels(layer, rank, output_scale=scales.get(name))
        else:
            assert data is not None  # checked above: the data methods need it
            x = layer_inputs(model, name, data)
            x_hat = layer_inputs(new, name, data) if method == "asymmetric" else None
            replacement = decompose_conv_channels(layer, rank, x, x_hat, output_scale=scales.get(name))
        replace_layer(new, name, replacement)
    return new


@dataclass
class LowRankRow:
    """One decomposed layer of ``lowrank_summary``: how it was fitted, its rank and the fit's error."""

    layer: str
    method: str
    rank: int
    error_bound: float


def lowrank_summary(model: nn.Module) -> Rows:
    """The ``LowRankRow`` (layer, method, rank, error_bound) of each ``LowRank`` module of a model."""
    return Rows(
        LowRankRow(n, m.method, m.rank, m.error_bound) for n, m in model.named_modules() if isinstance(m, LowRank)
    )


# --------------------------------------------------------------------------- the widget


@dataclass(frozen=True, eq=False)
class SpectrumState(State):
    """The spectrum explorer's state (``spectrum_state``): singular values, the chosen rank and its costs."""

    singular_values: list[float]
    rank: int
    shape: tuple[int, int]
    method: str
    kept_energy: float
    relative_error: float
    params: tuple[int, int]
    macs: tuple[int, int] | None


def spectrum_state(
    layer: nn.Module, rank: int, method: str = "channels", out_hw: tuple[int, int] | None = None
) -> SpectrumState:
    """What the explorer shows for one layer at one rank (pure).

    Returns singular values, kept energy, relative reconstruction error ``||W − W_r||_F / ||W||_F``,
    parameters and (given the output size ``out_hw`` of a conv) MACs before and after.
    """
    if method not in ("svd", "channels", "spatial"):
        raise ValueError(f"method={method!r}: the spectrum explorer shows 'svd', 'channels' or 'spatial'")
    if method == "spatial" and isinstance(layer, nn.Conv2d) and min(layer.kernel_size) == 1:
        raise ValueError(f"method='spatial' needs a kernel larger than 1×1, this layer is {layer.kernel_size}")
    matrix = layer_matrix(layer, method)
    m, n = matrix.shape
    rank = validate_rank(rank, min(m, n), f"this layer's {m}×{n} matrix")
    s = torch.linalg.svdvals(matrix.double())
    params = (m * n, factorized_params(m, n, rank))
    if isinstance(layer, nn.Linear):
        macs = params
    elif out_hw is None:
        macs = None
    else:
        ho, wo = out_hw  # stride 1: both thin convs run at the output size
        macs = (m * n * ho * wo, rank * (m + n) * ho * wo)
    return SpectrumState(
        singular_values=s.tolist(),
        rank=rank,
        shape=(m, n),
        method=method,
        kept_energy=kept_energy(s, rank),
        relative_error=svd_error_bound(s, rank) / float(s.pow(2).sum().sqrt()),
        params=params,
        macs=macs,
    )


def draw_spectrum(state: SpectrumState, fig: Figure) -> None:
    """Singular values (kept ones dark) and the cumulative energy, with the chosen rank marked."""
    s = np.asarray(state.singular_values)
    r = state.rank
    ax_s, ax_e = fig.subplots(1, 2)
    idx = np.arange(1, len(s) + 1)
    ax_s.bar(idx[:r], s[:r], color="#1f5fa8", label=f"kept ({r})")
    ax_s.bar(idx[r:], s[r:], color="#c8c8c8", label="discarded")
    ax_s.set_yscale("log")
    ax_s.set_xlabel("index i")
    ax_s.set_ylabel("σᵢ")
    ax_s.set_title(f"singular values of the {state.shape[0]}×{state.shape[1]} matrix")
    ax_s.legend()
    energy = np.cumsum(s**2) / np.sum(s**2)
    ax_e.plot(idx, 100 * energy, "-", color="#444")
    ax_e.plot([r], [100 * state.kept_energy], "o", color="#c03030")
    ax_e.axvline(r, color="#c03030", lw=0.8)
    ax_e.set_xlabel("rank r")
    ax_e.set_ylabel("kept energy Σσ² (%)")
    ax_e.set_title(f"rank {r}: {100 * state.kept_energy:.1f}% energy, {100 * state.relative_error:.1f}% error")
    ax_e.grid(alpha=0.3)
    fig.tight_layout()


def spectrum_readout(state: SpectrumState) -> str:
    """One line: rank, kept energy, relative error, parameters (and MACs) before → after."""
    p0, p1 = state.params
    text = (
        f"rank {state.rank} ({state.method}): kept energy {100 * state.kept_energy:.1f}%, "
        f"relative error ‖W−W_r‖/‖W‖ = {state.relative_error:.3f}; params {p0:,} → {p1:,} "
        f"({p1 / p0:.2f}×)"
    )
    if state.macs is not None:
        m0, m1 = state.macs
        text += f"; MACs {m0:,} → {m1:,} ({m1 / m0:.2f}×)"
    return text


def spectrum_explorer(
    model: nn.Module, input_size: tuple[int, ...], rank: int = 8, method: str = "channels"
) -> Explorer:
    """An ``Explorer``: pick a layer, a method and a rank → spectrum, energy, error, params/MACs."""
    from . import widgets

    out_hw = {row.name: row.out_shape[-2:] for row in layer_table(model, input_size) if row.kind == "Conv2d"}
    layers = list(weight_layers(model, types=(nn.Linear, nn.Conv2d)))
    widest = max(
        min(
            layer_matrix(
                model.get_submodule(n), "svd" if isinstance(model.get_submodule(n), nn.Linear) else "channels"
            ).shape
        )
        for n in layers
    )

    def state(layer, method, rank):
        module = model.get_submodule(layer)
        if isinstance(module, nn.Linear) and method != "svd":
            raise ValueError(f"layer {layer} is Linear: choose method 'svd'")
        if isinstance(module, nn.Conv2d) and method == "svd":
            raise ValueError(f"layer {layer} is a conv: choose method 'channels' or 'spatial'")
        return spectrum_state(module, rank, method, out_hw.get(layer))

    default = next(
        (n for n in layers if n in out_hw and out_hw[n] and int(getattr(model.get_submodule(n), "in_channels", 1)) > 1),
        layers[0],
    )
    controls = {
        "layer": widgets.dropdown("layer", layers, default),
        "method": widgets.dropdown("method", ["channels", "spatial", "svd"], method),
        "rank": widgets.int_slider("rank r", rank, 1, max(widest * 3, 2)),
    }
    return widgets.Explorer(
        state,
        draw_spectrum,
        controls,
        title="Low-rank spectrum of one layer",
        readout_fn=spectrum_readout,
        figsize=(10, 3.6),
    )


__all__ = [
    "METHODS",
    "DATA_METHODS",
    "validate_rank",
    "truncated_svd",
    "svd_error_bound",
    "kept_energy",
    "rank_for_energy",
    "factorized_params",
    "rank_for_budget",
    "LowRank",
    "composed_weight",
    "decompose_linear",
    "conv_responses",
    "fit_response_projection",
    "decompose_conv_channels",
    "spatial_matrix",
    "decompose_conv_spatial",
    "layer_matrix",
    "can_decompose",
    "decomposable_layers",
    "following_batchnorm_scale",
    "layer_inputs",
    "compress_model",
    "LowRankRow",
    "lowrank_summary",
    "SpectrumState",
    "spectrum_state",
    "draw_spectrum",
    "spectrum_readout",
    "spectrum_explorer",
]
