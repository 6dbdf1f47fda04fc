"""The collector registry: name -> class, filled from entry points.

Built-in collectors register exactly as plugins do, through the
``evidence.collectors`` entry-point group in ``pyproject.toml``. A collector's
registered name, its module and the config ``kind`` are the same string.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from evidence.collectors.base import Collector
from evidence.errors import ConfigError

GROUP = "evidence.collectors"


def _load(point: EntryPoint) -> type[Collector]:
    cls = point.load()
    if not (isinstance(cls, type) and issubclass(cls, Collector)):
        raise ConfigError(f"entry point {point.name} ({point.value}) is not a Collector")
    if cls.kind != point.name:
        raise ConfigError(f"entry point {point.name} loads a collector of kind {cls.kind!r}")
    return cls


@cache
def collectors() -> dict[str, type[Collector]]:
    """Every registered collector (this imports them all: the Azure SDKs included)."""
    return {point.name: _load(point) for point in entry_points(group=GROUP)}


@cache
def get_collector(kind: str) -> type[Collector]:
    """The collector registered as ``kind``; only its own module is imported."""
    for point in entry_points(group=GROUP, name=kind):
        return _load(point)
    known = ", ".join(sorted(point.name for point in entry_points(group=GROUP)))
    raise ConfigError(f"unknown collector kind {kind!r} (known: {known})")
