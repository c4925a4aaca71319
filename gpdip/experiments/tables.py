"""The paper's Tables 1 (denoising) and 2 (inpainting): every inference scheme, every image.

One job per (image, scheme run, seed), so a table is a list of independent tasks that the
sweep's executor runs in a process pool or on a Dask cluster; each finished job appends one
row to ``results.jsonl`` and each DIP run checkpoints in its own folder, so a killed table
resumes where it stopped.  Two DIP runs give four of the paper's rows, because the
exponential average is read off the same trajectory as the iterate it averages:

* run ``sgd-avg``:        SGD+Early (best-PSNR iterate, an oracle stop) and
                          SGD+Early+Avg (best PSNR of the averaged output along the run);
* run ``sgd-input-avg``:  SGD+Input+Early and SGD+Input+Early+Avg, the same way;
* run ``sgld``:           SGLD (the posterior mean at the end: no oracle, no stopping);
* ``gp-dip`` / ``gp-rbf``: the GP posterior mean with the compiled kernel of the same
  architecture / an RBF, hyperparameters by marginal likelihood.

Configurations (:data:`CONFIGS`): ``cpu`` (centre crops, one narrow run: hours on 2 cores),
``full`` (the paper's scale: GPU-days, meant for the Dask executor) and ``smoke`` (CI).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gpdip.dip.config import DIPConfig
from gpdip.dip.images import add_noise, bernoulli_mask, salt_and_pepper
from gpdip.dip.nets import make_network
from gpdip.dip.trainer import DIPResult, Problem, fit
from gpdip.errors import GpdipError
from gpdip.experiments.paper_tables import PAPER, ROWS, TASK_IMAGES
from gpdip.io.atomic import save_torch
from gpdip.io.images import center_crop, load_image, psnr, save_image
from gpdip.io.paths import shared_data_dir

SIGMA = 25 / 255  # Table 1's noise level
SALT_PEPPER = 0.5  # fraction of entries hit, DOP's README setting (You et al. 2020)
DIP_RUNS = ("sgd-avg", "sgd-input-avg", "sgld")
GP_RUNS = ("gp-dip", "gp-rbf")
RUN_ROWS = {
    "sgd-avg": ("SGD+Early", "SGD+Early+Avg"),
    "sgd-input-avg": ("SGD+Input+Early", "SGD+Input+Early+Avg"),
    "sgld": ("SGLD",),
    "gp-dip": ("GP-DIP",),
    "gp-rbf": ("GP-RBF",),
}
ALL_ROWS = (*ROWS, "GP-DIP", "GP-RBF")


@dataclass(frozen=True)
class TableConfig:
    """How a table is run.  ``crop``: side of the centre crop at native resolution
    (None: the full image).  SGD runs use Adam at ``sgd_lr``; SGLD is pSGLD at ``sgld_lr``
    with the exact limit prior, burn-in ``burn_in``, every ``thin``-th sample averaged.
    ``sgld_noise_std`` is the inpainting likelihood's σ (denoising uses the true 25/255)."""

    name: str
    crop: int | None
    arch: str
    width: int
    sgd_iters: int
    sgld_iters: int
    burn_in: int
    thin: int
    sgd_lr: float
    sgld_lr: float
    sgld_noise_std: float
    seeds: tuple[int, ...]
    sgld_freeze: bool = False  # freeze pSGLD's G after burn-in (exact; see DIPConfig)
    inpainting: tuple[tuple[str, Any], ...] = ()  # (field, value) overrides for Table 2

    def for_table(self, table: str) -> TableConfig:
        """The settings of ``table``: Table 2 applies the ``inpainting`` overrides."""
        return replace(self, **dict(self.inpainting)) if table == "inpainting" else self


