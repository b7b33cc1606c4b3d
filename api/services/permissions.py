"""Who may do what on which model: the policy's roles and Databricks' permission levels."""

from __future__ import annotations

from api.deps import Services
from api.services.errors import Refused
from policies import PermissionLevel, Principal, permission_for


def require_permission(
    services: Services, principal: Principal, model: str, level: PermissionLevel
) -> PermissionLevel:
    """Refused unless the principal holds `level` on the model. The same answer whether or not
    the model exists, so a principal cannot probe for models it has no binding for."""
    granted = permission_for(services.policy, principal.roles, model)
    if granted is None:
        raise Refused(f"{principal.sub} has no permission on model {model!r}")
    if not granted.includes(level):
        raise Refused(
            f"{principal.sub} has {granted.value} on model {model!r}; this needs {level.value}"
        )
    return granted


def has_binding(services: Services, principal: Principal | None, model: str) -> bool:
    """Whether the principal holds any level on the model. An object looked up by id (a
    request, a comment) whose model the principal has no binding for answers the same 404 as
    a missing one, so ids cannot be probed; with a binding too low, `require_permission`'s
    refusal applies. None (no principal: a CI callback token) has no binding to check."""
    return principal is None or permission_for(services.policy, principal.roles, model) is not None


def is_registry_admin(services: Services, principal: Principal) -> bool:
    """CAN_MANAGE on every model: some role binds CAN_MANAGE on the pattern "*"."""
    return any(
        services.policy.roles.get(role, {}).get("*") == PermissionLevel.CAN_MANAGE
        for role in principal.roles
    )


def require_registry_admin(services: Services, principal: Principal, what: str) -> None:
    """Refused unless the principal is a registry admin; `what` completes "may not ..."."""
    if not is_registry_admin(services, principal):
        raise Refused(
            f"{principal.sub} may not {what}: that needs CAN_MANAGE on every model (a role "
            'bound CAN_MANAGE on "*")'
        )
