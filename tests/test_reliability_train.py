"""The reliability catalogue of training, resuming, loading weights and the command line (issue 27, classes 1-4).

One line a case: the call, the exception type, a fragment of the message. Every rejected call must
leave the model as it was. (The other modules' catalogue is ``tests/test_reliability.py``.)
"""

import math

import pytest
import torch
import torch.nn as nn

from course_lib import __main__ as cli
from course_lib import checkpoints, grading, models, recipes, train
from course_lib.checkpoints import CheckpointError
from course_lib.data import DeviceLoader


def tiny_net(outputs=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, outputs))


def loader(n=64, classes=2, batch=16, labels=None):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g) if labels is None else labels
    return DeviceLoader(images, labels, batch, shuffle=True, device="cpu", drop_last=True)


def batches(labels):
    return [(torch.randn(len(labels), 1, 8, 8), torch.tensor(labels))]


def state_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


FIT_CASES = [
    # (keywords of fit, exception, message fragment)
    (dict(epochs=0), ValueError, "epochs=0 must be >= 1"),
    (dict(epochs=1.5), TypeError, "epochs=1.5 must be an int"),
    (dict(epochs=True), TypeError, "epochs=True must be an int"),
    (dict(evals_per_epoch=0), ValueError, "evals_per_epoch=0 must be >= 1"),
    (dict(seed=-1), ValueError, "seed=-1 must be >= 0"),
    (dict(lr=float("nan")), ValueError, "lr=nan must be a learning rate"),
    (dict(lr=float("inf")), ValueError, "lr=inf must be a learning rate"),
    (dict(lr=-1.0), ValueError, "lr=-1.0 must be a learning rate in (0, inf)"),
    (dict(lr=0.0), ValueError, "lr=0.0 must be a learning rate"),
    (dict(lr="0.1"), TypeError, "lr='0.1' must be a number"),
    (dict(weight_decay=-1e-4), ValueError, "weight_decay=-0.0001 must be in [0, inf)"),
    (dict(weight_decay=float("nan")), ValueError, "weight_decay=nan"),
    (dict(momentum=1.0), ValueError, "momentum=1.0 must be a fraction"),
    (dict(momentum=-0.1), ValueError, "momentum=-0.1 must be a fraction"),
    (dict(label_smoothing=1.0), ValueError, "label_smoothing=1.0 must be a fraction"),
    (dict(label_smoothing=float("nan")), ValueError, "label_smoothing=nan"),
    (dict(ema=0.0), ValueError, "ema=0.0 must be a decay in (0, 1)"),
    (dict(ema=1.0), ValueError, "ema=1.0 must be a fraction"),
    (dict(ema=float("nan")), ValueError, "ema=nan must be a fraction"),
    (dict(ema="0.99"), TypeError, "ema='0.99' must be a fraction"),
    (dict(max_grad_norm=-1.0), ValueError, "max_grad_norm=-1.0 must be a gradient norm in (0, inf)"),
    (dict(max_grad_norm=0.0), ValueError, "max_grad_norm=0.0 must be a gradient norm"),
    (dict(max_grad_norm=float("nan")), ValueError, "max_grad_norm=nan"),
    (dict(optimizer="adam"), ValueError, "optimizer='adam' is unknown"),
    (dict(schedule="step"), ValueError, "schedule='step' is unknown"),
    (dict(amp="int8"), ValueError, "amp='int8' is unknown"),
]


@pytest.mark.parametrize("kwargs,error,fragment", FIT_CASES, ids=[str(c[0]) for c in FIT_CASES])
def test_fit_rejects_a_bad_setting_before_changing_the_model(kwargs, error, fragment):
    model = tiny_net()
    before = state_of(model)
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        train.fit(model, loader(), **{"epochs": 1, **kwargs}, progress=False, device="cpu")
    assert same(before, state_of(model))


DATA_CASES = [
    # (train data, exception, message fragment)
    ([], ValueError, "train_data has no batches"),
    ((b for b in batches([0, 1])), TypeError, "train_data must know its length"),
    (loader(labels=torch.tensor([0, 1, 2, 1] * 16)), ValueError, "label 2 of train_data is not a class"),
    (loader(labels=torch.tensor([0, -1, 1, 1] * 16)), ValueError, "label -1 of train_data is not a class"),
    (batches([0, 1, 7]), ValueError, "label 7 of train_data is not a class of this model: it has 2 outputs"),
]


