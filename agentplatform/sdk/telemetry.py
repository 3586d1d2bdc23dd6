"""Spans for model calls (following the OpenTelemetry GenAI semantic conventions) and context fetches.

Only the OpenTelemetry API is used here (no SDK, no Django): without a configured tracer
provider every span is a no-op, and with one (the platform's, or your own) each model
call is a `chat {model}` client span with the provider, model, token usage and finish
reasons. Prompts and answers are recorded only with `AGENTPLATFORM_TRACE_CONTENT=true`,
redacted and cut to `AGENTPLATFORM_TRACE_CONTENT_MAX_CHARS`; the same rules apply to the
tool arguments and results the platform records.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentplatform.sdk import attributes as attr
from agentplatform.sdk.models import ModelRequest, ModelResponse, ProviderError, ToolCall

CONTENT_VARIABLE = "AGENTPLATFORM_TRACE_CONTENT"
MAX_CHARS_VARIABLE = "AGENTPLATFORM_TRACE_CONTENT_MAX_CHARS"
DEFAULT_MAX_CHARS = 2000
REDACTED = "[REDACTED]"

# Keys whose values are secrets, whatever they hold (password, api_key, Authorization, ...).
_SECRET_KEY = re.compile(
    r"passw(or)?d|passphrase|^pass$|secret|token(?!s)|api[-_]?key|authori[sz]ation|credential|cookie|private[-_]?key",
    re.IGNORECASE,
)
# Secrets that show up inside text: bearer tokens, provider and platform keys, JWTs, AWS keys.
_SECRET_TEXT = re.compile(
    r"(?i:bearer\s+)[\w.~+/=-]{8,}"
    r"|\b(?:sk|rk|pk)-[\w-]{12,}"
    r"|\bap_[\w-]{16,}"
    r"|\b(?:ghp|gho|ghs|ghu|glpat|xox[abpors])[-_][\w-]{12,}"
    r"|\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
)

tracer = trace.get_tracer("agentplatform.sdk")
M = TypeVar("M")


def recording_content() -> bool:
    return os.environ.get(CONTENT_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def _max_chars() -> int:
    raw = os.environ.get(MAX_CHARS_VARIABLE, "")
    return int(raw) if raw.strip().isdigit() else DEFAULT_MAX_CHARS


def redacted(value: Any) -> Any:
    """`value` with secrets replaced: values under secret-like keys, and secret-shaped text."""
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEY.search(str(k)) else redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(REDACTED, value)
    return value


def content(value: Any) -> str | None:
    """What a span may hold of a prompt, an argument or a result: None unless recording is
    on; else redacted JSON (or text), cut to the configured length."""
    if not recording_content():
        return None
    clean = redacted(value)
    text = clean if isinstance(clean, str) else json.dumps(clean, ensure_ascii=False, default=str)
    limit = _max_chars()
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit} more chars]"


def _message(role: str, text: str, calls: tuple[ToolCall, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {"role": role, "content": text}
    if calls:
        found["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in calls]
    return found


def _start_attributes(label: str, request: ModelRequest) -> dict[str, Any]:
    provider, _, model = label.partition(":")
    found: dict[str, Any] = {
        attr.GEN_AI_OPERATION: attr.OPERATION_CHAT,
        attr.GEN_AI_PROVIDER: provider,
        attr.GEN_AI_SYSTEM: provider,
        attr.GEN_AI_REQUEST_MODEL: model or provider,
    }
    if recording_content():
        found[attr.GEN_AI_INPUT_MESSAGES] = content(
            [_message(m.role, m.content, m.tool_calls) for m in request.messages]
        )
        if request.instructions:
            found[attr.GEN_AI_SYSTEM_INSTRUCTIONS] = content(request.instructions)
    return found


def _record_response(span: trace.Span, response: ModelResponse) -> None:
    span.set_attributes(
        {
            attr.GEN_AI_INPUT_TOKENS: response.usage.input_tokens,
            attr.GEN_AI_OUTPUT_TOKENS: response.usage.output_tokens,
            attr.GEN_AI_FINISH_REASONS: [response.stop_reason] if response.stop_reason else [],
        }
    )
    if recording_content():
        output = content([_message("assistant", response.text, response.tool_calls)])
        span.set_attribute(attr.GEN_AI_OUTPUT_MESSAGES, output or "")


Complete = Callable[[M, ModelRequest], ModelResponse]
AsyncComplete = Callable[[M, ModelRequest], Awaitable[ModelResponse]]


@contextlib.contextmanager
def _completion_span(provider: object, request: ModelRequest) -> Iterator[Callable[[ModelResponse], None]]:
    """A `chat {model}` span (the provider is `provider.label`); call what it yields with the response."""
    label = str(getattr(provider, "label", "unknown"))
    start = _start_attributes(label, request)
    name = f"{attr.OPERATION_CHAT} {start[attr.GEN_AI_REQUEST_MODEL]}"
    with tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=start) as span:
        try:
            yield functools.partial(_record_response, span)
        except ProviderError as exc:
            span.set_attribute(attr.ERROR_TYPE, str(exc.status or type(exc).__name__))
            raise


def traced_completion(complete: Complete[M]) -> Complete[M]:
    """Wraps a provider's `complete` in a `chat {model}` span."""

    @functools.wraps(complete)
    def wrapper(self: M, request: ModelRequest) -> ModelResponse:
        with _completion_span(self, request) as answered:
            response = complete(self, request)
            answered(response)
            return response

    return wrapper


def traced_acompletion(acomplete: AsyncComplete[M]) -> AsyncComplete[M]:
    """Wraps a provider's `acomplete` in a `chat {model}` span."""

    @functools.wraps(acomplete)
    async def wrapper(self: M, request: ModelRequest) -> ModelResponse:
        with _completion_span(self, request) as answered:
            response = await acomplete(self, request)
            answered(response)
            return response

    return wrapper


@dataclass(frozen=True)
class ContextSpan:
    span: trace.Span

    def fetched(self, *, items: int, cache_hit: bool = False, error: str = "", text: Any = None) -> None:
        """What the fetch returned: how many items, whether from the cache, why it failed (if
        it did) and, recorded only when content recording is on, the content itself."""
        self.span.set_attributes({attr.CONTEXT_ITEMS: items, attr.CONTEXT_CACHE_HIT: cache_hit})
        if error:
            self.span.set_status(Status(StatusCode.ERROR, error[:500]))
        recorded = content(text) if text is not None else None
        if recorded is not None:
            self.span.set_attribute(attr.CONTEXT_CONTENT, recorded)


@contextlib.contextmanager
def context_fetch(provider: str, source: str = "") -> Iterator[ContextSpan]:
    """The `context.fetch` span around fetching context from one provider for the current run.

    Usage: `with telemetry.context_fetch("mcp", "github") as fetch: ...; fetch.fetched(items=3)`.
    A failure raised inside is recorded on the span (and re-raised).
    """
    start = {attr.CONTEXT_PROVIDER: provider, attr.CONTEXT_SOURCE: source}
    with tracer.start_as_current_span(attr.CONTEXT_FETCH, kind=SpanKind.CLIENT, attributes=start) as span:
        yield ContextSpan(span)
