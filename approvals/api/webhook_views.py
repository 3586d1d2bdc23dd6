"""REST adapters for webhooks: endpoints (CRUD), their deliveries, and a manual resend.

Managing webhooks needs an API key with the `webhooks:manage` scope (or a staff session);
a caller sees only the endpoints it owns, and their deliveries.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import CallerAPIView, Cursor
from approvals import webhook_selectors as selectors
from approvals import webhooks
from approvals.api.webhook_serializers import (
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookInputSerializer,
    WebhookSerializer,
)


class _WebhookView(CallerAPIView):
    # Every webhook view: the caller's right to manage webhooks is checked before anything.
    # (A comment, not a docstring: drf-spectacular would describe every operation with it.)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        scopes = tuple(self.api_key.scopes) if self.api_key is not None else None
        webhooks.check_may_manage(self.owner, scopes)


class WebhookListView(_WebhookView):
    pagination_class = Cursor

    @extend_schema(responses=WebhookSerializer(many=True), summary="Your webhook endpoints, newest first")
    def get(self, request: Request) -> Response:
        return self.page(selectors.owned_endpoints(self.owner), WebhookSerializer)

    @extend_schema(
        request=WebhookInputSerializer,
        responses={201: WebhookCreatedSerializer},
        summary="Register an endpoint; the response shows its signing secret, once",
    )
    def post(self, request: Request) -> Response:
        body = WebhookInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = webhooks.create_endpoint(owner=self.owner, actor=self.actor, **body.validated_data)
        data = WebhookCreatedSerializer(endpoint, context={"secret": secret}).data
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookDetailView(_WebhookView):
    @extend_schema(responses=WebhookSerializer, summary="A webhook endpoint (never its secret)")
    def get(self, request: Request, webhook_id: UUID) -> Response:
        return Response(WebhookSerializer(selectors.get_endpoint(self.owner, webhook_id)).data)

    @extend_schema(
        request=WebhookInputSerializer,
        responses=WebhookSerializer,
        summary="Change an endpoint (a new `secret` replaces the old one)",
    )
    def patch(self, request: Request, webhook_id: UUID) -> Response:
        body = WebhookInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = selectors.get_endpoint(self.owner, webhook_id)
        return Response(
            WebhookSerializer(webhooks.update_endpoint(endpoint, body.validated_data, actor=self.actor)).data
        )

    @extend_schema(responses={204: None}, summary="Delete an endpoint and its deliveries")
    def delete(self, request: Request, webhook_id: UUID) -> Response:
        webhooks.delete_endpoint(selectors.get_endpoint(self.owner, webhook_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesView(_WebhookView):
    pagination_class = Cursor

    @extend_schema(
        responses=WebhookDeliverySerializer(many=True), summary="An endpoint's deliveries with their attempts"
    )
    def get(self, request: Request, webhook_id: UUID) -> Response:
        endpoint = selectors.get_endpoint(self.owner, webhook_id)
        return self.page(selectors.endpoint_deliveries(endpoint), WebhookDeliverySerializer)


class WebhookDeliveryView(_WebhookView):
    @extend_schema(responses=WebhookDeliverySerializer, summary="A delivery with its attempts")
    def get(self, request: Request, delivery_id: UUID) -> Response:
        return Response(WebhookDeliverySerializer(selectors.get_delivery(self.owner, delivery_id)).data)


class WebhookResendView(_WebhookView):
    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Send a delivery again now: one more attempt, on the webhooks queue",
    )
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = webhooks.resend(selectors.get_delivery(self.owner, delivery_id))
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
