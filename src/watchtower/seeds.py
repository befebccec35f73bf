"""Reading the seed articles that define the watched subject.

A seeds folder holds example articles (``*.txt``, ``*.md``, ``*.html`` / ``*.htm``) and
an optional ``seeds.yaml`` mapping file names to metadata (``title``, ``author``,
``published``…; every field optional). HTML seeds are reduced to text with
:func:`watchtower.sources.normalize.html_to_text`; text seeds are normalised with
:func:`~watchtower.sources.normalize.normalize_text`.

:func:`read_seeds` returns the seeds sorted by file name, each with a title (from
``seeds.yaml``, else the first line of the article, else the file name) and the
SHA-256 of its raw bytes, so a change to any seed changes the baseline's fingerprint.
Problems (missing folder, no seeds, unreadable or undecodable file, bad
``seeds.yaml``) raise :class:`~watchtower.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchtower.errors import ConfigError
from watchtower.sources.normalize import html_to_text, normalize_text

log = logging.getLogger(__name__)

SEED_SUFFIXES = (".txt", ".md", ".html", ".htm")
METADATA_FILE = "seeds.yaml"
_MAX_SEED_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class Seed:
    """One seed article: file name, display title, plain text and content digest."""

    name: str
    title: str
    text: str
    sha256: str
    meta: Mapping[str, str] = field(default_factory=dict)


def _read_metadata(folder: Path) -> tuple[dict[str, dict[str, str]], str]:
    path = folder / METADATA_FILE
    if not path.is_file():
        return {}, ""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}:1: cannot read seed metadata ({exc})") from exc
    meta = _parse_metadata(str(path), raw)
    return {name: dict(fields) for name, fields in meta.items()}, hashlib.sha256(raw).hexdigest()


@functools.lru_cache(maxsize=4)
def _parse_metadata(path: str, raw: bytes) -> dict[str, dict[str, str]]:
    """The metadata in ``raw`` (read once per content: each start reads it twice, for
    the baseline's fingerprint and for the seeds)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data: Any = YAML(typ="safe").load(raw.decode("utf-8"))
    except (UnicodeDecodeError, YAMLError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{path}:{line + 1}" if isinstance(line, int) else f"{path}:1"
        raise ConfigError(f"{where}: cannot read seed metadata ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of file name to metadata")
    meta: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}:1: {key}: expected a mapping (title, author…)")
        meta[str(key)] = {str(k): str(v) for k, v in value.items() if v is not None}
    return meta


def _seed_text(path: Path, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}:1: seed is not UTF-8 text ({exc.reason})") from exc
    if path.suffix.lower() in (".html", ".htm"):
        return html_to_text(text)
    return normalize_text(text)


def _fallback_title(name: str, text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if 10 <= len(line) <= 200:
            return line
    return Path(name).stem.replace("-", " ").replace("_", " ")


def seed_files(folder: Path) -> list[Path]:
    """The seed article files in ``folder`` (sorted), without reading them."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SEED_SUFFIXES)


def metadata_digest(folder: Path) -> str:
    """SHA-256 of ``seeds.yaml`` (empty string when there is none)."""
    return _read_metadata(folder)[1]


def read_seeds(folder: Path) -> list[Seed]:
    """Read every seed article in ``folder``, sorted by file name.

    Raises :class:`ConfigError` when the folder is missing, holds no seed article, a
    file cannot be read or decoded, or ``seeds.yaml`` is malformed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: seeds folder not found (baseline.seeds)")
    meta, _digest = _read_metadata(folder)
    seeds: list[Seed] = []
    for path in seed_files(folder):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}:1: cannot read seed ({exc.strerror})") from exc
        if len(raw) > _MAX_SEED_BYTES:
            raise ConfigError(f"{path}:1: seed larger than {_MAX_SEED_BYTES} bytes")
        text = _seed_text(path, raw)
        if not text.strip():
            log.warning("seed %s is empty; ignored", path)
            continue
        info = meta.get(path.name, {})
        title = info.get("title") or _fallback_title(path.name, text)
        seeds.append(Seed(path.name, title, text, hashlib.sha256(raw).hexdigest(), info))
    unknown = sorted(set(meta) - {s.name for s in seeds})
    for name in unknown:
        log.warning("%s names %s, which is not a seed article in %s", METADATA_FILE, name, folder)
    if not seeds:
        raise ConfigError(f"{folder}: no seed articles (expected *.txt, *.md or *.html files)")
    return seeds
