"""A worker killed with SIGKILL after the receiver accepted a webhook but before the store
recorded it: after a restart the alert is re-sent at most once, with the same webhook-id."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.notify.test_notify_support import (
    SECRET,
    FakeClock,
    add_alerts,
    no_jitter,
    notify_config,
    open_store,
    reference_verify,
    scored,
    webhook,
)
from tests.support import ROOT, LoopbackHTTP, Request, Response
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker

CHILD = """
import asyncio, sys
from tests.notify.test_notify_support import notify_config, webhook
from watchtower.notify.outbox import DeliveryWorker
from watchtower.store import Store

async def main() -> None:
    store = Store.open(sys.argv[1])
    notify = notify_config([webhook(sys.argv[2])])
    async with DeliveryWorker(store, notify) as worker:
        await worker.run_once()
    print("finished", flush=True)

asyncio.run(main())
"""


def test_sigkill_between_accept_and_mark_sent_resends_once_with_same_id(
    store_url: str, http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    received = threading.Event()
    release = threading.Event()

    def accept_then_hang(req: Request) -> Response:
        received.set()  # the receiver has the alert (and would act on it)...
        release.wait(20)  # ...but its 2xx does not reach the worker before the kill
        return Response(200)

    http_server.routes["/hook"] = accept_then_hang
    hook_url = http_server.url("/hook")
    notify = notify_config([webhook(hook_url)])
    with open_store(store_url) as store:
        [alert_id] = add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, store_url, hook_url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert received.wait(30), child.stderr.read().decode() if child.poll() else "no request"
        child.kill()  # SIGKILL
        child.wait(10)
    finally:
        release.set()
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -9

    http_server.routes["/hook"] = Response(200)
    clock = FakeClock(time.time())
    with open_store(store_url) as store:

        async def pass_once() -> DeliveryStats:
            async with DeliveryWorker(store, notify, clock=clock, rng=no_jitter) as w:
                return await w.run_once()

        assert asyncio.run(pass_once()) == DeliveryStats()  # the dead worker's lease holds
        clock.advance(5 * 60 + 1)
        assert asyncio.run(pass_once()) == DeliveryStats(sent=1)
        clock.advance(86400)
        assert asyncio.run(pass_once()) == DeliveryStats()
        assert store.counts()["deliveries_sent"] == 1

    first, second = http_server.requests_to("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    reference_verify(SECRET, second.headers, second.body, now=clock.t - 86400)
    assert f'"alert_id":{alert_id}' in second.body.decode()
