"""The API's one JSON parser: every request body is bounded and checked before a view sees it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from agentplatform import jsonlimits
from agentplatform.errors import PayloadTooLarge


class JSONParser(BaseParser):
    """UTF-8 JSON (RFC 8259), at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes, within `jsonlimits`.

    Malformed JSON, invalid UTF-8 and the non-standard NaN and Infinity are `malformed_json`;
    a body too large is 413 `payload_too_large`; the rest is refused by `jsonlimits.check`.
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge("The request body is too large.", details={"limit": limit})
        try:
            data = json.loads(raw.decode(), parse_int=jsonlimits.parse_int, parse_constant=_refuse_constant)
        except RecursionError:
            raise jsonlimits.JsonTooDeep(
                f"The body is nested more than {jsonlimits.MAX_DEPTH} deep.",
                details={"path": "", "limit": jsonlimits.MAX_DEPTH},
            ) from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ParseError(f"JSON parse error: {exc}") from None
        jsonlimits.check(data)
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
