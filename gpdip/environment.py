"""Settings read from environment variables, checked when used (never at import).

>>> import os
>>> os.environ["GPDIP_EXAMPLE"] = "12"
>>> env_number("GPDIP_EXAMPLE", 5)
12.0
>>> os.environ["GPDIP_EXAMPLE"] = "lots"
>>> env_number("GPDIP_EXAMPLE", 5)
Traceback (most recent call last):
...
gpdip.errors.GpdipError: $GPDIP_EXAMPLE: expected a non-negative number, got 'lots'
"""

from __future__ import annotations

import math
import os

from gpdip.errors import GpdipError


def env_number(name: str, default: float) -> float:
    """``$name`` as a finite number ``>= 0``, or ``default`` when unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise GpdipError(f"${name}: expected a non-negative number, got {text!r}")
    return value
