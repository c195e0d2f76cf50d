"""Does the Wavelet-like Auto-Encoder make inference faster? (chapter 10)

Images per second of a VGG-style base network at full resolution against the WAE pipeline
(encoder at full resolution + the same base at half resolution + the high-frequency branch +
fusion layers), and against plain 2×2 average-pool downsampling, at batch 1 and batch 64, on the
CPU (and on the GPU when there is one), printed as ratios measured in one run. The models are
untrained: the cost does not depend on the weights.

    python benchmarks/wae_speed.py [--widths 24,48,96] [--size 28] [--channels 1] [--threads N]
"""

import argparse
import logging

import torch
from torch.utils import benchmark

from course_lib import measure, wae


def images_per_s(model, x, min_run_time):
    with torch.no_grad():
        model(x)
        t = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x},
                            num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=min_run_time)
    return len(x) / t.median


def table(device, widths, size, channels, min_run_time, rounds):
    kw = dict(num_classes=10, in_channels=channels, widths=widths)
    torch.manual_seed(0)
    nets = {name: wae.build(kind, **kw).to(device).eval()
            for name, kind in (("base, full resolution", "full"), ("WAE + base at half", "wae-classifier"),
                               ("avg-pool + base at half", "downsample"))}
    macs = {n: measure.count_macs(m, (channels, size, size)) for n, m in nets.items()}
    print(f"\n{device}: vgg_small{widths} on {channels}×{size}×{size}, threads={torch.get_num_threads()}")
    print(f"{'batch':>5} {'model':26s} {'MACs':>8} {'images/s':>10} {'speed-up':>9} {'MAC ratio':>9}")
    for batch in (1, 64):
        x = torch.randn(batch, channels, size, size, device=device)
        # interleaved rounds, best of each: fair when the machine is shared
        best = {n: 0.0 for n in nets}
        for _ in range(rounds):
            for n, m in nets.items():
                best[n] = max(best[n], images_per_s(m, x, min_run_time))
        ref = "base, full resolution"
        for n in nets:
            print(f"{batch:5d} {n:26s} {macs[n] / 1e6:7.2f}M {best[n]:10.0f} {best[n] / best[ref]:8.2f}× "
                  f"{macs[ref] / macs[n]:8.2f}×")


def main():
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)   # a CUDA_HOME notice on CPU
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--widths", default="24,48,96", help="vgg_small stage widths")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--min-run-time", type=float, default=0.3)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = tuple(int(w) for w in args.widths.split(","))
    table("cpu", widths, args.size, args.channels, args.min_run_time, args.rounds)
    if torch.cuda.is_available():
        table("cuda", widths, args.size, args.channels, args.min_run_time, args.rounds)


if __name__ == "__main__":
    main()
