"""The offline demo model: no key, no network, deterministic.

It is not a language model. It calls a tool when the input mentions one (a word of the
tool's name, such as "weather" for `get_weather`), filling string parameters from the
input's last capitalised word, then reports the tool's result. Otherwise it echoes.
"""

from __future__ import annotations

import re
from typing import Any

from agentplatform.sdk.models import ChatMessage, ModelRequest, ModelResponse, ToolCall, ToolSpec, Usage
from agentplatform.sdk.telemetry import traced_acompletion, traced_completion

_FILLER = {"", "a", "an", "of", "to", "get", "set", "the", "do"}
DEMO_NOTICE = "[demo model: offline, no LLM]"


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][\w'-]*", text)


def _pick_tool(text: str, tools: tuple[ToolSpec, ...]) -> ToolSpec | None:
    words = {w.lower() for w in _words(text)}
    for spec in tools:
        parts = {p for p in spec.name.lower().split("_") if p not in _FILLER}
        if parts & words:
            return spec
    return None


def _fill_arguments(text: str, spec: ToolSpec) -> dict[str, Any]:
    words = _words(text)
    capitalised = [w for w in words[1:] if w[:1].isupper()]
    value = capitalised[-1] if capitalised else (words[-1] if words else "")
    numbers = re.findall(r"-?\d+", text)
    emails = re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)
    arguments: dict[str, Any] = {}
    properties = spec.parameters.get("properties", {})
    for name in spec.parameters.get("required", []):
        kind = properties.get(name, {}).get("type")
        if kind == "integer":
            arguments[name] = int(numbers[0]) if numbers else 1
        elif kind == "number":
            arguments[name] = float(numbers[0]) if numbers else 1.0
        elif kind == "boolean":
            arguments[name] = True
        elif emails and name in {"to", "email", "recipient", "address"}:
            arguments[name] = emails[0]
        else:
            arguments[name] = value
    return arguments


def _usage(request: ModelRequest, reply: str) -> Usage:
    prompt = sum(len(_words(m.content)) for m in request.messages) + len(_words(request.instructions))
    return Usage(input_tokens=prompt, output_tokens=len(_words(reply)))


class DemoModel:
    def __init__(self, name: str = "demo") -> None:
        self.label = f"demo:{name}" if name != "demo" else "demo"

    @traced_completion
    def complete(self, request: ModelRequest) -> ModelResponse:
        return self._streamed(request)

    @traced_acompletion
    async def acomplete(self, request: ModelRequest) -> ModelResponse:
        """It waits on nothing, so it answers on the loop."""
        return self._streamed(request)

    def _streamed(self, request: ModelRequest) -> ModelResponse:
        response = self._reply(request)
        if request.on_text is not None:
            for piece in re.findall(r"\S+\s*", response.text):  # word by word, like a streaming model
                request.on_text(piece)
        return response

    def _reply(self, request: ModelRequest) -> ModelResponse:
        last: ChatMessage | None = request.messages[-1] if request.messages else None
        if last is not None and last.role == "tool":
            results = [m for m in reversed(request.messages) if m.role == "tool"]
            text = "; ".join(f"{m.name or 'tool'} {'failed' if m.is_error else 'says'}: {m.content}" for m in results)
            reply = f"{DEMO_NOTICE} {text}"
            return ModelResponse(text=reply, usage=_usage(request, reply), stop_reason="end_turn")
        user_text = last.content if last is not None else ""
        spec = _pick_tool(user_text, request.tools)
        if spec is not None:
            arguments = _fill_arguments(user_text, spec)
            call = ToolCall(id=f"demo_{len(request.messages)}", name=spec.name, arguments=arguments)
            return ModelResponse(tool_calls=(call,), usage=_usage(request, ""), stop_reason="tool_use")
        reply = f"{DEMO_NOTICE} You said: {user_text}"
        return ModelResponse(text=reply, usage=_usage(request, reply), stop_reason="end_turn")
