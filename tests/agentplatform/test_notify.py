"""Waiting for a run's completion on an event loop: one subscription serves every waiter,
and a completion is never missed, whether it came before the wait, during it, or before the
subscription was in place (real Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis
from django.conf import settings

from agentplatform import notify


def _name() -> str:
    return f"run-{uuid.uuid4()}"


def test_a_completion_before_the_subscription_is_found_in_redis() -> None:
    async def scenario() -> bool:
        name = _name()
        notify.signal_done(name)  # before this loop's subscription exists
        waiters = notify.Completions(settings.REDIS_URL)
        return await waiters.wait(name, timeout=5.0)

    assert asyncio.run(scenario()) is True


def test_a_run_created_after_the_subscription_is_heard_whether_it_finishes_before_or_during_the_wait() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        waiters = notify.Completions(settings.REDIS_URL)
        assert await waiters.wait(_name(), timeout=0.1) is False  # subscribes; nothing for it
        created = time.monotonic()  # both runs exist only from here on
        early, late = _name(), _name()
        notify.signal_done(early)
        while early not in waiters._heard:  # the subscription hears it before anyone waits
            await asyncio.sleep(0.01)
        redis.Redis.from_url(settings.REDIS_URL).delete(notify._key(early))  # so only what was heard tells
        finished_before = await waiters.wait(early, timeout=5.0, since=created)
        waiting = asyncio.create_task(waiters.wait(late, timeout=5.0, since=created))
        await asyncio.sleep(0.1)
        notify.signal_done(late)
        finished_during = await waiting
        return finished_before, finished_during, waiters.waiting == 0

    assert asyncio.run(scenario()) == (True, True, True)


def test_a_run_that_does_not_finish_is_a_timeout_not_an_error() -> None:
    async def scenario() -> bool:
        waiters = notify.Completions(settings.REDIS_URL)
        return await waiters.wait(_name(), timeout=0.3, since=time.monotonic())

    assert asyncio.run(scenario()) is False


def test_a_withdrawn_completion_is_waited_for_again() -> None:
    # A run that paused (done), then was resumed (withdrawn), then finished (done again)
    async def scenario() -> tuple[bool, bool, bool]:
        waiters = notify.Completions(settings.REDIS_URL)
        assert await waiters.wait(_name(), timeout=0.1) is False  # subscribes
        created, name = time.monotonic(), _name()
        notify.signal_done(name)
        paused = await waiters.wait(name, timeout=5.0, since=created)
        notify.withdraw_done(name)
        while name in waiters._heard:  # the subscription hears the withdrawal
            await asyncio.sleep(0.01)
        resumed = await waiters.wait(name, timeout=0.3, since=created)
        waiting = asyncio.create_task(waiters.wait(name, timeout=5.0))  # asks Redis too: nothing there
        await asyncio.sleep(0.1)
        notify.signal_done(name)
        return paused, resumed, await waiting

    assert asyncio.run(scenario()) == (True, False, True)
