"""The baseline's JSON cache: :func:`load_baseline` learns the baseline once and keeps
it beside the seeds, keyed by :attr:`~watchtower.baseline.Baseline.fingerprint`.

Learning loads word-frequency and lemma tables (about 60 MB) that scoring never uses;
``load_baseline(..., isolated=True)`` learns in a fresh interpreter so that they leave
with it instead of staying in a long-lived process (:mod:`watchtower.baseline_child`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from watchtower import baseline as _baseline
from watchtower.baseline import Baseline, BaselineSettings, fingerprint
from watchtower.seeds import metadata_digest, read_seeds

__all__ = ["default_cache_path", "load_baseline"]

log = logging.getLogger(__name__)


def default_cache_path(cfg: BaselineSettings) -> Path:
    """Where the cache goes when neither ``cache_path`` nor ``baseline.cache`` is set."""
    return Path(cfg.seeds) / ".baseline-cache.json"


def _read_cache(path: Path, want: str) -> Baseline | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fingerprint") != want:
            return None
        return Baseline.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("baseline cache %s unusable (%s); rebuilding", path, exc)
        return None


def _write_cache(path: Path, baseline: Baseline) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".baseline-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(baseline.to_json(), fh, ensure_ascii=False)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write baseline cache %s (%s); continuing without it", path, exc)


def load_baseline(
    cfg: BaselineSettings, *, cache_path: Path | None = None, isolated: bool = False
) -> Baseline:
    """The baseline for ``cfg``: from the JSON cache when its fingerprint matches the
    current seeds and config, else computed and written back.

    Cache location: ``cache_path``, else ``cfg.cache``, else
    :func:`default_cache_path`. A cache that cannot be read or written is logged and
    ignored. Raises :class:`ConfigError` for missing/unreadable seeds or bad config.
    ``isolated``: a baseline not cached is learnt in a child process (the same result,
    warnings and errors; learnt here when no child can run).
    """
    folder = Path(cfg.seeds)
    seeds = read_seeds(folder)
    meta_digest = metadata_digest(folder)
    want = fingerprint(seeds, meta_digest, cfg)
    path = cache_path or cfg.cache or default_cache_path(cfg)
    cached = _read_cache(path, want)
    if cached is not None:
        log.debug("baseline %s loaded from %s", want, path)
        return cached
    if isolated:
        from watchtower.baseline_child import build_in_child

        baseline = build_in_child(cfg, seeds, meta_digest)
    else:
        baseline = _baseline.build_from(cfg, seeds, meta_digest)
    log.info(
        "baseline %s built from %d seeds (%d terms, %d phrases)",
        baseline.fingerprint,
        len(baseline.seeds),
        len(baseline.terms),
        len(baseline.phrases),
    )
    _write_cache(path, baseline)
    return baseline
