"""The SGLD prior is the limit's exact prior; the readout posterior is GP regression with
the empirical kernel; the sweep's sgld/readout methods and the early-stopping script run."""

from __future__ import annotations

import json

import pytest
import torch

from gpdip.dip import DIPConfig, Problem, make_network
from gpdip.dip.io import read_jsonl
from gpdip.dip.trainer import _Run
from gpdip.experiments.gp_dense import posterior_mean
from gpdip.experiments.sweep import (
    RESULTS,
    SweepTask,
    execute,
    pending,
    readout_posterior_mean,
)
from gpdip.experiments.sweep_cli import main


def _unet(width: int = 16, size: int = 8):
    return make_network(
        "unet2", (size, size), 1, width=width, generator=torch.Generator().manual_seed(0)
    )


def test_sgld_prior_is_exact_limit_prior():
    net, x = _unet()
    v = net.prior_variances
    assert v["5.weight"] == pytest.approx(2.0 / 16)  # readout: weight_var / fan_in
    assert v["0.branch.2.weight"] == pytest.approx(2.0 / (16 * 9))
    assert all(v[n] == 0.0 for n in v if n.endswith("bias"))  # bias_var = 0
    y = torch.rand(1, 8, 8)
    cfg = DIPConfig.build(method="sgld", noise_std=0.1)
    run = _Run(net, x, Problem(y).validated(), cfg, "cpu")
    assert not any(n.endswith("bias") for n in run.scheme.param_names)  # held at 0, not sampled
    prec = dict(zip(run.scheme.param_names, run.scheme.precisions, strict=True))
    assert prec["5.weight"] == pytest.approx(8.0)
    # Adam keeps training every parameter
    net2, x2 = _unet()
    run2 = _Run(net2, x2, Problem(y).validated(), DIPConfig.build(method="sgd"), "cpu")
    assert len(run2.scheme.params) == len(list(net2.parameters()))


def test_readout_posterior_is_empirical_kernel_gp():
    net, x = _unet(size=8)
    g = torch.Generator().manual_seed(3)
    y = torch.rand(1, 8, 8, generator=g)
    mask = torch.rand(1, 8, 8, generator=g) > 0.5
    mu = readout_posterior_mean(net, x, y * mask, mask, 0.01)
    feats = []
    h = net[5].register_forward_hook(lambda m, i, o: feats.append(i[0]))
    with torch.no_grad():
        net(x)
    h.remove()
    phi = feats[0][0].reshape(feats[0].shape[1], -1).T.double()
    K = net.prior_variances["5.weight"] * phi @ phi.T
    ref = posterior_mean(K, y * mask, mask, 0.01)
    torch.testing.assert_close(mu, ref, atol=1e-5, rtol=1e-4)


def test_sweep_sgld_and_readout_rows(tmp_path):
    tasks = [
        SweepTask("unet2", 4, 0, 16, 6, 0.001, 0.5, "house", str(tmp_path), m, 0.01)
        for m in ("sgld", "readout")
    ]
    assert execute(tasks, tmp_path / RESULTS, jobs=1) == 2
    rows = read_jsonl(tmp_path / RESULTS)
    assert {r["method"] for r in rows} == {"sgld", "readout"}
    assert all(r["noise_var"] == 0.01 and r["dist_dip_gp"] > 0 for r in rows)
    assert pending(tasks, tmp_path / RESULTS) == []
    assert (tmp_path / "gp_cache" / "unet2-16-0-nv0.01.pt").exists()
    argv = ["--report", "--size", "16", "--widths", "4", "8", "--out", str(tmp_path)]
    assert main(argv) == 0 and len(read_jsonl(tmp_path / RESULTS)) == 2  # nothing run
    table = (tmp_path / "sweep_table.md").read_text()
    assert (
        "| sgld 6 it, lr 0.001, s²=0.01 | 4 | 1 |" in table
        and "not run (readout, s²=0.01): 8." in table
    )


def test_early_stopping_script_per_method_and_report(tmp_path):
    from gpdip.experiments.early_stopping import main

    base = ["--image", "house", "--size", "16", "--width", "4", "--iters", "10", "--out"]
    for m in ("sgd", "sgld"):
        assert main([*base, str(tmp_path), "--methods", m]) == 0
    assert main([*base, str(tmp_path), "--report"]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"sgd", "sgld"}
    assert rows[1]["mean_psnr"] is not None and (tmp_path / "curves.png").exists()
    assert "--methods sgld" in (tmp_path / "table.md").read_text()
