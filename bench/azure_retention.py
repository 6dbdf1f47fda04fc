"""Measurement behind the retention collector's choice of ARM generic reads over Azure
Resource Graph: requests and time per resource for N storage accounts, workspaces and
vaults served by the fake, collected through the real ResourceManagementClient.

    python bench/azure_retention.py            # 200 storage accounts, 20 workspaces, 20 vaults
    python bench/azure_retention.py --accounts 20

Resource Graph would answer the listing and the vault/workspace properties in one
query per 1,000 rows, but it does not index blob service properties, management
policies, container immutability or table retention, so those reads (the bulk)
remain ARM reads whichever way the listing is done. The figures printed say how
much of the total the replaceable part is.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SUB = "5a3f0c1e-5a3f-4c1e-8a3f-00000000a001"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg"


def main() -> None:
    parser = argparse.ArgumentParser(description="retention: ARM reads per resource")
    parser.add_argument(
        "--accounts", type=int, default=int(os.environ.get("EVIDENCE_BENCH_ACCOUNTS", 200))
    )
    parser.add_argument("--others", type=int, default=20, help="workspaces and vaults each")
    args = parser.parse_args()
    if not 1 <= args.accounts <= 10_000 or not 0 <= args.others <= 1_000:
        raise SystemExit("--accounts must be 1..10000, --others 0..1000")

    from evidence.config import load_settings
    from evidence.sample.fakeazure import FakeAzure
    from evidence.services import setup
    from evidence.services.collect import run_source
    from evidence.services.runtime import open_runtime

    accounts = [
        f"{GROUP}/providers/Microsoft.Storage/storageAccounts/sa{i}" for i in range(args.accounts)
    ]
    workspaces = [
        f"{GROUP}/providers/Microsoft.OperationalInsights/workspaces/ws{i}"
        for i in range(args.others)
    ]
    vaults = [f"{GROUP}/providers/Microsoft.KeyVault/vaults/kv{i}" for i in range(args.others)]
    with FakeAzure() as fake:
        listing = [{"id": a, "type": "Microsoft.Storage/storageAccounts"} for a in accounts]
        listing += [
            {"id": w, "type": "Microsoft.OperationalInsights/workspaces"} for w in workspaces
        ]
        listing += [{"id": v, "type": "Microsoft.KeyVault/vaults"} for v in vaults]
        fake.json("GET", f"/subscriptions/{SUB}/resources", {"value": listing})
        sa = f"^{GROUP}/providers/Microsoft.Storage/storageAccounts/[^/]+"
        fake.json(
            "GET",
            sa + "/blobServices/default$",
            {
                "properties": {
                    "deleteRetentionPolicy": {"enabled": True, "days": 7},
                    "isVersioningEnabled": True,
                }
            },
        )
        fake.json("GET", sa + "/managementPolicies/default$", {"error": {"code": "NotFound"}}, 404)
        fake.json(
            "GET",
            sa + "/blobServices/default/containers$",
            {"value": [{"id": f"{GROUP}/c", "properties": {"hasImmutabilityPolicy": False}}]},
        )
        ws = f"^{GROUP}/providers/Microsoft.OperationalInsights/workspaces/[^/]+"
        fake.json("GET", ws + "$", {"properties": {"retentionInDays": 90}})
        fake.json("GET", ws + "/tables$", {"value": []})
        fake.json(
            "GET",
            f"^{GROUP}/providers/Microsoft.KeyVault/vaults/[^/]+$",
            {"properties": {"enableSoftDelete": True, "softDeleteRetentionInDays": 90}},
        )
        os.environ.update(
            AZURE_TENANT_ID=fake.tenant_id,
            AZURE_CLIENT_ID=fake.client_id,
            AZURE_CLIENT_SECRET=fake.client_secret,
        )
        with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
            root = Path(tmp)
            setup.init(
                root,
                config_text=setup.STARTER_CONFIG
                + f"""
[azure]
credential = "client_secret"
resource_manager_url = "{fake.base_url}"
authority_host = "{fake.base_url}"
ca_bundle = "{fake.ca_pem}"

[[sources]]
name = "bench-retention"
kind = "azure.retention"
subscriptions = ["{SUB}"]
""",
            )
            settings = load_settings(root / "config.toml")
            setup.db_upgrade(settings)
            rt = open_runtime(settings)
            try:
                started = time.perf_counter()
                result = run_source(rt, settings.source("bench-retention"))
                elapsed = time.perf_counter() - started
            finally:
                rt.close()
        arm = [r for r in fake.requests if r.path.startswith("/subscriptions/")]
    if result.status != "complete":
        raise SystemExit(f"run did not complete: {result.errors}")
    replaceable = 1 + 2 * args.others  # listing + workspace GETs + vault GETs
    total = len(arm)
    print(
        f"{args.accounts} storage accounts, {args.others} workspaces, {args.others} vaults: "
        f"{total} ARM requests in {elapsed:.2f} s ({elapsed / total * 1000:.1f} ms/request, "
        f"{result.records} records)"
    )
    print(
        f"requests Resource Graph could replace: {replaceable} of {total} "
        f"({replaceable / total:.0%}); storage child reads (3 per account) stay ARM reads"
    )


if __name__ == "__main__":
    main()
