"""Start-up: ``import gpdip.gp`` and the grid inpainting path load no gpytorch/pykeops
(nor sympy or scipy.fft) and print nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import torch
import gpdip.gp
stages = {"import": ["gpytorch" in sys.modules, "pykeops" in sys.modules]}
from gpdip.gp import grid_posterior, sample_prior
from gpdip.gp.grid import table_from_offsets
table = table_from_offsets(lambda r: torch.exp(-r / 3), (8, 8))
image = sample_prior(table, (8, 8), 1, torch.Generator().manual_seed(0))[0]
mask = torch.rand(8, 8, generator=torch.Generator().manual_seed(1)) < 0.5
grid_posterior(table, image, mask, 1e-2)
stages["grid_path"] = ["gpytorch" in sys.modules, "pykeops" in sys.modules]
from gpdip.gp import inpaint
big = torch.rand(40, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
inpaint(big, torch.rand(40, 40, generator=torch.Generator().manual_seed(3)) < 0.5, "unet2",
        backend="grid")
stages["inpaint"] = [
    m in sys.modules for m in ("gpytorch", "pykeops", "sympy", "scipy.fft", "linear_operator")
]
from gpdip.gp import DIPKernel
stages["kernels"] = ["gpytorch" in sys.modules, DIPKernel.__name__]
import gpdip.gp.inpaint  # binds the package attribute 'inpaint' to the submodule...
from gpdip.gp import inpaint  # ...but the name still means the function
stages["inpaint_name"] = [callable(inpaint), inpaint.__module__]
print(json.dumps(stages))
"""


def test_import_is_lazy_and_silent():
    env = {k: v for k, v in os.environ.items() if k != "KEOPS_VERBOSE"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    stages = json.loads(out.stdout.strip().splitlines()[-1])
    assert stages["import"] == [False, False]
    assert stages["grid_path"] == [False, False]  # the FFT/CG path needs neither
    assert stages["kernels"] == [True, "DIPKernel"]  # and the lazy names still resolve
    # inpainting with a named DIP kernel (window fit, compile, FFT/CG) imports no gpytorch,
    # pykeops, sympy, scipy.fft or linear_operator: over a second of start-up on this CPU
    assert stages["inpaint"] == [False] * 5
    assert stages["inpaint_name"] == [True, "gpdip.gp.inpaint"]
    # nothing else on stdout (KeOps' banner went there) and nothing on stderr
    assert out.stdout.strip().splitlines() == [out.stdout.strip()]
    assert "KeOps" not in out.stdout + out.stderr and out.stderr == ""


def test_public_names_resolve():
    import gpdip.gp as gp

    for name in gp.__all__:
        assert getattr(gp, name) is not None
    assert set(gp.__all__) <= set(dir(gp))
    # one list of names, kept in step (GpdipWarning lives in gpdip.errors, re-exported)
    assert sorted([*gp._EXPORTS, "GpdipWarning"]) == gp.__all__
