"""MLflow's own webhooks in: `POST /api/2.0/signoff/hooks/mlflow`.

Point an MLflow 3 webhook (events `registered_model.created`, `model_version.created`,
`model_version_tag.set`/`deleted`, `model_version_alias.created`/`deleted`) here with the secret
in `SIGNOFF_MLFLOW_WEBHOOK_SECRET`. Each delivery is verified (`X-MLflow-Signature`: v1, base64
HMAC-SHA256 of `<delivery id>.<timestamp>.<body>`; `X-MLflow-Timestamp` within 5 minutes) and
claimed by its `X-MLflow-Delivery-Id`, like every inbound webhook (`api.inbound`). Then:

- a new version opens a request to the target of every policy rule with `auto_request` that
  governs it, and is announced (`MODEL_VERSION_CREATED`, `REGISTERED_MODEL_CREATED` for a new
  model);
- an alias or tag change Signoff did not make is an out-of-band change: recorded in the
  version's log and announced (`OUT_OF_BAND_CHANGE`; a tag set also as
  `MODEL_VERSION_TAG_SET`). Signoff's own alias changes are recognised by the registry marks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from fnmatch import fnmatchcase
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError

from api.deps import Services, ServicesDep
from api.errors import ApiError, as_api_error, bad_request, error_responses, not_found
from api.inbound import (
    MAX_MESSAGE_ID,
    MLFLOW_SOURCE,
    check_window,
    process_claimed,
    read_body,
    refuse_unclaimed,
)
from api.models.common import ModelName, Target, Version
from api.models.hooks import MlflowHookOutcome
from api.services.errors import Conflict
from api.services.mlflow import existing_version, policy_tags
from api.services.requests import open_request
from policies import Principal, condition_keys, rule_for
from workflows.domain import now_ms
from workflows.mlflow_client import ResourceNotFound
from workflows.reconcile.changes import Change, out_of_band, stable_id
from workflows.webhooks.events import WebhookEvent

router = APIRouter(prefix="/api/2.0/signoff/hooks", tags=["MLflow webhooks"])

SOURCE = MLFLOW_SOURCE
SIGNATURE, TIMESTAMP, DELIVERY_ID = (
    "x-mlflow-signature",
    "x-mlflow-timestamp",
    "x-mlflow-delivery-id",
)
AUTO_REQUESTER = Principal(sub="signoff-auto-request", roles=[])
"""Who opens the requests `auto_request` rules ask for (it holds no role: it cannot approve)."""


def verify(secret: str, raw: bytes, headers: dict[str, str], now: float) -> None:
    """401 unless MLflow's signature over this exact body, made in the window, is valid."""
    missing = [name for name in (SIGNATURE, TIMESTAMP, DELIVERY_ID) if not headers.get(name)]
    if missing:
        raise ApiError(
            401,
            f"missing MLflow webhook header(s) {', '.join(missing)}; create the webhook in "
            "MLflow with a secret",
        )
    if len(headers[DELIVERY_ID]) > MAX_MESSAGE_ID:
        raise ApiError(401, f"X-MLflow-Delivery-Id is longer than {MAX_MESSAGE_ID} characters")
    check_window(headers[TIMESTAMP], now, "X-MLflow-Timestamp")
    try:
        signed = f"{headers[DELIVERY_ID]}.{headers[TIMESTAMP]}.{raw.decode('utf-8')}"
    except UnicodeDecodeError:
        raise ApiError(401, "signature does not match") from None
    digest = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected.encode(), headers[SIGNATURE].encode()):
        raise ApiError(401, "signature does not match")


