"""Paper Fig. 3(d): 1-D posterior mean and variance with 90% of the samples dropped, by the
GP with the compiled kernel and by DIP-SGLD on the network it is the limit of.

    python scripts/reproduce/fig3d_posterior_1d.py [--smoke] [--seed 0] [--width 256]
        [--iters 20000] [--chains 2]

A 1-D signal (the centre row of the packaged house image, 128 samples) with 90% of its samples
dropped (seeded).  GP: the exact posterior (dense float64) with the compiled kernels of two
conv architectures, as in the paper's panel (d): larger σ and depth give smoother
interpolation and wider bands; the output scale s and noise variance n are chosen by the
marginal likelihood of the observed samples over a small grid.  DIP-SGLD: the same
architecture as a finite 1-D network of ``--width`` channels (limit init = its prior), the
same model y = μ + √s·f(x; θ) + N(0, n) (the network is trained on (y − μ)/√s with noise
variance n/s), pSGLD with ``--chains`` independent chains pooled; its posterior mean and
per-sample std are drawn over the GP's.  Writes results/fig3d/.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, output_dir, parser

from gpdip import compile_kernel, load_architecture
from gpdip.dip.signal1d import pool_chains, sgld_posterior_1d
from gpdip.gp import dense_posterior
from gpdip.io.atomic import save_figure
from gpdip.io.images import channels_last, load_image
from gpdip.io.paths import packaged_asset

CONFIGS = [("conv-d1", 2.0), ("conv-d4", 15.0)]


def best_posterior(table: torch.Tensor, signal: torch.Tensor, mask: torch.Tensor):
    """Exact posterior at the (scale, noise) of highest log marginal likelihood on a grid."""
    best = None
    for scale in (0.01, 0.03, 0.1, 0.3):
        for noise in (1e-4, 1e-3, 1e-2):
            post = dense_posterior(scale * table, signal, mask, noise)
            lml = float(post.info.get("log_marginal_likelihood", -np.inf))
            if best is None or lml > best[0]:
                best = (lml, scale, noise, post)
    assert best is not None
    return best


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--iters", type=int, default=20000)
    p.add_argument("--chains", type=int, default=2)
    args = p.parse_args()
    if args.smoke:
        args.width, args.iters, args.chains = 8, 40, 1
    torch.set_num_threads(1)
    started = time.time()
    folder = output_dir("fig3d", args)
    image = channels_last(load_image(packaged_asset("house128.png")))  # (H, W)
    signal = image[image.shape[0] // 2].double()
    n = signal.numel()
    mask = torch.rand(n, generator=torch.Generator().manual_seed(args.seed)) < 0.1
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CONFIGS), figsize=(5.5 * len(CONFIGS), 3.6), squeeze=False)
    rows = []
    x = np.arange(n)
    miss = ~mask.numpy()
    for ax, (name, sigma) in zip(axes[0], CONFIGS, strict=True):
        arch = load_architecture(name).with_input(sigma=sigma)
        table = compile_kernel(arch, n, dims=1)
        lml, scale, noise, post = best_posterior(table, signal, mask)
        mean, std = post.mean.numpy(), post.std.numpy()
        t0 = time.time()
        chain_means, chain_stds = sgld_posterior_1d(
            arch,
            signal,
            mask,
            scale=scale,
            noise=noise,
            width=args.width,
            iters=args.iters,
            chains=args.chains,
            seed=args.seed,
        )
        d_mean, d_std = (v.numpy() for v in pool_chains(chain_means, chain_stds))
        ax.fill_between(x, mean - 2 * std, mean + 2 * std, alpha=0.25, label="GP ±2 std")
        ax.plot(x, mean, label="GP mean")
        ax.plot(x, d_mean, "r--", lw=1, label=f"DIP-SGLD mean (C={args.width})")
        ax.plot(x, d_mean - 2 * d_std, "r:", lw=0.8, label="DIP-SGLD ±2 std")
        ax.plot(x, d_mean + 2 * d_std, "r:", lw=0.8)
        ax.plot(x, signal.numpy(), "k:", lw=0.8, label="signal")
        ax.plot(x[mask.numpy()], signal.numpy()[mask.numpy()], "k.", label="observed")
        ax.set(title=f"{name}, σ = {sigma:g}", xlabel="input x", ylabel="f(x)")
        ax.legend(fontsize=6)
        rmse = lambda m: float(np.sqrt(np.mean((m - signal.numpy())[miss] ** 2)))  # noqa: E731
        rows.append(
            {
                "arch": name,
                "sigma": sigma,
                "scale": scale,
                "noise": noise,
                "log_marginal_likelihood": lml,
                "rmse_missing": rmse(mean),
                "mean_std_missing": float(std[miss].mean()),
                "dip_rmse_missing": rmse(d_mean),
                "dip_mean_std_missing": float(d_std[miss].mean()),
                "dip_vs_gp_mean_rel": float(
                    np.linalg.norm((d_mean - mean)[miss]) / np.linalg.norm(mean[miss])
                ),
                "dip_vs_gp_rms_over_gp_std": float(
                    np.sqrt(np.mean(((d_mean - mean) / std)[miss] ** 2))
                ),
                "dip_width": args.width,
                "dip_iters": args.iters,
                "dip_chains": args.chains,
                "dip_seconds": round(time.time() - t0, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    fig.suptitle("Fig. 3(d): GP and DIP-SGLD posteriors with 90% of the samples dropped")
    fig.tight_layout()
    save_figure(folder / "fig3d.png", fig, dpi=110)
    plt.close(fig)
    finish(folder, args, started, {"rows": rows, "observed": int(mask.sum())})


if __name__ == "__main__":
    main()
