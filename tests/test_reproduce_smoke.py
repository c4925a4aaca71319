"""Every reproduction script runs in --smoke mode and writes its figure and provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts" / "reproduce").glob("fig*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_reproduce_script_smoke(script, tmp_path):
    result = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                 **{k: v for k, v in __import__("os").environ.items()
                                    if k.startswith(("PYTHON", "HOME", "GPDIP"))}})
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(tmp_path.glob("*.png")), "no figure written"
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["smoke"] is True and provenance["command"].startswith("python")
    assert json.loads((tmp_path / "results.json").read_text())
