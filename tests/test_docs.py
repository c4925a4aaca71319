"""Documentation examples run, so they cannot rot.

Every fenced ```python block in README.md and docs/*.md is executed in a fresh
namespace, in a temporary working directory.  A block preceded by the line
``<!-- no-test -->`` is skipped (none should need to be).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- no-test -->\s*)?```python\n(.*?)```", re.S)


def blocks():
    for path in FILES:
        for i, match in enumerate(BLOCK.finditer(path.read_text(encoding="utf-8"))):
            if not match.group(1):
                yield pytest.param(match.group(2), id=f"{path.name}-{i}")


@pytest.mark.parametrize("code", list(blocks()))
def test_doc_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc example>", "exec"), {"__name__": "__doc_example__"})


def test_readme_commands_are_the_ci_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python -m pytest -m "not slow" -q -p no:cacheprovider' in readme
    assert 'python -m pytest -m "not slow" -q -p no:cacheprovider' in ci
    assert "pip install torch==2.13.0" in readme and "pip install --quiet torch==2.13.0" in ci
