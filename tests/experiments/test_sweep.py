"""Channel sweep: rows appended durably, resume skips finished runs, dask executor works."""

from __future__ import annotations

import pytest

from gpdip.dip.io import read_jsonl
from gpdip.experiments.sweep import RESULTS, SweepTask, execute, main, pending

pytest.importorskip("gpdip.finite.network")


def _tasks(out, widths=(4,), seeds=(0,)):
    return [
        SweepTask("unet2", w, s, 16, 5, 0.003, 0.5, "house", str(out))
        for w in widths
        for s in seeds
    ]


def test_local_sweep_resumes(tmp_path):
    argv = [
        "--widths",
        "4",
        "8",
        "--seeds",
        "0",
        "--size",
        "16",
        "--iters",
        "5",
        "--lr",
        "0.003",
        "--jobs",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    rows = read_jsonl(tmp_path / RESULTS)
    assert sorted(r["width"] for r in rows) == [4, 8]
    for r in rows:
        assert {"psnr_dip", "psnr_gp", "psnr_rbf", "dist_dip_gp", "seconds", "iters"} <= set(r)
    # a torn last line (killed writer) is ignored; finished runs are not redone
    with open(tmp_path / RESULTS, "a") as f:
        f.write('{"width": 16, "psea')
    assert pending(_tasks(tmp_path, widths=(4, 8, 16)), tmp_path / RESULTS) == _tasks(
        tmp_path, widths=(16,)
    )
    assert (tmp_path / "sweep_table.md").exists() and (
        tmp_path / "sweep_psnr_vs_channels.png"
    ).exists()


@pytest.mark.slow  # LocalCluster start-up is ~40 s on a loaded 2-core machine
def test_dask_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    n = execute(_tasks(tmp_path, seeds=(0, 1)), tmp_path / RESULTS, executor="dask", jobs=2)
    assert n == 2 and len(read_jsonl(tmp_path / RESULTS)) == 2
