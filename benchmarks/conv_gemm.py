"""How fast is convolution as im2col + GEMM? (chapter 01)

For a few conv layers, prints the achieved GFLOP/s (FLOPs = 2 × MACs) of

* the naive loop (``conv.naive_conv2d``, tiny input only: it is Python-bound),
* im2col + GEMM (``conv.conv2d_as_matmul``) and its two halves (im2col alone, the GEMM alone),
* PyTorch's own ``F.conv2d``,
* plain ``torch.mm`` on exactly the GEMM's matrix sizes, (C_out × C_in·k²) @ (C_in·k² × N·L):
  the peak that any im2col + GEMM implementation could reach on this machine,

and the fraction of that ``torch.mm`` peak that im2col + GEMM reaches. All timings in one run with
``course_lib.measure.latency`` (torch.utils.benchmark, median). Runs on CPU, and on CUDA when present.

    python benchmarks/conv_gemm.py [--threads N] [--min-run-time S]

Every figure here is measured in this run; none is asserted (the ratios depend on the machine).
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import conv, measure

LAYERS = [  # (name, batch, C_in, H=W, C_out, k)
    ("tiny 4→8, 8×8, k3", 1, 4, 8, 8, 3),
    ("32→64, 32×32, k3", 8, 32, 32, 64, 3),
    ("64→64, 16×16, k3", 16, 64, 16, 64, 3),
    ("128→128, 8×8, k3", 32, 128, 8, 128, 3),
    ("32→32, 28×28, k5", 8, 32, 28, 32, 5),
]


def bench_layer(name, batch, c_in, size, c_out, k, device, min_run_time, threads):
    x = torch.randn(batch, c_in, size, size, device=device)
    w = torch.randn(c_out, c_in, k, k, device=device)
    pad = k // 2
    cols = conv.im2col(x, k, padding=pad)                                   # (N, C·k², L)
    W = w.reshape(c_out, -1)
    cols_2d = cols.transpose(0, 1).reshape(c_in * k * k, -1).contiguous()  # (C·k², N·L) for one torch.mm
    flops = 2 * conv.conv_cost(c_in, c_out, k, size, padding=pad, batch=batch).macs
    paths = {
        "F.conv2d": (lambda t: F.conv2d(t, w, padding=pad), x),
        "im2col + GEMM": (lambda t: conv.conv2d_as_matmul(t, w, padding=pad), x),
        "  im2col alone": (lambda t: conv.im2col(t, k, padding=pad), x),
        "  GEMM alone": (lambda c: torch.matmul(W, c), cols),
        "torch.mm peak": (lambda c: torch.mm(W, c), cols_2d),
    }
    if device == "cpu" and batch * c_out * size * size <= 1024:
        paths["naive loop"] = (lambda t: conv.naive_conv2d(t, w, padding=pad), x)
    seconds = {p: measure.latency(m, inp, min_run_time=min_run_time, threads=threads if device == "cpu" else None)
               for p, (m, inp) in paths.items()}
    print(f"\n{name}  (N={batch}, GEMM {c_out}×{c_in * k * k} @ {c_in * k * k}×{cols.shape[-1] * batch}, "
          f"{flops / 1e6:.3g} MFLOP, im2col = {k * k}× the input)")
    col_bytes = cols.numel() * cols.element_size()
    for p, s in seconds.items():
        rate = (f"{col_bytes / s / 1e9:8.2f} GB/s written (no FLOPs)" if "im2col alone" in p
                else f"{flops / s / 1e9:8.2f} GFLOP/s")
        print(f"  {p:16s} {s * 1e3:10.3f} ms  {rate}")
    peak = seconds["torch.mm peak"]
    print(f"  → im2col + GEMM reaches {peak / seconds['im2col + GEMM']:.0%} of torch.mm's GFLOP/s on these sizes; "
          f"F.conv2d {peak / seconds['F.conv2d']:.0%}; im2col is "
          f"{seconds['  im2col alone'] / seconds['im2col + GEMM']:.0%} of the im2col + GEMM time")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared, busy machine several threads mostly "
                             "measure the scheduler; pass the core count on a quiet machine)")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per measurement")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    torch.manual_seed(0)
    for device in devices:
        label = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {args.threads} thread(s)"
        print(f"==== {device}: {label}, torch {torch.__version__}")
        for layer in LAYERS:
            if device == "cuda" and layer[0].startswith("tiny"):
                continue
            bench_layer(*layer, device=device, min_run_time=args.min_run_time, threads=args.threads)


if __name__ == "__main__":
    main()
