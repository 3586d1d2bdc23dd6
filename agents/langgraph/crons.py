"""LangGraph's crons, as the platform's schedules: a cron on a thread fires into that thread
(a schedule with one fixed session), a stateless cron into a new thread each time. Beat fires
them like any schedule, with the key they were created with."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import TextField
from agents import selectors, services
from agents.errors import AgentNotFound
from agents.langgraph import selectors as lg_selectors
from agents.langgraph import translate
from agents.langgraph.schema import OBJECT, OBJECTS
from agents.langgraph.views import LangGraphPage, LangGraphView
from agents.models import OverlapPolicy, Schedule, SessionStrategy

# A cron's multitask strategy, for the run a firing starts while the last one is still active:
# `reject` skips the firing, `enqueue` queues the run. (Interrupting is not a schedule's policy.)
OVERLAP = {"reject": OverlapPolicy.SKIP, "enqueue": OverlapPolicy.ALLOW}
SORTS = {
    "cron_id": "pk",
    "assistant_id": "agent__name",
    "thread_id": "session_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "end_time": "ends_at",
}
FIELDS = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "payload",
    "user_id",
    "next_run_date",
    "metadata",
    "enabled",
)


class LangGraphCronUpdate(serializers.Serializer):
    schedule = TextField(required=False)
    timezone = TextField(required=False)
    end_time = serializers.DateTimeField(required=False, allow_null=True)
    input = serializers.JSONField(required=False)
    metadata = serializers.DictField(required=False)
    enabled = serializers.BooleanField(required=False)
    # Refused: a cron runs an agent, which has no graph nodes to interrupt at.
    interrupt_before = serializers.JSONField(required=False, allow_null=True)
    interrupt_after = serializers.JSONField(required=False, allow_null=True)
    # Kept for every cron: the platform keeps the threads its runs write.
    on_run_completed = serializers.ChoiceField(["keep"], required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("interrupt_before", "interrupt_after"):
            if attrs.get(name):
                raise serializers.ValidationError({name: ["Not supported by this server."]})
        return attrs


class LangGraphCronCreate(LangGraphCronUpdate):
    assistant_id = TextField()
    schedule = TextField()
    timezone = TextField(default="UTC")
    input = serializers.JSONField()
    metadata = serializers.DictField(default=dict)
    enabled = serializers.BooleanField(default=True)
    multitask_strategy = serializers.ChoiceField(list(OVERLAP), default="reject")


class LangGraphCronSearch(LangGraphPage):
    assistant_id = TextField(required=False)
    thread_id = serializers.UUIDField(required=False)
    enabled = serializers.BooleanField(required=False)
    metadata = serializers.DictField(required=False)
    sort_by = serializers.ChoiceField(list(SORTS), default="created_at")
    sort_order = serializers.ChoiceField(["asc", "desc"], default="desc")
    select = serializers.ListField(child=serializers.ChoiceField(FIELDS), required=False)


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """A cron's fields as the schedule's."""
    names = {"schedule": "cron", "timezone": "timezone", "end_time": "ends_at", "metadata": "metadata"}
    changes = {ours: body[theirs] for theirs, ours in names.items() if theirs in body}
    if "enabled" in body:
        changes["enabled"] = body["enabled"]
    if "input" in body:
        changes["input"] = translate.human_input(body["input"])
    return changes


def cron(schedule: Schedule) -> dict[str, Any]:
    """A schedule as a LangGraph cron."""
    fixed = schedule.session_strategy == SessionStrategy.FIXED
    strategy = next(theirs for theirs, ours in OVERLAP.items() if ours == schedule.overlap)
    assistant = translate.assistant_id(schedule.agent.name)
    payload = {
        "assistant_id": assistant,
        "input": {"messages": [{"type": "human", "content": schedule.input}]},
        "metadata": schedule.metadata,
        "multitask_strategy": strategy,
    }
    return {
        "cron_id": str(schedule.pk),
        "assistant_id": assistant,
        "thread_id": str(schedule.session_id) if fixed and schedule.session_id else None,
        "on_run_completed": None if fixed else "keep",
        "end_time": schedule.ends_at.isoformat() if schedule.ends_at else None,
        "schedule": schedule.cron,
        "timezone": schedule.timezone,
        "created_at": schedule.created_at.isoformat(),
        "updated_at": schedule.updated_at.isoformat(),
        "payload": payload,
        "user_id": str(schedule.owner_id),
        "next_run_date": _next_run(schedule),
        "metadata": schedule.metadata,
        "enabled": schedule.enabled,
    }


def _next_run(schedule: Schedule) -> str | None:
    task = schedule.periodic_task
    if not schedule.enabled or task is None or task.crontab is None:
        return None
    start, delta, _ = task.crontab.schedule.remaining_delta(timezone.now())  # in the cron's time zone
    upcoming = start + delta
    return upcoming.isoformat() if schedule.ends_at is None or upcoming < schedule.ends_at else None


class CronCreateView(LangGraphView):
    @extend_schema(
        request=LangGraphCronCreate,
        responses={200: OBJECT},
        summary="Create a cron: a schedule that runs the assistant (on the thread, or on a new thread each time)",
    )
    def post(self, request: Request, thread_id: UUID | None = None) -> Response:
        body = self.body(LangGraphCronCreate)
        agent = lg_selectors.resolve_agent(body["assistant_id"], self.api_key)
        changes = _changes(body)
        if thread_id is not None:
            lg_selectors.get_thread(self.owner, thread_id)  # 404 before anything is written
            services.assign_agent(self.owner, thread_id, agent)
        schedule = services.create_schedule(
            owner=self.owner,
            api_key=self.api_key,
            agent=agent,
            session_id=thread_id,
            name=f"LangGraph cron: {agent.name}, {body['schedule']}"[: Schedule._meta.get_field("name").max_length],
            session_strategy=SessionStrategy.FIXED if thread_id is not None else SessionStrategy.NEW,
            overlap=OVERLAP[body["multitask_strategy"]],
            actor=self.actor,
            **changes,
        )
        return Response(cron(schedule))


def _crons(view: LangGraphView, body: dict[str, Any]) -> QuerySet[Schedule]:
    """The caller's crons (schedules with a cron expression) that `body` asks for."""
    found = selectors.owned_schedules(view.owner).exclude(cron="")
    if "assistant_id" in body:
        try:
            found = found.filter(agent=lg_selectors.resolve_agent(body["assistant_id"], view.api_key))
        except AgentNotFound:
            found = found.none()
    if "thread_id" in body:
        found = found.filter(session_id=body["thread_id"], session_strategy=SessionStrategy.FIXED)
    if "enabled" in body:
        found = found.filter(enabled=body["enabled"])
    return lg_selectors.with_metadata(found, body.get("metadata") or {})


