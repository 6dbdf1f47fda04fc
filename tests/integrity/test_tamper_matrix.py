"""The tamper matrix: each kind of tampering, injected into a real workspace the way
an attacker with write access to the store files and the database would, is
reported as exactly one problem of exactly that kind, for the item touched.

Every scenario starts from three collected runs: ledger entries 0..2, signed
checkpoints of sizes 1..3, three envelopes and three distinct contents, and a
witness checkpoint of size 3 in the state folder.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence.db import tables as t
from evidence.domain.artifact import ArtifactWriter, Envelope
from evidence.domain.canonical import canonicalize
from evidence.domain.digest import Digest
from evidence.domain.ledger import (
    Checkpoint,
    Entry,
    SignedCheckpoint,
    checkpoint_key,
    content_key,
    entry_key,
    envelope_key,
    key_id,
)
from evidence.domain.merkle import leaf_hash, root_of
from evidence.services import ledger


@pytest.fixture
def three_runs(spine):
    results = spine.collect(3)
    code, report = spine.verify()
    assert (code, report["problems"]) == (0, [])
    spine.envelopes = [Digest.parse(r["envelope"]) for r in results]
    spine.contents = [
        Digest.parse(Envelope.from_json(orjson.loads(spine.path(envelope_key(e)).read_bytes())).content_sha256)
        for e in spine.envelopes
    ]
    return spine


def assert_only(spine, kind: str, item: str) -> dict:
    code, report = spine.verify()
    found = [(p["kind"], p["item"]) for p in report["problems"]]
    assert found == [(kind, item)], json.dumps(report, indent=1)
    assert code == 1
    assert report["ok"] is False
    return report


def _entry(spine, seq: int) -> Entry:
    return Entry.from_json(orjson.loads(spine.path(entry_key(seq)).read_bytes()))


def _checkpoint(spine, size: int) -> SignedCheckpoint:
    return SignedCheckpoint.from_json(orjson.loads(spine.path(checkpoint_key(size)).read_bytes()))


# ---- modified / missing / unrecorded --------------------------------------------------
def test_flipped_byte_in_content_is_modified(three_runs):
    key = content_key(three_runs.contents[1])
    data = three_runs.path(key).read_bytes()
    at = data.index(b"run1-r3") + 3  # a letter inside a string: still canonical JSON
    three_runs.flip_byte(key, at)
    assert_only(three_runs, "modified", key)


def test_flipped_byte_in_envelope_is_modified(three_runs):
    key = envelope_key(three_runs.envelopes[2])
    data = three_runs.path(key).read_bytes()
    at = data.index(b'"manual"') + 2
    three_runs.flip_byte(key, at)
    assert_only(three_runs, "modified", key)


@pytest.mark.parametrize("which", ["content", "envelope"])
def test_deleted_blob_is_missing(three_runs, which):
    key = (
        content_key(three_runs.contents[1])
        if which == "content"
        else envelope_key(three_runs.envelopes[1])
    )
    three_runs.path(key).unlink()
    assert_only(three_runs, "missing", key)


def test_deleted_middle_entry_is_missing(three_runs):
    three_runs.path(entry_key(1)).unlink()
    assert_only(three_runs, "missing", entry_key(1))


def test_stray_blob_is_unrecorded(three_runs):
    stray = b'{"forged":true}\n'
    key = content_key(Digest.of(stray))
    path = three_runs.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stray)
    assert_only(three_runs, "unrecorded", key)


# ---- index-mismatch ---------------------------------------------------------------------
def test_deleted_entry_row_is_index_mismatch(three_runs):
    three_runs.sql(t.ledger_entries.delete().where(t.ledger_entries.c.seq == 1))
    assert_only(three_runs, "index-mismatch", entry_key(1))


def test_deleted_artifact_row_is_index_mismatch(three_runs):
    env = str(three_runs.envelopes[0])
    three_runs.sql(t.artifacts.delete().where(t.artifacts.c.envelope_sha256 == env))
    assert_only(three_runs, "index-mismatch", envelope_key(three_runs.envelopes[0]))


def test_deleted_checkpoint_row_is_index_mismatch(three_runs):
    three_runs.sql(t.checkpoints.delete().where(t.checkpoints.c.tree_size == 2))
    assert_only(three_runs, "index-mismatch", checkpoint_key(2))


def test_changed_entry_digest_in_index_is_index_mismatch(three_runs):
    three_runs.sql(
        t.ledger_entries.update()
        .where(t.ledger_entries.c.seq == 2)
        .values(entry_sha256=str(Digest.of(b"forged")))
    )
    assert_only(three_runs, "index-mismatch", entry_key(2))


# ---- inconsistent / chain-broken ------------------------------------------------------
def test_history_rewritten_consistently_is_inconsistent(three_runs):
    """Entry 1 is rewritten (its time moved), entry 2 re-linked to it, the database index
    updated to match, and the roots recomputed into the index: every link holds, but
    the signed roots do not. Without the key the attacker cannot sign new checkpoints
    (one with a recomputed root and the old signature is signature-invalid, below)."""
    old1, old2 = _entry(three_runs, 1), _entry(three_runs, 2)
    new1 = Entry(old1.seq, old1.envelope, old1.prev, "2020-01-01T00:00:00Z")
    new2 = Entry(old2.seq, old2.envelope, str(new1.digest()), old2.recorded_at)
    three_runs.rewrite(entry_key(1), new1.canonical())
    three_runs.rewrite(entry_key(2), new2.canonical())
    three_runs.sql(
        t.ledger_entries.update()
        .where(t.ledger_entries.c.seq == 1)
        .values(entry_sha256=str(new1.digest()))
    )
    three_runs.sql(
        t.ledger_entries.update()
        .where(t.ledger_entries.c.seq == 2)
        .values(entry_sha256=str(new2.digest()), prev_sha256=str(new1.digest()))
    )
    digests = [_entry(three_runs, 0).digest(), new1.digest(), new2.digest()]
    for size in (2, 3):
        root = Digest.from_bytes(root_of([leaf_hash(d.raw) for d in digests[:size]]))
        three_runs.sql(
            t.checkpoints.update().where(t.checkpoints.c.tree_size == size).values(root=str(root))
        )
    report = assert_only(three_runs, "inconsistent", checkpoint_key(2))
    assert "1 later" in report["problems"][0]["detail"]


def test_broken_link_is_chain_broken(three_runs):
    old = _entry(three_runs, 2)
    forged = Entry(old.seq, old.envelope, str(Digest.of(b"elsewhere")), old.recorded_at)
    three_runs.rewrite(entry_key(2), forged.canonical())
    assert_only(three_runs, "chain-broken", entry_key(2))


def test_entry_pointed_elsewhere_is_chain_broken_at_that_entry(three_runs):
    old = _entry(three_runs, 1)
    forged = Entry(old.seq, str(three_runs.envelopes[0]), old.prev, old.recorded_at)
    three_runs.rewrite(entry_key(1), forged.canonical())
    report = assert_only(three_runs, "chain-broken", entry_key(1))
    assert report["problems"][0]["detail"]


# ---- checkpoints --------------------------------------------------------------------------
def test_deleted_middle_checkpoint_is_missing(three_runs):
    three_runs.path(checkpoint_key(2)).unlink()
    assert_only(three_runs, "missing", checkpoint_key(2))


@pytest.mark.parametrize("with_witness", [True, False])
def test_deleted_newest_checkpoints_are_stale(three_runs, with_witness):
    three_runs.path(checkpoint_key(3)).unlink()
    three_runs.path(checkpoint_key(2)).unlink()
    if not with_witness:  # the database index alone still knows newer checkpoints
        (three_runs.ws.state_dir / "witness-checkpoint.json").unlink()
    assert_only(three_runs, "stale-checkpoint", checkpoint_key(3))


def test_checkpoint_signed_with_unknown_key(three_runs):
    old = _checkpoint(three_runs, 3).checkpoint
    intruder = Ed25519PrivateKey.generate()
    intruder_id = key_id(intruder.public_key())
    body = Checkpoint(old.tree_size, old.root, old.signed_at, old.prev, intruder_id)
    three_runs.rewrite(checkpoint_key(3), SignedCheckpoint.sign(body, intruder).canonical())
    report = assert_only(three_runs, "key-unknown", checkpoint_key(3))
    assert key_id(intruder.public_key()) in report["problems"][0]["detail"]


def test_bad_signature_is_signature_invalid(three_runs):
    signed = _checkpoint(three_runs, 2)
    signature = bytearray(signed.signature)
    signature[5] ^= 0x01
    forged = SignedCheckpoint(signed.checkpoint, bytes(signature))
    three_runs.rewrite(checkpoint_key(2), forged.canonical())
    assert_only(three_runs, "signature-invalid", checkpoint_key(2))


def test_root_changed_without_the_key_is_signature_invalid(three_runs):
    """Recomputing a root and keeping the old signature does not verify."""
    signed = _checkpoint(three_runs, 3)
    cp = signed.checkpoint
    body = Checkpoint(cp.tree_size, str(Digest.of(b"other root")), cp.signed_at, cp.prev, cp.key_id)
    three_runs.rewrite(checkpoint_key(3), SignedCheckpoint(body, signed.signature).canonical())
    assert_only(three_runs, "signature-invalid", checkpoint_key(3))


# ---- rollback ---------------------------------------------------------------------------------
def test_restored_older_snapshot_is_rollback(spine, tmp_path):
    spine.collect(2)
    saved_store = tmp_path / "saved-store"
    shutil.copytree(spine.store, saved_store, symlinks=True)
    saved_db = spine.snapshot_database()
    spine.collect(1)  # the witness now knows a checkpoint of size 3
    shutil.rmtree(spine.store)
    shutil.copytree(saved_store, spine.store, symlinks=True)
    spine.restore_database(saved_db)
    assert_only(spine, "rollback", "ledger")


def test_replayed_older_checkpoint_is_rollback(three_runs):
    """The newest checkpoint's file is replaced by an older, validly signed one."""
    older = three_runs.path(checkpoint_key(1)).read_bytes()
    three_runs.rewrite(checkpoint_key(3), older)
    report = assert_only(three_runs, "rollback", checkpoint_key(3))
    assert "size 1" in report["problems"][0]["detail"]


