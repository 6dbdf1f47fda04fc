"""Bad input of every kind: a clear error naming what and where, the documented exit
code, no traceback, and nothing already stored changed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from evidence.db import tables as t


def snapshot(ws) -> dict[str, bytes]:
    store = Path(ws.store_dir)
    return {
        p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()
    }


def unchanged(before: dict[str, bytes], after: dict[str, bytes]) -> bool:
    """Every file stored before is still there with the same bytes (a failed run may add)."""
    return all(after.get(key) == data for key, data in before.items())


def open_observations(ws) -> int:
    engine = sa.create_engine(ws.settings().database_url())
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t.observations)
                    .where(t.observations.c.valid_to.is_(None))
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.fixture
def collected(workspace, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"r{i}"}) for i in range(5)) + "\n")
    workspace.add_source(name="manual", kind="import.json", path=str(data))
    assert workspace.cli("collect").code == 0
    workspace.data = data
    workspace.before = snapshot(workspace)
    return workspace


def _no_traceback(result) -> None:
    assert "Traceback" not in result.err + result.out


# ---- configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ("[collect]\nsurprise = 1", "collect.surprise", "unknown key"),
        ('[collect]\nmax_record_bytes = "big"', "collect.max_record_bytes", "integer"),
        ("[collect]\nmax_record_bytes = 10", "collect.max_record_bytes", "1024"),
        ('[azure]\ncloud = "mars"', "azure.cloud", "public"),
        ('[azure]\ngraph_url = "http://plain"', "azure.graph_url", "https://"),
    ],
)
@pytest.mark.parametrize("command", ["collect", "verify", "doctor", "db upgrade"])
def test_bad_config_exits_2_naming_file_and_key(collected, extra, key, expected, command):
    collected.extra_config = extra
    collected.write_config()
    result = collected.cli(*command.split())
    assert result.code == 2
    _no_traceback(result)
    assert str(collected.config_path) in result.err
    assert key in result.err
    assert expected in result.err
    assert unchanged(collected.before, snapshot(collected))


def test_bad_toml_exits_2_naming_the_file_and_line(collected):
    collected.config_path.write_text('[database]\nurl = "sqlite:///x.db"\n[store\n')
    result = collected.cli("collect")
    assert result.code == 2
    _no_traceback(result)
    assert str(collected.config_path) in result.err
    assert "not valid TOML" in result.err
    assert "line 3" in result.err
    assert unchanged(collected.before, snapshot(collected))


def test_missing_config_exits_2(tmp_path):
    from evidence.cli import main

    assert main(["--config", str(tmp_path / "nope.toml"), "verify"]) == 2


def test_bad_source_option_exits_2_naming_source_and_key(collected):
    collected.add_source(name="other", kind="import.json", path=5)
    result = collected.cli("collect")
    assert result.code == 2
    _no_traceback(result)
    assert "source other" in result.err
    assert "path" in result.err
    assert unchanged(collected.before, snapshot(collected))


def test_unknown_source_option_and_kind(collected):
    collected.add_source(name="other", kind="import.json", path="x", colour="red")
    result = collected.cli("collect", "--source", "other")
    assert result.code == 2
    assert "colour" in result.err
    assert "unknown key" in result.err
    collected.sources[-1] = {"name": "other", "kind": "no.such.kind"}
    collected.write_config()
    result = collected.cli("collect", "--source", "other")
    assert result.code == 2
    assert "unknown collector kind 'no.such.kind'" in result.err
    _no_traceback(result)
    assert unchanged(collected.before, snapshot(collected))


def test_unknown_source_name_exits_2(collected):
    result = collected.cli("collect", "--source", "nope")
    assert result.code == 2
    assert "no source named 'nope'" in result.err


# ---- input files ------------------------------------------------------------------------
def _failed_run(ws):
    result = ws.cli("collect", "--json")
    _no_traceback(result)
    assert result.code == 3
    run = result.json()["runs"][0]
    assert run["status"] == "failed"
    return run


def test_unreadable_import_file(collected):
    open_before = open_observations(collected)
    collected.data.unlink()
    if os.geteuid() == 0:  # root reads any file; a socket cannot be read by anyone
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(collected.data))
            run = _failed_run(collected)
    else:
        collected.data.write_text("{}\n")
        collected.data.chmod(0)
        run = _failed_run(collected)
    [error] = run["errors"]
    assert error["scope"] == "in.jsonl"
    assert "cannot read in.jsonl" in error["message"]
    assert unchanged(collected.before, snapshot(collected))
    assert open_observations(collected) == open_before  # a failed scope closes nothing


def test_missing_import_file(collected):
    collected.data.unlink()
    run = _failed_run(collected)
    assert "no file matches" in run["errors"][0]["message"]
    assert unchanged(collected.before, snapshot(collected))


def test_invalid_json_lines_names_file_and_line(collected):
    open_before = open_observations(collected)
    collected.data.write_text('{"id": "a"}\n{"id": "b"}\n{"id": \n')
    run = _failed_run(collected)
    [error] = run["errors"]
    assert error["scope"] == "in.jsonl"
    assert "line 3" in error["message"]
    assert "not valid JSON" in error["message"]
    assert run["records"] == 0  # a malformed file contributes nothing
    assert unchanged(collected.before, snapshot(collected))
    assert open_observations(collected) == open_before


def test_invalid_json_document_names_file(collected, tmp_path):
    bad = tmp_path / "doc.json"
    bad.write_text('[{"id": "a"}, {"id": ]')
    collected.sources[0]["path"] = str(bad)
    collected.write_config()
    run = _failed_run(collected)
    [error] = run["errors"]
    assert error["scope"] == "doc.json"
    assert "not valid JSON" in error["message"]
    assert unchanged(collected.before, snapshot(collected))


def test_record_too_large(collected):
    collected.extra_config = "[collect]\nmax_record_bytes = 1024"
    collected.write_config()
    open_before = open_observations(collected)
    collected.data.write_text(json.dumps({"id": "big", "pad": "x" * 5000}) + "\n")
    run = _failed_run(collected)
    [error] = run["errors"]
    assert "over the limit of 1024" in error["message"]
    assert "max_record_bytes" in error["message"]
    assert unchanged(collected.before, snapshot(collected))
    assert open_observations(collected) == open_before
    assert collected.cli("verify").code == 0


def test_missing_signing_key(collected):
    (collected.root / "var" / "signing-key.pem").unlink()
    result = collected.cli("collect")
    assert result.code == 2
    _no_traceback(result)
    assert "signing-key.pem not found" in result.err
    assert "evidence init" in result.err
    assert snapshot(collected) == collected.before


def test_corrupt_signing_key(collected):
    key = collected.root / "var" / "signing-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    result = collected.cli("collect")
    assert result.code == 2
    _no_traceback(result)
    assert "signing-key.pem" in result.err
    assert snapshot(collected) == collected.before


def test_bad_input_json_output_is_one_document(collected):
    collected.extra_config = "[collect]\nsurprise = 1"
    collected.write_config()
    result = collected.cli("collect", "--json")
    assert result.code == 2
    document = json.loads(result.out)
    assert document["error"]["code"] == "config-invalid"
    assert "collect.surprise" in document["error"]["message"]


def test_verify_without_any_key_cannot_complete(collected):
    """No key to check signatures with is a setup problem, not tampering: exit 3."""
    (collected.root / "var" / "signing-key.pem").unlink()
    result = collected.cli("verify", "--json")
    assert result.code == 3
    report = result.json()
    assert report["problems"] == []
    assert "trusted_keys" in report["incomplete"]


def test_verify_with_only_the_public_key(collected):
    """An auditor has the public key only: configured as trusted, verify passes."""
    from evidence.services.keys import load_private_key, public_pem

    key_file = collected.root / "var" / "signing-key.pem"
    public = collected.root / "signing-key.pub.pem"
    public.write_bytes(public_pem(load_private_key(key_file).public_key()))
    key_file.unlink()
    config = collected.config_path
    line = 'key_path = "var/signing-key.pem"'
    config.write_text(config.read_text().replace(line, f'{line}\ntrusted_keys = ["{public}"]'))
    result = collected.cli("verify", "--json")
    assert result.code == 0, result.out


def test_unavailable_store_kind_is_a_config_error(collected):
    config = collected.config_path
    config.write_text(config.read_text().replace('kind = "filesystem"', 'kind = "azure_blob"'))
    result = collected.cli("verify")
    _no_traceback(result)
    if result.code != 2:  # the Azure Blob backend is installed: not this test's subject
        pytest.skip("the azure_blob store is available")
    assert "azure_blob" in result.err
    assert str(config) in result.err


def test_a_source_loads_only_its_own_collector_module():
    """Building an import.json source must not import the Azure collectors (and SDKs)."""
    code = (
        "import sys; from evidence.collectors.registry import get_collector; "
        "get_collector('import.json'); "
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