class CronSearchView(LangGraphView):
    @extend_schema(
        request=LangGraphCronSearch,
        responses={200: OBJECTS},
        summary="Search your crons",
    )
    def post(self, request: Request) -> Response:
        body = self.body(LangGraphCronSearch)
        order = SORTS[body["sort_by"]]
        found = _crons(self, body).order_by(order if body["sort_order"] == "asc" else f"-{order}")
        page = [cron(schedule) for schedule in found[body["offset"] : body["offset"] + body["limit"]]]
        if body.get("select"):
            page = [{name: shaped[name] for name in body["select"]} for shaped in page]
        return Response(page)


class LangGraphCronCount(serializers.Serializer):
    assistant_id = TextField(required=False)
    thread_id = serializers.UUIDField(required=False)
    metadata = serializers.DictField(required=False)


class CronCountView(LangGraphView):
    @extend_schema(
        request=LangGraphCronCount,
        responses={200: {"type": "integer"}},
        summary="Count your crons",
    )
    def post(self, request: Request) -> Response:
        return Response(_crons(self, self.body(LangGraphCronCount)).count())


class CronDetailView(LangGraphView):
    @extend_schema(request=LangGraphCronUpdate, responses={200: OBJECT}, summary="Change a cron")
    def patch(self, request: Request, cron_id: UUID) -> Response:
        schedule = services.update_schedule(
            self.owner, cron_id, _changes(self.body(LangGraphCronUpdate)), actor=self.actor
        )
        return Response(cron(selectors.get_schedule(self.owner, schedule.pk)))

    @extend_schema(responses={204: None}, summary="Delete a cron (its runs stay)")
    def delete(self, request: Request, cron_id: UUID) -> Response:
        services.delete_schedule(selectors.get_schedule(self.owner, cron_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
