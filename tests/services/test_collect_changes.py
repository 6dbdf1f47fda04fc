"""Observations kept as changes by ``run_source``, on SQLite and PostgreSQL.

New facts open rows, changed facts close and reopen, vanished facts close only
in scopes that were collected completely, repeated subjects keep the last
observation, and re-collecting unchanged data writes no observation rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from evidence.db import tables as t
from evidence.domain.canonical import canonicalize
from evidence.domain.observation import Observation
from evidence.services.collect import run_source

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _write(path: Path, records: list[Any]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _rows(rt: Any) -> list[dict[str, Any]]:
    with rt.engine.connect() as conn:
        result = conn.execute(sa.select(t.observations).order_by(t.observations.c.id))
        return [dict(r._mapping) for r in result]


def _open(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["subject"]: r for r in rows if r["valid_to"] is None}


def _collect(ws: Any, name: str, at: datetime) -> Any:
    rt = ws.runtime()
    return rt, run_source(rt, ws.settings().source(name), now=at)


def test_first_run_opens_one_row_per_fact_with_its_attributes(workspace, tmp_path):
    records = [
        {"id": f"r{i}", "n": i, "x": 0.5 + i, "é": "ü", "nested": {"k": [1, None]}}
        for i in range(30)
    ]
    _write(tmp_path / "a.jsonl", records)
    workspace.add_source(name="src", kind="import.json", path=str(tmp_path / "a.jsonl"))
    rt, result = _collect(workspace, "src", T0)
    assert (result.status, result.observations_added, result.observations_closed) == (
        "complete",
        30,
        0,
    )
    rows = _rows(rt)
    assert len(rows) == 30
    for index, (row, record) in enumerate(zip(rows, records, strict=True)):
        assert row["subject"] == record["id"]
        assert row["attributes"] == record
        assert row["valid_from"] == T0
        assert row["valid_to"] is None
        assert row["envelope_sha256"] == result.envelope
        assert row["record_index"] == index
        assert row["scope"] == "a.jsonl"
        assert row["observed_at"] is None  # NULL, not an empty text
        expected = Observation("import.record", record["id"], record, None, "a.jsonl").fingerprint()
        assert row["fingerprint"] == expected.hex


def test_observed_at_is_stored_when_the_data_has_it_and_null_when_not(workspace, tmp_path):
    records = [{"id": "r0", "at": "2026-02-03T04:05:06.789Z"}, {"id": "r1"}, {"id": "r2", "at": 7}]
    _write(tmp_path / "a.jsonl", records)
    workspace.add_source(
        name="src", kind="import.json", path=str(tmp_path / "a.jsonl"), observed_at_field="at"
    )
    rt, result = _collect(workspace, "src", T0)
    assert result.observations_added == 3
    with rt.engine.connect() as conn:
        nulls = conn.execute(
            sa.select(sa.func.count()).where(t.observations.c.observed_at.is_(None))
        ).scalar_one()
    assert nulls == 2
    assert [r["observed_at"] for r in _rows(rt)] == [
        datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
        None,
        None,
    ]


def test_unchanged_recollect_writes_no_rows_and_changes_are_tracked(workspace, tmp_path):
    data = tmp_path / "a.jsonl"
    records = [{"id": f"r{i}", "v": i} for i in range(2500)]  # more than one batch
    _write(data, records)
    workspace.add_source(name="src", kind="import.json", path=str(data))
    rt, first = _collect(workspace, "src", T0)
    assert first.observations_added == 2500

    _, again = _collect(workspace, "src", T0 + timedelta(hours=1))
    assert (again.observations_added, again.observations_closed) == (0, 0)
    assert len(_rows(rt)) == 2500

    changed = [dict(r) for r in records]
    changed[7]["v"] = "seven"  # changed
    changed[2000]["v"] = "two thousand"  # changed, in a later batch
    del changed[1500]  # vanished
    changed.append({"id": "new", "v": 1})  # new
    _write(data, changed)
    t2 = T0 + timedelta(hours=2)
    _, third = _collect(workspace, "src", t2)
    assert (third.observations_added, third.observations_closed) == (3, 3)
    rows = _rows(rt)
    assert len(rows) == 2503
    current = _open(rows)
    assert len(current) == 2500
    assert "r1500" not in current
    assert current["r7"]["attributes"] == {"id": "r7", "v": "seven"}
    assert current["r7"]["valid_from"] == t2
    assert current["new"]["valid_from"] == t2
    closed = {r["subject"]: r for r in rows if r["valid_to"] is not None}
    assert set(closed) == {"r7", "r2000", "r1500"}
    assert all(r["valid_to"] == t2 for r in closed.values())
    assert closed["r7"]["attributes"] == {"id": "r7", "v": 7}
    assert current["r8"]["valid_from"] == T0  # untouched rows keep their history


def test_a_repeated_subject_keeps_its_last_observation(workspace, tmp_path):
    data = tmp_path / "a.jsonl"
    records = [{"id": f"r{i}", "v": i} for i in range(2100)]
    records[1] = {"id": "dup", "v": "first"}
    records[1800] = {"id": "dup", "v": "last"}  # a later batch than the first
    records[5] = {"id": "twice", "v": 1}
    records[6] = {"id": "twice", "v": 2}  # the same batch
    _write(data, records)
    workspace.add_source(name="src", kind="import.json", path=str(data))
    for at in (T0, T0 + timedelta(hours=1)):  # first run (no lookups) and a later run
        rt, result = _collect(workspace, "src", at)
        current = _open(_rows(rt))
        assert current["dup"]["attributes"] == {"id": "dup", "v": "last"}
        assert current["dup"]["record_index"] == 1800
        assert current["twice"]["attributes"] == {"id": "twice", "v": 2}
        assert len(current) == 2098
    assert len(_rows(rt)) == 2098
    assert result.observations_added == 0

    records[1900] = {"id": "dup", "v": "later still"}  # now the repeat is a change
    _write(data, records)
    _, result = _collect(workspace, "src", T0 + timedelta(hours=2))
    current = _open(_rows(rt))
    assert current["dup"]["attributes"] == {"id": "dup", "v": "later still"}
    assert current["dup"]["record_index"] == 1900
    assert "r1900" not in current  # it was replaced by the repeat: it vanished
    assert (result.observations_added, result.observations_closed) == (1, 2)


def test_a_failed_scope_leaves_its_facts_open(workspace, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder / "a.jsonl", [{"id": "a1", "v": 1}, {"id": "a2", "v": 1}])
    _write(folder / "b.jsonl", [{"id": "b1", "v": 1}, {"id": "b2", "v": 1}])
    workspace.add_source(name="src", kind="import.json", path=str(folder / "*.jsonl"))
    rt, first = _collect(workspace, "src", T0)
    assert first.observations_added == 4

    _write(folder / "a.jsonl", [{"id": "a1", "v": 2}])  # a1 changed, a2 gone
    (folder / "b.jsonl").write_text('{"id": "b1", "v": 2}\n{not json\n')  # b fails
    t1 = T0 + timedelta(hours=1)
    _, second = _collect(workspace, "src", t1)
    assert second.status == "partial"
    assert (second.observations_added, second.observations_closed) == (1, 2)
    current = _open(_rows(rt))
    assert set(current) == {"a1", "b1", "b2"}
    assert current["a1"]["attributes"] == {"id": "a1", "v": 2}
    assert current["b1"]["attributes"] == {"id": "b1", "v": 1}  # untouched
    assert current["b1"]["valid_from"] == T0


def test_a_failed_run_changes_no_observations(workspace, tmp_path):
    data = tmp_path / "a.jsonl"
    _write(data, [{"id": "a1", "v": 1}])
    workspace.add_source(name="src", kind="import.json", path=str(data))
    rt, _ = _collect(workspace, "src", T0)
    data.write_text("{broken\n")
    _, second = _collect(workspace, "src", T0 + timedelta(hours=1))
    assert second.status == "failed"
    assert (second.observations_added, second.observations_closed) == (0, 0)
    rows = _rows(rt)
    assert len(rows) == 1
    assert rows[0]["valid_to"] is None
    outbox = rt.outbox
    assert not list(outbox.glob("*.observations"))  # the spool never outlives its run


def test_an_interrupted_run_leaves_no_spool_behind(workspace, tmp_path):
    data = tmp_path / "a.jsonl"
    _write(data, [{"id": "a1", "v": 1}])
    workspace.add_source(name="src", kind="import.json", path=str(data))
    rt = workspace.runtime()
    with rt.engine.begin() as conn:  # what a process killed mid-run leaves
        conn.execute(
            t.runs.insert().values(
                id="dead" * 8,
                source="src",
                collector="import.json",
                collector_version="1.0",
                status="running",
                started_at=T0,
                record_count=0,
                page_count=0,
                errors=[],
                scopes=[],
            )
        )
    rt.outbox.mkdir(parents=True, exist_ok=True)
    leftovers = [rt.outbox / f"{'dead' * 8}{suffix}" for suffix in (".jsonl", ".observations")]
    for path in leftovers:
        path.write_bytes(b"partial")
    result = run_source(rt, workspace.settings().source("src"), now=T0 + timedelta(hours=1))
    assert result.status == "complete"
    assert not any(path.exists() for path in leftovers)
    assert sorted(p.name for p in rt.outbox.iterdir()) == []
    with rt.engine.connect() as conn:
        status = conn.execute(sa.select(t.runs.c.status).where(t.runs.c.id == "dead" * 8))
        assert status.scalar_one() == "failed"


def test_attributes_are_stored_as_their_canonical_json_text(workspace, tmp_path):
    records = [{"id": "r1", "name": "Zugriff \u00fcber \u6771\u4eac", "x": 1.0, "q": 'a"b\\c\n'}]
    _write(tmp_path / "a.jsonl", records)
    workspace.add_source(name="src", kind="import.json", path=str(tmp_path / "a.jsonl"))
    rt, _ = _collect(workspace, "src", T0)
    obs = t.observations
    if rt.engine.dialect.name == "sqlite":
        query = sa.select(sa.func.typeof(obs.c.attributes), obs.c.attributes.cast(sa.Text))
    else:
        query = sa.select(sa.literal("text"), obs.c.attributes.cast(sa.Text))
    with rt.engine.connect() as conn:
        [(kind, text)] = conn.execute(query).all()
    assert kind == "text"  # never a blob, whatever the driver was handed
    assert text == canonicalize(records[0]).decode("utf-8")
