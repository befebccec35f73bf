"""The evidence stages of a poll: full text before scoring, the archive after the write.

**fulltext** (between drop-seen and score, sources with ``full_text: true``):
:func:`full_text_stage` fetches the linked document of each new entry that is short
(the rule of :func:`watchtower.fulltext.needs_full_text`) and reads its main text in a
bounded parse worker. The entry then carries that text as ``content``, so the score,
the excerpt and the stored item use it. A failed fetch or an unreadable document keeps
the entry as the source gave it: it is scored on that, and :meth:`Enriched.annotate`
adds the reason (``full text not fetched: HTTP 404``) to its explanation's notes, which
are stored with the item and shown with the alert. It never fails the source.

**archive** (after the store write, only when ``archive.dir`` is set):
:func:`archive_alerts` writes each new alert's document as a WARC record
(:mod:`watchtower.archive`) and records ``{"path", "sha256", "fetched_at"}`` as the
alert's ``archive`` (:meth:`Store.set_alert_archive`). The document is, in order:

1. the linked document fetched by the fulltext stage (the article or PDF as fetched);
2. for a page's own change, the page's answer of this poll (HTML or PDF as fetched);
3. otherwise (a feed item without full text) the item's link, fetched now;
4. for a page change with no answer at hand, the page snapshot (the watched text).

The alert and its deliveries are committed before this stage runs, in the poll's one
transaction, and nothing here can undo or delay them: the stage is bounded by
:func:`archive_bound`, never raises but for cancellation, and a full disk or a failed
fetch is logged and leaves the alert's ``archive`` null. A delivery worker running in
parallel (the daemon) may therefore send an alert before its archive is recorded; its
webhook then says ``"archive": null`` while ``watchtower alerts`` and the review page
show the path once written. ``run --once`` archives before it delivers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from watchtower.archive import Archive, ArchiveOutcome
from watchtower.config.evidence import ArchiveConfig
from watchtower.errors import FetchError, StoreError
from watchtower.fulltext import DOCUMENT_ACCEPT, DocumentFetcher, FullText, fetch_full_texts
from watchtower.models import Entry, FetchedDocument, FetchResult, ScoredEntry

log = logging.getLogger(__name__)
T = TypeVar("T")


class EvidenceStore(Protocol):
    """What the archive stage needs from :class:`watchtower.store.Store`."""

    def alert_item_guids(self, alert_ids: Sequence[int]) -> dict[int, str]: ...

    def set_alert_archive(self, alert_id: int, archive: Mapping[str, Any] | None) -> bool: ...

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T: ...


#: Documents of one poll archived at the same time.
ARCHIVE_CONCURRENCY = 4
#: The archive stage of one poll never takes longer than this.
MAX_ARCHIVE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Enriched:
    """What the fulltext stage made of a poll's new entries.

    ``entries`` are in the order given, with the full text where it was read;
    ``documents`` are the fetched documents by entry guid (kept for the archive only);
    ``notes`` are, by guid, what to add to the entry's explanation.
    """

    entries: list[Entry]
    documents: dict[str, FetchedDocument] = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def annotate(self, scored: Sequence[ScoredEntry]) -> list[ScoredEntry]:
        """``scored`` with each entry's full-text notes appended to its explanation."""
        out = []
        for item in scored:
            extra = self.notes.get(item.entry.guid)
            if extra:
                explanation = item.score.explanation
                explanation = dataclasses.replace(explanation, notes=explanation.notes + extra)
                item = item.rescored(dataclasses.replace(item.score, explanation=explanation))
            out.append(item)
        return out

    def keep_alerting(self, scored: Sequence[ScoredEntry], threshold: float) -> Enriched:
        """Only the documents of entries that may alert (the others are never archived)."""
        wanted = {s.entry.guid for s in scored if s.score.alerts_at(threshold)}
        documents = {g: d for g, d in self.documents.items() if g in wanted}
        return dataclasses.replace(self, documents=documents)


def _notes(result: FullText) -> tuple[str, ...]:
    if result.status == "fetched":
        return ("scored on the full text of the linked document", *result.notes)
    if result.status == "failed" and result.reason:
        return (result.reason,)
    return ()


async def full_text_stage(
    entries: Sequence[Entry],
    fetcher: DocumentFetcher,
    *,
    parse_timeout: float,
    parse_memory: int,
    keep_documents: bool,
) -> Enriched:
    """The fulltext stage for a ``full_text: true`` source (see the module docstring).

    ``keep_documents`` keeps the fetched documents for the archive stage (when the
    archive is on). Never raises but for cancellation.
    """
    if not entries:
        return Enriched([])
    results = await fetch_full_texts(
        entries, fetcher, parse_timeout=parse_timeout, parse_memory=parse_memory
    )
    documents = {}
    notes = {}
    for result in results:
        if keep_documents and result.document is not None:
            documents[result.entry.guid] = result.document
        extra = _notes(result)
        if extra:
            notes[result.entry.guid] = extra
    fetched = sum(r.status == "fetched" for r in results)
    failed = sum(r.status == "failed" for r in results)
    if fetched or failed:
        log.info(
            "%s: full text of %d entries read, %d not (scored on the feed's text)",
            entries[0].source,
            fetched,
            failed,
        )
    return Enriched([r.entry for r in results], documents, notes)


