"""Learning from the analyst's feedback: a correction of the baseline score.

The analyst's verdicts on alerts ("relevant", "not relevant") and imported past
judgements are :class:`Labelled` items. :func:`train` fits a :class:`FeedbackModel` to
them and :class:`FeedbackScorer` scores with it, with the same ``score(title, text)``
interface as :class:`~watchtower.matcher.Matcher`.

**Method.** A logistic regression *with the baseline as its offset*::

    z(item) = logit(baseline score) + clip(w · x(item))

where ``x`` holds the matcher's own evidence (the baseline logit, how strongly the
subject is named: the largest weight of its names in the item, and the seed
similarity) and the item's words: hashed word families
(:func:`watchtower.language.tokens`, so *repatriated* and *repatriation* are one
feature) and pairs of neighbouring families, Korean and Chinese runs as character
pairs, each once plain and once *times the subject's strength* (a rights word means
something else in an item that never names North Korea, or names only the UN). A
family weighs more the rarer its word is in general English (``wordfreq``, as the
seeds' terms are learned).
``w`` minimises the class-balanced log loss plus an L2 penalty, so:

* with no labels there is nothing to correct: :func:`train` returns ``None`` and
  :class:`FeedbackScorer` returns the matcher's own scores, unchanged;
* the shift ``w · x`` is clipped (:func:`shift_cap`): one label moves a score by at
  most 0.5 in logit (0.50 → 0.62 at the threshold, less elsewhere), so a careless
  click cannot flip the subject; the bound grows with the labels of the scarcer kind;
* many consistent labels move scores a lot, for items *like* them (shared words),
  because the data term grows with the number of labels while the penalty does not.

``L2`` and the feature scales were chosen by k-fold cross-validation on the
development set (``scripts/eval.py --feedback-cv``). What generalised was to penalise
the words *of items that name the subject* least (their block is scaled by
``SUBJECT_WORD_SCALE``, i.e. penalised 100 times less) and the matcher's dense
evidence most: the labels then teach which topics of the subject matter, while the
baseline's judgement of the subject stays. Treating borderline items as weak
negatives raised precision but cost more recall, so they are ignored.

scikit-learn's ``LogisticRegression`` has no offset (its regularisation would pull
the baseline's coefficient to zero, i.e. forget the seeds when labels are few), so the
same model is fitted with SciPy's L-BFGS; prediction is a dictionary lookup per word
and needs neither NumPy nor SciPy.

**Borderline** items (label 1) are not learned from: the development set's labels say
alerting them is neither right nor wrong, so they carry no direction.

**Exclude rules** stay absolute: an excluded item scores 0 whatever the feedback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import zlib
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from watchtower.feedback_explain import Example, Neighbours, explain_shift
from watchtower.language import is_cjk, key, tokens, words
from watchtower.models import Labelled, Match, Score

log = logging.getLogger(__name__)

MODEL_VERSION = 1  # bump whenever features or fitting change: it invalidates caches
BITS = 20  # hashed word features: 2**20 buckets
DIM = 1 << BITS
L2 = 0.01  # the penalty on w (per unit of feature scale); chosen by cross-validation
WORD_SCALE = 1.0  # the word block has unit norm times this
SUBJECT_WORD_SCALE = 10.0  # the copy when the subject is named: penalised 100 times less
DENSE_SCALE = 0.5  # the matcher's evidence (values in about [0, 1])
BASE_SCALE = 0.5  # the baseline logit / 6, clipped to [-1.5, 1.5]
SHIFT_PER_LABEL = 0.5  # the shift in logit: at most this for one label (see shift_cap)
MAX_SHIFT = 8.0  # and never more than this
MAX_TOKENS = 20_000  # as the matcher: a longer item is read on its first 20,000 words
MAX_CHARS = 400_000
TITLE_CHARS = 70
RARITY_TOP = 6.5
TAUGHT_WORDS = 3  # how many of the words that moved the score the explanation names
BORDERLINE_WEIGHT = 0.0  # borderline items (label 1) are learned as not relevant, this much
RECALL_WEIGHT = 1.0  # a missed relevant item costs this many times a false alert

# Function words carry no topic; their word families are skipped.
_STOP = frozenset(
    tokens(
        "the of and to in is that for on was with as by at from it are has have be its his "
        "her their this an were said not or but which who after over a will would could "
        "also been had than more into about they he she we you i our your them these those "
        "there what when where while other some such only new one two three last year says"
    )
)
_BIAS, _BASE, _SUBJECT, _SEED = DIM, DIM + 1, DIM + 2, DIM + 3


class BaselineScorer(Protocol):
    """What the model needs of the matcher: its score (value and explanation)."""

    def score(self, title: str, text: str) -> Score: ...


@dataclass(frozen=True, slots=True)
class FeedbackModel:
    """A fitted correction. ``weights`` are sparse (feature index → weight); ``digest``
    identifies the labels it was trained on (see :func:`labels_digest`)."""

    weights: Mapping[int, float]
    n_labels: int
    examples: tuple[Example, ...]
    digest: str = ""
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (see :mod:`watchtower.feedback_cache`)."""
        return {
            "version": MODEL_VERSION,
            "fingerprint": self.fingerprint,
            "digest": self.digest,
            "n_labels": self.n_labels,
            "weights": [[i, round(w, 9)] for i, w in sorted(self.weights.items())],
            "examples": [[e.title, e.label, sorted(e.words)] for e in self.examples],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeedbackModel:
        """The inverse of :meth:`to_json`; ``ValueError`` for another model version."""
        if data.get("version") != MODEL_VERSION:
            raise ValueError("feedback model from another version")
        return cls(
            weights={int(i): float(w) for i, w in data["weights"]},
            n_labels=int(data["n_labels"]),
            examples=tuple(
                Example(str(t), int(lab), frozenset(int(x) for x in ws))
                for t, lab, ws in data["examples"]
            ),
            digest=str(data.get("digest", "")),
            fingerprint=str(data.get("fingerprint", "")),
        )


# ----------------------------------------------------------------------------- features


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & (DIM - 1)


def word_features(title: str, text: str) -> list[tuple[str, float, str]]:
    """The item's word features (key, weight, words as written): word families (function words
    skipped), pairs of neighbouring families, and character pairs of Korean and Chinese
    runs. A family weighs more the rarer its word is in general English (``wordfreq``),
    so *defectors* counts for more than *percent*."""
    ws = words(f"{title}\n{text[:MAX_CHARS]}")[:MAX_TOKENS]
    out: list[tuple[str, float, str]] = []
    prev: tuple[str, float, str] | None = None
    for w in ws:
        tok = key(w)
        if is_cjk(tok):
            out.extend((tok[i : i + 2], 1.0, w) for i in range(max(1, len(tok) - 1)))
            prev = None
        elif len(tok) < 2 or tok in _STOP or tok.isdigit():
            prev = None
        else:
            weight = _rarity(w)
            out.append((tok, weight, w))
            if prev is not None:
                out.append((f"{prev[0]} {tok}", min(weight, prev[1]), f"{prev[2]} {w}"))
            prev = (tok, weight, w)
    return out


@lru_cache(maxsize=100_000)
def _rarity(word: str) -> float:
    """1 for a word rare in general English (Zipf ≤ 3), falling to 0.1 for the most
    common (Zipf ≥ 6.5)."""
    from wordfreq import zipf_frequency

    z = zipf_frequency(word, "en")
    return max(0.1, min(1.0, (RARITY_TOP - z) / (RARITY_TOP - 3.0)))


def _subject_copy(i: int) -> int:
    """The index of word feature ``i``'s copy for items that name the subject."""
    return (i * 2654435761 + 1) & (DIM - 1)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def _logistic(z: float) -> float:
    if z < -30:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True, slots=True)
