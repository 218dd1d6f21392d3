"""Schemathesis over the whole OpenAPI description, against the hub on a real socket: once as
the hub admin and once with a submit-only key, every operation and the stateful sequences
its links describe. No server error, no answer outside the documented schema, status code or
content type, and a right ``Allow`` on every 405."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis import checks

from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.settings import Settings
from tests.conftest import bearer, hub_admin_key, issue_key
from tests.servers import PostgresServer, serving

# The bulk body is documented as text (lines of JSON): send the generated text as it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@dataclass(frozen=True)
class LiveHub:
    url: str
    callers: dict[str, dict[str, str]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveHub]:
    folder = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), folder / "hub.db")
        database_url = f"sqlite:///{folder / 'hub.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        database_url = server.create_database(
            f"fuzz_{uuid.uuid4().hex[:12]}", template=request.getfixturevalue("postgres_template")
        )
    settings_ = Settings(
        database_url=database_url,
        key_dir=folder / "keys",
        log_json=False,
        log_level="WARNING",
        submissions_per_minute_per_key=100_000,
        requests_per_minute_per_key=100_000,
    )
    app = create_app(settings_)
    with serving(app) as url:
        hub = app.state.hub
        callers = {
            "hub admin": bearer(hub_admin_key(hub, list(Scope))),
            "submitter": bearer(
                issue_key(hub, "pimpasa-fuzz", [Scope.submit], kind=AgencyKind.village)
            ),
        }
        yield LiveHub(url, callers)


@pytest.fixture(scope="module")
def api(live_hub: LiveHub) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_hub.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api")


# What the hub promises of every answer. Left out: whether the fuzzer's schema-valid inputs
# are accepted and its schema-invalid ones refused — the hub refuses much the schema cannot
# say (an unknown report type, a region code not in the directory, a proof past the tree).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.allow_header_conformance,
]
MIN_STATEFUL_STEPS = 60
# The hub under test keeps state between examples, so replaying an example from Hypothesis's
# database or shrinking one would not meet the same hub: report what was found as found.
FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],
)


@schema.parametrize()
@FUZZ
def test_every_operation_keeps_its_contract_for_the_hub_admin(
    case: schemathesis.Case, live_hub: LiveHub
) -> None:
    case.call_and_validate(headers=live_hub.callers["hub admin"], checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_every_operation_keeps_its_contract_for_a_submit_only_key(
    case: schemathesis.Case, live_hub: LiveHub
) -> None:
    case.call_and_validate(headers=live_hub.callers["submitter"], checks=CHECKS)


@pytest.mark.parametrize("caller", ["hub admin", "submitter"])
def test_sequences_along_the_links_keep_the_contract(
    api: schemathesis.BaseSchema, live_hub: LiveHub, caller: str
) -> None:
    """Create, then use what was created (an agency's keys, a subscription, a report).

    Failures are collected as they happen rather than raised: Hypothesis cannot replay a
    sequence against a hub whose state has moved on. For the same reason its bookkeeping can
    stop a run early as "flaky" (which rules are enabled depends on what the hub answered);
    like Schemathesis's own engine, such a run is started again until enough steps ran."""
    headers = live_hub.callers[caller]
    failures: list[str] = []
    steps = 0

    class Sequences(api.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"headers": headers}

        def validate_response(self, response: object, case: schemathesis.Case, **_: object) -> None:
            case.validate_response(response, checks=CHECKS)

        def step(self, input: Any) -> Any:
            nonlocal steps
            steps += 1
            try:
                return super().step(input)
            except Exception as failure:
                failures.append(f"{input.case.as_curl_command(headers=headers)}\n{failure!r}")
                return None

    for _ in range(10):
        with contextlib.suppress(Flaky):
            Sequences.run(settings=settings(FUZZ, max_examples=25, stateful_step_count=6))
        if steps >= MIN_STATEFUL_STEPS:
            break
    assert steps >= MIN_STATEFUL_STEPS
    assert not failures, "\n\n".join(failures[:5])
