"""Reading a config file: text -> raw data -> typed ``Config``, collecting every problem.

msgspec stops at the first error, which makes fixing a file a slow loop of one error per run.
So decoding happens in three passes that each collect everything they find:

1. unknown keys: the raw data is walked against the structs' fields (all of them, with a
   "did you mean"), reading dates on the way (``segmint.engine.dates``);
2. types and constraints: each section, campaign and segment is converted on its own, so one
   bad campaign does not hide a problem in the next;
3. semantic checks (segments, strategies, filters) in ``compile.py``.

Each problem becomes a ``ConfigError`` with the file, the path and the line.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ..dates import InstantError, read_instant
from ..errors import ConfigError, suggest
from .lines import locate_line
from .schema import LOADER_FIELDS, Config

__all__ = ["Problem", "parse_config", "read_config", "read_config_text", "config_error", "detect_format"]

_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
#: Fields that may hold ``env:NAME`` / ``${NAME}`` instead of the value itself.
ENV_FIELDS: tuple[tuple[str, str], ...] = (
    ("identity", "secret"), ("api", "token"), ("store", "path"), ("store", "url"),
)
_ENV_REF = re.compile(r"^(?:env:([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\})$")
_MSGSPEC_ERROR = re.compile(r"^(?P<message>.*) - at `(?P<first>[^`]+)`(?: in `(?P<second>[^`]+)`)?$", re.S)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config, before it is given a file and a line."""

    path: str
    message: str
    suggestion: str | None = None


def detect_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    try:
        return _FORMATS[suffix]
    except KeyError:
        raise ConfigError(
            f"unknown config format {suffix!r}: use .toml, .yaml, .yml or .json", file=str(path)
        ) from None


def read_config_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", file=str(path)) from exc


def read_config(path: str | Path) -> tuple[Config, str, str]:
    """Read and decode the file at ``path``: the config, its text and its format.

    The text and format go on to ``compile_config`` so that the checks made there point at
    lines too. The config's ``source_path`` is absolute, so relative paths in the file still
    resolve if the process changes directory.
    """
    fmt = detect_format(path)
    text = read_config_text(path)
    return parse_config(text, fmt=fmt, file=str(Path(path).expanduser().resolve())), text, fmt


def config_error(problems: Iterable[Problem], *, file: str | None, text: str | None, fmt: str) -> ConfigError:
    """One ``ConfigError`` carrying every problem (``.problems``), each with its line.

    The outer error repeats the first problem's path, line and suggestion, so code that only
    looks at one error still points at a real place.
    """
    errors = [
        ConfigError(
            p.message,
            file=file,
            path=p.path,
            line=locate_line(text, fmt, p.path) if text is not None else None,
            suggestion=p.suggestion,
        )
        for p in problems
    ]
    count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
    first = errors[0]
    return ConfigError(
        f"invalid config {file or '<config>'}: {count}",
        file=file,
        path=first.path,
        line=first.line,
        suggestion=first.suggestion,
        problems=errors,
    )


def parse_config(text: str, *, fmt: str = "toml", file: str | None = None) -> Config:
    """Decode config ``text`` into a ``Config`` (structure and types only; see ``load_config``).

    Raises ``ConfigError`` listing every unknown key and every type error found.
    """
    raw = _parse_raw(text, fmt, file)
    problems: list[Problem] = []
    raw = _resolve_env(raw, problems)
    cleaned = _clean_raw(raw, msgspec.inspect.type_info(Config), "$", problems, root=True)
    problems.extend(_type_problems(cleaned, Config, "$"))
    if problems:
        raise config_error(problems, file=file, text=text, fmt=fmt)
    try:
        config = msgspec.convert(cleaned, Config)
    except msgspec.ValidationError as exc:  # pragma: no cover - the per-section pass finds these
        raise config_error([_from_msgspec(exc, "$")], file=file, text=text, fmt=fmt) from exc
    return msgspec.structs.replace(config, source_path=file)


