"""Fuzz of the command line: every class of bad input ends in exit status 2 with one line
on stderr naming the argument or file (no traceback), or in a correct result.

Classes: numbers (every numeric argument of every command), devices, images and masks
through the commands, output paths (under a file, a folder, read-only, full disk),
concurrent runs (lock), resume with changed inputs, planted pickles, TOML architectures.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

import gpdip.io.atomic as atomic
from gpdip.cli.main import main

SEED_CASES = ["1e23", "-1", "99999999999999999999999", "1.5", "nan"]


def _one_line_error(capsys, rc: int, *needles: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture
def grey16(tmp_path):
    gen = np.random.default_rng(0)
    Image.fromarray(gen.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / "y.png")
    Image.fromarray(((gen.random((16, 16)) < 0.5) * 255).astype(np.uint8)).save(tmp_path / "m.png")
    return tmp_path


# ---------------------------------------------------------------- numbers

INPAINT_NUMBERS = (
    [("--noise", v, "(0, 1e+06]") for v in ("0", "-1", "nan", "inf", "abc")]
    + [("--lengthscale", v, "(0, 1e+06]") for v in ("0", "-2", "inf")]
    + [("--tol", v, "(0, 1)") for v in ("10", "0", "1", "nan", "-1e-3")]
    + [("--samples", "-3", "[0, 10000]")]
    + [("--seed", v, "[0, ") for v in SEED_CASES]
)


@pytest.mark.parametrize("flag, value, span", INPAINT_NUMBERS)
def test_inpaint_numbers(grey16, capsys, flag, value, span):
    rc = main(
        [
            "inpaint",
            str(grey16 / "y.png"),
            "--mask",
            str(grey16 / "m.png"),
            "--out",
            str(grey16 / "o.png"),
            f"{flag}={value}",
        ]
    )
    _one_line_error(capsys, rc, f"argument {flag}", span)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--size", "0"], "--size"),
        (["--size", "100000"], "--size"),
        (["--size", "8", "--n", "0"], "--n"),
        (["--size", "8", "--lengthscale", "0"], "--lengthscale"),
        (["--size", "8", "--seed", "1e23"], "--seed"),
    ],
)
def test_sample_numbers(tmp_path, capsys, argv, needle):
    rc = main(["sample", "rbf", *argv, "--out", str(tmp_path / "s.npy")])
    _one_line_error(capsys, rc, f"argument {needle}")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--size", "0"], "argument --size"),
        (["--size", "-4"], "argument --size"),
        (["--width", "0", "--empirical"], "argument --width"),
        (["--samples", "1", "--empirical"], "argument --samples"),
        (["--seed", "1e23"], "argument --seed"),
        (["--max-entries", "0"], "argument --max-entries"),
        (["--set", "input.sigma=nan"], "--set input.sigma"),
        (["--set", "input.sigma=-1"], "--set input.sigma"),
        (["--set", "input.variance=1e999"], "--set input.variance"),
        (["--set", "weight_var=2"], "--set"),
    ],
)
def test_kernel_numbers(tmp_path, capsys, argv, needle):
    rc = main(["kernel", "conv-d2", *argv, "--out", str(tmp_path / "k.npy")])
    _one_line_error(capsys, rc, needle)


DIP_NUMBERS = [
    (["--threads", "-1"], "--threads"),
    (["--threads", "0"], "--threads"),
    (["--seed", "-5"], "--seed"),
    (["--seed", "1e23"], "--seed"),
    (["--seed", "99999999999999999999999"], "--seed"),
    (["--iters", "0"], "--iters"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--noise-std", "0"], "--noise-std"),
    (["--noise-std", "1/0"], "--noise-std"),
    (["--noise-std", "nan"], "--noise-std"),
    (["--reg-noise-std", "nan"], "--reg-noise-std"),
    (["--width", "0"], "--width"),
    (["--weight-decay", "inf"], "--weight-decay"),
    (["--stop-iter", "50", "--iters", "10"], "--stop-iter"),
    (["--method", "sgld", "--iters", "10", "--burn-in", "10"], "--burn-in 10"),
    (["--method", "sgld", "--iters", "10", "--burn-in", "50"], "--burn-in 50"),
    (["--log-every", "0"], "--log-every"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--device", "tpu"], "--device"),
    (["--device", "cuda:x"], "--device"),
]


@pytest.mark.parametrize("argv, needle", DIP_NUMBERS)
def test_dip_numbers(grey16, capsys, argv, needle):
    rc = main(
        [
            "dip",
            str(grey16 / "y.png"),
            "--arch",
            "dip-tiny",
            "--out",
            str(grey16 / "run"),
            "--no-progress",
            *argv,
        ]
    )
    _one_line_error(capsys, rc, f"argument {needle}")
    assert not (grey16 / "run").exists()  # refused at the door: nothing written


def test_dip_cuda_device_stated(grey16, capsys):
    rc = main(
        [
            "dip",
            str(grey16 / "y.png"),
            "--arch",
            "dip-tiny",
            "--out",
            str(grey16 / "run"),
            "--device",
            "cuda:64",
            "--no-progress",
        ]
    )
    needle = "CUDA not available" if not torch.cuda.is_available() else "visible GPUs"
    _one_line_error(capsys, rc, needle)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--jobs", "0"], "--jobs"),
        (["--drop", "1"], "--drop"),
        (["--drop", "-0.1"], "--drop"),
        (["--widths", "0"], "--widths"),
        (["--size", "0"], "--size"),
        (["--seeds", "-1"], "--seeds"),
        (["--lr", "0"], "--lr"),
        (["--noise-var", "0"], "--noise-var"),
        (["--iters", "0"], "--iters"),
    ],
)
def test_sweep_numbers(tmp_path, capsys, argv, needle):
    rc = main(["dip-sweep", "--out", str(tmp_path / "sweep"), *argv])
    _one_line_error(capsys, rc, f"argument {needle}")


# ---------------------------------------------------------------- images and masks via the CLI


def test_dip_reads_16bit_png_and_0_1_mask(tmp_path, capsys):
    """The two silent wrong answers of the old DIP reader: a 16-bit PNG read as white and a
    0/1 mask refused; now `dip` and `inpaint` read both the same way."""
    from gpdip.cli.dip import _load_problem

    a16 = (np.random.default_rng(1).random((16, 16)) * 65535).astype(np.uint16)
    Image.fromarray(a16).save(tmp_path / "y16.png")
    mask = np.random.default_rng(2).integers(0, 2, (16, 16)).astype(np.uint8)
    Image.fromarray(mask).save(tmp_path / "m01.png")
    np.save(tmp_path / "m.npy", mask.astype(bool))

    class Args:
        image, truth = str(tmp_path / "y16.png"), None
        mask = str(tmp_path / "m01.png")

    y, m, _ = _load_problem(Args)
    assert torch.allclose(y[0], torch.tensor(a16 / 65535.0, dtype=torch.float32))
    assert torch.equal(m[0], torch.tensor(mask != 0))
    Args.mask = str(tmp_path / "m.npy")
    assert torch.equal(_load_problem(Args)[1][0], torch.tensor(mask != 0))


@pytest.mark.parametrize(
    "bad", ["truncated", "huge", "nan_npy", "object_npy", "five_channels", "missing"]
)
@pytest.mark.parametrize("role", ["image", "mask"])
def test_bad_files_through_commands(grey16, capsys, bad, role):
    path = grey16 / ("bad.npy" if "npy" in bad or bad == "five_channels" else "bad.png")
    if bad == "truncated":
        path.write_bytes((grey16 / "y.png").read_bytes()[:60])
    elif bad == "huge":
        from tests.io.test_images import _png_declaring

        path.write_bytes(_png_declaring(60000, 60000))
    elif bad == "nan_npy":
        np.save(path, np.full((16, 16), np.nan))
    elif bad == "object_npy":
        np.save(path, np.array([None, "x"], dtype=object), allow_pickle=True)
    elif bad == "five_channels":  # refused before any computation
        np.save(path, np.zeros((16, 16, 5)))
    image = str(path if role == "image" else grey16 / "y.png")
    mask = str(path if role == "mask" else grey16 / "m.png")
    if bad == "five_channels" and role == "mask":
        pytest.skip("a 5-channel .npy mask is refused as not (H, W): covered in tests/io")
    for argv in (
        ["inpaint", image, "--mask", mask, "--out", str(grey16 / "o.png")],
        [
            "dip",
            image,
            "--mask",
            mask,
            "--arch",
            "dip-tiny",
            "--out",
            str(grey16 / "run"),
            "--no-progress",
        ],
    ):
        _one_line_error(capsys, main(argv), "bad.")


# ---------------------------------------------------------------- output paths


@pytest.mark.parametrize("where", ["under_file", "is_folder", "proc", "suffix"])
def test_output_paths(grey16, capsys, where):
    (grey16 / "file").write_text("")
    out = {
        "under_file": grey16 / "file" / "o.npy",
        "is_folder": grey16,
        "proc": "/proc/self/none/o.npy",
        "suffix": grey16 / "o.txt",
    }[where]
    for argv in (
        ["kernel", "conv-d2", "--size", "4", "--out", str(out)],
        ["sample", "rbf", "--size", "8", "--out", str(out)],
        ["inpaint", str(grey16 / "y.png"), "--mask", str(grey16 / "m.png"), "--out", str(out)],
    ):
        _one_line_error(capsys, main(argv), str(out))
    if where in ("under_file", "proc"):
        for argv in (
            [
                "dip",
                str(grey16 / "y.png"),
                "--arch",
                "dip-tiny",
                "--out",
                str(out),
                "--no-progress",
            ],
            ["demo", "--out-dir", str(out)],
        ):
            _one_line_error(capsys, main(argv), str(out))


def test_full_disk_during_dip_outputs(grey16, capsys, monkeypatch):
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_then_full(fd):  # checkpoints succeed, then the disk fills up
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync_then_full)
    rc = main(
        [
            "dip",
            str(grey16 / "y.png"),
            "--arch",
            "dip-tiny",
            "--width",
            "4",
            "--iters",
            "4",
            "--checkpoint-every",
            "2",
            "--out",
            str(grey16 / "run"),
            "--no-progress",
        ]
    )
    _one_line_error(capsys, rc, "No space left on device")
    leftovers = [p.name for p in (grey16 / "run").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_out_equal_to_input_keeps_permissions(grey16, capsys):
    image = grey16 / "y.png"
    os.chmod(image, 0o644)
    rc = main(
        [
            "inpaint",
            str(image),
            "--mask",
            str(grey16 / "m.png"),
            "--kernel",
            "rbf",
            "--noise",
            "1e-3",
            "--lengthscale",
            "2",
            "--backend",
            "dense",
            "--out",
            str(image),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert stat.S_IMODE(os.stat(image).st_mode) == 0o644


# ---------------------------------------------------------------- runs: lock, resume, pickles


def _dip(folder, image, *extra):
    return main(
        [
            "dip",
            str(image),
            "--arch",
            "dip-tiny",
            "--width",
            "4",
            "--iters",
            "4",
            "--checkpoint-every",
            "2",
            "--log-every",
            "1",
            "--out",
            str(folder),
            "--no-progress",
            *extra,
        ]
    )


def test_resume_with_changed_inputs_is_refused(grey16, capsys, monkeypatch):
    import gpdip.experiments.plots as plots

    monkeypatch.setattr(plots, "plot_curves", lambda *a, **k: None)  # speed: not under test
    run = grey16 / "run"
    assert _dip(run, grey16 / "y.png") == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert _dip(run, grey16 / "y.png") == 0  # same inputs: the finished run is reused
    assert (
        json.loads(capsys.readouterr().out.strip().splitlines()[-1])["iterations"]
        == first["iterations"]
    )
    other = grey16 / "other.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(other)
    _one_line_error(capsys, _dip(run, other), "observed changed")
    _one_line_error(
        capsys, _dip(run, grey16 / "y.png", "--mask", str(grey16 / "m.png")), "mask changed"
    )
    _one_line_error(capsys, _dip(run, grey16 / "y.png", "--truth", str(other)), "truth")
    _one_line_error(
        capsys,
        main(
            [
                "dip",
                str(grey16 / "y.png"),
                "--arch",
                "dip-tiny",
                "--width",
                "8",
                "--iters",
                "4",
                "--checkpoint-every",
                "2",
                "--log-every",
                "1",
                "--out",
                str(run),
                "--no-progress",
            ]
        ),
        "network",
    )
    log = (run / "log.jsonl").read_bytes()
    assert b"\0" not in log and len(log.splitlines()) == 4


def test_planted_checkpoint_never_runs(grey16, capsys):
    run = grey16 / "run"
    run.mkdir()
    marker = grey16 / "marker"
    from tests.io.test_files import Evil

    torch.save({"t": 1, "config": Evil(marker)}, run / "checkpoint.pt")
    _one_line_error(capsys, _dip(run, grey16 / "y.png"), "checkpoint", "could not be read safely")
    assert not marker.exists()


def test_sweep_cache_pickle_refused_and_kept_under_out(tmp_path):
    from gpdip.errors import GpdipError
    from gpdip.experiments.sweep import SweepTask, _gp_means

    marker = tmp_path / "marker"
    arch = tmp_path / "elsewhere" / "my-arch.toml"  # a user's --arch path outside --out
    task = SweepTask(str(arch), 8, 0, 16, 1, 0.01, 0.5, "house", str(tmp_path / "out"))
    cache = tmp_path / "out" / "gp_cache" / "my-arch-16-0.pt"
    cache.parent.mkdir(parents=True)
    from tests.io.test_files import Evil

    torch.save({"gp": Evil(marker)}, cache)
    with pytest.raises(GpdipError, match="GP cache"):
        _gp_means(task, torch.zeros(1, 16, 16), torch.ones(1, 16, 16, dtype=torch.bool))
    assert not marker.exists() and not arch.parent.exists()


def test_concurrent_run_is_refused(grey16, capsys):
    run = grey16 / "run"
    run.mkdir()
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held as another process would hold it
    try:
        _one_line_error(capsys, _dip(run, grey16 / "y.png"), "in use by another gpdip process")
        _one_line_error(capsys, main(["dip-sweep", "--out", str(run), "--widths", "8"]), "in use")
    finally:
        os.close(fd)
    assert not (run / "log.jsonl").exists()


def test_sweep_resume_with_other_image_or_drop(tmp_path, capsys):
    from gpdip.experiments.sweep import RESULTS
    from gpdip.experiments.sweep_cli import build_parser, sweep_inputs
    from gpdip.io.rundir import check_inputs

    out = tmp_path / "sweep"
    args = build_parser().parse_args(["--out", str(out), "--widths", "8", "--seeds", "0"])
    out.mkdir()
    check_inputs(out, sweep_inputs(args), resuming=False)
    (out / RESULTS).write_text("{}\n")  # a finished row
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "img.png")
    for extra, needle in (
        (["--image", str(tmp_path / "img.png")], "image changed"),
        (["--drop", "0.25"], "drop changed"),
    ):
        rc = main(["dip-sweep", "--out", str(out), "--widths", "8", "--seeds", "0", *extra])
        _one_line_error(capsys, rc, needle)


# ---------------------------------------------------------------- TOML architectures

VALID = """[input]
channels = 8
sigma = 0.0

