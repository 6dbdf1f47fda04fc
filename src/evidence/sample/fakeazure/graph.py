"""Microsoft Graph access reviews on the fake: definitions, instances, decisions, paged.

``install_access_reviews(fake, data)`` adds the three listings for the data
(``{"definitions": [...], "instances": {def_id: [...]}, "decisions":
{"def_id/inst_id": [...]}}``), ``page_size`` items a page with absolute
``@odata.nextLink``s, so a client sees what Graph would send. ``sample_data()``
is the SAMPLE DATA the demo serves (people at example.com, all fictitious).
Faults go through the fake's own ``fault()``; ``raw_decisions`` serves a page
byte for byte (duplicate keys survive).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from evidence.sample.fakeazure.server import FakeAzure, Response

GRAPH_ROOT = "/identityGovernance/accessReviews/definitions"


def definitions_path(api: str = "v1.0") -> str:
    return f"/{api}{GRAPH_ROOT}"


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _paged(fake: FakeAzure, path: str, items: list[Any], page_size: int) -> None:
    pages = _chunks(items, page_size)
    fake.paged("GET", path, page_count=len(pages), items=pages, next_key="@odata.nextLink")


def install_access_reviews(
    fake: FakeAzure, data: dict[str, Any], *, page_size: int = 2, api: str = "v1.0"
) -> None:
    base = definitions_path(api)
    _paged(fake, base, list(data.get("definitions", [])), page_size)
    for def_id, instances in data.get("instances", {}).items():
        _paged(fake, f"{base}/{def_id}/instances", list(instances), page_size)
    for key, decisions in data.get("decisions", {}).items():
        def_id, inst_id = key.split("/")
        _paged(fake, f"{base}/{def_id}/instances/{inst_id}/decisions", list(decisions), page_size)


def raw_decisions(
    fake: FakeAzure, def_id: str, inst_id: str, body: bytes, api: str = "v1.0"
) -> None:
    """One page of decisions served exactly as ``body`` (for duplicate-key payloads)."""
    path = f"{definitions_path(api)}/{def_id}/instances/{inst_id}/decisions"
    fake.route("GET", path, lambda _req: Response(200, body))


def sample_data() -> dict[str, Any]:
    text = (resources.files("evidence") / "sample" / "graph" / "access_reviews.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def install_sample(fake: FakeAzure) -> dict[str, Any]:
    data = sample_data()
    install_access_reviews(fake, data)
    return data
