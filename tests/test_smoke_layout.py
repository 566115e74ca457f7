"""The packages install under the ``segmint`` namespace, never as bare top-level names."""

import importlib
import importlib.util

import pytest


@pytest.mark.parametrize("name", ["segmint.engine", "segmint.plugins", "segmint.middleware"])
def test_package_imports_under_segmint(name):
    module = importlib.import_module(name)
    assert module.__name__ == name
    assert isinstance(module.__all__, list)


@pytest.mark.parametrize("bare", ["engine", "plugins", "middleware"])
def test_no_bare_top_level_package_is_installed(bare):
    spec = importlib.util.find_spec(bare)
    # The repo root may be on sys.path when pytest runs from it; an installed bare package
    # would live in site-packages instead.
    assert spec is None or "site-packages" not in (spec.origin or "")
