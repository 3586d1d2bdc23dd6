"""A web process that stops wakes what waits on its event loop (agentplatform.draining)."""

import asyncio

import pytest

from agentplatform import draining


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_a_wait_that_ends_gives_its_result():
    async def scenario():
        return await draining.unless_draining(asyncio.sleep(0.01, result="done"))

    assert run(scenario()) == (True, "done")


def test_draining_stops_every_wait_at_once_and_cancels_what_it_awaited():
    async def scenario():
        loop = asyncio.get_running_loop()
        never: asyncio.Future[str] = loop.create_future()
        waits = [asyncio.ensure_future(draining.unless_draining(never)) for _ in range(3)]
        waits.append(asyncio.ensure_future(draining.unless_draining(asyncio.sleep(60))))
        await asyncio.sleep(0.01)
        draining.start(loop)
        results = await asyncio.wait_for(asyncio.gather(*waits), 5)
        return results, never.cancelled(), [w.cancelling() for w in waits]

    results, cancelled, cancelling = run(scenario())
    assert results == [(False, None)] * 4
    assert cancelled
    assert cancelling == [0, 0, 0, 0]  # the tasks go on as if never cancelled


def test_once_draining_a_new_wait_ends_at_once():
    async def scenario():
        draining.start(asyncio.get_running_loop())
        return await asyncio.wait_for(draining.unless_draining(asyncio.sleep(60)), 5)

    assert run(scenario()) == (False, None)


def test_a_cancellation_from_elsewhere_still_cancels_the_waiter():
    async def scenario():
        wait = asyncio.ensure_future(draining.unless_draining(asyncio.sleep(60)))
        await asyncio.sleep(0.01)
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
        return wait.cancelled()

    assert run(scenario())


def test_a_task_stopped_by_draining_and_cancelled_from_elsewhere_is_cancelled():
    async def scenario():
        loop = asyncio.get_running_loop()
        wait = asyncio.ensure_future(draining.unless_draining(asyncio.sleep(60)))
        await asyncio.sleep(0.01)
        draining.start(loop)
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
        return wait.cancelled()

    assert run(scenario())


def test_draining_one_loop_leaves_another_loops_waits_alone():
    async def other():
        return await draining.unless_draining(asyncio.sleep(0.05, result="done"))

    async def scenario():
        draining.start(asyncio.get_running_loop())
        return await draining.unless_draining(asyncio.sleep(60))

    assert run(scenario()) == (False, None)
    assert run(other()) == (True, "done")
