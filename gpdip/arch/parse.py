"""TOML front end: architecture files → :class:`~gpdip.arch.spec.Architecture`.

The format is documented in ``docs/architecture-format.md``.  Every problem
raises :class:`~gpdip.errors.GpdipError` naming the file, the layer's path
(e.g. ``network.layers[2].branch[0]``) and what was expected.

    >>> arch = parse_architecture({
    ...     "input": {"channels": 3, "sigma": 1.0},
    ...     "network": {"layers": [{"type": "conv", "channels": 8}, {"type": "relu"},
    ...                            {"type": "conv", "channels": 1}]}})
    >>> [type(layer).__name__ for layer in arch.layers]
    ['Conv', 'ReLU', 'Conv']
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from gpdip.arch.spec import Architecture, InputSpec
from gpdip.errors import GpdipError
from gpdip.layers import LAYER_TYPES, Layer
from gpdip.layers.base import MAX_NESTING

_TOP_KEYS = {"input", "network", "blocks", "meta"}
_INPUT_KEYS = {"channels", "sigma", "variance"}
_KIND_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def load_architecture(arch: str | os.PathLike[str] | Architecture) -> Architecture:
    """An :class:`Architecture` from an object, a TOML path, or a catalog name.

    >>> load_architecture("conv-d2").name
    'conv-d2'
    """
    if isinstance(arch, Architecture):
        return arch
    if not isinstance(arch, (str, os.PathLike)):
        raise GpdipError(
            f"architecture: expected a catalog name, a TOML path or an "
            f"Architecture, got {type(arch).__name__}"
        )
    path = Path(arch)
    if path.suffix == ".toml" or path.exists():
        return read_architecture(path)
    from gpdip.arch.catalog import catalog_path

    return read_architecture(catalog_path(str(arch)))


def read_architecture(path: str | os.PathLike[str]) -> Architecture:
    """Parse one TOML architecture file."""
    path = Path(path)
    if not path.is_file():
        raise GpdipError(f"{path}: no such architecture file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GpdipError(f"{path}: not valid TOML ({exc})") from None
    return parse_architecture(data, source=str(path), name=path.stem)


def parse_architecture(
    data: dict[str, Any], source: str | None = None, name: str = ""
) -> Architecture:
    """Build an :class:`Architecture` from the decoded TOML mapping."""
    ctx = _Context(source, data.get("blocks", {}))
    ctx.mapping(data, "", "the top level")
    ctx.keys(data, _TOP_KEYS, "")
    inp = data.get("input", {})
    ctx.mapping(inp, "input", "a table [input]")
    ctx.keys(inp, _INPUT_KEYS, "input")
    fields = {k: ctx.typed(inp[k], f"input.{k}", InputSpec, k) for k in inp}
    input_spec = ctx.build(InputSpec, fields, "input")
    network = data.get("network")
    if network is None:
        raise ctx.error("network", "missing table [network] with 'layers = [...]'")
    ctx.mapping(network, "network", "a table [network]")
    ctx.keys(network, {"layers"}, "network")
    layers = ctx.layer_list(network.get("layers"), "network.layers")
    ctx.mapping(ctx.blocks, "blocks", "tables [blocks.NAME]")
    for block_name in ctx.blocks:  # unused blocks are still checked
        ctx.block(block_name, f"blocks.{block_name}")
    try:
        return Architecture(input_spec, layers, name=name, source=source)
    except GpdipError as exc:
        if source and not str(exc).startswith(source):
            raise GpdipError(f"{source}: {exc}") from None
        raise


class _Context:
    """Parsing state: the file name for messages, the block table, the block stack."""

    def __init__(self, source: str | None, blocks: Any) -> None:
        self.source = source
        self.blocks = blocks
        self.stack: list[str] = []
        self.nesting: list[str] = []
        self.done: dict[str, tuple[Layer, ...]] = {}

    def error(self, where: str, msg: str) -> GpdipError:
        prefix = f"{self.source}: " if self.source else ""
        return GpdipError(f"{prefix}{where + ': ' if where else ''}{msg}")

    def mapping(self, value: Any, where: str, expected: str) -> None:
        if not isinstance(value, dict):
            raise self.error(where, f"expected {expected}, got {_show(value)}")

    def keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    where, f"unknown key {key!r}; expected one of {', '.join(sorted(allowed))}"
                )

    def typed(self, value: Any, where: str, cls: type, key: str) -> Any:
        """Check ``value`` against the annotated type of ``cls.key``."""
        kind = _field_kind(cls, key)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise self.error(where, f"expected {_KIND_NAMES[kind]}, got {_show(value)}")
        return value

    def build(self, cls: type, fields: dict[str, Any], where: str) -> Any:
        try:
            obj = cls(**fields)
        except TypeError as exc:  # a required key is missing
            missing = [
                f.name
                for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.name not in fields
            ]
            raise self.error(where, f"missing key(s) {', '.join(map(repr, missing))}") from exc
        obj.validate(f"{self.source + ': ' if self.source else ''}{where}")
        return obj

    def layer_list(self, value: Any, where: str) -> tuple[Layer, ...]:
        if not isinstance(value, list):
            raise self.error(where, f"expected a list of layer tables, got {_show(value)}")
        return tuple(self.layer(item, f"{where}[{i}]") for i, item in enumerate(value))

    def layer(self, table: Any, where: str) -> Layer:
        self.mapping(table, where, "an inline table with a 'type'")
        kind = table.get("type")
        if kind not in LAYER_TYPES:
            raise self.error(
                where, f"'type' must be one of {', '.join(LAYER_TYPES)}, got {_show(kind)}"
            )
        if len(self.nesting) > MAX_NESTING:
            raise self.error(
                where, f"skips and blocks are nested more than {MAX_NESTING} levels deep"
            )
        self.nesting.append(where)
        try:
            return LAYER_TYPES[kind].from_toml(table, self, where)
        finally:
            self.nesting.pop()

    def fields(self, cls: type, table: dict[str, Any], where: str) -> Layer:
        """A layer whose TOML keys are its dataclass fields (every non-combinator)."""
        allowed = {f.name for f in dataclasses.fields(cls) if f.init}
        self.keys(table, allowed | {"type"}, where)
        fields = {k: self.typed(v, f"{where}.{k}", cls, k) for k, v in table.items() if k != "type"}
        return self.build(cls, fields, where)

    @staticmethod
    def show(value: Any) -> str:
        return _show(value)

    def path(self, value: Any, where: str) -> tuple[tuple[Layer, ...], str | None]:
        if isinstance(value, str):
            return self.block(value, where), value
        return self.layer_list(value, where), None

    def block(self, name: str, where: str) -> tuple[Layer, ...]:
        if name in self.done:
            return self.done[name]
        if name not in self.blocks:
            known = ", ".join(sorted(self.blocks)) or "none defined"
            raise self.error(where, f"no block named {name!r} (blocks: {known})")
        if name in self.stack:
            cycle = " -> ".join([*self.stack[self.stack.index(name) :], name])
            raise self.error(where, f"blocks refer to each other in a cycle: {cycle}")
        self.stack.append(name)
        table = self.blocks[name]
        self.mapping(table, f"blocks.{name}", "a table with 'layers = [...]'")
        self.keys(table, {"layers"}, f"blocks.{name}")
        layers = self.layer_list(table.get("layers"), f"blocks.{name}.layers")
        self.stack.pop()
        self.done[name] = layers
        return layers


def _field_kind(cls: type, key: str) -> type:
    annotation = {f.name: f.type for f in dataclasses.fields(cls)}[key]
    return {"int": int, "float": float, "str": str, "bool": bool}[str(annotation)]


def _show(value: Any) -> str:
    kind = {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) < 40 else text[:37] + '...'}"
