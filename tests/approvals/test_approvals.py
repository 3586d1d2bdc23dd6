"""CONFIRM calls pause the run; a decision bound to exact arguments resumes it on a worker."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Channel as AuditChannel
from agentplatform.errors import InvalidInput
from agentplatform.jsonlimits import JsonTooDeep
from agents.models import Message, Run, RunEvent, Tool
from approvals import services
from approvals.models import COMMENT_MAX_CHARS, ApprovalRequest, Channel
from tests import sample_agents
from tests.conftest import Api
from tests.factories import create_api_key
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = {"to": "bob@example.com", "subject": "hi"}


@pytest.fixture
def reviewer(alice: Any, celery_worker: None) -> Api:
    """Alice's key with the right to decide on her own runs."""
    return Api(create_api_key(alice, scopes=["approvals:decide"])[1])


def _pause(api: Api, llm: Any, *calls: Call) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    llm.enqueue(ToolCalls(list(calls or [Call("send_email", EMAIL)])))
    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "email bob"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    _, page = api.get("/api/v1/approvals/?status=pending")
    return run, [a for a in page["results"] if a["run_id"] == run["id"]]


def _finished(api: Api, run_id: str) -> dict[str, Any]:
    wait_until(lambda: Run.objects.get(pk=run_id).status not in ("queued", "running", "awaiting_approval"), 30)
    return api.get(f"/api/v1/runs/{run_id}/")[1]


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def _types(run_id: str) -> list[str]:
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("type", flat=True))


def test_a_confirm_call_pauses_the_run_and_holds_no_worker(api, llm):
    run, approvals = _pause(api, llm, Call("send_email", EMAIL), Call("add", {"a": 1, "b": 1}))

    stored = Run.objects.get(pk=run["id"])
    assert stored.lease_expires_at is None
    assert sample_agents.CALLS == [("add", {"a": 1, "b": 1})]  # the ALLOW call of the same turn ran
    [approval] = approvals
    assert (approval["tool"], approval["arguments"], approval["status"]) == ("send_email", EMAIL, "pending")
    assert approval["agent"] == "oai"
    assert approval["expires_at"] > approval["requested_at"]
    assert _types(run["id"]) == [
        "run.started",
        "tool.call.started",
        "tool.call.started",
        "tool.call.completed",
        "approval.requested",
        "run.awaiting_approval",
    ]


def test_approving_resumes_the_run_which_runs_the_tool_with_the_approved_arguments(api, reviewer, llm):
    run, [approval] = _pause(api, llm)
    llm.enqueue(Text("Sent."))

    status, decided = reviewer.post(f"/api/v1/approvals/{approval['id']}/approve", {})

    assert (status, decided["status"], decided["channel"]) == (200, "approved", "api")
    assert decided["decided_by"] == "alice"
    final = _finished(api, run["id"])
    assert (final["status"], final["output"]) == ("completed", "Sent.")
    assert sample_agents.CALLS == [("send_email", EMAIL)]
    assert ApprovalRequest.objects.get(pk=approval["id"]).executed_at is not None
    assert _types(run["id"])[-6:] == [
        "approval.decided",
        "run.resumed",
        "tool.call.completed",
        "message.delta",
        "message.completed",
        "run.completed",
    ]
    # the model saw the tool's real result, after its call
    assert llm.requests[-1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": approval["call_id"],
        "content": "sent",
    }


def test_edited_arguments_are_validated_then_run_and_the_diff_is_kept(api, reviewer, llm):
    run, [approval] = _pause(api, llm)

    status, body = reviewer.post(f"/api/v1/approvals/{approval['id']}/approve", {"arguments": {"to": 7}})
    assert (status, body["error"]["code"]) == (400, "invalid_arguments")
    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "pending"  # nothing changed

    llm.enqueue(Text("Sent to carol."))
    edited = {"to": "carol@example.com", "subject": "hi"}
    status, decided = reviewer.post(f"/api/v1/approvals/{approval['id']}/approve", {"arguments": edited})

    assert status == 200
    assert decided["arguments"] == EMAIL  # the original is kept
    assert decided["approved_arguments"] == edited
    assert decided["diff"] == [{"op": "replace", "path": "/to", "old": "bob@example.com", "new": "carol@example.com"}]
    assert _finished(api, run["id"])["status"] == "completed"
    assert [("send_email", edited)] == sample_agents.CALLS


