"""DenseNet memory: naive vs memory-efficient (recomputed concat + BN), saved bytes and time in one run.

For one DenseNet-BC (CIFAR layout, k = 12) it measures, naive and efficient with the same weights:

- bytes autograd saves for the backward pass (``measure.activation_bytes``) and, on a GPU, the
  peak CUDA memory of forward + backward (``measure.peak_cuda_bytes``);
- seconds per forward + backward (median, the two implementations taking turns);

and prints both and the ratios, plus the saved bytes of a single dense block for L = 8 … 64 with
the fitted log–log slopes (≈ 2 naive, ≈ 1 efficient).

    python benchmarks/densenet_memory.py                          # DenseNet-BC-40, batch 16, CPU
    python benchmarks/densenet_memory.py --depth 100 --batch 64   # the paper's setting (GPU)

Published figures for DenseNet-BC-100 at batch 64: the paper's text (Pleiss et al. 2017) gives +15 %
time in LuaTorch and +20 % in PyTorch; the official PyTorch README's table (Pascal Titan X) gives
2.863 GB / 0.165 s naive vs 1.605 GB / 0.207 s efficient, i.e. 0.56× the memory for 1.25× the time.
No convolution is re-run: ``torch.utils.checkpoint`` (non-reentrant) stops replaying once the 1×1
conv's input is rebuilt, so the extra time is concat + BN + ReLU only.
"""

import argparse
import copy

import torch

from course_lib import config, densenet, measure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=40, help="DenseNet-BC depth, 6n + 4")
    parser.add_argument("--growth-rate", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="default: config.device()")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else config.device()
    if config.dry_run():
        args.depth, args.batch, args.repeats = 22, 2, 1

    torch.manual_seed(0)
    naive = densenet.densenet_cifar(args.depth, args.growth_rate, 10, 3).to(device)
    efficient = copy.deepcopy(naive).set_efficient(True)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    print(f"DenseNet-BC-{args.depth} (k = {args.growth_rate}, {measure.count_params(naive):,} parameters), "
          f"batch {args.batch} of 3×{args.size}×{args.size}, {device}")

    saved = {name: measure.activation_bytes(m.train(), x) for name, m in (("naive", naive), ("efficient", efficient))}
    peak = {}
    if device.type == "cuda":
        for name, m in (("naive", naive), ("efficient", efficient)):
            m.zero_grad(set_to_none=True)
            peak[name] = measure.peak_cuda_bytes(lambda: torch.nn.functional.cross_entropy(m(x), y).backward(), device)
    secs = densenet.step_seconds({"naive": naive, "efficient": efficient}, x, y, repeats=args.repeats)

    print(f"{'':>10} {'saved bytes':>12} {'peak CUDA':>12} {'s / fwd+bwd':>12}")
    for name in ("naive", "efficient"):
        p = measure.human_bytes(peak[name]) if peak else "-"
        print(f"{name:>10} {measure.human_bytes(saved[name]):>12} {p:>12} {secs[name]:>12.4f}")
    print(f"efficient / naive: saved bytes {saved['efficient'] / saved['naive']:.2f}×"
          + (f", peak memory {peak['efficient'] / peak['naive']:.2f}×" if peak else "")
          + f", time {secs['efficient'] / secs['naive']:.2f}× (README: 0.56× memory, 1.25× time; paper's text: "
          "1.15× LuaTorch, 1.20× PyTorch)")

    Ls = [8, 16, 32, 64]
    block = {eff: [densenet.block_saved_bytes(L, 24, 12, 4, eff, 1, 4, 4) for L in Ls] for eff in (False, True)}
    print("one block (k₀ = 24, k = 12), saved bytes for L = " + ", ".join(map(str, Ls)) + ":")
    for eff, name in ((False, "naive"), (True, "efficient")):
        print(f"  {name:>9}: {[measure.human_bytes(b) for b in block[eff]]}, slope {densenet.loglog_slope(Ls, block[eff]):.2f}")
    print(f"  naive / efficient at L = 64: {block[False][-1] / block[True][-1]:.1f}×")


if __name__ == "__main__":
    main()
