"""Split a JSON document into a small skeleton and a stream of big-array items.

Scanner outputs keep their findings in a few arrays (``runs[].results[]`` in
SARIF, ``matches[]`` in Grype). ``split_document`` reads the document once,
event by event (ijson), hands every item of those arrays to a callback as soon
as it is complete, and builds everything else into an ordinary value whose
streamed arrays are left empty. Memory stays bounded by the largest single
item plus the skeleton, whatever the file size; the metadata may come before
or after the findings (Grype writes it after).

A syntax error or a truncated file raises ``InputError`` naming the file and
the byte offset; the callback may already have seen items, so callers spool
them and use nothing until the whole document has parsed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO, Any

import ijson

from evidence.errors import InputError

# callback(prefix, where, index, value): ``where`` is the index of each enclosing
# array (``(run,)`` for a SARIF result), ``index`` the item's place in its array.
ItemSink = Callable[[str, tuple[int, ...], int, Any], None]

_SCALARS = frozenset({"null", "boolean", "integer", "double", "number", "string"})


class HashingReader:
    """Reads a binary handle, feeding every byte into a SHA-256 and counting them."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.sha256.update(data)
        self.offset += len(data)
        return data


class _Builder:
    """Builds one JSON value from ijson events (last duplicate key wins, as json.loads)."""

    __slots__ = ("keys", "root", "stack")

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.keys: list[str] = []
        self.root: Any = None

    def _put(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top, list):
            top.append(value)
        else:
            top[self.keys[-1]] = value

    def event(self, event: str, value: Any) -> None:
        if event == "map_key":
            self.keys[-1] = value
        elif event == "start_map":
            container: dict[str, Any] = {}
            self._put(container)
            self.stack.append(container)
            self.keys.append("")
        elif event == "start_array":
            items: list[Any] = []
            self._put(items)
            self.stack.append(items)
            self.keys.append("")
        elif event in ("end_map", "end_array"):
            self.stack.pop()
            self.keys.pop()
        else:
            self._put(value)

    def where(self) -> tuple[int, ...]:
        """Index of the element being built in each enclosing list (the innermost,
        the streamed list itself, is always empty and left out)."""
        return tuple(len(c) - 1 for c in self.stack[:-1] if isinstance(c, list))


def split_document(
    handle: IO[bytes],
    name: str,
    streamed: frozenset[str],
    sink: ItemSink,
) -> tuple[Any, str]:
    """Parse ``handle``; items at the ijson prefixes in ``streamed`` (``"matches.item"``)
    go to ``sink``; return (skeleton, sha256 hex of the bytes read)."""
    reader = HashingReader(handle)
    skeleton = _Builder()
    arrays = {p[: -len(".item")] for p in streamed}
    item: _Builder | None = None
    item_prefix = ""
    depth = 0
    counters: dict[str, int] = {}
    try:
        for prefix, event, value in ijson.parse(reader, use_float=True):
            if item is not None:
                item.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                    if depth == 0:
                        sink(item_prefix, skeleton.where(), counters[item_prefix], item.root)
                        counters[item_prefix] += 1
                        item = None
                continue
            if prefix in streamed and event != "map_key" and event not in ("end_map", "end_array"):
                if event in _SCALARS:
                    sink(prefix, skeleton.where(), counters[prefix], value)
                    counters[prefix] += 1
                    continue
                item, item_prefix, depth = _Builder(), prefix, 1
                item.event(event, value)
                continue
            if event == "start_array" and prefix in arrays:
                counters[f"{prefix}.item" if prefix else "item"] = 0
            skeleton.event(event, value)
    except ijson.IncompleteJSONError as exc:
        if reader.offset == 0:
            raise InputError("the file is empty", where=name) from None
        reason = str(exc).splitlines()[0] if str(exc) else "incomplete JSON"
        raise InputError(
            f"not valid JSON (within the first {reader.offset} bytes): {reason}"
            + (" (the file is truncated)" if "premature EOF" in reason else ""),
            where=name,
        ) from None
    except (ijson.JSONError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"not valid JSON (within the first {reader.offset} bytes): {exc}", where=name
        ) from None
    if reader.offset == 0:
        raise InputError("the file is empty", where=name)
    return skeleton.root, reader.sha256.hexdigest()
