"""A web process under more reads than it can serve, on a real Daphne and PostgreSQL: it
answers each one (a read, or 503 with `Retry-After` and a code, never a 500) and comes
back by itself, its broken pooled connections replaced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connection

from agents.models import Agent, Message, Session
from tests.conftest import serving_daphne
from tests.factories import create_api_key
from tests.infra import database_url, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the connection pool is PostgreSQL's"),
]

APP = "overload-under-test"  # the served process's connections, by their application_name
THREADS = 3  # web threads, database connections, and requests let wait for a thread
READERS = 20
LOCK_WAITERS = "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"


def _session(owner: Any) -> Session:
    session = Session.objects.create(owner=owner, agent=Agent.objects.get(name="oai"), message_count=4)
    for position, role in enumerate(["user", "assistant", "user", "assistant"]):
        Message.objects.create(session=session, position=position, role=role, content=f"message {position}")
    return session


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(database_url(connection.settings_dict), autocommit=True)


def _pids(sql: str) -> list[int]:
    with _admin() as conn:
        return [row[0] for row in conn.execute(sql, (APP,))]


def _terminate(sql: str) -> int:
    pids = _pids(sql)
    with _admin() as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(pids)


@contextlib.contextmanager
def _messages_locked() -> Iterator[psycopg.Connection[Any]]:
    """Every read of messages blocks in the database (holding its thread and connection) until commit."""
    with psycopg.connect(database_url(connection.settings_dict)) as conn:
        conn.execute("LOCK TABLE agents_message IN ACCESS EXCLUSIVE MODE")
        yield conn


async def _saturate(client: httpx.AsyncClient, path: str, lock: psycopg.Connection[Any]) -> list[httpx.Response]:
    """READERS reads at once against reads that block: the refused are answered while the
    others wait; then the blocked requests' connections are killed, and the lock released."""
    reads = [asyncio.create_task(client.get(path)) for _ in range(READERS)]
    await asyncio.to_thread(wait_until, lambda: len(_pids(LOCK_WAITERS)) == THREADS, 30)
    # the ones that could neither run nor wait are answered now, while every thread is still held
    await asyncio.to_thread(wait_until, lambda: sum(r.done() for r in reads) >= READERS - 2 * THREADS, 30)
    assert _terminate(LOCK_WAITERS) == THREADS  # requests whose connection breaks mid-query
    lock.commit()
    return await asyncio.gather(*reads)


def test_saturated_reads_get_503s_with_retry_after_never_500s_and_the_process_recovers(alice, tmp_path):
    # Given a session, and a web process with few threads and connections whose reads of
    # messages block in the database (a table lock held elsewhere)
    _, key = create_api_key(alice)
    path = f"/api/v1/sessions/{_session(alice).id}/messages/?order=desc&limit=50"
    settings = {
        "DATABASE_URL": f"{database_url(connection.settings_dict)}?application_name={APP}",
        "DATABASE_POOL_MAX_SIZE": str(THREADS),
        "AGENTPLATFORM_WEB_THREADS": str(THREADS),
        "AGENTPLATFORM_WEB_QUEUE": str(THREADS),
    }
    with serving_daphne(tmp_path / "daphne.log", **settings) as daphne:
        base = daphne.url.replace("ws://", "http://")
        limits = httpx.Limits(max_connections=READERS)
        headers = {"Authorization": f"Bearer {key}"}

        # When many more readers come than it can serve at once, and the connections of
        # the requests it is serving break mid-query
        async def overload() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
                with _messages_locked() as lock:
                    return await _saturate(client, path, lock)

        responses = asyncio.run(overload())

        # Then every reader is answered: a read, or a 503 with Retry-After and a code
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 503}, statuses
        refused = [r for r in responses if r.status_code == 503]
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        codes = sorted(r.json()["error"]["code"] for r in refused)
        assert codes.count("database_unavailable") == THREADS, codes
        assert "overloaded" in codes
        assert set(codes) == {"overloaded", "database_unavailable"}
        assert all(len(r.json()["results"]) == 4 for r in responses if r.status_code == 200)

        # And when the load is gone and its idle pooled connections are killed too, the
        # next reads succeed and the process reports ready, with no restart
        _terminate("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'idle'")
        after = [httpx.get(f"{base}{path}", headers=headers, timeout=30) for _ in range(2 * THREADS)]
        assert [r.status_code for r in after] == [200] * (2 * THREADS), [r.text for r in after]
        ready = httpx.get(f"{base}/api/v1/ready/", timeout=30)
        assert ready.status_code == 200, ready.text
        assert (ready.json()["status"], ready.json()["database"]) == ("ready", "ok")
