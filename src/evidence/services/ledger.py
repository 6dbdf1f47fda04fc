"""Appending to the ledger and signing checkpoints; the store copy is what proves.

``append(rt, envelope)`` writes the next entry and a new signed checkpoint to
the store, then indexes both in the database, under the ledger lock. Entries
or checkpoints that reached the store but not the database (a crash between
the two) are adopted first, so the index catches up with the store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from evidence.db import tables as t
from evidence.domain.canonical import utc_text
from evidence.domain.digest import Digest
from evidence.domain.ledger import (
    Checkpoint,
    Entry,
    SignedCheckpoint,
    checkpoint_key,
    entry_key,
    key_id,
)
from evidence.domain.merkle import MerkleBuilder
from evidence.errors import SigningError, StoreError
from evidence.services._locks import file_lock
from evidence.services.runtime import Runtime

log = logging.getLogger(__name__)


def leaf_data(entry_digest: Digest) -> bytes:
    """The ledger tree's leaf for an entry is the raw SHA-256 of its canonical bytes."""
    return entry_digest.raw


def append(rt: Runtime, envelope: Digest, *, now: datetime | None = None) -> SignedCheckpoint:
    """Record ``envelope`` in the ledger (once) and sign a checkpoint covering it."""
    if rt.signing_key is None:
        raise SigningError("no signing key is configured")
    with file_lock(rt.state_dir / "ledger.lock", wait=True, what="a ledger append"):
        with rt.engine.begin() as conn:
            _adopt_from_store(rt, conn)
            existing = conn.execute(
                sa.select(t.ledger_entries.c.seq).where(
                    t.ledger_entries.c.envelope_sha256 == str(envelope)
                )
            ).first()
            if existing is None:
                _append_entry(rt, conn, envelope, now or datetime.now(UTC))
            checkpoint = _checkpoint_if_needed(rt, conn, now or datetime.now(UTC))
        write_witness(rt, checkpoint)
        return checkpoint


def _head(conn: Connection) -> tuple[int, str | None]:
    row = conn.execute(
        sa.select(t.ledger_entries.c.seq, t.ledger_entries.c.entry_sha256)
        .order_by(t.ledger_entries.c.seq.desc())
        .limit(1)
    ).first()
    return (-1, None) if row is None else (int(row.seq), str(row.entry_sha256))


