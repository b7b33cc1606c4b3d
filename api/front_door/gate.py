"""The front door's decisions: may this principal make this MLflow call, is it a move the policy
governs, and which search results may they see.

- Registry calls by the policy's levels on the model (`roles:`); tracking calls by the levels on
  the experiment (`tracking:`, `policies.front_door`), the experiment of a run, logged model or
  trace, and every experiment of an evaluation dataset, looked up in MLflow
  (`api.front_door.resources`).
- A principal with no binding for a model or experiment gets the answer a missing one gets,
  made here without asking MLflow, so the two cannot be told apart.
- A stage or alias a rule governs is refused with how to request it, unless the caller may break
  glass (CAN_MANAGE, `break_glass: true` on the rule, and a reason): then it is a recorded
  break-glass move (`api.services.break_glass`).
- Tags: `protected_tags:`, and the keys a `type: tag` check relies on (`tag_refusal`).
- Search answers keep what the caller may read (`readable`; `api.front_door.searching` fills
  the page).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

from api.deps import Services
from api.front_door.resources import Missing, OwnedKind, Resources
from api.front_door.routes import Classified, FilterKind, Move, Need
from api.services.errors import Invalid, NotFound, Refused, ServiceError
from api.services.permissions import is_registry_admin
from policies import (
    PermissionLevel,
    Principal,
    TransitionRule,
    is_alias,
    normalize_target,
    permission_for,
)
from policies.front_door import TrackingLevel, tag_refusal, tracking_level_for
from policies.wording import describe_rule

REASON_HEADER = "x-signoff-reason"
"""Where a break-glass move through the front door may carry its reason (or `comment` in the
JSON body): MLflow's own calls have no field for one."""


