"""``python -m gpdip``: the same as the ``gpdip`` console script."""

from gpdip.cli.main import run

run()
