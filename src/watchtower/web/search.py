"""Full-text search that works for Korean and Chinese too: text and query normalisation.

SQLite's ``unicode61`` tokenizer and PostgreSQL's ``simple`` configuration split words
on spaces and punctuation. That fails for Chinese (no spaces: a whole sentence becomes
one token) and for Korean (particles stick to the word: ``강제북송을`` is not found by
``강제북송``). FTS5's ``trigram`` tokenizer cannot match terms shorter than three
characters, and two-syllable Korean words (``북송``, ``탈북``) are common.

The approach here is character bigrams, applied the same way on both sides:

* :func:`index_text` — what to put in the full-text column: NFKC-normalised,
  case-folded text in which every run of CJK characters (Han, Hangul, kana) is replaced
  by its overlapping bigrams (``강제북송을`` → ``강제 제북 북송 송을``); a one-character
  run stays as it is. Other scripts are left to the tokenizer.
* :func:`fts5_query` — a safe FTS5 ``MATCH`` expression for a user's words: every term
  is a quoted phrase (so ``"``, ``*``, ``NEAR``, ``OR``, ``-`` are plain text, never
  syntax), a CJK run becomes the phrase of its bigrams, and terms are ANDed.
* :func:`websearch_query` — the same for PostgreSQL's
  ``websearch_to_tsquery('simple', …)``, which never raises on any input.

SQLite::

    CREATE VIRTUAL TABLE item_fts USING fts5(body, content='', tokenize='unicode61
        remove_diacritics 2');
    INSERT INTO item_fts(rowid, body) VALUES (:item_id, :index_text);
    SELECT rowid FROM item_fts WHERE item_fts MATCH :fts5_query;

PostgreSQL::

    ALTER TABLE item ADD COLUMN search tsvector;          -- to_tsvector('simple', :index_text)
    CREATE INDEX item_search ON item USING gin (search);
    ... WHERE search @@ websearch_to_tsquery('simple', :websearch_query)
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["fts5_query", "index_text", "websearch_query"]

_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0002ffff"  # CJK extensions B–F
)
_MAX_TERMS = 16


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """CJK runs, query terms, word characters: compiled at the first use (the classes
    are large, and a run that indexes and searches nothing never needs them)."""
    return re.compile(f"[{_CJK}]+"), re.compile(rf"[{_CJK}]+|[^\s{_CJK}]+"), re.compile(r"\w+")


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def index_text(text: str) -> str:
    """``text`` as it should be stored in the full-text column (see module docstring)."""
    cjk_run = _patterns()[0]
    return cjk_run.sub(lambda m: " " + " ".join(_bigrams(m.group())) + " ", _normal(text))


def _phrases(q: str) -> list[str]:
    """One phrase (a list of index tokens joined by spaces) per user term."""
    cjk_run, term_pattern, word_chars = _patterns()
    phrases = []
    for term in term_pattern.findall(_normal(q)):
        if cjk_run.fullmatch(term):
            phrases.append(" ".join(_bigrams(term)))
        else:
            words = word_chars.findall(term)  # what unicode61 / simple keep of it
            if words:
                phrases.append(" ".join(words))
    return phrases[:_MAX_TERMS]


def fts5_query(q: str | None) -> str | None:
    """An FTS5 ``MATCH`` expression for the user's words, or ``None`` when nothing to find."""
    phrases = _phrases(q or "")
    if not phrases:
        return None
    return " AND ".join('"' + p.replace('"', '""') + '"' for p in phrases)


def websearch_query(q: str | None) -> str | None:
    """Input for ``websearch_to_tsquery('simple', …)``, or ``None`` when nothing to find."""
    phrases = _phrases(q or "")
    if not phrases:
        return None
    return " ".join('"' + p.replace('"', " ") + '"' for p in phrases)
