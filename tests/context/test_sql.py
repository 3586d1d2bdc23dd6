"""SQLContext: writes are refused before they are sent, and again by a read-only connection."""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from agentplatform import SQLContext, fetch_context
from agentplatform.sdk.context.sql import WriteRefused, check_read_only


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select name from users where note = 'please delete me' order by 1",
        'SELECT "update", "drop" FROM t',
        "WITH recent AS (SELECT * FROM t) SELECT count(*) FROM recent;",
        "SELECT 1 -- ; DROP TABLE t",
        "VALUES (1), (2)",
        "EXPLAIN SELECT * FROM t",
        "SELECT $$ ; delete $$",
    ],
)
def test_reads_are_accepted(sql):
    check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO t VALUES (1)", "must start with SELECT"),
        ("UPDATE t SET a = 1", "must start with SELECT"),
        ("delete from t", "must start with SELECT"),
        ("DROP TABLE t", "must start with SELECT"),
        ("SELECT 1; DROP TABLE t", "only one statement"),
        ("SELECT 1; SELECT 2", "only one statement"),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
        ("SELECT * INTO backup FROM t", "INTO"),
        ("SELECT * FROM t FOR UPDATE", "UPDATE"),
        ("SELECT nextval('seq')", "nextval"),
        ("SELECT pg_terminate_backend(42)", "pg_terminate_backend"),
        ("EXPLAIN ANALYZE DELETE FROM t", "ANALYZE"),
        ("PRAGMA writable_schema = 1", "must start with SELECT"),
        ("/* hi */ ATTACH DATABASE 'x' AS y", "must start with SELECT"),
        ("", "must start with SELECT"),
    ],
)
def test_statements_that_could_write_are_refused(sql, reason):
    with pytest.raises(WriteRefused, match=reason):
        check_read_only(sql)
    with pytest.raises(WriteRefused):
        SQLContext(sql, url="sqlite:///x.db")


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (name TEXT, plan TEXT)")
        db.executemany("INSERT INTO accounts VALUES (?, ?)", [("Acme", "gold"), ("Initech", "silver")])
    db.close()
    return path


def test_sqlite_rows_become_items(sqlite_db, monkeypatch):
    monkeypatch.setenv("CRM_DB", f"sqlite:///{sqlite_db}")
    source = SQLContext(
        "SELECT name, plan FROM accounts WHERE plan != :skip ORDER BY name",
        url_env="CRM_DB",
        params={"skip": "none"},
        title_column="name",
    )

    result = fetch_context([source]).results[0]

    assert [(i.title, i.text) for i in result.items] == [
        ("Acme", "name: Acme\nplan: gold"),
        ("Initech", "name: Initech\nplan: silver"),
    ]


def test_sqlite_refuses_a_write_that_got_past_the_check(sqlite_db):
    source = SQLContext("SELECT 1", url=f"sqlite:///{sqlite_db}")
    source.query = "INSERT INTO accounts VALUES ('Evil', 'free')"  # as if the check had a hole

    result = fetch_context([source]).results[0]

    assert result.error_code == "error"
    assert "readonly" in result.error
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT count(*) FROM accounts").fetchone() == (2,)
    db.close()


def test_max_rows_bounds_what_is_read(sqlite_db):
    source = SQLContext("SELECT name FROM accounts ORDER BY name", url=f"sqlite:///{sqlite_db}", max_rows=1)

    assert [i.title for i in fetch_context([source]).results[0].items] == ["row 1"]


def _postgres_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="runs on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_postgres_reads_in_a_read_only_transaction_that_refuses_writes():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE ctx_accounts (name text)")
        cursor.execute("INSERT INTO ctx_accounts VALUES ('Acme')")
        cursor.execute("CREATE SEQUENCE ctx_seq")
    try:
        reader = SQLContext("SELECT name FROM ctx_accounts", url=_postgres_url())
        sneaky = SQLContext("SELECT 1", url=_postgres_url())
        sneaky.query = "INSERT INTO ctx_accounts VALUES ('Evil')"  # as if the check had a hole

        read, refused = fetch_context([reader, sneaky]).results

        assert [i.text for i in read.items] == ["name: Acme"]
        assert "read-only transaction" in refused.error
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM ctx_accounts")
            assert cursor.fetchone() == (1,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE ctx_accounts")
            cursor.execute("DROP SEQUENCE ctx_seq")


def test_the_connection_url_is_a_credential():
    source = SQLContext("SELECT 1", url="postgresql://reader:hunter2@db/app")

    assert "hunter2" not in repr(vars(source))
    assert source.secrets() == ["postgresql://reader:hunter2@db/app"]
    with pytest.raises(ValueError, match="one of them"):
        SQLContext("SELECT 1")
