"""The spine end to end through the command line: collect, re-collect, verify."""

from __future__ import annotations

import json

import sqlalchemy as sa

from evidence.db import tables as t


def test_collect_then_verify_is_clean(workspace, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"r{i}", "n": i}) for i in range(50)) + "\n")
    workspace.add_source(name="manual", kind="import.json", path=str(data))

    first = workspace.cli("collect", "--json")
    assert first.code == 0, first.err
    run = first.json()["runs"][0]
    assert run["status"] == "complete"
    assert run["records"] == 50
    assert run["observations_added"] == 50

    second = workspace.cli("collect", "--json")
    assert second.code == 0
    assert second.json()["runs"][0]["observations_added"] == 0

    rt = workspace.runtime()
    with rt.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.observations)).scalar() == 50

    verified = workspace.cli("verify", "--json")
    assert verified.code == 0, verified.out
    report = verified.json()
    assert report["ok"] is True
    assert report["checked"]["entries"] == 2
    assert report["checked"]["contents"] == 1  # identical content stored once


def test_verify_with_nothing_to_check_exits_3(workspace):
    result = workspace.cli("verify", "--json")
    assert result.code == 3
    assert result.json()["ok"] is False
