"""Every bad input gets a JSON 4xx with a stable code, and writes nothing."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

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
    ["limit=0", "limit=abc", "order=sideways"],
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


def _id_routes() -> list[tuple[str, str]]:
    """Every operation of the API with an id in its path, from the OpenAPI schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if re.search(r"\{\w+_id\}", path)
        for method in operations
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "bad_id", ["0", "1' OR '1'='1", "%00", "x" * 10_000, "a" * 31 + "g"], ids=lambda value: f"{len(value)}-chars"
)
def test_an_id_that_is_not_one_is_404_on_every_route(api, bad_id):
    for method, path in _id_routes():
        url = re.sub(r"\{\w+_id\}", bad_id, path)

        status, body = api.request(method, url, {} if method in ("POST", "PATCH") else None)

        assert status == 404, (method, path, body)
        if path.startswith("/langgraph/"):  # LangGraph's error shape, as its SDK reads it
            assert body["code"].endswith("not_found"), (method, path, body)
        else:
            _assert_error(status, body, 404, body["error"]["code"])


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/sessions/?cursor={}",
        "/api/v1/approvals/?cursor={}",
        "/api/v1/schedules/?cursor={}",
        "/api/v1/sessions/{session}/messages/?cursor={}",
        "/api/v1/sessions/{session}/runs/?cursor={}",
    ],
)
@pytest.mark.parametrize(
    "cursor",
    [_cursor("p=not-a-date"), _cursor("p=%00"), _cursor("p=2024-01-01 00:00:00"), _cursor("p=9" * 30), "garbage"],
    ids=["not-a-date", "nul", "naive-date", "huge-number", "not-base64"],
)
def test_a_crafted_cursor_is_400(api, existing_session, url, cursor):
    status, body = api.get(url.replace("{session}", existing_session).format(cursor))

    _assert_error(status, body, 400, "invalid_cursor")
    assert body["error"]["details"] == {"param": "cursor"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", ["/api/v1/sessions/?agent=%00", "/api/v1/context-sources/?agent=calc%00"])
def test_nul_in_a_query_parameter_is_400(api, url):
    status, body = api.get(url)

    _assert_error(status, body, 400, "invalid_request")


def _deep(depth: int, leaf: str = '"x"') -> str:
    return '{"a": ' * depth + leaf + "}" * depth


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("[" * 100_000 + "]" * 100_000, 400, "json_too_deep"),
        ('{"input": "hi", "metadata": ' + _deep(3000) + "}", 400, "json_too_deep"),
        ('{"input": "hi", "metadata": ' + _deep(40) + "}", 400, "json_too_deep"),
        ('{"input": "hi", "metadata": {"n": [' + ",".join(["0"] * 20_000) + "]}}", 400, "json_too_many_items"),
        ('{"input": "hi", "metadata": {"n": ' + "9" * 10_000 + "}}", 400, "json_number_out_of_range"),
        ('{"input": "hi", "metadata": {"n": 99999999999999999999}}', 400, "json_number_out_of_range"),
        ('{"input": "hi", "metadata": {"n": 1e400}}', 400, "json_number_out_of_range"),
        ('{"input": "hi", "metadata": {"n": NaN}}', 400, "malformed_json"),
        ('{"input": "hi", "metadata": {"note": "a\\u0000b"}}', 400, "json_invalid_text"),
        ('{"input": "hi", "metadata": {"a\\u0000": 1}}', 400, "json_invalid_text"),
        ('{"input": "hi", "metadata": {"note": "\\ud800"}}', 400, "json_invalid_text"),
        ('{"input": "hi \\udfff"}', 400, "json_invalid_text"),
        (b'{"input": "caf\xe9"}', 400, "malformed_json"),
    ],
    ids=[
        "nested-100000-deep",
        "metadata-nested-3000-deep",
        "metadata-nested-40-deep",
        "too-many-items",
        "a-10000-digit-number",
        "an-integer-past-64-bits",
        "an-infinite-number",
        "nan",
        "nul-in-a-value",
        "nul-in-a-key",
        "lone-surrogate-in-metadata",
        "lone-surrogate-in-input",
        "invalid-utf8",
    ],
)
def test_json_a_caller_may_not_send(api, existing_session, raw, status, code):
    before = _row_counts()

    got, body = api.post("/api/v1/agents/calc/runs/", raw=raw)

    _assert_error(got, body, status, code)
    assert _row_counts() == before


@pytest.mark.django_db(transaction=True)
def test_json_at_the_limits_is_accepted(api, existing_session):
    metadata = (
        '{"deep": ' + _deep(29) + ', "numbers": [' + ",".join(["1"] * 5000) + "], " + '"big": 9223372036854775807}'
    )

    status, run = api.post("/api/v1/agents/calc/runs/", raw=f'{{"input": "1+1", "metadata": {metadata}}}')

    assert status == 201, run
    assert run["metadata"]["big"] == 2**63 - 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["%00", "x" * 10_000], ids=["NUL", "10000-chars"])
def test_an_agent_name_that_cannot_be_one_is_404_in_every_protocol(api, name):
    # (PostgreSQL refuses NUL in a parameter: the name must not reach the database)
    said = {"id": "m1", "role": "user", "content": "hi"}
    run_input = {"threadId": "t", "runId": "r", "messages": [said], "tools": [], "context": [], "state": {}}
    for method, path in [
        ("GET", f"/openai/v1/models/{name}"),
        ("GET", f"/langgraph/assistants/{name}"),
        ("POST", f"/ag-ui/{name}"),
    ]:
        status, body = api.request(method, path, {**run_input, "forwardedProps": {}} if method == "POST" else None)

        assert status == 404, (method, path, body)
