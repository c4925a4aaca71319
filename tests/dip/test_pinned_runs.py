"""Seeded short runs of every pre-registry method give the numbers recorded before the
scheme registry replaced the trainer's ``method`` branches (``pinned_runs.json``, written
by ``python tests/dip/pinned_runs.py`` at commit df885b4).

Same machine, one thread: the runs are bit-identical; rtol 1e-5 leaves room only for
float32 summation-order differences of another CPU's kernels, far below what any change
of update rule, noise draw order or averaging would move (≥ 1e-3 here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dip.pinned_runs import CASES, CASES_1D, run_case, run_case_1d

PINNED = json.loads((Path(__file__).parent / "pinned_runs.json").read_text())


@pytest.mark.parametrize(
    ("name", "method", "options"), CASES + CASES_1D, ids=[c[0] for c in CASES + CASES_1D]
)
def test_seeded_run_matches_the_pre_registry_trainer(name, method, options):
    runner = run_case_1d if name.startswith("1d-") else run_case
    got = runner(method, options)
    assert got.keys() == PINNED[name].keys()
    for key, want in PINNED[name].items():
        assert got[key] == pytest.approx(want, rel=1e-5, abs=1e-7), key
