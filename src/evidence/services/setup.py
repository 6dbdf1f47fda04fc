"""``init``, ``db upgrade`` and ``doctor``: getting a deployment ready and checking it."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import orjson

from evidence.config import Settings
from evidence.db.session import current_revision, head_revision, make_engine, upgrade
from evidence.domain import canonical, merkle
from evidence.domain.ledger import SignedCheckpoint
from evidence.errors import EvidenceError
from evidence.services import keys
from evidence.services.runtime import build_store, create_pseudonym_key, load_pseudonym_key

STARTER_CONFIG = """\
# evidence configuration. Every option is documented in config.example.toml.
# Relative paths are relative to this file.

[database]
url = "sqlite:///var/evidence.db"

[store]
kind = "filesystem"
path = "var/store"

[signing]
kind = "file"
key_path = "var/signing-key.pem"

[state]
path = "var/state"

[privacy]
pseudonym_key_path = "var/pseudonym.key"

# [[sources]]
# name = "manual-evidence"
# kind = "import.json"
# path = "evidence/*.json"
# schedule = "every 24h"
"""


@dataclass
class InitResult:
    config: Path
    config_written: bool
    key: Path
    key_written: bool
    pseudonym_key: Path
    pseudonym_key_written: bool


def init(directory: Path, *, config_text: str = STARTER_CONFIG) -> InitResult:
    """Write a starter config and keys into ``directory``; never overwrite any of them."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "var").mkdir(exist_ok=True)
    config = directory / "config.toml"
    config_written = False
    if not config.exists():
        config.write_text(config_text, encoding="utf-8")
        config_written = True
    key = directory / "var" / "signing-key.pem"
    pkey = directory / "var" / "pseudonym.key"
    return InitResult(
        config=config,
        config_written=config_written,
        key=key,
        key_written=keys.create_key(key),
        pseudonym_key=pkey,
        pseudonym_key_written=create_pseudonym_key(pkey),
    )


def db_upgrade(settings: Settings) -> tuple[str | None, str]:
    url = settings.database_url()
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _loose_mode(path: Path) -> str:
    """'' when only the owner may read ``path``; else its mode, e.g. 'mode 0644'."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return f"mode {mode:04o}" if mode & 0o077 else ""


def _check_state(settings: Settings) -> Check:
    """The state folder (outbox, locks, witness) must be writable; the witness readable."""
    from evidence.services.runtime import Runtime

    state = settings.resolve(settings.state.path)
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Check("state", False, f"cannot create {state}: {exc.strerror or exc}")
    if not os.access(state, os.W_OK):
        return Check("state", False, f"{state} is not writable")
    witness = state / Runtime.WITNESS_NAME
    if not witness.exists():
        return Check("state", True, f"{state}: writable; no witness checkpoint yet")
    try:
        SignedCheckpoint.from_json(orjson.loads(witness.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Check(
            "state", False, f"{witness} is unreadable: run 'evidence verify' and investigate"
        )
    return Check("state", True, f"{state}: writable; witness checkpoint present")


def _check_native() -> Check:
    """Which native modules run; their pure-Python twins are correct, only slower."""
    modules = {"Merkle leaf hashing": merkle.NATIVE, "canonical walk": canonical.NATIVE}
    python = [name for name, native in modules.items() if not native]
    if not python:
        return Check("native", True, "C modules for " + " and ".join(modules))
    why = (
        "EVIDENCE_PURE_PYTHON is set"
        if os.environ.get("EVIDENCE_PURE_PYTHON")
        else "not built at install: no C compiler or no OpenSSL headers"
    )
    return Check("native", True, f"pure Python for {' and '.join(python)} ({why}; slower)")


def doctor(settings: Settings) -> list[Check]:
    """One check per part; each says what it found or what is wrong."""
    checks = [Check("config", True, f"{settings.config_path} is valid")]
    try:
        engine = make_engine(settings.database_url())
        try:
            current, head = current_revision(engine), head_revision()
        finally:
            engine.dispose()
        if current == head:
            checks.append(Check("database", True, f"schema at revision {head}"))
        else:
            checks.append(
                Check(
                    "database",
                    False,
                    f"schema at {current or 'nothing'}, needs {head}: run 'evidence db upgrade'",
                )
            )
    except EvidenceError as exc:
        checks.append(Check("database", False, str(exc)))
    try:
        store = build_store(settings)
        detail = store.check_writable()
        worm = store.is_worm()
        checks.append(Check("store", True, detail))
        if worm is not None:
            checks.append(
                Check(
                    "store-worm",
                    True,
                    "immutability enforced by the store" if worm else "not WORM (filesystem)",
                )
            )
    except (EvidenceError, OSError) as exc:
        checks.append(Check("store", False, str(exc)))
    key_path = settings.resolve(settings.signing.key_path)
    try:
        key = keys.load_private_key(key_path)
        from evidence.domain.ledger import key_id

        loose = _loose_mode(key_path)
        if loose:
            checks.append(Check("signing-key", False, f"{key_path} is {loose}: chmod 600 it"))
        else:
            checks.append(Check("signing-key", True, f"Ed25519 key {key_id(key.public_key())}"))
    except EvidenceError as exc:
        checks.append(Check("signing-key", False, str(exc)))
    checks.append(_check_state(settings))
    try:
        load_pseudonym_key(settings.resolve(settings.privacy.pseudonym_key_path))
        checks.append(Check("pseudonym-key", True, "present"))
    except EvidenceError as exc:
        checks.append(Check("pseudonym-key", False, str(exc)))
    checks.append(_check_native())
    from evidence.collectors.base import CollectorEnv
    from evidence.services.collect import build_collector

    env = CollectorEnv(base_dir=settings.base_dir, azure=settings.azure)
    for source in settings.sources:
        try:
            build_collector(source, env, str(settings.config_path))
            checks.append(Check(f"source {source.name}", True, f"kind {source.kind}"))
        except EvidenceError as exc:
            checks.append(Check(f"source {source.name}", False, str(exc)))
    return checks
