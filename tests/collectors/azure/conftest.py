"""Fixtures for the Azure collectors: the fake Azure over HTTPS, a workspace pointed at it,
and a helper that runs a source through the real flow with back-off recorded, not slept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.collectors.base import CollectorEnv
from evidence.collectors.registry import get_collector
from evidence.db import tables as t
from evidence.domain.digest import Digest
from evidence.domain.ledger import content_key, envelope_key
from evidence.sample.fakeazure import FakeAzure, sample_env
from evidence.services.collect import RunResult, run_source

FIXTURES = Path(__file__).parents[2] / "fixtures" / "azure"


def fixture(name: str) -> Any:
    """A corpus payload; spec examples are unwrapped to their 200 body."""
    data = json.loads((FIXTURES / name).read_text())
    if isinstance(data, dict) and "responses" in data:
        responses = data["responses"]
        return responses.get("200", next(iter(responses.values())))["body"]
    return data


@pytest.fixture
def fake() -> Iterator[FakeAzure]:
    with FakeAzure() as server:
        yield server


@pytest.fixture
def sample(fake: FakeAzure) -> sample_env.SampleEnv:
    return sample_env.install(fake)


@pytest.fixture
def azure_ws(workspace: Any, fake: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", fake.client_secret)
    workspace.extra_config = "\n".join(
        [
            "[azure]",
            'credential = "client_secret"',
            f'resource_manager_url = "{fake.base_url}"',
            f'authority_host = "{fake.base_url}"',
            f'ca_bundle = "{fake.ca_pem}"',
            "verify_challenge_resource = false",
            "retry_total = 3",
        ]
    )
    workspace.write_config()
    return workspace


@dataclass
class Collected:
    result: RunResult
    envelope: dict[str, Any]
    records: list[dict[str, Any]]
    observations: list[dict[str, Any]]  # open rows of this source
    slept: list[float] = field(default_factory=list)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.envelope["errors"]

    def error_codes(self) -> dict[str, str]:
        return {e["scope"]: e["code"] for e in self.errors}


def collect(ws: Any, name: str, *, timeout: float | None = None) -> Collected:
    """Run source ``name`` through ``run_source`` with the real collector and record sleeps."""
    rt = ws.runtime()
    source = rt.settings.source(name)
    cls = get_collector(source.kind)
    options = dict(source.options)
    if timeout is not None:
        options["timeout_seconds"] = timeout
    slept: list[float] = []
    env = CollectorEnv(
        base_dir=rt.settings.base_dir, azure=rt.settings.azure, extra={"sleep": slept.append}
    )
    result = run_source(rt, source, collector=cls(cls.options_model.model_validate(options), env))
    assert result.stored, result.store_error
    envelope = json.loads(rt.store.get(envelope_key(Digest.parse(result.envelope))))
    content = rt.store.get(content_key(Digest.parse(envelope["content_sha256"])))
    records = [json.loads(line) for line in content.splitlines() if line.strip()]
    with rt.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.observations).where(
                t.observations.c.source == name, t.observations.c.valid_to.is_(None)
            )
        ).mappings()
        observations = [dict(r) for r in rows]
    return Collected(result, envelope, records, observations, slept)
