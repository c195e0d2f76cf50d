"""Channel connectivity: which output channels of a chain of layers see which input channels.

The toolkit behind chapter 06 (interleaved group convolutions) and every later chapter that draws a
block's channel graph (ResNeXt in 07, SqueezeNet, ShuffleNet and MobileNet in 09). It holds

- the **channel operations** of a chain: :class:`ChannelOp` and its builders :func:`group_conv`,
  :func:`dense`, :func:`depthwise`, :func:`permutation`, :func:`shuffle`; the permutation module
  :class:`ChannelPermutation` and :func:`interleave` (ShuffleNet's channel shuffle, IGC's interleaving);
- **path counting**: :func:`adjacency` (one operation as a 0/1 matrix), :func:`connectivity` (their
  product: how many paths join each input channel to each output channel), :func:`classify` (the
  strict / loose complementary condition, or disconnected) and :func:`super_channel_connectivity`;
- the **explorer**: a :class:`Preset` names a block as a :class:`Chain` built from the sliders
  ``C, L, M``; :func:`connectivity_state` (a frozen :class:`ConnectivityState`),
  :func:`draw_connectivity`, :func:`connectivity_readout` and :func:`connectivity_explorer`.
  :data:`PRESETS` holds the structures every chapter shares (regular, group, depthwise separable,
  ShuffleNet); chapters add their own (``igc.PRESETS``, ``resnets.RESNEXT_PRESETS``, ``smallnets.PRESETS``).

It is a core module: it imports no chapter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from .args import check_int
from .states import State

if TYPE_CHECKING:  # matplotlib and ipywidgets load only when drawing
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

    from .widgets import Explorer

__all__ = [
    "VERDICTS",
    "CONDITIONS",
    "interleave",
    "ChannelPermutation",
    "permutation_matrix",
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
    "regular_params",
    "Chain",
    "Preset",
    "presets_table",
    "PRESETS",
    "MAX_DRAWN_CHANNELS",
    "ConnectivityState",
    "connectivity_state",
    "connectivity_readout",
    "draw_channel_graph",
    "draw_counts",
    "draw_connectivity",
    "connectivity_explorer",
]

VERDICTS = ("strict", "loose", "disconnected")
CONDITIONS = {
    "strict": "strict complementary condition: exactly one path between every input and output channel",
    "loose": "loose complementary condition: at least one path (some pairs have several)",
    "disconnected": "not complementary: some output channels never see some input channels",
}


# --------------------------------------------------------------------------- permutations


def interleave(L: int, M: int) -> torch.Tensor:
    """The IGCV1 permutation of ``C = L·M`` channels, as an index tensor ``perm`` (``y = x[:, perm]``).

    Before it, channels sit in L primary partitions of M consecutive channels
    (channel ``l·M + m`` is the m-th channel of partition l). After it, position ``m·L + l`` holds
    that channel, so the M secondary partitions of L consecutive channels each take exactly one
    channel from every primary partition. It is ShuffleNet's channel shuffle with L groups:
    reshape to (L, M), transpose, flatten. Its inverse is ``interleave(M, L)``.
    """
    check_int("L", L)
    check_int("M", M)
    return torch.arange(L * M).view(L, M).t().reshape(-1)


class ChannelPermutation(nn.Module):
    """Reorder channels: ``forward(x) = x[:, perm]`` (a permutation matrix, no parameters)."""

    perm: torch.Tensor  # a buffer: moves with the module, saved in its state dict
    shuffle_groups: int | None  # a when perm is interleave(a, C / a): then a reshape does the work

    def __init__(self, perm: torch.Tensor | Sequence[int]) -> None:
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if perm.dim() != 1 or not torch.equal(perm.sort().values, torch.arange(len(perm))):
            raise ValueError(f"perm must be a permutation of 0..{len(perm) - 1}, got {perm.tolist()}")
        self.register_buffer("perm", perm)
        # An interleaving is a reshape + transpose, much faster (forward and backward) than indexing.
        C = len(perm)
        self.shuffle_groups = next(
            (a for a in range(1, C + 1) if C % a == 0 and torch.equal(perm, interleave(a, C // a))), None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = len(self.perm)
        if x.shape[1] != C:
            raise ValueError(f"input has {x.shape[1]} channels, this permutation reorders {C}")
        if self.shuffle_groups is not None:
            a = self.shuffle_groups
            return x.unflatten(1, (a, C // a)).transpose(1, 2).flatten(1, 2)
        return x[:, self.perm]

    def extra_repr(self) -> str:
        return f"channels={len(self.perm)}"


def permutation_matrix(perm: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """The 0/1 matrix ``P`` with ``(P @ x)[a] = x[perm[a]]``."""
    perm = torch.as_tensor(perm, dtype=torch.long)
    P = torch.zeros(len(perm), len(perm))
    P[torch.arange(len(perm)), perm] = 1.0
    return P


# --------------------------------------------------------------------------- channel connectivity


@dataclass(frozen=True)
class ChannelOp:
    """One channel operation of a chain: a (group) conv or a permutation.

    ``kind`` is "conv" or "perm"; a conv has ``groups`` and ``kernel_size``; a perm has ``perm``
    (a tuple). Depthwise = groups == c_in; dense = groups == 1. ``fixed_params`` gives the weights of
    an operation that is not one square conv (a 1×3 conv, SqueezeNet's 1×1 ‖ 3×3 expand), whose
    connectivity is still that of a group conv with ``groups`` groups.
    """

    kind: str
    c_in: int
    c_out: int
    groups: int = 1
    kernel_size: int = 1
    perm: tuple[int, ...] | None = None
    label: str = ""
    fixed_params: int | None = None

    @property
    def params(self) -> int:
        if self.fixed_params is not None:
            return self.fixed_params
        if self.kind == "perm":
            return 0
        return self.c_out * (self.c_in // self.groups) * self.kernel_size**2

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.kind == "perm":
            return "permutation"
        k = f"{self.kernel_size}×{self.kernel_size}"
        if self.groups == 1:
            return f"{k} conv"
        if self.groups == self.c_in:
            return f"{k} depthwise"
        return f"{k} group conv, {self.groups} groups"


def group_conv(c_in: int, groups: int, c_out: int | None = None, kernel_size: int = 1, label: str = "") -> ChannelOp:
    """A group conv ``c_in → c_out`` with ``groups`` groups (outputs of group g see only its inputs)."""
    c_out = c_in if c_out is None else c_out
    check_int("c_in", c_in)
    check_int("c_out", c_out)
    check_int("groups", groups)
    check_int("kernel_size", kernel_size)
    if c_in % groups:
        raise ValueError(f"c_in={c_in} is not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"c_out={c_out} is not divisible by groups={groups}")
    return ChannelOp("conv", c_in, c_out, groups, kernel_size, label=label)


def dense(c_in: int, c_out: int | None = None, kernel_size: int = 1, label: str = "") -> ChannelOp:
    """A regular (dense) conv: every output sees every input."""
    return group_conv(c_in, 1, c_out, kernel_size, label)


def depthwise(channels: int, kernel_size: int = 3, multiplier: int = 1, label: str = "") -> ChannelOp:
    """A depthwise (channel-wise) conv: output channel o sees only input channel o // multiplier."""
    return group_conv(channels, channels, channels * multiplier, kernel_size, label)


def permutation(perm: torch.Tensor | Sequence[int], label: str = "") -> ChannelOp:
    """A channel permutation: output position a takes input channel ``perm[a]``."""
    perm = tuple(int(p) for p in torch.as_tensor(perm).tolist())
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"perm must be a permutation of 0..{len(perm) - 1}, got {list(perm)}")
    return ChannelOp("perm", len(perm), len(perm), perm=perm, label=label)


