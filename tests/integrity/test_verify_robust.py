"""Verify on a large clean store, and on garbage: it never crashes, it fails closed."""

from __future__ import annotations

import json
import random

import pytest
import sqlalchemy as sa

from evidence.db import tables as t
from evidence.domain.ledger import entry_key

GARBAGE = [
    b"",
    b"\x00\xff\xfe garbage",
    b"null",
    b"[]",
    b"{}",
    b'"text"',
    b"12345678901234567890123456789",
    b'{"schema":"evidence.ledger-entry/1","seq":"x","envelope":1,"prev":[],"recorded_at":{}}',
    b'{"checkpoint":{"schema":"evidence.checkpoint/1","tree_size":-1,"root":null,'
    b'"signed_at":1,"prev":5,"key_id":[]},"signature":"!!"}',
    b'{"schema":"evidence.envelope/1","content_sha256":"sha256:zz","record_count":"many"}',
    b"\n\n\n",
    json.dumps({"a": 1}, indent=4).encode(),
]


def test_clean_store_of_10000_records_over_100_runs(spine):
    for _ in range(100):
        spine.collect(1, records=100)
    code, report = spine.verify()
    assert report["problems"] == []
    assert code == 0
    assert report["checked"]["entries"] == 100
    assert report["checked"]["contents"] == 100
    assert report["checked"]["records"] == 10_000
    assert report["checked"]["checkpoints"] == 100


@pytest.fixture
def two_runs(spine):
    spine.collect(2)
    return spine


def test_garbage_in_any_file_fails_closed(two_runs):
    """Every file replaced by each kind of garbage: a problem (exit 1), never a traceback."""
    rng = random.Random(7)
    for key in two_runs.store_keys():
        original = two_runs.path(key).read_bytes()
        for junk in [*GARBAGE, rng.randbytes(64)]:
            two_runs.rewrite(key, junk)
            code, report = two_runs.verify()
            assert code == 1, (key, junk, report)
            assert report["problems"], (key, junk)
        two_runs.rewrite(key, original)
    assert two_runs.verify()[0] == 0


def test_garbage_files_with_foreign_names_are_unrecorded(two_runs):
    for key in ("ledger/entries/notanumber.json", "ledger/checkpoints/1.json", "other/thing"):
        path = two_runs.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"junk")
    code, report = two_runs.verify()
    assert code == 1
    assert sorted((p["kind"], p["item"]) for p in report["problems"]) == [
        ("unrecorded", "ledger/checkpoints/1.json"),
        ("unrecorded", "ledger/entries/notanumber.json"),
        ("unrecorded", "other/thing"),
    ]


@pytest.mark.parametrize("junk", GARBAGE[:6])
def test_garbage_witness_is_reported(two_runs, junk):
    (two_runs.ws.state_dir / "witness-checkpoint.json").write_bytes(junk)
    code, report = two_runs.verify()
    assert code == 1
    assert [p["item"] for p in report["problems"]] == ["witness-checkpoint.json"]


def test_garbage_in_the_database_is_index_mismatch(two_runs):
    two_runs.sql(t.artifacts.update().values(content_sha256="not a digest"))
    first = t.ledger_entries.update().where(t.ledger_entries.c.seq == 0)
    two_runs.sql(first.values(entry_sha256="x"))
    code, report = two_runs.verify()
    assert code == 1
    kinds = {p["kind"] for p in report["problems"]}
    assert kinds == {"index-mismatch"}
    assert entry_key(0) in {p["item"] for p in report["problems"]}


def test_unreadable_index_table_is_incomplete(two_runs):
    """A table gone from the database: verification cannot complete (exit 3), no traceback.
    (Renamed, not dropped, and put back: the PostgreSQL database is shared by the session.)"""
    two_runs.sql(sa.text("ALTER TABLE checkpoints RENAME TO checkpoints_gone"))
    try:
        result = two_runs.ws.cli("verify", "--json")
    finally:
        two_runs.sql(sa.text("ALTER TABLE checkpoints_gone RENAME TO checkpoints"))
    assert result.code == 3
    assert "Traceback" not in result.err
    report = result.json()
    assert report["ok"] is False
    assert "cannot read the store or the database" in report["incomplete"]
