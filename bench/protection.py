"""What data protection costs: a submission (validation, encryption, person links, routing,
audit, commit) and a reader's view (decrypt, redact, count person links), in-process on
SQLite, with the encryption and redaction steps alone against a baseline measured in the same
run: one RFC 8785 canonicalisation of the same payload.

    .venv/bin/python bench/protection.py            # 500 submissions and reads
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import rfc8785

from exchange import jobs, migrations
from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope
from exchange.hub import Hub
from exchange.protection import service as protection
from exchange.protection import vault
from exchange.protection.redaction import redact
from exchange.reports import service as reports
from exchange.reports.contracts import ReportSubmission
from exchange.reports.models import Report
from exchange.routing import service as routing
from exchange.routing.contracts import SubscriptionCreate
from exchange.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = json.loads(
    (REPO / "schemas/village-early-warning/examples/valid/calo-group-departure.json").read_text()
)


def per_call_ms(started: float, count: int) -> float:
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    count = parser.parse_args().count
    work = Path(tempfile.mkdtemp(prefix="exchange-bench-"))
    url = f"sqlite:///{work / 'hub.db'}"
    migrations.upgrade(url)
    hub = Hub.start(Settings(database_url=url, key_dir=work / "keys", log_json=False))
    with hub.session() as session:
        for agency_id, kind in (("sender", AgencyKind.village), ("reader", AgencyKind.police)):
            agencies.create_agency(
                session,
                agency_id=agency_id,
                name=agency_id,
                kind=kind,
                jurisdiction="36",
                actor="bench",
            )
        token = agencies.create_api_key(
            session, agency_id="sender", scopes=[Scope.submit], actor="bench"
        ).token
        # The reader subscribes: a report that would reach no one is refused.
        routing.create_subscription(
            session,
            agency_id="reader",
            request=SubscriptionCreate(connector="inbox", types=["village-early-warning"]),
            registry=hub.registry,
            context=hub.connector_context,
            sealer=hub.keyring.sealer,
            limit=hub.settings.max_subscriptions_per_agency,
            actor="bench",
        )
    report_type = hub.registry.get("village-early-warning")

    ids = []
    started = time.perf_counter()
    for _ in range(count):
        with hub.session() as session:
            result = reports.submit(
                session,
                sender=agencies.get_agency(session, "sender"),
                principal=agencies.authenticate(session, token=token),
                registry=hub.registry,
                keyring=hub.keyring,
                submission=ReportSubmission(type=report_type.name, payload=PAYLOAD),
                signature_header=None,
            )
            ids.append(result.id)
            jobs.drop_pending(session)  # no worker here: this measures the request path
    submit_ms = per_call_ms(started, count)

    canonical = rfc8785.dumps(PAYLOAD)
    started = time.perf_counter()
    for _ in range(count):
        rfc8785.dumps(PAYLOAD)
    baseline_ms = per_call_ms(started, count)
    started = time.perf_counter()
    for index in range(count):
        vault.lock(report_id=f"{index:032x}", canonical=canonical, sealer=hub.keyring.sealer)
    encrypt_ms = per_call_ms(started, count)
    hub.registry.classified(report_type)  # computed once per process; not what is measured
    started = time.perf_counter()
    for _ in range(count):
        redact(
            PAYLOAD,
            report_type=report_type,
            registry=hub.registry,
            clearance={"public", "operational"},
        )
    redact_ms = per_call_ms(started, count)
    with hub.session() as session:
        reader = agencies.get_agency(session, "reader")
        started = time.perf_counter()
        for report_id in ids:
            report = session.get(Report, report_id)
            assert report is not None
            protection.view(
                session,
                report=report,
                reader=reader,
                registry=hub.registry,
                sealer=hub.keyring.sealer,
            )
        view_ms = per_call_ms(started, count)
    hub.close()

    print(f"baseline: one RFC 8785 canonicalisation of the payload  {baseline_ms:.3f} ms")
    print(
        f"encryption (data key, AES-256-GCM, sealed key)         {encrypt_ms:.3f} ms"
        f"   ratio {encrypt_ms / baseline_ms:.2f}"
    )
    print(
        f"redaction to public+operational                        {redact_ms:.3f} ms"
        f"   ratio {redact_ms / baseline_ms:.2f}"
    )
    print(f"submission, everything included                        {submit_ms:.2f} ms")
    print(
        f"reader's view (decrypt, redact, count person links)     {view_ms:.2f} ms"
        f"   ({count} reports naming the same person)"
    )


if __name__ == "__main__":
    main()
