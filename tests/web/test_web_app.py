"""The review page over a real uvicorn server on 127.0.0.1 and an in-memory reader."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from tests.web_fakes import KEY, T0, Clock, FakeReader, live_server, make_alert
from watchtower.web.app import create_app
from watchtower.web.tokens import feedback_links, make_token

HOSTILE_TITLE = "<script>alert('x')</script>Evil <b>title</b>"


def _reader() -> FakeReader:
    return FakeReader(
        [
            make_alert(3, "Forced repatriation of defectors reported"),
            make_alert(
                2,
                HOSTILE_TITLE,
                url="javascript:alert(1)",
                sources=[
                    {"source": "<img src=x onerror=alert(2)>", "title": "t", "url": "javascript:x"},
                    {"source": "Good outlet", "title": "t", "url": "https://good.example/a"},
                ],
                excerpt='=HYPERLINK("http://evil") <script>bad()</script>',
            ),
            make_alert(
                1, "탈북민 강제북송 우려", lang="ko", excerpt="중국 정부가 강제북송을 재개했다."
            ),
        ]
    )


@pytest.fixture
def reader() -> FakeReader:
    return _reader()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def base(reader: FakeReader, clock: Clock) -> Iterator[str]:
    app = create_app(reader, KEY, clock=clock, public_url="https://wt.example.org")
    with live_server(app) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, follow_redirects=False) as c:
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def _token(alert_id: int, verdict: str = "not-relevant") -> str:
    return make_token(alert_id, verdict, KEY, now=T0)  # type: ignore[arg-type]


def test_index_lists_alerts_newest_first_with_details(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert html.index("Forced repatriation") < html.index("탈북민")
    assert "0.72" in html
    assert "entities: North Korea; terms: forced repatriation" in html
    assert "Excerpt of Forced repatriation" in html
    assert 'href="https://news.example.org/3"' in html
    assert html.count(">Not relevant</button>") == 3


def test_security_headers(client: httpx.Client) -> None:
    for path in ("/", "/api/alerts", "/feedback/bogus", "/nope"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+'", csp)
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_stylesheet_matches_its_csp_hash(client: httpx.Client) -> None:
    import base64
    import hashlib

    page = client.get("/")
    css = re.search(r"<style>(.*?)</style>", page.text, re.S)
    assert css
    digest = base64.b64encode(hashlib.sha256(css.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["content-security-policy"]
    assert "<script" not in page.text.replace("&lt;script", "")
    assert "http://" not in page.text.replace("http://evil", "")  # no remote resources


def test_hostile_content_renders_inert(client: httpx.Client) -> None:
    for path in ("/", "/alerts/2"):
        html = client.get(path).text
        assert "<script" not in html
        assert "alert('x')" not in html  # script body dropped with the tag
        assert "<img" not in html and "onerror" not in html.replace("onerror=alert(2)&gt;", "")
        assert 'href="javascript:' not in html.lower()
        assert "javascript:alert(1)" in html  # shown as text, not as a link
        assert 'href="https://good.example/a"' in html
        assert "Evil title" in html


def test_alert_page_and_404(client: httpx.Client) -> None:
    page = client.get("/alerts/3")
    assert page.status_code == 200
    assert "forced repatriation" in page.text and "31%" in page.text
    assert client.get("/alerts/99").status_code == 404
    assert client.get("/api/alerts/99").status_code == 404
    assert client.get("/alerts/" + "9" * 30).status_code == 404


def test_search_passes_q_through(client: httpx.Client, reader: FakeReader) -> None:
    found = client.get("/api/alerts", params={"q": "defectors", "limit": "5"}).json()
    assert reader.queries[-1] == ("defectors", 5)
    assert [a["alert_id"] for a in found] == [3]
    korean = client.get("/api/alerts", params={"q": "강제북송"}).json()
    assert reader.queries[-1] == ("강제북송", 50)
    assert [a["alert_id"] for a in korean] == [1]
    page = client.get("/", params={"q": "  defectors  "})
    assert reader.queries[-1] == ("defectors", 50)
    assert "탈북민" not in page.text and 'value="defectors"' in page.text
    client.get("/api/alerts", params={"q": ""})
    assert reader.queries[-1] == (None, 50)


def test_api_alert_objects(client: httpx.Client) -> None:
    alerts = client.get("/api/alerts").json()
    assert [a["alert_id"] for a in alerts] == [3, 2, 1]
    keys = {"alert_id", "title", "url", "score", "sources", "explanation", "excerpt", "lang"}
    assert keys | {"feedback", "feedback_links"} <= set(alerts[0])
    assert alerts[0]["feedback"] is None
    assert alerts[1]["title"] == HOSTILE_TITLE  # JSON carries the stored text as it is
    assert alerts[0]["feedback_links"] == feedback_links("https://wt.example.org", 3, KEY, T0)


def test_limit_is_validated(client: httpx.Client, reader: FakeReader) -> None:
    refused = client.get("/api/alerts", params={"limit": "abc"})
    assert refused.status_code == 400
    assert refused.json() == {"error": "limit must be a positive whole number"}
    assert client.get("/", params={"limit": "-1"}).status_code == 400
    assert client.get("/api/alerts", params={"limit": "0"}).status_code == 400
    client.get("/api/alerts", params={"limit": "999999"})
    assert reader.queries[-1] == (None, 1000)


def test_csv_export(client: httpx.Client) -> None:
    response = client.get("/export.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["alert_id"] for r in rows] == ["3", "2", "1"]
    assert rows[2]["title"] == "탈북민 강제북송 우려"
    assert rows[1]["excerpt"].startswith("'=HYPERLINK")  # formula defused
    assert "Good outlet <https://good.example/a>" in rows[1]["sources"]


def test_json_export(client: httpx.Client, reader: FakeReader) -> None:
    response = client.get("/export.json", params={"q": "defectors"})
    assert "attachment" in response.headers["content-disposition"]
    assert [a["alert_id"] for a in json.loads(response.content)] == [3]
    assert reader.queries[-1] == ("defectors", 1000)


def test_sources_page(client: httpx.Client, reader: FakeReader) -> None:
    reader.health = [
        {
            "name": "Broken <feed>",
            "kind": "feed",
            "url": "https://broken.example/rss",
            "state": "failing",
            "last_polled": T0,
            "last_success": T0 - timedelta(days=2),
            "last_error": "HTTP 503 <from upstream>",
            "failing_since": T0 - timedelta(days=1),
            "last_new_item": None,
        }
    ]
    html = client.get("/sources").text
    assert "Broken &lt;feed&gt;" in html or "Broken" in html
    assert "<feed>" not in html
    assert 'class="state-failing">failing' in html
    assert "2026-05-03 07:00 UTC" in html  # last success
    assert "HTTP 503" in html


def test_feedback_get_shows_confirmation_and_records_nothing(
    client: httpx.Client, reader: FakeReader
) -> None:
    page = client.get(f"/feedback/{_token(3)}")
    assert page.status_code == 200
    assert "Forced repatriation of defectors reported" in page.text
    assert "Confirm: Not relevant" in page.text
    assert 'method="post"' in page.text
    assert reader.feedback_calls == []


def test_feedback_post_records_and_a_change_replaces(
    client: httpx.Client, reader: FakeReader
) -> None:
    token = _token(3)
    csrf = _csrf(client.get(f"/feedback/{token}").text)
    done = client.post(f"/feedback/{token}", data={"csrf": csrf})
    assert done.status_code == 200
    assert "Recorded: Not relevant" in done.text
    assert reader.verdicts == {3: "not-relevant"}
    assert client.get("/api/alerts/3").json()["feedback"] == "not-relevant"
    other = _token(3, "relevant")
    assert other in done.text  # "changed your mind" offers the other verdict
    assert client.post(f"/feedback/{other}", data={"csrf": csrf}).status_code == 200
    assert reader.verdicts == {3: "relevant"}
    assert [a["feedback"] for a in client.get("/api/alerts").json()] == ["relevant", None, None]


def test_page_buttons_post_and_return_to_the_page(client: httpx.Client, reader: FakeReader) -> None:
    html = client.get("/", params={"q": "defectors"}).text
    form = re.search(
        r'<form method="post" action="(/feedback/[^"]+)">\s*'
        r'<input type="hidden" name="csrf" value="([0-9a-f]+)">\s*'
        r'<input type="hidden" name="back" value="([^"]+)">\s*'
        r'<button type="submit" class="not-relevant">',
        html,
    )
    assert form
    action, csrf, back = form.groups()
    back = back.replace("&amp;", "&")
    response = client.post(action, data={"csrf": csrf, "back": back})
    assert response.status_code == 303
    assert response.headers["location"] == "/?q=defectors#alert-3"
    assert reader.verdicts == {3: "not-relevant"}
    assert 'data-verdict="not-relevant"' in client.get("/?q=defectors").text


def test_open_redirect_refused(client: httpx.Client, reader: FakeReader) -> None:
    token = _token(3)
    csrf = _csrf(client.get(f"/feedback/{token}").text)
    for back in ("//evil.example/", "https://evil.example/", "/\\evil"):
        response = client.post(f"/feedback/{token}", data={"csrf": csrf, "back": back})
        assert response.status_code == 200  # the confirmation page, no redirect
        assert "location" not in response.headers


def test_tampered_token_is_403_and_changes_nothing(
    client: httpx.Client, reader: FakeReader
) -> None:
    token = _token(3)
    csrf = _csrf(client.get(f"/feedback/{token}").text)
    alert_id, code, expires, mac = token.split(".")
    tampered = [
        f"2.{code}.{expires}.{mac}",
        f"{alert_id}.r.{expires}.{mac}",
        f"{alert_id}.{code}.{int(expires) + 1}.{mac}",
        f"{alert_id}.{code}.{expires}.{mac[:-2]}AA",
        "not-a-token",
    ]
    for bad in tampered:
        assert client.get(f"/feedback/{bad}").status_code == 403
        assert client.post(f"/feedback/{bad}", data={"csrf": csrf}).status_code == 403
    assert reader.feedback_calls == []


def test_expired_token_is_403(client: httpx.Client, reader: FakeReader, clock: Clock) -> None:
    token = _token(3)
    csrf = _csrf(client.get(f"/feedback/{token}").text)
    clock.now = T0 + timedelta(days=61)
    page = client.get(f"/feedback/{token}")
    assert page.status_code == 403 and "expired" in page.text
    assert client.post(f"/feedback/{token}", data={"csrf": csrf}).status_code == 403
    assert reader.feedback_calls == []


def test_csrf_is_required(client: httpx.Client, reader: FakeReader, base: str) -> None:
    token = _token(3)
    csrf = _csrf(client.get(f"/feedback/{token}").text)
    assert client.post(f"/feedback/{token}").status_code == 403
    assert client.post(f"/feedback/{token}", data={"csrf": "0" * 64}).status_code == 403
    with httpx.Client(base_url=base) as stranger:  # the right field, but no cookie
        assert stranger.post(f"/feedback/{token}", data={"csrf": csrf}).status_code == 403
    assert reader.feedback_calls == []


def test_oversized_form_is_refused(client: httpx.Client, reader: FakeReader) -> None:
    token = _token(3)
    csrf = _csrf(client.get(f"/feedback/{token}").text)
    response = client.post(f"/feedback/{token}", data={"csrf": csrf, "pad": "x" * 20_000})
    assert response.status_code == 413
    assert reader.feedback_calls == []


def test_cookie_is_httponly_and_samesite(base: str) -> None:
    with httpx.Client(base_url=base) as fresh:
        cookie = fresh.get("/").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_unknown_alert_in_a_valid_token_is_404(client: httpx.Client, reader: FakeReader) -> None:
    token = _token(77)
    csrf = _csrf(client.get("/").text)
    assert client.get(f"/feedback/{token}").status_code == 404
    assert client.post(f"/feedback/{token}", data={"csrf": csrf}).status_code == 404
    assert reader.feedback_calls == []


def test_only_feedback_changes_state(client: httpx.Client) -> None:
    for path in ("/", "/api/alerts", "/export.csv", "/sources"):
        refused = client.post(path)
        assert refused.status_code == 405
        assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}


@pytest.fixture
def guarded(reader: FakeReader) -> Iterator[str]:
    app = create_app(reader, KEY, auth="open sesame", clock=Clock(T0))
    with live_server(app) as url:
        yield url


def test_auth_required_when_configured(guarded: str, reader: FakeReader) -> None:
    with httpx.Client(base_url=guarded) as anon:
        for path in ("/", "/alerts/3", "/sources", "/export.csv", "/export.json", "/api/alerts"):
            response = anon.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Basic")
        assert anon.get("/", auth=("anyone", "wrong")).status_code == 401
        assert anon.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert anon.get("/", auth=("anyone", "open sesame")).status_code == 200
        ok = anon.get("/api/alerts", headers={"authorization": "Bearer open sesame"})
        assert ok.status_code == 200
        # feedback links work without the secret: the signed token is the credential
        token = _token(3)
        page = anon.get(f"/feedback/{token}")
        assert page.status_code == 200
        assert anon.post(f"/feedback/{token}", data={"csrf": _csrf(page.text)}).status_code == 200
    assert reader.verdicts == {3: "not-relevant"}