def _parse_raw(text: str, fmt: str, file: str | None) -> dict[str, Any]:
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        elif fmt == "json":
            data = msgspec.json.decode(text)
        elif fmt == "yaml":
            data = _decode_yaml(text, file)
        else:
            raise ConfigError(f"unknown config format {fmt!r}", file=file)
    except (tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
        raise ConfigError(f"cannot parse {fmt.upper()}: {exc}", file=file, line=_error_line(str(exc), text)) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the config must be a table of keys, not {type(data).__name__}", file=file)
    return data


def _decode_yaml(text: str, file: str | None) -> Any:
    try:
        import msgspec.yaml
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is a dev dependency
        raise ConfigError("YAML configs need PyYAML: pip install 'segmint[yaml]'", file=file) from exc
    try:
        return msgspec.yaml.decode(text)
    except (msgspec.DecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse YAML: {exc}", file=file) from exc


def _error_line(message: str, text: str) -> int | None:
    if match := re.search(r"line (\d+)", message):
        return int(match.group(1))
    if match := re.search(r"byte (\d+)", message):
        return text.encode()[: int(match.group(1))].count(b"\n") + 1
    return None


def _resolve_env(raw: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Replace ``env:NAME`` / ``${NAME}`` in the secret-bearing fields by the variable's value."""
    resolved = dict(raw)
    for section, key in ENV_FIELDS:
        table = resolved.get(section)
        if not isinstance(table, dict) or not isinstance(table.get(key), str):
            continue
        match = _ENV_REF.match(table[key].strip())
        if not match:
            continue
        name = match.group(1) or match.group(2)
        value = os.environ.get(name)
        if value is None:
            problems.append(Problem(f"$.{section}.{key}", f"environment variable {name} is not set"))
            value = None
        resolved[section] = {**table, key: value}
        if value is None:
            del resolved[section][key]
    return resolved


def _is_instant(info: Any) -> bool:
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    return any(isinstance(m, msgspec.inspect.DateTimeType) for m in members)


def _clean_raw(
    value: Any, info: Any, path: str, problems: list[Problem], *, root: bool = False
) -> Any:
    """``value`` without keys the structs do not know; each dropped key is a problem.

    Dates and times are read on the way by ``segmint.engine.dates`` (TOML and YAML dates,
    text in any form it takes); one that is not a date is a problem, and None from then on.
    """
    if value is not None and _is_instant(info):
        try:
            return read_instant(value, path.rsplit(".", 1)[-1])
        except InstantError as exc:
            problems.append(Problem(path, exc.reason))
            return None
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if isinstance(value, dict) and isinstance(member, (msgspec.inspect.StructType, msgspec.inspect.DictType)):
                return _clean_raw(value, member, path, problems)
            if isinstance(value, list) and isinstance(member, msgspec.inspect.ListType):
                return _clean_raw(value, member, path, problems)
        return value
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f for f in info.fields if not (root and f.name in LOADER_FIELDS)}
        kept = {}
        for key, item in value.items():
            if key in fields:
                kept[key] = _clean_raw(item, fields[key].type, f"{path}.{key}", problems)
            else:
                problems.append(Problem(f"{path}.{key}", f"unknown key {key!r}", suggest(str(key), fields)))
        return kept
    if isinstance(info, msgspec.inspect.DictType) and isinstance(value, dict):
        return {k: _clean_raw(v, info.value_type, f"{path}.{k}", problems) for k, v in value.items()}
    if isinstance(info, msgspec.inspect.ListType) and isinstance(value, list):
        return [_clean_raw(v, info.item_type, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _type_problems(value: Any, target: Any, path: str) -> list[Problem]:
    """Type and constraint errors, field by field, so one bad field does not hide the next.

    A struct's own cross-field check (``__post_init__``) runs once its fields are all valid.
    """
    if typing.get_origin(target) is typing.Annotated:
        return _convert_problems(value, target, path)
    if isinstance(target, type) and issubclass(target, msgspec.Struct) and isinstance(value, dict):
        problems: list[Problem] = []
        for field in msgspec.structs.fields(target):
            if field.encode_name in value:
                problems += _type_problems(value[field.encode_name], field.type, f"{path}.{field.encode_name}")
        return problems or _convert_problems(value, target, path)
    origin, args = typing.get_origin(target), typing.get_args(target)
    if origin is list and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _type_problems(item, args[0], f"{path}[{i}]")]
    if origin is dict and isinstance(value, dict):
        problems = []
        for key, item in value.items():
            problems += _convert_problems(key, args[0], f"{path}.{key}", as_key=True)
            problems += _type_problems(item, args[1], f"{path}.{key}")
        return problems
    if origin in (typing.Union, types.UnionType) and isinstance(value, dict):
        structs = [a for a in args if isinstance(a, type) and issubclass(a, msgspec.Struct)]
        if len(structs) == 1:
            return _type_problems(value, structs[0], path)
    if origin is typing.Literal and value not in args:  # msgspec's "Invalid enum value" names no choice
        choices = ", ".join(repr(a) for a in args)
        return [Problem(path, f"{value!r} is not one of {choices}", suggest(str(value), map(str, args)))]
    return _convert_problems(value, target, path)


def _convert_problems(value: Any, target: Any, path: str, *, as_key: bool = False) -> list[Problem]:
    try:
        msgspec.convert(value, target)
    except msgspec.ValidationError as exc:
        problem = _from_msgspec(exc, path)
        if as_key:
            problem = Problem(path, f"invalid name {value!r}: {problem.message}")
        return [problem]
    return []


def _from_msgspec(exc: msgspec.ValidationError, prefix: str) -> Problem:
    """A msgspec error (``Expected `int`, got `str` - at `$.priority```) re-rooted at ``prefix``."""
    text = str(exc)
    match = _MSGSPEC_ERROR.match(text)
    if not match:
        return Problem(prefix, text)
    inner = match.group("second") or match.group("first")
    path = prefix + inner[1:] if inner.startswith("$") else prefix
    return Problem(path, match.group("message"))
