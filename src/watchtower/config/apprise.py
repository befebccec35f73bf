"""The ``notify.apprise`` entries: any Apprise URL, with a score threshold.

An Apprise URL carries its credentials (tokens, passwords): it is a ``SecretStr``, never
shown whole — :func:`watchtower.masking.mask_url` hides everything after the scheme's host
part in ``check`` output — and the channel key is a hash of it, not the URL itself.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from pydantic import SecretStr, field_validator

from watchtower.config.fields import Duration, Fraction, Invalid, OneLine, _Model


class AppriseConfig(_Model):
    """One Apprise destination (Slack, Matrix, Telegram, Signal, ntfy, json://…)."""

    url: SecretStr
    min_score: Fraction = 0.5
    name: OneLine | None = None
    timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _looks_like_url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        scheme, sep, rest = text.partition("://")
        if not sep or not scheme or not rest or not scheme.replace("+", "").isalnum():
            raise Invalid(
                "is not an Apprise URL (expected e.g. ntfy://host/topic or tgram://token/chat)",
                echo=False,
            )
        return SecretStr(text)

    @property
    def key(self) -> str:
        """Stable id of this destination: its name, else ``apprise-`` + sha256(url)[:10]."""
        if self.name:
            return self.name
        digest = hashlib.sha256(self.url.get_secret_value().encode()).hexdigest()[:10]
        return "apprise-" + digest

    @property
    def channel(self) -> str:
        """The delivery channel string: ``apprise:<key>``."""
        return f"apprise:{self.key}"

    @property
    def scheme(self) -> str:
        """The URL's scheme (``ntfy``, ``tgram``…): safe to show, it holds no secret."""
        return self.url.get_secret_value().partition("://")[0]
