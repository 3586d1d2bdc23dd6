"""Every bad input gets a JSON 4xx with a stable code, and writes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, ApiKey, Message, Run, Session
from tests.conftest import Api
from tests.factories import create_api_key, create_user


def _row_counts() -> tuple[int, int, int]:
    return Run.objects.count(), Message.objects.count(), Session.objects.count()


@pytest.fixture
def existing_session(api, llm):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    return run["session_id"]


def _assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ('{"input": "hi",', 400, "malformed_json"),
        ("[1, 2]", 400, "invalid_request"),
        ("{}", 400, "invalid_request"),
        ('{"input": ""}', 400, "invalid_request"),
        ('{"input": "   "}', 400, "invalid_request"),
        ('{"input": 42}', 400, "invalid_request"),
        ('{"input": "hi", "metadata": [1]}', 400, "invalid_request"),
        ('{"input": "hi", "sesion_id": null}', 400, "invalid_request"),
        ('{"input": "hi", "session_id": "not-a-uuid"}', 400, "invalid_request"),
    ],
    ids=[
        "malformed-json",
        "not-an-object",
        "missing-input",
        "empty-input",
        "blank-input",
        "input-not-text",
        "metadata-not-object",
        "unknown-field",
        "bad-session-id",
    ],
)
def test_malformed_run_requests(api, existing_session, raw, status, code):
    before = _row_counts()

    got, body = api.post("/api/v1/agents/calc/runs/", raw=raw)

    _assert_error(got, body, status, code)
    assert _row_counts() == before


@pytest.mark.django_db(transaction=True)
def test_the_error_names_the_field(api):
    status, body = api.post("/api/v1/agents/calc/runs/", {})

    assert status == 400
    assert body["error"]["message"] == "input: This field is required."
    assert body["error"]["details"] == {"input": ["This field is required."]}


@pytest.mark.django_db(transaction=True)
def test_input_over_the_limit(api, existing_session, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "MAX_INPUT_CHARS": 10}
    before = _row_counts()

    status, body = api.post("/api/v1/agents/calc/runs/", {"input": "1+" + "1" * 20})

    _assert_error(status, body, 413, "input_too_large")
    assert body["error"]["details"] == {"limit": 10}
    assert _row_counts() == before


@pytest.mark.django_db(transaction=True)
def test_a_request_body_over_the_byte_limit(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    status, body = api.post("/api/v1/agents/calc/runs/", {"input": "x" * 5000})

    _assert_error(status, body, 413, "payload_too_large")
    assert _row_counts() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_unknown_agent(api):
    status, body = api.post("/api/v1/agents/nobody/runs/", {"input": "hi"})

    _assert_error(status, body, 404, "agent_not_found")
    assert _row_counts() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_disabled_agent(api):
    Agent.objects.filter(name="calc").update(enabled=False)

    status, body = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    _assert_error(status, body, 409, "agent_disabled")
    assert _row_counts() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_agent_removed_from_code(api):
    Agent.objects.create(name="retired", code_model="demo")

    status, body = api.post("/api/v1/agents/retired/runs/", {"input": "hi"})

    _assert_error(status, body, 409, "agent_unavailable")


@pytest.mark.django_db(transaction=True)
def test_unknown_session(api, existing_session):
    before = _row_counts()

    status, body = api.post("/api/v1/agents/calc/runs/", {"input": "1+1", "session_id": str(uuid.uuid4())})

    _assert_error(status, body, 404, "session_not_found")
    assert _row_counts() == before


@pytest.mark.django_db(transaction=True)
def test_session_of_another_agent(api, existing_session):
    before = _row_counts()

    status, body = api.post("/api/v1/agents/demo/runs/", {"input": "hi", "session_id": existing_session})

    _assert_error(status, body, 400, "session_agent_mismatch")
    assert _row_counts() == before


@pytest.mark.django_db(transaction=True)
def test_a_session_with_an_active_run_is_busy(api, existing_session):
    session = Session.objects.get(pk=existing_session)
    active = Run.objects.create(session=session, agent=session.agent, owner=session.owner, status="running", input="x")
    before = _row_counts()

    status, body = api.post("/api/v1/agents/calc/runs/", {"input": "1+1", "session_id": existing_session})

    _assert_error(status, body, 409, "session_busy")
    assert body["error"]["details"] == {"run_id": str(active.pk)}
    assert _row_counts() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "query",
    ["cursor=garbage", "limit=0", "limit=abc", "order=sideways"],
)
def test_bad_pagination(api, existing_session, query):
    status, body = api.get(f"/api/v1/sessions/{existing_session}/messages/?{query}")

    _assert_error(status, body, 400, "invalid_request")


@pytest.mark.django_db(transaction=True)
def test_no_key(alice):
    status, body = Api(None).post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    _assert_error(status, body, 401, "not_authenticated")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("key_state", "code"),
    [
        ("unknown", "invalid_api_key"),
        ("malformed", "invalid_api_key"),
        ("revoked", "api_key_revoked"),
        ("expired", "api_key_expired"),
    ],
)
def test_bad_keys(key_state, code):
    api_key, key = create_api_key(create_user("carol"))
    if key_state == "unknown":
        key = key[:-4] + "AAAA"
    elif key_state == "malformed":
        key = "sk-something-else"
    elif key_state == "revoked":
        ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    else:
        ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    status, body = Api(key).post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    _assert_error(status, body, 401, code)
    assert _row_counts() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_unknown_endpoint_is_json(api):
    status, body = api.get("/api/v1/nothing-here/")

    _assert_error(status, body, 404, "not_found")


@pytest.mark.django_db(transaction=True)
def test_wrong_method(api):
    status, body = api.request("PUT", "/api/v1/agents/", {})

    _assert_error(status, body, 405, "method_not_allowed")
