"""Resuming a paused run: a `RunAgentInput` whose `resume` entries answer the interrupts of the
run before it (each interrupt id is an approval request's id). They decide the requests through
the approvals service, with the same permission check as the REST API's approve and reject
(an API key needs the `approvals:decide` scope), all or none.

A `resolved` entry's payload is `{"approved": true}` (optionally with edited `arguments`, and
a `comment`), or `{"approved": false, "reason": "..."}`; `true` and `false` alone say the same.
A `cancelled` entry rejects.
"""

from __future__ import annotations

from typing import Any

from ag_ui.core import ResumeEntry
from django.db import transaction

from agentplatform.audit.actors import Actor
from agentplatform.errors import InvalidInput
from agentplatform.users import User
from agents.models import ApiKey, Run
from approvals import selectors as approval_selectors
from approvals import services as approvals
from approvals.models import Channel

CANCELLED_REASON = "The user cancelled the call."


def decide(owner: User, api_key: ApiKey | None, run: Run, entries: list[ResumeEntry], *, actor: Actor) -> None:
    pending = set(approval_selectors.pending_ids(run.session_id))
    answered = {entry.interrupt_id for entry in entries}
    if pending - answered:
        missing = ", ".join(sorted(pending - answered))
        raise InvalidInput(
            f"resume must answer every interrupt of the run; unanswered: {missing}.", details={"param": "resume"}
        )
    requests = []
    for n, entry in enumerate(entries):
        request = approval_selectors.get_request(owner, entry.interrupt_id)  # another owner's: 404
        if request.run_id != run.pk:
            message = f"{entry.interrupt_id} is not an interrupt of the thread's paused run."
            raise InvalidInput(message, details={"param": f"resume.{n}.interruptId"})
        requests.append((request, _decision(entry, n)))
    decider = approvals.Decider(actor, Channel.API, tuple(api_key.scopes) if api_key is not None else None)
    with transaction.atomic():
        for request, (approved, arguments, text) in requests:
            if approved:
                approvals.approve(request, decider, arguments=arguments, comment=text)
            else:
                approvals.reject(request, decider, text or "Rejected.")


def _decision(entry: ResumeEntry, n: int) -> tuple[bool, dict[str, Any] | None, str]:
    """(approved, edited arguments, the comment or reason)."""
    if entry.status == "cancelled":
        return False, None, CANCELLED_REASON
    payload = entry.payload
    if isinstance(payload, bool):
        return payload, None, ""
    param = f"resume.{n}.payload"
    if not isinstance(payload, dict) or not isinstance(payload.get("approved"), bool):
        raise InvalidInput(
            f'{param}: give {{"approved": true}} or {{"approved": false, "reason": "..."}}.', details={"param": param}
        )
    arguments, text = payload.get("arguments"), payload.get("reason") or payload.get("comment") or ""
    if arguments is not None and not isinstance(arguments, dict):
        raise InvalidInput(f"{param}.arguments must be an object.", details={"param": f"{param}.arguments"})
    if not isinstance(text, str):
        raise InvalidInput(f"{param}.reason must be text.", details={"param": f"{param}.reason"})
    return payload["approved"], arguments, text
