"""An MCP server as a source, through the official `mcp` SDK: over stdio (`command=[...]`,
the server runs as a child process) or streamable HTTP (`url=`).

Its resources (and the prompts you name) become context items; its tools become agent
tools under the platform's permission gate, CONFIRM by default. Each fetch and each tool
call opens its own connection (a new process for stdio), so nothing is held between runs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import jsonschema
import pydantic

from agentplatform.sdk.context.base import (
    Collected,
    ContextError,
    ContextItem,
    ContextProvider,
    Secret,
    ToolDefinition,
    as_secret,
    env_name,
    resolve_credential,
)
from agentplatform.sdk.tools import Tool, ToolArgumentsError, ToolPermission, _inline_refs

if TYPE_CHECKING:
    from mcp import Client

MAX_PAGES = 20
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NO_ARGUMENTS = pydantic.create_model("mcp_arguments", __config__=pydantic.ConfigDict(extra="allow"))


class MCPToolError(Exception):
    """The MCP server answered a tool call with an error result."""


class MCPTool(Tool):
    """A tool of an MCP server: its arguments are checked against the server's JSON schema."""

    def validate(self, arguments: Any) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ToolArgumentsError("arguments must be a JSON object")
        validator = jsonschema.validators.validator_for(self.parameters)(self.parameters)
        problems = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
        if problems:
            detail = "; ".join(f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in problems)
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {detail}")
        return dict(arguments)


@functools.cache
def _devnull() -> TextIO:
    return open(os.devnull, "w")  # one handle per process, for servers' stderr


