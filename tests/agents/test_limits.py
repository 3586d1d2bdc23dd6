"""Rate limits and quotas per API key, counted in the suite's real Redis: every limit crossed
(429 with its headers, nothing written), a key's own limit set in the admin, Redis away."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client

from agents.models import ApiKey, Run, Session
from agents.services import limits
from tests.conftest import Api
from tests.factories import create_api_key
from tests.infra import free_port


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Ids are reused once the database is reset, so each test starts with no counters."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter("agentplatform:limits:*"):
        client.delete(key)


def _limit(settings, **limits: int) -> None:
    settings.AGENTPLATFORM = {
        **settings.AGENTPLATFORM,
        **{f"RATE_LIMIT_{name.upper()}": value for name, value in limits.items()},
    }


def _call(api: Api, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {api.key}"}
    if body is None:
        return getattr(api.client, method)(path, headers=headers)
    return getattr(api.client, method)(path, data=json.dumps(body), content_type="application/json", headers=headers)


def _refusal(response) -> dict:
    assert response.status_code == 429, response.content
    return response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_requests_past_the_minute_limit_get_429_with_headers_and_write_nothing(api, settings):
    _limit(settings, requests_per_minute=2)

    first = _call(api, "get", "/api/v1/sessions/")
    second = _call(api, "get", "/api/v1/sessions/")
    third = _call(api, "post", "/api/v1/sessions/", {"agent": "calc"})

    assert (first.status_code, first["RateLimit-Limit"], first["RateLimit-Remaining"]) == (200, "2", "1")
    assert (second.status_code, second["RateLimit-Remaining"]) == (200, "0")
    error = _refusal(third)
    assert (error["code"], error["details"]) == (
        "rate_limited",
        {"limit": "requests_per_minute", "value": 2, "scope": "key"},
    )
    assert (third["RateLimit-Limit"], third["RateLimit-Remaining"]) == ("2", "0")
    assert 1 <= int(third["Retry-After"]) <= 60
    assert third["RateLimit-Reset"] == third["Retry-After"]
    assert not Session.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_runs_past_the_minute_limit_get_429_and_no_run(api, settings):
    _limit(settings, runs_per_minute=1)

    started = _call(api, "post", "/api/v1/agents/calc/runs/", {"input": "1+1"})
    refused = _call(api, "post", "/api/v1/agents/calc/runs/", {"input": "2+2"})

    assert started.status_code == 201
    error = _refusal(refused)
    assert (error["code"], error["details"]) == (
        "rate_limited",
        {"limit": "runs_per_minute", "value": 1, "scope": "key"},
    )
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"]) == ("1", "0")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert list(Run.objects.values_list("input", flat=True)) == ["1+1"]
    assert Session.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_are_limited_until_one_finishes(api, settings):
    """A run waiting for approval is unfinished; once it is cancelled, a new one may start."""
    _limit(settings, concurrent_runs=1)
    status, paused = api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    assert (status, paused["status"]) == (202, "awaiting_approval")

    refused = _call(api, "post", "/api/v1/agents/calc/runs/", {"input": "1+1"})

    error = _refusal(refused)
    assert (error["code"], error["details"]) == (
        "rate_limited",
        {"limit": "concurrent_runs", "value": 1, "scope": "key"},
    )
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"], refused["Retry-After"]) == ("1", "0", "1")
    assert Run.objects.count() == 1
    assert api.post(f"/api/v1/runs/{paused['id']}/cancel")[0] == 200
    assert api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})[0] == 201


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_end_was_never_counted_does_not_hold_a_slot(api, settings):
    """A process killed between a run's end and its count: the database says the run is over."""
    _limit(settings, concurrent_runs=1)
    _, paused = api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    Run.objects.filter(pk=paused["id"]).update(status="failed")  # ended without telling Redis

    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    assert (status, run["output"]) == (201, "2 (and tool_denied)")


@pytest.mark.django_db(transaction=True)
def test_a_key_that_used_its_tokens_today_cannot_start_a_run(api, settings):
    _limit(settings, tokens_per_day=4)
    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})  # 3 in, 1 out
    assert (status, run["usage"]["total_tokens"]) == (201, 4)

    refused = _call(api, "post", "/api/v1/agents/calc/runs/", {"input": "2+2"})

    error = _refusal(refused)
    assert (error["code"], error["details"]) == (
        "quota_exceeded",
        {"limit": "tokens_per_day", "value": 4, "scope": "key"},
    )
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"]) == ("4", "0")
    assert 1 <= int(refused["Retry-After"]) <= 86_401
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_limit_set_on_the_key_in_the_admin_wins_over_the_setting(admin_client, alice, settings):
    _limit(settings, requests_per_minute=100)
    api_key, key = create_api_key(alice, name="ci")
    api = Api(key)
    form = {"name": "ci", "scopes": "[]", "expires_at_0": "", "expires_at_1": "", "requests_per_minute": "1"}
    form |= {"runs_per_minute": "", "concurrent_runs": "", "tokens_per_day": ""}

    response = admin_client.post(f"/admin/agents/apikey/{api_key.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert api.get("/api/v1/sessions/")[0] == 200
    status, body = api.get("/api/v1/sessions/")
    assert (status, body["error"]["details"]) == (429, {"limit": "requests_per_minute", "value": 1, "scope": "key"})
    page = admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()
    assert "requests this minute: 1 of 1; runs in flight: 0 (unlimited); tokens today (UTC): 0 (unlimited)" in page
    assert ApiKey.objects.get(pk=api_key.pk).runs_per_minute is None  # blank: the setting's


@pytest.mark.django_db(transaction=True)
def test_the_admin_shows_a_keys_runs_in_flight_and_tokens_today(admin_client, api, settings):
    _limit(settings, concurrent_runs=5, tokens_per_day=1000)
    api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    api_key = ApiKey.objects.get()

    page = admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()

    assert "runs in flight: 1 of 5; tokens today (UTC): 4 of 1000" in page


@pytest.mark.django_db(transaction=True)
def test_the_admin_shows_an_unlimited_keys_runs_in_flight_and_tokens_today_from_its_runs(admin_client, api):
    api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})  # no limit anywhere: Redis counts nothing
    api.post("/api/v1/agents/mailer/runs/", {"input": "bob@example.com"})
    api_key = ApiKey.objects.get()

    page = admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()

    assert "requests this minute: not counted (unlimited); runs in flight: 1 (unlimited)" in page
    assert "tokens today (UTC): 4 (unlimited)" in page


@pytest.mark.django_db(transaction=True)
def test_without_redis_requests_runs_and_the_admin_go_on(admin_client, alice, settings):
    _limit(settings, requests_per_minute=1, runs_per_minute=1, concurrent_runs=1, tokens_per_day=1)
    api_key, key = create_api_key(alice)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    statuses = [Api(key).get("/api/v1/sessions/")[0] for _ in range(3)]

    assert statuses == [200, 200, 200]
    for _ in range(2):  # a run is admitted, not refused, when its limits cannot be counted
        limits.admit_run(alice, ApiKey.objects.get(pk=api_key.pk), uuid.uuid4())
    page = admin_client.get(f"/admin/agents/apikey/{api_key.pk}/change/").content.decode()
    assert "unknown (Redis cannot be reached)" in page


def test_unauthenticated_endpoints_are_not_counted(settings, db):
    _limit(settings, requests_per_minute=1)

    assert [Client().get("/api/v1/health/").status_code for _ in range(3)] == [200, 200, 200]
