"""Executing runs on a worker: claim, the turn, the record it writes, finish; leases and the reaper."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from agentplatform import notify
from agentplatform.celery import TaskName, app
from agentplatform.conf import platform_settings
from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.agent import ApprovalRequired, RunCancelled
from agentplatform.sdk.models import ChatMessage, ProviderError, ToolCall, Usage
from agents import events, selectors
from agents.errors import (
    AgentDisabled,
    AgentUnavailable,
    InvalidTransition,
)
from agents.events import Event
from agents.loop import MaxStepsExceeded, run_loop
from agents.models import (
    HOLDING_RUN_STATUSES,
    RUN_TRANSITIONS,
    Agent,
    Message,
    Run,
    RunEvent,
    RunStatus,
    Session,
)
from agents.registry import model_provider
from agents.runtime import Decision, RunContext
from agents.services.agents import record_tools, runnable, tool_permissions
from approvals import selectors as approval_selectors
from approvals import services as approval_services
from approvals import webhooks
from approvals.models import ApprovalRequest, ApprovalStatus, WebhookEvent
from approvals.services import ProposedCall
from context.preparation import PreparationFailed
from context.services import prepare_run
from tracing import spans

logger = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """What a run has written: its messages and events, and where the next ones go."""

    run: Run
    position: int
    seq: int = 0
    messages: list[Message] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # streamed text not yet written
    written_at: float = 0.0

    def delta(self, chunk: str) -> None:
        """A chunk of the model's answer: written (and published) with the run's next write,
        or on its own once DELTA_INTERVAL has passed since the last one."""
        self.text.append(chunk)
        if time.monotonic() - self.written_at >= platform_settings().DELTA_INTERVAL:
            self.write([])

    @classmethod
    def resume(cls, run: Run) -> RunRecord:
        """A record that continues after the session's last message and the run's last event."""
        return cls(run, position=selectors.next_position(run.session_id), seq=selectors.last_seq(run.pk))

    def write(self, messages: list[ChatMessage], *, before: Iterable[Event] = (), after: Iterable[Event] = ()) -> None:
        """Append messages and the events they stand for, in order, as one change."""
        if self.text:
            before = [events.text_delta("".join(self.text)), *before]
            self.text.clear()
        with transaction.atomic(savepoint=False):
            created = append_messages(self.run.session_id, self.run.pk, self.position, messages) if messages else []
            derived = [event for message in created for event in events.for_message(message)]
            rows = [
                RunEvent(run_id=self.run.pk, seq=self.seq + offset, type=kind, data=data)
                for offset, (kind, data) in enumerate([*before, *derived, *after], start=1)
            ]
            RunEvent.objects.bulk_create(rows)
            session_id = self.run.session_id
            transaction.on_commit(lambda: events.publish(session_id, rows))
        self.position += len(created)
        self.seq += len(rows)
        self.messages.extend(created)
        self.written_at = time.monotonic()


def append_messages(session_id: UUID, run_id: UUID, start: int, messages: list[ChatMessage]) -> list[Message]:
    """Insert messages at positions `start`, `start + 1`, ... (one statement).

    The session's running run (there is at most one) owns the positions after the
    session's last message; the unique (session, position) index backs that up.
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


def execute_queued_run(run_id: UUID) -> dict[str, Any]:
    """Claim a queued run and execute it; a small summary for the task.

    Only one worker can claim a run, only the oldest queued run of a session can start,
    and only while no other run of the session is running (a unique index). A run that
    cannot start yet is started by the run before it when that one finishes.
    """
    record = _claim(run_id)
    return _not_executed(run_id) if record is None else _carry_out(record)


def resume_paused_run(run_id: UUID) -> dict[str, Any]:
    """Continue a run paused for approval once none of its requests is pending (safe to
    deliver twice: only one worker moves it back to running)."""
    undecided = ApprovalRequest.objects.filter(run_id=OuterRef("pk"), status=ApprovalStatus.PENDING)
    with transaction.atomic():
        resumed = (
            Run.objects.filter(pk=run_id, status=RunStatus.AWAITING_APPROVAL)
            .filter(~Exists(undecided))
            .update(status=RunStatus.RUNNING, lease_expires_at=_lease_end())
        )
        if not resumed:
            return _not_executed(run_id)
        record = RunRecord.resume(Run.objects.select_related("agent").get(pk=run_id))
        record.write([], after=[events.run_resumed()])
    return _carry_out(record, resumed=True)


