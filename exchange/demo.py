"""The demo deployment: the Banten agencies of the Desa Binaan Imigrasi exchange."""

from __future__ import annotations

from dataclasses import dataclass

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


OPERATOR = DemoAgency(
    id="hub",
    name="Exchange hub operator",
    kind=AgencyKind.operator,
    jurisdiction="36",
    scopes=(Scope.admin, Scope.audit, Scope.metrics),
)

BANTEN = (
    DemoAgency(
        "kanim-tangerang",
        "Kantor Imigrasi Kelas I TPI Tangerang",
        AgencyKind.immigration,
        "36.03",
        (Scope.submit, Scope.receive),
        IDENTIFYING,
    ),
    DemoAgency(
        "polda-banten",
        "Kepolisian Daerah Banten",
        AgencyKind.police,
        "36",
        (Scope.submit, Scope.receive),
        EVERYTHING,
    ),
    DemoAgency(
        "bp3mi-banten",
        "Balai Pelayanan Pelindungan Pekerja Migran Indonesia Banten",
        AgencyKind.bp3mi,
        "36",
        (Scope.submit, Scope.receive),
        EVERYTHING,
    ),
    DemoAgency(
        "disnakertrans-banten",
        "Dinas Tenaga Kerja dan Transmigrasi Provinsi Banten",
        AgencyKind.manpower,
        "36",
        (Scope.submit, Scope.receive),
    ),
    DemoAgency(
        "dinsos-banten",
        "Dinas Sosial Provinsi Banten",
        AgencyKind.social,
        "36",
        (Scope.submit, Scope.receive),
        EVERYTHING,
    ),
    DemoAgency(
        "pimpasa-tanjakan-mekar",
        "PIMPASA Desa Tanjakan Mekar, Rajeg, Kabupaten Tangerang",
        AgencyKind.village,
        "36.03.11.2009",
        (Scope.submit, Scope.receive),
    ),
)
