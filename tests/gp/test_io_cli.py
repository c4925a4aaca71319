"""GP engine: bad input handling, colour, and the inpaint/sample CLI (image IO: tests/io)."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gpdip.cli.main import main
from gpdip.errors import GpdipError
from gpdip.gp import GpdipWarning, inpaint
from gpdip.io.images import load_image, load_mask


def test_bad_inputs(tmp_path):
    img = torch.rand(8, 8, dtype=torch.float64)
    with pytest.raises(GpdipError, match="does not match"):
        inpaint(img, torch.ones(8, 9, dtype=torch.bool))
    with pytest.raises(GpdipError, match="no observed"):
        inpaint(img, torch.zeros(8, 8, dtype=torch.bool))
    bad = img.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(GpdipError, match="NaN"):
        inpaint(bad, torch.ones(8, 8, dtype=torch.bool))
    with pytest.warns(GpdipWarning, match="every pixel"):
        out = inpaint(img, torch.ones(8, 8, dtype=torch.bool))
    assert torch.equal(out.mean, img)
    np.save(tmp_path / "nan.npy", bad.numpy())
    with pytest.raises(GpdipError, match="NaN"):
        load_image(tmp_path / "nan.npy")
    np.save(tmp_path / "m.npy", np.ones((4, 4)))
    with pytest.raises(GpdipError, match="mask"):
        load_mask(tmp_path / "m.npy", (8, 8))


def test_dense_too_large_names_grid():
    from gpdip.gp.posterior import dense_posterior

    img = torch.rand(64, 64, dtype=torch.float64)
    with pytest.raises(GpdipError, match="backend='grid'"):
        dense_posterior(
            torch.ones(127, 127, dtype=torch.float64), img, img > 0.5, 1e-3, max_bytes=1000
        )


def test_colour_inpaint(gen):
    img = torch.rand(12, 12, 3, generator=gen, dtype=torch.float64)
    mask = torch.rand(12, 12, generator=gen) < 0.5
    post = inpaint(img, mask, "rbf", noise=1e-3, lengthscale=2.0, backend="dense", fit=False)
    assert post.mean.shape == (12, 12, 3)
    one = inpaint(img[..., 1], mask, "rbf", noise=1e-3, lengthscale=2.0, backend="dense", fit=False)
    assert torch.allclose(post.mean[..., 1], one.mean)
    sep = inpaint(img, mask, "rbf", noise=1e-3, backend="dense", shared=False, fit=True)
    fits = [c["hyper"]["lengthscale"] for c in sep.info["channels"]]
    assert len(set(fits)) == 3  # hyperparameters fitted per channel


def test_cli_inpaint(tmp_path, capsys, gen):
    truth = torch.rand(16, 16, generator=gen, dtype=torch.float64)
    np.save(tmp_path / "img.npy", truth.numpy())
    np.save(tmp_path / "truth.npy", truth.numpy())
    m = (torch.rand(16, 16, generator=gen) < 0.5).numpy()
    Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    rc = main(
        [
            "inpaint",
            str(tmp_path / "img.npy"),
            "--mask",
            str(tmp_path / "mask.png"),
            "--kernel",
            "rbf",
            "--noise",
            "1e-3",
            "--backend",
            "grid",
            "--out",
            str(tmp_path / "o.npy"),
            "--std-out",
            str(tmp_path / "s.png"),
            "--truth",
            str(tmp_path / "truth.npy"),
            "--json",
            "--samples",
            "2",
            "--samples-out",
            str(tmp_path / "smp"),
            "--png-bits",
            "16",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "smp").iterdir()) == [
        "sample_000.png",
        "sample_001.png",
    ]
    rep = json.loads(capsys.readouterr().out)
    assert {"time_s", "cg_iterations", "psnr", "ssim", "hyperparameters"} <= set(rep)
    assert np.load(tmp_path / "o.npy").shape == (16, 16)
    assert Image.open(tmp_path / "s.png").mode.startswith("I")  # 16-bit std map
    rc = main(
        [
            "inpaint",
            str(tmp_path / "img.npy"),
            "--mask",
            str(tmp_path / "nope.png"),
            "--out",
            str(tmp_path / "o.png"),
        ]
    )
    assert rc == 2 and "nope.png" in capsys.readouterr().err


def test_cli_sample(tmp_path):
    out = str(tmp_path / "s.npy")
    assert main(["sample", "rbf", "--size", "16", "--n", "2", "--out", out]) == 0
    assert np.load(tmp_path / "s.npy").shape == (2, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["sample", "rbf", "--size", "8", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_cli_auto_candidates(tmp_path, capsys, gen):
    from gpdip.gp import RBFTable, sample_prior

    rbf = RBFTable(3.0, 0.05).double()
    truth = sample_prior(lambda s: rbf.table(s).detach(), (20, 20), 1, gen)[0] + 0.5
    np.save(tmp_path / "img.npy", truth.numpy())
    np.save(tmp_path / "mask.npy", (torch.rand(20, 20, generator=gen) < 0.5).numpy())
    rc = main(
        [
            "inpaint",
            str(tmp_path / "img.npy"),
            "--mask",
            str(tmp_path / "mask.npy"),
            "--kernel",
            "auto",
            "--candidates",
            "rbf,matern52,no-such-arch",
            "--out",
            str(tmp_path / "o.npy"),
            "--json",
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["auto_candidates"]) == {"rbf", "matern52"}  # the unknown one is skipped
    # data drawn from an RBF prior: RBF must win on marginal likelihood
    assert rep["auto_candidates"]["rbf"] > rep["auto_candidates"]["matern52"]
