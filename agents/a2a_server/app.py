"""The A2A endpoints, an ASGI app mounted next to Django's (see `agentplatform.asgi`):

    GET  /a2a/{agent}/.well-known/agent-card.json   the agent's card
    POST /a2a/{agent}/                              JSON-RPC: SendMessage, SendStreamingMessage,
                                                    GetTask, CancelTask (and 0.3's message/send,
                                                    message/stream, tasks/get, tasks/cancel)

Both need the caller's API key as a bearer token, and name an agent the key may use; the
request is refused before the SDK's dispatcher sees it otherwise (401, 404, 429 in the
platform's error format). The SDK's dispatcher parses JSON-RPC and answers its errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.types import a2a_pb2 as a2a
from a2a.utils import constants
from django.conf import settings
from starlette import status
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentplatform import jsonlimits
from agentplatform.api.errors import error_body
from agentplatform.errors import PayloadTooLarge, PlatformError, RateLimited, Unavailable
from agentplatform.handlers import ADMISSION, Admission, overloaded
from agentplatform.pools import web_pool
from agents import selectors
from agents.a2a_server.handler import CALLER, Caller, RunRequestHandler
from agents.auth import authenticate_key
from agents.errors import ApiKeyRejected
from agents.models import Agent
from agents.services import limits

PREFIX = "/a2a"
CARD_PATH = f"{PREFIX}/{{agent}}{constants.AGENT_CARD_WELL_KNOWN_PATH}"
Admit = Callable[[], Admission | None]
Endpoint = Callable[[Request], Awaitable[Response]]
SCHEME = "bearer"  # the card's name for the security scheme: a platform API key


def resolve(authorization: str, agent_name: str) -> tuple[Caller, Agent]:
    """The caller a bearer key names, and the agent it may use (or the error that refuses it)."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiKeyRejected("Send an API key: Authorization: Bearer KEY.")
    api_key = authenticate_key(key.strip())
    limits.check_request(api_key.user, api_key)
    agent = selectors.get_agent(agent_name, api_key)
    return Caller(owner=api_key.user, api_key=api_key, agent=agent.name), agent


async def _resolved(request: Request) -> tuple[Caller, Agent]:
    return await web_pool().run(resolve, request.headers.get("authorization", ""), request.path_params["agent"])


def _refused(exc: PlatformError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, RateLimited):
        headers = exc.headers
    if isinstance(exc, ApiKeyRejected):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=headers)


def card(agent: Agent, base_url: str) -> a2a.AgentCard:
    """The agent's card: its JSON-RPC endpoint (protocol 1.0 and 0.3), a bearer key to call it."""
    url = f"{base_url}{PREFIX}/{agent.name}/"
    interfaces = [
        a2a.AgentInterface(url=url, protocol_binding=constants.TransportProtocol.JSONRPC, protocol_version=version)
        for version in (constants.PROTOCOL_VERSION_1_0, constants.PROTOCOL_VERSION_0_3)
    ]
    bearer = a2a.HTTPAuthSecurityScheme(scheme="Bearer", description="An API key of the platform.")
    description = agent.description or f"The {agent.name} agent."
    return a2a.AgentCard(
        name=agent.name,
        description=description,
        version="1.0.0",
        supported_interfaces=interfaces,
        capabilities=a2a.AgentCapabilities(streaming=True, push_notifications=False),
        security_schemes={SCHEME: a2a.SecurityScheme(http_auth_security_scheme=bearer)},
        security_requirements=[a2a.SecurityRequirement(schemes={SCHEME: a2a.StringList()})],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[a2a.AgentSkill(id=agent.name, name=agent.name, description=description, tags=["agent"])],
    )


async def agent_card(request: Request) -> Response:
    try:
        _, agent = await _resolved(request)
    except PlatformError as exc:
        return _refused(exc)
    return JSONResponse(agent_card_to_dict(card(agent, str(request.base_url).rstrip("/"))))


class _ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, with the caller this app resolved and the request's admission."""

    def build(self, request: Request) -> Any:
        context = super().build(request)
        context.state[CALLER] = request.scope[CALLER]
        context.state[ADMISSION] = request.scope[ADMISSION]
        return context


async def bounded(request: Request) -> Request:
    """The request with its body read, refused past the API's body limit, and, when it is
    JSON, past the API's JSON limits (malformed JSON is left for the dispatcher: -32700)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    read = bytearray()
    async for chunk in request.stream():
        read += chunk
        if len(read) > limit:
            raise PayloadTooLarge("The request body is too large.", details={"limit": limit})
    body = bytes(read)
    with contextlib.suppress(ValueError):  # not JSON: the dispatcher's parse error
        jsonlimits.check(json.loads(body, parse_int=jsonlimits.parse_int))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def admitted(admit: Admit, endpoint: Endpoint) -> Endpoint:
    """`endpoint` for a request the web process admits (see `agentplatform.handlers`): past
    its limit, 503 `overloaded` with `Retry-After` at once, before anything is read or
    written. The place is given back once the request's work on the web pool is done: when
    it starts a run, once the run is written (waiting for the run holds none)."""

    async def admitting(request: Request) -> Response:
        admission = admit()
        if admission is None:
            return _refused(overloaded())
        request.scope[ADMISSION] = admission
        try:
            return await endpoint(request)
        finally:
            admission.release()

    return admitting


def json_rpc(dispatcher: JsonRpcDispatcher) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            request.scope[CALLER], _ = await _resolved(request)
            request = await bounded(request)
        except PlatformError as exc:
            return _refused(exc)
        return await dispatcher.handle_requests(request)

    return endpoint


async def _not_routed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == status.HTTP_404_NOT_FOUND else "method_not_allowed"
    message = f"No A2A endpoint here: GET {CARD_PATH} or POST {PREFIX}/{{agent}}/."
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


def build(admit: Admit) -> Starlette:
    dispatcher = JsonRpcDispatcher(RunRequestHandler(), _ContextBuilder(), enable_v0_3_compat=True)
    return Starlette(
        exception_handlers={HTTPException: _not_routed},
        routes=[
            Route(CARD_PATH, admitted(admit, agent_card), methods=["GET"]),
            Route(f"{PREFIX}/{{agent}}/", admitted(admit, json_rpc(dispatcher)), methods=["POST"]),
        ],
    )
