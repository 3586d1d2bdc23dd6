"""Tracing: OpenTelemetry spans for requests, runs, model calls, tool calls, context fetches
and approval waits, stored in ClickHouse and read back by the admin and the API.

The apps open spans through `tracing.spans` (agent_run, tool_call, context_fetch,
approval_waited, websocket_message); `tracing.setup` installs the rest once per process.
This package imports no app: the apps above register what it needs (`tracing.links`).
"""
