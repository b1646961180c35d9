"""The one config loader: packaged defaults, a user YAML, dotted overrides, checked.

`load_config("fit", path, overrides, rules, open_keys)` reads configs/fit.yaml, then the
YAML at `path`, then `key.sub=value` overrides, resolves `${...}` interpolations and
checks the result:
- keys: a key the defaults lack is refused (a typo must not silently do nothing),
  except inside the mappings named by `open_keys` (dotted patterns, `*` = one key);
- types: a key's type is its default's (an int default takes ints only, a float
  default ints or floats, stored as floats; a list's elements are checked against
  its default's elements); a null default, or a new key, takes anything;
- `rules`: dotted key patterns (`*` = one key or list index) -> `Rule`, e.g.
  `{"batch_size": Rule(ge=1), "camera.fov_deg": Rule(type=float, gt=0, lt=180),
  "prior.kind": Rule(choices=("vposer", "gmm", "none"))}`; every matching rule applies.
Every problem is a `ConfigError` of one line naming the file or override and the key.
"""

from __future__ import annotations

import argparse
import copy
import io
import math
import operator
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Sequence

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from configs.files import write_text

Kind = type | tuple[type, ...]


class ConfigError(ValueError):
    """A config file, override or value that cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class Rule:
    """What a key accepts beyond its default's type; unset fields accept anything.

    type: the value's type when the default's does not say it (null) or says too little
    (an int default of a float setting); bounds gt/ge/lt/le also require a finite number;
    pattern: a regex the whole string must match; nullable: whether null is accepted
    (None: when the default is null); check: a predicate, with `means` saying what it
    accepts (also used in the message of a failed pattern).
    """

    type: Kind | None = None
    choices: tuple[Any, ...] = ()
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    pattern: str | None = None
    nullable: bool | None = None
    check: Callable[[Any], bool] | None = None
    means: str = ""


def load_config(
    name: str,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    rules: Mapping[str, Rule] = MappingProxyType({}),
    open_keys: Sequence[str] = (),
) -> DictConfig:
    """configs/`name`.yaml, then the YAML at `path`, then `key.sub=value` overrides, resolved and
    checked (see the module docstring). Mappings are struct (reading a missing key raises) except
    those matching `open_keys`."""
    resource = files(__package__) / f"{name}.yaml"
    if not resource.is_file():
        raise ConfigError(f"no packaged config {name}.yaml in {__package__}")
    checker = _Checker(f"{name}.yaml", rules, open_keys)
    defaults = _parse(resource.read_text(encoding="utf-8"), checker.defaults_source)
    checker.check_rules_match(defaults)
    merged = copy.deepcopy(defaults)
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {path} cannot be read ({e})") from None
        checker.merge(merged, _parse(text, str(path)), "", str(path))
    for item in overrides:
        source = f"override {item!r}"
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"{source}: overrides look like key.sub=value")
        try:
            layer = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        except (yaml.YAMLError, OmegaConfBaseException) as e:
            raise ConfigError(f"{source}: bad value ({_one_line(e)})") from None
        checker.merge(merged, layer, "", source)
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(merged), resolve=True)
    except OmegaConfBaseException as e:
        key = e.full_key or "?"
        raise ConfigError(f"{checker.source(key)}: {key} cannot be resolved ({_one_line(e.msg or e)})") from None
    cfg = OmegaConf.create(checker.check(resolved, _resolved(defaults), ""))
    _set_struct(cfg, "", open_keys)
    return cfg


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


class _Checker:
    """Key and value checks of one load; remembers which file or override set each key."""

    def __init__(self, defaults_source: str, rules: Mapping[str, Rule], open_keys: Sequence[str]) -> None:
        self.defaults_source, self.rules, self.open_keys = defaults_source, rules, open_keys
        self.sources: dict[str, str] = {}

    def source(self, key: str) -> str:
        """The file or override that set `key` (or the mapping or list holding it)."""
        while key not in self.sources and "." in key:
            key = key.rsplit(".", 1)[0]
        return self.sources.get(key, self.defaults_source)

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source(key)}: {key} {problem}")

    def check_rules_match(self, defaults: dict) -> None:
        """A rule must match a key of the defaults (ignoring trailing `*`s, for elements of null or
        empty defaults) or lie in an open mapping; one that matches nothing is a typo."""
        keys = list(_keys(defaults, ""))
        for pattern in self.rules:
            parts = pattern.split(".")
            while parts[-1] == "*" and len(parts) > 1:
                parts.pop()
            if not any(_match(k, ".".join(parts)) for k in keys) and not any(
                _match(".".join(parts[: len(p.split("."))]), p, both=True) for p in self.open_keys
            ):
                raise ConfigError(f"rule for {pattern!r} matches no key of {self.defaults_source}")

    def merge(self, base: dict, layer: dict, prefix: str, source: str) -> None:
        """Merge `layer` into `base` in place, refusing keys `base` lacks unless it is open."""
        for k, value in layer.items():
            key = f"{prefix}{k}"
            if k not in base and not any(_match(prefix[:-1], p) for p in self.open_keys):
                raise ConfigError(f"{source}: unknown config key {key!r} (not in {self.defaults_source})")
            if isinstance(base.get(k), dict) and isinstance(value, dict):
                self.merge(base[k], value, key + ".", source)
            else:
                base[k] = value
                self.sources[key] = source

    def check(self, value: Any, default: Any, key: str) -> Any:
        """`value` checked against `default`'s type and the rules matching `key`; ints of float keys
        become floats."""
        rules = [r for p, r in self.rules.items() if _match(key, p)]
        kind = next((r.type for r in rules if r.type is not None), _kind(default))
        if value is None:
            nullable = next((r.nullable for r in rules if r.nullable is not None), default is None)
            if not nullable:
                raise self.fail(key, f"must be {_describe(kind)}, got null" if kind else "must not be null")
            return None
        for rule in rules:  # before the type: the allowed values say more than the type
            if rule.choices and value not in rule.choices:
                raise self.fail(key, f"must be one of {', '.join(map(str, rule.choices))}, got {value!r}")
        if kind is not None and not _fits(value, kind):
            raise self.fail(key, f"must be {_describe(kind)}, got {value!r}")
        if kind is float:
            value = float(value)
        for rule in rules:
            self._apply(rule, value, key)
        if isinstance(value, dict):
            sub = default if isinstance(default, dict) else {}
            return {k: self.check(v, sub.get(k), f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            element = _element(default)
            return [self.check(v, element, f"{key}.{i}") for i, v in enumerate(value)]
        return value

    def _apply(self, rule: Rule, value: Any, key: str) -> None:
        """Raise unless `value` is within `rule`'s bounds, matches its pattern and passes its check."""
        bounds = [
            (op, b) for op, b in (("gt", rule.gt), ("ge", rule.ge), ("lt", rule.lt), ("le", rule.le)) if b is not None
        ]
        if bounds and not (
            _is_number(value) and math.isfinite(value) and all(_COMPARE[op][1](value, b) for op, b in bounds)
        ):
            raise self.fail(
                key, f"must be {' and '.join(f'{_COMPARE[op][0]} {b:g}' for op, b in bounds)}, got {value!r}"
            )
        if rule.pattern is not None and not (isinstance(value, str) and re.fullmatch(rule.pattern, value)):
            raise self.fail(key, f"must be {rule.means or 'a string matching ' + rule.pattern}, got {value!r}")
        if rule.check is not None and not rule.check(value):
            raise self.fail(key, f"must be {rule.means or 'valid'}, got {value!r}")


