"""Subscriptions, and routing: which subscriptions an accepted report reaches.

Routing runs inside the submission's transaction and writes one ``delivery`` row per
matching subscription (the outbox); the delivery jobs are enqueued after that commit.
Functions take the session first and never commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import event, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from connectors.base import ConfigRefused, ConnectorContext, RotatingSecretConfig, revealed, shown
from connectors.registry import UnknownConnector, factory
from exchange.agencies.models import Agency
from exchange.audit import service as audit
from exchange.delivery.models import (
    Delivery,
    end_due_deliveries,
    insert_routed,
)
from exchange.directory import Kept
from exchange.errors import Conflict, ErrorDetail, InvalidInput, NotFound, translate_model_error
from exchange.i18n import t
from exchange.models import utcnow
from exchange.protection.sealing import Sealer
from exchange.registry.service import ReportType, SchemaRegistry, values_at
from exchange.reports.models import Report, ReportFacet
from exchange.routing.contracts import SEVERITY_ORDER, SubscriptionCreate
from exchange.routing.models import Subscription, SubscriptionMatch, config_purpose
from exchange.statistics import facts as statistics

# Where region codes split: 36 | 36.03 | 36.03.11 | 36.03.11.2009.
_PREFIX_CUTS = (2, 5, 8, 13)
# Markings that name their audience: only the agencies in the report's ``recipients``.
NAMED_ONLY = frozenset({"RED", "AMBER+STRICT"})


ANY = ""  # a SubscriptionMatch column that matches everything
BACKFILL_BATCH = 500  # reports whose facets are read at a time


class SubscriptionLimit(Conflict):
    """Raised when an agency already has as many subscriptions as the hub allows one."""

    code = "subscription_limit"


class SubscriptionNotFound(NotFound):
    """Raised when a subscription id names no live subscription of the caller's agency."""

    code = "subscription_not_found"


# --- subscriptions ---------------------------------------------------------------------------


def _checked_config(
    request: SubscriptionCreate,
    *,
    agency_id: str,
    registry: SchemaRegistry,
    context: ConnectorContext,
) -> BaseModel:
    details = [
        ErrorDetail(t("routing.unknown_type", type=name), pointer=f"/types/{index}")
        for index, name in enumerate(request.types)
        if name not in registry.names()
    ]
    try:
        connector_class = factory(request.connector)
    except UnknownConnector:
        raise InvalidInput(
            t("routing.unknown_connector", connector=request.connector),
            details=[
                *details,
                ErrorDetail(
                    t("routing.unknown_connector", connector=request.connector),
                    pointer="/connector",
                ),
            ],
        ) from None
    if details:
        raise InvalidInput(t("request.invalid"), details=details)
    try:
        config = connector_class.config_model.model_validate(request.config)
    except ValidationError as error:
        raise translate_model_error(error, at=("config",)) from None
    try:
        connector_class(replace(context, recipient=agency_id)).check(config)
    except ConfigRefused as refused:
        raise InvalidInput.at(t("routing.config_refused", reason=str(refused)), "/config") from None
    return config


def _secrets_of(config: BaseModel) -> dict[str, str]:
    return {
        name: value.get_secret_value()
        for name in type(config).model_fields
        if name != "previous_secret" and isinstance(value := getattr(config, name), SecretStr)
    }


def _seal(subscription: Subscription, config: BaseModel, sealer: Sealer) -> None:
    subscription.config_shown = json.dumps(shown(config))
    subscription.config_sealed = sealer.seal(
        json.dumps(revealed(config)).encode(), purpose=config_purpose(subscription.id)
    )


