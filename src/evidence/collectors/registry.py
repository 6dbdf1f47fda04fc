"""The collector registry: name -> class, filled from entry points.

Built-in collectors register exactly as plugins do, through the
``evidence.collectors`` entry-point group in ``pyproject.toml``. A collector's
registered name, its module and the config ``kind`` are the same string.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from evidence.collectors.base import Collector
from evidence.errors import ConfigError

GROUP = "evidence.collectors"


@cache
def collectors() -> dict[str, type[Collector]]:
    found: dict[str, type[Collector]] = {}
    for point in entry_points(group=GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Collector)):
            raise ConfigError(f"entry point {point.name} ({point.value}) is not a Collector")
        if cls.kind != point.name:
            raise ConfigError(
                f"entry point {point.name} loads a collector of kind {cls.kind!r}"
            )
        found[point.name] = cls
    return found


def get_collector(kind: str) -> type[Collector]:
    try:
        return collectors()[kind]
    except KeyError:
        known = ", ".join(sorted(collectors()))
        raise ConfigError(f"unknown collector kind {kind!r} (known: {known})") from None