def shuffle(channels: int, groups: int, label: str = "") -> ChannelOp:
    """ShuffleNet's channel shuffle with ``groups`` groups: ``interleave(groups, channels // groups)``."""
    check_int("channels", channels)
    check_int("groups", groups)
    if channels % groups:
        raise ValueError(f"channels={channels} is not divisible by groups={groups}")
    return permutation(interleave(groups, channels // groups), label or f"shuffle ({groups} groups)")


def as_ops(layers: nn.Module | Iterable[ChannelOp | nn.Module]) -> list[ChannelOp]:
    """A list of ``ChannelOp`` from ChannelOps, ``nn.Conv2d``, ``ChannelPermutation`` or a block.

    BatchNorm and activations act on each channel alone, so they do not change connectivity and
    are skipped; any other module is an error.
    """
    items: Iterable[object]
    linear = getattr(layers, "linear", None)
    if linear is not None:
        items = linear
    elif isinstance(layers, nn.Sequential):
        items = list(layers)
    elif isinstance(layers, nn.Module):
        raise TypeError(f"layers must be a block with .linear, an nn.Sequential or a list, got {type(layers).__name__}")
    else:
        items = layers
    ops = []
    for layer in items:
        if isinstance(layer, ChannelOp):
            ops.append(layer)
        elif isinstance(layer, nn.Conv2d):
            ops.append(group_conv(layer.in_channels, layer.groups, layer.out_channels, layer.kernel_size[0]))
        elif isinstance(layer, ChannelPermutation):
            ops.append(permutation(layer.perm))
        elif isinstance(layer, (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Identity)):
            continue
        else:
            raise TypeError(
                f"cannot read the channel connectivity of {type(layer).__name__}; use convs, "
                "ChannelPermutation, BatchNorm/activations or ChannelOp"
            )
    return ops


def adjacency(op: ChannelOp) -> torch.Tensor:
    """The 0/1 ``c_out × c_in`` matrix of one operation: entry (o, i) = 1 iff output o reads input i."""
    if op.kind == "perm":
        A = torch.zeros(op.c_out, op.c_in, dtype=torch.long)
        A[torch.arange(op.c_out), torch.tensor(op.perm)] = 1
        return A
    out_group = torch.arange(op.c_out) // (op.c_out // op.groups)
    in_group = torch.arange(op.c_in) // (op.c_in // op.groups)
    return (out_group[:, None] == in_group[None, :]).long()


def connectivity(layers: nn.Module | Iterable[ChannelOp | nn.Module]) -> torch.Tensor:
    """Input→output path counts of a chain: entry (o, i) = number of paths from input i to output o.

    ``layers``: ChannelOps (:func:`group_conv`, :func:`dense`, :func:`depthwise`,
    :func:`permutation`, :func:`shuffle`), modules, or a block with ``.linear``. The result is
    the product ``A_n ⋯ A_1`` of the layers' 0/1 adjacency matrices (an int64 tensor).
    """
    ops = as_ops(layers)
    if not ops:
        raise ValueError("layers is empty: a chain needs at least one operation")
    counts = adjacency(ops[0])
    for i, op in enumerate(ops[1:], start=1):
        if op.c_in != counts.shape[0]:
            raise ValueError(
                f"layer {i} ({op.describe()}) expects c_in={op.c_in} channels but the chain delivers {counts.shape[0]}"
            )
        counts = adjacency(op) @ counts
    return counts


def classify(layers_or_counts: torch.Tensor | nn.Module | Iterable[ChannelOp | nn.Module]) -> str:
    """ "strict" (exactly one path everywhere), "loose" (at least one) or "disconnected" (some zero).

    Accepts a path-count matrix or anything :func:`connectivity` accepts.
    """
    if isinstance(layers_or_counts, torch.Tensor) and layers_or_counts.dim() == 2:
        counts = layers_or_counts
    else:
        counts = connectivity(layers_or_counts)
    if (counts == 0).any():
        return "disconnected"
    if (counts == 1).all():
        return "strict"
    return "loose"


def super_channel_connectivity(layers: nn.Module | Iterable[ChannelOp | nn.Module]) -> torch.Tensor:
    """Path counts over **super-channels** — the loose complementary condition of IGCV3.

    In every tensor *between* the first and the last operation, channels that are reached from the
    same input channels and reach the same output channels always travel together: they form one
    super-channel. Merging each such set into one node (an edge between two nodes wherever any of
    their channels are connected) and counting paths again gives an input × output matrix. IGCV3's
    loose condition is the complementary condition over super-channels: this matrix is all ones
    (``classify(...) == "strict"``), even where :func:`connectivity` counts several paths.
    """
    ops = as_ops(layers)
    counts = connectivity(ops)  # validates the chain
    mats = [adjacency(op) for op in ops]
    reach_in, R = [], mats[0].clamp(max=1)  # reach_in[t]: c_t × c_in, inputs reaching channel
    for t, A in enumerate(mats):
        R = R if t == 0 else (A @ R).clamp(max=1)
        reach_in.append(R)
    reach_out: list[torch.Tensor] = [R] * len(mats)  # reach_out[t]: c_out × c_t, outputs reached
    Q = torch.eye(mats[-1].shape[0], dtype=torch.long)
    for t in range(len(mats) - 1, -1, -1):
        reach_out[t] = Q  # from the tensor that op t produces
        Q = (Q @ mats[t]).clamp(max=1)
    members = []  # 0/1 (super-channels × channels) per inner tensor
    for t in range(len(mats) - 1):
        signature = torch.cat([reach_in[t], reach_out[t].t()], dim=1)
        _, label = torch.unique(signature, dim=0, return_inverse=True)
        members.append((label[None, :] == torch.arange(int(label.max()) + 1)[:, None]).long())
    if len(mats) == 1:
        return counts
    super_counts = torch.ones(1, 1, dtype=torch.long)
    for t, A in enumerate(mats):
        B = A
        if t < len(mats) - 1:
            B = members[t] @ B
        if t > 0:
            B = B @ members[t - 1].t()
        B = B.clamp(max=1)
        super_counts = B if t == 0 else B @ super_counts
    return super_counts


def chain_params(layers: nn.Module | Iterable[ChannelOp | nn.Module]) -> int:
    """Parameters of a chain (sum over its convs)."""
    return sum(op.params for op in as_ops(layers))


def regular_params(channels: int, kernel_size: int = 3) -> int:
    """Parameters of a regular ``channels → channels`` k×k conv: ``C²·k²``."""
    check_int("channels", channels)
    check_int("kernel_size", kernel_size)
    return channels * channels * kernel_size**2


# --------------------------------------------------------------------------- explorer presets


@dataclass(frozen=True)
class Chain:
    """A block as a chain of channel operations: what a :class:`Preset` builds.

    ``width`` is the number of channels a regular conv of the same role would have: the explorer
    compares the chain's parameters with a regular k×k conv of that width.
    """

    ops: tuple[ChannelOp, ...]
    title: str
    width: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if not self.ops:
            raise ValueError(f"{self.title}: a chain needs at least one operation")


@dataclass(frozen=True)
class Preset:
    """One entry of the connectivity explorer's drop-down.

    ``build(C, L, M, kernel_size)`` returns the :class:`Chain` for the sliders (raising ValueError,
    naming the setting and the rule, where they do not fit the block); ``help`` says what each slider
    means for this block.
    """

    name: str
    build: Callable[[int, int, int, int], Chain]
    help: str


def presets_table(*groups: Iterable[Preset] | Mapping[str, Preset]) -> dict[str, Preset]:
    """``{name: Preset}`` from presets or tables of them, in order (a later name replaces an earlier one)."""
    table: dict[str, Preset] = {}
    for group in groups:
        for preset in group.values() if isinstance(group, Mapping) else group:
            if not isinstance(preset, Preset):
                raise TypeError(f"presets must be channels.Preset, got {type(preset).__name__}")
            table[preset.name] = preset
    return table


def _need_divisible(C: int, L: int) -> None:
    if C % L:
        raise ValueError(f"C={C} is not divisible by L={L} groups")


def _regular(C: int, L: int, M: int, k: int) -> Chain:
    return Chain((dense(C, kernel_size=k),), f"regular {k}×{k} conv, C={C}", C)


def _group(C: int, L: int, M: int, k: int) -> Chain:
    _need_divisible(C, L)
    return Chain((group_conv(C, L, kernel_size=k),), f"group conv, C={C}, {L} groups", C)


def _xception(C: int, L: int, M: int, k: int) -> Chain:
    return Chain((depthwise(C, k), dense(C)), f"depthwise separable (Xception), C={C}", C)


def _shuffle(C: int, L: int, M: int, k: int) -> Chain:
    _need_divisible(C, L)
    ops = (group_conv(C, L), shuffle(C, L), depthwise(C, k), group_conv(C, L))
    return Chain(ops, f"ShuffleNet unit, C={C}, {L} groups", C)


def _no_shuffle(C: int, L: int, M: int, k: int) -> Chain:
    _need_divisible(C, L)
    ops = (group_conv(C, L), depthwise(C, k), group_conv(C, L))
    return Chain(ops, f"ShuffleNet unit without the shuffle, C={C}, {L} groups", C)


REGULAR = Preset("regular", _regular, "C = channels; L, M unused")
GROUP = Preset("group", _group, "C = channels, L = groups; M unused")
XCEPTION = Preset("xception", _xception, "C = channels; L, M unused")
SHUFFLE = Preset("shuffle", _shuffle, "C = channels, L = groups; M unused")
NO_SHUFFLE = Preset("no shuffle", _no_shuffle, "C = channels, L = groups; M unused")
PRESETS = presets_table([REGULAR, GROUP, XCEPTION, SHUFFLE, NO_SHUFFLE])
MAX_DRAWN_CHANNELS = 256


# --------------------------------------------------------------------------- the explorer


@dataclass(frozen=True)
class ConnectivityState(State):
    """What the channel-connectivity explorer shows for one setting of its controls."""

    preset: str
    title: str
    ops: tuple[ChannelOp, ...]
    counts: torch.Tensor  # path counts, output × input channels
    verdict: str  # one of VERDICTS
    condition: str  # the verdict in words (CONDITIONS)
    params: int
    channels: int  # the width a regular conv is compared at
    regular_params: int
    params_ratio: float
    equal_param_width: float  # the width of a regular conv with as many parameters
    width_ratio: float
    kernel_size: int
    sliders: str  # what C, L, M mean for this preset


def connectivity_state(
    preset: str = "igcv1",
    C: int = 16,
    L: int = 4,
    M: int = 4,
    kernel_size: int = 3,
    presets: Mapping[str, Preset] | Iterable[Preset] | None = None,
) -> ConnectivityState:
    """The pure state of the channel-connectivity explorer.

    ``preset`` names a :class:`Preset` of ``presets`` (default :data:`PRESETS`; chapters pass their
    own, e.g. ``igc.PRESETS``, ``resnets.RESNEXT_PRESETS``). Returns the chain's ops, the path-count
    matrix, the verdict, the parameters and the regular-conv comparison. Invalid settings raise
    ValueError naming the setting and the rule.
    """
    table = PRESETS if presets is None else presets_table(presets)
    if preset not in table:
        raise ValueError(f"preset={preset!r} is unknown; choose one of {sorted(table)}")
    for name, value in (("C", C), ("L", L), ("M", M), ("kernel_size", kernel_size)):
        check_int(name, value)
    chain = table[preset].build(C, L, M, kernel_size)
    widest = max(max(op.c_in, op.c_out) for op in chain.ops)
    if widest > MAX_DRAWN_CHANNELS:
        raise ValueError(
            f"{chain.title}: {widest} channels are too many to draw (at most {MAX_DRAWN_CHANNELS}); lower C, L or M"
        )
    counts = connectivity(chain.ops)
    verdict = classify(counts)
    params = chain_params(chain.ops)
    regular = regular_params(chain.width, kernel_size)
    equal_width = math.sqrt(params) / kernel_size
    return ConnectivityState(
        preset=preset,
        title=chain.title,
        ops=chain.ops,
        counts=counts,
        verdict=verdict,
        condition=CONDITIONS[verdict],
        params=params,
        channels=chain.width,
        regular_params=regular,
        params_ratio=params / regular,
        equal_param_width=equal_width,
        width_ratio=chain.width / equal_width,
        kernel_size=kernel_size,
        sliders=table[preset].help,
    )


def connectivity_readout(state: ConnectivityState) -> str:
    """One line: the verdict and the parameters against a regular conv."""
    sliders = f"<br><i>sliders: {state.sliders}</i>" if state.sliders else ""
    k = state.kernel_size
    return (
        f"<b>{state.title}</b>: {state.condition}.{sliders}<br>"
        f"{state.params:,} parameters = {state.params_ratio:.2f}× a regular "
        f"{k}×{k} conv of width {state.channels}; "
        f"a regular conv with these parameters is {state.equal_param_width:.1f} channels wide "
        f"(this block is {state.width_ratio:.2f}× wider)."
    )


# --------------------------------------------------------------------------- drawing


def draw_channel_graph(ops: Sequence[ChannelOp], ax: Axes, max_edges: int = 20000) -> None:
    """The layered channel graph: one column of channels per tensor, edges for every connection.

    Conv edges are blue, permutation edges orange. Columns of different widths are drawn on the
    same height, so an expansion (IGCV3) fans out.
    """
    from matplotlib.collections import LineCollection

    widths = [ops[0].c_in] + [op.c_out for op in ops]

    def y(channel: int, width: int) -> float:
        return 1.0 - (channel + 0.5) / width

    for col, op in enumerate(ops):
        A = adjacency(op)
        outs, ins = A.nonzero(as_tuple=True)
        if len(outs) > max_edges:
            keep = torch.linspace(0, len(outs) - 1, max_edges).long()
            outs, ins = outs[keep], ins[keep]
        segs = [((col, y(i, op.c_in)), (col + 1, y(o, op.c_out))) for o, i in zip(outs.tolist(), ins.tolist())]
        is_perm = op.kind == "perm"
        alpha = 0.9 if is_perm or len(segs) <= 200 else max(0.04, min(0.5, 60 / len(segs)))
        ax.add_collection(
            LineCollection(
                segs, colors="tab:orange" if is_perm else "tab:blue", linewidths=1.2 if is_perm else 0.6, alpha=alpha
            )
        )
        ax.text(col + 0.5, 1.02 + 0.07 * (col % 2), op.describe(), ha="center", va="bottom", fontsize=7)
    for col, w in enumerate(widths):
        size = max(2, 30 / max(w, 1) ** 0.5)
        ax.scatter([col] * w, [y(c, w) for c in range(w)], s=size, color="black", zorder=3)
    ax.set_xlim(-0.2, len(ops) + 0.2)
    ax.set_ylim(-0.03, 1.17)
    ax.set_xticks(range(len(widths)))
    ax.set_xticklabels(["input"] + [str(i + 1) for i in range(len(ops))], fontsize=7)
    ax.set_yticks([])
    ax.set_title("channel graph (blue: convs, orange: permutations)", fontsize=9)


def draw_counts(counts: torch.Tensor, ax: Axes, verdict: str | None = None) -> AxesImage:
    """The composed path-count matrix as a heatmap (white = 0 = no path)."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis").with_extremes(under="white")
    im = ax.imshow(counts.numpy(), cmap=cmap, vmin=0.5, vmax=max(1, int(counts.max())), interpolation="nearest")
    ax.set_xlabel("input channel")
    ax.set_ylabel("output channel")
    title = "paths input → output"
    if verdict:
        title += f": {verdict}"
    ax.set_title(title, fontsize=9)
    return im


def draw_connectivity(state: ConnectivityState, fig: Figure) -> None:
    """Draw an explorer state: channel graph on the left, path-count heatmap on the right."""
    gs = fig.add_gridspec(1, 2, width_ratios=[1.7, 1])
    ax_graph, ax_heat = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    draw_channel_graph(state.ops, ax_graph)
    im = draw_counts(state.counts, ax_heat, state.verdict)
    fig.colorbar(im, ax=ax_heat, fraction=0.046, pad=0.04, label="number of paths")
    fig.suptitle(state.title, fontsize=10)


def connectivity_explorer(
    preset: str = "igcv1",
    C: int = 16,
    L: int = 4,
    M: int = 4,
    presets: Mapping[str, Preset] | Iterable[Preset] | None = None,
    figsize: tuple[float, float] = (11, 4.2),
) -> Explorer:
    """The channel-connectivity explorer (an ``Explorer``): preset, C, L, M controls.

    ``presets``: extra or replacement :class:`Preset` s, added to :data:`PRESETS` (chapters 06, 07
    and 09 add IGC, ResNeXt, MobileNet ...).
    """
    from .widgets import Explorer, dropdown, int_slider

    table = presets_table(PRESETS, presets or ())

    def state_fn(preset: str, C: int, L: int, M: int) -> ConnectivityState:
        return connectivity_state(preset, C, L, M, presets=table)

    controls = {
        "preset": dropdown("preset", list(table), preset),
        "C": int_slider("C (channels)", C, 2, 64),
        "L": int_slider("L (per preset)", L, 1, 32),
        "M": int_slider("M (per preset)", M, 1, 32),
    }
    return Explorer(
        state_fn,
        draw_connectivity,
        controls,
        title="channel-connectivity explorer",
        readout_fn=connectivity_readout,
        figsize=figsize,
    )
