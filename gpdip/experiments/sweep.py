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

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from gpdip.dip.io import append_jsonl, read_jsonl
from gpdip.errors import GpdipError
from gpdip.io.atomic import load_torch, save_torch

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
    from gpdip.dip.images import resize
    from gpdip.io.images import center_crop, load_image
    from gpdip.io.paths import packaged_asset

    if image == "house":
        return resize(load_image(packaged_asset("house128.png")).float(), size)
    return center_crop(load_image(image).float(), size)


def _gp_means(task: SweepTask, truth: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
    """GP-DIP-kernel and GP-RBF means for this seed (cached on disk)."""
    from gpdip.experiments.gp_dense import dip_kernel_posterior_mean, rbf_posterior_mean

    tag = "" if task.noise_var is None else f"-nv{task.noise_var:g}"
    # under --out whatever --arch is (a path's name only; the folder's inputs.json pins
    # which file that name stands for)
    arch = Path(task.arch).name.removesuffix(".toml")
    path = Path(task.out) / "gp_cache" / f"{arch}-{task.size}-{task.seed}{tag}.pt"
    if path.exists():
        return load_torch(path, "GP cache")
    obs = truth * mask
    gp = dip_kernel_posterior_mean(task.arch, obs, mask, noise_var=task.noise_var)
    rbf, fit = rbf_posterior_mean(obs, mask)
    cache = {"gp": gp, "rbf": rbf, "rbf_fit": asdict(fit)}
    save_torch(path, cache)
    return cache


def run_task(task: SweepTask, threads: int = 1) -> dict[str, Any]:
    """Train one DIP and compare it with the GP means; returns the result row."""
    from gpdip.dip.images import bernoulli_mask
    from gpdip.dip.nets import make_network
    from gpdip.io.images import psnr

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
    t1 = time.perf_counter()
    est, hist = _train(task, net, x, truth, mask)
    train_seconds = time.perf_counter() - t1
    miss = ~mask.expand_as(truth)
    f, mu = est[miss].double(), gps["gp"][miss].double()
    return {
        **{
            k: getattr(task, k)
            for k in (
                "arch",
                "width",
                "seed",
                "size",
                "iters",
                "lr",
                "drop",
                "image",
                "method",
                "noise_var",
                "lr_ref_width",
            )
        },
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


def _train(
    task: SweepTask, net: torch.nn.Module, x: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The DIP side of one task: (estimate, history) by the readout posterior, SGLD or Adam."""
    from gpdip.dip.config import DIPConfig
    from gpdip.dip.trainer import Problem, fit

    y = truth * mask
    if task.method == "readout":
        return readout_posterior_mean(net, x, y, mask, _noise_var(task)), [{}]
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
    return res.estimate, res.history


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
