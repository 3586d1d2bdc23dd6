"""agentplatform: a self-hostable production layer for AI agents.

The public SDK is importable without Django being configured:

    from agentplatform import Agent, tool, ToolPermission, serve
    from agentplatform import MCPContext, HTTPContext, SlackContext  # context providers
"""

from agentplatform.sdk.agent import Agent, ApprovalRequired, RunContext, ToolCallError
from agentplatform.sdk.context import (
    ConfluenceContext,
    ContextError,
    ContextItem,
    ContextProvider,
    FileContext,
    GitHubContext,
    GoogleDriveContext,
    HTTPContext,
    JiraContext,
    MCPContext,
    MemoryCache,
    NotionContext,
    RedisCache,
    Secret,
    SlackContext,
    SQLContext,
    StaticContext,
    fetch_context,
)
from agentplatform.sdk.models import ChatMessage, ModelProvider, ModelRequest, ModelResponse, ToolCall, Usage
from agentplatform.sdk.serve import serve
from agentplatform.sdk.tools import Tool, ToolPermission, tool

__all__ = [
    "Agent",
    "ApprovalRequired",
    "ChatMessage",
    "ConfluenceContext",
    "ContextError",
    "ContextItem",
    "ContextProvider",
    "FileContext",
    "GitHubContext",
    "GoogleDriveContext",
    "HTTPContext",
    "JiraContext",
    "MCPContext",
    "MemoryCache",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "NotionContext",
    "RedisCache",
    "RunContext",
    "SQLContext",
    "Secret",
    "SlackContext",
    "StaticContext",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolPermission",
    "Usage",
    "fetch_context",
    "serve",
    "tool",
]
