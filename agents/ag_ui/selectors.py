"""Reads for the AG-UI adapter, scoped by the platform's own selectors: a thread is one of the
caller's sessions, named by its id or by the client's thread id it was started under."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from ag_ui.core import AssistantMessage, FunctionCall, ToolCall, ToolMessage, UserMessage
from django.db.models.fields.json import KeyTransform

from agentplatform.users import User
from agents import selectors
from agents.models import Message, Run, RunStatus, Session

THREAD_KEY = "ag_ui_thread_id"  # in a session's metadata: the client's thread id it started under


def thread_session(owner: User, thread_id: str) -> Session | None:
    """The caller's session a thread id names: the session with that id, or the newest one
    started under that client thread id. Another owner's is never found."""
    owned = selectors.owned_sessions(owner)
    try:
        found = owned.filter(pk=UUID(thread_id)).first()
    except ValueError:
        found = None
    if found is not None:
        return found
    named = owned.alias(_thread=KeyTransform(THREAD_KEY, "metadata")).filter(_thread=thread_id)
    return named.order_by("-created_at").first()


def paused_run(session: Session) -> Run | None:
    """The session's run waiting for approval decisions, if any."""
    paused = Run.objects.filter(session=session, status=RunStatus.AWAITING_APPROVAL).select_related("agent")
    return paused.order_by("-created_at").first()


def messages_snapshot(session_id: UUID) -> list[Any]:
    """The session's conversation as AG-UI messages (tool calls and results included)."""
    out: list[Any] = []
    for message in Message.objects.filter(session_id=session_id).order_by("position"):
        message_id = f"msg_{message.pk}"
        if message.role == "user":
            out.append(UserMessage(id=message_id, content=message.content))
        elif message.role == "assistant":
            calls = [
                ToolCall(id=c["id"], function=FunctionCall(name=c["name"], arguments=json.dumps(c["arguments"])))
                for c in message.tool_calls
            ]
            out.append(AssistantMessage(id=message_id, content=message.content or None, tool_calls=calls or None))
        elif message.role == "tool":
            error = message.content if message.is_error else None
            out.append(
                ToolMessage(id=message_id, content=message.content, tool_call_id=message.tool_call_id, error=error)
            )
    return out
