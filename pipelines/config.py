"""Strict YAML → frozen dataclass loading for job configs.

An unknown key is an error that lists the known ones; a value of the wrong type names its path.
`include:` (a path or list of paths, relative to the including file) merges base files beneath;
`overrides` ("spark.master=local[4]") apply last, parsed as YAML scalars.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")

SHIPPED_CONF = Path(__file__).resolve().parents[1] / "conf"
"""The conf/ folder of the checkout: default rules, prompts and lexicons when a conf names none."""


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the file."""


def load(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """Load `path` (and its includes) into `cls`, applying `key.sub=value` overrides."""
    data = _read_with_overrides(path, overrides)
    return from_dict(cls, data, where=str(path or "<defaults>"))


def load_section(cls: type[T], path: str | Path | None, section: str,
                 overrides: list[str] | None = None) -> T:
    """Load one section of a conf (e.g. `lake` of any job conf), ignoring the other sections."""
    data = _read_with_overrides(path, overrides)
    return from_dict(cls, data.get(section) or {}, where=f"{path or '<defaults>'} [{section}]")


def _read_with_overrides(path: str | Path | None, overrides: list[str] | None) -> dict:
    data = read_yaml(Path(path)) if path else {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        _set_path(data, key.strip().split("."), yaml.safe_load(value))
    return data


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    includes = data.pop("include", [])
    merged: dict = {}
    for inc in [includes] if isinstance(includes, str) else includes:
        merged = _merge(merged, read_yaml((path.parent / inc).resolve()))
    return _merge(merged, data)


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    return _convert(cls, data, where, "")


def to_dict(obj: Any) -> Any:
    """Plain-data form of a config (for logs and commit metadata)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _set_path(data: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        data = data.setdefault(k, {})
        if not isinstance(data, dict):
            raise ConfigError(f"override key {'.'.join(keys)}: {k} is not a section")
    data[keys[-1]] = value


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    here = key or "<top>"
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {here} must be a mapping")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown} in {here}; known: {sorted(fields)}")
        kwargs = {name: _convert(hints[name], value[name], where, f"{key}.{name}".lstrip("."))
                  for name in fields if name in value}
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{where}: {here}: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"{where}: {here}: {exc}") from exc
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: {here} is {value!r}; valid values: {list(get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: {here}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {here} must be a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        items = [_convert(item_tp, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {here} must be a mapping, got {value!r}")
        _, v_tp = get_args(tp) or (Any, Any)
        return {str(k): _convert(v_tp, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: {here} must be a number, got {value!r}") from None
    if tp is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(tp, type) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {here} must be {getattr(tp, '__name__', tp)}, got {value!r}")
    return value
