"""Milestone acceptance: the project manager records who accepted a deliverable on the client side, when,
with a note and a signed document; an accepted milestone with an amount is billable (it joins the unbilled
items with its note) until billing marks it billed. Service guards, the page and the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from backbone.errors import NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import Notification
from projects import milestones as ms
from projects import selectors
from projects import timesheets as ts
from projects.models import Milestone, Project

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ON = dt.date(2026, 5, 4)


def signed(name="signed.pdf", content=PDF, content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type)


def first(project) -> Milestone:
    return project.milestones.order_by("planned_date").first()


def accept(project, actor=None, **overrides):
    values = {"accepted_by_name": "Ida Berg, COO", "accepted_on": ON, "note": "Designs approved as presented."}
    values.update(overrides)
    return ms.milestone_accept(actor=actor or project.project_manager, milestone=first(project), **values)


# --- the service ----------------------------------------------------------------------------------------


def test_the_pm_records_acceptance_with_document_and_finance_is_told(fixed_project, people):
    milestone = accept(fixed_project, document=signed())
    milestone.refresh_from_db()
    assert milestone.status == Milestone.Status.ACCEPTED
    assert (milestone.accepted_by_name, milestone.accepted_on) == ("Ida Berg, COO", ON)
    assert milestone.acceptance_recorded_by == people["pm"]
    assert milestone.acceptance_document_filename == "signed.pdf"
    assert len(milestone.acceptance_document_sha256) == 64
    assert milestone.history.first().history_change_reason == "Accepted by Ida Berg, COO"
    assert Notification.objects.filter(user=people["finance"], title__contains="Design sign-off").exists()


def test_an_accepted_milestone_is_an_unbilled_item_with_its_note_until_billed(fixed_project):
    assert selectors.unbilled_items(project=fixed_project, up_to=dt.date(2026, 12, 31)) == []
    milestone = accept(fixed_project)
    (item,) = selectors.unbilled_items(project=fixed_project, up_to=dt.date(2026, 12, 31))
    assert (item.kind, item.entry, item.date, item.amount, item.quantity) == (
        "milestone",
        milestone,
        ON,
        Decimal("12000.00"),
        Decimal(1),
    )
    assert item.note == "Designs approved as presented." and item.currency == fixed_project.currency
    assert selectors.unbilled_items(project=fixed_project, up_to=ON - dt.timedelta(days=1)) == []
    assert selectors.unbilled_items(customer=fixed_project.customer, up_to=ON)[0].entry == milestone

    assert ms.milestones_mark_billed(milestones=[milestone], invoice_ref="DE-2026-0001") == 1
    milestone.refresh_from_db()
    assert (milestone.status, milestone.invoice_ref) == (Milestone.Status.BILLED, "DE-2026-0001")
    assert selectors.unbilled_items(project=fixed_project, up_to=dt.date(2026, 12, 31)) == []
    with pytest.raises(TransitionNotAllowed, match="nothing is billed twice"):
        ms.milestones_mark_billed(milestones=[milestone], invoice_ref="DE-2026-0002")
    with pytest.raises(TransitionNotAllowed, match="credit note"):
        ms.milestone_acceptance_withdraw(actor=fixed_project.project_manager, milestone=milestone, reason="Oops")


def test_a_planned_milestone_cannot_be_billed_and_billing_names_its_invoice(fixed_project):
    with pytest.raises(TransitionNotAllowed, match="only accepted milestones"):
        ms.milestones_mark_billed(milestones=[first(fixed_project)], invoice_ref="DE-1")
    milestone = accept(fixed_project)
    with pytest.raises(ValidationFailed) as exc:
        ms.milestones_mark_billed(milestones=[milestone], invoice_ref=" ")
    assert exc.value.errors == {"invoice_ref": ["Name the invoice that billed the milestones."]}


def test_a_milestone_without_an_amount_is_accepted_but_never_billable(fixed_project):
    Milestone.objects.filter(pk=first(fixed_project).pk).update(amount=0)
    accept(fixed_project)
    assert selectors.unbilled_items(project=fixed_project, up_to=dt.date(2026, 12, 31)) == []


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"accepted_by_name": "  "}, "accepted_by_name", "Name the person on the client side"),
        ({"accepted_by_name": "x" * 121}, "accepted_by_name", "At most 120"),
        ({"accepted_on": None}, "accepted_on", "Enter the date the client accepted"),
        ({"accepted_on": dt.date(2099, 1, 1)}, "accepted_on", "cannot be dated in the future"),
        ({"accepted_on": dt.date(2026, 3, 1)}, "accepted_on", "starts on 2026-03-02"),
        ({"note": "n" * 2001}, "note", "At most 2,000"),
        ({"document": signed("signed.exe", b"MZ", "application/x-msdownload")}, "document", "PDF, JPEG or PNG"),
        ({"document": signed("signed.pdf", b"not a pdf at all")}, "document", "signed.pdf"),
    ],
)
def test_bad_acceptance_input_is_refused_on_the_field_and_nothing_changes(fixed_project, overrides, key, message):
    with pytest.raises(ValidationFailed) as exc:
        accept(fixed_project, **overrides)
    assert message in " ".join(exc.value.errors[key])
    assert first(fixed_project).status == Milestone.Status.PLANNED
    assert first(fixed_project).history.count() == 1


def test_a_locked_month_and_a_closed_project_refuse_acceptance(fixed_project, people):
    ts.period_lock(actor=people["finance"], month=dt.date(2026, 5, 1))
    with pytest.raises(ValidationFailed) as exc:
        accept(fixed_project)
    assert "May 2026 is locked by finance" in exc.value.errors["accepted_on"][0]
    Project.objects.filter(pk=fixed_project.pk).update(status=Project.Status.CLOSED)
    with pytest.raises(ValidationFailed) as exc:
        accept(fixed_project, accepted_on=dt.date(2026, 6, 1))
    assert "is closed" in exc.value.errors["project"][0]


@pytest.mark.parametrize("who", ["consultant", "finance", "sales", "pm2", "auditor", "executive"])
def test_only_the_projects_manager_or_an_admin_records_acceptance(fixed_project, people, who):
    with pytest.raises(NotPermitted):
        accept(fixed_project, actor=people[who])
    assert accept(fixed_project, actor=people["admin"]).status == Milestone.Status.ACCEPTED


def test_accepting_twice_is_refused_and_a_withdrawal_needs_a_reason_and_makes_it_planned(fixed_project):
    milestone = accept(fixed_project, document=signed())
    with pytest.raises(TransitionNotAllowed, match="already accepted"):
        accept(fixed_project)
    with pytest.raises(ValidationFailed, match="Say why"):
        ms.milestone_acceptance_withdraw(actor=fixed_project.project_manager, milestone=milestone, reason="")
    milestone = ms.milestone_acceptance_withdraw(
        actor=fixed_project.project_manager, milestone=milestone, reason="Recorded on the wrong milestone"
    )
    milestone.refresh_from_db()
    assert milestone.status == Milestone.Status.PLANNED and milestone.accepted_on is None
    assert not milestone.acceptance_document and milestone.acceptance_document_sha256 == ""
    reasons = list(milestone.history.values_list("history_change_reason", flat=True))
    assert reasons[0] == "Acceptance withdrawn: Recorded on the wrong milestone"
    with pytest.raises(TransitionNotAllowed, match="only an accepted"):
        ms.milestone_acceptance_withdraw(actor=fixed_project.project_manager, milestone=milestone, reason="Again")


# --- the page -------------------------------------------------------------------------------------------


def _url(name, project, milestone):
    return reverse(f"projects:{name}", args=[project.public_id, milestone.public_id])


def test_the_page_records_acceptance_and_the_project_page_shows_it(client, fixed_project, people):
    milestone = first(fixed_project)
    client.force_login(people["pm"])
    detail = client.get(reverse("projects:project-detail", args=[fixed_project.public_id]))
    assert _url("milestone-accept", fixed_project, milestone) in detail.content.decode()
    assert "Record acceptance" in detail.content.decode()
    page = client.get(_url("milestone-accept", fixed_project, milestone))
    assert page.status_code == 200 and "Record the client" in page.content.decode()

    response = client.post(
        _url("milestone-accept", fixed_project, milestone),
        {"accepted_by_name": "Ida Berg", "accepted_on": "2026-05-04", "note": "All good", "document": signed()},
    )
    assert response.status_code == 302
    milestone.refresh_from_db()
    assert milestone.status == "accepted" and milestone.acceptance_note == "All good"
    shown = client.get(_url("milestone-accept", fixed_project, milestone)).content.decode()
    assert "Ida Berg" in shown and milestone.acceptance_document_sha256 in shown
    download = client.get(_url("milestone-document", fixed_project, milestone))
    assert download.status_code == 200 and b"".join(download.streaming_content) == PDF
    assert "attachment" in download["Content-Disposition"]


def test_page_errors_are_shown_on_the_field_with_the_status(client, fixed_project, people):
    milestone = first(fixed_project)
    client.force_login(people["pm"])
    response = client.post(
        _url("milestone-accept", fixed_project, milestone), {"accepted_by_name": "Ida", "accepted_on": "2099-01-01"}
    )
    assert response.status_code == 400
    assert "cannot be dated in the future" in response.content.decode()
    response = client.post(_url("milestone-accept", fixed_project, milestone), {"accepted_on": "2026-05-04"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert first(fixed_project).status == "planned"


def test_people_who_cannot_accept_see_no_form_and_cannot_post(client, fixed_project, people):
    milestone = first(fixed_project)
    client.force_login(people["finance"])
    page = client.get(_url("milestone-accept", fixed_project, milestone)).content.decode()
    assert "Record the client" not in page and "Not accepted yet" in page
    assert client.post(_url("milestone-accept", fixed_project, milestone), {}).status_code == 403
    client.force_login(people["consultant"])  # not on the team: the project is out of scope
    assert client.get(_url("milestone-accept", fixed_project, milestone)).status_code == 404
    assert client.get(_url("milestone-document", fixed_project, milestone)).status_code == 404


def test_the_withdraw_page_action(client, fixed_project, people):
    milestone = accept(fixed_project)
    client.force_login(people["pm"])
    assert client.post(_url("milestone-withdraw", fixed_project, milestone), {"reason": ""}).status_code == 400
    response = client.post(_url("milestone-withdraw", fixed_project, milestone), {"reason": "Wrong one"})
    assert response.status_code == 302 and first(fixed_project).status == "planned"


# --- the API --------------------------------------------------------------------------------------------


def _api(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def _api_url(project, milestone, action=""):
    base = f"/api/v1/projects/{project.public_id}/milestones/{milestone.public_id}/"
    return base + (f"{action}/" if action else "")


def test_the_api_accepts_json_and_multipart_and_refuses_twice(fixed_project, people):
    one, two = list(fixed_project.milestones.order_by("planned_date"))[:2]
    api = _api(people["pm"])
    body = {"accepted_by_name": "Ida Berg", "accepted_on": "2026-05-04", "note": "Signed off"}
    response = api.post(_api_url(fixed_project, one, "accept"), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted" and response.json()["acceptance_recorded_by"] == "pm"
    again = api.post(_api_url(fixed_project, one, "accept"), body, format="json")
    assert again.status_code == 409 and "already accepted" in again.json()["message"]
    multipart = api.post(
        _api_url(fixed_project, two, "accept"),
        {"accepted_by_name": "Ida Berg", "accepted_on": "2026-07-01", "document": signed()},
        format="multipart",
    )
    assert multipart.status_code == 200, multipart.content
    assert multipart.json()["acceptance_document_filename"] == "signed.pdf"
    assert api.get(_api_url(fixed_project, two)).json()["accepted_on"] == "2026-07-01"
    withdrawn = api.post(_api_url(fixed_project, two, "withdraw"), {"reason": "Wrong one"}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "planned"


def test_the_api_refuses_bad_input_and_other_roles(fixed_project, people):
    milestone = first(fixed_project)
    bad = _api(people["pm"]).post(
        _api_url(fixed_project, milestone, "accept"), {"accepted_by_name": "Ida", "accepted_on": "2099-01-01"}
    )
    assert bad.status_code == 400 and "future" in bad.json()["errors"]["accepted_on"][0]
    missing = _api(people["pm"]).post(_api_url(fixed_project, milestone, "accept"), {}, format="json")
    assert missing.status_code == 400 and set(missing.json()["errors"]) == {"accepted_by_name", "accepted_on"}
    body = {"accepted_by_name": "Ida", "accepted_on": "2026-05-04"}
    assert _api(people["finance"]).post(_api_url(fixed_project, milestone, "accept"), body).status_code == 403
    assert _api(people["auditor"]).post(_api_url(fixed_project, milestone, "accept"), body).status_code == 403
    assert _api(people["pm2"]).post(_api_url(fixed_project, milestone, "accept"), body).status_code == 404
    assert APIClient().post(_api_url(fixed_project, milestone, "accept"), body).status_code == 401
    assert first(fixed_project).status == "planned"
