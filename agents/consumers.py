"""WebSocket `/ws/sessions/{id}/`: send input to a session, receive its events live, cancel.

Protocol (JSON text frames). The client authenticates with `Authorization: Bearer <key>`
or, from a browser, the subprotocols `["agentplatform", "bearer.<key>"]` (the server
selects `agentplatform`; the key is never echoed or logged). A refused handshake closes
with 4401 (no or bad key), 4403 (the key may not use this session's agent) or 4404 (no
such session of yours), after an `error` message saying why.

Client → server: `{"type": "run", "input": ..., "if_busy"?, "metadata"?, "idempotency_key"?}`,
`{"type": "cancel", "run_id"?}`, `{"type": "resume", "run_id": ..., "seq": ...}`,
`{"type": "approve", "approval_id": ..., "arguments"?, "comment"?}`, `{"type": "reject", "approval_id": ...,
"reason": ..., "comment"?}` (a key with the `approvals:decide` scope), `{"type": "ping"}`; any may carry
an `"id"`, echoed in the answer.
Server → client: `session.ready`, `run.accepted`, `run.cancelling`, `resumed`, `approval.accepted`, `pong`,
`error` ({code, message, details}), and the run events themselves (they carry `seq` and
`run_id`, exactly as over SSE), each once and in order, replayed after a `resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from agentplatform import replicas
from agentplatform.audit.actors import Actor
from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput, PlatformError
from agents import events, selectors, services
from agents.api import streams
from agents.api.serializers import (
    WsApproveSerializer,
    WsCancelSerializer,
    WsRejectSerializer,
    WsResumeSerializer,
    WsRunSerializer,
)
from agents.auth import authenticate_key
from agents.errors import AgentNotFound, ApiKeyRejected, SessionNotFound
from agents.models import ApiKey, Session
from approvals import selectors as approval_selectors
from approvals import services as approval_services
from approvals.models import Channel
from tracing import spans

logger = logging.getLogger(__name__)

SUBPROTOCOL = "agentplatform"
BEARER_PROTOCOL = "bearer."


class Close:
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404


def _credentials(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return key.strip()
    for protocol in scope.get("subprotocols", []):
        if protocol.startswith(BEARER_PROTOCOL):
            return protocol.removeprefix(BEARER_PROTOCOL)
    raise ApiKeyRejected("Send an API key: an Authorization header or the bearer.<key> subprotocol.")


_REFUSALS: dict[type[PlatformError], tuple[int, str]] = {
    ApiKeyRejected: (Close.UNAUTHORIZED, ""),  # the reason is the rejection's code
    SessionNotFound: (Close.NOT_FOUND, "session_not_found"),
    AgentNotFound: (Close.FORBIDDEN, "agent_not_permitted"),
}


@database_sync_to_async
def _open(scope: dict[str, Any], session_id: str) -> tuple[ApiKey, Session, datetime, dict[str, int]]:
    api_key = authenticate_key(_credentials(scope))
    session = selectors.get_session(api_key.user, session_id)
    selectors.get_agent(session.agent.name, api_key)  # a key restricted to other agents may not
    since = timezone.now()  # before the snapshot: a run created after it is new to this client
    return api_key, session, since, selectors.session_snapshot(session.pk)


class SessionConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str] = []

    async def connect(self) -> None:
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        protocol = SUBPROTOCOL if SUBPROTOCOL in self.scope.get("subprotocols", []) else None
        self.group = None
        try:
            self.api_key, self.session, since, active = await _open(self.scope, session_id)
        except (ApiKeyRejected, SessionNotFound, AgentNotFound) as exc:
            # A close code needs an open socket: accept, say why (Daphne sends no close
            # reason), then close at once.
            await self.accept(protocol)
            code, reason = _REFUSALS[type(exc)]
            error = {"code": reason or exc.code, "message": exc.message, "details": None}
            await self.send_json({"type": "error", "id": None, "error": error})
            await self.close(code=code)
            return
        self.group = events.session_group(self.session.pk)
        self.since, self.cursor, self.sending = since, streams.Cursor(active), asyncio.Lock()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept(protocol)
        self.heartbeat = asyncio.create_task(self._heartbeat())
        await self.send_json(
            {
                "type": "session.ready",
                "session_id": str(self.session.pk),
                "agent": self.session.agent.name,
                "active_runs": [{"run_id": run, "seq": seq} for run, seq in active.items()],
            }
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The consumer, then its cleanup however it ended: a send to a socket the client has
        just closed raises out of Channels' dispatch loop, and then `disconnect()` never runs."""
        self.group = None
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._leave()

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        """Stop the heartbeat, leave the session's group, and unsubscribe this consumer's channel."""
        if self.group is not None:
            self.heartbeat.cancel()
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "channel_name", None):
            await streams.release_channel(self.channel_layer, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, through the one
        # thread that runs the ORM: live events touch no database (a catch-up closes its own),
        # so they skip that queue rather than wait behind other clients' queries.
        if message["type"] == "run.events":
            await self.run_events(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        await self.receive_json(await self.decode_json(text_data) if text_data is not None else None)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except ValueError:
            return None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        request_id = content.get("id") if isinstance(content, dict) else None
        try:
            if not isinstance(content, dict):
                raise InvalidInput("Each message must be a JSON object.", details={"code": "malformed_json"})
            handler = self.HANDLERS.get(str(content.get("type")))
            if handler is None:
                raise InvalidInput(
                    f"Unknown message type {content.get('type')!r}.",
                    details={"field": "type", "expected": sorted(self.HANDLERS)},
                )
            if content.get("type") in self.WRITING and platform_settings().REPLICAS:
                # Before the write, so that no reply reaches the client before its mark does.
                await sync_to_async(replicas.wrote, thread_sensitive=False)(self.api_key.user.pk)
            with spans.websocket_message(str(content.get("type")), self.scope["url_route"]["kwargs"]["session_id"]):
                await handler(self, content, request_id)
        except PlatformError as exc:
            error = {"code": exc.code, "message": exc.message, "details": exc.details}
            await self.send_json({"type": "error", "id": request_id, "error": error})

    async def _run(self, content: dict[str, Any], request_id: Any) -> None:
        body = _valid(WsRunSerializer, content)
        run = await database_sync_to_async(services.start_run)(
            owner=self.api_key.user,
            api_key=self.api_key,
            agent_name=self.session.agent.name,
            session_id=self.session.pk,
            **body,
        )
        await self.send_json({"type": "run.accepted", "id": request_id, "run_id": str(run.pk), "status": run.status})

    async def _cancel(self, content: dict[str, Any], request_id: Any) -> None:
        body = _valid(WsCancelSerializer, content)
        run = await database_sync_to_async(services.cancel_session_run)(
            self.api_key.user, self.session.pk, body.get("run_id")
        )
        await self.send_json({"type": "run.cancelling", "id": request_id, "run_id": str(run.pk), "status": run.status})

    async def _resume(self, content: dict[str, Any], request_id: Any) -> None:
        body = _valid(WsResumeSerializer, content)
        run = await database_sync_to_async(selectors.get_run)(self.api_key.user, body["run_id"])
        if run.session_id != self.session.pk:
            raise InvalidInput("That run belongs to another session.", details={"field": "run_id"})
        run_id = str(run.pk)
        self.since = run.created_at
        self.cursor.last[run_id] = min(self.cursor.last.get(run_id, body["seq"]), body["seq"])
        self.cursor.ended.discard(run_id)
        replayed = await self._catch_up()
        await self.send_json({"type": "resumed", "id": request_id, "replayed": replayed})

    async def _ping(self, content: dict[str, Any], request_id: Any) -> None:
        await self.send_json({"type": "pong", "id": request_id})

    async def _approve(self, content: dict[str, Any], request_id: Any) -> None:
        body = _valid(WsApproveSerializer, content)
        decided = await database_sync_to_async(self._decide)(
            body["approval_id"], approval_services.approve, body.get("arguments"), body["comment"], request_id
        )
        await self.send_json({"type": "approval.accepted", "id": request_id, **decided})

    async def _reject(self, content: dict[str, Any], request_id: Any) -> None:
        body = _valid(WsRejectSerializer, content)
        decided = await database_sync_to_async(self._decide)(
            body["approval_id"], approval_services.reject, body["reason"], body["comment"], request_id
        )
        await self.send_json({"type": "approval.accepted", "id": request_id, **decided})

    def _decide(self, approval_id: Any, decide: Any, argument: Any, comment: str, request_id: Any) -> dict[str, Any]:
        """A decision on a request of this socket's session, through the same service as the API."""
        request = approval_selectors.get_request(self.api_key.user, approval_id)
        if request.session_id != self.session.pk:
            raise InvalidInput("That approval request belongs to another session.", details={"field": "approval_id"})
        actor = Actor.from_scope(self.scope, user=self.api_key.user, api_key=self.api_key, request_id=request_id)
        decider = approval_services.Decider(actor, Channel.WEBSOCKET, tuple(self.api_key.scopes))
        decided = decide(request, decider, argument, comment)
        return {"approval_id": str(decided.pk), "status": decided.status}

    WRITING = frozenset({"run", "cancel", "approve", "reject"})  # its caller then reads from the primary

    HANDLERS = {
        "run": _run,
        "cancel": _cancel,
        "resume": _resume,
        "approve": _approve,
        "reject": _reject,
        "ping": _ping,
    }

    async def run_events(self, message: dict[str, Any]) -> None:
        """A group message from a worker: deliver what comes next; on a gap, catch up from the store."""
        _, gap = await self._deliver(message["events"])
        if gap:
            await self._catch_up()

    async def _deliver(self, batch: list[dict[str, Any]]) -> tuple[int, bool]:
        async with self.sending:  # the heartbeat's catch-up and live messages interleave
            found, gap = self.cursor.take(batch)
            for event in found:
                await self.send_json(event)
            return len(found), gap

    async def _catch_up(self) -> int:
        sent = 0
        while True:
            found, _ = await self._deliver(await streams.stored_session(self.session.pk, self.since, self.cursor))
            sent += found
            if not found:
                return sent

    async def _heartbeat(self) -> None:
        """While a followed run is active, check the store now and then for anything the layer lost."""
        while True:
            await asyncio.sleep(streams.HEARTBEAT_SECONDS)
            if self.cursor.following():
                with contextlib.suppress(Exception):
                    await self._catch_up()


def _valid(serializer: Any, content: dict[str, Any]) -> dict[str, Any]:
    body = serializer(data={k: v for k, v in content.items() if k not in ("type", "id")})
    body.is_valid(raise_exception=False)
    if body.errors:
        field, problems = next(iter(body.errors.items()))
        raise InvalidInput(f"{field}: {problems[0]}", details=body.errors)
    return dict(body.validated_data)
