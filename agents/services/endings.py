"""How a run stops: finished (completed, failed, cancelled) or paused for approvals.

Each is one transaction: the run's status (compare-and-set), its last messages and events,
the session's count, the webhook outbox, and the session's next queued run sent on commit.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from agentplatform import notify, replicas, sql
from agentplatform.conf import platform_settings
from agentplatform.sdk.models import ChatMessage, Usage
from agents import events, selectors
from agents.errors import InvalidTransition
from agents.models import RUN_TRANSITIONS, Agent, Run, RunStatus, Session
from agents.services import limits
from agents.services.dispatch import send_run
from agents.services.record import RunRecord
from approvals import services as approval_services
from approvals import webhooks
from approvals.models import WebhookEvent
from approvals.services import ProposedCall


@dataclass(frozen=True)
class Outcome:
    """How a run ends: its final status, with its answer or its error."""

    status: RunStatus
    output: str = ""
    error: dict[str, Any] | None = None


def outcome(status: RunStatus, code: str, message: str, details: Any) -> Outcome:
    """A run that ends without an answer, and why (`code` is machine-readable)."""
    return Outcome(status, error={"code": code, "message": message, "details": details})


@dataclass(frozen=True)
class Progress:
    """What a turn did before it stopped: model calls, tokens, approval requests it executed."""

    steps: int
    usage: Usage
    executed: Sequence[str] = ()


def finish(record: RunRecord, ending: Outcome, progress: Progress | None = None) -> None:
    """End the run with `ending`; `progress` is the turn it had, if it got that far."""
    run = record.run
    with transaction.atomic():  # the answer, the run's completion and the session's count: one change
        if progress is not None:
            approval_services.mark_executed(list(progress.executed))
        if run.status == RunStatus.AWAITING_APPROVAL:  # ended while waiting: nobody need decide now
            approval_services.withdraw(run.pk)
        steps = progress.steps if progress is not None else run.steps
        record.run = finish_run(run, ending, steps=steps, usage=progress.usage if progress is not None else None)
        completed = ending.status == RunStatus.COMPLETED
        answer = [ChatMessage(role="assistant", content=ending.output)] if completed else _close_calls(run, ending)
        record.write(answer, after=[events.run_finished(record.run)])
        _emit_webhook(record.run)
        # Positions are contiguous from 0, so this is the exact count (and it heals a count
        # left behind by a run that crashed before finishing).
        _count_messages(run.session_id, record.position)
        transaction.on_commit(lambda: notify.signal_done(str(run.pk)), robust=True)
        replicas.wrote_on_commit(run.owner_id)  # its owner reads the answer from the primary
        _start_next(run.session_id)


def _close_calls(run: Run, ending: Outcome) -> list[ChatMessage]:
    """A result for each call the run leaves without one (cancelled while it waited for a
    decision, stopped between calls, its worker lost): every provider refuses a transcript
    with an unanswered call, so without these the session's next runs would all fail."""
    reason = (ending.error or {}).get("message") or f"The run ended {ending.status}."
    return [
        ChatMessage(role="tool", content=f"Not executed: {reason}", tool_call_id=call_id, name=name, is_error=True)
        for call_id, name in selectors.unanswered_calls(run.pk)
    ]


@dataclass(frozen=True)
class Pending:
    """A call waiting for a reviewer: the call, its validated arguments, the tool's schema."""

    call_id: str
    tool_name: str
    arguments: dict[str, Any]
    parameters: dict[str, Any]


