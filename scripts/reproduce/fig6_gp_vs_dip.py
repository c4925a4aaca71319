"""Paper Fig. 6: the DIP kernel vs an RBF, and GP-RBF / GP-DIP / DIP inpainting at 64×64.

    python scripts/reproduce/fig6_gp_vs_dip.py [--smoke] [--seed 0] [--images house Cameraman256]

(a) top: radial profile of the compiled `unet2` kernel beside the RBF whose lengthscale is
learned on the observed pixels.  (b–e): a 64×64 image with 50% of its pixels dropped
(Bernoulli, seeded), inpainted by the GP with the RBF kernel and with the DIP kernel (both
with hyperparameters, the DIP input sigma included, from the marginal likelihood of the
observed pixels only; ground truth is used only for the PSNR).  Bottom:
PSNR against channels, read from the channel sweep's results file
(results/dip/sweep/results.jsonl, written by scripts/channel_sweep.py) when present.
Writes results/fig6/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, finish, output_dir, parser

from gpdip import compile_kernel
from gpdip.dip.io import read_jsonl
from gpdip.gp import DIPKernel, inpaint
from gpdip.io.atomic import save_figure
from gpdip.io.images import channels_first, channels_last, load_image, psnr, ssim
from gpdip.io.paths import packaged_asset, shared_data_dir
from gpdip.io.plotting import radial_profile

PAPER = {"GP-RBF": 25.78, "GP-DIP": 26.34}  # paper Sec. 5.3, 64×64 (Fig. 6)


def load_64(name: str) -> torch.Tensor:
    """A 64×64 grayscale test image: the shared image downsampled (area), or the packaged one."""
    data = shared_data_dir()
    path = data / "inpainting" / f"{name}.png" if data else None
    image = channels_last(
        load_image(path if path and path.exists() else packaged_asset("house128.png"))
    )  # (H, W[, C])
    if image.dim() == 3:
        image = image.mean(-1)
    return torch.nn.functional.adaptive_avg_pool2d(image[None, None], 64)[0, 0]


def run_image(name: str, seed: int, arch: str, learn_sigma: bool) -> dict:
    clean = load_64(name)
    mask = torch.rand(clean.shape, generator=torch.Generator().manual_seed(seed)) < 0.5
    row: dict = {"image": name, "seed": seed, "observed": float(mask.double().mean())}
    posts = {}
    dip = DIPKernel(arch, learn=("sigma",), init={"sigma": 1.0}).double() if learn_sigma else arch
    for label, kernel in (("GP-RBF", "rbf"), ("GP-DIP", dip)):
        start = time.perf_counter()
        post = inpaint(clean * mask, mask, kernel=kernel, backend="dense")
        posts[label] = post
        row[label] = {
            "psnr": psnr(post.mean, clean),
            "ssim": ssim(channels_first(post.mean), channels_first(clean)),
            "seconds": round(time.perf_counter() - start, 2),
            "hyper": {
                k: v
                for k, v in post.info.get("hyper", {}).items()
                if isinstance(v, (int, float, str))
            },
        }
    return {"row": row, "clean": clean, "mask": mask, "posts": posts}


def sweep_rows() -> list[dict]:
    """The channel sweep's result rows (a torn last line of an interrupted sweep is skipped)."""
    return read_jsonl(RESULTS / "dip" / "sweep" / "results.jsonl")


def plot(result: dict, arch: str, sweep: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(14, 6.8))
    grid = fig.add_gridspec(2, 5)
    ax = fig.add_subplot(grid[0, 0])
    sigma = result["row"]["GP-DIP"]["hyper"].get("sigma")
    k = compile_kernel(arch, 32, params=None if sigma is None else {"sigma": sigma}).numpy()
    radii, values = radial_profile(k)
    ell = result["row"]["GP-RBF"]["hyper"].get("lengthscale", 2.0)
    dip_label = f"DIP ({arch}" + (f", σ={sigma:.2f})" if sigma is not None else ")")
    ax.plot(radii, values / values[0], "o-", ms=3, label=dip_label)
    ax.plot(radii, np.exp(-(radii**2) / (2 * ell**2)), "--", label=f"RBF ℓ={ell:.2f}")
    ax.set(title="(a) kernels", xlabel="|r|", ylabel="K(r)/K(0)")
    ax.legend(fontsize=7)
    panels = [
        ("(b) input", result["clean"] * result["mask"]),
        ("(c) truth", result["clean"]),
        ("(d) GP-RBF", result["posts"]["GP-RBF"].mean),
        ("(e) GP-DIP", result["posts"]["GP-DIP"].mean),
    ]
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(grid[0, 1 + i])
        ax.imshow(img.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        extra = ""
        if title.startswith("(d)") or title.startswith("(e)"):
            extra = f" {result['row'][title[4:]]['psnr']:.2f} dB"
        ax.set_title(title + extra, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, 1:4])
    # The sweep's SGLD rows with the width-scaled step size (docs/dip-sgld.md).
    sweep = [r for r in sweep if r.get("method") == "sgld" and r.get("lr_ref_width")]
    if sweep:
        widths = sorted({r["width"] for r in sweep if "width" in r})
        for key, label in (
            ("psnr_dip", "DIP"),
            ("psnr_gp", "GP-DIP kernel"),
            ("psnr_rbf", "GP-RBF"),
        ):
            means = [
                np.mean([r[key] for r in sweep if r.get("width") == w and key in r]) for w in widths
            ]
            ax.plot(widths, means, "o-", label=label)
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "channel sweep not run yet", ha="center", transform=ax.transAxes)
    ax.set(
        title="PSNR vs channels (channel sweep, DIP by SGLD, house 64×64)",
        xlabel="channels",
        ylabel="PSNR (dB)",
    )
    fig.subplots_adjust(hspace=0.35, wspace=0.3)
    save_figure(path, fig, dpi=110)
    plt.close(fig)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--images", nargs="+", default=["house", "Cameraman256", "peppers256", "barbara", "boat"]
    )
    p.add_argument("--arch", default="unet2")
    p.add_argument(
        "--fixed-sigma",
        action="store_true",
        help="keep the architecture's input sigma (default: learn it by marginal "
        "likelihood on the observed pixels, like the other hyperparameters)",
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    folder = output_dir("fig6", args)
    images = args.images[:1] if args.smoke else args.images
    results = [run_image(name, args.seed, args.arch, not args.fixed_sigma) for name in images]
    plot(results[0], args.arch, sweep_rows(), folder / "fig6.png")
    rows = [r["row"] for r in results]
    mean = {label: float(np.mean([r[label]["psnr"] for r in rows])) for label in PAPER}
    finish(
        folder,
        args,
        started,
        {
            "rows": rows,
            "mean_psnr": mean,
            "paper": PAPER,
            "arch": args.arch,
            "gp_dip_beats_rbf": mean["GP-DIP"] >= mean["GP-RBF"],
        },
    )


if __name__ == "__main__":
    main()
