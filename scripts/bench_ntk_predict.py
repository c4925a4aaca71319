"""Benchmark ``gpdip.ntk.predict_gd`` on a 512x512 image: time and Lanczos steps, as JSON.

    PYTHONPATH=$PWD python scripts/bench_ntk_predict.py [--size 512] [--arch unet2] [--hard]

Cases (steps 30, 300, 3000, 10000 unless ``--steps``; lr = 1/λ_max upper bound):
inpainting (50% random mask) and denoising (every pixel observed, noise sd 0.1), on the
non-periodic grid and on the torus, each with the ground truth (PSNR per step and the
best step over a dense grid of steps, from the same Lanczos basis).  ``time_s`` is wall
time of the prediction alone, ``cpu_s`` the CPU time of all threads (closer to an idle
machine's wall time when the machine is shared).  ``--hard`` adds an
exponential kernel with no constant part (ℓ = 6 px), whose spectrum is far less
dominated by its top eigenvalue than a DIP kernel's: the Lanczos count there shows how
the method scales when GD fits much of the image within the requested steps.

Θ is the architecture's NTK table (:func:`gpdip.ntk.kernel_tables`; its compile time is
reported separately).  Timings on a shared machine need an idle rerun.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gpdip.gp.grid import table_from_offsets
from gpdip.io.images import channels_last, load_image
from gpdip.io.paths import shared_data_dir
from gpdip.ntk import kernel_tables, predict_gd
from gpdip.ntk.operators import ObservedBlock, grid_operator, lambda_max_bounds


def test_image(size: int) -> tuple[torch.Tensor, str]:
    """Lena (grey) cropped to ``size`` if the shared data is present, else a smooth pattern."""
    root = shared_data_dir()
    path = root / "inpainting" / "Lena512.png" if root is not None else None
    if path is not None and path.exists():
        image = channels_last(load_image(path))
        image = image.mean(-1) if image.dim() == 3 else image
        return image[:size, :size].contiguous(), str(path)
    x = torch.linspace(0, 8, size, dtype=torch.float64)
    return 0.5 + 0.25 * torch.sin(x)[:, None] * torch.cos(1.3 * x)[None, :], "synthetic"


def run_case(
    name: str,
    table: torch.Tensor,
    truth: torch.Tensor,
    observed: torch.Tensor,
    mask: torch.Tensor,
    boundary: str,
    steps: list[int],
    curve: bool = True,
) -> dict:
    _, upper = lambda_max_bounds(
        ObservedBlock(grid_operator(table, boundary), mask), table, boundary
    )
    lr = 1.0 / upper
    start, cpu = time.perf_counter(), time.process_time()
    bare = predict_gd(observed, table, lr, steps, mask, boundary=boundary)
    bare_s, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    pred = predict_gd(observed, table, lr, steps, mask, truth if curve else None, boundary=boundary)
    with_truth_s = time.perf_counter() - start
    return {
        "case": name,
        "boundary": boundary,
        "observed_fraction": float(mask.double().mean()),
        "lr": lr,
        "steps": steps,
        "time_s": bare_s,
        "cpu_s": bare_cpu,
        "time_with_psnr_curve_s": with_truth_s,
        "method": bare.info["method"],
        "lanczos_steps": bare.info["lanczos_steps"],
        "change": bare.info["change"],
        "converged": bare.info["converged"],
        "psnr": pred.psnr,
        "best_step": pred.best_step,
        "best_psnr": pred.best_psnr,
        "curve_points": len(pred.curve),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--arch", default="unet2")
    parser.add_argument("--steps", default="30,300,3000,10000")
    parser.add_argument("--hard", action="store_true", help="add the exponential kernel case")
    parser.add_argument("--only-hard", action="store_true", help="the exponential kernel only")
    parser.add_argument("--boundaries", default="toeplitz,circular")
    parser.add_argument("--no-curve", action="store_true", help="skip the PSNR-curve rerun")
    args = parser.parse_args()
    steps = [int(float(s)) for s in args.steps.split(",")]
    size = (args.size, args.size)
    gen = torch.Generator().manual_seed(0)
    truth, image_name = test_image(args.size)
    mask = torch.rand(size, generator=gen) < 0.5
    noisy = truth + 0.1 * torch.randn(size, generator=gen, dtype=torch.float64)
    start = time.perf_counter()
    theta, _ = kernel_tables(args.arch, size, dims=2)
    records: list[dict] = [
        {
            "compile_s": time.perf_counter() - start,
            "arch": args.arch,
            "image": image_name,
            "size": size,
            "threads": torch.get_num_threads(),
            "theta": "NTK table (compile_kernels, ntk=True)",
        }
    ]
    tables = {} if args.only_hard else {args.arch: theta}
    if args.hard or args.only_hard:
        tables["exp-l6"] = table_from_offsets(lambda r: torch.exp(-r / 6.0), size)
    for name, table in tables.items():
        for boundary in args.boundaries.split(","):
            records.append(
                run_case(
                    f"{name} inpaint",
                    table,
                    truth,
                    truth * mask,
                    mask,
                    boundary,
                    steps,
                    not args.no_curve,
                )
            )
            records.append(
                run_case(
                    f"{name} denoise",
                    table,
                    truth,
                    noisy,
                    torch.ones(size, dtype=torch.bool),
                    boundary,
                    steps,
                    not args.no_curve,
                )
            )
            print(json.dumps(records[-2:], default=float), flush=True)
    print(json.dumps(records, indent=1, default=float))


if __name__ == "__main__":
    main()
