"""The demo's Azure: the bundled SAMPLE environment served by the fake on 127.0.0.1.

``sample_azure(settings)`` starts the fake (HTTPS, its own throw-away CA),
installs the sample environment, and yields settings whose ``[azure]`` table
points at it (real ``ClientSecretCredential`` against the fake's token
endpoint, with the fake's own published test credentials set in the
environment only while the demo runs). The fake is stopped on the way out.
Nothing here is used outside ``evidence demo``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from evidence.config import AzureSettings, Settings

SAMPLE_NOTE = "SAMPLE DATA: served by the demo's local fake Azure on 127.0.0.1"


@contextmanager
def sample_azure(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """Yield (settings pointed at the running fake, its base URL); '' when no Azure source."""
    if not any(s.kind.startswith("azure.") for s in settings.sources if s.enabled):
        yield settings, ""
        return
    from evidence.sample.fakeazure import FakeAzure, graph, sample_env

    with FakeAzure() as fake:
        sample_env.install(fake, stable_vault_ports=True)
        graph.install_sample(fake)  # Entra ID access reviews (Microsoft Graph)
        azure = AzureSettings(
            credential="client_secret",
            cloud="custom",
            resource_manager_url=fake.base_url,
            graph_url=fake.base_url,
            authority_host=fake.base_url,
            ca_bundle=str(fake.ca_pem),
            # the fake's vaults live on 127.0.0.1, which can never match vault.azure.net
            verify_challenge_resource=False,
            retry_total=settings.azure.retry_total,
        )
        values = {
            "AZURE_TENANT_ID": fake.tenant_id,
            "AZURE_CLIENT_ID": fake.client_id,
            "AZURE_CLIENT_SECRET": fake.client_secret,
        }
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield settings.model_copy(update={"azure": azure}), fake.base_url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
