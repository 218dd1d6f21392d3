"""The auditor's and the administrators' pages over HTTP: evidence and consistency verified
step by step (and a tampered event caught), the export; users, keys and subscriptions made
with their secrets shown once, a test send over real HTTP, a dead delivery replayed, the
region directory imported; and what each role may not do."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select, update

from exchange.accounts.models import ConsoleSession, Role, User
from exchange.agencies.models import ApiKey
from exchange.audit.models import AuditEvent, SignedCheckpoint
from exchange.audit.notes import Verifier
from exchange.audit.verify import verify_export
from exchange.delivery.models import Delivery, DeliveryState
from exchange.hub import Hub
from exchange.routing.models import Subscription
from tests.console.conftest import add_user, csrf_of, integrated, sign_in, state_of
from tests.console.test_pages import console, refer
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import wait_until

IN_A_MONTH = (date.today() + timedelta(days=30)).isoformat()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(Receiver()) as running:
        yield running


def test_the_auditor_verifies_a_reports_evidence_and_the_logs_growth_on_the_page(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    first = refer(client, demo)
    old_size = integrated(hub)
    refer(client, demo)
    new_size = integrated(hub)
    auditor = add_user(hub, "hub", "auditor.itjen", Role.auditor)
    with console(app) as browser:
        sign_in(browser, auditor)
        log = browser.get("/console/audit", params={"subject": f"report:{first}"})
        assert log.status_code == 200
        assert "report.submitted" in log.text
        assert hub.keyring.log_verifier_key() in log.text  # how to verify offline

        evidence = browser.get("/console/audit/evidence", params={"subject": f"report:{first}"})
        assert 'id="verdict" class="ok"' in evidence.text, evidence.text
        # Each leaf's hash and each step up to the root are on the page, recomputed.
        assert evidence.text.count('<section class="event ok"') >= 1
        bundle = browser.get("/console/audit/evidence.json", params={"subject": f"report:{first}"})
        assert bundle.headers["content-disposition"].startswith("attachment")
        leaves = [entry["index"] for entry in bundle.json()["events"]]
        for leaf in leaves:
            assert f'id="leaf-{leaf}"' in evidence.text

        grown = browser.get("/console/audit/consistency", params={"from": old_size, "to": new_size})
        assert 'id="verdict" class="ok"' in grown.text, grown.text
        assert f"{new_size}" in grown.text

        exported = browser.get("/console/audit/export")
        result = verify_export(
            iter(exported.content.splitlines()),
            log_key=Verifier.parse(hub.keyring.log_verifier_key()),
            state=None,
            witnesses=[],
            quorum=0,
        )
        assert result.checkpoint.size >= new_size  # deliveries go on meanwhile

        # A curious operator edits an event in the database: the page says so, at that leaf.
        with hub.session() as session:
            event = session.exec(select(AuditEvent).where(AuditEvent.leaf_index == leaves[0])).one()
            forged = event.canonical.replace(b"report.submitted", b"report.submitteD")
            session.exec(
                update(AuditEvent).where(col(AuditEvent.seq) == event.seq).values(canonical=forged)
            )
        tampered = browser.get("/console/audit/evidence", params={"subject": f"report:{first}"})
        assert 'id="verdict" class="error"' in tampered.text
        assert f'<section class="event error" id="leaf-{leaves[0]}">' in tampered.text

        # An event of one report filed under another: its proof holds, but it is not
        # evidence about that report.
        second = refer(client, demo)
        integrated(hub)
        with hub.session() as session:
            moved = session.exec(
                select(AuditEvent).where(AuditEvent.leaf_index == leaves[-1])
            ).one()
            session.exec(
                update(AuditEvent)
                .where(col(AuditEvent.seq) == moved.seq)
                .values(subject=f"report:{second}")
            )
        other = browser.get("/console/audit/evidence", params={"subject": f"report:{second}"})
        assert 'id="verdict" class="error"' in other.text
        assert f'<section class="event error" id="leaf-{leaves[-1]}">' in other.text

        # Bytes that are no JSON at all: a failing step, not a failing page.
        with hub.session() as session:
            session.exec(
                update(AuditEvent)
                .where(col(AuditEvent.seq) == event.seq)
                .values(canonical=b"\xff[1]")
            )
        assert browser.get("/console/audit").status_code == 200
        broken = browser.get("/console/audit/evidence", params={"subject": f"report:{first}"})
        assert broken.status_code == 200
        assert 'id="verdict" class="error"' in broken.text

        # A root column rewritten in the table: the pages trust the signed notes only.
        with hub.session() as session:
            session.exec(
                update(SignedCheckpoint)
                .where(col(SignedCheckpoint.size) == old_size)
                .values(root_hash=bytes(32))
            )
        rewritten = browser.get(
            "/console/audit/consistency", params={"from": old_size, "to": new_size}
        )
        assert 'id="verdict" class="error"' in rewritten.text
        assert "differs from the signed note" in rewritten.text
        listed = browser.get("/console/audit/checkpoints")
        assert "differs from the signed note" in listed.text


def test_an_agency_admin_manages_its_agency_and_sees_secrets_once(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    admin = add_user(hub, "polda-banten", "admin.polda", Role.agency_admin)
    with console(app) as browser:
        sign_in(browser, admin)
        home = browser.get("/console")
        assert str(home.url).endswith("/console/admin/agencies/polda-banten")
        csrf = csrf_of(home.text)

        made = browser.post(
            "/console/admin/agencies/polda-banten/users",
            data={
                "csrf": csrf,
                "username": "budi.polda",
                "display_name": "Budi",
                "roles": ["receiver"],
            },
        )
        assert made.status_code == 200
        password = re.search(r'<code id="secret">([^<]+)</code>', made.text)
        assert password
        assert len(password.group(1)) >= 12
        again = browser.get("/console/admin/agencies/polda-banten")
        assert password.group(1) not in again.text  # shown once, never again

        issued = browser.post(
            "/console/admin/agencies/polda-banten/keys",
            data={"csrf": csrf, "label": "SIAP", "scopes": ["receive"], "expires": IN_A_MONTH},
        )
        token = re.search(r'<code id="secret">(exk_[^<]+)</code>', issued.text)
        assert token, issued.text
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert me.json()["agency"]["id"] == "polda-banten"
        assert me.json()["scopes"] == ["receive"]

        # No scope ticked: a page that says what is wrong and where.
        refused = browser.post(
            "/console/admin/agencies/polda-banten/keys",
            data={"csrf": csrf, "label": "x", "expires": IN_A_MONTH},
        )
        assert refused.status_code == 422
        assert "<code>/scopes</code>" in refused.text

        # Another agency's page, user or subscription is not this admin's to touch.
        assert browser.get("/console/admin/agencies/bp3mi-banten").status_code == 403
        assert browser.get("/console/admin").status_code == 200  # its own, by redirect
        assert browser.get("/console/admin/hub").status_code == 403
        with hub.session() as session:
            other = session.exec(select(User).where(User.agency_id == "bp3mi-banten")).first()
            theirs = session.exec(
                select(Subscription).where(Subscription.agency_id == "bp3mi-banten")
            ).first()
        assert theirs is not None
        if other is not None:
            assert (
                browser.post(f"/console/admin/users/{other.id}/disable", data={"csrf": csrf})
            ).status_code in {403, 404}
        assert (
            browser.post(f"/console/admin/subscriptions/{theirs.id}/delete", data={"csrf": csrf})
        ).status_code == 403
        # A form without its token does nothing.
        assert (
            browser.post(
                "/console/admin/agencies/polda-banten/keys",
                data={"label": "x", "scopes": ["receive"], "expires": IN_A_MONTH},
            )
        ).status_code in {403, 422}
    with hub.session() as session:
        actions = {
            e.action
            for e in session.exec(
                select(AuditEvent).where(
                    col(AuditEvent.action).in_(["user.created", "key.created"])
                )
            )
        }
        events = [
            json.loads(e.canonical)
            for e in session.exec(select(AuditEvent).where(AuditEvent.action == "user.created"))
        ]
    assert "user.created" in actions
    assert any("/user:" in e["actor"] for e in events)  # the admin, by name


def test_a_subscription_made_on_the_page_is_tested_over_http_and_a_dead_delivery_replayed(
    app: FastAPI,
    client: TestClient,
    hub: Hub,
    demo: dict[str, dict[str, str]],
    receiver: Receiver,
) -> None:
    admin = add_user(hub, "hub", "operator.admin", Role.hub_admin)
    with console(app) as browser:
        sign_in(browser, admin)
        form = browser.get(
            "/console/admin/agencies/bp3mi-banten/subscriptions/new",
            params={"connector": "webhook"},
        )
        assert 'name="config.url"' in form.text  # the form comes from the connector's model
        made = browser.post(
            "/console/admin/agencies/bp3mi-banten/subscriptions",
            data={
                "csrf": csrf_of(form.text),
                "connector": "webhook",
                "label": "case system",
                "config.url": receiver.url,
                "types": ["victim-referral"],
            },
        )
        secret = re.search(r'<code id="secret">(whsec_[^<]+)</code>', made.text)
        assert secret, made.text
        receiver.secret = secret.group(1)
        with hub.session() as session:
            subscription = session.exec(
                select(Subscription).where(Subscription.label == "case system")
            ).one()
        tested = browser.post(
            f"/console/admin/subscriptions/{subscription.id}/test",
            data={"csrf": csrf_of(form.text)},
        )
        assert 'id="verdict" class="ok"' in tested.text, tested.text
        # The receiver verified its Standard Webhooks signature before accepting it.
        (test_envelope,) = receiver.accepted
        assert test_envelope.event.get_type() == "exchange.test.v1"
        assert test_envelope.envelope_id in tested.text

        # A delivery that died is replayed from the page.
        report_id = refer(client, demo)
        with hub.session() as session:
            delivery = session.exec(
                select(Delivery).where(
                    Delivery.report_id == report_id, Delivery.subscription_id == subscription.id
                )
            ).one()
        wait_until(
            lambda: state_of(hub, delivery.id) == DeliveryState.delivered,
            what="delivered",
            deadline_s=30,
        )
        with hub.session() as session:
            delivery = session.get(Delivery, delivery.id)
            delivery.state = DeliveryState.dead
            session.add(delivery)
        page = browser.get("/console/admin/agencies/bp3mi-banten")
        assert f'id="dead-{delivery.id}"' in page.text
        browser.post(
            f"/console/admin/agencies/bp3mi-banten/deliveries/{delivery.id}/replay",
            data={"csrf": csrf_of(page.text)},
        )
        wait_until(
            lambda: state_of(hub, delivery.id) == DeliveryState.delivered,
            what="replayed",
            deadline_s=30,
        )
        assert receiver.requests[delivery.id] == 2  # the same envelope id, sent again
        with hub.session() as session:
            replayed = session.exec(
                select(AuditEvent).where(AuditEvent.action == "delivery.replayed")
            ).all()
        assert [json.loads(e.canonical)["details"]["delivery"] for e in replayed] == [delivery.id]


def test_the_hub_admin_imports_the_region_directory_and_an_unreadable_file_is_refused(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    admin = add_user(hub, "hub", "operator.admin", Role.hub_admin)
    with console(app) as browser:
        sign_in(browser, admin)
        page = browser.get("/console/admin/hub")
        assert hub.keyring.sealer.active_key_id in page.text
        csrf = csrf_of(page.text)
        directory = "code,name\n36,BANTEN\n36.03,KAB. TANGERANG\n"
        imported = browser.post(
            "/console/admin/hub/regions",
            data={"csrf": csrf},
            files={"directory": ("wilayah.csv", io.BytesIO(directory.encode()), "text/csv")},
        )
        assert imported.status_code == 200, imported.text
        assert "2 wilayah" in imported.text
        broken = browser.post(
            "/console/admin/hub/regions",
            data={"csrf": csrf},
            files={"directory": ("x.csv", io.BytesIO(b"kode;nama\n"), "text/csv")},
        )
        assert broken.status_code == 422
        assert "code and name" in broken.text
        assert "2 wilayah" in browser.get("/console/admin/hub").text  # nothing half-written
    # The large body this route may carry is read only for a signed-in hub admin.
    with console(app) as stranger:
        big = io.BytesIO(b"code,name\n" + b"36,BANTEN\n" * 200_000)
        anonymous = stranger.post(
            "/console/admin/hub/regions",
            data={"csrf": "x"},
            files={"directory": ("w.csv", big, "text/csv")},
            follow_redirects=False,
        )
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/login"


def test_an_operator_agency_admin_is_no_hub_admin_and_no_one_reaches_past_their_roles(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    add_user(hub, "hub", "adi.operator", Role.hub_admin)
    local = add_user(hub, "hub", "opagency.admin", Role.agency_admin)
    with hub.session() as session:
        operator_id = session.exec(select(User.id).where(User.username == "adi.operator")).one()
    with console(app) as browser:
        sign_in(browser, local)
        page = browser.get("/console/admin/agencies/hub")
        assert page.status_code == 200  # its own agency
        csrf = csrf_of(page.text)
        admin_key = browser.post(
            "/console/admin/agencies/hub/keys",
            data={"csrf": csrf, "scopes": ["admin"], "expires": IN_A_MONTH},
        )
        assert admin_key.status_code == 403
        audit_key = browser.post(
            "/console/admin/agencies/hub/keys",
            data={"csrf": csrf, "scopes": ["audit"], "expires": IN_A_MONTH},
        )
        assert audit_key.status_code == 403  # hub-wide scopes come from the hub admin
        promoted = browser.post(
            "/console/admin/agencies/hub/users",
            data={"csrf": csrf, "username": "x.y", "display_name": "X", "roles": ["hub-admin"]},
        )
        assert promoted.status_code == 403
        for action in ("reset", "totp", "disable"):
            taken = browser.post(
                f"/console/admin/users/{operator_id}/{action}", data={"csrf": csrf}
            )
            assert taken.status_code == 403, action
        assert browser.get("/console/admin/hub").status_code == 403
        assert browser.get("/console/admin/agencies/polda-banten").status_code == 403
    with hub.session() as session:
        created = session.exec(select(User).where(User.username == "x.y")).first()
        assert created is None


def test_what_could_open_a_way_in_needs_a_fresh_code(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """A stolen session cookie alone does not issue keys: past the few minutes after the
    last code typed, the action asks for a code and posts the same form again with it."""
    admin = add_user(hub, "polda-banten", "admin.polda", Role.agency_admin)
    with console(app) as browser:
        sign_in(browser, admin)
        assert admin.totp is not None
        with hub.session() as session:
            session.exec(update(ConsoleSession).values(confirmed_until=None))
        page = browser.get("/console/admin/agencies/polda-banten")
        form = {
            "csrf": csrf_of(page.text),
            "label": "SIAP",
            "scopes": ["receive"],
            "expires": IN_A_MONTH,
        }
        asked = browser.post("/console/admin/agencies/polda-banten/keys", data=form)
        assert asked.status_code == 401
        assert 'name="code"' in asked.text
        assert 'name="label" value="SIAP"' in asked.text  # the same form, to post again
        wrong = browser.post(
            "/console/admin/agencies/polda-banten/keys", data={**form, "code": "000000"}
        )
        assert wrong.status_code == 401
        with hub.session() as session:
            user = session.exec(select(User).where(User.username == "admin.polda")).one()
            assert user.failed_logins == 1  # counted like a wrong password
            assert session.exec(select(ApiKey).where(ApiKey.label == "SIAP")).first() is None
        fresh = admin.totp.at(time.time() + 30)  # the next code: the current one was used
        issued = browser.post(
            "/console/admin/agencies/polda-banten/keys", data={**form, "code": fresh}
        )
        assert issued.status_code == 200
        assert re.search(r'<code id="secret">exk_', issued.text)
        # Confirmed for the next few minutes: a second key needs no new code.
        again = browser.post(
            "/console/admin/agencies/polda-banten/keys", data={**form, "label": "SIAP 2"}
        )
        assert again.status_code == 200
    with hub.session() as session:
        made = session.exec(select(ApiKey).where(col(ApiKey.label).startswith("SIAP"))).all()
    assert {k.created_by_user for k in made} == {user.id}
    assert all(k.expires_at is not None for k in made)
