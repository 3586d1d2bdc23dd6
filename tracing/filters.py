"""Query parameters of the trace list and the metrics, parsed once for the API and the admin.

Bad values raise InvalidInput naming the parameter (400 `invalid_request` in the API, a
message in the admin).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from agentplatform.errors import InvalidCursor, InvalidInput
from tracing.selectors import LIST_LIMIT, NEVER, TraceFilter, ns

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[\w.:-]{1,100}$")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=366)
MAX_MS = 1e12


def _invalid(param: str, message: str) -> InvalidInput:
    return InvalidInput(f"{param}: {message}", details={"param": param})


def _name(params: Mapping[str, str], param: str) -> str:
    value = params.get(param, "").strip()
    if value and not _NAME.match(value):
        raise _invalid(param, "expected a name (letters, digits, _ . : -).")
    return value


def _run(params: Mapping[str, str]) -> str:
    value = params.get("run", "").strip()
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid("run", "expected a run id (a UUID).") from None


def moment(params: Mapping[str, str], param: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC when it names no zone)."""
    value = params.get(param, "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(param, "expected an ISO 8601 date or time, e.g. 2026-01-31T09:00:00Z.") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _number(params: Mapping[str, str], param: str) -> float:
    value = params.get(param, "").strip()
    if not value:
        return 0.0
    try:
        number = float(value)
    except ValueError:
        raise _invalid(param, "expected a number of milliseconds.") from None
    if not 0 <= number < MAX_MS:
        raise _invalid(param, "expected a number of milliseconds, 0 or more.")
    return number


def _flag(params: Mapping[str, str], param: str) -> bool:
    value = params.get(param, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise _invalid(param, "expected true or false.")
    return value in _TRUE


def _limit(params: Mapping[str, str]) -> int:
    value = params.get("limit", "").strip()
    if not value:
        return 50
    if not value.isdigit() or not 1 <= int(value) <= LIST_LIMIT:
        raise _invalid("limit", f"expected a whole number from 1 to {LIST_LIMIT}.")
    return int(value)


def encode_cursor(cursor: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{cursor[0]}:{cursor[1]}".encode()).decode().rstrip("=")


def _cursor(params: Mapping[str, str]) -> tuple[int, str] | None:
    value = params.get("cursor", "").strip()
    if not value:
        return None
    try:
        started, _, trace_id = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode().partition(":")
        if TRACE_ID.match(trace_id) and started.isdigit() and int(started) < 2**63:
            return int(started), trace_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidCursor(details={"param": "cursor"})


def trace_filter(params: Mapping[str, str]) -> TraceFilter:
    since, until = moment(params, "from"), moment(params, "to")
    if since is not None and until is not None and since >= until:
        raise _invalid("to", "must be later than from.")
    return TraceFilter(
        agent=_name(params, "agent"),
        status=_name(params, "status"),
        run=_run(params),
        since_ns=ns(since) if since else 0,
        until_ns=ns(until) if until else NEVER,
        min_duration_ms=_number(params, "min_duration_ms"),
        errors_only=_flag(params, "errors"),
        limit=_limit(params),
        before=_cursor(params),
    )


def trace_id(value: str) -> str:
    """A trace id as the store keeps it: 32 lower-case hex digits."""
    normalized = value.strip().lower()
    if not TRACE_ID.match(normalized):
        raise _invalid("trace_id", "expected 32 hexadecimal digits.")
    return normalized


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    agent: str


def metrics_window(params: Mapping[str, str]) -> Window:
    """`from` and `to` (default: the last 24 hours, at most a year), and `agent`."""
    until = moment(params, "to") or timezone.now()
    since = moment(params, "from") or until - DEFAULT_WINDOW
    if since >= until:
        raise _invalid("to", "must be later than from.")
    if until - since > MAX_WINDOW:
        raise _invalid("from", "the window may span at most 366 days.")
    return Window(since, until, _name(params, "agent"))
