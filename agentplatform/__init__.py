"""agentplatform: a self-hostable production layer for AI agents.

The public SDK is importable without Django being configured:

    from agentplatform import Agent, tool, ToolPermission, serve
"""

from agentplatform.sdk.agent import Agent, ApprovalRequired, RunContext, ToolCallError
from agentplatform.sdk.models import ChatMessage, ModelProvider, ModelRequest, ModelResponse, ToolCall, Usage
from agentplatform.sdk.serve import serve
from agentplatform.sdk.tools import Tool, ToolPermission, tool

__all__ = [
    "Agent",
    "ApprovalRequired",
    "ChatMessage",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "RunContext",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolPermission",
    "Usage",
    "serve",
    "tool",
]
