"""Chapter 12: distillation, ONNX export, ONNX Runtime, real int8, the honest latency table, checkers."""

import functools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import checks, deploy, measure, models, prune, train

pytest.importorskip("onnxruntime")


def tiny_cnn(seed=0, classes=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes)).eval()


def batches(n=4, batch=8, seed=0, classes=4):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 1, 12, 12, generator=g), torch.randint(0, classes, (batch,), generator=g))
            for _ in range(n)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    model = tiny_cnn()
    path = deploy.export_onnx(model, folder / "tiny.onnx", (1, 12, 12))
    g = torch.Generator().manual_seed(1)
    calib = torch.randn(32, 1, 12, 12, generator=g)
    qpath = deploy.quantize_int8(path, folder / "tiny.int8.onnx", calib)
    return model, path, qpath, folder


# --------------------------------------------------------------------------- distillation

def kd_brute_force(s, t, y, T, alpha):
    total = 0.0
    for i in range(len(s)):
        p_t = np.exp(t[i].double().numpy() / T)
        p_t /= p_t.sum()
        p_s = np.exp(s[i].double().numpy() / T)
        p_s /= p_s.sum()
        q = np.exp(s[i].double().numpy())
        q /= q.sum()
        total += alpha * T * T * float((p_t * np.log(p_t / p_s)).sum()) + (1 - alpha) * -float(np.log(q[y[i]]))
    return total / len(s)


def test_soft_targets_is_softmax_at_temperature():
    z = torch.tensor([[2.0, 1.0, -1.0]])
    assert torch.allclose(deploy.soft_targets(z, 1.0), torch.softmax(z, 1))
    assert torch.allclose(deploy.soft_targets(z, 3.0), torch.softmax(z / 3, 1))
    ent = lambda p: -(p * p.log()).sum()
    assert ent(deploy.soft_targets(z, 8.0)) > ent(deploy.soft_targets(z, 1.0))     # higher T, softer
    with pytest.raises(ValueError, match="T="):
        deploy.soft_targets(z, 0.0)
    with pytest.raises(TypeError):
        deploy.soft_targets([1.0, 2.0], 1.0)


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 1.0), (2.0, 0.0)])
def test_distillation_loss_matches_brute_force(T, alpha):
    g = torch.Generator().manual_seed(0)
    s, t = 2 * torch.randn(6, 5, generator=g), 2 * torch.randn(6, 5, generator=g)
    y = torch.randint(0, 5, (6,), generator=g)
    got = deploy.distillation_loss(s, t, y, T, alpha)
    assert got.item() == pytest.approx(kd_brute_force(s, t, y, T, alpha), rel=1e-5, abs=1e-6)


def test_the_t_squared_factor_keeps_the_soft_gradient_scale():
    """Hinton et al.: the soft term's gradients scale as 1/T²; times T² they stay the same size."""
    g = torch.Generator().manual_seed(3)
    s0, t = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    norms = {}
    for T in (10.0, 20.0):
        s = s0.clone().requires_grad_(True)
        deploy.distillation_loss(s, t, None, T).backward()
        norms[T] = s.grad.norm().item()
    assert norms[10.0] / norms[20.0] == pytest.approx(1.0, abs=0.05)
    s = s0.clone().requires_grad_(True)
    (deploy.distillation_loss(s, t, None, 20.0) / 400).backward()      # without T²: 4x smaller at 2x the T
    assert norms[10.0] / s.grad.norm().item() > 3.5


def test_distillation_loss_rejects_bad_input():
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        deploy.distillation_loss(s, torch.randn(4, 5))
    with pytest.raises(ValueError, match="alpha"):
        deploy.distillation_loss(s, t, torch.zeros(4, dtype=torch.long), alpha=1.5)
    with pytest.raises(ValueError, match="labels"):
        deploy.distillation_loss(s, t, torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="student_logits"):
        deploy.distillation_loss("x", t)


def test_distiller_returns_both_in_training_and_keeps_the_teacher_frozen():
    student, teacher = tiny_cnn(1), tiny_cnn(2)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    net = deploy.Distiller(student, teacher).train()
    x = torch.randn(3, 1, 12, 12)
    out, target = net(x)
    assert out.requires_grad and not target.requires_grad
    assert torch.allclose(target, teacher.eval()(x), atol=1e-6)       # the teacher in eval mode
    assert not net.teacher.training
    net.eval()
    assert torch.equal(net(x), student(x))
    assert all(not p.requires_grad for p in net.teacher.parameters())
    assert all(p.requires_grad for p in teacher.parameters())          # the caller's teacher untouched
    history = deploy.distil(student, teacher, batches(), epochs=1, T=4.0, alpha=0.9, lr=0.05, progress=False)
    assert history.epoch and all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert not torch.equal(student[0].weight, tiny_cnn(1)[0].weight)  # the student itself trained


