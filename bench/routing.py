"""What routing costs as subscriptions grow: the median time of one submission (HTTP through
the ASGI app, embedded SQLite) with N subscriptions that do not match the report, against the
same with none, measured in the same run. Routing looks subscriptions up by an index of their
type and region filters, so the ratio should stay near 1.

    .venv/bin/python bench/routing.py                  # 2,000 subscriptions, 50 submissions
    .venv/bin/python bench/routing.py --subscriptions 5000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from exchange import migrations
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.registry.service import default_schemas_dir
from exchange.routing.models import Subscription, SubscriptionMatch
from exchange.settings import Settings
from tests.conftest import bearer, issue_key

PAYLOAD = json.loads(
    (
        default_schemas_dir() / "village-early-warning/examples/valid/calo-group-departure.json"
    ).read_text()
)


def median_submission_ms(subscriptions: int, submissions: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    url = f"sqlite:///{work / 'hub.db'}"
    migrations.upgrade(url)
    settings = Settings(
        database_url=url,
        key_dir=work / "keys",
        log_json=False,
        log_level="WARNING",
        max_subscriptions_per_agency=subscriptions + 1,
        requests_per_minute_per_key=10**9,
        submissions_per_minute_per_key=10**9,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        hub = app.state.hub
        village = bearer(issue_key(hub, "pimpasa-x", [Scope.submit], kind=AgencyKind.village))
        police = bearer(issue_key(hub, "polda-jatim", [Scope.receive], kind=AgencyKind.police))
        elsewhere = client.post(
            "/v1/subscriptions", json={"connector": "inbox", "regions": ["35.07"]}, headers=police
        ).json()
        with hub.session() as session:  # copies of one subscription: faster than N requests
            model = session.get(Subscription, elsewhere["id"])
            assert model is not None
            for _ in range(subscriptions - 1):
                copy = uuid.uuid4().hex
                session.add(Subscription(**{**model.model_dump(), "id": copy}))
                session.add(SubscriptionMatch(subscription_id=copy, type="", region="35.07"))
        body = {"type": "village-early-warning", "payload": PAYLOAD, "allow_no_recipient": True}
        times = []
        for _ in range(submissions):
            started = time.perf_counter()
            answer = client.post("/v1/reports", json=body, headers=village)
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 202, answer.text
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--submissions", type=int, default=50)
    args = parser.parse_args()
    baseline = median_submission_ms(1, args.submissions)
    many = median_submission_ms(args.subscriptions, args.submissions)
    print(f"median submission, 1 subscription elsewhere:  {baseline:.1f} ms (baseline)")
    print(f"median submission, {args.subscriptions} elsewhere: {many:.1f} ms")
    print(f"ratio {many / baseline:.2f}   target <= 1.5")


if __name__ == "__main__":
    main()
