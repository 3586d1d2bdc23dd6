"""Rate limits and quotas per owner (all of one user's keys together), counted in the suite's
real Redis with each key's own in one script: the tighter wins, a refusal names its scope,
nothing is written past it, and nothing is sent to Redis when nothing is limited."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from websockets.sync.client import connect

from agentplatform.audit.models import AuditEntry
from agents.models import Agent, ApiKey, OwnerLimits, Run, Session
from tests.conftest import Api
from tests.factories import create_api_key, create_user
from tests.infra import wait_until


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Ids are reused once the database is reset, so each test starts with no counters."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter("agentplatform:limits:*"):
        client.delete(key)


@pytest.fixture
def limit_commands(monkeypatch) -> list[bytes]:
    """Every round trip to Redis about limits (a script call or a pipeline is one)."""
    sent: list[bytes] = []
    original = redis.connection.Connection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(command)
        if b"agentplatform:limits" in packed:
            sent.append(packed)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", send)
    return sent


def _owner_limit(settings, **limits: int) -> None:
    settings.AGENTPLATFORM = {
        **settings.AGENTPLATFORM,
        **{f"OWNER_RATE_LIMIT_{name.upper()}": value for name, value in limits.items()},
    }


def _key_limit(settings, **limits: int) -> None:
    settings.AGENTPLATFORM = {
        **settings.AGENTPLATFORM,
        **{f"RATE_LIMIT_{name.upper()}": value for name, value in limits.items()},
    }


def _second_key(owner: Any) -> Api:
    return Api(create_api_key(owner, name="second")[1])


def _post(api: Api, path: str, body: dict):
    headers = {"Authorization": f"Bearer {api.key}"}
    return api.client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def _refusal(response) -> dict:
    assert response.status_code == 429, response.content
    return response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_an_owners_request_limit_counts_all_of_their_keys_together(api, alice, settings):
    _owner_limit(settings, requests_per_minute=3)
    other = _second_key(alice)
    bob = Api(create_api_key(create_user("bob"))[1])

    statuses = [api.get("/api/v1/sessions/")[0], other.get("/api/v1/sessions/")[0], api.get("/api/v1/sessions/")[0]]
    refused = _post(other, "/api/v1/sessions/", {"agent": "calc"})

    assert statuses == [200, 200, 200]
    error = _refusal(refused)
    assert (error["code"], error["details"]) == (
        "rate_limited",
        {"limit": "requests_per_minute", "value": 3, "scope": "owner"},
    )
    assert "this owner's API keys" in error["message"]
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"]) == ("3", "0")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert not Session.objects.exists()
    assert bob.get("/api/v1/sessions/")[0] == 200  # another owner's keys are not counted with them


@pytest.mark.django_db(transaction=True)
def test_the_tighter_of_the_keys_and_the_owners_limit_wins_and_a_refusal_counts_nothing(api, alice):
    ApiKey.objects.filter(user=alice).update(requests_per_minute=2)
    OwnerLimits.objects.create(user=alice, requests_per_minute=5)
    other = _second_key(alice)
    counters = redis.Redis.from_url(django_settings.REDIS_URL)

    first = api.client.get("/api/v1/sessions/", headers={"Authorization": f"Bearer {api.key}"})
    api.get("/api/v1/sessions/")
    refused_by_key = api.client.get("/api/v1/sessions/", headers={"Authorization": f"Bearer {api.key}"})
    for _ in range(3):
        assert other.get("/api/v1/sessions/")[0] == 200
    refused_by_owner = other.client.get("/api/v1/sessions/", headers={"Authorization": f"Bearer {other.key}"})

    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("2", "1")  # the key's: less left
    assert _refusal(refused_by_key)["details"] == {"limit": "requests_per_minute", "value": 2, "scope": "key"}
    assert _refusal(refused_by_owner)["details"] == {"limit": "requests_per_minute", "value": 5, "scope": "owner"}
    assert refused_by_owner["RateLimit-Limit"] == "5"
    owner_count = counters.get(f"agentplatform:limits:owner:{alice.pk}:requests")
    assert owner_count == b"5"  # the request the key refused was not counted for the owner


@pytest.mark.django_db(transaction=True)
def test_an_owners_runs_per_minute_limit_refuses_a_run_of_another_key_and_writes_nothing(api, alice, settings):
    OwnerLimits.objects.create(user=alice, runs_per_minute=1)
    other = _second_key(alice)

    started = _post(api, "/api/v1/agents/calc/runs/", {"input": "1+1"})
    refused = _post(other, "/api/v1/agents/calc/runs/", {"input": "2+2"})

    assert started.status_code == 201
    error = _refusal(refused)
    assert (error["code"], error["details"]) == (
        "rate_limited",
        {"limit": "runs_per_minute", "value": 1, "scope": "owner"},
    )
    assert list(Run.objects.values_list("input", flat=True)) == ["1+1"]
    assert Session.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_owners_concurrent_runs_are_limited_across_keys_until_one_finishes(api, alice, settings):
    _owner_limit(settings, concurrent_runs=1)
    other = _second_key(alice)
    status, paused = api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    assert (status, paused["status"]) == (202, "awaiting_approval")

    refused = _post(other, "/api/v1/agents/calc/runs/", {"input": "1+1"})

    assert _refusal(refused)["details"] == {"limit": "concurrent_runs", "value": 1, "scope": "owner"}
    assert Run.objects.count() == 1
    assert api.post(f"/api/v1/runs/{paused['id']}/cancel")[0] == 200
    assert other.post("/api/v1/agents/calc/runs/", {"input": "1+1"})[0] == 201


@pytest.mark.django_db(transaction=True)
def test_an_owner_whose_keys_used_the_days_tokens_cannot_start_a_run_with_any_key(api, alice, settings):
    _owner_limit(settings, tokens_per_day=4)
    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})  # 3 in, 1 out
    assert (status, run["usage"]["total_tokens"]) == (201, 4)

    refused = _post(_second_key(alice), "/api/v1/agents/calc/runs/", {"input": "2+2"})

    error = _refusal(refused)
    assert (error["code"], error["details"]) == (
        "quota_exceeded",
        {"limit": "tokens_per_day", "value": 4, "scope": "owner"},
    )
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_runs_started_through_the_openai_adapter_count_against_the_owner(api, alice):
    OwnerLimits.objects.create(user=alice, runs_per_minute=1)
    assert api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})[0] == 201

    refused = _post(
        _second_key(alice),
        "/openai/v1/chat/completions",
        {"model": "calc", "messages": [{"role": "user", "content": "2+2"}]},
    )

    assert refused.status_code == 429, refused.content
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_sent_over_the_websocket_counts_against_the_owner(api, alice, daphne):
    OwnerLimits.objects.create(user=alice, runs_per_minute=1)  # in the database: Daphne reads it
    assert api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})[0] == 201
    other = _second_key(alice)
    session = Session.objects.create(owner=alice, agent=Agent.objects.get(name="calc"))

    url = f"{daphne.url}/ws/sessions/{session.pk}/"
    with connect(url, additional_headers={"Authorization": f"Bearer {other.key}"}) as socket:
        socket.send(json.dumps({"type": "run", "input": "2+2", "id": "r1"}))
        message = json.loads(socket.recv(timeout=20))
        while message["type"] != "error":  # after what the socket says on connecting
            message = json.loads(socket.recv(timeout=20))

    assert (message["type"], message["id"], message["error"]["code"]) == ("error", "r1", "rate_limited")
    assert message["error"]["details"] == {"limit": "runs_per_minute", "value": 1, "scope": "owner"}
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_admin_sets_an_owners_limits_shows_their_use_and_audits_it(admin_client, api, alice):
    form = {"user": str(alice.pk), "requests_per_minute": "", "runs_per_minute": "", "concurrent_runs": "3"}
    form |= {"tokens_per_day": "1000"}

    response = admin_client.post("/admin/agents/ownerlimits/add/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    _second_key(alice).post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    page = admin_client.get(f"/admin/agents/ownerlimits/{alice.pk}/change/").content.decode()
    assert (
        "requests this minute: not counted (unlimited); runs in flight: 1 of 3; tokens today (UTC): 4 of 1000" in page
    )
    entry = AuditEntry.objects.get(target_type="user", target_id=str(alice.pk))
    assert entry.after is not None
    assert (entry.action, entry.channel, entry.after["concurrent_runs"]) == ("created", "admin", 3)


@pytest.mark.django_db(transaction=True)
def test_nothing_limited_costs_no_round_trip_to_redis(api, limit_commands):
    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    api.get("/api/v1/sessions/")

    assert (status, run["status"]) == (201, "completed")
    assert limit_commands == []


@pytest.mark.django_db(transaction=True)
def test_key_and_owner_limits_together_cost_one_round_trip_per_request_and_per_run(
    api, alice, settings, limit_commands
):
    _key_limit(settings, requests_per_minute=100, runs_per_minute=100)
    OwnerLimits.objects.create(user=alice, requests_per_minute=100, concurrent_runs=10)

    api.get("/api/v1/sessions/")
    requests = len(limit_commands)
    status, _ = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    assert (requests, status) == (1, 201)
    wait_until(lambda: len(limit_commands) >= 4, timeout=30)  # the run's end is counted on its commit
    assert len(limit_commands) == 4  # the request, the run's admission, its end (one pipeline)
