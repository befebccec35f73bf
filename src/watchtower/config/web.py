"""The ``web:`` section: the review page, JSON API and feedback links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, SecretStr, field_validator, model_validator

from watchtower.config.fields import Problems, WebUrl, _listen, _Model

__all__ = ["WebConfig", "web_line"]


class WebConfig(_Model):
    """The review page, JSON API and feedback links (off unless ``listen`` is set).

    ``listen`` on anything but a loopback address requires ``auth``; ``public_url`` is the
    base of the feedback links in emails and webhook bodies; ``secret`` derives the key
    that signs them (without it a random key is kept in the store).
    """

    listen: Annotated[str, AfterValidator(_listen)] | None = None
    public_url: WebUrl | None = None
    auth: SecretStr | None = None
    secret: SecretStr | None = None

    @field_validator("auth", "secret", mode="after")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _auth_off_loopback(self) -> WebConfig:
        from watchtower.web.listen import is_loopback

        if self.listen is not None and not is_loopback(self.listen) and not self.auth:
            raise Problems(
                [
                    (
                        ("listen",),
                        f"{self.listen} is not a loopback address, so web.auth is required "
                        "(set web.auth to a password or token, or listen on 127.0.0.1)",
                    )
                ]
            )
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, ("***" if name in ("auth", "secret") and value is not None else value)


def web_line(web: WebConfig) -> str:
    """``watchtower check``'s line for the review page."""
    if web.listen is None:
        return "review page: off" + (f" (links to {web.public_url})" if web.public_url else "")
    parts = [f"review page: on at {web.listen}", "auth " + ("on" if web.auth else "off")]
    if web.public_url:
        parts.append(f"links to {web.public_url}")
    return ", ".join(parts)
