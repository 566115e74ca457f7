"""Every Python package folder is listed in pyproject.toml, so a wheel ships all of segmint."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_mapped():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    assert set(setuptools["packages"]) == set(mapping)
    folders = {
        str(init.parent.relative_to(ROOT))
        for top in ("engine", "plugins", "middleware")
        for init in (ROOT / top).rglob("__init__.py")
    }
    # A data-only folder (the demo's static files) is a package too, so setuptools ships it
    # without a warning; it must list its files in package-data.
    data_only = {folder for folder in mapping.values() if not (ROOT / folder / "__init__.py").exists()}
    assert folders == set(mapping.values()) - data_only
    for package, folder in mapping.items():
        if folder in data_only:
            patterns = setuptools["package-data"][package]
            assert any(any((ROOT / folder).glob(pattern)) for pattern in patterns), folder
    for package, folder in mapping.items():
        assert package == "segmint." + folder.replace("/", ".")
