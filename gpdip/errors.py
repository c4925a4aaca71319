"""The one exception type of gpdip.

Every bad input (a malformed architecture file, a mask of the wrong size, an
impossible request) raises :class:`GpdipError` with a message that names the
file, field or argument and what was expected.  Numerical trouble (a kernel
that is not positive semi-definite, a solver that did not converge) is
reported with its figure.
"""

from __future__ import annotations


class GpdipError(ValueError):
    """Raised for bad input or numerical trouble, with a message naming where and why.

    >>> raise GpdipError("network.layers[2]: unknown key 'chanels'; expected one of channels, ...")
    Traceback (most recent call last):
    ...
    gpdip.errors.GpdipError: network.layers[2]: unknown key 'chanels'; expected one of channels, ...
    """


class GpdipWarning(UserWarning):
    """Recoverable input problems (an alpha channel dropped, nothing to inpaint, ...)."""
