"""The TLS context every outbound HTTP client of a process shares.

An `httpx` client made without one builds its own, loading the whole CA bundle: some 50 ms of
CPU for each client, and Signoff makes one per MLflow registry, per JWKS fetch, per webhook
delivery, per CI poll. The context is what httpx itself would build (`httpx.create_ssl_context`:
certifi's CA bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when the client trusts the
environment), made once; an `ssl.SSLContext` may serve any number of connections and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def verifying_context(trust_env: bool = True) -> ssl.SSLContext:
    """The context verifying servers' certificates, for a client made with `trust_env`."""
    return httpx.create_ssl_context(trust_env=trust_env)
