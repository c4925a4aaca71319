"""Heavy end-to-end checks (run with -m slow)."""

import json

import pytest
import torch

from gpdip.cli.main import main
from gpdip.gp import inpaint, load_image, psnr
from gpdip.io.paths import require_shared_data


@pytest.mark.slow
def test_demo_runs_and_writes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    report = json.loads((tmp_path / "gpdip-demo" / "demo.json").read_text())
    assert report["psnr"] > 25 and (tmp_path / "gpdip-demo" / "demo.png").exists()


@pytest.mark.slow
def test_real_image_beats_observed_mean_fill():
    folder = require_shared_data("inpainting")
    truth = load_image(folder / "Cameraman256.png")
    truth = truth.mean(-1) if truth.dim() == 3 else truth
    mask = torch.rand(truth.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    post = inpaint(truth * mask, mask, "rbf", backend="grid", tol=1e-4)
    fill = torch.where(mask, truth, truth[mask].mean())
    assert psnr(post.mean, truth) > psnr(fill, truth) + 8
