"""Webhooks in tests: what a stack needs to deliver them to loopback, a receiver recording what
arrives, and registry-webhook subscriptions through the API."""

from __future__ import annotations

from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.support.polling import wait_until
from tests.support.receiver import Received, Receiver
from workflows.webhooks.events import ALL_EVENTS, REGISTRY_WIDE_ONLY


def webhook_env() -> dict[str, str]:
    """What a stack needs to deliver webhooks to loopback receivers: an encryption key for
    their secrets and loopback allowed (by address only)."""
    return {
        "SIGNOFF_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SIGNOFF_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    }


WEBHOOK_DELIVERIES = "/api/2.0/signoff/registry-webhooks/deliveries"


def webhook_deliveries(client: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    """A registry webhook's deliveries, each with every attempt, newest first."""
    response = client.get(WEBHOOK_DELIVERIES, params={"id": webhook_id})
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


HOOKS = "/api/2.0/mlflow/registry-webhooks"


SECRET = "events-receiver-secret"


ALL = [event for event in ALL_EVENTS if event not in REGISTRY_WIDE_ONLY]
"""Every event a model-level webhook may subscribe (REGISTERED_MODEL_CREATED is registry-wide
only; it is covered with MLflow's own events in test_mlflow_hooks.py)."""


def subscribe(
    admin: httpx.Client, url: str, model: str, *, status: str = "ACTIVE", events: list[str] = ALL
) -> str:
    response = admin.post(
        f"{HOOKS}/create",
        json={
            "model_name": model,
            "events": events,
            "status": status,
            "http_url_spec": {"url": url, "secret": SECRET},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["webhook"]["id"]


def events_for(
    receiver: Receiver, wanted: set[str] | dict[str, int], timeout_s: float = 30
) -> list[Received]:
    """Wait until the receiver got every event in `wanted` (at least as many times as a dict
    says); returns everything it got."""
    counts_wanted = wanted if isinstance(wanted, dict) else dict.fromkeys(wanted, 1)

    def arrived() -> list[Received] | None:
        got = [r.json["event"] for r in receiver.delivered]
        if all(got.count(name) >= n for name, n in counts_wanted.items()):
            return list(receiver.delivered)
        return None

    return wait_until(arrived, f"the events {counts_wanted}", timeout_s)
