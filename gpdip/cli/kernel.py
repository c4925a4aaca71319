"""``gpdip kernel``: compile an architecture (or estimate it by Monte Carlo) to a table.

gpdip kernel unet2 --size 32 --out K.npy --plot K.png --json
gpdip kernel conv-d3 --size 16 --dims 1 --empirical --width 256 --samples 200 --out Kmc.npy
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from gpdip.cli.args import SEED, integer, parse_number
from gpdip.errors import GpdipError
from gpdip.io.atomic import check_writable, save_npy

MAX_SIZE = 2048  # S: tables of (2S-1)^dims entries

_SETTABLE = {"input.sigma": "sigma", "input.variance": "variance"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``kernel`` sub-command."""
    p = subparsers.add_parser(
        "kernel",
        help="compile an architecture to its limiting covariance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("arch", help="catalog name (see --list) or path to a TOML file")
    p.add_argument(
        "--size", type=integer(1, MAX_SIZE), default=32, help="S: the table covers offsets |r| < S"
    )
    p.add_argument("--dims", type=int, choices=(1, 2), default=2)
    p.add_argument(
        "--kind",
        choices=("nngp", "ntk"),
        default="nngp",
        help="nngp: the output covariance (default); ntk: the neural tangent kernel "
        "of the NTK parameterisation, which gradient descent follows",
    )
    p.add_argument("--out", type=Path, help="output .npy, shape (2S-1,)*dims, float64")
    p.add_argument("--plot", type=Path, help="PNG: the table and its radial profile vs an RBF")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a value ({', '.join(_SETTABLE)})",
    )
    p.add_argument(
        "--empirical",
        action="store_true",
        help="Monte Carlo estimate from sampled finite networks instead",
    )
    p.add_argument(
        "--width", type=integer(1, 65536), default=256, help="widest layer of the sampled networks"
    )
    p.add_argument(
        "--samples", type=integer(2, 1_000_000), default=200, help="number of sampled networks"
    )
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument(
        "--max-entries",
        type=integer(1, 10**12),
        default=None,
        help="largest phase table allowed (cyclostationary kernels)",
    )
    p.set_defaults(func=run)


def _apply_sets(arch, sets: list[str]):
    changes = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or key not in _SETTABLE:
            raise GpdipError(
                f"--set: expected KEY=VALUE with KEY in {', '.join(_SETTABLE)}, got {item!r}"
            )
        try:
            number = parse_number(value)
        except ValueError:
            number = float("nan")
        if not math.isfinite(number) or number < 0:
            raise GpdipError(f"--set {key}: expected a finite number ≥ 0, got {value!r}")
        changes[_SETTABLE[key]] = number
    return arch.with_input(**changes) if changes else arch


def run(args: argparse.Namespace) -> int:
    """Compile or estimate, then write the table, the plot and the summary."""
    from gpdip.arch.parse import load_architecture

    if args.out is None and args.plot is None and not args.json:
        raise GpdipError("nothing to do: give --out K.npy, --plot K.png or --json")
    for flag, path, suffix in (("--out", args.out, ".npy"), ("--plot", args.plot, ".png")):
        if path is not None:
            if path.suffix.lower() != suffix:
                raise GpdipError(f"{flag} '{path}': expected a {suffix} file name")
            check_writable(path, flag)
    arch = _apply_sets(load_architecture(args.arch), args.set)
    start = time.perf_counter()
    summary: dict[str, object] = {
        "arch": arch.name or str(args.arch),
        "size": args.size,
        "dims": args.dims,
        "kind": args.kind,
    }
    table, stderr = _empirical(args, arch, summary) if args.empirical else _compiled(args, arch)
    summary.setdefault("method", "compiled")
    summary["seconds"] = round(time.perf_counter() - start, 4)
    summary["k0"] = float(table[(args.size - 1,) * args.dims])
    _write(args, table, stderr, summary)
    return 0


def _compiled(args: argparse.Namespace, arch) -> tuple[np.ndarray, None]:
    from gpdip.limit.compiler import compile_kernel

    kernel = compile_kernel(
        arch, args.size, dims=args.dims, max_entries=args.max_entries, kind=args.kind
    )
    return kernel.numpy(), None


def _empirical(args: argparse.Namespace, arch, summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo over sampled networks (NNGP, or the empirical NTK), with its error."""
    from gpdip.finite.empirical_ntk import estimate_ntk
    from gpdip.finite.montecarlo import estimate_kernel, relative_error

    common = dict(dims=args.dims, width=args.width, samples=args.samples, seed=args.seed)
    if args.kind == "ntk":
        est = estimate_ntk(arch, args.size, **common)
    else:
        est = estimate_kernel(arch, args.size, progress=True, **common)
    exact = _compiled(args, arch)[0]
    summary.update(
        method="monte-carlo",
        width=args.width,
        samples=args.samples,
        seed=args.seed,
        max_stderr=float(est.stderr.max()),
        rel_error_vs_compiled=relative_error(
            est.mean, torch.from_numpy(exact), min(8, args.size - 1)
        ),
    )
    return est.mean.numpy(), est.stderr.numpy()


def _write(
    args: argparse.Namespace, table: np.ndarray, stderr: np.ndarray | None, summary: dict
) -> None:
    """The table (and its standard errors), the plot, and the summary line or JSON."""
    if args.out:
        save_npy(args.out, table)
        if stderr is not None:
            save_npy(args.out.with_suffix(".stderr.npy"), stderr)
        summary["out"] = str(args.out)
    if args.plot:
        from gpdip.io.plotting import plot_kernel

        plot_kernel(
            table, args.plot, title=f"{summary['arch']} ({summary['method']})", stderr=stderr
        )
        summary["plot"] = str(args.plot)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['arch']}: {summary['method']} table of shape {table.shape} "
            f"in {summary['seconds']} s" + (f" -> {args.out}" if args.out else "")
        )
