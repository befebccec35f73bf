"""A real browser on the review page: Playwright driving Debian's Chromium.

Skipped when ``/usr/bin/chromium`` is absent (``.ci/run`` installs it). With
``WATCHTOWER_SCREENSHOT=1`` the page is saved to ``docs/review-page.png`` for the README
(Korean and Chinese text needs a CJK font, e.g. Debian's ``fonts-noto-cjk``, to show);
the screenshot shows the real store's alerts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web_fakes import KEY, T0, Clock, FakeReader, live_server, make_alert
from watchtower.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "review-page.png"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.timeout(120)


def _reader() -> FakeReader:
    return FakeReader(
        [
            make_alert(
                4,
                "China resumes forced repatriation of North Korean defectors",
                score=0.91,
                excerpt="Rights groups say about 60 people were sent back across the border "
                "this week, despite appeals from the UN special rapporteur.",
                sources=[
                    {
                        "source": "Daily NK",
                        "title": "Dozens of defectors sent back from Jilin",
                        "url": "https://dailynk.example/a",
                    },
                    {
                        "source": "Yonhap",
                        "title": "China repatriates North Korean defectors, groups say",
                        "url": "https://yonhap.example/b",
                    },
                    {
                        "source": "RFA",
                        "title": "UN rapporteur 'alarmed' by new repatriations",
                        "url": "https://rfa.example/c",
                    },
                ],
            ),
            make_alert(
                3,
                "<script>document.title='pwned'</script>Football scores roundup",
                score=0.52,
                url="javascript:alert(1)",
                summary="terms: repatriation",
                excerpt="Weekend results from the regional league.",
            ),
            make_alert(
                2,
                "탈북민 강제북송 우려 커져",
                lang="ko",
                score=0.77,
                summary="entities: North Korea; like seed 'defectors-2023' (0.64)",
                excerpt="중국 공안이 탈북민을 다시 북송했다는 보도가 나왔다.",
            ),
        ]
    )


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            page = context.new_page()
            yield page
            context.close()
        finally:
            browser.close()


def test_search_and_mark_not_relevant_in_chromium(browser_page: object) -> None:
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    reader = _reader()
    app = create_app(reader, KEY, clock=Clock(T0))
    with live_server(app) as base:
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(base + "/")
        expect(page.locator("article.alert")).to_have_count(3)
        assert page.title() == "Alerts · Watchtower"  # the hostile title's script did not run
        expect(page.get_by_text("Football scores roundup")).to_be_visible()
        page.get_by_role("searchbox").fill("football")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("article.alert")).to_have_count(1)
        assert reader.queries[-1] == ("football", 50)

        card = page.locator("article#alert-3")
        card.get_by_role("button", name="Not relevant").click()
        page.wait_for_url("**/?q=football#alert-3")
        expect(page.locator("#alert-3 .verdict")).to_have_text("Marked: Not relevant")
        assert reader.verdicts == {3: "not-relevant"}
        assert page.locator("#alert-3").get_by_role("button", name="Not relevant").count() == 0
        assert not [e for e in errors if "Content Security Policy" in e], errors

        page.goto(base + "/")
        expect(page.locator("#alert-3 .verdict")).to_have_text("Marked: Not relevant")


def test_real_store_search_and_mark_not_relevant_in_chromium(
    browser_page: object, store_url: str
) -> None:
    """The same over the real store (its full-text search); this one takes the screenshot."""
    from playwright.sync_api import Page, expect

    from tests.web.store_world import TITLES, ids_by_key, store_with_alerts, web_config
    from watchtower.review import StoreReader, signing_key

    page = browser_page
    assert isinstance(page, Page)
    with store_with_alerts(store_url) as store:
        ids = ids_by_key(store)
        key = signing_key(web_config(store_url), store)
        with live_server(create_app(StoreReader(store), key)) as base:
            page.goto(base + "/")
            expect(page.locator("article.alert")).to_have_count(4)
            assert page.title() == "Alerts · Watchtower"  # the hostile title stayed inert
            page.get_by_role("searchbox").fill("탈북민")
            page.get_by_role("button", name="Search").click()
            expect(page.locator("article.alert")).to_have_count(1)
            expect(page.get_by_text(TITLES["ko"])).to_be_visible()
            page.get_by_role("searchbox").fill("defectors")
            page.get_by_role("button", name="Search").click()
            expect(page.locator("article.alert")).to_have_count(1)

            card = page.locator(f"article#alert-{ids['en']}")
            card.get_by_role("button", name="Not relevant").click()
            expect(page.locator(f"#alert-{ids['en']} .verdict")).to_have_text(
                "Marked: Not relevant"
            )
            assert store.feedback_for(ids.values()) == {ids["en"]: "not-relevant"}

            page.goto(base + "/")
            expect(page.locator(f"#alert-{ids['en']} .verdict")).to_have_text(
                "Marked: Not relevant"
            )
            if os.environ.get("WATCHTOWER_SCREENSHOT") == "1":
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_emailed_link_confirm_then_record_in_chromium(browser_page: object) -> None:
    from playwright.sync_api import Page, expect

    from watchtower.web.tokens import feedback_links

    page = browser_page
    assert isinstance(page, Page)
    reader = _reader()
    app = create_app(reader, KEY, clock=Clock(T0))
    with live_server(app) as base:
        link = feedback_links(base, 4, KEY, T0)["relevant"]
        page.goto(link)
        expect(page.get_by_role("heading", name="Mark this alert as Relevant?")).to_be_visible()
        assert reader.feedback_calls == []  # opening the link records nothing
        page.get_by_role("button", name="Confirm: Relevant").click()
        expect(page.get_by_role("heading", name="Recorded: Relevant")).to_be_visible()
        assert reader.verdicts == {4: "relevant"}
        page.get_by_role("button", name="Mark as Not relevant instead").click()
        expect(page.get_by_role("heading", name="Recorded: Not relevant")).to_be_visible()
        assert reader.verdicts == {4: "not-relevant"}
