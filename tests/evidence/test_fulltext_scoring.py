"""Full text changes what alerts: teasers alone score low, their documents score as they should.

The shipped baseline scores three feed items whose titles are neutral and whose
summaries are one-line teasers. They link to an HTML article on the forced
repatriation of North Korean escapees, a PDF report of the special rapporteur and an
off-topic sports article. On the teasers nothing alerts; with the full text, exactly
the article and the PDF do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.pdfgen import report_pdf
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml
from watchtower.config import load_config
from watchtower.fetch import Fetcher
from watchtower.fulltext import FullText, fetch_full_text
from watchtower.matcher import Matcher, build_matcher
from watchtower.models import Entry

MB = 1024 * 1024

ARTICLE = b"""<!DOCTYPE html><html><head><title>Returned</title></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<main><article><h1>China sends dozens of North Korean escapees back</h1>
<p>Chinese authorities carried out the forced repatriation of around sixty North Korean
escapees this week, rights groups said, despite warnings that they face torture,
sexual violence and detention in political prison camps once back in North Korea.</p>
<p>The escapees, most of them women, had been held in detention centres in Jilin
province. Human rights organisations in Seoul said families had pleaded with Beijing
to let them travel to South Korea. The UN special rapporteur on the situation of human
rights in the DPRK urged China to respect the principle of non-refoulement.</p>
<p>Defectors who were previously repatriated have described interrogation by the
Ministry of State Security, beatings and forced labour in kyohwaso prison camps.</p>
</article></main><footer>Copyright Daily Example</footer></body></html>"""

REPORT = [
    "Situation of human rights in the Democratic People's Republic of Korea. Report of "
    "the Special Rapporteur on the situation of human rights in the Democratic People's "
    "Republic of Korea, submitted to the Human Rights Council.",
    "The Special Rapporteur remains deeply concerned about the forced repatriation of "
    "North Korean escapees by China. Those returned are subjected to interrogation, "
    "torture, sexual violence and enforced disappearance, and many are sent to political "
    "prison camps. The Special Rapporteur calls on all States to uphold the principle of "
    "non-refoulement and to protect North Koreans who have fled the country.",
    "Accountability for crimes against humanity documented by the commission of inquiry "
    "remains essential. The Special Rapporteur recommends that the DPRK close its prison "
    "camps, end forced labour and allow access to international human rights monitors.",
]

SPORTS = b"""<!DOCTYPE html><html><head><title>Cup final</title></head><body>
<main><article><h1>Late winner settles the cup final</h1>
<p>A stoppage-time header from the substitute striker gave the home side a two-one win
in the cup final on Saturday, after the visitors had equalised from the penalty spot.</p>
<p>The manager praised his squad's fitness and said the club would celebrate with a
parade through the city centre. The goalkeeper made three fine saves in the first half
and the crowd of forty thousand sang until the final whistle.</p>
</article></main></body></html>"""


@pytest.fixture(scope="module")
def srv() -> Iterator[LoopbackHTTP]:
    with LoopbackHTTP() as server:
        server.routes["/world/returned"] = Response(200, {"Content-Type": "text/html"}, ARTICLE)
        server.routes["/docs/report.pdf"] = Response(
            200, {"Content-Type": "application/pdf"}, report_pdf(REPORT, title="A/HRC/58/XX")
        )
        server.routes["/sport/final"] = Response(200, {"Content-Type": "text/html"}, SPORTS)
        yield server


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> tuple[Matcher, float]:
    tmp = tmp_path_factory.mktemp("baseline")
    path = tmp / "watchtower.yaml"
    path.write_text(shipped_baseline_yaml(tmp) + "\nsources: []\n")
    cfg = load_config(path)
    return build_matcher(cfg.baseline, tmp / "baseline-cache.json"), cfg.alerts.threshold


def items(srv: LoopbackHTTP) -> list[Entry]:
    teasers = [
        ("/world/returned", "This week's news", "Our correspondent reports. Read more…"),
        ("/docs/report.pdf", "New document published", "A new document is available."),
        ("/sport/final", "Weekend round-up", "All the action from Saturday. Read more…"),
    ]
    return [
        Entry(source="Example feed", guid=srv.url(p), title=t, url=srv.url(p), summary=s)
        for p, t, s in teasers
    ]


def fetch_all(entries: list[Entry]) -> list[FullText]:
    async def go() -> list[FullText]:
        async with Fetcher(
            timeout=10, max_bytes=MB, allow_private=True, contact=None, per_host_interval=0
        ) as fetcher:
            return [
                await fetch_full_text(e, fetcher, parse_timeout=30, parse_memory=512 * MB)
                for e in entries
            ]

    return asyncio.run(go())


def test_teasers_alone_alert_nothing(srv: LoopbackHTTP, scoring: tuple[Matcher, float]) -> None:
    matcher, threshold = scoring
    for entry in items(srv):
        assert not matcher.score(entry.title, entry.text).alerts_at(threshold), entry.url


def test_full_text_alerts_exactly_the_article_and_the_report(
    srv: LoopbackHTTP, scoring: tuple[Matcher, float]
) -> None:
    matcher, threshold = scoring
    results = fetch_all(items(srv))
    assert [r.status for r in results] == ["fetched"] * 3
    alerted = [
        r.entry.url
        for r in results
        if matcher.score(r.entry.title, r.entry.text).alerts_at(threshold)
    ]
    assert alerted == [srv.url("/world/returned"), srv.url("/docs/report.pdf")]
