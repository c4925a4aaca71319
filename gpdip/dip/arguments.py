"""Command-line arguments generated from :class:`~gpdip.dip.config.DIPConfig` and the
scheme registry: one ``--flag`` per common field and per scheme option, its help text from
the field's ``metadata["help"]``, its type from the annotation, its choices from
``metadata["choices"]``.  Scheme options default to the method's own defaults (argparse
records only those given), and one given for a method that lacks it is an error."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from gpdip.dip.config import DIPConfig
from gpdip.dip.schemes import schemes
from gpdip.errors import GpdipError


def number(text: str) -> float:
    """A float or a fraction such as ``25/255``."""
    try:
        if "/" in text:
            a, b = text.split("/")
            return float(a) / float(b)
        return float(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}': expected a number or a fraction like 25/255"
        ) from exc


def _base_type(hint: Any) -> Any:
    """``int | None`` → int; plain types pass through."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _add(group: Any, f: dataclasses.Field, hint: Any, default: Any, help: str) -> None:
    flag = "--" + f.name.replace("_", "-")
    kind = _base_type(hint)
    help = help.replace("%", "%%")  # argparse formats help with %-substitution
    if kind is bool:  # BooleanOptionalAction appends the default itself
        group.add_argument(
            flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=help
        )
        return
    parse = {int: int, float: number, str: str}.get(kind)
    if parse is None:
        raise GpdipError(f"option '{f.name}' has type {hint}; expected bool, int, float or str")
    group.add_argument(
        flag, dest=f.name, type=parse, default=default, help=help, choices=f.metadata.get("choices")
    )


def scheme_option_fields() -> dict[str, tuple[dataclasses.Field, Any, dict[str, Any]]]:
    """Every scheme option once: name → (field, type hint, {method: default}).  A name
    shared by several schemes must have one type there (a :class:`GpdipError` if not)."""
    out: dict[str, tuple[dataclasses.Field, Any, dict[str, Any]]] = {}
    for method, scheme in schemes().items():
        hints = typing.get_type_hints(scheme.options_type)
        for f in dataclasses.fields(scheme.options_type):
            if f.name in out and out[f.name][1] != hints[f.name]:
                raise GpdipError(
                    f"option '{f.name}' of scheme '{method}' has type {hints[f.name]} but "
                    f"another scheme's has {out[f.name][1]}; expected one type per name"
                )
            out.setdefault(f.name, (f, hints[f.name], {}))[2][method] = f.default
    return out


def add_config_arguments(
    parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None
) -> None:
    """Add the common fields (``defaults`` overrides their dataclass defaults) and every
    registered scheme's options to ``parser``."""
    defaults = defaults or {}
    hints = typing.get_type_hints(DIPConfig)
    common = parser.add_argument_group("training (every method)")
    registered = schemes()
    for f in dataclasses.fields(DIPConfig):
        if f.name == "options":
            continue
        default = defaults.get(f.name, f.default)
        if f.name == "method":
            summaries = "; ".join(f"{n}: {s.summary}" for n, s in registered.items())
            common.add_argument(
                "--method",
                choices=tuple(registered),
                default=default,
                help=f"inference scheme ({summaries})",
            )
            continue
        plain = default is None or _base_type(hints[f.name]) is bool
        shown = "" if plain else f" (default: {default})"
        _add(common, f, hints[f.name], default, f"{f.metadata['help']}{shown}")
    own = parser.add_argument_group("method options (each applies to the methods listed)")
    for name, (f, hint, by_method) in scheme_option_fields().items():
        if name in hints:
            raise GpdipError(f"scheme option '{name}' shadows a common DIPConfig field")
        where = ", ".join(f"{m}={d}" for m, d in by_method.items())
        _add(own, f, hint, argparse.SUPPRESS, f"{f.metadata['help']} [{where}]")


def config_from_args(args: argparse.Namespace) -> DIPConfig:
    """The validated :class:`DIPConfig` of parsed arguments; a scheme option given for a
    method that does not have it is a :class:`GpdipError` naming both."""
    common = {f.name for f in dataclasses.fields(DIPConfig)} - {"options"}
    kwargs = {name: getattr(args, name) for name in common}
    method_fields = {f.name for f in dataclasses.fields(schemes()[args.method].options_type)}
    for name, (_, _, by_method) in scheme_option_fields().items():
        if not hasattr(args, name):
            continue
        if name not in method_fields:
            raise GpdipError(
                f"--{name.replace('_', '-')} applies to method(s) {', '.join(by_method)}, "
                f"not to --method {args.method}"
            )
        kwargs[name] = getattr(args, name)
    return DIPConfig.build(**kwargs).validate()
