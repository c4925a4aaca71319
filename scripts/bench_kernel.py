"""Benchmark the kernel compiler: catalog compile times and the speed-up over Monte Carlo.

    python scripts/bench_kernel.py [--sizes 64 128] [--repeats 5] [--mc-samples 40] [--threads 1]
        [--dip-sizes 128 512 1024] [--dip-repeats 3] [--baseline REV] [--baseline-sizes 64 128]
        [--baseline-repeats 1] [--ntk-sizes 512] [--skip-catalog] [--skip-mc]

Prints JSON.  ``size`` S gives a (2S−1)×(2S−1) table: S = 64 covers the offsets of a 64×64
image (a 127×127 table), S = 128 those of a 128×128 image (255×255).  Results are recorded in
docs/benchmarks.md.

``dip``: the DIP's own 5-scale skip nets at full image sizes, each (net, size) in a fresh
process (median of ``--dip-repeats`` compiles after a warm-up, and the process's peak RSS).
With ``--baseline REV`` the same rows are run on the compiler of git revision REV (its
``gpdip`` package extracted by ``git archive`` into a temporary folder, limit raised) at
``--baseline-sizes``, with the time ratio and the max abs difference of the two kernels.
``--skip-catalog`` / ``--skip-mc`` leave the other sections out.

``compile`` rows give the best wall time and the median CPU seconds (one thread, after a
warm-up) of each catalog net; with ``--baseline REV``, the CPU seconds here and on REV side by
side (fresh processes, alternating).  ``ntk_ratio``: the DIP nets' NTK and NNGP compile times at
``--ntk-sizes`` (default 512), in a fresh one-thread process per net and size, the two kinds
alternating, imports excluded, with the ratio of the median CPU seconds (issue 9 asks for at
most 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gpdip import compile_kernel
from gpdip.arch.catalog import catalog_names
from gpdip.errors import GpdipError
from gpdip.finite.montecarlo import estimate_kernel, relative_error


def best_time(fn, repeats: int) -> float:
    return timings(fn, repeats)[0]


def timings(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, median CPU seconds) of ``repeats`` calls after a warm-up.

    CPU seconds (``time.process_time``, one torch thread) are far less sensitive than
    wall time to other jobs on the cores.
    """
    fn()  # warm-up (allocator, lazy imports)
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return min(times), statistics.median(cpu_times)


