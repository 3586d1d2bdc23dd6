"""LangGraph Agent Server endpoints: parse LangGraph's body, call the platform's service or
selector, answer in LangGraph's shape (see `translate`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api import errors
from agentplatform.api.base import CallerAPIView
from agentplatform.api.sse import EventStreamRenderer, event_stream_response
from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput
from agentplatform.handlers import Deferred, deferrable
from agentplatform.pools import web_pool
from agentplatform.replicas import lag_tolerant
from agents import selectors, services
from agents.api.streams import run_events
from agents.auth import ApiKeyAuthentication, ApiKeyHeaderAuthentication
from agents.langgraph import interrupts, streams, translate
from agents.langgraph import selectors as lg_selectors
from agents.models import ACTIVE_RUN_STATUSES, Message, Run, RunStatus, Session


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The platform's error, in LangGraph's shape: `{"detail": message}` (with our `code`);
    a body that does not validate is 422, as LangGraph's server answers it."""
    response = errors.exception_handler(exc, context)
    if response is None:
        return None
    error = response.data["error"]
    code = status.HTTP_422_UNPROCESSABLE_ENTITY if response.status_code == status.HTTP_400_BAD_REQUEST else None
    headers = {name: value for name, value in response.items() if name.lower() != "content-type"}
    body = {"detail": error["message"], "code": error["code"]}
    return Response(body, status=code or response.status_code, headers=headers)


@extend_schema(exclude=True)
class LangGraphView(CallerAPIView):
    # The key in `X-Api-Key` (LangGraph's SDK) or as a bearer token; errors in LangGraph's shape.
    authentication_classes = [ApiKeyHeaderAuthentication, ApiKeyAuthentication]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self) -> Any:
        return exception_handler

    def body(self, serializer: type[serializers.Serializer]) -> dict[str, Any]:
        parsed = serializer(data=self.request.data if self.request.data is not None else {})
        parsed.is_valid(raise_exception=True)
        return dict(parsed.validated_data)


class Page(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)
    offset = serializers.IntegerField(min_value=0, default=0)


class AssistantSearch(Page):
    graph_id = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


class AssistantSearchView(LangGraphView):
    def post(self, request: Request) -> Response:
        body = self.body(AssistantSearch)
        agents = selectors.visible_agents(self.api_key).order_by("name")
        if "graph_id" in body:
            agents = agents.filter(name=body["graph_id"])
        if "name" in body:
            agents = agents.filter(name__icontains=body["name"])
        if body.get("metadata"):  # assistants carry no metadata: nothing matches
            agents = agents.none()
        page = agents[body["offset"] : body["offset"] + body["limit"]]
        return Response([translate.assistant(agent) for agent in page])


class AssistantDetailView(LangGraphView):
    def get(self, request: Request, assistant_id: str) -> Response:
        return Response(translate.assistant(lg_selectors.resolve_agent(assistant_id, self.api_key)))


class ThreadCreate(serializers.Serializer):
    metadata = serializers.DictField(required=False, default=dict)
    thread_id = serializers.UUIDField(required=False)
    if_exists = serializers.ChoiceField(["raise", "do_nothing"], default="raise")


class ThreadSearch(Page):
    metadata = serializers.DictField(required=False)
    ids = serializers.ListField(child=serializers.UUIDField(), required=False)
    status = serializers.ChoiceField(translate.THREAD_STATUSES, required=False)
    sort_by = serializers.ChoiceField(["thread_id", "created_at", "updated_at"], default="updated_at")
    sort_order = serializers.ChoiceField(["asc", "desc"], default="desc")


def _thread(session: Session, messages: list[Message] | None = None) -> dict[str, Any]:
    values = translate.values(messages if messages is not None else lg_selectors.thread_messages(session.pk))
    return translate.thread(session, translate.thread_status(getattr(session, "last_run_status", None)), values)


