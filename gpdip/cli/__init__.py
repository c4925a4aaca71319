"""The ``gpdip`` command line: :func:`main` parses and dispatches one sub-command per job."""

from gpdip.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
