"""``evidence ingest``: push scanner files as evidence, through the same flow as collect.

The files become one run of a source: a configured source of that kind when
``--source`` names one (its options kept, its path replaced by the files), else
an ad-hoc source ``ingest-<kind>`` that exists only for the run. Either way the
run goes through ``services.collect.run_source``, so pushed evidence is hashed,
stored, recorded and deduplicated exactly like collected evidence.
"""

from __future__ import annotations

import re
from pathlib import Path

from evidence.collectors.registry import get_collector
from evidence.config import SourceSettings
from evidence.errors import UsageError
from evidence.services.collect import RunResult, run_source
from evidence.services.runtime import Runtime


def ingest_source(rt: Runtime, kind: str, files: list[Path], source: str = "") -> SourceSettings:
    """The source a push of ``files`` of ``kind`` runs as; UsageError when it cannot."""
    cls = get_collector(kind)
    if "path" not in cls.options_model.model_fields:
        raise UsageError(f"collector {kind!r} does not read files", remedy="use 'evidence collect'")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError(f"not a file: {', '.join(missing)}")
    paths = [str(f.resolve()) for f in files]
    configured = {s.name: s for s in rt.settings.sources}
    if source and source in configured:
        base = configured[source]
        if base.kind != kind:
            raise UsageError(f"source {source!r} is of kind {base.kind!r}, not {kind!r}")
        return SourceSettings.model_validate({**base.model_dump(), **base.options, "path": paths})
    name = source or "ingest-" + re.sub(r"[^a-z0-9-]+", "-", kind.lower()).strip("-")
    try:
        return SourceSettings.model_validate({"name": name, "kind": kind, "path": paths})
    except ValueError:
        raise UsageError(f"{name!r} is not a valid source name ([a-z0-9-])") from None


def ingest_files(rt: Runtime, kind: str, files: list[Path], source: str = "") -> RunResult:
    return run_source(rt, ingest_source(rt, kind, files, source))
