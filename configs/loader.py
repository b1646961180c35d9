"""The one config loader: packaged defaults, a user YAML, dotted overrides, checked against a schema.

`load_config("fit", FitConfig, path, overrides)` merges configs/fit.yaml (the default values, with
their comments), then the YAML at `path`, then `key.sub=value` overrides onto
`OmegaConf.structured(FitConfig)`, resolves `${...}` interpolations and checks the result.
A schema is a dataclass (sections: nested dataclasses) whose annotations give the types. Its
fields have no defaults (OmegaConf's MISSING: the YAML is the one place of default values, and a
key it lacks is an error) and declare what they accept beyond their type with `setting(ge=1)`,
`setting(choices=...)` and so on:
- OmegaConf refuses keys the schema lacks and values of the wrong type (an int where a float is
  declared becomes a float); `Dict[str, X]` fields are the open mappings that take new keys;
- a setting's bounds, choices and pattern apply to the value, or to each element of a list or
  mapping; its `test` to the whole value.
Every problem is a `ConfigError` of one line naming the file or override and the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import io
import math
import operator
import re
import typing
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from configs.files import write_text


class ConfigError(ValueError):
    """A config file, override or value that cannot be used (the message says which and why)."""


@dataclasses.dataclass(frozen=True)
class Accepts:
    """What a schema field accepts beyond its type; unset fields accept anything. Bounds gt/ge/lt/le
    also require a finite number; pattern: a regex the whole string must match; test: a predicate of
    the whole (plain) value; `means`: what the test or pattern accepts, for the message."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] = ()
    pattern: str | None = None
    test: Callable[[Any], bool] | None = None
    means: str = ""

    def refuses(self, value: Any) -> str | None:
        """What one value (a scalar, or an element) must be when it is not; None when it is fine."""
        if self.choices and value not in self.choices:
            return f"one of {', '.join(map(str, self.choices))}"
        bounds = [(_COMPARE[op], b) for op in _COMPARE if (b := getattr(self, op)) is not None]
        if bounds and not (_is_number(value) and math.isfinite(value) and all(f(value, b) for (_, f), b in bounds)):
            return " and ".join(f"{sign} {b:g}" for (sign, _), b in bounds)
        if self.pattern is not None and not (isinstance(value, str) and re.fullmatch(self.pattern, value)):
            return self.means or f"a string matching {self.pattern}"
        return None


def setting(**accepts: Any) -> Any:
    """A schema field (no default: the packaged YAML gives it) accepting what `Accepts(**accepts)` does."""
    return dataclasses.field(metadata={"accepts": Accepts(**accepts)})


