"""Text → match keys, in English, Korean and Chinese; and the language of an item.

Every piece of text the matcher reads (items, seeds, watch terms, aliases) goes through
:func:`tokens`, so both sides of a comparison are normalised the same way:

* **Latin-script words** are lower-cased and reduced to their word family: first the
  dictionary lemma (``simplemma``: ``sent`` → ``send``, ``fled`` → ``flee``,
  ``women`` → ``woman``), then the Snowball English stem (``PyStemmer``:
  ``repatriating``, ``repatriated`` and ``repatriation`` all become ``repatri``).
  Apostrophes are dropped (``Korea's`` → ``korea``), hyphens split (``Jong-un``).
* **Hangul** words (Korean writes particles onto the noun: 탈북민을, 탈북민이) are kept
  whole; :func:`cjk_stream` lets the matcher find a term *inside* them.
* **Han** runs (Chinese has no spaces) are converted to simplified characters with
  OpenCC's ``t2s`` table, so 脫北者 and 脱北者, 北韓 and 北韩 are one key, and kept whole
  for the same substring matching.

:func:`detect_lang` names the item's language from its script (Hangul → ``ko``,
kana → ``ja``, Han → ``zh``, Cyrillic → ``ru``…) and, for Latin script, from the share
of English function words (``en``, else ``und``: undetermined).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

# ------------------------------------------------------------------ character classes


class _Scripts(NamedTuple):
    hangul: re.Pattern[str]
    han: re.Pattern[str]
    kana: re.Pattern[str]
    cjk: re.Pattern[str]
    others: tuple[tuple[str, re.Pattern[str]], ...]


@lru_cache(maxsize=1)
def _scripts() -> _Scripts:
    """The script character classes, compiled at the first use (the CJK ones take
    milliseconds each, which a process that reads no text need not pay)."""
    hangul = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
    han = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    return _Scripts(
        hangul=re.compile(f"[{hangul}]"),
        han=re.compile(f"[{han}]"),
        kana=re.compile("[\u3040-\u30ff]"),
        cjk=re.compile(f"[{hangul}{han}]"),
        others=(
            ("ru", re.compile("[\u0400-\u04ff]")),
            ("ar", re.compile("[\u0600-\u06ff]")),
            ("he", re.compile("[\u0590-\u05ff]")),
            ("th", re.compile("[\u0e00-\u0e7f]")),
            ("hi", re.compile("[\u0900-\u097f]")),
        ),
    )


_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")

# The commonest English function words: a Latin-script text in which they are frequent
# is English. (Other Latin languages share almost none of them.)
_ENGLISH = frozenset(
    "the of and to in is that for on was with as by at from it are has have be "
    "its his her their this an were said not or but which who after over".split()
)


@lru_cache(maxsize=1)
def _separator_table() -> dict[int, str | None]:
    """str.translate table: punctuation, symbols, spaces and controls → space;
    apostrophes removed (``Korea's`` → ``koreas`` → ``korea``). Built at the first use,
    so a process that reads no text (an unchanged cycle's) does not pay for it."""
    table: dict[int, str | None] = {}
    ranges = (range(0x3040), range(0xFE30, 0xFE50), range(0xFF00, 0xFF66))
    for code in (c for r in ranges for c in r):
        if unicodedata.category(chr(code))[0] in "PSZC" or code == 0x5F:
            table[code] = " "
    for apostrophe in "'’ʼ":
        table[ord(apostrophe)] = None
    return table


def words(text: str) -> list[str]:
    """Lower-case words of ``text``: split at punctuation, symbols and spaces
    (``Jong-un`` → jong, un), apostrophes dropped. CJK runs stay whole."""
    return text.lower().translate(_separator_table()).split()


# ------------------------------------------------------------------ normalisation


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer: the Snowball stemmers in C

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s.json")


def _lemma(word: str) -> str:
    import simplemma

    lemma: str = simplemma.lemmatize(word, lang="en")
    return lemma.lower()


def _latin_key(word: str) -> str:
    lemma = _lemma(word) if word.isascii() and word.isalpha() else word
    if lemma.endswith("ive"):
        # Snowball over-reaches here: executive → execut (execution), active → activ
        return lemma
    stem: str = _stemmer().stemWord(lemma)
    return stem


def _normal(word: str) -> str:
    scripts = _scripts()
    if scripts.han.search(word):
        converted: str = _t2s().convert(word)
        return converted
    if scripts.hangul.search(word) or not word.isascii() and not _LATIN.search(word):
        return word
    if word.isdigit():
        return word
    return _latin_key(word)


class _KeyCache(dict[str, str]):
    """Memoised :func:`_normal`; bounded so hostile input cannot grow it without limit."""

    def __missing__(self, word: str) -> str:
        value = _normal(word)
        if len(self) < 300_000:
            self[word] = value
        return value


_KEYS = _KeyCache()


def keys_of(texts: Iterable[str]) -> dict[str, str]:
    """Word → match key for every word of ``texts`` (to cache with a baseline)."""
    return {w: _KEYS[w] for text in texts for w in words(text)}


def remember_keys(pairs: Mapping[str, str]) -> None:
    """Seed the key cache with pairs computed before (:func:`keys_of`), so that building
    a matcher from a cached baseline needs neither the lemma dictionary nor OpenCC."""
    for word, value in pairs.items():
        if len(_KEYS) >= 300_000:
            return
        dict.__setitem__(_KEYS, word, value)


def key(word: str) -> str:
    """The match key of one lower-case word (see the module docstring)."""
    return _KEYS[word]


def keys(ws: Sequence[str]) -> list[str]:
    """Match keys of lower-case words ``ws`` (from :func:`words`)."""
    return list(map(_KEYS.__getitem__, ws))


def tokens(text: str) -> list[str]:
    """Match keys of ``text``, one per word, in order."""
    return list(map(_KEYS.__getitem__, words(text)))


def phrase_key(phrase: str) -> str:
    """The normal form used to match ``phrase`` (a term, alias or exclude rule)."""
    return " ".join(tokens(phrase))


def is_cjk(token: str) -> bool:
    """Whether a match key is Korean or Chinese (matched inside words, not as a word)."""
    return _scripts().cjk.search(token) is not None


def cjk_key(phrase: str) -> str:
    """A Korean or Chinese term's key for substring matching: its keys without spaces
    (Korean spacing varies: 정치범 수용소 and 정치범수용소 are one term)."""
    return "".join(tokens(phrase))


def cjk_stream(toks: Sequence[str]) -> tuple[str, list[int]]:
    """The CJK tokens of ``toks`` joined without spaces (``|`` where other words come
    between), and for each character the index of the token it came from."""
    chars: list[str] = []
    owner: list[int] = []
    gap = False
    for i, tok in enumerate(toks):
        if is_cjk(tok):
            if gap and chars:
                chars.append("|")
                owner.append(i)
            chars.append(tok)
            owner.extend([i] * len(tok))
            gap = False
        else:
            gap = True
    return "".join(chars), owner


# ------------------------------------------------------------------ language


_NON_LATIN = re.compile(r"[^\x00-\u024f\u2000-\u206f]")


# The commonest function words of other languages written in Latin script: a text in
# which they outnumber the English ones is not English.
_OTHER_LATIN = frozenset(
    "le la les des du et est une dans pour sur qui der die das und ist nicht ein eine mit "
    "el los las y es una del por con que os um uma do da em não il di che è della per".split()
)


def english_or_und(ws: Sequence[str]) -> str:
    """``en`` unless the lower-case words ``ws`` hold more function words of other
    Latin-script languages (French, German, Spanish, Portuguese, Italian) than of
    English; then ``und``."""
    ws = ws[:80]
    english = sum(map(_ENGLISH.__contains__, ws))
    other = sum(map(_OTHER_LATIN.__contains__, ws))
    return "und" if other > english else "en"


def _english(head: str) -> str:
    return english_or_und(words(head))


def latin_only(text: str, sample: int = 2000) -> bool:
    """Whether the first ``sample`` characters hold no letter outside Latin script."""
    return _NON_LATIN.search(text[:sample]) is None


def detect_lang(text: str, sample: int = 2000) -> str:
    """The language of ``text`` as an ISO 639-1 code, or ``und`` when undetermined.

    Decided by script on the first ``sample`` characters: Hangul → ``ko``; kana →
    ``ja``; Han → ``zh``; Cyrillic, Arabic, Hebrew, Thai, Devanagari by their script
    (each when it makes at least a tenth of the letters); Latin script → ``en`` unless
    other languages' function words outnumber English ones (then ``und``).
    """
    head = text[:sample]
    if _NON_LATIN.search(head) is None:  # Latin script only: the common case, cheaply
        return _english(head) if _LATIN.search(head) else "und"
    scripts = _scripts()
    hangul = len(scripts.hangul.findall(head))
    han = len(scripts.han.findall(head))
    kana = len(scripts.kana.findall(head))
    others = [(code, len(script.findall(head))) for code, script in scripts.others]
    latin = len(_LATIN.findall(head))
    letters = hangul + han + kana + latin + sum(n for _c, n in others)
    if not letters:
        return "und"
    if hangul >= 0.1 * letters:
        return "ko"
    if kana and han + kana >= 0.1 * letters:
        return "ja"
    if han >= 0.1 * letters:
        return "zh"
    for code, n in others:
        if n >= 0.3 * letters:
            return code
    return _english(head) if latin >= 0.5 * letters else "und"
