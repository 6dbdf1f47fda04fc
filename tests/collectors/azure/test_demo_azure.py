"""`evidence demo` collects all three Azure kinds from the fake it starts, labelled SAMPLE DATA."""

from __future__ import annotations

import contextlib
import io
import json
import os

from evidence.cli import main as cli_main
from evidence.domain.digest import Digest
from evidence.domain.ledger import envelope_key
from evidence.store.filesystem import FilesystemStore


def run_demo(workdir):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["demo", "--workdir", str(workdir), "--json"])
    return code, json.loads(out.getvalue())


def test_demo_collects_azure_sample_data_and_stops_the_fake(tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    code, result = run_demo(tmp_path / "demo")
    assert code == 0, result
    runs = {r["source"]: r for r in result["runs"]}
    for name in ("sample-azure-policy", "sample-azure-retention", "sample-azure-keys"):
        assert runs[name]["status"] == "complete", runs[name]["errors"]
        assert runs[name]["records"] > 0
    assert result["verify"]["ok"] is True
    assert "SAMPLE DATA" in result["outputs"]["azure"]
    store = FilesystemStore(tmp_path / "demo" / "var" / "store")
    envelope = json.loads(
        store.get(envelope_key(Digest.parse(runs["sample-azure-policy"]["envelope"])))
    )
    assert envelope["provenance"]["note"].startswith("SAMPLE DATA")
    assert envelope["query"]["management_group"] == "sample-mg"
    # the fake's credentials were set only while the demo ran
    assert "AZURE_CLIENT_SECRET" not in os.environ

    code, again = run_demo(tmp_path / "demo")
    assert code == 0
    assert all(r["observations_added"] == 0 for r in again["runs"])
