"""Typed errors of the trace store and its API (mapped to HTTP in agentplatform/api/errors.py)."""

from __future__ import annotations

from agentplatform.errors import NotFound, Unavailable


class TraceNotFound(NotFound):
    code = "trace_not_found"
    default_message = "No such trace of yours."


class StoreUnavailable(Unavailable):
    """The span store (ClickHouse, or the embedded store's sink process) did not answer."""

    code = "trace_store_unavailable"
    default_message = "The trace store is not reachable right now."


class RouteUnavailable(StoreUnavailable):
    """Redis, which carries queries to the embedded store and spans to it, did not answer."""

    code = "redis_unavailable"
    default_message = "Redis (the route to the trace store) cannot be reached; try again shortly."


class RouteFull(Exception):
    """The Redis route to the embedded store holds as many spans as it may; the sender keeps them."""
