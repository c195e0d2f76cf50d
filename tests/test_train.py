import pickle

import pytest
import torch
import torch.nn as nn

from course_lib import checkpoints, train
from course_lib.checkpoints import CheckpointError
from course_lib.data import DeviceLoader


def blobs(n=256, seed=0):
    """Two classes of 8x8 images: bright top half vs bright bottom half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 90, (n, 1, 8, 8), generator=g)
    rows = torch.arange(8).view(1, 8, 1)
    top = (rows < 4).expand(n, 8, 8)
    bright = torch.where(labels.view(n, 1, 1) == 0, top, ~top)
    images[:, 0][bright] += 160
    return images.to(torch.uint8), labels


def tiny_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 2))


def make_data(seed=0):
    images, labels = blobs()
    train_data = DeviceLoader(images[:192], labels[:192], 32, shuffle=True, augment=True, pad=1, flip=True,
                              mean=[0.5], std=[0.3], device="cpu", seed=seed, drop_last=True)
    test_data = DeviceLoader(images[192:], labels[192:], 64, mean=[0.5], std=[0.3], device="cpu")
    return train_data, test_data


def test_lr_factor_shapes():
    assert train.lr_factor(0, 100, "onecycle") == pytest.approx(0.04)
    assert train.lr_factor(25, 100, "onecycle") == pytest.approx(1.0)
    assert train.lr_factor(100, 100, "onecycle") == pytest.approx(0.0, abs=1e-12)
    assert train.lr_factor(50, 100, "cosine") == pytest.approx(0.5)
    assert train.lr_factor(70, 100, "constant") == 1.0
    with pytest.raises(ValueError, match="schedule='step' is unknown"):
        train.lr_factor(0, 10, "step")


def test_optimizer_skips_weight_decay_on_bn_and_bias():
    model = tiny_cnn()
    opt = train.make_optimizer(model, "sgd", weight_decay=0.1)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.ndim > 1 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 4     # conv bias, BN w/b, fc bias
    assert opt.defaults["nesterov"]
    assert isinstance(train.make_optimizer(model, "adamw"), torch.optim.AdamW)
    with pytest.raises(ValueError, match="optimizer='adam' is unknown"):
        train.make_optimizer(model, "adam")


def test_fit_learns_and_records_history():
    train_data, test_data = make_data()
    history = train.fit(tiny_cnn(), train_data, test_data, epochs=3, lr=0.05, progress=False, device="cpu")
    assert history.epoch == [1, 2, 3]
    assert history.final_test_acc > 0.9
    assert len(history.images_per_s) == 3 and all(s > 0 for s in history.images_per_s)
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(history.plot().axes) == 2


def test_evaluate_matches_a_manual_count():
    _, test_data = make_data()
    model = tiny_cnn().eval()
    correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in test_data)
    assert train.evaluate(model, test_data) == correct / 64


def test_predict_returns_every_prediction_and_label_in_order():
    _, test_data = make_data()
    model = tiny_cnn().eval()
    predicted, labels = train.predict(model, test_data)
    assert torch.equal(predicted, torch.cat([model(x).argmax(1) for x, _ in test_data]))
    assert torch.equal(labels, test_data.labels)
    assert train.evaluate(model, test_data) == (predicted == labels).float().mean().item()
    with pytest.raises(ValueError, match="evaluate got no examples"):
        train.evaluate(model, [])


def test_flip_tta_sums_the_logits_of_each_image_and_its_mirror():
    _, test_data = make_data()
    model = tiny_cnn().eval()
    correct = sum(int(((model(x) + model(x.flip(3))).argmax(1) == y).sum()) for x, y in test_data)
    assert train.evaluate(model, test_data, tta=True) == correct / 64
    mirrored = [(x.flip(3), y) for x, y in test_data]               # TTA cannot tell an image from its mirror
    assert train.evaluate(model, mirrored, tta=True) == correct / 64


def test_evaluate_a_channels_last_model_gives_the_same_accuracy():
    _, test_data = make_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 2)).eval()
    expected = train.evaluate(model, test_data)
    assert not train._is_channels_last(model)
    model.to(memory_format=torch.channels_last)       # a 1-channel conv reads the same either way: the 2nd tells
    assert train._is_channels_last(model)
    assert train.evaluate(model, test_data) == expected


def test_ema_is_the_exponential_average_of_the_weights_after_every_step():
    """A brute-force reference: copy the weights (and BatchNorm statistics) after every step and average them."""
    train_data, test_data = make_data()
    decay, seen = 0.8, []
    model = tiny_cnn()
    history = train.fit(model, train_data, test_data, epochs=2, ema=decay, progress=False, device="cpu",
                        after_step=lambda m: seen.append({k: v.clone() for k, v in m.state_dict().items()}))
    average = tiny_cnn().state_dict()                   # the average starts from the initial weights
    for state in seen:
        average = {k: decay * average[k] + (1 - decay) * v if v.is_floating_point() else v
                   for k, v in state.items()}
    for name, value in model.state_dict().items():        # fit leaves the average in the model
        if value.is_floating_point():
            assert torch.allclose(value, average[name], atol=1e-6), name
    assert not torch.allclose(model[0].weight, seen[-1]["0.weight"])
    assert history.final_test_acc == train.evaluate(model, test_data)     # the average is what was tested


def test_the_test_curve_has_evals_per_epoch_points_and_excludes_test_time():
    train_data, test_data = make_data()                     # 6 steps an epoch
    tested_after = []

    class CountingTest:
        def __iter__(self):
            tested_after.append(len(steps))
            return iter(test_data)

    steps = []
    history = train.fit(tiny_cnn(), train_data, CountingTest(), epochs=2, evals_per_epoch=3, progress=False,
                        device="cpu", after_step=lambda m: steps.append(1))
    assert history.curve_epoch == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert tested_after == [2, 4, 6, 8, 10, 12]
    assert history.curve_test_acc[2::3] == history.test_acc
    assert history.curve_seconds == sorted(history.curve_seconds)
    assert history.curve_seconds[-1] == pytest.approx(sum(history.seconds))
    assert history.seconds_to(0.0) == history.curve_seconds[0] and history.seconds_to(1.01) is None


def test_hooks_and_custom_loss_are_used():
    train_data, _ = make_data()
    calls, losses = [], []

    def loss_fn(out, y):
        loss = nn.functional.cross_entropy(out, y)
        losses.append(loss.item())
        return loss

    train.fit(tiny_cnn(), train_data, None, epochs=2, after_step=lambda m: calls.append(1), loss_fn=loss_fn,
              progress=False, device="cpu")
    assert len(calls) == len(losses) == 2 * len(train_data)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_after_a_real_interruption_ends_with_identical_weights(tmp_path, ema):
    train_data, test_data = make_data()
    reference = tiny_cnn()
    train.fit(reference, train_data, test_data, epochs=4, progress=False, device="cpu",
              checkpoint=tmp_path / "straight.pt", ema=ema)

    steps = {"n": 0}

    def crash_in_epoch_3(model):
        steps["n"] += 1
        if steps["n"] == 2 * len(train_data) + 3:
            raise Interrupt("power cut")

    interrupted = tiny_cnn()
    with pytest.raises(Interrupt):
        train.fit(interrupted, *make_data(), epochs=4, progress=False, device="cpu",
                  checkpoint=tmp_path / "run.pt", after_step=crash_in_epoch_3, ema=ema)
    assert checkpoints.load_training_checkpoint(tmp_path / "run.pt")["epoch"] == 2

    resumed = tiny_cnn()                       # a fresh process would start from scratch like this
    history = train.fit(resumed, *make_data(), epochs=4, progress=False, device="cpu", checkpoint=tmp_path / "run.pt",
                        ema=ema)
    assert history.epoch == [1, 2, 3, 4]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_files_are_atomic_and_validated(tmp_path):
    path = tmp_path / "ck.pt"
    checkpoints.save_atomically({"a": torch.ones(2)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        checkpoints.load_training_checkpoint(path)                       # foreign: a dict of other things
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        checkpoints.load_training_checkpoint(path)                       # corrupted
    path.write_bytes(pickle.dumps(object()))
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoints.load_training_checkpoint(path)                       # arbitrary pickle: refused


def test_fit_rejects_bad_arguments():
    train_data, _ = make_data()
    with pytest.raises(ValueError, match="epochs=0"):
        train.fit(tiny_cnn(), train_data, epochs=0, progress=False)
    with pytest.raises(ValueError, match="label_smoothing"):
        train.fit(tiny_cnn(), train_data, epochs=1, label_smoothing=1.5, progress=False)
    with pytest.raises(ValueError, match="amp='int8'"):
        train.fit(tiny_cnn(), train_data, epochs=1, amp="int8", progress=False, device="cpu")
    for bad, rule in ((0.0, "must be a decay in"), (1.0, "must be a fraction"), (float("nan"), "must be a fraction")):
        with pytest.raises(ValueError, match=f"ema={bad} {rule}"):
            train.fit(tiny_cnn(), train_data, epochs=1, ema=bad, progress=False, device="cpu")
    with pytest.raises(TypeError, match="ema='0.9' must be a fraction"):
        train.fit(tiny_cnn(), train_data, epochs=1, ema="0.9", progress=False, device="cpu")
    with pytest.raises(ValueError, match="evals_per_epoch=0"):
        train.fit(tiny_cnn(), train_data, epochs=1, evals_per_epoch=0, progress=False, device="cpu")


# --------------------------------------------------------------------------- the dry run (issue 19)

def test_dry_run_fit_trains_one_capped_epoch_and_records_the_real_work(monkeypatch, tmp_path):
    from course_lib import config

    monkeypatch.setenv("COURSE_DRY_RUN", "1")
    monkeypatch.setenv("COURSE_DRY_RUN_PLAN", str(tmp_path / "plan.jsonl"))
    train_data, test_data = make_data()
    train_data.planned_images = 50_000
    steps = []
    before = len(train.PLANNED)
    history = train.fit(tiny_cnn(), train_data, test_data, epochs=30, progress=False, device="cpu",
                        after_step=lambda m: steps.append(1), amp="off")
    assert history.epoch == [1] and len(steps) == config.DRY_RUN_STEPS < len(train_data)
    row = train.PLANNED[before]
    assert row["epochs"] == 30 and row["images_per_epoch"] == 50_000 and row["model"] == "Sequential"
    assert row["macs_per_image"] == 4 * 9 * 64 + 4 * 64 * 2                 # conv 3x3 1->4 on 8x8 + linear
    assert (tmp_path / "plan.jsonl").read_text().count("\n") == 1
    seen = []

    class Spy(nn.Linear):
        def forward(self, x):
            seen.append(len(x))
            return torch.zeros(len(x), 2)

    train.evaluate(Spy(1, 1), DeviceLoader(*blobs(320), 32, device="cpu"))
    assert len(seen) == config.DRY_RUN_EVAL_BATCHES


def test_autocast_modes_on_cpu():
    cpu = torch.device("cpu")
    assert train._autocast(cpu, "auto") is None and train._autocast(cpu, "bf16") is torch.bfloat16
    assert train._autocast(cpu, "fp16") is None and train._autocast(cpu, "off") is None


# --------------------------------------------------------------------------- GPU code paths, on the CPU

def _output_dtypes(model):
    dtypes = []
    model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    return dtypes


def test_bf16_autocast_on_cpu_trains_in_bf16_and_learns():
    train_data, test_data = make_data()
    model = tiny_cnn()
    dtypes = _output_dtypes(model)
    history = train.fit(model, train_data, test_data, epochs=3, lr=0.05, progress=False, device="cpu", amp="bf16")
    assert dtypes.count(torch.bfloat16) == 3 * len(train_data)              # every training forward pass
    assert dtypes.count(torch.float32) == 3 * len(test_data) + 1            # evaluate, label check: no autocast
    assert model[0].weight.dtype == torch.float32                            # master weights stay fp32
    assert history.final_test_acc > 0.9


def test_channels_last_on_cpu_matches_the_contiguous_run():
    runs = {}
    for channels_last in (False, True):
        train_data, test_data = make_data()
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 3, 1), nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
        history = train.fit(model, train_data, test_data, epochs=1, lr=0.05, progress=False, device="cpu",
                            channels_last=channels_last)
        runs[channels_last] = (model, history)
    nchw, nhwc = runs[False][0][1].weight, runs[True][0][1].weight      # 4x3x3x3: the layouts differ
    assert nchw.is_contiguous() and not nchw.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and not nhwc.is_contiguous()
    for a, b in zip(runs[False][0].parameters(), runs[True][0].parameters()):
        assert torch.allclose(a, b, atol=1e-4), "channels_last changed the arithmetic"
    assert runs[False][1].final_test_acc == runs[True][1].final_test_acc


def _compare_compiled(backend):
    models = []
    for compile in (False, backend):
        model = tiny_cnn()
        model[3] = nn.Identity()       # no dropout: compiled code draws its random numbers differently
        train.fit(model, make_data()[0], None, epochs=1, progress=False, device="cpu", compile=compile)
        models.append(model)
    for a, b in zip(*(m.parameters() for m in models)):
        assert torch.allclose(a, b, atol=1e-4)


def test_torch_compile_graph_capture_on_a_tiny_model():
    _compare_compiled("aot_eager")      # TorchDynamo + AOTAutograd, no code generation: fast, no compiler


def test_torch_compile_inductor_on_a_tiny_model():
    import os
    import shutil

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("torch.compile's inductor backend needs a C compiler (gcc) and none is installed")
    if os.environ.get("COURSE_TEST_INDUCTOR") != "1":
        pytest.skip("inductor's C++ code generation takes 30-80 s on a 2-core CPU, over the unit-test budget; "
                    "COURSE_TEST_INDUCTOR=1 runs it")
    _compare_compiled(True)


def test_peak_cuda_memory_of_a_training_step():
    if not torch.cuda.is_available():
        pytest.skip("peak_cuda_bytes measures CUDA memory: no CUDA device here (CPU CI); "
                    "tests/test_measure.py checks its CPU error message")
    from course_lib import measure

    train_data, _ = make_data()
    peak = measure.peak_cuda_bytes(lambda: train.fit(tiny_cnn(), train_data, None, epochs=1, progress=False,
                                                     device="cuda"))
    assert peak > 0


def test_torchrun_with_nccl():
    if torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available():
        pytest.skip("NCCL under torchrun needs at least two CUDA GPUs (one process per GPU); this machine has "
                    f"{torch.cuda.device_count()}. tests/test_cli.py runs the same code path with gloo on the CPU")
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "course_lib", "train", "--recipe", "tiny-fmnist", "--epochs", "1", "--no-progress"]
    env = {**__import__("os").environ, "COURSE_DEVICE": "cuda"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


def test_history_figures_equal_the_per_step_reference():
    """The epoch sums stay on the device now; the figures are those of reading every step."""
    steps = []

    def recording_loss(out, y):
        loss = nn.functional.cross_entropy(out, y)
        steps.append((loss.item() * len(y), (out.argmax(1) == y).sum().item(), len(y)))
        return loss

    train_data, test_data = make_data()
    history = train.fit(tiny_cnn(), train_data, test_data, epochs=2, loss_fn=recording_loss, progress=False,
                        device="cpu")
    per_epoch = len(train_data)
    for e in range(2):
        rows = steps[e * per_epoch:(e + 1) * per_epoch]
        seen = sum(n for _, _, n in rows)
        assert history.train_loss[e] == pytest.approx(sum(s for s, _, _ in rows) / seen, abs=1e-6)
        assert history.train_acc[e] == pytest.approx(sum(c for _, c, _ in rows) / seen, abs=1e-6)


class StrictSync:
    """Yields the batches of ``loader`` with CUDA's sync-debug mode "error" on while the step runs."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):              # images, labels...: fit checks the labels before the loop
        return getattr(self.loader, name)

    def __iter__(self):
        for batch in self.loader:             # fetched in the default mode
            torch.cuda.set_sync_debug_mode("error")
            try:
                yield batch                   # fit's step runs here
            finally:
                torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA's sync-debug mode needs a CUDA device (CPU CI)")
