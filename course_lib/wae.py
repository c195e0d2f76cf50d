"""The Wavelet-like Auto-Encoder: a cheaper *input* instead of a cheaper network (chapter 10).

Chen, Lin, Zuo, Luo, Zhang, "Learning a Wavelet-like Auto-Encoder to Accelerate Deep Neural
Networks", AAAI 2018 (arXiv:1712.07493; official Caffe release tianshuichen/Wavelet-like-Auto-Encoder).

Every earlier chapter made the weight matrix of a layer cheaper. A convolution's cost is
``H_out · W_out · C_out · C_in · k²``: it is proportional to the *area* of its input, so feeding the
whole, unchanged network an image of half the height and width cuts the cost of every layer about
4×. Plain downsampling throws the fine detail away and loses accuracy. The WAE keeps it:

- **The fixed ancestor, the 2-D Haar wavelet.** Each 2×2 block ``[[a, b], [c, d]]`` becomes four
  numbers at half resolution: ``cA = (a+b+c+d)/2`` (low frequency), ``cH = (a+b−c−d)/2``,
  ``cV = (a−b+c−d)/2``, ``cD = (a−b−c+d)/2`` (details). The transform is orthonormal: it keeps the
  energy (sum of squares) and is inverted exactly. On natural images most energy sits in ``cA``.
- **The learned version.** An encoder (three 3×3 conv layers with 16 channels and ReLU at full
  resolution, then two branches of one 3×3 stride-2 conv each) produces a low-frequency sub-image
  ``I_L`` and a high-frequency sub-image ``I_H``, each with the input's channel count at half
  resolution; a small decoder reconstructs the input from both. The loss is the reconstruction
  error plus ``λ ·`` the energy of ``I_H``, so that ``I_H`` carries as little as possible and a tiny
  network suffices for it.
- **Classification.** ``I_L`` goes through the *unchanged* base network at half resolution, ``I_H``
  through a small network; as in the official prototxt their features are concatenated into fusion
  fc layers, and the fusion logits are added to the base branch's logits. Training has three
  stages: WAE pre-training, classifier training with the WAE fixed, joint fine-tuning of everything.

The encoder runs at full resolution, so the WAE pays only when the base network costs much more
than three 16-channel 3×3 convolutions per pixel: :func:`speedup_sweep` measures where it crosses 1×.

Odd heights or widths have no exact half; every function here refuses them with a ``ValueError``
(use :func:`pad_to_even` first).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoints, config, data, measure, models, train, widgets
from .args import check_float, check_int
from .haar import _even, _tensor4, energy, energy_fraction, haar_block, haar_dwt, haar_idwt, pad_to_even, psnr
from .report import Rows, column
from .states import State

if TYPE_CHECKING:  # matplotlib loads only when drawing
    from matplotlib.figure import Figure

__all__ = [
    "haar_dwt",
    "haar_idwt",
    "haar_block",
    "pad_to_even",
    "energy",
    "energy_fraction",
    "psnr",
    "WAE",
    "wae_loss",
    "HaarSplit",
    "Downsample",
    "high_branch",
    "WAEClassifier",
    "build",
    "evaluate_wae",
    "pretrain_wae",
    "train_classifier",
    "VARIANTS",
    "variants",
    "experiment",
    "SHIPPED",
    "CLASSIFIER_EPOCHS",
    "CLASSIFIER_JOINT_EPOCHS",
    "JOINT_MAX_GRAD_NORM",
    "load_shipped",
    "encoder_macs",
    "speedup_bound",
    "CostRow",
    "WaeCostReport",
    "cost_report",
    "SweepRow",
    "speedup_sweep",
    "DecompositionState",
    "decomposition_state",
    "draw_decomposition",
    "decomposition_readout",
    "decomposition_explorer",
]


# --------------------------------------------------------------------------- the auto-encoder


class WAE(nn.Module):
    """The Wavelet-like Auto-Encoder (Chen et al., AAAI 2018).

    Encoder: ``depth`` (3) × [3×3 conv, ``hidden`` (16) channels, ReLU] at full resolution, then two
    branches of one 3×3 stride-2 conv each → ``I_L`` and ``I_H`` with ``in_channels`` channels at
    half resolution (as in the official prototxt). Decoder (not in the release; ours is a small
    learned upsampling): concatenate ``I_L``, ``I_H`` → 2×2 stride-2 transposed conv to ``hidden``
    channels → ReLU → 3×3 conv → ReLU → 3×3 conv back to ``in_channels``.
    """

    def __init__(self, in_channels: int = 3, hidden: int = 16, depth: int = 3):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.hidden = check_int("hidden", hidden)
        check_int("depth", depth)
        layers, c = [], in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU(inplace=True)]
            c = hidden
        self.encoder = nn.Sequential(*layers)
        self.low = nn.Conv2d(hidden, in_channels, 3, stride=2, padding=1)
        self.high = nn.Conv2d(hidden, in_channels, 3, stride=2, padding=1)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * in_channels, hidden, 2, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, in_channels, 3, padding=1),
        )
        self.high_channels = in_channels

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(I_L, I_H)``, each (N, in_channels, H/2, W/2)."""
        _even("x", _tensor4("x", x, self.in_channels))
        h = self.encoder(x)
        return self.low(h), self.high(h)

    def decode(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """The reconstruction (N, in_channels, 2h, 2w) from ``I_L`` and ``I_H``."""
        _tensor4("low", low, self.in_channels)
        _tensor4("high", high, self.in_channels)
        if low.shape != high.shape:
            raise ValueError(f"low {tuple(low.shape)} and high {tuple(high.shape)} must have the same shape")
        return self.decoder(torch.cat([low, high], dim=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(I_L, I_H, reconstruction)``."""
        low, high = self.encode(x)
        return low, high, self.decode(low, high)


def wae_loss(
    x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, recon: torch.Tensor, energy_weight: float
) -> torch.Tensor:
    """``mean((recon − x)²) + λ · mean(I_H²)``: reconstruction error plus the energy of ``I_H``.

    Both terms are per-element means, so λ does not depend on the image size. ``low`` is part of
    the signature (the paper's loss is a function of the whole decomposition) but is not penalised.
    """
    lam = check_float("energy_weight", energy_weight, 0.0)
    if recon.shape != x.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and x {tuple(x.shape)} must have the same shape")
    if low.shape != high.shape:
        raise ValueError(f"low {tuple(low.shape)} and high {tuple(high.shape)} must have the same shape")
    return F.mse_loss(recon, x) + lam * high.pow(2).mean()


class HaarSplit(nn.Module):
    """The fixed wavelet as a splitter with the WAE's interface: ``encode(x) → (cA, [cH, cV, cD])``.

    The details are concatenated along channels (3·C channels); no parameters.
    """

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.high_channels = 3 * in_channels

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _tensor4("x", x, self.in_channels)
        cA, details = haar_dwt(x)
        return cA, torch.cat(details, dim=1)

    def decode(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        horizontal, vertical, diagonal = high.chunk(3, dim=1)
        return haar_idwt(low, (horizontal, vertical, diagonal))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low, high = self.encode(x)
        return low, high, self.decode(low, high)


class Downsample(nn.Module):
    """Plain downsampling by 2: ``mode="avg"`` (2×2 average pooling) or ``"bilinear"``.

    At exactly half size (``align_corners=False``) bilinear samples the centre of every 2×2 block,
    so both modes give the same image, which is Haar's ``cA / 2``.
    """

    MODES = ("avg", "bilinear")

    def __init__(self, mode: str = "avg"):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode={mode!r} must be one of {self.MODES}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _even("x", _tensor4("x", x))
        if self.mode == "avg":
            return F.avg_pool2d(x, 2)
        return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=False)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def high_branch(in_channels: int, widths: tuple = (16, 32)) -> nn.Sequential:
    """The small VGG-shaped network for ``I_H``: conv-BN-ReLU stages with 2×2 pooling, global
    average pooling; its ``out_features`` (the last width) feed the fusion layers."""
    check_int("in_channels", in_channels)
    layers: list[nn.Module] = []
    c = in_channels
    for i, w in enumerate(widths):
        if i:
            layers.append(nn.MaxPool2d(2))
        layers.append(models.conv_bn_relu(c, check_int("width", w)))
        c = w
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    setattr(net, "out_features", c)  # a plain int that the fusion layers read (like nn.Linear's)
    return net


class WAEClassifier(nn.Module):
    """Base network on ``I_L`` at half resolution + small network on ``I_H`` + fusion layers.

    ``splitter`` is a :class:`WAE` (learned) or a :class:`HaarSplit` (the paper's Wavelet+CNN).
    ``base`` must be an ``nn.Sequential`` whose last module is the ``nn.Linear`` classifier, as the
    course's ``models.vgg_small``: its features (the input of that Linear) and the high branch's
    features are concatenated into the fusion layers (fc → ReLU → fc), and, as in the official
    prototxt, the output is ``base logits + fusion logits``.

    ``joint = True`` (stage 3, joint fine-tuning) makes ``forward`` return ``(logits, wae_loss)`` so
    that the reconstruction and energy terms train the WAE together with the classifier.
    """

    def __init__(
        self,
        base: nn.Module,
        high_net: nn.Module,
        splitter: nn.Module,
        num_classes: int,
        fusion_hidden: int = 64,
        energy_weight: float = 0.0,
    ):
        super().__init__()
        if not isinstance(base, nn.Sequential) or not isinstance(base[-1], nn.Linear):
            raise TypeError("base must be an nn.Sequential ending in its nn.Linear classifier (e.g. models.vgg_small)")
        if not isinstance(splitter, (WAE, HaarSplit)):
            raise TypeError(f"splitter must be a WAE or a HaarSplit, got {type(splitter).__name__}")
        high_features = getattr(high_net, "out_features", None)
        if not isinstance(high_features, int):
            raise TypeError("high_net needs an int attribute out_features (build it with wae.high_branch)")
        check_int("num_classes", num_classes)
        if base[-1].out_features != num_classes:
            raise ValueError(f"base classifies into {base[-1].out_features} classes, num_classes={num_classes}")
        self.splitter, self.high_net = splitter, high_net
        self.base_features, self.base_head = base[:-1], base[-1]
        features = base[-1].in_features + high_features
        self.fusion = nn.Sequential(
            nn.Linear(features, check_int("fusion_hidden", fusion_hidden)),
            nn.ReLU(inplace=True),
            nn.Linear(fusion_hidden, num_classes),
        )
        self.energy_weight = check_float("energy_weight", energy_weight, 0.0)
        self.joint = False

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        low, high = self.splitter.encode(x)
        f = self.base_features(low)
        logits = self.base_head(f) + self.fusion(torch.cat([f, self.high_net(high)], dim=1))
        if self.joint and self.training:
            return logits, wae_loss(x, low, high, self.splitter.decode(low, high), self.energy_weight)
        return logits


def build(
    kind: str = "wae",
    num_classes: int = 10,
    in_channels: int = 1,
    widths: tuple = (24, 48, 96),
    hidden: int = 16,
    high_widths: tuple = (16, 32),
    fusion_hidden: int = 64,
    energy_weight: float = 0.0,
    mode: str = "avg",
) -> nn.Module:
    """The chapter's models by name (``recipes.MODELS["wae"]`` calls this to rebuild shipped checkpoints).

    ``kind``: ``"wae"`` (the auto-encoder alone), ``"full"`` (``vgg_small`` at full resolution),
    ``"downsample"`` (``Downsample(mode)`` → ``vgg_small``), ``"haar"`` (Wavelet+CNN) or
    ``"wae-classifier"`` (WAE + CNN; ``energy_weight=0`` is the paper's Decomposition+CNN).
    """
    if kind == "wae":
        return WAE(in_channels, hidden)
    base = models.vgg_small(num_classes, in_channels, tuple(widths))
    if kind == "full":
        return base
    if kind == "downsample":
        return nn.Sequential(Downsample(mode), *base)
    if kind in ("haar", "wae-classifier"):
        splitter = HaarSplit(in_channels) if kind == "haar" else WAE(in_channels, hidden)
        return WAEClassifier(
            base,
            high_branch(splitter.high_channels, tuple(high_widths)),
            splitter,
            num_classes,
            fusion_hidden,
            energy_weight,
        )
    raise ValueError(f"kind={kind!r} must be one of 'wae', 'full', 'downsample', 'haar', 'wae-classifier'")


# --------------------------------------------------------------------------- training


def evaluate_wae(wae: WAE, test_data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """``(PSNR, energy fraction of I_H)`` of a WAE on every image of ``test_data``.

    The PSNR is the mean over images of each image's PSNR (its own range as the peak, as
    :func:`psnr`); the energy fraction is that of all images' ``I_H`` together (:func:`energy_fraction`).
    """
    if not isinstance(wae, WAE):
        raise TypeError(f"wae must be a WAE, got {type(wae).__name__}")
    was_training = wae.training
    wae.eval()
    device = next(wae.parameters()).device
    psnrs, e_low, e_high = [], 0.0, 0.0
    with torch.no_grad():
        for x, _ in test_data:
            x = x.to(device)
            low, high, recon = wae(x)
            peak = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).double()
            mse = (recon.double() - x.double()).pow(2).mean(dim=(1, 2, 3))
            psnrs.append(10 * torch.log10(peak.pow(2) / mse.clamp_min(1e-30)))
            e_low, e_high = e_low + float(energy(low)), e_high + float(energy(high))
    wae.train(was_training)
    if not psnrs:
        raise ValueError("test_data holds no images")
    return float(torch.cat(psnrs).mean()), e_high / (e_low + e_high) if e_low + e_high > 0 else 0.0


def pretrain_wae(
    wae: WAE,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    epochs: int = 1,
    energy_weight: float = 0.1,
    lr: float = 3e-3,
    max_steps: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    min_gain_db: float | None = None,
    baseline_db: float | None = None,
) -> list[dict]:
    """Stage 1: train the WAE alone on ``recon error + λ·energy(I_H)`` with Adam (in place).

    Returns one row per step: ``step``, ``loss``, ``recon`` (MSE) and ``high_fraction`` (the
    fraction of the sub-images' energy in ``I_H``). With ``test_data``, the last row of every
    epoch also holds ``epoch``, ``test_psnr`` and ``test_high_fraction`` (:func:`evaluate_wae`); with
    ``min_gain_db`` too, training stops at the first epoch that adds less than that to the best test
    PSNR so far (the plateau — or an epoch that made it worse), and the weights of the best epoch
    are put back (early stopping). ``baseline_db``: the test PSNR the WAE starts from (a resumed
    run); its starting weights count as the best until an epoch beats them.
    """
    if not isinstance(wae, WAE):
        raise TypeError(f"wae must be a WAE, got {type(wae).__name__}")
    check_int("epochs", epochs)
    lam = check_float("energy_weight", energy_weight, 0.0)
    if min_gain_db is not None:
        check_float("min_gain_db", min_gain_db, low=0.0)
        if test_data is None:
            raise ValueError("min_gain_db needs test_data: the plateau is measured on it")
    device = torch.device(device) if device is not None else next(wae.parameters()).device

    if config.dry_run():  # the dry run caps training work, as train.fit does
        max_steps = min(max_steps or config.DRY_RUN_STEPS, config.DRY_RUN_STEPS)
    torch.manual_seed(seed)
    wae.to(device).train()
    opt = torch.optim.Adam(wae.parameters(), lr=lr)
    rows, step = [], 0
    best = -math.inf if baseline_db is None else check_float("baseline_db", baseline_db)
    best_state = copy.deepcopy(wae.state_dict()) if min_gain_db is not None else None
    for epoch in range(epochs):
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)
        for x, _ in train_data:
            x = x.to(device)
            low, high, recon = wae(x)
            loss = wae_loss(x, low, high, recon, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                rows.append(
                    {
                        "step": step,
                        "loss": loss.item(),
                        "recon": F.mse_loss(recon, x).item(),
                        "high_fraction": energy_fraction(low, high),
                    }
                )
            if max_steps is not None and step >= max_steps:
                return rows
        if test_data is not None and rows:
            test_psnr, test_high = evaluate_wae(wae, test_data)
            rows[-1].update(epoch=epoch + 1, test_psnr=test_psnr, test_high_fraction=test_high)
            if min_gain_db is not None and test_psnr - best < min_gain_db:
                if test_psnr < best:
                    assert best_state is not None  # kept whenever min_gain_db is given
                    wae.load_state_dict(best_state)  # early stopping: keep the best epoch
                break
            if test_psnr > best and best_state is not None:
                best_state = copy.deepcopy(wae.state_dict())
            best = max(best, test_psnr)
    return rows


def train_classifier(
    model: nn.Module,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    epochs: int = 2,
    joint_epochs: int = 1,
    **fit_kwargs,
) -> list[train.History]:
    """Stages 2 and 3 for a :class:`WAEClassifier`, with ``train.fit`` (the model is changed in place).

    Stage 2 trains the base, high and fusion networks for ``epochs − joint_epochs`` epochs with the
    splitter frozen; stage 3 fine-tunes everything jointly for ``joint_epochs`` epochs on
    cross-entropy + the WAE loss, its gradient clipped to norm ``JOINT_MAX_GRAD_NORM`` (unless
    ``max_grad_norm`` is given). A HaarSplit has nothing to fine-tune (all epochs are stage 2);
    any other model is trained for ``epochs`` with plain cross-entropy. Returns the histories.
    """
    check_int("epochs", epochs)
    if isinstance(joint_epochs, bool) or not isinstance(joint_epochs, int) or not 0 <= joint_epochs <= epochs:
        raise ValueError(f"joint_epochs={joint_epochs!r} must be an int between 0 and epochs={epochs}")
    if not isinstance(model, WAEClassifier) or not isinstance(model.splitter, WAE):
        return [train.fit(model, train_data, test_data, epochs, **fit_kwargs)]
    histories, stage2 = [], epochs - joint_epochs
    ce = fit_kwargs.pop("label_smoothing", 0.0)
    if stage2:
        model.splitter.requires_grad_(False)
        try:
            histories.append(train.fit(model, train_data, test_data, stage2, label_smoothing=ce, **fit_kwargs))
        finally:
            model.splitter.requires_grad_(True)
    if joint_epochs:
        model.joint = True
        try:
            loss = lambda out, y: F.cross_entropy(out[0], y, label_smoothing=ce) + out[1]  # noqa: E731
            joint = {"max_grad_norm": JOINT_MAX_GRAD_NORM, **fit_kwargs}
            histories.append(train.fit(model, train_data, test_data, joint_epochs, loss_fn=loss, **joint))
        finally:
            model.joint = False
    return histories


VARIANTS = ("downsample", "haar", "decomposition", "wae")
# Stage 3 clips the gradient to this norm. Without it, the joint fine-tuning of the 60,000-image WAE
# (λ = 0.1) diverged to NaN within 12 SGD steps, even at one-cycle's starting rate of 0.002 (measured:
# I_L's std 1.46 → 0.13 and the I_H conv's weight norm 0.47 → 5.4 in 6 steps), in bf16 and fp32 alike.
JOINT_MAX_GRAD_NORM = 1.0


def variants(base: nn.Module, in_channels: int, wae_lambda: float = 0.1, lambdas: tuple = (0.0, 0.1, 1.0)) -> dict:
    """The untrained structures of :func:`experiment`: ``{"waes": {λ: WAE}, "downsample": …, "haar": …,
    "decomposition": …, "wae": …}``, every variant with its own copy of ``base``."""
    if not isinstance(base, nn.Sequential) or not isinstance(base[-1], nn.Linear):
        raise TypeError("base must be an nn.Sequential ending in an nn.Linear (models.vgg_small)")
    lambdas = tuple(float(v) for v in lambdas)
    for v in lambdas:
        check_float("lambdas", v, 0.0)
    if 0.0 not in lambdas or float(wae_lambda) not in lambdas:
        raise ValueError(f"lambdas={lambdas} must contain 0 (Decomposition+CNN) and wae_lambda={wae_lambda}")
    classes = base[-1].out_features
    out: dict[str, Any] = {"waes": {lam: WAE(in_channels) for lam in lambdas}}
    out["downsample"] = nn.Sequential(Downsample("avg"), *copy.deepcopy(base))
    for name, splitter, lam in (
        ("haar", HaarSplit(in_channels), 0.0),
        ("decomposition", WAE(in_channels), 0.0),
        ("wae", WAE(in_channels), float(wae_lambda)),
    ):
        out[name] = WAEClassifier(
            copy.deepcopy(base), high_branch(splitter.high_channels), splitter, classes, energy_weight=lam
        )
    return out


def experiment(
    base: nn.Module,
    train_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    *,
    epochs: int = 2,
    joint_epochs: int = 1,
    wae_epochs: int = 1,
    lambdas: tuple = (0.0, 0.1, 1.0),
    wae_lambda: float = 0.1,
    lr: float = 0.05,
    label_smoothing: float = 0.1,
    progress: bool = False,
    seed: int = 0,
    cache: str | Path | None = None,
    wae_min_gain_db: float | None = None,
    curves: dict | None = None,
    waes: dict | None = None,
    amp: str = "auto",
) -> dict:
    """The chapter's experiment: from one trained full-resolution ``base`` (``vgg_small``), build and
    train every half-resolution variant at the same budget (``epochs`` of the same schedule each).

    As in the paper, every variant's base starts from the trained full-resolution weights and is
    fine-tuned on its half-resolution input. Stage 1 pre-trains one WAE per λ in ``lambdas``
    (``wae_epochs`` each); λ = 0 gives the paper's Decomposition+CNN, ``wae_lambda`` the WAE
    (stages 2 and 3 by :func:`train_classifier`). Returns the layout of :func:`variants`, trained.
    ``cache``: a file path; if it exists the trained weights are loaded from it instead, else
    they are written there (atomically) at the end. ``wae_min_gain_db`` (needs ``test_data``): stage 1
    runs up to ``wae_epochs`` and stops at the first epoch that adds less test PSNR than this.
    ``curves``: a dict, filled with what training measured — ``curves["waes"][λ]``: the per-epoch
    ``(test PSNR, test energy fraction of I_H)`` (with ``test_data``), ``curves[variant]``: the test
    accuracy after every epoch of stages 2 and 3.
    ``waes``: stage 1 already done — ``{λ: trained WAE}`` for every λ in ``lambdas`` (e.g. the shipped
    long run of :func:`ship_waes`); their weights are copied and stage 1 is skipped. ``amp``:
    ``train.fit``'s autocast for stages 2 and 3 (``"bf16"`` on the CPU too).
    """
    x0, _ = next(iter(train_data))
    torch.manual_seed(seed)
    out = variants(base, x0.shape[1], wae_lambda, lambdas)
    if cache is not None and Path(cache).exists():
        blob = checkpoints.read_weights(cache)
        missing = [str(lam) for lam in out["waes"] if str(lam) not in blob.get("waes", {})] + [
            name for name in VARIANTS if name not in blob
        ]
        if missing:
            raise checkpoints.CheckpointError(
                f"the cache {cache} is of another experiment: it has no weights for "
                f"{', '.join(missing)}; delete it to train again"
            )
        for lam, m in out["waes"].items():
            checkpoints.load_state(m, blob["waes"][str(lam)], f"the cache {cache} (WAE λ={lam})")
        for name in VARIANTS:
            checkpoints.load_state(out[name], blob[name], f"the cache {cache} ({name})")
        return {
            k: ({lam: m.to(x0.device).eval() for lam, m in v.items()} if k == "waes" else v.to(x0.device).eval())
            for k, v in out.items()
        }
    fit = dict(lr=lr, label_smoothing=label_smoothing, progress=progress, seed=seed, device=x0.device, amp=amp)
    if waes is not None and set(map(float, waes)) != set(out["waes"]):
        raise ValueError(f"waes has λ = {sorted(map(float, waes))}; it needs exactly lambdas = {sorted(out['waes'])}")
    for lam, wae in out["waes"].items():
        if waes is not None:  # stage 1 done elsewhere (the long run)
            wae.load_state_dict({k: v.float() for k, v in waes[lam].state_dict().items()})
            wae.to(x0.device).eval()
            continue
        torch.manual_seed(seed)
        wae.load_state_dict(WAE(x0.shape[1]).state_dict())  # every λ starts from the same weights
        rows = pretrain_wae(
            wae.to(x0.device),
            train_data,
            wae_epochs,
            energy_weight=lam,
            seed=seed,
            test_data=test_data,
            min_gain_db=wae_min_gain_db,
        )
        wae.eval()
        if curves is not None:
            curves.setdefault("waes", {})[lam] = [
                (r["test_psnr"], r["test_high_fraction"]) for r in rows if "epoch" in r
            ]
    out["decomposition"].splitter.load_state_dict(out["waes"][0.0].state_dict())
    out["wae"].splitter.load_state_dict(out["waes"][float(wae_lambda)].state_dict())
    for name in VARIANTS:
        out[name].to(x0.device)
        histories = train_classifier(out[name], train_data, test_data, epochs, joint_epochs, **fit)
        out[name].eval()
        if curves is not None:
            curves[name] = [acc for h in histories for acc in h.test_acc]
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        checkpoints.save_atomically(
            {
                "model": {
                    "waes": {str(lam): m.state_dict() for lam, m in out["waes"].items()},
                    **{name: out[name].state_dict() for name in VARIANTS},
                }
            },
            cache,
        )
    return out


# --------------------------------------------------------------------------- cost arithmetic


def encoder_macs(in_channels: int, hidden: int, height: int, width: int, depth: int = 3) -> int:
    """MACs of the WAE encoder on one image: ``depth`` 3×3 convs at full resolution + two
    stride-2 3×3 branches at half resolution (the decoder is not needed at inference)."""
    for name, v in (
        ("in_channels", in_channels),
        ("hidden", hidden),
        ("height", height),
        ("width", width),
        ("depth", depth),
    ):
        check_int(name, v)
    full = height * width * 9 * (in_channels * hidden + (depth - 1) * hidden * hidden)
    half = math.ceil(height / 2) * math.ceil(width / 2) * 9 * hidden * in_channels * 2
    return full + half


def speedup_bound(base_macs_full: int, extra_macs: int) -> float:
    """The MAC speed-up of running a base at half resolution plus ``extra_macs`` (encoder, high
    branch, fusion) instead of at full resolution: ``base / (base / 4 + extra)``."""
    if base_macs_full <= 0 or extra_macs < 0:
        raise ValueError(f"base_macs_full={base_macs_full} must be > 0 and extra_macs={extra_macs} >= 0")
    return base_macs_full / (base_macs_full / 4 + extra_macs)


@dataclass
class CostRow:
    """One model's inference cost; ``mac_ratio`` and ``speedup`` are relative to the report's first row."""

    name: str = column("model", align="<")
    accuracy: float | None = column("acc %", "{:.2f}", scale=100)
    macs: int = column("MACs", "{:.2f}M", scale=1e-6)
    params: int = column()
    latency_ms: float = column("ms", "{:.2f}")
    mac_ratio: float = column("MAC÷", "{:.2f}", default=1.0)
    speedup: float = column("speed×", "{:.2f}", default=1.0)


class WaeCostReport(Rows):
    """``report.Rows`` of :class:`CostRow`: accuracy, MACs, parameters, measured latency, ratios to the first row.

    ``report.find(name="VGG + WAE")`` is one model's row."""


def cost_report(
    named_models: dict,
    input_size: tuple,
    accuracies: dict | None = None,
    batch: int = 1,
    min_run_time: float = 0.3,
    rounds: int = 3,
) -> WaeCostReport:
    """Measure every model in ``named_models`` (inference: eval mode, no decoder) on one run.

    ``input_size`` is (C, H, W). Latency is the best of ``rounds`` interleaved rounds (every model
    once per round), which keeps the ratios fair on a shared machine. The first model is the
    reference: ``mac_ratio`` and ``speedup`` are its MACs and latency divided by each model's.
    """
    if not named_models:
        raise ValueError("named_models must name at least one model")
    check_int("rounds", rounds)
    accuracies = accuracies or {}
    x = torch.randn(batch, *input_size)
    best = measure.latencies(
        {name: model.cpu().eval() for name, model in named_models.items()},
        x,
        min_run_time=min_run_time,
        rounds=rounds,
        best=True,
    )
    report = WaeCostReport()
    for name, model in named_models.items():
        macs = measure.count_macs(model, tuple(input_size))
        report.append(CostRow(name, accuracies.get(name), macs, measure.count_params(model), 1e3 * best[name]))
    ref = report[0]
    for r in report:
        r.mac_ratio, r.speedup = ref.macs / r.macs, ref.latency_ms / r.latency_ms
    return report


@dataclass
class SweepRow:
    width: int
    base_macs: int
    wae_macs: int
    mac_speedup: float
    base_ms: float
    wae_ms: float
    speedup: float


def speedup_sweep(
    widths: list,
    in_channels: int = 1,
    size: int = 28,
    num_classes: int = 10,
    batch: int = 16,
    min_run_time: float = 0.2,
    seed: int = 0,
    rounds: int = 2,
) -> Rows:
    """WAE + ``vgg_small((w, 2w, 4w))`` at half resolution vs ``vgg_small`` at full resolution, for
    every first-stage width ``w`` in ``widths`` (untrained models: cost does not depend on weights)."""
    torch.manual_seed(seed)
    rows = Rows()
    for w in widths:
        check_int("width", w)
        kw: dict[str, Any] = dict(num_classes=num_classes, in_channels=in_channels, widths=(w, 2 * w, 4 * w))
        full, wae_net = build("full", **kw).eval(), build("wae-classifier", **kw).eval()
        x = torch.randn(batch, in_channels, size, size)
        bm, wm = measure.count_macs(full, x.shape[1:]), measure.count_macs(wae_net, x.shape[1:])
        seconds = measure.latencies(
            {"full": full, "wae": wae_net}, x, min_run_time=min_run_time, rounds=rounds, best=True
        )  # interleaved, best of each: fair under load
        bt, wt = seconds["full"], seconds["wae"]
        rows.append(SweepRow(w, bm, wm, bm / wm, 1e3 * bt, 1e3 * wt, bt / wt))
    return rows


# --------------------------------------------------------------------------- the explorer


@dataclass(frozen=True, eq=False)
class DecompositionState(State):
    """The decomposition explorer's state (``decomposition_state``): one image, its WAE and Haar
    sub-images, and their PSNR and energy in the high-frequency part."""

    image: int
    energy_weight: float
    x: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    recon: torch.Tensor
    cA: torch.Tensor
    details: torch.Tensor
    psnr: float
    haar_psnr: float
    high_fraction: float
    haar_high_fraction: float


def decomposition_state(image: int, energy_weight: float, images: torch.Tensor, waes: dict) -> DecompositionState:
    """Everything the decomposition explorer shows, for image number ``image`` and the WAE trained
    with ``energy_weight`` (a key of ``waes``): I_L, I_H, reconstruction, Haar's cA and details,
    PSNRs and the energy split of both."""
    _tensor4("images", images)
    if isinstance(image, bool) or not isinstance(image, int):
        raise TypeError(f"image={image!r} must be an int")
    if not 0 <= image < len(images):
        raise ValueError(f"image={image} must be between 0 and {len(images) - 1}")
    if energy_weight not in waes:
        raise ValueError(f"energy_weight={energy_weight!r} has no trained WAE; choose one of {sorted(waes)}")
    x = images[image : image + 1]
    _even("images", x)
    with torch.no_grad():
        wae = waes[energy_weight].eval()
        low, high, recon = wae(x)
        cA, details = haar_dwt(x)
        haar_high = torch.cat(details, dim=1)
        haar_recon = haar_idwt(cA, details)
    return DecompositionState(
        image=image,
        energy_weight=energy_weight,
        x=x[0],
        low=low[0],
        high=high[0],
        recon=recon[0],
        cA=cA[0],
        details=haar_high[0],
        psnr=psnr(x, recon),
        haar_psnr=psnr(x, haar_recon),
        high_fraction=energy_fraction(low, high),
        haar_high_fraction=energy_fraction(cA, haar_high),
    )


def _show(ax, t, title, symmetric=False):
    img = t.detach().cpu()
    img = img[0] if img.shape[0] != 3 else img.permute(1, 2, 0)
    if img.dim() == 3:  # colour: rescale to [0, 1]
        ax.imshow(((img - img.min()) / (img.max() - img.min() + 1e-8)).numpy())
    elif symmetric:
        m = float(img.abs().max()) or 1.0
        ax.imshow(img.numpy(), cmap="RdBu_r", vmin=-m, vmax=m)
    else:
        ax.imshow(img.numpy(), cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def draw_decomposition(state: DecompositionState, fig: Figure) -> None:
    """Two rows: the WAE's (input, I_L, I_H, reconstruction) and Haar's (input, cA, |details|, inverse)."""
    axes = fig.subplots(2, 4)
    s = state
    c = s.x.shape[0]
    _show(axes[0, 0], s.x, "input")
    _show(axes[0, 1], s.low, "WAE I_L")
    _show(axes[0, 2], s.high, f"WAE I_H ({100 * s.high_fraction:.2f}% energy)", symmetric=True)
    _show(axes[0, 3], s.recon, f"WAE reconstruction, {s.psnr:.1f} dB")
    _show(axes[1, 0], s.x, "input")
    _show(axes[1, 1], s.cA, "Haar cA")
    detail = s.details.view(3, c, *s.details.shape[-2:]).pow(2).sum(0).sqrt()
    _show(axes[1, 2], detail, f"Haar |details| ({100 * s.haar_high_fraction:.2f}% energy)")
    _show(axes[1, 3], s.x, f"Haar inverse, {s.haar_psnr:.0f} dB (exact)")
    fig.suptitle(f"image {s.image}, WAE trained with λ = {s.energy_weight}", fontsize=10)


def decomposition_readout(state: DecompositionState) -> str:
    s = state
    return (
        f"λ = {s.energy_weight}: WAE PSNR <b>{s.psnr:.1f} dB</b>, energy in I_H "
        f"<b>{100 * s.high_fraction:.2f}%</b> · Haar: energy in details {100 * s.haar_high_fraction:.2f}%, "
        f"inverse exact ({s.haar_psnr:.0f} dB)"
    )


def decomposition_explorer(images: torch.Tensor, waes: dict, image: int = 0) -> widgets.Explorer:
    """The explorer: pick an image and λ; see I_L, I_H, reconstruction and Haar's counterparts."""
    weights = sorted(waes)
    controls = {
        "image": widgets.int_slider("image", image, 0, len(images) - 1),
        "energy_weight": widgets.dropdown("λ (energy weight)", [(str(w), w) for w in weights], weights[-1]),
    }
    return widgets.Explorer(
        lambda image, energy_weight: decomposition_state(image, energy_weight, images, waes),
        draw_decomposition,
        controls,
        title="WAE vs Haar: the two half-resolution sub-images",
        readout_fn=decomposition_readout,
        figsize=(10, 5.2),
    )


# --------------------------------------------------------------------------- shipped checkpoints

# The classifiers' long run (ship_classifiers): epochs per variant, the last ones joint (stage 3).
CLASSIFIER_EPOCHS, CLASSIFIER_JOINT_EPOCHS = 6, 2

SHIPPED: dict[str | float, str] = {
    "downsample": "wae-downsample-fmnist",
    "haar": "wae-haar-fmnist",
    "decomposition": "wae-decomp-fmnist",
    "wae": "wae-classifier-fmnist",
    0.0: "wae-l0-fmnist",
    0.1: "wae-l0.1-fmnist",
    1.0: "wae-l1-fmnist",
}
SHIPPED_KINDS: dict[str, dict[str, Any]] = {
    "wae-l0-fmnist": dict(kind="wae"),
    "wae-l0.1-fmnist": dict(kind="wae"),  # build() keywords
    "wae-l1-fmnist": dict(kind="wae"),
    "wae-downsample-fmnist": dict(kind="downsample"),
    "wae-haar-fmnist": dict(kind="haar"),
    "wae-decomp-fmnist": dict(kind="wae-classifier"),
    "wae-classifier-fmnist": dict(kind="wae-classifier", energy_weight=0.1),
}


def load_shipped(folder: str | Path | None = None) -> dict:
    """The shipped long run of :func:`experiment` on Fashion-MNIST (same layout): the WAEs of stage 1 made by
    ``python -m course_lib train --recipe wae-l0.1-fmnist --register`` (all 60,000 images, to plateau; the
    manifest records each one's command chain), and the four classifiers made from them by ``... train
    --recipe wae-classifier-fmnist --register`` (all 60,000 images, ``CLASSIFIER_EPOCHS`` a variant)."""
    out: dict[str, Any] = {"waes": {}}
    for key, name in SHIPPED.items():
        model = checkpoints.load_checkpoint(name, build(**SHIPPED_KINDS[name]), folder=folder)
        if isinstance(key, float):
            out["waes"][key] = model
        else:
            out[key] = model
    return out


def _ship_entry(
    folder: str | Path | None,
    name: str,
    model: nn.Module,
    test_data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    train_images: int,
    curve: list,
    command: str,
    seed: int = 0,
) -> None:
    """Ship one model (fp16 weights) by ``checkpoints.ship``: a classifier with its test accuracy
    after every epoch as its curve, a WAE with its test PSNR and I_H energy after every epoch."""
    is_wae = isinstance(model, WAE)
    acc = None if is_wae else train.evaluate(model, test_data)
    extra: dict[str, Any] = {}
    if is_wae:
        extra["test_psnr_db"] = [round(p, 2) for p, _ in curve]
        extra["test_high_energy_fraction"] = [round(f, 5) for _, f in curve]
        extra["kept_epoch"] = 1 + max(range(len(curve)), key=lambda i: curve[i][0])  # early stopping keeps the best
    path = checkpoints.ship(
        model,
        folder,
        name,
        recipe=name,
        seed=seed,
        epochs=len(curve),
        test_accuracy=acc,
        curve=None if is_wae else curve,
        command=command,
        train_images=train_images,
        half=True,
        extra=extra,
    )
    print(f"{name}: {path.stat().st_size} bytes, test accuracy {acc}, curve {curve}", flush=True)


def ship_recipe(
    recipe: str,
    folder: str | Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    lr: float | None = None,
    resume: bool = False,
) -> None:
    """The maker of the ``wae-*`` recipes (``python -m course_lib train --recipe NAME --register``): a WAE
    (``wae-l0.1-fmnist``…) by :func:`ship_waes` (≤ ``epochs``, default 2; Adam at ``lr``, default 3e-3;
    ``resume``: continue the shipped one); a classifier (``wae-haar-fmnist``…) by one run of
    :func:`ship_classifiers`, which trains and ships all four variants (``epochs`` each, default
    ``CLASSIFIER_EPOCHS``)."""
    key = next((k for k, name in SHIPPED.items() if name == recipe), None)
    if key is None:
        raise ValueError(f"recipe={recipe!r} is not a shipped WAE model; those are {sorted(SHIPPED.values())}")
    if isinstance(key, float):
        lr = lr if lr is not None else 3e-3
        ship_waes(folder, epochs if epochs is not None else 2, lambdas=[key], resume=resume, lr=lr, seed=seed)
    elif resume or lr is not None:
        raise ValueError(f"{recipe}: --resume and --lr apply to the WAEs (wae-l*-fmnist), not to the classifiers")
    else:
        ship_classifiers(folder, epochs=epochs if epochs is not None else CLASSIFIER_EPOCHS, seed=seed)


def ship_classifiers(
    folder: str | Path | None = None,
    train_subset: int | None = None,
    epochs: int = CLASSIFIER_EPOCHS,
    joint_epochs: int = CLASSIFIER_JOINT_EPOCHS,
    threads: int = 1,
    seed: int = 0,
) -> None:
    """The long run of stages 2 and 3, which ships the four classifier checkpoints:
    ``python -m course_lib train --recipe wae-classifier-fmnist --register`` (or any of the four; about
    15 minutes on one thread of the project's 2-core CPU).

    Stage 1 is the shipped long run (:func:`ship_waes`: every WAE trained on all 60,000 images to
    plateau), read, like the base, from the shipped checkpoints; ``folder`` is where the four go.
    Every variant then gets the same training from the same trained base (``vgg-small-fmnist``):
    ``epochs`` (the last ``joint_epochs`` joint) on all training images (``train_subset``: fewer),
    batch 256 with flips, one-cycle to lr 0.05, label smoothing 0.1 and bf16 autocast — the course's
    evidence recipe at fine-tuning strength. Each one's test accuracy after
    every epoch goes into the manifest as its curve.
    """
    torch.set_num_threads(threads)
    config.seed_everything(seed)
    train_data, test_data = data.loaders(
        "fashion-mnist", 256, augment=True, crop=False, train_subset=train_subset, device="cpu", seed=seed
    )
    base = checkpoints.load_checkpoint("vgg-small-fmnist", models.vgg_small())
    stage1 = {lam: checkpoints.load_checkpoint(SHIPPED[lam], WAE(1)).float() for lam in (0.0, 0.1, 1.0)}
    curves: dict = {}
    result = experiment(
        base,
        train_data,
        test_data,
        epochs=epochs,
        joint_epochs=joint_epochs,
        lr=0.05,
        progress=False,
        curves=curves,
        waes=stage1,
        amp="bf16",
        seed=seed,
    )
    for key in VARIANTS:
        command = checkpoints.rebuild_command(SHIPPED[key], epochs, CLASSIFIER_EPOCHS, seed)
        _ship_entry(folder, SHIPPED[key], result[key], test_data, len(train_data.labels), curves[key], command, seed)


def ship_waes(
    folder: str | Path | None = None,
    max_epochs: int = 2,
    threads: int = 2,
    lambdas: Iterable[float] | None = None,
    resume: bool = False,
    lr: float = 3e-3,
    seed: int = 0,
) -> None:
    """The long run of stage 1 (``python -m course_lib train --recipe wae-l0.1-fmnist --register``):
    one WAE per λ of ``SHIPPED``
    on the whole training set (60,000 images), each until an epoch adds less than 0.1 dB of test
    PSNR (at most ``max_epochs``), with its test PSNR and I_H energy after every epoch. ``lambdas``:
    only these (each can run in its own process and folder; merge the manifest entries after).
    ``resume``: continue from the shipped WAE in ``folder`` (a fresh Adam with learning rate ``lr``)
    and append the new epochs to its recorded curve. The manifest's command is the chain of every
    phase's command line (``python -m course_lib train --recipe wae-l0.1-fmnist --register --epochs 6
    --resume --lr 0.001``), which rebuilds the model."""
    torch.set_num_threads(threads)
    train_data, test_data = data.loaders("fashion-mnist", 128, augment=False, device="cpu")
    for lam in lambdas if lambdas is not None else [k for k in SHIPPED if isinstance(k, float)]:
        torch.manual_seed(seed)
        model, curve = WAE(1), []
        command = f"python -m course_lib train --recipe {SHIPPED[lam]} --register --epochs {max_epochs}"
        command += f" --seed {seed}" if seed else ""
        if resume:
            model = checkpoints.load_checkpoint(SHIPPED[lam], model, folder=folder).float()
            entry = checkpoints.read_manifest(folder)[SHIPPED[lam]]
            curve = list(zip(entry["test_psnr_db"], entry["test_high_energy_fraction"]))
            command = f"{entry['command']} && {command} --resume --lr {lr:g}"
        best = max(p for p, _ in curve) if curve else None  # early stopping starts from the best kept
        rows = pretrain_wae(
            model,
            train_data,
            max_epochs,
            energy_weight=lam,
            lr=lr,
            test_data=test_data,
            min_gain_db=0.1,
            seed=len(curve),
            baseline_db=best,
        )
        curve += [(r["test_psnr"], r["test_high_fraction"]) for r in rows if "epoch" in r]
        _ship_entry(folder, SHIPPED[lam], model.eval(), test_data, len(train_data.labels), curve, command, seed)
