"""Beat as a thread of the worker: the embedded topology's one scheduler, without a process.

`celery worker --beat-thread` runs beat's service (the settings' scheduler: the schedule in
the database) in a thread of the worker process; the distributed topology runs `celery beat`
as its own process instead. Celery's `--beat` would fork a process from the worker, which by
then has threads and connections; a thread costs a few MiB where a process costs a Django.

Beat's loop sleeps up to its interval between ticks and cannot be woken, so the thread ticks
at least every STOP_WITHIN seconds (Celery's own threaded beat does the same) and the worker
stops within that. If the thread dies, the worker stops too (SIGTERM to itself): the
supervisor then stops the rest instead of running on without a scheduler.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import click
from celery import Celery, beat, bootsteps

logger = logging.getLogger(__name__)

STOP_WITHIN = 1.0  # seconds: beat's longest sleep between ticks
OPTION = click.Option(
    ("--beat-thread",), is_flag=True, default=False, help="Run beat (the scheduler) in a thread of this worker."
)


class BeatThread(threading.Thread):
    def __init__(self, app: Celery, scheduler: str) -> None:
        super().__init__(name="beat", daemon=True)
        self.service = beat.Service(app, max_interval=STOP_WITHIN, scheduler_cls=scheduler)
        self.stopping = False

    def run(self) -> None:
        try:
            self.service.start()
        finally:
            if not self.stopping:
                logger.error("beat stopped on its own; stopping the worker")
                os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        self.stopping = True
        self.service.stop()
        self.join(timeout=STOP_WITHIN * 10)


class BeatThreadStep(bootsteps.StartStopStep):
    """The worker's step that starts and stops the thread (with `--beat-thread`)."""

    label = "Beat thread"
    conditional = True

    def __init__(self, worker: Any, beat_thread: bool = False, **kwargs: Any) -> None:
        self.enabled = beat_thread
        super().__init__(worker, **kwargs)

    def create(self, worker: Any) -> BeatThread:
        return BeatThread(worker.app, worker.scheduler)


def install(app: Celery) -> None:
    """Give `app`'s worker the `--beat-thread` option."""
    app.user_options["worker"].add(OPTION)
    app.steps["worker"].add(BeatThreadStep)
