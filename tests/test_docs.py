"""Docs cannot drift: every hook is documented and tested, every Python example runs.

Modelled on Datasette's ``test_docs.py``: the docs are part of the product, so a hook without
a doc section, or an example that no longer runs, fails the suite.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from segmint.engine import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
HOOKS = sorted(name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("segmint_"))
TEST_FILES = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_docs.py"]


def test_there_are_hooks():
    assert len(HOOKS) >= 9


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_doc_section(hook):
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^#+ `{hook}\(", text, re.M), f"docs/plugins.md has no section for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook):
    assert any(hook in p.read_text() for p in TEST_FILES), f"no test under tests/ mentions {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_docstring_with_params(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert doc, hook
    params = [p for p in inspect.signature(getattr(hookspecs, hook)).parameters]
    for param in params:
        assert f":param {param}:" in doc, f"{hook} does not document {param}"


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """The ```python blocks of a markdown file, with the line each starts on."""
    blocks, lines = [], path.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == "```python":
            start, body = number, []
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(body)))
            start = None
        elif start is not None:
            body.append(line)
    return blocks


EXAMPLES = [(path, line, code) for path in [ROOT / "README.md", *DOCS] for line, code in python_blocks(path)]


@pytest.mark.parametrize("path,line,code", EXAMPLES, ids=[f"{p.name}:{n}" for p, n, _ in EXAMPLES])
def test_every_python_example_runs(path, line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"__name__": f"docs_example_{path.stem}_{line}"}
    exec(compile(code, f"{path.name}:{line}", "exec"), namespace)  # noqa: S102 - our own docs
