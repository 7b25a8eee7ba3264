"""One small name -> object registry, with a duplicate check and "did you mean"."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import LetheError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # "method", "metric", "benchmark", ...
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        return lambda obj: self.add(name, obj)

    def get(self, name: str) -> T:
        if name not in self._items:
            hint = did_you_mean(name, self._items)
            raise LetheError(f"unknown {self.kind} '{name}'{hint} (known: {', '.join(sorted(self._items))})")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def __len__(self) -> int:
        return len(self._items)
