"""When is a sparse matrix product actually faster than the dense one? (chapter 04)

Measures ``torch.sparse.mm`` with a CSR weight (and COO) against a dense ``W @ X`` over weight
densities, on this machine, with ``torch.utils.benchmark``, and prints the ratios and the
break-even density (the largest density at which CSR still wins, interpolated in log-density).
On a CUDA GPU it also times 2:4 semi-structured sparsity (``to_sparse_semi_structured``), the
one sparse format with hardware support (Ampere and newer).

    python benchmarks/sparse_speed.py [--rows 2048] [--cols 2048] [--batch 64]
"""

import argparse
import math
import warnings

import torch
from torch.utils import benchmark

warnings.filterwarnings("ignore", message=".*[Ss]parse.*beta.*")
DENSITIES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def median_seconds(stmt, env, min_run_time):
    return benchmark.Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads()) \
        .blocked_autorange(min_run_time=min_run_time).median


def random_sparse(rows, cols, density, generator, device="cpu"):
    w = torch.randn(rows, cols, generator=generator)
    return (w * (torch.rand(rows, cols, generator=generator) < density)).to(device)


def break_even(densities, ratios):
    """Largest density with dense/sparse time ratio ≥ 1, interpolated between measured points."""
    pairs = list(zip(densities, ratios))
    if pairs[0][1] < 1:
        return None
    for (d0, r0), (d1, r1) in zip(pairs, pairs[1:]):
        if r0 >= 1 > r1:
            t = math.log(r0) / (math.log(r0) - math.log(r1))
            return math.exp(math.log(d0) + t * (math.log(d1) - math.log(d0)))
    return densities[-1]


def cpu_table(rows, cols, batch, min_run_time):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(cols, batch, generator=g)
    print(f"W: {rows}×{cols} float32, X: {cols}×{batch}, threads={torch.get_num_threads()}")
    print(f"{'density':>8} {'dense ms':>9} {'CSR ms':>8} {'COO ms':>8} {'dense/CSR':>10} {'dense/COO':>10}")
    ratios = []
    for d in DENSITIES:
        w = random_sparse(rows, cols, d, g)
        env = {"w": w, "x": x, "csr": w.to_sparse_csr(), "coo": w.to_sparse().coalesce(), "torch": torch}
        dense_t = median_seconds("w @ x", env, min_run_time)   # timed next to each sparse run: fair under load
        csr_t = median_seconds("torch.sparse.mm(csr, x)", env, min_run_time)
        coo_t = median_seconds("torch.sparse.mm(coo, x)", env, min_run_time)
        ratios.append(dense_t / csr_t)
        print(f"{d:8.3f} {1e3 * dense_t:9.3f} {1e3 * csr_t:8.3f} {1e3 * coo_t:8.3f} "
              f"{dense_t / csr_t:9.2f}× {dense_t / coo_t:9.2f}×")
    be = break_even(DENSITIES, ratios)
    if be is None:
        print("break-even: CSR is slower than dense at every measured density on this machine")
    else:
        print(f"break-even density (CSR as fast as dense): ≈ {100 * be:.1f}% non-zeros "
              f"(= {100 * (1 - be):.1f}% sparsity); below it CSR wins, above it dense wins")
    return be


def gpu_semi_structured(rows, cols, batch, min_run_time):
    """2:4 sparsity on a GPU: in every 4 consecutive weights 2 are zero (50% density)."""
    from torch.sparse import to_sparse_semi_structured

    w = torch.randn(rows, cols, dtype=torch.float16, device="cuda")
    w = w * torch.tensor([0, 0, 1, 1], dtype=w.dtype, device="cuda").tile(rows, cols // 4)
    x = torch.randn(cols, batch, dtype=torch.float16, device="cuda")
    env = {"w": w, "x": x, "ws": to_sparse_semi_structured(w)}
    dense_t = median_seconds("w @ x", env, min_run_time)
    sparse_t = median_seconds("ws @ x", env, min_run_time)
    print(f"GPU 2:4 semi-structured fp16 {rows}×{cols} @ {cols}×{batch}: dense {1e3 * dense_t:.3f} ms, "
          f"2:4 {1e3 * sparse_t:.3f} ms, speed-up {dense_t / sparse_t:.2f}×")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--cols", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--min-run-time", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu_table(args.rows, args.cols, args.batch, args.min_run_time)
    if torch.cuda.is_available():
        try:
            gpu_semi_structured(max(args.rows, 4096), max(args.cols, 4096), max(args.batch, 4096), args.min_run_time)
        except (RuntimeError, ImportError) as err:       # older GPU or build without the kernels
            print(f"GPU 2:4 semi-structured sparsity not available here: {err}")
    else:
        print("no CUDA GPU: 2:4 semi-structured sparsity (Ampere+ tensor cores) not measured")


if __name__ == "__main__":
    main()
