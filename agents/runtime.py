"""The run context given to an agent's turn: the permission gate, tool execution, the record.

Every tool call, from the built-in loop or from an agent that drives its own framework,
goes through `RunContext.execute_call`, which checks the permission, validates the
arguments, runs the tool with a timeout and appends the result to the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.agent import ApprovalRequired, RunCancelled, ToolCallError
from agentplatform.sdk.conditions import permission_for
from agentplatform.sdk.models import ChatMessage, ToolCall, ToolSpec, Usage
from agentplatform.sdk.tools import Tool, ToolArgumentsError, ToolPermission
from agents.engine import Runtime
from approvals.services import arguments_hash
from tracing import spans

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    error_code: str = ""
    value: Any = None


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision on one CONFIRM call, as the gate applies it."""

    request_id: str
    approved: bool
    arguments: Any  # the approved arguments (approved), else None
    approved_hash: str
    refusal: str  # what the model reads when the call is not run


@dataclass(frozen=True)
class PendingCall:
    """A CONFIRM call waiting for a decision: the call and its validated arguments."""

    call: ToolCall
    arguments: dict[str, Any]


def awaiting_results(transcript: list[ChatMessage]) -> list[ToolCall]:
    """The calls of the last assistant turn that have no result yet (a paused run's)."""
    answered = {m.tool_call_id for m in transcript if m.role == "tool"}
    last = next((m for m in reversed(transcript) if m.role == "assistant"), None)
    return [c for c in last.tool_calls if c.id not in answered] if last is not None else []


def _parsed(content: str) -> Any:
    """A replayed result: the value back from its JSON text, or the text itself."""
    try:
        return json.loads(content)
    except ValueError:
        return content


def render_result(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str, ensure_ascii=False)


