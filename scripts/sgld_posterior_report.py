"""Table (JSON + markdown on stdout) and figure of scripts/sgld_posterior_study.py.

Per (variant, width), for the posterior mean and std, estimator ``raw`` (the network's
outputs) and ``rb`` (Rao–Blackwellised readout, gpdip.experiments.sgld_study):

* m_c: chain c's estimate (k chains: own weights, input z, noise); pooled m̄ = mean_c m_c;
* floor² = Σ_x Var_c(m_c(x))/k: the Monte Carlo variance of m̄ (between-chain, so it also
  holds the spread from the per-chain input z);
* d = ‖m̄ − m_GP‖: E d² = bias² + floor², hence bias = √max(0, d² − floor²);
* all three divided by ‖m_GP‖ (relative).  For the std: the chains' mixture std
  √(mean_c var_c + Var_c m_c) against the GP's posterior std of f, its floor by the
  leave-one-chain-out jackknife.

A width counts as *resolved* when it has at least 4 chains and the bias estimate exceeds
the floor (d² > 2·floor²: the bias at least one Monte Carlo standard error); slopes are
least-squares fits of log bias against log width over resolved widths, so they are only as
good as the resolved range.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from gpdip.experiments.ntk_study import loglog_slope

ESTIMATORS = ("rb", "raw")
MIN_CHAINS = 4  # a between-chain floor from fewer chains is too noisy to resolve a bias


def _distance(per_chain: torch.Tensor, exact: torch.Tensor, pooled: torch.Tensor) -> dict:
    k = per_chain.shape[0]
    norm = float(exact.norm())
    d2 = float((pooled - exact).pow(2).sum())
    floor2 = float(per_chain.var(0).sum()) / k if k > 1 else math.nan
    return {
        "dist": math.sqrt(d2) / norm,
        "floor": math.sqrt(floor2) / norm,
        "bias": math.sqrt(max(d2 - floor2, 0.0)) / norm,
        "resolved": k >= MIN_CHAINS and d2 > 2 * floor2,
    }


def pooled_std(means: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    """√(mean_c var_c + Var_c m_c): the mixture std of the chains, (k, L) → (L,).

    The between-chain term restores what each chain's own sample variance misses (the
    variance of its mean, O(1/effective samples)) and the spread over inputs z."""
    between = means.var(0) if means.shape[0] > 1 else torch.zeros_like(means[0])
    return (variances.mean(0) + between).sqrt()


def _std_distance(means: torch.Tensor, variances: torch.Tensor, exact: torch.Tensor) -> dict:
    """As :func:`_distance` for the pooled std, its floor by the leave-one-chain-out
    jackknife: floor² = Σ_x (k−1)/k Σ_i (s_(−i)(x) − s̄(x))²."""
    k = means.shape[0]
    pooled = pooled_std(means, variances)
    norm = float(exact.norm())
    d2 = float((pooled - exact).pow(2).sum())
    loo = torch.stack(
        [
            pooled_std(
                torch.cat([means[:i], means[i + 1 :]]),
                torch.cat([variances[:i], variances[i + 1 :]]),
            )
            for i in range(k)
        ]
    )
    floor2 = float(((loo - loo.mean(0)).pow(2).sum(0) * (k - 1) / k).sum())
    return {
        "dist": math.sqrt(d2) / norm,
        "floor": math.sqrt(floor2) / norm,
        "bias": math.sqrt(max(d2 - floor2, 0.0)) / norm,
        "resolved": k >= MIN_CHAINS and d2 > 2 * floor2,
    }


def summarise(
    rows: list[dict], mu: torch.Tensor, sd: torch.Tensor, ntk_ridge: torch.Tensor
) -> list[dict]:
    """One record per (variant, width): distances, floors, biases, timing."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["variant"], r["width"])].append(r)
    out = []
    for (variant, width), rs in sorted(groups.items()):
        rec: dict = {
            "variant": variant,
            "width": width,
            "chains": len(rs),
            "steps": rs[0]["config"]["steps"],
            "eps": rs[0]["config"]["eps"],
            "kept_per_chain": rs[0]["kept"],
            "params": rs[0]["params"],
            "ms_per_chain_step": float(np.median([r["ms_per_chain_step"] for r in rs])),
            "accept": float(np.mean([r["accept"] for r in rs])),
        }
        for est in ESTIMATORS:
            means = torch.tensor([r[f"mean_{est}"] for r in rs], dtype=torch.float64)
            variances = torch.tensor([r[f"var_{est}"] for r in rs], dtype=torch.float64)
            batches = torch.tensor([r[f"batch_{est}"] for r in rs], dtype=torch.float64)
            mean = _distance(means, mu, means.mean(0))
            # within-chain batch means: the floor without the between-chain (input z) spread
            within2 = float((batches.var(1) / batches.shape[1]).sum(1).mean()) / len(rs)
            mean["floor_within"] = math.sqrt(within2) / float(mu.norm())
            # stationarity: second half of the kept samples minus the first, pooled over chains
            half = batches.shape[1] // 2
            drift = batches[:, half:].mean(1) - batches[:, :half].mean(1)  # (k, L)
            mean["drift_halves"] = float(drift.mean(0).norm() / mu.norm())
            mean["drift_floor"] = math.sqrt(float(drift.var(0).sum()) / len(rs)) / float(mu.norm())
            # how far the pooled mean is from the lazy chain's mean, relative to ||mu||
            mean["dist_ntk_ridge"] = float((means.mean(0) - ntk_ridge).norm() / mu.norm())
            std = _std_distance(means, variances, sd)
            rec[est] = {"mean": mean, "std": std}
        out.append(rec)
    return out


