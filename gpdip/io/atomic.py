"""Atomic output: write to a temporary file beside the target, fsync, then rename over it.

A killed run never leaves a half-written result behind.  This is the one writer of
the package: images, arrays, JSON, figures, text reports and checkpoints all go
through :func:`atomic_write`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(handle)`` on a binary temp file beside ``path``, fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically."""
    return atomic_write(path, lambda handle: np.save(handle, array))


def save_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Save JSON (indented) atomically."""
    return save_text(path, json.dumps(data, indent=2) + "\n")


def save_figure(path: str | os.PathLike[str], figure: Any, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from the target's extension)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, **kwargs))
