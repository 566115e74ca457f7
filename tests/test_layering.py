"""The layering of docs/architecture.md, enforced: engine <- plugins <- middleware.

engine/ imports nothing from plugins/ or middleware/ and nothing from Starlette, so it can
run in a script, a worker or another framework; plugins/ never import middleware/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import segmint.engine
import segmint.middleware
import segmint.plugins

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


FORBIDDEN = {
    "engine": ("segmint.plugins", "segmint.middleware", "starlette", "fastapi", "uvicorn"),
    "plugins": ("segmint.middleware", "starlette", "fastapi", "uvicorn"),
}
FILES = [(layer, path) for layer in FORBIDDEN for path in sorted((ROOT / layer).rglob("*.py"))]


@pytest.mark.parametrize("layer,path", FILES, ids=[str(p.relative_to(ROOT)) for _, p in FILES])
def test_lower_layers_do_not_import_upper_ones(layer, path):
    bad = {m for m in imported_modules(path) for prefix in FORBIDDEN[layer] if m == prefix or m.startswith(prefix + ".")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", [segmint.engine, segmint.plugins, segmint.middleware])
def test_every_exported_name_exists_and_is_listed_once(package):
    assert len(package.__all__) == len(set(package.__all__))
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert not missing, f"{package.__name__}.__all__ names missing attributes: {missing}"


def test_the_engine_surface_has_the_pinned_names():
    # Names the issues pin as public API; code outside this repo imports them.
    for name in ("compile_filter", "FilterError", "Profile", "hookimpl", "load_config", "Segmint",
                 "get_plugin_manager", "Catalog", "Product", "StrategyParams", "Decision", "SlotDecision"):
        assert name in segmint.engine.__all__, name
    assert "SegmintMiddleware" in segmint.middleware.__all__


#: The import style of docs/architecture.md: inside a package, relative imports; across
#: packages, absolute imports of the module that defines a name (``from
#: segmint.engine.decide import Decision``), never a relative path out of the package.
PACKAGES = {"engine": "segmint.engine", "plugins": "segmint.plugins", "middleware": "segmint.middleware"}
ALL_FILES = [(layer, path) for layer in PACKAGES for path in sorted((ROOT / layer).rglob("*.py"))]


@pytest.mark.parametrize("layer,path", ALL_FILES, ids=[str(p.relative_to(ROOT)) for _, p in ALL_FILES])
def test_imports_follow_the_documented_style(layer, path):
    own = PACKAGES[layer]
    depth = len(path.relative_to(ROOT / layer).parts)  # 1: the package root, 2: a subpackage...
    wrong = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and (module == own or module.startswith(own + ".")):
                wrong.append(f"line {node.lineno}: absolute import of its own package ({module})")
            elif node.level > depth:  # level 1 is the file's own folder; ``depth`` the package root
                wrong.append(f"line {node.lineno}: a relative import out of {own}")
        elif isinstance(node, ast.Import) and any(a.name == own or a.name.startswith(own + ".") for a in node.names):
            wrong.append(f"line {node.lineno}: absolute import of its own package")
    assert not wrong, wrong
