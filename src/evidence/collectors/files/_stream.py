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
from collections.abc import Callable, Iterator
from typing import IO, Any

import ijson

from evidence.errors import InputError

# callback(prefix, where, index, value): ``where`` is the index of each enclosing
# array (``(run,)`` for a SARIF result), ``index`` the item's place in its array.
ItemSink = Callable[[str, tuple[int, ...], int, Any], None]


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


_STARTS = ("start_map", "start_array")
_ENDS = ("end_map", "end_array")


def _attach(stack: list[Any], keys: list[str], value: Any) -> None:
    top = stack[-1]
    if type(top) is list:
        top.append(value)
    else:
        top[keys[-1]] = value  # a duplicate key keeps its last value, as json.loads does


def _skip_value(events: Iterator[tuple[str, str, Any]]) -> None:
    """Consume the next value's events without building it."""
    depth = 0
    for _prefix, event, _value in events:
        if event in _STARTS:
            depth += 1
        elif event in _ENDS:
            depth -= 1
        if depth == 0 and event != "map_key":
            return


def _build_item(events: Iterator[tuple[str, str, Any]], first: str, drop: frozenset[str]) -> Any:
    """One streamed item, built from the events that follow its opening event, without
    the values of ``drop`` keys. Kept flat: this loop runs for every value of every finding."""
    root: Any = {} if first == "start_map" else []
    stack: list[Any] = [root]
    keys: list[str] = [""]
    for _prefix, event, value in events:
        if event == "map_key":
            keys[-1] = value
            if value in drop:
                _skip_value(events)
        elif event in _ENDS:
            stack.pop()
            keys.pop()
            if not stack:
                return root
        elif event in _STARTS:
            new: Any = {} if event == "start_map" else []
            _attach(stack, keys, new)
            stack.append(new)
            keys.append("")
        else:
            _attach(stack, keys, value)
    raise ijson.IncompleteJSONError("premature EOF")


def split_document(
    handle: IO[bytes],
    name: str,
    streamed: frozenset[str],
    sink: ItemSink,
    drop: frozenset[str] = frozenset(),
) -> tuple[Any, str]:
    """Parse ``handle``; items at the ijson prefixes in ``streamed`` (``"matches.item"``)
    go to ``sink``; return (skeleton, sha256 hex of the bytes read). Values of keys in
    ``drop`` (secrets) are skipped wherever they are: never built, never handed on."""
    reader = HashingReader(handle)
    arrays = {p[: -len(".item")] for p in streamed}
    counters: dict[str, int] = {}
    # The skeleton under construction: open containers and, per container, its pending key.
    stack: list[Any] = []
    keys: list[str] = []
    root: Any = None
    try:
        events = iter(ijson.parse(reader, use_float=True))
        for prefix, event, value in events:
            if prefix in streamed and event != "map_key" and event not in _ENDS:
                # Index of the element being built in each enclosing list; the innermost,
                # the streamed list itself, stays empty and is left out.
                where = tuple(len(c) - 1 for c in stack[:-1] if type(c) is list)
                item = _build_item(events, event, drop) if event in _STARTS else value
                sink(prefix, where, counters[prefix], item)
                counters[prefix] += 1
            elif event == "map_key":
                keys[-1] = value
                if value in drop:
                    _skip_value(events)
            elif event in _ENDS:
                stack.pop()
                keys.pop()
            else:
                if event == "start_array" and prefix in arrays:
                    counters[f"{prefix}.item" if prefix else "item"] = 0
                new: Any = value
                if event in _STARTS:
                    new = {} if event == "start_map" else []
                if stack:
                    _attach(stack, keys, new)
                else:
                    root = new
                if event in _STARTS:
                    stack.append(new)
                    keys.append("")
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
    return root, reader.sha256.hexdigest()
