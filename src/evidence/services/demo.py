"""``evidence demo``: the whole flow on bundled sample data, in a work folder.

Everything the demo collects is sample data shipped inside the package (and,
for the Azure and Graph sources, served by a local fake on 127.0.0.1); the
summary says so. Running it again in the same folder re-collects: unchanged
sample data adds no observation rows.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from evidence.config import load_settings
from evidence.services import setup
from evidence.services.assess import Assessment, load_controls, reassess
from evidence.services.collect import RunResult, iter_sources, run_source
from evidence.services.demo_azure import sample_azure
from evidence.services.runtime import open_runtime
from evidence.services.verify import Report, verify

DEMO_SOURCES = """
[[sources]]
name = "manual-policy-signoffs"
kind = "import.json"
path = "sample/manual/policy-signoffs.jsonl"
schedule = "every 24h"

[[sources]]
name = "manual-training"
kind = "import.json"
path = "sample/manual/training-completions.json"
observed_at_field = "period_end"
schedule = "every 24h"

# SAMPLE DATA: the demo serves these from a local fake Azure on 127.0.0.1.
[[sources]]
name = "sample-azure-policy"
kind = "azure.policy_states"
management_group = "sample-mg"
note = "SAMPLE DATA: served by the demo's local fake Azure on 127.0.0.1"
schedule = "every 6h"

[[sources]]
name = "sample-azure-retention"
kind = "azure.retention"
subscriptions = ["5a3f0c1e-5a3f-4c1e-8a3f-00000000a001", "5a3f0c1e-5a3f-4c1e-8a3f-00000000b002"]
note = "SAMPLE DATA: served by the demo's local fake Azure on 127.0.0.1"
schedule = "every 24h"

[[sources]]
name = "sample-azure-keys"
kind = "azure.key_rotation"
subscriptions = ["5a3f0c1e-5a3f-4c1e-8a3f-00000000a001", "5a3f0c1e-5a3f-4c1e-8a3f-00000000b002"]
note = "SAMPLE DATA: served by the demo's local fake Azure on 127.0.0.1"
schedule = "every 24h"

[[sources]]
name = "sample-access-reviews"
kind = "azure.access_reviews"
note = "SAMPLE DATA: served by the demo's local fake Microsoft Graph on 127.0.0.1"
schedule = "every 24h"

# SAMPLE DATA: scanner reports as a CI pipeline would drop them.
[[sources]]
name = "sample-trivy"
kind = "trivy"
path = "sample/scans/trivy-*.json"
schedule = "every 1h"

[[sources]]
name = "sample-grype"
kind = "grype"
path = "sample/scans/grype-*.json"
schedule = "every 1h"

[[sources]]
name = "sample-semgrep"
kind = "sarif"
path = "sample/scans/*.sarif"
schedule = "every 1h"

[[sources]]
name = "sample-gitleaks"
kind = "gitleaks"
path = "sample/scans/gitleaks-*.json"
target = "https://git.example.com/shop/api"
schedule = "every 1h"

[assessment]
extra_checks_paths = ["sample/checks"]
"""


@dataclass
class DemoResult:
    workdir: Path
    runs: list[RunResult] = field(default_factory=list)
    verification: Report | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    assessment: Assessment | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "sample_data": True,
            "runs": [r.to_json() for r in self.runs],
            "verify": self.verification.to_json() if self.verification else None,
            "outputs": self.outputs,
            "status": {fw.id: fw.counts() for fw in self.assessment.frameworks}
            if self.assessment
            else None,
        }


def copy_sample(workdir: Path) -> None:
    target = workdir / "sample"
    source = resources.files("evidence") / "sample"
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target, dirs_exist_ok=True)


def run_demo(workdir: Path) -> DemoResult:
    workdir = workdir.resolve()
    setup.init(workdir, config_text=setup.STARTER_CONFIG + DEMO_SOURCES)
    copy_sample(workdir)
    settings = load_settings(workdir / "config.toml")
    setup.db_upgrade(settings)
    result = DemoResult(workdir=workdir)
    library = load_controls(settings)
    with sample_azure(settings) as (demo_settings, fake_url):
        rt = open_runtime(demo_settings)
        try:
            for source in iter_sources(rt, []):
                result.runs.append(run_source(rt, source))
            result.assessment = reassess(rt, library)
            result.verification = verify(rt)
        finally:
            rt.close()
    if fake_url:
        result.outputs["azure"] = f"SAMPLE DATA from a fake Azure at {fake_url} (now stopped)"
    result.outputs = {
        **result.outputs,
        "config": str(workdir / "config.toml"),
        "store": str(settings.resolve(settings.store.path)),
        "database": settings.database.url,
    }
    return result
