"""The readiness checks' look at the registry, off the event loop and bounded in time
(``serving.readiness``)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from manymodels.exceptions import RegistryError
from serving import readiness
from serving.readiness import NotReady, RegistryPing


def test_a_hung_look_at_the_registry_file_holds_neither_the_loop_nor_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``/readyz`` did its ``stat`` of the registry's file on the event loop: on a hung NFS
    mount that froze every request of the router, not only the probe. It runs in the ping's
    thread now, under the ping's bound: the check says "not ready" after it, and the loop
    goes on running meanwhile. The look here waits for an event, as a ``stat`` on a mount
    whose server is gone waits for it to answer."""
    bound = 2.0  # not the 5 s shipped: the test waits it out; 40 ticks of the loop still fit
    monkeypatch.setattr(readiness, "READY_TIMEOUT_SECONDS", bound)
    mount_back = threading.Event()

    def hung_stat() -> str | None:
        mount_back.wait(60)
        return None

    async def check() -> tuple[NotReady | None, float, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.05)

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        answer = await RegistryPing(lambda: None, replaced=hung_stat).why_not()
        ticker.cancel()
        return answer, time.monotonic() - started, ticks

    try:
        answer, took, ticks = asyncio.run(check())
    finally:
        mount_back.set()
    assert answer == NotReady(f"the registry database did not answer in {bound:g} s")
    assert bound <= took < bound + 2
    assert ticks > bound / 0.05 / 2  # the loop ran all along


def test_a_replaced_file_is_said_before_a_ping_of_the_new_file() -> None:
    """The file first: a ping of the new file (another schema, not a registry) fails for that
    reason, and would be said as an outage that ends by itself."""

    def ping() -> None:
        raise RegistryError("file is not a database")

    answer = asyncio.run(RegistryPing(ping, replaced=lambda: "replaced: restart").why_not())
    assert answer == NotReady("replaced: restart", replaced=True)
    assert asyncio.run(RegistryPing(ping).why_not()) == NotReady("file is not a database")
