"""Packaging: the explicit package list of pyproject.toml covers every gpdip folder, and the
catalog is the top-level kernels/ folder mapped to the data package gpdip.kernels.

The wheel itself is built and installed into a fresh venv by .ci/wheel_check (CI)."""

from __future__ import annotations

import tomllib

from gpdip.arch.catalog import catalog_dir, catalog_names
from gpdip.io.paths import repo_root


def test_every_package_folder_is_listed():
    config = tomllib.loads((repo_root() / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    root = repo_root()
    found = {
        ".".join(p.parent.relative_to(root).parts) for p in (root / "gpdip").rglob("__init__.py")
    }  # nested packages too
    assert listed == found | {"gpdip.kernels"}
    assert config["package-dir"] == {"gpdip.kernels": "kernels"}
    assert config["package-data"]["gpdip.kernels"] == ["*.toml"]


def test_catalog_is_the_top_level_kernels_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GPDIP_KERNELS", raising=False)
    assert catalog_dir() == repo_root() / "kernels"
    assert "unet2" in catalog_names() and len(catalog_names()) == len(
        list((repo_root() / "kernels").glob("*.toml"))
    )
    monkeypatch.setenv("GPDIP_KERNELS", str(tmp_path))  # the override still wins
    (tmp_path / "mine.toml").write_text("")
    assert catalog_names() == ["mine"]
