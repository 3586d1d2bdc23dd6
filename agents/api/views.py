"""REST adapters: parse, call one service or selector, shape the output."""

from __future__ import annotations

import functools
from typing import Any
from uuid import UUID

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform import dependencies, replicas
from agentplatform.api.base import CallerAPIView, Cursor, ErrorSerializer
from agentplatform.api.sse import EVENT_SCHEMA, EventStreamRenderer, event_stream_response
from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput
from agentplatform.handlers import Deferred, deferrable
from agentplatform.pools import web_pool
from agentplatform.replicas import lag_tolerant
from agents import selectors, services
from agents.api.serializers import (
    AgentSerializer,
    FiringSerializer,
    MessageSerializer,
    RunCreateSerializer,
    RunResultSerializer,
    RunSerializer,
    ScheduleInputSerializer,
    ScheduleSerializer,
    SessionCreateSerializer,
    SessionSerializer,
    SessionUpdateSerializer,
)
from agents.api.streams import follow_run
from agents.models import ACTIVE_RUN_STATUSES, Message, Run
from tracing import store


class AgentListView(CallerAPIView):
    @extend_schema(
        operation_id="agents_list",
        responses=inline_serializer("AgentList", {"results": AgentSerializer(many=True)}),
        summary="List the agents this key may use",
    )
    def get(self, request: Request) -> Response:
        agents = selectors.visible_agents(self.api_key).prefetch_related("tool_rows")
        return Response({"results": AgentSerializer(agents, many=True).data})


class AgentDetailView(CallerAPIView):
    @extend_schema(responses=AgentSerializer, summary="An agent with its tools, schemas and permissions")
    def get(self, request: Request, agent: str) -> Response:
        return Response(AgentSerializer(selectors.get_agent(agent, self.api_key, with_tools=True)).data)


class AgentRunsView(CallerAPIView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        request=RunCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Send a request again safely: the same key and body answer the same run; "
                "the same key with another body answers 422.",
            )
        ],
        responses={
            201: RunResultSerializer,
            202: RunResultSerializer,
            (200, "text/event-stream"): EVENT_SCHEMA,
            **dict.fromkeys((400, 401, 404, 409, 413, 422, 429), ErrorSerializer),
        },
        summary="Run the agent: wait for the finished run (201), or 202 in the background, or stream its events",
        description=(
            "By default the request waits for a worker to finish the run (201) and, past "
            "AGENTPLATFORM_RUN_WAIT_SECONDS, answers 202 while the run goes on. `background: true` "
            "answers 202 at once; `stream: true` answers with the run's events as Server-Sent Events."
        ),
    )
    def post(self, request: Request, agent: str) -> HttpResponse | StreamingHttpResponse:
        body = RunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = dict(body.validated_data)
        background, stream = options.pop("background"), options.pop("stream")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
            raise InvalidInput(
                f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters.",
                details={"header": "Idempotency-Key"},
            )
        run = services.start_run(
            owner=self.owner, api_key=self.api_key, agent_name=agent, idempotency_key=key, **options
        )
        if stream:
            return event_stream_response(follow_run(run.pk, run.session_id, 0))
        if background:
            return _run_response(run, [], accepted=True)
        timeout = platform_settings().RUN_WAIT_SECONDS
        if deferrable(request):  # the wait is on the event loop, holding no thread
            return Deferred(functools.partial(_finished, services.Awaited.of(run), timeout))
        return _run_response(*services.wait_for_run(run, timeout))


MAX_IDEMPOTENCY_KEY = 200


async def _finished(run: services.Awaited, timeout: float) -> HttpResponse:
    """The run's response once it has finished (201), or past `timeout` as it is (202)."""
    await services.await_run(run, timeout)
    return await web_pool().run(_rendered, run)


def _rendered(run: services.Awaited) -> HttpResponse:
    response = _run_response(*services.read_back(run))
    headers = {"Location": response["Location"]}
    body = JSONRenderer().render(response.data)
    return HttpResponse(body, status=response.status_code, headers=headers, content_type="application/json")


def _run_response(run: Run, messages: list[Message], *, accepted: bool = False) -> Response:
    """201 with the finished run, or 202 (always, in the background mode) with where to follow it."""
    data = {**RunSerializer(run).data, "messages": MessageSerializer(messages, many=True).data}
    finished = run.status not in ACTIVE_RUN_STATUSES
    code = status.HTTP_201_CREATED if finished and not accepted else status.HTTP_202_ACCEPTED
    return Response(data, status=code, headers={"Location": f"/api/v1/runs/{run.pk}/"})