@pytest.mark.parametrize("data,error,fragment", DATA_CASES, ids=["empty", "generator", "label-2", "label--1", "list"])
def test_fit_rejects_data_it_cannot_train_on(data, error, fragment):
    model = tiny_net()
    before = state_of(model)
    with pytest.raises(error, match=fragment):
        train.fit(model, data, epochs=1, progress=False, device="cpu")
    assert same(before, state_of(model))


def test_a_valid_max_grad_norm_still_clips():
    """SGD moves a weight by at most lr x (clipped gradient) a step: a tiny norm keeps the model still."""
    moved = {}
    for norm in (None, 1e-6):
        model = tiny_net()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        history = train.fit(model, loader(), epochs=1, max_grad_norm=norm, weight_decay=0.0, progress=False,
                            device="cpu")
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        moved[norm] = float((after - before).norm())
        assert all(math.isfinite(loss) for loss in history.train_loss)
    assert moved[None] > 1e-2 and moved[1e-6] < 1e-4, moved


# --------------------------------------------------------------------------- resuming another run

def finished_run(path, **kwargs):
    train.fit(tiny_net(), loader(), **{"epochs": 2, **kwargs}, progress=False, device="cpu", checkpoint=path)


RESUME_CASES = [
    # (settings of the finished run, settings of the new call, message fragment)
    (dict(lr=0.05), dict(lr=0.5), "lr=0.05 in the checkpoint, 0.5 now"),
    (dict(epochs=2), dict(epochs=1), "epochs=2 in the checkpoint, 1 now"),
    (dict(optimizer="sgd"), dict(optimizer="adamw"), "optimizer='sgd' in the checkpoint, 'adamw' now"),
    (dict(seed=0), dict(seed=1), "seed=0 in the checkpoint, 1 now"),
    (dict(schedule="onecycle"), dict(schedule="cosine"), "schedule='onecycle' in the checkpoint"),
    (dict(ema=None), dict(ema=0.9), "ema=None in the checkpoint, 0.9 now"),
    (dict(label_smoothing=0.0), dict(label_smoothing=0.1), "label_smoothing=0.0 in the checkpoint"),
]


@pytest.mark.parametrize("old,new,fragment", RESUME_CASES, ids=[c[2].split("=")[0] for c in RESUME_CASES])
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, old, new, fragment):
    finished_run(tmp_path / "run.pt", **old)
    model = tiny_net()
    before = state_of(model)
    with pytest.raises(CheckpointError, match=f"holds another training run .*{fragment}"):
        train.fit(model, loader(), **{"epochs": 2, **new}, progress=False, device="cpu", checkpoint=tmp_path / "run.pt")
    assert same(before, state_of(model))


def test_resume_refuses_another_architecture_and_names_what_differs(tmp_path):
    finished_run(tmp_path / "run.pt")
    with pytest.raises(CheckpointError, match=r"another architecture.*4\.weight is \(2, 256\) there, \(3, 256\)"):
        train.fit(tiny_net(3), loader(), epochs=2, progress=False, device="cpu", checkpoint=tmp_path / "run.pt")


def test_a_checkpoint_of_an_older_version_without_a_run_record_is_still_checked(tmp_path):
    finished_run(tmp_path / "run.pt", epochs=1)
    state = checkpoints.load_training_checkpoint(tmp_path / "run.pt")
    del state["run"]
    checkpoints.save_atomically(state, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="state of another optimizer"):
        train.fit(tiny_net(), loader(), epochs=2, optimizer="adamw", progress=False, device="cpu",
                  checkpoint=tmp_path / "old.pt")
    history = train.fit(tiny_net(), loader(), epochs=2, progress=False, device="cpu", checkpoint=tmp_path / "old.pt")
    assert history.epoch == [1, 2]                     # the same settings continue it


# --------------------------------------------------------------------------- weights of another architecture

def test_load_state_names_missing_unexpected_and_mismatched_entries():
    model = tiny_net()
    before = state_of(model)
    state = tiny_net(3).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["0.bias"]
    with pytest.raises(CheckpointError, match=r"file\.pt holds weights of another architecture than this Sequential: "
                                              r"missing 0\.bias; unexpected extra\.weight; 4\.weight is \(3, 256\) there, \(2, 256\) in the model"):
        checkpoints.load_state(model, state, "file.pt")
    assert same(before, state_of(model))
    not_a_tensor = {**tiny_net().state_dict(), "0.bias": "oops"}
    with pytest.raises(CheckpointError, match=r"0\.bias is None there, \(4,\) in the model"):
        checkpoints.load_state(model, not_a_tensor, "file.pt")
    assert checkpoints.load_state(tiny_net(), tiny_net().state_dict(), "same") is not None


