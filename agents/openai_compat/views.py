"""OpenAI-compatible endpoints: parse OpenAI's body, call the platform's service or selector,
answer in OpenAI's shape (see `shapes`, `items`, `streams`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import CallerAPIView, TextField
from agentplatform.api.sse import EventStreamRenderer, event_stream_response
from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput
from agentplatform.handlers import Deferred, deferrable
from agentplatform.pools import web_pool
from agents import selectors, services
from agents.api.streams import run_events
from agents.auth import ApiKeyAuthentication
from agents.models import Run, RunStatus
from agents.openai_compat import conversation, decisions, errors, items, shapes, streams
from agents.openai_compat import selectors as oa_selectors
from agents.openai_compat.conversation import Conversation
from agents.openai_compat.schema import ANSWERED, OBJECT, OpenAISchema

Answer = Callable[[Run | services.Awaited], HttpResponse]  # the response to a run once it has been waited for


class OpenAIView(CallerAPIView):
    # The key as a bearer token; errors in OpenAI's shape.
    authentication_classes = [ApiKeyAuthentication]
    renderer_classes = [JSONRenderer, EventStreamRenderer]
    schema = OpenAISchema()

    def get_exception_handler(self) -> Any:
        return errors.exception_handler

    def body(self, serializer: type[serializers.Serializer]) -> dict[str, Any]:
        parsed = serializer(data=self.request.data if self.request.data is not None else {})
        parsed.is_valid(raise_exception=True)
        return dict(parsed.validated_data)


class ModelListView(OpenAIView):
    @extend_schema(
        responses={200: OBJECT}, summary="The agents the key may use, as models", operation_id="openai_models_list"
    )
    def get(self, request: Request) -> Response:
        agents = selectors.visible_agents(self.api_key).order_by("name")
        return Response({"object": "list", "data": [shapes.model(agent) for agent in agents]})


class ModelDetailView(OpenAIView):
    @extend_schema(responses={200: OBJECT}, summary="An agent, as a model", operation_id="openai_models_retrieve")
    def get(self, request: Request, model: str) -> Response:
        return Response(shapes.model(selectors.get_agent(model, self.api_key)))


def _no_tools() -> serializers.ListField:
    message = "Function tools are not supported: the agent calls its own tools, on the server."
    return serializers.ListField(required=False, allow_null=True, max_length=0, error_messages={"max_length": message})


class ChatCompletionCreate(serializers.Serializer):
    model = TextField()
    messages = serializers.JSONField()
    stream = serializers.BooleanField(default=False)
    stream_options = serializers.DictField(required=False, allow_null=True)
    n = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1)
    tools = _no_tools()
    functions = _no_tools()
    metadata = serializers.DictField(child=TextField(max_length=512), required=False, allow_null=True)
    # Sampling and format options (temperature, max_tokens, response_format, ...) are accepted
    # and not used: the agent's model settings apply (fields not declared here are ignored).


class ChatCompletionsView(OpenAIView):
    @extend_schema(
        request=ChatCompletionCreate,
        responses=ANSWERED,
        summary="A chat completion: one run of the agent named `model`, on the messages given",
        operation_id="openai_chat_completions_create",
    )
    def post(self, request: Request) -> HttpResponse | StreamingHttpResponse:
        body = self.body(ChatCompletionCreate)
        said = conversation.chat_conversation(body["messages"])
        run = services.start_run(
            owner=self.owner,
            api_key=self.api_key,
            agent_name=body["model"],
            input=said.text,
            history=said.history,
            metadata=body.get("metadata") or {},
        )
        if body["stream"]:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return event_stream_response(streams.chat_chunks(run, include_usage))
        return _when_finished(request, run, _completion)


def _completion(run: Run | services.Awaited) -> HttpResponse:
    fresh = oa_selectors.fresh_run(run)
    if fresh.status == RunStatus.COMPLETED:
        return JsonResponse(shapes.chat_completion(fresh))
    pending = oa_selectors.pending_approvals(fresh.pk) if fresh.status == RunStatus.AWAITING_APPROVAL else []
    return errors.error_response(errors.unfinished(fresh.pk, fresh.status, fresh.error, pending))


class ResponseCreate(serializers.Serializer):
    model = TextField(required=False)
    input = serializers.JSONField()
    previous_response_id = TextField(required=False, allow_null=True)
    stream = serializers.BooleanField(default=False)
    background = serializers.BooleanField(default=False)
    metadata = serializers.DictField(child=TextField(max_length=512), required=False, allow_null=True)
    tools = _no_tools()
    # `instructions` and the sampling and format options are accepted and not used: the
    # agent's instructions and model settings apply. Every response is stored (`store`).


class ResponsesView(OpenAIView):
    @extend_schema(
        request=ResponseCreate,
        responses=ANSWERED,
        summary="A response: a run (`previous_response_id` continues its session, or answers its approvals)",
        operation_id="openai_responses_create",
    )
    def post(self, request: Request) -> HttpResponse | StreamingHttpResponse:
        body = self.body(ResponseCreate)
        said = conversation.response_input(body["input"])
        previous = body.get("previous_response_id")
        run = oa_selectors.response_run(self.owner, previous) if previous else None
        if isinstance(said, list):  # answers to the approval requests of a paused response
            if run is None:
                message = "mcp_approval_response items answer a response: send its previous_response_id."
                raise InvalidInput(message, details={"param": "previous_response_id"})
            after = selectors.last_seq(run.pk)
            decisions.decide(self.owner, self.api_key, run, said, actor=self.actor)
            return self._answer(run, body, after)
        return self._answer(self._start(body, said, run), body)

    def _start(self, body: dict[str, Any], said: Conversation, previous: Run | None) -> Run:
        if previous is None and not body.get("model"):
            raise InvalidInput("model is required: the name of an agent (GET /models).", details={"param": "model"})
        if previous is not None and said.history:
            message = "With previous_response_id, send only the new user message: the session keeps the rest."
            raise InvalidInput(message, details={"param": "input"})
        agent_name = body.get("model") or (previous.agent.name if previous is not None else "")
        return services.start_run(
            owner=self.owner,
            api_key=self.api_key,
            agent_name=agent_name,
            input=said.text,
            session_id=previous.session_id if previous is not None else None,
            history=said.history,
            metadata=body.get("metadata") or {},
        )

    def _answer(self, run: Run, body: dict[str, Any], after: int = 0) -> HttpResponse | StreamingHttpResponse:
        """The response once the run has finished or paused (or, past the wait limit, as it is);
        at once in the background; or its stream. A resumed run is followed after `after`."""
        background = body["background"] or None  # (not stored: a response read back says None)
        undecided = bool(after and oa_selectors.pending_approvals(run.pk))  # it stays paused
        if body["stream"]:
            return event_stream_response(streams.response_events(run, after, background, follow=not undecided))
        answer = functools.partial(_response, background=background)
        if background or undecided:  # nothing to wait for
            return answer(run)
        return _when_finished(self.request, run, answer, after)


def _response(run: Run | services.Awaited, background: bool | None = None) -> HttpResponse:
    fresh = oa_selectors.fresh_run(run)
    output = items.Output(run.pk)
    for event in oa_selectors.stored_events(run.pk):
        output.feed(event)
    previous = oa_selectors.previous_run(fresh)
    return JsonResponse(shapes.response(fresh, output.snapshot(), previous=previous, background=background))


class ResponseDetailView(OpenAIView):
    @extend_schema(
        responses={200: OBJECT}, summary="A response (a run), as it is now", operation_id="openai_responses_retrieve"
    )
    def get(self, request: Request, response_id: str) -> HttpResponse:
        return _response(oa_selectors.response_run(self.owner, response_id))


class ResponseCancelView(OpenAIView):
    @extend_schema(
        request=None,
        responses={200: OBJECT},
        summary="Cancel a response (its run)",
        operation_id="openai_responses_cancel",
    )
    def post(self, request: Request, response_id: str) -> HttpResponse:
        run = services.cancel_run(self.owner, oa_selectors.response_run(self.owner, response_id).pk)
        return _response(run)


def _when_finished(request: Request, run: Run, answer: Answer, after: int = 0) -> HttpResponse:
    """`answer(run)` once the run has finished or paused, or past the wait limit. A resumed
    run is waited for through its events after `after`; the wait is on the event loop where
    the server allows it, holding no thread."""
    timeout = platform_settings().RUN_WAIT_SECONDS
    awaited = services.Awaited.of(run)  # what the wait keeps (not the run, its session, owner and key)
    if after:
        wait = functools.partial(_resumed, awaited, after, timeout, answer)
        return Deferred(wait) if deferrable(request) else async_to_sync(wait)()
    if deferrable(request):
        return Deferred(functools.partial(_awaited, awaited, timeout, answer))
    services.wait_for_run(run, timeout)
    return answer(run)


async def _awaited(run: services.Awaited, timeout: float, answer: Answer) -> HttpResponse:
    await services.await_run(run, timeout)
    return await web_pool().run(answer, run)


async def _resumed(run: services.Awaited, after: int, timeout: float, answer: Answer) -> HttpResponse:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for event in run_events(run.pk, run.session_id, after):
                if event is not None and event["type"] in items.ENDS:
                    break
    return await web_pool().run(answer, run)
