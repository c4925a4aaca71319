"""The floor of an exact compile: distinct table entries and the per-entry cost of each map.

    python scripts/bench_floor.py [--arch deep-decoder] [--size 128] [--repeats 5]

Prints JSON: the final (last-upsampled) table's stored entries, the number of distinct entries
an exact method needs there after every symmetry (:func:`gpdip.limit.swap_fold.distinct_entries`),
and per layer the median CPU seconds (one thread, after a warm-up) and nanoseconds per stored
entry.  The floor of any exact compile of the final table is then at least
``distinct × Σ (per-entry cost of each map after the last upsampling)``; with the cheapest map's
cost for every map, a hard lower bound for torch's element-wise kernels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gpdip import compile_kernel
from gpdip.limit import phase_tables as pt
from gpdip.limit import state
from gpdip.limit import swap_fold as sf


def layer_times(name: str, size: int, repeats: int) -> tuple[dict, dict]:
    """Per layer (walker path): median CPU seconds and the table's stored entries."""
    seconds: dict[str, list[float]] = {}
    entries: dict[str, int] = {}
    final: dict = {}
    check, upsampled = state.Walker.check_finite, pt._upsampled
    clock = [0.0]

    def timed_check(self, groups, where, layer):
        check(self, groups, where, layer)
        if groups[0].nngp is not None and not layer.paths():  # leaves only, not blocks
            key = f"{where} {layer.type_name}"
            seconds.setdefault(key, []).append(time.process_time() - clock[0])
            entries[key] = groups[0].nngp.values.numel()
        clock[0] = time.process_time()

    def keep_final(*args, **kwargs):
        final["table"] = upsampled(*args, **kwargs)
        return final["table"]

    state.Walker.check_finite, pt._upsampled = timed_check, keep_final  # type: ignore
    try:
        compile_kernel(name, size)  # warm-up
        seconds.clear()
        for _ in range(repeats):
            clock[0] = time.process_time()
            compile_kernel(name, size)
    finally:
        state.Walker.check_finite, pt._upsampled = check, upsampled  # type: ignore
    rows = {
        key: {
            "cpu_seconds": round(statistics.median(times), 5),
            "entries": entries[key],
            "ns_per_entry": round(1e9 * statistics.median(times) / entries[key], 2),
        }
        for key, times in seconds.items()
    }
    return rows, final


def primitive_costs(repeats: int = 200) -> dict:
    """Nanoseconds per float64 entry of torch's element-wise kernels on one chunk (2**16,
    the size the pointwise maps work in): the floor of any map built from them."""
    n = 2**16
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, generator=g, dtype=torch.float64) * 1.8 - 0.9
    y = torch.empty_like(x)
    table = torch.rand(1024, generator=g, dtype=torch.float64)
    index = torch.randint(0, 1024, (n,), generator=g)
    kernels = {
        "arccos": lambda: torch.arccos(x, out=y),
        "sqrt": lambda: torch.sqrt(x.abs(), out=y),
        "mul": lambda: torch.mul(x, x, out=y),
        "mul_scalar_in_place": lambda: y.mul_(1.0),
        "index_select_gather": lambda: torch.index_select(table, 0, index, out=y),
    }
    costs = {}
    for name, kernel in kernels.items():
        kernel()
        start = time.process_time()
        for _ in range(repeats):
            kernel()
        costs[name] = round(1e9 * (time.process_time() - start) / repeats / n, 3)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="deep-decoder")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, final = layer_times(args.arch, args.size, args.repeats)
    result: dict = {"arch": args.arch, "size": args.size, "layers": rows}
    table = final.get("table")
    if table is not None and table.points is not None and table.dims == 2:
        points = table.points
        transpose = points.fold == "octant"
        result["final_table"] = {
            "period": list(table.period),
            "offsets_listed": len(points.offsets),
            "stored_entries": table.values.numel(),
            "distinct_entries": sf.distinct_entries(
                points.offsets, points.centre, table.period, transpose
            ),
            "every_phase_entries": len(points.offsets) * table.period[0] * table.period[1],
        }
    result["primitive_ns_per_entry"] = primitive_costs()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
