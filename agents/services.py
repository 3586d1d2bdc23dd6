"""State changes for agents, sessions, runs and API keys. Views and commands call these."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from agentplatform import notify
from agentplatform.celery import TaskName, app
from agentplatform.conf import platform_settings
from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.agent import ApprovalRequired, RunCancelled
from agentplatform.sdk.models import ChatMessage, ProviderError, ToolCall, Usage
from agentplatform.sdk.tools import ToolPermission
from agents import events, selectors
from agents.errors import (
    AgentDisabled,
    AgentUnavailable,
    IdempotencyKeyReused,
    InputTooLarge,
    InvalidTransition,
    RunNotActive,
    SessionAgentMismatch,
    SessionBusy,
)
from agents.events import Event
from agents.keys import generate_key
from agents.loop import MaxStepsExceeded, run_loop
from agents.models import (
    ACTIVE_RUN_STATUSES,
    RUN_TRANSITIONS,
    Agent,
    ApiKey,
    IdempotencyKey,
    Message,
    Run,
    RunEvent,
    RunStatus,
    Session,
    Tool,
)
from agents.registry import code_agents, model_provider
from agents.runtime import RunContext

logger = logging.getLogger(__name__)


# --- agents -----------------------------------------------------------------------------


def sync_agents(*, using: str = "default") -> dict[str, int]:
    """Mirror the code's agents and tools into rows, keeping operators' overrides."""
    agents = code_agents()
    with transaction.atomic(using=using):
        for agent in agents.values():
            row, _ = Agent.objects.using(using).update_or_create(
                name=agent.name,
                defaults={
                    "description": agent.description,
                    "code_model": agent.model_label,
                    "code_instructions": agent.instructions,
                    "custom_turn": agent.overrides_run,
                    "registered": True,
                },
            )
            for tool in agent.tools.values():
                Tool.objects.using(using).update_or_create(
                    agent=row,
                    name=tool.name,
                    defaults={
                        "description": tool.description,
                        "parameters": tool.parameters,
                        "code_permission": tool.permission.value,
                        "registered": True,
                    },
                )
            Tool.objects.using(using).filter(agent=row).exclude(name__in=list(agent.tools)).update(registered=False)
        retired = Agent.objects.using(using).exclude(name__in=list(agents)).update(registered=False)
    return {"agents": len(agents), "retired": retired}


def tool_permissions(agent: Agent, code_agent: CodeAgent) -> dict[str, ToolPermission]:
    """Each code tool's permission: the operator's override, else the code's default."""
    overrides = selectors.permission_overrides(agent)
    return {name: ToolPermission(overrides.get(name, tool.permission.value)) for name, tool in code_agent.tools.items()}


def _runnable(agent: Agent) -> CodeAgent:
    if not agent.enabled:
        raise AgentDisabled(f"Agent {agent.name!r} is disabled by an operator.")
    code_agent = code_agents().get(agent.name)
    if code_agent is None:
        raise AgentUnavailable(f"Agent {agent.name!r} is not loaded in this deployment's code.")
    return code_agent


# --- sessions ---------------------------------------------------------------------------


def create_session(*, owner: Any, agent: Agent, title: str = "", metadata: dict[str, Any] | None = None) -> Session:
    return Session.objects.create(owner=owner, agent=agent, title=title, metadata=metadata or {})


def update_session(session: Session, *, title: str | None = None, metadata: dict[str, Any] | None = None) -> Session:
    changed = ["updated_at"]
    if title is not None:
        session.title = title
        changed.append("title")
    if metadata is not None:
        session.metadata = metadata
        changed.append("metadata")
    session.save(update_fields=changed)
    return session


def delete_session(session: Session) -> None:
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        active = Run.objects.filter(session=locked, status__in=ACTIVE_RUN_STATUSES).values_list("pk", flat=True).first()
        if active is not None:
            raise SessionBusy("This session has an active run; wait for it to finish.", details={"run_id": str(active)})
        locked.delete()


# --- runs -------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What a run has written: its messages and events, and where the next ones go."""

    run: Run
    position: int
    seq: int = 0
    messages: list[Message] = field(default_factory=list)

    def write(self, messages: list[ChatMessage], *, before: Iterable[Event] = (), after: Iterable[Event] = ()) -> None:
        """Append messages and the events they stand for, in order, as one change."""
        with transaction.atomic(savepoint=False):
            created = _append(self.run.session_id, self.run.pk, self.position, messages) if messages else []
            derived = [event for message in created for event in events.for_message(message)]
            rows = [
                RunEvent(run_id=self.run.pk, seq=self.seq + offset, type=kind, data=data)
                for offset, (kind, data) in enumerate([*before, *derived, *after], start=1)
            ]
            RunEvent.objects.bulk_create(rows)
        self.position += len(created)
        self.seq += len(rows)
        self.messages.extend(created)


