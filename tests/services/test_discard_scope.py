"""A scope discarded halfway contributes nothing: ``import.json`` parses each file
once and hands records on as it goes, so a file found malformed on its last line
must leave no trace in the artifact, its hashes, the observations or the
pseudonyms."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from evidence.collectors.base import CollectContext
from evidence.db import tables as t
from evidence.domain.artifact import ArtifactWriter, Envelope
from evidence.domain.digest import Digest
from evidence.domain.ledger import content_key, envelope_key
from evidence.services.collect import run_source


def _lines(records: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _stored(rt: Any, envelope: str) -> tuple[Envelope, bytes]:
    digest = Digest.parse(envelope)
    env = Envelope.from_json(orjson.loads(rt.store.get(envelope_key(digest))))
    return env, rt.store.get(content_key(Digest.parse(env.content_sha256)))


def _expected(records: list[tuple[str, int, Any]]) -> tuple[ArtifactWriter, bytes]:
    """A writer that was handed only ``records``, and what it wrote."""
    sink = io.BytesIO()
    writer = ArtifactWriter(sink)
    for name, line, data in records:
        writer.add({"file": name, "line": line, "data": data})
    writer.flush()
    return writer, sink.getvalue()


def test_a_file_invalid_on_its_last_line_contributes_nothing(workspace, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good_a = [{"id": "a1", "v": 1.0}, {"id": "a2", "v": 2}]
    good_c = [{"id": "c1", "v": [1e-7]}]
    (folder / "a.jsonl").write_text(_lines(good_a))
    bad = [{"id": "b1", "who": "someone@example.com"}, {"id": "b2"}]
    (folder / "b.jsonl").write_text(_lines(bad) + '{"id": "b3",\n')
    (folder / "c.jsonl").write_text(_lines(good_c))
    workspace.add_source(name="src", kind="import.json", path=str(folder / "*.jsonl"))
    rt = workspace.runtime()

    result = run_source(rt, workspace.settings().source("src"))

    assert (result.status, result.stored, result.records) == ("partial", True, 3)
    [error] = result.errors
    assert (error["scope"], error["code"]) == ("b.jsonl", "input-invalid")
    assert "line 3: not valid JSON" in error["message"]
    envelope, content = _stored(rt, result.envelope)
    expected, expected_content = _expected(
        [("a.jsonl", 1, good_a[0]), ("a.jsonl", 2, good_a[1]), ("c.jsonl", 1, good_c[0])]
    )
    assert content == expected_content
    assert envelope.content_sha256 == str(expected.content_digest())
    assert envelope.merkle_root == str(expected.merkle_root())
    assert envelope.content_bytes == len(content)
    assert [f["name"] for f in envelope.query["files"]] == ["a.jsonl", "c.jsonl"]
    # Files of less than a read chunk are hashed inline, not on the hashing thread.
    assert [f["sha256"] for f in envelope.query["files"]] == [
        hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("a.jsonl", "c.jsonl")
    ]
    assert {s["scope"]: s["records"] for s in envelope.scopes} == {
        "a.jsonl": 2,
        "b.jsonl": 0,
        "c.jsonl": 1,
    }
    with rt.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.observations.c.subject, t.observations.c.attributes)
        ).all()
        pseudonyms = conn.execute(sa.select(t.pseudonyms.c.identity)).scalars().all()
    # The attributes are read back from the content spool: the rewind left them in place.
    assert len(rows) == 3
    assert dict(rows) == {record["id"]: record for record in good_a + good_c}  # 1.0 == 1
    assert pseudonyms == []  # the address in the discarded file was never kept
    assert workspace.cli("verify").code == 0


def test_a_json_document_invalid_at_its_end_contributes_nothing(workspace, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_text('[{"id": "a1"}, {"id": "a2"}, {"id": ]')
    (folder / "b.json").write_text('[{"id": "b1"}]')
    workspace.add_source(name="src", kind="import.json", path=str(folder / "*.json"))
    rt = workspace.runtime()

    result = run_source(rt, workspace.settings().source("src"))

    assert (result.status, result.records) == ("partial", 1)
    assert result.errors[0]["scope"] == "a.json"
    assert "not valid JSON" in result.errors[0]["message"]
    _, content = _stored(rt, result.envelope)
    assert content == _expected([("b.json", 1, {"id": "b1"})])[1]


def test_only_the_scope_being_collected_can_be_discarded(tmp_path: Path):
    taken: list[str] = []
    ctx = CollectContext(
        source="s", base_dir=tmp_path, pseudonymize=str, scope_discarded=taken.append
    )
    ctx.start_scope("a")
    ctx.start_scope("b")
    with pytest.raises(ValueError, match="'a'"):
        ctx.discard_scope("a", "too late")
    ctx.discard_scope("b", "bad", code="input-invalid")
    assert taken == ["b"]
    assert [(s.scope, s.code) for s in ctx.failed_scopes()] == [("b", "input-invalid")]
    assert ctx.ok_scopes() == ["a"]


def test_writer_rewind_equals_never_having_written():
    records = [{"n": i, "x": i / 3} for i in range(11)]
    sink = io.BytesIO()
    writer = ArtifactWriter(sink)
    for record in records[:5]:
        writer.add(record)
    mark = writer.mark()
    for record in records[5:]:
        writer.add({"dropped": record})
    writer.rewind(mark)
    for record in records[5:]:
        writer.add(record)
    straight_sink = io.BytesIO()
    straight = ArtifactWriter(straight_sink)
    for record in records:
        straight.add(record)
    writer.flush()
    straight.flush()
    assert sink.getvalue() == straight_sink.getvalue()
    assert writer.record_count == straight.record_count == 11
    assert writer.bytes_written == straight.bytes_written
    assert writer.content_digest() == straight.content_digest()
    assert writer.merkle_root() == straight.merkle_root()


def test_file_hashes_and_content_hold_across_many_chunks_and_blocks(
    workspace, tmp_path, monkeypatch
):
    # Small read chunks and artifact blocks: the file hashes and the artifact are
    # built from hundreds of pieces, and a discarded file in the middle rewinds
    # across block boundaries.
    from evidence.collectors.files import json_import
    from evidence.domain import artifact

    monkeypatch.setattr(json_import, "READ_CHUNK", 97)
    monkeypatch.setattr(artifact, "BLOCK_BYTES", 211)
    folder = tmp_path / "in"
    folder.mkdir()
    good_a = [{"id": f"a{i}", "text": "ü" * (i % 9), "v": i / 3} for i in range(300)]
    good_c = [{"id": f"c{i}", "v": [i]} for i in range(150)]
    (folder / "a.jsonl").write_text(_lines(good_a))
    (folder / "b.jsonl").write_text(_lines(good_c[:120]) + "not json\n")
    (folder / "c.jsonl").write_text(_lines(good_c))
    workspace.add_source(name="src", kind="import.json", path=str(folder / "*.jsonl"))
    rt = workspace.runtime()

    result = run_source(rt, workspace.settings().source("src"))

    assert (result.status, result.records) == ("partial", 450)
    envelope, content = _stored(rt, result.envelope)
    files = {f["name"]: f["sha256"] for f in envelope.query["files"]}
    assert files == {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("a.jsonl", "c.jsonl")
    }
    expected, expected_content = _expected(
        [("a.jsonl", n, r) for n, r in enumerate(good_a, 1)]
        + [("c.jsonl", n, r) for n, r in enumerate(good_c, 1)]
    )
    assert content == expected_content
    assert envelope.content_sha256 == str(expected.content_digest())
    assert envelope.merkle_root == str(expected.merkle_root())
