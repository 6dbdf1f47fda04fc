"""The default store: files in a folder, written once and made read-only.

A put writes a temporary file in the target folder, fsyncs it, makes it
read-only, links it into place (``os.link`` fails if the name exists, so
nothing is ever replaced) and fsyncs the folder. A file handed over with
``put_file`` is itself that temporary file when it lies on the same file
system (an artifact spool is then never copied). A crash leaves at most a
``.tmp-*`` file (never listed), never a partial or writable file under a final
name. Operating-system failures surface as ``StoreError`` naming the key.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from evidence.errors import NotFound, StoreError, WriteOnceViolation
from evidence.store.base import EvidenceStore, check_key

TEMP_PREFIX = ".tmp-"


class FilesystemStore(EvidenceStore):
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"filesystem store at {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> bool:
        try:
            return self._put(key, data)
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot write {key}: {exc.strerror or exc}") from exc

    def put_file(self, key: str, path: Path) -> bool:
        try:
            return self._put_file(key, path)
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot write {key} from {path.name}: {exc.strerror or exc}") from exc

    def _put(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():
            return self._same(path, key, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return self._link(Path(tmp), path, key, data)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _put_file(self, key: str, path: Path) -> bool:
        target = self._path(key)
        if target.exists():
            return self._same_file(target, key, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        adopted = self._adopt(path, target, key)
        if adopted is not None:
            return adopted
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle, path.open("rb") as source:
                shutil.copyfileobj(source, handle, 1024 * 1024)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o444)  # read-only before it has its final name
            try:
                os.link(tmp, target)
            except FileExistsError:
                return self._same_file(target, key, path)
            _fsync_dir(target.parent)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _adopt(self, path: Path, target: Path, key: str) -> bool | None:
        """Link the handed-over file itself into place; None when it cannot be
        linked (another file system, no hard links there) and must be copied."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(path, 0o444)  # read-only before it has its final name
        try:
            os.link(path, target)
        except FileExistsError:
            return self._same_file(target, key, path)
        except OSError:
            return None
        _fsync_dir(target.parent)
        return True

    def _link(self, tmp: Path, path: Path, key: str, data: bytes) -> bool:
        os.chmod(tmp, 0o444)  # read-only before it has its final name
        try:
            os.link(tmp, path)
        except FileExistsError:
            return self._same(path, key, data)
        _fsync_dir(path.parent)
        return True

    def _same(self, path: Path, key: str, data: bytes) -> bool:
        if path.read_bytes() != data:
            raise WriteOnceViolation(f"{key} already holds different bytes")
        return False

    def _same_file(self, target: Path, key: str, path: Path) -> bool:
        with target.open("rb") as a, path.open("rb") as b:
            while True:
                x, y = a.read(1024 * 1024), b.read(1024 * 1024)
                if x != y:
                    raise WriteOnceViolation(f"{key} already holds different bytes")
                if not x:
                    return False

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{key} is not in the store") from None
        except OSError as exc:
            raise StoreError(f"cannot read {key}: {exc.strerror}") from exc

    def open(self, key: str) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"{key} is not in the store") from None
        except OSError as exc:
            raise StoreError(f"cannot read {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root
        if not base.is_dir():
            return
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            rel = os.path.relpath(folder, base)
            for name in sorted(files):
                if name.startswith(TEMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    yield key

    def check_writable(self) -> str:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.root}: {exc.strerror or exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"{self.root} is not writable")
        return f"{self.describe()}: writable (files are made read-only; not WORM-enforced)"

    def is_worm(self) -> bool | None:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
