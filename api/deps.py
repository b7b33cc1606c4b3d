"""FastAPI dependencies: the services a route needs and the principal who calls it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import AuthenticationError, TokenVerifier
from api.errors import ApiError, forbidden
from policies import PermissionLevel, Policy, Principal, permission_for
from workflows.client import Transitions, connect
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry
from workflows.settings import Settings
from workflows.webhooks.events import WebhookEvent, announce_all, with_request_link

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the routes share, built once per process by the app's lifespan."""

    settings: Settings
    policy: Policy
    policy_hash: str
    verifier: TokenVerifier
    ledger: Ledger
    registry: MlflowRegistry
    _transitions: Transitions | None = None
    _connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def transitions(self) -> Transitions:
        """Connect to Temporal on first use, so the API starts (and answers /readyz) while
        Temporal is still coming up."""
        if self._transitions is None:
            async with self._connect_lock:
                if self._transitions is None:
                    try:
                        client = await connect(self.settings)
                    except Exception as err:
                        raise ApiError(
                            503,
                            f"Temporal at {self.settings.temporal_address} is not reachable "
                            f"({err}); check SIGNOFF_TEMPORAL_ADDRESS or start it",
                        ) from err
                    self._transitions = Transitions(client, self.settings.task_queue)
        return self._transitions

    async def announce(self, events: list[WebhookEvent], *, strict: bool = False) -> None:
        """Announce what just happened to the subscribed webhooks. The deliveries are durable
        once started. If Temporal cannot be reached, a `strict` caller gets the error (its
        sender can retry: announcing is idempotent per event); otherwise the event is logged
        as lost and the call that caused it, already done, still succeeds."""
        base = self.settings.callback_base_url
        try:
            client = (await self.transitions()).client
            await announce_all(
                client,
                self.ledger,
                self.settings.task_queue,
                [with_request_link(event, base) for event in events],
            )
        except Exception as err:
            if strict:
                raise
            log.error(
                "could not announce %s to webhooks: %s",
                ", ".join(event.event for event in events),
                err,
            )


def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_transitions(services: Annotated[Services, Depends(get_services)]) -> Transitions:
    return await services.transitions()


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The verified caller; 401 otherwise. A coroutine: a JWKS fetch it may need never blocks
    the event loop. Callers outside dependency injection must await it."""
    if credentials is None:
        raise ApiError(401, "no bearer token; send 'Authorization: Bearer <JWT>'")
    try:
        return await services.verifier.verify(credentials.credentials)
    except AuthenticationError as err:
        raise ApiError(401, str(err)) from err


ServicesDep = Annotated[Services, Depends(get_services)]
TransitionsDep = Annotated[Transitions, Depends(get_transitions)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_permission(
    services: Services, principal: Principal, model: str, level: PermissionLevel
) -> PermissionLevel:
    """403 unless the principal holds `level` on the model. The same answer whether or not
    the model exists, so a principal cannot probe for models it has no binding for."""
    granted = permission_for(services.policy, principal.roles, model)
    if granted is None:
        raise forbidden(f"{principal.sub} has no permission on model {model!r}")
    if not granted.includes(level):
        raise forbidden(
            f"{principal.sub} has {granted.value} on model {model!r}; this needs {level.value}"
        )
    return granted


def has_binding(services: Services, principal: Principal | None, model: str) -> bool:
    """Whether the principal holds any level on the model. An object looked up by id (a
    request, a comment) whose model the principal has no binding for answers the same 404 as
    a missing one, so ids cannot be probed; with a binding too low, `require_permission`'s 403
    applies. None (no principal: a CI callback token) has no binding to check."""
    return principal is None or permission_for(services.policy, principal.roles, model) is not None


def is_registry_admin(services: Services, principal: Principal) -> bool:
    """CAN_MANAGE on every model: some role binds CAN_MANAGE on the pattern "*"."""
    return any(
        services.policy.roles.get(role, {}).get("*") == PermissionLevel.CAN_MANAGE
        for role in principal.roles
    )


def require_registry_admin(services: Services, principal: Principal, what: str) -> None:
    """403 unless the principal is a registry admin; `what` completes "may not ..."."""
    if not is_registry_admin(services, principal):
        raise forbidden(
            f"{principal.sub} may not {what}: that needs CAN_MANAGE on every model (a role "
            'bound CAN_MANAGE on "*")'
        )