def create_subscription(
    session: Session,
    *,
    agency_id: str,
    request: SubscriptionCreate,
    registry: SchemaRegistry,
    context: ConnectorContext,
    sealer: Sealer,
    limit: int,
    actor: str,
) -> tuple[Subscription, dict[str, str]]:
    """A new subscription and the secrets of its config, which are shown only now. An agency
    has at most ``limit`` live subscriptions: each costs every submission a little."""
    live = session.exec(
        select(func.count()).where(
            Subscription.agency_id == agency_id, col(Subscription.deleted_at).is_(None)
        )
    ).one()
    if live >= limit:
        raise SubscriptionLimit(t("routing.subscription_limit", limit=limit))
    config = _checked_config(request, agency_id=agency_id, registry=registry, context=context)
    subscription = Subscription(
        id=uuid.uuid4().hex,
        agency_id=agency_id,
        label=request.label,
        types=json.dumps(sorted(set(request.types))),
        regions=json.dumps(sorted(set(request.regions))),
        indicators=json.dumps(sorted(set(request.indicators))),
        min_severity=request.min_severity,
        connector=request.connector,
        config_shown="{}",
        config_sealed=b"",
        throttle_per_s=request.throttle_per_s,
    )
    _seal(subscription, config, sealer)
    session.add(subscription)
    session.add_all(
        SubscriptionMatch(subscription_id=subscription.id, type=type_, region=region)
        for type_ in sorted(set(request.types)) or [ANY]
        for region in sorted(set(request.regions)) or [ANY]
    )
    audit.record(
        session,
        action="subscription.created",
        subject=f"subscription:{subscription.id}",
        actor=actor,
        details={
            "agency": agency_id,
            "connector": request.connector,
            "filters": {
                "types": request.types,
                "regions": request.regions,
                "min_severity": request.min_severity,
                "indicators": request.indicators,
            },
            "throttle_per_s": request.throttle_per_s,
        },
    )
    return subscription, _secrets_of(config)


@dataclass(frozen=True)
class BackfillResult:
    since: datetime
    reports: int
    truncated: bool


def backfill(
    session: Session,
    *,
    subscription: Subscription,
    period: timedelta,
    registry: SchemaRegistry,
    limit: int,
    actor: str,
) -> BackfillResult:
    """Deliver to a new subscription the reports of the last ``period`` it would have been
    routed, had it existed: the ones it wants and its agency may receive (TLP, as when
    they were routed), unpurged, the newest ``limit`` of them. Reports the agency already
    received, or sent, are not sent again."""
    types = json.loads(subscription.types) or registry.names()
    longest = max(registry.get(name).retention_days for name in types)
    if period <= timedelta(0) or period > timedelta(days=longest):
        raise InvalidInput.at(t("routing.backfill_range", days=longest), "/backfill")
    agency = session.get(Agency, subscription.agency_id)
    assert agency is not None  # the subscription's owner, loaded by its caller
    since = utcnow() - period
    already = select(Delivery.report_id).where(Delivery.agency_id == agency.id)
    candidates = session.exec(
        select(Report)
        .where(
            col(Report.received_at) >= since,
            col(Report.purged_at).is_(None),
            col(Report.type).in_(types),
            Report.sender != agency.id,
            col(Report.id).not_in(already),
        )
        .order_by(col(Report.received_at).desc(), col(Report.id).desc())
    )
    facets: dict[str, dict[str, list[str]]] = {}
    chosen: list[Report] = []
    truncated = False
    for batch in candidates.partitions(BACKFILL_BATCH):
        for report_id, facet, value in session.exec(
            select(ReportFacet.report_id, ReportFacet.facet, ReportFacet.value).where(
                col(ReportFacet.report_id).in_([r.id for r in batch])
            )
        ):
            facets.setdefault(report_id, {}).setdefault(facet, []).append(value)
        for report in batch:
            found = facets.pop(report.id, {})
            facts = RoutingFacts(
                type=report.type,
                tlp=report.tlp,
                sender=report.sender,
                regions=tuple(found.get("region", [report.region] if report.region else [])),
                severity=report.severity,
                indicators=frozenset(found.get("indicator", [])),
                recipients=frozenset(json.loads(report.recipients)),
            )
            if (agency.id in facts.recipients or wants(subscription, facts)) and may_receive(
                agency, facts
            ):
                if len(chosen) == limit:
                    truncated = True
                    break
                chosen.append(report)
        if truncated:
            break
    target = Target(subscription.id, agency.id, subscription.connector)
    for report in reversed(chosen):  # oldest first, as they would have arrived
        route(
            session,
            report_id=report.id,
            plan=RoutingPlan(targets=(target,), withheld=frozenset()),
            actor=actor,
            action="report.backfilled",
        )
    audit.record(
        session,
        action="subscription.backfilled",
        subject=f"subscription:{subscription.id}",
        actor=actor,
        details={
            "agency": agency.id,
            "since": since.isoformat(),
            "reports": len(chosen),
            "truncated": truncated,
        },
    )
    return BackfillResult(since=since, reports=len(chosen), truncated=truncated)


