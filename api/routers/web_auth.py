"""The web page's sign-in and session routes.

- `GET /ui/auth/login?return_to=/ui/...`: off to the identity provider (authorization code flow
  with PKCE); a short-lived, `HttpOnly` login cookie ties the answer to this browser.
- `GET /ui/auth/callback`: the provider's answer; a session on success, else a page saying why.
- `POST /ui/auth/dev-login`: the development sign-in (only where offered).
- `POST /ui/auth/logout`: the session ends, for every replica; the answer names the
  provider's end-session URL when it offers RP-initiated logout (the page goes there).
- `GET /ui/api/session`: who is signed in, the CSRF token, which sign-ins are offered.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ServicesDep
from api.errors import ApiError, bad_request, not_found
from api.models.web import DevSignIn, SignedOut, WebSessionInfo
from api.routers.web import SECURITY_HEADERS
from api.services.web_auth import (
    CSRF_HEADER,
    DEV_ISSUER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SignInError,
    WebSignIn,
    web_sign_in,
)
from policies import Principal

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _sign_in(request: Request) -> WebSignIn:
    return web_sign_in(request.app.state)


def _refusal_page(reason: str, return_to: str = "/ui/") -> HTMLResponse:
    """The sign-in failed: say why (as text), and offer a way back. No script."""
    again = html.escape(f"/ui/auth/login?return_to={return_to}", quote=True)
    body = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign-in refused · Signoff</title>
  <link rel="stylesheet" href="/ui/assets/style.css">
</head>
<body>
  <header class="topbar"><a class="brand" href="/ui/">Signoff</a></header>
  <main>
    <section class="panel" id="sign-in-refused">
      <h1>Sign-in refused</h1>
      <p id="refusal-reason">{html.escape(reason)}</p>
      <p><a id="sign-in-again" href="{again}">Sign in again</a> ·
         <a href="/ui/">Back to Signoff</a></p>
    </section>
  </main>
</body>
</html>
"""
    return HTMLResponse(body, status_code=400, headers=SECURITY_HEADERS)


async def _info(
    sign_in: WebSignIn, services: ServicesDep, session_id: str | None
) -> WebSessionInfo:
    settings = sign_in.settings
    session = await sign_in.session(session_id)
    dev = settings.web_dev_login_enabled
    return WebSessionInfo(
        signed_in=session is not None,
        subject=session.subject if session else None,
        roles=session.roles if session else [],
        csrf_token=session.csrf_token if session else None,
        expires_timestamp=session.expires_ms if session else None,
        oidc_sign_in=settings.web_oidc_enabled,
        dev_sign_in=dev,
        dev_roles=sorted(services.policy.roles) if dev else [],
    )


@router.get("/ui/api/session", response_model=WebSessionInfo)
async def session_info(
    request: Request, services: ServicesDep, response: Response
) -> WebSessionInfo:
    sign_in = _sign_in(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    info = await _info(sign_in, services, session_id)
    if session_id is not None and not info.signed_in:
        sign_in.clear_cookie(response, SESSION_COOKIE)
    response.headers.update(SECURITY_HEADERS)
    return info


@router.get("/ui/auth/login", response_class=Response)
async def login(request: Request, return_to: str | None = None) -> Response:
    sign_in = _sign_in(request)
    try:
        login_id, url = await sign_in.begin_sign_in(return_to)
    except SignInError as err:
        return _refusal_page(str(err))
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    sign_in.set_login_cookie(response, login_id)
    return response


@router.get("/ui/auth/callback", response_class=Response)
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    sign_in = _sign_in(request)
    login_id = request.cookies.get(LOGIN_COOKIE)
    if error is not None:
        # The provider said no (the person declined, or the client is misconfigured). The
        # sign-in under way is spent either way.
        await sign_in.abandon_sign_in(login_id)
        detail = f": {error_description[:300]}" if error_description else ""
        page = _refusal_page(f"The identity provider refused the sign-in ({error[:100]}){detail}")
        sign_in.clear_cookie(page, LOGIN_COOKIE)
        return page
    try:
        principal, return_to, id_token = await sign_in.finish_sign_in(
            login_id, state=state, code=code
        )
    except SignInError as err:
        log.warning("web sign-in refused: %s", err)
        page = _refusal_page(f"The sign-in was refused: {err}.")
        sign_in.clear_cookie(page, LOGIN_COOKIE)
        return page
    await sign_in.end_session(request.cookies.get(SESSION_COOKIE))  # a new id at each sign-in
    session_id, _ = await sign_in.open_session(
        principal, sign_in.settings.web_oidc_issuer or "", id_token
    )
    response = RedirectResponse(return_to, status_code=303, headers=SECURITY_HEADERS)
    sign_in.clear_cookie(response, LOGIN_COOKIE)
    sign_in.set_session_cookie(response, session_id)
    return response


@router.post("/ui/auth/dev-login", response_model=WebSessionInfo)
async def dev_login(
    request: Request, body: DevSignIn, services: ServicesDep, response: Response
) -> WebSessionInfo:
    sign_in = _sign_in(request)
    if not sign_in.settings.web_dev_login_enabled:
        raise not_found("the development sign-in is offered only by `signoff dev`")
    unknown = [role for role in body.roles if role not in services.policy.roles]
    if unknown:
        raise bad_request(f"the policy has no role {unknown[0]!r}")
    if not body.subject.isprintable():
        raise bad_request("a user name is printable text")
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await sign_in.end_session(old)
    session_id, _ = await sign_in.open_session(
        Principal(sub=body.subject, roles=list(dict.fromkeys(body.roles))), DEV_ISSUER
    )
    sign_in.set_session_cookie(response, session_id)
    response.headers.update(SECURITY_HEADERS)
    return await _info(sign_in, services, session_id)


@router.post("/ui/auth/logout", response_model=SignedOut)
async def logout(
    request: Request,
    response: Response,
    csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> SignedOut:
    sign_in = _sign_in(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = await sign_in.session(session_id)
    provider_url = None
    if session is not None and session_id is not None:
        if not session.csrf_matches(csrf):
            raise ApiError(403, f"signing out needs the session's CSRF token in {CSRF_HEADER}")
        await sign_in.end_session(session_id)
        provider_url = await sign_in.provider_sign_out_url(session_id, session)
    sign_in.clear_cookie(response, SESSION_COOKIE)
    response.headers.update(SECURITY_HEADERS)
    return SignedOut(end_session_url=provider_url)