def compile_times(sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for name in catalog_names():
        for size in sizes:
            row: dict = {"arch": name, "size": size, "table": f"{2 * size - 1}x{2 * size - 1}"}
            try:
                wall, cpu = timings(lambda n=name, s=size: compile_kernel(n, s), repeats)
                row["seconds"], row["cpu_seconds"] = round(wall, 5), round(cpu, 5)
            except GpdipError as exc:
                row["error"] = str(exc).split(";")[0]
            rows.append(row)
            print(json.dumps(row), flush=True, file=__import__("sys").stderr)
    return rows


def catalog_side_by_side(sizes: list[int], repeats: int, baseline: str) -> list[dict]:
    """Catalog compile CPU seconds here and on git revision ``baseline``, side by side.

    Each side runs :func:`compile_times` in a fresh one-thread process; the two sides
    alternate (here, baseline, baseline, here) and each row keeps the lower of its two
    medians, so that a change of load during the run falls on both.
    """
    here = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        old_path = _extract(baseline, tmp, here)
        runs: dict[str, list[list[dict]]] = {"new": [], "baseline": []}
        sides = [("new", here), ("baseline", old_path)]
        for order in (sides, sides[::-1]):  # new first, then baseline first
            for side, path in order:
                runs[side].append(_catalog_worker(sizes, repeats, path))
    rows = []
    for i, row in enumerate(runs["new"][0]):
        out = {"arch": row["arch"], "size": row["size"]}
        for side in ("new", "baseline"):
            cpu: list[float] = [
                r[i]["cpu_seconds"] for r in runs[side] if i < len(r) and "cpu_seconds" in r[i]
            ]
            out[f"{side}_cpu_seconds"] = min(cpu) if cpu else None
        if out["new_cpu_seconds"] and out["baseline_cpu_seconds"]:
            out["speedup"] = round(out["baseline_cpu_seconds"] / out["new_cpu_seconds"], 2)
        rows.append(out)
    return rows


def _extract(rev: str, tmp: str, here: str) -> str:
    """The ``gpdip`` package and ``kernels`` of git revision ``rev`` in a temporary folder."""
    old_path = os.path.join(tmp, "baseline")
    os.makedirs(old_path)
    archive = subprocess.run(
        ["git", "archive", rev, "gpdip", "kernels"], capture_output=True, check=True, cwd=here
    ).stdout
    subprocess.run(["tar", "-x", "-C", old_path], input=archive, check=True)
    return old_path


def _catalog_worker(sizes: list[int], repeats: int, pythonpath: str) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1")
    args = [sys.executable, __file__, "--catalog-worker", str(repeats), *map(str, sizes)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
    return {
        "arch": name,
        "size": size,
        "width": width,
        "samples": samples,
        "mc_seconds": round(mc_seconds, 3),
        "mc_rel_error": round(relative_error(est.mean, exact, size - 1), 4),
        "mc_rel_stderr": round(se_rel, 4),
        "target_rel_error": target,
        "mc_samples_needed": round(needed),
        "mc_seconds_needed": round(mc_seconds / samples * needed, 1),
        "compile_seconds": round(compile_seconds, 5),
        "speedup": round(mc_seconds / samples * needed / compile_seconds),
    }


DIP_NETS = ("skip5-bilinear", "skip5-nearest")


def worker(
    name: str, size: int, repeats: int, out: str, max_entries: int, kind: str = "nngp"
) -> None:
    """One (net, size) in this process: compile times, peak RSS, and the kernel saved to ``out``."""
    import resource

    import numpy as np

    from gpdip import compile_kernel as compile_here

    def run():
        return compile_here(name, size, max_entries=max_entries or None, kind=kind)

    start = time.perf_counter()
    kernel = run()  # warm-up, also the first (cold) time
    first = time.perf_counter() - start
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    np.save(out, kernel.numpy())
    peak_mb = _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(
        json.dumps({"first": first, "times": times, "cpu_times": cpu_times, "peak_rss_mb": peak_mb})
    )


def _peak_rss_mb(fallback: float) -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would include the parent's RSS at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return fallback


def run_worker(
    name: str,
    size: int,
    repeats: int,
    out: str,
    pythonpath: str,
    max_entries: int,
    kind: str = "nngp",
) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            name,
            str(size),
            str(repeats),
            out,
            str(max_entries),
            kind,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def dip_rows(
    sizes: list[int],
    repeats: int,
    baseline: str | None,
    baseline_sizes: list[int],
    baseline_repeats: int = 1,
) -> list[dict]:
    """The skip nets at full sizes, here and (optionally) on the baseline revision."""
    import numpy as np

    here = str(Path(__file__).resolve().parent.parent)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old_path = None
        if baseline:
            old_path = _extract(baseline, tmp, here)
        for name in DIP_NETS:
            for size in sizes:
                new_file = os.path.join(tmp, f"new-{name}-{size}.npy")
                row: dict = {"arch": name, "size": size}
                result = run_worker(name, size, repeats, new_file, here, 0)
                row.update(_summary(result))
                if old_path is not None and size in baseline_sizes:
                    old_file = os.path.join(tmp, f"old-{name}-{size}.npy")
                    old = run_worker(name, size, baseline_repeats, old_file, old_path, 2**34)
                    row["baseline"] = _summary(old)
                    if "seconds" in row and "seconds" in row["baseline"]:
                        row["speedup"] = round(row["baseline"]["seconds"] / row["seconds"], 1)
                        diff = np.abs(np.load(new_file) - np.load(old_file)).max()
                        row["max_abs_diff"] = float(diff)
                rows.append(row)
                print(json.dumps(row), flush=True, file=sys.stderr)
    return rows


def ntk_ratio_rows(sizes: list[int], repeats: int) -> list[dict]:
    """NTK / NNGP compile time of the DIP nets (issue 9: at most 2x), compile time only.

    Each (net, size) in a fresh one-thread process: a warm-up compile of each kind, then
    ``repeats`` rounds of (NNGP, NTK) compiles in alternation, so that a change of load
    falls on both; the median CPU seconds of each kind and their ratio.  Imports are not
    timed.
    """
    here = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=here, OMP_NUM_THREADS="1")
    rows = []
    for name in DIP_NETS:
        for size in sizes:
            args = [sys.executable, __file__, "--ratio-worker", name, str(size), str(repeats)]
            proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                row = {"arch": name, "size": size, "error": proc.stderr.strip()[-300:]}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True, file=sys.stderr)
    return rows


