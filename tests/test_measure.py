import pytest
import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from course_lib import measure, models, resnets


def flop_counter_macs(model, x):
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(x)
    return counter.get_total_flops() // 2          # FlopCounterMode counts 2 FLOPs per MAC


HAND_MADE = {
    "grouped": nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=4), nn.Conv2d(16, 16, 1, groups=2)),
    "depthwise": nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 12, 1)),
    "strided_dilated": nn.Sequential(nn.Conv2d(8, 6, (3, 5), stride=2, padding=2, dilation=2), nn.ReLU(),
                                     nn.Flatten(), nn.LazyLinear(7)),
}


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_count_macs_agrees_with_flop_counter_on_hand_made_nets(name):
    model = HAND_MADE[name]
    x = torch.randn(2, 8, 15, 13)
    model(x)                                     # materialise lazy layers
    assert measure.count_macs(model, tuple(x.shape)) == flop_counter_macs(model, x)


@pytest.mark.parametrize("builder", [torchvision.models.resnet18, torchvision.models.mobilenet_v2,
                                     torchvision.models.squeezenet1_0])
def test_count_macs_agrees_with_flop_counter_on_torchvision_models(builder):
    model = builder().eval()
    assert measure.count_macs(model, (3, 96, 96)) == flop_counter_macs(model, torch.zeros(1, 3, 96, 96))


def test_count_macs_of_course_models():
    for model, size in ((models.lenet5(), (1, 28, 28)), (models.vgg_small(), (1, 28, 28)),
                        (resnets.resnet20(), (3, 32, 32)), (models.lenet_300_100(), (1, 28, 28))):
        assert measure.count_macs(model, size) == flop_counter_macs(model, torch.zeros((1,) + size))
    # Han et al.'s LeNet-300-100 is 784*300 + 300*100 + 100*10 multiply-accumulates
    assert measure.count_macs(models.lenet_300_100(), (1, 28, 28)) == 784 * 300 + 300 * 100 + 100 * 10


