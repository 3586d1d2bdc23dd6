"""Runs as A2A tasks: a task is a run (its id the run's id), its context the run's session."""

from __future__ import annotations

from uuid import UUID

from a2a.types import a2a_pb2 as a2a

from agents.models import Run, RunStatus

STATES = {
    RunStatus.QUEUED: a2a.TASK_STATE_SUBMITTED,
    RunStatus.RUNNING: a2a.TASK_STATE_WORKING,
    RunStatus.COMPLETED: a2a.TASK_STATE_COMPLETED,
    RunStatus.FAILED: a2a.TASK_STATE_FAILED,
    RunStatus.CANCELLED: a2a.TASK_STATE_CANCELED,
    RunStatus.AWAITING_APPROVAL: a2a.TASK_STATE_INPUT_REQUIRED,
}
ANSWER = "answer"  # the name of the artifact that holds a completed task's answer


def agent_message(run: Run, kind: str, text: str, **metadata: object) -> a2a.Message:
    """An agent message about the run (`kind` makes its id: the answer, a status)."""
    message = a2a.Message(
        message_id=f"{run.pk}-{kind}",
        context_id=str(run.session_id),
        task_id=str(run.pk),
        role=a2a.ROLE_AGENT,
        parts=[a2a.Part(text=text)],
    )
    if metadata:
        message.metadata.update(metadata)
    return message


def user_message(run: Run) -> a2a.Message:
    return a2a.Message(
        message_id=f"{run.pk}-input",
        context_id=str(run.session_id),
        task_id=str(run.pk),
        role=a2a.ROLE_USER,
        parts=[a2a.Part(text=run.input)],
    )


def status(run: Run, approval_ids: list[str]) -> a2a.TaskStatus:
    """The task's state; a paused run's names the approvals it waits for, a failed run's its error."""
    state = a2a.TaskStatus(state=STATES[RunStatus(run.status)])
    state.timestamp.FromDatetime(run.finished_at or run.started_at or run.created_at)
    if run.status == RunStatus.AWAITING_APPROVAL:
        text = f"Waiting for approval: {', '.join(approval_ids)}. Decide through /api/v1/approvals/{{id}}/."
        state.message.CopyFrom(agent_message(run, run.status, text, approval_ids=approval_ids))
    elif run.status in (RunStatus.FAILED, RunStatus.CANCELLED) and run.error:
        error = run.error
        state.message.CopyFrom(
            agent_message(run, run.status, str(error.get("message", "")), code=str(error.get("code", "")))
        )
    return state


def answer(run: Run, text: str) -> a2a.Artifact:
    return a2a.Artifact(artifact_id=f"{run.pk}-{ANSWER}", name=ANSWER, parts=[a2a.Part(text=text)])


def task(run: Run, approval_ids: list[str]) -> a2a.Task:
    """The task a run is: its state, the input and answer as history, the answer as its artifact."""
    shaped = a2a.Task(id=str(run.pk), context_id=str(run.session_id), status=status(run, approval_ids))
    shaped.history.append(user_message(run))
    if run.status == RunStatus.COMPLETED:
        shaped.history.append(agent_message(run, ANSWER, run.output))
        shaped.artifacts.append(answer(run, run.output))
    return shaped


def run_id(task_id: str) -> UUID | None:
    try:
        return UUID(task_id)
    except ValueError:
        return None
