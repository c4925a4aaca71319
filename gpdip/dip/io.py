"""Crash-safe files: atomic checkpoints and append-only JSON-lines logs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from gpdip.errors import GpdipError
from gpdip.io.atomic import atomic_write, save_text


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`gpdip.io.atomic.atomic_write` (temp file, fsync, rename).

    A checkpoint on disk is therefore always a complete one, never a
    half-written one, even if the process is killed mid-write.
    """
    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically (see :func:`gpdip.io.atomic.save_text`)."""
    save_text(path, text)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`atomic_torch_save`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupted or foreign file
        raise GpdipError(
            f"checkpoint '{path}' could not be read ({exc}); delete it to restart"
        ) from exc


class JsonlLog:
    """Append-only JSON-lines file; each record is flushed (and optionally fsynced).

    ``truncate(offset)`` cuts the file back to a byte offset recorded in a
    checkpoint, so a resumed run rewrites exactly the lines an uninterrupted
    run would have written.
    """

    def __init__(self, path: str | Path | None, fsync: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.fsync = fsync
        self._f = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a+b")  # noqa: SIM115 - closed in close()

    def offset(self) -> int:
        return 0 if self._f is None else self._f.tell()

    def truncate(self, offset: int) -> None:
        if self._f is not None:
            self._f.truncate(offset)
            self._f.seek(offset)

    def write(self, record: dict[str, Any]) -> None:
        if self._f is None:
            return
        self._f.write((json.dumps(record, sort_keys=True) + "\n").encode())
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record durably (open, write, flush, fsync, close)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, ignoring a torn last line left by a killed writer."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
