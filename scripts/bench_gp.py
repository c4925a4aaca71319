"""Benchmark of the GP engine; prints JSON (docs/benchmarks-gp.md holds the tables).

Usage: python scripts/bench_gp.py [--quick] [--lookup-only [--lookup-size 64]]
       [--fit-solve-only] [--images N] [--precond-only [--precond-sizes 128 512]]

``--fit-solve-only`` runs only the model-selection and small-noise measurements:
``--kernel auto`` at 512^2 (noise 1e-2 and 1e-4), CG iterations of the circulant and
extension preconditioners (synthetic 512^2 and the shared inpainting images, 50%
Bernoulli masks) and a 1024^2 RGB inpainting with ``auto``.  The machine's load
average is recorded: numbers taken under load need an idle rerun.

``--precond-only`` runs the preconditioner grid (issue 12 item 4): CG iterations of
``precond="extension"`` (before), ``"schwarz"`` and ``"auto"`` for conv-d2-s6, unet2
and skip5-bilinear at noise 1e-2 and 1e-4, on centre crops of Lena512, tol 1e-6, with
CPU seconds per matvec / preconditioner application (iteration counts are the robust
figure on a loaded machine).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import torch

from gpdip.errors import GpdipError
from gpdip.gp import inpaint
from gpdip.gp.cg import extension_preconditioner
from gpdip.gp.gpytorch_backend import gpytorch_posterior
from gpdip.gp.grid import grid_coordinates
from gpdip.gp.hyper import fit_hyperparameters
from gpdip.gp.kernels import DIPKernel, Matern52Table, interpolate_table
from gpdip.gp.posterior import grid_posterior
from gpdip.gp.precond import schwarz_preconditioner
from gpdip.gp.sampling import CirculantSampler
from gpdip.gp.tables import make_kernel
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator
from gpdip.io.images import channels_last, load_image, psnr
from gpdip.io.paths import shared_data_dir


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def test_image(size: int) -> torch.Tensor:
    base = channels_last(
        load_image(Path(__file__).resolve().parents[1] / "gpdip/assets/house128.png")
    )
    reps = -(-size // 128)
    return base.repeat(reps, reps)[:size, :size].contiguous()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_mean(kernel, size, noise, tol, gen):
    img = test_image(size)
    mask = torch.rand(img.shape, generator=gen) < 0.5
    table, t_table = timed(lambda: kernel.table((size, size)).detach())
    post, t = timed(lambda: grid_posterior(table, img, mask, noise, tol=tol))
    return {
        "size": size,
        "noise": noise,
        "tol": tol,
        "table_s": t_table,
        "solve_s": t,
        "cg_iterations": post.info["cg_iterations"],
        "residual": post.info["cg_residual"],
        "psnr": psnr(post.mean, img),
        "peak_rss_gb": peak_rss_gb(),
    }


def bench_vs_gpytorch(kernel, gen, size):
    img = test_image(size)
    mask = torch.rand(img.shape, generator=gen) < 0.5
    table = kernel.table((size, size)).detach()
    g, t_grid = timed(lambda: grid_posterior(table, img, mask, 1e-3, tol=1e-6))
    mu = float(img[mask].mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, t_gp = timed(lambda: gpytorch_posterior(kernel, img, mask, 1e-3, mu, False))
    rel = float((g.mean - ref.mean).norm() / ref.mean.norm())
    return {
        "size": size,
        "grid_s": t_grid,
        "gpytorch_s": t_gp,
        "speedup": t_gp / t_grid,
        "rel_diff_grid_vs_gpytorch": rel,
    }


def interpolating_copy(kernel: DIPKernel) -> DIPKernel:
    """The DIP kernel as it was before the integer lookup: bilinear interpolation always."""
    old = copy.deepcopy(kernel)
    unit = old.base_kernel

    def forward(x1, x2, diag=False, **params):
        d = x1 - x2 if diag else x1[..., :, None, :] - x2[..., None, :, :]
        extent = d.detach().abs().reshape(-1, d.shape[-1]).amax(0)
        size = tuple(int(e) + 2 for e in extent.tolist())
        return interpolate_table(unit.unit_table(size).to(x1.dtype), d)

    unit.forward = forward
    return old


def bench_dip_lookup(kernel: DIPKernel, gen, size: int) -> dict:
    """DIPKernel.forward on pixel coordinates: direct lookup (new) vs interpolation (old).

    Times the dense ``K(X, X)`` of a ``size^2`` grid and GPyTorch's ExactGP posterior mean
    (half the pixels observed, noise 1e-3), each with both forwards.
    """
    old = interpolating_copy(kernel)
    x = grid_coordinates((size, size))
    with torch.no_grad():
        k_new, t_new = timed(lambda: kernel(x, x).to_dense())
        k_old, t_old = timed(lambda: old(x, x).to_dense())
    max_diff = float((k_new - k_old).abs().max())
    del k_new, k_old
    img = test_image(size)
    mask = torch.rand(img.shape, generator=gen) < 0.5
    mu = float(img[mask].mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_new, s_new = timed(lambda: gpytorch_posterior(kernel, img, mask, 1e-3, mu, False))
        p_old, s_old = timed(lambda: gpytorch_posterior(old, img, mask, 1e-3, mu, False))
    return {
        "size": size,
        "kernel_matrix_new_s": t_new,
        "kernel_matrix_old_s": t_old,
        "kernel_matrix_ratio_old_over_new": t_old / t_new,
        "kernel_matrix_max_abs_diff": max_diff,
        "gpytorch_mean_new_s": s_new,
        "gpytorch_mean_old_s": s_old,
        "gpytorch_mean_ratio_old_over_new": s_old / s_new,
        "gpytorch_mean_max_abs_diff": float((p_new.mean - p_old.mean).abs().max()),
    }


def bench_auto(size: int, noise: float, gen: torch.Generator) -> dict:
    """Whole ``inpaint(..., kernel="auto")``: window fit of every candidate + batched CG."""
    img = test_image(size)
    mask = torch.rand(img.shape, generator=gen) < 0.5
    post, t = timed(
        lambda: inpaint(img * mask, mask, "auto", noise=noise, backend="grid", tol=1e-4)
    )
    hyper = post.info["hyper"]
    return {
        "size": size,
        "noise": noise,
        "tol": 1e-4,
        "seconds": t,
        "chosen": hyper["kernel"],
        "outputscale": hyper["outputscale"],
        "cg_iterations": post.info["cg_iterations"],
        "psnr": psnr(post.mean, img),
        "load_average": os.getloadavg()[0],
    }


def bench_precond(
    name: str,
    img: torch.Tensor,
    noise: float,
    gen: torch.Generator,
    kernel: str = "conv-d2-s6",
    max_iter: int = 1500,
) -> dict:
    """CG iterations and seconds, circulant (before) vs extension (after), at equal tol.

    The output scale is fitted on the windows with the noise fixed, as ``auto`` does.
    """
    mask = torch.rand(img.shape, generator=gen) < 0.5
    k = make_kernel(kernel)
    fit = fit_hyperparameters(k, img, mask, noise=noise)
    table = k.table(tuple(img.shape)).detach()
    row: dict = {
        "image": name,
        "size": list(img.shape),
        "kernel": kernel,
        "noise": noise,
        "outputscale": fit["outputscale"],
        "tol": 1e-4,
    }
    means = {}
    for precond in ("circulant", "extension"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post, t = timed(
                lambda p=precond: grid_posterior(
                    table, img, mask, noise, tol=1e-4, max_iter=max_iter, precond=p
                )
            )
        means[precond] = post.mean
        row[precond] = {
            "cg_iterations": post.info["cg_iterations"],
            "seconds": t,
            "residual": post.info["cg_residual"],
        }
    row["max_abs_mean_difference"] = float((means["circulant"] - means["extension"]).abs().max())
    row["load_average"] = os.getloadavg()[0]
    return row


def bench_rgb_1024(gen: torch.Generator) -> dict:
    """1024x1024 RGB with ``auto``: one window fit on the channel mean, one batched CG."""
    grey = test_image(1024)
    img = torch.stack([grey, grey.flip(0), grey.flip(1)], -1)
    mask = torch.rand(grey.shape, generator=gen) < 0.5
    post, t = timed(lambda: inpaint(img * mask[..., None], mask, "auto", backend="grid", tol=1e-4))
    hyper = post.info["hyper"]
    return {
        "size": [1024, 1024, 3],
        "seconds": t,
        "chosen": hyper["kernel"],
        "noise": hyper["noise"],
        "cg_iterations": post.info["cg_iterations"],
        "psnr": psnr(post.mean, img),
        "load_average": os.getloadavg()[0],
    }


def per_call_cpu(fn, repeats: int = 5) -> float:
    """Median CPU seconds (``time.process_time``) of ``fn()``: less load-sensitive than wall."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return sorted(times)[len(times) // 2]


