"""The tax pages through Django's test client: the rate table and a jurisdiction's rates, adding a rate (and
its refusals, shown next to the input at fault), the tax preview with and without htmx, and the evidence."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backbone.roles import Role
from tax.context import TaxContext
from tax.models import TaxCalculation, TaxRate
from tax.services import tax_calculation_record, tax_rate_create

pytestmark = pytest.mark.django_db

RATES_URL = reverse("tax:rate-table")
CREATE_URL = reverse("tax:rate-create")
PREVIEW_URL = reverse("tax:preview")
EVIDENCE_URL = reverse("tax:calculation-list")
HTMX = {"HX-Request": "true"}
VALID_FR_VAT = "FR40303265045"


def signed_in(client, user):
    client.force_login(user)
    return client


def detail_url(country: str) -> str:
    return reverse("tax:jurisdiction-detail", kwargs={"country": country})


def text_of(response) -> str:
    """The page's visible text, tags stripped and whitespace collapsed, for assertions on wording."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text).replace("&#x27;", "'").replace("&quot;", '"')


def field_error(response, html_name: str) -> str:
    """The error message rendered under the input named ``html_name`` (its ``<id>_error`` element)."""
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'") if match else ""


def input_is_invalid(response, html_name: str) -> bool:
    for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", response.content.decode()):
        if f'name="{html_name}"' in tag:
            return "is-invalid" in tag and 'aria-invalid="true"' in tag
    raise AssertionError(f"no input named {html_name}")


# --- the rate table ----------------------------------------------------------------------------------------


def test_rate_table_lists_every_jurisdiction_with_the_rates_in_force_today(client, finance):
    response = signed_in(client, finance).get(RATES_URL)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == 30
    germany = next(row for row in rows if row["jurisdiction"].country == "DE")
    assert {cell.kind: cell.text for cell in germany["cells"]}["standard"] == "19"
    text = text_of(response)
    assert f"Rates in force on {timezone.localdate():%Y-%m-%d} (today)" in text
    assert f"Rate data version {response.context['rate_data_version']}" in text
    assert response.context["rate_data_version"] != "none"
    assert 'href="/tax/rates/DE/"' in response.text
    assert "Add a rate" in text  # finance may add rates


@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.AUDITOR])
def test_rate_table_offers_no_add_button_to_readers(client, users, role):
    response = signed_in(client, users[role]).get(RATES_URL)
    assert response.status_code == 200
    assert "Add a rate" not in text_of(response)
    assert CREATE_URL not in response.text


def test_rate_table_marks_a_change_within_the_shown_year(client, finance):
    response = signed_in(client, finance).get(RATES_URL, {"on": "2025-08-01"})
    rows = {row["jurisdiction"].country: row for row in response.context["rows"]}
    assert rows["EE"]["changes"] == [
        "Reduced 13 % from 2025-01-01",
        "Second reduced 9 % from 2025-01-01",
        "Standard 24 % from 2025-07-01",
    ]
    assert rows["FI"]["changes"] == []  # Finland's change is on 2026-01-01
    assert {cell.kind: cell.text for cell in rows["EE"]["cells"]}["standard"] == "24"
    assert rows["DE"]["changes"] == []
    assert "Standard 24 % from 2025-07-01" in text_of(response)
    # The day before the change, the old rate is shown and the coming change is still marked.
    earlier = client.get(RATES_URL, {"on": "2025-06-30"}).context["rows"]
    estonia = next(row for row in earlier if row["jurisdiction"].country == "EE")
    assert {cell.kind: cell.text for cell in estonia["cells"]}["standard"] == "22"
    assert estonia["changes"][-1] == "Standard 24 % from 2025-07-01"


def test_rate_table_filters_by_country_and_eu_membership(client, finance):
    signed_in(client, finance)
    only_norway = client.get(RATES_URL, {"country": "NO"}).context["rows"]
    assert [row["jurisdiction"].country for row in only_norway] == ["NO"]
    eu = client.get(RATES_URL, {"eu_only": "on"}).context["rows"]
    assert len(eu) == 27
    assert not {"GB", "CH", "NO"} & {row["jurisdiction"].country for row in eu}


