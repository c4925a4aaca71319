"""Channel sweep: DIP vs its GP limit on 64×64 inpainting (Cheng et al. 2019, Sec. 5.3, Fig. 6).

For each (width, seed): a Bernoulli(½) mask, the DIP, the GP posterior mean with
the architecture's compiled kernel and a GP-RBF baseline (marginal-likelihood
lengthscale).  The DIP side (``--method``):

``adam``     Adam on the masked MSE, fixed iterations, final iterate (gradient
             descent: tends to the NTK regressor, not the GP posterior).
``sgld``     the Bayesian posterior mean by pSGLD, prior = the limit init
             N(0, weight_var/fan_in) on every weight (biases with bias_var = 0 held
             at 0), Gaussian likelihood with the GP's noise variance ``--noise-var``;
             thinned samples after ``iters // 2`` burn-in.
``readout``  the exact Bayesian posterior mean over the last (1×1) layer with the
             hidden layers at their prior draw: GP regression with the empirical
             kernel (weight_var/C)·ΦΦᵀ of the penultimate features, which tends to
             the compiled kernel as C → ∞ (no iterations; same prior and noise).

The GP side uses noise variance ``--noise-var`` (None: the noise-free 1e-6·K(0)
nugget), so the DIP posterior and the GP have the same likelihood.  One
JSON row per finished run is appended (flush + fsync) to ``results.jsonl``; a
rerun skips finished (width, seed) pairs, so a killed sweep loses only runs in
flight.  GP means depend only on the seed and are cached (atomic files).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from gpdip.dip.io import append_jsonl, atomic_torch_save, atomic_write_text, read_jsonl
from gpdip.errors import GpdipError

WIDTHS = (16, 32, 64, 128, 256, 512)
RESULTS = "results.jsonl"


@dataclass
class SweepTask:
    """One run.  ``image``: path or "house" (the packaged house, area-resized to ``size``)."""

    arch: str
    width: int
    seed: int
    size: int
    iters: int
    lr: float
    drop: float
    image: str
    out: str
    method: str = "adam"
    noise_var: float | None = None  # GP noise variance = SGLD/readout likelihood σ²
    lr_ref_width: int | None = None  # lr scaled as lr·lr_ref_width/width (None: lr as is)

    @property
    def effective_lr(self) -> float:
        """Per-weight Adam/RMSprop steps of size lr move a unit's pre-activation by
        ∝ lr·fan_in (standard parameterisation), so a stable lr falls ∝ 1/width."""
        return self.lr * (self.lr_ref_width or self.width) / self.width


def load_target(image: str, size: int) -> torch.Tensor:
    """(C, size, size) clean image: the packaged house (grayscale) or a centre crop."""
    from gpdip.dip.images import center_crop, load_image, resize
    from gpdip.io.paths import packaged_asset

    if image == "house":
        return resize(load_image(packaged_asset("house128.png")), size)
    return center_crop(load_image(image), size)


def _gp_means(task: SweepTask, truth: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
    """GP-DIP-kernel and GP-RBF means for this seed (cached on disk)."""
    from gpdip.experiments.gp_dense import dip_kernel_posterior_mean, rbf_posterior_mean

    tag = "" if task.noise_var is None else f"-nv{task.noise_var:g}"
    path = Path(task.out) / "gp_cache" / f"{task.arch}-{task.size}-{task.seed}{tag}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    obs = truth * mask
    gp = dip_kernel_posterior_mean(task.arch, obs, mask, noise_var=task.noise_var)
    rbf, fit = rbf_posterior_mean(obs, mask)
    cache = {"gp": gp, "rbf": rbf, "rbf_fit": asdict(fit)}
    atomic_torch_save(cache, path)
    return cache


def run_task(task: SweepTask, threads: int = 1) -> dict[str, Any]:
    """Train one DIP and compare it with the GP means; returns the result row."""
    from gpdip.dip.config import DIPConfig
    from gpdip.dip.images import bernoulli_mask, psnr
    from gpdip.dip.nets import make_network
    from gpdip.dip.trainer import Problem, fit

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    truth = load_target(task.image, task.size)
    mask = bernoulli_mask(
        (task.size, task.size), task.drop, torch.Generator().manual_seed(task.seed)
    )
    gps = _gp_means(task, truth, mask)
    net, x = make_network(
        task.arch,
        (task.size, task.size),
        truth.shape[0],
        width=task.width,
        generator=torch.Generator().manual_seed(1000 + task.seed),
    )
    y = truth * mask
    hist: list[dict[str, Any]] = [{}]
    t1 = time.perf_counter()
    if task.method == "readout":
        est = readout_posterior_mean(net, x, y, mask, _noise_var(task))
    else:
        sgld = task.method == "sgld"
        cfg = DIPConfig.build(
            lenient=True,
            method="sgld" if sgld else "sgd",
            iters=task.iters,
            lr=task.effective_lr,
            noise_std=_noise_var(task) ** 0.5 if sgld else None,
            preconditioner="rmsprop",
            burn_in=task.iters // 2,
            thin=5,
            log_every=max(1, task.iters // 20),
            seed=task.seed,
        )
        res = fit(net, x, Problem(y, mask, truth), cfg, device="cpu")
        est, hist = res.estimate, res.history
    train_seconds = time.perf_counter() - t1
    miss = ~mask.expand_as(truth)
    f, mu = est[miss].double(), gps["gp"][miss].double()
    return {
        "arch": task.arch,
        "width": task.width,
        "seed": task.seed,
        "size": task.size,
        "iters": task.iters,
        "lr": task.lr,
        "drop": task.drop,
        "image": task.image,
        "method": task.method,
        "noise_var": task.noise_var,
        "lr_ref_width": task.lr_ref_width,
        "psnr_dip": psnr(est, truth),
        "psnr_gp": psnr(gps["gp"], truth),
        "psnr_rbf": psnr(gps["rbf"], truth),
        "rbf_lengthscale": gps["rbf_fit"]["lengthscale"],
        "dist_dip_gp": float(torch.linalg.norm(f - mu) / torch.linalg.norm(mu)),
        "mse_obs_final": hist[-1].get("mse_obs"),
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - t0,
        "threads": threads,
    }


def _noise_var(task: SweepTask) -> float:
    if task.noise_var is None:
        raise GpdipError(f"method '{task.method}' needs a noise variance (--noise-var)")
    return task.noise_var


@torch.no_grad()
def readout_posterior_mean(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, noise_var: float
) -> torch.Tensor:
    """Exact posterior mean of the network's output over its last conv's weights, the hidden
    weights held at their prior draw: w ~ N(0, v I) (v = the limit prior weight_var/fan_in),
    y_o = Φ_o w + N(0, s²).  Needs a 1×1 last conv with a zero-variance bias."""
    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    name, last = convs[-1]
    variances = getattr(net, "prior_variances", None) or {}
    v = variances.get(f"{name}.weight")
    if last.kernel_size != (1, 1) or v is None or variances.get(f"{name}.bias", 0.0) != 0.0:
        raise GpdipError(
            "readout posterior: expected a limit-initialised network whose last conv is 1×1 "
            "without bias variance"
        )
    feats: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda m, i, o: feats.append(i[0]))
    try:
        net(x)
    finally:
        hook.remove()
    phi = feats[0][0].reshape(feats[0].shape[1], -1).T.double()  # (pixels, C)
    obs = mask.reshape(-1)
    yo = y.reshape(y.shape[0], -1).double()[:, obs].T  # (n_obs, out_channels)
    po = phi[obs]
    a = po.T @ po / noise_var + torch.eye(phi.shape[1], dtype=phi.dtype) / v
    w = torch.linalg.solve(a, po.T @ yo / noise_var)  # (C, out_channels)
    return (phi @ w).T.reshape(y.shape).float()


def _key(d: dict[str, Any]) -> tuple:
    return (
        d["arch"],
        d["width"],
        d["seed"],
        d["size"],
        d["iters"],
        d.get("method", "adam"),
        d.get("noise_var"),
        d["lr"],
        d.get("lr_ref_width"),
    )


def pending(tasks: Iterable[SweepTask], results: Path) -> list[SweepTask]:
    """Tasks whose (arch, width, seed, size, iters, method, noise_var, lr, lr_ref_width) row
    is not yet in ``results`` (rows written before ``method`` existed count as ``adam``)."""
    key = _key
    done = {key(r) for r in read_jsonl(results)}
    return [t for t in tasks if key(asdict(t)) not in done]


def execute(
    tasks: Sequence[SweepTask],
    results: Path,
    executor: str = "local",
    jobs: int = 2,
    dask_address: str | None = None,
    on_row: Callable[[dict], None] | None = None,
    run: Callable[[Any], dict[str, Any]] = run_task,
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> int:
    """Run independent ``tasks`` with ``run`` (a picklable module-level function: a process
    pool, or the Dask cluster at ``dask_address``, a ``LocalCluster`` when None), appending
    each finished row durably to ``results``; returns the number of rows written.

    Rows are written by this (the submitting) process only, so there is one writer;
    ``describe(row)`` is the progress line printed per row (default: the sweep's)."""
    if not tasks:
        return 0
    if executor == "dask":
        return _execute_dask(tasks, results, jobs, dask_address, on_row, run, describe)
    n = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(run, t) for t in tasks]
        for fut in as_completed(futs):
            _write(results, fut.result(), on_row, describe)
            n += 1
    return n