def _carry_out(record: RunRecord, *, resumed: bool = False) -> dict[str, Any]:
    """Execute a run this worker has claimed (or resumed), holding its lease meanwhile."""
    run = record.run
    with spans.agent_run(run, resumed=resumed):
        try:
            code_agent = runnable(run.agent)
        except (AgentDisabled, AgentUnavailable) as exc:
            finish(record, outcome(RunStatus.FAILED, exc.code, exc.message, None))
        else:
            with _holding_lease(run.pk):
                _execute(record, run.agent, code_agent, resumed=resumed)
    return {"run_id": str(run.pk), "executed": True, "status": record.run.status}


def _not_executed(run_id: UUID) -> dict[str, Any]:
    status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    return {"run_id": str(run_id), "executed": False, "status": status}


def dispatch_resume_on_commit(run_id: UUID) -> None:
    transaction.on_commit(lambda: app.send_task(TaskName.RESUME_RUN, args=[str(run_id)]))


def _claim(run_id: UUID) -> RunRecord | None:
    """The run, moved from queued to running by this worker with its user message and
    `run.started` written, in one transaction; None if it cannot start (taken, not the
    session's oldest, or another run of the session is running: a unique index)."""
    try:
        return _claim_once(run_id, count_behind=False)
    except IntegrityError:  # messages written outside runs (an import, say) left the count behind
        return _claim_once(run_id, count_behind=True)


def _claim_once(run_id: UUID, *, count_behind: bool) -> RunRecord | None:
    earlier = Run.objects.filter(
        session_id=OuterRef("session_id"), status=RunStatus.QUEUED, created_at__lt=OuterRef("created_at")
    )
    with transaction.atomic():
        try:
            claimed = (
                Run.objects.filter(pk=run_id, status=RunStatus.QUEUED)
                .filter(~Exists(earlier))
                .update(status=RunStatus.RUNNING, started_at=timezone.now(), lease_expires_at=_lease_end())
            )
        except IntegrityError:  # the transaction is rolled back on the way out (`update` marks it)
            return None
        if not claimed:
            return None
        run = Run.objects.select_related("agent", "session").get(pk=run_id)
        # Once claimed, the run is the session's only running one, and the run before it left
        # the session's count exact: its positions start there.
        position = selectors.next_position(run.session_id) if count_behind else run.session.message_count
        record = RunRecord(run, position=position)  # a queued run has no events
        record.write([ChatMessage("user", run.input)], before=[events.run_started(run)])
        return record


def _start_next(session_id: UUID) -> None:
    """When a run ends, the session's next queued run (if any) goes to a worker."""
    queued = Run.objects.filter(session_id=session_id, status=RunStatus.QUEUED).order_by("created_at")
    next_id = queued.values_list("pk", flat=True).first()
    if next_id is not None:
        send_run(next_id)


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
            record = RunRecord.resume(run)
            message = "The worker executing this run stopped before finishing it (its lease expired)."
            details = {"lease_expired_at": run.lease_expires_at.isoformat()}
            finish(record, outcome(RunStatus.FAILED, "worker_lost", message, details))
            reaped += 1
    return {"expired": len(expired), "reaped": reaped, "requeued": _requeue_stalled(now, batch)}


def _requeue_stalled(now: datetime, batch: int) -> int:
    """Hand queued runs to the broker again when nothing took them: a broker that lost its
    data (or a crash between commit and send) must not leave a run queued forever. Only
    runs that could start now are sent, and a second delivery is harmless (the claim)."""
    stalled_since = now - timedelta(seconds=platform_settings().RUN_REQUEUE_SECONDS)
    earlier = Run.objects.filter(
        session_id=OuterRef("session_id"), status=RunStatus.QUEUED, created_at__lt=OuterRef("created_at")
    )
    running = Run.objects.filter(session_id=OuterRef("session_id"), status__in=HOLDING_RUN_STATUSES)
    stalled = list(
        Run.objects.filter(status=RunStatus.QUEUED, enqueued_at__lt=stalled_since)
        .filter(~Exists(earlier), ~Exists(running))
        .values_list("pk", flat=True)[:batch]
    )
    for run_id in stalled:
        send_run(run_id)
    return len(stalled)


def send_run(run_id: UUID) -> None:
    """Hand a queued run to a worker (again) once the current transaction commits."""
    Run.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    dispatch_on_commit(run_id)


def dispatch_on_commit(run_id: UUID) -> None:
    """Send the run's task to the broker when the current transaction commits."""
    transaction.on_commit(lambda: app.send_task(TaskName.EXECUTE_RUN, args=[str(run_id)]))