@pytest.mark.parametrize("ema", [None, 0.9])
def test_no_host_synchronisation_inside_the_step_loop(ema):
    images, labels = blobs()
    train_data = DeviceLoader(images, labels, 32, shuffle=True, mean=[0.5], std=[0.3], device="cuda", drop_last=True)
    history = train.fit(tiny_cnn(), StrictSync(train_data), epochs=2, progress=False, device="cuda", ema=ema)
    assert len(history.train_loss) == 2


def embedding_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(16, 8), nn.Flatten(), nn.Linear(8 * 64, 2))


def test_deterministic_runs_give_bit_equal_shared_weights():
    """Many lookups of few rows: the backward sums shared gradients (index_add), in order only if deterministic."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 16, (256, 64), generator=g), torch.randint(0, 2, (256,), generator=g)
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    runs = []
    for _ in range(2):
        model = embedding_net()
        train.fit(model, batches, epochs=2, progress=False, device="cpu", deterministic=True)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_deterministic_setting_is_restored_even_after_an_error():
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    seen = []

    def crash(model):
        seen.append(torch.are_deterministic_algorithms_enabled())
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        train.fit(tiny_cnn(), make_data()[0], epochs=1, progress=False, device="cpu", deterministic=True,
                  after_step=crash)
    assert seen == [True]
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) == before
    with train.deterministic_algorithms(False):
        assert torch.are_deterministic_algorithms_enabled() == before[0]
