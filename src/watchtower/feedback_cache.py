"""The feedback model, cached with the baseline: retrain only when the labels or the
baseline changed.

The cache is one JSON file next to the baseline cache (``baseline-cache.json`` →
``baseline-cache.feedback.json``), keyed by the baseline's fingerprint and
:func:`~watchtower.feedback_model.labels_digest` of the labels. JSON rather than a
pickle: loading a pickle from a writable folder would run whatever code it holds, and
JSON can be read by a person. A cache that cannot be read or written is logged and
ignored (the model is retrained: it takes well under a second for a thousand labels).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from watchtower.feedback_model import FeedbackModel, FeedbackScorer, labels_digest, train
from watchtower.models import Labelled

log = logging.getLogger(__name__)


def feedback_cache_path(baseline_cache: Path) -> Path:
    """Where the model for the baseline cached at ``baseline_cache`` is cached."""
    return baseline_cache.with_name(f"{baseline_cache.stem}.feedback.json")


def _fingerprint(matcher: Any) -> str:
    baseline = getattr(matcher, "baseline", None)
    return str(getattr(baseline, "fingerprint", ""))


def _read(path: Path, fingerprint: str, digest: str) -> FeedbackModel | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fingerprint") != fingerprint or data.get("digest") != digest:
            return None
        return FeedbackModel.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("feedback model cache %s unusable (%s); retraining", path, exc)
        return None


def _write(path: Path, model: FeedbackModel) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(model.to_json(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write feedback model cache %s (%s); continuing without it", path, exc)
        tmp.unlink(missing_ok=True)


def load_or_train(
    matcher: Any, items: Sequence[Labelled], cache: Path | None = None
) -> FeedbackModel | None:
    """The model for ``matcher`` and the labelled ``items``: from ``cache`` when it was
    trained on the same labels with the same baseline, else trained (and cached).
    ``None`` when there is nothing to learn (then score with the matcher itself)."""
    if not any(i.label in (0, 2) for i in items):
        return None
    fingerprint = _fingerprint(matcher)
    digest = labels_digest(items)
    if cache is not None:
        cached = _read(cache, fingerprint, digest)
        if cached is not None:
            log.debug("feedback model from cache %s (%d labels)", cache, cached.n_labels)
            return cached
    model = train(matcher, items, fingerprint=fingerprint)
    if model is not None:
        log.info("feedback model trained on %d labels", model.n_labels)
        if cache is not None:
            _write(cache, model)
    return model


def feedback_scorer(
    matcher: Any, items: Sequence[Labelled], baseline_cache: Path | None = None
) -> Any:
    """What to score with: the matcher itself when ``items`` teach nothing, else a
    :class:`FeedbackScorer` (model cached next to ``baseline_cache``)."""
    cache = feedback_cache_path(baseline_cache) if baseline_cache is not None else None
    model = load_or_train(matcher, items, cache)
    return matcher if model is None else FeedbackScorer(matcher, model)