def _execute(record: RunRecord, agent: Agent, code_agent: CodeAgent, *, resumed: bool = False) -> RunRecord:
    """Run the turn from where the run is: a new run from its user message; a resumed one
    from its recorded messages, with the decisions on the calls it paused on."""
    conf = platform_settings()
    run = record.run
    try:  # the context fetched for this run, and an MCP server's tools
        prepared = prepare_run(run.pk, run.agent_id, code_agent)
    except PreparationFailed as exc:
        finish(record, outcome(RunStatus.FAILED, exc.code, exc.message, exc.details))
        return record
    except Exception as exc:  # a bug in preparing fails this run visibly rather than strand it
        logger.exception("run %s: preparing its context failed", run.pk)
        finish(record, outcome(RunStatus.FAILED, "preparation_error", f"Preparing the run failed: {exc!r}", None))
        return record
    code_agent, instructions = prepared.apply(code_agent, agent.instructions)
    record_tools(agent, prepared.tools)
    messages = list(selectors.run_messages(run)) if resumed else record.messages
    first = messages[0].position if messages else record.position
    prior = selectors.recent_messages(run.session_id, before_position=first, limit=conf.HISTORY_LIMIT) if first else []
    transcript = _as_history(messages)
    permissions, conditions = tool_permissions(agent, code_agent)
    ctx = RunContext(
        run_id=str(run.pk),
        session_id=str(run.session_id),
        agent_name=agent.name,
        metadata=run.metadata,
        code_agent=code_agent,
        permissions=permissions,
        conditions=conditions,
        tool_timeout=code_agent.tool_timeout or conf.TOOL_TIMEOUT,
        append=record.write,
        on_text=record.delta if conf.STREAM_DELTAS else None,
        cancelled=lambda: notify.flag_raised(f"cancel:{run.pk}"),
        prior=_as_history(prior),
        transcript=transcript,
        context=prepared.instructions,
    )
    if resumed:
        ctx.steps, ctx.usage = run.steps, Usage(run.input_tokens, run.output_tokens)
        ctx.decisions = _decisions(run)
        if code_agent.overrides_run:  # its turn runs again from the start: earlier calls replay
            ctx.replay = _answered_calls(transcript)
    result = _run_turn(ctx, agent, code_agent, conf.MAX_STEPS, instructions)
    if result["status"] == RunStatus.AWAITING_APPROVAL:
        pause(record, ctx, agent)
    else:
        finish(record, result, ctx)
    return record


def _decisions(run: Run) -> dict[str, Decision]:
    """Decided, not yet executed requests, by call id and by tool and arguments hash."""
    found: dict[str, Decision] = {}
    for request in approval_selectors.run_requests(run.pk):
        if request.status == ApprovalStatus.PENDING or request.executed_at is not None:
            continue
        approved = request.status == ApprovalStatus.APPROVED
        if request.status == ApprovalStatus.REJECTED:
            refusal = f"Rejected by a reviewer: {request.reason or 'no reason given'}. The call was not executed."
        else:
            refusal = f"Not executed: the request to approve {request.tool_name!r} was {request.status}."
        decision = Decision(
            str(request.pk),
            approved,
            request.approved_arguments if approved else None,
            request.approved_hash,
            refusal,
        )
        found[request.call_id] = found[f"{request.tool_name}:{request.arguments_hash}"] = decision
    return found


def _answered_calls(transcript: list[ChatMessage]) -> list[ChatMessage]:
    """A re-run turn's earlier calls with their results, in order: [call, result, call, result, ...]."""
    results = {m.tool_call_id: m for m in transcript if m.role == "tool"}
    pairs: list[ChatMessage] = []
    for message in transcript:
        if message.role == "assistant" and len(message.tool_calls) == 1 and message.tool_calls[0].id in results:
            pairs += [message, results[message.tool_calls[0].id]]
    return pairs


