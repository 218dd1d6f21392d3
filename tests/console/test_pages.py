"""The console over HTTP: sign-in in its steps, the desk, a report, acknowledgement, the
sender's view; and the refusals: a form without its CSRF token, a session id used after
sign-out, another agency's report, a page the user's roles do not open."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select

from exchange.accounts.models import Role
from exchange.audit.models import AuditEvent
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.regions import service as regions
from tests.console.conftest import NEW_PASSWORD, add_user, csrf_of, post_password, sign_in
from tests.delivery.conftest import example, settle

REFERRAL = example("victim-referral", "dinsos-to-bp3mi")
DIRECTORY = """code,name
36,BANTEN
36.03,KAB. TANGERANG
36.03.11,RAJEG
36.03.11.2009,TANJAKAN MEKAR
36.04,KAB. SERANG
"""


def refer(client: TestClient, demo: dict[str, dict[str, str]]) -> str:
    """Dinsos refers a returnee to BP3MI through the API; the report's id."""
    sent = client.post(
        "/v1/reports",
        json={"type": "victim-referral", "payload": REFERRAL},
        headers=demo["dinsos-banten"],
    )
    assert sent.status_code == 202, sent.text
    return str(sent.json()["id"])


@contextmanager
def console(app: FastAPI) -> Iterator[TestClient]:
    """A browser-like client of the console's pages, with its own cookies. It does not run
    the app's lifespan: the ``client`` fixture does, once (a second would start a second
    worker that nobody stops)."""
    yield TestClient(app, base_url="http://127.0.0.1")


def test_a_referral_is_read_and_acknowledged_on_the_desk_and_the_sender_sees_it(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    report_id = refer(client, demo)
    settle(hub, DeliveryState.delivered, report_id=report_id)

    desk_officer = add_user(hub, "bp3mi-banten", "rina.bp3mi", Role.receiver)
    with console(app) as browser:
        sign_in(browser, desk_officer)
        assert desk_officer.totp is not None  # BP3MI reads identifying data: TOTP required
        desk = browser.get("/console/desk")
        # The desk's script reloads when the poll's newest differs from the page's: a
        # filtered page must name the same newest, or it would reload every second.
        polled = browser.get("/console/desk/new").json()
        assert polled == {"new": 1, "newest": polled["newest"]}
        filtered = browser.get("/console/desk", params={"type": "case-update"})
        for page in (desk, filtered):
            assert f'data-newest="{polled["newest"]}"' in page.text
        assert desk.status_code == 200
        assert desk.headers["content-security-policy"].startswith("default-src 'none'")
        assert f"/console/reports/{report_id}" in desk.text
        assert "1 baru" in desk.text  # Bahasa Indonesia first
        detail = browser.get(f"/console/reports/{report_id}")
        assert "Rina Marlina" in detail.text  # BP3MI is cleared for the person
        assert "Dipulangkan" in detail.text  # labels from the schema, values as sent
        acked = browser.post(
            f"/console/reports/{report_id}/ack",
            data={"csrf": csrf_of(detail.text), "note": "Pendampingan dijadwalkan"},
        )
        assert "dikonfirmasi oleh agency:bp3mi-banten/user:" in acked.text

    sender = add_user(hub, "dinsos-banten", "ayu.dinsos", Role.reporter)
    with console(app) as browser:
        sign_in(browser, sender)
        mine = browser.get("/console/sent")
        assert "bp3mi-banten: Sudah dikonfirmasi" in mine.text
    with hub.session() as session:
        events = [
            json.loads(e.canonical)
            for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq)))
        ]
    assert "user.totp_enrolled" in [e["action"] for e in events]
    acks = [e for e in events if e["action"] == "delivery.acknowledged"]
    assert acks[-1]["actor"].startswith("agency:bp3mi-banten/user:")
    assert acks[-1]["details"]["note"] == "Pendampingan dijadwalkan"
    reads = [e for e in events if e["action"] == "report.read"]
    assert reads[-1]["actor"].startswith("agency:bp3mi-banten/user:")  # who opened it


