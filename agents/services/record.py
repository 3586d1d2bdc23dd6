"""The durable record a run writes: its messages and events, in order, one change at a time."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from django.db import transaction

from agentplatform import sql
from agentplatform.sdk.models import ChatMessage
from agents import events, selectors
from agents.events import Event
from agents.models import Message, Run, RunEvent


@dataclass
class RunRecord:
    """What a run has written: its messages and events, and where the next ones go."""

    run: Run
    position: int
    seq: int = 0
    messages: list[Message] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # streamed text not yet written
    written_at: float = 0.0

    @classmethod
    def resume(cls, run: Run) -> RunRecord:
        """A record that continues after the session's last message and the run's last event."""
        return cls(run, position=selectors.next_position(run.session_id), seq=selectors.last_seq(run.pk))

    def write(self, messages: list[ChatMessage], *, before: Iterable[Event] = (), after: Iterable[Event] = ()) -> None:
        """Append messages and the events they stand for, in order, as one change. Streamed
        text not yet written goes first, as one `message.delta`."""
        if self.text:
            before = [events.text_delta("".join(self.text)), *before]
            self.text.clear()
        with transaction.atomic(savepoint=False):
            created = append_messages(self.run.session_id, self.run.pk, self.position, messages) if messages else []
            derived = [event for message in created for event in events.for_message(message)]
            rows = [
                RunEvent(run_id=self.run.pk, seq=self.seq + offset, type=kind, data=data)
                for offset, (kind, data) in enumerate([*before, *derived, *after], start=1)
            ]
            sql.insert(rows)
            session_id = self.run.session_id
            transaction.on_commit(lambda: events.publish(session_id, rows), robust=True)
        self.position += len(created)
        self.seq += len(rows)
        self.messages.extend(created)
        self.written_at = time.monotonic()


def append_messages(session_id: UUID, run_id: UUID | None, start: int, messages: list[ChatMessage]) -> list[Message]:
    """Insert messages at positions `start`, `start + 1`, ... (one statement, on every step
    of every run: written as SQL, see `agentplatform.sql`).

    The session's running run (there is at most one) owns the positions after the
    session's last message; the unique (session, position) index backs that up. Messages
    that belong to no run (`run_id` None) are a conversation a new session starts with.
    """
    rows = [
        Message(
            session_id=session_id,
            run_id=run_id,
            position=start + offset,
            role=message.role,
            content=message.content,
            tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls],
            tool_call_id=message.tool_call_id,
            tool_name=message.name,
            is_error=message.is_error,
        )
        for offset, message in enumerate(messages)
    ]
    sql.insert(rows)
    return rows