def test_distil_moves_the_student_towards_the_teacher():
    student, teacher = tiny_cnn(1), tiny_cnn(2)
    data = batches(n=8)
    gap = lambda: sum(deploy.distillation_loss(student(x), teacher(x), None, 2.0).item() for x, _ in data)
    with torch.no_grad():
        student.eval()
        before = gap()
    deploy.distil(student, teacher, data, epochs=3, T=2.0, alpha=1.0, lr=0.05, progress=False)
    with torch.no_grad():
        assert gap() < before


def test_distil_rejects_mismatched_classes_and_a_loss_fn():
    with pytest.raises(ValueError, match="outputs"):
        deploy.distil(tiny_cnn(1, classes=4), tiny_cnn(2, classes=3), batches(), progress=False)
    with pytest.raises(TypeError, match="loss_fn"):
        deploy.distil(tiny_cnn(1), tiny_cnn(2), batches(), loss_fn=F.cross_entropy)
    with pytest.raises(TypeError, match="Distiller"):
        deploy.distillation_criterion()(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))


# --------------------------------------------------------------------------- export and run

def test_onnx_runtime_equals_pytorch_within_tolerance(exported):
    model, path, _, _ = exported
    runtime = deploy.OnnxModel(path, threads=1)
    for batch in (1, 7):                                              # the batch dimension is dynamic
        x = torch.randn(batch, 1, 12, 12)
        assert torch.allclose(runtime(x), model(x), rtol=1e-4, atol=1e-5)
        check = deploy.compare_outputs(model, runtime, x)
        assert check.ok and check.same_class == 1.0 and check.max_abs < 1e-4
    assert runtime.file_bytes == path.stat().st_size


@pytest.mark.parametrize("build", ["lenet5", "pruned", "lowrank"])
def test_course_models_export_equal(build, tmp_path):
    from course_lib import lowrank

    torch.manual_seed(0)
    model = models.lenet5().eval()
    if build == "pruned":
        prune.magnitude_prune(model, 0.8)                  # masks (torch.nn.utils.prune) are folded on export
    if build == "lowrank":
        model = lowrank.compress_model(models.vgg_small(widths=(8, 16, 32)).eval(), 0.5, "channels").eval()
    runtime = deploy.OnnxModel(deploy.export_onnx(model, tmp_path / "m.onnx", (1, 28, 28)), threads=1)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(runtime(x), model(x), rtol=1e-4, atol=1e-5)


def test_bad_inputs_get_clear_errors(exported, tmp_path):
    model, path, _, _ = exported
    runtime = deploy.OnnxModel(path)
    with pytest.raises(ValueError, match="dimension 1 must be 1"):
        runtime(torch.randn(2, 3, 12, 12))
    with pytest.raises(ValueError, match="dimensions"):
        runtime(torch.randn(1, 12, 12))
    with pytest.raises(TypeError, match="floating-point"):
        runtime(torch.zeros(1, 1, 12, 12, dtype=torch.long))
    with pytest.raises(TypeError, match="tensor"):
        runtime([1.0])
    with pytest.raises(TypeError, match="nn.Module"):
        deploy.export_onnx("model", tmp_path / "x.onnx", (1, 12, 12))
    with pytest.raises(ValueError, match="input_size"):
        deploy.export_onnx(model, tmp_path / "x.onnx", (1, 12))
    with pytest.raises(ValueError, match="does not fit"):
        deploy.export_onnx(model, tmp_path / "x.onnx", (3, 12, 12))

    class Spectrum(nn.Module):
        def forward(self, x):
            return torch.fft.fft2(x).abs().flatten(1)

    with pytest.raises(ValueError, match="does not export"):
        deploy.export_onnx(Spectrum(), tmp_path / "x.onnx", (1, 4, 4))
    with pytest.raises(ValueError, match="provider"):
        deploy.OnnxModel(path, provider="tpu")
    with pytest.raises(FileNotFoundError):
        deploy.OnnxModel(tmp_path / "missing.onnx")


def test_onnx_evaluate_equals_train_evaluate(exported):
    model, path, _, _ = exported
    data = batches(n=3)
    runtime = deploy.OnnxModel(path)
    assert deploy.onnx_evaluate(runtime, data) == pytest.approx(train.evaluate(model, data))
    predicted, labels = deploy.onnx_predict(runtime, data)
    assert torch.equal(predicted, train.predict(model, data)[0])
    with pytest.raises(TypeError):
        deploy.onnx_predict(model, data)


