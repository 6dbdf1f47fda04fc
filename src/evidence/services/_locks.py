"""Advisory file locks in the state folder (one collector run per source, one ledger writer)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evidence.errors import EvidenceError


class Busy(EvidenceError):
    code = "busy"
    exit_code = 3


@contextmanager
def file_lock(path: Path, *, wait: bool, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(f"{what} is already in progress in another process") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies
