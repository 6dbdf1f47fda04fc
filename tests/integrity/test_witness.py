"""The witness: the newest verified checkpoint, kept outside the database."""

from __future__ import annotations

import orjson
import pytest

from evidence.domain.ledger import SignedCheckpoint, checkpoint_key
from evidence.services import ledger


@pytest.fixture
def witnessed(spine):
    spine.collect(2)
    spine.witness = spine.ws.state_dir / "witness-checkpoint.json"
    return spine


def test_witness_holds_the_newest_checkpoint(witnessed):
    assert witnessed.witness.read_bytes() == witnessed.path(checkpoint_key(2)).read_bytes()
    witnessed.collect(1)
    assert witnessed.witness.read_bytes() == witnessed.path(checkpoint_key(3)).read_bytes()


def test_witness_never_goes_back(witnessed):
    rt = witnessed.ws.runtime()
    older = SignedCheckpoint.from_json(orjson.loads(witnessed.path(checkpoint_key(1)).read_bytes()))
    ledger.write_witness(rt, older)
    assert witnessed.witness.read_bytes() == witnessed.path(checkpoint_key(2)).read_bytes()


def test_unreadable_witness_is_reported_then_kept_aside(witnessed):
    witnessed.witness.write_bytes(b"garbage")
    code, report = witnessed.verify()
    assert code == 1
    assert [(p["kind"], p["item"]) for p in report["problems"]] == [
        ("malformed", "witness-checkpoint.json")
    ]
    witnessed.collect(1)  # the next append keeps the bad one aside and writes a fresh one
    aside = list(witnessed.ws.state_dir.glob("witness-checkpoint.unreadable-*"))
    assert [p.read_bytes() for p in aside] == [b"garbage"]
    assert witnessed.verify()[0] == 0


def test_verify_remembers_a_clean_result(witnessed):
    witnessed.witness.unlink()
    assert witnessed.verify()[0] == 0
    assert witnessed.witness.read_bytes() == witnessed.path(checkpoint_key(2)).read_bytes()
