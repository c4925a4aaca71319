"""Atomic output: write to a temporary file beside the target, then rename over it.

A killed run never leaves a half-written result behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then ``os.replace(tmp_path, path)``; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    return atomic_write(path, write)


def save_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Save JSON (indented, sorted keys) atomically."""
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2) + "\n")

    return atomic_write(path, write)


def save_figure(path: str | os.PathLike[str], figure: Any, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from the target's extension)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, **kwargs))
