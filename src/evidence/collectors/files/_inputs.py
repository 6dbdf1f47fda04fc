"""Where scanner files come from: local paths and globs, or an Azure Blob prefix.

``list_inputs`` turns a source's ``path`` option into ``InputFile``s, sorted by
name. ``InputFile.local()`` gives a local path to read: the file itself, or a
blob streamed to a temporary file (deleted afterwards), so a 500 MB report is
never held in memory. ``path = "az://account/container/prefix/"`` lists the
blobs under the prefix; the account URL defaults to the public cloud's
``https://<account>.blob.core.windows.net`` and can be overridden, and a
connection string from an environment variable (Azurite, development) may
replace the Azure credential.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.collectors.files._paths import resolve_files
from evidence.errors import CollectorError

BLOB_SCHEME = "az://"


@dataclass(frozen=True)
class InputFile:
    name: str
    _open: Callable[[], contextlib.AbstractContextManager[Path]]

    def local(self) -> contextlib.AbstractContextManager[Path]:
        return self._open()


@dataclass(frozen=True)
class BlobLocation:
    account: str
    container: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> BlobLocation:
        rest = url[len(BLOB_SCHEME) :]
        parts = rest.split("/", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise CollectorError(
                f"blob path {url!r} must look like az://account/container/prefix/",
                scope=url,
                remedy="name the storage account and the container",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else "")


def list_inputs(
    paths: list[str],
    base_dir: Path,
    *,
    blob_client: Callable[[BlobLocation], Any] | None = None,
) -> list[InputFile]:
    """Every file named by ``paths``; an error when one of them matches nothing."""
    found: list[InputFile] = []
    for pattern in paths:
        if pattern.startswith(BLOB_SCHEME):
            if blob_client is None:
                raise CollectorError(
                    f"cannot read {pattern}: no blob access configured", scope=pattern
                )
            found.extend(_blob_inputs(BlobLocation.parse(pattern), blob_client, pattern))
        else:
            found.extend(_local_input(p) for p in resolve_files(pattern, base_dir))
    return found


def _local_input(path: Path) -> InputFile:
    @contextlib.contextmanager
    def opener() -> Iterator[Path]:
        yield path

    return InputFile(path.name, opener)


def _blob_inputs(
    where: BlobLocation, blob_client: Callable[[BlobLocation], Any], pattern: str
) -> list[InputFile]:
    from azure.core.exceptions import AzureError

    try:
        container = blob_client(where)
        names = sorted(
            b.name
            for b in container.list_blobs(name_starts_with=where.prefix or None)
            if not b.name.endswith("/")
        )
    except AzureError as exc:
        raise CollectorError(
            f"cannot list {pattern}: {_first_line(exc)}",
            scope=pattern,
            remedy="check the account, container, network access and the identity's role",
        ) from None
    if not names:
        raise CollectorError(f"no blob under {pattern}", scope=pattern, remedy="check the prefix")
    return [_blob_input(container, name) for name in names]


def _blob_input(container: Any, name: str) -> InputFile:
    @contextlib.contextmanager
    def opener() -> Iterator[Path]:
        from azure.core.exceptions import AzureError

        fd, temp = tempfile.mkstemp(prefix="evidence-blob-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as sink:
                try:
                    container.download_blob(name).readinto(sink)
                except AzureError as exc:
                    raise OSError(f"download failed: {_first_line(exc)}") from None
            yield Path(temp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    return InputFile(name, opener)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
