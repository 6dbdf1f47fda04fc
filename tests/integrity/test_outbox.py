"""The outbox: when the store is unreachable the run still completes, its artifact
waits (pending, nothing recorded as stored), and the next run publishes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evidence.db import tables as t
from evidence.errors import StoreUnavailable
from evidence.services.collect import run_source
from evidence.store.filesystem import FilesystemStore


class UnreachableStore(FilesystemStore):
    """A store whose writes fail the way a store that cannot be reached does.
    ``fail_prefix`` limits the failure to some keys (a store that fails midway)."""

    def __init__(self, root: Path, fail_prefix: str = "") -> None:
        super().__init__(root)
        self.fail_prefix = fail_prefix

    def put(self, key: str, data: bytes) -> bool:
        if key.startswith(self.fail_prefix):
            raise StoreUnavailable(f"store unreachable while writing {key}")
        return super().put(key, data)

    def put_file(self, key: str, path: Path) -> bool:
        if key.startswith(self.fail_prefix):
            raise StoreUnavailable(f"store unreachable while writing {key}")
        return super().put_file(key, path)


def _write(spine, n: int) -> None:
    lines = (json.dumps({"id": f"x{n}-{i}", "n": i}) for i in range(3))
    (spine.data_dir / "in.jsonl").write_text("\n".join(lines) + "\n")


def _offline_run(spine, fail_prefix: str = ""):
    ws = spine.ws
    rt = ws.runtime(store=UnreachableStore(ws.store_dir, fail_prefix))
    spine.runs += 1
    _write(spine, spine.runs)
    return run_source(rt, ws.settings().source("manual"))


def test_unreachable_store_keeps_the_artifact_pending_until_the_next_run(spine):
    first = _offline_run(spine)
    assert first.status == "complete"
    assert first.stored is False
    assert "unreachable" in first.store_error
    assert [a["state"] for a in spine.rows(t.artifacts)] == ["pending"]
    assert spine.rows(t.ledger_entries) == []
    assert spine.store_keys() == []  # nothing recorded as stored, nothing stored
    code, report = spine.verify()
    assert (code, report["problems"], report["checked"]["pending"]) == (3, [], 1)

    second = _offline_run(spine)  # still unreachable: the pending one does not block it
    assert second.status == "complete"
    assert second.stored is False
    assert sorted(a["state"] for a in spine.rows(t.artifacts)) == ["pending", "pending"]

    third = spine.ws.cli("collect", "--json")  # reachable again
    assert third.code == 0, third.err
    assert {a["state"] for a in spine.rows(t.artifacts)} == {"stored"}
    assert len(spine.rows(t.ledger_entries)) == 3
    code, report = spine.verify()
    assert (code, report["problems"], report["checked"]["pending"]) == (0, [], 0)
    assert report["checked"]["entries"] == 3
    assert not list((spine.ws.state_dir / "outbox").iterdir())


def test_pending_artifact_is_counted_not_a_problem(spine):
    spine.collect(1)
    result = _offline_run(spine)
    assert result.stored is False
    code, report = spine.verify()
    assert report["problems"] == []
    assert code == 0
    assert report["checked"]["pending"] == 1


@pytest.mark.parametrize("fail_prefix", ["envelopes/", "ledger/entries/", "ledger/checkpoints/"])
def test_store_failing_midway_is_finished_by_the_next_run(spine, fail_prefix):
    spine.collect(1)
    result = _offline_run(spine, fail_prefix)
    assert result.stored is False
    code, report = spine.verify()  # what reached the store is accounted for
    assert (code, report["problems"], report["checked"]["pending"]) == (0, [], 1)
    spine.collect(1)
    code, report = spine.verify()
    assert (code, report["problems"], report["checked"]["pending"]) == (0, [], 0)
    assert report["checked"]["entries"] == 3


def test_cli_publishes_what_waited_in_the_outbox(spine):
    spine.collect(1)
    outbox = spine.ws.state_dir / "outbox"
    result = _offline_run(spine)
    assert result.stored is False
    assert len(list(outbox.iterdir())) == 2  # content spool and envelope
    cli = spine.ws.cli("collect")
    assert cli.code == 0, cli.err
    assert "stored" in cli.out
    assert not list(outbox.iterdir())
    assert {a["state"] for a in spine.rows(t.artifacts)} == {"stored"}


def test_lost_outbox_copy_stays_pending_and_never_blocks_runs(spine):
    """If the outbox copy of a pending artifact is deleted, that artifact cannot be
    published (it stays pending, logged), and later runs go on."""
    result = _offline_run(spine)
    for path in (spine.ws.state_dir / "outbox").iterdir():
        path.unlink()
    later = spine.ws.cli("collect", "--json")
    assert later.code == 0, later.err
    states = sorted(a["state"] for a in spine.rows(t.artifacts))
    assert states == ["pending", "stored"]
    code, report = spine.verify()
    assert (code, report["problems"], report["checked"]["pending"]) == (0, [], 1)
    assert result.envelope not in {e["envelope_sha256"] for e in spine.rows(t.ledger_entries)}