def list_subscriptions(session: Session, *, agency_id: str | None) -> list[Subscription]:
    query = select(Subscription).where(col(Subscription.deleted_at).is_(None))
    if agency_id is not None:
        query = query.where(Subscription.agency_id == agency_id)
    return list(session.exec(query.order_by(col(Subscription.created_at))))


def get_subscription(
    session: Session, *, agency_id: str | None, subscription_id: str
) -> Subscription:
    """A live subscription; ``agency_id`` None means any agency's (operators)."""
    subscription = session.get(Subscription, subscription_id)
    if (
        subscription is None
        or subscription.deleted_at is not None
        or (agency_id is not None and subscription.agency_id != agency_id)
    ):
        raise SubscriptionNotFound(t("routing.subscription_not_found", id=subscription_id))
    return subscription


def delete_subscription(
    session: Session, *, agency_id: str | None, subscription_id: str, actor: str
) -> Subscription:
    """Stop a subscription. Its deliveries that were still due end as dead; the row stays so
    that the history of what was delivered under it remains readable."""
    subscription = get_subscription(session, agency_id=agency_id, subscription_id=subscription_id)
    subscription.active = False
    subscription.deleted_at = utcnow()
    subscription.disabled_reason = "deleted"
    session.add(subscription)
    abandoned = end_due_deliveries(
        session, reason="subscription deleted", subscription_id=subscription.id
    )
    audit.record(
        session,
        action="subscription.deleted",
        subject=f"subscription:{subscription.id}",
        actor=actor,
        details={"agency": subscription.agency_id, "abandoned_deliveries": abandoned},
    )
    return subscription


def disable_subscription(session: Session, *, subscription: Subscription, reason: str) -> None:
    """Stop routing to a subscription whose recipient asked to stop (HTTP 410). The owner
    sees the reason on the subscription and in the audit log; re-creating it resumes. The
    row is locked first: several sends answered 410 at once disable it, and log it, once.
    What this session changed is flushed first, or the refresh would throw it away (a
    batch of outcomes disabling it twice)."""
    session.flush()
    session.refresh(subscription, with_for_update=True)
    if not subscription.active:
        return
    subscription.active = False
    subscription.disabled_reason = reason[:300]
    session.add(subscription)
    audit.record(
        session,
        action="subscription.disabled",
        subject=f"subscription:{subscription.id}",
        actor="hub",
        details={"agency": subscription.agency_id, "reason": reason[:300]},
    )


def rotate_secret(
    session: Session,
    *,
    agency_id: str | None,
    subscription_id: str,
    sealer: Sealer,
    actor: str,
) -> tuple[Subscription, dict[str, str]]:
    """A new signing secret; the previous one keeps signing alongside for 24 hours."""
    subscription = get_subscription(session, agency_id=agency_id, subscription_id=subscription_id)
    config = open_config(subscription, sealer)
    if not isinstance(config, RotatingSecretConfig):
        raise InvalidInput.at(t("routing.no_secret", connector=subscription.connector))
    rotated = config.rotated(utcnow())
    _seal(subscription, rotated, sealer)
    session.add(subscription)
    audit.record(
        session,
        action="subscription.secret_rotated",
        subject=f"subscription:{subscription.id}",
        actor=actor,
        details={"agency": subscription.agency_id},
    )
    return subscription, _secrets_of(rotated)


def open_config(subscription: Subscription, sealer: Sealer) -> BaseModel:
    """The subscription's connector config, secrets included, for one delivery."""
    document = json.loads(
        sealer.unseal(subscription.config_sealed, purpose=config_purpose(subscription.id))
    )
    return factory(subscription.connector).config_model.model_validate(document)


