"""The A2A request handler: each method parses nothing (the SDK's dispatcher did), calls the
platform's service or selector on the web pool, and answers with the task the run is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as a2a
from a2a.utils.errors import (
    A2AError,
    InvalidParamsError,
    InvalidRequestError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    UnsupportedOperationError,
)

from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput, NotFound, PlatformError
from agentplatform.handlers import ADMISSION  # in the call context's state too
from agentplatform.pools import web_pool
from agentplatform.users import User
from agents import services
from agents.a2a_server import selectors, shapes, streams
from agents.errors import RunNotActive
from agents.models import ApiKey, Run

CALLER = "agentplatform.caller"  # in the call context's state: who calls, and which agent


@dataclass(frozen=True)
class Caller:
    owner: User
    api_key: ApiKey
    agent: str  # the name of the agent whose endpoint is called


def caller(context: ServerCallContext) -> Caller:
    found = context.state.get(CALLER)
    assert isinstance(found, Caller), "the A2A app puts the caller in every call's context"
    return found


def a2a_error(exc: PlatformError) -> A2AError:
    """A platform error as a JSON-RPC error, its machine-readable code in the error's details."""
    kind = InvalidParamsError if isinstance(exc, InvalidInput | NotFound) else InvalidRequestError
    return kind(exc.message, data={"code": exc.code})


def message_text(message: a2a.Message) -> str:
    """The text of a message's text parts (the platform's runs take text)."""
    if message.task_id:
        raise InvalidParamsError(
            "A message continues a conversation by its contextId; a task (a run) is not continued by its id: "
            "decide a paused task's approvals through /api/v1/approvals/."
        )
    text = "\n".join(part.text for part in message.parts if part.HasField("text"))
    if not text:
        raise InvalidParamsError("The message has no text part: this agent takes text.")
    return text


def start(who: Caller, request: a2a.SendMessageRequest) -> Run:
    """The run a message starts, in the session its contextId names (or a new one)."""
    text = message_text(request.message)
    session_id: UUID | None = None
    if request.message.context_id:
        try:
            session_id = UUID(request.message.context_id)
        except ValueError:
            raise InvalidParamsError(f"No context {request.message.context_id!r}.") from None
    try:
        return services.start_run(
            owner=who.owner, api_key=who.api_key, agent_name=who.agent, input=text, session_id=session_id
        )
    except PlatformError as exc:
        raise a2a_error(exc) from None


def cancel(who: Caller, task_id: str) -> a2a.Task:
    run = selectors.task_run(who.owner, who.agent, task_id)
    try:
        services.cancel_run(who.owner, run.pk)
    except RunNotActive as exc:
        raise TaskNotCancelableError(exc.message) from None
    return selectors.task(run.pk)


class RunRequestHandler(RequestHandler):
    """Tasks are the caller's runs; every read and write goes through the platform's services."""

    async def on_message_send(self, params: a2a.SendMessageRequest, context: ServerCallContext) -> a2a.Task:
        run = await _started(params, context)
        if not params.configuration.return_immediately:
            await services.await_run(run, platform_settings().RUN_WAIT_SECONDS)
        return await web_pool().run(selectors.task, run.pk)

    async def on_message_send_stream(
        self, params: a2a.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        run = await _started(params, context)
        yield shapes.task(run, [])  # as it was accepted: submitted
        async with contextlib.aclosing(streams.task_events(run)) as updates:
            async for update in updates:
                yield update

    async def on_get_task(self, params: a2a.GetTaskRequest, context: ServerCallContext) -> a2a.Task:
        who = caller(context)
        return await web_pool().run(selectors.owned_task, who.owner, who.agent, params.id)

    async def on_cancel_task(self, params: a2a.CancelTaskRequest, context: ServerCallContext) -> a2a.Task:
        return await web_pool().run(cancel, caller(context), params.id)

    async def on_list_tasks(self, params: a2a.ListTasksRequest, context: ServerCallContext) -> a2a.ListTasksResponse:
        raise UnsupportedOperationError("Listing tasks is not supported: GET /api/v1/sessions/ lists conversations.")

    async def on_subscribe_to_task(
        self, params: a2a.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        raise UnsupportedOperationError("Resubscribing is not supported: tasks/get reads a task's state.")
        yield  # an async generator, as the interface says

    async def on_create_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        raise _no_push()

    async def on_get_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        raise _no_push()

    async def on_list_task_push_notification_configs(self, params: Any, context: ServerCallContext) -> Any:
        raise _no_push()

    async def on_delete_task_push_notification_config(self, params: Any, context: ServerCallContext) -> None:
        raise _no_push()

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        raise UnsupportedOperationError("There is no extended agent card.")


async def _started(params: a2a.SendMessageRequest, context: ServerCallContext) -> Run:
    """The run the message starts; then the request gives back its place among those the web
    process admits (`agentplatform.handlers`): waiting for the run, or following it, holds none."""
    try:
        return await web_pool().run(start, caller(context), params)
    finally:
        admission = context.state.get(ADMISSION)
        if admission is not None:
            admission.release()


def _no_push() -> A2AError:
    return PushNotificationNotSupportedError("Push notifications are not supported (the platform's webhooks are).")