@pytest.mark.parametrize("value", ["2025-13-45", "yesterday", "0"])
def test_rate_table_answers_an_invalid_date_with_a_message_and_today(client, finance, value):
    response = signed_in(client, finance).get(RATES_URL, {"on": value})
    assert response.status_code == 200
    text = text_of(response)
    assert f"is not a date (YYYY-MM-DD); showing the rates in force today, {timezone.localdate()}" in text
    assert response.context["on"] == timezone.localdate()
    assert len(response.context["rows"]) == 30


def test_rate_table_answers_an_unknown_country_with_a_message_and_every_country(client, finance):
    response = signed_in(client, finance).get(RATES_URL, {"country": "ZZ"})
    assert response.status_code == 200
    assert "No jurisdiction “ZZ” is known; showing every country." in text_of(response)
    assert len(response.context["rows"]) == 30


def _queries(client, url, params=None, **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {}, **kwargs)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_rate_table_queries_do_not_grow_with_rows(client, finance, django_assert_max_num_queries, headers):
    signed_in(client, finance)
    client.get(RATES_URL)  # the session and permission caches warm up alike for both counts below
    one = _queries(client, RATES_URL, {"country": "LU"}, headers=headers)
    for year in range(2031, 2041):  # more rates per row, and every jurisdiction shown
        tax_rate_create(
            actor=finance, country="LU", kind="parking", rate="14", valid_from=dt.date(year, 1, 1), note="x"
        )
    with django_assert_max_num_queries(one):
        response = client.get(RATES_URL, {"on": "2035-06-01"}, headers=headers)
    assert len(response.context["rows"]) == 30


