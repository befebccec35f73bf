"""Email: immediate alert messages and the SMTP client (aiosmtplib, explicit TLS).

TLS is never left to chance (aiosmtplib's default ``start_tls=None`` silently falls
back to plaintext): ``smtp.starttls`` → STARTTLS is *required* (a server that does not
offer it is an error, not a plaintext send); ``smtp.tls`` → implicit TLS (port 465);
neither → plaintext, because the operator configured exactly that. Certificates are
verified with ``ssl.create_default_context()`` (which honours ``SSL_CERT_FILE``).

``smtp.timeout`` is a deadline for the whole conversation of one message (connect,
TLS, login, envelope, data), not for each reply as aiosmtplib's own timeout is: a
server that answers every command just before that limit still fails at the limit.
The closing QUIT gets whatever time is left and its failure is ignored (the message
was already accepted).

Errors become :class:`DeliveryError` (retry: connection refused, timeouts, 4xx, TLS
problems, authentication) or :class:`PermanentDeliveryError` (the server refused the
message or every recipient with a 5xx). Passwords never appear in messages.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING

from watchtower.errors import DeliveryError, PermanentDeliveryError
from watchtower.notify.render import build_message, card, render_html, render_text, zone_of
from watchtower.notify.sanitize import one_line

if TYPE_CHECKING:
    import aiosmtplib

    from watchtower.alertobject import LinkMaker
    from watchtower.config import EmailConfig, SmtpConfig
    from watchtower.store import AlertView

__all__ = ["render_alert_email", "send_message"]

log = logging.getLogger(__name__)


def _client(smtp: SmtpConfig) -> aiosmtplib.SMTP:
    import aiosmtplib

    context = ssl.create_default_context() if (smtp.tls or smtp.starttls) else None
    password = smtp.password.get_secret_value() if smtp.password is not None else None
    return aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=password,
        timeout=smtp.timeout.total_seconds(),
        use_tls=bool(smtp.tls),
        start_tls=bool(smtp.starttls),  # explicit: never the None "opportunistic" mode
        validate_certs=True,
        tls_context=context,
    )


async def send_message(smtp: SmtpConfig, message: EmailMessage) -> None:
    """Send ``message`` (From/To taken from its headers) and return once accepted.

    Returns only after the server answered 250 to the message data. Raises
    :class:`DeliveryError` when it should be retried (including when the whole
    conversation took longer than ``smtp.timeout``) and
    :class:`PermanentDeliveryError` when the server refused it for good.
    """
    where = f"SMTP {smtp.host}:{smtp.port}"
    total = smtp.timeout.total_seconds()
    deadline = asyncio.get_running_loop().time() + total
    client = _client(smtp)
    try:
        try:
            async with asyncio.timeout_at(deadline):
                errors = await _converse(client, smtp, message)
        except TimeoutError as exc:
            raise DeliveryError(f"{where}: no complete answer within {total:g}s") from exc
        await _quit(client, deadline)
    finally:
        client.close()
    if errors:
        log.warning(
            "%s refused %d of the recipients of %s: %s",
            where,
            len(errors),
            message["Message-ID"],
            ", ".join(sorted(errors)),
        )
    log.debug("%s accepted %s", where, message["Message-ID"])


async def _converse(
    client: aiosmtplib.SMTP, smtp: SmtpConfig, message: EmailMessage
) -> dict[str, object]:
    """Connect (TLS, login) and send; library errors become :class:`DeliveryError`.

    Returns the recipients the server refused (empty when it took them all).
    """
    import aiosmtplib

    try:
        await client.connect()
        errors, _reply = await client.send_message(message)
    except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise _translate(exc, smtp) from exc
    return dict(errors)


async def _quit(client: aiosmtplib.SMTP, deadline: float) -> None:
    """Say QUIT within what is left of ``deadline``; any failure is ignored."""
    import aiosmtplib

    try:
        async with asyncio.timeout_at(deadline):
            await client.quit()
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        log.debug("SMTP QUIT not answered cleanly (%s); closing", type(exc).__name__)


def _refusal(
    exc: aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPResponseException, where: str
) -> DeliveryError:
    """The server answered with an error code: 5xx is permanent, the rest retryable."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = f"{where}: every recipient refused ({', '.join(map(str, codes))})"
        if codes and all(500 <= c < 600 for c in codes):
            return PermanentDeliveryError(text)
        return DeliveryError(text)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"{where}: login refused ({exc.code}); check smtp.username")
    text = f"{where}: server answered {exc.code} {one_line(exc.message, 120)}"
    if 500 <= exc.code < 600:
        return PermanentDeliveryError(text)
    return DeliveryError(text)


def _translate(exc: BaseException, smtp: SmtpConfig) -> DeliveryError:
    """An aiosmtplib / ssl / socket error as a (permanent or retryable) DeliveryError."""
    import aiosmtplib

    where = f"SMTP {smtp.host}:{smtp.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPResponseException):
        return _refusal(exc, where)
    if isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError)):
        return DeliveryError(f"{where}: cannot connect ({one_line(str(exc), 120)})")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return DeliveryError(f"{where}: timed out")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return DeliveryError(f"{where}: server disconnected")
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"{where}: TLS failed ({one_line(str(exc), 160)})")
    if isinstance(exc, aiosmtplib.SMTPException):
        text = one_line(str(exc), 160)
        if smtp.starttls and "STARTTLS" in text.upper():
            text += "; refusing to send in plaintext because smtp.starttls is true"
        return DeliveryError(f"{where}: {text}")
    if isinstance(exc, OSError):
        return DeliveryError(f"{where}: {type(exc).__name__}: {exc.strerror or exc}")
    return DeliveryError(f"{where}: {type(exc).__name__}")


def render_alert_email(
    alert: AlertView, cfg: EmailConfig, message_id: str, *, links: LinkMaker | None = None
) -> EmailMessage:
    """The immediate email for one alert: multipart/alternative, text and HTML.

    With ``links`` (``web.public_url`` set) it carries the two feedback links.

    ``message_id`` is the delivery's stable id (``msg_…``); the Message-ID header is
    ``<msg_…@domain of from>``, so a resend after a crash carries the same id.
    """
    zone = zone_of(cfg)
    c = card(alert, zone, links=links)
    heading = f"Watchtower alert: {c.title}"
    threshold = (
        f"{cfg.immediate_min_score:.2f}" if cfg.immediate_min_score is not None else "the threshold"
    )
    context = {"c": c, "heading": heading, "threshold": threshold}
    return build_message(
        cfg,
        subject=f"{cfg.subject_prefix} {c.score} {c.title}",
        text=render_text("alert.txt.j2", **context),
        html=render_html("alert.html.j2", title=heading, **context),
        message_id=message_id,
        extra_headers=[("X-Watchtower-Alert", str(alert.id))],
    )
