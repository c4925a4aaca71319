"""Per-step time of the trainer for each pre-registry method on a small network (dip-tiny,
width 16, 32×32), to check that the scheme registry adds no measurable overhead.  Prints
JSON: {method: seconds per step (median of repeats)}.  Runs against whichever gpdip is on
PYTHONPATH (the registry, or the pre-registry commit df885b4 for comparison)."""

from __future__ import annotations

import json
import statistics
import time

import torch

from gpdip.dip import DIPConfig, Problem, fit, make_network

METHODS = ("sgd", "sgd-input-avg", "sgld", "noisy-adam")


def config(method: str, iters: int) -> DIPConfig:
    kw = {"method": method, "iters": iters, "log_every": 50, "noise_std": 0.1}
    if method in ("sgld", "noisy-adam"):
        kw.update(burn_in=iters // 2, thin=2)
    build = getattr(DIPConfig, "build", None)  # absent before the registry
    return build(**kw) if build else DIPConfig(**kw)


def seconds_per_step(method: str, iters: int = 200, repeats: int = 3) -> float:
    y = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(repeats):
        net, x = make_network(
            "dip-tiny", (32, 32), 1, width=16, generator=torch.Generator().manual_seed(1)
        )
        start = time.perf_counter()
        fit(net, x, Problem(y), config(method, iters), device="cpu")
        times.append((time.perf_counter() - start) / iters)
    return statistics.median(times)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps({m: seconds_per_step(m) for m in METHODS}))
