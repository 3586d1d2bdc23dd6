"""LangGraph Agent Server endpoints for assistants and threads (runs: `runs`, crons: `crons`):
parse LangGraph's body, call the platform's service or selector, answer in LangGraph's shape
(see `translate`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api import errors
from agentplatform.api.base import CallerAPIView
from agentplatform.errors import InvalidInput
from agentplatform.replicas import lag_tolerant
from agents import selectors, services
from agents.auth import ApiKeyAuthentication, ApiKeyHeaderAuthentication
from agents.langgraph import selectors as lg_selectors
from agents.langgraph import translate
from agents.langgraph.schema import OBJECT, OBJECTS, LangGraphSchema
from agents.models import Message, Session


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


class LangGraphView(CallerAPIView):
    # The key in `X-Api-Key` (LangGraph's SDK) or as a bearer token; errors in LangGraph's shape.
    authentication_classes = [ApiKeyHeaderAuthentication, ApiKeyAuthentication]
    renderer_classes = [JSONRenderer]
    schema = LangGraphSchema()

    def get_exception_handler(self) -> Any:
        return exception_handler

    def body(self, serializer: type[serializers.Serializer]) -> dict[str, Any]:
        parsed = serializer(data=self.request.data if self.request.data is not None else {})
        parsed.is_valid(raise_exception=True)
        return dict(parsed.validated_data)


class LangGraphPage(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)
    offset = serializers.IntegerField(min_value=0, default=0)


class LangGraphAssistantSearch(LangGraphPage):
    graph_id = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)


class AssistantSearchView(LangGraphView):
    @extend_schema(
        request=LangGraphAssistantSearch,
        responses={200: OBJECTS},
        summary="Search assistants (the agents the key may use)",
    )
    def post(self, request: Request) -> Response:
        body = self.body(LangGraphAssistantSearch)
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
    @extend_schema(responses={200: OBJECT}, summary="An assistant, by its id or graph name")
    def get(self, request: Request, assistant_id: str) -> Response:
        return Response(translate.assistant(lg_selectors.resolve_agent(assistant_id, self.api_key)))


class LangGraphThreadCreate(serializers.Serializer):
    metadata = serializers.DictField(required=False, default=dict)
    thread_id = serializers.UUIDField(required=False)
    if_exists = serializers.ChoiceField(["raise", "do_nothing"], default="raise")


class LangGraphThreadSearch(LangGraphPage):
    metadata = serializers.DictField(required=False)
    ids = serializers.ListField(child=serializers.UUIDField(), required=False)
    status = serializers.ChoiceField(translate.THREAD_STATUSES, required=False)
    sort_by = serializers.ChoiceField(["thread_id", "created_at", "updated_at"], default="updated_at")
    sort_order = serializers.ChoiceField(["asc", "desc"], default="desc")


def _thread(session: Session, messages: list[Message] | None = None) -> dict[str, Any]:
    values = translate.values(messages if messages is not None else lg_selectors.thread_messages(session.pk))
    return translate.thread(session, translate.thread_status(getattr(session, "last_run_status", None)), values)


class ThreadListView(LangGraphView):
    @extend_schema(
        request=LangGraphThreadCreate,
        responses={200: OBJECT},
        summary="Create a thread (a session)",
    )
    def post(self, request: Request) -> Response:
        body = self.body(LangGraphThreadCreate)
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
    @extend_schema(
        request=LangGraphThreadSearch,
        responses={200: OBJECTS},
        summary="Search your threads, each with its values",
    )
    @lag_tolerant
    def post(self, request: Request) -> Response:
        body = self.body(LangGraphThreadSearch)
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
    @extend_schema(responses={200: OBJECT}, summary="A thread, with its values and status")
    def get(self, request: Request, thread_id: UUID) -> Response:
        return Response(_thread(lg_selectors.get_thread(self.owner, thread_id)))

    @extend_schema(
        responses={204: None},
        summary="Delete a thread (409 while it has an active run)",
    )
    def delete(self, request: Request, thread_id: UUID) -> Response:
        services.delete_session(lg_selectors.get_thread(self.owner, thread_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ThreadStateView(LangGraphView):
    @extend_schema(
        responses={200: OBJECT},
        summary="A thread's state: its values, and its interrupts (calls waiting for approval)",
    )
    def get(self, request: Request, thread_id: UUID) -> Response:
        session = lg_selectors.get_thread(self.owner, thread_id)
        messages = lg_selectors.thread_messages(session.pk)
        pending = lg_selectors.pending_approvals(session.pk)
        return Response(translate.state(session, messages, lg_selectors.newest_run_id(session), pending))


class LangGraphHistory(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)


class ThreadHistoryView(LangGraphView):
    @extend_schema(
        request=LangGraphHistory,
        responses={200: OBJECTS},
        summary="A thread's state after each of its runs, newest first",
    )
    @lag_tolerant
    def post(self, request: Request, thread_id: UUID) -> Response:
        limit = self.body(LangGraphHistory)["limit"]
        session = lg_selectors.get_thread(self.owner, thread_id)
        return Response(lg_selectors.history(session, limit))
