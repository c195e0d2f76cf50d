"""course_lib.surgery against independent references: PyTorch's own ops and numpy's bit packing."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import surgery


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_weight_layers_all_and_chosen():
    net = small_net()
    assert list(surgery.weight_layers(net)) == ["0", "3"]
    assert list(surgery.weight_layers(net, "3")) == ["3"]
    assert surgery.weight_layers(net, ["3", "0"])["0"] is net[0]
    with pytest.raises(ValueError, match=r"'1' is a ReLU, not a .*choose from \['0', '3'\]"):
        surgery.weight_layers(net, ["1"])
    with pytest.raises(ValueError, match="'fc' is not a layer"):
        surgery.weight_layers(net, "fc")
    with pytest.raises(TypeError):
        surgery.weight_layers(net, [3])


def test_replace_layer_nested():
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    new = nn.Linear(2, 2)
    assert surgery.replace_layer(net, "0.0", new) is net
    assert net[0][0] is new
    with pytest.raises(ValueError):
        surgery.replace_layer(net, "0.7", new)


def test_forward_with_hooks_records_and_cleans_up():
    net = small_net().train()
    x = torch.randn(2, 1, 6, 6)
    seen = {}
    out = surgery.forward_with_hooks(net, x, {net[0]: lambda m, i, o: seen.update(conv=o.clone())})
    torch.testing.assert_close(seen["conv"], net[0](x))
    torch.testing.assert_close(out, net(x))
    assert net.training and not net[0]._forward_hooks

    class Stop(Exception):
        pass

    def stop(m, inputs):
        raise Stop
    with pytest.raises(Stop):
        surgery.forward_with_hooks(net, x, {net[3]: stop}, pre=True)
    assert net.training and not net[3]._forward_pre_hooks


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_dense_group_weight_equals_group_conv(groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, groups=groups, bias=False)
    x = torch.randn(2, 8, 7, 7)
    dense = surgery.dense_group_weight(conv.weight, groups)
    assert dense.shape == (12, 8, 3, 3)
    torch.testing.assert_close(F.conv2d(x, dense), conv(x))
    with pytest.raises(ValueError, match="not divisible"):
        surgery.dense_group_weight(torch.zeros(5, 2, 1, 1), 2)


@pytest.mark.parametrize("bits", [1, 3, 5, 8, 11])
def test_pack_bits_matches_numpy_packbits(bits):
    rng = np.random.default_rng(bits)
    values = rng.integers(0, 2 ** bits, size=37)
    packed = surgery.pack_bits(torch.from_numpy(values), bits)
    # numpy reference: each value's bits MSB first, then np.packbits (MSB-first bytes, zero padding)
    bit_rows = (values[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    expected = np.packbits(bit_rows.astype(np.uint8).reshape(-1))
    assert packed.dtype == torch.uint8 and np.array_equal(packed.numpy(), expected)
    assert torch.equal(surgery.unpack_bits(packed, bits, len(values)), torch.from_numpy(values))
    assert torch.equal(surgery.unpack_bits(packed.numpy().tobytes(), bits, len(values)), torch.from_numpy(values))


def test_pack_bits_errors_and_bits_needed():
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        surgery.pack_bits(torch.tensor([8]), 3)
    with pytest.raises(TypeError):
        surgery.pack_bits(torch.tensor([1]), 2.0)
    with pytest.raises(ValueError, match="need 12 bits"):
        surgery.unpack_bits(torch.zeros(1, dtype=torch.uint8), 3, 4)
    assert surgery.unpack_bits(b"", 3, 0).numel() == 0 and surgery.pack_bits(torch.tensor([], dtype=torch.long), 3).numel() == 0
    assert [surgery.bits_needed(n) for n in (0, 1, 2, 3, 4, 5, 256, 257)] == [1, 1, 1, 2, 2, 3, 8, 9]


def test_copy_model_copies_a_pruned_model():
    from torch.nn.utils import prune

    net = small_net()
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    x = torch.randn(2, 1, 6, 6)
    with pytest.raises(RuntimeError):                # the reason copy_model exists
        import copy
        copy.deepcopy(net)
    twin = surgery.copy_model(net)
    torch.testing.assert_close(twin(x), net(x))
    assert torch.equal(twin[0].weight_mask, net[0].weight_mask) and twin[0].weight_orig is not net[0].weight_orig
    with torch.no_grad():
        twin[0].weight_orig.add_(1.0)
    assert not torch.equal(twin(x), net(x))          # independent: changing the copy leaves the original
    assert bool((twin[0].weight[net[0].weight_mask == 0] == 0).all())   # the mask still applies in the copy
