"""Runs the embedded topology's processes in the foreground and stops them together.

SIGINT (Ctrl-C) or SIGTERM stops every child, newest first: each gets SIGTERM, then
SIGKILL after a grace period (the services others depend on, once those have exited). If
a child dies on its own, the others are stopped too and the supervisor exits non-zero, so
a broken process is never silently left half-running.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    ready: Callable[[], bool] | None = None  # started processes after this one wait for it
    service: bool = False  # the processes started after it write to it: it stops once they have exited
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's environment
    grace: float | None = None  # seconds it may take to stop (default: the supervisor's)


READY_TIMEOUT_SECONDS = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """One listening socket that several server processes accept on (the kernel spreads them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def python_command(*args: str) -> list[str]:
    return [sys.executable, *args]


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM if the supervisor itself is killed."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_environment() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")
    return env


class ChildFailedError(Exception):
    pass


class Supervisor:
    def __init__(self, specs: list[ProcessSpec], *, grace_seconds: float = 10.0) -> None:
        self.specs = specs
        self.grace_seconds = grace_seconds
        self.children: list[tuple[ProcessSpec, subprocess.Popen[bytes]]] = []
        self.stop_requested: int | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = signum

    def start(self) -> None:
        env = child_environment()
        for spec in self.specs:
            process = subprocess.Popen(  # noqa: S603  # argv built from our own specs
                spec.argv,
                env={**env, **spec.env},
                pass_fds=spec.pass_fds,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509  # it only calls prctl
            )
            logger.info("started %s (pid %s)", spec.name, process.pid)
            self.children.append((spec, process))
            if spec.ready is not None:
                self._wait_ready(spec, process)

    def _wait_ready(self, spec: ProcessSpec, process: subprocess.Popen[bytes]) -> None:
        assert spec.ready is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not spec.ready():
            if process.poll() is not None or time.monotonic() > deadline or self.stop_requested is not None:
                raise ChildFailedError(f"{spec.name} did not become ready")
            time.sleep(0.05)

    def run(self, ready: Callable[[], bool], on_ready: Callable[[], None]) -> int:
        """Start, announce once `ready()` holds, wait for a signal or a dead child; stop all."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self.start()
            except ChildFailedError as exc:
                logger.error("%s; stopping the rest", exc)
                return 1
            announced = False
            while self.stop_requested is None:
                dead = [(spec, p) for spec, p in self.children if p.poll() is not None]
                if dead:
                    spec, process = dead[0]
                    logger.error("%s exited with code %s; stopping the rest", spec.name, process.returncode)
                    return 1
                if not announced and ready():
                    on_ready()
                    announced = True
                time.sleep(0.2)
            return 0
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        """Newest first. A service (Redis, the span sink) stops only once every process
        started after it has exited, so that their last writes (the spans a worker flushes
        as it exits) still reach it."""
        group: list[tuple[ProcessSpec, subprocess.Popen[bytes]]] = []
        for spec, process in reversed(self.children):
            if spec.service:
                self._stop_together(group)
                group = []
            group.append((spec, process))
            if spec.service:
                self._stop_together(group)
                group = []
        self._stop_together(group)
        self.children.clear()

    def _stop_together(self, children: list[tuple[ProcessSpec, subprocess.Popen[bytes]]]) -> None:
        for _, process in children:
            if process.poll() is None:
                process.terminate()
        started = time.monotonic()
        for spec, process in children:
            grace = spec.grace if spec.grace is not None else self.grace_seconds
            try:
                process.wait(timeout=max(0.0, started + grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %ss; killing it", spec.name, grace)
                process.kill()
                process.wait()
