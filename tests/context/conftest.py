"""Fixtures for the context tests: the fake SaaS server, a real MCP server process, tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import saas as fake_saas
from tests.fakes.saas import FakeSaaS

ROOT = Path(__file__).resolve().parents[2]
MCP_SERVER = [sys.executable, "-m", "tests.fakes.mcp_server"]
MCP_TOKEN = "mcp-secret-token-4242"


@pytest.fixture(scope="session")
def saas_server() -> Iterator[FakeSaaS]:
    with FakeSaaS() as server:
        yield server


@pytest.fixture
def saas(saas_server: FakeSaaS, monkeypatch: pytest.MonkeyPatch) -> FakeSaaS:
    """The fake services, emptied, with each service's token in its default variable."""
    saas_server.reset()
    monkeypatch.setenv("SLACK_TOKEN", fake_saas.SLACK_TOKEN)
    monkeypatch.setenv("NOTION_TOKEN", fake_saas.NOTION_TOKEN)
    monkeypatch.setenv("JIRA_API_TOKEN", fake_saas.JIRA_TOKEN)
    monkeypatch.setenv("CONFLUENCE_API_TOKEN", fake_saas.CONFLUENCE_PAT)
    monkeypatch.setenv("GITHUB_TOKEN", fake_saas.GITHUB_TOKEN)
    monkeypatch.setenv("GOOGLE_DRIVE_TOKEN", fake_saas.DRIVE_TOKEN)
    return saas_server


@pytest.fixture
def mcp_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file where the MCP server process records the tool calls it executed."""
    path = tmp_path / "mcp-calls.jsonl"
    path.touch()
    monkeypatch.setenv("FAKE_MCP_CALLS", str(path))
    return path


@pytest.fixture(scope="session")
def mcp_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake MCP server over streamable HTTP (a process of its own), requiring a bearer token."""
    calls = tmp_path_factory.mktemp("mcp-http") / "calls.jsonl"
    env = {**os.environ, "FAKE_MCP_TOKEN": MCP_TOKEN, "FAKE_MCP_CALLS": str(calls)}
    process = subprocess.Popen([*MCP_SERVER, "http"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), "the MCP server did not start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def mcp_stdio_command() -> list[str]:
    return [*MCP_SERVER, "stdio"]


def mcp_stdio_env() -> dict[str, str]:
    """What the stdio server process needs: the repository on its path, and the calls file."""
    env = {"PYTHONPATH": str(ROOT)}
    if os.environ.get("FAKE_MCP_CALLS"):
        env["FAKE_MCP_CALLS"] = os.environ["FAKE_MCP_CALLS"]
    return env
