"""Trainer: methods run, determinism, checkpoint/resume identical to an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from gpdip.dip import DIPConfig, Problem, add_noise, fit, make_network, psnr


def _task(size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    truth = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy))[None]
    return truth, add_noise(truth, 0.1, g)


def _net(width: int = 8, seed: int = 1, size: int = 16):
    return make_network(
        "dip-tiny", (size, size), 1, width=width, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize(
    "method", ["sgd", "sgd-avg", "sgd-input", "sgd-input-avg", "sgld", "noisy-adam"]
)
def test_methods_run_and_log(method, tmp_path):
    truth, noisy = _task()
    net, x = _net()
    cfg = DIPConfig.build(
        lenient=True,
        method=method,
        iters=40,
        burn_in=10,
        thin=2,
        log_every=10,
        stop_iter=20,
        noise_std=0.1,
        preconditioner="rmsprop",
    )
    res = fit(net, x, Problem(noisy, None, truth), cfg, out_dir=tmp_path, device="cpu")
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in lines] == [10, 20, 30, 40]
    assert all("psnr" in r and "mse_obs" in r for r in lines)
    assert res.final.shape == truth.shape and res.stop is not None and res.best_iter is not None
    if method in ("sgld", "noisy-adam"):
        assert res.n_samples == 15 and res.std is not None and res.std.shape == truth.shape
    if method.endswith("avg"):
        assert res.mean is not None and res.std is None


def test_seeded_runs_are_identical():
    truth, noisy = _task()
    outs = []
    for _ in range(2):
        net, x = _net()
        cfg = DIPConfig.build(method="sgld", iters=30, burn_in=10, noise_std=0.1, seed=4)
        outs.append(fit(net, x, Problem(noisy, None, truth), cfg, device="cpu"))
    assert torch.equal(outs[0].final, outs[1].final) and torch.equal(outs[0].mean, outs[1].mean)


class _InterruptError(Exception):
    pass


@pytest.mark.parametrize("method", ["sgld", "sgd-input-avg"])
def test_resume_after_interruption_matches_uninterrupted(method, tmp_path):
    truth, noisy = _task()
    cfg = DIPConfig.build(
        lenient=True,
        method=method,
        iters=60,
        burn_in=20,
        thin=3,
        log_every=7,
        checkpoint_every=10,
        noise_std=0.1,
        preconditioner="rmsprop",
        seed=2,
    )
    net, x = _net()
    ref = fit(net, x, Problem(noisy, None, truth), cfg, out_dir=tmp_path / "ref", device="cpu")

    def crash(t, rec):  # killed after step 37: the last checkpoint is at 30
        if t == 37:
            raise _InterruptError

    net, x = _net()
    with pytest.raises(_InterruptError):
        fit(
            net,
            x,
            Problem(noisy, None, truth),
            cfg,
            out_dir=tmp_path / "run",
            device="cpu",
            callback=crash,
        )
    net, x = _net(seed=99)  # a different init: everything must come from the checkpoint
    res = fit(net, x, Problem(noisy, None, truth), cfg, out_dir=tmp_path / "run", device="cpu")
    assert torch.equal(res.final, ref.final)
    assert torch.equal(res.mean, ref.mean)
    assert res.best_iter == ref.best_iter
    strip = lambda p: [{k: v for k, v in json.loads(s).items()} for s in p.read_text().splitlines()]  # noqa: E731
    assert strip(tmp_path / "run" / "log.jsonl") == strip(tmp_path / "ref" / "log.jsonl")


def test_sgd_denoises_something():
    truth, noisy = _task()
    net, x = _net(width=16)
    cfg = DIPConfig.build(iters=150, log_every=50)
    res = fit(net, x, Problem(noisy, None, truth), cfg, device="cpu")
    assert psnr(res.best, truth) > psnr(noisy, truth) - 3  # learns the image (sanity)