class ThreadListView(LangGraphView):
    def post(self, request: Request) -> Response:
        body = self.body(ThreadCreate)
        metadata = body["metadata"]
        if "thread_id" in body:
            message = "Threads are given ids by the server; leave thread_id out."
            raise InvalidInput(message, details={"field": "thread_id"})
        named = metadata.pop("graph_id", None) or metadata.pop("assistant_id", None)
        if named is not None:
            agent = lg_selectors.resolve_agent(str(named), self.api_key)
        else:  # named by the first run on the thread (`assign_agent`); until then, the first agent
            agent = selectors.visible_agents(self.api_key).order_by("name").first() or _no_assistant()
        session = services.create_session(owner=self.owner, agent=agent, metadata=metadata)
        return Response(_thread(session, []))


def _no_assistant() -> Any:
    raise InvalidInput("This API key may use no assistant.", details={"field": "assistant_id"})


class ThreadSearchView(LangGraphView):
    @lag_tolerant
    def post(self, request: Request) -> Response:
        body = self.body(ThreadSearch)
        found = lg_selectors.threads(self.owner)
        found = lg_selectors.with_metadata(found, body.get("metadata") or {})
        if "ids" in body:
            found = found.filter(pk__in=body["ids"])
        if "status" in body:
            found = lg_selectors.with_thread_status(found, body["status"])
        order = {"thread_id": "pk"}.get(body["sort_by"], body["sort_by"])
        found = found.order_by(order if body["sort_order"] == "asc" else f"-{order}")
        page = lg_selectors.with_messages(found[body["offset"] : body["offset"] + body["limit"]])
        return Response([_thread(session, session.ordered_messages) for session in page])


