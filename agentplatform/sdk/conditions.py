"""Argument conditions on a tool's permission: a small declarative rule format, never `eval`.

A tool's conditions are a list of rules, tried in order; the first whose `when` holds
gives the permission, and when none holds the tool's own permission applies::

    [
        {"when": {"arg": "amount", "op": "gt", "value": 100}, "then": "confirm"},
        {"when": {"arg": "channel", "op": "eq", "value": "#general"}, "then": "deny"},
    ]

A condition is `{"arg": "path.to.value", "op": ..., "value": ...}` (ops: eq, ne, gt, gte,
lt, lte, in, not_in, contains, exists), or `{"all": [...]}`, `{"any": [...]}`, `{"not": ...}`.
A rule that cannot be evaluated (a missing argument, a comparison of the wrong types)
fails closed: DENY if the rule denies, else CONFIRM; never ALLOW.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from agentplatform.sdk.tools import ToolPermission

_MISSING = object()

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda actual, value: actual in value,
    "not_in": lambda actual, value: actual not in value,
    "contains": lambda actual, value: value in actual,
    "exists": lambda actual, value: (actual is not _MISSING) == bool(value),
}
_NEEDS_LIST = {"in", "not_in"}
_MAX_DEPTH = 8
_STRICTNESS = [ToolPermission.ALLOW, ToolPermission.CONFIRM, ToolPermission.DENY]


class ConditionError(ValueError):
    """A rule that is malformed (at save time) or cannot be evaluated (at call time)."""


def permission_for(base: ToolPermission, rules: list[Any], arguments: Mapping[str, Any]) -> ToolPermission:
    """The permission for one call with these arguments."""
    for rule in rules:
        then = ToolPermission(rule["then"])
        try:
            if _holds(rule["when"], arguments, 0):
                return then
        except (ConditionError, TypeError, KeyError, ValueError):
            closed = ToolPermission.DENY if then is ToolPermission.DENY else ToolPermission.CONFIRM
            return max(closed, base, key=_STRICTNESS.index)
    return base


def validate(rules: Any, parameters: Mapping[str, Any] | None = None) -> None:
    """Raise ConditionError naming the first problem: a rule's shape, an unknown op or
    permission, or an argument the tool does not have."""
    if not isinstance(rules, list):
        raise ConditionError("Conditions must be a list of rules.")
    known = set((parameters or {}).get("properties", {})) if parameters is not None else None
    for index, rule in enumerate(rules):
        where = f"rule {index + 1}"
        if not isinstance(rule, dict) or set(rule) != {"when", "then"}:
            raise ConditionError(f"{where}: a rule is an object with exactly 'when' and 'then'.")
        if rule["then"] not in ToolPermission.__members__.values():
            raise ConditionError(f"{where}: 'then' must be one of allow, confirm, deny.")
        _check(rule["when"], where, known, 0)


def _check(condition: Any, where: str, known: set[str] | None, depth: int) -> None:
    if depth > _MAX_DEPTH or not isinstance(condition, dict):
        raise ConditionError(f"{where}: a condition is an object (nested at most {_MAX_DEPTH} deep).")
    if set(condition) in ({"all"}, {"any"}):
        parts = next(iter(condition.values()))
        if not isinstance(parts, list) or not parts:
            raise ConditionError(f"{where}: 'all' and 'any' take a non-empty list of conditions.")
        for part in parts:
            _check(part, where, known, depth + 1)
        return
    if set(condition) == {"not"}:
        _check(condition["not"], where, known, depth + 1)
        return
    _check_comparison(condition, where, known)


def _check_comparison(condition: dict[str, Any], where: str, known: set[str] | None) -> None:
    if set(condition) != {"arg", "op", "value"}:
        raise ConditionError(f"{where}: a condition has 'arg', 'op' and 'value' (or all/any/not).")
    arg, op = condition["arg"], condition["op"]
    if not isinstance(arg, str) or not arg:
        raise ConditionError(f"{where}: 'arg' is an argument name, or a dotted path into one.")
    if known is not None and arg.split(".")[0] not in known:
        raise ConditionError(f"{where}: the tool has no argument {arg.split('.')[0]!r}.")
    if op not in OPS:
        raise ConditionError(f"{where}: unknown op {op!r}; use one of {', '.join(OPS)}.")
    if op in _NEEDS_LIST and not isinstance(condition["value"], list):
        raise ConditionError(f"{where}: {op!r} takes a list as 'value'.")


def _holds(condition: Mapping[str, Any], arguments: Mapping[str, Any], depth: int) -> bool:
    if depth > _MAX_DEPTH:
        raise ConditionError("nested too deep")
    if "all" in condition:
        return all(_holds(part, arguments, depth + 1) for part in condition["all"])
    if "any" in condition:
        return any(_holds(part, arguments, depth + 1) for part in condition["any"])
    if "not" in condition:
        return not _holds(condition["not"], arguments, depth + 1)
    actual = _lookup(arguments, condition["arg"])
    if condition["op"] == "exists":
        return OPS["exists"](actual, condition["value"])
    if actual is _MISSING:
        raise ConditionError(f"no argument {condition['arg']!r}")
    return bool(OPS[condition["op"]](actual, condition["value"]))


def _lookup(arguments: Mapping[str, Any], path: str) -> Any:
    value: Any = arguments
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value
