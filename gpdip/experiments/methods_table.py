"""Issue 13's comparison: DIP's other cures for overfitting beside SGLD and the GP.

Tasks (the table machinery's, :func:`gpdip.experiments.tables.load_problem`): Table 1's
denoising crops (σ = 25/255), Table 2's inpainting crops, and Table 1's images with
salt-and-pepper noise (for DOP).  Runs:

* ``sgd-early``  plain DIP (Adam), the best-PSNR iterate along the run (an oracle stop);
  the same run also gives the ES-WMV row: the iterate ES-WMV stops at (no oracle);
* ``dip-tv``, ``dip-admm-v1``, ``dip-admm-v2``, ``self-guided``, ``aseqdip``, ``dop``:
  :mod:`gpdip.dip.methods`, each one's last estimate (the methods claim to need no stop);
* ``deep-decoder``: plain DIP (Adam) on the under-parameterised Deep Decoder (Heckel &
  Hand 2019; the catalog's ``deep-decoder-small`` at 64×64), its last iterate;
* ``sgld``       the trainer's pSGLD posterior mean (:func:`~gpdip.experiments.tables.fit_scheme`);
* ``gp-dip`` / ``gp-rbf`` / ``gp-dd``: the GP posterior mean with the compiled kernel of
  the table's network / an RBF / the Deep Decoder's compiled kernel.  On salt-and-pepper
  (every entry observed) ``gp-dip`` is the Gaussian likelihood with its noise variance
  fitted by marginal likelihood, and ``gp-dip-impulse`` the exact posterior under the
  salt-and-pepper likelihood (:mod:`gpdip.experiments.salt_pepper_gp`).

Every DIP method gets the same budget of network gradient steps (Table 1-2's ``sgd_iters``);
ES-WMV watches every run, so each row also says where it would have stopped that method.
One job per (task, image, run, seed) appends one row to ``results.jsonl`` (the sweep's
executor: a process pool or Dask), so a killed comparison resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gpdip.dip.methods import Observation, build_method, run_method, ssim
from gpdip.errors import GpdipError
from gpdip.experiments import tables
from gpdip.experiments.salt_pepper_gp import salt_pepper_gp_mean
from gpdip.io.images import psnr, save_image

METHOD_RUNS = (
    "sgd-early",
    "dip-tv",
    "dip-admm-v1",
    "dip-admm-v2",
    "self-guided",
    "aseqdip",
    "dop",
    "deep-decoder",
)
RUNS = (*METHOD_RUNS, "sgld", "gp-dip", "gp-dip-impulse", "gp-rbf", "gp-dd")
TASKS = ("denoising", "inpainting", "salt-pepper")
_SALT_PEPPER_ONLY = ("dop", "gp-dip-impulse")
TASK_RUNS = {
    "denoising": tuple(r for r in RUNS if r not in _SALT_PEPPER_ONLY),
    "inpainting": tuple(r for r in RUNS if r not in _SALT_PEPPER_ONLY),
    "salt-pepper": ("sgd-early", "dip-tv", "dop", "gp-dip", "gp-dip-impulse"),
}


@dataclass(frozen=True)
class MethodsConfig:
    """``table``: the :data:`gpdip.experiments.tables.CONFIGS` entry giving crop, network,
    seeds and the SGLD settings; ``grad_steps``: every DIP method's budget; ``window`` /
    ``patience``: ES-WMV's W and P (in outer iterations); ``hyper``: per-method keyword
    overrides of the :mod:`gpdip.dip.methods` defaults."""

    name: str
    table: str
    grad_steps: int
    window: int = 100
    patience: int = 1000
    hyper: dict[str, dict[str, Any]] = field(default_factory=dict)
    deep_decoder: str = "deep-decoder-small"  # the catalog's Deep Decoder of this scale


# lr 0.003: Tables 1-2's CPU Adam rate (measured there), for every Adam-trained method but
# aSeqDIP (0.01 blew up its z ← f(z) loop; 0.001 is stable).  DOP: the paper's SGD at lr 1
# gave NaN within 50 steps on this limit-initialised unet2, so θ is trained by Adam at 0.003
# and (g, h) by SGD at s_lr = 0.05 on the summed loss (600 on the mean at 64×64×3): at
# s_lr = 0.005 s was still 3e-5 after 600 steps while f had already fitted the noise (PSNR
# falling from 18 dB); at 0.05 |s| reaches 0.25 by step 150 and f 25.5 dB by step 500
# (House, 50% salt-and-pepper).  The paper's rate is 6.4e-4: it runs 150K steps
_CPU_HYPER: dict[str, dict[str, Any]] = {
    "sgd-early": {"lr": 0.003},
    "dip-tv": {"lr": 0.003},
    "dip-admm-v1": {"lr": 0.003},
    "dip-admm-v2": {"lr": 0.003},
    "self-guided": {"lr": 0.003},
    "aseqdip": {"lr": 0.001},
    "dop": {"optimizer": "adam", "lr": 0.003, "s_lr": 0.05},
    "deep-decoder": {"lr": 0.01},  # DIP's default: 4.3K weights fit slowly at 0.003
}
CONFIGS = {
    "cpu": MethodsConfig("cpu", "cpu", 2000, hyper=_CPU_HYPER),
    # the papers' own settings are each method's defaults; at the paper's scale (the
    # tables' "full": skip5 width 128, full images) with Table 1's SGD budget
    "full": MethodsConfig("full", "full", 20000, deep_decoder="deep-decoder"),
    "smoke": MethodsConfig("smoke", "smoke", 20, window=3, patience=3, hyper=_CPU_HYPER),
}


@dataclass(frozen=True)
class MethodTask:
    """One job; DIP runs keep ``curve.json`` and ``estimate.png`` in
    ``out/runs/<table>/<image>/<run>-s<seed>/``.  ``steps`` overrides the config's DIP
    gradient-step budget (a quick check at the config's scale); None keeps it."""

    table: str
    image: str
    run: str
    seed: int
    config: str
    out: str
    steps: int | None = None


def comparison_tasks(
    task_names: list[str] | tuple[str, ...],
    config: str,
    out: str | Path,
    runs: list[str] | tuple[str, ...] | None = None,
    image_names: list[str] | None = None,
    steps: int | None = None,
) -> list[MethodTask]:
    """Every job of the comparison: task × image × run (of :data:`TASK_RUNS`) × seed."""
    if config not in CONFIGS:
        raise GpdipError(f"config '{config}': expected one of {', '.join(CONFIGS)}")
    if steps is not None and steps < 1:
        raise GpdipError(f"steps={steps}: expected a gradient-step budget >= 1")
    bad = sorted(set(task_names) - set(TASKS)) + sorted(set(runs or ()) - set(RUNS))
    if bad:
        raise GpdipError(f"{bad}: expected tasks from {TASKS} and runs from {RUNS}")
    seeds = tables.CONFIGS[CONFIGS[config].table].seeds
    jobs = []
    for table in task_names:
        names = image_names or tables.images(table)
        unknown = sorted(set(names) - set(tables.images(table)))
        if unknown:
            raise GpdipError(f"images {unknown}: expected names from {tables.images(table)}")
        chosen = [r for r in TASK_RUNS[table] if runs is None or r in runs]
        jobs += [
            MethodTask(table, im, r, s, config, str(out), steps)
            for im in names
            for r in chosen
            for s in seeds
        ]
    return jobs


def run_comparison_task(task: MethodTask, threads: int = 1) -> dict[str, Any]:
    """Run one job; the row has psnr, ssim, seconds, stop_iter (the iteration whose output
    is the answer, for runs that stop) and, for DIP methods, the oracle best and ES-WMV's
    stop on the same run."""
    torch.set_num_threads(threads)
    cfg = CONFIGS[task.config]
    table_cfg = tables.CONFIGS[cfg.table].for_table(task.table)
    prob = tables.load_problem(task.table, task.image, table_cfg, task.seed).validated()
    folder = Path(task.out) / "runs" / task.table / task.image / f"{task.run}-s{task.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        if task.run in METHOD_RUNS:
            estimate, extra = _method_run(task, cfg, table_cfg, prob, folder)
        elif task.run == "sgld":
            res = tables.fit_scheme(table_cfg, task.table, "sgld", prob, folder, task.seed)
            estimate, extra = res.estimate, {"stop_iter": None}
        elif task.table == "salt-pepper":  # all observed: tables.gp_mean would return y
            likelihood = "impulse" if task.run == "gp-dip-impulse" else "gaussian"
            estimate, gp_info = salt_pepper_gp_mean(table_cfg.arch, prob.observed, likelihood)
            extra = {"stop_iter": None, "gp": gp_info}
        else:
            kernels = {"gp-dip": table_cfg.arch, "gp-rbf": "rbf", "gp-dd": cfg.deep_decoder}
            kernel = kernels[task.run]
            estimate, extra = tables.gp_mean(task.table, kernel, prob), {"stop_iter": None}
    except GpdipError as exc:  # a diverged run is a result: recorded, not retried
        return {
            **asdict(task),
            "psnr": None,
            "ssim": None,
            "error": str(exc),
            "seconds": time.perf_counter() - started,
        }
    assert prob.truth is not None
    save_image(folder / "estimate.png", estimate.clamp(0, 1))
    return {
        **asdict(task),
        "psnr": psnr(estimate, prob.truth),
        "ssim": ssim(estimate, prob.truth),
        **extra,
        "seconds": time.perf_counter() - started,
        "settings": {"table": asdict(table_cfg), "methods": asdict(cfg)},
    }


def _method_run(
    task: MethodTask,
    cfg: MethodsConfig,
    table_cfg: tables.TableConfig,
    prob: tables.Problem,
    folder: Path,
) -> tuple[torch.Tensor, dict[str, Any]]:
    name = {"sgd-early": "sgd", "deep-decoder": "sgd"}.get(task.run, task.run)
    dd = task.run == "deep-decoder"  # the catalog's own width: it is the point of it
    obs = Observation(prob.observed, prob.mask)
    method = build_method(
        name,
        obs,
        cfg.deep_decoder if dd else table_cfg.arch,
        width=None if dd else table_cfg.width,
        seed=task.seed,
        hyper=cfg.hyper.get(task.run),
    )
    steps = task.steps or cfg.grad_steps
    out = run_method(
        method,
        steps,
        truth=prob.truth,
        window=cfg.window,
        patience=cfg.patience,
        log_every=max(1, steps // 100),
    )
    (folder / "curve.json").write_text(json.dumps(out.history))
    if task.run == "sgd-early":  # the oracle: the best iterate (re-read from the run)
        estimate, stop = _best_iterate(out), out.best_iter
    else:
        estimate, stop = out.final, None
    assert prob.truth is not None
    wmv = out.wmv_estimate
    return estimate, {
        "wmv_ssim": None if wmv is None else ssim(wmv, prob.truth),
        "stop_iter": stop,
        "best_psnr": out.best_psnr,
        "best_iter": out.best_iter,
        "wmv_iter": out.wmv_iter,
        "wmv_psnr": out.wmv_psnr,
        "wmv_gap": out.wmv_gap,
        "seconds_to_wmv": out.seconds_to_wmv,
    }


def _best_iterate(out: Any) -> torch.Tensor:
    best = getattr(out, "best_estimate", None)
    if best is None:
        raise GpdipError("sgd-early: the run kept no best iterate; expected a truth image")
    return best


def task_key(d: dict[str, Any]) -> tuple:
    return (d["table"], d["image"], d["run"], d["seed"], d["config"])


def describe(row: dict[str, Any]) -> str:
    where = f"{row['table']:>11s} {row['image']:>20s} {row['run']:>12s} seed {row['seed']}"
    if row.get("psnr") is None:
        return f"{where}: failed ({row.get('error')})"
    return f"{where}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} ({row['seconds']:.0f} s)"
