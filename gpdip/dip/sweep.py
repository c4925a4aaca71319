"""Channel sweep: DIP vs its GP limit on 64×64 inpainting (Cheng et al. 2019, Sec. 5.3, Fig. 6).

For each (width, seed): a Bernoulli(½) mask, the DIP (Adam on the masked MSE,
fixed iterations, limit init), the GP posterior mean with the architecture's
compiled kernel and a GP-RBF baseline (marginal-likelihood lengthscale).  One
JSON row per finished run is appended (flush + fsync) to ``results.jsonl``; a
rerun skips finished (width, seed) pairs, so a killed sweep loses only runs in
flight.  GP means depend only on the seed and are cached (atomic files).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .io import append_jsonl, atomic_torch_save, atomic_write_text, read_jsonl

WIDTHS = (16, 32, 64, 128, 256, 512)
RESULTS = "results.jsonl"


@dataclass
class SweepTask:
    """One run.  ``image``: path or "house" (the packaged house, area-resized to ``size``)."""

    arch: str
    width: int
    seed: int
    size: int
    iters: int
    lr: float
    drop: float
    image: str
    out: str


def load_target(image: str, size: int) -> torch.Tensor:
    """(C, size, size) clean image: the packaged house (grayscale) or a centre crop."""
    from ..data import packaged_asset
    from .images import center_crop, load_image, resize

    if image == "house":
        return resize(load_image(packaged_asset("house128.png")), size)
    return center_crop(load_image(image), size)


def _gp_means(task: SweepTask, truth: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
    """GP-DIP-kernel and GP-RBF means for this seed (cached on disk)."""
    from .gp_dense import dip_kernel_posterior_mean, rbf_posterior_mean

    path = Path(task.out) / "gp_cache" / f"{task.arch}-{task.size}-{task.seed}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    obs = truth * mask
    gp = dip_kernel_posterior_mean(task.arch, obs, mask)
    rbf, fit = rbf_posterior_mean(obs, mask)
    cache = {"gp": gp, "rbf": rbf, "rbf_fit": asdict(fit)}
    atomic_torch_save(cache, path)
    return cache


def run_task(task: SweepTask, threads: int = 1) -> dict[str, Any]:
    """Train one DIP and compare it with the GP means; returns the result row."""
    from .config import DIPConfig
    from .images import bernoulli_mask, psnr
    from .nets import make_network
    from .trainer import Problem, fit

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    truth = load_target(task.image, task.size)
    mask = bernoulli_mask(
        (task.size, task.size), task.drop, torch.Generator().manual_seed(task.seed)
    )
    gps = _gp_means(task, truth, mask)
    net, x = make_network(
        task.arch,
        (task.size, task.size),
        truth.shape[0],
        width=task.width,
        generator=torch.Generator().manual_seed(1000 + task.seed),
    )
    cfg = DIPConfig(
        method="sgd",
        iters=task.iters,
        lr=task.lr,
        log_every=max(1, task.iters // 20),
        seed=task.seed,
    )
    res = fit(net, x, Problem(truth * mask, mask, truth), cfg, device="cpu")
    miss = ~mask.expand_as(truth)
    f, mu = res.final[miss].double(), gps["gp"][miss].double()
    return {
        "arch": task.arch,
        "width": task.width,
        "seed": task.seed,
        "size": task.size,
        "iters": task.iters,
        "lr": task.lr,
        "drop": task.drop,
        "image": task.image,
        "psnr_dip": psnr(res.final, truth),
        "psnr_gp": psnr(gps["gp"], truth),
        "psnr_rbf": psnr(gps["rbf"], truth),
        "rbf_lengthscale": gps["rbf_fit"]["lengthscale"],
        "dist_dip_gp": float(torch.linalg.norm(f - mu) / torch.linalg.norm(mu)),
        "mse_obs_final": res.history[-1]["mse_obs"],
        "train_seconds": res.seconds,
        "seconds": time.perf_counter() - t0,
        "threads": threads,
    }


def pending(tasks: Iterable[SweepTask], results: Path) -> list[SweepTask]:
    """Tasks whose (arch, width, seed, size, iters) row is not yet in ``results``."""
    key = lambda d: (d["arch"], d["width"], d["seed"], d["size"], d["iters"])  # noqa: E731
    done = {key(r) for r in read_jsonl(results)}
    return [t for t in tasks if key(asdict(t)) not in done]


def execute(
    tasks: Sequence[SweepTask],
    results: Path,
    executor: str = "local",
    jobs: int = 2,
    dask_address: str | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> int:
    """Run tasks, appending each finished row durably; returns the number of rows written.

    Rows are written by this (the submitting) process only, so there is one writer."""
    if not tasks:
        return 0
    if executor == "dask":
        return _execute_dask(tasks, results, jobs, dask_address, on_row)
    n = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(run_task, t) for t in tasks]
        for fut in as_completed(futs):
            _write(results, fut.result(), on_row)
            n += 1
    return n


def _execute_dask(
    tasks: Sequence[SweepTask],
    results: Path,
    jobs: int,
    address: str | None,
    on_row: Callable[[dict], None] | None,
) -> int:
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True)
    client = Client(address or cluster)
    try:
        futs = client.map(run_task, list(tasks), pure=False)
        n = 0
        for fut in dask_completed(futs):
            _write(results, fut.result(), on_row)
            n += 1
        return n
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write(results: Path, row: dict[str, Any], on_row: Callable[[dict], None] | None) -> None:
    append_jsonl(results, row)
    print(
        f"width {row['width']:4d} seed {row['seed']}: DIP {row['psnr_dip']:.2f} dB, "
        f"GP {row['psnr_gp']:.2f} dB, RBF {row['psnr_rbf']:.2f} dB, "
        f"‖f−μ‖/‖μ‖ {row['dist_dip_gp']:.3f}, {row['seconds']:.0f} s",
        flush=True,
    )
    if on_row is not None:
        on_row(row)


def summarize(rows: Sequence[dict[str, Any]], out: Path, widths_requested: Sequence[int]) -> str:
    """Markdown table (mean ± std over seeds per width), plot, and the widths not run."""
    import numpy as np

    from .plots import plot_sweep

    lines = [
        "| channels | seeds | DIP PSNR | GP (DIP kernel) PSNR | GP-RBF PSNR | ‖f_DIP−μ_GP‖/‖μ_GP‖ "
        "(missing px) | s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    widths = sorted({r["width"] for r in rows})
    for w in widths:
        rs = [r for r in rows if r["width"] == w]

        def ms(k: str, rs: list = rs) -> str:
            return f"{np.mean([r[k] for r in rs]):.2f} ± {np.std([r[k] for r in rs]):.2f}"

        dist = [r["dist_dip_gp"] for r in rs]
        lines.append(
            f"| {w} | {len(rs)} | {ms('psnr_dip')} | {ms('psnr_gp')} | {ms('psnr_rbf')} | "
            f"{np.mean(dist):.3f} ± {np.std(dist):.3f} | "
            f"{np.mean([r['seconds'] for r in rs]):.0f} |"
        )
    missing = [w for w in widths_requested if w not in widths]
    lines.append("")
    lines.append(f"Widths not run: {', '.join(map(str, missing)) or 'none'}.")
    text = "\n".join(lines) + "\n"
    if rows:
        plot_sweep(rows, out / "sweep_psnr_vs_channels.png")
    atomic_write_text(text, out / "sweep_table.md")
    return text


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="unet2")
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iters", type=int, default=1500)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--drop", type=float, default=0.5)
    p.add_argument("--image", default="house", help="'house' (packaged) or an image path")
    p.add_argument("--out", default="docs/results/dip/sweep")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--dask-address", default=None)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CI check: widths 8 16, one seed, 32×32, 30 iterations (< 2 min)",
    )
    return p


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args(argv)
    if args.smoke:
        args.widths, args.seeds, args.size, args.iters = [8, 16], [0], 32, 30
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        SweepTask(args.arch, w, s, args.size, args.iters, args.lr, args.drop, args.image, str(out))
        for w in args.widths
        for s in args.seeds
    ]
    # small widths first, so a time-limited sweep finishes whole widths early
    todo = pending(tasks, out / RESULTS)
    print(f"{len(tasks) - len(todo)} of {len(tasks)} runs already done; running {len(todo)}")
    execute(todo, out / RESULTS, args.executor, args.jobs, args.dask_address)
    rows = [
        r for r in read_jsonl(out / RESULTS) if r["size"] == args.size and r["iters"] == args.iters
    ]
    print(summarize(rows, out, args.widths))
    return 0
