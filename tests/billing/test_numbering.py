"""Invoice numbers and ISO 11649 creditor references (no database), and the gapless counter that issuing takes
them from (``sequence_take``: counts on per series, gives a rolled-back number back, and hands eight racing
connections 1…400 with no gap on PostgreSQL)."""

from __future__ import annotations

import string
import threading

import pytest
from django.db import connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from backbone.models import NumberSequence
from billing import numbering

ALNUM = string.ascii_uppercase + string.digits


def _textbook_check_digits(payload: str) -> str:
    """ISO 7064 MOD 97-10 as ISO 11649 spells it out, independently of the code under test: append "RF00",
    letters to numbers (A = 10 … Z = 35), 98 minus the remainder by 97."""
    digits = "".join(str(int(ch, 36)) for ch in payload + "RF00")
    return f"{98 - int(digits) % 97:02d}"


def test_creditor_reference_of_the_published_example():
    # ISO 11649's example: reference 5390 0754 7034 carries the check digits 18.
    assert numbering.creditor_reference("539007547034") == "RF18539007547034"
    assert numbering.creditor_reference("5390 0754 7034") == "RF18539007547034"
    assert numbering.creditor_reference_display("RF18539007547034") == "RF18 5390 0754 7034"
    assert numbering.creditor_reference_valid("RF18 5390 0754 7034")
    assert numbering.creditor_reference_valid("rf18539007547034")


@pytest.mark.parametrize(
    "reference",
    [
        "RF17 5390 0754 7034",  # wrong check digits
        "RF18 5390 0754 7035",  # one digit of the reference changed
        "RF18 5390 0754 7043",  # two digits swapped
        "XX18 5390 0754 7034",  # not RF
        "RF18",  # no reference
        "RF18 5390 0754 7034 5390 0754 7034 12",  # 22 characters of reference: too long
        "RF18 5390-0754_7034",  # not letters or digits
        "",
    ],
)
def test_creditor_reference_valid_refuses_malformed_and_wrong_references(reference):
    assert not numbering.creditor_reference_valid(reference)


def test_check_digits_outside_02_to_98_are_refused_even_when_the_remainder_fits():
    # 98 and 01 (and 02 and 99) leave the same remainder; ISO 7064 only ever produces 02 to 98.
    payload = next(p for p in (f"{n}" for n in range(1, 10_000)) if _textbook_check_digits(p) == "98")
    assert numbering.creditor_reference_valid(f"RF98{payload}")
    assert not numbering.creditor_reference_valid(f"RF01{payload}")


@pytest.mark.parametrize("payload", ["", "ÄB", "A-1", "1" * 22])
def test_creditor_reference_refuses_payloads_outside_iso_11649(payload):
    with pytest.raises(ValueError):
        numbering.creditor_reference(payload)


@given(st.text(alphabet=ALNUM, min_size=1, max_size=21))
def test_every_creditor_reference_made_is_valid_and_matches_the_textbook_algorithm(payload):
    reference = numbering.creditor_reference(payload)
    assert reference == f"RF{_textbook_check_digits(payload)}{payload}"
    assert numbering.creditor_reference_valid(reference)


@given(st.text(alphabet=ALNUM, min_size=1, max_size=21), st.integers(min_value=0), st.integers(min_value=1))
def test_a_changed_character_makes_a_reference_invalid(payload, index, shift):
    # MOD 97-10 catches every change of one digit for another and of one letter for another (a change of
    # at most two adjacent digits of the numeric form, never a multiple of 97).
    reference = numbering.creditor_reference(payload)
    position = 4 + index % len(payload)
    alphabet = string.digits if reference[position].isdigit() else string.ascii_uppercase
    replacement = alphabet[(alphabet.index(reference[position]) + shift % (len(alphabet) - 1) + 1) % len(alphabet)]
    assert replacement != reference[position]
    tampered = reference[:position] + replacement + reference[position + 1 :]
    assert not numbering.creditor_reference_valid(tampered)


def test_invoice_reference_payload_has_a_fixed_tail_after_the_prefix():
    payload = numbering.invoice_reference_payload(invoice_prefix="DE", kind="invoice", year=2026, sequence=42)
    assert payload == "DE12600000042"
    assert numbering.invoice_reference_payload(invoice_prefix="DE", kind="credit_note", year=2026, sequence=42) == (
        "DE22600000042"
    )
    assert numbering.invoice_reference_payload(invoice_prefix="DE", kind="invoice", year=0, sequence=7) == (
        "DE10000000007"
    )
    longest = numbering.invoice_reference_payload(
        invoice_prefix="ABCDEFGHIJ", kind="invoice", year=2026, sequence=99_999_999
    )
    assert len(longest) == 21 and numbering.creditor_reference_valid(numbering.creditor_reference(longest))