# ---- malformed ----------------------------------------------------------------------------------
def test_truncated_content_is_malformed(three_runs):
    key = content_key(three_runs.contents[0])
    data = three_runs.path(key).read_bytes()
    three_runs.rewrite(key, data[: len(data) - 7])
    assert_only(three_runs, "malformed", key)


def test_non_canonical_envelope_is_malformed(three_runs):
    key = envelope_key(three_runs.envelopes[1])
    pretty = json.dumps(json.loads(three_runs.path(key).read_bytes()), indent=2).encode()
    three_runs.rewrite(key, pretty)
    assert_only(three_runs, "malformed", key)


def test_non_canonical_entry_is_malformed(three_runs):
    key = entry_key(1)
    spaced = json.dumps(json.loads(three_runs.path(key).read_bytes())).encode()
    three_runs.rewrite(key, spaced)
    assert_only(three_runs, "malformed", key)


def test_non_canonical_content_line_is_malformed(three_runs):
    key = content_key(three_runs.contents[2])
    lines = three_runs.path(key).read_bytes().split(b"\n")
    lines[1] = json.dumps(json.loads(lines[1]), indent=1).replace("\n", "").encode()
    three_runs.rewrite(key, b"\n".join(lines))
    assert_only(three_runs, "malformed", key)


