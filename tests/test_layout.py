"""The package's shape: no import cycles, data model free of algorithms, results out of docs/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gpdip"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _runtime_imports() -> dict[str, set[str]]:
    """Module → gpdip modules it imports at import time (TYPE_CHECKING blocks excluded)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.parse(path.read_text()).body:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gpdip"):
                targets = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles():
    graph = _runtime_imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(
                [*path[path.index(nxt) :], nxt]
            )
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_data_model_imports_no_algorithm():
    """arch/ and layers/ never import the compiler, the walkers, the GP engine or the trainer."""
    graph = _runtime_imports()
    forbidden = (
        "gpdip.limit.compiler",
        "gpdip.finite",
        "gpdip.gp",
        "gpdip.dip",
        "gpdip.experiments",
        "gpdip.cli",
    )
    for module, targets in graph.items():
        if module.startswith(("gpdip.arch", "gpdip.layers")):
            bad = [t for t in targets if t.startswith(forbidden)]
            assert not bad, f"{module} imports {bad}"


def test_no_layer_type_dispatch_outside_the_registry():
    """Walkers call the layers' methods; only gpdip/layers knows the layer classes."""
    pattern = re.compile(
        r"isinstance\(\w+,\s*\(?(Conv|ReLU|LeakyReLU|Erf|Downsample|Upsample|"
        r"Skip|Block|ChannelNorm)\b"
    )
    offenders = [
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if "layers" not in p.parts and pattern.search(p.read_text())
    ]
    assert not offenders


def test_docs_hold_no_run_logs_or_checkpoints():
    leftovers = [p for p in (ROOT / "docs").rglob("*") if p.suffix in (".pt", ".jsonl")]
    assert not leftovers, leftovers
