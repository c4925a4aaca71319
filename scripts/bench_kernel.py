"""Benchmark the kernel compiler: catalog compile times and the speed-up over Monte Carlo.

    python scripts/bench_kernel.py [--sizes 64 128] [--repeats 5] [--mc-samples 40] [--threads 1]

Prints JSON.  ``size`` S gives a (2S−1)×(2S−1) table: S = 64 covers the offsets of a 64×64
image (a 127×127 table), S = 128 those of a 128×128 image (255×255).  Results are recorded in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time

import torch

from gpdip import compile_kernel
from gpdip.arch.catalog import catalog_names
from gpdip.errors import GpdipError
from gpdip.finite.montecarlo import estimate_kernel, relative_error


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, lazy imports)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compile_times(sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for name in catalog_names():
        for size in sizes:
            row: dict = {"arch": name, "size": size, "table": f"{2 * size - 1}x{2 * size - 1}"}
            try:
                row["seconds"] = round(best_time(lambda n=name, s=size: compile_kernel(n, s),
                                                 repeats), 5)
            except GpdipError as exc:
                row["error"] = str(exc).split(";")[0]
            rows.append(row)
            print(json.dumps(row), flush=True, file=__import__("sys").stderr)
    return rows


def monte_carlo_speedup(name: str, size: int, width: int, samples: int, target: float) -> dict:
    """Time for Monte Carlo to reach relative error ``target`` vs the compile time.

    The relative standard error falls as 1/√n, so the samples needed for ``target``
    are extrapolated from a run of ``samples``: n·(se_rel/target)².
    """
    exact = compile_kernel(name, size)
    start = time.perf_counter()
    est = estimate_kernel(name, size, width=width, samples=samples, seed=0)
    mc_seconds = time.perf_counter() - start
    se_rel = float(torch.linalg.norm(est.stderr) / torch.linalg.norm(exact))
    needed = samples * (se_rel / target) ** 2
    compile_seconds = best_time(lambda: compile_kernel(name, size), 5)
    return {"arch": name, "size": size, "width": width, "samples": samples,
            "mc_seconds": round(mc_seconds, 3), "mc_rel_error": round(relative_error(
                est.mean, exact, size - 1), 4), "mc_rel_stderr": round(se_rel, 4),
            "target_rel_error": target, "mc_samples_needed": round(needed),
            "mc_seconds_needed": round(mc_seconds / samples * needed, 1),
            "compile_seconds": round(compile_seconds, 5),
            "speedup": round(mc_seconds / samples * needed / compile_seconds)}


def machine() -> dict:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False).stdout.strip()
    except OSError:
        rev = ""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "processor": platform.processor() or
            platform.machine(), "git": rev}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mc-samples", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the tables are small, threads only add sync)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"machine": machine(), "compile": compile_times(args.sizes, args.repeats),
              "monte_carlo": [monte_carlo_speedup("unet2", 16, 256, args.mc_samples, 0.01),
                              monte_carlo_speedup("conv-d3-s2", 16, 256, args.mc_samples, 0.01)]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