def _append(session_id: UUID, run_id: UUID, start: int, messages: list[ChatMessage]) -> list[Message]:
    """Insert messages at positions `start`, `start + 1`, ... (one statement).

    The run holding the session (one active run per session) owns the positions after
    the session's last message; the unique (session, position) index backs that up.
    """
    rows = [
        Message(
            session_id=session_id,
            run_id=run_id,
            position=start + offset,
            role=message.role,
            content=message.content,
            tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls],
            tool_call_id=message.tool_call_id,
            tool_name=message.name,
            is_error=message.is_error,
        )
        for offset, message in enumerate(messages)
    ]
    return Message.objects.bulk_create(rows)


def start_run(
    *,
    owner: Any,
    api_key: ApiKey | None,
    agent_name: str,
    input: str,  # noqa: A002  # the API's name for it
    session_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Run:
    """Create the queued run and its user message in one transaction; a worker executes it.

    With an idempotency key, a request the caller already made answers its run again (an
    identical body) or 422 (a different one), and creates nothing.
    """
    fingerprint = _fingerprint(agent_name, input, session_id, metadata)
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
    _runnable(agent)
    try:
        return _create_run(
            owner=owner,
            api_key=api_key,
            agent=agent,
            text=input,
            session_id=session_id,
            metadata=metadata or {},
            idempotency=(idempotency_key, fingerprint) if idempotency_key is not None else None,
        )
    except _IdempotencyRace:  # the same key, sent twice at once: the other request won
        earlier = selectors.idempotent_run(owner, idempotency_key or "")
        assert earlier is not None
        return _replay(earlier, fingerprint)


class _IdempotencyRace(Exception):
    pass


def _fingerprint(agent_name: str, text: str, session_id: UUID | None, metadata: dict[str, Any] | None) -> str:
    body = {"agent": agent_name, "input": text, "session_id": str(session_id or ""), "metadata": metadata or {}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _replay(earlier: tuple[Run, str], fingerprint: str) -> Run:
    run, request_hash = earlier
    if request_hash != fingerprint:
        raise IdempotencyKeyReused(details={"run_id": str(run.pk)})
    return run


def _create_run(
    *,
    owner: Any,
    api_key: ApiKey | None,
    agent: Agent,
    text: str,
    session_id: UUID | None,
    metadata: dict[str, Any],
    idempotency: tuple[str, str] | None,
) -> Run:
    try:
        with transaction.atomic():
            if session_id is None:
                session = Session.objects.create(owner=owner, agent=agent, title=text[:80])
            else:
                session = selectors.lock_session(owner, session_id)
                if session.agent_id != agent.pk:
                    raise SessionAgentMismatch(
                        f"Session {session.pk} belongs to agent {session.agent.name!r}, not {agent.name!r}."
                    )
            run = Run.objects.create(
                session=session,
                agent=agent,
                owner=owner,
                api_key=api_key,
                status=RunStatus.QUEUED,
                input=text,
                metadata=metadata,
                model=agent.model,
            )
            start = 0 if session_id is None else selectors.next_position(session.pk)
            _append(session.pk, run.pk, start, [ChatMessage("user", text)])
            if idempotency is not None:
                _remember(owner, run, *idempotency)
            transaction.on_commit(lambda: app.send_task(TaskName.EXECUTE_RUN, args=[str(run.pk)]))
    except IntegrityError:
        if session_id is None:
            raise  # a new session has no other run: this is a bug, not a busy session
        active = Run.objects.filter(session_id=session_id, status__in=ACTIVE_RUN_STATUSES).values_list("pk", flat=True)
        raise SessionBusy(details={"run_id": str(active.first())}) from None
    return run


def _remember(owner: Any, run: Run, key: str, fingerprint: str) -> None:
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(owner=owner, key=key, request_hash=fingerprint, run=run)
    except IntegrityError:
        raise _IdempotencyRace from None  # rolls back this run: the other one stands


def execute_queued_run(run_id: UUID) -> dict[str, Any]:
    """Claim a queued run (only one worker can) and execute it; a small summary for the task."""
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=timezone.now(), lease_expires_at=_lease_end()
        )
        if not claimed:
            status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
            return {"run_id": str(run_id), "executed": False, "status": status}
        run = Run.objects.select_related("agent").get(pk=run_id)
        record = RunRecord(run, position=selectors.next_position(run.session_id), seq=selectors.last_seq(run.pk))
        record.write([], before=[events.run_started(run)])
    try:
        code_agent = _runnable(run.agent)
    except (AgentDisabled, AgentUnavailable) as exc:
        _finish(record, RunContext.detached(run), _outcome(RunStatus.FAILED, exc.code, exc.message, None))
    else:
        with _holding_lease(run.pk):
            _execute(record, run.agent, code_agent)
    return {"run_id": str(run_id), "executed": True, "status": record.run.status}


def _lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=platform_settings().RUN_LEASE_SECONDS)