@pytest.mark.parametrize(
    ("raw_arguments", "code"),
    [
        ('{"to": "bob@example.com", "subject": "hi", "bcc": "eve@evil.test"}', "invalid_arguments"),
        ('{"to": "bob@example.com", "subject": ' + '{"a": ' * 2000 + '"x"' + "}" * 2000 + "}", "json_too_deep"),
        ('{"to": "bob@example.com", "subject": "hi\\u0000"}', "json_invalid_text"),
        ('{"to": "bob@example.com", "subject": "hi\\ud800"}', "json_invalid_text"),
    ],
    ids=["a-property-the-schema-does-not-have", "nested-2000-deep", "nul", "lone-surrogate"],
)
def test_edited_arguments_outside_the_schema_or_the_limits_are_refused(api, reviewer, llm, raw_arguments, code):
    _, [approval] = _pause(api, llm)

    status, body = reviewer.post(f"/api/v1/approvals/{approval['id']}/approve", raw=f'{{"arguments": {raw_arguments}}}')

    assert (status, body["error"]["code"]) == (400, code), body
    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "pending"


def test_edited_arguments_are_held_to_the_limits_whatever_the_channel(api, alice, llm):
    _, [approval] = _pause(api, llm)
    request = ApprovalRequest.objects.get(pk=approval["id"])
    decider = services.Decider(_as(alice), Channel.WEBSOCKET, ("approvals:decide",))

    with pytest.raises(JsonTooDeep):
        services.approve(request, decider, {**EMAIL, "subject": _nested(40)})

    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "pending"


