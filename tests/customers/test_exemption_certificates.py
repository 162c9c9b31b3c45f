"""Customers' tax exemption certificates: the services' guards, the pages (finance keeps them, the others
see them), the document download, the API, the admin inline and the role permissions."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from backbone.errors import NotPermitted, ValidationFailed
from backbone.models import AuditEntry
from backbone.roles import Role
from customers.admin import ExemptionCertificateAdminForm
from customers.models import Customer, ExemptionCertificate
from customers.services import (
    customer_create,
    exemption_certificate_create,
    exemption_certificate_delete,
    exemption_certificate_update,
)

pytestmark = pytest.mark.django_db

BILLING = {"kind": "billing", "line1": "Bernhard-Nocht-Straße 78", "postal_code": "20359", "city": "Hamburg"}
PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
TODAY = timezone.localdate()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "white").save(buffer, "PNG")
    return buffer.getvalue()


def pdf(name: str = "certificate.pdf", content: bytes = PDF_BYTES, content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def make_customer(owner, legal_name: str = "European Marine Observatory Organisation") -> Customer:
    return customer_create(
        user=owner,
        data={"legal_name": legal_name, "status": Customer.Status.ACTIVE},
        addresses=[dict(BILLING, country="DE")],
    )


def certificate_data(**overrides) -> dict:
    data = {
        "reference": "BZSt-IO-2026-0147",
        "reason_code": "VATEX-EU-151-1B",
        "reason": "Supply to an international body",
        "country": "DE",
        "valid_from": TODAY - dt.timedelta(days=30),
        "valid_to": TODAY + dt.timedelta(days=335),
        "note": "Renew before it expires.",
    }
    data.update(overrides)
    return data


@pytest.fixture
def customer(sales):
    return make_customer(sales)


@pytest.fixture
def on_file(customer, finance):
    return exemption_certificate_create(user=finance, customer=customer, data=certificate_data(document=pdf()))


def signed_in(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def create_url(customer) -> str:
    return reverse("customers:exemption-certificate-create", args=[customer.public_id])


def edit_url(certificate) -> str:
    return reverse("customers:exemption-certificate-edit", args=[certificate.public_id])


def delete_url(certificate) -> str:
    return reverse("customers:exemption-certificate-delete", args=[certificate.public_id])


def document_url(certificate) -> str:
    return reverse("customers:exemption-certificate-document", args=[certificate.public_id])


def detail_url(customer) -> str:
    return reverse("customers:customer-detail", args=[customer.public_id])


def form_post(**overrides) -> dict:
    """The certificate page as finance submits it."""
    data = {
        "reference": "BZSt-IO-2026-0147",
        "reason_code": "VATEX-EU-151-1B",
        "reason": "",
        "country": "DE",
        "valid_from": (TODAY - dt.timedelta(days=30)).isoformat(),
        "valid_to": "",
        "note": "",
    }
    data.update(overrides)
    return data


# --- services: what is accepted ------------------------------------------------------------------------


def test_finance_records_a_certificate_with_its_document_and_the_history_names_them(customer, finance):
    certificate = exemption_certificate_create(
        user=finance,
        customer=customer,
        data=certificate_data(reason_code=" vatex-eu-151-1b ", document=pdf("Scan 2026.PDF")),
        reason="Received from the customer's procurement",
    )

    certificate.refresh_from_db()
    assert (certificate.customer, certificate.reason_code, certificate.created_by) == (
        customer,
        "VATEX-EU-151-1B",
        finance,
    )
    assert certificate.document.name.startswith(f"exemption_certificates/{customer.public_id}/")
    assert certificate.document.name.endswith(".pdf") and "Scan" not in certificate.document.name
    record = certificate.history.get()
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "+",
        finance,
        "Received from the customer's procurement",
    )
    entry = AuditEntry.objects.filter(object_public_id=certificate.public_id).get()
    assert (entry.user, entry.reason) == (finance, "Received from the customer's procurement")


def test_a_png_scan_and_an_open_ended_certificate_without_country_are_accepted(customer, finance):
    certificate = exemption_certificate_create(
        user=finance,
        customer=customer,
        data=certificate_data(
            valid_to=None, country="", document=SimpleUploadedFile("scan.png", png_bytes(), "image/png")
        ),
    )
    assert (certificate.valid_to, str(certificate.country), bool(certificate.document)) == (None, "", True)
    assert certificate.reason_text == "Supply to an international body"


def test_admin_may_record_certificates(customer, admin_user):
    certificate = exemption_certificate_create(user=admin_user, customer=customer, data=certificate_data())
    assert certificate.pk and certificate.created_by == admin_user


# --- services: every guard ----------------------------------------------------------------------------


def refused(user, customer, **overrides) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        exemption_certificate_create(user=user, customer=customer, data=certificate_data(**overrides))
    assert not ExemptionCertificate.objects.exists()
    return caught.value


def test_end_before_start_is_refused_under_valid_to(customer, finance):
    error = refused(finance, customer, valid_from=dt.date(2026, 6, 1), valid_to=dt.date(2026, 5, 31))
    assert error.errors == {"valid_to": ["The last day of validity (2026-05-31) is before the first (2026-06-01)."]}
    assert error.message.startswith("The exemption certificate was not saved.")


def test_missing_start_reference_and_code_are_each_named(customer, finance):
    error = refused(finance, customer, valid_from=None, reference="  ", reason_code="")
    assert error.errors == {
        "reference": ["Enter the certificate's number or reference."],
        "reason_code": ["Choose the VATEX exemption reason code the certificate grants."],
        "valid_from": ["Enter the first day the certificate is valid."],
    }


def test_unknown_reason_code_is_refused(customer, finance):
    error = refused(finance, customer, reason_code="VATEX-EU-999")
    assert error.errors == {"reason_code": ["'VATEX-EU-999' is not a VATEX exemption reason code."]}


def test_a_code_the_engine_decides_is_not_a_certificates_code(customer, finance):
    error = refused(finance, customer, reason_code="VATEX-EU-AE")
    assert "decided by the tax engine" in error.errors["reason_code"][0]


def test_unknown_country_is_refused(customer, finance):
    error = refused(finance, customer, country="XX")
    assert error.errors == {"country": ["'XX' is not an ISO 3166 country code (e.g. DE, FR, GB)."]}


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("certificate.txt", b"hello", "text/plain"),
            "The document must be a PDF, JPEG or PNG file (.pdf, .jpg, .jpeg or .png); 'certificate.txt' is not.",
        ),
        (
            SimpleUploadedFile("certificate.svg", b"<svg onload='x()'/>", "image/svg+xml"),
            "The document must be a PDF, JPEG or PNG file (.pdf, .jpg, .jpeg or .png); 'certificate.svg' is not.",
        ),
        (
            SimpleUploadedFile("certificate.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"),
            "'certificate.pdf' is named as a PDF file but its content is not a PDF, JPEG or PNG file.",
        ),
        (
            SimpleUploadedFile("certificate.pdf", png_bytes(), "application/pdf"),
            "'certificate.pdf' is named as a PDF file but its content is a PNG file.",
        ),
        (
            SimpleUploadedFile("certificate.png", PDF_BYTES, "application/pdf"),
            "'certificate.png' was sent as application/pdf, which is not a PNG file.",
        ),
        (
            SimpleUploadedFile("certificate.jpg", png_bytes(), "image/jpeg"),
            "'certificate.jpg' is named as a JPEG file but its content is a PNG file.",
        ),
    ],
    ids=["text", "svg", "not-a-pdf", "png-named-pdf", "declared-type-disagrees", "png-named-jpeg"],
)
def test_document_of_the_wrong_type_is_refused(customer, finance, upload, message):
    assert refused(finance, customer, document=upload).errors == {"document": [message]}


def test_document_over_5_mb_is_refused(customer, finance):
    big = pdf(content=PDF_BYTES + b"0" * (5 * 1024 * 1024))
    assert refused(finance, customer, document=big).errors == {
        "document": ["The document is 5.0 MB; the limit is 5 MB."]
    }


def test_document_of_exactly_5_mb_is_accepted(customer, finance):
    exact = pdf(content=PDF_BYTES + b"0" * (5 * 1024 * 1024 - len(PDF_BYTES)))
    assert exemption_certificate_create(user=finance, customer=customer, data=certificate_data(document=exact)).pk


def test_octet_stream_is_judged_by_its_content(customer, finance):
    upload = pdf(content_type="application/octet-stream")
    assert exemption_certificate_create(user=finance, customer=customer, data=certificate_data(document=upload)).pk


@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.EXECUTIVE, Role.CONSULTANT])
def test_roles_other_than_finance_and_admin_are_refused(users, customer, role):
    with pytest.raises(NotPermitted, match=r"Only finance and admins add tax exemption certificates\."):
        exemption_certificate_create(user=users[role], customer=customer, data=certificate_data())
    assert not ExemptionCertificate.objects.exists()


def test_the_account_owner_is_refused_too(customer, sales):
    assert customer.owner == sales
    with pytest.raises(NotPermitted):
        exemption_certificate_create(user=sales, customer=customer, data=certificate_data())


def test_auditor_changes_nothing_even_with_finance_role(customer, make_user):
    both = make_user("finaud", Role.FINANCE, Role.AUDITOR)
    with pytest.raises(NotPermitted, match="Auditors"):
        exemption_certificate_create(user=both, customer=customer, data=certificate_data())


def test_the_database_refuses_an_end_before_the_start(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        ExemptionCertificate.objects.create(
            customer=customer,
            reference="X",
            reason_code="VATEX-EU-132",
            valid_from=dt.date(2026, 2, 1),
            valid_to=dt.date(2026, 1, 31),
        )


# --- services: update and delete -------------------------------------------------------------------------


def test_update_changes_only_what_is_given_and_records_the_reason(on_file, finance):
    stored_document = on_file.document.name
    updated = exemption_certificate_update(
        user=finance,
        certificate=on_file,
        data={"valid_to": TODAY + dt.timedelta(days=700), "reason": ""},
        reason="Renewed",
    )

    updated.refresh_from_db()
    assert updated.valid_to == TODAY + dt.timedelta(days=700)
    assert updated.reason_text == "Exempt based on article 151, section 1 (b) of Council Directive 2006/112/EC"
    assert (updated.reference, updated.document.name) == ("BZSt-IO-2026-0147", stored_document)
    latest = updated.history.first()
    assert (latest.history_type, latest.history_user, latest.history_change_reason) == ("~", finance, "Renewed")


def test_update_without_a_change_writes_no_history(on_file, finance):
    exemption_certificate_update(
        user=finance, certificate=on_file, data={"reference": on_file.reference, "document": on_file.document}
    )
    assert on_file.history.count() == 1


def test_update_replaces_and_removes_the_document(on_file, finance):
    scan = SimpleUploadedFile("scan.png", png_bytes(), "image/png")
    replaced = exemption_certificate_update(user=finance, certificate=on_file, data={"document": scan})
    assert replaced.document.name.endswith(".png")
    removed = exemption_certificate_update(user=finance, certificate=replaced, data={"document": ""})
    removed.refresh_from_db()
    assert not removed.document and removed.history.count() == 3


def test_update_refuses_dates_out_of_order_and_keeps_the_row(on_file, finance):
    with pytest.raises(ValidationFailed) as caught:
        exemption_certificate_update(
            user=finance, certificate=on_file, data={"valid_to": on_file.valid_from - dt.timedelta(days=1)}
        )
    assert list(caught.value.errors) == ["valid_to"]
    on_file.refresh_from_db()
    assert on_file.valid_to == TODAY + dt.timedelta(days=335)


def test_sales_cannot_update_or_delete(on_file, sales):
    with pytest.raises(NotPermitted, match="change"):
        exemption_certificate_update(user=sales, certificate=on_file, data={"reference": "X"})
    with pytest.raises(NotPermitted, match="delete"):
        exemption_certificate_delete(user=sales, certificate=on_file)
    assert ExemptionCertificate.objects.filter(pk=on_file.pk, reference="BZSt-IO-2026-0147").exists()


def test_delete_keeps_the_certificate_in_the_history(on_file, finance):
    public_id = on_file.public_id
    exemption_certificate_delete(user=finance, certificate=on_file, reason="Recorded on the wrong customer")

    assert not ExemptionCertificate.objects.exists()
    record = ExemptionCertificate.history.filter(public_id=public_id).first()
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "-",
        finance,
        "Recorded on the wrong customer",
    )


# --- pages --------------------------------------------------------------------------------------------


def test_finance_adds_a_certificate_with_a_scan_on_the_page(client, customer, finance):
    page = signed_in(client, finance).get(create_url(customer))
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text

    response = client.post(create_url(customer), form_post(document=pdf(), change_reason="From procurement"))

    assert response.status_code == 302 and response["Location"] == detail_url(customer)
    certificate = ExemptionCertificate.objects.get()
    assert (certificate.reference, certificate.valid_to, bool(certificate.document)) == (
        "BZSt-IO-2026-0147",
        None,
        True,
    )
    assert certificate.history.get().history_user == finance
    assert messages_of(response) == ["Exemption certificate BZSt-IO-2026-0147 was added."]


def test_page_shows_the_services_refusal_next_to_the_input(client, customer, finance):
    response = signed_in(client, finance).post(
        create_url(customer),
        form_post(valid_to=(TODAY - dt.timedelta(days=31)).isoformat(), document=pdf("scan.txt")),
    )

    assert response.status_code == 400
    form = response.context["form"]
    assert "before the first" in form.errors["valid_to"][0]
    assert "'scan.txt' is not" in form.errors["document"][0]
    assert not ExemptionCertificate.objects.exists()


def test_page_refuses_unparseable_input_with_400(client, customer, finance):
    response = signed_in(client, finance).post(create_url(customer), form_post(valid_from="31/12/2026"))
    assert response.status_code == 400 and "valid_from" in response.context["form"].errors


def test_finance_edits_a_certificate_with_a_reason(client, on_file, finance):
    page = signed_in(client, finance).get(edit_url(on_file))
    assert page.status_code == 200
    assert page.context["form"]["reference"].value() == "BZSt-IO-2026-0147"
    assert "remove_document" in page.context["form"].fields and page.context["can_delete"]

    data = form_post(reference="BZSt-IO-2026-0148", valid_to="", change_reason="Renewed, open-ended now")
    response = client.post(edit_url(on_file), data)

    assert response.status_code == 302
    on_file.refresh_from_db()
    assert (on_file.reference, on_file.valid_to, bool(on_file.document)) == ("BZSt-IO-2026-0148", None, True)
    assert on_file.history.first().history_change_reason == "Renewed, open-ended now"


def test_finance_removes_the_scan_on_the_edit_page(client, on_file, finance):
    data = form_post(
        reference=on_file.reference, valid_to=on_file.valid_to.isoformat(), country="DE", remove_document="on"
    )
    data["reason"] = on_file.reason
    data["note"] = on_file.note
    assert signed_in(client, finance).post(edit_url(on_file), data).status_code == 302
    on_file.refresh_from_db()
    assert not on_file.document


def test_finance_deletes_a_certificate_by_post_only(client, on_file, finance):
    signed_in(client, finance)
    assert client.get(delete_url(on_file)).status_code == 405

    response = client.post(delete_url(on_file), {"reason": "Duplicate"})

    assert response.status_code == 302 and response["Location"] == detail_url(on_file.customer)
    assert not ExemptionCertificate.objects.exists()
    assert ExemptionCertificate.history.latest("history_id").history_change_reason == "Duplicate"
    assert messages_of(response) == ["Exemption certificate BZSt-IO-2026-0147 was removed."]


def test_detail_card_for_finance_has_the_actions_and_the_badge(client, on_file, finance):
    response = signed_in(client, finance).get(detail_url(on_file.customer))

    assert response.status_code == 200
    text = response.text
    assert "Tax exemption certificates" in text and "BZSt-IO-2026-0147" in text
    assert 'badge text-bg-success">valid<' in text
    assert create_url(on_file.customer) in text and edit_url(on_file) in text and delete_url(on_file) in text
    assert document_url(on_file) in text and "Supply to an international body" in text


def test_sales_sees_the_card_but_no_buttons(client, on_file, sales):
    response = signed_in(client, sales).get(detail_url(on_file.customer))

    assert response.status_code == 200
    assert "BZSt-IO-2026-0147" in response.text and document_url(on_file) in response.text
    for url in (create_url(on_file.customer), edit_url(on_file), delete_url(on_file)):
        assert url not in response.text
    assert response.context["certificate_actions"] == frozenset()


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "badge"),
    [
        (-400, -1, 'badge text-bg-secondary">expired<'),
        (1, None, 'badge text-bg-info">not yet valid<'),
        (0, 0, 'badge text-bg-success">valid<'),
    ],
)
def test_badge_is_relative_to_today(client, customer, finance, valid_from, valid_to, badge):
    exemption_certificate_create(
        user=finance,
        customer=customer,
        data=certificate_data(
            valid_from=TODAY + dt.timedelta(days=valid_from),
            valid_to=None if valid_to is None else TODAY + dt.timedelta(days=valid_to),
        ),
    )
    assert badge in signed_in(client, finance).get(detail_url(customer)).text


def test_empty_state_tells_each_role_what_to_do(client, customer, finance, sales):
    assert "Add one when the customer is exempt" in signed_in(client, finance).get(detail_url(customer)).text
    text = signed_in(client, sales).get(detail_url(customer)).text
    assert "No exemption certificates" in text and "Finance records them" in text


def test_auditor_sees_but_cannot_post(client, on_file, auditor):
    signed_in(client, auditor)
    assert "BZSt-IO-2026-0147" in client.get(detail_url(on_file.customer)).text
    assert client.get(create_url(on_file.customer)).status_code == 403
    assert client.post(create_url(on_file.customer), form_post(reference="AUD-1")).status_code == 403
    assert client.post(edit_url(on_file), form_post(reference="AUD-2")).status_code == 403
    assert client.post(delete_url(on_file)).status_code == 403
    assert list(ExemptionCertificate.objects.values_list("reference", flat=True)) == ["BZSt-IO-2026-0147"]


def test_sales_cannot_post_even_for_their_own_customer(client, on_file, sales):
    signed_in(client, sales)
    assert client.post(create_url(on_file.customer), form_post(reference="S-1")).status_code == 403
    assert client.post(delete_url(on_file)).status_code == 403
    assert ExemptionCertificate.objects.count() == 1


def test_another_reps_customer_is_404_where_the_customer_is_out_of_scope(client, on_file, make_user):
    pm = make_user("pm-elsewhere", Role.PROJECT_MANAGER)
    signed_in(client, pm)
    assert client.get(detail_url(on_file.customer)).status_code == 404
    assert client.get(document_url(on_file)).status_code == 404


@pytest.mark.parametrize("url", ["edit", "delete", "document"])
def test_unknown_certificate_is_404(client, finance, url):
    path = reverse(f"customers:exemption-certificate-{url}", args=[uuid.uuid4()])
    response = signed_in(client, finance)
    response = client.post(path) if url == "delete" else client.get(path)
    assert response.status_code == 404


def test_unknown_customer_is_404_on_the_create_page(client, finance):
    assert signed_in(client, finance).get(create_url(Customer(public_id=uuid.uuid4()))).status_code == 404


def test_document_is_served_as_an_attachment_to_those_who_see_the_certificate(client, on_file, sales, finance):
    response = signed_in(client, sales).get(document_url(on_file))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert response["Content-Disposition"] == 'attachment; filename="bzst-io-2026-0147.pdf"'
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_certificate_without_document_has_no_download(client, customer, finance):
    certificate = exemption_certificate_create(user=finance, customer=customer, data=certificate_data())
    assert signed_in(client, finance).get(document_url(certificate)).status_code == 404


def test_consultant_cannot_download(client, on_file, users):
    assert signed_in(client, users[Role.CONSULTANT]).get(document_url(on_file)).status_code == 403


def test_detail_page_queries_do_not_grow_with_certificates(client, customer, finance):
    exemption_certificate_create(user=finance, customer=customer, data=certificate_data())
    signed_in(client, finance)
    client.get(detail_url(customer))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(detail_url(customer)).status_code == 200
        return len(captured)

    few = queries()
    for index in range(8):
        exemption_certificate_create(user=finance, customer=customer, data=certificate_data(reference=f"C-{index}"))
    assert queries() == few


# --- API ----------------------------------------------------------------------------------------------


def test_api_shows_certificates_read_only_in_the_customer(api_client, on_file, finance):
    api_client.force_login(finance)
    url = reverse("api:customer-detail", kwargs={"id": on_file.customer.public_id})

    body = api_client.get(url).json()

    assert body["exemption_certificates"] == [
        {
            "id": str(on_file.public_id),
            "reference": "BZSt-IO-2026-0147",
            "reason_code": "VATEX-EU-151-1B",
            "reason": "Supply to an international body",
            "reason_text": "Supply to an international body",
            "country": "DE",
            "valid_from": on_file.valid_from.isoformat(),
            "valid_to": on_file.valid_to.isoformat(),
            "has_document": True,
        }
    ]
    changed = api_client.patch(url, {"exemption_certificates": []}, format="json")
    assert changed.status_code == 200 and len(changed.json()["exemption_certificates"]) == 1
    assert ExemptionCertificate.objects.count() == 1


def test_api_customer_list_queries_do_not_grow_with_certificates(api_client, sales, finance):
    api_client.force_login(sales)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = api_client.get(reverse("api:customer-list"), {"page_size": 100})
        assert response.status_code == 200
        return len(captured)

    make_customer(sales, "First Ltd")
    few = queries()
    for index in range(6):
        customer = make_customer(sales, f"Customer {index} Ltd")
        for year in range(2):
            exemption_certificate_create(
                user=finance, customer=customer, data=certificate_data(reference=f"C-{index}-{year}")
            )
    assert queries() == few


# --- admin and permissions ------------------------------------------------------------------------------


def test_admin_customer_page_has_the_certificate_inline(client, on_file, admin_user):
    path = reverse("admin:customers_customer_change", args=[on_file.customer.pk])
    response = signed_in(client, admin_user).get(path)
    assert response.status_code == 200
    assert "exemption_certificates-TOTAL_FORMS" in response.text and "BZSt-IO-2026-0147" in response.text


def test_admin_form_keeps_the_document_rule(customer):
    form = ExemptionCertificateAdminForm(
        data={"reference": "A-1", "reason_code": "VATEX-EU-151-1B", "valid_from": "2026-01-01"},
        files={"document": SimpleUploadedFile("scan.txt", b"hello", "text/plain")},
        instance=ExemptionCertificate(customer=customer),
    )
    assert not form.is_valid()
    assert "'scan.txt' is not" in form.errors["document"][0]


def test_roles_hold_the_certificate_permissions_of_the_matrix():
    def perms(role: str) -> set[str]:
        return set(
            Group.objects.get(name=role)
            .permissions.filter(codename__endswith="exemptioncertificate")
            .values_list("codename", flat=True)
        )

    crud = {f"{verb}_exemptioncertificate" for verb in ("view", "add", "change", "delete")}
    assert perms(Role.FINANCE) == crud
    for role in (Role.SALES, Role.PROJECT_MANAGER, Role.EXECUTIVE):
        assert perms(role) == {"view_exemptioncertificate"}, role
    assert perms(Role.CONSULTANT) == set()
    assert perms(Role.AUDITOR) == {"view_exemptioncertificate", "view_historicalexemptioncertificate"}
    assert perms(Role.ADMIN) >= crud | {"view_historicalexemptioncertificate"}
    # The earlier rows are intact (0003's additions included).
    sales = Group.objects.get(name=Role.SALES).permissions.values_list("codename", flat=True)
    assert {"add_customer", "view_legalentityregistration", "view_bankaccount"} <= set(sales)