# ---- not-included ------------------------------------------------------------------------------
def test_entry_appended_without_checkpoint_is_not_included(three_runs):
    """A complete artifact and a well-linked entry, indexed too, but never checkpointed."""
    ws = three_runs.ws
    rt = ws.runtime()
    spool = ws.root / "forged.jsonl"
    with spool.open("wb") as sink:
        writer = ArtifactWriter(sink)
        writer.add({"file": "in.jsonl", "line": 1, "data": {"id": "forged"}})
        writer.flush()
    now = datetime.now(UTC)
    envelope = Envelope(
        source="manual", collector="import.json", collector_version="1.0", run_id="f" * 32,
        started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z",
        status="complete", record_count=1, page_count=1,
        content_sha256=str(writer.content_digest()), merkle_root=str(writer.merkle_root()),
        content_bytes=writer.bytes_written,
    )
    digest = envelope.digest()
    rt.store.put_file(content_key(writer.content_digest()), spool)
    rt.store.put(envelope_key(digest), envelope.canonical())
    with rt.engine.begin() as conn:
        conn.execute(
            t.artifacts.insert().values(
                envelope_sha256=str(digest), content_sha256=envelope.content_sha256,
                merkle_root=envelope.merkle_root, record_count=1,
                content_bytes=envelope.content_bytes, source="manual", run_id="f" * 32,
                state="stored", created_at=now, stored_at=now,
            )
        )
        ledger._append_entry(rt, conn, digest, now)
    assert_only(three_runs, "not-included", entry_key(3))