@router.post(
    "/mlflow",
    response_model=MlflowHookOutcome,
    responses=error_responses(400, 401, 404, 409, 503),
)
async def mlflow_hook(request: Request, services: ServicesDep) -> dict[str, Any]:
    received_ms = now_ms()
    headers = {name: request.headers.get(name, "") for name in (SIGNATURE, TIMESTAMP, DELIVERY_ID)}
    delivery_id = headers[DELIVERY_ID] or None
    try:
        secret = services.settings.mlflow_webhook_secret
        if secret is None:
            raise not_found(
                "MLflow webhooks are not configured here; set SIGNOFF_MLFLOW_WEBHOOK_SECRET to "
                "the secret of the MLflow webhook that points at this URL"
            )
        raw = await read_body(request)
        verify(secret.get_secret_value(), raw, headers, received_ms / 1000)
    except ApiError as err:
        await refuse_unclaimed(services, SOURCE, delivery_id, received_ms, err)
        raise
    assert delivery_id is not None

    async def handle(record: dict[str, Any]) -> dict[str, Any]:
        entity, action, data = _parse(raw)
        event = f"{entity}.{action}"
        record["event"] = event[:64]
        handler = _HANDLERS.get(event)
        if handler is None:
            record["outcome"] = "IGNORED"
            return {"event": event, "outcome": "IGNORED"}
        with as_api_error():  # recorded by its status: refused (4xx) or an error (5xx)
            return {"event": event, **await handler(services, delivery_id, data, record)}

    return await process_claimed(services, SOURCE, delivery_id, received_ms, handle)


def _parse(raw: bytes) -> tuple[str, str, dict[str, Any]]:
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise bad_request(f"the request body is not valid JSON: {err}") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise bad_request("expected MLflow's webhook body: {entity, action, timestamp, data}")
    entity, action = body.get("entity"), body.get("action")
    if not isinstance(entity, str) or not isinstance(action, str):
        raise bad_request("the body names no entity and action")
    return entity, action, body["data"]


MAX_TAG_KEY = 250
"""MLflow's own limit on a tag key (`MAX_ENTITY_KEY_LENGTH`)."""
MAX_TAG_VALUE = 5000

_FIELDS: dict[str, TypeAdapter[Any]] = {
    "name": TypeAdapter(ModelName),
    "version": TypeAdapter(Version),
    "alias": TypeAdapter(Target),  # checked as "@<alias>", the API's rule for alias targets
}


def _field(data: dict[str, Any], name: str) -> str:
    """A payload field, validated as the API validates the same field (names, versions and
    aliases with `api.models.common`' types; tag keys with MLflow's limit): 400 otherwise."""
    value = data.get(name)
    if value is None or value == "":
        raise bad_request(f"data.{name} is missing")
    if name == "key":
        if not isinstance(value, str) or len(value) > MAX_TAG_KEY or not value.isprintable():
            raise bad_request(
                f"data.key must be a tag key: a printable string of at most {MAX_TAG_KEY} "
                "characters"
            )
        return value
    if name == "alias":
        if not isinstance(value, str):
            raise bad_request("data.alias must be a string")
        value = f"@{value}"
    try:
        valid = str(_FIELDS[name].validate_python(value))
    except ValidationError as err:
        reason = err.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise bad_request(f"data.{name}: {reason}") from None
    return valid.removeprefix("@") if name == "alias" else valid


def _tag_value(data: dict[str, Any]) -> str | None:
    value = data.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TAG_VALUE):
        raise bad_request(f"data.value must be a string of at most {MAX_TAG_VALUE} characters")
    return value


# -- one handler per MLflow event -------------------------------------------------------------


