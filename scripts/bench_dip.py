#!/usr/bin/env python
"""Benchmark: trainer iterations/s vs a plain PyTorch loop on the same network; peak memory.

    python scripts/bench_dip.py --widths 16 32 64 --iters 30 --out results/dip/bench.json

Both loops do forward, masked MSE, backward, Adam step on the same network and
input (the trainer adds logging, PSNR tracking and an EMA).  Timings alternate
trainer / plain per repeat; reported are the median and the best-of-N ratios.
Run-to-run noise on a 2-core VM is ±10% even when idle, so the script also measures
the trainer's extras directly: the share of the trainer's loop time spent in its
per-step bookkeeping (``_Run.track`` and ``_Run.record``: EMA, PSNR, best iterate, log
record), timed in place (``extras_pct``).
Peak memory: CUDA max_memory_allocated on GPU; on CPU the peak resident memory of
a fresh process training that width for 5 steps, above its resident size once the
network is built (so imports and other widths do not count).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch

from gpdip.dip import DIPConfig, Problem, default_device, fit, make_network
from gpdip.io.atomic import save_text


def plain_loop(net, x, y, mask, iters: int, lr: float) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = float(mask.expand_as(y).sum())
    t = time.perf_counter()
    for _ in range(iters):
        loss = ((net(x)[0] - y) * mask).pow(2).sum() / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if y.is_cuda:
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - t)


def trainer_loop(net, x, y, mask, truth, iters: int, lr: float, device) -> float:
    cfg = DIPConfig.build(method="sgd-avg", iters=iters, lr=lr, log_every=max(1, iters // 3))
    res = fit(net, x, Problem(y.cpu(), mask.cpu().bool(), truth), cfg, device=device)
    return iters / res.seconds


def random_task(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark's problem: a seeded random (1, size, size) image and a 50% mask."""
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(1, size, size, generator=g)
    return truth, torch.rand(1, size, size, generator=g) > 0.5


def _peak_child(arch: str, width: int, size: int, queue) -> None:
    torch.set_num_threads(1)
    truth, mask = random_task(size)
    net, x = make_network(arch, (size, size), 1, width=width)
    with open("/proc/self/statm") as f:  # resident pages now: model built, nothing run
        base = int(f.read().split()[1]) * resource.getpagesize() / 2**20
    cfg = DIPConfig.build(method="sgd-avg", iters=5, lr=0.003, log_every=5)
    fit(net, x, Problem(truth * mask, mask, truth), cfg, device="cpu")
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base)


def peak_training_mib(arch: str, width: int, size: int) -> float | None:
    """CPU: peak resident memory of 5 training steps in a fresh process, above the resident
    size after building the network (so imports and earlier widths do not count)."""
    import multiprocessing as mp

    if not Path("/proc/self/statm").exists():
        return None
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(arch, width, size, queue))
    proc.start()
    value = queue.get(timeout=600)
    proc.join()
    return value


def extras_share(arch: str, width: int, size: int, iters: int, device) -> float:
    """Percent of the trainer's loop time spent in its per-step bookkeeping."""
    from gpdip.dip import trainer as tr

    spent = [0.0]
    originals = {n: getattr(tr._Run, n) for n in ("track", "record")}

    def timed(f):
        def wrapper(self, *a, **k):
            t = time.perf_counter()
            out = f(self, *a, **k)
            spent[0] += time.perf_counter() - t
            return out

        return wrapper

    truth, mask = random_task(size)
    net, x = make_network(arch, (size, size), 1, width=width)
    try:
        for n, f in originals.items():
            setattr(tr._Run, n, timed(f))
        cfg = DIPConfig.build(method="sgd-avg", iters=iters, lr=0.003, log_every=max(1, iters // 3))
        res = fit(net, x, Problem(truth * mask, mask, truth), cfg, device=device)
    finally:
        for n, f in originals.items():
            setattr(tr._Run, n, f)
    return 100 * spent[0] / res.seconds


def bench_width(arch: str, width: int, size: int, iters: int, repeats: int, device) -> dict:
    truth, observed = random_task(size)
    mask = observed.float()
    y = truth * mask
    net, x = make_network(arch, (size, size), 1, width=width)
    plain_loop(net.to(device), x.to(device), y.to(device), mask.to(device), 3, 0.003)  # warm-up
    tr, pl = [], []
    for _ in range(repeats):
        net, x = make_network(
            arch, (size, size), 1, width=width, generator=torch.Generator().manual_seed(1)
        )
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        tr.append(trainer_loop(net, x, y, mask, truth, iters, 0.003, device))
        net, x = make_network(
            arch, (size, size), 1, width=width, generator=torch.Generator().manual_seed(1)
        )
        net, x = net.to(device), x.to(device)
        pl.append(plain_loop(net, x, y.to(device), mask.to(device), iters, 0.003))
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else peak_training_mib(arch, width, size)
    )
    t, p = statistics.median(tr), statistics.median(pl)
    return {
        "width": width,
        "trainer_it_s": t,
        "plain_it_s": p,
        "overhead_pct": 100 * (p / t - 1),
        # best-of-N (timeit's estimator): the least-disturbed run of each loop
        "overhead_best_pct": 100 * (max(pl) / max(tr) - 1),
        "extras_pct": extras_share(arch, width, size, iters, device),
        "peak_mem_mib": peak,
        "repeats": repeats,
        "iters": iters,
    }


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--arch", default="unet2")
    a.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    a.add_argument("--size", type=int, default=64)
    a.add_argument("--iters", type=int, default=30)
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--device", default=None)
    a.add_argument("--out", default=None)
    args = a.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device) if args.device else default_device()
    rows = [
        bench_width(args.arch, w, args.size, args.iters, args.repeats, dev) for w in args.widths
    ]
    report = {
        "device": str(dev),
        "threads": args.threads,
        "arch": args.arch,
        "size": args.size,
        "torch": torch.__version__,
        "rows": rows,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        save_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
