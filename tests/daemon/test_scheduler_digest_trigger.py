"""The daemon's digest job fires on Watchtower's own bounded cron schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

from tests.notify.test_notify_support import email_config
from watchtower.clock import CronSchedule, CronScheduleTrigger
from watchtower.config import ServiceConfig
from watchtower.scheduler import Scheduler


def test_digest_job_uses_the_bounded_cron_trigger_in_the_email_timezone() -> None:
    email = email_config(25, digest="30 1 * * *", timezone="Europe/London")
    config = SimpleNamespace(
        notify=SimpleNamespace(email=email),
        service=ServiceConfig(),
        feed_and_page_sources=lambda: [],
    )

    async def go() -> object:
        scheduler = Scheduler(SimpleNamespace(config=config))  # type: ignore[arg-type]
        scheduler.start(config)  # type: ignore[arg-type]
        try:
            job = scheduler.aps.get_job("digest")
            assert job is not None
            return job
        finally:
            scheduler.shutdown()

    job = asyncio.run(go())
    trigger = job.trigger  # type: ignore[attr-defined]
    assert isinstance(trigger, CronScheduleTrigger)
    assert str(trigger.schedule.zone) == "Europe/London"
    expected = CronSchedule("30 1 * * *", "Europe/London").next_after(datetime.now(UTC))
    assert job.next_run_time == expected  # type: ignore[attr-defined]