# --------------------------------------------------------------------------- real int8

def test_static_int8_is_qdq_per_channel_and_close_to_float(exported):
    import onnx
    from onnx import numpy_helper

    model, path, qpath, _ = exported
    ops = deploy.op_counts(qpath)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0 and ops["Conv"] == 2
    raw = Counter_of(onnx.load(str(qpath)))
    assert ops == raw
    init = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(qpath)).graph.initializer}
    weights = {k[:-len("_quantized")]: v for k, v in init.items() if k.endswith("_quantized") and v.ndim == 4}
    assert sorted(v.shape[0] for v in weights.values()) == [6, 8]
    for name, w in weights.items():                                   # int8 codes, one scale per output channel
        assert w.dtype == np.int8 and init[f"{name}_scale"].shape == (w.shape[0],)
    x = torch.randn(16, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    fp, q = deploy.OnnxModel(path)(x), deploy.OnnxModel(qpath)(x)
    assert (q - fp).abs().max() < 0.1 * fp.abs().max()
    assert (q.argmax(1) == fp.argmax(1)).float().mean() >= 0.75


def Counter_of(proto):
    counts = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_quantize_int8_rejects_bad_settings(exported, tmp_path):
    _, path, _, _ = exported
    calib = torch.randn(4, 1, 12, 12)
    with pytest.raises(ValueError, match="activations"):
        deploy.quantize_int8(path, tmp_path / "q.onnx", calib, activations="int4")
    with pytest.raises(ValueError, match="method"):
        deploy.quantize_int8(path, tmp_path / "q.onnx", calib, method="kmeans")
    with pytest.raises(ValueError, match="no images"):
        deploy.quantize_int8(path, tmp_path / "q.onnx", [])
    with pytest.raises(ValueError, match="calibration"):
        deploy.quantize_int8(path, tmp_path / "q.onnx", torch.randn(4, 12, 12))
    with pytest.raises(TypeError, match="per_channel"):
        deploy.quantize_int8(path, tmp_path / "q.onnx", calib, per_channel=1)
    with pytest.raises(FileNotFoundError):
        deploy.quantize_int8(tmp_path / "none.onnx", tmp_path / "q.onnx", calib)


def test_layer_times_names_the_layers_and_the_kernels(exported):
    _, path, qpath, _ = exported
    x = torch.randn(1, 1, 12, 12)
    fp = deploy.layer_times(path, x, runs=3)
    q = deploy.layer_times(qpath, x, runs=3)
    # fp32: BatchNorm folded into the conv and the ReLU fused with it (the node keeps the ReLU's name);
    # int8: one QLinearConv per conv (the ReLU folded into the output's quantization range)
    assert {r.layer for r in fp if "Conv" in r.op} == {"2", "6"}
    assert {r.layer for r in q if r.op == "QLinearConv"} == {"0", "4"}
    assert all(r.seconds >= 0 for r in q)


def test_cpu_features_are_read_from_cpuinfo():
    text = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
    f = deploy.cpu_int8_features(text)
    assert f["avx512_vnni"] and f["avx2"] and not f["amx_int8"] and not f["avx_vnni"]
    assert "AVX512-VNNI" in deploy.int8_kernel_note(f)
    assert "AVX-VNNI" in deploy.int8_kernel_note(deploy.cpu_int8_features("flags: avx2 avx_vnni"))
    assert "without VNNI" in deploy.int8_kernel_note(deploy.cpu_int8_features("flags: avx2"))
    assert "dot-product" in deploy.int8_kernel_note(deploy.cpu_int8_features("Features: fp asimd asimddp"))
    assert deploy.cpu_int8_features("model name: x") == {}
    with pytest.raises(TypeError):
        deploy.cpu_int8_features(3)


def reference_qlinear(a, sa, za, b, sb, zb, sy, zy):
    acc = (a.numpy().astype(np.int64) - za) @ (b.numpy().astype(np.int64) - zb)
    scale = np.float32(sa) * np.float32(sb) / np.float32(sy)
    return np.clip(np.rint(acc.astype(np.float32) * scale) + zy, 0, 255).astype(np.uint8)


def test_qlinear_matmul_is_the_integer_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (5, 20), generator=g).to(torch.uint8)
    b = torch.randint(-127, 128, (20, 7), generator=g).to(torch.int8)
    got = deploy.qlinear_matmul_ort(a, 0.03, 120, b, 0.01, 0, 0.2, 128)
    assert got.dtype == torch.uint8
    assert np.array_equal(got.numpy(), reference_qlinear(a, 0.03, 120, b, 0.01, 0, 0.2, 128))
    with pytest.raises(ValueError, match="columns"):
        deploy.qlinear_matmul_ort(a, 0.03, 120, b[:3], 0.01, 0, 0.2, 128)
    with pytest.raises(TypeError, match="uint8"):
        deploy.qlinear_matmul_ort(a.to(torch.int8), 0.03, 0, b, 0.01, 0, 0.2, 128)


