"""Schwarz preconditioner variants on the small-noise ``--kernel auto`` solves: JSON out.

    OMP_NUM_THREADS=1 python scripts/bench_precond_1024.py [--cases rgb1024 grey512]
        [--variants legacy csr20 csr] [--modes auto schwarz] [--repeats 5] [--switch-at 10 20]

The operator is the one ``gpdip inpaint IMAGE --mask MASK --kernel auto`` builds for the
1024x1024 RGB Lena of ``scripts/bench_whole_process.py`` (bicubic upsampling of
``image_Lena512rgb.png``, 50% Bernoulli mask from ``default_rng(0)`` drawn after the 512
one): ``auto`` picks conv-d4-s6, output scale 0.01466, noise 1.4655e-7 (hard-coded here,
as the task allows), grid backend in float64, prior mean = observed mean per channel, the
three channels one batched CG at tol 1e-6.  ``grey512`` is the shared Lena512 (grey) with
the 512 mask and the same kernel and noise.

Variants: ``legacy`` (before: float64 local inverses in 8 buckets, one bmm, gather and
``index_add_`` per bucket; ``auto`` probes first at iteration 20), ``csr20`` (the same
``P^{-1}`` summed into one CSR matrix, :func:`schwarz_preconditioner` now; first probe
still at 20) and ``csr`` (now: CSR and the first probe at :data:`FIRST_PROBE`).  Ratios
are last variant over first.  Per case and variant: set-up and
per-application CPU seconds (medians of ``--repeats``), the matvec, and whole CG solves
(``auto``: extension then Schwarz by :func:`schwarz_switch`; ``schwarz``: from the start;
``switch@k``: extension for exactly ``k`` iterations), each with iterations, the true
final relative residual and CPU seconds including the set-up.  Times on a shared machine
need an idle rerun; the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpdip.gp.cg import MatVec, conjugate_gradients, extension_preconditioner
from gpdip.gp.grid import crop_table, dense_from_table
from gpdip.gp.precond import (
    FIRST_PROBE,
    PATCH,
    PROBE,
    STRIDE,
    _local_inverses,
    _patch_pixels,
    schwarz_preconditioner,
    schwarz_switch,
)
from gpdip.gp.tables import make_table
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator
from gpdip.io.paths import shared_data_dir

KERNEL, OUTPUTSCALE, NOISE, TOL = "conv-d4-s6", 0.01466, 1.4655e-7, 1e-6
LEGACY_BUCKETS = 8  # the set-up's groups before


def inputs(case: str) -> tuple[Tensor, Tensor]:
    """``(planes (C, H, W) float64 in [0, 1], mask (H, W) bool)`` as the CLI reads them."""
    data = shared_data_dir()
    if data is None:
        raise SystemExit("shared data folder not found (needs Lena512 images)")
    rng = np.random.default_rng(0)  # same draws as bench_whole_process.make_inputs
    masks = {side: rng.random((side, side)) < 0.5 for side in (512, 1024)}
    if case == "rgb1024":
        rgb = Image.open(data / "denoising" / "image_Lena512rgb.png").convert("RGB")
        # the PNG round trip of make_inputs is lossless: 8-bit values as written
        pixels = np.asarray(rgb.resize((1024, 1024), Image.Resampling.BICUBIC), dtype=np.float64)
        return torch.from_numpy(pixels / 255.0).permute(2, 0, 1), torch.from_numpy(masks[1024])
    grey = Image.open(data / "inpainting" / "Lena512.png").convert("L")
    pixels = np.asarray(grey, dtype=np.float64)[None] / 255.0
    return torch.from_numpy(pixels), torch.from_numpy(masks[512])


def operator(case: str) -> tuple[MaskedGridOperator, Tensor]:
    """``(op, rhs (C, H*W))``: full-grid right-hand sides vanishing off the mask."""
    planes, mask = inputs(case)
    kernel = make_table(KERNEL)
    kernel.outputscale = OUTPUTSCALE
    table = kernel.table(tuple(mask.shape)).detach().to(torch.float64)
    op = MaskedGridOperator(
        GridKernelOperator(table, torch.float64), mask, torch.tensor(NOISE, dtype=torch.float64)
    )
    ys = op.gather(planes)
    ys = ys - ys.mean(1, keepdim=True)  # mean="observed"
    return op, op.scatter(ys).reshape(ys.shape[0], -1)


def legacy_schwarz(op: MaskedGridOperator) -> MatVec:
    """The previous apply (kept here as the baseline): buckets, bmm, ``index_add_``."""
    size = tuple(op.base.grid_size)
    n = math.prod(size)
    pixels = _patch_pixels(size, PATCH, STRIDE)
    sides = tuple(min(PATCH, s) for s in size)
    k_pp = dense_from_table(crop_table(op.base.table.detach(), sides), sides)
    observed = op.mask[pixels]
    groups = torch.tensor_split(torch.argsort(observed.sum(1)), LEGACY_BUCKETS)
    tops = [int(observed[g].sum(1).max()) for g in groups]
    noise = float(op.noise)
    blocks = [
        _local_inverses(k_pp, pixels[g], observed[g], m, noise, n)
        for g, m in zip(groups, tops, strict=True)
    ]

    def apply(v: Tensor) -> Tensor:
        rows = v.reshape(-1, n).to(torch.float64)
        padded = torch.cat([rows, rows.new_zeros(rows.shape[0], 1)], 1)
        out = torch.zeros_like(padded)
        for inverse, index in blocks:
            local = padded[:, index.reshape(-1)].reshape(rows.shape[0], *index.shape)
            z = torch.bmm(inverse, local.permute(1, 2, 0))
            out.index_add_(1, index.reshape(-1), z.permute(2, 0, 1).reshape(rows.shape[0], -1))
        return out[:, :n].reshape(v.shape).to(v.dtype)

    return apply


#: name -> (Schwarz builder, first probe of the ``auto`` switch)
VARIANTS = {
    "legacy": (legacy_schwarz, PROBE),  # before: bucket apply, first probe at 20
    "csr20": (schwarz_preconditioner, PROBE),  # the CSR apply alone
    "csr": (schwarz_preconditioner, FIRST_PROBE),  # now: CSR apply, first probe at 5
}


def cpu_median(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return round(statistics.median(times), 4), out


def solve(op: MaskedGridOperator, rhs: Tensor, build, first: int, mode: str) -> dict:
    """One CG solve to ``TOL`` in ``mode``; CPU seconds include the Schwarz set-up."""
    start = time.process_time()
    if mode == "schwarz":
        x, info = conjugate_gradients(op.matvec_full, rhs, build(op), TOL, 1000)
    else:
        if mode == "auto":
            switch = schwarz_switch(op, TOL, build=build, first=first)
        else:  # switch@k
            at = int(mode.partition("@")[2])
            switch = lambda it, rel: build(op) if it == at else None  # noqa: E731
        x, info = conjugate_gradients(
            op.matvec_full, rhs, extension_preconditioner(op), TOL, 1000, switch=switch
        )
    seconds = time.process_time() - start
    true = float(((rhs - op.matvec_full(x)).norm(dim=1) / rhs.norm(dim=1)).max())
    return {
        "cpu_s": round(seconds, 2),
        "iterations": info.iterations,
        "switched_at": info.switched_at,
        "true_relative_residual": true,
    }


def measure(case: str, variants: list[str], modes: list[str], repeats: int) -> dict:
    op, rhs = operator(case)
    row: dict = {"rhs": rhs.shape[0], "observed": int(op.mask.sum())}
    row["matvec_s"], _ = cpu_median(lambda: op.matvec_full(rhs), repeats)
    extension = extension_preconditioner(op)
    row["extension_apply_s"], _ = cpu_median(lambda: extension(rhs), repeats)
    outputs: dict[str, Any] = {}
    for name in variants:
        build, first = VARIANTS[name]
        setup, apply = cpu_median(lambda b=build: b(op), min(repeats, 3))
        per_apply, outputs[name] = cpu_median(lambda a=apply: a(rhs), repeats)
        del apply
        res: dict[str, Any] = {"setup_s": setup, "apply_s": per_apply}
        for mode in modes:
            res[mode] = solve(op, rhs, build, first, mode)
        row[name] = res
        print(json.dumps({case: {name: res}}), file=sys.stderr, flush=True)
    old, new = variants[0], variants[-1]
    if old != new:
        row["apply_max_relative_difference"] = float(
            (outputs[new] - outputs[old]).norm() / outputs[old].norm()
        )
        row["ratio_new_over_old"] = {
            key: round(row[new][key] / row[old][key], 3) for key in ("setup_s", "apply_s")
        } | {f"{m}_cpu_s": round(row[new][m]["cpu_s"] / row[old][m]["cpu_s"], 3) for m in modes}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["rgb1024", "grey512"])
    parser.add_argument(
        "--variants", nargs="+", default=["legacy", "csr20", "csr"], choices=VARIANTS
    )
    parser.add_argument("--modes", nargs="+", default=["auto", "schwarz"])
    parser.add_argument("--switch-at", nargs="*", type=int, default=[])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    modes = args.modes + [f"switch@{k}" for k in args.switch_at]
    result: dict = {
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_start": os.getloadavg()[0],
        "kernel": {"name": KERNEL, "outputscale": OUTPUTSCALE, "noise": NOISE, "tol": TOL},
    }
    for case in args.cases:
        result[case] = measure(case, args.variants, modes, args.repeats)
    result["load_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
