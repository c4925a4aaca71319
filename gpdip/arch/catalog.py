"""The catalog of the paper's architectures: TOML files in the repository's ``kernels/``.

    >>> "unet2" in catalog_names()
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from gpdip.errors import GpdipError
from gpdip.io.paths import repo_root


def catalog_dir() -> Path:
    """``$GPDIP_KERNELS`` if set, else ``kernels/`` at the repository root."""
    env = os.environ.get("GPDIP_KERNELS")
    return Path(env) if env else repo_root() / "kernels"


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
        raise GpdipError(f"architecture {name!r}: not a file and not a catalog name "
                         f"(catalog: {hint})")
    return path
