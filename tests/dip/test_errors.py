"""Bad input: each a GpdipError naming the argument and what was expected."""

from __future__ import annotations

import pytest
import torch

from gpdip.cli.main import main
from gpdip.dip import DIPConfig, Problem, fit, make_network
from gpdip.errors import GpdipError
from gpdip.io.images import load_mask, save_image


def test_mask_image_mismatch(tmp_path):
    save_image(tmp_path / "m.png", torch.ones(1, 8, 8))
    with pytest.raises(GpdipError, match=r"mask .* 8×8 .* 16×16"):
        load_mask(tmp_path / "m.png", (16, 16))
    net, x = make_network("dip-tiny", (16, 16), 1, width=4)
    with pytest.raises(GpdipError, match="mask has shape"):
        fit(
            net,
            x,
            Problem(torch.rand(1, 16, 16), torch.ones(1, 8, 8, dtype=torch.bool)),
            DIPConfig.build(iters=1),
            device="cpu",
        )


def test_architecture_size_mismatch_names_needed_sizes():
    net, x = make_network("dip-tiny", (18, 18), 1, width=4)
    with pytest.raises(GpdipError, match=r"multiples of 4 \(e\.g\. 16×16 or 20×20\)"):
        fit(net, x, Problem(torch.rand(1, 18, 18)), DIPConfig.build(iters=1), device="cpu")


def test_catalog_architecture_size_mismatch():
    net, x = make_network("unet2", (18, 18), 1, width=4)
    with pytest.raises(GpdipError, match="multiples of 4"):
        fit(net, x, Problem(torch.rand(1, 18, 18)), DIPConfig.build(iters=1), device="cpu")


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": 100.0}, "lr"),
        ({"iters": 0}, "iters"),
        ({"iters": -5}, "iters"),
        ({"method": "adam"}, "method"),
        ({"stop_iter": 10, "iters": 5}, "stop_iter"),
    ],
)
def test_config_out_of_range(kw, field):
    with pytest.raises(GpdipError, match=field):
        DIPConfig.build(**kw).validate()


def test_cli_reports_errors(tmp_path, capsys):
    save_image(tmp_path / "y.png", torch.rand(1, 16, 16))
    save_image(tmp_path / "m.png", torch.ones(1, 8, 8))
    rc = main(
        [
            "dip",
            str(tmp_path / "y.png"),
            "--mask",
            str(tmp_path / "m.png"),
            "--arch",
            "dip-tiny",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2 and "mask" in capsys.readouterr().err
    rc = main(
        [
            "dip",
            str(tmp_path / "y.png"),
            "--arch",
            "dip-tiny",
            "--lr",
            "-1",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--lr" in err and "(0, 10]" in err


def test_cli_runs(tmp_path):
    save_image(tmp_path / "y.png", torch.rand(1, 16, 16))
    rc = main(
        [
            "dip",
            str(tmp_path / "y.png"),
            "--arch",
            "dip-tiny",
            "--width",
            "4",
            "--method",
            "sgld",
            "--iters",
            "20",
            "--burn-in",
            "5",
            "--thin",
            "1",
            "--truth",
            str(tmp_path / "y.png"),
            "--no-progress",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 0
    for f in ("final.png", "mean.png", "std.png", "curves.png", "log.jsonl", "summary.json"):
        assert (tmp_path / "o" / f).exists(), f


def test_diverging_run_stops_with_its_step():
    """Numerical trouble is reported with its figure: a step size far too large for the
    energy blows the chain up, and the run stops naming the step instead of logging NaNs."""
    net, x = make_network(
        "dip-tiny", (16, 16), 1, width=4, generator=torch.Generator().manual_seed(0)
    )
    cfg = DIPConfig.build(method="sgld", iters=200, step_size=10.0, noise_std=0.01, burn_in=0)
    with pytest.raises(GpdipError, match=r"sgld diverged at step \d+: the energy is (nan|inf)"):
        fit(
            net,
            x,
            Problem(torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(1))),
            cfg,
            device="cpu",
        )


def test_frozen_alpha_range():
    with pytest.raises(GpdipError, match="frozen_alpha=0: expected a decay in"):
        DIPConfig.build(method="sgld", frozen_alpha=0).validate()