# ---- nothing to check, clean --------------------------------------------------------------------
def test_nothing_to_check_exits_3(spine):
    code, report = spine.verify()
    assert code == 3
    assert report["ok"] is False
    assert report["problems"] == []


def test_every_single_flipped_byte_is_caught(three_runs):
    """Flip one byte in each file of the store, one at a time, and restore after."""
    keys = three_runs.store_keys()
    assert len(keys) == 3 + 3 + 3 + 3  # entries, checkpoints, envelopes, contents
    missed = []
    for key in keys:
        for position in (0, None, -2):
            size = three_runs.path(key).stat().st_size
            at = {0: 0, None: size // 2, -2: size - 2}[position]
            original = three_runs.flip_byte(key, at)
            code, report = three_runs.verify()
            if code != 1 or not report["problems"]:
                missed.append((key, at, code))
            three_runs.rewrite(key, original)
    assert missed == []
    code, _ = three_runs.verify()
    assert code == 0


def test_flipped_byte_in_witness_is_reported(three_runs):
    witness = three_runs.ws.state_dir / "witness-checkpoint.json"
    data = bytearray(witness.read_bytes())
    data[len(data) // 2] ^= 0x01
    witness.write_bytes(bytes(data))
    code, report = three_runs.verify()
    assert code == 1
    assert [p["item"] for p in report["problems"]] == ["witness-checkpoint.json"]


def test_signature_base64_is_checked_strictly(three_runs):
    key = checkpoint_key(1)
    doc = json.loads(three_runs.path(key).read_bytes())
    doc["signature"] = base64.b64encode(b"\x00" * 64).decode()
    three_runs.rewrite(key, canonicalize(doc))
    assert_only(three_runs, "signature-invalid", key)


# ---- the pure-Python route ------------------------------------------------------------------
@pytest.fixture
def pure_python(monkeypatch):
    """Verify with the Python line tree (what runs where the native module is not built)."""
    from evidence.domain.merkle import PyLineTree
    from evidence.services import verify as verify_service

    monkeypatch.setattr(verify_service, "LineTree", PyLineTree)


@pytest.mark.parametrize("damage", ["none", "flip", "truncate", "pad", "join-lines"])
def test_pure_python_route_judges_contents_the_same(three_runs, pure_python, damage):
    key = content_key(three_runs.contents[1])
    data = three_runs.path(key).read_bytes()
    if damage == "none":
        code, report = three_runs.verify()
        assert (code, report["problems"]) == (0, [])
        assert report["checked"]["records"] == 15
        return
    changed = {
        "flip": lambda: data.replace(b"run1-r3", b"run1-r4"),
        "truncate": lambda: data[:-1],
        "pad": lambda: data + b"{}\n",
        "join-lines": lambda: data.replace(b"}\n{", b"},{", 1),
    }[damage]()
    three_runs.rewrite(key, changed)
    kind = "modified" if damage in {"flip", "pad"} else "malformed"
    assert_only(three_runs, kind, key)
