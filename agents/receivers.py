"""A paused run reacts to its approval requests: each decision or expiry is an event on the
run, and the last one resumes it (or, for an expiry that cancels, ends it). Registered in
`approvals.registry.run_hooks` by AgentsConfig.ready()."""

from __future__ import annotations

from agents import events
from agents.errors import RunFailure
from agents.models import Run, RunStatus
from agents.services.dispatch import dispatch_resume_on_commit
from agents.services.endings import finish, outcome
from agents.services.record import RunRecord
from approvals import selectors as approval_selectors
from approvals.models import ApprovalRequest, ExpiryAction


def _locked_run(request: ApprovalRequest) -> Run:
    # The run's row lock orders concurrent decisions on one run (their events' numbers).
    return Run.objects.select_for_update(of=("self",)).select_related("agent").get(pk=request.run_id)


def on_decided(request: ApprovalRequest) -> None:
    run = _locked_run(request)
    RunRecord.resume(run).write([], after=[events.approval_decided(request)])
    if run.status == RunStatus.AWAITING_APPROVAL and not approval_selectors.has_pending(run.pk):
        dispatch_resume_on_commit(run.pk)


def on_expired(request: ApprovalRequest) -> None:
    run = _locked_run(request)
    record = RunRecord.resume(run)
    record.write([], after=[events.approval_expired(request)])
    if run.status != RunStatus.AWAITING_APPROVAL:
        return
    if request.expiry_action == ExpiryAction.CANCEL_RUN:
        message = f"The request to approve {request.tool_name!r} expired; its expiry action cancels the run."
        finish(
            record, outcome(RunStatus.CANCELLED, RunFailure.APPROVAL_EXPIRED, message, {"approval_id": str(request.pk)})
        )
    elif not approval_selectors.has_pending(run.pk):
        dispatch_resume_on_commit(run.pk)