def _execute_dask(
    tasks: Sequence[SweepTask],
    results: Path,
    jobs: int,
    address: str | None,
    on_row: Callable[[dict], None] | None,
    run: Callable[[Any], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str] | None,
) -> int:
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True)
    client = Client(address or cluster)
    try:
        futs = client.map(run, list(tasks), pure=False)
        n = 0
        for fut in dask_completed(futs):
            _write(results, fut.result(), on_row, describe)
            n += 1
        return n
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write(
    results: Path,
    row: dict[str, Any],
    on_row: Callable[[dict], None] | None,
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    append_jsonl(results, row)
    print(describe(row) if describe else _describe(row), flush=True)
    if on_row is not None:
        on_row(row)


def _describe(row: dict[str, Any]) -> str:
    return (
        f"width {row['width']:4d} seed {row['seed']}: DIP {row['psnr_dip']:.2f} dB, "
        f"GP {row['psnr_gp']:.2f} dB, RBF {row['psnr_rbf']:.2f} dB, "
        f"‖f−μ‖/‖μ‖ {row['dist_dip_gp']:.3f}, {row['seconds']:.0f} s"
    )


def _config(r: dict[str, Any]) -> tuple:
    """How the DIP side was run: (method, iters, lr, noise_var, lr_ref_width)."""
    m = r.get("method", "adam")
    if m == "readout":
        return (m, None, None, r.get("noise_var"), None)
    return (m, r["iters"], r["lr"], r.get("noise_var"), r.get("lr_ref_width"))


def config_label(c: tuple) -> str:
    m, it, lr, nv, ref = c
    noise = "" if nv is None else f", s²={nv:g}"
    if m == "readout":
        return f"{m}{noise}"
    rate = f"lr {lr:g}" if ref is None else f"lr {lr:g}·{ref}/C"
    return f"{m} {it} it, {rate}{noise}"


def _widths_by_config(rows: Sequence[dict[str, Any]], configs: list[tuple]) -> dict[str, set]:
    """Label suffix → widths run, per configuration (one unlabelled entry if none)."""
    if not configs:
        return {"": {r["width"] for r in rows}}
    return {f" ({config_label(c)})": {r["width"] for r in rows if _config(r) == c}
            for c in configs}


def summarize(rows: Sequence[dict[str, Any]], out: Path, widths_requested: Sequence[int]) -> str:
    """Markdown table (mean ± std over seeds per DIP configuration and width), plot, and the
    widths not run.  The GP column uses each configuration's noise variance."""
    import numpy as np

    from gpdip.experiments.plots import plot_sweep

    lines = [
        "| DIP method | channels | seeds | DIP PSNR | GP (DIP kernel) PSNR | GP-RBF PSNR | "
        "‖f_DIP−μ_GP‖/‖μ_GP‖ (missing px) | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    configs = sorted({_config(r) for r in rows}, key=str)
    for c in configs:
        crow = [r for r in rows if _config(r) == c]
        for w in sorted({r["width"] for r in crow}):
            rs = [r for r in crow if r["width"] == w]

            def ms(k: str, rs: list = rs) -> str:
                return f"{np.mean([r[k] for r in rs]):.2f} ± {np.std([r[k] for r in rs]):.2f}"

            dist = [r["dist_dip_gp"] for r in rs]
            lines.append(
                f"| {config_label(c)} | {w} | {len(rs)} | {ms('psnr_dip')} | {ms('psnr_gp')} | "
                f"{ms('psnr_rbf')} | {np.mean(dist):.3f} ± {np.std(dist):.3f} | "
                f"{np.mean([r['seconds'] for r in rs]):.0f} |"
            )
    lines.append("")
    for label, widths in _widths_by_config(rows, configs).items():
        missing = [w for w in widths_requested if w not in widths]
        lines.append(f"Widths not run{label}: {', '.join(map(str, missing)) or 'none'}.")
    text = "\n".join(lines) + "\n"
    if rows:
        plot_sweep(rows, out / "sweep_psnr_vs_channels.png",
                   group=lambda r: config_label(_config(r)))
    atomic_write_text(text, out / "sweep_table.md")
    return text


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="unet2")
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iters", type=int, default=1500)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument(
        "--lr-ref-width",
        type=int,
        default=None,
        help="scale the lr as lr·REF/width (a stable per-weight step falls ∝ 1/width)",
    )
    p.add_argument("--method", choices=("adam", "sgld", "readout"), default="adam")
    p.add_argument(
        "--noise-var",
        type=float,
        default=None,
        help="GP noise variance = the sgld/readout likelihood σ² (default: 1e-6·K(0) nugget)",
    )
    p.add_argument("--drop", type=float, default=0.5)
    p.add_argument("--image", default="house", help="'house' (packaged) or an image path")
    p.add_argument("--out", default="results/dip/sweep")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--dask-address", default=None)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--report",
        action="store_true",
        help="run nothing: rebuild the table and plot from results.jsonl",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CI check: widths 8 16, one seed, 32×32, 30 iterations (< 2 min)",
    )
    return p


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args(argv)
    if args.smoke:
        args.widths, args.seeds, args.size, args.iters = [8, 16], [0], 32, 30
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        SweepTask(
            args.arch,
            w,
            s,
            args.size,
            args.iters,
            args.lr,
            args.drop,
            args.image,
            str(out),
            args.method,
            args.noise_var,
            args.lr_ref_width,
        )
        for w in args.widths
        for s in args.seeds
    ]
    # small widths first, so a time-limited sweep finishes whole widths early
    todo = [] if args.report else pending(tasks, out / RESULTS)
    print(f"{len(tasks) - len(todo)} of {len(tasks)} runs already done; running {len(todo)}")
    execute(todo, out / RESULTS, args.executor, args.jobs, args.dask_address)
    rows = [
        r
        for r in read_jsonl(out / RESULTS)
        if (r["arch"], r["size"], r["image"], r["drop"])
        == (args.arch, args.size, args.image, args.drop)
    ]
    print(summarize(rows, out, args.widths))
    return 0
