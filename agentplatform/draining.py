"""A web process that is stopping ("draining", agentplatform.web): what waits on its event
loop (a stream, a request waiting for its run) stops waiting and answers with what it has."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


@functools.cache
def _event(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    return asyncio.Event()


def start(loop: asyncio.AbstractEventLoop) -> None:
    """The process stops: wake every waiter on `loop` (call it on that loop's thread)."""
    _event(loop).set()


async def unless_draining(awaitable: Awaitable[T]) -> tuple[bool, T | None]:
    """(True, its result) once `awaitable` is done; (False, None) as soon as the process
    starts draining, `awaitable` cancelled then."""
    task = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(_event(asyncio.get_running_loop()).wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled() or not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False, None
    return True, task.result()
