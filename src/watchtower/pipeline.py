"""Poll one source end to end, as a list of stages, each owned by one module:

1. fetch                      ``fetch`` (conditional GET)        → FetchResult
   (a 304 ends here: its source state goes to ``pollbatch``, written with many others)
2. parse                      ``sources.dispatch`` (worker)      → [Entry], new fetch state
3. drop already-seen items    ``Store.unseen_entries``           → new [Entry]
3b. full text (``full_text``) ``evidence.full_text_stage``       → [Entry] with documents
4. score                      ``scoring`` (worker)               → [ScoredEntry]
5. assign stories             ``Store.known_stories``            → known stories
6. decide alerts, deliveries  ``alerting.decide``                → PollPlan
7. write the plan             ``Store.write_poll``, all-or-nothing with the fetch state
8. archive (``archive.dir``)  ``evidence.Archiver``, after the commit → alert.archive

Stages 5 to 7 are one write under the store's writer lock (``writebatch`` commits the
writes that wait together), so no other poll's stories slip in between read and write.
Stage 8 runs after that commit, bounded, and never undoes, fails or delays what it
committed (see :mod:`watchtower.evidence`). A fetch or parse failure is recorded on the
source with a short reason and a back-off; it never reaches the other sources.

Once :attr:`Pipeline.stopping` is set (the daemon is shutting down), a poll that fails
is not recorded as the source's failure — the failure may be the shutdown itself — and
reports ``cancelled``: the source keeps the state of its last finished poll.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

from watchtower import alerting, evidence, metrics, scoring
from watchtower.backoff import backing_off, backoff
from watchtower.config import Config, SourceConfig
from watchtower.errors import (
    FetchError,
    HTTPStatusError,
    ParseError,
    StoreError,
    WatchtowerError,
)
from watchtower.models import (
    Entry,
    FetchResult,
    FetchState,
    NotModified,
    PollOutcome,
    ScoredEntry,
    SourceState,
)
from watchtower.pollbatch import NotModifiedBatch
from watchtower.sources import dispatch
from watchtower.store import Store
from watchtower.units import format_duration
from watchtower.writebatch import WriteBatch

log = logging.getLogger(__name__)

T = TypeVar("T")
PollStatus = Literal["ok", "not-modified", "error", "skipped", "cancelled"]


Scorer = scoring.Scorer


class FetchClient(Protocol):
    """What the pipeline needs from :class:`watchtower.fetch.Fetcher`."""

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = ...,
    ) -> FetchResult: ...


@dataclass(frozen=True, slots=True)
class PollReport:
    """The result of one poll, for logs, metrics and ``run --once``."""

    source: str
    status: PollStatus
    new_items: int = 0
    new_alerts: int = 0
    joined_stories: int = 0
    error: str | None = None
    seconds: float = 0.0
    store_error: bool = False


@dataclass(frozen=True, slots=True)
class _Limits:
    timeout: float
    memory: int


@dataclass(frozen=True, slots=True)
class Parsed:
    entries: list[Entry]
    state: FetchState
    unchecked: bool = False  # a first poll's: the stored entries are not dropped yet


class Pipeline:
    """Polls sources into the store. One instance per running config."""

    def __init__(
        self,
        config: Config,
        store: Store,
        scorer: Scorer,
        fetcher: FetchClient,
        channels: Callable[[float], Sequence[str]],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.scorer = scorer  # also ships it to the parse workers (see the setter)
        self.fetcher = fetcher
        self.channels = channels
        self.clock = clock or (lambda: datetime.now(UTC))
        # Source states, read once in bulk and kept current after each write: this
        # process is the store's only writer of source state.
        self._states: dict[str, SourceState] | None = None
        self._states_lock = asyncio.Lock()
        self.unchanged = NotModifiedBatch(store, on_lost=self._forget)
        self.writes = WriteBatch(store)  # polls' writes, committed together when they wait
        self._archiver = evidence.Archiver()
        self.stopping = False
        self._slots: tuple[int, asyncio.Semaphore] | None = None

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    @scorer.setter
    def scorer(self, scorer: Scorer) -> None:
        self._scorer = scorer
        self._scorer_ref = scoring.ScorerRef.of(scorer)

    async def call_store(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run one store operation through the store's single-writer queue."""
        return await self.store.run(fn, *args, **kwargs)

    async def flush_unchanged(self) -> None:
        """Write the source states of the 304s not yet written (see :mod:`pollbatch`)."""
        await self.unchanged.flush()

    def _forget(self, names: Iterable[str]) -> None:
        """Drop the cached states of ``names``: the next poll reads the store's."""
        if self._states is not None:
            for name in names:
                self._states.pop(name, None)

    async def _state(self, name: str) -> SourceState:
        async with self._states_lock:
            if self._states is None:
                self._states = await self.call_store(self.store.source_states)
        state = self._states.get(name)
        if state is None:  # a source added by a reload, or forgotten
            await self.unchanged.flush_for(name)
            state = await self.call_store(self.store.source_state, name)
            self._states[name] = state
        return state

    def _remember(self, state: SourceState) -> None:
        if self._states is not None:
            self._states[state.name] = state

    async def _write(self, name: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """A store write for source ``name``, after its waiting 304 state (if any); if it
        fails, its cached state is dropped."""
        await self.unchanged.flush_for(name)
        try:
            return await self.writes.submit(functools.partial(fn, *args, **kwargs))
        except BaseException:
            if self._states is not None:
                self._states.pop(name, None)
            raise

    def _poll_slots(self) -> asyncio.Semaphore:
        """The semaphore of ``service.max_concurrent_polls`` (a new one when a reload
        changes the number; polls already holding the old one finish under it)."""
        limit = self.config.service.max_concurrent_polls
        if self._slots is None or self._slots[0] != limit:
            self._slots = (limit, asyncio.Semaphore(limit))
        return self._slots[1]

    async def poll(self, source: SourceConfig, *, force: bool = False) -> PollReport:
        """Poll ``source`` once; never raises for a problem with the source itself, nor
        for a store failure (recorded on the source when the store still answers).

        At most ``service.max_concurrent_polls`` polls of this pipeline run at once; the
        others wait here, before their fetch (so waiting never counts against its
        timeout).
        """
        async with self._poll_slots():
            started = time.monotonic()
            try:
                report = await self._poll(source, force=force)
            except StoreError as exc:
                report = await self._store_failed(source, exc)
            report = replace(report, seconds=time.monotonic() - started)
        metrics.observe_poll(
            source.label, report.status, report.seconds, report.new_items, report.new_alerts
        )
        return report

    async def _poll(self, source: SourceConfig, *, force: bool) -> PollReport:
        now = self.clock()
        state = await self._state(source.label)
        if not force and backing_off(state, now):
            log.debug("source %s: backing off until %s", source.label, state.next_due_at)
            return PollReport(source.label, "skipped")
        limits = self._limits()
        try:
            result = await self.fetcher.fetch(
                source.url, etag=state.etag, last_modified=state.last_modified
            )
            if result.not_modified:
                return self._not_modified(source, state, result, now)
            fetched_at = self.clock()
            parsed, enriched, scored = await self._parse_and_score(source, result, state, limits)
        except (FetchError, ParseError) as exc:
            if self.stopping:
                log.info("source %s: poll cut off by shutdown; nothing recorded", source.label)
                return PollReport(source.label, "cancelled", error=str(exc))
            return await self._failed(source, state, exc, now)
        args = (source, parsed.state, scored, now, parsed.unchecked)
        outcome: PollOutcome = await self._write(source.label, self._decide_and_write, *args)
        self._remember(
            replace(
                state,
                etag=parsed.state.etag,
                last_modified=parsed.state.last_modified,
                page_hash=parsed.state.page_hash,
                snapshot=state.snapshot if parsed.state.snapshot is None else parsed.state.snapshot,
                consecutive_failures=0,
                last_error=None,
                last_success_at=now,
                next_due_at=now + source.every,
            )
        )
        if outcome.new_alerts and self.config.archive.enabled:
            kept = enriched.keep_alerting(scored, self.config.alerts.threshold)
            page = result if source.kind == "page" else None
            found = evidence.PollEvidence.of(
                kept, page=page, fetched_at=fetched_at, snapshot=parsed.state.snapshot
            )
            await self._archive(outcome, found)
        return PollReport(
            source.label,
            "ok",
            outcome.new_items,
            len(outcome.new_alerts),
            outcome.joined_stories,
        )

    async def _parse_and_score(
        self, source: SourceConfig, result: FetchResult, state: SourceState, limits: _Limits
    ) -> tuple[Parsed, evidence.Enriched, list[ScoredEntry]]:
        """Stages 2 to 4: parse, drop the stored entries, full text, score.

        A feed source with nothing stored yet (never polled successfully) has only new
        entries: it is parsed and scored in one worker job, and the stored ones (none,
        unless the store holds items of a source that never succeeded) are dropped by
        the write itself, in its transaction (:meth:`_decide_and_write`).
        """
        if _all_new(source, state, result):
            scored = await scoring.parse_and_score_in_worker(
                dispatch.feed_kind(result),
                result,
                self._scorer_ref,
                source.label,
                timeout=limits.timeout,
                memory=limits.memory,
            )
            entries = [s.entry for s in scored]
            keep = _kept_state(result, state)
            return Parsed(entries, keep, unchecked=True), evidence.Enriched(entries), scored
        parsed = await self._parse(source, result, state, limits)
        fresh = await self._drop_seen(source, parsed.entries)
        enriched = await self._full_text(source, fresh, limits)
        scored = await scoring.score_in_worker(
            enriched.entries,
            self._scorer_ref,
            source.label,
            timeout=limits.timeout,
            memory=limits.memory,
        )
        return parsed, enriched, enriched.annotate(scored)

    def _not_modified(
        self, source: SourceConfig, state: SourceState, result: FetchResult, now: datetime
    ) -> PollReport:
        """A 304: nothing to parse, score or store but the source's new state, which is
        queued for the next batch write instead of a store call of its own. A crash
        before that write loses only this state: the source is then polled again."""
        fresh = replace(
            state,
            etag=result.etag or state.etag,
            last_modified=result.last_modified or state.last_modified,
            consecutive_failures=0,
            last_error=None,
            last_success_at=now,
            next_due_at=now + source.every,
        )
        self._remember(fresh)
        self.unchanged.add(
            NotModified(
                source.label,
                fresh.etag,
                fresh.last_modified,
                fresh.page_hash,
                polled_at=now,
                next_due_at=fresh.next_due_at,
            )
        )
        return PollReport(source.label, "not-modified")

    def _limits(self) -> _Limits:
        fetch_cfg = self.config.fetch
        return _Limits(fetch_cfg.parse_timeout.total_seconds(), int(fetch_cfg.parse_memory))

    async def _parse(
        self, source: SourceConfig, result: FetchResult, state: SourceState, limits: _Limits
    ) -> Parsed:
        keep = _kept_state(result, state)
        if source.kind == "page":
            page = await dispatch.parse_page_in_worker(
                result,
                source.label,
                select=source.select,
                exclude_select=tuple(source.exclude_select),
                ignore=tuple(source.ignore),
                previous=state.snapshot,
                timeout=limits.timeout,
                memory=limits.memory,
            )
            new_state = FetchState(
                etag=keep.etag,
                last_modified=keep.last_modified,
                page_hash=page.page_hash,
                snapshot=page.snapshot,
            )
            return Parsed(list(page.entries), new_state)
        entries = await dispatch.parse_feed_in_worker(
            result, source.label, timeout=limits.timeout, memory=limits.memory
        )
        return Parsed(entries, keep)

    async def _full_text(
        self, source: SourceConfig, entries: list[Entry], limits: _Limits
    ) -> evidence.Enriched:
        """Stage 3b: the linked documents of short new entries, for ``full_text`` sources."""
        if not source.full_text:
            return evidence.Enriched(entries)
        return await evidence.full_text_stage(
            entries,
            self.fetcher,
            parse_timeout=limits.timeout,
            parse_memory=limits.memory,
            keep_documents=self.config.archive.enabled,
        )

    async def _archive(self, outcome: PollOutcome, found: evidence.PollEvidence) -> None:
        """Stage 8: the new alerts' documents into the archive, after the commit."""
        await self._archiver.archive_alerts(
            self.config.archive,
            outcome.new_alerts,
            found,
            fetcher=self.fetcher,
            store=self.store,
            bound=evidence.archive_bound(self.config.fetch.timeout, len(outcome.new_alerts)),
        )

    async def _drop_seen(self, source: SourceConfig, entries: list[Entry]) -> list[Entry]:
        """The entries the store has not seen (a changed feed is mostly old items)."""
        if not entries:
            return []
        return await self.call_store(self.store.unseen_entries, source.label, entries)

    def _decide_and_write(
        self,
        source: SourceConfig,
        state: FetchState,
        scored: list[ScoredEntry],
        now: datetime,
        unchecked: bool = False,
    ) -> PollOutcome:
        """Stages 5 to 7 under the store's writer lock (runs in the store's thread), in one
        transaction; ``unchecked`` entries (a first poll's) lose the stored ones first."""
        alerts = self.config.alerts
        with self.store.writer():
            if unchecked:
                scored = self.store.unseen_scored(source.label, scored)
            known = self.store.known_stories(
                [s.signature for s in scored], now=now, window=alerts.story_window
            )
            plan = alerting.decide(
                scored,
                known,
                threshold=alerts.threshold,
                channels=self.channels,
                now=now,
                index_factory=self.store.story_index_factory,
            )
            return self.store.write_poll(
                source.label, state, plan, now=now, next_due_at=now + source.every
            )

    async def _store_failed(self, source: SourceConfig, exc: StoreError) -> PollReport:
        """A poll the store failed (not the source's fault): recorded on the source when
        the store still answers, so ``status`` shows it; the source keeps its schedule.

        The store itself logs an outage once (:mod:`watchtower.store.outage`); a store
        error that is no outage (a refused statement) is logged here, in one line.
        """
        reason = str(exc)
        self._forget([source.label])
        now = self.clock()
        try:
            failures: int = await self._write(
                source.label,
                self.store.record_failure,
                source.label,
                reason,
                now=now,
                next_due_at=now + source.every,
            )
        except StoreError:
            failures = 0  # the store is down: the outage is counted and logged once already
        if failures == 1:
            log.warning("source %s: %s (not the source's fault)", source.label, reason)
        elif failures:
            log.info(
                "source %s: store error again (%d in a row): %s", source.label, failures, reason
            )
        return PollReport(source.label, "error", error=reason, store_error=True)

    async def _failed(
        self, source: SourceConfig, state: SourceState, exc: WatchtowerError, now: datetime
    ) -> PollReport:
        reason = getattr(exc, "reason", str(exc))
        retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
        delay = backoff(
            source.every,
            state.consecutive_failures + 1,
            self.config.service.backoff_max,
            retry_after=retry_after,
        )
        failures: int = await self._write(
            source.label,
            self.store.record_failure,
            source.label,
            reason,
            now=now,
            next_due_at=now + delay,
        )
        self._remember(
            replace(
                state, consecutive_failures=failures, last_error=reason, next_due_at=now + delay
            )
        )
        if failures == 1:
            log.warning(
                "source %s failed: %s (retrying in %s)",
                source.label,
                reason,
                format_duration(delay),
            )
        else:
            log.info("source %s failed again (%d in a row): %s", source.label, failures, reason)
        return PollReport(source.label, "error", error=reason)


def _kept_state(result: FetchResult, state: SourceState) -> FetchState:
    """The fetch state after an answer: its validators, else the ones the source had."""
    return FetchState(
        etag=result.etag or state.etag,
        last_modified=result.last_modified or state.last_modified,
        page_hash=state.page_hash,
    )


def _all_new(source: SourceConfig, state: SourceState, result: FetchResult) -> bool:
    """True for a feed answer of a source that has nothing stored yet, read as it is."""
    return (
        source.kind == "feed"
        and not source.full_text
        and not result.not_modified
        and state.last_success_at is None
    )
