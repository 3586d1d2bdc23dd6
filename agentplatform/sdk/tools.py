"""Tools: plain Python functions with a JSON schema derived from their signature.

The schema and the argument validation come from one pydantic model built from the
function's type hints, so what the model is offered and what is accepted never drift.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, get_type_hints

import pydantic


class ToolPermission(enum.StrEnum):
    """What happens when the model calls a tool."""

    ALLOW = "allow"
    CONFIRM = "confirm"
    DENY = "deny"


class ToolArgumentsError(ValueError):
    """Arguments that do not match the tool's schema. The message is readable by a model."""


_PARAM_LINE = re.compile(r"^\s*(?::param\s+)?(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google- or Sphinx-style docstring into a summary and per-parameter text."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped.lower() in {"args:", "arguments:", "parameters:", "params:"}:
            in_args = True
            continue
        if stripped.lower() in {"returns:", "raises:", "yields:", "examples:"}:
            in_args = False
            continue
        match = _PARAM_LINE.match(line)
        if match and (in_args or stripped.startswith(":param")):
            params[match.group(1).lstrip("*")] = match.group(2).strip()
        elif not in_args and not stripped.startswith(":") and not params:
            summary.append(stripped)
    return " ".join(" ".join(summary).split()), params


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline `$defs` references and drop pydantic's titles: providers want plain schemas."""
    defs = schema.pop("$defs", {})

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            siblings = {k: walk(v, seen) for k, v in node.items() if k not in ("$ref", "title")}
            if name in seen:  # a recursive model: an object, rather than an endless schema
                return {"type": "object", **siblings}
            return {**walk(copy.deepcopy(defs[name]), seen | {name}), **siblings}
        result = {key: walk(value, seen) for key, value in node.items() if key not in ("title", "properties")}
        if isinstance(node.get("properties"), dict):  # property names are data, even one called "title"
            result["properties"] = {name: walk(value, seen) for name, value in node["properties"].items()}
        return result

    result = walk(schema, frozenset())
    assert isinstance(result, dict)
    return result


def _arguments_model(func: Callable[..., Any], param_docs: dict[str, str]) -> type[pydantic.BaseModel]:
    hints = get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {func.__name__!r}: *args and **kwargs are not supported")
        annotation = hints.get(name, Any)
        default = ... if param.default is param.empty else param.default
        fields[name] = (annotation, pydantic.Field(default, description=param_docs.get(name)))
    config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    try:
        return pydantic.create_model(f"{func.__name__}_arguments", __config__=config, **fields)
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError) as exc:
        raise TypeError(f"tool {func.__name__!r}: {exc.message}") from exc


@dataclass(frozen=True)
class Tool:
    """A callable the model may use. Create one with the `@tool` decorator."""

    func: Callable[..., Any]
    name: str
    description: str
    arguments_model: type[pydantic.BaseModel]
    parameters: dict[str, Any]
    permission: ToolPermission = ToolPermission.ALLOW
    timeout: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    def with_permission(self, permission: ToolPermission | str) -> Tool:
        """The same tool with another default permission (ALLOW, CONFIRM or DENY)."""
        return replace(self, permission=ToolPermission(permission))

    def with_timeout(self, seconds: float) -> Tool:
        return replace(self, timeout=seconds)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Validated keyword arguments for the function, or ToolArgumentsError."""
        if not isinstance(arguments, dict):
            raise ToolArgumentsError("arguments must be a JSON object")
        try:
            parsed = self.arguments_model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {problems}") from exc
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    def invoke(self, arguments: dict[str, Any]) -> Any:
        """Call the function with already validated arguments (async tools get an event loop)."""
        if self.is_async:
            return asyncio.run(self.func(**arguments))
        return self.func(**arguments)


def tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    permission: ToolPermission | str = ToolPermission.ALLOW,
    timeout: float | None = None,
) -> Any:
    """Turn a function into a Tool; usable bare (`@tool`) or with options (`@tool(name=...)`)."""

    def build(fn: Callable[..., Any]) -> Tool:
        summary, param_docs = _parse_docstring(fn.__doc__)
        model = _arguments_model(fn, param_docs)
        schema = _inline_refs(model.model_json_schema())
        schema.pop("additionalProperties", None)
        schema.setdefault("properties", {})
        schema["type"] = "object"
        return Tool(
            func=fn,
            name=name or fn.__name__,
            description=description or summary,
            arguments_model=model,
            parameters=schema,
            permission=ToolPermission(permission),
            timeout=timeout,
        )

    return build(func) if func is not None else build
