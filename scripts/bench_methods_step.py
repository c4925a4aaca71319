"""Seconds per network gradient step of every DIP method of the comparison (prints JSON).

    python scripts/bench_methods_step.py [--config cpu|full] [--size 512] [--steps 2]

Each method is built as the comparison builds it (``gpdip.experiments.methods_table``:
the config's network, width and hyperparameters) on a random (3, size, size) image with
σ = 25/255 noise, stepped once to warm up, then ``--steps`` outer iterations are timed;
the cost is per *gradient step* (DIP-ADMM v1 takes 10 per iteration).  With the config's
budget it gives the hours one job would take: the estimate of ``--config full`` in
docs/methods.md.  One thread (OMP_NUM_THREADS=1 to match the comparison's workers).
"""

import argparse
import json
import time

import torch

from gpdip.dip.methods import Observation, build_method
from gpdip.dip.methods.runner import grads_per_iteration
from gpdip.experiments import tables
from gpdip.experiments.methods_table import CONFIGS, METHOD_RUNS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="full")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--runs", nargs="+", default=list(METHOD_RUNS), choices=METHOD_RUNS)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = CONFIGS[args.config]
    table_cfg = tables.CONFIGS[cfg.table]
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand((3, args.size, args.size), generator=gen)
    noisy = truth + tables.SIGMA * torch.randn(truth.shape, generator=gen)
    rows = []
    for run in args.runs:
        dd = run == "deep-decoder"
        method = build_method(
            {"sgd-early": "sgd", "deep-decoder": "sgd"}.get(run, run),
            Observation(noisy),
            cfg.deep_decoder if dd else table_cfg.arch,
            width=None if dd else table_cfg.width,
            hyper=cfg.hyper.get(run),
        )
        method.step()  # warm-up: allocations, first-call overheads
        started = time.perf_counter()
        for _ in range(args.steps):
            method.step()
        per_iter = (time.perf_counter() - started) / args.steps
        per_grad = per_iter / grads_per_iteration(method)
        row = {
            "run": run,
            "config": args.config,
            "size": args.size,
            "s_per_grad_step": per_grad,
            "hours_per_job": per_grad * cfg.grad_steps / 3600,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"config": args.config, "size": args.size, "rows": rows}))


if __name__ == "__main__":
    main()
