"""Executing runs: claim, prepare, the turn, then finish or pause.

A run's execution is a coroutine given a `Runtime` (agents.engine): the worker's event
loop, or the calling thread for `execute_queued_run`. Its database steps are sync
functions the runtime runs where it keeps connections; between them the run holds none.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from agentplatform import sql
from agentplatform.conf import platform_settings
from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.agent import ApprovalRequired, RunCancelled
from agentplatform.sdk.models import ChatMessage, ProviderError, ToolCall, Usage
from agentplatform.sdk.tools import Tool as CodeTool
from agentplatform.sdk.tools import ToolPermission
from agents import events, selectors
from agents.engine import Inline, Runtime
from agents.errors import AgentDisabled, AgentUnavailable, RunFailure
from agents.loop import MaxStepsExceeded, run_loop
from agents.models import Agent, Message, Run, RunStatus
from agents.registry import model_provider
from agents.runtime import Decision, RunContext
from agents.services.agents import record_tools, runnable, tool_permissions
from agents.services.endings import Outcome, Pending, Progress, finish, outcome, pause
from agents.services.leases import lease_end
from agents.services.record import RunRecord
from approvals import selectors as approval_selectors
from approvals.models import ApprovalRequest, ApprovalStatus
from context.preparation import PreparationFailed
from context.services import prepare_run
from tracing import spans

logger = logging.getLogger(__name__)

T = TypeVar("T")
Summary = dict[str, Any]  # a task's small summary: run_id, executed, status


def execute_queued_run(run_id: UUID) -> Summary:
    """Claim a queued run and execute it to its end in this thread (scripts, tests)."""
    return Inline().run(functools.partial(execute, run_id))


async def execute(run_id: UUID, rt: Runtime) -> Summary:
    """Claim a queued run and execute it. Only one worker can claim a run, only the oldest
    queued run of a session can start, and only while no other run of the session is running
    (a unique index). A run that cannot start yet is started by the run before it when that
    one finishes. Safe to deliver twice."""
    record = await rt.db(_claim, run_id)
    if record is None:
        return await rt.db(_not_executed, run_id)
    return await _carry_out(LiveRecord(record, rt), rt)


async def resume(run_id: UUID, rt: Runtime) -> Summary:
    """Continue a run paused for approval once none of its requests is pending (safe to
    deliver twice: only one worker moves it back to running)."""
    record = await rt.db(_claim_paused, run_id)
    if record is None:
        return await rt.db(_not_executed, run_id)
    return await _carry_out(LiveRecord(record, rt), rt, resumed=True)


class LiveRecord:
    """A run's record as its turn writes it from the event loop: one write at a time, in
    order, with the answer's streamed text gathered in between and written with the next
    write (or on its own once DELTA_INTERVAL has passed since the last)."""

    def __init__(self, record: RunRecord, rt: Runtime) -> None:
        self.record = record
        self.rt = rt
        self.text: list[str] = []
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Task[None] | None = None

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, a database step writing through the record, after the ones before."""
        async with self._lock:
            text, self.text = self.text, []
            return await self.rt.db(self._with_text, text, function, *args)

    def _with_text(self, text: list[str], function: Callable[..., T], *args: Any) -> T:
        self.record.text.extend(text)
        return function(*args)

    async def write(self, messages: list[ChatMessage]) -> None:
        await self.call(self.record.write, messages)

    def delta(self, chunk: str) -> None:
        """A chunk of the model's answer (on the loop)."""
        self.text.append(chunk)
        due = time.monotonic() - self.record.written_at >= platform_settings().DELTA_INTERVAL
        if due and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            if self.text:
                await self.call(self.record.write, [])
        except Exception:  # the text goes with the next write instead
            logger.warning("run %s: writing streamed text failed", self.record.run.pk, exc_info=True)
        finally:
            self._flushing = None


def _not_executed(run_id: UUID) -> Summary:
    status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    return {"run_id": str(run_id), "executed": False, "status": status}


def _claim(run_id: UUID) -> RunRecord | None:
    """The run, moved from queued to running by this worker with its user message and
    `run.started` written, in one transaction; None if it cannot start (taken, not the
    session's oldest, or another run of the session is running: a unique index)."""
    try:
        return _claim_once(run_id, count_behind=False)
    except IntegrityError:  # messages written outside runs (an import, say) left the count behind
        return _claim_once(run_id, count_behind=True)


