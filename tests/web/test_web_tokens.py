from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from watchtower.errors import WatchtowerError
from watchtower.web.tokens import (
    BadSignature,
    ExpiredToken,
    MalformedToken,
    TokenError,
    WrongVerdict,
    derive_key,
    feedback_links,
    make_token,
    new_key,
    verify_token,
)

KEY = b"k" * 32
T0 = datetime(2026, 5, 5, 7, 0, tzinfo=UTC)


def test_round_trip_gives_back_alert_and_verdict() -> None:
    for verdict in ("relevant", "not-relevant"):
        token = make_token(42, verdict, KEY, now=T0)
        granted = verify_token(token, KEY, now=T0 + timedelta(days=1), verdict=verdict)
        assert (granted.alert_id, granted.verdict) == (42, verdict)
        assert granted.expires == int((T0 + timedelta(days=60)).timestamp())


def test_token_is_url_safe() -> None:
    token = make_token(7, "not-relevant", KEY, now=T0)
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@pytest.mark.parametrize("field", [0, 1, 2])
def test_tampered_fields_are_bad_signature(field: int) -> None:
    parts = make_token(42, "relevant", KEY, now=T0).split(".")
    parts[field] = {0: "43", 1: "n", 2: str(int(parts[2]) + 86_400 * 365)}[field]
    with pytest.raises(BadSignature):
        verify_token(".".join(parts), KEY, now=T0)


def test_tampered_mac_is_bad_signature() -> None:
    body, _, mac = make_token(42, "relevant", KEY, now=T0).rpartition(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    with pytest.raises(BadSignature):
        verify_token(f"{body}.{flipped}", KEY, now=T0)


def test_forged_with_another_key_is_bad_signature() -> None:
    forged = make_token(42, "relevant", new_key(), now=T0)
    with pytest.raises(BadSignature):
        verify_token(forged, KEY, now=T0)


def test_forged_without_any_key_is_refused() -> None:
    mac = base64.urlsafe_b64encode(b"\0" * 16).rstrip(b"=").decode()
    with pytest.raises(BadSignature):
        verify_token(f"42.r.9999999999.{mac}", KEY, now=T0)


def test_expired_token() -> None:
    token = make_token(42, "relevant", KEY, now=T0, ttl=timedelta(hours=1))
    verify_token(token, KEY, now=T0 + timedelta(minutes=59))
    with pytest.raises(ExpiredToken):
        verify_token(token, KEY, now=T0 + timedelta(hours=1))


def test_wrong_verdict() -> None:
    token = make_token(42, "relevant", KEY, now=T0)
    with pytest.raises(WrongVerdict):
        verify_token(token, KEY, now=T0, verdict="not-relevant")


@pytest.mark.parametrize(
    "token", ["", "abc", "1.r.2", "1.r.2.3.4", "x" * 500, "1.r.2.!!", "é.r.1.a", "-1.r.2.abc"]
)
def test_malformed(token: str) -> None:
    with pytest.raises(MalformedToken):
        verify_token(token, KEY, now=T0)


def test_errors_belong_to_the_tree() -> None:
    assert issubclass(TokenError, WatchtowerError)
    for cls in (BadSignature, ExpiredToken, MalformedToken, WrongVerdict):
        assert issubclass(cls, TokenError)


def test_short_keys_and_bad_verdicts_are_refused() -> None:
    with pytest.raises(ValueError):
        make_token(1, "relevant", b"short", now=T0)
    with pytest.raises(ValueError):
        make_token(1, "maybe", KEY, now=T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        derive_key("")


def test_derive_key_is_stable_and_secret_dependent() -> None:
    assert derive_key("s3cret") == derive_key("s3cret")
    assert derive_key("s3cret") != derive_key("s3cret!")
    assert len(derive_key("s3cret")) == 32


def test_feedback_links_shape() -> None:
    links = feedback_links("https://wt.example.org/base/", 5, KEY, T0)
    assert set(links) == {"relevant", "not_relevant"}
    prefix = "https://wt.example.org/base/feedback/"
    for name, verdict in (("relevant", "relevant"), ("not_relevant", "not-relevant")):
        assert links[name].startswith(prefix)
        token = links[name][len(prefix) :]
        assert verify_token(token, KEY, now=T0).verdict == verdict