def test_rate_table_answers_htmx_with_the_results_only(client, finance):
    response = signed_in(client, finance).get(RATES_URL, {"country": "FR"}, headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="rate-filter"' not in response.text
    assert "France" in response.text and "5.5" in response.text
    assert "HX-Request" in response["Vary"]


# --- a jurisdiction --------------------------------------------------------------------------------------


def test_jurisdiction_detail_lists_every_rate_over_time(client, users):
    response = signed_in(client, users[Role.AUDITOR]).get(detail_url("EE"))
    assert response.status_code == 200
    text = text_of(response)
    assert "Estonia" in text
    rows = response.context["rows"]
    standard = [(r["text"], r["rate"].valid_from, r["rate"].valid_to) for r in rows if r["kind"] == "Standard"]
    assert standard == [("22", dt.date(2024, 1, 1), dt.date(2025, 6, 30)), ("24", dt.date(2025, 7, 1), None)]
    assert "Shipped rate data" in text and "vatnode-history" in text
    assert response.context["chart"][0] == {"x": "2024-01-01", "y": "22"}
    assert "Add a rate" not in text  # auditors change nothing


def test_jurisdiction_detail_accepts_lower_case_and_answers_404_for_an_unknown_country(client, finance):
    signed_in(client, finance)
    assert client.get(detail_url("ee")).status_code == 200
    assert client.get(detail_url("XX")).status_code == 404


def test_jurisdiction_detail_names_who_added_a_rate_in_the_app(client, finance):
    tax_rate_create(
        actor=finance,
        country="DE",
        kind="reduced",
        rate="5",
        valid_from=dt.date(2030, 1, 1),
        source_reference="BGBl. 2029 I Nr. 1",
        note="food",
    )
    text = text_of(signed_in(client, finance).get(detail_url("DE")))
    assert "Added in the app by finance" in text
    assert "BGBl. 2029 I Nr. 1" in text and "upcoming" in text


# --- adding a rate ---------------------------------------------------------------------------------------


def rate_data(**overrides) -> dict[str, str]:
    data = {
        "country": "DE",
        "kind": "standard",
        "rate": "20",
        "valid_from": "2030-01-01",
        "valid_to": "",
        "source_reference": "BGBl. 2029 I Nr. 99",
        "note": "planned increase",
    }
    data.update(overrides)
    return data


def test_rate_create_page_preselects_the_country(client, finance):
    response = signed_in(client, finance).get(CREATE_URL, {"country": "de"})
    assert response.status_code == 200
    assert re.search(r'<option value="DE" selected>Germany \(DE\)</option>', response.text)


def test_rate_create_adds_the_rate_and_closes_the_open_one(client, finance):
    response = signed_in(client, finance).post(CREATE_URL, rate_data(), follow=True)
    assert response.redirect_chain == [(detail_url("DE"), 302)]
    created = TaxRate.objects.get(jurisdiction__country="DE", kind="standard", valid_from=dt.date(2030, 1, 1))
    assert created.rate == Decimal("20") and created.created_by == finance
    assert created.source == TaxRate.Source.MANUAL and created.source_reference == "BGBl. 2029 I Nr. 99"
    previous = TaxRate.objects.get(jurisdiction__country="DE", kind="standard", valid_from=dt.date(2021, 1, 1))
    assert previous.valid_to == dt.date(2029, 12, 31)
    text = text_of(response)
    assert "Germany: the standard rate of 20 % from 2030-01-01 was added." in text
    assert "The previous standard rate of 19 % (in force from 2021-01-01) now ends on 2029-12-31" in text
    assert "Added in the app by finance" in text


def test_rate_create_refuses_an_overlap_with_the_message_on_the_date(client, finance):
    before = list(TaxRate.objects.order_by("pk").values_list())
    response = signed_in(client, finance).post(
        CREATE_URL, rate_data(country="EE", rate="23", valid_from="2025-01-01", valid_to="2025-03-31")
    )
    assert response.status_code == 409
    message = "The standard rate of Estonia overlaps the 22 % rate in force 2024-01-01 – 2025-06-30."
    assert field_error(response, "valid_from") == message
    assert input_is_invalid(response, "valid_from")
    assert "The rate was not added." in text_of(response)
    assert list(TaxRate.objects.order_by("pk").values_list()) == before
    # What was typed is still there.
    assert 'value="2025-03-31"' in response.text and 'value="23"' in response.text


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ("150", "A rate is a percentage above 0 and below 100, with at most three decimals."),
        ("0", "A rate is a percentage above 0 and below 100, with at most three decimals."),
        ("19.0001", "A rate is a percentage above 0 and below 100, with at most three decimals."),
        ("nineteen", "Enter a number."),
    ],
)
def test_rate_create_refuses_an_invalid_rate(client, finance, rate, message):
    count = TaxRate.objects.count()
    response = signed_in(client, finance).post(CREATE_URL, rate_data(rate=rate))
    assert response.status_code == 400
    assert field_error(response, "rate") == message
    assert input_is_invalid(response, "rate")
    assert TaxRate.objects.count() == count


def test_rate_create_refuses_an_end_before_the_start(client, finance):
    response = signed_in(client, finance).post(CREATE_URL, rate_data(valid_from="2030-06-01", valid_to="2030-01-01"))
    assert response.status_code == 400
    assert field_error(response, "valid_to") == "The last day in force is before the first."


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.EXECUTIVE, Role.SALES])
def test_rate_create_is_refused_to_people_who_may_not_edit_rates(client, users, role):
    count = TaxRate.objects.count()
    signed_in(client, users[role])
    assert client.get(CREATE_URL).status_code == 403
    assert client.post(CREATE_URL, rate_data()).status_code == 403
    assert TaxRate.objects.count() == count


def test_rate_create_is_refused_to_an_auditor_who_also_holds_finance(client, make_user):
    both = make_user("auditing-finance", Role.FINANCE, Role.AUDITOR)
    count = TaxRate.objects.count()
    assert signed_in(client, both).post(CREATE_URL, rate_data()).status_code == 403
    assert TaxRate.objects.count() == count


