"""The personal-data rule over everything the test corpus produces: no e-mail address, UPN
or person's name in any stored blob (content, envelopes, ledger), and the same for the demo."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import sqlalchemy as sa

from evidence.cli import main as cli_main
from evidence.db import tables as t
from evidence.sample.fakeazure import FakeAzure
from evidence.sample.fakeazure.graph import install_access_reviews, raw_decisions
from test_access_reviews import DEF_A, INST_A, REVIEWS, corpus_data

SCANS = Path(__file__).parent / "fixtures" / "vulnerability_scans"
# Independent of the code under test: anything shaped like local@domain.tld.
# The last label is letters and ends there (``bash@4.2.46-31.el7`` is a package id).
ADDRESS = re.compile(
    rb"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
NAMES = [
    b"Christie Cline",
    b"Diego Siciliani",
    b"Johanna Lorenz",
    b"MOD Administrator",
    b"guest example",
    b"John Doe",
    b"Firstname Lastname",
    b"REDACTED_AUTHOR",
    b"Rita Reviewer",
    b"Alice Example",
    b"Sam Developer",
]


def addresses(data: bytes) -> list[bytes]:
    """Address-shaped strings, except OData annotation keys (``insights@odata.context``)."""
    return [m for m in ADDRESS.findall(data) if b"@odata." not in m]


def stored_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file()]


def assert_no_personal_data(root: Path) -> int:
    files = stored_files(root)
    assert files, f"nothing stored under {root}"
    for path in files:
        data = path.read_bytes()
        assert addresses(data) == [], path
        for name in NAMES:
            assert name not in data, (path, name)
    return len(files)


def test_no_address_or_name_in_any_blob_the_corpus_produces(workspace, monkeypatch):
    with FakeAzure() as fake:
        monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
        monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", fake.client_secret)
        workspace.extra_config = "\n".join(
            [
                "[azure]",
                'credential = "client_secret"',
                f'graph_url = "{fake.base_url}"',
                f'authority_host = "{fake.base_url}"',
                f'ca_bundle = "{fake.ca_pem}"',
            ]
        )
        install_access_reviews(fake, corpus_data(), page_size=1)
        body = REVIEWS / "graph_accessreview_decisions_list_notreviewed_duplicate_keys.json"
        raw_decisions(fake, DEF_A, INST_A, body.read_bytes())
        workspace.add_source(name="reviews", kind="azure.access_reviews")
        assert workspace.cli("collect").code == 0
    for kind in ("trivy", "grype", "sarif", "gitleaks"):
        files = [str(p) for p in sorted((SCANS / kind).iterdir())]
        result = workspace.cli("ingest", "--kind", kind, *files, "--json")
        assert result.code == 0, result.out
    # The corpus does carry addresses and names: the rule had something to do.
    corpus = b"".join(p.read_bytes() for p in stored_files(SCANS) + stored_files(REVIEWS))
    assert len(addresses(corpus)) >= 10

    count = assert_no_personal_data(workspace.store_dir)
    assert count >= 10
    content = b"".join(p.read_bytes() for p in stored_files(workspace.store_dir / "content"))
    assert content.count(b"pseud:") >= 10
    rt = workspace.runtime()
    with rt.engine.connect() as conn:
        identities = {row[0] for row in conn.execute(sa.select(t.pseudonyms.c.identity))}
    assert {"ChristieC@contoso.com", "johndoe@gmail.com", "John Doe"} <= identities
    assert workspace.cli("verify").code == 0


def test_demo_collects_reviews_and_scans_without_personal_data(tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli_main(["demo", "--workdir", str(tmp_path / "demo"), "--json"])
    assert code == 0, out.getvalue()
    runs = {r["source"]: r for r in json.loads(out.getvalue())["runs"]}
    for name in (
        "sample-access-reviews",
        "sample-trivy",
        "sample-grype",
        "sample-semgrep",
        "sample-gitleaks",
    ):
        assert runs[name]["status"] == "complete"
        assert runs[name]["records"] > 0
    assert runs["sample-access-reviews"]["records"] == 4
    assert_no_personal_data(tmp_path / "demo" / "var" / "store")
