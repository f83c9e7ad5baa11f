"""Name -> object registries with the paper each entry implements (mergekit / timm style).

Adding a method is one decorator line on its class or function::

    @HEADS.register("centroid", reference="Snell et al. 2017, https://arxiv.org/abs/1703.05175")
    class Centroid(BaseHead): ...

``get`` on an unknown name raises an error that lists the close matches.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from anytask.errors import AnytaskError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    reference: str
    summary: str


class Registry(Generic[T]):
    """A named collection of factories; one per kind (backbones, heads, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, reference: str, summary: str = "") -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise AnytaskError(f"{self.kind} {name!r} is registered twice")
            doc = summary or (getattr(obj, "__doc__", None) or "").strip().splitlines()[0:1]
            text = doc if isinstance(doc, str) else (doc[0] if doc else "")
            self._entries[name] = Entry(name, obj, reference, text)
            return obj

        return decorator

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise AnytaskError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())}."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
