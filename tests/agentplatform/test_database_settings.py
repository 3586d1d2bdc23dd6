"""PostgreSQL settings from the environment: prepared statements, on unless turned off."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import pre_migrate

from agentplatform.env import database_from_url
from agents.models import Run

URL = "postgres://app:secret@db.example:5433/agents"


def test_statements_are_prepared_on_the_server_unless_turned_off(monkeypatch):
    monkeypatch.delenv("DATABASE_PREPARED_STATEMENTS", raising=False)
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert (options["server_side_binding"], options["prepare_threshold"]) == (True, 5)
    assert "-c plan_cache_mode=force_custom_plan" in options["options"]

    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "false")
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert "server_side_binding" not in options
    assert "prepare_threshold" not in options
    assert "plan_cache_mode" not in options["options"]


def test_connections_and_statements_time_out_unless_turned_off(monkeypatch):
    for name in ("DATABASE_CONNECT_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert (options["connect_timeout"], "-c statement_timeout=30000" in options["options"]) == (5, True)

    monkeypatch.setenv("DATABASE_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "0.5")
    options = database_from_url(URL + "?options=-c%20search_path%3Dapp", sqlite_default=Path("unused"))["OPTIONS"]
    assert options["connect_timeout"] == 3
    # what the URL passes is kept, the timeout added
    assert options["options"].startswith("-c search_path=app -c statement_timeout=500 ")

    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "0")
    assert "statement_timeout" not in database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]["options"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_a_read_stuck_behind_a_lock_answers_503_once_its_statement_times_out(api):
    # Given a migration (say) holding the sessions table, and requests' statement timeout short
    # (the test runs the request on its own connection, as a web thread does)
    locker = psycopg.connect(**connection.get_connection_params(), autocommit=False)
    try:
        locker.execute("LOCK TABLE agents_session IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '300ms'")
        # When a client lists its sessions
        response = api.client.get("/api/v1/sessions/", headers={"Authorization": f"Bearer {api.key}"})
    finally:
        locker.rollback()
        locker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")

    # Then it gets the documented 503, not a request that hangs for as long as the lock is held
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "Retry-After" in response


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_migrations_run_without_the_statement_timeout_and_leave_it_as_it_was():
    seen: list[str] = []

    def during(**kwargs: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])

    pre_migrate.connect(during, weak=False, dispatch_uid="test-during")  # after the platform's own
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(dispatch_uid="test-during")
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        after = cursor.fetchone()[0]
    assert seen
    assert set(seen) == {"0"}
    assert after == "30s"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
@pytest.mark.django_db
def test_postgresql_parses_a_statement_the_connection_repeats_once_and_plans_it_for_its_values():
    run_id = uuid.uuid4()
    for _ in range(6):  # prepared from the fifth time on
        assert not Run.objects.filter(pk=run_id).exists()

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
        cursor.execute("SHOW plan_cache_mode")
        mode = cursor.fetchone()[0]
    assert any('FROM "agents_run"' in statement for statement in prepared), prepared
    # A plan made once for any session, the same for a session of 10 messages and of 10,000,
    # read the long one's messages to sort them (the history benchmark went from flat to 1.7x)
    assert mode == "force_custom_plan"
