"""Interleaved group convolutions (IGCV1, IGCV2, IGCV3) and channel connectivity (chapter 06).

A group convolution with ``g`` groups has a block-diagonal kernel matrix: an output channel of one
group never sees the inputs of another. Interleaved group convolutions multiply *two or more* such
structured sparse matrices, with permutations between them, so that the product is dense again:

- **IGCV1** (Zhang, Qi, Xiao, Wang, ICCV 2017): ``C = L·M`` channels; a primary k×k group conv with
  L partitions of M channels, a permutation that interleaves the partitions, a secondary 1×1 group
  conv with M partitions of L channels, and the permutation back. Complementary condition: every
  output channel has exactly one path to every input channel. Parameters ``T = L·M²·k² + M·L²``.
- **IGCV2** (Xie, Wang, Zhang, Lai, Hong, Qi, CVPR 2018): a longer chain ``P_L W_L … P_1 W_1``:
  a channel-wise k×k conv (branch size ``K_1 = 1``) followed by ``L − 1`` 1×1 group convs with
  branch sizes ``K_2 … K_L`` whose product is C (the complementary condition). Their cost
  ``C·(K_2 + … + K_L)`` is smallest for equal branch sizes (the balance condition), and then for
  ``L − 1 = ln C`` group convs (:func:`igcv2_branches`).
- **IGCV3** (Sun, Li, Liu, Wang, BMVC 2018; code homles11/IGCV3): 1×1 group conv expansion →
  permutation → 3×3 depthwise → 1×1 group conv → permutation, with a residual; low-rank +
  structured sparse; the *loose* complementary condition: the complementary condition holds over
  **super-channels** (channels that always travel together, :func:`super_channel_connectivity`),
  so individual channels may be joined by several paths.

The module has four parts: the blocks and their dense ``composed_kernel``; the parameter arithmetic
(IGCV1 widths, IGCV2 chains); the connectivity explorer's IGC presets; and the plain networks of the
chapter's experiment. The channel-connectivity toolkit itself (channel operations, path counts,
``classify``, drawing, the explorer) is the core module ``channels``, which later chapters use too;
its names are re-exported here (``igc.connectivity``, ``igc.classify`` ...) as the chapter reads them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from . import channels
from .args import check_int
from .channels import (
    CONDITIONS,
    MAX_DRAWN_CHANNELS,
    VERDICTS,
    Chain,
    ChannelOp,
    ChannelPermutation,
    ConnectivityState,
    Preset,
    adjacency,
    as_ops,
    chain_params,
    classify,
    connectivity,
    connectivity_readout,
    dense,
    depthwise,
    draw_channel_graph,
    draw_connectivity,
    draw_counts,
    group_conv,
    interleave,
    permutation,
    permutation_matrix,
    regular_params,
    shuffle,
    super_channel_connectivity,
)
from .models import conv_norm_act, norm_act
from .surgery import dense_group_weight

if TYPE_CHECKING:  # ipywidgets loads only when drawing
    from .widgets import Explorer

__all__ = [
    # the blocks
    "IGCV1",
    "IGCV2",
    "IGCV3",
    "dense_kernel",
    "composed_kernel",
    "extreme_case",
    # parameter arithmetic
    "igcv1_params",
    "equal_param_width",
    "igc_is_wider",
    "wider_condition",
    "WidthRow",
    "width_report",
    "widest_igcv1",
    "max_igcv1_width",
    "igcv2_params",
    "chain_pointwise_params",
    "valid_chains",
    "best_chains",
    "balanced_chain",
    "optimal_length",
    "igcv2_branches",
    "best_igcv2_L",
    # the explorer with the IGC presets
    "IGC_PRESETS",
    "PRESETS",
    "PRESET_HELP",
    "connectivity_state",
    "connectivity_explorer",
    # plain networks (the experiment)
    "plain_net",
    "regular_width_for",
    # re-exported from channels (the core toolkit this chapter introduces)
    "VERDICTS",
    "CONDITIONS",
    "interleave",
    "ChannelPermutation",
    "permutation_matrix",
    "regular_params",
    "ChannelOp",
    "group_conv",
    "dense",
    "depthwise",
    "permutation",
    "shuffle",
    "as_ops",
    "adjacency",
    "connectivity",
    "classify",
    "super_channel_connectivity",
    "chain_params",
    "Chain",
    "Preset",
    "MAX_DRAWN_CHANNELS",
    "ConnectivityState",
    "connectivity_readout",
    "draw_channel_graph",
    "draw_counts",
    "draw_connectivity",
]


# --------------------------------------------------------------------------- validation helpers


def _odd_kernel(kernel_size):
    check_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size={kernel_size} must be odd, so that padding kernel_size // 2 keeps the spatial size"
        )
    return kernel_size


# --------------------------------------------------------------------------- group conv as a dense kernel


def dense_kernel(conv: nn.Conv2d) -> torch.Tensor:
    """The dense ``C_out × C_in × k × k`` kernel of an ``nn.Conv2d`` with any ``groups``.

    Group g's weights fill the diagonal block (outputs of group g) × (inputs of group g); every
    other entry is zero (``surgery.dense_group_weight`` of the layer's weight and groups).
    ``F.conv2d(x, dense_kernel(conv))`` equals ``conv(x)`` (without bias).
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    return dense_group_weight(conv.weight, conv.groups)


# --------------------------------------------------------------------------- the blocks


def _post(channels: int, norm: bool, act: bool) -> nn.Sequential:
    return norm_act(channels, norm=nn.BatchNorm2d if norm else None, activation=nn.ReLU if act else None)


class IGCV1(nn.Module):
    """Interleaved group convolution block (Zhang et al., ICCV 2017).

    ``x → primary k×k group conv (L partitions of M channels) → interleave(L, M)
    → secondary 1×1 group conv (M partitions of L channels) → interleave(M, L) → [BN] → [ReLU]``.

    As in the official code, there is no BN/ReLU between the two group convs: the block's linear
    part is one convolution whose dense kernel is :func:`composed_kernel`. ``channels`` must be
    ``L·M``. ``in_channels`` (default ``channels``) lets the first block of a stage widen the
    network (the primary conv then maps ``in_channels/L → M`` channels per partition).
    """

    def __init__(
        self,
        channels: int,
        L: int,
        M: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm: bool = True,
        act: bool = True,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        check_int("channels", channels)
        check_int("L", L)
        check_int("M", M)
        _odd_kernel(kernel_size)
        check_int("stride", stride)
        if channels % L:
            raise ValueError(f"channels={channels} is not divisible by L={L} primary partitions")
        if channels != L * M:
            raise ValueError(
                f"channels={channels} must equal L·M = {L}·{M} = {L * M} (L primary partitions of M channels each)"
            )
        in_channels = channels if in_channels is None else check_int("in_channels", in_channels)
        if in_channels % L:
            raise ValueError(f"in_channels={in_channels} is not divisible by L={L} primary partitions")
        self.L, self.M, self.kernel_size, self.stride = L, M, kernel_size, stride
        self.primary = nn.Conv2d(in_channels, channels, kernel_size, stride, kernel_size // 2, groups=L, bias=False)
        self.permute = ChannelPermutation(interleave(L, M))
        self.secondary = nn.Conv2d(channels, channels, 1, groups=M, bias=False)
        self.permute_back = ChannelPermutation(interleave(M, L))
        self.post = _post(channels, norm, act)

    @property
    def linear(self) -> list[nn.Module]:
        """The linear part, in order (what :func:`composed_kernel` and :func:`connectivity` read)."""
        return [self.primary, self.permute, self.secondary, self.permute_back]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.linear:
            x = layer(x)
        return self.post(x)


class IGCV2(nn.Module):
    """Interleaved structured sparse convolution block (Xie et al., CVPR 2018).

    The paper's block is ``IGCV2(C, igcv2_branches(C, L))``: a **channel-wise** k×k conv
    (``K_1 = 1``) followed by ``L − 1`` 1×1 group convs with branch sizes ``K_2 … K_L``,
    ``K_2·…·K_L = C``. In general: a chain of group convs with branch sizes ``K_1, …, K_n``
    (channels per group; ``K = 1`` is a depthwise conv, ``K = C`` a dense one): the first is k×k
    with the stride, the others 1×1. Before
    group conv l+1 the channels are interleaved with ``interleave(K_{l+1}, C / K_{l+1})`` (write a
    channel index in mixed radix with digits ``d_1 … d_n``; each permutation moves the next digit to
    the fastest-varying place, so group conv l mixes exactly digit l), and a last permutation
    restores the order. With ``K_1·…·K_n = C`` each output channel has exactly one path to each
    input channel. ``IGCV2(L·M, (M, L))`` is ``IGCV1(L·M, L, M)``.
    """

    def __init__(
        self,
        channels: int,
        branch_sizes: Iterable[int],
        kernel_size: int = 3,
        stride: int = 1,
        norm: bool = True,
        act: bool = True,
    ) -> None:
        super().__init__()
        check_int("channels", channels)
        _odd_kernel(kernel_size)
        check_int("stride", stride)
        branch_sizes = tuple(branch_sizes)
        if not branch_sizes:
            raise ValueError("branch_sizes must name at least one group conv")
        for i, K in enumerate(branch_sizes):
            check_int(f"branch_sizes[{i}]", K)
            if channels % K:
                raise ValueError(f"channels={channels} is not divisible by branch size branch_sizes[{i}]={K}")
        self.branch_sizes, self.kernel_size, self.stride = branch_sizes, kernel_size, stride
        layers: list[nn.Module] = []
        for i, K in enumerate(branch_sizes):
            if i > 0:
                layers.append(ChannelPermutation(interleave(K, channels // K)))
            k, s = (kernel_size, stride) if i == 0 else (1, 1)
            layers.append(nn.Conv2d(channels, channels, k, s, k // 2, groups=channels // K, bias=False))
        layers.append(ChannelPermutation(interleave(branch_sizes[0], channels // branch_sizes[0])))
        self.layers = nn.ModuleList(layers)
        self.post = _post(channels, norm, act)

    @property
    def linear(self) -> list[nn.Module]:
        return list(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.post(x)


class IGCV3(nn.Module):
    """IGCV3 block (Sun et al., BMVC 2018; official code homles11/IGCV3).

    ``x → 1×1 group conv (groups, C → t·C) [BN] → interleave(groups, t·C/groups)
    → k×k depthwise (stride) [BN, ReLU6] → 1×1 group conv (groups, t·C → C_out) [BN]
    → interleave(C_out/groups, groups) (+ x)``.

    Both permutations are the official code's (``permutation(…, groups=2)`` after the expansion,
    ``permutation(…, groups=num_filter/2)`` after the projection, i.e. the inverse shuffle).

    The expansion/projection pair is low-rank (a t·C-wide feature passes through C channels
    between blocks) and each of them is structured sparse (group convs). The residual is added
    when ``stride == 1`` and ``out_channels == channels``.
    """

    def __init__(
        self,
        channels: int,
        expansion: int = 6,
        groups: int = 2,
        kernel_size: int = 3,
        stride: int = 1,
        out_channels: int | None = None,
        norm: bool = True,
        act: bool = True,
    ) -> None:
        super().__init__()
        check_int("channels", channels)
        check_int("expansion", expansion)
        check_int("groups", groups)
        _odd_kernel(kernel_size)
        check_int("stride", stride)
        out_channels = channels if out_channels is None else check_int("out_channels", out_channels)
        hidden = channels * expansion
        for name, c in (("channels", channels), ("out_channels", out_channels)):
            if c % groups:
                raise ValueError(f"{name}={c} is not divisible by groups={groups}")
        self.expansion, self.groups, self.kernel_size, self.stride = expansion, groups, kernel_size, stride
        self.residual = stride == 1 and out_channels == channels
        self.expand = nn.Conv2d(channels, hidden, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden) if norm else nn.Identity()
        self.permute = ChannelPermutation(interleave(groups, hidden // groups))
        self.depthwise = nn.Conv2d(hidden, hidden, kernel_size, stride, kernel_size // 2, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden) if norm else nn.Identity()
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()
        self.project = nn.Conv2d(hidden, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.permute_out = ChannelPermutation(interleave(out_channels // groups, groups))

    @property
    def linear(self) -> list[nn.Module]:
        return [self.expand, self.permute, self.depthwise, self.project, self.permute_out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.expand(x))
        out = self.act(self.bn2(self.depthwise(self.permute(out))))
        out = self.permute_out(self.bn3(self.project(out)))
        return out + x if self.residual else out


def composed_kernel(block: nn.Module) -> torch.Tensor:
    """The dense ``C_out × C_in × k × k`` kernel of a block's linear part (BN and activations left out).

    For a block built with ``norm=False, act=False``::

        block(x) == F.conv2d(x, composed_kernel(block), stride=block.stride, padding=kernel_size // 2)

    It walks ``block.linear`` (convs and permutations): a permutation reorders the rows, a 1×1
    conv multiplies by its (block-diagonal) matrix, the one spatial conv brings the k×k taps. An
    IGCV3 residual adds the identity at the kernel's centre.
    """
    layers = getattr(block, "linear", None)
    if layers is None:
        raise TypeError(f"block must be an IGCV1, IGCV2 or IGCV3 (something with .linear), got {type(block).__name__}")
    kernel: torch.Tensor | None = None
    spatial_seen = False
    for layer in layers:
        if isinstance(layer, ChannelPermutation):
            if kernel is None:
                raise ValueError("a block's linear part starts with a conv, not a permutation")
            kernel = kernel[layer.perm]
            continue
        W = dense_kernel(layer)
        if W.shape[-1] == 1 and W.shape[-2] == 1:
            kernel = W if kernel is None else torch.einsum("oj,jikl->oikl", W[:, :, 0, 0], kernel)
        else:
            if spatial_seen:
                raise ValueError("composed_kernel handles one spatial conv per block")
            spatial_seen = True
            kernel = W if kernel is None else torch.einsum("ojkl,ji->oikl", W, kernel[:, :, 0, 0])
    if kernel is None:
        raise ValueError("block has no conv in its linear part")
    if kernel.shape[-1] == 1 and getattr(block, "kernel_size", 1) > 1:
        raise ValueError("block has no spatial conv in its linear part")
    if getattr(block, "residual", False):
        kernel = kernel.clone()
        c, mid = kernel.shape[0], kernel.shape[-1] // 2
        kernel[torch.arange(c), torch.arange(c), mid, mid] += 1.0
    return kernel


def extreme_case(block: IGCV1) -> tuple[str, nn.Sequential]:
    """The two extreme IGCV1 blocks as the plain layers they are (weights copied, no BN/ReLU).

    - ``M = 1``: the primary conv has C partitions of one channel — a **depthwise** k×k conv; both
      permutations are the identity; the secondary conv is one **dense 1×1** conv: Xception /
      depthwise separable. Returns ``("depthwise separable", nn.Sequential(depthwise, pointwise))``.
    - ``L = 1``: the primary conv is a **regular** k×k conv; the secondary conv has C partitions of
      one channel — a **per-channel scaling**. Returns
      ``("regular conv + per-channel scaling", nn.Sequential(conv, depthwise 1×1 scaling))``.
    """
    if not isinstance(block, IGCV1):
        raise TypeError(f"block must be an IGCV1, got {type(block).__name__}")
    C, k, s = block.primary.out_channels, block.kernel_size, block.stride
    c_in = block.primary.in_channels
    if block.M == 1:
        dw = nn.Conv2d(c_in, C, k, s, k // 2, groups=C, bias=False)
        pw = nn.Conv2d(C, C, 1, bias=False)
        with torch.no_grad():
            dw.weight.copy_(block.primary.weight)
            pw.weight.copy_(block.secondary.weight)
        return "depthwise separable", nn.Sequential(dw, pw)
    if block.L == 1:
        conv = nn.Conv2d(c_in, C, k, s, k // 2, bias=False)
        scale = nn.Conv2d(C, C, 1, groups=C, bias=False)
        with torch.no_grad():
            conv.weight.copy_(block.primary.weight)
            scale.weight.copy_(block.secondary.weight)
        return "regular conv + per-channel scaling", nn.Sequential(conv, scale)
    raise ValueError(f"extreme_case needs M = 1 or L = 1, this block has L={block.L}, M={block.M}")


# --------------------------------------------------------------------------- parameter arithmetic


def igcv1_params(L: int, M: int, kernel_size: int = 3) -> int:
    """Parameters of an IGCV1 block's two group convs: ``T = L·M²·k² + M·L²`` (C = L·M)."""
    check_int("L", L)
    check_int("M", M)
    check_int("kernel_size", kernel_size)
    return L * M * M * kernel_size**2 + M * L * L


def equal_param_width(L: int, M: int, kernel_size: int = 3) -> float:
    """Width of a regular k×k conv with as many parameters as IGCV1(L, M): ``sqrt(T) / k``."""
    return math.sqrt(igcv1_params(L, M, kernel_size)) / kernel_size


def igc_is_wider(L: int, M: int, kernel_size: int = 3) -> bool:
    """Is IGCV1(L, M) wider than a regular conv with the same parameters? Exact integer arithmetic.

    A regular conv of width C has C²k² parameters, so IGC's width ``L·M`` is larger than the
    equal-parameter width ``sqrt(T)/k`` iff ``(L·M)²·k² > T``.
    """
    return (L * M) ** 2 * kernel_size**2 > igcv1_params(L, M, kernel_size)


def wider_condition(L: int, M: int, kernel_size: int = 3) -> bool:
    """The paper's form of :func:`igc_is_wider`: ``M·k² > L / (L − 1)`` (never for L = 1).

    Derivation: ``L²M²k² > L·M²·k² + M·L²`` ⇔ ``L·M²·k²·(L − 1) > M·L²`` ⇔ ``M·k²·(L − 1) > L``.
    """
    check_int("L", L)
    check_int("M", M)
    return M * kernel_size**2 * (L - 1) > L


@dataclass
class WidthRow:
    """IGCV1(L, M) against a regular conv: one row of a width report."""

    L: int
    M: int
    channels: int  # C = L·M
    params: int  # T = L·M²·k² + M·L²
    params_ratio: float  # T over a regular conv of the same width
    equal_param_width: float  # the width of a regular conv with T parameters
    width_ratio: float  # C over that width: how much wider IGC is
    wider: bool  # igc_is_wider(L, M, k)


def width_report(L: int, M: int, kernel_size: int = 3) -> WidthRow:
    """ "a× the parameters at b× the width": IGCV1(L, M) against a regular conv, as a ``WidthRow``.

    Collect several in a ``report.Rows`` to print them as a table.
    """
    C, T = L * M, igcv1_params(L, M, kernel_size)
    width = equal_param_width(L, M, kernel_size)
    return WidthRow(L, M, C, T, T / regular_params(C, kernel_size), width, C / width, igc_is_wider(L, M, kernel_size))


def widest_igcv1(budget: int, kernel_size: int = 3) -> tuple[int, int]:
    """The IGCV1 ``(L, M)`` of largest width ``C = L·M`` whose parameters ``T = L·M²k² + M·L²``
    fit in ``budget`` (brute force; among equally wide blocks, the one with fewest parameters).

    Why the answer sits near ``L = M·k²``: ``T = G·(M·k² + L)`` with ``G = L·M``; at a fixed width G,
    AM–GM gives ``M·k² + L ≥ 2·sqrt(M·k²·L) = 2k·sqrt(G)``, with equality iff ``L = M·k²``. So the
    fewest parameters for a width are ``2k·G^(3/2)``, and a budget T buys at most ``G = (T / 2k)^(2/3)``.
    """
    check_int("budget", budget)
    check_int("kernel_size", kernel_size)
    best = None
    for L in range(1, budget + 1):
        if igcv1_params(L, 1, kernel_size) > budget:
            break
        M = 1
        while igcv1_params(L, M + 1, kernel_size) <= budget:
            M += 1
        key = (L * M, -igcv1_params(L, M, kernel_size))
        if best is None or key > best[0]:
            best = (key, (L, M))
    if best is None:
        raise ValueError(
            f"budget={budget} is below the smallest IGCV1 block (L = M = 1: {igcv1_params(1, 1, kernel_size)})"
        )
    return best[1]


def max_igcv1_width(budget: float, kernel_size: int = 3) -> float:
    """The real-valued widest IGCV1 for a parameter budget: ``G = (T / 2k)^(2/3)``, at ``L = M·k²``."""
    return (budget / (2 * kernel_size)) ** (2 / 3)


# --------------------------------------------------------------------------- IGCV2 chains


def igcv2_params(channels: int, branch_sizes: Iterable[int], kernel_size: int = 3) -> int:
    """Parameters of an IGCV2 chain: ``C·K_1·k² + C·(K_2 + … + K_n)`` (first conv spatial)."""
    check_int("channels", channels)
    sizes = tuple(branch_sizes)
    if not sizes:
        raise ValueError("branch_sizes must name at least one group conv")
    return channels * sizes[0] * kernel_size**2 + channels * sum(sizes[1:])


def chain_pointwise_params(channels: int, branch_sizes: Iterable[int]) -> int:
    """Parameters of a chain of 1×1 group convs with branch sizes K: ``C·ΣK`` (the IGCV2 objective)."""
    return channels * sum(branch_sizes)


@cache
def _factorizations(n, smallest):
    if n == 1:
        return ((),)
    found = []
    for f in range(smallest, n + 1):
        if n % f == 0:
            found += [(f,) + rest for rest in _factorizations(n // f, f)]
    return tuple(found)


def valid_chains(channels: int, min_branch: int = 2) -> list[tuple[int, ...]]:
    """Every chain of branch sizes ``K_l ≥ min_branch`` with ``ΠK_l = C``, as sorted tuples.

    These are the chains of group convs that can meet the strict complementary condition (the
    order of the convs does not change the parameter count of 1×1 convs, so each multiset once).
    """
    check_int("channels", channels, 2)
    check_int("min_branch", min_branch, 2)
    return list(_factorizations(channels, min_branch))


def best_chains(channels: int) -> list[tuple[int, ...]]:
    """The valid chains with the fewest 1×1 parameters ``C·ΣK`` (brute force over :func:`valid_chains`)."""
    chains = valid_chains(channels)
    best = min(sum(c) for c in chains)
    return [c for c in chains if sum(c) == best]


def balanced_chain(channels: int, length: int) -> tuple[int, ...]:
    """The most balanced chain of ``length`` branch sizes ≥ 2 with product ``channels`` (min ΣK).

    Raises ValueError if ``channels`` cannot be split into ``length`` such factors.
    """
    check_int("channels", channels, 2)
    check_int("length", length)
    chains = [c for c in valid_chains(channels) if len(c) == length]
    if not chains:
        raise ValueError(
            f"C={channels} cannot be written as a product of L={length} branch sizes ≥ 2 "
            f"(the complementary condition needs K_1·…·K_L = C)"
        )
    return min(chains, key=lambda c: (sum(c), max(c)))


def optimal_length(channels: int) -> float:
    """The real-valued number of 1×1 group convs minimising ``n·C^(1/n)`` (equal branches K = C^(1/n)):
    ``ln C``. In the paper's block that is ``L − 1`` (the first of its L group convs is channel-wise)."""
    check_int("channels", channels, 2)
    return math.log(channels)


def igcv2_branches(channels: int, L: int) -> tuple[int, ...]:
    """Branch sizes of the paper's IGCV2 block with ``L`` group convs: ``(1, K_2, …, K_L)``.

    ``K_1 = 1``: the first group conv is channel-wise (k×k); the ``L − 1`` 1×1 group convs get the
    most balanced branch sizes with ``K_2·…·K_L = C`` (:func:`balanced_chain`).
    """
    check_int("L", L, 2)
    check_int("channels", channels, 2)
    chains = [c for c in valid_chains(channels) if len(c) == L - 1]
    if not chains:
        raise ValueError(
            f"C={channels} cannot be written as a product of L − 1 = {L - 1} branch sizes ≥ 2 "
            f"(the complementary condition needs K_2·…·K_L = C)"
        )
    return (1,) + min(chains, key=lambda c: (sum(c), max(c)))


def best_igcv2_L(channels: int, kernel_size: int = 3) -> tuple[list[int], int]:
    """The L (number of group convs) of the paper's IGCV2 blocks with the fewest parameters, by brute
    force over every factorisation of C: ``(sorted L values, their parameters)``; compare ``1 + ln C``."""
    chains = valid_chains(channels)
    best = min(sum(c) for c in chains)
    Ls = sorted({len(c) + 1 for c in chains if sum(c) == best})
    return Ls, channels * kernel_size**2 + channels * best


# --------------------------------------------------------------------------- the explorer's IGC presets


def _igcv1(C: int, L: int, M: int, k: int) -> Chain:
    ops = (
        group_conv(L * M, L, kernel_size=k, label=f"primary {k}×{k}, {L} groups"),
        permutation(interleave(L, M), "interleave"),
        group_conv(L * M, M, label=f"secondary 1×1, {M} groups"),
        permutation(interleave(M, L), "permute back"),
    )
    return Chain(ops, f"IGCV1: L={L} primary partitions × M={M} channels, C = L·M = {L * M} (C slider unused)", L * M)


def _igcv2(C: int, L: int, M: int, k: int) -> Chain:
    if L < 2:
        raise ValueError(f"L={L}: an IGCV2 block has L ≥ 2 group convs (a channel-wise {k}×{k} + L − 1 1×1)")
    sizes = igcv2_branches(C, L)
    ops = []
    for i, K in enumerate(sizes):
        if i > 0:
            ops.append(permutation(interleave(K, C // K), "interleave"))
        label = f"{k}×{k} channel-wise" if i == 0 else f"1×1, K={K}"
        ops.append(group_conv(C, C // K, kernel_size=k if i == 0 else 1, label=label))
    ops.append(permutation(interleave(sizes[0], C // sizes[0]), "permute back"))
    title = (
        f"IGCV2: C={C}, L={L} group convs (channel-wise {k}×{k} + {L - 1} 1×1, K={list(sizes[1:])}, ΠK = C; M unused)"
    )
    return Chain(tuple(ops), title, C)


def _igcv3(C: int, L: int, M: int, k: int) -> Chain:
    if C % L:
        raise ValueError(f"C={C} is not divisible by L={L} groups")
    hidden = C * M
    ops = (
        group_conv(C, L, hidden, label=f"1×1 group conv ×{M}, {L} groups"),
        shuffle(hidden, L, "interleave"),
        depthwise(hidden, k),
        group_conv(hidden, L, C, label=f"1×1 group conv, {L} groups"),
        shuffle(C, C // L, "permute back"),
    )
    return Chain(ops, f"IGCV3 branch: C={C}, L={L} groups, M = expansion t = {M} (+ residual)", C)


IGC_PRESETS = channels.presets_table(
    [
        Preset("igcv1", _igcv1, "L = primary partitions, M = channels per partition (C = L·M; the C slider is unused)"),
        Preset("igcv2", _igcv2, "C = channels, L = number of group convs (channel-wise k×k + L − 1 1×1); M unused"),
        Preset("igcv3", _igcv3, "C = channels, L = groups of both 1×1 convs, M = expansion t"),
    ]
)
# the shared presets with IGC's, in the order the chapter introduces them
PRESETS = channels.presets_table(
    [channels.REGULAR, channels.GROUP, channels.XCEPTION],
    IGC_PRESETS,
    [channels.SHUFFLE, channels.NO_SHUFFLE],
)
PRESET_HELP = {name: preset.help for name, preset in PRESETS.items()}


def connectivity_state(
    preset: str = "igcv1",
    C: int = 16,
    L: int = 4,
    M: int = 4,
    kernel_size: int = 3,
    presets: Mapping[str, Preset] | Iterable[Preset] | None = None,
) -> ConnectivityState:
    """``channels.connectivity_state`` with this chapter's :data:`PRESETS` as the default table."""
    return channels.connectivity_state(preset, C, L, M, kernel_size, presets=PRESETS if presets is None else presets)


def connectivity_explorer(
    preset: str = "igcv1",
    C: int = 16,
    L: int = 4,
    M: int = 4,
    presets: Mapping[str, Preset] | Iterable[Preset] | None = None,
    figsize: tuple[float, float] = (11, 4.2),
) -> Explorer:
    """``channels.connectivity_explorer`` with the IGC presets (and ``presets``) added."""
    return channels.connectivity_explorer(
        preset, C, L, M, presets=channels.presets_table(PRESETS, presets or ()), figsize=figsize
    )


# --------------------------------------------------------------------------- plain networks (experiments)


def _stage_blocks(kind, c_in, c_out, n_blocks, stride, L, M):
    blocks = []
    for b in range(n_blocks):
        s = stride if b == 0 else 1
        if kind == "regular":
            blocks.append(conv_norm_act(c_in, c_out, 3, stride=s))
        else:
            blocks.append(IGCV1(c_out, L, M, 3, s, in_channels=c_in))
        c_in = c_out
    return blocks


def plain_net(
    kind: str = "regular",
    width: int = 16,
    *,
    depth: int = 8,
    L: int | None = None,
    M: int | None = None,
    stages: int = 3,
    stem_stride: int = 1,
    num_classes: int = 10,
    in_channels: int = 1,
) -> nn.Sequential:
    """A plain (no shortcut) network like the IGCV1 paper's: stem conv, ``stages`` stages, GAP, fc.

    ``depth = stages·B + 2`` (stem + B blocks per stage + classifier). Each later stage halves the
    resolution and doubles the width. ``kind="regular"``: conv-BN-ReLU of width ``width``
    (RegConv-W``width``); ``kind="igc"``: IGCV1 blocks with C = L·M (``width`` is ignored) and, as in
    the official code, the width doubled by doubling M with L fixed.
    """
    if kind not in ("regular", "igc"):
        raise ValueError(f"kind={kind!r} must be 'regular' or 'igc'")
    check_int("stages", stages)
    check_int("depth", depth, stages + 2)
    if (depth - 2) % stages:
        raise ValueError(f"depth={depth} must be stages·B + 2 = {stages}·B + 2")
    per_stage = (depth - 2) // stages
    if kind == "igc":
        L, M = check_int("L", L), check_int("M", M)
        width = L * M
    else:
        check_int("width", width)
    layers: list[nn.Module] = [conv_norm_act(in_channels, width, 3, stride=stem_stride)]
    c = width
    for s in range(stages):
        c_out = width * 2**s
        layers += _stage_blocks(kind, c, c_out, per_stage, 1 if s == 0 else 2, L, None if M is None else M * 2**s)
        c = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def regular_width_for(
    params: int, *, depth: int = 8, stages: int = 3, stem_stride: int = 1, num_classes: int = 10, in_channels: int = 1
) -> int:
    """The RegConv width whose :func:`plain_net` has the parameter count closest to ``params``."""

    def count(w: int) -> int:
        net = plain_net(
            "regular",
            w,
            depth=depth,
            stages=stages,
            stem_stride=stem_stride,
            num_classes=num_classes,
            in_channels=in_channels,
        )
        return sum(p.numel() for p in net.parameters())

    return min(range(2, 257), key=lambda w: abs(count(w) - params))
