"""Starting runs (with idempotency keys), waiting for them, cancelling them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from agentplatform import dependencies, notify, sql
from agentplatform.conf import platform_settings
from agentplatform.draining import unless_draining
from agentplatform.sdk.models import ChatMessage
from agentplatform.users import User
from agents import selectors
from agents.errors import (
    ApprovalPending,
    IdempotencyKeyReused,
    InputTooLarge,
    Overloaded,
    RunFailure,
    RunNotActive,
    RunNotFound,
    SessionAgentMismatch,
    SessionBusy,
)
from agents.models import (
    ACTIVE_RUN_STATUSES,
    Agent,
    ApiKey,
    IdempotencyKey,
    IfBusy,
    Message,
    Run,
    RunStatus,
    Schedule,
    Session,
)
from agents.services import limits
from agents.services.agents import runnable
from agents.services.dispatch import dispatch_on_commit
from agents.services.endings import finish, outcome
from agents.services.record import RunRecord, append_messages
from approvals import selectors as approval_selectors

logger = logging.getLogger(__name__)


def start_run(
    *,
    owner: User,
    api_key: ApiKey | None,
    agent_name: str,
    input: str,  # noqa: A002  # the API's name for it
    session_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
    if_busy: IfBusy = IfBusy.REJECT,
    idempotency_key: str | None = None,
    schedule: Schedule | None = None,
    history: Sequence[ChatMessage] = (),
    session_metadata: dict[str, Any] | None = None,
) -> Run:
    """Create the queued run and its user message in one transaction; a worker executes it.

    `history` (only for a new session) is the conversation before `input`, written to the
    new session, before the run, in the same transaction: the run reads it as the session's
    earlier messages. `session_metadata` (only for a new session) is the new session's.

    With an idempotency key, a request the caller already made answers its run again (an
    identical body) or 422 (a different one), and creates nothing.

    While Redis or the broker does not answer, nothing is written (redis.RedisError: 503).
    Should the broker fail after the check, the run stays stored and queued and is answered
    with its id: the publish on commit fails within its timeout and is logged, and the reaper
    hands the run to the broker again (RUN_REQUEUE_SECONDS).
    """
    if (history or session_metadata) and session_id is not None:
        raise ValueError("history and session_metadata start a new session: pass no session_id with them")
    fingerprint = _fingerprint(agent_name, input, session_id, metadata, history)
    if idempotency_key is not None:
        earlier = selectors.idempotent_run(owner, idempotency_key)
        if earlier is not None:
            return _replay(earlier, fingerprint)
    if len(input) > platform_settings().MAX_INPUT_CHARS:
        raise InputTooLarge(
            f"input is {len(input)} characters; the limit is {platform_settings().MAX_INPUT_CHARS}.",
            details={"limit": platform_settings().MAX_INPUT_CHARS},
        )
    agent = selectors.get_agent(agent_name, api_key)
    runnable(agent)
    _admit(api_key)
    run_id = uuid4()
    limits.admit_run(owner, api_key, run_id)
    try:
        return _create_run(
            run_id=run_id,
            owner=owner,
            api_key=api_key,
            agent=agent,
            text=input,
            session_id=session_id,
            metadata=metadata or {},
            if_busy=if_busy,
            idempotency=(idempotency_key, fingerprint) if idempotency_key is not None else None,
            schedule=schedule,
            history=history,
            session_metadata=session_metadata or {},
        )
    except _IdempotencyRace:  # the same key, sent twice at once: the other request won
        limits.release_run(owner, api_key, run_id)
        earlier = selectors.idempotent_run(owner, idempotency_key or "")
        assert earlier is not None
        return _replay(earlier, fingerprint)
    except BaseException:  # refused (session busy, ...): the run was not written
        limits.release_run(owner, api_key, run_id)
        raise


def _admit(api_key: ApiKey | None) -> None:
    """Refuse a new run, before anything is written, while too many wait for a worker: in
    the deployment, or of this key (bounded counts: their cost does not grow with the line);
    or while the broker, which must take it, does not answer."""
    dependencies.require_redis()
    conf = platform_settings()
    # One statement over at most MAX_QUEUED_RUNS rows: exact below the deployment's limit,
    # which is the only case where the key's count matters.
    key_id = api_key.pk if api_key is not None else None
    total, mine = selectors.queued_counts(key_id, conf.MAX_QUEUED_RUNS)
    if total >= conf.MAX_QUEUED_RUNS:
        raise Overloaded(details={"queued_limit": conf.MAX_QUEUED_RUNS, "scope": "deployment"})
    if key_id is not None and mine >= conf.MAX_QUEUED_RUNS_PER_KEY:
        message = "This API key has too many runs waiting for a worker; try again shortly."
        raise Overloaded(message, details={"queued_limit": conf.MAX_QUEUED_RUNS_PER_KEY, "scope": "api_key"})


class _IdempotencyRace(Exception):
    pass


def _fingerprint(
    agent_name: str, text: str, session_id: UUID | None, metadata: dict[str, Any] | None, history: Sequence[ChatMessage]
) -> str:
    body: dict[str, Any] = {
        "agent": agent_name,
        "input": text,
        "session_id": str(session_id or ""),
        "metadata": metadata or {},
    }
    if history:  # (absent otherwise: the fingerprints of requests without one stay as they were)
        body["history"] = [dataclasses.asdict(message) for message in history]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _replay(earlier: tuple[Run, str], fingerprint: str) -> Run:
    run, request_hash = earlier
    if request_hash != fingerprint:
        raise IdempotencyKeyReused(details={"run_id": str(run.pk)})
    return run


def _create_run(
    *,
    run_id: UUID,
    owner: User,
    api_key: ApiKey | None,
    agent: Agent,
    text: str,
    session_id: UUID | None,
    metadata: dict[str, Any],
    if_busy: IfBusy,
    idempotency: tuple[str, str] | None,
    schedule: Schedule | None,
    history: Sequence[ChatMessage] = (),
    session_metadata: dict[str, Any] | None = None,
) -> Run:
    """The queued run. Its user message is written when a worker starts it, since the
    positions after the session's last message belong to the run in progress."""
    with transaction.atomic():
        if session_id is None:
            session = Session(
                owner=owner, agent=agent, title=text[:80], message_count=len(history), metadata=session_metadata or {}
            )
            sql.insert([session])  # on every new session's path: SQL, see `agentplatform.sql`
            if history:  # the conversation so far, at positions 0, 1, ... (the run's start after)
                append_messages(session.pk, None, 0, list(history))
        else:
            # The session's row lock serializes new input to it, so the busy check holds.
            session = selectors.lock_session(owner, session_id)
            if session.agent_id != agent.pk:
                raise SessionAgentMismatch(
                    f"Session {session.pk} belongs to agent {session.agent.name!r}, not {agent.name!r}."
                )
            _make_way(session, if_busy)
        run = Run(
            id=run_id,
            session=session,
            agent=agent,
            owner=owner,
            api_key=api_key,
            status=RunStatus.QUEUED,
            input=text,
            metadata=metadata,
            model=agent.model,
            enqueued_at=timezone.now(),
            schedule=schedule,
        )
        sql.insert([run])
        if idempotency is not None:
            _remember(owner, run, *idempotency)
        dispatch_on_commit(run.pk)  # `enqueued_at` is set above, with the row
    return run


