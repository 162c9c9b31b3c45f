"""The billing pages through Django's test client: invoice runs (the list with its start form, a run's
progress polled by htmx, its invoices and its exceptions by reason, retrying) and invoices (the list with
its filters and constant queries, one invoice as it prints, and its transitions — every refusal of a
service shown on the page with its status code, never a 500). Who sees what follows ROLES.md: finance all,
project managers the invoices of their own projects (404 for the others), auditors read-only, sales and
consultants nothing (403).

The transitions run against the real ``billing.issuing`` and ``billing.services``; one test injects a
refusal into ``billing.issuing`` (monkeypatch) to reach the branch where a service's message belongs to
the reason field.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backbone.errors import ValidationFailed
from billing.forms import last_month
from billing.models import Invoice, InvoiceItem, InvoiceRun, RunException
from projects import timesheets as ts
from projects.models import TimeEntry
from tests.customers.factories import CustomerFactory, LegalEntityFactory
from tests.projects.factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
INVOICES_URL = reverse("billing:invoice-list")
RUNS_URL = reverse("billing:run-list")
START_URL = reverse("billing:run-start")


# --- helpers ------------------------------------------------------------------------------------------------


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    """The page's visible text, tags stripped and whitespace collapsed, for assertions on wording."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def field_error(response, html_name: str) -> str:
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'") if match else ""


def invoice_url(invoice, name: str = "invoice-detail") -> str:
    return reverse(f"billing:{name}", kwargs={"public_id": invoice.public_id})


def run_url(run, name: str = "run-detail") -> str:
    return reverse(f"billing:{name}", kwargs={"public_id": run.public_id})


def approve_time(project, person, *, days: int = 2) -> list[TimeEntry]:
    """``days`` approved 8-hour days of ``person`` (Senior consultant, 150/h) on ``project`` from 2026-03-09."""
    entries = TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=person,
                project=project,
                date=dt.date(2026, 3, 9) + dt.timedelta(days=offset),
                hours=Decimal("8"),
                labour_category="Senior consultant",
                description=f"Work, day {offset + 1}",
                status="submitted",
            )
            for offset in range(days)
        ]
    )
    ts.time_entries_approve(actor=project.project_manager, entries=entries)
    return entries


def make_run(legal_entity, **fields) -> InvoiceRun:
    defaults = {
        "number": f"RUN-{InvoiceRun.objects.count() + 1:06d}",
        "period_start": dt.date(2026, 3, 1),
        "period_end": dt.date(2026, 3, 31),
    }
    return InvoiceRun.objects.create(legal_entity=legal_entity, **{**defaults, **fields})


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def draft(team, approved_time, make_draft):
    """The T&M project's draft: five lines of 8 h Senior consultant at 150, one item each (created by finance)."""
    return make_draft(team)


@pytest.fixture
def other_project(customer, legal_entity, win, people):
    """A second T&M project of the customer, managed by the second project manager, with approved time."""
    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Other work")
    tm_quote(deal)
    project = win(deal, project_manager=people["pm2"])
    approve_time(project, people["consultant"])
    return project


@pytest.fixture
def others_draft(other_project, make_draft):
    return make_draft(other_project)


@pytest.fixture
def approved(draft, people):
    """The draft, approved by an executive (not bound by a limit)."""
    from billing import issuing

    return issuing.invoice_approve(actor=people["executive"], invoice=draft)


