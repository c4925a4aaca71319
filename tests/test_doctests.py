"""Every ``>>>`` example in gpdip's docstrings runs and shows what it says (einops-style
documentation: the examples are tests)."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import gpdip


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(gpdip.__path__, "gpdip."):
        if info.name.endswith("__main__"):
            continue  # running it is the command line
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py") and ">>>" in Path(origin).read_text("utf-8"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name, monkeypatch):
    monkeypatch.setenv("GPDIP_EXAMPLE", "")  # environment.py's example sets it
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
