"""Typed errors of the trace store and its API (mapped to HTTP in agentplatform/api/errors.py)."""

from __future__ import annotations

from agentplatform.errors import NotFound, PlatformError


class TraceNotFound(NotFound):
    code = "trace_not_found"
    default_message = "No such trace of yours."


class StoreUnavailable(PlatformError):
    """The span store (ClickHouse, or the embedded store's sink process) did not answer."""

    status = 503
    code = "trace_store_unavailable"
    default_message = "The trace store is not reachable right now."


class RouteFull(Exception):
    """The Redis route to the embedded store holds as many spans as it may; the sender keeps them."""