class ThreadDetailView(LangGraphView):
    def get(self, request: Request, thread_id: UUID) -> Response:
        return Response(_thread(lg_selectors.get_thread(self.owner, thread_id)))

    def delete(self, request: Request, thread_id: UUID) -> Response:
        services.delete_session(lg_selectors.get_thread(self.owner, thread_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ThreadStateView(LangGraphView):
    def get(self, request: Request, thread_id: UUID) -> Response:
        session = lg_selectors.get_thread(self.owner, thread_id)
        messages = lg_selectors.thread_messages(session.pk)
        pending = lg_selectors.pending_approvals(session.pk)
        return Response(translate.state(session, messages, lg_selectors.newest_run_id(session), pending))


class History(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)


class ThreadHistoryView(LangGraphView):
    @lag_tolerant
    def post(self, request: Request, thread_id: UUID) -> Response:
        limit = self.body(History)["limit"]
        session = lg_selectors.get_thread(self.owner, thread_id)
        return Response(lg_selectors.history(session, limit))


class RunCreate(serializers.Serializer):
    assistant_id = serializers.CharField()
    input = serializers.JSONField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, default=dict)
    multitask_strategy = serializers.ChoiceField(list(translate.IF_BUSY), default="reject")
    stream_mode = serializers.JSONField(required=False)
    # `config` and `context` are accepted and not used: the platform's agents take no per-run
    # graph configuration (fields not declared here are ignored).
    # Refused: these need checkpoints or graph nodes, which the platform's agents do not have.
    command = serializers.JSONField(required=False)
    checkpoint = serializers.JSONField(required=False)
    checkpoint_id = serializers.CharField(required=False)
    interrupt_before = serializers.JSONField(required=False)
    interrupt_after = serializers.JSONField(required=False)

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
        body = body if body is not None else self.body(RunCreate)
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
    def post(self, request: Request, thread_id: UUID | None = None) -> Response:
        run, strategy, _ = self.start(thread_id)
        return Response(translate.run(run, strategy), headers=_locations(run))


class RunStreamView(RunsView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    def post(self, request: Request, thread_id: UUID | None = None) -> StreamingHttpResponse:
        body = self.body(RunCreate)
        modes = _stream_modes(body.get("stream_mode"))
        run, _, after = self.start(thread_id, body)
        response = event_stream_response(streams.stream_run(run, modes, after))
        for name, value in _locations(run).items():
            response[name] = value
        return response


def _stream_modes(raw: Any) -> list[str]:
    modes = [raw] if isinstance(raw, str) else (raw or ["values"])
    if not isinstance(modes, list) or not all(mode in streams.MODES for mode in modes):
        supported = ", ".join(streams.MODES)
        raise InvalidInput(f"stream_mode: supported modes are {supported}.", details={"field": "stream_mode"})
    return modes


class RunWaitView(RunsView):
    def post(self, request: Request, thread_id: UUID | None = None) -> HttpResponse:
        run, _, after = self.start(thread_id)
        return _when_finished(request, run, after)


def _locations(run: Run) -> dict[str, str]:
    return {"Content-Location": f"/threads/{run.session_id}/runs/{run.pk}"}


def _when_finished(request: Request, run: Run, after: int = 0) -> HttpResponse:
    """The thread's values once the run has finished or paused (or, past the wait limit, as
    they are). A resumed run is waited for through its events after `after`."""
    timeout = platform_settings().RUN_WAIT_SECONDS
    if after:
        wait = functools.partial(_resumed_values, run, after, timeout)
        return Deferred(wait) if deferrable(request) else async_to_sync(wait)()
    if deferrable(request):  # the wait is on the event loop, holding no thread
        return Deferred(functools.partial(_awaited_values, run, timeout))
    services.wait_for_run(run, timeout)
    return _values_response(run)


async def _resumed_values(run: Run, after: int, timeout: float) -> HttpResponse:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for event in run_events(run.pk, run.session_id, after):
                if event is not None and event["type"] in streams.ENDS:
                    break
    return await web_pool().run(_values_response, run)


async def _awaited_values(run: Run, timeout: float) -> HttpResponse:
    await services.await_run(run, timeout)
    return await web_pool().run(_values_response, run)


def _values_response(run: Run) -> HttpResponse:
    fresh, _ = services.read_back(run)
    if fresh.status == RunStatus.FAILED:
        error = fresh.error or {}
        body: dict[str, Any] = {"__error__": {"error": error.get("code", "error"), "message": error.get("message", "")}}
    else:
        body = translate.values(lg_selectors.thread_messages(fresh.session_id))
        if fresh.status == RunStatus.AWAITING_APPROVAL:
            body["__interrupt__"] = [translate.interrupt(r) for r in lg_selectors.pending_approvals(fresh.session_id)]
    return JsonResponse(body, headers=_locations(fresh))


class RunCollectionView(RunCreateView):
    # GET lists a thread's runs, POST starts one in the background.

    @lag_tolerant
    def get(self, request: Request, thread_id: UUID) -> Response:
        page = self.body_from_query()
        session = lg_selectors.get_thread(self.owner, thread_id)
        runs = selectors.owned_runs(self.owner).filter(session=session).order_by("-created_at")
        if "status" in request.query_params:
            wanted = [ours for ours, theirs in translate.RUN_STATUS.items() if theirs == request.query_params["status"]]
            runs = runs.filter(status__in=wanted)
        found = runs[page["offset"] : page["offset"] + page["limit"]]
        return Response([translate.run(run) for run in found])

    def body_from_query(self) -> dict[str, Any]:
        page = Page(data=self.request.query_params)
        page.is_valid(raise_exception=True)
        return dict(page.validated_data)


class RunDetailView(LangGraphView):
    def get(self, request: Request, thread_id: UUID, run_id: UUID) -> Response:
        return Response(translate.run(lg_selectors.thread_run(self.owner, thread_id, run_id)))


class RunCancelView(LangGraphView):
    def post(self, request: Request, thread_id: UUID, run_id: UUID) -> Response:
        run = services.cancel_run(self.owner, lg_selectors.thread_run(self.owner, thread_id, run_id).pk)
        if request.query_params.get("wait") in ("1", "true") and run.status in ACTIVE_RUN_STATUSES:
            run, _ = services.wait_for_run(run, platform_settings().RUN_WAIT_SECONDS)
        return Response(translate.run(run), status=status.HTTP_202_ACCEPTED)


class RunJoinView(LangGraphView):
    def get(self, request: Request, thread_id: UUID, run_id: UUID) -> HttpResponse:
        return _when_finished(request, lg_selectors.thread_run(self.owner, thread_id, run_id))