def test_the_refusals(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    report_id = refer(client, demo)
    outsider = add_user(hub, "polres-tangerang", "joko.polres", Role.receiver)
    with console(app) as browser:
        sign_in(browser, outsider)
        # Another agency's report: not found, like one that does not exist, and on record.
        other = browser.get(f"/console/reports/{report_id}")
        assert other.status_code == 404
        with hub.session() as session:
            refused = session.exec(
                select(AuditEvent).where(AuditEvent.action == "report.read_refused")
            ).one()
        assert json.loads(refused.canonical)["actor"].startswith("agency:polres-tangerang/user:")
        # A form without its token.
        forged = browser.post(f"/console/reports/{report_id}/ack", data={"note": "x"})
        assert forged.status_code in {403, 422}
        wrong = browser.post(f"/console/reports/{report_id}/ack", data={"csrf": "nope"})
        assert wrong.status_code == 403
        # A page the roles do not open.
        assert browser.get("/console/sent").status_code == 403
        # Sign out; the old session id is dead.
        old = browser.cookies.get("exchange_session")
        desk = browser.get("/console/desk")
        browser.post("/console/logout", data={"csrf": csrf_of(desk.text)})
    with hub.session() as session:
        out = session.exec(select(AuditEvent).where(AuditEvent.action == "user.logged_out")).one()
    assert json.loads(out.canonical)["actor"].startswith("agency:polres-tangerang/user:")
    with console(app) as replay:
        replay.cookies.set("exchange_session", old or "", path="/console")
        again = replay.get("/console/desk", follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"] == "/console/login"
    # Wrong passwords read the same as unknown users.
    with console(app) as stranger:
        form = stranger.get("/console/login")
        one = stranger.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "username": "joko.polres", "password": "wrong"},
        )
        two = stranger.post(
            "/console/login",
            data={"csrf": csrf_of(one.text), "username": "nobody", "password": "wrong"},
        )
        assert one.status_code == two.status_code == 401
        assert csrf_of(one.text) != csrf_of(two.text)
        assert one.text.replace(csrf_of(one.text), "") == two.text.replace(csrf_of(two.text), "")


