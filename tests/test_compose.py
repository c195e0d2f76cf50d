"""The chapter transforms compose: pruning (04), weight sharing (02) and low rank (03), in every order.

On torchvision architectures every ordered pair of transforms works: the forward pass runs, pruned
weights stay zero, ``measure.count_macs`` still equals ``FlopCounterMode``'s count / 2. A layer under
another quantizer (TTQ) is not pruned: the error names the function to call first. Each transform touches the same few
layers (``LAYERS``), so the second one meets what the first one left there.
"""

import itertools

import pytest
import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from course_lib import lowrank, measure, prune, quant
from course_lib.surgery import weight_layers

INPUT = (1, 3, 64, 64)
LAYERS = {                   # groups=1 convs (low rank needs them) of different shapes, per architecture
    "resnet18": ["layer1.0.conv1", "layer2.0.downsample.0", "layer4.0.downsample.0"],
    "mobilenet_v2": ["features.2.conv.0.0", "features.7.conv.2", "features.18.0"],
    "squeezenet1_1": ["features.3.squeeze", "features.9.squeeze", "features.12.expand3x3"],
    "shufflenet_v2_x0_5": ["stage2.0.branch1.2", "stage3.3.branch2.5", "stage4.3.branch2.5"],
    "efficientnet_b0": ["features.1.0.block.1.fc1", "features.5.0.block.0.0", "features.7.0.block.3.0"],
}


def build(arch: str) -> nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None, num_classes=10).eval()


def touched(model: nn.Module, arch: str) -> list[str]:
    """The conv/linear layers that stand where ``LAYERS[arch]`` were (a decomposed layer is two)."""
    return [n for n in weight_layers(model) if any(n == base or n.startswith(base + ".") for base in LAYERS[arch])]


def do_prune(model, arch):
    return prune.magnitude_prune(model, 0.5, layers=touched(model, arch))


def do_share(model, arch):
    return quant.share_weights(model, 3, layers=touched(model, arch), iters=2)


def do_lowrank(model, arch):
    return lowrank.compress_model(model, 0.5, "channels", layers=LAYERS[arch][:2])   # the third is left alone


TRANSFORMS = {"prune": do_prune, "share": do_share, "lowrank": do_lowrank}

def flop_counter_macs(model: nn.Module) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(INPUT))
    return counter.get_total_flops() // 2


def pruned_zeros(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer: pruned positions}`` of the layers that carry a pruning mask."""
    return {n: ~m.weight_mask.bool() for n, m in weight_layers(model).items() if prune.is_reparametrized(m)}


@pytest.fixture(scope="module", params=list(LAYERS))
def arch(request):
    return request.param


@pytest.mark.parametrize("first, second", list(itertools.permutations(TRANSFORMS, 2)))
def test_two_chapter_transforms_compose(arch, first, second):
    model = TRANSFORMS[first](build(arch), arch)
    zeros = pruned_zeros(model) if first == "prune" else {}
    out = TRANSFORMS[second](model, arch)
    with torch.no_grad():
        y = out(torch.randn(INPUT))
    assert y.shape == (1, 10) and torch.isfinite(y).all()
    weights = weight_layers(out)
    for name, dropped in zeros.items():            # pruned weights stay zero where the layer survives
        if name in weights:
            assert not weights[name].weight.detach()[dropped].any(), name
    if "lowrank" in (first, second):
        assert any(isinstance(m, lowrank.LowRank) for m in out.modules())
    if second == "lowrank" and first == "prune":   # the layer left alone keeps its mask
        assert prune.is_reparametrized(out.get_submodule(LAYERS[arch][2]))
    assert measure.count_macs(out, INPUT) == flop_counter_macs(out)


def test_pruning_shared_weights_masks_them_and_they_stay_zero_while_the_centroids_train():
    model = do_share(build("resnet18"), "resnet18")
    name = LAYERS["resnet18"][0]
    prune.magnitude_prune(model, 0.5, layers=[name])
    layer = model.get_submodule(name)
    dropped = layer.weight.detach() == 0
    assert dropped.float().mean() >= 0.5 and not prune.is_reparametrized(layer)   # the shared weights' own mask
    assert prune.sparsity(model, per_layer=True)[name] == pytest.approx(float(dropped.float().mean()))
    codebook = layer.parametrizations.weight[0].codebook
    optimizer = torch.optim.AdamW([codebook], lr=0.1)
    model(torch.randn(INPUT)).sum().backward()
    optimizer.step()
    assert not layer.weight.detach()[dropped].any()                               # still zero after a step


def test_a_quantized_layer_names_the_way_out_and_is_left_alone():
    model = build("resnet18")
    name = LAYERS["resnet18"][0]
    quant.quantize_model(model, "ttq", layers=[name])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=rf"layer '{name}'.*quant.unshare_weights\(model\)"):
        prune.magnitude_prune(model, 0.5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())   # nothing half-pruned


def test_lowrank_of_a_pruned_model_sees_the_masked_weights_and_leaves_it_alone():
    model = do_prune(build("resnet18"), "resnet18")
    name = LAYERS["resnet18"][0]
    masked = model.get_submodule(name).weight.detach().clone()
    full = {name: min(masked.shape[0], masked[0].numel())}                         # full rank: exact
    out = lowrank.compress_model(model, None, "channels", ranks=full)
    assert torch.allclose(lowrank.composed_weight(out.get_submodule(name)), masked, atol=1e-5)
    assert prune.is_reparametrized(model.get_submodule(name))                     # the input keeps its masks
