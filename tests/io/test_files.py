"""Atomic writer (umask, kept modes, full disk, bad paths), safe loading, run folders (lock,
fingerprints) and the JSON-lines log."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import warnings

import numpy as np
import pytest
import torch

import gpdip.io.atomic as atomic
from gpdip.dip.io import JsonlLog, load_checkpoint
from gpdip.errors import GpdipError, GpdipWarning
from gpdip.io.atomic import check_writable, load_torch, save_text, save_torch
from gpdip.io.rundir import check_inputs, file_fingerprint, fingerprint, locked


class Evil:
    """Unpickling this object would create ``marker`` (what a planted checkpoint could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_new_file_follows_umask(tmp_path, umask_027):
    save_text(tmp_path / "a.txt", "x")
    assert _mode(tmp_path / "a.txt") == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600


def test_replaced_file_keeps_its_mode(tmp_path, umask_027):
    target = tmp_path / "b.txt"
    target.write_text("old")
    os.chmod(target, 0o604)
    save_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o604


def test_full_disk_leaves_target_and_folder_unchanged(tmp_path, monkeypatch):
    target = tmp_path / "c.json"
    target.write_text("complete")

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", no_space)
    with pytest.raises(GpdipError, match=r"cannot write .*c\.json.*No space left"):
        save_text(target, "partial")
    assert target.read_text() == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]  # no temp file left


@pytest.mark.parametrize("case", ["under_file", "proc", "denied"])
def test_unwritable_paths(tmp_path, monkeypatch, case):
    (tmp_path / "file").write_text("")
    target = {
        "under_file": tmp_path / "file" / "x.txt",
        "proc": "/proc/self/no-such-folder/x.txt",  # a read-only file system
        "denied": tmp_path / "x.txt",
    }[case]
    if case == "denied":  # as root, chmod does not deny: simulate the refusal

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(GpdipError, match=r"x\.txt"):
        save_text(target, "x")
    if case != "denied":
        with pytest.raises(GpdipError, match=r"cannot be created|is a file"):
            check_writable(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    with pytest.raises(GpdipError, match="not writable"):
        save_text(folder / "x.txt", "x")


def test_torch_files_hold_data_only(tmp_path):
    state = {"t": 3, "x": torch.arange(4.0), "nested": [(1.5, None, "a")]}
    save_torch(tmp_path / "s.pt", state)
    loaded = load_torch(tmp_path / "s.pt")
    assert loaded["t"] == 3 and torch.equal(loaded["x"], state["x"])
    assert loaded["nested"] == [(1.5, None, "a")]


def test_pickled_checkpoint_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    torch.save({"t": 1, "payload": Evil(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(GpdipError, match="could not be read safely"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()
    (tmp_path / "torn.pt").write_bytes((tmp_path / "checkpoint.pt").read_bytes()[:50])
    with pytest.raises(GpdipError, match=r"torn\.pt"):
        load_checkpoint(tmp_path / "torn.pt")
    save_torch(tmp_path / "list.pt", [1, 2])
    with pytest.raises(GpdipError, match="expected a dict"):
        load_checkpoint(tmp_path / "list.pt")


def test_lock_refuses_a_second_holder(tmp_path):
    with locked(tmp_path / "run") as folder:
        with locked(folder):  # re-entrant in one process
            pass
        # another process: flock is per open file description, so a second descriptor
        # from here conflicts exactly as one from another process would
        fd = os.open(folder / ".lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(tmp_path / "run" / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with (
            pytest.raises(GpdipError, match=r"in use by another gpdip process"),
            locked(tmp_path / "run"),
        ):
            pass
    finally:
        os.close(fd)
    with locked(tmp_path / "run"):  # released: free again
        pass


def test_fingerprints_name_what_changed(tmp_path):
    first = {"observed": fingerprint(torch.ones(2, 2)), "mask": fingerprint(None)}
    check_inputs(tmp_path, first, resuming=False)
    check_inputs(tmp_path, first, resuming=True)  # same inputs: fine
    changed = {
        **first,
        "observed": fingerprint(torch.ones(2, 2) * 2),
        "mask": fingerprint(torch.ones(2, 2, dtype=torch.bool)),
    }
    with pytest.raises(GpdipError, match="mask, observed changed"):
        check_inputs(tmp_path, changed, resuming=True)
    check_inputs(tmp_path, changed, resuming=False)  # a fresh start replaces the record
    check_inputs(tmp_path, changed, resuming=True)


def test_fingerprint_distinguishes_dtype_shape_and_structure(tmp_path):
    x = torch.zeros(4)
    assert fingerprint(x) != fingerprint(x.double())
    assert fingerprint(x) != fingerprint(x.reshape(2, 2))
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint(1) != fingerprint(1.0) != fingerprint("1")
    (tmp_path / "f").write_bytes(b"abc")
    assert (
        file_fingerprint(tmp_path / "f")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )  # sha256("abc")


def test_log_shorter_than_checkpoint_offset_is_not_padded(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"iter": 1}\n{"iter": 2}\n{"it')  # lines lost and a torn one
    log = JsonlLog(path)
    with pytest.warns(GpdipWarning, match="shorter than the checkpoint"):
        log.truncate(10_000)
    log.write({"iter": 3})
    log.close()
    data = path.read_bytes()
    assert b"\0" not in data
    assert data == b'{"iter": 1}\n{"iter": 2}\n{"iter": 3}\n'


def test_log_truncates_to_offset(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"iter": 1}\n{"iter": 2}\n')
    log = JsonlLog(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log.truncate(12)
    log.close()
    assert path.read_bytes() == b'{"iter": 1}\n'


def test_npy_writer_round_trip(tmp_path):
    array = np.arange(6.0).reshape(2, 3)
    atomic.save_npy(tmp_path / "a.npy", array)
    assert np.array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), array)
