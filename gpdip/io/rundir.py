"""Run folders: one process at a time (a lock file), and a fingerprint of the inputs.

A resumable run (``gpdip dip``, a table job, ``gpdip dip-sweep``) keeps its state in its
output folder.  Two things make that safe:

* :func:`locked` holds an exclusive ``fcntl.flock`` on ``FOLDER/.lock`` while the run
  writes; a second process asking for the same folder gets a :class:`GpdipError` at once
  (the lock is released by the kernel when the holder exits, even when it is killed).  The
  lock is re-entrant within one process, so a command may hold it around a library call
  that takes it again.
* :func:`check_inputs` records the SHA-256 of every input (image, mask, truth, network,
  configuration...) in ``FOLDER/inputs.json``; resuming with different inputs is a
  :class:`GpdipError` naming each input that changed, instead of returning the old result.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpdip.errors import GpdipError
from gpdip.io.atomic import ensure_dir, save_json

LOCK = ".lock"
INPUTS = "inputs.json"
_held: dict[Path, tuple[int, int]] = {}  # folder -> (file descriptor, depth)
_held_guard = threading.Lock()


@contextmanager
def locked(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if absent) for the ``with`` block."""
    folder = ensure_dir(folder).resolve()
    with _held_guard:
        if folder in _held:
            fd, depth = _held[folder]
            _held[folder] = (fd, depth + 1)
        else:
            _held[folder] = (_acquire(folder), 1)
    try:
        yield folder
    finally:
        with _held_guard:
            fd, depth = _held[folder]
            if depth > 1:
                _held[folder] = (fd, depth - 1)
            else:
                del _held[folder]
                os.close(fd)  # closing the descriptor releases the flock


def _acquire(folder: Path) -> int:
    path = folder / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise GpdipError(
            f"output folder '{folder}': cannot create its lock file ({exc.strerror})"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise GpdipError(
            f"output folder '{folder}' is in use by another gpdip process "
            f"(pid {owner}); wait for it to finish or choose another output "
            "folder"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def check_inputs(
    folder: str | os.PathLike[str], inputs: Mapping[str, str | None], *, resuming: bool
) -> None:
    """Compare ``inputs`` (name → fingerprint) with those recorded in ``folder``; record them.

    ``resuming``: the folder holds state that will be reused (a checkpoint, result rows).
    Then a recorded input that differs is a :class:`GpdipError` listing every changed
    name; names not recorded yet are added (a sweep may add architectures; a folder
    written before fingerprints existed is trusted once).  When not resuming, the record
    is replaced.
    """
    path = Path(folder) / INPUTS
    recorded = (_read_record(path) if resuming else None) or {}
    changed = sorted(k for k in inputs if k in recorded and recorded[k] != inputs[k])
    if changed:
        raise GpdipError(
            f"output folder '{folder}' holds a run with other inputs: {', '.join(changed)} "
            f"changed (recorded in {path}); expected the same inputs to resume, so use "
            "another output folder or delete this one to start over"
        )
    save_json(path, {**recorded, **inputs})


def _read_record(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GpdipError(
            f"'{path}' is not a readable input record ({exc}); delete the folder to start over"
        ) from None
    if not isinstance(data, dict):
        raise GpdipError(f"'{path}': expected a JSON object of input fingerprints")
    return data


def fingerprint(*parts: Any) -> str:
    """SHA-256 (hex) of tensors, arrays, bytes, strings, numbers, None, and lists, tuples
    and dicts of them (dict keys sorted), each part tagged with its type and shape."""
    digest = hashlib.sha256()
    for part in parts:
        _feed(digest, part)
    return digest.hexdigest()


def _feed(digest: Any, part: Any) -> None:
    if isinstance(part, torch.Tensor):
        part = part.detach().cpu().contiguous().numpy()
    if isinstance(part, np.ndarray):
        digest.update(f"nd{part.dtype.str}{part.shape}".encode())
        digest.update(np.ascontiguousarray(part).tobytes())
    elif isinstance(part, bytes):
        digest.update(b"b%d:" % len(part) + part)
    elif isinstance(part, Mapping):
        digest.update(b"{")
        for key in sorted(part, key=str):
            _feed(digest, str(key))
            _feed(digest, part[key])
        digest.update(b"}")
    elif isinstance(part, list | tuple):
        digest.update(b"[%d" % len(part))
        for item in part:
            _feed(digest, item)
        digest.update(b"]")
    else:  # str, int, float, bool, None
        text = f"{type(part).__name__}:{part!r}".encode()
        digest.update(b"s%d:" % len(text) + text)


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise GpdipError(f"cannot read '{path}' ({exc.strerror})") from None
    return digest.hexdigest()
