"""Validation at the door: argument types and range checks for every command.

Each numeric argument is checked when it is parsed (``type=real(...)``, ``type=integer(...)``)
or, for arguments declared elsewhere, right after parsing (:func:`check_ranges`); every
message names the argument and its allowed range, e.g.
``argument --tol: expected a number in (0, 1), got '10'``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from typing import Any

from gpdip.errors import GpdipError

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed accepts [-2^63, 2^64); keep it non-negative
MAX_THREADS = 1024


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    low = "-inf" if lo is None else f"{lo:g}"
    high = "inf" if hi is None else f"{hi:g}"
    return f"{left}{low}, {high}{right}"


def in_range(
    value: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool
) -> bool:
    """``value`` finite and inside the interval."""
    if not math.isfinite(value):
        return False
    if lo is not None and (value <= lo if lo_open else value < lo):
        return False
    return not (hi is not None and (value >= hi if hi_open else value > hi))


def parse_number(text: str, fraction: bool = False) -> float:
    """A float, or with ``fraction`` a ratio such as ``25/255``; ``ValueError`` otherwise."""
    if fraction and "/" in text:
        num, _, den = text.partition("/")
        value = float(num) / float(den)  # ZeroDivisionError is a ValueError's sibling
        return value
    return float(text)


def real(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = True,
    hi_open: bool = False,
    fraction: bool = False,
) -> Callable[[str], float]:
    """argparse ``type``: a finite float in the interval (default ``(lo, hi]``)."""
    span = _interval(lo, hi, lo_open, hi_open)
    what = "a number or a fraction like 25/255" if fraction else "a number"

    def parse(text: str) -> float:
        try:
            value = parse_number(text, fraction)
        except (ValueError, ZeroDivisionError):
            value = math.nan
        if not in_range(value, lo, hi, lo_open, hi_open):
            raise argparse.ArgumentTypeError(f"expected {what} in {span}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def integer(lo: int, hi: int) -> Callable[[str], int]:
    """argparse ``type``: an integer (digits, no exponent) in ``[lo, hi]``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


SEED = integer(0, MAX_SEED)
THREADS = integer(1, MAX_THREADS)


def check_ranges(args: argparse.Namespace, rules: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
    """Post-parse checks for arguments whose declaration this module does not own.

    ``rules``: ``(attribute, (kind, lo, hi, lo_open, hi_open))`` with kind ``int`` or
    ``float``; an absent attribute or a None value is skipped (an optional argument).
    """
    for name, (kind, lo, hi, lo_open, hi_open) in rules:
        value = getattr(args, name, None)
        if value is None or isinstance(value, bool):
            continue
        flag = "--" + name.replace("_", "-")
        ok = isinstance(value, int | float) and in_range(float(value), lo, hi, lo_open, hi_open)
        if kind is int:
            ok = ok and float(value).is_integer()
            if not ok:
                raise GpdipError(
                    f"argument {flag}: expected an integer in [{lo}, {hi}], got {value!r}"
                )
        elif not ok:
            raise GpdipError(
                f"argument {flag}: expected a number in "
                f"{_interval(lo, hi, lo_open, hi_open)}, got {value!r}"
            )


def check_device(text: str | None) -> str | None:
    """``cpu``, ``cuda`` or ``cuda:N`` that exists here; None (automatic) passes."""
    if text is None:
        return None
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise GpdipError(f"argument --device: expected cpu, cuda or cuda:N, got {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GpdipError(
                f"argument --device {text}: CUDA not available (this torch build "
                "has no CUDA support or no GPU is visible); use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GpdipError(
                f"argument --device {text}: expected an index below "
                f"{torch.cuda.device_count()} (the visible GPUs)"
            )
    return text