def test_load_checkpoint_of_a_shipped_model_into_the_wrong_network():
    with pytest.raises(CheckpointError, match="shipped checkpoint 'lenet5-fmnist' holds weights of another"):
        checkpoints.load_checkpoint("lenet5-fmnist", models.lenet_300_100())


def test_trained_model_cache_of_another_architecture(tmp_path):
    checkpoints.save_atomically({"model": models.lenet5().state_dict(), "test_accuracy": 0.5},
                                tmp_path / "vgg-small-cifar10.pt")
    with pytest.raises(CheckpointError, match="the cache .*vgg-small-cifar10.pt holds weights of another"):
        recipes.trained_model("vgg-small-cifar10", [], [], tmp_path)


# --------------------------------------------------------------------------- the command line

CLI_CASES = [
    # (arguments, message fragment on stderr)
    (["train", "--recipe", "tiny-fmnist", "--epochs", "0"], "argument --epochs: 0 must be >= 1"),
    (["train", "--recipe", "tiny-fmnist", "--epochs", "-2"], "argument --epochs: -2 must be >= 1"),
    (["train", "--recipe", "tiny-fmnist", "--epochs", "two"], "argument --epochs: 'two' is not a whole number"),
    (["train", "--recipe", "tiny-fmnist", "--subset", "0"], "argument --subset: 0 must be >= 1"),
    (["train", "--recipe", "tiny-fmnist", "--subset", "-5"], "argument --subset: -5 must be >= 1"),
    (["train", "--recipe", "tiny-fmnist", "--seed", "x"], "argument --seed: invalid int value"),
    (["grade", "x.ipynb", "--timeout", "0"], "argument --timeout: 0 must be >= 1"),
]


@pytest.mark.parametrize("argv,fragment", CLI_CASES, ids=[" ".join(c[0][2:]) or c[0][0] for c in CLI_CASES])
def test_the_command_line_names_the_option_it_refuses(argv, fragment, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert fragment in capsys.readouterr().err


def test_positive_int_is_the_rule_of_both_commands():
    assert grading.positive_int("3") == 3
    assert cli.positive_int is grading.positive_int


def test_the_command_line_refuses_to_resume_another_run(tmp_path, fashion_ready, capsys):
    ck = str(tmp_path / "run.pt")
    assert cli.main(["train", "--recipe", "tiny-fmnist", "--epochs", "1", "--checkpoint", ck, "--no-progress"]) == 0
    assert cli.main(["train", "--recipe", "tiny-fmnist", "--epochs", "2", "--checkpoint", ck, "--no-progress"]) == 2
    assert "holds another training run (epochs=1 in the checkpoint, 2 now)" in capsys.readouterr().err
    assert cli.main(["train", "--recipe", "tiny-fmnist", "--seed", "-1", "--no-progress"]) == 2
    assert "seed=-1 must be" in capsys.readouterr().err


def test_a_missing_checkpoints_folder_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no shipped checkpoints in .*manifest.json is missing"):
        checkpoints.manifest_entry("lenet5-fmnist", tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no shipped checkpoint named 'alexnet'; available: .*'lenet5-fmnist'"):
        checkpoints.manifest_entry("alexnet")


def test_the_wae_experiment_cache_of_another_architecture_is_refused(tmp_path):
    from course_lib import wae

    batch = [(torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))]
    small, wide = models.vgg_small(widths=(4, 8, 16)), models.vgg_small(widths=(8, 8, 16))
    out = wae.variants(wide, 1)
    checkpoints.save_atomically({"model": {"waes": {str(lam): m.state_dict() for lam, m in out["waes"].items()},
                                           **{name: out[name].state_dict() for name in wae.VARIANTS}}},
                                tmp_path / "cache.pt")
    with pytest.raises(CheckpointError, match=r"the cache .*cache.pt \(downsample\) holds weights of another"):
        wae.experiment(small, batch, batch, cache=tmp_path / "cache.pt")
    checkpoints.save_atomically({"model": {"waes": {}}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is of another experiment: it has no weights for 0.0, 0.1, 1.0, "
                                              "downsample"):
        wae.experiment(small, batch, batch, cache=tmp_path / "other.pt")
