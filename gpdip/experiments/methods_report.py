"""The methods comparison's table (markdown) and figures, rebuilt from its results files only.

:func:`summarize` reads ``results.jsonl`` rows (:mod:`gpdip.experiments.methods_table`);
:func:`plot_curves` the runs' ``curve.json``; :func:`plot_montage` their ``estimate.png``.
Rows imported from Tables 1-2 (:func:`import_table_rows`) carry PSNR and time only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpdip.experiments.methods_table import RUNS, TASKS

ROW_ORDER = ("sgd-early", "es-wmv", *RUNS[1:])

LABELS = {
    "sgd-early": "SGD+Early (oracle)",
    "es-wmv": "ES-WMV",
    "dip-tv": "DIP-TV",
    "dip-admm-v1": "DIP-ADMM v1",
    "dip-admm-v2": "DIP-ADMM v2",
    "self-guided": "Self-Guided DIP",
    "aseqdip": "aSeqDIP",
    "dop": "DOP",
    "sgld": "SGLD (posterior mean)",
    "gp-dip": "GP-DIP",
    "gp-dip-impulse": "GP-DIP, impulse likelihood",
    "gp-rbf": "GP-RBF",
    "deep-decoder": "Deep Decoder (final)",
    "gp-dd": "GP-DD (Deep Decoder kernel)",
}
# Tables 1-2 rows that are the same computation as a comparison run (same crop, network,
# seeds, noise draw): the trainer's SGLD and the GP means
_IMPORTED = {"SGLD": "sgld", "GP-DIP": "gp-dip", "GP-RBF": "gp-rbf"}


def import_table_rows(rows: list[dict[str, Any]], config: str) -> list[dict[str, Any]]:
    """Tables 1-2 result rows (``gpdip.experiments.tables``) as comparison rows (psnr and
    seconds; no SSIM: those runs saved no image to score)."""
    out = []
    for r in rows:
        for name, value in r.get("scores", {}).items():
            if name in _IMPORTED and value is not None and r.get("config") == config:
                out.append(
                    {
                        "table": r["table"],
                        "image": r["image"],
                        "run": _IMPORTED[name],
                        "seed": r["seed"],
                        "config": config,
                        "psnr": value,
                        "ssim": None,
                        "seconds": r["seconds"],
                        "stop_iter": None,
                        "imported": True,
                    }
                )
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _f(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def es_wmv_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ES-WMV row of each ``sgd-early`` run: the same trajectory, answered by the iterate
    ES-WMV stops at (its PSNR/SSIM; stop iteration; time to detection).  None when it did
    not fire within the budget."""
    out = []
    for r in rows:
        if r["run"] == "sgd-early" and r.get("psnr") is not None:
            stopped = r.get("wmv_psnr") is not None
            out.append(
                {
                    **r,
                    "run": "es-wmv",
                    "psnr": r.get("wmv_psnr"),
                    "ssim": r.get("wmv_ssim"),
                    "stop_iter": r.get("wmv_iter"),
                    "seconds": r.get("seconds_to_wmv") or r["seconds"],
                    "error": None if stopped else "no stop detected within the budget",
                }
            )
    return out


def summarize(rows: list[dict[str, Any]], config: str) -> str:
    """One markdown table per task: a row per run; PSNR / SSIM per image, their averages
    over the images every run of the task finished, mean wall time and stop iteration."""
    parts = []
    rows = rows + es_wmv_rows(rows)
    for table in TASKS:
        mine = [r for r in rows if r["table"] == table and r["config"] == config]
        if mine:
            parts.append(_task_table(table, mine))
            parts.append(_wmv_table(table, mine))
    return "\n".join(parts)