[network]
layers = [
  { type = "conv", channels = 8, kernel_size = 3 },
  { type = "relu" },
  { type = "conv", channels = 1, kernel_size = 1 },
]
"""


def _mutations(seed: int, n: int) -> list[bytes]:
    """Seeded byte-level mutations of a valid file: cut, flip, insert, delete, duplicate."""
    gen = np.random.default_rng(seed)
    base = VALID.encode()
    out = [
        b"",
        b"\0\xff\xfe" * 40,
        base[: len(base) // 2],
        base.replace(b"8", b"-8"),
        base.replace(b"3", b"1e999"),
        base.replace(b"0.0", b"nan"),
        base.replace(b"conv", b"\xc3\xa9"),
    ]
    for _ in range(n):
        data = bytearray(base)
        for _ in range(int(gen.integers(1, 4))):
            i = int(gen.integers(0, len(data)))
            op = int(gen.integers(0, 4))
            if op == 0:
                data[i] = int(gen.integers(0, 256))
            elif op == 1:
                del data[i : i + int(gen.integers(1, 20))]
            elif op == 2:
                data[i:i] = bytes(gen.choice(list(b'[]{}=",.-+0123456789abcxyz\n '), 3))
            else:
                data[i:i] = data[i : i + int(gen.integers(1, 30))]
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("case", range(47))
def test_toml_fuzz_through_kernel(tmp_path, capsys, case):
    data = _mutations(seed=2026, n=40)[case]
    path = tmp_path / "arch.toml"
    path.write_bytes(data)
    rc = main(["kernel", str(path), "--size", "4", "--out", str(tmp_path / "k.npy")])
    if rc == 0:  # a mutation that is still a valid architecture: a finite table
        capsys.readouterr()
        table = np.load(tmp_path / "k.npy")
        assert table.shape == (7, 7) and np.isfinite(table).all()
    else:
        _one_line_error(capsys, rc)
