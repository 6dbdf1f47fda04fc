"""The composition of adapters one process works with, built from settings once.

Entry points call ``open_runtime(settings)``; services receive the ``Runtime``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Engine

from evidence.config import Settings
from evidence.db.session import make_engine, require_current
from evidence.errors import ConfigError
from evidence.services import keys
from evidence.store.base import EvidenceStore
from evidence.store.filesystem import FilesystemStore


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: EvidenceStore
    state_dir: Path
    signing_key: Ed25519PrivateKey | None
    trusted: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    pseudonym_key: bytes = b""

    @property
    def outbox(self) -> Path:
        return self.state_dir / "outbox"

    WITNESS_NAME = "witness-checkpoint.json"

    @property
    def witness_path(self) -> Path:
        """The newest verified checkpoint, kept outside the database."""
        return self.state_dir / self.WITNESS_NAME

    def close(self) -> None:
        self.engine.dispose()


def build_store(settings: Settings) -> EvidenceStore:
    return FilesystemStore(settings.resolve(settings.store.path))


def open_runtime(
    settings: Settings,
    *,
    store: EvidenceStore | None = None,
    require_key: bool = True,
    check_schema: bool = True,
) -> Runtime:
    engine = make_engine(settings.database_url())
    if check_schema:
        require_current(engine)
    signing_key: Ed25519PrivateKey | None = None
    key_path = settings.resolve(settings.signing.key_path)
    if require_key or key_path.exists():
        signing_key = keys.load_private_key(key_path)
    extra = [keys.load_public_key(settings.resolve(p)) for p in settings.signing.trusted_keys]
    own = signing_key.public_key() if signing_key else None
    return Runtime(
        settings=settings,
        engine=engine,
        store=store if store is not None else build_store(settings),
        state_dir=settings.resolve(settings.state.path),
        signing_key=signing_key,
        trusted=keys.trusted_keys(own, extra),
        pseudonym_key=load_pseudonym_key(settings.resolve(settings.privacy.pseudonym_key_path)),
    )


def create_pseudonym_key(path: Path) -> bool:
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def load_pseudonym_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"pseudonym key {path} not found", remedy="run 'evidence init' to create one"
        ) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"pseudonym key {path} is not hex") from None
    if len(key) < 16:
        raise ConfigError(f"pseudonym key {path} is shorter than 16 bytes")
    return key
