"""The ``gpdip`` command line: :func:`main` parses and dispatches one sub-command per job;
:func:`run` is the console script."""

from gpdip.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
