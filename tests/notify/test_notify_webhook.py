"""Webhooks: Standard Webhooks signatures, the payload contract, and how answers are read."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.notify.test_notify_support import NOW, SECRET, BadSignature, reference_verify, webhook
from tests.support import LoopbackHTTP, Request, Response
from watchtower.errors import ConfigError, DeliveryError, PermanentDeliveryError
from watchtower.models import Explanation, Match
from watchtower.notify.webhook import (
    MAX_RETRY_AFTER,
    post_webhook,
    sign,
    signing_key,
    webhook_payload,
)
from watchtower.retry_after import parse_retry_after
from watchtower.store import AlertView, SourceLink

T = int(NOW.timestamp())


def alert(**overrides: object) -> AlertView:
    fields: dict[str, object] = {
        "id": 7,
        "story_id": 3,
        "created_at": NOW,
        "score": 0.87654,
        "title": "China forcibly returns 60 North Koreans",
        "url": "https://news.example/a",
        "source": "Daily NK",
        "published": datetime(2026, 5, 4, 12, 0, tzinfo=UTC),
        "sources": (
            SourceLink("Daily NK", "China returns 60", "https://news.example/a", None),
            SourceLink("HRW", "Forced returns", "https://hrw.example/b", NOW),
        ),
        "explanation": Explanation(matches=(Match("entity", "North Korea", 0.4, 2),)),
        "diff": (),
    }
    fields.update(overrides)
    return AlertView(**fields)  # type: ignore[arg-type]


# --- signing -------------------------------------------------------------------------------


def test_sign_matches_the_published_standard_webhooks_vector() -> None:
    # The test vector of the Standard Webhooks reference libraries.
    got = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("secret", [SECRET, "plain shared secret ünïcode"])
def test_reference_receiver_verifies_our_signature(secret: str) -> None:
    body = b'{"type":"alert"}'
    headers = {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(T),
        "webhook-signature": sign(secret, "msg_abc", T, body),
    }
    reference_verify(secret, headers, body, now=T)
    with pytest.raises(BadSignature):
        reference_verify(secret, headers, body + b" ", now=T)
    with pytest.raises(BadSignature):
        reference_verify(secret, {**headers, "webhook-id": "msg_other"}, body, now=T)


def test_whsec_secret_is_base64_decoded_and_plain_secret_is_utf8() -> None:
    assert signing_key("whsec_" + base64.b64encode(b"\x00\xffkey").decode()) == b"\x00\xffkey"
    assert signing_key("sécret") == "sécret".encode()


def test_malformed_whsec_secret_is_a_config_error_without_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        signing_key("whsec_not*base64!!")
    assert "not*base64" not in str(info.value)


# --- payload -------------------------------------------------------------------------------


def test_payload_is_exactly_the_design_contract() -> None:
    body = webhook_payload(alert())
    assert set(body) == {
        "type",
        "alert_id",
        "score",
        "title",
        "url",
        "source",
        "published",
        "sources",
        "explanation",
        "lang",
        "excerpt",
        "feedback",
        "archive",
    }
    assert (body["lang"], body["excerpt"], body["feedback"], body["archive"]) == (
        "und",
        "",
        None,
        None,
    )
    assert body["type"] == "alert"
    assert body["alert_id"] == 7
    assert body["score"] == 0.8765
    assert body["published"] == "2026-05-04T12:00:00+00:00"
    assert [s["source"] for s in body["sources"]] == ["Daily NK", "HRW"]
    assert body["sources"][1]["url"] == "https://hrw.example/b"
    assert body["explanation"]["matches"][0]["label"] == "North Korea"
    assert "diff" not in body["explanation"]
    json.dumps(body)  # serialisable as is


def test_payload_carries_lang_excerpt_feedback_and_links_when_public_url_is_set() -> None:
    from watchtower.web.tokens import feedback_links, verify_token

    key = b"k" * 32
    expl = Explanation(
        matches=(Match("entity", "North Korea", 0.4, 2),),
        lang="ko",
        excerpt="중국 공안이 탈북민을 다시 북송했다.",
    )
    body = webhook_payload(
        alert(explanation=expl),
        feedback="relevant",
        links=lambda alert_id: feedback_links("https://wt.example.org", alert_id, key, NOW),
    )
    assert body["lang"] == "ko"
    assert body["excerpt"] == "중국 공안이 탈북민을 다시 북송했다."
    assert body["feedback"] == "relevant"
    links = body["feedback_links"]
    assert set(links) == {"relevant", "not_relevant"}
    token = links["not_relevant"].removeprefix("https://wt.example.org/feedback/")
    granted = verify_token(token, key, now=NOW)
    assert (granted.alert_id, granted.verdict) == (7, "not-relevant")
    assert "feedback_links" not in webhook_payload(alert())  # no web.public_url: no links
    json.loads(json.dumps(body, ensure_ascii=False))


def test_page_alert_payload_carries_the_added_lines() -> None:
    body = webhook_payload(alert(diff=("New report on forced returns", "Second line")))
    assert body["explanation"]["diff"] == ["New report on forced returns", "Second line"]


# --- sending against a real receiver ---------------------------------------------------------


def _post(server: LoopbackHTTP, path: str = "/hook", **cfg: object) -> None:
    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await post_webhook(
                client,
                webhook(server.url(path), **cfg),
                "msg_stable",
                webhook_payload(alert()),
                now=T,
            )

    asyncio.run(go())


def test_post_sends_signed_json_the_receiver_can_verify(http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = Response(204)
    _post(http_server)
    [req] = http_server.requests_to("/hook")
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["webhook-id"] == "msg_stable"
    assert req.headers["webhook-timestamp"] == str(T)
    reference_verify(SECRET, req.headers, req.body, now=T)
    assert json.loads(req.body) == json.loads(json.dumps(webhook_payload(alert())))


def test_500_is_retryable_with_retry_after(http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = Response(503, {"Retry-After": "120"}, b"busy")
    with pytest.raises(DeliveryError) as info:
        _post(http_server)
    assert not isinstance(info.value, PermanentDeliveryError)
    assert info.value.retry_after == 120
    assert "503" in info.value.reason


def test_410_is_permanent(http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = Response(410, {}, b"gone")
    with pytest.raises(PermanentDeliveryError, match="410"):
        _post(http_server)


def test_redirect_is_not_followed(http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = Response(307, {"Location": http_server.url("/elsewhere")})
    http_server.routes["/elsewhere"] = Response(200)

    async def go() -> None:
        async with httpx.AsyncClient(follow_redirects=True) as client:  # even on such a client
            await post_webhook(
                client, webhook(http_server.url("/hook")), "m", webhook_payload(alert()), now=T
            )

    with pytest.raises(DeliveryError, match="redirect not followed"):
        asyncio.run(go())
    assert http_server.requests_to("/elsewhere") == []


def test_refused_connection_is_retryable_and_hides_the_url() -> None:
    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await post_webhook(
                client,
                webhook("http://127.0.0.1:9/hooks/T000/SECRETTOKEN", name="slack"),
                "m",
                {"type": "alert"},
                now=T,
            )

    with pytest.raises(DeliveryError) as info:
        asyncio.run(go())
    assert "SECRETTOKEN" not in str(info.value)
    assert "webhook:slack" in str(info.value)


def test_slow_receiver_is_cut_off_at_the_total_timeout(http_server: LoopbackHTTP) -> None:
    def slow(req: Request) -> Response:
        time.sleep(1.5)
        return Response(200)

    http_server.routes["/slow"] = slow
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="no answer"):
        _post(http_server, "/slow", timeout="0.3s")
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Tue, 05 May 2026 09:40:00 GMT", 600.0),
        ("Tue, 05 May 2026 09:00:00 GMT", 0.0),  # in the past: no wait
        ("99999999", 86400.0),  # capped at one day
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=T, cap=MAX_RETRY_AFTER) == expected