def _errlog() -> TextIO:
    """The server's stderr goes to ours when ours is a real file (not under Celery's proxy)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return _devnull()
    return sys.stderr


def _text_of(contents: Sequence[Any]) -> str:
    parts = []
    for content in contents:
        text = getattr(content, "text", None)
        if isinstance(text, str):
            parts.append(text)
        elif getattr(content, "blob", None) is not None:
            parts.append(f"[binary content, {getattr(content, 'mime_type', None) or 'unknown type'}]")
    return "\n".join(parts)


class MCPContext(ContextProvider):
    """An MCP server's resources and prompts as context, its tools as agent tools.

    Args:
        command: Start the server as a child process and talk over stdio, e.g.
            `["python", "-m", "my_mcp_server"]`. Give `command` or `url`.
        url: A streamable HTTP endpoint, e.g. `http://localhost:8000/mcp`.
        env / cwd: The child process's extra environment variables and directory.
        headers: Extra, non-secret HTTP headers; `token` / `token_env` is sent as
            `Authorization: Bearer <token>`.
        resources: True for every listed resource (up to `max_resources`), False for none,
            or a list of resource URIs to read.
        prompts: Prompt names to include, or a mapping of name to its arguments.
        tools: Offer the server's tools to the agent.
        tool_permission: The default permission of its tools (CONFIRM unless you say so);
            `tool_permissions` sets it per tool name. Operators can override both.
        tool_prefix: Prepended to the tools' names (to keep two servers' tools apart).
        tool_timeout: Seconds a tool call may take, connecting included (default: `timeout`,
            as for fetching; a stdio server is started for every call).
    """

    kind = "mcp"
    credential_arg = "token"

    def __init__(
        self,
        *,
        command: Sequence[str] | None = None,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        headers: Mapping[str, str] | None = None,
        token: Secret | str | None = None,
        token_env: str | None = None,
        resources: bool | Sequence[str] = True,
        prompts: Sequence[str] | Mapping[str, Mapping[str, str]] = (),
        tools: bool = True,
        tool_permission: ToolPermission | str = ToolPermission.CONFIRM,
        tool_permissions: Mapping[str, ToolPermission | str] | None = None,
        tool_prefix: str = "",
        tool_timeout: float | None = None,
        max_resources: int = 20,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if (command is None) == (url is None):
            raise ValueError("MCPContext needs command=[...] (stdio) or url=... (streamable HTTP), one of them")
        if command is not None and (
            isinstance(command, str) or not command or not all(isinstance(c, str) for c in command)
        ):
            raise ValueError("command must be a non-empty list of strings, e.g. ['python', '-m', 'server']")
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"url must be http(s), got {url!r}")
        self.command = list(command) if command is not None else None
        self.url = url
        self.env = dict(env or {})
        self.cwd = cwd
        self.headers = dict(headers or {})
        self.token = as_secret(token)
        self.token_env = env_name(token_env, "token_env")
        self.resources: bool | list[str] = resources if isinstance(resources, bool) else list(resources)
        self.prompts: dict[str, dict[str, str]] = (
            {name: dict(args) for name, args in prompts.items()}
            if isinstance(prompts, Mapping)
            else {name: {} for name in prompts}
        )
        self.tools = tools
        self.tool_permission = ToolPermission(tool_permission)
        self.tool_permissions = {name: ToolPermission(p) for name, p in (tool_permissions or {}).items()}
        self.tool_prefix = tool_prefix
        self.tool_timeout = tool_timeout if tool_timeout is not None else self.timeout
        self.max_resources = max_resources

    def default_name(self) -> str:
        if self.command is not None:
            return f"mcp:{Path(self.command[-1]).name}"
        return f"mcp:{urlsplit(self.url or '').netloc}"

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Client]:
        """An initialized MCP client session (a new child process or HTTP session)."""
        # mcp loads its server stack (starlette, uvicorn) on import: only when a source is used.
        from mcp import Client, StdioServerParameters  # noqa: PLC0415
        from mcp.client.stdio import stdio_client  # noqa: PLC0415

        if self.command is not None:
            params = StdioServerParameters(command=self.command[0], args=self.command[1:], env=self.env, cwd=self.cwd)
            async with Client(stdio_client(params, errlog=_errlog()), read_timeout_seconds=self.timeout) as client:
                yield client
            return
        import httpx2  # noqa: PLC0415  # the HTTP client the mcp SDK requires
        from mcp.client.streamable_http import streamable_http_client  # noqa: PLC0415

        headers = dict(self.headers)
        if self.token is not None or self.token_env is not None:
            headers["Authorization"] = f"Bearer {resolve_credential(self.token, self.token_env, what='token')}"
        timeout = httpx2.Timeout(self.timeout)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            transport = streamable_http_client(self.url or "", http_client=http)
            async with Client(transport, read_timeout_seconds=self.timeout) as client:
                yield client

    async def collect(self) -> Collected:
        try:
            async with self.connect() as client:
                capabilities = client.server_capabilities
                items = await self._resources(client) if capabilities.resources and self.resources else []
                if self.prompts and capabilities.prompts:
                    items += await self._prompts(client)
                tools = await self._tools(client) if self.tools and capabilities.tools else []
        except ContextError:
            raise
        except Exception as exc:  # noqa: BLE001  # the SDK raises many kinds; the source failed
            raise ContextError(f"MCP server: {_describe(exc)}") from None
        return Collected(items, tools)

    async def _resources(self, client: Client) -> list[ContextItem]:
        if isinstance(self.resources, list):
            listed = [(uri, uri, "") for uri in self.resources]
        else:
            listed = []
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await client.list_resources(cursor=cursor)
                listed += [(str(r.uri), r.name, r.description or "") for r in page.resources]
                cursor = page.next_cursor
                if not cursor or len(listed) >= self.max_resources:
                    break
        items = []
        for uri, name, description in listed[: self.max_resources]:
            result = await client.read_resource(uri)
            metadata = {"description": description} if description else {}
            items.append(ContextItem(title=name, text=_text_of(result.contents), url=uri, metadata=metadata))
        return items

    async def _prompts(self, client: Client) -> list[ContextItem]:
        items = []
        for name, arguments in self.prompts.items():
            result = await client.get_prompt(name, arguments or None)
            lines = [f"{message.role}: {_text_of([message.content])}" for message in result.messages]
            items.append(ContextItem(title=f"prompt {name}", text="\n".join(lines)))
        return items

    async def _tools(self, client: Client) -> list[ToolDefinition]:
        found: list[ToolDefinition] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            found += [ToolDefinition(t.name, t.description or "", dict(t.input_schema)) for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        return found

    async def fetch(self) -> list[ContextItem]:
        return list((await self.collect()).items)

    def tool_name(self, remote: str) -> str:
        """The agent-side name of a server tool: prefixed, and valid for every model provider."""
        return _TOOL_NAME.sub("_", f"{self.tool_prefix}{remote}")[:64]

    def build_tools(self, definitions: Sequence[ToolDefinition]) -> list[Any]:
        tools = []
        for definition in definitions:
            schema = _inline_refs(dict(definition.parameters))
            schema.setdefault("type", "object")
            schema.setdefault("properties", {})
            tool = MCPTool(
                func=self._caller(definition.name),
                name=self.tool_name(definition.name),
                description=definition.description,
                arguments_model=_NO_ARGUMENTS,
                parameters=schema,
                permission=self.tool_permissions.get(definition.name, self.tool_permission),
                timeout=self.tool_timeout,
                metadata={"source": self.name, "mcp_tool": definition.name},
            )
            tools.append(tool)
        return tools

    def _caller(self, remote: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def call(**arguments: Any) -> Any:
            async with self.connect() as client:
                result = await client.call_tool(remote, arguments)
            text = _text_of(result.content)
            if result.is_error:
                raise MCPToolError(text or f"the MCP tool {remote!r} failed")
            if not text and result.structured_content is not None:
                return result.structured_content
            return text

        call.__name__ = remote
        return call


def _describe(exc: BaseException) -> str:
    """A readable cause, also out of the exception groups the SDK's task groups raise."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
