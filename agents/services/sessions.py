"""Sessions: create, rename, delete, and name the agent of a session not yet run."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agentplatform.users import User
from agents import selectors
from agents.errors import (
    SessionBusy,
)
from agents.models import (
    ACTIVE_RUN_STATUSES,
    Agent,
    Run,
    Session,
)


def create_session(*, owner: User, agent: Agent, title: str = "", metadata: dict[str, Any] | None = None) -> Session:
    return Session.objects.create(owner=owner, agent=agent, title=title, metadata=metadata or {})


def update_session(session: Session, *, title: str | None = None, metadata: dict[str, Any] | None = None) -> Session:
    changed = ["updated_at"]
    if title is not None:
        session.title = title
        changed.append("title")
    if metadata is not None:
        session.metadata = metadata
        changed.append("metadata")
    session.save(update_fields=changed)
    return session


def delete_session(session: Session) -> None:
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        active = Run.objects.filter(session=locked, status__in=ACTIVE_RUN_STATUSES).values_list("pk", flat=True).first()
        if active is not None:
            raise SessionBusy("This session has an active run; wait for it to finish.", details={"run_id": str(active)})
        locked.delete()


def assign_agent(owner: User, session_id: Any, agent: Agent) -> None:
    """Give a session that has had no run yet the agent of its first one (a LangGraph thread is
    created before the assistant that runs on it is named). A session with runs keeps its agent."""
    with transaction.atomic():
        session = selectors.lock_session(owner, session_id)
        if session.agent_id == agent.pk or Run.objects.filter(session=session).exists():
            return
        session.agent = agent
        session.save(update_fields=["agent", "updated_at"])
