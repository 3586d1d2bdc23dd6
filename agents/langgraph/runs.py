"""LangGraph's run endpoints: start (in the background, waited for, or streamed), join,
join a stream (resuming after `Last-Event-ID`), get, list, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from asgiref.sync import async_to_sync
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import TextField
from agentplatform.api.sse import EventStreamRenderer, event_stream_response
from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput
from agentplatform.handlers import Deferred, deferrable
from agentplatform.pools import web_pool
from agentplatform.replicas import lag_tolerant
from agents import selectors, services
from agents.api.streams import run_events
from agents.langgraph import interrupts, streams, translate
from agents.langgraph import selectors as lg_selectors
from agents.langgraph.parts import ENDS
from agents.langgraph.schema import OBJECT, OBJECTS, STREAM_PART
from agents.langgraph.views import LangGraphPage, LangGraphView
from agents.models import ACTIVE_RUN_STATUSES, Run, RunStatus

STREAMED = {(200, "text/event-stream"): STREAM_PART}


class LangGraphRunCreate(serializers.Serializer):
    assistant_id = TextField()
    input = serializers.JSONField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, default=dict)
    multitask_strategy = serializers.ChoiceField(list(translate.IF_BUSY), default="reject")
    stream_mode = serializers.JSONField(required=False, allow_null=True)
    # `config` and `context` are accepted and not used: the platform's agents take no per-run
    # graph configuration (fields not declared here are ignored).
    # Refused: these need checkpoints or graph nodes, which the platform's agents do not have.
    command = serializers.JSONField(required=False, allow_null=True)
    checkpoint = serializers.JSONField(required=False, allow_null=True)
    checkpoint_id = serializers.CharField(required=False, allow_null=True)
    interrupt_before = serializers.JSONField(required=False, allow_null=True)
    interrupt_after = serializers.JSONField(required=False, allow_null=True)

    UNSUPPORTED = ("checkpoint", "checkpoint_id", "interrupt_before", "interrupt_after")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unsupported = [name for name in self.UNSUPPORTED if attrs.get(name)]
        if unsupported:
            raise serializers.ValidationError({unsupported[0]: ["Not supported by this server."]})
        return attrs


class RunsView(LangGraphView):
    """Starting a run, on a thread or (no thread) on a new one."""

    def start(self, thread_id: UUID | None, body: dict[str, Any] | None = None) -> tuple[Run, str, int]:
        """The run started, its multitask strategy, and the event it is followed after: 0 for
        a new run; for a `Command(resume=...)`, the paused run's last event before the decisions."""
        body = body if body is not None else self.body(LangGraphRunCreate)
        if body.get("command") is not None:
            if thread_id is None or body.get("input") is not None:
                message = "command: resume on a thread, without input."
                raise InvalidInput(message, details={"field": "command"})
            lg_selectors.get_thread(self.owner, thread_id)
            after = lg_selectors.last_event(thread_id)
            run = interrupts.resume(self.owner, self.api_key, thread_id, body["command"], actor=self.actor)
            return run, body["multitask_strategy"], after
        agent = lg_selectors.resolve_agent(body["assistant_id"], self.api_key)
        text = translate.human_input(body.get("input"))
        if thread_id is not None:
            lg_selectors.get_thread(self.owner, thread_id)  # 404 before anything is written
            services.assign_agent(self.owner, thread_id, agent)
        run = services.start_run(
            owner=self.owner,
            api_key=self.api_key,
            agent_name=agent.name,
            input=text,
            session_id=thread_id,
            metadata=body["metadata"],
            if_busy=translate.IF_BUSY[body["multitask_strategy"]],
        )
        return run, body["multitask_strategy"], 0


class RunCreateView(RunsView):
    @extend_schema(
        request=LangGraphRunCreate,
        responses={200: OBJECT},
        summary="Start a run in the background (on a new thread without a thread id)",
    )
    def post(self, request: Request, thread_id: UUID | None = None) -> Response:
        run, strategy, _ = self.start(thread_id)
        return Response(translate.run(run, strategy), headers=_locations(run))


class RunStreamView(RunsView):
    renderer_classes = [*LangGraphView.renderer_classes, EventStreamRenderer]

    @extend_schema(
        request=LangGraphRunCreate,
        responses=STREAMED,
        summary="Start a run and stream it (stream_mode: values, messages, messages-tuple, updates, events)",
    )
    def post(self, request: Request, thread_id: UUID | None = None) -> StreamingHttpResponse:
        body = self.body(LangGraphRunCreate)
        modes = streams.stream_modes(body.get("stream_mode"))
        run, _, after = self.start(thread_id, body)
        resumed = streams.Position.after_event(after) if after else None
        response = event_stream_response(streams.stream_run(run, modes, resumed, metadata=True))
        for name, value in _locations(run).items():
            response[name] = value
        # Where the SDK reconnects (with Last-Event-ID) should the stream drop: the same modes.
        response["Location"] = f"/threads/{run.session_id}/runs/{run.pk}/stream?" + urlencode(
            [("stream_mode", mode) for mode in modes]
        )
        return response


class RunWaitView(RunsView):
    @extend_schema(
        request=LangGraphRunCreate,
        responses={200: OBJECT},
        summary="Start a run and answer with the thread's values once it has finished or paused",
    )
    def post(self, request: Request, thread_id: UUID | None = None) -> HttpResponse:
        run, _, after = self.start(thread_id)
        return _when_finished(request, run, after)


def _locations(run: Run) -> dict[str, str]:
    return {"Content-Location": f"/threads/{run.session_id}/runs/{run.pk}"}


