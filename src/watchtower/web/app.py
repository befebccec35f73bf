"""The review page and JSON API: a Starlette app over an :class:`AlertReader`.

Routes (read-only apart from feedback):

=========================  ===========================================================
``GET /``                  alerts newest first; ``?q=`` full-text search, ``?limit=``
``GET /alerts/{id}``       one alert with every outlet and the explanation's matches
``GET /sources``           source health (last success, last error, failing/quiet)
``GET /export.csv``        alerts as CSV (``?q=``, ``?limit=``); formula cells defused
``GET /export.json``       alerts as a JSON array (attachment)
``GET /api/alerts``        JSON array of alert objects, newest first (``?q=&limit=``)
``GET /api/alerts/{id}``   one alert object (404 when unknown)
``GET /feedback/{token}``  confirmation page; never records (mail scanners prefetch)
``POST /feedback/{token}`` records the token's verdict (CSRF-checked); a later verdict
                           replaces an earlier one
=========================  ===========================================================

A forged, tampered or expired token, or a POST without a valid CSRF field, gets 403 and
nothing is recorded. With ``auth`` every route except ``/feedback/…`` needs the secret
(HTTP Basic password or Bearer token, see :mod:`watchtower.web.security`). Every answer
carries the security headers of :class:`~watchtower.web.security.SecurityHeaders`.
When ``public_url`` is given, API alert objects carry ``feedback_links``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from watchtower.errors import WatchtowerError
from watchtower.web import security
from watchtower.web.protocol import AlertObject, AlertReader
from watchtower.web.tokens import (
    DEFAULT_TTL,
    ExpiredToken,
    TokenError,
    Verdict,
    feedback_links,
    make_token,
    verify_token,
)
from watchtower.web.views import alerts_csv, card, health_row, json_bytes

__all__ = ["PAGE_LIMIT", "create_app"]

log = logging.getLogger(__name__)

#: Default and largest ``limit`` of the page, the API and the exports.
PAGE_LIMIT = (50, 500)
API_LIMIT = (50, 1000)
EXPORT_LIMIT = (1000, 10_000)
_MAX_QUERY = 200
_MAX_FORM_BYTES = 8192
_MAX_ID = 2**63 - 1  # largest BIGINT: larger ids cannot exist
_LABEL: dict[str, str] = {"relevant": "Relevant", "not-relevant": "Not relevant"}
_OTHER: dict[str, Verdict] = {"relevant": "not-relevant", "not-relevant": "relevant"}

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _css() -> str:
    return (resources.files("watchtower.web") / "templates" / "style.css").read_text("utf-8")


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("watchtower.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _query(params: QueryParams) -> str | None:
    q = " ".join(params.get("q", "").split())[:_MAX_QUERY]
    return q or None


def _limit(params: QueryParams, bounds: tuple[int, int]) -> int:
    raw = params.get("limit", "")
    if not raw:
        return bounds[0]
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPException(400, "limit must be a positive whole number")
    return min(int(raw), bounds[1])


def _safe_back(value: object) -> str | None:
    """A same-site path to return to after a POST, or None (no open redirects)."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 1000:
        return None
    if value.startswith("//") or "\\" in value or any(ord(ch) < 0x20 for ch in value):
        return None
    return value