def slopes(table: list[dict], variant: str = "ula", min_chains: int = MIN_CHAINS) -> dict:
    """log-log slope of the bias against width over resolved widths (with at least
    ``min_chains`` chains), per estimator and moment."""
    out = {}
    for est in ESTIMATORS:
        for moment in ("mean", "std"):
            pts = [
                (r["width"], r[est][moment]["bias"])
                for r in table
                if r["variant"] == variant
                and r[est][moment]["resolved"]
                and r["chains"] >= min_chains
            ]
            out[f"{est}_{moment}"] = {
                "slope": loglog_slope([w for w, _ in pts], [b for _, b in pts]),
                "widths": [w for w, _ in pts],
            }
    return out


def sampler_check(rows: list[dict], mu: torch.Tensor, sd: torch.Tensor, width: int) -> dict:
    """Pooled ULA vs MALA and vs ULA at ε/4 at ``width``: relative differences and floors."""
    pooled = {}
    for variant in ("ula", "mala", "ula-quarter"):
        rs = [r for r in rows if r["variant"] == variant and r["width"] == width]
        if len(rs) < 2:
            continue
        means = torch.tensor([r["mean_rb"] for r in rs], dtype=torch.float64)
        variances = torch.tensor([r["var_rb"] for r in rs], dtype=torch.float64)
        pooled[variant] = (means, variances)
    out = {}
    for other in ("mala", "ula-quarter"):
        if "ula" not in pooled or other not in pooled:
            continue
        (m1, v1), (m2, v2) = pooled["ula"], pooled[other]
        mean_floor2 = float(m1.var(0).sum() / len(m1) + m2.var(0).sum() / len(m2))
        std_a, std_b = _std_distance(m1, v1, sd), _std_distance(m2, v2, sd)
        out[f"ula_vs_{other}"] = {
            "mean_diff": float((m1.mean(0) - m2.mean(0)).norm() / mu.norm()),
            "mean_floor": math.sqrt(mean_floor2) / float(mu.norm()),
            "std_diff": float((pooled_std(m1, v1) - pooled_std(m2, v2)).norm() / sd.norm()),
            "std_floor": math.hypot(std_a["floor"], std_b["floor"]),
        }
    return out


