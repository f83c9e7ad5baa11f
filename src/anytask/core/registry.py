"""Name -> object registries with the paper each entry implements (mergekit / timm style).

Every family has one ``Registry`` and every method registers with the same decorator, declaring
what it takes and what it can do as data (no signature inspection, no ``hasattr``)::

    HEADS = Registry("head", family="heads")

    @HEADS.register("centroid", reference="Snell et al. 2017, https://arxiv.org/abs/1703.05175",
                    saveable=True)
    class Centroid(BaseHead): ...

``get`` on an unknown name raises an error that lists the close matches.
``anytask.methods.all_registries()`` imports every family and returns its registries, which is
what ``anytask list`` and the contract tests walk.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Callable, Generic, TypeVar

from anytask.core.errors import AnytaskError

T = TypeVar("T")

INPUTS = ("features", "texts", "tokens", "graphs", "images", "weights", "names", "stream", "files", "transitions",
          "environments")


@dataclass(frozen=True)
class Capabilities:
    """What a registered method takes and offers; declared at registration, read by callers."""

    input: str = "features"      # what fit/the function consumes: one of INPUTS
    output: str = ""             # what comes out: "classes", "values", "embeddings", "weights", ...
    saveable: bool = False       # anytask.io.save / load round-trips it
    needs_backbone: bool = False  # must be told the features' backbone (and may read its cache)
    label_names: bool = False    # uses natural-language label descriptions when given
    embeds_text: bool = False    # embeds texts itself through the embedding cache (told cache_dir)
    learned: bool = False        # merging: coefficients are fitted on data, not set by hand
    task_ids: bool = False       # continual: told which task each batch comes from

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise AnytaskError(f"unknown input kind {self.input!r}; use one of {', '.join(INPUTS)}")

    def describe(self) -> str:
        flags = [f.name for f in fields(self) if f.type in ("bool", bool) and getattr(self, f.name)]
        return ", ".join([f"in: {self.input}"] + ([f"out: {self.output}"] if self.output else []) + flags)


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    reference: str
    summary: str
    caps: Capabilities
    family: str


_REGISTRIES: list["Registry"] = []


class Registry(Generic[T]):
    """A named collection of factories; one per kind (backbones, heads, merge methods, ...)."""

    def __init__(self, kind: str, *, family: str, discover: Callable[[], object] | None = None) -> None:
        """``discover`` imports the modules of other families that register here (called once, on the first
        listing or on a name not registered yet), so no package has to import them all up front."""
        self.kind, self.family = kind, family
        self._entries: dict[str, Entry[T]] = {}
        self._discover = discover
        _REGISTRIES.append(self)

    def _complete(self) -> None:
        if self._discover is not None:
            discover, self._discover = self._discover, None
            discover()

    def register(self, name: str, *, reference: str, summary: str = "", **capabilities) -> Callable[[T], T]:
        try:
            caps = Capabilities(**capabilities)
        except TypeError as e:
            raise AnytaskError(f"{self.kind} {name!r}: {e}; capabilities are "
                               f"{', '.join(f.name for f in fields(Capabilities))}") from None

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise AnytaskError(f"{self.kind} {name!r} is registered twice")
            doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
            parts = str(getattr(obj, "__module__", "")).split(".")  # a head defined in methods/icl is icl's
            family = parts[2] if parts[:2] == ["anytask", "methods"] and len(parts) > 2 else self.family
            self._entries[name] = Entry(name, obj, reference, summary or (doc[0] if doc else ""), caps, family)
            return obj

        return decorator

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def caps(self, name: str) -> Capabilities:
        return self.entry(name).caps

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries:
            self._complete()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise AnytaskError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())}."
            ) from None

    def name_of(self, obj: object) -> str | None:
        """The name ``obj`` (an instance of a registered class, or the class) is registered under, or None."""
        cls = obj if isinstance(obj, type) else type(obj)
        self._complete()
        return next((name for name, e in self._entries.items() if e.obj is cls), None)

    def names(self) -> list[str]:
        self._complete()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._complete()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, family={self.family!r}, {len(self._entries)} entries)"


def registries() -> list[Registry]:
    """The registries created so far (``anytask.methods.all_registries()`` imports every family first)."""
    layer = {"backbones": 0, "data": 1}
    return sorted(_REGISTRIES, key=lambda r: (layer.get(r.family, 2), r.family, r.kind))


def method_table(registries: list[Registry]) -> str:
    """The Markdown table of every registered method (``anytask list --markdown``; the README's table)."""
    rows = ["| family | kind | name | what it is | takes / offers | reference |", "|---|---|---|---|---|---|"]
    for reg in registries:
        for e in reg.entries():
            rows.append(f"| {e.family} | {reg.kind} | `{e.name}` | {e.summary} | {e.caps.describe()} | {e.reference} |")
    return "\n".join(rows) + "\n"
