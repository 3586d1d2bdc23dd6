"""WebSocket /ws/sessions/{id}/ on a real Daphne: input in, the session's events out, live."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from agentplatform.audit.models import AuditEntry
from agents.models import ACTIVE_RUN_STATUSES, Agent, ApiKey, Run, RunEvent, Session
from approvals.models import ApprovalRequest
from tests import sample_agents
from tests.factories import create_api_key
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Socket:
    """A client on one session: JSON frames in and out, with a timeout on every read."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    def send(self, message: dict[str, Any]) -> None:
        self.connection.send(json.dumps(message))

    def recv(self, timeout: float = 20) -> dict[str, Any]:
        return json.loads(self.connection.recv(timeout=timeout))

    def until(self, kind: str) -> list[dict[str, Any]]:
        """Messages up to and including the first of type `kind`."""
        seen = [self.recv()]
        while seen[-1]["type"] != kind:
            seen.append(self.recv())
        return seen


@contextlib.contextmanager
def _open(daphne: Any, session_id: str, key: str | None, *, subprotocol: bool = False) -> Iterator[Socket]:
    url = f"{daphne.url}/ws/sessions/{session_id}/"
    if subprotocol:
        options: dict[str, Any] = {"subprotocols": ["agentplatform", f"bearer.{key}"]}
    else:
        options = {"additional_headers": {"Authorization": f"Bearer {key}"} if key else {}}
    with connect(url, **options) as connection:
        yield Socket(connection)


def _session(owner: Any, agent: str = "oai") -> Session:
    return Session.objects.create(owner=owner, agent=Agent.objects.get(name=agent))


def _stored(run_id: str) -> list[tuple[int, str]]:
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "type"))


def test_input_sent_over_the_socket_streams_the_runs_events_in_order(api, alice, llm, daphne):
    session = _session(alice)
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("5"))
    with _open(daphne, str(session.pk), api.key) as socket:
        ready = socket.recv()
        socket.send({"type": "run", "input": "2+3?", "id": "r1"})
        accepted = socket.recv()
        received = socket.until("run.completed")

    assert (ready["type"], ready["session_id"], ready["active_runs"]) == ("session.ready", str(session.pk), [])
    assert (accepted["type"], accepted["id"], accepted["status"]) == ("run.accepted", "r1", "queued")

    assert [(e["seq"], e["type"]) for e in received] == _stored(accepted["run_id"])
    assert [e["type"] for e in received] == [
        "run.started",
        "tool.call.started",
        "tool.call.completed",
        "message.delta",
        "message.completed",
        "run.completed",
    ]
    assert received[-1]["data"]["output"] == "5"
    assert api.key not in daphne.log.read_text()  # the key is never logged


def test_a_browser_authenticates_with_the_bearer_subprotocol(api, alice, daphne):
    session = _session(alice)
    with _open(daphne, str(session.pk), api.key, subprotocol=True) as socket:
        assert socket.connection.subprotocol == "agentplatform"  # the key is not echoed back
        assert socket.recv()["type"] == "session.ready"
        socket.send({"type": "ping", "id": 7})
        assert socket.recv() == {"type": "pong", "id": 7}


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("nobody", (4401, "invalid_api_key")),
        ("bad key", (4401, "invalid_api_key")),
        ("revoked", (4401, "api_key_revoked")),
        ("mallory", (4404, "session_not_found")),
        ("restricted", (4403, "agent_not_permitted")),
    ],
)
def test_a_handshake_without_the_right_is_refused_with_a_close_code(alice, make_api, daphne, who, expected):
    session = _session(alice)
    key = {
        "nobody": None,
        "bad key": "ap_not-a-key",
        "revoked": _revoked_key(alice),
        "mallory": make_api("mallory").key,
        "restricted": create_api_key(alice, agents=[Agent.objects.get(name="calc")])[1],
    }[who]
    with _open(daphne, str(session.pk), key) as socket:
        error = socket.recv()["error"]
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, error["code"]) == expected
    assert error["message"]


def _revoked_key(owner: Any) -> str:
    api_key, key = create_api_key(owner)
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    return key


def test_a_reconnecting_client_resumes_after_its_last_event_with_no_loss_or_duplicate(api, alice, llm, daphne):
    session = _session(alice)
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("through"))
    with _open(daphne, str(session.pk), api.key) as first:
        first.recv()
        first.send({"type": "run", "input": "wait"})
        run_id = first.recv()["run_id"]
        seen = first.until("tool.call.started")  # run.started, tool.call.started
    # gone while the run goes on
    sample_agents.GATE.set()
    wait_until(lambda: _stored(run_id)[-1][1] == "run.completed", timeout=30)
    with _open(daphne, str(session.pk), api.key) as second:
        assert second.recv()["active_runs"] == []
        second.send({"type": "resume", "run_id": run_id, "seq": seen[-1]["seq"], "id": "again"})
        rest = second.until("resumed")

    assert rest[-1] == {"type": "resumed", "id": "again", "replayed": len(rest) - 1}
    assert [(e["seq"], e["type"]) for e in seen + rest[:-1]] == _stored(run_id)


