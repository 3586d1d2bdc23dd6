"""`Idempotency-Key`: the same request twice answers the same run; another body with it, 422."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from agents.models import Run
from tests.conftest import Api

pytestmark = pytest.mark.django_db(transaction=True)


def _post(api: Api, body: dict, key: str) -> tuple[int, dict]:
    response = api.client.post(
        "/api/v1/agents/calc/runs/",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}", "Idempotency-Key": key},
    )
    return response.status_code, response.json()


def test_the_same_request_again_answers_the_same_run(api, llm):
    status, first = _post(api, {"input": "1+2"}, "req-1")
    again_status, again = _post(api, {"input": "1+2"}, "req-1")

    assert (status, again_status) == (201, 201)
    assert again["id"] == first["id"]
    assert again["output"] == first["output"]
    assert Run.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(api, llm):
    _, first = _post(api, {"input": "1+2"}, "req-2")

    status, body = _post(api, {"input": "2+2"}, "req-2")

    assert status == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["details"] == {"run_id": first["id"]}
    assert Run.objects.count() == 1


def test_keys_belong_to_their_owner(api, llm, make_api):
    _, mine = _post(api, {"input": "1+2"}, "shared")
    _, theirs = _post(make_api("bob"), {"input": "1+2"}, "shared")

    assert mine["id"] != theirs["id"]


def test_a_bad_key_is_refused(api):
    status, body = _post(api, {"input": "1+2"}, "x" * 201)

    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert Run.objects.count() == 0


def test_the_same_key_sent_twice_at_once_makes_one_run(api, llm):
    answers: list[tuple[int, dict]] = []

    def send() -> None:
        try:
            answers.append(_post(api, {"input": "3+4", "background": True}, "race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [status for status, _ in answers] == [202] * 4
    assert len({body["id"] for _, body in answers}) == 1
    assert Run.objects.count() == 1