def pause(record: RunRecord, agent: Agent, pending: Sequence[Pending], progress: Progress) -> None:
    """The turn waits for decisions: one approval request per call, the run paused. It holds
    no worker, thread or connection until the last decision resumes it."""
    run = record.run
    policies = selectors.approval_policies(agent)
    default_timeout = timedelta(seconds=platform_settings().APPROVAL_TIMEOUT)
    calls = []
    for call in pending:
        timeout, action = policies.get(call.tool_name, (None, ""))
        calls.append(
            ProposedCall(
                call_id=call.call_id,
                tool_name=call.tool_name,
                arguments=call.arguments,
                parameters=call.parameters,
                timeout=timeout or agent.approval_timeout or default_timeout,
                expiry_action=action or agent.approval_expiry_action,
            )
        )
    with transaction.atomic():
        fields = {
            "status": RunStatus.AWAITING_APPROVAL,
            "steps": progress.steps,
            "input_tokens": progress.usage.input_tokens,
            "output_tokens": progress.usage.output_tokens,
            "lease_expires_at": None,
        }
        if not Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields):
            raise InvalidTransition(f"Run {run.pk} is no longer running; it cannot pause.")
        record.run.status = RunStatus.AWAITING_APPROVAL
        approval_services.mark_executed(list(progress.executed))
        requests = approval_services.open_requests(run=run, calls=calls)
        record.write([], after=[*map(events.approval_requested, requests), events.awaiting_approval(requests)])
        webhooks.emit_approvals(WebhookEvent.APPROVAL_REQUESTED, requests)  # outbox rows, sent on commit
        _count_messages(run.session_id, record.position)
        transaction.on_commit(lambda: notify.signal_done(str(run.pk)), robust=True)
        replicas.wrote_on_commit(run.owner_id)


def _count_messages(session_id: Any, count: int) -> None:
    """The session's message count, once its run has written its last message."""
    params = sql.values(Session, ("message_count", count), ("updated_at", timezone.now()), ("id", session_id))
    sql.execute(f"UPDATE {sql.table(Session)} SET message_count = %s, updated_at = %s WHERE id = %s", params)  # noqa: S608


def _start_next(session_id: Any) -> None:
    """When a run ends, the session's next queued run (if any) goes to a worker."""
    if next_id := selectors.next_queued(session_id):
        send_run(next_id)


def _emit_webhook(run: Run) -> None:
    """run.completed / run.failed to the owner's webhooks: outbox rows in the run's
    transaction, sent by the webhooks queue after commit (a slow endpoint never slows a run)."""
    kind, data = events.run_finished(run)
    if kind in WebhookEvent.values:
        data = {"run_id": str(run.pk), "session_id": str(run.session_id), "agent": run.agent.name, **data}
        webhooks.emit(WebhookEvent(kind), data, owner_id=run.owner_id)


def finish_run(run: Run, ending: Outcome, *, steps: int = 0, usage: Usage | None = None) -> Run:
    """Move a run to a final status, with its output, error, usage and timing.

    One conditional UPDATE: it applies only while the run is in a status that may move to
    `status` (compare-and-set, so a concurrent change cannot be overwritten).
    """
    fields = {
        "status": ending.status,
        "output": ending.output,
        "error": ending.error,
        "steps": steps,
        "input_tokens": usage.input_tokens if usage else run.input_tokens,
        "output_tokens": usage.output_tokens if usage else run.output_tokens,
        "finished_at": timezone.now(),
    }
    updated = _update_if(run.pk, statuses_that_may_become(ending.status), fields)
    if not updated:
        current = Run.objects.values_list("status", flat=True).get(pk=run.pk)
        raise InvalidTransition(f"A {current} run cannot become {ending.status}.", details={"status": current})
    for name, value in fields.items():
        setattr(run, name, value)
    if limits.counted(run):
        tokens = run.input_tokens + run.output_tokens
        ended = functools.partial(
            limits.run_ended, owner_id=run.owner_id, api_key_id=run.api_key_id, run_id=run.pk, tokens=tokens
        )
        transaction.on_commit(ended, robust=True)
    return run


def _update_if(run_id: Any, statuses: list[str], fields: dict[str, Any]) -> int:
    """UPDATE the run's `fields` while its status is one of `statuses` (on every run's path:
    SQL, see `agentplatform.sql`)."""
    assignments = ", ".join(f"{sql.column(Run, name)} = %s" for name in fields)
    params = sql.values(Run, *fields.items(), ("id", run_id), *(("status", status) for status in statuses))
    where = f"id = %s AND status IN ({', '.join(['%s'] * len(statuses))})"
    return sql.execute(f"UPDATE {sql.table(Run)} SET {assignments} WHERE {where}", params)  # noqa: S608


def statuses_that_may_become(status: str) -> list[str]:
    return [source for source, targets in RUN_TRANSITIONS.items() if status in targets]
