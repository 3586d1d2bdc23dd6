"""The SaaS connectors against a local server that speaks each API's real wire format:
paths, pagination, auth headers, and one 429 with Retry-After per service."""

from __future__ import annotations

import base64

import pytest

from agentplatform import (
    ConfluenceContext,
    ContextProvider,
    GitHubContext,
    GoogleDriveContext,
    JiraContext,
    NotionContext,
    SlackContext,
    fetch_context,
)
from agentplatform.sdk.context import http
from tests.fakes import saas as fake


def _fetch(source: ContextProvider):
    bundle = fetch_context([source])
    (result,) = bundle.results
    assert result.ok, result.error
    return result


def test_slack_resolves_a_channel_name_and_pages_through_the_history(saas):
    saas.rate_limit_once("slack")
    source = SlackContext(["#support"], base_url=saas.base_url("slack"), workspace_url="https://acme.slack.com")

    result = _fetch(source)

    # every page, oldest first
    assert [item.text for item in result.items] == [f"support message {i}" for i in range(1, 6)]
    assert result.items[0].url == "https://acme.slack.com/archives/C0SUPPORT/p1700000001000100"
    assert result.items[0].title.startswith("#support · U01 · ")
    seen = saas.seen("slack")
    assert [s.path for s in seen] == ["/api/conversations.list"] * 3 + ["/api/conversations.history"] * 3
    assert seen[0].headers["authorization"] == f"Bearer {fake.SLACK_TOKEN}"
    assert "cursor" not in seen[1].query  # the 429 was retried as it was
    assert seen[2].query["cursor"] == "dGVhbTpDMDE="
    history = [s.query for s in seen[3:]]
    assert all(q["channel"] == "C0SUPPORT" and float(q["oldest"]) > 0 for q in history)
    cursors = [q.get("cursor") for q in history]
    assert cursors == [None, base64.b64encode(b"next_ts:2").decode(), base64.b64encode(b"next_ts:4").decode()]


def test_slack_reports_its_api_errors(saas):
    result = fetch_context([SlackContext(["C0NOPE"], base_url=saas.base_url("slack"))]).results[0]

    assert result.error == "slack conversations.history: channel_not_found"


def test_notion_turns_a_simple_filter_into_a_typed_one_and_pages_with_cursors(saas):
    saas.rate_limit_once("notion")
    source = NotionContext("db123", filter={"status": "open"}, base_url=saas.base_url("notion"))

    result = _fetch(source)

    assert [item.title for item in result.items] == ["Ticket 1", "Ticket 2", "Ticket 3"]
    assert result.items[0].text == "Status: open\nTags: billing, vip"
    assert result.items[0].url == "https://www.notion.so/page-1"
    seen = saas.seen("notion")
    assert [(s.method, s.path) for s in seen] == [
        ("GET", "/databases/db123"),  # the 429
        ("GET", "/databases/db123"),
        ("POST", "/databases/db123/query"),
        ("POST", "/databases/db123/query"),
    ]
    assert all(s.headers["notion-version"] == "2022-06-28" for s in seen)
    assert seen[2].body["filter"] == {"property": "Status", "status": {"equals": "open"}}
    assert "start_cursor" not in seen[2].body
    assert seen[3].body["start_cursor"] == "2"


def test_notion_passes_its_own_filter_objects_through(saas):
    notion_filter = {"property": "Status", "status": {"does_not_equal": "done"}}
    source = NotionContext("db123", filter=notion_filter, base_url=saas.base_url("notion"))

    _fetch(source)

    assert saas.seen("notion")[0].body["filter"] == notion_filter


@pytest.mark.parametrize("api", ["cloud", "server"])
def test_jira_searches_with_jql_and_basic_auth(saas, api):
    saas.rate_limit_once("jira")
    source = JiraContext(
        "project = SUP ORDER BY updated DESC", api=api, email=fake.JIRA_EMAIL, base_url=saas.base_url("jira")
    )

    result = _fetch(source)

    assert [item.title for item in result.items] == [
        "SUP-1: Login fails 1",
        "SUP-2: Login fails 2",
        "SUP-3: Login fails 3",
    ]
    assert result.items[0].url == f"{saas.base_url('jira')}/browse/SUP-1"
    assert "Status: In Progress" in result.items[0].text
    assert "Steps for 1" in result.items[0].text  # the description, out of its ADF tree
    seen = saas.seen("jira")
    basic = base64.b64encode(f"{fake.JIRA_EMAIL}:{fake.JIRA_TOKEN}".encode()).decode()
    assert all(s.headers["authorization"] == f"Basic {basic}" for s in seen)
    assert all(s.query["jql"] == "project = SUP ORDER BY updated DESC" for s in seen)
    if api == "cloud":
        assert [s.path for s in seen] == ["/rest/api/3/search/jql"] * 3
        assert [s.query.get("nextPageToken") for s in seen] == [None, None, "tok-2"]
    else:
        assert [s.path for s in seen] == ["/rest/api/2/search"] * 3
        assert [s.query["startAt"] for s in seen] == ["0", "0", "2"]


