"""Registry webhooks: who may see and manage which, and the checks on what they subscribe.

A model-level webhook in `TEST_MODE` (or `DISABLED`) needs `CAN_EDIT` on its model, an
`ACTIVE` one `CAN_MANAGE`; a registry-wide webhook (no `model_name`) needs `CAN_MANAGE` on every
model, i.e. a role bound `CAN_MANAGE` on the pattern `"*"`. The secret and the authorization
header are stored encrypted and never returned.
"""

from __future__ import annotations

import asyncio

from api.deps import Services
from api.services.errors import Invalid, NotFound, Refused
from api.services.permissions import is_registry_admin, require_permission
from policies import PermissionLevel, Principal
from workflows.ledger import Webhook
from workflows.webhooks.events import REGISTRY_WIDE_ONLY
from workflows.webhooks.signing import EncryptionKeyMissing, SecretBox
from workflows.webhooks.ssrf import UnsafeUrlError, check_url


def _level_for(status: str) -> PermissionLevel:
    return PermissionLevel.CAN_MANAGE if status == "ACTIVE" else PermissionLevel.CAN_EDIT


def require_level(
    services: Services, principal: Principal, model_name: str | None, status: str
) -> None:
    """Refused unless the principal may manage a webhook of that model in that status."""
    if model_name is None:
        if not is_registry_admin(services, principal):
            raise Refused(
                f"{principal.sub} may not manage registry-wide webhooks: that needs CAN_MANAGE "
                'on every model (a role bound CAN_MANAGE on "*"); give a model_name instead'
            )
        return
    require_permission(services, principal, model_name, _level_for(status))


def may_view(services: Services, principal: Principal, row: Webhook) -> bool:
    try:
        require_level(services, principal, row.model_name, "TEST_MODE")
    except Refused:
        return False
    return True


async def visible_webhook(services: Services, principal: Principal, webhook_id: str) -> Webhook:
    """The webhook, if the caller may see it (CAN_EDIT on its model, or registry admin for a
    registry-wide one); otherwise the same NotFound as a missing one."""
    row = await services.ledger.webhooks.get(webhook_id)
    if row is None or not may_view(services, principal, row):
        raise NotFound(f"no registry webhook with id {webhook_id!r}")
    return row


def secret_box(services: Services) -> SecretBox:
    key = services.settings.encryption_key
    return SecretBox(key.get_secret_value() if key else None)


def encrypt(box: SecretBox, value: str | None) -> str | None:
    try:
        return box.encrypt(value)
    except EncryptionKeyMissing as err:
        raise Invalid(str(err)) from err


async def check_receiver_url(services: Services, url: str) -> None:
    """Invalid unless the URL is one webhooks may be sent to (no private addresses...)."""
    try:
        await asyncio.to_thread(check_url, url, services.settings.webhook_allow_hosts)
    except UnsafeUrlError as err:
        raise Invalid(str(err)) from err


def check_events_scope(events: list[str], model_name: str | None) -> None:
    if model_name is not None:
        wide = sorted(set(events) & REGISTRY_WIDE_ONLY)
        if wide:
            raise Invalid(
                f"{', '.join(wide)} can only be subscribed by a registry-wide webhook "
                "(one without model_name)"
            )
