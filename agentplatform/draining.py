"""A web process that is stopping ("draining", agentplatform.web): what waits on its event
loop (a stream, a request waiting for its run) stops waiting and answers with what it has."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class _Waiters:
    """The tasks waiting in `unless_draining` on one event loop, and those it stopped."""

    def __init__(self) -> None:
        self.draining = False
        self.waiting: set[asyncio.Task[Any]] = set()
        self.stopped: set[asyncio.Task[Any]] = set()


@functools.cache
def _waiters(loop: asyncio.AbstractEventLoop) -> _Waiters:
    return _Waiters()


def start(loop: asyncio.AbstractEventLoop) -> None:
    """The process stops: wake every waiter on `loop` (call it on that loop's thread)."""
    waiters = _waiters(loop)
    waiters.draining = True
    for task in waiters.waiting:
        waiters.stopped.add(task)
        task.cancel()
    waiters.waiting.clear()


async def unless_draining(awaitable: Awaitable[T]) -> tuple[bool, T | None]:
    """(True, its result) once `awaitable` is done; (False, None) as soon as the process
    starts draining, `awaitable` cancelled then.

    The wait is the caller's own task, stopped by cancelling it (as `asyncio.timeout` does):
    no task and no future of its own per wait, which a process holding thousands of waiting
    requests, or streaming thousands of events, would pay for each."""
    task = asyncio.current_task()
    assert task is not None, "unless_draining is awaited in a task"
    waiters = _waiters(asyncio.get_running_loop())
    if waiters.draining:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        return False, None
    waiters.waiting.add(task)
    try:
        result = await awaitable
    except asyncio.CancelledError:
        if _was_stopped(waiters, task) and task.uncancel() == 0:  # stopped by draining, and by nothing else
            return False, None
        raise
    finally:
        waiters.waiting.discard(task)
    if _was_stopped(waiters, task):  # the awaitable finished anyway, the stop swallowed
        task.uncancel()
    return True, result


def _was_stopped(waiters: _Waiters, task: asyncio.Task[Any]) -> bool:
    if task in waiters.stopped:
        waiters.stopped.discard(task)
        return True
    return False
