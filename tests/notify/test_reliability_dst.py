"""Digest periods across daylight-saving changes: correct, and always terminating.

Only time is mocked (``now`` is passed in); the store and the SMTP server are real.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.notify.test_notify_support import (
    SMTPServer,
    add_alerts,
    email_config,
    notify_config,
    scored,
    smtp_server,
)
from watchtower.clock import CronSchedule, CronScheduleTrigger
from watchtower.notify.digest import digest_period, send_digest
from watchtower.store import Store

__all__ = ["smtp_server"]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def period(cron: str, zone: str, now: datetime) -> str:
    return digest_period(email_config(25, digest=cron, timezone=zone), now)


CASES = [
    # cron, zone, now (UTC), expected period (UTC fire time)
    # London autumn 2026-10-25: 02:00 BST -> 01:00 GMT, so 01:00-02:00 comes twice.
    ("30 1 * * *", "Europe/London", utc(2026, 10, 25, 1, 31), utc(2026, 10, 25, 0, 30)),
    ("30 1 * * *", "Europe/London", utc(2026, 10, 25, 0, 31), utc(2026, 10, 25, 0, 30)),
    ("30 1 * * *", "Europe/London", utc(2026, 10, 25, 0, 29), utc(2026, 10, 24, 0, 30)),
    ("30 1 * * *", "Europe/London", utc(2026, 10, 26, 1, 29), utc(2026, 10, 25, 0, 30)),
    ("30 1 * * *", "Europe/London", utc(2026, 10, 26, 1, 30), utc(2026, 10, 26, 1, 30)),
    ("0 7 * * *", "Europe/London", utc(2026, 10, 25, 1, 31), utc(2026, 10, 24, 6, 0)),
    ("0 7 * * *", "Europe/London", utc(2026, 10, 25, 7, 0), utc(2026, 10, 25, 7, 0)),
    ("0 2 * * *", "Europe/London", utc(2026, 10, 25, 1, 31), utc(2026, 10, 24, 1, 0)),
    ("0 2 * * *", "Europe/London", utc(2026, 10, 25, 2, 0), utc(2026, 10, 25, 2, 0)),
    # Hourly during the repeated hour: both real hours fire.
    ("30 * * * *", "Europe/London", utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 0, 30)),
    ("30 * * * *", "Europe/London", utc(2026, 10, 25, 1, 31), utc(2026, 10, 25, 1, 30)),
    ("0 * * * *", "Europe/London", utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 1, 0)),
    ("*/15 * * * *", "Europe/London", utc(2026, 10, 25, 1, 20), utc(2026, 10, 25, 1, 15)),
    # London spring 2026-03-29: 01:00 GMT -> 02:00 BST; 01:30 does not exist.
    ("30 1 * * *", "Europe/London", utc(2026, 3, 29, 1, 31), utc(2026, 3, 29, 1, 30)),
    ("30 1 * * *", "Europe/London", utc(2026, 3, 29, 1, 29), utc(2026, 3, 28, 1, 30)),
    ("30 1 * * *", "Europe/London", utc(2026, 3, 30, 0, 31), utc(2026, 3, 30, 0, 30)),
    ("30 * * * *", "Europe/London", utc(2026, 3, 29, 1, 45), utc(2026, 3, 29, 1, 30)),
    ("0 7 * * *", "Europe/London", utc(2026, 3, 29, 6, 0), utc(2026, 3, 29, 6, 0)),
    # New York: autumn 2026-11-01 02:00 EDT -> 01:00 EST; spring 2026-03-08 02:00 -> 03:00.
    ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 6, 31), utc(2026, 11, 1, 5, 30)),
    ("0 2 * * *", "America/New_York", utc(2026, 11, 1, 6, 59), utc(2026, 10, 31, 6, 0)),
    ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 7, 31), utc(2026, 3, 8, 7, 30)),
    ("30 * * * *", "America/New_York", utc(2026, 11, 1, 6, 31), utc(2026, 11, 1, 6, 30)),
    # Lord Howe: a 30-minute change. Autumn 2026-04-05 02:00 (+11) -> 01:30 (+10:30).
    ("45 1 * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 15, 20), utc(2026, 4, 4, 14, 45)),
    ("45 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 15, 20), utc(2026, 4, 4, 15, 15)),
    # Lord Howe spring 2026-10-04 02:00 (+10:30) -> 02:30 (+11); 02:15 does not exist.
    ("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 15, 50), utc(2026, 10, 3, 15, 45)),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("cron", "zone", "now", "expected"), CASES)
def test_digest_period_across_daylight_saving_changes(
    cron: str, zone: str, now: datetime, expected: datetime
) -> None:
    assert period(cron, zone, now) == expected.isoformat()


CHANGES = {
    "Europe/London": (utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)),
    "America/New_York": (utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)),
    "Australia/Lord_Howe": (utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("cron", "zone"),
    [
        ("30 1 * * *", "Europe/London"),
        ("30 * * * *", "Europe/London"),
        ("0 7 * * *", "Europe/London"),
        ("0 2 * * *", "America/New_York"),
        ("*/30 * * * *", "Australia/Lord_Howe"),
        ("45 1 * * *", "Australia/Lord_Howe"),
    ],
)
def test_periods_step_forward_through_both_changes(cron: str, zone: str) -> None:
    """Every few minutes around both changes: the period never goes back, is a fire
    time at or before now, and the next fire time is after now."""
    schedule = CronSchedule(cron, zone)
    for change in CHANGES[zone]:
        last = ""
        for minute in range(-14 * 60, 14 * 60, 11):
            now = change + timedelta(minutes=minute)
            key = period(cron, zone, now)
            assert key >= last, (now, key, last)
            fire = datetime.fromisoformat(key)
            assert fire <= now
            nxt = schedule.next_after(fire)
            assert nxt is not None and nxt > now
            last = key


@pytest.mark.timeout(10)
def test_fixed_hour_cron_fires_once_on_the_repeated_hour_and_hourly_twice() -> None:
    start = utc(2026, 10, 24, 12)
    daily = _fires(CronSchedule("30 1 * * *", "Europe/London"), start, 2)
    assert daily == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    hourly = _fires(CronSchedule("30 * * * *", "Europe/London"), utc(2026, 10, 24, 23), 4)
    assert hourly == [utc(2026, 10, 24, 23, 30) + timedelta(hours=h) for h in range(4)]
    spring = _fires(CronSchedule("30 * * * *", "Europe/London"), utc(2026, 3, 28, 23), 3)
    assert spring == [utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)]


def _fires(schedule: CronSchedule, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        nxt = schedule.next_after(moment)
        assert nxt is not None
        out.append(nxt)
        moment = nxt
    return out


@pytest.mark.timeout(10)
def test_impossible_or_far_schedules_end_with_none_instead_of_looping() -> None:
    assert CronSchedule("0 0 31 2 *", "Europe/London").previous(utc(2026, 1, 1)) is None
    far = datetime.max.replace(tzinfo=UTC)
    assert CronSchedule("0 7 * * *", "Asia/Tokyo").previous(far) is None
    assert CronSchedule("0 7 * * *", "America/New_York").previous(utc(1, 1, 1, 1)) is None


@pytest.mark.timeout(30)
def test_autumn_digest_in_the_repeated_hour_is_sent_once(
    store: Store, smtp_server: SMTPServer
) -> None:
    """``30 1 * * *`` in London: the first 01:30 sends, the repeated 01:30 sends nothing."""
    cfg = email_config(smtp_server.port, digest="30 1 * * *", timezone="Europe/London")
    notify = notify_config([], cfg)
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)], now=utc(2026, 10, 24, 22))
    first = asyncio.run(send_digest(store, cfg, now=utc(2026, 10, 25, 0, 30, 5)))
    assert (first.sent, first.period) == (True, "2026-10-25T00:30:00+00:00")
    add_alerts(store, notify, [scored("Daily NK", "b", 0.9)], now=utc(2026, 10, 25, 1))
    again = asyncio.run(send_digest(store, cfg, now=utc(2026, 10, 25, 1, 31)))
    assert (again.sent, again.reason) == (False, "already sent for this period")
    assert len(smtp_server.messages) == 1
    label = smtp_server.messages[0]["X-Watchtower-Digest"]
    assert "01:30 BST" in label


@pytest.mark.timeout(10)
def test_trigger_fires_once_per_period_through_the_autumn_change() -> None:
    """The calls APScheduler makes: first from ``now``, then from each fire time."""
    trigger = CronScheduleTrigger("30 1 * * *", "Europe/London")
    now = utc(2026, 10, 24, 12)
    fire = trigger.get_next_fire_time(None, now)
    fires = []
    while fire is not None and len(fires) < 3:
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(minutes=1))
    assert fires == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)]
    cfg = email_config(25, digest="30 1 * * *", timezone="Europe/London")
    assert [digest_period(cfg, f) for f in fires] == [f.isoformat() for f in fires]
    assert trigger.get_next_fire_time(None, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 0, 30)


def test_trigger_is_accepted_by_the_asyncio_scheduler() -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async def go() -> datetime | None:
        aps = AsyncIOScheduler(timezone="UTC")
        aps.start()
        try:
            job = aps.add_job(_noop, CronScheduleTrigger("0 7 * * *", "Europe/London"))
            return job.next_run_time  # type: ignore[no-any-return]
        finally:
            aps.shutdown(wait=False)

    when = asyncio.run(go())
    assert when is not None and when.astimezone(ZoneInfo("Europe/London")).hour == 7


async def _noop() -> None:
    return None