class _Site:
    """The endpoints, sharing the reader, the signing key and the clock."""

    def __init__(
        self, reader: AlertReader, key: bytes, clock: Clock, public_url: str | None
    ) -> None:
        self.reader = reader
        self.key = key
        self.clock = clock
        self.public_url = public_url
        self.css = Markup(_css())

    # -- helpers ---------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        forms: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        cookie = security.csrf_cookie_value(request) if forms else None
        fresh = forms and cookie is None
        if fresh:
            cookie = security.new_csrf_cookie()
        csrf = security.csrf_value(self.key, cookie) if cookie else ""
        q = context.get("q") or ""
        html = _ENV.get_template(template).render(
            css=self.css,
            root=request.scope.get("root_path", ""),
            csrf=csrf,
            export_query=f"?{QueryParams({'q': q})}" if q else "",
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if fresh and cookie:
            security.set_csrf_cookie(response, request, cookie)
        return response

    def _error(self, request: Request, status: int, heading: str, message: str) -> HTMLResponse:
        return self._page(
            request,
            "error.html.j2",
            status=status,
            page_title=heading,
            heading=heading,
            message=message,
        )

    def _tokens(self, alert_id: int) -> dict[str, str]:
        now = self.clock()
        return {v: make_token(alert_id, v, self.key, now=now) for v in ("relevant", "not-relevant")}

    def _with_links(self, alert: AlertObject) -> AlertObject:
        if self.public_url and "feedback_links" not in alert:
            links = feedback_links(self.public_url, int(alert["alert_id"]), self.key, self.clock())
            return {**alert, "feedback_links": links}
        return alert

    async def _alerts(self, request: Request, bounds: tuple[int, int]) -> list[AlertObject]:
        q = _query(request.query_params)
        limit = _limit(request.query_params, bounds)
        return await run_in_threadpool(self.reader.list_alerts, q, limit)

    @staticmethod
    def _back(request: Request) -> str:
        path = str(request.scope.get("root_path", "")) + request.url.path
        return path + (f"?{request.url.query}" if request.url.query else "")

    # -- pages -----------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        alerts = await self._alerts(request, PAGE_LIMIT)
        cards = [card(a) for a in alerts]
        return self._page(
            request,
            "index.html.j2",
            forms=True,
            page_title="Alerts",
            q=_query(request.query_params) or "",
            cards=cards,
            tokens={c.alert_id: self._tokens(c.alert_id) for c in cards},
            back=self._back(request),
        )

    async def _one(self, request: Request) -> AlertObject | None:
        alert_id = int(request.path_params["alert_id"])
        if alert_id > _MAX_ID:
            return None
        return await run_in_threadpool(self.reader.alert, alert_id)

    async def alert_page(self, request: Request) -> Response:
        alert_id = int(request.path_params["alert_id"])
        alert = await self._one(request)
        if alert is None:
            return self._error(request, 404, "No such alert", f"There is no alert #{alert_id}.")
        c = card(alert)
        return self._page(
            request,
            "alert.html.j2",
            forms=True,
            page_title=c.title,
            c=c,
            tokens=self._tokens(c.alert_id),
            back=self._back(request),
        )

    async def sources(self, request: Request) -> Response:
        rows = await run_in_threadpool(self.reader.source_health)
        return self._page(
            request, "sources.html.j2", page_title="Sources", rows=[health_row(r) for r in rows]
        )

    # -- data ------------------------------------------------------------------------

    async def api_alerts(self, request: Request) -> Response:
        alerts = await self._alerts(request, API_LIMIT)
        body = json_bytes([self._with_links(a) for a in alerts])
        return Response(body, media_type="application/json")

    async def api_alert(self, request: Request) -> Response:
        alert = await self._one(request)
        if alert is None:
            return Response(
                json_bytes({"error": "no such alert"}), 404, media_type="application/json"
            )
        return Response(json_bytes(self._with_links(alert)), media_type="application/json")

    async def export_csv(self, request: Request) -> Response:
        alerts = await self._alerts(request, EXPORT_LIMIT)
        return Response(
            alerts_csv(alerts).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="watchtower-alerts.csv"'},
        )

    async def export_json(self, request: Request) -> Response:
        alerts = await self._alerts(request, EXPORT_LIMIT)
        return Response(
            json_bytes([self._with_links(a) for a in alerts]),
            media_type="application/json",
            headers={"content-disposition": 'attachment; filename="watchtower-alerts.json"'},
        )

    # -- feedback --------------------------------------------------------------------

    def _refused(self, request: Request, exc: TokenError) -> HTMLResponse:
        log.info("feedback link refused: %s", exc)
        if isinstance(exc, ExpiredToken):
            message = "This feedback link has expired. Use the buttons on the review page."
        else:
            message = "This feedback link is not valid. Nothing was recorded."
        return self._error(request, 403, "Link refused", message)

    async def feedback_form(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            granted = verify_token(token, self.key, now=self.clock())
        except TokenError as exc:
            return self._refused(request, exc)
        alert = await run_in_threadpool(self.reader.alert, granted.alert_id)
        if alert is None:
            return self._error(request, 404, "No such alert", "That alert is no longer stored.")
        return self._page(
            request,
            "feedback.html.j2",
            forms=True,
            page_title="Confirm feedback",
            done=False,
            c=card(alert),
            token=token,
            verdict=granted.verdict,
            label=_LABEL[granted.verdict],
        )

    async def feedback_post(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            granted = verify_token(token, self.key, now=self.clock())
        except TokenError as exc:
            return self._refused(request, exc)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > _MAX_FORM_BYTES:
            return self._error(request, 413, "Form too large", "The form is larger than expected.")
        async with request.form(max_files=0, max_fields=8, max_part_size=4096) as form:
            csrf_field = form.get(security.CSRF_FIELD)
            back = _safe_back(form.get("back"))
        if not security.csrf_valid(self.key, request, csrf_field):
            log.info("feedback POST without a valid CSRF field refused")
            return self._error(
                request,
                403,
                "Form expired",
                "The form could not be verified (cookies off, or an old page). "
                "Reload the page and press the button again.",
            )
        alert = await run_in_threadpool(self.reader.alert, granted.alert_id)
        if alert is None:
            return self._error(request, 404, "No such alert", "That alert is no longer stored.")
        await run_in_threadpool(self.reader.record_feedback, granted.alert_id, granted.verdict)
        log.info("feedback recorded: alert %d is %s", granted.alert_id, granted.verdict)
        if back is not None:
            return RedirectResponse(f"{back.split('#', 1)[0]}#alert-{granted.alert_id}", 303)
        other = _OTHER[granted.verdict]
        c = card({**alert, "feedback": granted.verdict})
        return self._page(
            request,
            "feedback.html.j2",
            forms=True,
            page_title="Feedback recorded",
            done=True,
            c=c,
            verdict=granted.verdict,
            label=_LABEL[granted.verdict],
            other_verdict=other,
            other_label=_LABEL[other],
            other_token=make_token(granted.alert_id, other, self.key, now=self.clock()),
        )


def create_app(
    reader: AlertReader,
    key: bytes,
    *,
    auth: str | None = None,
    clock: Clock = _utcnow,
    public_url: str | None = None,
) -> ASGIApp:
    """The review-page ASGI app over ``reader``, signing and checking links with ``key``.

    ``auth``: when set, the secret every route but ``/feedback/…`` requires.
    ``clock``: the time source for token expiry (tests pass a fixed one).
    ``public_url``: base of ``feedback_links`` added to API alert objects.
    Links made here live :data:`~watchtower.web.tokens.DEFAULT_TTL`.
    """
    if len(key) < 16:
        raise ValueError("the web signing key must be at least 16 bytes")
    site = _Site(reader, key, clock, public_url)

    def failure(request: Request, status: int, heading: str, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return Response(json_bytes({"error": message}), status, media_type="application/json")
        return site._error(request, status, heading, message)

    async def store_failed(request: Request, exc: Exception) -> Response:
        log.warning("review page: the store failed: %s", exc)
        return failure(request, 503, "Store unavailable", "The store could not be read.")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = failure(request, exc.status_code, "Request refused", str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    routes = [
        Route("/", site.index, methods=["GET"]),
        Route("/alerts/{alert_id:int}", site.alert_page, methods=["GET"]),
        Route("/sources", site.sources, methods=["GET"]),
        Route("/export.csv", site.export_csv, methods=["GET"]),
        Route("/export.json", site.export_json, methods=["GET"]),
        Route("/api/alerts", site.api_alerts, methods=["GET"]),
        Route("/api/alerts/{alert_id:int}", site.api_alert, methods=["GET"]),
        Route("/feedback/{token}", site.feedback_form, methods=["GET"]),
        Route("/feedback/{token}", site.feedback_post, methods=["POST"]),
    ]
    app: ASGIApp = Starlette(
        routes=routes,
        exception_handlers={WatchtowerError: store_failed, HTTPException: http_error},
    )
    if auth:
        app = security.RequireAuth(app, secret=auth)
    csp = security.content_security_policy([str(site.css)])
    log.debug("review page built (auth %s, links live %s)", "on" if auth else "off", DEFAULT_TTL)
    return security.SecurityHeaders(app, csp=csp)