def pause(record: RunRecord, ctx: RunContext, agent: Agent) -> None:
    """The turn waits for decisions: one approval request per call, the run paused. It holds
    no worker, thread or connection until the last decision resumes it."""
    run = record.run
    policies = selectors.approval_policies(agent)
    default_timeout = timedelta(seconds=platform_settings().APPROVAL_TIMEOUT)
    calls = []
    for pending in ctx.pending:
        timeout, action = policies.get(pending.call.name, (None, ""))
        calls.append(
            ProposedCall(
                call_id=pending.call.id,
                tool_name=pending.call.name,
                arguments=pending.arguments,
                parameters=ctx.code_agent.tools[pending.call.name].parameters,
                timeout=timeout or agent.approval_timeout or default_timeout,
                expiry_action=action or agent.approval_expiry_action,
            )
        )
    with transaction.atomic():
        fields = {
            "status": RunStatus.AWAITING_APPROVAL,
            "steps": ctx.steps,
            "input_tokens": ctx.usage.input_tokens,
            "output_tokens": ctx.usage.output_tokens,
            "lease_expires_at": None,
        }
        if not Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields):
            raise InvalidTransition(f"Run {run.pk} is no longer running; it cannot pause.")
        record.run.status = RunStatus.AWAITING_APPROVAL
        approval_services.mark_executed(ctx.executed)
        requests = approval_services.open_requests(run=run, calls=calls)
        record.write([], after=[*map(events.approval_requested, requests), events.awaiting_approval(requests)])
        webhooks.emit_approvals(WebhookEvent.APPROVAL_REQUESTED, requests)  # outbox rows, sent on commit
        Session.objects.filter(pk=run.session_id).update(message_count=record.position, updated_at=timezone.now())
        transaction.on_commit(lambda: notify.signal_done(str(run.pk)))


def finish(record: RunRecord, outcome: dict[str, Any], ctx: RunContext | None = None) -> None:
    """End the run with `outcome`; `ctx` is the turn it had, if it got that far (steps, usage)."""
    run = record.run
    with transaction.atomic():  # the answer, the run's completion and the session's count: one change
        steps, usage = (ctx.steps, ctx.usage) if ctx is not None else (run.steps, None)
        if ctx is not None:
            approval_services.mark_executed(ctx.executed)
        if run.status == RunStatus.AWAITING_APPROVAL:  # ended while waiting: nobody need decide now
            approval_services.withdraw(run.pk)
        record.run = finish_run(run, steps=steps, usage=usage, **outcome)
        completed = outcome["status"] == RunStatus.COMPLETED
        answer = [ChatMessage(role="assistant", content=outcome["output"])] if completed else []
        record.write(answer, after=[events.run_finished(record.run)])
        _emit_webhook(record.run)
        # Positions are contiguous from 0, so this is the exact count (and it heals a count
        # left behind by a run that crashed before finishing).
        Session.objects.filter(pk=run.session_id).update(message_count=record.position, updated_at=timezone.now())
        transaction.on_commit(lambda: notify.signal_done(str(run.pk)))
        _start_next(run.session_id)


def _emit_webhook(run: Run) -> None:
    """run.completed / run.failed to the owner's webhooks: outbox rows in the run's
    transaction, sent by the webhooks queue after commit (a slow endpoint never slows a run)."""
    kind, data = events.run_finished(run)
    if kind in WebhookEvent.values:
        data = {"run_id": str(run.pk), "session_id": str(run.session_id), "agent": run.agent.name, **data}
        webhooks.emit(WebhookEvent(kind), data, owner_id=run.owner_id)


def _run_turn(
    ctx: RunContext, agent: Agent, code_agent: CodeAgent, max_steps: int, instructions: str
) -> dict[str, Any]:
    """The turn's outcome as the fields `finish_run` records. Failures are outcomes here."""
    try:
        if code_agent.overrides_run:
            output = str(code_agent.run(ctx.transcript[0].content, ctx) or "")
        else:
            provider = model_provider(agent.model)
            output = run_loop(ctx, provider, instructions, code_agent.max_steps or max_steps)
    except ApprovalRequired:
        return {"status": RunStatus.AWAITING_APPROVAL}
    except RunCancelled:
        return outcome(RunStatus.CANCELLED, "cancelled", "The run was cancelled.", {"steps": ctx.steps})
    except ProviderError as exc:
        details = {"provider": exc.provider, "status": exc.status}
        return outcome(RunStatus.FAILED, "provider_error", exc.message, details)
    except MaxStepsExceeded as exc:
        return outcome(RunStatus.FAILED, "max_steps_exceeded", str(exc), {"max_steps": exc.max_steps})
    except Exception as exc:  # the agent's own code failed: the run records it
        logger.exception("run %s: agent %s raised", ctx.run_id, agent.name)
        return outcome(RunStatus.FAILED, "agent_error", f"{type(exc).__name__}: {exc}", None)
    return {"status": RunStatus.COMPLETED, "output": output}


def outcome(status: RunStatus, code: str, message: str, details: Any) -> dict[str, Any]:
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
        "input_tokens": usage.input_tokens if usage else run.input_tokens,
        "output_tokens": usage.output_tokens if usage else run.output_tokens,
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
