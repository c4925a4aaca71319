"""Every reproduction script runs in --smoke mode and writes its figure and provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpdip.io.paths import require_shared_data

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts" / "reproduce").glob("fig*.py"))
TABLES = sorted((ROOT / "scripts" / "reproduce").glob("table*.py"))
NEEDS_SHARED_DATA = {"fig2_schemes", "table1_denoising", "table2_inpainting"}


def run_smoke(script: Path, out: Path) -> None:
    if script.stem in NEEDS_SHARED_DATA:
        require_shared_data()
    result = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={
            "OMP_NUM_THREADS": "1",
            "PATH": "/usr/bin:/bin",
            **{k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "HOME", "GPDIP"))},
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_reproduce_script_smoke(script, tmp_path):
    run_smoke(script, tmp_path)
    assert list(tmp_path.glob("*.png")), "no figure written"
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["smoke"] is True and provenance["command"].startswith("python")
    assert json.loads((tmp_path / "results.json").read_text())


@pytest.mark.parametrize("script", TABLES, ids=[s.stem for s in TABLES])
def test_table_script_smoke(script, tmp_path):
    """Two images, every scheme: one row per job, a table with every scheme's row, and
    a rerun that finds every job done (resume)."""
    run_smoke(script, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 5 and len({(r["image"], r["run"]) for r in rows}) == 10
    table = (tmp_path / "table.md").read_text()
    for scheme in ("SGD+Early", "SGD+Input+Early+Avg", "SGLD", "GP-DIP", "GP-RBF"):
        assert f"| {scheme} |" in table
    run_smoke(script, tmp_path)  # resumes: nothing left to run, no duplicate rows
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10


def test_table_script_bad_image_is_a_clear_error(tmp_path):
    script = ROOT / "scripts" / "reproduce" / "table2_inpainting.py"
    result = subprocess.run(
        [sys.executable, str(script), "--images", "lena", "--report", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "images ['lena']: expected names from" in result.stderr
    assert "Traceback" not in result.stderr
