"""The approver web page: `/` → `/ui/` (the inbox), `/ui/requests/<id>` (one request) and
`/ui/models/<name>` (one model). Sign-in and sessions: `api.routers.web_auth`; what the page
reads beyond the plain API: `api.routers.web_api`.

Static files only (one HTML page, one script, one stylesheet, shipped as package data), so there
is no build step and nothing loaded from elsewhere. The page calls the same JSON API as every
other client, authenticated by the session cookie of its sign-in (plus the CSRF token on
state-changing calls). Every UI response carries a strict Content-Security-Policy: only this
origin's script and style, no inline script, no framing."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.errors import not_found

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def _read(name: str) -> bytes:
    # Read on each request (the files are small), so an edit shows without a restart.
    return (WEB_DIR / name).read_bytes()


def _file(name: str, media_type: str) -> Response:
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)


def _page() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307, headers=SECURITY_HEADERS)


@router.get("/ui", response_class=Response)
async def ui_without_slash() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307, headers=SECURITY_HEADERS)


@router.get("/ui/", response_class=Response)
async def request_list_page() -> Response:
    """The open requests the pasted token may read; the script fills it in."""
    return _page()


@router.get("/ui/signed-out", response_class=Response)
async def signed_out_page() -> Response:
    """Where the identity provider sends the browser back after signing it out."""
    return _page()


@router.get("/ui/requests/{request_id}", response_class=Response)
async def request_page(request_id: str) -> Response:
    """One request; the script reads the id from the path and asks the API for it."""
    return _page()


@router.get("/ui/models/{name}", response_class=Response)
async def model_page(name: str) -> Response:
    """One model: its versions, open requests and recent activity."""
    return _page()


@router.get("/ui/assets/{name}", response_class=Response)
async def asset(name: str) -> Response:
    media_type = ASSETS.get(name)  # a fixed list: no path from the URL reaches the disk
    if media_type is None:
        raise not_found(f"no such asset {name!r}")
    return _file(name, media_type)
