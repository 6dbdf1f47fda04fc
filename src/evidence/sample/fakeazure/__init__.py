"""A fake Azure on 127.0.0.1 over HTTPS, for tests and for ``evidence demo`` (SAMPLE DATA).

Lives inside the package (not under tests/) because the demo serves its sample
environment from it. See ``server.FakeAzure`` for the API; ``sample_env`` fills
it with the bundled sample environment of policy states, retention settings
and keys.
"""

from evidence.sample.fakeazure.server import (
    CLIENT_ID,
    CLIENT_SECRET,
    OBJECT_ID,
    TENANT_ID,
    FakeAzure,
    Request,
    Response,
    arm_error,
    forbidden,
    not_found,
    server_error,
    slow,
    throttled,
)

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "OBJECT_ID",
    "TENANT_ID",
    "FakeAzure",
    "Request",
    "Response",
    "arm_error",
    "forbidden",
    "not_found",
    "server_error",
    "slow",
    "throttled",
]