def test_several_clients_watch_one_session_and_one_of_them_cancels(api, alice, llm, daphne):
    session = _session(alice)
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]))  # a second model call would be a failure to cancel
    with _open(daphne, str(session.pk), api.key) as watcher, _open(daphne, str(session.pk), api.key) as driver:
        watcher.recv(), driver.recv()
        driver.send({"type": "run", "input": "wait"})
        run_id = driver.recv()["run_id"]
        driver.until("tool.call.started")
        driver.send({"type": "cancel", "id": "stop"})
        cancelling = driver.recv()
        sample_agents.GATE.set()
        driver_events = [e for e in driver.until("run.cancelled") if "seq" in e]
        watcher_events = watcher.until("run.cancelled")

    assert (cancelling["type"], cancelling["run_id"], cancelling["status"]) == ("run.cancelling", run_id, "running")
    assert [(e["seq"], e["type"]) for e in watcher_events] == _stored(run_id)
    assert [e["type"] for e in watcher_events] == [
        "run.started",
        "tool.call.started",
        "tool.call.completed",
        "run.cancelled",
    ]
    assert driver_events == watcher_events[2:]


def test_bad_messages_get_an_error_and_the_socket_stays_open(api, alice, llm, daphne):
    session = _session(alice)
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("done"))
    with _open(daphne, str(session.pk), api.key) as socket:
        socket.recv()

        socket.connection.send("{not json")
        assert socket.recv()["error"]["code"] == "invalid_request"
        socket.send({"type": "dance", "id": 1})
        unknown = socket.recv()
        assert (unknown["id"], unknown["error"]["details"]["field"]) == (1, "type")
        socket.send({"type": "run", "id": 2})
        missing = socket.recv()
        assert (missing["id"], missing["error"]["code"], list(missing["error"]["details"])) == (
            2,
            "invalid_request",
            ["input"],
        )
        socket.send({"type": "run", "input": "x", "if_busy": "sometimes"})
        assert list(socket.recv()["error"]["details"]) == ["if_busy"]
        socket.send({"type": "cancel"})
        assert socket.recv()["error"]["code"] == "run_not_active"

        socket.send({"type": "run", "input": "wait"})
        active = socket.recv()["run_id"]
        socket.send({"type": "run", "input": "again", "id": 3})
        busy = socket.until("error")[-1]
        assert (busy["id"], busy["error"]["code"], busy["error"]["details"]) == (3, "session_busy", {"run_id": active})
        sample_agents.GATE.set()
        socket.until("run.completed")
    assert Session.objects.get(pk=session.pk).runs.count() == 1


def test_a_reviewer_on_the_socket_approves_with_edits_and_watches_the_run_finish(alice, llm, daphne, celery_worker):
    api_key, key = create_api_key(alice, scopes=["approvals:decide"])
    session = _session(alice)
    llm.enqueue(ToolCalls([Call("send_email", {"to": "bob@example.com", "subject": "hi"})]), Text("Sent."))
    with _open(daphne, str(session.pk), key) as socket:
        socket.recv()
        socket.send({"type": "run", "input": "email bob"})
        socket.recv()
        requested = socket.until("approval.requested")[-1]["data"]
        socket.until("run.awaiting_approval")
        edited = {"to": "carol@example.com", "subject": "hi"}
        approve = {"type": "approve", "approval_id": requested["approval_id"], "arguments": edited, "id": "ok"}
        socket.send({**approve, "comment": "carol handles it"})
        accepted = socket.until("approval.accepted")[-1]
        rest = socket.until("run.completed")
        socket.send({"type": "approve", "approval_id": requested["approval_id"], "id": "again"})
        again = socket.until("error")[-1]

    assert (accepted["id"], accepted["status"]) == ("ok", "approved")
    decided = next(e for e in rest if e["type"] == "approval.decided")
    assert (decided["data"]["channel"], decided["data"]["arguments"]) == ("websocket", edited)
    assert decided["data"]["comment"] == "carol handles it"
    assert ApprovalRequest.objects.get(pk=requested["approval_id"]).comment == "carol handles it"
    assert [("send_email", edited)] == sample_agents.CALLS
    assert (again["id"], again["error"]["code"]) == ("again", "approval_already_decided")
    audited = AuditEntry.objects.get(target_type="approval")  # the decision, not the refused second one
    assert (audited.action, audited.channel, audited.request_id, audited.ip) == (
        "approved",
        "websocket",
        "ok",
        "127.0.0.1",
    )
    assert (audited.actor_id, audited.api_key_id) == (alice.pk, str(api_key.pk))
    assert audited.after is not None
    assert (audited.after["comment"], audited.after["approved_arguments"]) == ("carol handles it", edited)


def test_sockets_closed_while_their_runs_go_on_leave_no_redis_subscription_behind(api, alice, llm, daphne):
    # Given the Redis subscriptions before any socket
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    before = set(redis_client.pubsub_channels())

    # When clients each start a run and close their socket while its events arrive
    for n in range(20):
        llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": n})]), Text(str(n + 1)))
        with _open(daphne, str(_session(alice).pk), api.key) as socket:
            socket.recv()  # session.ready
            socket.send({"type": "run", "input": "1+n?"})
            socket.recv()  # run.accepted
            socket.recv()  # the first event

    # Then, once the runs are over, the web process has unsubscribed every channel and group they used
    wait_until(lambda: not Run.objects.filter(status__in=ACTIVE_RUN_STATUSES).exists(), timeout=60)

    def left() -> set[bytes | str]:
        return set(redis_client.pubsub_channels()) - before

    with contextlib.suppress(AssertionError):
        wait_until(lambda: not left(), timeout=30)
    assert left() == set()
