"""Docs cannot drift: every hook is documented and tested, every Python example runs.

Modelled on Datasette's ``test_docs.py``: the docs are part of the product, so a hook without
a doc section, or an example that no longer runs, fails the suite.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from segmint.engine.hooks import HOOK_RUNS
from segmint.engine.hooks import specs as hookspecs

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


def hook_section(hook: str) -> str:
    """The text of a hook's section in docs/plugins.md, up to the next heading."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    match = re.search(rf"^#+ `{hook}\(.*?$(.*?)(?=^#)", text + "\n#", re.M | re.S)
    assert match, f"docs/plugins.md has no section for {hook}"
    return match[1]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_section_says_where_it_runs(hook):
    # HOOK_RUNS is what the runtime's loop-safety checks follow; the docs must say the same.
    stated = " ".join(hook_section(hook).split())
    assert f"Runs: {HOOK_RUNS[hook].value}" in stated, f"docs/plugins.md: {hook} must say 'Runs: {HOOK_RUNS[hook].value}'"


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


def code_blocks(text: str, language: str = "python") -> list[tuple[int, str]]:
    """The ```language blocks of markdown text, with the line each starts on."""
    blocks, lines = [], text.splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == f"```{language}":
            start, body = number, []
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(body)))
            start = None
        elif start is not None:
            body.append(line)
    return blocks


def python_blocks(path: Path) -> list[tuple[int, str]]:
    return code_blocks(path.read_text())


def exported_variables(text: str) -> dict[str, str]:
    """``export NAME=value`` lines of the ```sh blocks: what a page tells the reader to set."""
    found = {}
    for _, block in code_blocks(text, "sh"):
        for match in re.finditer(r"^export ([A-Za-z_]\w*)=(.+)$", block, re.M):
            found[match[1]] = shlex.split(match[2], comments=True)[0]
    return found


EXAMPLES = [(path, line, code) for path in [ROOT / "README.md", *DOCS] for line, code in python_blocks(path)]


@pytest.mark.parametrize("path,line,code", EXAMPLES, ids=[f"{p.name}:{n}" for p, n, _ in EXAMPLES])
def test_every_python_example_runs(path, line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, value in exported_variables(path.read_text()).items():
        monkeypatch.setenv(name, value)
    namespace = {"__name__": f"docs_example_{path.stem}_{line}"}
    exec(compile(code, f"{path.name}:{line}", "exec"), namespace)  # noqa: S102 - our own docs


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else None]


# What a clone holds; the rest is made by installs, tests and the demo.
_NOT_IN_A_CLONE = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                                         ".hypothesis", ".demo", "*.db", "*.db-wal", "*.db-shm")


@pytest.mark.slow
def test_readme_quickstart_runs_verbatim_in_a_fresh_venv(tmp_path):
    """The quickstart's shell blocks run as written, in a directory holding a clone, with
    ``quickstart.py`` being its Python block: a fresh venv with only the README's install line
    (no dev extras), the program, then the ``segmint`` commands in the same directory."""
    section = readme_section("Quickstart")
    shell = [code for _, code in code_blocks(section, "sh")]
    [(_, program)] = code_blocks(section, "python")
    assert any(line.startswith("pip install ") for line in shell[0].splitlines()), "no install line"
    assert "python quickstart.py" in shell[-1]
    shutil.copytree(ROOT, tmp_path / "segmint", ignore=_NOT_IN_A_CLONE)
    (tmp_path / "quickstart.py").write_text(program)
    # `python3` is this interpreter (3.11+ whatever the PATH has); pip installs the locked
    # versions, offline when the wheels are cached.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(getattr(sys, "_base_executable", sys.executable))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1",
               PIP_CONSTRAINT=str(ROOT / ".ci" / "constraints.txt"))
    script = "set -eux\n" + "\n".join(shell)
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert 'data-segmint-campaign="vip-picks"' in run.stdout
    assert "ok: segmint.toml" in run.stdout
    assert "big_spenders: 1 of 1 profile (100.0%)" in run.stdout
    # A Python warning (not pip's notes about its indexes) on a first run is a defect too.
    assert not re.search(r"\w+Warning: ", run.stderr), run.stderr
