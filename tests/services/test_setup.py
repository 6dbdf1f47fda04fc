"""``evidence init``, ``doctor``, ``db upgrade`` and the witness file."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest
import sqlalchemy as sa

from evidence.cli import main
from evidence.db.session import head_revision, make_engine


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- init --------------------------------------------------------------------------------
def test_init_writes_config_and_keys_with_private_modes(tmp_path, capsys):
    code, out, _ = _run(capsys, "init", "--dir", str(tmp_path / "d"), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["config_written"]
    assert result["signing_key_written"]
    assert result["database_revision"] == head_revision()
    key = tmp_path / "d" / "var" / "signing-key.pem"
    assert _mode(key) == 0o600
    assert _mode(tmp_path / "d" / "var" / "pseudonym.key") == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_init_never_overwrites(tmp_path, capsys):
    folder = tmp_path / "d"
    _run(capsys, "init", "--dir", str(folder))
    config = folder / "config.toml"
    config.write_text(config.read_text() + "\n# my edit\n")
    files = [config, folder / "var" / "signing-key.pem", folder / "var" / "pseudonym.key"]
    before = [p.read_bytes() for p in files]
    code, out, _ = _run(capsys, "init", "--dir", str(folder))
    assert code == 0
    assert out.count("kept existing") == 3
    assert [p.read_bytes() for p in files] == before


def test_init_adds_a_missing_key_but_keeps_the_config(tmp_path, capsys):
    folder = tmp_path / "d"
    _run(capsys, "init", "--dir", str(folder))
    key = folder / "var" / "signing-key.pem"
    old = key.read_bytes()
    key.unlink()
    code, out, _ = _run(capsys, "init", "--dir", str(folder), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["signing_key_written"] is True
    assert result["config_written"] is False
    assert key.read_bytes() != old
    assert _mode(key) == 0o600


# ---- doctor ------------------------------------------------------------------------------
def test_doctor_all_good(workspace):
    result = workspace.cli("doctor")
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    names = [line.split(":")[0].split(None, 1)[1] for line in lines]
    assert names[:6] == ["config", "database", "store", "store-worm", "signing-key", "state"]
    assert all(line.startswith("ok ") for line in lines)
    doc = workspace.cli("doctor", "--json").json()
    assert doc["ok"] is True
    assert {c["name"] for c in doc["checks"]} >= {"config", "database", "store", "signing-key"}


def test_doctor_says_which_native_modules_run(workspace, monkeypatch):
    from evidence.domain import canonical, merkle

    monkeypatch.setattr(merkle, "NATIVE", True)
    monkeypatch.setattr(canonical, "NATIVE", True)
    out = workspace.cli("doctor").out
    assert "ok   native: C modules for Merkle leaf hashing and canonical walk" in out
    monkeypatch.setattr(merkle, "NATIVE", False)
    monkeypatch.setenv("EVIDENCE_PURE_PYTHON", "1")
    result = workspace.cli("doctor")
    assert result.code == 0
    assert "ok   native: pure Python for Merkle leaf hashing (EVIDENCE_PURE_PYTHON" in result.out


def test_doctor_reports_each_failure_with_exit_2(workspace):
    (workspace.root / "var" / "signing-key.pem").unlink()
    result = workspace.cli("doctor")
    assert result.code == 2
    failing = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1
    assert "signing-key" in failing[0]
    assert "not found" in failing[0]


def test_doctor_flags_a_readable_signing_key(workspace):
    (workspace.root / "var" / "signing-key.pem").chmod(0o644)
    result = workspace.cli("doctor")
    assert result.code == 2
    line = next(x for x in result.out.splitlines() if "signing-key" in x)
    assert line.startswith("FAIL")
    assert "mode 0644" in line


def test_doctor_checks_the_state_folder_and_witness(workspace):
    state = workspace.state_dir
    state.mkdir(parents=True, exist_ok=True)
    (state / "witness-checkpoint.json").write_text("garbage")
    result = workspace.cli("doctor")
    assert result.code == 2
    line = next(x for x in result.out.splitlines() if " state:" in x)
    assert line.startswith("FAIL")
    assert "witness-checkpoint.json is unreadable" in line


def test_doctor_unwritable_store(workspace):
    workspace.store_dir.mkdir(parents=True, exist_ok=True)
    workspace.store_dir.rmdir()
    workspace.store_dir.write_text("a file where the store folder should be")
    result = workspace.cli("doctor", "--json")
    assert result.code == 2
    checks = {c["name"]: c for c in result.json()["checks"]}
    assert checks["store"]["ok"] is False
    assert "var/store" in checks["store"]["detail"]


def test_doctor_database_behind(tmp_path, capsys):
    folder = tmp_path / "d"
    _run(capsys, "init", "--dir", str(folder))
    (folder / "var" / "evidence.db").unlink()
    code, out, _ = _run(capsys, "--config", str(folder / "config.toml"), "doctor")
    assert code == 2
    line = next(x for x in out.splitlines() if " database:" in x)
    assert line.startswith("FAIL")
    assert "evidence db upgrade" in line


def test_doctor_bad_source(workspace):
    workspace.add_source(name="bad", kind="import.json")  # path is required
    result = workspace.cli("doctor")
    assert result.code == 2
    line = next(x for x in result.out.splitlines() if "source bad" in x)
    assert line.startswith("FAIL")
    assert "path" in line


# ---- db upgrade ----------------------------------------------------------------------------
def test_db_upgrade_is_idempotent(workspace):
    first = workspace.cli("db", "upgrade", "--json")
    assert first.code == 0
    assert first.json() == {"before": head_revision(), "after": head_revision()}


def test_db_upgrade_creates_the_schema_on_an_empty_database(
    database_backend, postgres_admin_url, tmp_path, capsys
):
    if database_backend == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'fresh.db'}", None
    else:
        if postgres_admin_url is None:
            if os.environ.get("CI") == "true":  # as conftest.need: required under CI
                pytest.fail("required under CI: PostgreSQL is not reachable")
            pytest.skip("PostgreSQL is not reachable")
        name = f"evidence_upgrade_{uuid.uuid4().hex[:10]}"
        admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url, drop = postgres_admin_url.rsplit("/", 1)[0] + "/" + name, (admin, name)
    try:
        config = tmp_path / "config.toml"
        config.write_text(f'[database]\nurl = "{url}"\n')
        code, out, _ = _run(capsys, "--config", str(config), "db", "upgrade", "--json")
        assert code == 0
        assert json.loads(out) == {"before": None, "after": head_revision()}
        engine = make_engine(url)
        try:
            names = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"runs", "artifacts", "ledger_entries", "checkpoints", "observations"} <= names
        code, out, _ = _run(capsys, "--config", str(config), "db", "upgrade")
        assert code == 0
        assert "database at revision" in out
        assert "was" not in out
    finally:
        if drop is not None:
            admin, name = drop
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_commands_refuse_an_old_schema(tmp_path, capsys):
    folder = tmp_path / "d"
    _run(capsys, "init", "--dir", str(folder))
    (folder / "var" / "evidence.db").unlink()
    code, _, err = _run(capsys, "--config", str(folder / "config.toml"), "verify")
    assert code == 2
    assert "evidence db upgrade" in err
    assert "Traceback" not in err
