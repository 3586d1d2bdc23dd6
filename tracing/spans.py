"""What the apps call to trace their work: a few context managers and one event.

They use only the OpenTelemetry API, so without tracing set up (tests, or
`AGENTPLATFORM_TRACING=false`) every span is a no-op. The apps pass their objects in;
this module reads the fields it needs and imports none of them.

- `agent_run(run)` around a run's execution: the `agent.run` span, and the run's identity
  (run, session, agent, owner) on every span started inside it;
- `tool_call(...)` around one call through the permission gate;
- `approval_waited(request)` once a request is decided or expired: the `approval.wait` span,
  from the request to the decision;
- `websocket_message(kind, session_id)` around handling one WebSocket message.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentplatform.sdk import attributes as attr
from agentplatform.sdk.telemetry import content

tracer = trace.get_tracer("agentplatform")

# The run whose work the current context is doing (its identity attributes), if any.
_run_scope: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("agentplatform_run", default=None)

FAILED_RUN = "failed"
TOOL_FAILURES = frozenset({"tool_error", "tool_timeout"})  # the tool itself failed (not a refusal)


class RunLike(Protocol):
    pk: Any
    session_id: Any
    owner_id: Any
    agent: Any  # with a `name`
    status: str
    error: Any  # {"code", "message", ...} or None
    steps: int
    input_tokens: int
    output_tokens: int


class ApprovalLike(Protocol):
    pk: Any
    run_id: Any
    session_id: Any
    owner_id: Any
    agent: Any  # with a `name`
    tool_name: str
    status: str
    channel: str
    requested_at: datetime
    decided_at: datetime | None


def current_run_scope() -> dict[str, str] | None:
    return _run_scope.get()


def in_run() -> bool:
    return _run_scope.get() is not None


@contextlib.contextmanager
def agent_run(run: RunLike, *, resumed: bool = False) -> Iterator[trace.Span]:
    """The `agent.run` span around executing `run`; its outcome is read from `run` at the end."""
    scope = {
        attr.RUN_ID: str(run.pk),
        attr.SESSION_ID: str(run.session_id),
        attr.AGENT_NAME: str(run.agent.name),
        attr.OWNER_ID: str(run.owner_id),
    }
    start: dict[str, Any] = {
        **scope,
        attr.GEN_AI_OPERATION: attr.OPERATION_INVOKE_AGENT,
        attr.GEN_AI_AGENT_NAME: scope[attr.AGENT_NAME],
        attr.GEN_AI_CONVERSATION_ID: scope[attr.SESSION_ID],
        attr.RUN_RESUMED: resumed,
    }
    token = _run_scope.set(scope)
    try:
        with tracer.start_as_current_span(attr.AGENT_RUN, attributes=start) as span:
            try:
                yield span
            finally:
                _record_run(span, run)
    finally:
        _run_scope.reset(token)


def _record_run(span: trace.Span, run: RunLike) -> None:
    error = run.error if isinstance(run.error, dict) else {}
    span.set_attributes(
        {
            attr.RUN_STATUS: str(run.status),
            attr.RUN_STEPS: run.steps,
            attr.RUN_INPUT_TOKENS: run.input_tokens,
            attr.RUN_OUTPUT_TOKENS: run.output_tokens,
        }
    )
    if error.get("code"):
        span.set_attribute(attr.RUN_ERROR_CODE, str(error["code"]))
    if run.status == FAILED_RUN:
        span.set_status(Status(StatusCode.ERROR, str(error.get("message", ""))[:500]))


@dataclass(frozen=True)
class ToolSpan:
    span: trace.Span

    def outcome(self, error_code: str, result: str) -> None:
        """How the call ended: "" (it ran) or the gate's error code, and the result the model reads."""
        self.span.set_attribute(attr.TOOL_OUTCOME, error_code or "ok")
        recorded = content(result)
        if recorded is not None:
            self.span.set_attribute(attr.GEN_AI_TOOL_RESULT, recorded)
        if error_code in TOOL_FAILURES:
            self.span.set_status(Status(StatusCode.ERROR, result[:500]))


@contextlib.contextmanager
def tool_call(name: str, call_id: str, permission: Any, arguments: Any) -> Iterator[ToolSpan]:
    """The `tool.call` span around one call through the gate (`permission`: its effective one)."""
    start: dict[str, Any] = {
        attr.GEN_AI_OPERATION: attr.OPERATION_EXECUTE_TOOL,
        attr.GEN_AI_TOOL_NAME: name,
        attr.GEN_AI_TOOL_CALL_ID: call_id,
        attr.TOOL_PERMISSION: str(getattr(permission, "value", permission)),
    }
    recorded = content(arguments)
    if recorded is not None:
        start[attr.GEN_AI_TOOL_ARGUMENTS] = recorded
    with tracer.start_as_current_span(attr.TOOL_CALL, attributes=start) as span:
        yield ToolSpan(span)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def approval_waited(request: ApprovalLike) -> None:
    """The `approval.wait` span of a decided (or expired) request: from when it was requested
    to its decision, in the current trace (the decision's request, or the expiry task)."""
    if request.decided_at is None:
        return
    span = tracer.start_span(attr.APPROVAL_WAIT, start_time=_ns(request.requested_at))
    if span.is_recording():
        span.set_attributes(
            {
                attr.RUN_ID: str(request.run_id),
                attr.SESSION_ID: str(request.session_id),
                attr.OWNER_ID: str(request.owner_id),
                attr.AGENT_NAME: str(request.agent.name),
                attr.APPROVAL_ID: str(request.pk),
                attr.GEN_AI_TOOL_NAME: request.tool_name,
                attr.APPROVAL_STATUS: str(request.status),
                attr.APPROVAL_CHANNEL: str(request.channel),
            }
        )
    span.end(end_time=_ns(request.decided_at))


@contextlib.contextmanager
def websocket_message(kind: str, session_id: Any) -> Iterator[trace.Span]:
    """A span around handling one WebSocket message (work it starts, like a run, joins its trace)."""
    start = {attr.WEBSOCKET_MESSAGE_TYPE: kind, attr.SESSION_ID: str(session_id)}
    with tracer.start_as_current_span(f"{attr.WEBSOCKET_PREFIX}{kind}", kind=SpanKind.SERVER, attributes=start) as span:
        yield span
