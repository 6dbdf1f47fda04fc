"""The evidence store contract: write-once blobs under slash-separated keys.

Every backend passes the same contract suite (tests/contract/test_store.py):
``put`` never overwrites; the same key with the same bytes is a no-op, with
different bytes ``WriteOnceViolation``; a key is visible under its name only
once it is complete.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from evidence.errors import StoreError

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise StoreError(f"invalid store key {key!r}")
    return key


class EvidenceStore(ABC):
    """Write-once blob storage. Implementations must be safe to call from one process."""

    name: str = "store"

    @abstractmethod
    def put(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` once. Return True if written, False if already there."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> bool:
        """Like ``put``, from a local file (for large artifacts) that the caller hands
        over: it must not change afterwards, and a store may take it in place."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes under ``key``; ``NotFound`` when absent."""

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """A binary stream of the bytes under ``key``; ``NotFound`` when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every complete key starting with ``prefix``, in no particular order."""

    def describe(self) -> str:
        return self.name

    def check_writable(self) -> str:
        """Write and read back a probe; return a short description of the result."""
        probe = "doctor/probe-" + _probe_name()
        self.put(probe, b"probe")
        if self.get(probe) != b"probe":
            raise StoreError("probe read back different bytes")
        return f"{self.describe()}: writable"

    def is_worm(self) -> bool | None:
        """Whether the backend enforces write-once itself (None: cannot tell)."""
        return None


def _probe_name() -> str:
    import secrets

    return secrets.token_hex(8)