def precond_image(size: int) -> tuple[str, torch.Tensor]:
    """Centre crop of the shared Lena512 (grey), or the tiled house128 without the data."""
    folder = shared_data_dir()
    path = folder / "inpainting" / "Lena512.png" if folder is not None else None
    if path is None or not path.exists():
        return "house128-tiled", test_image(size).double()
    img = channels_last(load_image(path))
    img = img.mean(-1) if img.dim() == 3 else img
    off = (img.shape[0] - size) // 2
    return "Lena512-centre", img[off : off + size, off : off + size].contiguous().double()


def bench_precond_grid(kernel: str, noise: float, size: int, tol: float = 1e-6) -> dict:
    """CG iterations of the extension, Schwarz and auto preconditioners on one case.

    50% Bernoulli mask (seed 0), output scale fitted at fixed noise as ``auto`` does,
    tol 1e-6; CPU seconds per matvec and per preconditioner application (median of 5,
    one right-hand side) and the Schwarz set-up.  Means are compared with extension's.
    """
    name, img = precond_image(size)
    mask = torch.rand(img.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    k = make_kernel(kernel)
    fit = fit_hyperparameters(k, img, mask, noise=noise)
    table = (fit["outputscale"] * k.table(tuple(img.shape))).detach().double()
    row: dict = {"image": name, "size": size, "kernel": kernel, "noise": noise, "tol": tol}
    row["outputscale"] = fit["outputscale"]
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(noise))
    v = op.scatter(torch.randn(int(mask.sum()), dtype=torch.float64)).reshape(1, -1)
    ext = extension_preconditioner(op)
    schwarz, setup = timed_cpu(lambda: schwarz_preconditioner(op))
    row["cpu_s"] = {
        "matvec": per_call_cpu(lambda: op.matvec_full(v)),
        "extension_apply": per_call_cpu(lambda: ext(v)),
        "schwarz_apply": per_call_cpu(lambda: schwarz(v)),
        "schwarz_setup": setup,
    }
    means = {}
    for precond in ("extension", "schwarz", "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post, t = timed_cpu(
                lambda p=precond: grid_posterior(
                    table, img, mask, noise, tol=tol, max_iter=3000, precond=p
                )
            )
        means[precond] = post.mean
        row[precond] = {
            "cg_iterations": post.info["cg_iterations"],
            "switched_at": post.info["cg_switched_at"],
            "residual": post.info["cg_residual"],
            "cpu_s": t,
            # the whole grid_posterior call (incl. any Schwarz set-up) per CG iteration
            "cpu_s_per_iteration": t / max(post.info["cg_iterations"], 1),
        }
    for precond in ("schwarz", "auto"):
        diff = (means[precond] - means["extension"]).abs().max()
        row[precond]["max_abs_mean_diff_vs_extension"] = float(diff)
    row["load_average"] = os.getloadavg()[0]
    return row


