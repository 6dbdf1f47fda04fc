"""One exception root for everything the project raises on purpose.

Each subclass carries a stable ``code``, the exit code the command line uses,
and a ``remedy`` a person can act on. The CLI and the API turn these into an
exit code or a problem document; nobody shows a user a traceback.
"""

from __future__ import annotations


class EvidenceError(Exception):
    """Root of every deliberate error. ``str(err)`` is the full human message."""

    code: str = "error"
    exit_code: int = 2
    remedy: str = ""

    def __init__(
        self, message: str, *, remedy: str | None = None, where: str | None = None
    ) -> None:
        self.message = message
        self.where = where
        if remedy is not None:
            self.remedy = remedy
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.remedy:
            text += f" ({self.remedy})"
        return text


class ConfigError(EvidenceError):
    """The configuration file is missing, malformed or has a bad value."""

    code = "config-invalid"
    exit_code = 2


class UsageError(EvidenceError):
    """The command was called with arguments that do not fit."""

    code = "usage"
    exit_code = 2


class CanonicalizationError(EvidenceError):
    """A value cannot be represented in RFC 8785 canonical JSON."""

    code = "not-canonicalizable"
    exit_code = 2


class InputError(EvidenceError):
    """An input file or payload is unreadable or malformed."""

    code = "input-invalid"
    exit_code = 2


class StoreError(EvidenceError):
    """The evidence store refused or failed an operation."""

    code = "store-failed"
    exit_code = 3


class WriteOnceViolation(StoreError):
    """A put tried to replace an existing key with different bytes."""

    code = "write-once-violation"
    exit_code = 1


class StoreUnavailable(StoreError):
    """The store cannot be reached now; work waits in the outbox."""

    code = "store-unavailable"
    exit_code = 3


class NotFound(StoreError):
    """A key is not in the store."""

    code = "not-found"
    exit_code = 3


class DatabaseError(EvidenceError):
    """The database is unreachable or its schema is not current."""

    code = "database"
    exit_code = 2


class SigningError(EvidenceError):
    """The signing key is missing, unreadable or of the wrong kind."""

    code = "signing-key"
    exit_code = 2


class CollectorError(EvidenceError):
    """A collector failed for one scope; the run records it and goes on."""

    code = "collector-failed"
    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        scope: str = "",
        service_code: str = "",
        remedy: str | None = None,
    ) -> None:
        self.scope = scope
        self.service_code = service_code
        super().__init__(message, remedy=remedy, where=scope or None)


class CatalogError(EvidenceError):
    """A framework catalog or check definition failed validation."""

    code = "catalog-invalid"
    exit_code = 2

