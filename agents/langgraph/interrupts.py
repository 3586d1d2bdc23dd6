"""Resuming a thread's interrupts: `Command(resume=...)` decides the tool calls waiting for
approval through the approvals service, with the same permission check as the REST API's
approve and reject."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction

from agentplatform.audit.actors import Actor
from agentplatform.errors import Conflict, InvalidInput
from agentplatform.users import User
from agents.langgraph import selectors as lg_selectors
from agents.models import ApiKey, Run
from approvals import services as approvals
from approvals.models import ApprovalRequest, Channel


class NothingToResume(Conflict):
    code = "no_interrupt"
    default_message = "The thread has no interrupt to resume."


def resume(owner: User, api_key: ApiKey | None, thread_id: UUID, command: Any, *, actor: Actor) -> Run:
    """Decide the thread's pending calls as `command["resume"]` says; the run they belong to.

    The resume value is one decision for every pending call, or a map from interrupt id to
    decision. A decision is `{"approved": true}`, `{"approved": true, "arguments": {...}}`
    or `{"approved": false, "reason": "..."}`.
    """
    if not isinstance(command, dict) or set(command) != {"resume"}:
        raise InvalidInput("command: only `resume` is supported.", details={"field": "command"})
    pending = lg_selectors.pending_approvals(thread_id)
    if not pending:
        raise NothingToResume()
    decisions = _decisions(command["resume"], pending)
    decider = approvals.Decider(actor, Channel.API, tuple(api_key.scopes) if api_key is not None else None)
    with transaction.atomic():  # all the decisions, or none
        for request, decision in decisions:
            if decision["approved"]:
                approvals.approve(request, decider, decision.get("arguments"))
            else:
                approvals.reject(request, decider, decision.get("reason") or "Rejected.")
    return lg_selectors.thread_run(owner, thread_id, pending[0].run_id)


def _decisions(value: Any, pending: list[ApprovalRequest]) -> list[tuple[ApprovalRequest, dict[str, Any]]]:
    by_id = {str(request.pk): request for request in pending}
    if isinstance(value, dict) and value and set(value) <= set(by_id):
        pairs = [(by_id[key], decision) for key, decision in value.items()]
    else:
        pairs = [(request, value) for request in pending]
    for _, decision in pairs:
        _check(decision, several=len(pairs) > 1 and decision is value)
    return pairs


def _check(decision: Any, *, several: bool) -> None:
    if not isinstance(decision, dict) or not isinstance(decision.get("approved"), bool):
        raise InvalidInput('resume: a decision is {"approved": true|false, ...}.', details={"field": "command"})
    if several and "arguments" in decision:
        message = "resume: edited arguments need the interrupt's id (a map from interrupt id to decision)."
        raise InvalidInput(message, details={"field": "command"})
    if "reason" in decision and not isinstance(decision["reason"], str):
        raise InvalidInput("resume: reason must be text.", details={"field": "command"})