def timed_cpu(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def precond_grid(args) -> dict:
    res: dict = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "load_average_start": os.getloadavg(),
        "cases": [],
    }
    for size in args.precond_sizes:
        for kernel in ("conv-d2-s6", "unet2", "skip5-bilinear"):
            for noise in (1e-2, 1e-4):
                try:
                    row = bench_precond_grid(kernel, noise, size)
                except GpdipError as exc:
                    row = {"size": size, "kernel": kernel, "noise": noise, "error": str(exc)}
                res["cases"].append(row)
                print(json.dumps(row), flush=True)
    res["load_average_end"] = os.getloadavg()
    return res


def fit_and_solve(args, gen: torch.Generator) -> dict:
    res: dict = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "load_average_start": os.getloadavg(),
    }
    for noise in (1e-2, 1e-4):
        res[f"auto_512_noise{noise:g}"] = bench_auto(512, noise, gen)
        print(json.dumps(res), flush=True)
    res["precond"] = []
    cases = [("house128-tiled", test_image(512))]
    folder = shared_data_dir()
    if folder is not None and args.images:
        for path in sorted((folder / "inpainting").glob("*.png"))[: args.images]:
            img = channels_last(load_image(path))
            cases.append((path.stem, img.mean(-1) if img.dim() == 3 else img))
    for name, img in cases:
        for noise in (1e-2, 1e-4):
            res["precond"].append(bench_precond(name, img, noise, gen))
            print(json.dumps(res["precond"][-1]), flush=True)
    res["rgb_1024_auto"] = bench_rgb_1024(gen)
    res["load_average_end"] = os.getloadavg()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 512 and GPyTorch runs")
    ap.add_argument(
        "--gpytorch-size",
        type=int,
        default=64,
        help="image side for the GPyTorch comparison (128 takes > 30 min here)",
    )
    ap.add_argument(
        "--lookup-only",
        action="store_true",
        help="run only the DIPKernel integer-lookup vs interpolation case",
    )
    ap.add_argument("--lookup-size", type=int, default=64)
    ap.add_argument(
        "--fit-solve-only",
        action="store_true",
        help="only the auto / preconditioner / 1024 RGB measurements",
    )
    ap.add_argument(
        "--precond-only",
        action="store_true",
        help="only the preconditioner grid: {conv-d2-s6, unet2, skip5-bilinear} x noise "
        "{1e-2, 1e-4} x --precond-sizes, extension vs schwarz vs auto",
    )
    ap.add_argument("--precond-sizes", type=int, nargs="+", default=[128, 512])
    ap.add_argument(
        "--images",
        type=int,
        default=11,
        help="shared inpainting images in the preconditioner comparison",
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    if args.precond_only:
        print(json.dumps(precond_grid(args), indent=1))
        return
    if args.fit_solve_only:
        print(json.dumps(fit_and_solve(args, gen), indent=1))
        return
    kernel = DIPKernel("unet2", outputscale=0.05).double()
    if args.lookup_only:
        print(json.dumps({"dip_lookup": bench_dip_lookup(kernel, gen, args.lookup_size)}, indent=1))
        return
    res: dict = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "kernel": "DIPKernel('unet2'), outputscale 0.05",
    }
    # the compiler limits unet2 tables to about 1024 (phase-table size): use the exact
    # 1024 table, i.e. the minimal odd embedding of period 2047
    try:
        table, t_table = timed(lambda: kernel.table(1024).detach())
    except GpdipError as exc:  # the compiler refuses unet2 at 1024: use a Matern-5/2 table
        res["prior_sample_1024_note"] = f"DIP table unavailable ({str(exc)[:80]}...); Matern52"
        table, t_table = timed(lambda: Matern52Table(5.0).double().table(1025).detach())
    try:
        # The DIP kernel has a constant floor, so the minimal embedding of the 1024 table is
        # not PSD; a callable lets the sampler grow the torus with exact compiled values.
        source = (
            (lambda s: kernel.table(s).detach()) if "prior_sample_1024_note" not in res else table
        )
        sampler, t_setup = timed(lambda: CirculantSampler(source, 1024))
        _, t_sample = timed(lambda: sampler.sample(1, gen))
        res["prior_sample_1024"] = {
            "compile_s": t_table,
            "setup_s": t_setup,
            "sample_s": t_sample,
            "period": sampler.period,
        }
    except GpdipError as exc:
        res["prior_sample_1024"] = {"compile_s": t_table, "error": str(exc)}
    print(json.dumps(res), flush=True)
    img = test_image(256)
    mask = torch.rand(img.shape, generator=gen) < 0.5
    post, t = timed(
        lambda: inpaint(
            img,
            mask,
            kernel,
            noise=1e-3,
            fit=False,
            backend="grid",
            std=True,
            n_samples=16,
            tol=1e-4,
            generator=gen,
        )
    )
    res["std_map_256"] = {
        "seconds": t,
        "n_samples": 16,
        "mc_rel_error": post.info["std_mc_relative_error"],
    }
    print(json.dumps(res), flush=True)
    if not args.quick:
        res["mean_512_noise1e-3"] = bench_mean(kernel, 512, 1e-3, 1e-4, gen)
        print(json.dumps(res), flush=True)
        res["mean_512_noise1e-4"] = bench_mean(kernel, 512, 1e-4, 1e-4, gen)
        print(json.dumps(res), flush=True)
        res["vs_gpytorch"] = bench_vs_gpytorch(kernel, gen, args.gpytorch_size)
        print(json.dumps(res), flush=True)
        res["dip_lookup"] = bench_dip_lookup(kernel, gen, args.lookup_size)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
