"""Locate the shared data folder (``../shared/data`` beside the repository).

Tests and scripts read the paper's images through :func:`shared_data_dir`; when
the folder is absent they skip with a message instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

from gpdip.errors import GpdipError

_ENV_VAR = "GPDIP_SHARED_DATA"


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    return Path(__file__).resolve().parents[2]


def shared_data_dir(required: bool = False) -> Path | None:
    """Return ``../shared/data`` relative to the repo root, or ``$GPDIP_SHARED_DATA``.

    Returns ``None`` when the folder is absent, or raises :class:`GpdipError`
    when ``required`` is true.
    """
    env = os.environ.get(_ENV_VAR)
    candidates = [Path(env)] if env else []
    candidates.append(repo_root().parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    if required:
        raise GpdipError(
            f"shared data folder not found (looked in {', '.join(map(str, candidates))}); "
            f"set ${_ENV_VAR} to the folder holding inpainting/ and denoising/"
        )
    return None


def require_shared_data(subdir: str = "") -> Path:
    """For tests: the shared data folder (or a sub-folder), or ``pytest.skip`` with a message."""
    base = shared_data_dir()
    path = base / subdir if base is not None else None
    if path is None or not path.exists():
        import pytest

        pytest.skip(
            f"shared data '{subdir or '.'}' not found beside the repository (../shared/data)"
        )
    return path


def packaged_asset(name: str) -> Path:
    """Path of an image shipped inside the package (``gpdip/assets``)."""
    path = Path(__file__).resolve().parents[1] / "assets" / name
    if not path.exists():
        raise GpdipError(f"packaged asset '{name}' is missing from {path.parent}")
    return path
