"""Signed webhooks, the Standard Webhooks way (https://www.standardwebhooks.com/).

Contract (DESIGN.md, fixed):

* ``POST`` of a JSON body with headers ``webhook-id`` (stable per delivery: receivers
  dedupe on it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
  (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``). A secret written
  ``whsec_<base64>`` is base64-decoded to form the key; any other secret is used as its
  UTF-8 bytes.
* Only a 2xx answer is a delivery. Redirects are never followed (a 3xx is a failure).
  410 Gone is permanent (:class:`PermanentDeliveryError`: the endpoint gets disabled);
  anything else, a refused connection or a timeout is a :class:`DeliveryError` carrying
  the receiver's ``Retry-After`` in seconds when it sent one.
* The answer's body is streamed and at most :data:`MAX_RESPONSE_BYTES` of it are read
  (undecoded), so a receiver that answers with gigabytes costs kilobytes; a 2xx is a
  delivery however long its body.

Secrets and webhook URLs (which often embed tokens) never appear in messages: a
webhook is named by its ``key``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

import httpx

from watchtower import __version__ as _version
from watchtower.alertobject import alert_object
from watchtower.errors import ConfigError, DeliveryError, PermanentDeliveryError
from watchtower.retry_after import parse_retry_after

if TYPE_CHECKING:
    from watchtower.alertobject import LinkMaker
    from watchtower.config import WebhookConfig
    from watchtower.store import AlertView

__all__ = [
    "MAX_RESPONSE_BYTES",
    "MAX_RETRY_AFTER",
    "encode_body",
    "post_webhook",
    "read_capped",
    "send_bounded",
    "sign",
    "signing_key",
    "webhook_headers",
    "webhook_payload",
]

log = logging.getLogger(__name__)

#: A receiver's Retry-After is honoured up to this many seconds (one day).
MAX_RETRY_AFTER = 86_400.0
#: At most this much of a receiver's answer body is read; the rest is never downloaded.
MAX_RESPONSE_BYTES = 64 * 1024
_SECRET_PREFIX = "whsec_"
_USER_AGENT = f"Watchtower/{_version} (webhook)"


def signing_key(secret: str) -> bytes:
    """The HMAC key for ``secret``: base64-decoded after ``whsec_``, else UTF-8 bytes.

    Raises :class:`ConfigError` (without the secret) when a ``whsec_`` secret is not
    valid base64.
    """
    if secret.startswith(_SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(
                "webhook secret starts with whsec_ but the rest is not valid base64"
            ) from exc
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, f"{msg_id}.{timestamp}." + body)>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_payload(
    alert: AlertView, *, feedback: str | None = None, links: LinkMaker | None = None
) -> dict[str, Any]:
    """The JSON body for one alert: the alert object of DESIGN.md.

    Built by :func:`watchtower.alertobject.alert_object` (the same object as
    ``alerts --json`` and ``GET /api/alerts``): ``{"type": "alert", "alert_id", "score",
    "title", "url", "source", "published", "sources": [...every outlet], "explanation",
    "lang", "excerpt", "feedback", "feedback_links"? (with ``links``), "archive"}``.
    """
    return alert_object(alert, feedback=feedback, links=links)


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (compact UTF-8 JSON)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers plus content type and user agent."""
    return {
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


async def post_webhook(
    client: httpx.AsyncClient,
    cfg: WebhookConfig,
    msg_id: str,
    payload: dict[str, Any],
    *,
    now: float,
) -> None:
    """POST ``payload`` to ``cfg.url`` signed with ``cfg.secret``; return on 2xx.

    ``msg_id`` is the delivery's stable id (``webhook-id``), ``now`` the Unix time used
    for ``webhook-timestamp``. Redirects are not followed. Raises
    :class:`PermanentDeliveryError` on 410 and :class:`DeliveryError` (with
    ``retry_after`` from the answer, if any) on any other status, connection error or
    timeout (``cfg.timeout`` bounds the whole request, not each read). At most
    :data:`MAX_RESPONSE_BYTES` of the answer body are read.
    """
    name = f"webhook:{cfg.key}"
    body = encode_body(payload)
    try:
        headers = webhook_headers(cfg.secret.get_secret_value(), msg_id, int(now), body)
    except ConfigError as exc:
        raise DeliveryError(f"{name}: {exc}") from exc
    total = cfg.timeout.total_seconds()
    request = client.build_request("POST", cfg.url, content=body, headers=headers, timeout=total)
    response = await send_bounded(client, request, total, name)
    status = response.status_code
    if 200 <= status < 300:
        log.debug("%s accepted %s (HTTP %d)", name, msg_id, status)
        return
    if status == 410:
        raise PermanentDeliveryError(f"{name}: receiver answered 410 Gone")
    retry_after = parse_retry_after(
        response.headers.get("retry-after"), cap=MAX_RETRY_AFTER, now=now
    )
    if 300 <= status < 400:
        reason = f"{name}: HTTP {status} redirect not followed (configure the final URL)"
    else:
        reason = f"{name}: HTTP {status}"
    raise DeliveryError(reason, retry_after=retry_after)


async def send_bounded(
    client: httpx.AsyncClient, request: httpx.Request, total: float, name: str
) -> httpx.Response:
    """Send ``request`` without following redirects; ``total`` seconds bound the whole
    exchange (connect, answer and the body), of which at most :data:`MAX_RESPONSE_BYTES`
    are read. Returns the closed answer (status and headers decide); raises
    :class:`DeliveryError` ``NAME: no answer within 10s`` or ``NAME: ConnectError: …``.
    """
    deadline = asyncio.get_running_loop().time() + total
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True, follow_redirects=False)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise DeliveryError(f"{name}: no answer within {total:g}s") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{name}: {type(exc).__name__}: {_short(exc)}") from exc
    await _finish_body(response, deadline, name)
    return response


async def _finish_body(response: httpx.Response, deadline: float, name: str) -> None:
    """Read a little of the body (the status already decides), then close the answer.

    A body that fails or stalls does not change the outcome: the receiver answered.
    """
    try:
        async with asyncio.timeout_at(deadline):
            await read_capped(response, MAX_RESPONSE_BYTES)
    except (TimeoutError, httpx.HTTPError) as exc:
        log.debug("%s: answer body not read (%s)", name, type(exc).__name__)
    finally:
        await response.aclose()


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """Up to ``cap`` bytes of a streamed ``response`` body (as sent, not decoded).

    Stops reading at ``cap``: the rest is never downloaded (closing the response then
    drops the connection instead of draining it). A body that ends within ``cap`` is
    read whole, so its connection can be reused.
    """
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        parts.append(chunk[: cap - size])
        size += len(parts[-1])
        if size >= cap:
            break
    return b"".join(parts)


def _short(exc: BaseException) -> str:
    """A short error text that cannot carry the request URL (which may hold a token)."""
    text = str(exc).split("\n", 1)[0][:120]
    return text if "://" not in text else "request failed"
