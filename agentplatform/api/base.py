"""Base API classes: caller scoping that subclasses cannot skip, and strict pagination."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor as Position
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Channel
from agentplatform.errors import InvalidCursor, InvalidInput

# An id in a path, as Django's `uuid` converter matches it (for routes written with re_path).
UUID_RE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class CallerAPIView(APIView):
    # Every API view: authenticated, and knows its caller (owner) and API key. A list view
    # names its `pagination_class` (which the OpenAPI schema describes) and answers with
    # `self.page(...)`. (A comment, not a docstring: drf-spectacular would describe every
    # operation with it.)

    pagination_class: ClassVar[type[Cursor] | None] = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in [name, *values]):  # no database can compare it
                raise InvalidInput("A query parameter contains a NUL character.", details={"param": name})

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # A view with one renderer, asked for anything or for what it renders (nearly every
        # request), gets it without DRF parsing the Accept header (a read's 3% of CPU).
        renderers = self.get_renderers()
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if len(renderers) == 1 and accept in ("*/*", renderers[0].media_type) and "format" not in request._request.GET:
            return renderers[0], renderers[0].media_type
        return super().perform_content_negotiation(request, force)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Every response to a limited caller says where it stands, as the rate-limit throttle
        # (`DEFAULT_THROTTLE_CLASSES`) left it; a refusal names its own limit.
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            if name not in response:
                response[name] = value
        response = super().finalize_response(request, response, *args, **kwargs)
        response._resource_closers.append(self._forget)
        return response

    def _forget(self) -> None:
        # Once the response is sent (closed), the view, DRF's request and its response let go
        # of one another (DRF's parser and renderer contexts refer back to them): what a
        # request made, the page it read included, then goes at once, not when the cycle
        # collector next runs.
        request, response = self.__dict__.get("request"), self.__dict__.get("response")
        if request is not None:
            request.parser_context = None
        if response is not None:
            response.renderer_context = None
        self.__dict__.clear()

    def page(self, queryset: Any, serializer: type[serializers.BaseSerializer]) -> Response:
        assert self.pagination_class is not None, f"{type(self).__name__} has no pagination_class"
        paginator = self.pagination_class()
        rows = paginator.paginate_queryset(queryset, self.request, self)
        listing = serializer(rows, many=True)
        results = list(listing.data)
        listing.__dict__.clear()  # DRF's list serializer and its child refer to each other: the rows go now
        return paginator.get_paginated_response(results)

    @property
    def owner(self) -> Any:
        return self.request.user

    @property
    def api_key(self) -> Any:
        # The key object from ApiKeyAuthentication; None for an admin's browser session.
        auth = self.request.auth
        return auth if hasattr(auth, "key_hash") else None

    @property
    def actor(self) -> Actor:
        # Who calls (the user, the key) and from where, for the audit log of what it changes.
        return Actor.from_request(self.request, Channel.API, api_key=self.api_key)


class TextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


# The base serializers' notes are comments, not docstrings: drf-spectacular describes each
# schema component with the nearest docstring among its class's bases.


class StrictSerializer(serializers.Serializer):
    # Refuses fields it does not know, so that a typo is an error rather than ignored.

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class ModelSerializer(serializers.ModelSerializer):
    # DRF's ModelSerializer, building its fields from the model once per class. DRF inspects
    # the model again for every instance (a run's response builds two serializers), although
    # the fields depend only on the class: each instance gets a deep copy of the first build
    # instead, as DRF already does for the declared fields.

    _built_fields: ClassVar[dict[str, serializers.Field] | None] = None

    def get_fields(self) -> dict[str, serializers.Field]:
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built
        return copy.deepcopy(built)


class Cursor(CursorPagination):
    """Opaque cursors; `?limit=` up to 200; a bad cursor is a 400, not an empty page.

    A cursor is decoded and its position checked against the ordering field before any query:
    a crafted one (a position that is not a date, NUL, a number out of range) is `invalid_cursor`.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering: Any = "-created_at"

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            raise InvalidCursor(details={"param": "cursor"}) from None

    def decode_cursor(self, request: Request) -> Position | None:
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not self._valid_position(cursor.position):
            raise InvalidCursor(details={"param": "cursor"})
        return cursor

    def _valid_position(self, position: object) -> bool:
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        try:
            value = self._model._meta.get_field(ordering.lstrip("-")).clean(position, None)
        except (FieldDoesNotExist, ValidationError):
            return False
        return not (isinstance(value, datetime) and timezone.is_naive(value))

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and (not raw.isdigit() or int(raw) < 1):
            raise InvalidInput("limit must be a positive integer.", details={"param": "limit"})
        return super().get_page_size(request) or self.page_size


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable, e.g. session_busy.")
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
