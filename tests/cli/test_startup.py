"""The command line starts fast: `gpdip --help` imports no torch; every command has --threads."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import numpy as np
import pytest

from gpdip.cli.main import COMMANDS, build_parser


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_imports_no_torch():
    code = "import sys; from gpdip.cli.main import main; main(['--help'])"
    out = subprocess.run(
        [sys.executable, "-c", code + "\nprint('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=False,
    )
    # --help exits through SystemExit inside main (returned as 0), so the print runs
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr


def test_command_table_matches_what_modules_register():
    for module in {m for m, _ in COMMANDS.values()}:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).register(sub)
        assert set(sub.choices) == {c for c, (m, _) in COMMANDS.items() if m == module}


def test_every_command_takes_threads():
    for name, sub in _choices(build_parser()).items():
        assert "--threads" in sub._option_string_actions, name


def test_module_entry_point_runs_a_command_and_returns_its_exit_code(tmp_path):
    """``python -m gpdip`` goes through :func:`gpdip.cli.main.run` (main, then gc.freeze and
    exit): the output is complete on disk and the exit status is main's, 0 or 2."""
    out = tmp_path / "k.npy"
    ok = subprocess.run(
        [sys.executable, "-m", "gpdip", "kernel", "conv-d1", "--size", "8", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert np.load(out, allow_pickle=False).shape == (15, 15)
    bad = subprocess.run(
        [sys.executable, "-m", "gpdip", "kernel", "no-such-net", "--size", "8"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr


def test_bad_environment_settings_are_one_clear_error(tmp_path, monkeypatch, capsys):
    """$GPDIP_MAX_TABLE and $GPDIP_INDEX_CACHE_MB are read when used, and a bad value is a
    GpdipError naming the variable (it was a ValueError traceback at import)."""
    import torch

    from gpdip.cli.main import main
    from gpdip.errors import GpdipError
    from gpdip.limit.index_cache import IndexCache

    for bad in ("abc", "-1", "inf"):
        monkeypatch.setenv("GPDIP_MAX_TABLE", bad)
        code = main(["kernel", "conv-d1", "--size", "8", "--out", str(tmp_path / "k.npy")])
        err = capsys.readouterr().err
        assert code == 2 and "$GPDIP_MAX_TABLE: expected a non-negative number" in err, err
        assert err.count("\n") == 1
        monkeypatch.setenv("GPDIP_INDEX_CACHE_MB", bad)
        with pytest.raises(GpdipError, match=r"\$GPDIP_INDEX_CACHE_MB: expected"):
            IndexCache().put(("key",), torch.zeros(4))
    monkeypatch.setenv("GPDIP_INDEX_CACHE_MB", "0")  # 0 keeps nothing
    cache = IndexCache()
    cache.put(("key",), torch.zeros(4))
    assert cache.get(("key",)) is None