@contextlib.contextmanager
def _holding_lease(run_id: UUID) -> Iterator[None]:
    """Renew the run's lease every third of its length while the block runs (a heartbeat
    thread, so a long model call or tool call does not let the lease lapse)."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(platform_settings().RUN_LEASE_SECONDS / 3):
            try:
                Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(lease_expires_at=_lease_end())
            finally:
                connections.close_all()

    heartbeat = threading.Thread(target=renew, name=f"lease-{run_id}", daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()


def reap_expired_runs(batch: int = 100) -> dict[str, int]:
    """Fail running runs whose lease expired: their worker died or lost the database."""
    now = timezone.now()
    expired = list(
        Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)[:batch]
    )
    reaped = 0
    for run_id in expired:
        with transaction.atomic():
            run = Run.objects.select_for_update(of=("self",)).select_related("agent").get(pk=run_id)
            if run.status != RunStatus.RUNNING or run.lease_expires_at is None or run.lease_expires_at >= now:
                continue  # finished or renewed since the query
            record = RunRecord(run, position=selectors.next_position(run.session_id), seq=selectors.last_seq(run.pk))
            message = "The worker executing this run stopped before finishing it (its lease expired)."
            details = {"lease_expired_at": run.lease_expires_at.isoformat()}
            _finish(record, RunContext.detached(run), _outcome(RunStatus.FAILED, "worker_lost", message, details))
            reaped += 1
    return {"expired": len(expired), "reaped": reaped}


def cancel_run(owner: Any, run_id: UUID | str) -> Run:
    """Cancel a run: a queued one at once; a running one at its next step, on whichever worker."""
    with transaction.atomic():
        run = selectors.lock_run(owner, run_id)
        if run.status not in ACTIVE_RUN_STATUSES:
            raise RunNotActive(f"The run is {run.status}; only a queued or running run can be cancelled.")
        if run.status == RunStatus.QUEUED:
            record = RunRecord(run, position=selectors.next_position(run.session_id), seq=selectors.last_seq(run.pk))
            _finish(record, RunContext.detached(run), _outcome(RunStatus.CANCELLED, "cancelled", "Cancelled.", None))
            return record.run
        if run.cancel_requested_at is None:
            run.cancel_requested_at = timezone.now()
            run.save(update_fields=["cancel_requested_at"])
        transaction.on_commit(lambda: notify.raise_flag(f"cancel:{run.pk}"))
    return run


def wait_for_run(run: Run, timeout: float) -> tuple[Run, list[Message]]:
    """The run once a worker has finished it, or as it is when `timeout` runs out."""
    if not connection.in_atomic_block:
        connection.close()  # hold no pooled connection while waiting
    notify.wait_done(str(run.pk), timeout)
    run = Run.objects.select_related("agent").get(pk=run.pk)
    return run, list(selectors.run_messages(run))


def _execute(record: RunRecord, agent: Agent, code_agent: CodeAgent) -> RunRecord:
    conf = platform_settings()
    run = record.run
    user_position = record.position - 1
    prior = (
        selectors.recent_messages(run.session_id, before_position=user_position, limit=conf.HISTORY_LIMIT)
        if user_position
        else []
    )
    ctx = RunContext(
        run_id=str(run.pk),
        session_id=str(run.session_id),
        agent_name=agent.name,
        metadata=run.metadata,
        code_agent=code_agent,
        permissions=tool_permissions(agent, code_agent),
        tool_timeout=code_agent.tool_timeout or conf.TOOL_TIMEOUT,
        append=record.write,
        cancelled=lambda: notify.flag_raised(f"cancel:{run.pk}"),
        prior=_as_history(prior),
        transcript=[ChatMessage(role="user", content=run.input)],
    )
    _finish(record, ctx, _run_turn(ctx, agent, code_agent, conf.MAX_STEPS))
    return record


def _finish(record: RunRecord, ctx: RunContext, outcome: dict[str, Any]) -> None:
    run = record.run
    with transaction.atomic():  # the answer, the run's completion and the session's count: one change
        record.run = finish_run(run, steps=ctx.steps, usage=ctx.usage, **outcome)
        completed = outcome["status"] == RunStatus.COMPLETED
        answer = [ChatMessage(role="assistant", content=outcome["output"])] if completed else []
        record.write(answer, after=[events.run_finished(record.run)])
        # Positions are contiguous from 0, so this is the exact count (and it heals a count
        # left behind by a run that crashed before finishing).
        Session.objects.filter(pk=run.session_id).update(message_count=record.position, updated_at=timezone.now())
        transaction.on_commit(lambda: notify.signal_done(str(run.pk)))


def _run_turn(ctx: RunContext, agent: Agent, code_agent: CodeAgent, max_steps: int) -> dict[str, Any]:
    """The turn's outcome as the fields `finish_run` records. Failures are outcomes here."""
    try:
        if code_agent.overrides_run:
            output = str(code_agent.run(ctx.transcript[0].content, ctx) or "")
        else:
            provider = model_provider(agent.model)
            output = run_loop(ctx, provider, agent.instructions, code_agent.max_steps or max_steps)
    except ApprovalRequired as exc:
        return _outcome(
            RunStatus.REQUIRES_APPROVAL,
            "approval_required",
            f"Tool {exc.tool!r} requires human approval; the call was not executed.",
            {"tool": exc.tool, "arguments": exc.arguments},
        )
    except RunCancelled:
        return _outcome(RunStatus.CANCELLED, "cancelled", "The run was cancelled.", {"steps": ctx.steps})
    except ProviderError as exc:
        details = {"provider": exc.provider, "status": exc.status}
        return _outcome(RunStatus.FAILED, "provider_error", exc.message, details)
    except MaxStepsExceeded as exc:
        return _outcome(RunStatus.FAILED, "max_steps_exceeded", str(exc), {"max_steps": exc.max_steps})
    except Exception as exc:  # the agent's own code failed: the run records it
        logger.exception("run %s: agent %s raised", ctx.run_id, agent.name)
        return _outcome(RunStatus.FAILED, "agent_error", f"{type(exc).__name__}: {exc}", None)
    return {"status": RunStatus.COMPLETED, "output": output}