def ratio_worker(name: str, size: int, repeats: int) -> None:
    """One net and size in this process: NNGP and NTK compiles in alternation (CPU seconds)."""
    cpu: dict[str, list[float]] = {"nngp": [], "ntk": []}
    for kind in cpu:
        compile_kernel(name, size, kind=kind)  # warm-up
    for _ in range(repeats):
        for kind, times in cpu.items():
            start = time.process_time()
            compile_kernel(name, size, kind=kind)
            times.append(time.process_time() - start)
    nngp, ntk = statistics.median(cpu["nngp"]), statistics.median(cpu["ntk"])
    row = {"arch": name, "size": size, "nngp_cpu_seconds": round(nngp, 4)}
    row.update(ntk_cpu_seconds=round(ntk, 4), ntk_over_nngp_cpu=round(ntk / nngp, 3))
    row["all_cpu_seconds"] = {k: [round(t, 4) for t in v] for k, v in cpu.items()}
    print(json.dumps(row))


def _summary(result: dict) -> dict:
    if "error" in result:
        return {"error": result["error"]}
    times = result["times"] or [result["first"]]
    # CPU seconds (user + system) are less sensitive than wall time to other jobs on the cores.
    cpu = result.get("cpu_times") or [math.nan]
    return {
        "seconds": round(statistics.median(times), 4),
        "all_seconds": [round(t, 4) for t in times],
        "cpu_seconds": round(statistics.median(cpu), 4),
        "first_seconds": round(result["first"], 4),
        "peak_rss_mb": round(result["peak_rss_mb"]),
    }


def machine() -> dict:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        rev = ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "git": rev,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--catalog-worker":
        torch.set_num_threads(1)
        rows = compile_times([int(v) for v in sys.argv[3:]], int(sys.argv[2]))
        print(json.dumps(rows))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--ratio-worker":
        torch.set_num_threads(1)
        ratio_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        torch.set_num_threads(1)
        name, size, repeats, out, max_entries, kind = sys.argv[2:8]
        worker(name, int(size), int(repeats), out, int(max_entries), kind)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mc-samples", type=int, default=40)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: the tables are small, threads only add sync)",
    )
    parser.add_argument("--dip-sizes", type=int, nargs="*", default=[128, 512, 1024])
    parser.add_argument("--dip-repeats", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="git revision to compare against")
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[64, 128])
    parser.add_argument("--baseline-repeats", type=int, default=1)
    parser.add_argument(
        "--ntk-sizes",
        type=int,
        nargs="*",
        default=[512],
        help="sizes for the NTK/NNGP compile-time ratio of the DIP nets (none: skip)",
    )
    parser.add_argument("--skip-catalog", action="store_true")
    parser.add_argument("--skip-mc", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {"machine": machine()}
    if not args.skip_catalog:
        if args.baseline:
            result["compile"] = catalog_side_by_side(args.sizes, args.repeats, args.baseline)
        else:
            result["compile"] = compile_times(args.sizes, args.repeats)
    if args.dip_sizes:
        result["dip"] = dip_rows(
            args.dip_sizes,
            args.dip_repeats,
            args.baseline,
            args.baseline_sizes,
            args.baseline_repeats,
        )
    if args.ntk_sizes:
        result["ntk_ratio"] = ntk_ratio_rows(args.ntk_sizes, args.dip_repeats)
    if not args.skip_mc:
        result["monte_carlo"] = [
            monte_carlo_speedup("unet2", 16, 256, args.mc_samples, 0.01),
            monte_carlo_speedup("conv-d3-s2", 16, 256, args.mc_samples, 0.01),
        ]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
