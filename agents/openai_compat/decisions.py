"""Answering a paused response: `mcp_approval_response` items decide the run's pending tool
calls through the approvals service, with the same permission check as the REST API's
approve and reject (an API key needs the `approvals:decide` scope)."""

from __future__ import annotations

from django.db import transaction

from agentplatform.audit.actors import Actor
from agentplatform.errors import InvalidInput
from agentplatform.users import User
from agents.models import ApiKey, Run
from agents.openai_compat.conversation import ApprovalAnswer
from agents.openai_compat.shapes import response_id
from approvals import selectors as approval_selectors
from approvals import services as approvals
from approvals.models import Channel


def decide(owner: User, api_key: ApiKey | None, run: Run, answers: list[ApprovalAnswer], *, actor: Actor) -> None:
    """Approve or reject each request answered, all or none. A rejection's `reason` is what
    the model reads as the tool's result; an approval's is kept as the reviewer's comment."""
    requests = []
    for n, answer in enumerate(answers):
        request = approval_selectors.get_request(owner, answer.approval_id)  # another owner's: 404
        if request.run_id != run.pk:
            message = f"{answer.approval_id} is not an approval request of {response_id(run.pk)}."
            raise InvalidInput(message, details={"param": f"input[{n}].approval_request_id"})
        requests.append((request, answer))
    decider = approvals.Decider(actor, Channel.API, tuple(api_key.scopes) if api_key is not None else None)
    with transaction.atomic():
        for request, answer in requests:
            if answer.approve:
                approvals.approve(request, decider, comment=answer.reason)
            else:
                approvals.reject(request, decider, answer.reason or "Rejected.")
