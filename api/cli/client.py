"""The CLI's HTTP client of Signoff's API; every error ends the command with a sentence."""

from __future__ import annotations

from typing import Any, NoReturn

import httpx
import typer

from api.cli.oidc import TokenError, TokenSource
from api.settings import ApiSettings


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command: `error: <message>` on stderr, exit `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


class ApiClient:
    """A thin client of Signoff's API for the client commands; errors end the command."""

    def __init__(self, settings: ApiSettings) -> None:
        try:
            self._tokens = TokenSource(settings)
            self._tokens.current()  # fail before any call if no token can be had
        except TokenError as err:
            fail(str(err))
        self._http = httpx.Client(base_url=settings.api_url, timeout=httpx.Timeout(10.0, read=70.0))
        self.url = settings.api_url

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._send(method, path, self._tokens.current(), **kwargs)
            if response.status_code == 401 and self._tokens.refreshable:
                # An OIDC token may have expired between two calls of a long --wait: fetch anew.
                response = self._send(method, path, self._tokens.refresh(), **kwargs)
        except TokenError as err:
            fail(str(err))
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code >= 400:
            code = body.get("error_code", "ERROR")
            fail(f"{body.get('message', 'request failed')} ({response.status_code} {code})")
        return body

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as err:
            fail(f"cannot reach the Signoff API at {self.url} ({err}); is it running?")


def api_client() -> ApiClient:
    """A client configured by `SIGNOFF_API_URL` and `SIGNOFF_TOKEN` (or the Actions token)."""
    return ApiClient(ApiSettings())
