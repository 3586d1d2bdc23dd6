"""Argument conditions: declarative rules, first match wins, failing closed."""

from __future__ import annotations

import pytest

from agentplatform.sdk.conditions import ConditionError, permission_for, validate
from agentplatform.sdk.tools import ToolPermission

ALLOW, CONFIRM, DENY = ToolPermission.ALLOW, ToolPermission.CONFIRM, ToolPermission.DENY
RULES = [
    {"when": {"arg": "channel", "op": "eq", "value": "#general"}, "then": "deny"},
    {"when": {"arg": "amount", "op": "gt", "value": 100}, "then": "confirm"},
]
SCHEMA = {"type": "object", "properties": {"channel": {"type": "string"}, "amount": {"type": "number"}}}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"channel": "#ops", "amount": 5}, ALLOW),
        ({"channel": "#ops", "amount": 500}, CONFIRM),
        ({"channel": "#general", "amount": 500}, DENY),  # the first rule that holds wins
        ({"channel": "#ops"}, CONFIRM),  # amount missing: the confirm rule cannot be evaluated
        ({"channel": "#ops", "amount": "lots"}, CONFIRM),  # a string compared with a number
        ({"amount": 5}, DENY),  # channel missing: the deny rule fails closed as DENY
    ],
)
def test_rules_apply_in_order_and_fail_closed(arguments, expected):
    assert permission_for(ALLOW, RULES, arguments) is expected


def test_failing_closed_never_loosens_the_tools_own_permission():
    allow_rule = [{"when": {"arg": "x", "op": "eq", "value": 1}, "then": "allow"}]
    assert permission_for(DENY, allow_rule, {}) is DENY
    assert permission_for(ALLOW, allow_rule, {}) is CONFIRM


def test_combinators_and_paths():
    rules = [
        {
            "when": {
                "all": [
                    {"arg": "to.domain", "op": "not_in", "value": ["example.com"]},
                    {"not": {"arg": "cc", "op": "exists", "value": True}},
                    {
                        "any": [
                            {"arg": "tags", "op": "contains", "value": "external"},
                            {"arg": "n", "op": "gte", "value": 3},
                        ]
                    },
                ]
            },
            "then": "confirm",
        }
    ]
    assert permission_for(ALLOW, rules, {"to": {"domain": "evil.test"}, "tags": ["external"]}) is CONFIRM
    assert permission_for(ALLOW, rules, {"to": {"domain": "example.com"}, "tags": ["external"]}) is ALLOW
    assert permission_for(ALLOW, rules, {"to": {"domain": "evil.test"}, "cc": "x", "n": 5}) is ALLOW


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"when": {}}, "must be a list"),
        ([{"when": {"arg": "amount", "op": "gt", "value": 1}}], "exactly 'when' and 'then'"),
        ([{"when": {"arg": "amount", "op": "gt", "value": 1}, "then": "maybe"}], "'then' must be one of"),
        ([{"when": {"arg": "amount", "op": "between", "value": 1}, "then": "deny"}], "unknown op 'between'"),
        ([{"when": {"arg": "size", "op": "gt", "value": 1}, "then": "deny"}], "no argument 'size'"),
        ([{"when": {"arg": "amount", "op": "in", "value": 3}, "then": "deny"}], "takes a list"),
        ([{"when": {"any": []}, "then": "deny"}], "non-empty list"),
        ([{"when": {"arg": "amount", "op": "eq", "value": 1, "extra": 2}, "then": "deny"}], "'arg', 'op' and 'value'"),
    ],
)
def test_malformed_rules_are_refused_with_the_problem_named(rules, problem):
    with pytest.raises(ConditionError, match=problem):
        validate(rules, SCHEMA)


def test_valid_rules_pass():
    validate(RULES, SCHEMA)