def _outcome(status: RunStatus, code: str, message: str, details: Any) -> dict[str, Any]:
    return {"status": status, "error": {"code": code, "message": message, "details": details}}


def _as_history(rows: Iterable[Message]) -> list[ChatMessage]:
    """Stored messages as the model sees them; the window starts at a user message."""
    history = [
        ChatMessage(
            role=row.role,
            content=row.content,
            tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in row.tool_calls),
            tool_call_id=row.tool_call_id,
            name=row.tool_name,
            is_error=row.is_error,
        )
        for row in rows
    ]
    first_user = next((i for i, m in enumerate(history) if m.role == "user"), len(history))
    return history[first_user:]


def finish_run(
    run: Run,
    *,
    status: RunStatus,
    output: str = "",
    error: dict[str, Any] | None = None,
    steps: int = 0,
    usage: Usage | None = None,
) -> Run:
    """Move a run to a final status, with its output, error, usage and timing.

    One conditional UPDATE: it applies only while the run is in a status that may move to
    `status` (compare-and-set, so a concurrent change cannot be overwritten).
    """
    fields = {
        "status": status,
        "output": output,
        "error": error,
        "steps": steps,
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "finished_at": timezone.now(),
    }
    updated = Run.objects.filter(pk=run.pk, status__in=statuses_that_may_become(status)).update(**fields)
    if not updated:
        current = Run.objects.values_list("status", flat=True).get(pk=run.pk)
        raise InvalidTransition(f"A {current} run cannot become {status}.", details={"status": current})
    for name, value in fields.items():
        setattr(run, name, value)
    return run


def statuses_that_may_become(status: str) -> list[str]:
    return [source for source, targets in RUN_TRANSITIONS.items() if status in targets]


# --- API keys ---------------------------------------------------------------------------


def create_api_key(
    *,
    user: Any,
    name: str = "",
    agents: Iterable[Agent] = (),
    scopes: Iterable[str] = (),
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for `user`; the plaintext key is returned once and never stored."""
    key, prefix, key_hash = generate_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user, name=name, prefix=prefix, key_hash=key_hash, scopes=sorted(set(scopes)), expires_at=expires_at
        )
        api_key.agents.set(list(agents))
    return api_key, key


def revoke_api_keys(keys: Iterable[ApiKey]) -> int:
    return ApiKey.objects.filter(pk__in=[k.pk for k in keys], revoked_at__isnull=True).update(revoked_at=timezone.now())