class SessionListView(CallerAPIView):
    pagination_class = Cursor

    @extend_schema(
        parameters=[OpenApiParameter("agent", str, description="Only this agent's sessions")],
        responses=SessionSerializer(many=True),
        summary="Your sessions, newest first",
    )
    @lag_tolerant
    def get(self, request: Request) -> Response:
        sessions = selectors.owned_sessions(self.owner)
        if "agent" in request.query_params:
            sessions = sessions.filter(agent__name=request.query_params["agent"])
        return self.page(sessions, SessionSerializer)

    @extend_schema(request=SessionCreateSerializer, responses={201: SessionSerializer}, summary="Start a session")
    def post(self, request: Request) -> Response:
        body = SessionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        agent = selectors.get_agent(data.pop("agent"), self.api_key)
        session = services.create_session(owner=self.owner, agent=agent, **data)
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailView(CallerAPIView):
    @extend_schema(responses=SessionSerializer, summary="A session")
    def get(self, request: Request, session_id: UUID) -> Response:
        return Response(SessionSerializer(selectors.get_session(self.owner, session_id)).data)

    @extend_schema(request=SessionUpdateSerializer, responses=SessionSerializer, summary="Rename or re-tag a session")
    def patch(self, request: Request, session_id: UUID) -> Response:
        session = selectors.get_session(self.owner, session_id)
        body = SessionUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(SessionSerializer(services.update_session(session, **body.validated_data)).data)

    @extend_schema(responses={204: None}, summary="Delete a session with its runs and messages")
    def delete(self, request: Request, session_id: UUID) -> Response:
        services.delete_session(selectors.get_session(self.owner, session_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageCursor(Cursor):
    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        order = request.query_params.get("order", "asc")
        if order not in ("asc", "desc"):
            raise InvalidInput("order must be 'asc' or 'desc'.", details={"param": "order"})
        return ("position",) if order == "asc" else ("-position",)


class SessionMessagesView(CallerAPIView):
    pagination_class = MessageCursor

    @extend_schema(
        parameters=[
            OpenApiParameter("order", str, enum=["asc", "desc"], description="asc: oldest first (default)"),
            OpenApiParameter("limit", int, description="Page size, 1-200 (default 50)"),
            OpenApiParameter("cursor", str, description="From the previous page's next/previous link"),
        ],
        responses=MessageSerializer(many=True),
        summary="A session's messages",
    )
    @lag_tolerant
    def get(self, request: Request, session_id: UUID) -> Response:
        owned = selectors.owned_session_id(self.owner, session_id)
        return self.page(selectors.message_history(owned), MessageSerializer)


class SessionRunsView(CallerAPIView):
    pagination_class = Cursor

    @extend_schema(responses=RunSerializer(many=True), summary="A session's runs, newest first")
    @lag_tolerant
    def get(self, request: Request, session_id: UUID) -> Response:
        session = selectors.get_session(self.owner, session_id)
        return self.page(selectors.owned_runs(self.owner).filter(session=session), RunSerializer)


class RunDetailView(CallerAPIView):
    @extend_schema(responses=RunSerializer, summary="A run")
    def get(self, request: Request, run_id: UUID) -> Response:
        return Response(RunSerializer(selectors.get_run(self.owner, run_id)).data)


class RunCancelView(CallerAPIView):
    @extend_schema(
        request=None,
        responses={200: RunSerializer, 202: RunSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
        summary="Cancel a run: a queued one at once (200), a running one at its next step (202)",
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = services.cancel_run(self.owner, run_id)
        code = status.HTTP_202_ACCEPTED if run.status in ACTIVE_RUN_STATUSES else status.HTTP_200_OK
        return Response(RunSerializer(run).data, status=code)


class RunEventsView(CallerAPIView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, description="Resume after this event"),
            OpenApiParameter("after", int, description="The same as Last-Event-ID, for clients that cannot set it"),
        ],
        responses={(200, "text/event-stream"): EVENT_SCHEMA},
        summary="A run's events as Server-Sent Events, replayed from the start or after Last-Event-ID",
    )
    def get(self, request: Request, run_id: UUID) -> StreamingHttpResponse:
        run = selectors.get_run(self.owner, run_id)
        raw = request.headers.get("Last-Event-ID") or request.query_params.get("after") or "0"
        if not raw.isdigit():
            raise InvalidInput("Last-Event-ID must be a non-negative integer.", details={"param": "Last-Event-ID"})
        return event_stream_response(follow_run(run.pk, run.session_id, int(raw)))


SCHEDULE_ERRORS = dict.fromkeys((400, 404, 413), ErrorSerializer)


class ScheduleListView(CallerAPIView):
    pagination_class = Cursor

    @extend_schema(responses=ScheduleSerializer(many=True), summary="Your schedules, newest first")
    @lag_tolerant
    def get(self, request: Request) -> Response:
        return self.page(selectors.owned_schedules(self.owner), ScheduleSerializer)

    @extend_schema(
        request=ScheduleInputSerializer,
        responses={201: ScheduleSerializer, **SCHEDULE_ERRORS},
        summary="Schedule an agent job: a cron expression (with a time zone) or an interval",
        description="Celery beat picks it up within seconds. A bad cron expression, time zone, interval, "
        "end date or session answers 400 `invalid_schedule` with `details.field` naming the field.",
    )
    def post(self, request: Request) -> Response:
        body = ScheduleInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        agent = selectors.get_agent(data.pop("agent"), self.api_key)
        schedule = services.create_schedule(
            owner=self.owner, api_key=self.api_key, actor=self.actor, agent=agent, **data
        )
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailView(CallerAPIView):
    @extend_schema(responses=ScheduleSerializer, summary="A schedule, with its next and last firing")
    def get(self, request: Request, schedule_id: UUID) -> Response:
        return Response(ScheduleSerializer(selectors.get_schedule(self.owner, schedule_id)).data)

    @extend_schema(
        request=ScheduleInputSerializer,
        responses={200: ScheduleSerializer, **SCHEDULE_ERRORS},
        summary="Change a schedule (beat picks it up within seconds, no restart)",
    )
    def patch(self, request: Request, schedule_id: UUID) -> Response:
        body = ScheduleInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        if "agent" in changes:
            changes["agent"] = selectors.get_agent(changes["agent"], self.api_key)
        schedule = services.update_schedule(self.owner, schedule_id, changes, actor=self.actor)
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(responses={204: None, 404: ErrorSerializer}, summary="Delete a schedule (its runs stay)")
    def delete(self, request: Request, schedule_id: UUID) -> Response:
        services.delete_schedule(selectors.get_schedule(self.owner, schedule_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScheduleRunsView(CallerAPIView):
    pagination_class = Cursor

    @extend_schema(responses=RunSerializer(many=True), summary="The runs a schedule started, newest first")
    @lag_tolerant
    def get(self, request: Request, schedule_id: UUID) -> Response:
        schedule = selectors.get_schedule(self.owner, schedule_id)
        return self.page(selectors.owned_runs(self.owner).filter(schedule=schedule), RunSerializer)


class ScheduleFiringsView(CallerAPIView):
    pagination_class = Cursor

    @extend_schema(
        responses=FiringSerializer(many=True),
        summary="Each time beat fired the schedule, newest first: started, skipped (and why), failed or ended",
    )
    @lag_tolerant
    def get(self, request: Request, schedule_id: UUID) -> Response:
        schedule = selectors.get_schedule(self.owner, schedule_id)
        return self.page(selectors.schedule_firings(schedule), FiringSerializer)


class HealthView(CallerAPIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: dict}, summary="The process is up")
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyView(CallerAPIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses={200: dict, 503: dict},
        summary="The database, Redis, the broker and the span route answer",
        description="Each dependency's status: `ok`, `off` (tracing disabled), or what failed (then 503). "
        "With read replicas, `replicas` details each one (`ok`, `lagging` or `down`, its lag, the reads it "
        "did not serve); a replica that is not `ok` does not make the process unready.",
    )
    def get(self, request: Request) -> Response:
        ready, statuses = dependencies.report(
            {
                "database": dependencies.database,
                "redis": dependencies.redis_server,
                "broker": dependencies.broker,
                "span_route": store.check,
            }
        )
        body: dict[str, Any] = {"status": "ready" if ready else "unavailable", **statuses}
        if platform_settings().REPLICAS:  # details only: a replica that is down sends its reads to the primary
            body["replicas"] = replicas.report()
        return Response(body, status=200 if ready else 503)