CONFIGS = {
    # measured on the 2-core CPU: ≈ 25 ms per step (width 32, 64×64) → ≈ 4 min per image
    # pSGLD at lr 0.003 diverged on the barbara crop (7 dB); at 0.001 it is still fitting
    # the observed pixels at 3000 steps (30.8 dB), hence 6000 steps for the sampler.  With
    # G frozen after burn-in, 2 of 9 denoising chains diverged at lr 0.001 (Lena, kodim02)
    # and 1 at 0.0005 (House), none of the 11 inpainting ones: inpainting is run with the
    # exact frozen-G sampler, denoising with Li et al.'s always-adapting G (stable, biased)
    "cpu": TableConfig(
        "cpu",
        64,
        "unet2",
        32,
        2000,
        6000,
        2000,
        5,
        0.003,
        0.001,
        0.01,
        (0,),
        inpainting=(("sgld_freeze", True),),
    ),
    # the paper's Sec. 5.2 (5-level skip net, 128 channels, lr 0.01 / 0.001, 20K / 30K
    # steps, burn-in 7K / 20K, 10 runs).  Estimate, not measured (no GPU was lent): a step
    # at 512×512 is ≈ 6e11 FLOP, ≈ 30 ms on an H100, so 600 runs of 20-30K steps ≈ 4-6
    # GPU-days for both tables
    "full": TableConfig(
        "full",
        None,
        "skip5-nearest",
        128,
        20000,
        20000,
        7000,
        10,
        0.01,
        0.001,
        0.01,
        tuple(range(10)),
        inpainting=(
            ("sgd_lr", 0.001),
            ("sgd_iters", 30000),
            ("sgld_iters", 30000),
            ("burn_in", 20000),
        ),
    ),
    "smoke": TableConfig("smoke", 16, "unet2", 4, 20, 20, 5, 2, 0.003, 0.001, 0.02, (0,)),
}


@dataclass(frozen=True)
class TableTask:
    """One job: ``run`` (a DIP method of :data:`DIP_RUNS` or a GP of :data:`GP_RUNS`) on
    ``image`` (a file stem in ``data/<table>/``) with ``seed`` under configuration ``config``;
    DIP runs keep their log and checkpoint in ``out/runs/<image>/<run>-s<seed>/``."""

    table: str  # "denoising" | "inpainting"
    image: str
    run: str
    seed: int
    config: str
    out: str


def images(table: str) -> list[str]:
    """The paper's images of ``table``, in the paper's column order."""
    if table not in TASK_IMAGES:
        raise GpdipError(f"table '{table}': expected one of {', '.join(TASK_IMAGES)}")
    return list(TASK_IMAGES[table])


def load_problem(table: str, image: str, cfg: TableConfig, seed: int) -> Problem:
    """The clean crop and its noisy (σ = 25/255, Table 1; ``mask`` None) or
    50%-Bernoulli-masked (Table 2) observation; noise and mask seeded by ``seed``.
    ``salt-pepper``: Table 1's images, a fraction :data:`SALT_PEPPER` of entries set to 0/1."""
    images(table)  # a clear error for an unknown task
    data = shared_data_dir(required=True)
    assert data is not None  # required=True raises instead
    folder = data / ("denoising" if table == "salt-pepper" else table)
    path = folder / f"{image}.png"
    truth = load_image(path, grey=table == "inpainting").float()
    if cfg.crop is not None:
        truth = center_crop(truth, cfg.crop)
    gen = torch.Generator().manual_seed(seed)
    if table == "denoising":
        return Problem(add_noise(truth, SIGMA, gen), None, truth)
    if table == "salt-pepper":
        return Problem(salt_and_pepper(truth, SALT_PEPPER, gen), None, truth)
    mask = bernoulli_mask(tuple(truth.shape[1:]), 0.5, gen)
    return Problem(truth * mask, mask, truth)


def run_table_task(task: TableTask, threads: int = 1) -> dict[str, Any]:
    """Run one job and return its result row (scores: paper row name → PSNR)."""
    torch.set_num_threads(threads)
    cfg = CONFIGS[task.config].for_table(task.table)
    prob = load_problem(task.table, task.image, cfg, task.seed)
    folder = Path(task.out) / "runs" / task.image / f"{task.run}-s{task.seed}"
    started = time.perf_counter()
    if task.run in GP_RUNS:
        scores, extra = _gp_scores(task, cfg, prob)
    else:
        try:
            scores, extra = _dip_scores(task, cfg, prob, folder)
        except GpdipError as exc:  # a diverged run is a result: recorded, not retried
            scores, extra = dict.fromkeys(RUN_ROWS[task.run]), {"error": str(exc)}
    return {
        **asdict(task),
        "scores": scores,
        **extra,
        "settings": asdict(cfg),
        "seconds": time.perf_counter() - started,
    }