@pytest.fixture
def finished_run(legal_entity, people, draft, team):
    """A completed run that made the draft and left three exceptions of two reasons."""
    run = make_run(
        legal_entity,
        status=InvoiceRun.Status.COMPLETED,
        started_by=people["finance"],
        projects_total=2,
        projects_done=2,
        invoices_created=1,
        items_billed=5,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    Invoice.objects.filter(pk=draft.pk).update(run=run)
    RunException.objects.bulk_create(
        [
            RunException(
                run=run,
                project=team,
                customer=team.customer,
                reason=RunException.Reason.RATE_MISSING,
                message="No rate for Data scientist on 2026-03-12.",
                item_kind="time",
                item_date=dt.date(2026, 3, 12),
                amount=None,
            ),
            RunException(
                run=run,
                project=team,
                reason=RunException.Reason.RATE_MISSING,
                message="No rate for Data scientist on 2026-03-13.",
                item_kind="time",
                item_date=dt.date(2026, 3, 13),
            ),
            RunException(
                run=run,
                project=team,
                reason=RunException.Reason.PO_MISSING,
                message="PRJ requires a purchase order number.",
                item_kind="expense",
                item_date=dt.date(2026, 3, 20),
                amount=Decimal("84.50"),
            ),
        ]
    )
    return run


# --- the invoice list ------------------------------------------------------------------------------------------


def test_invoice_list_shows_finance_every_invoice_with_status_customer_and_totals(client, people, draft, others_draft):
    response = signed_in(client, people["finance"]).get(INVOICES_URL)
    assert response.status_code == 200
    assert list(response.context["invoices"]) == [others_draft, draft]
    text = text_of(response)
    assert "2 invoices" in text
    assert f"Draft {str(draft.public_id)[:8]}" in text
    assert draft.customer.display_name in text and draft.project.number in text
    assert "€6,000.00" in text  # the draft's net: 5 days of 8 h at 150
    assert invoice_url(draft) in response.content.decode()


def test_invoice_list_shows_a_project_manager_only_the_invoices_of_their_projects(client, people, draft, others_draft):
    response = signed_in(client, people["pm"]).get(INVOICES_URL)
    assert response.status_code == 200
    assert list(response.context["invoices"]) == [draft]
    assert "Run" not in [field.label for field in response.context["filter_form"]]  # PMs see no runs


@pytest.mark.parametrize("who", ["sales", "consultant"])
def test_invoice_pages_refuse_sales_and_consultants(client, people, draft, who):
    signed_in(client, people[who])
    assert client.get(INVOICES_URL).status_code == 403
    assert client.get(invoice_url(draft)).status_code == 403


def test_invoice_pages_send_a_signed_out_visitor_to_sign_in(client, draft):
    response = client.get(invoice_url(draft))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.fixture
def filter_world(people, draft, others_draft, legal_entity):
    """Beside the two drafts: an issued invoice of another customer and legal entity, made by a run."""
    entity = LegalEntityFactory(legal_name="Throughline Nordic AB", short_name="Nordic AB", invoice_prefix="SE")
    customer = CustomerFactory(owner=people["sales"], display_name="Fjord Logistics")
    run = make_run(entity, status=InvoiceRun.Status.COMPLETED)
    issued = Invoice.objects.create(
        legal_entity=entity,
        customer=customer,
        run=run,
        currency="EUR",
        status=Invoice.Status.ISSUED,
        number="SE-2026-000007",
        fiscal_year=2026,
        sequence=7,
        issue_date=dt.date(2026, 4, 2),
        due_date=dt.date(2026, 5, 2),
        net_total=Decimal("100.00"),
        tax_total=Decimal("25.00"),
        gross_total=Decimal("125.00"),
    )
    return {"draft": draft, "others_draft": others_draft, "issued": issued, "run": run}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda w: {"status": "issued"}, ["issued"]),
        (lambda w: {"status": "draft"}, ["others_draft", "draft"]),
        (lambda w: {"customer": w["issued"].customer.public_id}, ["issued"]),
        (lambda w: {"customer": w["draft"].customer.public_id}, ["others_draft", "draft"]),
        (lambda w: {"legal_entity": w["issued"].legal_entity.public_id}, ["issued"]),
        (lambda w: {"project": w["draft"].project.public_id}, ["draft"]),
        (lambda w: {"run": w["run"].public_id}, ["issued"]),
        (lambda w: {"q": "000007"}, ["issued"]),
        (lambda w: {"q": "se-2026"}, ["issued"]),
        (lambda w: {"q": "NOPE-1"}, []),
        (lambda w: {"status": "draft", "project": w["others_draft"].project.public_id}, ["others_draft"]),
    ],
    ids=[
        "status-issued",
        "status-draft",
        "customer-other",
        "customer-own",
        "legal-entity",
        "project",
        "run",
        "number",
        "number-case-insensitive",
        "number-none",
        "combined",
    ],
)
def test_invoice_list_filters(client, people, filter_world, query, expected):
    response = signed_in(client, people["finance"]).get(INVOICES_URL, query(filter_world))
    assert response.status_code == 200
    assert list(response.context["invoices"]) == [filter_world[name] for name in expected]
    if not expected:
        assert "No invoices match these filters" in text_of(response)