def model_missing(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found")


class Gate:
    def __init__(self, services: Services, resources: Resources) -> None:
        self.services = services
        self.resources = resources

    @property
    def policy(self):  # noqa: ANN201 - the Policy
        return self.services.policy

    # -- levels ------------------------------------------------------------------------------

    async def authorize(self, principal: Principal, call: Classified) -> None:
        """Raise a ServiceError unless the principal holds every level the call needs."""
        for need in call.needs:
            await self._check(principal, call, need)
        for model, key in call.tag_keys:
            granted = permission_for(self.policy, principal.roles, model)
            refusal = tag_refusal(
                self.policy, principal.roles, granted, model=model, key=key, who=principal.sub
            )
            if refusal is not None:
                raise Refused(refusal)

    async def _check(self, principal: Principal, call: Classified, need: Need) -> None:
        if need.kind == "admin":
            if not is_registry_admin(self.services, principal):
                raise Refused(
                    f"{principal.sub} may not call {call.route} through Signoff: the front door "
                    "does not classify that route, so it is open only to registry admins "
                    '(a role bound CAN_MANAGE on "*")'
                )
            return
        if need.kind == "role":
            if not self._holds_a_role(principal):
                raise Refused(f"{principal.sub} holds no role of Signoff's policy")
            return
        if need.kind in ("model", "new_model"):
            self._check_model(principal, need)
            return
        await self._check_tracking(principal, need)

    def _holds_a_role(self, principal: Principal) -> bool:
        known = set(self.policy.roles) | set(self.policy.tracking or {})
        return any(role in known for role in principal.roles)

    def _check_model(self, principal: Principal, need: Need) -> None:
        assert isinstance(need.level, PermissionLevel)
        granted = permission_for(self.policy, principal.roles, need.key)
        if granted is None:
            if need.kind == "model":
                raise model_missing(need.key)
            raise Refused(
                f"{principal.sub} has no permission on model {need.key!r}; this needs "
                f"{need.level.value}"
            )
        if not granted.includes(need.level):
            raise Refused(
                f"{principal.sub} has {granted.value} on model {need.key!r}; this needs "
                f"{need.level.value}"
            )

    async def _check_tracking(self, principal: Principal, need: Need) -> None:
        assert isinstance(need.level, TrackingLevel)
        if need.kind == "experiment_name":
            missing: ServiceError = NotFound(f"Could not find experiment with name '{need.key}'")
            if need.level is not TrackingLevel.READ:
                missing = Refused(
                    f"{principal.sub} has no level on experiment {need.key!r}; this needs "
                    f"{need.level.value}"
                )
            self._check_level(principal, need, need.key, missing)
            return
        try:
            experiment_ids, missing = await self._experiments_of(principal, need)
            names = [await self.resources.experiment_name(i) for i in experiment_ids]
        except Missing as err:
            raise NotFound(err.message) from err
        for name in names:
            self._check_level(principal, need, name, missing)

    def _check_level(
        self, principal: Principal, need: Need, name: str, missing: ServiceError
    ) -> None:
        assert isinstance(need.level, TrackingLevel)
        level = tracking_level_for(self.policy, principal.roles, name)
        if level is None:
            raise missing
        if not level.includes(need.level):
            raise Refused(
                f"{principal.sub} has {level.value} on experiment {name!r}; this needs "
                f"{need.level.value}"
            )

    async def _experiments_of(
        self, principal: Principal, need: Need
    ) -> tuple[tuple[str, ...], ServiceError]:
        """The experiment ids a need touches (none: a trace not started yet), and what a caller
        without a binding is told; `Missing` when what it names does not exist."""
        lookup, message = _LOOKUPS.get(need.kind, (None, ""))
        if lookup is None:
            return (need.key,), NotFound(f"No Experiment with id={need.key} exists")
        missing: ServiceError = NotFound(message.format(key=need.key))
        try:
            found = await lookup(self.resources, need.key)
        except Missing as err:
            if need.kind == "new_trace":
                return (), missing
            raise Missing(missing.message) from err
        if need.kind == "new_trace":
            missing = Refused(f"{principal.sub} may not add to trace {need.key!r}")
        if isinstance(found, str):
            return (found,), missing
        if not found and not is_registry_admin(self.services, principal):
            raise Missing(missing.message)  # a dataset of no experiment: admins only
        return found, missing

    # -- governed moves ----------------------------------------------------------------------

    def governing_rule(self, move: Move) -> TransitionRule | None:
        """The rule that governs the move, if any. Aliases compare without case, so a database
        that collates names without case cannot turn `@Champion` into `@champion`."""
        if move.kind == "stage":
            try:
                stage = normalize_target(move.target)
            except ValueError:
                return None  # not a stage: MLflow refuses it
            return next(
                (
                    rule
                    for rule in self.policy.transitions
                    if rule.to == stage and _covers(rule, move.model)
                ),
                None,
            )
        alias = move.target.lower()
        return next(
            (
                rule
                for rule in self.policy.transitions
                if is_alias(rule.to) and fnmatchcase(alias, rule.to.lower())
                and _covers(rule, move.model)
            ),
            None,
        )  # fmt: skip

    def may_break_glass(self, principal: Principal, move: Move, rule: TransitionRule) -> bool:
        granted = permission_for(self.policy, principal.roles, move.model)
        return (
            rule.break_glass
            and move.kind != "alias_delete"
            and granted is not None
            and granted.includes(PermissionLevel.CAN_MANAGE)
        )

    def refusal(self, principal: Principal, move: Move, rule: TransitionRule) -> Refused:
        """403 saying the move is governed and how to request it."""
        if move.kind == "alias_delete":
            return Refused(
                f"deleting the alias {move.target} of {move.model!r} is governed by Signoff's "
                f"policy (the rule for {rule.to}: {describe_rule(rule)}); move the alias to "
                f"another version with a request (`signoff request {move.model} <version> "
                f"{move.target}`), or ask an MLflow administrator"
            )
        body = {"name": move.model, "version": move.version, "stage": move.target}
        return Refused(
            f"moving version {move.version} of {move.model!r} to {move.target} is governed by "
            f"Signoff's policy ({describe_rule(rule)}); {principal.sub} may not make it "
            f"directly. Request it: `signoff request {move.model} {move.version} "
            f"{move.target}`, or POST /api/2.0/mlflow/transition-requests/create with "
            f"{json.dumps(body)}"
        )

    # -- search results ----------------------------------------------------------------------

    async def readable(self, principal: Principal, kind: FilterKind, items: Any) -> list[Any]:  # noqa: ANN401
        """The items of a search answer's `kind` list the principal may read."""
        if not isinstance(items, list):
            return []
        if kind == "experiments":
            return self.readable_experiments(principal, items)
        if kind == "datasets":
            return [item for item in items if await self._readable_dataset(principal, item)]
        if kind == "configs":  # online scoring configurations, each of one experiment
            return [
                item
                for item in items
                if isinstance(item, dict)
                and await self._reads_all(principal, [str(item.get("experiment_id", ""))])
            ]
        return self.readable_models(principal, items)

    async def _readable_dataset(self, principal: Principal, item: Any) -> bool:  # noqa: ANN401
        """Readable when the caller may read every experiment it belongs to (MLflow's own rule);
        one of no experiment only by registry admins."""
        if not isinstance(item, dict):
            return False
        ids = item.get("experiment_ids")
        if not isinstance(ids, list) or not ids:  # MLflow's search leaves them out
            try:
                ids = list(await self.resources.dataset_experiments(str(item.get("dataset_id"))))
            except Missing:
                return False
        if not ids:
            return is_registry_admin(self.services, principal)
        return await self._reads_all(principal, [str(i) for i in ids])

    async def _reads_all(self, principal: Principal, experiment_ids: list[str]) -> bool:
        for experiment_id in experiment_ids:
            try:
                name = await self.resources.experiment_name(experiment_id)
            except Missing:
                return False
            if tracking_level_for(self.policy, principal.roles, name) is None:
                return False
        return True

    def readable_models(self, principal: Principal, items: Iterable[Any]) -> list[Any]:
        return [
            item
            for item in items
            if isinstance(item, dict)
            and permission_for(self.policy, principal.roles, str(item.get("name", ""))) is not None
        ]

    def readable_experiments(self, principal: Principal, items: Iterable[Any]) -> list[Any]:
        return [
            item
            for item in items
            if isinstance(item, dict)
            and tracking_level_for(self.policy, principal.roles, str(item.get("name", "")))
            is not None
        ]


async def _owner(kind: OwnedKind, resources: Resources, key: str) -> str:
    return await resources.owner_experiment(kind, key)


_LOOKUPS: dict[str, tuple[Callable[[Resources, str], Awaitable[str | tuple[str, ...]]], str]] = {
    "run": (Resources.run_experiment, "Run with id={key} not found"),
    "logged_model": (Resources.logged_model_experiment, "Logged model with ID '{key}' not found."),
    "trace": (Resources.trace_experiment, "Trace with ID '{key}' not found."),
    "new_trace": (Resources.trace_experiment, "Trace with ID '{key}' not found."),
    "dataset": (Resources.dataset_experiments, "Evaluation dataset with id '{key}' not found"),
    **{
        kind: (partial(_owner, kind), f"{what} with ID '{{key}}' not found.")
        for kind, what in (
            ("issue", "Issue"),
            ("prompt_job", "Prompt optimization job"),
            ("label_schema", "Label schema"),
            ("review_queue", "Review queue"),
        )
    },
}
"""How the gate finds the experiment(s) of what a need names, and what a caller without a
binding is told (the answer for one that does not exist)."""


def _covers(rule: TransitionRule, model: str) -> bool:
    return any(fnmatchcase(model, pattern) for pattern in rule.models)


def break_glass_reason(comment: Any, header: str | None) -> str | None:
    if isinstance(comment, str) and comment.strip():
        return comment
    return header.strip() if header and header.strip() else None


def require_reason(reason: str | None) -> str:
    if reason is None:
        raise Invalid(
            "a break-glass move needs a reason: send it as `comment` in the JSON body or in the "
            "X-Signoff-Reason header"
        )
    return reason
