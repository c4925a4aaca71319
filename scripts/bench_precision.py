"""CG in float64 against mixed precision (gpdip.gp.refine), side by side: JSON out.

    python scripts/bench_precision.py [--size 512] [--repeats 3] [--arch unet2 ...]

For each architecture: the window fit of output scale and noise on Lena with a 50%
Bernoulli mask (seed 0), then ``grid_posterior`` at tol 1e-6 with ``precision="float64"``
and ``"mixed"`` alternating (one thread), median seconds of ``--repeats``, CG iterations,
the float64 residual reached and the largest difference of the two posterior means.
``--noise`` fixes the noise instead of fitting it (the small-noise case of ``auto``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpdip.gp.hyper import fit_hyperparameters
from gpdip.gp.posterior import grid_posterior
from gpdip.gp.tables import make_kernel
from gpdip.io.images import channels_last, load_image
from gpdip.io.paths import shared_data_dir


def case(arch: str, image: torch.Tensor, mask: torch.Tensor, noise, repeats: int) -> dict:
    kernel = make_kernel(arch)
    hyper = fit_hyperparameters(kernel, image, mask, noise)
    size = tuple(image.shape)
    with torch.no_grad():
        table = kernel.table(size).detach().double()
    row: dict = {"noise": hyper["noise"], "outputscale": hyper["outputscale"]}
    means, walls = {}, {"float64": [], "mixed": []}
    for _ in range(repeats):
        for precision in walls:
            start = time.perf_counter()
            post = grid_posterior(table, image, mask, hyper["noise"], precision=precision)
            walls[precision].append(time.perf_counter() - start)
            means[precision] = post.mean
            row[f"{precision}_iterations"] = post.info["cg_iterations"]
            row[f"{precision}_residual"] = post.info["cg_residual"]
            row[f"{precision}_switched_at"] = post.info["cg_switched_at"]
    for precision, times in walls.items():
        row[f"{precision}_median_s"] = round(statistics.median(times), 3)
    row["mixed_over_float64"] = round(row["mixed_median_s"] / row["float64_median_s"], 3)
    row["max_mean_difference"] = float((means["mixed"] - means["float64"]).abs().max())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise", type=float, default=None, help="fixed noise (default: fit)")
    parser.add_argument(
        "--arch", nargs="+", default=["unet2", "ae-d3", "skip5-bilinear", "conv-d2-s6"]
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    image = channels_last(load_image(shared_data_dir() / "inpainting" / "Lena512.png"))
    image = image[: args.size, : args.size].contiguous()
    mask = torch.rand(image.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    rows = {arch: case(arch, image, mask, args.noise, args.repeats) for arch in args.arch}
    out = {
        "command": "python scripts/bench_precision.py " + " ".join(sys.argv[1:]),
        "size": args.size,
        "threads": 1,
        "load_average": os.getloadavg()[0],
        "cases": rows,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
