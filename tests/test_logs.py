"""No secret reaches a log line: the hub logs ids, and a filter scrubs what slips through."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from exchange.agencies.models import Scope
from exchange.hub import Hub
from exchange.logs import REDACTED, ScrubSecrets, scrub
from tests.conftest import bearer, issue_key


@pytest.mark.parametrize(
    "secret",
    [
        "exk_0123456789abcdef_Zm9vYmFyYmF6cXV4LXF1dXhfY29ycmdlZ3JhdWx0",
        "Bearer abc.def.ghi",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----",
    ],
)
def test_scrub_removes_credentials(secret: str) -> None:
    line = f"calling with {secret} now"
    assert scrub(line) == f"calling with {REDACTED} now"


def test_scrub_removes_passwords_from_urls() -> None:
    scrubbed = scrub("connect postgresql://hub:s3cr3t@db:5432/exchange failed")
    assert "s3cr3t" not in scrubbed
    assert "postgresql://[redacted]@db:5432/exchange" in scrubbed


def test_filter_scrubs_messages_arguments_and_tracebacks() -> None:
    token = "exk_0123456789abcdef_c2VjcmV0LXNlY3JldC1zZWNyZXQ"
    try:
        raise ValueError(f"bad token {token}")
    except ValueError as exc:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "saw %s", (token,), (type(exc), exc, None)
        )
    assert ScrubSecrets().filter(record)
    assert token not in record.getMessage()
    assert record.exc_text is not None
    assert token not in record.exc_text


def test_access_log_names_the_agency_never_the_token(
    client: TestClient, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    with caplog.at_level(logging.INFO, logger="exchange.access"):
        client.get("/v1/me", headers=bearer(token))
        client.get("/v1/me", headers=bearer(token + "tampered"))
    records = [r for r in caplog.records if r.name == "exchange.access"]
    assert [getattr(r, "status", None) for r in records] == [200, 401]
    assert getattr(records[0], "agency", None) == "polda-banten"
    secret = token.split("_", 2)[2]
    for record in records:
        assert secret not in str(vars(record))
