"""REST adapters for approval requests: list, read, approve, reject."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import CallerAPIView, Cursor
from agentplatform.errors import InvalidInput
from agentplatform.replicas import lag_tolerant
from approvals import selectors, services
from approvals.api.serializers import ApprovalSerializer, ApproveSerializer, RejectSerializer
from approvals.models import ApprovalStatus, Channel


class ApprovalCursor(Cursor):
    ordering = ("-requested_at", "-id")


class ApprovalListView(CallerAPIView):
    pagination_class = ApprovalCursor

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=ApprovalStatus.values, description="Only this status")],
        responses=ApprovalSerializer(many=True),
        summary="Approval requests on your runs, newest first",
    )
    @lag_tolerant
    def get(self, request: Request) -> Response:
        rows = selectors.owned_requests(self.owner)
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in ApprovalStatus.values:
                expected = ", ".join(ApprovalStatus.values)
                raise InvalidInput(f"status must be one of {expected}.", details={"param": "status"})
            rows = rows.filter(status=wanted)
        return self.page(rows, ApprovalSerializer)


class ApprovalDetailView(CallerAPIView):
    @extend_schema(responses=ApprovalSerializer, summary="An approval request")
    def get(self, request: Request, approval_id: UUID) -> Response:
        return Response(ApprovalSerializer(selectors.get_request(self.owner, approval_id)).data)


class _DecisionView(CallerAPIView):
    def decider(self) -> services.Decider:
        scopes = tuple(self.api_key.scopes) if self.api_key is not None else None
        return services.Decider(self.actor, Channel.API, scopes)


class ApproveView(_DecisionView):
    @extend_schema(
        request=ApproveSerializer,
        responses=ApprovalSerializer,
        summary="Approve a tool call, as proposed or with edited arguments, with a comment; the run resumes",
    )
    def post(self, request: Request, approval_id: str) -> Response:
        body = ApproveSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        approval = selectors.get_request(self.owner, approval_id)
        decided = services.approve(
            approval, self.decider(), body.validated_data.get("arguments"), body.validated_data["comment"]
        )
        return Response(ApprovalSerializer(decided).data)


class RejectView(_DecisionView):
    @extend_schema(
        request=RejectSerializer,
        responses=ApprovalSerializer,
        summary="Reject a tool call with a reason (for the model) and a comment",
    )
    def post(self, request: Request, approval_id: str) -> Response:
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        approval = selectors.get_request(self.owner, approval_id)
        decided = services.reject(
            approval, self.decider(), body.validated_data["reason"], body.validated_data["comment"]
        )
        return Response(ApprovalSerializer(decided).data)