# --- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingFacts:
    """What routing looks at in a report; the schema's ``x-routing`` says where to find it.

    ``recipients`` are the agencies the report names as its audience; ``participants`` the
    agencies of the case it continues (see ``reports.service``: the senders and named
    recipients of the reports it refers to, and those that received one under AMBER or
    stricter). Both are addressed: they get the report on each of their live subscriptions,
    whatever those subscriptions filter, because filters choose among alerts broadcast to
    whoever wants them, and a report meant for an agency is not one."""

    type: str
    tlp: str
    sender: str
    regions: tuple[str, ...]
    severity: str | None
    indicators: frozenset[str]
    recipients: frozenset[str]
    participants: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        report_type: ReportType,
        payload: dict[str, Any],
        *,
        tlp: str,
        sender: str,
        recipients: Iterable[str],
        participants: Iterable[str] = (),
        regions: Iterable[str] = (),
    ) -> RoutingFacts:
        """The facts of ``payload``; ``regions`` adds regions found elsewhere (the district
        of each NIK the report holds)."""
        routing = report_type.routing

        def found(name: str) -> list[Any]:
            return [
                value
                for pattern in routing.get(name, ())
                for _, value in values_at(payload, pattern)
            ]

        indicators: set[str] = set()
        for value in found("indicators"):
            indicators.update(
                v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)
            )
        severity = next((v for v in found("severity") if isinstance(v, str)), None)
        located = [v for v in found("region") if isinstance(v, str)]
        return cls(
            type=report_type.name,
            tlp=tlp,
            sender=sender,
            regions=tuple(dict.fromkeys([*located, *regions])),
            severity=severity,
            indicators=frozenset(indicators),
            recipients=frozenset(recipients),
            participants=frozenset(participants) - {sender},
        )

    @property
    def addressed(self) -> frozenset[str]:
        return self.recipients | self.participants


def covers(prefix: str, code: str) -> bool:
    """Whether a region-code prefix (``36.03``) covers a code (``36.03.11.2009``)."""
    return code == prefix or code.startswith(prefix + ".")


def overlaps(prefix: str, code: str) -> bool:
    """Whether two region codes share ground: a subscription for a village wants an alert
    about its district, and one for the district wants the village's reports."""
    return covers(prefix, code) or covers(code, prefix)


def wants(subscription: Subscription, facts: RoutingFacts) -> bool:
    """Whether the report matches every filter the subscription sets; a subscription
    filters on any of the regions the report concerns."""
    types = json.loads(subscription.types)
    if types and facts.type not in types:
        return False
    regions = json.loads(subscription.regions)
    if regions and not any(overlaps(p, code) for p in regions for code in facts.regions):
        return False
    if subscription.min_severity is not None and (
        facts.severity is None
        or SEVERITY_ORDER[facts.severity] < SEVERITY_ORDER[subscription.min_severity]
    ):
        return False
    indicators = json.loads(subscription.indicators)
    return not indicators or not facts.indicators.isdisjoint(indicators)


def may_receive(agency: Agency, facts: RoutingFacts) -> bool:
    """What the report's TLP 2.0 marking allows, whatever any subscription asks for.

    RED and AMBER+STRICT: only the agencies named in ``recipients``; AMBER: also the
    participants of the case and agencies whose jurisdiction covers a region the report
    concerns; GREEN and CLEAR: every participant of the exchange.
    """
    if agency.id == facts.sender or agency.id in facts.recipients:
        return True
    if facts.tlp in NAMED_ONLY:
        return False
    if facts.tlp == "AMBER":
        return agency.id in facts.participants or any(
            covers(agency.jurisdiction, code) for code in facts.regions
        )
    return True


@dataclass(frozen=True)
class Target:
    subscription_id: str
    agency_id: str
    connector: str


@dataclass(frozen=True)
class RoutingPlan:
    """Where a report goes, worked out before anything of it is written: the subscriptions
    it reaches, and the agencies that wanted it but whose clearance its marking withholds."""

    targets: tuple[Target, ...]
    withheld: frozenset[str]

    @property
    def routed_to(self) -> list[str]:
        return sorted({target.agency_id for target in self.targets})


_PLANS = "exchange.routing_plans"


