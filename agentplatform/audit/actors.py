"""Who made a change and from where: built once by the adapter (an admin page, an API view,
a WebSocket consumer, a management command) and handed to the service that records it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request

from agentplatform.audit.models import Channel
from agentplatform.signin import client_address
from agentplatform.users import Key, User

USER_AGENT_CHARS = 500
REQUEST_ID_CHARS = 100


@dataclass(frozen=True)
class Actor:
    channel: Channel
    user: User | None = None
    api_key: Key | None = None  # the API key (id and prefix recorded; never its hash), or None
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | Request, channel: Channel, *, api_key: Key | None = None) -> Actor:
        """The request's user (and `api_key`, the key it authenticated with) and origin."""
        user = getattr(request, "user", None)
        return cls(
            channel=channel,
            user=user if isinstance(user, User) else None,
            api_key=api_key,
            ip=client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR", "")),
            user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_CHARS],
            request_id=request.headers.get("X-Request-Id", "")[:REQUEST_ID_CHARS],
        )

    @classmethod
    def from_scope(cls, scope: dict[str, Any], *, user: User, api_key: Key | None, request_id: Any = None) -> Actor:
        """A WebSocket connection's key and origin; `request_id` is the message's `id`, if any."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
        client = scope.get("client") or [None]
        return cls(
            channel=Channel.WEBSOCKET,
            user=user,
            api_key=api_key,
            ip=client_address(client[0], headers.get("x-forwarded-for", "")),
            user_agent=headers.get("user-agent", "")[:USER_AGENT_CHARS],
            request_id="" if request_id is None else str(request_id)[:REQUEST_ID_CHARS],
        )

    @classmethod
    def command(cls, name: str, user: User | None = None) -> Actor:
        """A management command, run by whoever has a shell on the host."""
        return cls(channel=Channel.COMMAND, user=user, user_agent=f"manage.py {name}")

    @classmethod
    def system(cls, name: str) -> Actor:
        """The platform itself: `name` says what (a periodic task, a schedule's end)."""
        return cls(channel=Channel.SYSTEM, user_agent=name[:USER_AGENT_CHARS])
