"""Signed feedback tokens: the capability inside a "Relevant" / "Not relevant" link.

A token says "alert ``A`` is judged ``V``, valid until ``T``" and is signed with
HMAC-SHA256, so a link works without a login and cannot be forged or altered.

Format (URL-safe, no padding, no characters that need escaping in a path)::

    <alert_id>.<r|n>.<expires, Unix seconds>.<base64url HMAC-SHA256, first 128 bits>

e.g. ``42.n.1783148400.GMRwhIkcpEFPotZQN3H25A``. The MAC covers a fixed context label
and the first three fields. :func:`verify_token`
compares it in constant time and raises a specific :class:`TokenError` subclass:

* :class:`MalformedToken` — not four fields, not numbers, unknown verdict code;
* :class:`BadSignature` — forged, tampered, or signed with another key;
* :class:`ExpiredToken` — valid signature, but past its expiry;
* :class:`WrongVerdict` — valid, but not the verdict the caller expected.

The key is bytes chosen by the integrator: :func:`derive_key` from the configured
``web.secret``, or, when there is none, a random :func:`new_key` persisted in the store
so links survive restarts. Changing the key invalidates every link already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from watchtower.errors import WatchtowerError

__all__ = [
    "DEFAULT_TTL",
    "VERDICTS",
    "BadSignature",
    "ExpiredToken",
    "FeedbackToken",
    "MalformedToken",
    "TokenError",
    "Verdict",
    "WrongVerdict",
    "derive_key",
    "feedback_links",
    "make_token",
    "new_key",
    "verify_token",
]

Verdict = Literal["relevant", "not-relevant"]
#: The two verdicts, in the order the buttons show them.
VERDICTS: Final[tuple[Verdict, ...]] = ("relevant", "not-relevant")
#: How long a link in an email stays valid.
DEFAULT_TTL: Final = timedelta(days=60)
#: Shortest key accepted (bytes).
MIN_KEY_BYTES: Final = 16

_CODE: Final[dict[str, str]] = {"relevant": "r", "not-relevant": "n"}
_VERDICT_OF: Final[dict[str, Verdict]] = {"r": "relevant", "n": "not-relevant"}
_CONTEXT: Final = b"watchtower-feedback-v1\x00"
_MAX_TOKEN_CHARS: Final = 200
#: The MAC is HMAC-SHA256 truncated to 128 bits (RFC 2104 section 5), to keep links short.
_MAC_BYTES: Final = 16
#: id . verdict code . expiry . 22 characters of unpadded base64url (16 bytes)
_SHAPE: Final = re.compile(r"\A[0-9]{1,18}\.[a-z]\.[0-9]{1,12}\.[A-Za-z0-9_-]{22}\Z")


class TokenError(WatchtowerError):
    """A feedback token was refused. Subclasses say why; the web page answers 403."""


class MalformedToken(TokenError):
    """The token is not of the form ``id.verdict.expires.mac``."""


class BadSignature(TokenError):
    """The MAC does not match: forged, tampered with, or signed with another key."""


class ExpiredToken(TokenError):
    """The signature is valid but the token's expiry has passed."""


class WrongVerdict(TokenError):
    """The token is valid but carries another verdict than the one expected."""


@dataclass(frozen=True, slots=True)
class FeedbackToken:
    """What a verified token grants: record ``verdict`` for ``alert_id`` until ``expires``."""

    alert_id: int
    verdict: Verdict
    expires: int


def new_key() -> bytes:
    """32 random bytes, for a key the store keeps when no ``web.secret`` is configured."""
    return secrets.token_bytes(32)


def derive_key(secret: str) -> bytes:
    """The signing key for a configured secret (HMAC-SHA256 with a fixed label).

    Deriving keeps the secret itself out of every MAC computation; the same secret
    always gives the same key, so links survive restarts.
    """
    if not secret:
        raise ValueError("an empty secret cannot sign feedback links")
    return hmac.new(b"watchtower web key", secret.encode("utf-8"), hashlib.sha256).digest()


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the feedback key must be at least {MIN_KEY_BYTES} bytes")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, _CONTEXT + body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(
    alert_id: int,
    verdict: Verdict,
    key: bytes,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """A signed token for ``verdict`` on ``alert_id``, valid for ``ttl`` after ``now``."""
    _check_key(key)
    if verdict not in _CODE:
        raise ValueError(f"unknown verdict {verdict!r} (expected relevant or not-relevant)")
    if alert_id < 0:
        raise ValueError("alert ids are not negative")
    expires = int((now + ttl).timestamp())
    body = f"{alert_id}.{_CODE[verdict]}.{expires}"
    return f"{body}.{_b64(_mac(key, body))}"


def verify_token(
    token: str,
    key: bytes,
    *,
    now: datetime,
    verdict: Verdict | None = None,
) -> FeedbackToken:
    """Check ``token`` and return what it grants; raise a :class:`TokenError` otherwise.

    The signature is checked (in constant time) before anything the token says is
    trusted; expiry is checked against ``now``; when ``verdict`` is given the token
    must carry exactly that verdict.
    """
    _check_key(key)
    if len(token) > _MAX_TOKEN_CHARS or not _SHAPE.match(token):
        raise MalformedToken("feedback token is not well-formed")
    body, _, raw_mac = token.rpartition(".")
    raw_id, code, raw_expires = body.split(".")
    try:
        given = base64.urlsafe_b64decode(raw_mac + "==")
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("feedback token is not well-formed") from exc
    if not hmac.compare_digest(given, _mac(key, body)):
        raise BadSignature("feedback token signature does not match")
    if code not in _VERDICT_OF:
        raise MalformedToken("feedback token is not well-formed")
    granted = FeedbackToken(int(raw_id), _VERDICT_OF[code], int(raw_expires))
    if now.timestamp() >= granted.expires:
        raise ExpiredToken("feedback link has expired")
    if verdict is not None and granted.verdict != verdict:
        raise WrongVerdict(f"feedback token is for {granted.verdict!r}, not {verdict!r}")
    return granted


def feedback_links(
    public_url: str,
    alert_id: int,
    key: bytes,
    now: datetime,
    *,
    ttl: timedelta = DEFAULT_TTL,
) -> dict[str, str]:
    """``{"relevant": URL, "not_relevant": URL}`` under ``public_url`` (``/feedback/TOKEN``).

    This is the ``feedback_links`` value of the alert object (webhook body, API) and
    what emails link to. ``public_url`` may carry a path prefix (behind a proxy).
    """
    base = public_url.rstrip("/")
    return {
        "relevant": f"{base}/feedback/{make_token(alert_id, 'relevant', key, now=now, ttl=ttl)}",
        "not_relevant": (
            f"{base}/feedback/{make_token(alert_id, 'not-relevant', key, now=now, ttl=ttl)}"
        ),
    }