def _make_way(session: Session, if_busy: IfBusy) -> None:
    """Apply the caller's policy to the session's active runs (under the session's lock).
    A session waiting for approvals is frozen, whatever the policy."""
    pending = approval_selectors.pending_ids(session.pk)
    if pending:
        raise ApprovalPending(
            "This session waits for approval decisions; new input is refused until they are made.",
            details={"approval_ids": pending},
        )
    active = list(Run.objects.filter(session=session, status__in=ACTIVE_RUN_STATUSES).order_by("created_at"))
    if not active or if_busy == IfBusy.ENQUEUE:
        return
    if if_busy == IfBusy.REJECT:
        running = next((run for run in active if run.status == RunStatus.RUNNING), active[0])
        raise SessionBusy(
            "This session has an active run; send if_busy=enqueue or interrupt, or wait for it.",
            details={"run_id": str(running.pk)},
        )
    for run in active:
        _cancel(run)


def _remember(owner: User, run: Run, key: str, fingerprint: str) -> None:
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(owner=owner, key=key, request_hash=fingerprint, run=run)
    except IntegrityError:
        raise _IdempotencyRace from None  # rolls back this run: the other one stands


def cancel_run(owner: User, run_id: UUID | str) -> Run:
    """Cancel a run: a queued one at once; a running one at its next step, on whichever worker."""
    with transaction.atomic():
        run = selectors.lock_run(owner, run_id)
        if run.status not in ACTIVE_RUN_STATUSES:
            raise RunNotActive(f"The run is {run.status}; only a queued or running run can be cancelled.")
        return _cancel(run)


