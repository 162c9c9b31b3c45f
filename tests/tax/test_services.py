"""Services of the tax app: rates added in the app, rate data loads, evidence, locking, recheck, VIES, engines."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InternalError, connection, transaction

from backbone.errors import Conflict, ValidationFailed
from tax.context import CategoryTotal, TaxContext, TaxResult
from tax.engines import calculate, get_engine
from tax.models import RateDataLoad, TaxCalculation, TaxRate
from tax.rates import load_rate_file
from tax.services import (
    evidence_digest,
    registration_check,
    tax_calculation_lock,
    tax_calculation_recheck,
    tax_calculation_record,
    tax_rate_create,
    tax_rates_load,
)
from tax.vies import ViesAnswer

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")


def domestic_context(**overrides) -> TaxContext:
    data = {
        "seller": {"country": "DE"},
        "buyer": {"country": "DE", "is_business": True},
        "lines": [{"id": "1", "net_amount": "100.00"}, {"id": "2", "net_amount": "50.00", "category": "AA"}],
        "tax_point": "2026-05-04",
        "currency": "EUR",
    }
    data.update(overrides)
    return TaxContext.from_dict(data)


def standard(country: str):
    return TaxRate.objects.filter(jurisdiction__country=country, kind="standard").order_by("valid_from")


# --- rates added in the app -----------------------------------------------------------------------------


def test_a_new_rate_closes_the_open_rate_the_day_before(finance):
    created = tax_rate_create(
        actor=finance, country="de", kind="standard", rate="20", valid_from=dt.date(2030, 1, 1), note="Budget law"
    )

    previous, latest = list(standard("DE"))[-2:]
    assert latest == created
    assert (previous.rate, previous.valid_to) == (Decimal("19"), dt.date(2029, 12, 31))
    assert (created.source, created.created_by, created.valid_to) == ("manual", finance, None)
    assert created.history.first().history_change_reason == "Rate added in the app"
    assert previous.history.first().history_change_reason == "Superseded by the rate from 2030-01-01"
    assert previous.history.first().history_user == finance


def test_a_rate_overlapping_a_closed_window_is_refused_and_nothing_changes(finance):
    before = list(standard("EE").values_list("rate", "valid_from", "valid_to"))

    with pytest.raises(Conflict, match=r"overlaps the 22 % rate in force 2024-01-01 – 2025-06-30"):
        tax_rate_create(
            actor=finance,
            country="EE",
            kind="standard",
            rate="23",
            valid_from=dt.date(2025, 3, 1),
            valid_to=dt.date(2025, 12, 31),
        )

    assert list(standard("EE").values_list("rate", "valid_from", "valid_to")) == before


def test_an_open_ended_rate_before_a_later_rate_is_refused(finance):
    tax_rate_create(actor=finance, country="DE", kind="standard", rate="20", valid_from=dt.date(2030, 1, 1))

    with pytest.raises(Conflict):
        tax_rate_create(actor=finance, country="DE", kind="standard", rate="21", valid_from=dt.date(2029, 1, 1))


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"country": "XX"}, "country", "No jurisdiction 'XX'"),
        ({"kind": "luxury"}, "kind", "'luxury' is not a rate kind"),
        ({"rate": "abc"}, "rate", "'abc' is not a number"),
        ({"rate": "0"}, "rate", "above 0 and below 100"),
        ({"rate": "100"}, "rate", "above 0 and below 100"),
        ({"rate": "7.1234"}, "rate", "at most three decimals"),
        ({"valid_to": dt.date(2029, 12, 31)}, "valid_to", "before the first"),
    ],
)
def test_bad_rate_input_names_the_field(finance, changes, field, fragment):
    arguments = {"country": "DE", "kind": "reduced", "rate": "5", "valid_from": dt.date(2030, 1, 1), **changes}
    count = TaxRate.objects.count()

    with pytest.raises(ValidationFailed) as refused:
        tax_rate_create(actor=finance, **arguments)

    assert fragment in refused.value.errors[field][0]
    assert TaxRate.objects.count() == count


# --- loading the shipped data ---------------------------------------------------------------------------


def test_loading_the_shipped_file_again_changes_nothing():
    rates = TaxRate.objects.count()
    report = tax_rates_load()

    assert (report.rates_created, report.rates_updated, report.rates_unchanged) == (0, 0, rates)
    assert TaxRate.objects.count() == rates
    assert RateDataLoad.objects.latest().version == load_rate_file()["version"]


def test_a_new_file_version_updates_shipped_rows_and_never_touches_rates_added_in_the_app(finance):
    manual = tax_rate_create(actor=finance, country="NL", kind="standard", rate="22", valid_from=dt.date(2031, 1, 1))
    data = copy.deepcopy(load_rate_file())
    data["version"] = "2027-01-15"
    austria = next(item for item in data["jurisdictions"] if item["country"] == "AT")
    open_standard = next(row for row in austria["rates"] if row["kind"] == "standard" and row["valid_to"] is None)
    open_standard["valid_to"] = "2026-12-31"
    austria["rates"].append({"kind": "standard", "rate": "21", "valid_from": "2027-01-01", "valid_to": None})
    netherlands = next(item for item in data["jurisdictions"] if item["country"] == "NL")
    netherlands["rates"].append({"kind": "standard", "rate": "23", "valid_from": "2031-06-01", "valid_to": None})

    report = tax_rates_load(data=data)

    assert (report.rates_created, report.rates_updated) == (1, 1)
    assert [(str(r.rate), r.valid_to) for r in standard("AT")][-2:] == [
        ("20.000", dt.date(2026, 12, 31)),
        ("21.000", None),
    ]
    assert len(report.conflicts) == 1 and "NL standard 23" in report.conflicts[0]
    manual.refresh_from_db()
    assert (manual.rate, manual.valid_to) == (Decimal("22"), None)
    assert RateDataLoad.objects.latest().version == "2027-01-15"


def test_the_rate_data_version_changes_when_a_rate_is_added(finance):
    before = calculate(domestic_context()).rate_data_version
    tax_rate_create(actor=finance, country="DE", kind="standard", rate="20", valid_from=dt.date(2030, 1, 1))
    after = calculate(domestic_context()).rate_data_version

    assert before != after
    assert before.split("+")[0] == after.split("+")[0] == load_rate_file()["version"]


# --- evidence -------------------------------------------------------------------------------------------


def test_recorded_evidence_holds_context_result_and_its_digest(finance):
    context = domestic_context()
    calculation = tax_calculation_record(context=context, actor=finance, purpose="invoice", document_type="invoice")

    assert calculation.sha256 == evidence_digest(context=calculation.context, result=calculation.result)
    assert TaxContext.from_dict(calculation.context) == context
    assert (calculation.net_amount, calculation.tax_amount) == (Decimal("150.00"), Decimal("22.50"))
    assert calculation.rules_fired == ["DOMESTIC", "PRODUCT-REDUCED-RATE"]
    assert calculation.engine == "throughline-rules" and calculation.created_by == finance
    assert calculation.place_of_supply == "DE"


def test_locking_ties_evidence_to_one_document_and_is_idempotent():
    calculation = tax_calculation_record(context=domestic_context(), purpose="invoice")

    locked = tax_calculation_lock(calculation=calculation, document_type="invoice", document_ref="INV-2026-000001")
    again = tax_calculation_lock(calculation=calculation, document_type="invoice", document_ref="INV-2026-000001")

    assert locked.locked_at is not None and again.locked_at == locked.locked_at
    with pytest.raises(Conflict, match="already belongs to invoice INV-2026-000001"):
        tax_calculation_lock(calculation=calculation, document_type="invoice", document_ref="INV-2026-000002")
    with pytest.raises(ValidationFailed):
        tax_calculation_lock(calculation=calculation, document_type="invoice", document_ref="")


@postgres_only
def test_postgres_refuses_to_edit_evidence_even_before_it_is_locked():
    calculation = tax_calculation_record(context=domestic_context(), purpose="preview")

    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        TaxCalculation.objects.filter(pk=calculation.pk).update(tax_amount=Decimal("0.00"))


@postgres_only
def test_postgres_refuses_to_change_or_delete_locked_evidence():
    calculation = tax_calculation_record(context=domestic_context(), purpose="invoice")
    tax_calculation_lock(calculation=calculation, document_type="invoice", document_ref="INV-1")

    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        TaxCalculation.objects.filter(pk=calculation.pk).update(purpose="changed")
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        TaxCalculation.objects.filter(pk=calculation.pk).delete()
    assert TaxCalculation.objects.filter(pk=calculation.pk, purpose="invoice").exists()


@postgres_only
def test_postgres_lets_unlocked_evidence_of_an_abandoned_draft_go():
    calculation = tax_calculation_record(context=domestic_context(), purpose="preview")

    TaxCalculation.objects.filter(pk=calculation.pk).delete()

    assert not TaxCalculation.objects.filter(pk=calculation.pk).exists()


# --- recheck --------------------------------------------------------------------------------------------


def test_recheck_finds_nothing_when_rates_are_unchanged(capsys):
    tax_calculation_record(context=domestic_context(), purpose="invoice")

    call_command("tax_recheck")

    assert "1 calculations rechecked" in capsys.readouterr().out


def test_recheck_reports_a_corrected_rate_of_the_tax_point_date(capsys):
    calculation = tax_calculation_record(context=domestic_context(), purpose="invoice", document_ref="INV-7")
    TaxRate.objects.filter(jurisdiction__country="DE", kind="reduced", valid_to__isnull=True).update(rate=Decimal("5"))

    assert any(
        "tax_amount: stored Decimal('22.50'), now Decimal('21.50')" in d
        for d in tax_calculation_recheck(calculation=calculation)
    )
    with pytest.raises(SystemExit) as exited:
        call_command("tax_recheck")
    captured = capsys.readouterr()
    assert exited.value.code == 1
    assert "line 2: stored AA 7 %, now AA 5 %" in captured.out
    assert "1 with differences" in captured.err


def test_recheck_notices_a_stored_row_whose_digest_no_longer_matches():
    calculation = tax_calculation_record(context=domestic_context(), purpose="invoice")
    calculation.result = {**calculation.result, "tax_amount": "0.00"}  # in memory: the database trigger forbids it

    differences = tax_calculation_recheck(calculation=calculation)

    assert differences[0] == "stored SHA-256 does not match the stored context and result"


# --- registrations and VIES -----------------------------------------------------------------------------


class FakeVies:
    calls: list[tuple[str, str]] = []

    def check(self, *, country, number, requester=""):
        FakeVies.calls.append((country, number))
        return ViesAnswer(
            country,
            number,
            valid=number.endswith("5"),
            checked_on=dt.date(2026, 11, 2),
            consultation_number="WAPIAAAAZ123",
        )


def test_registration_check_is_offline_unless_asked_and_configured(settings):
    settings.TAX_VIES_ADAPTER = None

    checked = registration_check(number="fr 40 303 265 045", country="FR", online=True)

    assert (checked.number, checked.valid, checked.source) == ("FR40303265045", True, "format")


def test_registration_check_takes_the_vies_answer_as_evidence(settings):
    settings.TAX_VIES_ADAPTER = "tests.tax.test_services.FakeVies"
    FakeVies.calls = []

    checked = registration_check(number="FR40303265045", country="FR", online=True)
    invalid = registration_check(number="FR40303265046", country="FR", online=True)

    assert (checked.valid, checked.source, checked.consultation_number) == (True, "vies", "WAPIAAAAZ123")
    assert checked.checked_on == dt.date(2026, 11, 2)
    assert invalid.valid is False and invalid.source == "format"  # a bad checksum never reaches VIES
    assert FakeVies.calls == [("FR", "FR40303265045")]


# --- pluggable engines ----------------------------------------------------------------------------------


class FakeEngine:
    """A stand-in for an external service: every line 10 %, whatever the rules say."""

    name = "fake-external"
    version = "0.1"

    def calculate(self, context, *, rates):
        base = sum((line.net_amount for line in context.lines), Decimal("0"))
        tax = (base / 10).quantize(Decimal("0.01"))
        return TaxResult(
            currency=context.currency,
            lines=(),
            breakdown=(CategoryTotal("S", Decimal("10"), base, tax),),
            net_amount=base,
            tax_amount=tax,
            gross_amount=base + tax,
            place_of_supply=context.buyer.country,
            legal_notes=(),
            rules_fired=("FAKE",),
            warnings=(),
            engine=self.name,
            engine_version=self.version,
            rate_data_version="fake-data-1",
        )


def test_the_tax_engine_setting_plugs_in_another_engine(settings):
    settings.TAX_ENGINE = "tests.tax.test_services.FakeEngine"

    calculation = tax_calculation_record(context=domestic_context(), purpose="quote")

    assert isinstance(get_engine(), FakeEngine)
    assert (calculation.engine, calculation.rate_data_version, calculation.tax_amount) == (
        "fake-external",
        "fake-data-1",
        Decimal("15.00"),
    )


def test_a_temporary_rate_interrupts_the_open_rate_which_then_resumes(finance):
    tax_rate_create(
        actor=finance,
        country="DE",
        kind="standard",
        rate="16",
        valid_from=dt.date(2031, 7, 1),
        valid_to=dt.date(2031, 12, 31),
        note="Temporary cut",
    )

    windows = [(r.rate.normalize(), r.valid_from, r.valid_to) for r in standard("DE")][-3:]
    assert windows == [
        (Decimal("19"), dt.date(2021, 1, 1), dt.date(2031, 6, 30)),
        (Decimal("16"), dt.date(2031, 7, 1), dt.date(2031, 12, 31)),
        (Decimal("19"), dt.date(2032, 1, 1), None),
    ]
    day = dt.date(2032, 1, 1)
    assert calculate(domestic_context(tax_point=day.isoformat())).breakdown[0].rate == Decimal("19")


def test_a_shipped_rate_missing_from_a_new_file_version_is_removed():
    data = copy.deepcopy(load_rate_file())
    data["version"] = "2027-02-01"
    malta = next(item for item in data["jurisdictions"] if item["country"] == "MT")
    malta["rates"] = [row for row in malta["rates"] if row["kind"] != "reduced_3"]

    report = tax_rates_load(data=data)

    assert report.rates_removed == 1
    assert not TaxRate.objects.filter(jurisdiction__country="MT", kind="reduced_3").exists()