async def _model_created(
    services: Services, delivery_id: str, data: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    name = _field(data, "name")
    await services.announce(
        [
            WebhookEvent(
                event_id=f"mlflow/{delivery_id}",
                event_timestamp=now_ms(),
                event="REGISTERED_MODEL_CREATED",
                model_name=name,
                text=f"registered model {name} created in MLflow",
            )
        ],
        strict=True,
    )
    return {"outcome": "ACCEPTED"}


async def _version_created(
    services: Services, delivery_id: str, data: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """Expect the new version as MLflow creates it, announce it, open the requests that
    `auto_request` rules ask for."""
    name, version = _field(data, "name"), _field(data, "version")
    if await services.ledger.marks.get(name, version) is None:
        await services.ledger.marks.set_observed(
            model=name, version=version, stage="None", aliases=[], now_ms=now_ms()
        )
    await services.announce(
        [
            WebhookEvent(
                event_id=f"mlflow/{delivery_id}",
                event_timestamp=now_ms(),
                event="MODEL_VERSION_CREATED",
                model_name=name,
                version=version,
                text=f"version {version} of {name} created in MLflow",
            )
        ],
        strict=True,
    )
    opened: list[str] = []
    for target in await auto_request_targets(services, name, version):
        try:
            request = await open_request(
                services,
                await services.transitions(),
                principal=AUTO_REQUESTER,
                name=name,
                version=version,
                stage=target,
                comment="Opened automatically: MLflow announced this new version and the "
                f"policy rule for {target} says auto_request",
            )
        except Conflict:  # a request for it is open already (a redelivery)
            continue
        opened.append(request.id)
    record["request_id"] = opened[0] if opened else None
    return {"outcome": "ACCEPTED", "opened_requests": opened}


async def auto_request_targets(services: Services, model: str, version: str) -> list[str]:
    """The targets whose governing rule (the first that matches the version and its tags, as
    for any request) says `auto_request` for this model."""
    candidates = [
        rule
        for rule in services.policy.transitions
        if rule.auto_request and any(fnmatchcase(model, p) for p in rule.models)
    ]
    if not candidates:
        return []
    tags: dict[str, str] = {}
    if condition_keys(services.policy):  # the policy has tiers: the version's tags choose
        tags = await policy_tags(services, await existing_version(services, model, version))
    targets: list[str] = []
    for rule in candidates:
        if rule_for(services.policy, model, rule.to, tags) is rule and rule.to not in targets:
            targets.append(rule.to)
    return targets


async def _tag_changed(
    services: Services, delivery_id: str, data: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """Signoff never sets tags, so every tag change is out-of-band."""
    name, version, key = _field(data, "name"), _field(data, "version"), _field(data, "key")
    if "value" in data:
        what = f"tag {key} set to {_tag_value(data)!r}"
        extra = [
            WebhookEvent(
                event_id=f"mlflow/{delivery_id}/MODEL_VERSION_TAG_SET",
                event_timestamp=now_ms(),
                event="MODEL_VERSION_TAG_SET",
                model_name=name,
                version=version,
                text=what,
            )
        ]
    else:
        what, extra = f"tag {key} deleted", []
    return await _record_out_of_band(services, delivery_id, name, version, Change(what), extra)


async def _alias_created(
    services: Services, delivery_id: str, data: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    name, version, alias = _field(data, "name"), _field(data, "version"), _field(data, "alias")
    mark = await services.ledger.marks.get(name, version)
    if mark is not None and (mark.pending_target == f"@{alias}" or alias in (mark.aliases or [])):
        return {"outcome": "ACCEPTED", "made_by_signoff": True}
    change = Change(f"alias @{alias} set on this version", to_stage=f"@{alias}")
    return await _record_out_of_band(services, delivery_id, name, version, change, [])


async def _alias_deleted(
    services: Services, delivery_id: str, data: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """MLflow does not say which version lost the alias: the marks do."""
    name, alias = _field(data, "name"), _field(data, "alias")
    marks = await services.ledger.marks.of_model(name)
    holder = next((m for m in marks if alias in (m.aliases or [])), None)
    if holder is None:
        return {"outcome": "ACCEPTED", "made_by_signoff": True}
    change = Change(f"alias @{alias} removed from this version", from_stage=f"@{alias}")
    return await _record_out_of_band(services, delivery_id, name, holder.version, change, [])


async def _record_out_of_band(
    services: Services,
    delivery_id: str,
    name: str,
    version: str,
    change: Change,
    extra: list[WebhookEvent],
) -> dict[str, Any]:
    now = now_ms()
    change_id = stable_id("mlflow", delivery_id)
    entry, events = out_of_band(
        change_id, name, version, change, seen_by="MLflow's webhook", now_ms=now
    )
    await services.ledger.requests.append_entries(entries=[entry])
    await services.announce(events + extra, strict=True)
    # Expect MLflow's state from now on, so the reconciler does not report it again.
    try:
        current = await services.registry.get_model_version(name, version)
    except ResourceNotFound:
        return {"outcome": "ACCEPTED", "out_of_band": entry.id}
    await services.ledger.marks.set_observed(
        model=name,
        version=version,
        stage=current.current_stage,
        aliases=current.aliases,
        now_ms=now,
    )
    return {"outcome": "ACCEPTED", "out_of_band": entry.id}


_HANDLERS = {
    "registered_model.created": _model_created,
    "model_version.created": _version_created,
    "model_version_tag.set": _tag_changed,
    "model_version_tag.deleted": _tag_changed,
    "model_version_alias.created": _alias_created,
    "model_version_alias.deleted": _alias_deleted,
}