# --------------------------------------------------------------------------- the honest table, the explorer

def test_effective_macs_counts_only_nonzero_weights():
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 2))
    assert deploy.effective_macs(model, (1, 1, 10)) == measure.count_macs(model, (1, 1, 10)) == 72
    with torch.no_grad():
        model[1].weight[:, :5] = 0                                     # half of the first layer
    assert deploy.effective_macs(model, (1, 1, 10)) == 30 + 12
    prune.magnitude_prune(model, {"3": 0.5})
    assert deploy.effective_macs(model, (1, 1, 10)) == 30 + 6


def test_honest_row_measures_both_runtimes(tmp_path):
    base = models.vgg_small(widths=(8, 16, 32)).eval()
    thin = prune.prune_channels(base, 0.5).eval()
    x = torch.randn(4, 1, 28, 28)
    ratio = measure.count_macs(base, (1, 28, 28)) / measure.count_macs(thin, (1, 28, 28))
    row = deploy.honest_row("channels 50%", base, thin, x, cost_ratio=ratio, mechanism="m", folder=tmp_path,
                            min_run_time=0.01, rounds=2)
    assert row.cost_ratio == pytest.approx(ratio) and ratio > 3
    assert row.eager_ratio > 0 and row.ort_ratio > 0
    assert row.eager_verdict in ("holds", "does not hold", "within noise")
    assert row.eager_ratio == pytest.approx(row.eager_ms[0] / row.eager_ms[1])
    table = deploy.HonestTable([row])
    assert "channels 50%" in table.table() and "mechanism" in table.table()
    with pytest.raises(ValueError, match="cost"):
        deploy.honest_row("x", base, thin, x, cost_ratio=2.0, cost="flops")
    with pytest.raises(ValueError, match="cost_ratio"):
        deploy.honest_row("x", base, thin, x, cost_ratio=-1.0)


def test_draw_honest_draws_the_diagonal():
    import matplotlib.pyplot as plt

    rows = [deploy.HonestRow("a", "MACs", 4.0, 2.0, 3.0, "holds", "holds"),
            deploy.HonestRow("b", "bytes", 30.0, 1.0, 1.0, "within noise", "within noise")]
    fig = plt.figure()
    deploy.draw_honest(rows, fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and any(list(l.get_xdata()) == list(l.get_ydata()) for l in ax.lines)
    plt.close(fig)


def test_apply_stack_and_the_explorer(tmp_path):
    torch.manual_seed(0)
    model = models.vgg_small(widths=(8, 16, 32)).eval()
    x = torch.randn(2, 1, 28, 28)
    for stack in deploy.STACKS:
        net = deploy.apply_stack(model, stack)
        assert net is not model and net(x).shape == (2, 10)
    assert prune.sparsity(deploy.apply_stack(model, "unstructured 90%")) == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ValueError, match="stack"):
        deploy.apply_stack(model, "binary")
    data = [(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))]
    cell = deploy.measure_cell("vgg", model, "channels 50%", "int8", data, x, torch.randn(8, 1, 28, 28), tmp_path,
                               min_run_time=0.01)
    assert cell.file_bytes > 0 and cell.macs < measure.count_macs(model, (1, 28, 28)) / 3
    assert 0 <= cell.accuracy <= 1 and cell.eager_ms > 0 and cell.ort_ms > 0
    cells = {("vgg", "channels 50%", "int8"): cell}
    state = deploy.deploy_state(cells, "vgg", "channels 50%", "int8")
    assert state.cell is cell and "ONNX Runtime" in deploy.deploy_readout(state)
    with pytest.raises(ValueError, match="not measured"):
        deploy.deploy_state(cells, "vgg", "none", "fp32")
    calls = []
    live = lambda m, s, p: calls.append((m, s, p)) or deploy.Cell(m, s, p, 1, 1, 0.5, 1.0, 1.0)
    explorer = deploy.deploy_explorer(cells, "vgg", "channels 50%", "int8", live=live)
    assert explorer.error is None
    explorer.set(stack="none", precision="fp32")
    assert calls == [("vgg", "none", "fp32")] and ("vgg", "none", "fp32") in cells and explorer.error is None
    explorer.set(precision="int8")                                   # not measured, measured live
    assert explorer.error is None and len(calls) == 2