class Row:
    """One item as the model sees it: the baseline score, its logit, the sparse
    features and the hashed word set (for the explanation)."""

    base: Score
    offset: float
    x: Mapping[int, float]
    words: frozenset[int]
    names: Mapping[int, str]  # word feature → the words as first written


_name_weights: dict[str, dict[str, float]] = {}


def subject_strength(matcher: BaselineScorer, names: Sequence[Match]) -> float:
    """How strongly the subject is named: the largest weight (0-1) of the subject's
    names matched, from the matcher's baseline ("North Korea" 1, "UN" 0.07 when the
    seeds mention it in passing); 1 for any name when the matcher has no baseline."""
    if not names:
        return 0.0
    baseline = getattr(matcher, "baseline", None)
    if baseline is None:
        return 1.0
    fingerprint = str(getattr(baseline, "fingerprint", ""))
    weights = _name_weights.get(fingerprint)
    if weights is None:
        weights = {}
        for name in baseline.subject():
            weights[name.label] = max(weights.get(name.label, 0.0), float(name.weight))
        if len(_name_weights) > 16:
            _name_weights.clear()
        _name_weights[fingerprint] = weights
    return min(1.0, max(weights.get(m.label, 0.0) for m in names))


def row(matcher: BaselineScorer, title: str, text: str) -> Row:
    """Score ``title``/``text`` with the matcher and turn it into model features."""
    base = matcher.score(title, text)
    offset = _logit(base.value)
    expl = base.explanation
    subject = subject_strength(matcher, expl.by_kind("entity"))
    counts: dict[int, float] = {}
    seen: Counter[int] = Counter()
    names: dict[int, str] = {}
    for f, weight, written in word_features(title, text):
        i = _hash(f)
        counts[i] = max(counts.get(i, 0.0), weight)
        seen[i] += 1
        names.setdefault(i, written)
    x: dict[int, float] = {
        _BIAS: DENSE_SCALE,
        _BASE: BASE_SCALE * max(-1.5, min(1.5, offset / 6.0)),
        _SUBJECT: DENSE_SCALE * subject,
        _SEED: DENSE_SCALE * expl.seed_similarity,
    }
    if counts:
        tf = {i: w * (1.0 + math.log(seen[i])) for i, w in counts.items()}
        norm = math.sqrt(sum(v * v for v in tf.values()))
        for i, v in tf.items():
            x[i] = x.get(i, 0.0) + WORD_SCALE * v / norm
            if subject:
                j = _subject_copy(i)
                x[j] = x.get(j, 0.0) + SUBJECT_WORD_SCALE * subject * v / norm
    return Row(base, offset, x, frozenset(counts), names)


