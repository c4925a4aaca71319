"""Crash-safe files: checkpoints (read safely) and append-only JSON-lines logs."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from gpdip.errors import GpdipError, GpdipWarning
from gpdip.io.atomic import ensure_dir, load_torch


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written with :func:`gpdip.io.atomic.save_torch`: tensors and plain
    data only (``weights_only=True``), never code."""
    state = load_torch(path, "checkpoint")
    if not isinstance(state, dict):
        raise GpdipError(
            f"checkpoint '{path}': expected a dict of run state, got "
            f"{type(state).__name__}; delete it to restart"
        )
    return state


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
            ensure_dir(self.path.parent)
            try:
                self._f = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise GpdipError(f"cannot open log '{self.path}': {exc.strerror}") from None

    def offset(self) -> int:
        return 0 if self._f is None else self._f.tell()

    def truncate(self, offset: int) -> None:
        """Cut the log back to ``offset``.  A log shorter than that (lines lost after the
        checkpoint was written) is never padded: it is cut back to its last complete line,
        with a warning, and the run goes on appending."""
        if self._f is None:
            return
        size = self._f.seek(0, os.SEEK_END)
        if offset > size:
            self._f.seek(0)
            offset = self._f.read().rfind(b"\n") + 1
            warnings.warn(
                f"log '{self.path}' is {size} bytes, shorter than the checkpoint's "
                "offset: lines after its last complete one are missing",
                GpdipWarning,
                stacklevel=2,
            )
        self._f.truncate(offset)
        self._f.seek(offset)

    def write(self, record: dict[str, Any]) -> None:
        if self._f is None:
            return
        try:
            self._f.write((json.dumps(record, sort_keys=True) + "\n").encode())
            self._f.flush()
            if self.fsync:
                os.fsync(self._f.fileno())
        except OSError as exc:
            raise GpdipError(f"cannot write log '{self.path}': {exc.strerror}") from None

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record durably (open, write, flush, fsync, close)."""
    path = Path(path)
    ensure_dir(path.parent)
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise GpdipError(f"cannot append to '{path}': {exc.strerror}") from None


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
