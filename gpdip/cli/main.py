"""The ``gpdip`` command line: one sub-command per job.

Sub-commands live in their own modules, each exposing ``register(subparsers)``
that adds its parsers and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code).  Only the module of the command
being run is imported; ``gpdip --help`` lists the commands from :data:`COMMANDS` without
importing any (no torch), so it answers at once.

Every command takes ``--threads N``: torch's intra-op threads.  The default is half the
CPUs this process may use (at least 1), unless ``$OMP_NUM_THREADS`` is set: on a shared
machine, torch's default of one thread per core made a 512² inpainting 5× slower under
load, while on an idle 2-core machine the second thread gains only 1.1–1.3×
(docs/benchmarks-gp.md).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from gpdip.cli.args import THREADS
from gpdip.errors import GpdipError

#: command -> (module that registers it, one-line help for ``gpdip --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "kernel": ("gpdip.cli.kernel", "compile an architecture to its limiting covariance or NTK"),
    "inpaint": ("gpdip.cli.gp", "GP posterior inpainting of an image"),
    "sample": ("gpdip.cli.gp", "exact prior samples of an architecture's GP"),
    "demo": ("gpdip.cli.gp", "inpaint the packaged house image (50%% dropped)"),
    "dip": ("gpdip.cli.dip", "train the Deep Image Prior network (SGD variants, SGLD, ...)"),
    "dip-sweep": ("gpdip.cli.dip", "DIP against its GP limit as the channels grow"),
    "ntk-predict": ("gpdip.cli.ntk", "what GD-trained DIP outputs in the NTK limit, per step"),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2, like
    every other gpdip error; sub-command parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; ``command``'s module registers its full parsers, the other
    commands appear by name and help only (``None``: every module registers)."""
    parser = _Parser(
        prog="gpdip",
        description="Exact Gaussian-process kernels and posteriors for the Deep Image Prior.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = (
        {m for m, _ in COMMANDS.values()}
        if command is None
        else ({COMMANDS[command][0]} if command in COMMANDS else set())
    )
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        if module in wanted:
            importlib.import_module(module).register(subparsers)
    for name, (_, text) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=text)
    for sub in subparsers.choices.values():
        if "--threads" not in sub._option_string_actions:
            sub.add_argument(
                "--threads",
                type=THREADS,
                default=None,
                help="torch CPU threads (default: half the available CPUs, or $OMP_NUM_THREADS)",
            )
    return parser


def default_threads() -> int:
    """Half the CPUs this process may run on, at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has affinity masks
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)


def _set_threads(threads: int | None) -> None:
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return  # the user's setting
    import torch

    torch.set_num_threads(threads or default_threads())


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpdip`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv) or "")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argument error (2, one line on stderr)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _set_threads(getattr(args, "threads", None))
        return int(args.func(args) or 0)
    except GpdipError as exc:
        print(f"gpdip {args.command}: error: {exc}", file=sys.stderr)
        return 2


def run() -> NoReturn:
    """The console script (and ``python -m gpdip``): :func:`main` without two costs of torch.

    * Collections: after the command's module (and so torch) is imported, ``gc.freeze()``
      moves the import-time objects out of the collector's view; otherwise each full
      collection walks them all (0.15 s, once or twice in a 512² ``gpdip inpaint``).
    * Teardown: the interpreter's exit after importing torch takes 0.8-1.0 s on this CPU
      (0.2 s with the freeze).  Every output is already written and closed by then (atomic
      writes; run-folder locks are closed, and the OS releases them anyway), so the
      streams are flushed and the process leaves with ``os._exit``.

    Not in :func:`main`, which tests call in-process.
    """
    argv = sys.argv[1:]
    command = _command(argv)
    if command is not None:
        importlib.import_module(COMMANDS[command][0])
    gc.freeze()
    code = main(argv)
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (`gpdip ... | head`) or stream has nothing left to flush
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
