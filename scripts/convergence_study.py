"""Convergence of finite DIP networks to their limits as the width grows (issue 9, items 4-5).

Parts (each appends one JSON line per (width, seed) to results/convergence/<part>.jsonl and
skips the ones already there, so an interrupted run resumes):

  gd     centred NTK-parameterised circular network trained by full-batch GD, against the
         exact NTK-GD prediction (dense float64 on the torus) at fixed steps.
  adam   the same centred network trained by Adam: its best-PSNR output against the NTK-GD
         trajectory (nearest point over t) and the NNGP posterior mean.
  prior  Monte Carlo NNGP and empirical NTK against the compiled tables (bias with the
         Monte Carlo floor removed).
  report tables (markdown, printed) and figures into docs/results/convergence/.

  PYTHONPATH=. python scripts/convergence_study.py gd --dims 1 --widths 16 32 64 128 256 512
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gpdip.experiments import ntk_study as study
from gpdip.finite.empirical_ntk import estimate_ntk
from gpdip.finite.montecarlo import estimate_kernel
from gpdip.io.images import channels_last, load_image
from gpdip.io.paths import packaged_asset
from gpdip.limit.compiler import compile_kernels

OUT = Path("results/convergence")


def task(dims: int, size: int, keep: float, seed: int = 0) -> dict:
    """The inpainting task: a row (1-D) or top-left crop (2-D) of house128, ``keep`` observed."""
    image = channels_last(load_image(packaged_asset("house128.png")))  # (H, W)
    truth = image[64, :size] if dims == 1 else image[:size, :size]
    shape = tuple(truth.shape)
    truth = truth.reshape(-1).double()
    n = truth.numel()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    observed = torch.sort(perm[: round(keep * n)]).values
    return {"shape": shape, "truth": truth, "observed": observed, "y_obs": truth[observed]}


def limit(args: argparse.Namespace, t: dict) -> dict:
    """Dense NNGP/NTK on the torus, the rate (a fraction of the stability bound)."""
    k, theta = study.torus_kernels(args.arch, t["shape"])
    obs = t["observed"]
    bound = study.stability_bound(theta[obs][:, obs])
    return {"k": k, "theta": theta, "bound": bound, "lr": args.lr_fraction * bound}


def done_keys(path: Path, siblings: bool = True) -> set[tuple]:
    """(width, seed) already in ``path`` or its tagged siblings (parallel workers)."""
    keys = set()
    pattern = path.stem.split("+")[0] + "*.jsonl" if siblings else path.name
    for sibling in path.parent.glob(pattern):
        keys |= {(r["width"], r["seed"]) for r in map(json.loads, sibling.read_text().splitlines())}
    return keys


def append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def run_gd(args: argparse.Namespace) -> None:
    t = task(args.dims, args.size, args.keep)
    lim = limit(args, t)
    pred = study.ntk_gd_prediction(lim["theta"], t["observed"], t["y_obs"], lim["lr"], args.steps)
    path = OUT / f"gd_{args.dims}d{args.tag}.jsonl"
    for seed in range(args.first_seed, args.seeds):
        for width in args.widths:
            if (width, seed) in done_keys(path):
                continue
            res = study.train_network(
                args.arch,
                t["shape"],
                t["observed"],
                t["y_obs"],
                width=width,
                seed=seed,
                lr=lim["lr"],
                steps=args.steps,
            )
            append(
                path,
                {
                    "arch": args.arch,
                    "dims": args.dims,
                    "size": args.size,
                    "width": width,
                    "seed": seed,
                    "lr": lim["lr"],
                    "bound": lim["bound"],
                    "steps": args.steps,
                    "dist": [study.rms(res.outputs[i], pred[i]) for i in range(len(args.steps))],
                    "pred_rms": [
                        float(pred[i].pow(2).mean().sqrt()) for i in range(len(args.steps))
                    ],
                    "psnr": [study.psnr(o, t["truth"]) for o in res.outputs],
                    "pred_psnr": [study.psnr(p, t["truth"]) for p in pred],
                    "seconds": res.seconds,
                    "output": res.outputs.tolist(),
                },
            )
            print(f"gd {args.dims}d width {width} seed {seed}: {res.seconds:.0f} s", flush=True)


def run_adam(args: argparse.Namespace) -> None:
    t = task(args.dims, args.size, args.keep)
    lim = limit(args, t)
    grid = sorted(set(np.unique(np.geomspace(1, 100 * max(args.steps), 400).astype(int))))
    traj = study.ntk_gd_prediction(lim["theta"], t["observed"], t["y_obs"], lim["lr"], grid)
    gp_mean, _ = study.gp_posterior(lim["k"], t["observed"], t["y_obs"], args.noise_var)
    path = OUT / f"adam_{args.dims}d{args.tag}.jsonl"
    for seed in range(args.first_seed, args.seeds):
        for width in args.widths:
            if (width, seed) in done_keys(path):
                continue
            steps = list(range(0, max(args.steps) + 1, 10))
            try:
                res = study.train_network(
                    args.arch,
                    t["shape"],
                    t["observed"],
                    t["y_obs"],
                    width=width,
                    seed=seed,
                    lr=args.adam_lr,
                    steps=steps,
                    optimizer="adam",
                    parameterization=args.parameterization,
                    truth=t["truth"],
                )
            except Exception as err:  # a diverged run is a result, recorded as such
                append(path, {"width": width, "seed": seed, "error": str(err)})
                continue
            best = int(np.argmax(res.psnr[steps]))
            f_best = res.outputs[best]
            to_traj = [study.rms(f_best, p) for p in traj]
            append(
                path,
                {
                    "arch": args.arch,
                    "dims": args.dims,
                    "width": width,
                    "seed": seed,
                    "adam_lr": args.adam_lr,
                    "parameterization": args.parameterization,
                    "best_step": steps[best],
                    "best_psnr": float(res.psnr[steps[best]]),
                    "dist_ntk_nearest": min(to_traj),
                    "ntk_nearest_step": int(grid[int(np.argmin(to_traj))]),
                    "dist_gp_mean": study.rms(f_best, gp_mean),
                    "psnr_curve": res.psnr[steps].tolist(),
                    "seconds": res.seconds,
                    "output": f_best.tolist(),
                },
            )
            print(f"adam {args.dims}d width {width} seed {seed}: {res.seconds:.0f} s", flush=True)


def run_prior(args: argparse.Namespace) -> None:
    size = args.kernel_size
    exact = dict(
        zip(("nngp", "ntk"), compile_kernels(args.arch, size, dims=args.dims), strict=True)
    )
    estimators = {"nngp": estimate_kernel, "ntk": estimate_ntk}
    path = OUT / f"prior_{args.dims}d{args.tag}.jsonl"
    for width in args.widths:
        if (width, 0) in done_keys(path, siblings=False):
            continue
        record = {
            "arch": args.arch,
            "dims": args.dims,
            "width": width,
            "seed": 0,
            "samples": args.samples,
        }
        for kind in ("nngp", "ntk"):
            if kind not in args.kinds:
                continue
            start = time.perf_counter()
            est = estimators[kind](
                args.arch, size, dims=args.dims, width=width, samples=args.samples, seed=width
            )
            bias, floor = study.debiased_error(est.mean, est.stderr, exact[kind], size - 1)
            record |= {
                f"{kind}_bias": bias,
                f"{kind}_floor": floor,
                f"{kind}_seconds": time.perf_counter() - start,
            }
        append(path, record)
        print(f"prior width {width}: {record}", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("part", choices=["gd", "adam", "prior", "report"])
    p.add_argument("--arch", default="conv-d3-s2")
    p.add_argument("--dims", type=int, default=1)
    p.add_argument("--size", type=int, default=128, help="signal length / image side")
    p.add_argument("--keep", type=float, default=0.5, help="fraction observed")
    p.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, nargs="+", default=[30, 300, 1000])
    p.add_argument(
        "--lr-fraction",
        type=float,
        default=0.5,
        help="GD rate as a fraction of the stability bound 2/lambda_max(Theta_oo)",
    )
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--tag", default="", help="file suffix '+NAME' for a parallel worker")
    p.add_argument("--adam-lr", type=float, default=0.01)
    p.add_argument("--parameterization", default="standard", help="for Adam")
    p.add_argument("--noise-var", type=float, default=1e-4, help="GP posterior noise")
    p.add_argument("--samples", type=int, default=64, help="prior: networks per width")
    p.add_argument("--kinds", nargs="+", default=["nngp", "ntk"], help="prior: kernels")
    p.add_argument("--kernel-size", type=int, default=8, help="prior: table offsets < S")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.part == "report":
        from convergence_report import report  # scripts/ is on sys.path when run as a script

        t = task(1, args.size, args.keep)
        lim = limit(args, t)
        gp_mean, _ = study.gp_posterior(lim["k"], t["observed"], t["y_obs"], args.noise_var)
        report(OUT, Path("docs/results/convergence"), study.psnr(gp_mean, t["truth"]))
        return
    {"gd": run_gd, "adam": run_adam, "prior": run_prior}[args.part](args)


if __name__ == "__main__":
    sys.exit(main())
