"""A `RunAgentInput`, as a run of the agent on the thread's session: a new run answering the
last user message, or (with `resume` entries) the decisions the thread's paused run waits for.

Threads: a thread id that is one of the caller's sessions (its id), or a client's thread id a
session of the caller was started under (kept in the session's metadata), continues that
session, whose stored conversation the agent reads: only the last user message is new. Any
other thread id starts a new session, with the messages before the last user message as its
history, under that thread id. Another owner's session is never continued.

A `RunAgentInput` sent again with the same thread and run ids (a client retrying after a
dropped connection) starts nothing: it is answered with that run's stream from its start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ag_ui.core import RunAgentInput

from agentplatform.audit.actors import Actor
from agentplatform.errors import Conflict
from agentplatform.users import User
from agents import selectors, services
from agents.ag_ui import conversation, decisions
from agents.ag_ui import selectors as ag_selectors
from agents.ag_ui.selectors import THREAD_KEY
from agents.errors import IdempotencyKeyReused, SessionAgentMismatch
from agents.models import ApiKey, Run


class NothingToResume(Conflict):
    code = "nothing_to_resume"
    default_message = "This thread has no run waiting for approval decisions."


@dataclass(frozen=True)
class Started:
    run: Run
    after: int = 0  # a resumed run is followed after its pause


def start(owner: User, api_key: ApiKey | None, agent_name: str, parsed: RunAgentInput, *, actor: Actor) -> Started:
    session = ag_selectors.thread_session(owner, parsed.thread_id)
    if parsed.resume:
        paused = ag_selectors.paused_run(session) if session is not None else None
        if paused is None:
            raise NothingToResume(details={"param": "resume"})
        if paused.agent_id != selectors.get_agent(agent_name, api_key).pk:  # (an agent the key may not use: 404)
            raise SessionAgentMismatch(
                f"The thread's paused run is of agent {paused.agent.name!r}, not {agent_name!r}."
            )
        after = selectors.last_seq(paused.pk)
        decisions.decide(owner, api_key, paused, parsed.resume, actor=actor)
        return Started(paused, after)
    said = conversation.conversation(parsed)
    key = _run_key(parsed)
    retried = selectors.idempotent_run(owner, key)
    if retried is not None:
        return Started(_same_run(retried[0], agent_name, said.text))
    if session is not None:
        run = services.start_run(
            owner=owner,
            api_key=api_key,
            agent_name=agent_name,
            input=said.text,
            session_id=session.pk,
            idempotency_key=key,
        )
        return Started(run)
    run = services.start_run(
        owner=owner,
        api_key=api_key,
        agent_name=agent_name,
        input=said.text,
        history=said.history,
        session_metadata={THREAD_KEY: parsed.thread_id},
        idempotency_key=key,
    )
    return Started(run)


def _run_key(parsed: RunAgentInput) -> str:
    """The idempotency key a client's thread and run ids make (the ids have no length limit)."""
    ids = hashlib.sha256(f"{parsed.thread_id}\0{parsed.run_id}".encode()).hexdigest()
    return f"ag-ui:{ids}"


def _same_run(run: Run, agent_name: str, text: str) -> Run:
    """The run a retried `RunAgentInput` started, if it asked the same of the same agent."""
    if run.agent.name != agent_name or run.input != text:
        message = "This runId was already used on this thread for another message or agent: send a new runId."
        raise IdempotencyKeyReused(message, details={"param": "runId", "run_id": str(run.pk)})
    return run
