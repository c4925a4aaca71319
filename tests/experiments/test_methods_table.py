"""Issue 13's comparison: task lists, the summary's averages, imported rows, and the
``--smoke`` run of its script (resumable: a rerun finds every job done)."""

import json
import runpy
import sys

import pytest

from gpdip.errors import GpdipError
from gpdip.experiments.methods_report import import_table_rows, summarize
from gpdip.experiments.methods_table import TASK_RUNS, comparison_tasks
from gpdip.io.paths import require_shared_data
from tests.test_reproduce_smoke import ROOT, run_smoke


def test_tasks_cover_tasks_images_and_runs(tmp_path):
    tasks = comparison_tasks(["denoising", "salt-pepper"], "cpu", tmp_path)
    assert len(tasks) == 9 * len(TASK_RUNS["denoising"]) + 9 * len(TASK_RUNS["salt-pepper"])
    assert {t.run for t in tasks if t.table == "salt-pepper"} >= {"dop"}
    assert "dop" not in {t.run for t in tasks if t.table == "denoising"}
    few = comparison_tasks(["inpainting"], "cpu", tmp_path, runs=["dip-tv"], image_names=["boat"])
    assert [(t.image, t.run) for t in few] == [("boat", "dip-tv")]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task_names": ["deblurring"]}, "deblurring"),
        ({"config": "gpu"}, "config 'gpu'"),
        ({"runs": ["adam"]}, "adam"),
        ({"image_names": ["lena"]}, "images \\['lena'\\]"),
    ],
)
def test_bad_requests_name_what_was_expected(tmp_path, kwargs, match):
    args = {"task_names": ["denoising"], "config": "cpu", "out": tmp_path, **kwargs}
    with pytest.raises(GpdipError, match=match):
        comparison_tasks(**args)


def _row(image, run, value, ssim=0.8, **extra):
    return {
        "table": "denoising",
        "config": "cpu",
        "image": image,
        "run": run,
        "seed": 0,
        "psnr": value,
        "ssim": ssim,
        "seconds": 10.0,
        "stop_iter": None,
        **extra,
    }


def _wmv(it, value, best, best_iter):
    return {
        "best_psnr": best,
        "best_iter": best_iter,
        "wmv_iter": it,
        "wmv_psnr": value,
        "wmv_ssim": 0.7,
        "wmv_gap": None if value is None else value - best,
        "seconds_to_wmv": 4.0,
    }


def test_summary_averages_only_images_every_run_finished():
    """ES-WMV's row is read off the sgd-early runs (the same trajectory): image c, where it
    did not fire, and where dip-tv is missing, is left out of the averages."""
    rows = [
        _row("a", "sgd-early", 27.0, stop_iter=500, **_wmv(900, 26.0, 27.0, 500)),
        _row("a", "dip-tv", 28.0, **_wmv(800, 27.5, 28.0, 700)),
        _row("b", "sgd-early", 25.0, stop_iter=700, **_wmv(1100, 24.0, 25.0, 700)),
        _row("b", "dip-tv", 26.0),
        _row("c", "sgd-early", 99.0, **_wmv(None, None, 99.0, 10)),
    ]
    text = summarize(rows, "cpu")
    assert "PSNR avg (2)" in text
    assert "| DIP-TV | 28.00 / 0.800 | 26.00 / 0.800 | — | **27.00** | 0.800 | 10 | — |" in text
    assert (
        "| SGD+Early (oracle) | 27.00 / 0.800 | 25.00 / 0.800 | 99.00 / 0.800 | **26.00** |" in text
    )
    assert (
        "| ES-WMV | 26.00 / 0.700 | 24.00 / 0.700 | — | **25.00** | 0.700 | 4 | 900, 1100 |" in text
    )
    assert "c es-wmv: no stop detected within the budget" in text
    # the ES-WMV-on-every-run table: the sgd-early trajectory and dip-tv's
    assert (
        "| SGD+Early (oracle) | 900, 1100 | 25.00 | 27.00 (500), 25.00 (700), 99.00 (10) |" in text
    )
    assert "| DIP-TV | 800 | 27.50 | 28.00 (700) | -0.50 |" in text


def test_imported_table_rows_keep_psnr_and_time_only():
    rows = [
        {
            "table": "denoising",
            "config": "cpu",
            "image": "a",
            "run": "sgd-avg",
            "seed": 0,
            "scores": {"SGD+Early": 27.0},
            "seconds": 5.0,
        },
        {
            "table": "denoising",
            "config": "cpu",
            "image": "a",
            "run": "sgld",
            "seed": 0,
            "scores": {"SGLD": 28.6},
            "seconds": 187.0,
        },
    ]
    out = import_table_rows(rows, "cpu")
    assert [(r["run"], r["psnr"], r["ssim"]) for r in out] == [("sgld", 28.6, None)]


def test_smoke_script_writes_a_table_and_resumes(tmp_path):
    require_shared_data()
    script = ROOT / "scripts" / "reproduce" / "methods_comparison.py"
    run_smoke(script, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    expected = sum(len(v) for v in TASK_RUNS.values())
    assert len(rows) == expected and not [r for r in rows if r.get("error")]
    table = (tmp_path / "table.md").read_text()
    for label in ("SGD+Early (oracle)", "ES-WMV", "DIP-ADMM v2", "aSeqDIP", "DOP", "GP-DIP"):
        assert f"| {label} |" in table
    assert (tmp_path / "figures" / "curves_denoising.png").exists()
    run_smoke(script, tmp_path)  # nothing left to run, no duplicate rows
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == expected


def test_steps_override_reaches_every_job_and_is_checked(tmp_path):
    few = comparison_tasks(["salt-pepper"], "full", tmp_path, image_names=["kodim01"], steps=7)
    assert {t.steps for t in few} == {7} and len(few) == 10 * len(TASK_RUNS["salt-pepper"])
    with pytest.raises(GpdipError, match="steps=0"):
        comparison_tasks(["salt-pepper"], "cpu", tmp_path, steps=0)


def _script(monkeypatch, *args):
    """Run the script in this process (runpy: no second torch import); returns its exit."""
    script = ROOT / "scripts" / "reproduce" / "methods_comparison.py"
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return exc.code
    return 0


def test_list_is_a_dry_run_of_the_full_config(tmp_path, monkeypatch, capsys):
    """--list prints the paper-scale job list and runs nothing (no results file)."""
    code = _script(
        monkeypatch, "--config", "full", "--list", "--tasks", "salt-pepper",
        "--images", "kodim01", "--seeds", "0", "3", "--out", str(tmp_path),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    jobs = [line for line in out.splitlines() if line.startswith("todo")]
    assert len(jobs) == 2 * len(TASK_RUNS["salt-pepper"])
    assert "DIP budget 20000 gradient steps" in out
    assert not (tmp_path / "results.jsonl").exists()
    bad = _script(
        monkeypatch, "--config", "full", "--list", "--seeds", "11", "--out", str(tmp_path)
    )
    assert "--seeds [11]" in str(bad)
    assert _script(monkeypatch, "--steps", "3") == 2
    assert "--steps needs --out" in capsys.readouterr().err
