"""Span names and attribute keys: every one we write or read, named once.

GenAI keys follow the OpenTelemetry semantic conventions for generative AI
(https://opentelemetry.io/docs/specs/semconv/gen-ai/); the platform's own live under
`agentplatform.`. They live in the SDK, which imports no Django app, because the SDK's own
spans (model calls and context fetches, `agentplatform.sdk.telemetry`) use them too; the
tracing app writes, stores and queries spans by the same names.
"""

from __future__ import annotations

# Span names
AGENT_RUN = "agent.run"
TOOL_CALL = "tool.call"
CONTEXT_FETCH = "context.fetch"
APPROVAL_WAIT = "approval.wait"
QUEUE_WAIT = "queue.wait"
TASK_PREFIX = "celery.task "  # + the task's name
WEBSOCKET_PREFIX = "websocket "  # + the message type

# The run a span belongs to (copied onto every span started inside `agent.run`)
RUN_ID = "agentplatform.run.id"
SESSION_ID = "agentplatform.session.id"
AGENT_NAME = "agentplatform.agent.name"
OWNER_ID = "agentplatform.owner.id"
RUN_STATUS = "agentplatform.run.status"
RUN_ERROR_CODE = "agentplatform.run.error_code"
RUN_STEPS = "agentplatform.run.steps"
RUN_RESUMED = "agentplatform.run.resumed"
RUN_INPUT_TOKENS = "agentplatform.run.input_tokens"
RUN_OUTPUT_TOKENS = "agentplatform.run.output_tokens"
RUN_SCOPE = (RUN_ID, SESSION_ID, AGENT_NAME, OWNER_ID)

# GenAI semantic conventions
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name, still read by many backends
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"  # content: only when recording is on
GEN_AI_TOOL_RESULT = "gen_ai.tool.call.result"  # content: only when recording is on
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"  # content: only when recording is on
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"  # content: only when recording is on
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"  # content: only when recording is on
ERROR_TYPE = "error.type"
MODEL_CALL_NESTED = "agentplatform.model.nested"  # inside another model call's span: its tokens are not summed
OPERATION_CHAT = "chat"
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"

# Tool calls
TOOL_PERMISSION = "agentplatform.tool.permission"
TOOL_OUTCOME = "agentplatform.tool.outcome"  # "ok" or the gate's error code

# Approvals
APPROVAL_ID = "agentplatform.approval.id"
APPROVAL_STATUS = "agentplatform.approval.status"
APPROVAL_CHANNEL = "agentplatform.approval.channel"

# Context fetches
CONTEXT_PROVIDER = "agentplatform.context.provider"
CONTEXT_SOURCE = "agentplatform.context.source"
CONTEXT_CACHE_HIT = "agentplatform.context.cache_hit"
CONTEXT_ITEMS = "agentplatform.context.items"
CONTEXT_CONTENT = "agentplatform.context.content"  # content: only when recording is on

# Celery tasks
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
TASK_NAME = "agentplatform.task.name"

# WebSocket messages
WEBSOCKET_MESSAGE_TYPE = "agentplatform.websocket.message_type"

# Propagation (Celery message headers)
HEADER_PUBLISHED_NS = "agentplatform_published_ns"  # when the message was sent: the queue wait starts
HEADER_LINK = "agentplatform_link"  # a traceparent to link to, for work a run hands off
