"""HTTP surface of subscriptions: ``/v1/subscriptions``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from exchange.agencies.models import Scope
from exchange.agencies.service import Principal
from exchange.contracts import links
from exchange.dependencies import HubDep, SessionDep, requires
from exchange.jsonbody import HubRoute
from exchange.routing import service
from exchange.routing.contracts import (
    Backfill,
    SubscriptionCreate,
    SubscriptionIssued,
    SubscriptionOut,
)

router = APIRouter(tags=["subscriptions"], route_class=HubRoute)
ReceiverDep = Annotated[Principal, Depends(requires(Scope.receive))]


SUBSCRIPTION = "/v1/subscriptions/{subscription_id}"
NEW_SUBSCRIPTION = {"subscription_id": "$response.body#/id"}


@router.post(
    "/v1/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionIssued,
    responses=links(
        201,
        GetSubscription=("GET", SUBSCRIPTION, NEW_SUBSCRIPTION),
        RotateSecret=("POST", f"{SUBSCRIPTION}/rotate-secret", NEW_SUBSCRIPTION),
        DeleteSubscription=("DELETE", SUBSCRIPTION, NEW_SUBSCRIPTION),
    ),
)
def create_subscription(
    body: SubscriptionCreate, session: SessionDep, hub: HubDep, receiver: ReceiverDep
) -> SubscriptionIssued:
    """Ask for reports. The answer shows the config's secrets (a webhook's `whsec_`
    secret) this once; later reads mask them. With `backfill` (`PT24H`) the matching
    reports of that period, that the agency may receive, are delivered too."""
    subscription, secrets = service.create_subscription(
        session,
        agency_id=receiver.agency_id,
        request=body,
        registry=hub.registry,
        context=hub.connector_context,
        sealer=hub.keyring.sealer,
        limit=hub.settings.max_subscriptions_per_agency,
        actor=receiver.actor,
    )
    session.flush()
    backfilled = (
        service.backfill(
            session,
            subscription=subscription,
            period=body.backfill,
            registry=hub.registry,
            limit=hub.settings.backfill_max_reports,
            actor=receiver.actor,
        )
        if body.backfill is not None
        else None
    )
    return SubscriptionIssued(
        **SubscriptionOut.of(subscription).model_dump(),
        secrets=secrets,
        backfill=Backfill(**vars(backfilled)) if backfilled else None,
    )


@router.get("/v1/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(session: SessionDep, receiver: ReceiverDep) -> list[SubscriptionOut]:
    return [
        SubscriptionOut.of(s)
        for s in service.list_subscriptions(session, agency_id=receiver.agency_id)
    ]


@router.get("/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(
    subscription_id: str, session: SessionDep, receiver: ReceiverDep
) -> SubscriptionOut:
    return SubscriptionOut.of(
        service.get_subscription(
            session, agency_id=receiver.agency_id, subscription_id=subscription_id
        )
    )


@router.delete("/v1/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(subscription_id: str, session: SessionDep, receiver: ReceiverDep) -> None:
    service.delete_subscription(
        session,
        agency_id=receiver.agency_id,
        subscription_id=subscription_id,
        actor=receiver.actor,
    )


@router.post("/v1/subscriptions/{subscription_id}/rotate-secret", response_model=SubscriptionIssued)
def rotate_secret(
    subscription_id: str, session: SessionDep, hub: HubDep, receiver: ReceiverDep
) -> SubscriptionIssued:
    """A new signing secret, shown once; the previous one also signs for 24 hours."""
    subscription, secrets = service.rotate_secret(
        session,
        agency_id=receiver.agency_id,
        subscription_id=subscription_id,
        sealer=hub.keyring.sealer,
        actor=receiver.actor,
    )
    return SubscriptionIssued(**SubscriptionOut.of(subscription).model_dump(), secrets=secrets)
