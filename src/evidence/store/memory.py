"""An in-memory store for tests, with explicit hooks to tamper with it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from evidence.errors import NotFound, WriteOnceViolation
from evidence.store.base import EvidenceStore, check_key


class MemoryStore(EvidenceStore):
    name = "memory"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> bool:
        check_key(key)
        existing = self.blobs.get(key)
        if existing is not None:
            if existing != data:
                raise WriteOnceViolation(f"{key} already holds different bytes")
            return False
        self.blobs[key] = bytes(data)
        return True

    def put_file(self, key: str, path: Path) -> bool:
        return self.put(key, path.read_bytes())

    def get(self, key: str) -> bytes:
        try:
            return self.blobs[check_key(key)]
        except KeyError:
            raise NotFound(f"{key} is not in the store") from None

    def open(self, key: str) -> IO[bytes]:
        return io.BytesIO(self.get(key))

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def list(self, prefix: str = "") -> Iterator[str]:
        yield from sorted(k for k in self.blobs if k.startswith(prefix))

    def check_writable(self) -> str:
        return "memory store: writable (tests only)"

    # Tamper hooks: what an attacker with write access to the storage could do.
    def tamper_replace(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    def tamper_delete(self, key: str) -> None:
        del self.blobs[key]

    def tamper_add(self, key: str, data: bytes) -> None:
        self.blobs[key] = data
