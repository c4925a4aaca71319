"""Paper Fig. 3(a, b, c): 1-D covariance functions K(r)/K(0) and prior samples.

    python scripts/reproduce/fig3_covariance.py [--smoke] [--samples 200] [--seed 0]

(a) autoencoder and (b) conv-only networks at several depths and input sigma: the compiled
(analytic) curves with Monte Carlo estimates from sampled width-256 networks overlaid, ±2
standard errors.  (c) prior samples from the conv architecture in two configurations.
Writes results/fig3/{fig3ab.png, fig3c.png, results.json, provenance.json}.
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
from gpdip.finite.montecarlo import estimate_kernel
from gpdip.io.atomic import save_figure
from gpdip.layers.base import nonlinear_depth

# The paper's panels: (architecture, depth, sigma) per curve; offsets up to ±100.
PANELS = {
    "AE, d=3": [("ae", 3, s) for s in (0.0, 2.0, 6.0, 12.0)],
    "AE, σ=2": [("ae", d, 2.0) for d in (1, 2, 3, 4)],
    "Conv, σ=0": [("conv", d, 0.0) for d in (3, 4, 5, 6)],
    "Conv, σ=2": [("conv", d, 2.0) for d in (1, 2, 3, 4)],
}


def curve(
    kind: str, depth: int, sigma: float, size: int, samples: int, width: int, seed: int
) -> dict:
    arch = load_architecture(f"{kind}-d{depth}").with_input(sigma=sigma)
    exact = compile_kernel(arch, size, dims=1).numpy()
    est = estimate_kernel(
        arch,
        size,
        dims=1,
        width=width,
        samples=samples,
        seed=seed,
        domain=int(np.ceil(4 * size / 16) * 16),
    )
    mean, se = est.mean.numpy(), est.stderr.numpy()
    centre = size - 1
    z = np.abs(mean - exact) / np.maximum(se, 1e-300)
    # Finite-width bias allowance, as in tests/test_compiler_vs_montecarlo.py: L/width.
    bias = nonlinear_depth(arch.layers) / width * exact[centre]
    agree = np.abs(mean - exact) <= 3 * se + bias
    return {
        "arch": f"{kind}-d{depth}",
        "sigma": sigma,
        "offsets": list(range(size)),
        "analytic": (exact[centre:] / exact[centre]).tolist(),
        "mc": (mean[centre:] / mean[centre]).tolist(),
        "mc_se": (se[centre:] / mean[centre]).tolist(),
        "within_2se": float(np.mean(z[centre:] <= 2)),
        "within_3se": float(np.mean(z[centre:] <= 3)),
        "within_3se_plus_width_bias": float(np.mean(agree[centre:])),
        "max_rel_error": float(np.max(np.abs(mean - exact)) / exact[centre]),
    }


def plot_panels(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if len(curves) > 2 else len(curves)
    rows_n = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 3.8 * rows_n), squeeze=False)
    for ax, (title, rows) in zip(axes.flat, curves.items(), strict=False):
        for i, row in enumerate(rows):
            color = f"C{i}"
            r = np.array(row["offsets"])
            label = f"d={row['arch'].split('-d')[1]}, σ={row['sigma']:g}"
            ax.plot(r, row["analytic"], "--", color=color, label=label)
            mc, se = np.array(row["mc"]), np.array(row["mc_se"])
            ax.plot(r, mc, color=color, lw=0.8)
            ax.fill_between(r, mc - 2 * se, mc + 2 * se, color=color, alpha=0.2)
        ax.set(title=title, xlabel="offset t1 − t2", ylabel="cos θ = K(r)/K(0)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Fig. 3(a, b): analytic (dashed) vs Monte Carlo (solid, ±2 s.e.), width 256")
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def prior_samples(size: int, seed: int, path: Path) -> list[dict]:
    """Exact GP prior samples with the compiled kernels (dense Cholesky, 1-D)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [("conv-d1", 2.0), ("conv-d4", 15.0)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for ax, (name, sigma) in zip(axes, configs, strict=True):
        k = compile_kernel(load_architecture(name).with_input(sigma=sigma), size, dims=1)
        idx = torch.arange(size)
        cov = k[(idx[None, :] - idx[:, None]) + size - 1]
        chol = torch.linalg.cholesky(cov + 1e-10 * k.max() * torch.eye(size, dtype=cov.dtype))
        draws = chol @ torch.randn(size, 3, generator=gen, dtype=cov.dtype)
        ax.plot(draws.numpy())
        ax.set(title=f"{name}, σ = {sigma:g}", xlabel="input x", ylabel="f(x)")
        rows.append({"arch": name, "sigma": sigma})
    fig.suptitle("Fig. 3(c): prior samples of the conv architecture")
    fig.tight_layout()
    save_figure(path, fig, dpi=110)
    plt.close(fig)
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--replot",
        action="store_true",
        help="redraw the figures from an existing results.json (no sampling)",
    )
    args = p.parse_args()
    started = time.time()
    folder = output_dir("fig3", args)
    if args.replot:
        plot_panels(
            json.loads((folder / "results.json").read_text())["curves"], folder / "fig3ab.png"
        )
        return
    size, samples = (21, 4) if args.smoke else (101, 200)
    panels = PANELS if not args.smoke else {k: v[:1] for k, v in list(PANELS.items())[:2]}
    curves = {
        title: [
            curve(kind, d, s, size, samples, 256 if not args.smoke else 32, args.seed + i)
            for i, (kind, d, s) in enumerate(rows)
        ]
        for title, rows in panels.items()
    }
    plot_panels(curves, folder / "fig3ab.png")
    samples_meta = prior_samples(128 if not args.smoke else 32, args.seed, folder / "fig3c.png")
    summary = [
        {
            k: row[k]
            for k in (
                "arch",
                "sigma",
                "within_2se",
                "within_3se",
                "within_3se_plus_width_bias",
                "max_rel_error",
            )
        }
        for rows in curves.values()
        for row in rows
    ]
    finish(
        folder, args, started, {"curves": curves, "summary": summary, "prior_samples": samples_meta}
    )


if __name__ == "__main__":
    main()