@event.listens_for(Session, "after_flush")
def _forget_plans(session: Session, _context: Any) -> None:
    """A subscription or an agency changed in this transaction: plan afresh."""
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(row, (Subscription, SubscriptionMatch, Agency)) for row in changed):
        session.info.pop(_PLANS, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_plans_rolled_back(session: Session, _previous: Any) -> None:
    """A plan may have seen what was rolled back (a savepoint's change)."""
    session.info.pop(_PLANS, None)


# Routing plans this process keeps while the directory's version stands still; more
# than this many distinct sets of facts are planned each time.
KEPT_PLANS = 4096
_kept_plans: Kept[RoutingFacts, RoutingPlan] = Kept(limit=KEPT_PLANS)


def plan(session: Session, facts: RoutingFacts) -> RoutingPlan:
    """The live subscriptions of active agencies that want the report (or whose agency it
    is addressed to) and may receive it; never the sender's own, which has the report. The
    candidates come from the type and region index; the other filters are checked here.
    Plans are kept by the process while the directory's version stands still (reports
    mostly share their facts: one sender, one village, the same few types and
    severities), and by the transaction while it changes the directory itself."""
    if session.new or session.dirty or session.deleted:
        session.flush()  # what autoflush would do: a pending change forgets the plans
    plans: dict[RoutingFacts, RoutingPlan] = session.info.setdefault(_PLANS, {})
    if facts not in plans:
        kept = _kept_plans.get(session, facts, lambda: _plan(session, facts))
        assert kept is not None  # a plan is never None
        plans[facts] = kept
    return plans[facts]


def _plan(session: Session, facts: RoutingFacts) -> RoutingPlan:
    chosen = or_(
        col(Subscription.id).in_(_indexed_matches(facts)),
        col(Subscription.agency_id).in_(sorted(facts.addressed)),
    )
    query = (
        select(Subscription, Agency)
        .join(Agency, col(Agency.id) == col(Subscription.agency_id))
        .where(
            col(Subscription.active).is_(True),
            col(Agency.active).is_(True),
            col(Subscription.agency_id) != facts.sender,
            chosen,
        )
        .order_by(col(Subscription.id))
        # As the database has them, whatever the session's identity map held: the plan
        # may be kept for the process (exchange.directory).
        .execution_options(populate_existing=True)
    )
    targets: list[Target] = []
    withheld: set[str] = set()
    for subscription, agency in session.exec(query).all():
        wanted = wants(subscription, facts)
        if not (wanted or agency.id in facts.addressed):
            continue
        if not may_receive(agency, facts):
            # Only a subscription's own wish counts as withheld: a participant of the case
            # that a RED follow-up does not name is simply not addressed, and naming it
            # would tell the sender who received the reports it refers to.
            if wanted:
                withheld.add(agency.id)
            continue
        targets.append(Target(subscription.id, agency.id, subscription.connector))
    return RoutingPlan(targets=tuple(targets), withheld=frozenset(withheld))


def route(
    session: Session,
    *,
    report_id: str,
    plan: RoutingPlan,
    actor: str,
    action: str = "report.routed",
) -> None:
    """One delivery per target of the plan, recorded as ``report.routed``: pending, its
    job sent to the broker after commit, or for an inbox, delivered (see insert_routed)."""
    now = utcnow()
    deliveries: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4().hex,
            "report_id": report_id,
            "subscription_id": target.subscription_id,
            "agency_id": target.agency_id,
            "connector": target.connector,
            "created_at": now,
        }
        for target in plan.targets
    ]
    insert_routed(session, deliveries)
    statistics.share(session, report_id=report_id, agencies=plan.routed_to)
    audit.record(
        session,
        action=action,
        subject=f"report:{report_id}",
        actor=actor,
        details={
            "deliveries": [
                {"id": d["id"], "agency": d["agency_id"], "subscription": d["subscription_id"]}
                for d in deliveries
            ],
            "withheld_by_tlp": sorted(plan.withheld),
        },
    )


def _indexed_matches(facts: RoutingFacts) -> SelectOfScalar[str]:
    """Ids of subscriptions whose type and region filters select the report: a region
    filter matches a code it covers (``36.03`` for ``36.03.11.2009``: the code's ancestors)
    and a code that covers it (a village's subscription, a district-wide report: a range
    scan over the codes that start with the report's)."""
    region = col(SubscriptionMatch.region)
    ancestors = {code[:cut] for code in facts.regions for cut in _PREFIX_CUTS if cut <= len(code)}
    # "/" sorts right after ".": [code + ".", code + "/") holds exactly the codes below it.
    below = [(region > code + ".") & (region < code + "/") for code in facts.regions]
    return (
        select(SubscriptionMatch.subscription_id)
        .where(col(SubscriptionMatch.type).in_([facts.type, ANY]))
        .where(or_(region == ANY, region.in_(ancestors), *below))
    )