# --- the preview -----------------------------------------------------------------------------------------


def preview_data(lines=None, **overrides) -> dict[str, str]:
    data = {
        "seller_country": "DE",
        "eu_b2c_sales_current_year_eur": "",
        "eu_b2c_sales_previous_year_eur": "",
        "buyer_country": "FR",
        "buyer_is_business": "on",
        "buyer_vat_id": VALID_FR_VAT,
        "tax_point": "2026-03-15",
        "currency": "EUR",
        "eur_rate": "",
    }
    data.update(overrides)
    data = {name: value for name, value in data.items() if value is not None}
    if lines is None:
        lines = [{"description": "Consulting, March", "net_amount": "1000.00"}, {}, {}]
    data.update({"lines-TOTAL_FORMS": str(len(lines)), "lines-INITIAL_FORMS": "0"})
    for index, line in enumerate(lines):
        row = {
            "description": "",
            "net_amount": "",
            "category": "S",
            "rate_kind": "reduced",
            "supply_kind": "general_service",
            "kind": "line",
            "exemption_reason_code": "",
            **line,
        }
        data.update({f"lines-{index}-{name}": value for name, value in row.items()})
    return data


@pytest.mark.parametrize("role", [Role.SALES, Role.PROJECT_MANAGER, Role.FINANCE, Role.EXECUTIVE])
def test_preview_page_renders_for_people_who_price_documents(client, users, role):
    response = signed_in(client, users[role]).get(PREVIEW_URL)
    assert response.status_code == 200
    assert response.context["lines"].total_form_count() >= 3
    assert f'value="{timezone.localdate():%Y-%m-%d}"' in response.text  # the tax point defaults to today
    assert "No calculation yet" in text_of(response)


def test_preview_reverse_charge_for_a_business_buyer_in_another_eu_country(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data())
    assert response.status_code == 200
    result = response.context["result"]
    assert result["lines"][0]["category"] == "AE"
    assert result["lines"][0]["rule"] == "EU-B2B-SERVICE-REVERSE-CHARGE"
    assert result["breakdown"][0]["category"] == "AE"
    text = text_of(response)
    assert "Reverse charge: the recipient is liable for the VAT (Art. 196" in text
    assert "AE — VAT reverse charge" in text and "VATEX-EU-AE" in text
    assert "B2B service to another EU country: place of supply is the buyer's country" in text
    assert "€1,000.00" in text and "€0.00" in text
    assert "FR — France" in text and "Consulting, March" in text
    assert "throughline-rules" in text and result["rate_data_version"] in text
    assert not TaxCalculation.objects.exists()  # a preview stores nothing


def test_preview_domestic_sale_takes_the_standard_and_the_reduced_rate(client, sales):
    lines = [
        {"description": "Workshop", "net_amount": "100.00"},
        {"description": "Book", "net_amount": "50", "category": "AA", "supply_kind": "goods"},
        {"description": "Loyalty discount", "net_amount": "10", "kind": "allowance"},
    ]
    response = signed_in(client, sales).post(
        PREVIEW_URL, preview_data(lines=lines, buyer_country="DE", buyer_is_business=None, buyer_vat_id="")
    )
    result = response.context["result"]
    assert [(row["category"], row["rate"], row["taxable"], row["tax"]) for row in result["breakdown"]] == [
        ("S", "19", "€90.00", "€17.10"),
        ("AA", "7", "€50.00", "€3.50"),
    ]
    assert (result["net"], result["tax"], result["gross"]) == ("€140.00", "€20.60", "€160.60")


def test_preview_without_buyer_country_shows_the_message_on_the_field(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(buyer_country=""))
    assert response.status_code == 200
    assert field_error(response, "buyer_country") == "The buyer's country is missing."
    assert input_is_invalid(response, "buyer_country")
    assert response.context["result"] is None
    assert "The buyer's country is missing." in response.context["summary"]
    assert 'role="alert"' in response.text
    # What was typed is still there.
    assert f'value="{VALID_FR_VAT}"' in response.text and 'value="Consulting, March"' in response.text


