"""Sub-commands of the ``gpdip`` CLI, one module each (see :mod:`gpdip.cli`)."""
