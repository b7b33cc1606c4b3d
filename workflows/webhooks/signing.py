"""Signing outbound webhook bodies, and encrypting webhook secrets at rest.

Every delivery is signed twice over the same raw body:

- Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`),
  made by the `standardwebhooks` package. Its secrets are base64 with an optional `whsec_`
  prefix. A Databricks-style secret is any text, so: a secret starting with `whsec_` is used
  as Standard Webhooks defines it (the base64 after the prefix is the key); any other secret's
  UTF-8 bytes are the key. A receiver therefore verifies with
  `Webhook(secret.encode())`, or equivalently `Webhook("whsec_" + b64encode(secret))`.
- `X-Databricks-Signature`: hex HMAC-SHA256 of the raw body keyed with the secret's UTF-8 bytes
  exactly as configured (what receivers written for Databricks compute).

Without a secret the `webhook-id`/`webhook-timestamp` headers are still sent, unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from standardwebhooks import Webhook

STANDARD_PREFIX = "whsec_"


class EncryptionKeyMissing(ValueError):
    """A secret must be stored but SIGNOFF_ENCRYPTION_KEY is not set."""


def standard_webhook(secret: str) -> Webhook:
    """The `standardwebhooks.Webhook` for a configured secret (see the module docstring)."""
    if secret.startswith(STANDARD_PREFIX):
        return Webhook(secret)
    return Webhook(secret.encode())


def databricks_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str | None, msg_id: str, body: bytes, *, at: datetime | None = None
) -> dict[str, str]:
    """The signature headers of one delivery attempt of `body`."""
    at = at or datetime.now(UTC)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp()))}
    if secret:
        headers["webhook-signature"] = standard_webhook(secret).sign(msg_id, at, body.decode())
        headers["X-Databricks-Signature"] = databricks_signature(secret, body)
    return headers


class SecretBox:
    """Fernet encryption of webhook secrets and authorization headers at rest."""

    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def encrypt(self, plaintext: str | None) -> str | None:
        if plaintext is None or plaintext == "":
            return None
        if self._fernet is None:
            raise EncryptionKeyMissing(
                "webhook secrets and authorization headers are stored encrypted, but "
                "SIGNOFF_ENCRYPTION_KEY is not set; generate one with `python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
                "and set it for the API and the worker"
            )
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        if self._fernet is None:
            raise EncryptionKeyMissing(
                "a webhook secret is stored encrypted but SIGNOFF_ENCRYPTION_KEY is not set"
            )
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as err:
            raise EncryptionKeyMissing(
                "a webhook secret cannot be decrypted with SIGNOFF_ENCRYPTION_KEY "
                "(was the key changed?)"
            ) from err
