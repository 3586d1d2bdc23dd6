"""PostgreSQL settings from the environment: prepared statements, on unless turned off."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.db import connection

from agentplatform.env import database_from_url
from agents.models import Run

URL = "postgres://app:secret@db.example:5433/agents"


def test_statements_are_prepared_on_the_server_unless_turned_off(monkeypatch):
    monkeypatch.delenv("DATABASE_PREPARED_STATEMENTS", raising=False)
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert (options["server_side_binding"], options["prepare_threshold"]) == (True, 5)

    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "false")
    options = database_from_url(URL, sqlite_default=Path("unused"))["OPTIONS"]
    assert "server_side_binding" not in options
    assert "prepare_threshold" not in options


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
@pytest.mark.django_db
def test_postgresql_plans_a_statement_the_connection_repeats_once():
    run_id = uuid.uuid4()
    for _ in range(6):  # prepared from the fifth time on
        assert not Run.objects.filter(pk=run_id).exists()

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "agents_run"' in statement for statement in prepared), prepared