def cancel_session_run(owner: User, session_id: UUID, run_id: UUID | None) -> Run:
    """Cancel a session's run: the one named, or its active one."""
    if run_id is None:
        active = selectors.owned_runs(owner).filter(session_id=session_id, status__in=ACTIVE_RUN_STATUSES)
        run_id = active.order_by("created_at").values_list("pk", flat=True).first()
        if run_id is None:
            raise RunNotActive("The session has no active run.")
    elif not selectors.owned_runs(owner).filter(pk=run_id, session_id=session_id).exists():
        raise RunNotFound(f"No run {run_id} in this session.")
    return cancel_run(owner, run_id)


def _cancel(run: Run) -> Run:
    if run.status in (RunStatus.QUEUED, RunStatus.AWAITING_APPROVAL):  # no worker holds it
        record = RunRecord.resume(run)
        finish(record, outcome(RunStatus.CANCELLED, RunFailure.CANCELLED, "Cancelled.", None))
        return record.run
    if run.cancel_requested_at is None:
        run.cancel_requested_at = timezone.now()
        run.save(update_fields=["cancel_requested_at"])
    transaction.on_commit(lambda: notify.raise_flag(f"cancel:{run.pk}"), robust=True)
    return run


@dataclasses.dataclass(frozen=True, slots=True)
class Awaited:
    """What a request waiting for its run keeps of it: not the run, which refers to its
    session, owner and key (a web process holds thousands of waiting requests at once)."""

    pk: UUID
    created_at: datetime
    session_id: UUID
    agent: Agent  # its response names it

    @classmethod
    def of(cls, run: Run) -> Awaited:
        return cls(run.pk, run.created_at, run.session_id, run.agent)


def wait_for_run(run: Run, timeout: float) -> tuple[Run, list[Message]]:
    """The run once a worker has finished it, or as it is when `timeout` runs out (in this
    thread: under WSGI; the ASGI handler awaits `await_run` instead)."""
    if not connection.in_atomic_block:
        connection.close()  # hold no pooled connection while waiting
    notify.wait_done(str(run.pk), timeout)
    return read_back(run)


async def await_run(run: Run | Awaited, timeout: float) -> bool:
    """Wait on the event loop (no thread, no connection) until a worker has finished the run;
    False at the timeout, when the process already holds MAX_WAITERS, or when Redis cannot be
    reached, or when the web process stops: the caller then answers with the run as it is
    (it was stored)."""
    waiters = notify.completions()
    if waiters.waiting >= platform_settings().MAX_WAITERS:
        return False
    # It cannot have finished before it was created (give or take the clocks' difference).
    age = (timezone.now() - run.created_at).total_seconds()
    created = time.monotonic() - age - CLOCK_MARGIN
    try:
        # A web process that stops answers at once, with the run as it is.
        _, done = await unless_draining(waiters.wait(str(run.pk), timeout, since=created))
        return bool(done)
    except (RedisError, OSError, TimeoutError):
        logger.warning("waiting for run %s failed; answering with it as it is", run.pk, exc_info=True)
        return False


CLOCK_MARGIN = 1.0  # seconds: the wall clock and the monotonic one may disagree by less


def read_back(run: Run | Awaited) -> tuple[Run, list[Message]]:
    """A run as it is now, with its messages."""
    fresh, messages = selectors.run_with_messages(run.pk)
    fresh.agent = run.agent  # the caller has it
    return fresh, messages
