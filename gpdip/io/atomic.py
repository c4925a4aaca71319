"""Atomic output: write to a temporary file beside the target, fsync, then rename over it.

A killed run (or a full disk) never leaves a half-written result behind.  This is the one
writer of the package: images, arrays, JSON, figures, text reports, tensors and
checkpoints all go through :func:`atomic_write`; every writer takes ``(path, data)``.

Permissions: a new file gets ``0o666 & ~umask`` (as ``open()`` would give it); a file
that is replaced keeps its mode.  Any operating-system failure (read-only folder, a path
under an existing file, a full disk) is a :class:`GpdipError` naming the path.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from gpdip.errors import GpdipError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting and restoring it, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def ensure_dir(folder: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create ``folder`` (and parents) or raise a :class:`GpdipError` saying why not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise GpdipError(f"{what} '{folder}' is a file; expected a folder") from None
    except NotADirectoryError:
        raise GpdipError(
            f"{what} '{folder}' cannot be created: part of the path is a file, not a folder"
        ) from None
    except OSError as exc:
        raise GpdipError(f"{what} '{folder}' cannot be created: {_why(exc)}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GpdipError(f"{what} '{folder}' is not writable; expected a folder you can write to")
    return folder


def check_writable(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Fail early (before any computation) when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise GpdipError(f"{what} '{path}' is a folder; expected a file name")
    ensure_dir(path.parent, f"{what} '{path}': folder")
    return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(handle)`` on a binary temp file beside ``path``, fsync, ``os.replace``."""
    path = Path(path)
    ensure_dir(path.parent, f"folder of '{path}'")
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666 & ~current_umask()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise GpdipError(f"cannot write '{path}': {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise GpdipError(f"cannot write '{path}': {_why(exc)}; nothing was changed") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def save_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically."""
    return atomic_write(path, lambda handle: np.save(handle, array))


def save_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Save JSON (indented) atomically."""
    return save_text(path, json.dumps(data, indent=2, default=float) + "\n")


def save_torch(path: str | os.PathLike[str], data: Any) -> Path:
    """``torch.save`` atomically.  Keep ``data`` to tensors and plain Python values, so
    that it loads with ``torch.load(weights_only=True)`` (:func:`load_torch`)."""
    import torch

    return atomic_write(path, lambda handle: torch.save(data, handle))


def load_torch(path: str | os.PathLike[str], what: str = "file") -> Any:
    """``torch.load(weights_only=True)`` on the CPU: tensors and plain data only, never
    code; anything else (a pickle with objects, a truncated file) is a :class:`GpdipError`."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GpdipError(
            f"{what} '{path}' could not be read safely ({first}); expected "
            "tensors and plain data written by gpdip; delete it to restart"
        ) from None


def save_figure(path: str | os.PathLike[str], figure: Any, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from the target's extension)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, **kwargs))