@dataclass
class RunContext:
    """Implements `agentplatform.RunContext` for one run, on the event loop that executes it.

    The gate, the record and the tools are coroutines. A sync `run()` override runs on a
    thread of its own and reaches them through `call_tool` and `stream_text`, which cross
    back to the loop; an `async def run()` awaits `acall_tool`.
    """

    run_id: str
    session_id: str
    agent_name: str
    metadata: Mapping[str, Any]
    code_agent: CodeAgent
    permissions: Mapping[str, ToolPermission]
    tool_timeout: float
    rt: Runtime
    append: Callable[[list[ChatMessage]], Awaitable[None]]
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    prior: list[ChatMessage] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    transcript: list[ChatMessage] = field(default_factory=list)
    cancelled: Callable[[], Awaitable[bool]] | None = None
    conditions: Mapping[str, list[Any]] = field(default_factory=dict)  # operators' rules on arguments
    context: str = ""  # the context fetched for this run, rendered (the built-in loop puts it in the prompt)
    on_text: Callable[[str], None] | None = None  # streamed answer text (message.delta events), on the loop
    # Decisions on this run's CONFIRM calls, by call id; and by tool and arguments hash for
    # agents with their own turn, which is run again from its start after a decision.
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    pending: list[PendingCall] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)  # approval requests whose tool ran
    replay: list[ChatMessage] = field(default_factory=list)  # a re-run turn's earlier tool results

    async def check_cancelled(self) -> None:
        """A step boundary: stop here if the run was cancelled."""
        if self.cancelled is not None and await self.cancelled():
            raise RunCancelled

    @property
    def history(self) -> list[ChatMessage]:
        return list(self.prior)

    async def record(self, *messages: ChatMessage) -> None:
        await self.append(list(messages))
        self.transcript.extend(messages)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def permission(self, name: str, arguments: Any = None) -> ToolPermission:
        """A tool's permission; for a call, its argument conditions apply (failing closed)."""
        base = self.permissions.get(name, ToolPermission.DENY)
        rules = self.conditions.get(name)
        if not rules or arguments is None:
            return base
        return permission_for(base, rules, arguments if isinstance(arguments, dict) else {})

    def offered_tools(self) -> tuple[ToolSpec, ...]:
        """The tools the model may see: every tool that is not DENY."""
        return tuple(
            ToolSpec(t.name, t.description, t.parameters)
            for t in self.code_agent.tools.values()
            if self.permission(t.name) is not ToolPermission.DENY
        )

    def stream_text(self, text: str) -> None:
        """A chunk of the answer for live clients, as the turn produces it (from any thread)."""
        if self.on_text is None or not text:
            return
        if self._on_loop():
            self.on_text(text)
        else:
            self.loop.call_soon_threadsafe(self.on_text, text)

    def add_usage(self, input_tokens: int = 0, output_tokens: int = 0) -> None:
        self.usage.add(Usage(input_tokens, output_tokens))

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """`acall_tool` for a sync `run()` override (it runs on a thread, not on the loop)."""
        if self._on_loop():
            raise RuntimeError("ctx.call_tool blocks: in an `async def run()`, use `await ctx.acall_tool(...)`")
        return asyncio.run_coroutine_threadsafe(self.acall_tool(name, arguments), self.loop).result()

    async def acall_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """For agents with their own turn: record the call, run it, return its value.

        A turn run again after an approval gets the results its earlier calls had (in order,
        the same tool and arguments), without running them twice.
        """
        earlier = self._replayed(name, arguments)
        if earlier is not None:
            if earlier.is_error:
                raise ToolCallError(name, earlier.content, code="replayed_error")
            return _parsed(earlier.content)
        signature = arguments_hash(dict(arguments))
        waiting = [
            c for c in awaiting_results(self.transcript) if (c.name, arguments_hash(c.arguments)) == (name, signature)
        ]
        if waiting:  # the call this turn paused on, asked again after its decision
            call = waiting[0]
        else:
            call = ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=dict(arguments))
            await self.record(ChatMessage(role="assistant", tool_calls=(call,)))
        outcome = await self.execute_call(call)
        if outcome.error_code == "approval_pending":
            raise ApprovalRequired(name, dict(arguments))
        if outcome.error_code:
            raise ToolCallError(name, outcome.content, code=outcome.error_code)
        return outcome.value

    def _replayed(self, name: str, arguments: Mapping[str, Any]) -> ChatMessage | None:
        if not self.replay:
            return None
        call, result = self.replay[0], self.replay[1]
        if call.tool_calls[0].name != name or arguments_hash(call.tool_calls[0].arguments) != arguments_hash(
            dict(arguments)
        ):
            self.replay.clear()  # the turn went another way: from here on, calls are new
            return None
        del self.replay[:2]
        return result

    async def execute_call(self, call: ToolCall) -> ToolOutcome:
        """Gate, validate and run one call, then append its result to the session. A call
        waiting for approval is set aside (`pending`); its result is written once decided."""
        await self.check_cancelled()
        with spans.tool_call(call.name, call.id, self.permission(call.name, call.arguments), call.arguments) as span:
            outcome = await self._outcome(call)
            span.outcome(outcome.error_code, outcome.content)
        if outcome.error_code == "approval_pending":
            self.pending.append(PendingCall(call, outcome.value))
            return outcome
        await self.record(
            ChatMessage(
                role="tool",
                content=outcome.content,
                tool_call_id=call.id,
                name=call.name,
                is_error=bool(outcome.error_code),
            )
        )
        return outcome

    def decision(self, call: ToolCall) -> Decision | None:
        return self.decisions.get(call.id) or self.decisions.get(f"{call.name}:{arguments_hash(call.arguments)}")

    async def _outcome(self, call: ToolCall) -> ToolOutcome:
        tool = self.code_agent.tools.get(call.name)
        if tool is None:
            return ToolOutcome(f"Error: unknown tool {call.name!r}.", "unknown_tool")
        permission = self.permission(call.name, call.arguments)
        if permission is ToolPermission.DENY:
            return ToolOutcome(f"Refused: tool {call.name!r} is not permitted for this agent.", "tool_denied")
        try:
            arguments = tool.validate(call.arguments)
        except ToolArgumentsError as exc:
            return ToolOutcome(f"Error: {exc}", "invalid_arguments")
        if permission is ToolPermission.CONFIRM:
            settled = self._approved(call, tool)
            if isinstance(settled, ToolOutcome):
                return settled
            arguments = settled
        return await self._run(tool, call, arguments)

    def _approved(self, call: ToolCall, tool: Tool) -> ToolOutcome | dict[str, Any]:
        """A CONFIRM call: the approved arguments, or why it does not run (yet)."""
        decision = self.decision(call)
        if decision is None:
            return ToolOutcome(f"Waiting: tool {call.name!r} needs approval.", "approval_pending", call.arguments)
        if not decision.approved:
            return ToolOutcome(decision.refusal, "approval_rejected")
        # What runs is exactly what was approved: the arguments must still hash to the
        # approved hash recorded with the decision.
        if self.permission(call.name, decision.arguments) is ToolPermission.DENY:
            return ToolOutcome(f"Refused: the approved arguments of {call.name!r} are denied by a rule.", "tool_denied")
        if arguments_hash(decision.arguments) != decision.approved_hash:
            return ToolOutcome(
                f"Refused: the arguments of {call.name!r} differ from the approved ones.", "approval_mismatch"
            )
        try:
            arguments = tool.validate(decision.arguments)
        except ToolArgumentsError as exc:
            return ToolOutcome(f"Error: {exc}", "invalid_arguments")
        self.executed.append(decision.request_id)
        return arguments

    async def _run(self, tool: Tool, call: ToolCall, arguments: dict[str, Any]) -> ToolOutcome:
        """An async tool runs on the loop, a sync one on the runtime's tool pool; either is
        abandoned at its timeout (a sync tool's thread finishes on its own)."""
        timeout = tool.timeout or self.tool_timeout
        try:
            if tool.is_async:
                value = await asyncio.wait_for(tool.func(**arguments), timeout)
            else:
                value = await asyncio.wait_for(self.rt.blocking(tool.func, **arguments), timeout)
        except TimeoutError:
            return ToolOutcome(f"Error: tool {call.name!r} timed out after {timeout:g}s.", "tool_timeout")
        except Exception as exc:  # a tool's failure is reported to the model
            logger.info("tool %s raised %s", call.name, type(exc).__name__, exc_info=True)
            return ToolOutcome(f"Error: {type(exc).__name__}: {exc}", "tool_error")
        return ToolOutcome(render_result(value), value=value)