def _adopt_from_store(rt: Runtime, conn: Connection) -> None:
    """Index entries and checkpoints that a crash left in the store only."""
    seq, prev = _head(conn)
    while rt.store.exists(entry_key(seq + 1)):
        raw = rt.store.get(entry_key(seq + 1))
        try:
            entry: Entry | None = Entry.from_json(orjson.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
            entry = None
        if entry is None or entry.seq != seq + 1 or entry.prev != prev or entry.canonical() != raw:
            raise StoreError(
                f"{entry_key(seq + 1)} does not extend the ledger head",
                remedy="run 'evidence verify' and investigate before collecting again",
            )
        _index_entry(conn, entry)
        seq, prev = entry.seq, str(entry.digest())
    newest = conn.execute(sa.select(sa.func.max(t.checkpoints.c.tree_size))).scalar()
    size = seq + 1
    if size > 0 and (newest or 0) < size and rt.store.exists(checkpoint_key(size)):
        _index_checkpoint(conn, _adoptable_checkpoint(rt, conn, size))


def _adoptable_checkpoint(rt: Runtime, conn: Connection, size: int) -> SignedCheckpoint:
    """The store's checkpoint of ``size``, if it is ours and signs the indexed entries."""
    key = checkpoint_key(size)
    raw = rt.store.get(key)
    try:
        signed = SignedCheckpoint.from_json(orjson.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
        signed = None
    public = None if signed is None else rt.trusted.get(signed.checkpoint.key_id)
    if (
        signed is None
        or public is None
        or signed.canonical() != raw
        or signed.checkpoint.tree_size != size
        or not signed.signature_valid(public)
        or signed.checkpoint.root != _indexed_root(conn)
    ):
        raise StoreError(
            f"{key} is not a valid checkpoint of the ledger head",
            remedy="run 'evidence verify' and investigate before collecting again",
        )
    return signed


def _indexed_root(conn: Connection) -> str:
    tree = MerkleBuilder()
    for (digest,) in conn.execute(
        sa.select(t.ledger_entries.c.entry_sha256).order_by(t.ledger_entries.c.seq)
    ):
        tree.add(leaf_data(Digest.parse(digest)))
    return str(Digest.from_bytes(tree.root()))


def _index_entry(conn: Connection, entry: Entry) -> None:
    conn.execute(
        t.ledger_entries.insert().values(
            seq=entry.seq,
            entry_sha256=str(entry.digest()),
            envelope_sha256=entry.envelope,
            prev_sha256=entry.prev,
            recorded_at=datetime.fromisoformat(entry.recorded_at.replace("Z", "+00:00")),
        )
    )


def _index_checkpoint(conn: Connection, signed: SignedCheckpoint) -> None:
    cp = signed.checkpoint
    conn.execute(
        t.checkpoints.insert().values(
            tree_size=cp.tree_size,
            checkpoint_sha256=str(signed.digest()),
            root=cp.root,
            signed_at=datetime.fromisoformat(cp.signed_at.replace("Z", "+00:00")),
            key_id=cp.key_id,
        )
    )


def _append_entry(rt: Runtime, conn: Connection, envelope: Digest, now: datetime) -> None:
    seq, prev = _head(conn)
    entry = Entry(seq=seq + 1, envelope=str(envelope), prev=prev, recorded_at=utc_text(now))
    rt.store.put(entry_key(entry.seq), entry.canonical())
    _index_entry(conn, entry)


def _checkpoint_if_needed(rt: Runtime, conn: Connection, now: datetime) -> SignedCheckpoint:
    assert rt.signing_key is not None
    size = int(conn.execute(sa.select(sa.func.count()).select_from(t.ledger_entries)).scalar_one())
    newest = conn.execute(
        sa.select(t.checkpoints.c.tree_size, t.checkpoints.c.checkpoint_sha256)
        .order_by(t.checkpoints.c.tree_size.desc())
        .limit(1)
    ).first()
    if newest is not None and int(newest.tree_size) == size:
        return SignedCheckpoint.from_json(orjson.loads(rt.store.get(checkpoint_key(size))))
    checkpoint = Checkpoint(
        tree_size=size,
        root=_indexed_root(conn),
        signed_at=utc_text(now),
        prev=None if newest is None else str(newest.checkpoint_sha256),
        key_id=key_id(rt.signing_key.public_key()),
    )
    signed = SignedCheckpoint.sign(checkpoint, rt.signing_key)
    rt.store.put(checkpoint_key(size), signed.canonical())
    _index_checkpoint(conn, signed)
    return signed


def write_witness(rt: Runtime, signed: SignedCheckpoint) -> None:
    """Keep the newest checkpoint outside the database, replacing it atomically,
    but never with an older one (callers hold the ledger lock, so the comparison and
    the replacement are one step). An unreadable witness is kept aside (renamed with
    its time), never silently lost, and replaced."""
    try:
        current = read_witness(rt)
    except StoreError:
        current = None
        aside = rt.witness_path.with_suffix(f".unreadable-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
        os.replace(rt.witness_path, aside)
        log.warning("witness %s was unreadable; kept as %s", rt.witness_path, aside.name)
    if current is not None and current.checkpoint.tree_size > signed.checkpoint.tree_size:
        return
    rt.state_dir.mkdir(parents=True, exist_ok=True)
    # A temporary name of its own: two writers never move each other's file.
    fd, tmp = tempfile.mkstemp(prefix=".witness-", dir=rt.state_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(signed.canonical())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, rt.witness_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_witness(rt: Runtime) -> SignedCheckpoint | None:
    try:
        return SignedCheckpoint.from_json(orjson.loads(rt.witness_path.read_bytes()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise StoreError(f"witness checkpoint {rt.witness_path} is unreadable") from None
