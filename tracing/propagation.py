"""Trace context through Celery: from the code that sends a task to the worker that runs it.

- Sending (`before_task_publish`): the current context goes into the message headers
  (W3C `traceparent`), with the time it was sent. Work a run hands off (the session's next
  queued run) starts its own trace instead, linked to the run that sent it.
- Running (`task_prerun`/`task_postrun`): the task's span `celery.task <name>` continues the
  sender's trace; it starts when the message was sent, and its first child `queue.wait`
  shows how long the message waited for a worker. A task sent with no context starts a
  trace of its own, except the housekeeping on the maintenance queue (every 30 s).
"""

from __future__ import annotations

import time
from typing import Any

from celery import signals
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentplatform.celery import Queue
from agentplatform.sdk import attributes as attr
from tracing.spans import in_run, tracer

_ACTIVE = "_agentplatform_span"  # on the task's request: (span, context token)
_LINKS = TraceContextTextMapPropagator()


def connect() -> None:
    signals.before_task_publish.connect(_inject, weak=False, dispatch_uid="agentplatform.tracing.publish")
    signals.task_prerun.connect(_start, weak=False, dispatch_uid="agentplatform.tracing.prerun")
    signals.task_failure.connect(_failed, weak=False, dispatch_uid="agentplatform.tracing.failure")
    signals.task_postrun.connect(_end, weak=False, dispatch_uid="agentplatform.tracing.postrun")


def disconnect() -> None:
    signals.before_task_publish.disconnect(dispatch_uid="agentplatform.tracing.publish")
    signals.task_prerun.disconnect(dispatch_uid="agentplatform.tracing.prerun")
    signals.task_failure.disconnect(dispatch_uid="agentplatform.tracing.failure")
    signals.task_postrun.disconnect(dispatch_uid="agentplatform.tracing.postrun")


def _inject(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    headers[attr.HEADER_PUBLISHED_NS] = time.time_ns()
    if not trace.get_current_span().get_span_context().is_valid:
        return
    if in_run():  # a hand-off: a new trace, linked to this one
        carrier: dict[str, str] = {}
        _LINKS.inject(carrier)
        headers[attr.HEADER_LINK] = carrier.get("traceparent", "")
    else:
        propagate.inject(headers)


class _RequestGetter(Getter[Any]):
    """Reads propagation headers from a task's request (Celery puts message headers there)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        return []


def _links(request: Any) -> list[Link]:
    traceparent = getattr(request, attr.HEADER_LINK, None)
    if not traceparent:
        return []
    linked = trace.get_current_span(_LINKS.extract({"traceparent": traceparent})).get_span_context()
    return [Link(linked)] if linked.is_valid else []


def _start(task_id: str = "", task: Any = None, **_: Any) -> None:
    request = task.request
    parent = propagate.extract(request, getter=_RequestGetter())
    links = _links(request)
    queue = str((getattr(request, "delivery_info", None) or {}).get("routing_key") or "")
    has_parent = trace.get_current_span(parent).get_span_context().is_valid
    if not has_parent and not links and queue == Queue.MAINTENANCE:
        return
    now = time.time_ns()
    published = getattr(request, attr.HEADER_PUBLISHED_NS, None)
    sent = min(published, now) if isinstance(published, int) else now
    span = tracer.start_span(
        f"{attr.TASK_PREFIX}{task.name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        start_time=sent,
        attributes={
            attr.MESSAGING_SYSTEM: "celery",
            attr.MESSAGING_DESTINATION: queue,
            attr.MESSAGING_MESSAGE_ID: task_id,
            attr.TASK_NAME: task.name,
        },
    )
    task_context = trace.set_span_in_context(span, parent)
    tracer.start_span(attr.QUEUE_WAIT, context=task_context, start_time=sent).end(end_time=now)
    setattr(request, _ACTIVE, (span, otel_context.attach(task_context)))


def _failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    active = getattr(getattr(sender, "request", None), _ACTIVE, None)
    if active is not None and exception is not None:
        active[0].record_exception(exception)
        active[0].set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"))


def _end(task: Any = None, **_: Any) -> None:
    active = getattr(task.request, _ACTIVE, None)
    if active is None:
        return
    span, token = active
    setattr(task.request, _ACTIVE, None)
    otel_context.detach(token)
    span.end()