def test_the_schema_is_strict_only_where_it_says_nothing_of_other_properties():
    schema = {
        "type": "object",
        "properties": {
            "to": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "attachments": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
    }

    strict = services.strict_schema(schema)

    assert strict["additionalProperties"] is False
    assert strict["properties"]["headers"]["additionalProperties"] == {"type": "string"}
    assert strict["properties"]["attachments"]["items"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the stored schema is left as it is


def test_a_rejection_is_the_tools_result_and_the_run_goes_on(api, reviewer, llm):
    run, [approval] = _pause(api, llm)
    llm.enqueue(Text("I could not send it."))

    status, decided = reviewer.post(f"/api/v1/approvals/{approval['id']}/reject", {"reason": "wrong recipient"})

    assert (status, decided["status"], decided["reason"]) == (200, "rejected", "wrong recipient")
    assert _finished(api, run["id"])["output"] == "I could not send it."
    assert sample_agents.CALLS == []
    result = Message.objects.get(run_id=run["id"], tool_call_id=approval["call_id"])
    assert result.is_error
    assert "wrong recipient" in result.content


def test_a_decision_keeps_the_reviewers_comment_which_the_model_does_not_read(api, reviewer, llm):
    run, [approval] = _pause(api, llm)
    llm.enqueue(Text("Sent."))

    status, decided = reviewer.post(
        f"/api/v1/approvals/{approval['id']}/approve", {"arguments": EMAIL, "comment": "  bob asked for it  "}
    )

    assert (status, decided["status"], decided["comment"]) == (200, "approved", "bob asked for it")
    assert reviewer.get(f"/api/v1/approvals/{approval['id']}/")[1]["comment"] == "bob asked for it"
    assert _finished(api, run["id"])["status"] == "completed"
    assert "bob asked for it" not in json.dumps(llm.requests[-1].body)


def test_a_rejection_keeps_its_comment_apart_from_the_reason(api, reviewer, llm):
    run, [approval] = _pause(api, llm)
    llm.enqueue(Text("Not sent."))

    body = {"reason": "wrong recipient", "comment": "the model guessed the address"}
    status, decided = reviewer.post(f"/api/v1/approvals/{approval['id']}/reject", body)

    assert (status, decided["reason"], decided["comment"]) == (200, "wrong recipient", "the model guessed the address")
    assert _finished(api, run["id"])["status"] == "completed"
    result = Message.objects.get(run_id=run["id"], tool_call_id=approval["call_id"])
    assert "guessed" not in result.content


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_comment_over_the_limit_is_refused_and_nothing_changes(api, reviewer, llm, decision):
    _, [approval] = _pause(api, llm)
    body = {"comment": "x" * (COMMENT_MAX_CHARS + 1), **({"reason": "no"} if decision == "reject" else {})}

    status, error = reviewer.post(f"/api/v1/approvals/{approval['id']}/{decision}", body)

    assert (status, error["error"]["code"]) == (400, "invalid_request")
    assert "comment" in error["error"]["message"]
    assert str(COMMENT_MAX_CHARS) in error["error"]["message"]
    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "pending"
    status, _ = reviewer.post(f"/api/v1/approvals/{approval['id']}/{decision}", {**body, "comment": "x" * 2000})
    assert status == 200  # exactly the limit is accepted


def test_the_service_holds_a_comment_to_the_limit_whatever_the_channel(api, alice, llm):
    _, [approval] = _pause(api, llm)
    decider = services.Decider(_as(alice), Channel.API, ("approvals:decide",))
    request = ApprovalRequest.objects.get(pk=approval["id"])

    with pytest.raises(InvalidInput, match="comment: at most"):
        services.approve(request, decider, comment="x" * (COMMENT_MAX_CHARS + 1))

    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "pending"


def test_parallel_calls_get_one_request_each_and_the_run_waits_for_both(api, reviewer, llm):
    other = {"to": "dan@example.com", "subject": "yo"}
    run, approvals = _pause(api, llm, Call("send_email", EMAIL), Call("send_email", other))
    assert len(approvals) == 2
    llm.enqueue(Text("Done."))

    reviewer.post(f"/api/v1/approvals/{approvals[0]['id']}/approve", {})
    assert Run.objects.get(pk=run["id"]).status == "awaiting_approval"
    reviewer.post(f"/api/v1/approvals/{approvals[1]['id']}/reject", {"reason": "no"})

    assert _finished(api, run["id"])["status"] == "completed"
    assert len(sample_agents.CALLS) == 1


def test_the_session_is_frozen_while_approvals_are_pending(api, llm):
    run, [approval] = _pause(api, llm)

    for policy in ("reject", "enqueue", "interrupt"):
        body = {"input": "more", "session_id": run["session_id"], "if_busy": policy}
        status, error = api.post("/api/v1/agents/oai/runs/", body)
        assert (status, error["error"]["code"]) == (409, "approval_pending")
        assert error["error"]["details"] == {"approval_ids": [approval["id"]]}
    assert Run.objects.filter(session_id=run["session_id"]).count() == 1


def test_who_may_decide_and_what_a_second_decision_gets(api, reviewer, llm, make_api, alice):
    run, [approval] = _pause(api, llm)
    path = f"/api/v1/approvals/{approval['id']}"

    status, body = api.post(f"{path}/approve", {})  # alice's key without the scope
    assert (status, body["error"]["code"]) == (403, "approval_forbidden")
    status, body = make_api("mallory", scopes=["approvals:decide"]).post(f"{path}/approve", {})
    assert (status, body["error"]["code"]) == (404, "approval_not_found")
    status, body = reviewer.post(f"{path}/reject", {})
    assert (status, body["error"]["code"]) == (400, "invalid_request")

    llm.enqueue(Text("ok"))
    assert reviewer.post(f"{path}/reject", {"reason": "no"})[0] == 200
    status, body = reviewer.post(f"{path}/approve", {})
    assert (status, body["error"]["code"], body["error"]["details"]) == (
        409,
        "approval_already_decided",
        {"status": "rejected"},
    )
    _finished(api, run["id"])


def test_of_two_concurrent_approvals_exactly_one_wins(api, reviewer, llm):
    run, [approval] = _pause(api, llm)
    llm.enqueue(Text("Sent."))
    barrier, results = threading.Barrier(2), []

    def approve() -> None:
        barrier.wait()
        results.append(reviewer.post(f"/api/v1/approvals/{approval['id']}/approve", {})[0])

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200, 409]
    assert _finished(api, run["id"])["status"] == "completed"
    assert sample_agents.CALLS == [("send_email", EMAIL)]


def test_arguments_changed_after_the_decision_are_refused(api, alice, llm):
    run, [approval] = _pause(api, llm)
    llm.enqueue(Text("It was refused."))
    decider = services.Decider(_as(alice), "api", ("approvals:decide",))

    with transaction.atomic():  # approved, then tampered with before the run resumes
        services.approve(ApprovalRequest.objects.get(pk=approval["id"]), decider)
        ApprovalRequest.objects.filter(pk=approval["id"]).update(
            approved_arguments={"to": "eve@evil.test", "subject": "hi"}
        )

    assert _finished(api, run["id"])["status"] == "completed"
    assert sample_agents.CALLS == []
    result = Message.objects.get(run_id=run["id"], tool_call_id=approval["call_id"])
    assert (result.is_error, "differ from the approved" in result.content) == (True, True)


@pytest.mark.parametrize(("action", "final"), [("reject", "completed"), ("cancel_run", "cancelled")])
def test_an_expired_request_takes_its_expiry_action(api, llm, action, final):
    run, [approval] = _pause(api, llm)
    ApprovalRequest.objects.filter(pk=approval["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1), expiry_action=action
    )
    if action == "reject":
        llm.enqueue(Text("It expired."))

    assert services.expire_due() == 1

    assert _finished(api, run["id"])["status"] == final
    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "expired"
    assert "approval.expired" in _types(run["id"])
    assert sample_agents.CALLS == []
    status, body = Api(create_api_key(Run.objects.get(pk=run["id"]).owner, scopes=["approvals:decide"])[1]).post(
        f"/api/v1/approvals/{approval['id']}/approve", {}
    )
    assert (status, body["error"]["code"]) == (409, "approval_expired")


def test_cancelling_a_paused_run_withdraws_its_requests(api, llm):
    run, [approval] = _pause(api, llm)

    status, cancelled = api.post(f"/api/v1/runs/{run['id']}/cancel")

    assert (status, cancelled["status"]) == (200, "cancelled")
    assert ApprovalRequest.objects.get(pk=approval["id"]).status == "withdrawn"


def test_an_agent_with_its_own_turn_is_run_again_and_earlier_calls_are_not_repeated(api, reviewer):
    status, run = api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    assert sample_agents.CALLS == [("add", {"a": 40, "b": 2})]
    [approval] = ApprovalRequest.objects.filter(run_id=run["id"])
    assert approval.arguments == {"to": "bob@example.com", "subject": "total 42"}

    reviewer.post(f"/api/v1/approvals/{approval.pk}/approve", {})

    final = _finished(api, run["id"])
    assert (final["status"], final["output"]) == ("completed", "sent")
    assert [("add", {"a": 40, "b": 2}), ("send_email", approval.arguments)] == sample_agents.CALLS
    calls = Message.objects.filter(run_id=run["id"], role="assistant").count()
    assert calls == 3  # add, send_email, the answer: the paused call was not recorded twice


def test_operator_conditions_choose_the_permission_per_call(api, llm):
    Tool.objects.filter(agent__name="oai", name="add").update(
        conditions=[
            {"when": {"arg": "b", "op": "eq", "value": 13}, "then": "deny"},
            {"when": {"arg": "a", "op": "gt", "value": 100}, "then": "confirm"},
        ]
    )
    llm.enqueue(
        ToolCalls([Call("add", {"a": 1, "b": 2}), Call("add", {"a": 1, "b": 13}), Call("add", {"a": 500, "b": 1})])
    )

    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "add"})

    assert (status, run["status"]) == (202, "awaiting_approval")
    assert sample_agents.CALLS == [("add", {"a": 1, "b": 2})]
    refused = Message.objects.get(run_id=run["id"], role="tool", is_error=True)
    assert "not permitted" in refused.content
    [approval] = ApprovalRequest.objects.filter(run_id=run["id"])
    assert approval.arguments == {"a": 500, "b": 1}
    api.post(f"/api/v1/runs/{run['id']}/cancel")


def test_conditions_are_validated_when_an_operator_saves_them():
    tool = Tool.objects.get(agent__name="oai", name="add")
    tool.conditions = [{"when": {"arg": "c", "op": "gt", "value": 1}, "then": "confirm"}]
    with pytest.raises(ValidationError, match="no argument 'c'"):
        tool.full_clean()


def test_a_person_must_be_staff_verified_by_a_second_factor_and_hold_the_permission(alice):
    request = ApprovalRequest(owner=alice)
    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    alice = type(alice).objects.get(pk=alice.pk)  # a fresh permission cache

    assert not services.may_decide(services.Decider(_as(alice), "admin"), request)  # no second factor
    alice.is_verified = lambda: True
    assert services.may_decide(services.Decider(_as(alice), "admin"), request)
    alice.is_staff = False
    assert not services.may_decide(services.Decider(_as(alice), "admin"), request)


def _as(user: Any) -> Actor:
    return Actor(AuditChannel.API, user=user)
