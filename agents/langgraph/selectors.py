"""Reads for the LangGraph adapter, scoped by the platform's own selectors."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform

from agentplatform.users import User
from agents import selectors
from agents.errors import AgentNotFound, RunNotFound, SessionNotFound
from agents.langgraph import translate
from agents.models import Agent, ApiKey, Message, Run, Session
from approvals.models import ApprovalRequest, ApprovalStatus


def resolve_agent(assistant: str, api_key: ApiKey | None) -> Agent:
    """The agent an assistant id names (its uuid, or the graph name), if the key may use it."""
    try:
        UUID(assistant)
    except ValueError:
        return selectors.get_agent(assistant, api_key)
    for agent in selectors.visible_agents(api_key):
        if translate.assistant_id(agent.name) == assistant:
            return agent
    raise AgentNotFound(f"Assistant {assistant} not found.")


def threads(owner: User) -> QuerySet[Session]:
    """The caller's sessions, each with its newest run's status (`last_run_status`)."""
    newest = Run.objects.filter(session=OuterRef("pk")).order_by("-created_at").values("status")[:1]
    return selectors.owned_sessions(owner).annotate(last_run_status=Subquery(newest))


def get_thread(owner: User, thread_id: UUID | str) -> Session:
    try:
        return threads(owner).get(pk=thread_id)
    except (Session.DoesNotExist, ValueError):
        raise SessionNotFound(f"Thread {thread_id} not found.") from None


def thread_run(owner: User, thread_id: UUID, run_id: UUID) -> Run:
    run = selectors.owned_runs(owner).filter(pk=run_id, session_id=thread_id).first()
    if run is None:
        raise RunNotFound(f"Run {run_id} not found.")
    return run


def newest_run_id(session: Session) -> str | None:
    found = Run.objects.filter(session=session).order_by("-created_at").values_list("pk", flat=True).first()
    return str(found) if found is not None else None


def with_metadata(found: QuerySet[Any], metadata: dict[str, Any]) -> QuerySet[Any]:
    """`found` narrowed to the threads whose metadata has each key with its value (the key as it
    is: `a__b` is a key, not a lookup)."""
    for n, (key, value) in enumerate(metadata.items()):
        found = found.alias(**{f"_meta_{n}": KeyTransform(key, "metadata")}).filter(**{f"_meta_{n}": value})
    return found


def with_thread_status(found: QuerySet[Any], wanted: str) -> QuerySet[Any]:
    """`found` narrowed to the threads whose status is `wanted`."""
    statuses = [ours for ours, theirs in translate.THREAD_STATUS.items() if theirs == wanted]
    if wanted == "idle":
        return found.filter(Q(last_run_status__isnull=True) | ~Q(last_run_status__in=list(translate.THREAD_STATUS)))
    return found.filter(last_run_status__in=statuses)


def history(session: Session, limit: int) -> list[dict[str, Any]]:
    """The thread's state after each of its runs, newest first (a run is a checkpoint)."""
    messages = list(selectors.session_messages(session).order_by("position"))
    runs = list(Run.objects.filter(session=session).order_by("-created_at").values_list("pk", flat=True)[:limit])
    states = []
    for run_id in runs:
        last = max((i for i, m in enumerate(messages) if m.run_id == run_id), default=None)
        if last is not None:
            states.append(translate.state(session, messages[: last + 1], str(run_id), []))
    return states


def with_messages(found: QuerySet[Any]) -> QuerySet[Any]:
    """Each thread with its messages in order (`ordered_messages`), in one more query."""
    ordered = Message.objects.order_by("position")
    return found.prefetch_related(Prefetch("messages", queryset=ordered, to_attr="ordered_messages"))


def thread_messages(session_id: UUID) -> list[Message]:
    return list(Message.objects.filter(session_id=session_id).order_by("position"))


def pending_approvals(session_id: UUID) -> list[ApprovalRequest]:
    """The tool calls the thread's run waits on (a LangGraph interrupt each)."""
    rows = ApprovalRequest.objects.filter(session_id=session_id, status=ApprovalStatus.PENDING)
    return list(rows.order_by("requested_at", "id"))


def last_event(thread_id: UUID) -> int:
    """The sequence number of the last event of the thread's newest run."""
    run_id = Run.objects.filter(session_id=thread_id).order_by("-created_at").values_list("pk", flat=True).first()
    return selectors.last_seq(run_id) if run_id is not None else 0
