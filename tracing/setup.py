"""Tracing set-up, once per process: the span processor, request spans, Celery propagation.

`install()` runs when Django is ready (`TracingConfig.ready`: Daphne, manage.py commands,
and the Celery worker's main process, where the threads pool runs tasks), and again, as
a no-op, at `worker_init`. It creates no thread and no connection: those belong to the
process that first exports a span, so a process forked after it (a prefork Celery child,
re-armed by `worker_process_init`) starts with its own.

Your own OpenTelemetry set-up keeps working: if a TracerProvider is already set when
Django starts (opentelemetry-instrument, or your settings), our processor is added to it,
next to your processors and exporters. Otherwise ours is set, with an OTLP exporter
alongside when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from celery import signals
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from tracing import propagation, store
from tracing.conf import tracing_settings
from tracing.processor import StoreSpanProcessor

logger = logging.getLogger(__name__)

# Paths not traced: static files, health checks, the admin (the trace viewer would trace
# itself) and the trace API. OTEL_PYTHON_DJANGO_EXCLUDED_URLS or TRACING["EXCLUDED_URLS"] replace them.
DEFAULT_EXCLUDED_URLS = "/static/,/api/v1/health/,/api/v1/ready/,/admin/,/api/v1/traces,/api/v1/metrics/"
OTLP_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass
class Installed:
    processor: StoreSpanProcessor
    provider: trace.TracerProvider
    ours: bool  # we set the provider (else it is the user's)


class _Process:
    installed: Installed | None = None


def installed() -> Installed | None:
    return _Process.installed


def install() -> Installed | None:
    """Set up tracing in this process if it is enabled (idempotent)."""
    conf = tracing_settings()
    if _Process.installed is not None or not conf.ENABLED:
        return _Process.installed
    processor = StoreSpanProcessor(
        store.insert_spans, max_buffer=conf.BUFFER_SPANS, batch=conf.BATCH_SPANS, interval=conf.FLUSH_INTERVAL
    )
    provider, ours = _provider(processor)
    if provider is None:
        return None
    DjangoInstrumentor().instrument(
        response_hook=_response_hook,
        tracer_provider=provider if ours else None,
        excluded_urls=os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS") or conf.EXCLUDED_URLS or DEFAULT_EXCLUDED_URLS,
    )
    propagation.connect()
    _Process.installed = Installed(processor, provider, ours)
    return _Process.installed


def traced_asgi(app: Any) -> Any:
    """An ASGI app served beside Django (the A2A endpoints) with a server span for each
    request, as Django's requests have, when tracing is installed: the runs its requests
    start are its children. (The MCP server needs none: the mcp SDK makes a server span
    for each call, continuing the client's trace.)"""
    done = installed()
    if done is None:
        return app
    provider = done.provider if done.ours else None
    return OpenTelemetryMiddleware(app, tracer_provider=provider, exclude_spans=["receive", "send"])


STATUS_ATTRIBUTES = ("http.status_code", "http.response.status_code")  # old and new HTTP conventions


def _response_hook(span: trace.Span, request: Any, response: Any) -> None:
    """A response resolved later on the event loop (a request waiting for its run): its
    request span ends then, with the status the client got, not at the middleware's exit."""
    on_resolved = getattr(response, "on_resolved", None)
    if on_resolved is None or not isinstance(span, SDKSpan) or not span.is_recording():
        return
    end = span.end
    span.end = lambda end_time=None: None  # type: ignore[method-assign]  # the middleware's exit, postponed

    def resolved(final: Any) -> None:
        span.end = end  # type: ignore[method-assign]
        for name in STATUS_ATTRIBUTES:
            if span.attributes is not None and name in span.attributes:
                span.set_attribute(name, final.status_code)
        span.end()

    on_resolved(resolved)


def _provider(processor: StoreSpanProcessor) -> tuple[trace.TracerProvider | None, bool]:
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):  # nobody set one: ours
        conf = tracing_settings()
        provider = TracerProvider(resource=Resource.create({"service.name": conf.SERVICE_NAME}))
        provider.add_span_processor(processor)
        if any(os.environ.get(name) for name in OTLP_VARIABLES):
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        trace.set_tracer_provider(provider)
        return provider, True
    add = getattr(current, "add_span_processor", None)
    if add is None:
        logger.warning(
            "tracing is not stored: the tracer provider set in this process (%s) takes no span processor",
            type(current).__name__,
        )
        return None, False
    add(processor)  # the user's provider: theirs keep exporting, ours stores the same spans
    logger.info("tracing: our span processor was added to the existing %s", type(current).__name__)
    return current, False


def _otlp_exporter() -> SpanExporter:
    # Imported only when configured: it loads protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter()


def uninstall() -> None:
    """Stop storing spans in this process (tests): the processor is shut down, requests and
    tasks are no longer traced. A provider we set stays set (OpenTelemetry allows one)."""
    done = _Process.installed
    if done is None:
        return
    DjangoInstrumentor().uninstrument()
    propagation.disconnect()
    done.processor.shutdown()
    _Process.installed = None


def after_fork(**_: object) -> None:
    """`worker_process_init`: a prefork child starts with an empty buffer of its own."""
    done = install()
    if done is not None:
        done.processor.after_fork()


def connect_worker_hooks() -> None:
    signals.worker_init.connect(lambda **_: install(), weak=False, dispatch_uid="agentplatform.tracing.init")
    signals.worker_process_init.connect(after_fork, weak=False, dispatch_uid="agentplatform.tracing.fork")
