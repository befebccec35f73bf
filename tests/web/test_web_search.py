"""Full-text search in English, Korean and Chinese, on a real FTS5 index (and PostgreSQL)."""

from __future__ import annotations

import os
import sqlite3
import uuid

import pytest

from watchtower.web.search import fts5_query, index_text, websearch_query

DOCS = {
    1: "China resumes forced repatriation of North Korean defectors",
    2: "중국 정부가 탈북민 강제북송을 재개했다는 보도가 나왔다",
    3: "中国政府恢复强制遣返脱北者，人权组织表示担忧",
    4: "Football scores roundup: weekend results",
    5: 'He said "NEAR(x y)" OR -minus * star',
}

CASES = [
    ("defectors", {1}),
    ("DEFECTORS repatriation", {1}),
    ("forced football", set()),
    ("강제북송", {2}),  # the particle 을 is attached in the text
    ("북송", {2}),  # a two-syllable word
    ("탈북민 보도", {2}),
    ("强制遣返", {3}),
    ("脱北者", {3}),
    ("遣返 defectors", set()),
    ('"NEAR(x', {5}),
    ("OR", {5}),
    ("-minus", {5}),
    ("*", None),
    ("", None),
]


def test_index_text_bigrams_cjk_runs() -> None:
    assert index_text("강제북송을 X") == " 강제 제북 북송 송을  x"
    assert index_text("Ｄefectors 中") == "defectors  中 "


@pytest.fixture
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    db.executemany(
        "INSERT INTO t(rowid, body) VALUES (?, ?)", [(k, index_text(v)) for k, v in DOCS.items()]
    )
    return db


@pytest.mark.parametrize(("q", "expected"), CASES)
def test_fts5(fts: sqlite3.Connection, q: str, expected: set[int] | None) -> None:
    match = fts5_query(q)
    if expected is None:
        assert match is None
        return
    assert match is not None
    rows = fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()
    assert {r[0] for r in rows} == expected


@pytest.mark.skipif(
    not os.environ.get("WATCHTOWER_TEST_POSTGRES_URL"), reason="WATCHTOWER_TEST_POSTGRES_URL unset"
)
def test_postgresql_websearch() -> None:
    import psycopg

    table = "fts_" + uuid.uuid4().hex[:10]
    with psycopg.connect(os.environ["WATCHTOWER_TEST_POSTGRES_URL"], autocommit=True) as conn:
        conn.execute(f"CREATE TEMP TABLE {table} (id int, search tsvector)")
        for key, text in DOCS.items():
            conn.execute(
                f"INSERT INTO {table} VALUES (%s, to_tsvector('simple', %s))",
                (key, index_text(text)),
            )
        for q, expected in CASES:
            query = websearch_query(q)
            if expected is None:
                assert query is None, q
                continue
            rows = conn.execute(
                f"SELECT id FROM {table} WHERE search @@ websearch_to_tsquery('simple', %s)",
                (query,),
            ).fetchall()
            assert {r[0] for r in rows} == expected, q
