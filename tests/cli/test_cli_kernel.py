"""``gpdip kernel`` end to end: files, layout, JSON, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpdip import compile_kernel
from gpdip.cli.main import main


def test_kernel_writes_table_plot_and_json(tmp_path, capsys):
    out, plot = tmp_path / "K.npy", tmp_path / "K.png"
    assert (
        main(["kernel", "unet2", "--size", "12", "--out", str(out), "--plot", str(plot), "--json"])
        == 0
    )
    table = np.load(out)
    assert table.shape == (23, 23) and table.dtype == np.float64
    assert np.array_equal(table, compile_kernel("unet2", 12).numpy())
    assert plot.stat().st_size > 10_000  # a real figure
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "compiled" and summary["k0"] == pytest.approx(table[11, 11])


def test_kernel_ntk(tmp_path, capsys):
    out = tmp_path / "T.npy"
    assert (
        main(
            [
                "kernel",
                "unet2",
                "--size",
                "6",
                "--dims",
                "1",
                "--kind",
                "ntk",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    table = np.load(out, allow_pickle=False)
    assert np.array_equal(table, compile_kernel("unet2", 6, dims=1, kind="ntk").numpy())
    assert not np.array_equal(table, compile_kernel("unet2", 6, dims=1).numpy())
    assert json.loads(capsys.readouterr().out)["kind"] == "ntk"


def test_kernel_layout_offsets():
    """K[S-1+dy, S-1+dx]: a kernel with an anisotropic input keeps dy and dx apart."""
    from gpdip import Architecture, Conv, Downsample, InputSpec, Upsample

    arch = Architecture(
        InputSpec(4, 1.0), (Conv(8), Downsample(2), Upsample(2, "nearest"), Conv(1))
    )
    table = compile_kernel(arch, (3, 5))
    assert table.shape == (5, 9)
    assert np.allclose(table.numpy(), table.numpy()[::-1, ::-1])


def test_kernel_1d_and_set(tmp_path):
    out = tmp_path / "k.npy"
    assert (
        main(
            [
                "kernel",
                "conv-d3",
                "--size",
                "9",
                "--dims",
                "1",
                "--set",
                "input.sigma=2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.allclose(np.load(out), compile_kernel("conv-d3-s2", 9, dims=1).numpy())


def test_kernel_empirical(tmp_path, capsys):
    out = tmp_path / "mc.npy"
    assert (
        main(
            [
                "kernel",
                "conv-d2-s2",
                "--size",
                "5",
                "--dims",
                "1",
                "--empirical",
                "--width",
                "64",
                "--samples",
                "8",
                "--seed",
                "3",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert np.load(out).shape == (9,)
    assert np.load(tmp_path / "mc.stderr.npy").shape == (9,)
    assert summary["rel_error_vs_compiled"] < 0.3


@pytest.mark.parametrize(
    "argv,message",
    [
        (["kernel", "nope", "--json"], "not a file and not a catalog name"),
        (["kernel", "unet2", "--size", "0", "--json"], "--size"),
        (["kernel", "unet2", "--set", "input.sigm=2", "--json"], "--set"),
        (["kernel", "unet2"], "nothing to do"),
    ],
)
def test_kernel_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