def markdown(table: list[dict], fits: dict) -> str:
    lines = [
        "| variant | width | chains | steps | ms/chain-step | mean: dist / floor / **bias** (RB) "
        "| mean: dist / floor / **bias** (raw) | std: dist / floor / **bias** (RB) "
        "| std: dist / floor / **bias** (raw) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(d: dict) -> str:
        mark = "" if d["resolved"] else " (≤ floor)"
        return f"{d['dist']:.3f} / {d['floor']:.3f} / **{d['bias']:.3f}**{mark}"

    for r in table:
        lines.append(
            f"| {r['variant']} | {r['width']} | {r['chains']} | {r['steps']} "
            f"| {r['ms_per_chain_step']:.1f} | {cell(r['rb']['mean'])} | {cell(r['raw']['mean'])} "
            f"| {cell(r['rb']['std'])} | {cell(r['raw']['std'])} |"
        )
    fit_text = ", ".join(
        f"{name}: **{f['slope']:.2f}** (widths {f['widths']})" for name, f in fits.items()
    )
    return "\n".join(lines) + f"\n\nlog-log slope of the bias over resolved widths: {fit_text}\n"


def figure(table: list[dict], fits: dict, path: Path) -> None:
    rows = [r for r in table if r["variant"] == "ula"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, moment in zip(axes, ("mean", "std"), strict=True):
        for est, colour in (("rb", "C0"), ("raw", "C1")):
            w = np.array([r["width"] for r in rows])
            d = np.array([r[est][moment]["dist"] for r in rows])
            fl = np.array([r[est][moment]["floor"] for r in rows])
            b = np.array([r[est][moment]["bias"] for r in rows])
            res = np.array([r[est][moment]["resolved"] for r in rows])
            fit = fits[f"{est}_{moment}"]
            ax.plot(w, d, "o-", color=colour, alpha=0.5, label=f"{est}: distance")
            ax.plot(w, fl, ":", color=colour, label=f"{est}: Monte Carlo floor")
            ax.plot(
                w[res],
                b[res],
                "s",
                color=colour,
                ms=8,
                label=f"{est}: bias > floor (slope {fit['slope']:.2f})",
            )
        for variant, marker in (("mala", "*"), ("ula-quarter", "^")):
            for r in (r for r in table if r["variant"] == variant):
                ax.plot(
                    r["width"] * 1.08,
                    r["rb"][moment]["dist"],
                    marker,
                    color="C2" if variant == "mala" else "C3",
                    ms=9,
                    label=f"rb distance, {variant} (sampler check)",
                )
        ref = np.array([16, 512])
        ax.plot(ref, 0.1 * (ref / 16.0) ** -1.0, "k--", lw=0.8, label="∝ 1/width")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width (channels)")
        ax.set_title(f"posterior {moment}: relative distance to the NNGP's")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("relative L2 distance")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(rows_path: Path, task: dict, out_dir: Path) -> None:
    rows = list(
        {  # one row per (variant, width, chain): a chain rerun after an interruption repeats
            (r["variant"], r["width"], r["chain"]): r
            for r in map(json.loads, rows_path.read_text().splitlines())
        }.values()
    )
    mu, sd = task["mu"], task["sd"]
    table = summarise(rows, mu, sd, task["ntk_ridge"])
    ridge_gap = float((task["ntk_ridge"] - mu).norm() / mu.norm())
    fits = slopes(table)
    fits_8 = slopes(table, min_chains=8)
    check = sampler_check(rows, mu, sd, 16)
    summary = {
        "table": table,
        "slopes": fits,
        "slopes_8_chains": fits_8,
        "sampler_check_w16": check,
        "ntk_ridge_vs_mu": ridge_gap,
    }
    print(json.dumps(summary, indent=1))
    print(markdown(table, fits))
    print("with at least 8 chains: " + markdown([], fits_8).strip().split("\n")[-1])
    figure(table, fits, out_dir / "sgld_vs_nngp.png")