def fit_scheme(
    cfg: TableConfig, table: str, method: str, prob: Problem, folder: Path, seed: int
) -> DIPResult:
    """Run one DIP inference scheme of ``table`` under ``cfg`` (resuming from ``folder``):
    ``sgld`` with the sampler's settings, any other method with the SGD ones; network seed
    1000 + ``seed``.  Table jobs and Fig. 2's extra noisy-Adam curve both run through here."""
    sampler = method == "sgld"
    iters = cfg.sgld_iters if sampler else cfg.sgd_iters
    sigma = SIGMA if table == "denoising" else cfg.sgld_noise_std
    dip_cfg = DIPConfig.build(
        lenient=True,
        method=method,
        iters=iters,
        lr=cfg.sgld_lr if sampler else cfg.sgd_lr,
        preconditioner="rmsprop",
        noise_std=sigma,
        burn_in=cfg.burn_in,
        thin=cfg.thin,
        freeze_preconditioner=cfg.sgld_freeze,
        log_every=max(1, min(25, iters // 20)),
        checkpoint_every=max(1, iters // 10),
        seed=seed,
    )
    c, h, w = prob.observed.shape
    net, x = make_network(
        cfg.arch, (h, w), c, width=cfg.width, generator=torch.Generator().manual_seed(1000 + seed)
    )
    return fit(net, x, prob, dip_cfg, out_dir=folder)  # CUDA when present (full config)


def _dip_scores(task: TableTask, cfg: TableConfig, prob: Problem, folder: Path):
    res = fit_scheme(cfg, task.table, task.run, prob, folder, task.seed)
    assert prob.truth is not None
    save_image(folder / "estimate.png", res.estimate)
    if res.std is not None:
        save_torch(folder / "std.pt", res.std)
    scores: dict[str, float | None]
    best_avg = max(
        (h for h in res.history if "psnr_avg" in h), key=lambda h: h["psnr_avg"], default=None
    )  # the averaged output's best logged point (SGD runs)
    if task.run == "sgld":
        scores = {"SGLD": psnr(res.estimate, prob.truth)}
    else:
        early, avg = RUN_ROWS[task.run]
        scores = {early: res.best_psnr, avg: None if best_avg is None else best_avg["psnr_avg"]}
    return scores, {
        "iters": res.iterations,
        "best_iter": res.best_iter,
        "best_avg_iter": None if best_avg is None else best_avg["iter"],
        "final_psnr": psnr(res.final, prob.truth),
        "final_mse_obs": res.history[-1]["mse_obs"] if res.history else None,
    }


def _gp_scores(task: TableTask, cfg: TableConfig, prob: Problem):
    kernel = cfg.arch if task.run == "gp-dip" else "rbf"
    mean = gp_mean(task.table, kernel, prob)
    assert prob.truth is not None
    row_name = RUN_ROWS[task.run][0]
    return {row_name: psnr(mean, prob.truth)}, {"kernel": kernel}


def gp_mean(table: str, kernel: str, prob: Problem) -> torch.Tensor:
    """GP posterior mean (C, H, W) per channel (hyperparameters by marginal likelihood;
    denoising fixes the noise variance at the true σ²)."""
    from gpdip.gp import inpaint

    y = prob.observed.permute(1, 2, 0).double()  # (H, W, C)
    observed = prob.mask[0] if prob.mask is not None else torch.ones(y.shape[:2], dtype=torch.bool)
    noise = SIGMA**2 if table == "denoising" else None
    # CG's non-convergence warning (with its residual) reaches the user: nothing is silenced
    post = inpaint(
        y[..., 0] if y.shape[-1] == 1 else y, observed, kernel, noise=noise, shared=False, tol=1e-5
    )
    mean = post.mean if post.mean.dim() == 3 else post.mean[..., None]
    return mean.permute(2, 0, 1).float()


def table_tasks(
    table: str, config: str, out: str | Path, runs=(*DIP_RUNS, *GP_RUNS), image_names=None
) -> list[TableTask]:
    """Every job of ``table`` under ``config``: image × run × seed (GP runs: each seed's
    noise/mask draw too)."""
    if config not in CONFIGS:
        raise GpdipError(f"config '{config}': expected one of {', '.join(CONFIGS)}")
    names = list(image_names) if image_names else images(table)
    unknown = sorted(set(names) - set(images(table)))
    if unknown:
        raise GpdipError(f"images {unknown}: expected names from {images(table)}")
    bad = sorted(set(runs) - set(RUN_ROWS))
    if bad:
        raise GpdipError(f"runs {bad}: expected some of {', '.join(RUN_ROWS)}")
    return [
        TableTask(table, im, r, s, config, str(out))
        for im in names
        for r in runs
        for s in CONFIGS[config].seeds
    ]


def task_key(d: dict[str, Any]) -> tuple:
    return (d["table"], d["image"], d["run"], d["seed"], d["config"])


def describe(row: dict[str, Any]) -> str:
    cells = ", ".join(f"{k} {v:.2f}" for k, v in row["scores"].items() if v is not None)
    where = f"{row['image']:>20s} {row['run']:>14s} seed {row['seed']}"
    return f"{where}: {cells} ({row['seconds']:.0f} s)"


def summarize(rows: list[dict[str, Any]], table: str, config: str) -> str:
    """Markdown: one line per scheme, one column per image (mean over seeds, ± std when
    several), the average over the images every scheme finished, and the paper's row."""
    cfg = CONFIGS[config].for_table(table)
    paper, paper_avg = PAPER[table]
    scores: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["config"] != config or r["table"] != table:
            continue
        for name, v in r["scores"].items():
            if v is not None:
                scores.setdefault((name, r["image"]), []).append(v)
    names = [im for im in images(table) if any((s, im) in scores for s in ALL_ROWS)]
    complete = [im for im in names if all((s, im) in scores for s in ALL_ROWS)]
    head = (
        "| scheme | "
        + " | ".join(_short(n) for n in names)
        + f" | average ({len(complete)} images) | paper average |"
    )
    lines = [_caption(table, cfg), "", head, "|---" * (len(names) + 3) + "|"]
    for s in ALL_ROWS:
        cells = [_cell(scores.get((s, im))) for im in names]
        avg = [sum(scores[(s, im)]) / len(scores[(s, im)]) for im in complete]
        mean = f"**{sum(avg) / len(avg):.2f}**" if avg else "—"
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {mean} | {paper_avg.get(s, '—')} |")
    failed = sorted(
        {
            f"{r['image']} {r['run']} (seed {r['seed']})"
            for r in rows
            if r.get("error") and r["config"] == config and r["table"] == table
        }
    )
    lines.append(
        "| *paper SGLD* | "
        + " | ".join(f"*{paper[im]['SGLD']:.2f}*" for im in names)
        + f" | | {paper_avg['SGLD']} |"
    )
    if failed:
        lines += [
            "",
            "Diverged (no score; the image is left out of the averages): "
            + ", ".join(failed)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _short(image: str) -> str:
    return image.replace("image_", "").replace("rgb", "").replace("512", "").replace("256", "")


def _cell(values: list[float] | None) -> str:
    if not values:
        return "—"
    m = sum(values) / len(values)
    if len(values) == 1:
        return f"{m:.2f}"
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{m:.2f} ± {sd:.2f}"


def _caption(table: str, cfg: TableConfig) -> str:
    where = f"{cfg.crop}×{cfg.crop} centre crops" if cfg.crop else "full images"
    sampler = "G frozen after burn-in" if cfg.sgld_freeze else "G always adapting"
    task = (
        "denoising, σ = 25/255"
        if table == "denoising"
        else f"inpainting, 50% Bernoulli drop (SGLD likelihood σ = {cfg.sgld_noise_std})"
    )
    return (
        f"Configuration `{cfg.name}`: {task}; {where}; `{cfg.arch}` width {cfg.width}; "
        f"Adam lr {cfg.sgd_lr}, {cfg.sgd_iters} steps (Early = best PSNR along the run, "
        f"an oracle); pSGLD ({sampler}) "
        f"lr {cfg.sgld_lr}, {cfg.sgld_iters} steps, burn-in "
        f"{cfg.burn_in}, thin {cfg.thin}; seeds {list(cfg.seeds)}.  PSNR in dB."
    )
