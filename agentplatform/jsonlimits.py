"""What the platform accepts as JSON from a caller: bounded, storable, renderable.

Every request body passes through `check` (in the API's parser), and so do values that reach
a service another way (edited tool arguments over a WebSocket). A value that PostgreSQL's
`jsonb` refuses (NUL in a string), that cannot be encoded as UTF-8 (a lone surrogate), that is
nested or sized past what any caller needs, or a number no client can read back, is a 400
with a code before anything is written.
"""

from __future__ import annotations

import math
from typing import Any

from agentplatform.errors import InvalidInput

MAX_DEPTH = 32  # objects and arrays within each other
MAX_ITEMS = 10_000  # values in one document, keys included
MAX_INTEGER = 2**63 - 1  # what a 64-bit client (and PostgreSQL's bigint) can read back
MAX_NUMBER_CHARS = 100  # digits of a number as written, before Python parses it


class JsonTooDeep(InvalidInput):
    code = "json_too_deep"


class JsonTooLarge(InvalidInput):
    code = "json_too_many_items"


class JsonBadNumber(InvalidInput):
    code = "json_number_out_of_range"


class JsonBadText(InvalidInput):
    code = "json_invalid_text"


def check(value: Any, *, field: str = "") -> None:
    """Raise a typed InvalidInput for the first thing in `value` the platform does not accept.

    Iterative, so that a value nested deeper than Python's recursion limit is refused too.
    """
    pending: list[tuple[Any, str, int]] = [(value, field, 0)]
    seen = 0
    while pending:
        node, path, depth = pending.pop()
        seen += 1 + (len(node) if isinstance(node, dict) else 0)
        if seen > MAX_ITEMS:
            raise JsonTooLarge(
                f"{field or 'The body'} has more than {MAX_ITEMS} values.", details=_at(field, MAX_ITEMS)
            )
        if isinstance(node, dict | list):
            pending.extend(_children(node, path, depth))
        else:
            _check_scalar(node, path)


def _children(node: dict[str, Any] | list[Any], path: str, depth: int) -> list[tuple[Any, str, int]]:
    if depth >= MAX_DEPTH:
        raise JsonTooDeep(f"{path or 'The body'} is nested more than {MAX_DEPTH} deep.", details=_at(path, MAX_DEPTH))
    if isinstance(node, list):
        return [(item, _join(path, str(index)), depth + 1) for index, item in enumerate(node)]
    for key in node:
        _check_text(key, path, "A key")
    return [(item, _join(path, key), depth + 1) for key, item in node.items()]


def _check_scalar(node: Any, path: str) -> None:
    if isinstance(node, str):
        _check_text(node, path)
    elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_INTEGER:
        raise JsonBadNumber(f"{path or 'A number'}: integers must be within ±(2^63 - 1).", details=_at(path))
    elif isinstance(node, float) and not math.isfinite(node):
        raise JsonBadNumber(f"{path or 'A number'}: numbers must be finite.", details=_at(path))


def parse_int(text: str) -> int:
    """For `json.loads(parse_int=...)`: Python refuses to parse very long integers (a
    ValueError that would read as malformed JSON); the range is checked by `check`."""
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonBadNumber(f"A number has more than {MAX_NUMBER_CHARS} digits.", details=_at(""))
    return int(text)


def _check_text(text: str, path: str, what: str = "Text") -> None:
    """NUL or a lone surrogate in a string; `path` names where (never the text itself, which
    could not be rendered in the error either)."""
    problem = ""
    if "\x00" in text:
        problem = "NUL characters (\\u0000) are not accepted"
    elif not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            problem = "a lone surrogate (an unpaired \\ud800-\\udfff escape) is not text"
    if problem:
        where = f"{what} in {path}" if path else what
        raise JsonBadText(f"{where}: {problem}.", details=_at(path))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _at(path: str, limit: int | None = None) -> dict[str, Any]:
    return {"path": path, **({"limit": limit} if limit is not None else {})}
