"""Digest and alert emails as a reader sees them: structure, safety, ranking, periods."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from bs4 import BeautifulSoup

from tests.notify.test_notify_support import NOW, email_config
from watchtower.models import Explanation, Match
from watchtower.notify.digest import digest_period, period_label, render_digest
from watchtower.notify.email import render_alert_email
from watchtower.notify.sanitize import clean_html, plain_text, safe_url
from watchtower.store import AlertView, SourceLink

EXPL = Explanation(
    matches=(
        Match("entity", "North Korea", 0.4, 2),
        Match("term", "forced repatriation", 0.3),
        Match("seed", "hrw-2023.txt", 0.1),
    ),
    nearest_seed="hrw-2023.txt",
    seed_similarity=0.61,
)


def view(alert_id: int, score: float, title: str, **extra: object) -> AlertView:
    fields: dict[str, object] = {
        "id": alert_id,
        "story_id": alert_id,
        "created_at": NOW,
        "score": score,
        "title": title,
        "url": f"https://news.example/{alert_id}",
        "source": "Daily NK",
        "published": datetime(2026, 5, 4, 12, 0, tzinfo=UTC),
        "sources": (
            SourceLink("Daily NK", title, f"https://news.example/{alert_id}", NOW),
            SourceLink("HRW", "Same story, other outlet", f"https://hrw.example/{alert_id}", None),
        ),
        "explanation": EXPL,
        "diff": (),
    }
    fields.update(extra)
    return AlertView(**fields)  # type: ignore[arg-type]


HOSTILE = view(
    3,
    0.7,
    '<script>alert("x")</script>Pyongyang <b>executions</b> <img src="https://t.example/p.gif">',
    url="javascript:alert(1)",
    sources=(
        SourceLink("Evil <svg onload=alert(1)>", "t", "javascript:alert(2)", None),
        SourceLink("Data", "t", "data:text/html,<script>alert(3)</script>", None),
        SourceLink("Fine", "t", "https://fine.example/x?a=1&b=2", None),
    ),
    diff=("<script>steal()</script> added line", "<a href='javascript:x'>click</a>"),
)


def parts(msg: EmailMessage) -> tuple[str, BeautifulSoup]:
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), BeautifulSoup(html.get_content(), "html.parser")


def assert_no_active_content(soup: BeautifulSoup) -> None:
    for tag in ("script", "img", "iframe", "object", "embed", "link", "form", "svg", "base"):
        assert soup.find(tag) is None, tag
    for el in soup.find_all(True):
        for attr, value in el.attrs.items():
            assert not attr.startswith("on"), (el.name, attr)
            assert attr not in {"src", "srcset", "background", "style", "action"}, (el.name, attr)
            if attr == "href":
                assert value.startswith(("https://", "http://")), value
    for style in soup.find_all("style"):
        assert "url(" not in style.get_text() and "@import" not in style.get_text()


def test_digest_lists_every_story_ranked_with_outlets_and_reasons() -> None:
    cfg = email_config(25)
    alerts = [
        view(1, 0.62, "UN rapporteur on detention"),
        view(2, 0.91, "China forcibly returns 60 North Koreans"),
        view(4, 0.75, "Page change", diff=("New: 12 more returned",)),
    ]
    msg = render_digest(alerts, cfg, "Tue 5 May 2026, 07:00 UTC", "digest_x")
    text, soup = parts(msg)
    assert msg["Message-ID"] == "<digest_x@example.org>"
    assert msg["To"] == "analyst@example.org"
    assert "3 alerts" in msg["Subject"]

    cards = soup.select("div.alert")
    titles = [c.select_one("h2").get_text(" ", strip=True) for c in cards]
    assert titles == [
        "0.91 China forcibly returns 60 North Koreans",
        "0.75 Page change",
        "0.62 UN rapporteur on detention",
    ]
    top = cards[0]
    assert top.select_one("h2 a")["href"] == "https://news.example/2"
    outlets = [(a.get_text(), a["href"]) for a in top.select("ul.sources a")]
    assert outlets == [("Daily NK", "https://news.example/2"), ("HRW", "https://hrw.example/2")]
    assert "About North Korea" in top.select_one("p.why").get_text()
    reasons = [li.get_text(" ", strip=True) for li in top.select("ul.reasons li")]
    assert reasons[0] == "entity North Korea 40%"
    assert "published 2026-05-04 12:00 UTC" in top.get_text()
    assert "+ New: 12 more returned" in cards[1].select_one("pre.diff").get_text()
    assert_no_active_content(soup)

    # the plain text part says the same
    assert text.index("China forcibly returns") < text.index("UN rapporteur")
    assert "https://hrw.example/2" in text and "Why: About North Korea" in text
    assert "+ New: 12 more returned" in text


def test_hostile_titles_and_links_are_neutralised() -> None:
    msg = render_digest([HOSTILE], email_config(25), "today", "d")
    text, soup = parts(msg)
    assert_no_active_content(soup)
    raw = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script" not in raw and "<img" not in raw and "<svg" not in raw
    assert 'href="javascript' not in raw and 'href="data:' not in raw
    card = soup.select_one("div.alert")
    assert card.select_one("h2").get_text(" ", strip=True) == "0.70 Pyongyang executions"
    assert card.select_one("h2 a") is None  # javascript: URL shown as text, not a link
    links = [a["href"] for a in card.select("ul.sources a")]
    assert links == ["https://fine.example/x?a=1&b=2"]
    # untrusted diff text is shown literally, escaped, never as markup
    assert "<script>steal()</script> added line" in card.select_one("pre.diff").get_text()
    assert "\n" not in msg["Subject"] and "<script" not in msg["Subject"]
    assert "alert(1)" not in text.split("Sources")[0]


def test_title_with_newlines_cannot_inject_headers() -> None:
    evil = view(5, 0.9, "Headline\r\nBcc: everyone@example.org\r\n\r\nbody")
    msg = render_alert_email(evil, email_config(25, immediate_min_score=0.8), "msg_1")
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"]


def test_empty_digest_says_so() -> None:
    text, soup = parts(render_digest([], email_config(25), "today", "d"))
    assert soup.select("div.alert") == []
    assert "Nothing new" in text and "Nothing new" in soup.get_text()


def test_alert_email_has_stable_message_id_and_the_reasons() -> None:
    cfg = email_config(25, immediate_min_score=0.8)
    msg = render_alert_email(view(9, 0.93, "Returns resume"), cfg, "msg_AbC-123_x")
    assert msg["Message-ID"] == "<msg_AbC-123_x@example.org>"
    assert msg["Subject"] == "[Watchtower] 0.93 Returns resume"
    assert msg["Auto-Submitted"] == "auto-generated"
    text, soup = parts(msg)
    assert soup.select_one("h2 a")["href"] == "https://news.example/9"
    assert "forced repatriation" in soup.select_one("ul.reasons").get_text()
    assert "Why: About North Korea" in text
    assert_no_active_content(soup)


# --- periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "now", "expected"),
    [
        ("0 7 * * *", "UTC", datetime(2026, 5, 5, 9, 30, tzinfo=UTC), "2026-05-05T07:00:00+00:00"),
        ("0 7 * * *", "UTC", datetime(2026, 5, 5, 6, 59, tzinfo=UTC), "2026-05-04T07:00:00+00:00"),
        ("0 7 * * *", "UTC", datetime(2026, 5, 5, 7, 0, tzinfo=UTC), "2026-05-05T07:00:00+00:00"),
        # 07:00 in Seoul is 22:00 UTC the day before
        (
            "0 7 * * *",
            "Asia/Seoul",
            datetime(2026, 5, 5, 9, 30, tzinfo=UTC),
            "2026-05-04T22:00:00+00:00",
        ),
        # weekly, Monday 08:00 Berlin (summer time: 06:00 UTC)
        (
            "0 8 * * mon",
            "Europe/Berlin",
            datetime(2026, 5, 7, 12, 0, tzinfo=UTC),
            "2026-05-04T06:00:00+00:00",
        ),
        (
            "*/15 * * * *",
            "UTC",
            datetime(2026, 5, 5, 9, 44, tzinfo=UTC),
            "2026-05-05T09:30:00+00:00",
        ),
    ],
)
def test_period_is_the_latest_cron_fire_time(
    cron: str, zone: str, now: datetime, expected: str
) -> None:
    assert digest_period(email_config(25, digest=cron, timezone=zone), now) == expected


def test_period_without_cron_is_manual() -> None:
    cfg = email_config(25, digest=None)
    assert digest_period(cfg, NOW) == "manual:2026-05-05T09:30:00+00:00"


def test_period_label_is_local_time() -> None:
    cfg = email_config(25, timezone="Asia/Seoul")
    assert period_label("2026-05-04T22:00:00+00:00", cfg) == "Tue 5 May 2026, 07:00 KST"


# --- sanitiser -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "/relative",
        "//proto.relative/x",
        "https://exa mple.org",
        "http://ex\nample.org",
        "",
        None,
        "http://[::1",
    ],
)
def test_safe_url_refuses_anything_but_absolute_http(url: str | None) -> None:
    assert safe_url(url) is None


def test_clean_html_keeps_structure_and_drops_active_content() -> None:
    dirty = (
        '<p onclick="x()">Hi <a href="javascript:alert(1)">bad</a> '
        '<a href="https://ok.example/">ok</a><img src="https://t.example/p.gif">'
        "<script>alert(1)</script><style>@import url(https://x)</style>"
        '<svg><a xlink:href="javascript:alert(1)">s</a></svg></p>'
    )
    soup = BeautifulSoup(clean_html(dirty), "html.parser")
    assert_no_active_content(soup)
    assert [a.get("href") for a in soup.find_all("a")] == [None, "https://ok.example/"]
    assert "alert(1)" not in soup.get_text()


def test_plain_text_strips_markup_only_when_asked() -> None:
    assert plain_text("<b>Kim</b> &amp; <script>x()</script>co\n") == "Kim & co"
    assert plain_text("<b>literal</b>", markup=False) == "<b>literal</b>"
    assert plain_text("x" * 50, limit=10) == "xxxxxxxxx…"


def _links(alert_id: int) -> dict[str, str]:
    return {
        "relevant": f"https://wt.example.org/feedback/{alert_id}.r.1.x",
        "not_relevant": f"https://wt.example.org/feedback/{alert_id}.n.1.x",
    }


def test_digest_and_alert_email_show_the_excerpt_and_the_feedback_links() -> None:
    expl = Explanation(
        matches=(Match("entity", "North Korea", 7.19), Match("term", "forced returns", 2.81)),
        about="About North Korea (in the title); on forced repatriation",
        lang="en",
        excerpt="Rights groups say 60 people were <b>sent back</b> this week.",
    )
    alert = view(5, 0.9, "Returns resume", explanation=expl)
    cfg = email_config(25, immediate_min_score=0.8)
    for msg in (
        render_digest([alert], cfg, "today", "d", links=_links),
        render_alert_email(alert, cfg, "msg_1", links=_links),
    ):
        text, soup = parts(msg)
        assert "Rights groups say 60 people were <b>sent back</b> this week." in text
        assert "sent back" in soup.select_one("p.excerpt").get_text()
        assert "Not relevant: https://wt.example.org/feedback/5.n.1.x" in text
        anchors = {a.get_text(): a["href"] for a in soup.select("p.feedback a")}
        assert anchors == {
            "Relevant": "https://wt.example.org/feedback/5.r.1.x",
            "Not relevant": "https://wt.example.org/feedback/5.n.1.x",
        }
        # old rows with unbounded weights: shown as shares, never as +7.19
        reasons = [li.get_text(" ", strip=True) for li in soup.select("ul.reasons li")]
        assert reasons == ["entity North Korea 72%", "term forced returns 28%"]
        assert "7.19" not in text and "7.19" not in str(soup)
    text, soup = parts(render_digest([alert], cfg, "today", "d"))
    assert "Not relevant" not in text and not soup.select("p.feedback")
