"""HTTP surface of the schema registry: ``/v1/schemas``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from exchange.dependencies import HubDep, PrincipalDep
from exchange.errors import NotFound
from exchange.i18n import t
from exchange.jsonbody import HubRoute

router = APIRouter(prefix="/v1/schemas", tags=["schemas"], route_class=HubRoute)


@router.get("")
def list_schemas(hub: HubDep, _caller: PrincipalDep) -> list[dict[str, Any]]:
    """Every report type: its versions, the latest one's URI and who may submit it."""
    return [
        {
            "type": latest.name,
            "title": latest.schema.get("title"),
            "versions": [v.version for v in hub.registry.versions(latest.name)],
            "latest": latest.version,
            "uri": latest.uri,
            "default_tlp": latest.default_tlp,
            "submitters": sorted(latest.submitters),
        }
        for latest in hub.registry.latest()
    ]


@router.get("/{report_type}/{version}")
def get_schema(report_type: str, version: int, hub: HubDep, _caller: PrincipalDep) -> JSONResponse:
    """The JSON Schema (2020-12) of one version of a report type."""
    versions = {v.version: v for v in hub.registry.versions(report_type)}
    if version not in versions:
        raise NotFound(
            t(
                "registry.unknown_version",
                type=report_type,
                version=version,
                known=", ".join(map(str, sorted(versions))) or "-",
            )
        )
    return JSONResponse(versions[version].schema, media_type="application/schema+json")