def test_a_reset_link_sets_a_password_once_through_its_page(
    app: FastAPI, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    from exchange.accounts import service as accounts
    from exchange.models import utcnow

    officer = add_user(hub, "disnakertrans-banten", "budi.disnaker", Role.receiver)
    with hub.session() as session:
        user = accounts.get_user(session, officer.username)
        token = accounts.issue_reset(session, user=user, actor="test", now=utcnow())
    with console(app) as browser:
        assert browser.get(f"/console/reset/{token}").status_code == 200
        short = browser.post(f"/console/reset/{token}", data={"password": "short"})
        assert short.status_code == 422
        assert "minimal 12 karakter" in short.text
        done = browser.post(f"/console/reset/{token}", data={"password": NEW_PASSWORD})
        assert str(done.url).endswith("/console/login")
        again = browser.post(f"/console/reset/{token}", data={"password": NEW_PASSWORD})
        assert again.status_code == 401
    officer.password = NEW_PASSWORD
    with console(app) as browser:
        sign_in(browser, officer)
        assert browser.get("/console/desk").status_code == 200


def test_without_its_second_factor_a_receiver_opens_nothing_identifying(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    report_id = refer(client, demo)
    settle(hub, DeliveryState.delivered, report_id=report_id)
    officer = add_user(hub, "bp3mi-banten", "rina.bp3mi", Role.receiver)
    with console(app) as browser:
        signed = post_password(browser, officer, follow_redirects=False)
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        step = browser.get("/console/password")
        browser.post(
            "/console/password", data={"csrf": csrf_of(step.text), "password": NEW_PASSWORD}
        )
        for path in (f"/console/reports/{report_id}", "/console/desk", "/console/desk/new"):
            answer = browser.get(path, follow_redirects=False)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/console/totp"
    with hub.session() as session:
        reads = session.exec(select(AuditEvent).where(AuditEvent.action == "report.read")).all()
    assert reads == []


def test_what_an_attacker_with_a_password_or_a_cookie_cannot_do(
    app: FastAPI, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    from exchange.accounts.models import ConsoleSession
    from exchange.agencies import service as agencies

    officer = add_user(hub, "bp3mi-banten", "rina.bp3mi", Role.receiver)
    with console(app) as browser:
        sign_in(browser, officer)
        desk = browser.get("/console/desk")
        # Odd characters in a token are a refusal, not a crash.
        assert browser.post("/console/logout", data={"csrf": "é"}).status_code == 403
        # The password is changed here only while it is the one-time password.
        late = browser.post(
            "/console/password", data={"csrf": csrf_of(desk.text), "password": "x" * 20}
        )
        assert late.status_code == 403
        # The desk's own polling does not keep an unattended session alive.
        with hub.session() as session:
            before = session.exec(select(ConsoleSession)).one().last_seen_at
        assert browser.get("/console/desk/new").status_code == 200
        with hub.session() as session:
            assert session.exec(select(ConsoleSession)).one().last_seen_at == before
        # An agency taken off the exchange is off the console at once.
        with hub.session() as session:
            agencies.update_agency(session, "bp3mi-banten", active=False, actor="test")
        gone = browser.get("/console/desk", follow_redirects=False)
        assert gone.headers["location"] == "/console/login"
    with console(app) as browser:
        refused = post_password(browser, officer)
        assert refused.status_code == 401


def test_five_wrong_codes_lock_the_account_and_end_its_sessions(
    app: FastAPI, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    officer = add_user(hub, "bp3mi-banten", "rina.bp3mi", Role.receiver)
    with console(app) as browser:
        post_password(browser, officer)
        step = browser.get("/console/password")
        browser.post(
            "/console/password", data={"csrf": csrf_of(step.text), "password": NEW_PASSWORD}
        )
        first, again = browser.get("/console/totp"), browser.get("/console/totp")
        secret = re.compile(r'<code id="totp-uri">([^<]+)</code>')
        # A reload shows the pending secret again: the one the user scanned stays good.
        assert secret.findall(first.text) == secret.findall(again.text) != []
        for _ in range(5):
            page = browser.get("/console/totp", follow_redirects=False)
            if page.status_code != 200:
                break
            browser.post("/console/totp", data={"csrf": csrf_of(page.text), "code": "000000"})
        after = browser.get("/console/totp", follow_redirects=False)
        assert after.headers["location"] == "/console/login"  # the session ended
    with hub.session() as session:
        events = [
            json.loads(e.canonical)
            for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq)))
        ]
    reasons = [e["details"]["reason"] for e in events if e["action"] == "user.login_refused"]
    assert reasons[-1] == "locked_now"
    assert reasons.count("totp") == 4


def test_sign_in_attempts_are_limited_per_address(app: FastAPI, hub: Hub) -> None:
    """The first `limit` attempts of a minute are answered; then 429. (The limit is a
    sliding window estimated from two fixed ones: across a window's edge one or two more may
    pass, so the refusal is looked for within a few more attempts, not at exactly one.)"""
    limit = hub.settings.console_logins_per_minute_per_address
    with console(app) as browser:
        form = browser.get("/console/login")
        token = csrf_of(form.text)
        statuses = []
        for _ in range(limit + 5):
            answer = browser.post(
                "/console/login", data={"csrf": token, "username": "nobody", "password": "x"}
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                break
            token = csrf_of(answer.text)
    assert statuses[:limit] == [401] * limit
    assert statuses[-1] == 429


def test_the_desk_filters_by_region_severity_and_indicator_and_says_why_fields_are_withheld(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    with hub.session() as session:
        regions.import_directory(session, lines=DIRECTORY.splitlines(), actor="test")
    warning = example("village-early-warning", "calo-group-departure")
    milder = {**warning, "severity": "medium", "indicators": ["calo_recruiting"]}
    ids = []
    for payload in (warning, milder):
        sent = client.post(
            "/v1/reports",
            json={"type": "village-early-warning", "payload": payload},
            headers=demo["pimpasa-tanjakan-mekar"],
        )
        assert sent.status_code == 202, sent.text
        assert "polres-tangerang" in sent.json()["routed_to"]
        ids.append(sent.json()["id"])
    first, second = ids
    liaison = add_user(hub, "polres-tangerang", "dewi.polres", Role.receiver)
    with console(app) as browser:
        sign_in(browser, liaison)

        def listed(**filters: str) -> set[str]:
            answer = browser.get("/console/desk", params=filters)
            assert answer.status_code == 200, answer.text
            return {i for i in ids if f"/console/reports/{i}" in answer.text}

        assert listed() == {first, second}
        assert listed(indicator="minor_involved") == {first}
        assert listed(severity="high") == {first}
        assert listed(region="36.03") == {first, second}
        assert listed(region="36.04") == set()
        desk = browser.get("/console/desk")
        assert "36.03.11 · RAJEG" in desk.text  # regions picked by name
        label = hub.registry.indicator_labels()["minor_involved"]["id"]
        assert f'<option value="minor_involved" >{label}</option>' in desk.text
        wrong = browser.get("/console/desk", params={"region": "36.3"})
        assert wrong.status_code == 422
        assert "<code>/region</code> (query)" in wrong.text

    # A referral whose person did not consent: BP3MI is cleared for identifying fields, so
    # the page says consent, not clearance, kept them back.
    unconsented = {**REFERRAL, "consent": {"given": False, "recorded_on": "2026-11-24"}}
    sent = client.post(
        "/v1/reports",
        json={"type": "victim-referral", "payload": unconsented},
        headers=demo["dinsos-banten"],
    )
    assert sent.status_code == 202, sent.text
    settle(hub, DeliveryState.delivered, report_id=sent.json()["id"])
    case_worker = add_user(hub, "bp3mi-banten", "rina.bp3mi", Role.receiver)
    with console(app) as browser:
        sign_in(browser, case_worker)
        detail = browser.get(f"/console/reports/{sent.json()['id']}")
        assert "Rina Marlina" not in detail.text
        assert "tidak menyetujui data identitasnya dibagikan" in detail.text
        assert "36.03.11.2009 · TANJAKAN MEKAR" in detail.text  # names beside codes


def test_the_language_switch_comes_back_to_the_same_page_and_never_leaves_the_console(
    app: FastAPI, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    officer = add_user(hub, "dinsos-banten", "ayu.dinsos", Role.reporter)
    with console(app) as browser:
        sign_in(browser, officer)
        mine = browser.get("/console/sent")
        assert "Dikirim ke" in mine.text
        switched = browser.post("/console/language", data={"lang": "en", "next": "/console/sent"})
        assert str(switched.url).endswith("/console/sent")
        assert "Went to" in switched.text
        for elsewhere in ("https://evil.example/", "//evil.example/console/", "/console/\\\\evil"):
            away = browser.post(
                "/console/language",
                data={"lang": "id", "next": elsewhere},
                follow_redirects=False,
            )
            assert away.headers["location"] == "/console"


def test_a_nul_character_in_a_form_or_a_query_is_refused_with_its_name(
    app: FastAPI, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """PostgreSQL text cannot hold U+0000: the console refuses it as the API does, a 400
    page naming the parameter, before anything looks it up."""
    with console(app) as browser:
        form = browser.get("/console/login")
        answer = browser.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "username": "a\x00b", "password": "x"},
        )
        assert answer.status_code == 400
        assert "<code>/username</code> (body)" in answer.text
        auditor = add_user(hub, "hub", "sari.itjen", Role.auditor)
        sign_in(browser, auditor)
        queried = browser.get("/console/audit", params={"subject": "report:\x00"})
        assert queried.status_code == 400
        assert "<code>/subject</code> (query)" in queried.text
