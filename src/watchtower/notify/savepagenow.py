"""Save Page Now: ask the Internet Archive to capture each alert's URL, as an outbox delivery.

Off by default; ``archive.save_page_now: true`` turns it on. Then every new alert gets
one delivery on the channel :data:`SAVE_PAGE_NOW_CHANNEL` (``savepagenow``), written in
the poll's transaction with its other deliveries (:func:`with_save_page_now`), and the
outbox worker sends it like a webhook: at least once, retried with backoff, a dead
letter after ``notify.max_attempts``.

:func:`request_capture` is one attempt: ``GET <save_page_now_endpoint><alert URL>``
(the public, anonymous form of the API, e.g.
``https://web.archive.org/save/https://example.org/report``), redirects not followed,
bounded by ``save_page_now_timeout`` for the whole exchange, at most
:data:`~watchtower.notify.webhook.MAX_RESPONSE_BYTES` of the answer read. A 2xx or a 3xx
(the archive redirects to its new capture) is accepted; 429 and 5xx answers, refused
connections and timeouts are retried (honouring ``Retry-After``); any other 4xx is
refused for good (:class:`PermanentDeliveryError`: a dead letter, nothing disabled).
An alert without a URL has nothing to capture and counts as delivered.
"""

from __future__ import annotations

import logging

import httpx

from watchtower import __version__ as _version
from watchtower.config.evidence import ArchiveConfig
from watchtower.errors import DeliveryError, PermanentDeliveryError
from watchtower.notify.channels import SAVE_PAGE_NOW_CHANNEL, with_save_page_now
from watchtower.notify.webhook import MAX_RETRY_AFTER, send_bounded
from watchtower.retry_after import parse_retry_after

__all__ = ["SAVE_PAGE_NOW_CHANNEL", "request_capture", "with_save_page_now"]

log = logging.getLogger(__name__)

_USER_AGENT = f"Watchtower/{_version} (Save Page Now)"


def capture_url(archive: ArchiveConfig, url: str) -> str:
    """The request that asks for a capture of ``url``: the endpoint followed by the URL."""
    return archive.save_page_now_endpoint + url


async def request_capture(
    client: httpx.AsyncClient, archive: ArchiveConfig, url: str | None, *, now: float
) -> None:
    """Ask Save Page Now to capture ``url``; return when it accepted (module docstring).

    ``now`` (Unix seconds) reads an HTTP-date ``Retry-After``. Raises
    :class:`DeliveryError` to retry, :class:`PermanentDeliveryError` when refused.
    """
    if not url:
        log.debug("save page now: alert has no URL, nothing to capture")
        return
    total = archive.save_page_now_timeout.total_seconds()
    request = client.build_request(
        "GET", capture_url(archive, url), headers={"user-agent": _USER_AGENT}, timeout=total
    )
    response = await send_bounded(client, request, total, SAVE_PAGE_NOW_CHANNEL)
    _judge(response, now)
    log.info("save page now accepted %s (HTTP %d)", url, response.status_code)


def _judge(response: httpx.Response, now: float) -> None:
    status = response.status_code
    if 200 <= status < 400:
        return
    reason = f"{SAVE_PAGE_NOW_CHANNEL}: HTTP {status}"
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(
            response.headers.get("retry-after"), cap=MAX_RETRY_AFTER, now=now
        )
        raise DeliveryError(reason, retry_after=retry_after)
    raise PermanentDeliveryError(reason)