def _task_table(table: str, rows: list[dict[str, Any]]) -> str:
    runs = [r for r in ROW_ORDER if any(x["run"] == r for x in rows)]
    images = sorted({r["image"] for r in rows})
    ok = [r for r in rows if r.get("psnr") is not None]
    complete = [
        im
        for im in images
        if all(any(r["run"] == run and r["image"] == im for r in ok) for run in runs)
    ]
    head = (
        "| method | "
        + " | ".join(images)
        + f" | PSNR avg ({len(complete)}) | SSIM avg | s (mean) | stop iter |"
    )
    lines = [f"### {table}", "", head, "|---" * (len(images) + 5) + "|"]
    for run in runs:
        cells, psnrs, ssims, secs, stops = [], [], [], [], []
        for im in images:
            hit = [r for r in ok if r["run"] == run and r["image"] == im]
            if not hit:
                cells.append("—")
                continue
            r = hit[0]
            cells.append(f"{r['psnr']:.2f} / {_f(r.get('ssim'), '.3f')}")
            secs.append(r["seconds"])
            if r.get("stop_iter") is not None:
                stops.append(str(r["stop_iter"]))
            if im in complete:
                psnrs.append(r["psnr"])
                if r.get("ssim") is not None:
                    ssims.append(r["ssim"])
        label = LABELS[run] + (
            " †" if any(r.get("imported") for r in ok if r["run"] == run) else ""
        )
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | **{_f(_mean(psnrs), '.2f')}** | "
            f"{_f(_mean(ssims), '.3f')} | {_f(_mean(secs), '.0f')} | "
            f"{', '.join(stops) or '—'} |"
        )
    failed = sorted(f"{r['image']} {r['run']}: {r['error']}" for r in rows if r.get("error"))
    if failed:
        lines += ["", "Failed (no score): " + "; ".join(failed) + "."]
    return "\n".join(lines) + "\n"


def _wmv_table(table: str, rows: list[dict[str, Any]]) -> str:
    """ES-WMV applied to every DIP run of the task: where it stops, and its oracle gap."""
    lines = [
        "",
        f"ES-WMV on every {table} run: stop iteration, stop PSNR, gap to the run's best "
        "PSNR (mean over images).",
        "",
        "| run | stop iter | stop PSNR | best PSNR (iter) | oracle gap (dB) |",
        "|---|---|---|---|---|",
    ]
    for run in RUNS:
        hit = [
            r
            for r in rows
            if r["run"] == run
            and r.get("best_psnr") is not None
            and r.get("psnr") is not None
            and run != "es-wmv"
        ]
        if not hit:
            continue
        stops = [r for r in hit if r.get("wmv_iter") is not None]
        best = ", ".join(f"{r['best_psnr']:.2f} ({r['best_iter']})" for r in hit)
        lines.append(
            f"| {LABELS[run]} | {', '.join(str(r['wmv_iter']) for r in stops) or 'none'} | "
            f"{_f(_mean([r['wmv_psnr'] for r in stops]), '.2f')} | {best} | "
            f"{_f(_mean([r['wmv_gap'] for r in stops]), '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(folder: Path, table: str, image: str, path: Path) -> bool:
    """PSNR against gradient steps for every DIP method of ``table`` on ``image`` (the
    survey's Fig. 6 analogue); False when no curve is there yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for run in RUNS:
        curves = sorted((folder / "runs" / table / image).glob(f"{run}-s*/curve.json"))
        if not curves:
            continue
        hist = json.loads(curves[0].read_text())
        if hist:
            ax.plot([h["iter"] for h in hist], [h["psnr"] for h in hist], label=LABELS[run])
            drawn = True
    if drawn:
        ax.set(xlabel="network gradient steps", ylabel="PSNR (dB)", title=f"{table}: {image}")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn


def plot_montage(folder: Path, table: str, path: Path) -> bool:
    """One row per run, one column per image: the estimates (``estimate.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    base = folder / "runs" / table
    images = sorted(p.name for p in base.glob("*")) if base.exists() else []
    runs = [r for r in RUNS if any(base.glob(f"*/{r}-s*/estimate.png"))]
    if not images or not runs:
        return False
    fig, axes = plt.subplots(
        len(runs), len(images), squeeze=False, figsize=(1.6 * len(images) + 1.2, 1.6 * len(runs))
    )
    for i, run in enumerate(runs):
        for j, im in enumerate(images):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            found = sorted((base / im).glob(f"{run}-s*/estimate.png"))
            if found:
                ax.imshow(Image.open(found[0]), cmap="gray", vmin=0, vmax=255)
            if j == 0:
                ax.set_ylabel(LABELS[run], fontsize=7)
            if i == 0:
                ax.set_title(im, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
