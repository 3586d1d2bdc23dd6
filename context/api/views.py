"""REST adapters for context sources: list, detail, preview."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import CallerAPIView, Cursor, ErrorSerializer
from context import selectors, services
from context.api.serializers import ContextSourceSerializer, PreviewRequestSerializer, PreviewSerializer


class ContextSourceListView(CallerAPIView):
    pagination_class = Cursor

    @extend_schema(
        parameters=[OpenApiParameter("agent", str, description="Only this agent's sources")],
        responses=ContextSourceSerializer(many=True),
        summary="Context sources bound to the agents this key may use",
    )
    def get(self, request: Request) -> Response:
        sources = selectors.visible_sources(self.owner, self.api_key)
        if "agent" in request.query_params:
            sources = sources.filter(agent__name=request.query_params["agent"])
        return self.page(sources, ContextSourceSerializer)


class ContextSourceDetailView(CallerAPIView):
    @extend_schema(responses={200: ContextSourceSerializer, 404: ErrorSerializer}, summary="A context source")
    def get(self, request: Request, source_id: int) -> Response:
        return Response(ContextSourceSerializer(selectors.get_source(self.owner, self.api_key, source_id)).data)


class ContextSourcePreviewView(CallerAPIView):
    @extend_schema(
        request=PreviewRequestSerializer,
        responses={200: PreviewSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
        summary="Fetch a source now and show exactly what a run would be given (nothing is stored)",
    )
    def post(self, request: Request, source_id: int) -> Response:
        source = selectors.get_source(self.owner, self.api_key, source_id)
        PreviewRequestSerializer(data=request.data).is_valid(raise_exception=True)
        return Response(PreviewSerializer(asdict(services.preview_source(source))).data)
