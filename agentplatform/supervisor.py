"""Runs the embedded topology's processes in the foreground and stops them together.

SIGINT (Ctrl-C) or SIGTERM stops every child, newest first: each gets SIGTERM, then
SIGKILL after a grace period (the services others depend on, once those have exited). A
child that dies on its own (the OOM killer, a crash) is restarted after a backoff (1 s,
doubled at each crash in a row, up to 30 s); one that crashes MAX_CRASHES times within
CRASH_WINDOW seconds is broken, not unlucky: then everything stops and the supervisor
exits non-zero.

It imports nothing but the standard library: `manage.py up` does its Django work (migrate,
sync the agents, the banner's text), then replaces itself with `python -m
agentplatform.supervisor` (`exec_plan`), which holds a few MiB instead of all of Django for
as long as the platform runs.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    ready: str | None = None  # the processes started after it wait until it answers here (`answers`)
    service: bool = False  # the processes started after it write to it: it stops once they have exited
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's environment
    grace: float | None = None  # seconds it may take to stop (default: the supervisor's)


@dataclass(frozen=True)
class Plan:
    """What the supervisor runs, handed from `manage.py up` to `python -m agentplatform.supervisor`."""

    specs: list[ProcessSpec]
    health: str  # an http:// URL that answers 200 once the platform serves
    banner: str  # written to stdout once it does
    log_level: str
    log_format: str
    grace_seconds: float = 10.0
    held_fds: list[int] = field(default_factory=list)  # open as long as the supervisor runs (a lock)

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Plan:
        data = json.loads(text)
        specs = [ProcessSpec(**{**spec, "pass_fds": tuple(spec["pass_fds"])}) for spec in data.pop("specs")]
        return cls(specs=specs, **data)


PLAN_VARIABLE = "AGENTPLATFORM_SUPERVISOR_PLAN"
READY_TIMEOUT_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 1.0


def answers(url: str) -> bool:
    """Whether a server answers: `redis://host:port` replies to PING, `http://host:port/path`
    replies 200 to a GET. Plain sockets: the supervisor stays free of client libraries."""
    parts = urlsplit(url)
    request, expected = (
        (b"PING\r\n", b"+PONG")
        if parts.scheme == "redis"
        else (f"GET {parts.path or '/'} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode(), b"HTTP/1.")
    )
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=PROBE_TIMEOUT_SECONDS) as sock:
            sock.sendall(request)
            line = sock.makefile("rb").readline()
    except OSError:
        return False
    if parts.scheme == "redis":
        return line.startswith(expected)
    fields = line.split()
    return len(fields) > 1 and fields[0].startswith(expected) and fields[1] == b"200"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Connections the kernel holds for a web process before it accepts them. Twisted's default is
# 50: a burst of new clients beyond that (thousands of readers at once) had their connection
# attempts dropped and retried after seconds, and many got no answer at all, not even a 503.
LISTEN_BACKLOG = 2048


def listening_socket(host: str, port: int, backlog: int = LISTEN_BACKLOG) -> socket.socket:
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
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths if root in paths else [root, *paths])
    env.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")
    return env


class ChildFailedError(Exception):
    pass


RESTART_DELAY = 1.0  # seconds before restarting a child that died; doubled at each crash in a row
MAX_RESTART_DELAY = 30.0
CRASH_WINDOW = 60.0  # seconds
MAX_CRASHES = 5  # crashes of one child within CRASH_WINDOW: it is broken, stop everything


@dataclass
class Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    crashes: list[float] = field(default_factory=list)  # when it died on its own (monotonic), recently
    restart_at: float | None = None  # dead, restarted at this time


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(
        self, specs: list[ProcessSpec], *, grace_seconds: float = 10.0, restart_delay: float = RESTART_DELAY
    ) -> None:
        self.specs = specs
        self.grace_seconds = grace_seconds
        self.restart_delay = restart_delay
        self.children: list[Child] = []
        self.stop_requested: int | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = signum

    def start(self) -> None:
        for spec in self.specs:
            child = Child(spec, self._spawn(spec))
            self.children.append(child)
            if spec.ready is not None:
                self._wait_ready(spec, child.process)

    def _spawn(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(  # noqa: S603  # argv built from our own specs
            spec.argv,
            env={**child_environment(), **spec.env},
            pass_fds=spec.pass_fds,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  # it only calls prctl
        )
        logger.info("started %s (pid %s)", spec.name, process.pid)
        return process

    def _wait_ready(self, spec: ProcessSpec, process: subprocess.Popen[bytes]) -> None:
        assert spec.ready is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not answers(spec.ready):
            if process.poll() is not None or time.monotonic() > deadline or self.stop_requested is not None:
                raise ChildFailedError(f"{spec.name} did not become ready")
            time.sleep(0.05)

    def run(self, ready: Callable[[], bool], on_ready: Callable[[], None]) -> int:
        """Start, announce once `ready()` holds, restart children that die, until a signal
        (0) or a child that keeps crashing (1); then stop all."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self.start()
            except ChildFailedError as exc:
                logger.error("%s; stopping the rest", exc)
                return 1
            announced = False
            while self.stop_requested is None:
                if not self._tend(time.monotonic()):
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

    def _tend(self, now: float) -> bool:
        """Restart the children whose backoff is over; schedule a restart for those that
        died. False once a child has crashed too often."""
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.process, child.restart_at = self._spawn(child.spec), None
            elif (code := child.process.poll()) is not None:
                child.crashes = [*(t for t in child.crashes if now - t < CRASH_WINDOW), now]
                if len(child.crashes) >= MAX_CRASHES:
                    logger.error(
                        "%s %s: %d crashes within %gs; giving up, stopping everything",
                        child.spec.name, _exit_description(code), len(child.crashes), CRASH_WINDOW,
                    )  # fmt: skip
                    return False
                delay = min(self.restart_delay * 2 ** (len(child.crashes) - 1), MAX_RESTART_DELAY)
                logger.warning("%s %s; restarting it in %gs", child.spec.name, _exit_description(code), delay)
                child.restart_at = now + delay
        return True

    def stop(self) -> None:
        """Newest first. A service (Redis, the span sink) stops only once every process
        started after it has exited, so that their last writes (the spans a worker flushes
        as it exits) still reach it."""
        group: list[Child] = []
        for child in reversed(self.children):
            if child.spec.service:
                self._stop_together(group)
                group = []
            group.append(child)
            if child.spec.service:
                self._stop_together(group)
                group = []
        self._stop_together(group)
        self.children.clear()

    def _stop_together(self, children: list[Child]) -> None:
        for child in children:
            if child.process.poll() is None:
                child.process.terminate()
        started = time.monotonic()
        for child in children:
            grace = child.spec.grace if child.spec.grace is not None else self.grace_seconds
            try:
                child.process.wait(timeout=max(0.0, started + grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %ss; killing it", child.spec.name, grace)
                child.process.kill()
                child.process.wait()


def exec_plan(plan: Plan) -> None:
    """Replace this process (its pid, its terminal, its listening socket stay) with a
    supervisor that runs `plan`. Does not return."""
    for fd in {*plan.held_fds, *(fd for spec in plan.specs for fd in spec.pass_fds)}:
        os.set_inheritable(fd, True)  # the listening socket (for the web processes), the lock
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**child_environment(), PLAN_VARIABLE: plan.dumps()}
    os.execve(sys.executable, [sys.executable, "-m", __name__], env)  # noqa: S606  # our own interpreter and module


def main() -> None:
    if PLAN_VARIABLE not in os.environ:
        sys.exit("This is the supervisor that `manage.py up` starts, with what to run: run `manage.py up`.")
    plan = Plan.loads(os.environ.pop(PLAN_VARIABLE))
    logging.basicConfig(level=plan.log_level, format=plan.log_format)

    def announce() -> None:
        sys.stdout.write(plan.banner)
        sys.stdout.flush()

    code = Supervisor(plan.specs, grace_seconds=plan.grace_seconds).run(
        ready=lambda: answers(plan.health), on_ready=announce
    )
    sys.stdout.write("agentplatform stopped.\n")
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
