"""HTTP surface of agencies and their keys: ``/v1/agencies`` and ``/v1/me``."""

from __future__ import annotations

from fastapi import APIRouter, status

from exchange.agencies import service
from exchange.agencies.contracts import (
    AgencyCreate,
    AgencyOut,
    AgencyUpdate,
    ApiKeyCreate,
    ApiKeyOut,
    IssuedApiKeyOut,
    SigningKeyCreate,
    SigningKeyOut,
    WhoAmI,
)
from exchange.agencies.models import Scope
from exchange.contracts import links
from exchange.dependencies import AdminDep, PrincipalDep, SessionDep
from exchange.jsonbody import HubRoute

router = APIRouter(tags=["agencies"], route_class=HubRoute)


@router.get("/v1/me", response_model=WhoAmI)
def who_am_i(session: SessionDep, principal: PrincipalDep) -> WhoAmI:
    agency = service.get_agency(session, principal.agency_id)
    return WhoAmI(
        agency=AgencyOut.of(agency),
        key_id=principal.key_id,
        scopes=sorted(principal.scopes),
    )


AGENCY = "/v1/agencies/{agency_id}"
NEW_AGENCY = {"agency_id": "$response.body#/id"}
SAME_AGENCY = {"agency_id": "$request.path.agency_id"}


@router.post(
    "/v1/agencies",
    status_code=status.HTTP_201_CREATED,
    response_model=AgencyOut,
    responses=links(
        201,
        GetAgency=("GET", AGENCY, NEW_AGENCY),
        UpdateAgency=("PATCH", AGENCY, NEW_AGENCY),
        CreateKey=("POST", f"{AGENCY}/keys", NEW_AGENCY),
        ListKeys=("GET", f"{AGENCY}/keys", NEW_AGENCY),
        AddSigningKey=("POST", f"{AGENCY}/signing-keys", NEW_AGENCY),
    ),
)
def create_agency(body: AgencyCreate, session: SessionDep, admin: AdminDep) -> AgencyOut:
    agency = service.create_agency(
        session,
        agency_id=body.id,
        name=body.name,
        kind=body.kind,
        jurisdiction=body.jurisdiction,
        clearance=body.clearance,
        actor=admin.actor,
    )
    return AgencyOut.of(agency)


@router.get("/v1/agencies", response_model=list[AgencyOut])
def list_agencies(session: SessionDep, _admin: AdminDep) -> list[AgencyOut]:
    return [AgencyOut.of(a) for a in service.list_agencies(session)]


@router.get("/v1/agencies/{agency_id}", response_model=AgencyOut)
def get_agency(agency_id: str, session: SessionDep, principal: PrincipalDep) -> AgencyOut:
    principal.require_self_or_hub_admin(agency_id)
    return AgencyOut.of(service.get_agency(session, agency_id))


@router.patch("/v1/agencies/{agency_id}", response_model=AgencyOut)
def update_agency(
    agency_id: str, body: AgencyUpdate, session: SessionDep, admin: AdminDep
) -> AgencyOut:
    agency = service.update_agency(
        session,
        agency_id,
        name=body.name,
        jurisdiction=body.jurisdiction,
        active=body.active,
        require_signed_reports=body.require_signed_reports,
        require_signing_key_approval=body.require_signing_key_approval,
        clearance=body.clearance,
        actor=admin.actor,
    )
    return AgencyOut.of(agency)


@router.post(
    "/v1/agencies/{agency_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=IssuedApiKeyOut,
    responses=links(
        201,
        RevokeKey=(
            "DELETE",
            f"{AGENCY}/keys/{{key_id}}",
            {**SAME_AGENCY, "key_id": "$response.body#/id"},
        ),
    ),
)
def create_api_key(
    agency_id: str, body: ApiKeyCreate, session: SessionDep, principal: PrincipalDep
) -> IssuedApiKeyOut:
    """A new API key. Its token is in this response and nowhere else, ever."""
    principal.require_admin_of(agency_id)
    issued = service.create_api_key(
        session,
        agency_id=agency_id,
        scopes=[Scope(s) for s in body.scopes],
        label=body.label,
        expires_at=body.expires_at,
        granted_by=principal,
        actor=principal.actor,
    )
    return IssuedApiKeyOut.issued(issued.key, issued.token)


@router.get("/v1/agencies/{agency_id}/keys", response_model=list[ApiKeyOut])
def list_api_keys(agency_id: str, session: SessionDep, principal: PrincipalDep) -> list[ApiKeyOut]:
    principal.require_self_or_hub_admin(agency_id)
    return [ApiKeyOut.of(k) for k in service.list_api_keys(session, agency_id=agency_id)]


@router.delete("/v1/agencies/{agency_id}/keys/{key_id}", response_model=ApiKeyOut)
def revoke_api_key(
    agency_id: str, key_id: str, session: SessionDep, principal: PrincipalDep
) -> ApiKeyOut:
    principal.require_admin_of(agency_id)
    key = service.revoke_api_key(session, agency_id=agency_id, key_id=key_id, actor=principal.actor)
    return ApiKeyOut.of(key)


@router.post(
    "/v1/agencies/{agency_id}/signing-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=SigningKeyOut,
    responses=links(
        201,
        ApproveSigningKey=(
            "POST",
            f"{AGENCY}/signing-keys/{{key_id}}/approve",
            {**SAME_AGENCY, "key_id": "$response.body#/id"},
        ),
        RevokeSigningKey=(
            "DELETE",
            f"{AGENCY}/signing-keys/{{key_id}}",
            {**SAME_AGENCY, "key_id": "$response.body#/id"},
        ),
    ),
)
def add_signing_key(
    agency_id: str, body: SigningKeyCreate, session: SessionDep, principal: PrincipalDep
) -> SigningKeyOut:
    principal.require_admin_of(agency_id)
    key = service.add_signing_key(
        session,
        agency_id=agency_id,
        public_key=body.public_key,
        label=body.label,
        actor=principal.actor,
    )
    return SigningKeyOut.of(key)


@router.get("/v1/agencies/{agency_id}/signing-keys", response_model=list[SigningKeyOut])
def list_signing_keys(
    agency_id: str, session: SessionDep, principal: PrincipalDep
) -> list[SigningKeyOut]:
    principal.require_self_or_hub_admin(agency_id)
    keys = service.list_signing_keys(session, agency_id=agency_id)
    return [SigningKeyOut.of(k) for k in keys]


@router.delete("/v1/agencies/{agency_id}/signing-keys/{key_id}", response_model=SigningKeyOut)
def revoke_signing_key(
    agency_id: str, key_id: str, session: SessionDep, principal: PrincipalDep
) -> SigningKeyOut:
    principal.require_admin_of(agency_id)
    key = service.revoke_signing_key(
        session, agency_id=agency_id, key_id=key_id, actor=principal.actor
    )
    return SigningKeyOut.of(key)


@router.post("/v1/agencies/{agency_id}/signing-keys/{key_id}/approve", response_model=SigningKeyOut)
def approve_signing_key(
    agency_id: str, key_id: str, session: SessionDep, principal: PrincipalDep
) -> SigningKeyOut:
    """The second admin's approval of a signing key, where the agency requires one
    (``require_signing_key_approval``): by another admin key than the one that added it."""
    principal.require_admin_of(agency_id)
    key = service.approve_signing_key(
        session, agency_id=agency_id, key_id=key_id, approver=principal
    )
    return SigningKeyOut.of(key)