# ----------------------------------------------------------------------------- training

ROW_CACHE = 4096  # rows kept between retrains (a new label then costs one matcher score)
_rows: OrderedDict[tuple[str, str, str], Row] = OrderedDict()
_rows_lock = threading.Lock()


def _cached_row(matcher: BaselineScorer, item: Labelled) -> Row:
    """:func:`row`, remembered per baseline fingerprint and item for the next retrain
    (least recently used rows are dropped beyond ``ROW_CACHE``)."""
    fingerprint = str(getattr(getattr(matcher, "baseline", None), "fingerprint", ""))
    if not fingerprint:
        return row(matcher, item.title, item.text)
    digest = hashlib.blake2b(f"{item.title}\n{item.text}".encode(), digest_size=16).hexdigest()
    k = (fingerprint, str(MODEL_VERSION), digest)
    with _rows_lock:
        cached = _rows.get(k)
        if cached is not None:
            _rows.move_to_end(k)
            return cached
    fresh = row(matcher, item.title, item.text)
    with _rows_lock:
        _rows[k] = fresh
        while len(_rows) > ROW_CACHE:
            _rows.popitem(last=False)
    return fresh


def labels_digest(items: Sequence[Labelled]) -> str:
    """A hash of the labels (order-independent): the model cache's key with the
    baseline fingerprint."""
    h = hashlib.sha256(f"feedback-model-{MODEL_VERSION}".encode())
    for line in sorted(json.dumps([i.title, i.text, i.label]) for i in items):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def train(
    matcher: BaselineScorer, items: Sequence[Labelled], *, fingerprint: str = ""
) -> FeedbackModel | None:
    """Fit the correction to the labelled ``items``; ``None`` when there is nothing to
    learn (no item labelled 0 or 2). One class alone is enough (the penalty keeps its
    effect small). Cheap: each item is scored once with the matcher (and remembered
    for the next retrain, see ``ROW_CACHE``), then the fit takes about 0.2-0.3 s for
    a thousand labels."""
    decided = [i for i in items if i.label in (0, 2)]
    if not decided:
        return None
    learn = decided + ([i for i in items if i.label == 1] if BORDERLINE_WEIGHT else [])
    rows = [_cached_row(matcher, i) for i in learn]
    weights = fit(
        rows,
        [i.label == 2 for i in learn],
        [1.0 if i.label != 1 else BORDERLINE_WEIGHT for i in learn],
    )
    examples = tuple(
        Example(i.title[:TITLE_CHARS], i.label, r.words)
        for i, r in zip(learn, rows, strict=True)
        if i.label != 1
    )
    log.debug("feedback model: %d labels, %d weights", len(decided), len(weights))
    return FeedbackModel(weights, len(decided), examples, labels_digest(items), fingerprint)


