"""Tool schemas come from type hints and docstrings; arguments are validated against them."""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys
from typing import Literal

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from agentplatform import Agent, Tool, ToolPermission, tool
from agentplatform.sdk.tools import ToolArgumentsError


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Address(TypedDict):
    street: str
    zip: str


@dataclasses.dataclass
class Window:
    start: str
    end: str | None = None


class Filter(pydantic.BaseModel):
    field: str
    values: list[int]


@tool
def create_ticket(  # noqa: PLR0917  # a tool's signature is what the model fills in
    title: str,
    priority: Priority,
    tags: list[str],
    assignee: str | None = None,
    estimate: float = 1.5,
    mode: Literal["draft", "open"] = "open",
) -> str:
    """Create a ticket in the tracker.

    Longer explanation, for the model too.

    Args:
        title: Short summary of the problem.
        priority: How urgent it is.
        tags: Labels to attach.
        assignee: Who should work on it, if anyone.
    """
    return title


def test_schema_from_hints_and_docstring():
    assert create_ticket.name == "create_ticket"
    assert create_ticket.description == "Create a ticket in the tracker. Longer explanation, for the model too."
    assert create_ticket.parameters == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "Short summary of the problem."},
            "priority": {"type": "string", "enum": ["low", "high"], "description": "How urgent it is."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels to attach."},
            "assignee": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
                "description": "Who should work on it, if anyone.",
            },
            "estimate": {"type": "number", "default": 1.5},
            "mode": {"type": "string", "enum": ["draft", "open"], "default": "open"},
        },
        "required": ["title", "priority", "tags"],
    }


def test_nested_typed_dict_dataclass_and_pydantic_models_are_inlined():
    @tool
    def ship(to: Address, window: Window, filters: list[Filter]) -> str:
        """Ship it.

        :param to: Where to.
        """
        return "ok"

    props = ship.parameters["properties"]
    assert props["to"] == {
        "type": "object",
        "properties": {"street": {"type": "string"}, "zip": {"type": "string"}},
        "required": ["street", "zip"],
        "additionalProperties": False,
        "description": "Where to.",
    }
    assert props["window"]["properties"]["end"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["filters"]["items"]["properties"]["values"] == {"type": "array", "items": {"type": "integer"}}
    assert "$defs" not in ship.parameters
    assert "$ref" not in str(ship.parameters)


def test_validation_converts_and_refuses():
    arguments = create_ticket.validate({"title": "t", "priority": "high", "tags": ["a"]})

    assert arguments["priority"] is Priority.HIGH
    assert arguments["estimate"] == 1.5
    with pytest.raises(ToolArgumentsError, match="priority: Input should be 'low' or 'high'"):
        create_ticket.validate({"title": "t", "priority": "urgent", "tags": []})
    with pytest.raises(ToolArgumentsError, match="extra: Extra inputs are not permitted"):
        create_ticket.validate({"title": "t", "priority": "low", "tags": [], "extra": 1})
    with pytest.raises(ToolArgumentsError, match="must be a JSON object"):
        create_ticket.validate("not json")


def test_async_tools_and_options():
    @tool(name="lookup", description="Find a thing.", permission="confirm", timeout=3)
    async def find(key: str) -> str:
        return key

    assert isinstance(find, Tool)
    assert (find.name, find.description, find.permission, find.timeout) == ("lookup", "Find a thing.", "confirm", 3)
    assert find.is_async
    assert find.invoke({"key": "k"}) == "k"
    assert find.with_permission(ToolPermission.DENY).permission is ToolPermission.DENY
    assert find.permission is ToolPermission.CONFIRM  # with_permission returns a copy


def test_unsupported_signatures_are_refused_at_definition():
    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):

        @tool
        def anything(*args: str) -> None:
            return None


def test_agents_validate_their_definition():
    with pytest.raises(ValueError, match="must be lowercase"):
        Agent(name="Bad Name")
    with pytest.raises(ValueError, match="two tools are named"):
        Agent(name="dup", tools=[create_ticket, create_ticket])
    with pytest.raises(TypeError, match="decorate it with @tool"):
        Agent(name="raw", tools=[print])  # type: ignore[list-item]


def test_the_sdk_imports_without_django_configured():
    code = (
        "import sys; from agentplatform import Agent, tool, ToolPermission, serve; "
        "assert 'django.conf' not in sys.modules or not __import__('django.conf').conf.settings.configured; "
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""}, check=False)
    assert result.stdout.strip() == "ok", result.stderr
