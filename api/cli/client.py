"""The CLI's HTTP client of Signoff's API; every error ends the command with a sentence."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import typer

from api.cli.oidc import TokenError, TokenSource

if TYPE_CHECKING:
    from pydantic import ValidationError

    from api.settings import ApiSettings

WHERE_FROM = (
    "Client commands call the API at SIGNOFF_API_URL (default http://127.0.0.1:8000) with the "
    "token in SIGNOFF_TOKEN (`signoff dev` prints one per role; `signoff token` mints one), or, "
    "in a GitHub Actions job with `id-token: write`, with the job's OIDC token."
)
"""Where client commands find the API and their token, for the help texts."""


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command: `error: <message>` on stderr, exit `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def plain(message: str) -> str:
    """A message without pydantic's "Value error, " prefix (our validators' ValueError text
    is meant for people as it stands)."""
    return message.replace("Value error, ", "")


def settings_problem(err: ValidationError) -> str:
    """The settings' validation errors as one sentence naming each SIGNOFF_* variable (never
    its value: it may be a secret)."""
    problems = []
    for error in err.errors(include_url=False, include_input=False):
        loc = error.get("loc", ())
        name = f"SIGNOFF_{str(loc[0]).upper()}" if loc else "a setting"
        name += "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
        message = plain(error["msg"])
        problems.append(message if message.startswith(name) else f"{name}: {message}")
    return "invalid settings: " + "; ".join(problems)


def load_settings() -> ApiSettings:
    """The settings from SIGNOFF_* variables (or `.env`); an invalid one ends the command with
    a sentence, not a traceback."""
    from pydantic import ValidationError

    from api.settings import ApiSettings  # here: `--help` needs no settings

    try:
        return ApiSettings()
    except ValidationError as err:
        fail(settings_problem(err))


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip() or "no content type"


def _error_sentence(response: httpx.Response, url: str) -> str:
    """Why an answer is no answer: the API's own error, or that something else answered."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status >= 400 and isinstance(body, dict) and {"error_code", "message"} <= set(body):
        return f"{plain(str(body['message']))} ({status} {body['error_code']})"
    # Not Signoff's JSON: another server (MLflow, a proxy's error page) answers there. Never
    # print its page.
    return (
        f"{url} did not answer like a Signoff API (HTTP {status}, {_media_type(response)}); is "
        "SIGNOFF_API_URL right?"
    )


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
        answer = self.answer(method, path, **kwargs)
        if isinstance(answer, str):
            fail(answer)
        return answer

    def answer(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | str:
        """The JSON answer of a call, or the sentence saying why there is none. Unreachable
        API and missing token still end the command."""
        try:
            response = self._send(method, path, self._tokens.current(), **kwargs)
            if response.status_code == 401 and self._tokens.refreshable:
                # An OIDC token may have expired between two calls of a long --wait: fetch anew.
                response = self._send(method, path, self._tokens.refresh(), **kwargs)
        except TokenError as err:
            fail(str(err))
        if response.status_code >= 400:
            return _error_sentence(response, self.url)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error_sentence(response, self.url)
        return body

    def download(self, path: str, sink: Callable[[bytes], object], **kwargs: Any) -> None:
        """GET `path` and hand the body to `sink` as it arrives (never all of it in memory);
        an error answer ends the command with its sentence."""
        try:
            with self._http.stream(
                "GET",
                path,
                headers={"Authorization": f"Bearer {self._tokens.current()}"},
                timeout=httpx.Timeout(10.0, read=300.0),
                **kwargs,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    fail(_error_sentence(response, self.url))
                for chunk in response.iter_bytes():
                    sink(chunk)
        except TokenError as err:
            fail(str(err))
        except httpx.HTTPError as err:
            fail(f"the download from the Signoff API at {self.url} broke off ({err})")

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as err:
            fail(
                f"cannot reach the Signoff API at {self.url} ({err}); is it running, and is "
                "SIGNOFF_API_URL right?"
            )


def api_client() -> ApiClient:
    """A client configured by `SIGNOFF_API_URL` and `SIGNOFF_TOKEN` (or the Actions token)."""
    return ApiClient(load_settings())
