"""Do MobileNet's savings in mult-adds hold in seconds? Latency ratios across α and ρ, one run.

    python benchmarks/mobilenet_latency.py [--min-run-time 0.5] [--batch 1] [--threads 1]

Every row is measured in the same run against 1.0-MobileNet-224 (batch ``--batch``, ``--threads``
threads, CPU unless ``--device cuda``). The paper's cost model says the time ratio should follow the
MACs ratio (α² for the width, ρ² for the resolution); the last column says how much of the MACs
saving shows up in seconds (1.00 = all of it).
"""

import argparse

import torch

from course_lib import measure, smallnets as sn


def measure_row(alpha, size, batch, threads, device, min_run_time):
    torch.manual_seed(0)
    model = sn.mobilenet_v1(alpha).eval().to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    best = min(measure.latency(model, x, min_run_time=min_run_time / 3, threads=threads) for _ in range(3))
    return measure.count_macs(model, (3, size, size)), best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min-run-time", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    settings = [(1.0, 224), (0.75, 224), (0.5, 224), (0.25, 224), (1.0, 192), (1.0, 160), (1.0, 128)]
    rows = {s: measure_row(*s, args.batch, args.threads, args.device, args.min_run_time) for s in settings}
    base_macs, base_s = rows[(1.0, 224)]
    print(f"device={args.device} batch={args.batch} threads={args.threads} torch={torch.__version__}")
    print(f"{'model':<20}{'MACs':>9}{'ratio':>8}{'ms':>9}{'ratio':>8}{'saving kept':>13}")
    for (alpha, size), (macs, seconds) in rows.items():
        m, t = macs / base_macs, seconds / base_s
        kept = (1 - t) / (1 - m) if m < 1 else float("nan")
        print(f"{f'{alpha}-MobileNet-{size}':<20}{macs / 1e6:>8.0f}M{m:>8.3f}{1e3 * seconds:>9.2f}{t:>8.3f}{kept:>13.2f}")


if __name__ == "__main__":
    main()