_COMPARE: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
}
_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def _parse(text: str, source: str) -> dict:
    """YAML text -> a plain dict (interpolations kept as strings)."""
    try:
        cfg = OmegaConf.load(io.StringIO(text))
    except (yaml.YAMLError, OmegaConfBaseException, OSError) as e:
        raise ConfigError(f"{source}: not valid YAML ({_one_line(e)})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{source}: not a YAML mapping of config keys")
    return OmegaConf.to_container(cfg)


def _resolved(container: dict) -> dict:
    """A plain container with its `${...}` interpolations resolved."""
    return OmegaConf.to_container(OmegaConf.create(container), resolve=True)


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _match(key: str, pattern: str, both: bool = False) -> bool:
    """Whether dotted `key` matches `pattern` (`*` = one key or index; `both`: `*` in `key` too)."""
    k, p = key.split("."), pattern.split(".")
    return len(k) == len(p) and all(a == b or b == "*" or (both and a == "*") for a, b in zip(k, p))


def _keys(value: Any, prefix: str) -> Iterator[str]:
    """Every dotted key in a plain container, mappings and list indices included."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        key = f"{prefix}{k}"
        yield key
        yield from _keys(v, key + ".")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(default: Any) -> type | None:
    """The type a default asks for; None (anything) for null."""
    return None if default is None else next(t for t in (bool, int, float, str, list, dict) if isinstance(default, t))


def _element(default: Any) -> Any:
    """A default for the elements of a list: its first element (a float when ints and floats mix)."""
    if not isinstance(default, list) or not default:
        return None
    if all(_is_number(v) for v in default) and any(isinstance(v, float) for v in default):
        return 0.0
    return default[0]


def _fits(value: Any, kind: Kind) -> bool:
    """Whether `value` has (one of) the type(s) `kind`; bools are not ints, ints are floats."""

    def fits(t: type) -> bool:
        if t is float:
            return _is_number(value)
        return isinstance(value, t) and not (t is int and isinstance(value, bool))

    return any(map(fits, kind if isinstance(kind, tuple) else (kind,)))


def _describe(kind: Kind) -> str:
    return " or ".join(_NAMES.get(t, t.__name__) for t in (kind if isinstance(kind, tuple) else (kind,)))


def _set_struct(node: Any, key: str, open_keys: Sequence[str]) -> None:
    """Struct mode on every mapping except those matching `open_keys`."""
    if isinstance(node, DictConfig):
        OmegaConf.set_struct(node, not any(_match(key, p) for p in open_keys))
        children = node.items()
    elif isinstance(node, ListConfig):
        children = enumerate(node)
    else:
        return
    for k, child in children:
        _set_struct(child, f"{key}.{k}" if key else str(k), open_keys)
