"""The catalog of the paper's architectures: the TOML files of the repository's ``kernels/``.

The files stay in the top-level ``kernels/`` folder; the build maps that folder into the
package as the data package ``gpdip.kernels`` (``[tool.setuptools.package-dir]`` in
pyproject.toml), so a wheel ships them and :mod:`importlib.resources` finds them there.
An editable install maps ``gpdip.kernels`` to the same ``kernels/`` folder.  Order:

1. ``$GPDIP_KERNELS`` (a folder of TOML files) when set;
2. ``kernels/`` beside the package when gpdip runs from a source checkout (an editable
   install, or ``PYTHONPATH`` pointing at the checkout): the files being edited;
3. ``importlib.resources.files("gpdip.kernels")``: the installed wheel's copy.

    >>> "unet2" in catalog_names()
    True
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from gpdip.errors import GpdipError
from gpdip.io.paths import repo_root

PACKAGE = "gpdip.kernels"


def catalog_dir() -> Path:
    """The catalog folder (see the module docstring for the order)."""
    env = os.environ.get("GPDIP_KERNELS")
    if env:
        return Path(env)
    source = repo_root() / "kernels"
    if (repo_root() / "pyproject.toml").is_file() and source.is_dir():
        return source
    try:
        return Path(str(importlib.resources.files(PACKAGE)))
    except ModuleNotFoundError:  # neither a checkout nor an installed package data folder
        return source


def catalog_names() -> list[str]:
    """Names of the catalog architectures (file stems), sorted."""
    folder = catalog_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def catalog_path(name: str) -> Path:
    """The TOML file of a catalog name, or a :class:`GpdipError` listing the names."""
    path = catalog_dir() / f"{name}.toml"
    if not path.is_file():
        names = catalog_names()
        hint = ", ".join(names) if names else f"none: {catalog_dir()} is missing"
        raise GpdipError(
            f"architecture {name!r}: not a file and not a catalog name (catalog: {hint})"
        )
    return path
