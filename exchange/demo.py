"""The demo deployment: the Banten agencies of the Desa Binaan Imigrasi exchange, each with
the subscriptions its work needs, so that every routing rule is exercised from the start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exchange.accounts.models import Role
from exchange.agencies.models import DEFAULT_CLEARANCE, AgencyKind, Scope, Sensitivity

# What each kind of agency needs to act on a report (data minimisation): the police and
# immigration identify people; BP3MI and social services also protect victims and children;
# manpower offices and village officers work with the operational picture.
IDENTIFYING = DEFAULT_CLEARANCE | {Sensitivity.identifying}
EVERYTHING = IDENTIFYING | {Sensitivity.special}


@dataclass(frozen=True)
class DemoAgency:
    id: str
    name: str
    kind: AgencyKind
    jurisdiction: str
    scopes: tuple[Scope, ...]
    clearance: frozenset[Sensitivity] = DEFAULT_CLEARANCE
    # Bodies of POST /v1/subscriptions (the pull inbox: the demo has no endpoints to call).
    subscriptions: tuple[dict[str, Any], ...] = field(default=())
    # The roles of the one console user `exchange init --demo` makes for the agency.
    roles: frozenset[Role] = frozenset({Role.reporter, Role.receiver})


def inbox(label: str, **filters: Any) -> dict[str, Any]:
    return {"label": label, "connector": "inbox", **filters}


OPERATOR = DemoAgency(
    id="hub",
    name="Exchange hub operator",
    kind=AgencyKind.operator,
    jurisdiction="36",
    scopes=(Scope.admin, Scope.audit, Scope.metrics),
    roles=frozenset({Role.hub_admin, Role.auditor}),
)

BANTEN = (
    DemoAgency(
        "kanim-tangerang",
        "Kantor Imigrasi Kelas I TPI Tangerang",
        AgencyKind.immigration,
        "36.03",
        (Scope.submit, Scope.receive),
        IDENTIFYING,
        # Every passport flag about a resident of Kabupaten Tangerang, whichever office
        # filed it: routing looks at the applicant's home village and NIK district too.
        (
            inbox(
                "Passport flags, Kab. Tangerang",
                types=["passport-application-flag"],
                regions=["36.03"],
            ),
        ),
    ),
    DemoAgency(
        "kanim-serang",
        "Kantor Imigrasi Kelas I TPI Serang",
        AgencyKind.immigration,
        "36.04",
        (Scope.submit, Scope.receive),
        IDENTIFYING,
        (
            inbox(
                "Passport flags, Kab. Serang",
                types=["passport-application-flag"],
                regions=["36.04"],
            ),
        ),
    ),
    DemoAgency(
        "polda-banten",
        "Kepolisian Daerah Banten",
        AgencyKind.police,
        "36",
        (Scope.submit, Scope.receive),
        EVERYTHING,
        (inbox("High and critical alerts, all Banten", min_severity="high"),),
    ),
    DemoAgency(
        "polres-tangerang",
        "Kepolisian Resor Kota Tangerang",
        AgencyKind.police,
        "36.03",
        (Scope.submit, Scope.receive),
        EVERYTHING,
        (
            inbox(
                "Calo and departures, Kab. Tangerang",
                regions=["36.03"],
                indicators=["calo_recruiting", "group_departure", "minor_involved"],
            ),
        ),
    ),
    DemoAgency(
        "bp3mi-banten",
        "Balai Pelayanan Pelindungan Pekerja Migran Indonesia Banten",
        AgencyKind.bp3mi,
        "36",
        (Scope.submit, Scope.receive),
        EVERYTHING,
        # Referrals addressed to BP3MI reach it on any subscription; this one is for the
        # interceptions and recruiter alerts of the whole province.
        (
            inbox(
                "Interceptions and recruiters",
                types=["departure-interception", "recruitment-actor-alert"],
            ),
        ),
    ),
    DemoAgency(
        "disnakertrans-banten",
        "Dinas Tenaga Kerja dan Transmigrasi Provinsi Banten",
        AgencyKind.manpower,
        "36",
        (Scope.submit, Scope.receive),
        DEFAULT_CLEARANCE,
        (
            inbox(
                "Recruiters and early warnings",
                types=["recruitment-actor-alert", "village-early-warning"],
            ),
        ),
    ),
    DemoAgency(
        "dinsos-banten",
        "Dinas Sosial Provinsi Banten",
        AgencyKind.social,
        "36",
        (Scope.submit, Scope.receive),
        EVERYTHING,
        (inbox("Referrals and case updates", types=["victim-referral", "case-update"]),),
    ),
    DemoAgency(
        "kanwil-kemenkum-banten",
        "Kantor Wilayah Kementerian Hukum Banten",
        AgencyKind.other,
        "36",
        (Scope.receive,),
        DEFAULT_CLEARANCE,
        (inbox("Case updates, all Banten", types=["case-update"]),),
        frozenset({Role.receiver}),
    ),
    DemoAgency(
        "pimpasa-tanjakan-mekar",
        "PIMPASA Desa Tanjakan Mekar, Rajeg, Kabupaten Tangerang",
        # Village immigration officers are immigration officers placed in a village: they
        # file early warnings and passport flags for their village.
        AgencyKind.immigration,
        "36.03.11.2009",
        (Scope.submit, Scope.receive),
        DEFAULT_CLEARANCE,
        # What happens in its village; case updates on its own reports come as feedback.
        (inbox("Tanjakan Mekar", regions=["36.03.11.2009"]),),
    ),
)
