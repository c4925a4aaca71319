"""Paper Fig. 3(d), GP half: 1-D posterior mean and variance with 90% of the samples dropped.

    python scripts/reproduce/fig3d_posterior_1d.py [--smoke] [--seed 0]

A 1-D signal (the centre row of the packaged house image, 128 samples) with 90% of its samples
dropped (seeded), and the exact GP posterior (dense float64) with the compiled kernels of two
conv architectures, as in the paper's panel (d): larger σ and depth give smoother
interpolation and wider bands.  The output scale and noise are chosen by the marginal
likelihood of the observed samples over a small grid.  The DIP-SGLD half of the panel is not
run by this script.  Writes docs/results/fig3d/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, output_dir, parser

from gpdip import compile_kernel, load_architecture
from gpdip.atomic import save_figure
from gpdip.data import packaged_asset
from gpdip.gp import dense_posterior, load_image

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
    args = parser(__doc__.splitlines()[0]).parse_args()
    started = time.time()
    folder = output_dir("fig3d", args)
    image = load_image(packaged_asset("house128.png"))
    signal = image[image.shape[0] // 2].double()
    n = signal.numel()
    mask = torch.rand(n, generator=torch.Generator().manual_seed(args.seed)) < 0.1
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CONFIGS), figsize=(5.5 * len(CONFIGS), 3.4), squeeze=False)
    rows = []
    x = np.arange(n)
    for ax, (name, sigma) in zip(axes[0], CONFIGS, strict=True):
        table = compile_kernel(load_architecture(name).with_input(sigma=sigma), n, dims=1)
        lml, scale, noise, post = best_posterior(table, signal, mask)
        mean, std = post.mean.numpy(), post.std.numpy()
        ax.fill_between(x, mean - 2 * std, mean + 2 * std, alpha=0.3, label="±2 std")
        ax.plot(x, mean, label="posterior mean")
        ax.plot(x, signal.numpy(), "k:", lw=0.8, label="signal")
        ax.plot(x[mask.numpy()], signal.numpy()[mask.numpy()], "k.", label="observed")
        ax.set(title=f"{name}, σ = {sigma:g}", xlabel="input x", ylabel="f(x)")
        ax.legend(fontsize=7)
        rmse = float(np.sqrt(np.mean((mean - signal.numpy())[~mask.numpy()] ** 2)))
        rows.append({"arch": name, "sigma": sigma, "scale": scale, "noise": noise,
                     "log_marginal_likelihood": lml, "rmse_missing": rmse,
                     "mean_std_missing": float(std[~mask.numpy()].mean())})
    fig.suptitle("Fig. 3(d): GP posterior with 90% of the samples dropped")
    fig.tight_layout()
    save_figure(folder / "fig3d.png", fig, dpi=110)
    plt.close(fig)
    finish(folder, args, started, {"rows": rows, "observed": int(mask.sum())})


if __name__ == "__main__":
    main()
