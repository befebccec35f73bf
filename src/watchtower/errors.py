"""One exception tree for Watchtower.

Every error that Watchtower raises on purpose derives from :class:`WatchtowerError`.
At each library boundary (httpx, feedparser, SQLAlchemy, aiosmtplib…) the library's
exception is caught and re-raised as one of these with ``raise X(...) from exc`` so
callers never need to know which library failed.

    WatchtowerError
    ├── ConfigError          config file or seeds invalid; carries every problem found
    ├── FetchError           a source could not be fetched; ``reason`` is short and human
    │   ├── FetchTimeout         total deadline exceeded
    │   ├── BodyTooLarge         decompressed body over fetch.max_bytes
    │   ├── AddressRefused       URL scheme or resolved address not allowed
    │   ├── RedirectError        too many redirects, loop, or a bad Location
    │   └── HTTPStatusError      a non-2xx, non-304 answer (``status``, ``retry_after``)
    ├── ParseError           bytes were fetched but are not a feed or page we can read
    │   └── PdfError             a PDF that cannot be read: damaged, encrypted, a bomb
    ├── StoreError           the database refused or failed
    │   └── StoreBusyError       another Watchtower holds the store's instance lock
    └── DeliveryError        a webhook or email could not be delivered (retryable)
        └── PermanentDeliveryError   the receiver said never again (410, bad address)

Messages never contain secrets (webhook secrets, SMTP passwords).
"""

from __future__ import annotations

from collections.abc import Iterable


class WatchtowerError(Exception):
    """Base of every error Watchtower raises on purpose."""


class ConfigError(WatchtowerError):
    """The configuration (or seeds) is invalid.

    ``problems`` holds one line per problem, formatted ``FILE:LINE: key.path: what is
    wrong (what was expected)`` so that a user can jump straight to it.
    """

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__("\n".join(self.problems))


class FetchError(WatchtowerError):
    """A source could not be fetched. ``reason`` is what ``watchtower status`` shows."""

    def __init__(self, reason: str, *, url: str | None = None) -> None:
        self.reason = reason
        self.url = url
        super().__init__(reason)


class FetchTimeout(FetchError):
    """The total deadline for one request was exceeded."""


class BodyTooLarge(FetchError):
    """The (decompressed) body exceeded ``fetch.max_bytes``."""


class AddressRefused(FetchError):
    """The URL's scheme or resolved address is not allowed by the address policy."""


class RedirectError(FetchError):
    """Too many redirects, a redirect loop, or an unusable ``Location``."""


class HTTPStatusError(FetchError):
    """The server answered with a status that is neither 2xx nor 304."""

    def __init__(
        self,
        reason: str,
        *,
        status: int,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, url=url)
        self.status = status
        self.retry_after = retry_after


class ParseError(WatchtowerError):
    """Fetched bytes are not a feed or page Watchtower can read."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PdfError(ParseError):
    """A PDF whose text cannot be read; ``reason`` says why in plain words."""


class StoreError(WatchtowerError):
    """The database failed or refused an operation."""


class StoreBusyError(StoreError):
    """Another Watchtower process runs on this store; ``holder`` names it (pid, host, since)."""

    def __init__(self, message: str, *, holder: str) -> None:
        self.holder = holder
        super().__init__(message)


class DeliveryError(WatchtowerError):
    """A webhook or email could not be delivered now; it will be retried."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class PermanentDeliveryError(DeliveryError):
    """The receiver refused for good (HTTP 410, a rejected address): do not retry."""