@pytest.mark.parametrize("name,weights", [
    ("resnet18", torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    ("mobilenet_v2", torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1),
    ("squeezenet1_0", torchvision.models.SqueezeNet1_0_Weights.IMAGENET1K_V1),
    ("vgg11", torchvision.models.VGG11_Weights.IMAGENET1K_V1),
])
def test_count_params_matches_torchvision_published_counts(name, weights):
    model = getattr(torchvision.models, name)()
    assert measure.count_params(model) == weights.meta["num_params"]


def test_count_params_of_the_papers_lenets():
    assert measure.count_params(models.lenet5()) == 431_080        # Deep Compression's LeNet-5
    assert measure.count_params(models.lenet_300_100()) == 266_610
    assert measure.count_params(resnets.resnet20()) == pytest.approx(0.27e6, rel=0.02)   # He et al.: 0.27M


def test_nonzero_params():
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 1.0
    assert measure.count_params(layer) == 15
    assert measure.count_params(layer, nonzero=True) == 1 + int(torch.count_nonzero(layer.bias))


def test_input_size_of_wrong_rank_is_a_clear_error():
    for bad in ((28, 28), (1, 1, 1, 28, 28), 28, (1, 0, 28), (1, 28.0, 28)):
        with pytest.raises(ValueError, match=r"input_size=.* \(C, H, W\)"):
            measure.count_macs(models.lenet5(), bad)


def test_an_input_the_model_cannot_take_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"input_size \(1, 3, 28, 28\) does not fit the model: its first layer `0` "
                                         r"expects 1 input channel\(s\)"):
        measure.count_macs(models.lenet5(), (1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"first layer `1` expects 784 input feature\(s\)"):
        measure.layer_table(models.lenet_300_100(), (3, 28, 28))


def test_layer_table_names_and_shapes():
    rows = measure.layer_table(models.lenet5(), (1, 28, 28))
    assert [r.name for r in rows] == ["0", "3", "7", "9"]
    assert rows[0].out_shape == (1, 20, 24, 24) and rows[0].params == 520
    assert rows[1].macs == 50 * 8 * 8 * 20 * 25


def test_model_bytes_and_file_bytes(tmp_path):
    model = models.lenet5()
    assert measure.model_bytes(model) == 431_080 * 4
    assert measure.model_bytes(model, bits=5) == -(-431_080 * 5 // 8)
    with pytest.raises(ValueError, match="bits=0"):
        measure.model_bytes(model, bits=0)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert measure.file_bytes(tmp_path / "m.pt") == (tmp_path / "m.pt").stat().st_size
    assert abs(measure.file_bytes(model) - measure.file_bytes(tmp_path / "m.pt")) < 1000
    assert measure.file_bytes(model) > 431_080 * 4
    with pytest.raises(FileNotFoundError, match="does not exist"):
        measure.file_bytes(tmp_path / "missing.pt")
    assert measure.file_bytes(model.state_dict()) == measure.file_bytes(model)
    with pytest.raises(TypeError, match="a model, a state_dict or a path"):
        measure.file_bytes(3)


def test_latency_is_a_positive_median():
    layer = nn.Linear(8, 8).train()
    seconds = measure.latency(layer, torch.randn(4, 8), min_run_time=0.05)
    assert 0 < seconds < 0.1 and layer.training                     # timed in eval mode, then restored
    assert 0 < measure.latency(lambda x: x @ x.T, torch.randn(4, 8), min_run_time=0.05) < 0.1   # any function
    assert 0 < measure.latency(layer, torch.randn(4, 8), min_run_time=0.02, rounds=3) < 0.1


def test_latencies_interleave_the_models_and_take_the_median_of_the_rounds(monkeypatch):
    order, fake = [], iter([3.0, 30.0, 1.0, 10.0, 2.0, 20.0])

    def timed(model, x, min_run_time, threads):
        order.append(model)
        return next(fake)

    monkeypatch.setattr(measure, "_latency_once", timed)
    a, b = nn.Linear(2, 2), nn.Linear(2, 3)
    assert measure.latencies({"a": a, "b": b}, torch.randn(1, 2), rounds=3) == {"a": 2.0, "b": 20.0}
    assert order == [a, b, a, b, a, b]                           # round by round, not model by model
    fake = iter([3.0, 30.0, 1.0, 10.0, 2.0, 20.0])
    assert measure.latencies({"a": a, "b": b}, torch.randn(1, 2), rounds=3, best=True) == {"a": 1.0, "b": 10.0}
    with pytest.raises(ValueError, match="rounds=0"):
        measure.latency(a, torch.randn(1, 2), rounds=0)


def test_activation_bytes_counts_what_autograd_saves():
    x = torch.randn(16, 32)
    assert measure.activation_bytes(nn.Linear(32, 8), x) == x.nbytes          # linear saves its input
    net = nn.Sequential(nn.Linear(32, 8), nn.ReLU())
    assert measure.activation_bytes(net, x) == x.nbytes + 16 * 8 * 4          # + ReLU's output
    # doubling the batch doubles the activations (BatchNorm's per-channel statistics excepted)
    big = measure.activation_bytes(models.vgg_small(), torch.randn(8, 1, 28, 28))
    small = measure.activation_bytes(models.vgg_small(), torch.randn(4, 1, 28, 28))
    assert 1.99 * small < big < 2 * small


def test_peak_cuda_bytes():
    if torch.cuda.is_available():
        assert measure.peak_cuda_bytes(lambda: torch.zeros(1 << 20, device="cuda")) >= 4 << 20
    else:
        with pytest.raises(RuntimeError, match="needs a CUDA device"):
            measure.peak_cuda_bytes(lambda: None)


def test_human_bytes():
    assert measure.human_bytes(512) == "512 B"
    assert measure.human_bytes(1536) == "1.5 KiB"
    assert measure.human_bytes(3 * 1024 ** 2) == "3.0 MiB"