@dataclass(frozen=True, slots=True)
class PollEvidence:
    """What a poll has at hand to archive: its new entries, their fetched documents and,
    for a page source, the page's answer (``page``) and watched text (``snapshot``)."""

    entries: Mapping[str, Entry]
    documents: Mapping[str, FetchedDocument] = field(default_factory=dict)
    page: FetchedDocument | None = None
    snapshot: str | None = None

    @classmethod
    def of(
        cls,
        enriched: Enriched,
        *,
        page: FetchResult | None = None,
        fetched_at: datetime | None = None,
        snapshot: str | None = None,
    ) -> PollEvidence:
        when = fetched_at or datetime.now(UTC)
        document = FetchedDocument.of(page, when) if page is not None and page.body else None
        return cls({e.guid: e for e in enriched.entries}, enriched.documents, document, snapshot)


def archive_bound(fetch_timeout: timedelta, alerts: int) -> float:
    """Seconds the archive stage of a poll with ``alerts`` new alerts may take.

    Room for one fetch per batch of :data:`ARCHIVE_CONCURRENCY` alerts plus one more, and
    30 s for the writes; never more than :data:`MAX_ARCHIVE_SECONDS`.
    """
    batches = -(-max(alerts, 1) // ARCHIVE_CONCURRENCY) + 1
    return min(batches * fetch_timeout.total_seconds() + 30.0, MAX_ARCHIVE_SECONDS)


class Archiver:
    """The archive stage for one pipeline: one :class:`Archive` per configured folder."""

    def __init__(self) -> None:
        self._archive: Archive | None = None

    def archive_for(self, config: ArchiveConfig) -> Archive | None:
        """The archive of ``config.dir`` (made once, remade when a reload moves it)."""
        if config.dir is None:
            return None
        if self._archive is None or self._archive.directory != Path(config.dir):
            self._archive = Archive(config.dir)
        return self._archive

    async def archive_alerts(
        self,
        config: ArchiveConfig,
        alert_ids: Sequence[int],
        evidence: PollEvidence,
        *,
        fetcher: DocumentFetcher,
        store: EvidenceStore,
        bound: float,
    ) -> int:
        """Archive each new alert's document and record it; returns how many were recorded.

        Bounded by ``bound`` seconds; never raises but for cancellation (see the module
        docstring).
        """
        archive = self.archive_for(config)
        if archive is None or not alert_ids:
            return 0
        try:
            async with asyncio.timeout(bound):
                guids = await store.run(store.alert_item_guids, list(alert_ids))
                gate = asyncio.Semaphore(ARCHIVE_CONCURRENCY)

                async def one(alert_id: int, guid: str) -> bool:
                    async with gate:
                        return await _archive_one(archive, alert_id, guid, evidence, fetcher, store)

                done = await asyncio.gather(*(one(a, g) for a, g in guids.items()))
        except TimeoutError:
            log.warning(
                "archive: stopped after %.0fs; the alerts not archived yet keep archive null",
                bound,
            )
            return 0
        except StoreError as exc:
            log.warning("archive: the store failed: %s", exc)
            return 0
        return sum(done)


async def _archive_one(
    archive: Archive,
    alert_id: int,
    guid: str,
    evidence: PollEvidence,
    fetcher: DocumentFetcher,
    store: EvidenceStore,
) -> bool:
    entry = evidence.entries.get(guid)
    try:
        outcome = await _write(archive, entry, guid, evidence, fetcher)
    except Exception:  # a bug must not reach the poll: the alert is stored already
        log.warning("archive: alert %d failed", alert_id, exc_info=True)
        return False
    if outcome.record is None:
        log.info("archive: alert %d has no copy: %s", alert_id, outcome.reason)
        return False
    try:
        await store.run(store.set_alert_archive, alert_id, outcome.record.to_dict())
    except StoreError as exc:
        path = outcome.record.path
        log.warning("archive: alert %d written to %s, not recorded: %s", alert_id, path, exc)
        return False
    log.debug("archive: alert %d → %s", alert_id, outcome.record.path)
    return True


async def _write(
    archive: Archive,
    entry: Entry | None,
    guid: str,
    evidence: PollEvidence,
    fetcher: DocumentFetcher,
) -> ArchiveOutcome:
    document = evidence.documents.get(guid)
    if document is not None:
        return await archive.write_async(document)
    if entry is not None and entry.kind == "page" and entry.guid != entry.url:
        if evidence.page is not None:
            return await archive.write_async(evidence.page)
        if evidence.snapshot is not None and entry.url:
            return await archive.write_snapshot_async(
                entry.url, evidence.snapshot, datetime.now(UTC)
            )
    url = entry.url if entry is not None else None
    if not url:
        return ArchiveOutcome(None, "no document to archive (the item has no link)")
    fetched_at = datetime.now(UTC)
    try:
        result = await fetcher.fetch(url, accept=DOCUMENT_ACCEPT)
    except FetchError as exc:
        return ArchiveOutcome(None, f"document not fetched: {exc.reason}")
    return await archive.write_async(FetchedDocument.of(result, fetched_at))