def fit(rows: Sequence[Row], relevant: Sequence[bool], weight: Sequence[float]) -> dict[int, float]:
    """The penalised, class-balanced logistic regression with the baseline logit as
    offset; returns the non-zero weights."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.sparse import csr_matrix

    columns = sorted({i for r in rows for i in r.x})
    col = {c: k for k, c in enumerate(columns)}
    data, ind, ptr = [], [], [0]
    for r in rows:
        for i, v in r.x.items():
            ind.append(col[i])
            data.append(v)
        ptr.append(len(ind))
    xm = csr_matrix((data, ind, ptr), shape=(len(rows), len(columns)))
    y = np.where(np.asarray(relevant), 1.0, -1.0)
    off = np.asarray([r.offset for r in rows])
    sw = np.asarray(weight, dtype=float)
    n_pos = float(sw[y > 0].sum())
    n_neg = float(sw[y < 0].sum())
    s = (
        sw
        * np.where(y > 0, RECALL_WEIGHT / max(n_pos, 1e-9), 1.0 / max(n_neg, 1e-9))
        * 0.5
        * float(sw.sum())
    )

    def objective(w: Any) -> tuple[float, Any]:
        m = y * (off + xm @ w)
        loss = float(np.sum(s * np.logaddexp(0.0, -m))) + 0.5 * L2 * float(w @ w)
        g = -(s * y) * (0.5 * (1.0 - np.tanh(0.5 * m)))  # -s·y·σ(-m)
        return loss, xm.T @ g + L2 * w

    res = minimize(objective, np.zeros(len(columns)), jac=True, method="L-BFGS-B")
    weights = {c: round(float(w), 9) for c, w in zip(columns, res.x, strict=True)}
    return {c: w for c, w in weights.items() if w != 0.0}


# ----------------------------------------------------------------------------- scoring


def shift_cap(model: FeedbackModel) -> float:
    """The largest shift (in logit) the model may cause: ``SHIFT_PER_LABEL`` for one
    label, growing with the labels *of the scarcer kind*: ``SHIFT_PER_LABEL`` times
    (1 + 2 × the fewer of relevant and not-relevant labels), at most ``MAX_SHIFT``.
    Labels of one kind alone say nothing about where the boundary lies (twenty "relevant"
    clicks would otherwise raise every item that names the subject), so they move scores
    no more than one label does."""
    n_relevant = sum(1 for e in model.examples if e.label == 2)
    fewer = min(n_relevant, len(model.examples) - n_relevant)
    return min(MAX_SHIFT, SHIFT_PER_LABEL * (1 + 2 * fewer))


class FeedbackScorer:
    """The matcher's score corrected by a :class:`FeedbackModel` (or by nothing).

    ``score(title, text) -> Score`` like the matcher's; with ``model=None`` it *is* the
    matcher's. Picklable (as its matcher and model) for the parse workers.
    """

    def __init__(self, matcher: Any, model: FeedbackModel | None) -> None:
        self.matcher = matcher
        self.model = model
        self._cap = shift_cap(model) if model is not None else 0.0
        self._neighbours = Neighbours(model.examples if model is not None else ())

    def __reduce__(self) -> tuple[type[FeedbackScorer], tuple[Any, FeedbackModel | None]]:
        return (FeedbackScorer, (self.matcher, self.model))

    def score(self, title: str, text: str) -> Score:
        """The corrected score, its explanation saying what feedback did (see
        :func:`explain_shift`)."""
        model = self.model
        if model is None:
            result: Score = self.matcher.score(title, text)
            return result
        r = row(self.matcher, title, text)
        if r.base.explanation.excluded_by is not None:
            return r.base
        weights = model.weights
        cap = self._cap
        shift = max(-cap, min(cap, sum(v * weights.get(i, 0.0) for i, v in r.x.items())))
        value = round(_logistic(r.offset + shift), 6)
        return explain_shift(
            r.base, value, self._neighbours.nearest(r.words), taught(r, weights, shift)
        )


def taught(r: Row, weights: Mapping[int, float], shift: float) -> list[str]:
    """The item's words (as written) that moved its score most in the direction of
    ``shift``, at most ``TAUGHT_WORDS``, each moving it by at least 0.1 in logit; the
    subject's own names are left out (they say nothing the explanation does not)."""
    sign = 1.0 if shift > 0 else -1.0
    moved = []
    for i, written in r.names.items():
        j = _subject_copy(i)
        c = sign * (r.x.get(i, 0.0) * weights.get(i, 0.0) + r.x.get(j, 0.0) * weights.get(j, 0.0))
        if c >= 0.1:
            moved.append((c, written))
    moved.sort(key=lambda p: -p[0])
    names = {t for m in r.base.explanation.by_kind("entity") for t in tokens(m.label)}
    told: list[str] = []
    for _c, w in moved:
        if len(told) == TAUGHT_WORDS:
            break
        if not names.intersection(tokens(w)):
            told.append(w)
    return told
