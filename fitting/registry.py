"""Named, pluggable parts (loss terms, start hypotheses): a class registers under its `name`."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes by name; `register` is a class decorator, `create(name)` an instance."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        name = cls.name  # type: ignore[attr-defined]
        if self.classes.get(name, cls) is not cls:
            raise ValueError(f"a {self.kind} named {name!r} is already registered ({self.classes[name].__qualname__})")
        self.classes[name] = cls
        return cls

    def create(self, name: str) -> T:
        if name not in self.classes:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self.classes))}")
        return self.classes[name]()

    def __contains__(self, name: object) -> bool:
        return name in self.classes

    def names(self) -> list[str]:
        return sorted(self.classes)
