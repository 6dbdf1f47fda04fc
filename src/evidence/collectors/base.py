"""What every collector is: ``collect()`` yields records, ``observe()`` turns one into facts.

A collector never writes anything. It reports pages, scopes and errors to the
``CollectContext`` it is handed; ``services.collect.run_source`` hashes, stores
and records. A failure for one scope goes to ``ctx.fail_scope`` and the
collector carries on with the next; a failure of the whole run is raised. A
scope that must be all or nothing (an input file found malformed halfway) is
failed with ``ctx.discard_scope`` instead, which takes back what it yielded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from evidence.domain.observation import Observation


class CollectorOptions(BaseModel):
    """Base for a collector's ``[[sources]]`` options; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class ScopeResult:
    scope: str
    ok: bool
    records: int = 0
    code: str = ""
    message: str = ""


def _ignore(scope: str) -> None:
    return None


@dataclass
class CollectContext:
    """The run's notebook: the collector writes what it did, the service reads it."""

    source: str
    base_dir: Path
    pseudonymize: Callable[[str], str]
    pages: int = 0
    retries: int = 0
    query: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    scopes: dict[str, ScopeResult] = field(default_factory=dict)
    # Input files by content: the SHA-256 (hex) of every file earlier runs of this
    # source took in (file collectors skip those), and the files this run takes in
    # (recorded by the service when the run's observations are applied).
    ingested: frozenset[str] = frozenset()
    taken_files: list[dict[str, str]] = field(default_factory=list)
    # Set by the service, which holds what the records became: ``scope_started``
    # marks where a scope's records begin, ``scope_discarded`` takes them back.
    scope_started: Callable[[str], None] = _ignore
    scope_discarded: Callable[[str], None] = _ignore
    _current: str | None = field(default=None, init=False, repr=False)

    def take_file(self, name: str, sha256: str) -> None:
        self.taken_files.append({"name": name, "sha256": sha256})

    def page(self, count: int = 1) -> None:
        self.pages += count

    def start_scope(self, scope: str) -> None:
        self.scopes.setdefault(scope, ScopeResult(scope=scope, ok=True))
        self._current = scope
        self.scope_started(scope)

    def fail_scope(self, scope: str, message: str, *, code: str = "") -> None:
        result = self.scopes.setdefault(scope, ScopeResult(scope=scope, ok=False))
        result.ok = False
        result.code = code
        result.message = message

    def discard_scope(self, scope: str, message: str, *, code: str = "") -> None:
        """Fail ``scope`` and take back every record it yielded: it contributes nothing.

        Only the scope started last can be discarded (its records are the newest)."""
        if scope != self._current:
            raise ValueError(f"only the scope being collected can be discarded, not {scope!r}")
        self.scope_discarded(scope)
        self.fail_scope(scope, message, code=code)

    def failed_scopes(self) -> list[ScopeResult]:
        return [s for s in self.scopes.values() if not s.ok]

    def ok_scopes(self) -> list[str]:
        return [s.scope for s in self.scopes.values() if s.ok]


@dataclass(frozen=True)
class CollectorEnv:
    """What the composition root hands a collector besides its options."""

    base_dir: Path
    azure: Any = None  # evidence.config.AzureSettings, kept loose to avoid an import cycle
    credential_factory: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Collector(ABC):
    """Base class. Subclasses set ``kind``, ``version``, ``options_model`` and
    ``observation_kinds``."""

    kind: ClassVar[str]
    version: ClassVar[str] = "1"
    options_model: ClassVar[type[CollectorOptions]] = CollectorOptions
    observation_kinds: ClassVar[tuple[str, ...]] = ()
    # Keys whose string values name a person (displayName of a user, say): the
    # service replaces them with pseudonyms before anything is stored. E-mail
    # addresses and UPNs anywhere in a record are replaced whatever this says.
    personal_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: CollectorOptions, env: CollectorEnv) -> None:
        self.options = options
        self.env = env

    @abstractmethod
    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        """Yield raw records (JSON-like values), page by page, as they arrive."""

    @abstractmethod
    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        """The observations one record supports (``index``: its line in the artifact)."""

    def describe_query(self) -> dict[str, Any]:
        """What was asked, for the envelope (filters, scope, API versions)."""
        return self.options.model_dump(mode="json")
