"""A real store with alerts in English, Korean and Chinese, for the web tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from tests.store.test_store_repo import NOW, SOURCES, poll, scored
from watchtower.config import Config
from watchtower.models import Explanation, Score, ScoredEntry
from watchtower.store import Store

TITLES = {
    "en": "China resumes forced repatriation of North Korean defectors",
    "ko": "탈북민을 강제북송한 중국 규탄",
    "zh": "中国强制遣返脱北者引发国际关注",
    "hostile": "<script>document.title='pwned'</script>Football scores roundup",
}
EXCERPTS = {
    "en": "Rights groups say about 60 people were sent back across the border this week.",
    "ko": "중국 공안이 탈북민을 다시 북송했다는 보도가 나왔다.",
    "zh": "人权组织称，中国本周将约六十名脱北者遣返回朝鲜。",
    "hostile": "Weekend results from the regional league.",
}


def _entry(key: str, score: float) -> ScoredEntry:
    base = scored("Daily NK", key, score, title=TITLES[key])
    expl = base.score.explanation
    lang = key if key in ("ko", "zh") else "en"
    explanation = Explanation(
        matches=expl.matches,
        nearest_seed=expl.nearest_seed,
        seed_similarity=expl.seed_similarity,
        about="About North Korea (in the title); on forced repatriation",
        lang=lang,
        excerpt=EXCERPTS[key],
    )
    entry = base.entry
    if key == "hostile":
        entry = replace(entry, url=None)
    return ScoredEntry(entry, Score(score, explanation), base.signature)


@contextmanager
def store_with_alerts(url: str) -> Iterator[Store]:
    """The store at ``url`` with four alerts (pending digest deliveries), oldest first:
    hostile, zh, ko, en."""
    with Store.open(url) as store:
        store.sync_sources(SOURCES)
        for n, (key, value) in enumerate(
            (("hostile", 0.52), ("zh", 0.77), ("ko", 0.81), ("en", 0.91))
        ):
            from datetime import timedelta

            poll(store, "Daily NK", [_entry(key, value)], now=NOW + timedelta(minutes=n))
        yield store


def ids_by_key(store: Store) -> dict[str, int]:
    by_title = {a.title: a.id for a in store.list_alerts(limit=10)}
    return {key: by_title[title] for key, title in TITLES.items()}


def web_config(url: str, public_url: str | None = None) -> Config:
    """A config with the store ``url`` and, when given, ``web.public_url``."""
    web = {"public_url": public_url} if public_url else {}
    return Config.model_validate({"store": url, "web": web})