def load_config(name: str, schema: type, path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/`name`.yaml, then the YAML at `path`, then `key.sub=value` overrides, merged onto
    `schema`, resolved and checked (see the module docstring)."""
    resource = files(__package__) / f"{name}.yaml"
    if not resource.is_file():
        raise ConfigError(f"no packaged config {name}.yaml in {__package__}")
    load = _Load(schema, f"{name}.yaml")
    load.merge(_parse(resource.read_text(encoding="utf-8"), load.packaged), load.packaged)
    if missing := load.missing():
        raise ConfigError(f"{load.packaged} lacks {', '.join(missing)} (keys of {schema.__name__})")
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {path} cannot be read ({e})") from None
        load.merge(_parse(text, str(path)), str(path))
    for item in overrides:
        source = f"override {item!r}"
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"{source}: overrides look like key.sub=value")
        try:
            layer = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        except (yaml.YAMLError, OmegaConfBaseException) as e:
            raise ConfigError(f"{source}: bad value ({_one_line(e)})") from None
        load.merge(layer, source)
    return load.checked()


def command_line_config(
    load: Callable[[Path | None, Sequence[str]], DictConfig],
    defaults: str,
    description: str,
    argv: Sequence[str] | None = None,
    example: str | None = None,
) -> DictConfig:
    """The config of a training command's `[--config FILE] [key=value ...]`, made by `load(path,
    overrides)`; a file, key or value it refuses exits with the usage and one line naming it.
    `defaults`: the YAML under configs/ that `load` starts from (for --help)."""
    parser = argparse.ArgumentParser(description=description, epilog=f"Example: {example}" if example else None)
    parser.add_argument("--config", type=Path, default=None, help=f"YAML layered on configs/{defaults}.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.lr=0.001")
    args = parser.parse_args(argv)
    try:
        return load(args.config, args.overrides)
    except (OSError, ValueError) as e:
        parser.error(str(e))


def save_config(cfg: DictConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    write_text(path, OmegaConf.to_yaml(cfg, resolve=True))


class _Load:
    """One load: the config so far (on its schema), and which file or override set each key."""

    def __init__(self, schema: type, packaged: str) -> None:
        self.schema, self.packaged = schema, packaged
        self.cfg = OmegaConf.structured(schema)
        self.sources: dict[str, str] = {}

    def source(self, key: str) -> str:
        """The file or override that set `key` (or the mapping holding it)."""
        while key not in self.sources and "." in key:
            key = key.rsplit(".", 1)[0]
        return self.sources.get(key, self.packaged)

    def fail(self, key: str, problem: str, source: str | None = None) -> ConfigError:
        return ConfigError(f"{source or self.source(key)}: {key} {problem}")

    def merge(self, layer: dict, source: str) -> None:
        """Merge `layer` (from `source`) into the config; OmegaConf refuses unknown keys and wrong types."""
        try:
            self.cfg.merge_with(layer)
        except (ConfigKeyError, ConfigAttributeError) as e:
            key = _dotted(e.full_key)
            if source == self.packaged:
                raise ConfigError(f"{source}: key {key!r} is not in the schema {self.schema.__name__}") from None
            raise ConfigError(
                f"{source}: unknown config key {key!r} (not in {self.packaged}){self._guess(key)}"
            ) from None
        except OmegaConfBaseException as e:
            key, value = (_dotted(e.full_key), e.value) if e.full_key else self._mismatch(layer)
            raise self.fail(key, f"must be {_describe(_hint(self.schema, key))}, got {_show(value)}", source) from None
        self.sources.update((key, source) for key, _ in _items(layer, ""))

    def missing(self) -> list[str]:
        return sorted(map(_dotted, OmegaConf.missing_keys(self.cfg)))

    def checked(self) -> DictConfig:
        """The config, once complete (new entries of open mappings give every key), resolved and checked."""
        try:
            OmegaConf.to_container(self.cfg, resolve=True)  # names a failing key (OmegaConf.resolve does not on 2.3)
        except OmegaConfBaseException as e:
            key = _dotted(e.full_key) or "?"
            raise self.fail(key, f"cannot be resolved ({str(e.msg or e).splitlines()[0]})") from None
        OmegaConf.resolve(self.cfg)
        if missing := self.missing():
            raise ConfigError(f"{self.source(missing[0])}: {', '.join(missing)} not set")
        self._check(self.cfg, self.schema, "", None)
        return self.cfg

    def _check(self, value: Any, hint: Any, key: str, accepts: Accepts | None) -> None:
        """Raise at the first value under `key` that its setting refuses."""
        hint = _unoptional(hint)
        if value is None:  # OmegaConf refused it where the type is not Optional
            return
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            for f in dataclasses.fields(hint):
                child, sub, accepts = value[f.name], _join(key, f.name), f.metadata.get("accepts")
                if accepts and accepts.test and child is not None and not accepts.test(_plain(child)):
                    raise self.fail(sub, f"must be {accepts.means}, got {_show(child)}")
                self._check(child, hints[f.name], sub, accepts)
        elif typing.get_origin(hint) in (list, dict):
            items = value.items() if typing.get_origin(hint) is dict else enumerate(value)
            for k, v in items:
                self._check(v, typing.get_args(hint)[-1], f"{key}.{k}", accepts)
        elif hint is not Any and OmegaConf.is_config(value):  # OmegaConf lets a list into a List[int]'s element
            raise self.fail(key, f"must be {_describe(hint)}, got {_show(value)}")
        elif accepts and (problem := accepts.refuses(value)):
            raise self.fail(key, f"must be {problem}, got {_show(value)}")

    def _guess(self, key: str) -> str:
        """': did you mean ...?' for an unknown key close to a key of its section."""
        parent, _, last = key.rpartition(".")
        section = _hint(self.schema, parent)
        names = [f.name for f in dataclasses.fields(section)] if dataclasses.is_dataclass(section) else []
        close = difflib.get_close_matches(last, names, n=1)
        return f": did you mean {_join(parent, close[0])!r}?" if close else ""

    def _mismatch(self, layer: dict) -> tuple[str, Any]:
        """The first key of `layer` holding a mapping where the schema has none or the reverse (a
        problem OmegaConf does not locate), and its value."""
        for key, value in _items(layer, ""):
            hint = _hint(self.schema, key)
            if hint is not Any and isinstance(value, dict) != _is_mapping(hint):
                return key, value
        return "?", None


_COMPARE: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
}
_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


def _parse(text: str, source: str) -> dict:
    """YAML text -> a plain dict (interpolations kept as strings)."""
    try:
        cfg = OmegaConf.load(io.StringIO(text))
    except (yaml.YAMLError, OmegaConfBaseException, OSError) as e:
        raise ConfigError(f"{source}: not valid YAML ({_one_line(e)})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{source}: not a YAML mapping of config keys")
    return OmegaConf.to_container(cfg)


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _dotted(full_key: object) -> str:
    """OmegaConf's `a.b[0]` as `a.b.0`."""
    return re.sub(r"\[(\w+)\]", r".\1", str(full_key or ""))


def _items(layer: dict, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every dotted key of a plain mapping with its value, enclosing mappings first."""
    for k, v in layer.items():
        yield _join(prefix, k), v
        if isinstance(v, dict):
            yield from _items(v, _join(prefix, k))


def _unoptional(hint: Any) -> Any:
    """X for Optional[X]."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else Any
    return hint


def _hint(schema: Any, key: str) -> Any:
    """The declared type of dotted `key` in `schema` (Any where the schema does not say)."""
    hint = schema
    for part in key.split(".") if key else ():
        hint = _unoptional(hint)
        if dataclasses.is_dataclass(hint):
            hint = typing.get_type_hints(hint).get(part, Any)
        elif typing.get_origin(hint) in (list, dict):
            hint = typing.get_args(hint)[-1]
        else:
            return Any
    return _unoptional(hint)


def _is_mapping(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict


def _describe(hint: Any) -> str:
    if _is_mapping(hint):
        return "a mapping"
    return _NAMES.get(typing.get_origin(hint) or hint, "a value")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _show(value: Any) -> str:
    return "null" if value is None else repr(_plain(value))