def test_preview_puts_a_line_error_on_the_row_it_came_from(client, sales):
    lines = [{}, {"description": "Discount", "net_amount": "-5", "kind": "allowance"}, {}]
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(lines=lines))
    assert response.status_code == 200
    message = "The amount of a discount (allowance) is given as a positive number; its kind decides the sign."
    assert field_error(response, "lines-1-net_amount") == message  # row 2 on the page, the first line sent
    assert input_is_invalid(response, "lines-1-net_amount")
    assert field_error(response, "lines-0-net_amount") == ""


def test_preview_lists_every_problem_when_there_are_several(client, sales):
    lines = [{"description": "Discount", "net_amount": "-5", "kind": "allowance"}, {}, {}]
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(lines=lines, buyer_country=""))
    assert response.context["summary"] == "The tax was not calculated: 2 problems to fix."
    assert len(response.context["problems"]) == 2
    assert field_error(response, "buyer_country") == "The buyer's country is missing."
    assert field_error(response, "lines-0-net_amount").startswith(
        "The amount of a discount (allowance) is given as a positive"
    )


def test_preview_needs_at_least_one_line(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(lines=[{}, {}, {}]))
    assert response.status_code == 200
    assert "At least one line is needed." in text_of(response)
    assert response.context["lines"].extra_errors == ["At least one line is needed."]


def test_preview_shows_an_engine_refusal_next_to_the_date(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(tax_point="1990-01-01", buyer_country="DE"))
    assert response.status_code == 200
    assert "No standard VAT rate of Germany (DE) is in force on 1990-01-01" in field_error(response, "tax_point")


def test_preview_survives_a_post_without_its_line_formset(client, sales):
    data = {key: value for key, value in preview_data().items() if not key.startswith("lines-")}
    response = signed_in(client, sales).post(PREVIEW_URL, data)
    assert response.status_code == 200
    assert response.context["result"] is None and response.context["summary"]


def test_preview_warns_when_a_business_buyer_has_an_invalid_vat_id(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(buyer_vat_id="FR00000000000"))
    result = response.context["result"]
    assert result["lines"][0]["category"] == "S"  # treated as a consumer: German VAT
    assert result["warnings"] and "BUYER-TREATED-AS-CONSUMER" in dict(result["rules"])
    assert "alert-warning" in response.text


def test_preview_answers_htmx_with_the_result_panel_only(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(), headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text and "<nav" not in response.text
    assert "Reverse charge" in response.text
    assert 'id="preview-form"' not in response.text  # nothing to change on the form
    assert "HX-Request" in response["Vary"]


def test_preview_answers_htmx_errors_with_the_form_out_of_band(client, sales):
    response = signed_in(client, sales).post(PREVIEW_URL, preview_data(buyer_country=""), headers=HTMX)
    assert response.status_code == 200  # htmx swaps 2xx answers only
    assert "<html" not in response.text
    assert re.search(r'<form id="preview-form"[^>]*hx-swap-oob="true"', response.text)
    assert field_error(response, "buyer_country") == "The buyer's country is missing."
    assert 'name="errors_shown"' in response.text
    # Fixed and sent again: the form comes back once more, to clear the errors it showed.
    fixed = client.post(PREVIEW_URL, {**preview_data(), "errors_shown": "1"}, headers=HTMX)
    assert re.search(r'<form id="preview-form"[^>]*hx-swap-oob="true"', fixed.text)
    assert "is-invalid" not in fixed.text and "Reverse charge" in fixed.text


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.CONSULTANT])
def test_preview_is_refused_without_the_permission(client, users, role):
    signed_in(client, users[role])
    assert client.get(PREVIEW_URL).status_code == 403
    assert client.post(PREVIEW_URL, preview_data()).status_code == 403


# --- evidence --------------------------------------------------------------------------------------------