def _claim_once(run_id: UUID, *, count_behind: bool) -> RunRecord | None:
    with transaction.atomic():
        queued = ("status", RunStatus.QUEUED.value)
        params = sql.values(
            Run,
            ("status", RunStatus.RUNNING.value),
            ("started_at", timezone.now()),
            ("lease_expires_at", lease_end()),
            ("id", run_id),
            queued,
            queued,
        )
        try:
            claimed = sql.execute(_claim_sql(), params)
        except IntegrityError:  # another run of the session is running (the unique index)
            transaction.set_rollback(True)
            return None
        if not claimed:
            return None
        run, message_count = selectors.claimed_run(run_id)
        # Once claimed, the run is the session's only running one, and the run before it left
        # the session's count exact: its positions start there.
        position = selectors.next_position(run.session_id) if count_behind else message_count
        record = RunRecord(run, position=position)  # a queued run has no events
        record.write([ChatMessage("user", run.input)], before=[events.run_started(run)])
        return record


@functools.cache
def _claim_sql() -> str:
    """Queued to running, if no earlier run of its session is still queued (a statement on
    every run's path: SQL, see `agentplatform.sql`)."""
    run = sql.table(Run)
    return (
        f"UPDATE {run} SET status = %s, started_at = %s, lease_expires_at = %s"  # noqa: S608  # our table
        f" WHERE id = %s AND status = %s AND NOT EXISTS (SELECT 1 FROM {run} earlier"
        f" WHERE earlier.session_id = {run}.session_id AND earlier.status = %s"
        f" AND earlier.created_at < {run}.created_at)"
    )


def _claim_paused(run_id: UUID) -> RunRecord | None:
    undecided = ApprovalRequest.objects.filter(run_id=OuterRef("pk"), status=ApprovalStatus.PENDING)
    with transaction.atomic():
        resumed = (
            Run.objects.filter(pk=run_id, status=RunStatus.AWAITING_APPROVAL)
            .filter(~Exists(undecided))
            .update(status=RunStatus.RUNNING, lease_expires_at=lease_end())
        )
        if not resumed:
            return None
        record = RunRecord.resume(Run.objects.select_related("agent").get(pk=run_id))
        record.write([], after=[events.run_resumed()])
    return record


async def _carry_out(live: LiveRecord, rt: Runtime, *, resumed: bool = False) -> Summary:
    """Execute a run this worker has claimed (or resumed), holding its lease meanwhile."""
    run = live.record.run
    with spans.agent_run(run, resumed=resumed):
        try:
            code_agent = runnable(run.agent)
        except (AgentDisabled, AgentUnavailable) as exc:
            await live.call(finish, live.record, outcome(RunStatus.FAILED, exc.code, exc.message, None))
        else:
            async with rt.holding_lease(run.pk):
                await _execute(live, rt, run.agent, code_agent, resumed=resumed)
    return {"run_id": str(run.pk), "executed": True, "status": live.record.run.status}


@dataclass(frozen=True)
class TurnSetup:
    """What a turn starts from, read in one database step."""

    prior: list[ChatMessage]
    transcript: list[ChatMessage]
    permissions: dict[str, ToolPermission]
    conditions: dict[str, list[Any]]
    decisions: dict[str, Decision]


def _turn_setup(record: RunRecord, code_agent: CodeAgent, added: Iterable[CodeTool], resumed: bool) -> TurnSetup:
    run, agent = record.run, record.run.agent
    record_tools(agent, added)
    messages = list(selectors.run_messages(run)) if resumed else record.messages
    first = messages[0].position if messages else record.position
    limit = platform_settings().HISTORY_LIMIT
    prior = selectors.recent_messages(run.session_id, before_position=first, limit=limit) if first else []
    permissions, conditions = tool_permissions(agent, code_agent)
    decisions = _decisions(run) if resumed else {}
    return TurnSetup(_as_history(prior), _as_history(messages), permissions, conditions, decisions)


