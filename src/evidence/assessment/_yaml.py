"""A strict YAML reader for catalogs and checks: safe types only, duplicate keys refused.

PyYAML keeps the last of two equal keys without a word; in a control mapping
that would silently drop a rationale, so a duplicate is an error with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from evidence.errors import CatalogError

# libyaml's parser when PyYAML was built with it (ten times faster); the same safe constructor.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[misc]  # base chosen at import
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise CatalogError(f"duplicate key {key!r} (line {line})")
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: Path) -> Any:
    """Parse ``path``; every problem is a ``CatalogError`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read: {exc}", where=str(path)) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader subclass
    except CatalogError as exc:
        raise CatalogError(exc.message, where=str(path)) from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"not valid YAML: {exc}", where=str(path)) from None
