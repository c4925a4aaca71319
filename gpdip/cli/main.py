"""The ``gpdip`` command line: one sub-command per job.

Sub-commands live in their own modules, each exposing ``register(subparsers)``
that adds its parser and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gpdip.errors import GpdipError

# (module, what it offers): kernel compiler, GP engine, DIP trainer.
_COMMAND_MODULES = (
    "gpdip.cli.kernel",
    "gpdip.cli.gp",
    "gpdip.cli.dip",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="gpdip",
        description="Exact Gaussian-process kernels and posteriors for the Deep Image Prior.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpdip`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GpdipError as exc:
        print(f"gpdip {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