async def _execute(live: LiveRecord, rt: Runtime, agent: Agent, code_agent: CodeAgent, *, resumed: bool) -> None:
    """Run the turn from where the run is: a new run from its user message; a resumed one
    from its recorded messages, with the decisions on the calls it paused on."""
    conf = platform_settings()
    record = live.record
    run = record.run
    try:  # the context fetched for this run, and an MCP server's tools
        prepared = await prepare_run(rt.db, run.pk, run.agent_id, code_agent)
    except PreparationFailed as exc:
        await live.call(finish, record, outcome(RunStatus.FAILED, exc.code, exc.message, exc.details))
        return
    except Exception as exc:  # a bug in preparing fails this run visibly rather than strand it
        logger.exception("run %s: preparing its context failed", run.pk)
        failure = outcome(RunStatus.FAILED, RunFailure.PREPARATION_ERROR, f"Preparing the run failed: {exc!r}", None)
        await live.call(finish, record, failure)
        return
    code_agent, instructions = prepared.apply(code_agent, agent.instructions)
    setup = await rt.db(_turn_setup, record, code_agent, prepared.tools, resumed)
    ctx = RunContext(
        run_id=str(run.pk),
        session_id=str(run.session_id),
        agent_name=agent.name,
        metadata=run.metadata,
        code_agent=code_agent,
        permissions=setup.permissions,
        conditions=setup.conditions,
        tool_timeout=code_agent.tool_timeout or conf.TOOL_TIMEOUT,
        rt=rt,
        append=live.write,
        on_text=live.delta if conf.STREAM_DELTAS else None,
        cancelled=functools.partial(rt.cancelled, run.pk),
        prior=setup.prior,
        transcript=setup.transcript,
        context=prepared.instructions,
        decisions=setup.decisions,
    )
    if resumed:
        ctx.steps, ctx.usage = run.steps, Usage(run.input_tokens, run.output_tokens)
        if code_agent.overrides_run:  # its turn runs again from the start: earlier calls replay
            ctx.replay = _answered_calls(setup.transcript)
    ending = await _run_turn(ctx, agent, code_agent, conf.MAX_STEPS, instructions)
    progress = Progress(ctx.steps, ctx.usage, tuple(ctx.executed))
    if ending is None:
        pending = [
            Pending(p.call.id, p.call.name, p.arguments, code_agent.tools[p.call.name].parameters) for p in ctx.pending
        ]
        await live.call(pause, record, agent, pending, progress)
    else:
        await live.call(finish, record, ending, progress)


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


async def _run_turn(
    ctx: RunContext, agent: Agent, code_agent: CodeAgent, max_steps: int, instructions: str
) -> Outcome | None:
    """How the turn ended (None: it waits for approvals). Failures are outcomes here."""
    try:
        output = await _turn(ctx, agent, code_agent, max_steps, instructions)
    except ApprovalRequired:
        return None
    except RunCancelled:
        return outcome(RunStatus.CANCELLED, RunFailure.CANCELLED, "The run was cancelled.", {"steps": ctx.steps})
    except ProviderError as exc:
        details = {"provider": exc.provider, "status": exc.status}
        return outcome(RunStatus.FAILED, RunFailure.PROVIDER_ERROR, exc.message, details)
    except MaxStepsExceeded as exc:
        return outcome(RunStatus.FAILED, RunFailure.MAX_STEPS_EXCEEDED, str(exc), {"max_steps": exc.max_steps})
    except Exception as exc:  # the agent's own code failed: the run records it
        logger.exception("run %s: agent %s raised", ctx.run_id, agent.name)
        return outcome(RunStatus.FAILED, RunFailure.AGENT_ERROR, f"{type(exc).__name__}: {exc}", None)
    return Outcome(RunStatus.COMPLETED, output=output)


async def _turn(ctx: RunContext, agent: Agent, code_agent: CodeAgent, max_steps: int, instructions: str) -> str:
    """The answer: from the agent's own `run()` (async on the loop, sync on a pool thread)
    or from the built-in loop."""
    if not code_agent.overrides_run:
        provider = model_provider(agent.model)
        return await run_loop(ctx, provider, instructions, code_agent.max_steps or max_steps)
    text = ctx.transcript[0].content
    if inspect.iscoroutinefunction(code_agent.run):
        return str(await code_agent.run(text, ctx) or "")
    return str(await ctx.rt.turn(code_agent.run, text, ctx) or "")


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