def test_confluence_follows_the_next_link_with_a_personal_access_token(saas, monkeypatch):
    monkeypatch.delenv("CONFLUENCE_API_TOKEN")
    monkeypatch.setenv("WIKI_PAT", fake.CONFLUENCE_PAT)
    saas.rate_limit_once("confluence")
    source = ConfluenceContext(
        "space = OPS AND label = runbook", token_env="WIKI_PAT", base_url=saas.base_url("confluence")
    )

    result = _fetch(source)

    assert [item.title for item in result.items] == ["Runbook 1", "Runbook 2", "Runbook 3"]
    assert result.items[0].text == "Restart the service 1."
    assert result.items[0].url == f"{saas.base_url('confluence')}/spaces/OPS/pages/101/Runbook+1"
    seen = saas.seen("confluence")
    assert all(s.headers["authorization"] == f"Bearer {fake.CONFLUENCE_PAT}" for s in seen)
    assert [s.query.get("cursor") for s in seen] == [None, None, "2"]
    assert seen[2].query["cql"] == "space = OPS AND label = runbook"


@pytest.mark.parametrize(("include", "numbers"), [("both", [1, 2, 3, 4, 5]), ("pulls", [1, 3, 5]), ("issues", [2, 4])])
def test_github_lists_issues_and_pull_requests_following_the_link_header(saas, include, numbers):
    saas.rate_limit_once("github")
    source = GitHubContext("acme/app", include=include, labels=["bug"], base_url=saas.base_url("github"))

    result = _fetch(source)

    assert [item.metadata["number"] for item in result.items] == numbers
    pull = (
        next(item for item in result.items if item.metadata["kind"] == "pull request") if include != "issues" else None
    )
    if pull is not None:
        assert pull.url == "https://github.com/acme/app/pull/1"
        assert "Type: pull request" in pull.text
    seen = saas.seen("github")
    assert [s.path for s in seen] == ["/repos/acme/app/issues"] * 2 + ["/repositories/42/issues"] * 2
    assert all(s.headers["authorization"] == f"Bearer {fake.GITHUB_TOKEN}" for s in seen)
    assert all(s.headers["x-github-api-version"] == "2022-11-28" for s in seen)
    assert seen[0].query["labels"] == "bug"
    assert [s.query.get("page") for s in seen] == [None, None, "2", "3"]


def test_google_drive_lists_a_folder_and_exports_documents(saas):
    saas.rate_limit_once("drive")
    source = GoogleDriveContext(folder_id="folder1", base_url=saas.base_url("drive"))

    result = _fetch(source)

    assert [(item.title, item.text) for item in result.items] == [
        ("Onboarding", "Welcome aboard. Read the handbook."),
        ("notes.txt", "plain notes"),
        ("logo.png", "(image/png, modified 2025-04-03T00:00:00.000Z)"),
    ]
    assert result.items[0].url == "https://docs.google.com/document/d/doc1/edit"
    seen = saas.seen("drive")
    assert all(s.headers["authorization"] == f"Bearer {fake.DRIVE_TOKEN}" for s in seen)
    listing = [s for s in seen if s.path == "/drive/v3/files"]
    assert len(listing) == 3  # the 429, then two pages
    assert listing[0].query["q"] == "'folder1' in parents and trashed = false"
    assert [s.query.get("pageToken") for s in listing] == [None, None, "2"]
    assert ("/drive/v3/files/doc1/export", "text/plain") in [(s.path, s.query.get("mimeType")) for s in seen]


@pytest.mark.parametrize(
    "source",
    [
        lambda url: SlackContext(["C0SUPPORT"], token="xoxb-wrong", base_url=url("slack")),
        lambda url: NotionContext("db123", token="secret_wrong", base_url=url("notion")),
        lambda url: JiraContext("x", email="bot@example.com", token="wrong", base_url=url("jira")),
        lambda url: ConfluenceContext("x", token="wrong", base_url=url("confluence")),
        lambda url: GitHubContext("acme/app", token="ghp_wrong", base_url=url("github")),
        lambda url: GoogleDriveContext(folder_id="f", token="ya29.wrong", base_url=url("drive")),
    ],
    ids=["slack", "notion", "jira", "confluence", "github", "drive"],
)
def test_a_rejected_credential_fails_the_source_without_showing_the_credential(saas, source):
    result = fetch_context([source(saas.base_url)]).results[0]

    assert not result.ok
    assert result.error_code == "error"
    assert "401" in result.error or "invalid_auth" in result.error
    assert "wrong" not in result.error


def test_a_missing_token_variable_is_named_in_the_error(saas, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")

    result = fetch_context([GitHubContext("acme/app", base_url=saas.base_url("github"))]).results[0]

    assert result.error == "the environment variable GITHUB_TOKEN (the github token) is not set"
    assert saas.seen("github") == []


def test_a_server_that_keeps_rate_limiting_fails_the_source_after_bounded_retries(saas):
    saas.rate_limit("github", times=10)
    source = GitHubContext("acme/app", base_url=saas.base_url("github"))

    result = fetch_context([source]).results[0]

    assert result.error.startswith("github:acme/app: HTTP 429")
    assert len(saas.seen("github")) == 1 + http.MAX_RETRIES
