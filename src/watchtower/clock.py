"""Cron schedules in a time zone, correct and bounded across daylight-saving changes.

A 5-field cron (the crontab syntax APScheduler's ``CronTrigger.from_crontab`` reads)
names *wall-clock* times in a zone. :class:`CronSchedule` maps them to real instants:

* the calendar arithmetic runs on naive wall-clock time (a zone without transitions),
  so it can neither stall nor loop on a repeated or skipped hour;
* a wall time skipped by a spring change (01:30 on a day that jumps from 01:00 to
  02:00) fires once, shifted forward by the gap (PEP 495 ``fold=0``: 01:30 read with
  the offset in force before the change, i.e. 02:30 of the new offset);
* a wall time repeated by an autumn change fires once, at its first occurrence, when
  the cron names fixed hours (``30 1 * * *``); a cron whose hour field is a wildcard
  (``30 * * * *``, ``*/2``) fires at both occurrences, since "every hour" means every
  real hour (the rule Vixie cron follows);
* two wall times that land on the same instant fire once.

Every computation is bounded: at most :data:`MAX_STEPS` cron steps per scan and a fixed
list of look-back windows; past that the answer is ``None`` ("no fire time found"),
never a hang. :class:`CronScheduleTrigger` lets APScheduler fire on exactly these
instants, so the scheduler and the digest period agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

__all__ = ["MAX_STEPS", "CronSchedule", "CronScheduleTrigger"]

#: The most cron steps one scan may take (a per-minute cron needs ~70 per answer).
MAX_STEPS = 5_000
_LOOKBACKS = (
    timedelta(minutes=2),
    timedelta(hours=3),
    timedelta(days=2),
    timedelta(days=32),
    timedelta(days=400),
    timedelta(days=366 * 8),
)
_SAMPLE_SPAN = 26  # hours either side of ``now`` sampled for the zone's offsets
_TINY = timedelta(microseconds=1)
_NAIVE_MIN = datetime.min + timedelta(days=2)
_NAIVE_MAX = datetime.max - timedelta(days=2)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _zone(timezone: str | tzinfo) -> tzinfo:
    return ZoneInfo(timezone) if isinstance(timezone, str) else timezone


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


class CronSchedule:
    """The fire instants of a 5-field cron ``expr`` read in ``timezone``.

    :meth:`previous` gives the latest instant at or before a time, :meth:`next_after`
    the earliest strictly after one; both return aware UTC datetimes, or ``None`` when
    no fire time exists within the bounded search (about eight years back for
    :meth:`previous`, and :data:`MAX_STEPS` steps in either direction). Raises
    :class:`ValueError` for an expression APScheduler's crontab reader refuses.
    """

    def __init__(self, expr: str, timezone: str | tzinfo) -> None:
        self.expr = expr
        self.zone = _zone(timezone)
        # Wall-clock arithmetic: the cron runs on naive local times dressed as UTC.
        self._wall = CronTrigger.from_crontab(expr, timezone=UTC)
        fields = expr.split()
        self.wildcard_hour = len(fields) == 5 and fields[1].startswith("*")
        # Five cron fields repeat every 400 Gregorian years: no fire from 2000 on, none ever.
        self.possible = self._wall.get_next_fire_time(None, _EPOCH) is not None

    def __repr__(self) -> str:
        return f"CronSchedule({self.expr!r}, {self.zone!s})"

    # -- public -------------------------------------------------------------------------

    def previous(self, now: datetime) -> datetime | None:
        """The latest fire instant ``<= now`` (``now`` naive means UTC)."""
        now = _utc(now)
        wall_now, spread = self._wall_of(now)
        if wall_now is None or not self.possible:
            return None
        for back in _LOOKBACKS:
            best: datetime | None = None
            try:
                start = wall_now - back - spread
            except OverflowError:
                return None
            for instant in self._instants(start, wall_now + spread):
                if instant <= now and (best is None or instant > best):
                    best = instant
            if best is not None:
                return best
        return None

    def next_after(self, moment: datetime) -> datetime | None:
        """The earliest fire instant strictly after ``moment`` (naive means UTC)."""
        moment = _utc(moment)
        wall_now, spread = self._wall_of(moment)
        if wall_now is None or not self.possible:
            return None
        best: datetime | None = None
        horizon: datetime | None = None
        for wall, instants in self._walls(wall_now - spread, None):
            if horizon is not None and wall > horizon:
                break
            later = [i for i in instants if i > moment]
            if later and (best is None or min(later) < best):
                best = min(later)
                horizon = wall + 2 * spread  # a later wall can still map earlier
        return best

    # -- internals ----------------------------------------------------------------------

    def _wall_of(self, now: datetime) -> tuple[datetime | None, timedelta]:
        """``now`` as naive wall time, and how far offsets near ``now`` spread."""
        try:
            wall = now.astimezone(self.zone).replace(tzinfo=None)
        except (OverflowError, ValueError):
            return None, timedelta(0)
        if not _NAIVE_MIN <= wall <= _NAIVE_MAX:
            return None, timedelta(0)
        offsets = []
        for hours in range(-_SAMPLE_SPAN, _SAMPLE_SPAN + 1):
            try:
                offset = (now + timedelta(hours=hours)).astimezone(self.zone).utcoffset()
            except (OverflowError, ValueError):
                continue
            if offset is not None:
                offsets.append(offset)
        spread = (max(offsets) - min(offsets)) if offsets else timedelta(0)
        return wall, spread + timedelta(minutes=1)

    def _instants(self, start: datetime, stop: datetime) -> Iterator[datetime]:
        for _wall, instants in self._walls(start, stop):
            yield from instants

    def _walls(
        self, start: datetime, stop: datetime | None
    ) -> Iterator[tuple[datetime, tuple[datetime, ...]]]:
        """Wall fire times from ``start`` (inclusive) to ``stop``, with their instants."""
        cursor = start.replace(tzinfo=UTC)
        previous: datetime | None = None
        for _ in range(MAX_STEPS):
            try:
                fire = self._wall.get_next_fire_time(previous, cursor)
            except (OverflowError, ValueError):
                return
            if fire is None:
                return
            wall = fire.replace(tzinfo=None)
            if stop is not None and wall > stop:
                return
            yield wall, self._to_instants(wall)
            previous, cursor = fire, fire + _TINY

    def _to_instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The real instants of one wall time (see the module docstring for the rules)."""
        try:
            first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
            second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        except (OverflowError, ValueError):
            return ()
        if first == second:
            return (first,)
        if first.astimezone(self.zone).replace(tzinfo=None) != wall:
            return (first,)  # skipped by a spring change: fold=0 is shifted forward
        if self.wildcard_hour:
            return (first, second)
        return (first,)


class CronScheduleTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler 3.x trigger firing on the instants of a :class:`CronSchedule`.

    The first fire time is the first instant at or after ``now``; each later one is the
    first instant strictly after the previous fire time. ``None`` (the job is done)
    only when the schedule has no fire time within its bounded search.
    """

    def __init__(self, expr: str, timezone: str | tzinfo) -> None:
        self.schedule = CronSchedule(expr, timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            return self.schedule.next_after(_utc(now) - _TINY)
        return self.schedule.next_after(previous_fire_time)

    def __str__(self) -> str:
        return f"cron[{self.schedule.expr!r} in {self.schedule.zone!s}]"

    def __repr__(self) -> str:
        return f"<CronScheduleTrigger {self.schedule.expr!r} {self.schedule.zone!s}>"
