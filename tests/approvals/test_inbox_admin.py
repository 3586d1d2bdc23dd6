"""The approvals inbox in the admin: pending first, filters, the count on the index, the detail
page with its conversation, and decisions that go through the services (and their refusals)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from approvals.admin import ApprovalRequestAdmin
from approvals.models import ApprovalRequest, ApprovalStatus
from tests import sample_agents
from tests.approvals.conftest import EMAIL, create_staff, finished, pause, sign_in
from tests.fakes.llm_server import Text

pytestmark = pytest.mark.django_db(transaction=True)

INBOX = "/admin/approvals/approvalrequest/"


def _detail(approval: ApprovalRequest) -> str:
    return f"{INBOX}{approval.pk}/change/"


def _decide(client: Client, approval: ApprovalRequest, **form: str) -> str:
    """POST a decision; the page it leads to (the detail page, with the outcome as a message)."""
    response = client.post(f"{INBOX}{approval.pk}/decide/", form, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def _listed(page: str) -> list[str]:
    return re.findall(r"/admin/approvals/approvalrequest/([0-9a-f-]{36})/change/", page)


def _copies(base: ApprovalRequest, *specs: tuple[str, int]) -> list[ApprovalRequest]:
    """More requests on the same run: (status, minutes ago) each."""
    now = timezone.now()
    rows = []
    for index, (status, _) in enumerate(specs):
        row = ApprovalRequest.objects.get(pk=base.pk)
        row.pk, row.call_id, row.status = None, f"copy-{index}", status
        rows.append(row)
    created = ApprovalRequest.objects.bulk_create(rows)
    for row, (_, minutes_ago) in zip(created, specs, strict=True):  # requested_at is auto_now_add
        ApprovalRequest.objects.filter(pk=row.pk).update(requested_at=now - timedelta(minutes=minutes_ago))
    return created


def test_the_inbox_lists_pending_requests_first_then_the_newest(decider, api, llm):
    base = pause(api, llm)
    old_pending, new_approved, older_pending = _copies(
        base, ("pending", 30), (ApprovalStatus.APPROVED, 1), ("pending", 60)
    )

    page = decider.get(INBOX).content.decode()

    expected = [base.pk, old_pending.pk, older_pending.pk, new_approved.pk]
    assert _listed(page) == [str(pk) for pk in expected]
    assert "send_email" in page
    assert "bob@example.com" in page  # the arguments' preview


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("status__exact=pending", 1),
        ("status__exact=approved", 1),
        ("tool=send_email", 2),
        ("tool=add", 0),
        ("channel__exact=admin", 1),
        ("q=send_email", 2),
        ("q=not-a-uuid", 0),
        ("q={run}", 2),
    ],
)
def test_the_inbox_filters_and_searches(decider, api, llm, query, shown):
    base = pause(api, llm)
    [approved] = _copies(base, (ApprovalStatus.APPROVED, 5))
    ApprovalRequest.objects.filter(pk=approved.pk).update(channel="admin")

    response = decider.get(f"{INBOX}?{query.format(run=base.run_id)}")

    assert response.status_code == 200
    assert len(_listed(response.content.decode())) == shown


def test_the_inbox_page_costs_the_same_queries_at_any_size(decider, api, llm):
    base = pause(api, llm)
    with CaptureQueriesContext(connection) as few:
        assert decider.get(INBOX).status_code == 200
    _copies(base, *[("pending", minutes) for minutes in range(1, 80)])

    with CaptureQueriesContext(connection) as many:
        page = decider.get(INBOX).content.decode()

    assert len(_listed(page)) == 50  # one page
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_the_inbox_order_is_read_from_an_index_not_sorted(db):
    page = ApprovalRequest.objects.order_by(*ApprovalRequestAdmin.ordering)[:50]

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # on an empty table a sort is cheaper: price it out
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = page.explain()

    assert "approval_inbox_order" in plan
    assert "Sort" not in plan
    assert "TEMP B-TREE" not in plan


def test_the_admin_index_shows_how_many_requests_wait(decider, viewer, api, llm):
    assert "No tool calls await approval" in decider.get("/admin/").content.decode()
    base = pause(api, llm)
    _copies(base, ("pending", 1), (ApprovalStatus.REJECTED, 2))

    page = decider.get("/admin/").content.decode()

    assert re.search(r'id="pending-approvals-count">2</strong> tool calls\s+await approval', page)
    assert f'href="{INBOX}?status__exact=pending"' in page
    assert "pending-approvals-count" in viewer.get("/admin/").content.decode()


def test_the_detail_page_shows_the_agent_run_session_and_the_conversation(decider, api, llm):
    approval = pause(api, llm)

    page = decider.get(_detail(approval)).content.decode()

    assert f'href="/admin/agents/agent/{approval.agent_id}/change/"' in page.replace("'", '"')
    assert f"/admin/agents/run/{approval.run_id}/change/" in page
    assert f"/admin/agents/session/{approval.session_id}/change/" in page
    assert page.index("#0 user") < page.index("#1 assistant")
    assert "email bob" in page
    assert "→ calls <code>send_email</code>" in page
    assert 'id="decision-form"' in page
    editor = re.search(r'<textarea id="id_arguments"[^>]*>(.*?)</textarea>', page, re.S)
    assert editor is not None
    assert json.loads(editor.group(1).replace("&quot;", '"')) == EMAIL


def test_approving_as_proposed_resumes_the_run(decider, api, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Sent."))

    page = _decide(decider, approval, decision="approve", arguments="{}")

    assert "Approved send_email as proposed" in page
    approval.refresh_from_db()
    assert (approval.status, approval.channel) == ("approved", "admin")
    assert approval.decided_by is not None
    assert approval.decided_by.username == "reviewer"
    assert finished(approval.run_id).status == "completed"
    assert sample_agents.CALLS == [("send_email", EMAIL)]


def test_approving_with_edits_runs_the_edited_arguments_and_shows_the_diff(decider, api, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Sent to carol."))
    edited = {"to": "carol@example.com", "subject": "hi"}

    page = _decide(decider, approval, decision="approve_edited", arguments=json.dumps(edited, indent=2))

    assert "with edits to /to" in page
    assert finished(approval.run_id).status == "completed"
    assert [("send_email", edited)] == sample_agents.CALLS
    approval.refresh_from_db()
    assert approval.executed_at is not None
    page = decider.get(_detail(approval)).content.decode()
    assert re.search(r"<td>replace</td><td><code>/to</code></td><td><code>&quot;bob@example.com&quot;</code>", page)
    assert "reviewer" in page
    assert 'id="decision-form"' not in page


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"to": "carol@', "400 invalid_arguments): arguments: not valid JSON"),
        ('{"to": 7, "subject": "hi"}', "400 invalid_arguments): to: 7 is not of type &#x27;string&#x27;"),
        ("[1, 2]", "400 invalid_arguments): Edited arguments must be a JSON object."),
    ],
)
def test_invalid_edits_change_nothing_and_keep_the_draft(decider, api, llm, arguments, message):
    approval = pause(api, llm)

    page = _decide(decider, approval, decision="approve_edited", arguments=arguments)

    assert f"Nothing was changed ({message}" in page
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"
    editor = re.search(r'<textarea id="id_arguments"[^>]*>(.*?)</textarea>', page, re.S)
    assert editor is not None
    assert editor.group(1).replace("&quot;", '"') == arguments  # the draft is back in the editor


def test_rejecting_needs_a_reason_which_the_model_reads(decider, api, llm):
    approval = pause(api, llm)

    page = _decide(decider, approval, decision="reject", reason="  ")
    assert "Nothing was changed (400 invalid_request): Rejecting needs a reason" in page

    llm.enqueue(Text("Not sent."))
    page = _decide(decider, approval, decision="reject", reason="wrong recipient")

    assert "Rejected send_email" in page
    assert finished(approval.run_id).output == "Not sent."
    assert sample_agents.CALLS == []
    page = decider.get(_detail(approval)).content.decode()
    assert "wrong recipient" in page


def test_a_comment_goes_with_the_decision_and_is_shown_in_the_inbox(decider, api, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Sent."))

    page = _decide(decider, approval, decision="approve", comment="x" * 2001)
    assert "Nothing was changed (400 invalid_request): comment: at most 2000 characters" in page
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"

    page = _decide(decider, approval, decision="approve", comment="Bob <asked> for it")

    assert "Approved send_email as proposed" in page
    assert ApprovalRequest.objects.get(pk=approval.pk).comment == "Bob <asked> for it"
    assert "Bob &lt;asked&gt; for it" in decider.get(_detail(approval)).content.decode()
    assert finished(approval.run_id).status == "completed"


def test_a_second_decision_is_refused_with_409(decider, api, llm):
    approval = pause(api, llm)
    llm.enqueue(Text("Sent."))
    _decide(decider, approval, decision="approve")

    page = _decide(decider, approval, decision="reject", reason="too late")

    assert "Nothing was changed (409 approval_already_decided): The request is already approved." in page
    assert finished(approval.run_id).status == "completed"


def test_an_expired_request_offers_no_buttons_and_is_refused(decider, api, llm):
    approval = pause(api, llm)
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    page = decider.get(_detail(approval)).content.decode()
    assert 'id="decision-form"' not in page
    assert "the expiry sweep will apply its action" in page

    page = _decide(decider, approval, decision="approve")
    assert "Nothing was changed (409 approval_expired)" in page
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_staff_without_the_decide_permission_see_no_buttons_and_are_refused(viewer, api, llm):
    approval = pause(api, llm)

    page = viewer.get(_detail(approval)).content.decode()
    assert 'id="decision-form"' not in page
    assert "Deciding needs verified staff with the permission" in page

    page = _decide(viewer, approval, decision="approve")

    assert "Nothing was changed (403 approval_forbidden)" in page
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_requests_are_read_only_and_never_deleted_even_by_a_superuser(api, llm, admin_user):
    approval = pause(api, llm)
    admin_user.set_password("s3cret-pass")
    admin_user.save()
    superuser = sign_in(admin_user, TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True))

    assert superuser.get(f"{INBOX}add/").status_code == 403
    assert superuser.get(f"{INBOX}{approval.pk}/delete/").status_code == 403
    assert superuser.post(_detail(approval), {"status": "approved"}).status_code == 403
    assert superuser.get(f"{INBOX}{approval.pk}/decide/").status_code == 405
    assert 'id="decision-form"' in superuser.get(_detail(approval)).content.decode()  # superusers may decide
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_deciding_needs_a_verified_admin_session(api, llm):
    approval = pause(api, llm)
    user, _ = create_staff("unverified", "view_approvalrequest", "decide_approvalrequest")
    client = Client()
    client.force_login(user)  # a password session, no second factor

    response = client.post(f"{INBOX}{approval.pk}/decide/", {"decision": "approve"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"