def test_invoice_reference_payloads_of_prefixes_that_look_alike_never_collide():
    # "DE1" + tail and "DE" + a tail starting with 1 would collide with a variable-width tail.
    seen = {}
    for prefix in ("DE", "DE1", "DE12", "D", "E1"):
        for kind in ("invoice", "credit_note"):
            for year in (0, 2025, 2026):
                for sequence in (1, 12, 126, 1_000_000):
                    payload = numbering.invoice_reference_payload(
                        invoice_prefix=prefix, kind=kind, year=year, sequence=sequence
                    )
                    key = (prefix, kind, year, sequence)
                    assert seen.setdefault(payload, key) == key


@pytest.mark.parametrize(
    "kwargs",
    [
        {"invoice_prefix": "DE", "kind": "invoice", "year": 2026, "sequence": 0},
        {"invoice_prefix": "DE", "kind": "invoice", "year": 2026, "sequence": 100_000_000},
        {"invoice_prefix": "DE", "kind": "quote", "year": 2026, "sequence": 1},
        {"invoice_prefix": "de-x", "kind": "invoice", "year": 2026, "sequence": 1},
        {"invoice_prefix": "ABCDEFGHIJK", "kind": "invoice", "year": 2026, "sequence": 1},
    ],
)
def test_invoice_reference_payload_refuses_what_does_not_fit(kwargs):
    with pytest.raises(ValueError):
        numbering.invoice_reference_payload(**kwargs)


def test_invoice_numbers_per_series_and_year():
    assert numbering.invoice_number(prefix="DE", year=2026, value=1, padding=6) == "DE-2026-000001"
    assert numbering.invoice_number(prefix="DE", year=0, value=42, padding=4) == "DE-0042"
    assert numbering.series_prefix(invoice_prefix="DE", kind="invoice") == "DE"
    assert numbering.series_prefix(invoice_prefix="DE", kind="credit_note") == "DE-CN"
    assert numbering.fiscal_year(restart_yearly=True, issue_year=2026) == 2026
    assert numbering.fiscal_year(restart_yearly=False, issue_year=2026) == 0
    assert numbering.sequence_key(legal_entity_pk=3, kind="credit_note") == "invoice:3:credit_note"


# --- the counter (database) ------------------------------------------------------------------------------------


def _take(entity_pk: int = 7, kind: str = "invoice", year: int = 2026) -> int:
    return numbering.sequence_take(legal_entity_pk=entity_pk, kind=kind, year=year, prefix="DE", padding=6)


@pytest.mark.django_db
def test_sequence_take_creates_the_series_on_first_use_and_counts_on():
    with transaction.atomic():
        assert [_take(), _take(), _take()] == [1, 2, 3]
    row = NumberSequence.objects.get(key="invoice:7:invoice", year=2026)
    assert (row.prefix, row.padding, row.last_value) == ("DE", 6, 3)


@pytest.mark.django_db
def test_sequence_take_keeps_kinds_years_and_legal_entities_apart():
    with transaction.atomic():
        assert [_take(), _take(kind="credit_note"), _take(year=2027), _take(entity_pk=8), _take()] == [1, 1, 1, 1, 2]


@pytest.mark.django_db
def test_a_rolled_back_transaction_gives_its_number_back():
    with transaction.atomic():
        assert _take() == 1
    with pytest.raises(RuntimeError, match="issue failed"), transaction.atomic():
        assert _take() == 2
        raise RuntimeError("issue failed")
    with transaction.atomic():
        assert _take() == 2  # no gap


@pytest.mark.django_db(transaction=True)
def test_sequence_take_refuses_to_run_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the transaction that stores it"):
        _take()
    assert not NumberSequence.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_eight_threads_take_400_numbers_1_to_400_with_no_gap_and_no_duplicate():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    with transaction.atomic():
        _take()  # the series exists: the threads race for its row, not to create it
        transaction.set_rollback(True)
    start = threading.Barrier(8, timeout=30)
    taken: list[int] = []
    failures: list[BaseException] = []

    def take() -> None:
        try:
            start.wait()
            for _ in range(50):
                with transaction.atomic():
                    taken.append(_take())
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]
    assert sorted(taken) == list(range(1, 401))
    assert NumberSequence.objects.get(key="invoice:7:invoice", year=2026).last_value == 400