def _when_finished(request: Request, run: Run, after: int = 0) -> HttpResponse:
    """The thread's values once the run has finished or paused (or, past the wait limit, as
    they are). A resumed run is waited for through its events after `after`."""
    timeout = platform_settings().RUN_WAIT_SECONDS
    awaited = services.Awaited.of(run)  # what the wait keeps (not the run, its session, owner and key)
    if after:
        wait = functools.partial(_resumed_values, awaited, after, timeout)
        return Deferred(wait) if deferrable(request) else async_to_sync(wait)()
    if deferrable(request):  # the wait is on the event loop, holding no thread
        return Deferred(functools.partial(_awaited_values, awaited, timeout))
    services.wait_for_run(run, timeout)
    return _values_response(run)


async def _resumed_values(run: services.Awaited, after: int, timeout: float) -> HttpResponse:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            followed: Any = run_events(run.pk, run.session_id, after)  # an async generator, closed at once
            async with contextlib.aclosing(followed):
                async for event in followed:
                    if event is not None and event["type"] in ENDS:
                        break
    return await web_pool().run(_values_response, run)


async def _awaited_values(run: services.Awaited, timeout: float) -> HttpResponse:
    await services.await_run(run, timeout)
    return await web_pool().run(_values_response, run)


def _values_response(run: Run | services.Awaited) -> HttpResponse:
    fresh, _ = services.read_back(run)
    if fresh.status == RunStatus.FAILED:
        error = fresh.error or {}
        body: dict[str, Any] = {"__error__": {"error": error.get("code", "error"), "message": error.get("message", "")}}
    else:
        body = translate.values(lg_selectors.thread_messages(fresh.session_id))
        if fresh.status == RunStatus.AWAITING_APPROVAL:
            body["__interrupt__"] = [translate.interrupt(r) for r in lg_selectors.pending_approvals(fresh.session_id)]
    return JsonResponse(body, headers=_locations(fresh))


class LangGraphRunList(LangGraphPage):
    status = serializers.ChoiceField(
        ["pending", "running", "error", "success", "timeout", "interrupted"], required=False
    )


class RunCollectionView(RunCreateView):
    # GET lists a thread's runs, POST starts one in the background.

    @extend_schema(
        parameters=[LangGraphRunList],
        responses={200: OBJECTS},
        summary="A thread's runs, newest first",
        operation_id="langgraph_threads_runs_list",
    )
    @lag_tolerant
    def get(self, request: Request, thread_id: UUID) -> Response:
        query = LangGraphRunList(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        page = query.validated_data
        session = lg_selectors.get_thread(self.owner, thread_id)
        runs = selectors.owned_runs(self.owner).filter(session=session).order_by("-created_at")
        if "status" in page:
            runs = runs.filter(
                status__in=[ours for ours, theirs in translate.RUN_STATUS.items() if theirs == page["status"]]
            )
        found = runs[page["offset"] : page["offset"] + page["limit"]]
        return Response([translate.run(run) for run in found])


class RunDetailView(LangGraphView):
    @extend_schema(responses={200: OBJECT}, summary="A run")
    def get(self, request: Request, thread_id: UUID, run_id: UUID) -> Response:
        return Response(translate.run(lg_selectors.thread_run(self.owner, thread_id, run_id)))


class RunCancelView(LangGraphView):
    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("wait", bool, description="Answer once the run has stopped")],
        responses={202: OBJECT},
        summary="Cancel a run: a queued one at once, a running one at its next step",
    )
    def post(self, request: Request, thread_id: UUID, run_id: UUID) -> Response:
        run = services.cancel_run(self.owner, lg_selectors.thread_run(self.owner, thread_id, run_id).pk)
        if request.query_params.get("wait") in ("1", "true") and run.status in ACTIVE_RUN_STATUSES:
            run, _ = services.wait_for_run(run, platform_settings().RUN_WAIT_SECONDS)
        return Response(translate.run(run), status=status.HTTP_202_ACCEPTED)


class RunJoinView(LangGraphView):
    @extend_schema(
        responses={200: OBJECT},
        summary="The thread's values once the run has finished or paused",
    )
    def get(self, request: Request, thread_id: UUID, run_id: UUID) -> HttpResponse:
        return _when_finished(request, lg_selectors.thread_run(self.owner, thread_id, run_id))


class LangGraphJoinStream(serializers.Serializer):
    stream_mode = serializers.ListField(child=serializers.ChoiceField(streams.MODES), required=False)
    cancel_on_disconnect = serializers.BooleanField(default=False)


class RunJoinStreamView(LangGraphView):
    renderer_classes = [*LangGraphView.renderer_classes, EventStreamRenderer]

    @extend_schema(
        parameters=[
            LangGraphJoinStream,
            OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER, description="Resume after this part"),
        ],
        responses=STREAMED,
        summary="A run's stream, from its start or after Last-Event-ID, until the run ends or pauses",
    )
    def get(self, request: Request, thread_id: UUID, run_id: UUID) -> StreamingHttpResponse:
        query = LangGraphJoinStream(data={**request.query_params.dict(), **_lists(request, "stream_mode")})
        query.is_valid(raise_exception=True)
        if query.validated_data["cancel_on_disconnect"]:
            message = "cancel_on_disconnect is not supported: a run goes on without its followers."
            raise InvalidInput(message, details={"param": "cancel_on_disconnect"})
        run = lg_selectors.thread_run(self.owner, thread_id, run_id)
        raw = request.headers.get("Last-Event-ID")
        after = streams.Position.parse(raw) if raw else None
        modes = streams.stream_modes(query.validated_data.get("stream_mode"))
        return event_stream_response(streams.stream_run(run, modes, after))


def _lists(request: Request, *names: str) -> dict[str, list[str]]:
    # A parameter the SDK leaves unset comes as an empty value (httpx sends None so).
    return {name: [v for v in request.query_params.getlist(name) if v] for name in names}