CONTEXT = {
    "seller": {"country": "DE"},
    "buyer": {"country": "FR", "is_business": True, "registrations": [{"country": "FR", "number": VALID_FR_VAT}]},
    "lines": [{"id": "1", "net_amount": "1000.00", "description": "Consulting"}],
    "tax_point": "2026-03-15",
    "currency": "EUR",
}


def record(**kwargs) -> TaxCalculation:
    return tax_calculation_record(context=TaxContext.from_dict(CONTEXT), purpose="invoice", **kwargs)


def test_calculation_list_explains_an_empty_list(client, finance):
    response = signed_in(client, finance).get(EVIDENCE_URL)
    assert response.status_code == 200
    assert "Calculations are stored when documents are issued" in text_of(response)


@pytest.mark.parametrize("role", [Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR])
def test_calculation_list_shows_stored_calculations(client, users, role):
    calculation = record(document_type="invoice", document_ref="INV-2026-000042")
    response = signed_in(client, users[role]).get(EVIDENCE_URL)
    assert response.status_code == 200
    text = text_of(response)
    assert "INV-2026-000042" in text and "€1,000.00" in text and "FR — France" in text
    assert "throughline-rules" in text and "Open" in text
    assert reverse("tax:calculation-detail", kwargs={"public_id": calculation.public_id}) in response.text


def test_calculation_list_queries_do_not_grow_with_rows(client, finance, django_assert_max_num_queries):
    record()
    signed_in(client, finance)
    client.get(EVIDENCE_URL)
    one = _queries(client, EVIDENCE_URL)
    for _ in range(12):
        record(actor=finance)
    with django_assert_max_num_queries(one):
        response = client.get(EVIDENCE_URL)
    assert len(response.context["calculations"]) == 13


def test_calculation_detail_shows_the_full_evidence(client, users):
    calculation = record()
    response = signed_in(client, users[Role.AUDITOR]).get(
        reverse("tax:calculation-detail", kwargs={"public_id": calculation.public_id})
    )
    assert response.status_code == 200
    text = text_of(response)
    assert calculation.sha256 in text
    assert calculation.rate_data_version in text
    assert '"tax_point": "2026-03-15"' in text  # the context, pretty-printed
    assert "EU-B2B-SERVICE-REVERSE-CHARGE" in text and "the buyer accounts for the VAT (Art. 196)" in text
    assert "Reverse charge: the recipient is liable for the VAT" in text
    assert "AE — VAT reverse charge" in text
    assert "Open: not tied to an issued document yet" in text


def test_calculation_detail_answers_404_for_an_unknown_calculation(client, finance):
    url = reverse("tax:calculation-detail", kwargs={"public_id": uuid.uuid4()})
    assert signed_in(client, finance).get(url).status_code == 404


@pytest.mark.parametrize("role", [Role.SALES, Role.CONSULTANT])
def test_evidence_is_refused_to_people_without_the_permission(client, users, role):
    calculation = record()
    signed_in(client, users[role])
    assert client.get(EVIDENCE_URL).status_code == 403
    assert client.get(reverse("tax:calculation-detail", kwargs={"public_id": calculation.public_id})).status_code == 403


# --- navigation ------------------------------------------------------------------------------------------


def test_navigation_offers_the_tax_pages_by_permission(client, users):
    finance_nav = [item.label for item in signed_in(client, users[Role.FINANCE]).get("/").context["nav_items"]()]
    assert finance_nav.index("Tax") == finance_nav.index("Legal entities") + 1
    assert finance_nav.index("Tax preview") == finance_nav.index("Tax") + 1
    sales_nav = [item.label for item in signed_in(client, users[Role.SALES]).get("/").context["nav_items"]()]
    assert "Tax preview" in sales_nav and "Tax" not in sales_nav
    consultant_nav = [item.label for item in signed_in(client, users[Role.CONSULTANT]).get("/").context["nav_items"]()]
    assert "Tax" not in consultant_nav and "Tax preview" not in consultant_nav
