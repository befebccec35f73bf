"""The review page's guards: security headers, optional auth, and CSRF tokens.

* :class:`SecurityHeaders` adds to every answer (errors included) a strict
  ``Content-Security-Policy`` (``default-src 'self'``; styles only the page's own inline
  stylesheet, pinned by its SHA-256; no scripts; forms post only to this origin;
  ``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and
  ``Cache-Control: no-store``.
* :class:`RequireAuth` (when ``web.auth`` is set) answers 401 on every path except
  ``/feedback/…`` unless the request carries the secret, either as HTTP Basic (any user
  name, the secret as password — what a browser prompts for) or as
  ``Authorization: Bearer SECRET`` (for scripts). Feedback links are exempt: their
  signed token is the credential, so links in emails work without a login.
* CSRF: a signed double-submit cookie. Pages that show a form set a random cookie
  :data:`CSRF_COOKIE` (HttpOnly, SameSite=Lax) and put HMAC(key, cookie) in a hidden
  field; a POST is accepted only when the field matches the cookie it came with.
  Another site can neither read the cookie nor compute the field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "RequireAuth",
    "SecurityHeaders",
    "content_security_policy",
    "csrf_cookie_value",
    "csrf_valid",
    "csrf_value",
    "new_csrf_cookie",
    "presented_secret",
    "set_csrf_cookie",
]

CSRF_COOKIE = "wt_csrf"
CSRF_FIELD = "csrf"
_COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_CSRF_CONTEXT = b"watchtower-csrf-v1\x00"


def content_security_policy(stylesheets: Iterable[str]) -> str:
    """The CSP for pages whose only styles are the given inline stylesheet texts."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"
        for css in stylesheets
    )
    return (
        "default-src 'self'; "
        f"style-src {hashes}; "
        "script-src 'none'; "
        "img-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


class SecurityHeaders:
    """ASGI middleware: the headers of the module docstring on every HTTP answer."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.headers = {
            "content-security-policy": csp,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "cross-origin-opener-policy": "same-origin",
            "cache-control": "no-store",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def presented_secret(authorization: str | None) -> str | None:
    """The secret in an ``Authorization`` header (Basic password or Bearer token)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep else None
    return None


class RequireAuth:
    """ASGI middleware: 401 unless the request presents ``secret`` (see module docstring).

    Paths under ``/feedback/`` pass without it. Comparison is constant-time.
    """

    def __init__(self, app: ASGIApp, *, secret: str) -> None:
        if not secret:
            raise ValueError("web.auth must not be empty")
        self.app = app
        self._want = _digest(secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        given = presented_secret(Headers(scope=scope).get("authorization"))
        if given is not None and hmac.compare_digest(_digest(given), self._want):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            "Authentication required: use HTTP Basic with the web.auth secret as password, "
            "or Authorization: Bearer <web.auth>.\n",
            status_code=401,
            headers={"www-authenticate": 'Basic realm="Watchtower", charset="UTF-8"'},
        )
        await response(scope, receive, send)

    @staticmethod
    def _exempt(scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root) :]
        return path.startswith("/feedback/")


def csrf_cookie_value(request: Request) -> str | None:
    """The request's CSRF cookie when it has the shape we issue, else ``None``."""
    value = request.cookies.get(CSRF_COOKIE)
    if value and _COOKIE_SHAPE.match(value):
        return value
    return None


def csrf_value(key: bytes, cookie: str) -> str:
    """The hidden-field value that goes with ``cookie``: hex HMAC-SHA256 under ``key``."""
    return hmac.new(key, _CSRF_CONTEXT + cookie.encode("ascii"), hashlib.sha256).hexdigest()


def new_csrf_cookie() -> str:
    """A fresh random cookie value."""
    return secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, request: Request, cookie: str) -> None:
    """Set ``cookie`` on ``response`` (HttpOnly, SameSite=Lax, Secure over https)."""
    response.set_cookie(
        CSRF_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def csrf_valid(key: bytes, request: Request, field: object) -> bool:
    """True when ``field`` (the posted hidden value) matches the request's cookie."""
    cookie = csrf_cookie_value(request)
    if cookie is None or not isinstance(field, str) or len(field) != 64:
        return False
    return hmac.compare_digest(field.encode("ascii", "replace"), csrf_value(key, cookie).encode())
