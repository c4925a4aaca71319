#!/usr/bin/env python
"""Channel sweep on a 1-D signal: the full network's SGLD posterior approaches its GP limit.

    python scripts/channel_sweep_1d.py [--widths 16 32 64 128 256] [--chains 4]
        [--iters 10000] [--jobs 2] [--out results/dip/sweep1d] [--report] [--smoke]

The 2-D sweep (``scripts/channel_sweep.py``) cannot resolve a width trend of the full
network's posterior on this CPU: one chain's Monte Carlo error (≈ 0.04) exceeds the
finite-width gap.  A 1-D signal makes chains cheap enough to run several per width and
subtract that error.  Task: the centre row of the packaged house image (128 samples),
50% of the samples dropped (Bernoulli, seed 0); ``unet2`` as a 1-D network.
GP: exact posterior (dense float64) with the compiled 1-D kernel, constant mean = observed
mean, noise variance ``--noise-var``, output scale by marginal likelihood over a grid.
DIP: ``gpdip.dip.signal1d.sgld_posterior_1d`` (pSGLD, the limit prior, the same likelihood),
one job per (width, chain), each a fresh network draw and Langevin seed.

Per width, with K chains of posterior means m_k on the missing samples and the GP mean μ
(all distances relative to ‖μ‖):  d = ‖m̄ − μ‖ (pooled mean);  MC floor e = √(s²/K) with
s² = Σ‖m_k − m̄‖²/(K − 1) the between-chain variance;  bias b = √max(d² − e², 0), the
distance with the Monte Carlo part removed (E d² = b² + e²).  Results: one row per
chain in ``results.jsonl`` (resumable), chain means in ``chains/``, ``table.md``, ``sweep1d.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gpdip import compile_kernel
from gpdip.dip.io import read_jsonl
from gpdip.dip.signal1d import pool_chains, sgld_posterior_1d
from gpdip.experiments.sweep import execute
from gpdip.gp import dense_posterior
from gpdip.io.atomic import load_torch, save_figure, save_text, save_torch
from gpdip.io.images import channels_last, load_image
from gpdip.io.paths import packaged_asset

ARCH = "unet2"


@dataclass(frozen=True)
class Chain:
    width: int
    chain: int
    iters: int
    lr: float
    noise_var: float
    out: str


def problem() -> tuple[torch.Tensor, torch.Tensor]:
    image = channels_last(load_image(packaged_asset("house128.png")))  # (H, W)
    signal = image[image.shape[0] // 2].double()
    mask = torch.rand(signal.numel(), generator=torch.Generator().manual_seed(0)) >= 0.5
    return signal, mask


def gp(noise_var: float):
    """(scale, posterior) with the output scale of highest marginal likelihood."""
    signal, mask = problem()
    table = compile_kernel(ARCH, signal.numel(), dims=1)
    best = None
    for scale in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
        post = dense_posterior(scale * table, signal, mask, noise_var)
        lml = float(post.info["log_marginal_likelihood"])
        if best is None or lml > best[0]:
            best = (lml, scale, post)
    assert best is not None
    return best[1], best[2]


def run_chain(task: Chain) -> dict:
    torch.set_num_threads(1)
    signal, mask = problem()
    scale, _ = gp(task.noise_var)
    t0 = time.perf_counter()
    means, stds = sgld_posterior_1d(
        ARCH,
        signal,
        mask,
        scale=scale,
        noise=task.noise_var,
        width=task.width,
        iters=task.iters,
        chains=1,
        lr=task.lr,
        seed=task.chain,
        freeze_preconditioner=False,
    )  # as recorded (Li et al.)
    path = Path(task.out) / "chains" / f"w{task.width}_c{task.chain}_i{task.iters}.pt"
    save_torch(path, {"mean": means[0], "std": stds[0]})
    return {**asdict(task), "scale": scale, "seconds": time.perf_counter() - t0, "file": path.name}


def describe(row: dict) -> str:
    return f"width {row['width']:4d} chain {row['chain']}: {row['seconds']:.0f} s"


def summarize(rows: list[dict], out: Path, noise_var: float) -> list[dict]:
    signal, mask = problem()
    _, post = gp(noise_var)
    miss = ~mask
    mu, gp_std = post.mean[miss], post.std[miss]
    norm = float(mu.norm())
    stats = []
    for w in sorted({r["width"] for r in rows}):
        files = [out / "chains" / r["file"] for r in rows if r["width"] == w]
        loaded = [load_torch(f, "1-D sweep cache") for f in files]
        means = torch.stack([d["mean"][miss] for d in loaded])
        stds = torch.stack([d["std"][miss] for d in loaded])
        k = len(loaded)
        m_bar, pooled_std = pool_chains(means, stds)
        d2 = float((m_bar - mu).pow(2).sum()) / norm**2
        s2 = float((means - m_bar).pow(2).sum()) / (k - 1) / norm**2 if k > 1 else float("nan")
        e2 = s2 / k
        stats.append(
            {
                "width": w,
                "chains": k,
                "dist": d2**0.5,
                "mc_floor": e2**0.5,
                "bias": max(d2 - e2, 0.0) ** 0.5,
                "single_chain_dist": [float((m - mu).norm()) / norm for m in means],
                "std_ratio": float(pooled_std.mean() / gp_std.mean()),
                "rmse_dip": float((m_bar - signal[miss]).pow(2).mean().sqrt()),
                "rmse_gp": float((mu - signal[miss]).pow(2).mean().sqrt()),
            }
        )
    return stats


def report(stats: list[dict], out: Path, args: argparse.Namespace) -> str:
    lines = [
        f"`{ARCH}` as a 1-D network, 128-sample signal, 50% dropped, noise variance "
        f"{args.noise_var}, pSGLD lr {args.lr}, {args.iters} steps per chain "
        "(burn-in 1/4, thin 5).  Distances relative to ‖μ_GP‖ on the missing samples.",
        "",
        "    " + " ".join(["python scripts/channel_sweep_1d.py", *sys.argv[1:]]),
        "",
        "| width | chains | ‖m̄ − μ_GP‖ | MC floor e | bias √(d² − e²) | one chain ‖m_k − μ‖ "
        "| DIP std / GP std | RMSE DIP / GP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in stats:
        single = ", ".join(f"{v:.4f}" for v in s["single_chain_dist"])
        lines.append(
            f"| {s['width']} | {s['chains']} | {s['dist']:.4f} | {s['mc_floor']:.4f} "
            f"| **{s['bias']:.4f}** | {single} | {s['std_ratio']:.2f} | "
            f"{s['rmse_dip']:.4f} / {s['rmse_gp']:.4f} |"
        )
    text = "\n".join(lines) + "\n"
    save_text(out / "table.md", text)
    plot(stats, out)
    return text


def plot(stats: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    w = [s["width"] for s in stats]
    ax.loglog(w, [s["dist"] for s in stats], "ko-", label="‖m̄ − μ_GP‖ (pooled chains)")
    ax.loglog(w, [s["bias"] for s in stats], "bs-", label="bias (MC floor removed)")
    ax.loglog(w, [s["mc_floor"] for s in stats], "r:", label="MC floor e")
    for s in stats:
        ax.loglog(
            [s["width"]] * len(s["single_chain_dist"]), s["single_chain_dist"], "k.", alpha=0.3
        )
    ax.set(
        xlabel="channels",
        ylabel="relative distance to the GP mean",
        title="1-D channel sweep: DIP-SGLD posterior mean vs GP",
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save_figure(out / "sweep1d.png", fig, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--iters", type=int, default=10000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--noise-var", type=float, default=0.0025)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="results/dip/sweep1d")
    p.add_argument("--report", action="store_true")
    p.add_argument("--smoke", action="store_true", help="widths 4 8, 2 chains, 40 steps")
    args = p.parse_args()
    if args.smoke:
        args.widths, args.chains, args.iters = [4, 8], 2, 40
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        Chain(w, c, args.iters, args.lr, args.noise_var, str(out))
        for w in args.widths
        for c in range(args.chains)
    ]
    key = lambda d: (d["width"], d["chain"], d["iters"], d["lr"], d["noise_var"])  # noqa: E731
    done = {key(r) for r in read_jsonl(out / "results.jsonl")}
    todo = [] if args.report else [t for t in tasks if key(asdict(t)) not in done]
    print(f"{len(tasks) - len(todo)} of {len(tasks)} chains done; running {len(todo)}")
    execute(todo, out / "results.jsonl", "local", args.jobs, run=run_chain, describe=describe)
    wanted = {key(asdict(t)) for t in tasks}
    rows = [r for r in read_jsonl(out / "results.jsonl") if key(r) in wanted]
    print(report(summarize(rows, out, args.noise_var), out, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
