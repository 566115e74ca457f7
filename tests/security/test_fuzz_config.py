"""Fuzzing the config loader: random edits of a real config only ever give a ``ConfigError``
(or a ``PluginError``) that names the file, and secrets never appear in the message.

The seed is ``examples/segmint.toml``: its text is mutated character by character, and its
decoded data key by key (values replaced, keys dropped or invented) before being written back
as JSON. ``plugins`` is never fuzzed: it names modules to import, which is the one thing a
config may load, on purpose.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.engine.config import load_config
from segmint.engine.errors import ConfigError, PluginError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "segmint.toml"
TEXT = EXAMPLE.read_text()
DATA = tomllib.loads(TEXT)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20) | st.sampled_from(["7d", "today-14d", "$gte", "bestsellers", "/x/{sku}", "env:NOPE"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=12)


def load(path: Path) -> None:
    """Load; the only acceptable failures say which file they are about."""
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path.resolve()) in str(exc) or str(path) in str(exc), str(exc)
        for problem in exc.problems:
            assert problem.file and problem.path.startswith("$"), problem
    except PluginError as exc:
        assert exc.plugin or exc.hook


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(TEXT)), st.integers(0, 40), st.text(max_size=6)),
                      min_size=1, max_size=5))
def test_mutated_config_text_only_raises_config_errors_naming_the_file(edits: Any, tmp_path_factory: Any):
    text = TEXT
    for at, drop, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + drop:]
    path = tmp_path_factory.mktemp("cfg") / "segmint.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    load(path)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


PATHS = [p for p in _paths(DATA) if p[0] != "plugins"]


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    data = json.loads(json.dumps(data))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "drop":
        del parent[last]
    elif action == "invent" and isinstance(parent, dict):
        parent[f"{last}x"] = value
    return data


@FUZZ
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["replace", "drop", "invent"]), values),
                          min_size=1, max_size=4))
def test_mutated_config_data_only_raises_config_errors_naming_the_file(mutations: Any, tmp_path_factory: Any):
    data = DATA
    for path, action, value in mutations:
        try:
            data = _mutate(data, path, action, value)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed that path
            continue
    file = tmp_path_factory.mktemp("cfg") / "segmint.json"
    file.write_text(json.dumps(data))
    load(file)


SECRET_VALUE = "tiny-SeCrEt"  # under the 16-character minimum: the config is refused


@pytest.mark.parametrize("section,key,extra", [
    ("identity", "secret", ""),
    ("api", "token", ""),
    ("identity", "secret", "\n[identity.nested]\nx = 1\n"),
])
def test_secrets_from_the_environment_are_never_echoed_in_config_errors(tmp_path: Path, monkeypatch: Any,
                                                                        section: str, key: str, extra: str):
    value = SECRET_VALUE if key == "secret" else "Zq7xW"
    monkeypatch.setenv("SEGMINT_FUZZ_SECRET", value)
    path = tmp_path / "segmint.toml"
    path.write_text(f'[{section}]\n{key} = "env:SEGMINT_FUZZ_SECRET"\n{extra}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"$.{section}" in str(info.value) and str(path.resolve()) in str(info.value)
    assert value not in str(info.value) and value not in repr(info.value)


@pytest.mark.parametrize("value", [12345678901234567, ["a-list-secret-value-1234"], {"k": "a-table-secret-value-99"}])
def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path, value: Any):
    path = tmp_path / "segmint.json"
    path.write_text(json.dumps({"identity": {"secret": value}, "api": {"token": value}}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "$.identity.secret" in text and "$.api.token" in text
    for needle in ("12345678901234567", "a-list-secret-value-1234", "a-table-secret-value-99"):
        assert needle not in text