def test_invoice_list_answers_htmx_with_the_results_alone(client, people, filter_world):
    response = signed_in(client, people["finance"]).get(INVOICES_URL, {"status": "issued"}, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "SE-2026-000007" in html
    assert "<html" not in html and 'id="invoice-filter"' not in html
    assert "HX-Request" in response["Vary"]


def test_invoice_list_empty_states_say_where_invoices_come_from(client, people):
    text = text_of(signed_in(client, people["finance"]).get(INVOICES_URL))
    assert "No invoices yet" in text and "invoice runs" in text
    assert reverse("billing:run-list") in signed_in(client, people["finance"]).get(INVOICES_URL).content.decode()
    text = text_of(signed_in(client, people["pm"]).get(INVOICES_URL))
    assert "No invoices to show" in text and "projects they manage" in text


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_invoice_list_queries_do_not_grow_with_rows(
    client, people, draft, legal_entity, django_assert_max_num_queries, headers
):
    signed_in(client, people["finance"])
    client.get(INVOICES_URL)  # the session and permission caches warm up alike for both counts
    with CaptureQueriesContext(connection) as one:
        assert client.get(INVOICES_URL, headers=headers).status_code == 200
    runs = [make_run(legal_entity) for _ in range(3)]
    customers = [CustomerFactory(owner=people["sales"]) for _ in range(3)]
    Invoice.objects.bulk_create(
        [
            Invoice(
                legal_entity=legal_entity,
                customer=customers[index % 3],
                project=draft.project,
                run=runs[index % 3],
                currency="EUR",
                gross_total=Decimal(index),
            )
            for index in range(12)
        ]
    )
    with django_assert_max_num_queries(len(one)):
        response = client.get(INVOICES_URL, headers=headers)
    assert len(response.context["invoices"]) == 13


# --- one invoice ----------------------------------------------------------------------------------------------


def test_invoice_detail_shows_the_invoice_as_it_will_print(client, people, draft):
    response = signed_in(client, people["finance"]).get(invoice_url(draft))
    assert response.status_code == 200
    text = text_of(response)
    entity, customer = draft.legal_entity, draft.customer
    # Seller and buyer from the master data (a draft), with the customer's billing address.
    assert entity.legal_name in text and customer.legal_name in text
    assert customer.addresses.get(kind="billing").city in text
    assert "from the current master data" in text
    # Lines: quantity and unit, unit price, net, tax category and rate.
    assert "Data platform build, day 1" in text
    assert "8 h" in text and "€150.00" in text and "€1,200.00" in text
    line = draft.lines.first()
    assert f"{line.tax_category} " in text
    # Breakdown and totals.
    assert "VAT breakdown" in text
    assert "€6,000.00" in text and f"€{draft.gross_total:,.2f}" in text
    # The underlying items, collapsed, and the approvals.
    assert "Detail appendix: the underlying items (5)" in text
    assert "Drafted" in text and "Not yet" in text
    # Finance may approve and discard a draft.
    html = response.content.decode()
    assert invoice_url(draft, "invoice-approve") in html
    assert invoice_url(draft, "invoice-discard") in html
    assert invoice_url(draft, "invoice-issue") not in html


def test_invoice_detail_is_read_only_for_auditors(client, people, draft, approved):
    response = signed_in(client, people["auditor"]).get(invoice_url(draft))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("invoice-approve", "invoice-issue", "invoice-return-to-draft", "invoice-discard"):
        assert invoice_url(draft, name) not in html, name
    assert 'method="post"' not in html.split('id="main"')[1]  # no form that changes anything


def test_invoice_detail_offers_finance_issue_return_and_discard_once_approved(client, people, approved):
    html = signed_in(client, people["finance"]).get(invoice_url(approved)).content.decode()
    for name in ("invoice-issue", "invoice-return-to-draft", "invoice-discard"):
        assert invoice_url(approved, name) in html, name
    assert invoice_url(approved, "invoice-approve") not in html


def test_invoice_detail_shows_a_project_manager_their_drafts_and_hides_the_others(client, people, draft, others_draft):
    signed_in(client, people["pm"])
    response = client.get(invoice_url(draft))
    assert response.status_code == 200
    assert invoice_url(draft, "invoice-approve") not in response.content.decode()  # review only
    assert client.get(invoice_url(others_draft)).status_code == 404


def test_an_issued_invoice_shows_the_parties_frozen_at_issue(client, people, draft, legal_entity, customer):
    issued = Invoice.objects.create(
        legal_entity=legal_entity,
        customer=customer,
        currency="EUR",
        status=Invoice.Status.ISSUED,
        number="DE-2026-000042",
        fiscal_year=2026,
        sequence=42,
        issue_date=dt.date(2026, 4, 1),
        due_date=dt.date(2026, 5, 1),
        seller={
            "legal_name": "Seller As Issued GmbH",
            "address_lines": ["Alte Straße 9", "10115 Berlin", "Germany"],
            "registrations": [{"kind": "vat", "number": "DE123456789"}],
            "bank_account": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
        },
        buyer={"legal_name": "Buyer As Issued Ltd", "address_lines": ["1 Old Road", "Dublin", "Ireland"]},
        legal_notes=["Reverse charge: the recipient accounts for the VAT (Art. 196 Directive 2006/112/EC)."],
        tax_breakdown=[
            {
                "category": "AE",
                "rate": "0",
                "taxable_amount": "1000.00",
                "tax_amount": "0.00",
                "exemption_reason_code": "VATEX-EU-AE",
                "exemption_reason": "Reverse charge",
            }
        ],
        net_total=Decimal("1000.00"),
        gross_total=Decimal("1000.00"),
    )
    response = signed_in(client, people["finance"]).get(invoice_url(issued))
    text = text_of(response)
    assert "Seller As Issued GmbH" in text and "Buyer As Issued Ltd" in text
    assert legal_entity.legal_name not in text.split("Bill to")[0].split("From")[-1]  # not today's name
    assert "DE89 3704 0044 0532 0130 00" in text
    assert "Art. 196" in text and "VATEX-EU-AE" in text
    assert "DE-2026-000042" in text and "2026-05-01" in text
    assert not response.context["actions"]


def test_invoice_detail_queries_do_not_grow_with_lines_and_items(
    client, people, draft, other_project, make_draft, django_assert_max_num_queries
):
    small = make_draft(other_project)  # two lines
    signed_in(client, people["finance"])
    client.get(invoice_url(small))
    with CaptureQueriesContext(connection) as two_lines:
        assert client.get(invoice_url(small)).status_code == 200
    with django_assert_max_num_queries(len(two_lines)):
        assert client.get(invoice_url(draft)).status_code == 200  # five lines


# --- transitions ------------------------------------------------------------------------------------------------


def test_approving_within_no_limit_records_the_approval_and_says_so(client, people, draft):
    response = signed_in(client, people["executive"]).post(invoice_url(draft, "invoice-approve"))
    assert response.status_code == 302 and response["Location"] == invoice_url(draft)
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.APPROVED and draft.approved_by == people["executive"]
    assert any("approved and can be issued" in message for message in flashed(response))


def test_a_refused_approval_is_shown_on_the_page_with_its_status_code(client, people, draft):
    # Finance created the draft and has no approval limit: the service refuses (maker-checker).
    response = signed_in(client, people["finance"]).post(invoice_url(draft, "invoice-approve"))
    assert response.status_code == 403
    text = text_of(response)
    assert "You created this draft" in text
    assert "HTTP 403 Forbidden" in text and "Nothing was changed" in text
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT and draft.approved_by is None


def test_issuing_a_draft_is_refused_with_409(client, people, draft):
    response = signed_in(client, people["finance"]).post(invoice_url(draft, "invoice-issue"))
    assert response.status_code == 409
    assert "not approved yet" in text_of(response) and "HTTP 409 Conflict" in text_of(response)


def test_issuing_without_a_bank_account_names_what_is_missing(client, people, approved):
    response = signed_in(client, people["finance"]).post(invoice_url(approved, "invoice-issue"))
    assert response.status_code == 400
    text = text_of(response)
    assert "cannot be issued" in text and "no bank account" in text and "HTTP 400" in text
    approved.refresh_from_db()
    assert approved.status == Invoice.Status.APPROVED and approved.number == ""


def test_issuing_an_approved_invoice_takes_its_number(client, people, approved, bank_account):
    response = signed_in(client, people["finance"]).post(invoice_url(approved, "invoice-issue"))
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.status == Invoice.Status.ISSUED and approved.number
    assert any(approved.number in message for message in flashed(response))
    page = text_of(client.get(invoice_url(approved)))
    assert approved.number in page and bank_account.bic in page  # the frozen seller carries the bank account


def test_discarding_needs_a_reason(client, people, draft):
    response = signed_in(client, people["finance"]).post(invoice_url(draft, "invoice-discard"), {"discard-reason": " "})
    assert response.status_code == 400
    assert "This field is required" in field_error(response, "discard-reason")
    assert 'class="collapse show mb-3" id="discard-panel"' in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT


def test_discarding_with_a_reason_frees_the_items(client, people, draft):
    response = signed_in(client, people["finance"]).post(
        invoice_url(draft, "invoice-discard"), {"discard-reason": "Customer asked for one invoice per quarter."}
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DISCARDED
    assert not InvoiceItem.objects.filter(invoice=draft, live=True).exists()
    assert "Customer asked for one invoice per quarter." in text_of(client.get(invoice_url(draft)))


def test_discarding_a_discarded_invoice_is_refused_with_409(client, people, draft):
    signed_in(client, people["finance"])
    client.post(invoice_url(draft, "invoice-discard"), {"discard-reason": "Duplicate."})
    response = client.post(invoice_url(draft, "invoice-discard"), {"discard-reason": "Again."})
    assert response.status_code == 409
    assert "was discarded; it cannot be discarded" in text_of(response)


def test_returning_to_draft_with_a_reason_withdraws_the_approval(client, people, approved):
    response = signed_in(client, people["finance"]).post(
        invoice_url(approved, "invoice-return-to-draft"), {"return_to_draft-reason": "Wrong PO number."}
    )
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.status == Invoice.Status.DRAFT and approved.approved_by is None


def test_returning_a_plain_draft_to_draft_is_refused_with_409(client, people, draft):
    response = signed_in(client, people["finance"]).post(
        invoice_url(draft, "invoice-return-to-draft"), {"return_to_draft-reason": "Just because."}
    )
    assert response.status_code == 409
    assert "without approvals already" in text_of(response)


def test_a_service_message_about_the_reason_lands_under_the_reason_field(client, people, approved, monkeypatch):
    from billing import issuing

    def refuse(*, actor, invoice, reason):
        raise ValidationFailed("Say which line is wrong.", field="reason")

    monkeypatch.setattr(issuing, "invoice_return_to_draft", refuse)
    response = signed_in(client, people["finance"]).post(
        invoice_url(approved, "invoice-return-to-draft"), {"return_to_draft-reason": "Wrong."}
    )
    assert response.status_code == 400
    assert "Say which line is wrong." in field_error(response, "return_to_draft-reason")
    assert 'class="collapse show mb-3" id="return-panel"' in response.content.decode()


@pytest.mark.parametrize(
    ("who", "name", "data"),
    [
        ("auditor", "invoice-approve", {}),
        ("auditor", "invoice-discard", {"discard-reason": "x"}),
        ("pm", "invoice-approve", {}),
        ("pm", "invoice-discard", {"discard-reason": "x"}),
        ("executive", "invoice-issue", {}),
        ("executive", "invoice-discard", {"discard-reason": "x"}),
        ("sales", "invoice-approve", {}),
        ("consultant", "invoice-return-to-draft", {"return_to_draft-reason": "x"}),
    ],
)
def test_transitions_refuse_those_without_the_permission(client, people, draft, who, name, data):
    response = signed_in(client, people[who]).post(invoice_url(draft, name), data)
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT and draft.approved_by is None


def test_transitions_answer_get_with_405(client, people, draft):
    assert signed_in(client, people["finance"]).get(invoice_url(draft, "invoice-approve")).status_code == 405


# --- the run list and starting a run -----------------------------------------------------------------------------


def test_run_list_offers_finance_the_start_form_with_last_month_and_active_entities(client, people, legal_entity):
    LegalEntityFactory(legal_name="Dormant Ltd", short_name="Dormant", is_active=False)
    response = signed_in(client, people["finance"]).get(RUNS_URL)
    assert response.status_code == 200
    form = response.context["start_form"]
    start, end = last_month(timezone.localdate())
    assert form["period_start"].value() == start and form["period_end"].value() == end
    assert list(form.fields["legal_entity"].queryset) == [legal_entity]
    assert form["legal_entity"].value() == legal_entity.public_id  # the only active entity, chosen already
    text = text_of(response)
    assert "No invoice runs yet" in text and "Start run" in text and "consolidation preference" in text


@pytest.mark.parametrize("who", ["executive", "auditor"])
def test_run_list_shows_runs_without_the_start_form_to_readers(client, people, finished_run, who):
    response = signed_in(client, people[who]).get(RUNS_URL)
    assert response.status_code == 200
    assert response.context["start_form"] is None
    html = response.content.decode()
    assert START_URL not in html
    assert finished_run.number in html and "Completed" in html


@pytest.mark.parametrize("who", ["pm", "sales", "consultant"])
def test_run_pages_refuse_those_who_do_not_see_runs(client, people, finished_run, who):
    signed_in(client, people[who])
    assert client.get(RUNS_URL).status_code == 403
    assert client.get(run_url(finished_run)).status_code == 403
    assert client.get(run_url(finished_run, "run-progress")).status_code == 403


def test_run_list_shows_status_progress_and_exception_counts(client, people, legal_entity, finished_run):
    make_run(legal_entity, status=InvoiceRun.Status.RUNNING, projects_total=4, projects_done=1)
    response = signed_in(client, people["finance"]).get(RUNS_URL)
    runs = list(response.context["runs"])
    assert runs[1] == finished_run and runs[1].exception_count == 3  # newest first
    html = response.content.decode()
    assert 'aria-valuenow="25"' in html and 'aria-valuenow="100"' in html
    assert "Running" in html


def test_run_list_queries_do_not_grow_with_runs(client, people, legal_entity, django_assert_max_num_queries):
    signed_in(client, people["finance"])
    make_run(legal_entity)
    client.get(RUNS_URL)
    with CaptureQueriesContext(connection) as one:
        assert client.get(RUNS_URL).status_code == 200
    for _ in range(6):
        run = make_run(legal_entity, started_by=people["finance"])
        run.exceptions.create(reason=RunException.Reason.PO_MISSING, message="x")
    with django_assert_max_num_queries(len(one)):
        assert len(client.get(RUNS_URL).context["runs"]) == 7


def test_starting_a_run_queues_it_and_opens_its_page(client, people, legal_entity):
    response = signed_in(client, people["finance"]).post(
        START_URL, {"legal_entity": legal_entity.public_id, "period_start": "2026-03-01", "period_end": "2026-03-31"}
    )
    run = InvoiceRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run_url(run)
    assert (run.status, run.started_by, run.trigger) == (InvoiceRun.Status.QUEUED, people["finance"], "page")
    assert (run.period_start, run.period_end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert any(run.number in message for message in flashed(response))


def test_starting_a_run_with_a_broken_form_changes_nothing(client, people, legal_entity):
    response = signed_in(client, people["finance"]).post(
        START_URL, {"legal_entity": "", "period_start": "2026-03-31", "period_end": "2026-03-01"}
    )
    assert response.status_code == 400
    assert field_error(response, "legal_entity")
    assert "ends before it starts" in field_error(response, "period_end")
    assert not InvoiceRun.objects.exists()


def test_a_run_the_service_refuses_shows_its_message_next_to_the_field(client, people, legal_entity):
    future = timezone.localdate() + dt.timedelta(days=30)
    response = signed_in(client, people["finance"]).post(
        START_URL, {"legal_entity": legal_entity.public_id, "period_start": "2026-03-01", "period_end": future}
    )
    assert response.status_code == 400
    assert "cannot end in the future" in field_error(response, "period_end")
    assert "HTTP 400" in text_of(response)
    assert not InvoiceRun.objects.exists()


def test_a_second_run_while_one_is_busy_is_refused_with_409(client, people, legal_entity):
    busy = make_run(legal_entity, status=InvoiceRun.Status.RUNNING)
    response = signed_in(client, people["finance"]).post(
        START_URL, {"legal_entity": legal_entity.public_id, "period_start": "2026-03-01", "period_end": "2026-03-31"}
    )
    assert response.status_code == 409
    text = text_of(response)
    assert f"{busy.number} of {legal_entity} is still running" in text and "HTTP 409 Conflict" in text
    assert InvoiceRun.objects.count() == 1


@pytest.mark.parametrize(("who", "expected"), [("auditor", 403), ("executive", 403), ("pm", 403), ("finance", 405)])
def test_run_start_is_post_only_and_for_finance(client, people, legal_entity, who, expected):
    signed_in(client, people[who])
    assert client.get(START_URL).status_code == expected
    if who != "finance":
        data = {"legal_entity": legal_entity.public_id, "period_start": "2026-03-01", "period_end": "2026-03-31"}
        assert client.post(START_URL, data).status_code == 403
        assert not InvoiceRun.objects.exists()


# --- one run ------------------------------------------------------------------------------------------------------


def test_a_running_run_polls_its_progress_every_second(client, people, legal_entity):
    run = make_run(legal_entity, status=InvoiceRun.Status.RUNNING, projects_total=8, projects_done=2)
    response = signed_in(client, people["finance"]).get(run_url(run))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'hx-get="{run_url(run, "run-progress")}" hx-trigger="every 1s"' in html
    assert 'aria-valuenow="25"' in html and "progress-bar-animated" in html
    assert "Billing project 2 of 8" in text_of(response)
    assert run_url(run, "run-retry") not in html  # moving: no retry


def test_a_running_run_counts_what_it_made_so_far(client, people, legal_entity, draft):
    run = make_run(legal_entity, status=InvoiceRun.Status.RUNNING, projects_total=3, projects_done=1)
    Invoice.objects.filter(pk=draft.pk).update(run=run)
    response = signed_in(client, people["finance"]).get(run_url(run, "run-progress"), headers=HTMX)
    assert (response.context["invoices_made"], response.context["items_made"]) == (1, 5)
    assert run.invoices_created == 0  # the run's own counters are written when it completes


def test_a_finished_run_lists_its_invoices_and_exceptions_by_reason(client, people, finished_run, draft, team):
    response = signed_in(client, people["finance"]).get(run_url(finished_run))
    assert response.status_code == 200
    html = response.content.decode()
    assert "hx-trigger" not in html  # done: no polling
    assert invoice_url(draft) in html
    groups = response.context["groups"]
    assert [(g["reason"], g["count"]) for g in groups] == [("po_missing", 1), ("rate_missing", 2)]
    assert groups[0]["totals"] == [("EUR", Decimal("84.50"))]
    text = text_of(response)
    assert "Purchase order missing" in text and "No rate for the labour category" in text
    assert "No rate for Data scientist on 2026-03-12." in text and "2026-03-13" in text
    assert team.number in text and team.customer.display_name in text and "€84.50" in text
    assert "Record the PO on the project" in text  # what to do about it
    assert reverse("projects:project-detail", kwargs={"public_id": team.public_id}) in html
    assert reverse("customers:customer-detail", kwargs={"public_id": team.customer.public_id}) in html
    assert f"?run={finished_run.public_id}" in html  # the run's invoices in the filtered list
    assert run_url(finished_run, "run-retry") not in html


def test_a_run_without_exceptions_says_so(client, people, legal_entity):
    run = make_run(legal_entity, status=InvoiceRun.Status.COMPLETED)
    text = text_of(signed_in(client, people["auditor"]).get(run_url(run)))
    assert "No exceptions: everything due in the period was billed." in text
    assert "This run made no invoices" in text


@pytest.mark.parametrize(("who", "offered"), [("finance", True), ("executive", False), ("auditor", False)])
def test_a_failed_run_shows_why_and_offers_finance_a_retry(client, people, legal_entity, who, offered):
    run = make_run(legal_entity, status=InvoiceRun.Status.FAILED, error="OperationalError: server closed")
    response = signed_in(client, people[who]).get(run_url(run))
    assert "OperationalError: server closed" in text_of(response)
    assert (run_url(run, "run-retry") in response.content.decode()) is offered


def test_a_stuck_run_offers_a_retry_and_polls_slowly(client, people, legal_entity):
    run = make_run(legal_entity, status=InvoiceRun.Status.RUNNING, projects_total=3, projects_done=1)
    InvoiceRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    response = signed_in(client, people["finance"]).get(run_url(run))
    html = response.content.decode()
    assert run_url(run, "run-retry") in html and 'hx-trigger="every 10s"' in html
    assert "has not moved for a while" in text_of(response)


def test_the_progress_partial_keeps_polling_while_the_run_works(client, people, legal_entity):
    run = make_run(legal_entity, status=InvoiceRun.Status.QUEUED)
    response = signed_in(client, people["executive"]).get(run_url(run, "run-progress"), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<div") or "<html" not in html
    assert 'hx-trigger="every 1s"' in html and "Waiting for a worker" in html
    assert "HX-Refresh" not in response


def test_the_progress_partial_reloads_the_page_once_the_run_is_done(client, people, legal_entity):
    run = make_run(legal_entity, status=InvoiceRun.Status.COMPLETED, projects_total=2, projects_done=2)
    signed_in(client, people["finance"])
    response = client.get(run_url(run, "run-progress"), headers=HTMX)
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert "hx-trigger" not in response.content.decode() and 'aria-valuenow="100"' in response.content.decode()
    assert "HX-Refresh" not in client.get(run_url(run, "run-progress"))  # a plain GET is just the card


def test_retrying_a_failed_run_queues_it_again(client, people, legal_entity):
    run = make_run(legal_entity, status=InvoiceRun.Status.FAILED, error="boom")
    response = signed_in(client, people["finance"]).post(run_url(run, "run-retry"))
    assert response.status_code == 302 and response["Location"] == run_url(run)
    run.refresh_from_db()
    assert run.status == InvoiceRun.Status.QUEUED and run.error == ""


def test_retrying_a_completed_run_is_refused_on_the_page(client, people, finished_run):
    response = signed_in(client, people["finance"]).post(run_url(finished_run, "run-retry"))
    assert response.status_code == 409
    text = text_of(response)
    assert "only a failed run" in text and "HTTP 409 Conflict" in text
    finished_run.refresh_from_db()
    assert finished_run.status == InvoiceRun.Status.COMPLETED


@pytest.mark.parametrize("who", ["auditor", "executive"])
def test_retrying_is_for_finance_only(client, people, legal_entity, who):
    run = make_run(legal_entity, status=InvoiceRun.Status.FAILED)
    assert signed_in(client, people[who]).post(run_url(run, "run-retry")).status_code == 403
    run.refresh_from_db()
    assert run.status == InvoiceRun.Status.FAILED


def test_run_detail_answers_404_for_an_unknown_run(client, people):
    url = reverse("billing:run-detail", kwargs={"public_id": "00000000-0000-0000-0000-000000000000"})
    assert signed_in(client, people["finance"]).get(url).status_code == 404
