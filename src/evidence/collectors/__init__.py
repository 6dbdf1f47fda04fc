"""Collectors: one module per source kind, registered by name."""

from evidence.collectors.base import (
    CollectContext,
    Collector,
    CollectorEnv,
    CollectorOptions,
    ScopeResult,
)
from evidence.collectors.registry import collectors, get_collector

__all__ = [
    "CollectContext",
    "Collector",
    "CollectorEnv",
    "CollectorOptions",
    "ScopeResult",
    "collectors",
    "get_collector",
]
