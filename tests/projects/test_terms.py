"""The contract terms JSON: its digest, the change-order operations (each rule and its flat error key) and the
version diff. Pure functions: no database."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from backbone.errors import ValidationFailed
from projects import terms as t

START, END = dt.date(2026, 3, 2), dt.date(2026, 8, 31)
EFFECTIVE = dt.date(2026, 5, 1)


def base_terms() -> dict:
    return t.canonical(
        {
            "schema": 1,
            "project": {
                "name": "Data platform",
                "currency": "EUR",
                "language": "en",
                "planned_start": START,
                "planned_end": END,
                "po_number": "",
                "po_required": False,
                "portal_required": False,
                "payment_terms_days": 30,
            },
            "customer": {"public_id": "c", "number": "CUST-000001", "legal_name": "Nordlicht GmbH"},
            "legal_entity": {"public_id": "e", "legal_name": "Studio GmbH"},
            "quote": None,
            "lines": [],
            "tax": None,
            "rate_card": [
                {"labour_category": "Senior consultant", "rate": "150.0000", "currency": "EUR", "effective_from": START}
            ],
            "budget": [
                {
                    "key": "labour:senior-consultant",
                    "kind": "labour",
                    "labour_category": "Senior consultant",
                    "description": "Senior consultant",
                    "hours": "100.00",
                    "rate": "150.0000",
                    "amount": "15000.00",
                },
                {
                    "key": "fixed:design",
                    "kind": "non_labour",
                    "labour_category": "",
                    "description": "Design",
                    "hours": None,
                    "rate": None,
                    "amount": "12000.00",
                },
            ],
            "milestones": [
                {
                    "key": "milestone:1",
                    "name": "Design sign-off",
                    "phase": "",
                    "planned_date": "2026-04-30",
                    "baseline_date": "2026-04-30",
                    "amount": "12000.00",
                    "acceptance_criteria": "",
                }
            ],
            "billing_rules": [
                {"model": "tm", "retainer_amount": "0.00", "markup_percent": "0.00"},
                {"model": "fixed_fee", "retainer_amount": "0.00", "markup_percent": "0.00"},
            ],
            "attachments": [],
        }
    )


def apply(changes, *, terms=None, effective_from=EFFECTIVE, accepted=()):
    return t.apply_changes(terms or base_terms(), changes, effective_from=effective_from, accepted_milestones=accepted)


def errors_of(changes, **kwargs) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        apply(changes, **kwargs)
    return caught.value.errors


# --- digest -----------------------------------------------------------------------------------------------


def test_sha256_is_the_digest_of_the_canonical_json_and_ignores_key_order():
    terms = base_terms()
    reordered = dict(reversed(list(terms.items())))
    assert t.terms_sha256(terms) == t.terms_sha256(reordered)
    assert len(t.terms_sha256(terms)) == 64
    # The canonical form is the contract (sorted keys, compact, Decimals and dates as strings): if it changed,
    # no stored digest would verify any more.
    known = (
        "dcb8de049c42c0529165f2e72fcaf1c48912fec52339b522cb6a6297ffdd763a"  # sha256('{"a":"2026-01-02","b":"1.50"}')
    )
    assert t.terms_sha256({"b": Decimal("1.50"), "a": dt.date(2026, 1, 2)}) == known
    assert t.terms_sha256({"a": "2026-01-02", "b": "1.50"}) == known


def test_sha256_changes_with_any_value():
    terms = base_terms()
    changed = copy.deepcopy(terms)
    changed["rate_card"][0]["rate"] = "150.0001"
    assert t.terms_sha256(terms) != t.terms_sha256(changed)


def test_applying_changes_leaves_the_input_terms_untouched():
    terms = base_terms()
    before = t.terms_sha256(terms)
    apply([{"op": "end_date.set", "planned_end": "2026-09-30"}], terms=terms)
    assert t.terms_sha256(terms) == before


# --- operations: the happy paths ------------------------------------------------------------------------------


def test_budget_line_add_computes_the_amount_and_a_stable_key():
    new, cleaned = apply(
        [{"op": "budget_line.add", "kind": "labour", "labour_category": "Developer", "hours": "40", "rate": "120"}]
    )
    line = new["budget"][-1]
    assert line == {
        "key": "labour:developer",
        "kind": "labour",
        "labour_category": "Developer",
        "description": "Developer",
        "hours": "40.00",
        "rate": "120.0000",
        "amount": "4800.00",
    }
    assert cleaned[0]["amount"] == "4800.00"
    assert t.budget_total(new) - t.budget_total(base_terms()) == Decimal("4800.00")


def test_a_second_line_of_a_category_gets_a_suffixed_key():
    new, _ = apply(
        [{"op": "budget_line.add", "kind": "labour", "labour_category": "Senior consultant", "amount": "1000"}]
    )
    assert new["budget"][-1]["key"] == "labour:senior-consultant-2"


def test_budget_line_change_recomputes_the_amount_from_new_hours():
    new, cleaned = apply([{"op": "budget_line.change", "key": "labour:senior-consultant", "hours": "120"}])
    assert new["budget"][0]["amount"] == "18000.00"
    assert cleaned == [
        {"op": "budget_line.change", "key": "labour:senior-consultant", "hours": "120.00", "amount": "18000.00"}
    ]


def test_rate_set_adds_a_rate_from_a_date_and_keeps_the_earlier_one():
    new, _ = apply(
        [{"op": "rate.set", "labour_category": "senior consultant", "rate": "165", "effective_from": EFFECTIVE}]
    )
    assert [(e["labour_category"], e["rate"], e["effective_from"]) for e in new["rate_card"]] == [
        ("Senior consultant", "150.0000", "2026-03-02"),
        ("Senior consultant", "165.0000", "2026-05-01"),  # the card's spelling is kept
    ]
    assert t.rate_in_terms(new, labour_category="Senior consultant", day=dt.date(2026, 4, 30)) == Decimal("150")
    assert t.rate_in_terms(new, labour_category="Senior consultant", day=EFFECTIVE) == Decimal("165")
    assert t.touches_billing_terms([{"op": "rate.set"}]) is True


def test_milestone_operations_keep_the_fixed_fee_covered():
    changes = [
        {"op": "milestone.change", "key": "milestone:1", "amount": "8000"},
        {"op": "milestone.add", "name": "Launch", "planned_date": "2026-08-28", "amount": "4000"},
        {"op": "milestone.move", "key": "milestone:1", "planned_date": "2026-05-15"},
    ]
    new, _ = apply(changes)
    assert [(m["key"], m["planned_date"], m["baseline_date"], m["amount"]) for m in new["milestones"]] == [
        ("milestone:1", "2026-05-15", "2026-04-30", "8000.00"),
        ("milestone:2", "2026-08-28", "2026-08-28", "4000.00"),
    ]
    assert [m["key"] for m in t.slipped_milestones(base_terms(), new)] == ["milestone:1"]


def test_end_date_and_billing_rules():
    new, _ = apply(
        [
            {"op": "end_date.set", "planned_end": "2026-10-31"},
            {"op": "billing_rule.set", "model": "expenses", "markup_percent": "12.5"},
            {"op": "billing_rule.remove", "model": "tm"},
        ]
    )
    assert new["project"]["planned_end"] == "2026-10-31"
    assert [r["model"] for r in new["billing_rules"]] == ["fixed_fee", "expenses"]
    assert new["billing_rules"][1]["markup_percent"] == "12.50"


# --- operations: every refusal, with its flat key ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ("not a list", "changes", "list of operations"),
        (["nope"], "changes.0", "object with an 'op'"),
        ([{"op": "budget_line.explode"}], "changes.0.op", "not a change"),
        ([{"op": "budget_line.remove", "key": "labour:nobody"}], "changes.0.key", "no budget line 'labour:nobody'"),
        (
            [{"op": "milestone.move", "key": "milestone:9", "planned_date": "2026-05-01"}],
            "changes.0.key",
            "no milestone",
        ),
        ([{"op": "end_date.set", "planned_end": "2026-09-30", "typo": 1}], "changes.0.typo", "Unknown field"),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": "abc", "effective_from": "2026-06-01"}],
            "changes.0.rate",
            "not a number",
        ),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": 120.5, "effective_from": "2026-06-01"}],
            "changes.0.rate",
            "not as a JSON float",
        ),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": "-1", "effective_from": "2026-06-01"}],
            "changes.0.rate",
            "cannot be below 0",
        ),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": "1.23456", "effective_from": "2026-06-01"}],
            "changes.0.rate",
            "at most 4 decimal places",
        ),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": "120", "effective_from": "2026-04-01"}],
            "changes.0.effective_from",
            "never rewritten backwards",
        ),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": "120", "effective_from": "2026-13-01"}],
            "changes.0.effective_from",
            "not a date",
        ),
        (
            [{"op": "rate.set", "labour_category": "Developer", "rate": "120", "effective_from": "2026-09-15"}],
            "changes.0.effective_from",
            "after the project ends",
        ),
        (
            [
                {
                    "op": "budget_line.add",
                    "kind": "labour",
                    "labour_category": "Dev",
                    "hours": "10",
                    "rate": "100",
                    "amount": "999",
                }
            ],
            "changes.0.amount",
            "10.00 h × 100.0000 = 1000.00, not 999.00",
        ),
        (
            [{"op": "budget_line.add", "kind": "labour", "description": "x", "amount": "1"}],
            "changes.0.labour_category",
            "names its labour category",
        ),
        (
            [{"op": "budget_line.add", "kind": "non_labour", "description": "Licences"}],
            "changes.0.amount",
            "Enter the amount",
        ),
        (
            [{"op": "budget_line.add", "kind": "other", "description": "x", "amount": "1"}],
            "changes.0.kind",
            "labour or non_labour",
        ),
        (
            [{"op": "milestone.add", "name": "Late", "planned_date": "2026-09-30", "amount": "0"}],
            "changes.0.planned_date",
            "outside the project",
        ),
        ([{"op": "end_date.set", "planned_end": "2026-04-01"}], "changes.0.planned_end", "outside the project"),
        ([{"op": "end_date.set", "planned_end": "2026-02-01"}], "changes.0.planned_end", "before the planned start"),
        ([{"op": "milestone.change", "key": "milestone:1", "amount": "11000"}], "changes", "fixed fee is €12,000.00"),
        (
            [
                {"op": "budget_line.remove", "key": "fixed:design"},
                {"op": "billing_rule.remove", "model": "tm"},
                {"op": "billing_rule.remove", "model": "fixed_fee"},
            ],
            "changes",
            "no billing rule left",
        ),
        ([{"op": "billing_rule.set", "model": "retainer"}], "changes.0.retainer_amount", "monthly retainer amount"),
        (
            [{"op": "billing_rule.set", "model": "tm", "markup_percent": "5"}],
            "changes.0.markup_percent",
            "Only an expenses rule",
        ),
        ([{"op": "billing_rule.set", "model": "barter"}], "changes.0.model", "not a billing model"),
        ([{"op": "billing_rule.remove", "model": "retainer"}], "changes.0.model", "no 'retainer' billing rule"),
    ],
)
def test_invalid_operations_are_refused_under_their_flat_key(changes, key, fragment):
    errors = errors_of(changes)
    assert key in errors, errors
    assert any(fragment in message for message in errors[key]), errors[key]


def test_an_accepted_milestone_cannot_move_change_or_go():
    for change in (
        {"op": "milestone.move", "key": "milestone:1", "planned_date": "2026-05-02"},
        {"op": "milestone.change", "key": "milestone:1", "name": "Renamed"},
        {"op": "milestone.remove", "key": "milestone:1"},
    ):
        errors = errors_of([change], accepted={"milestone:1"})
        assert "accepted by the customer" in errors["changes.0.key"][0]


def test_all_problems_are_reported_at_once():
    errors = errors_of(
        [
            {"op": "budget_line.remove", "key": "nope"},
            {"op": "rate.set", "labour_category": "Dev", "rate": "x", "effective_from": "2026-06-01"},
        ]
    )
    assert {"changes.0.key", "changes.1.rate"} <= errors.keys()


def test_a_second_rate_must_start_after_the_latest_one():
    terms, _ = apply(
        [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "160", "effective_from": "2026-06-01"}]
    )
    errors = errors_of(
        [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "170", "effective_from": "2026-06-01"}],
        terms=terms,
    )
    assert "already has a rate from 2026-06-01" in errors["changes.0.effective_from"][0]


# --- the diff ------------------------------------------------------------------------------------------------


def test_version_diff_names_every_kind_of_change():
    old = base_terms()
    new, _ = apply(
        [
            {"op": "budget_line.add", "kind": "non_labour", "description": "Licences", "amount": "500"},
            {"op": "budget_line.change", "key": "labour:senior-consultant", "hours": "110"},
            {"op": "rate.set", "labour_category": "Senior consultant", "rate": "165", "effective_from": "2026-06-01"},
            {"op": "rate.set", "labour_category": "Developer", "rate": "110", "effective_from": "2026-06-01"},
            {"op": "milestone.move", "key": "milestone:1", "planned_date": "2026-05-15"},
            {"op": "milestone.add", "name": "Checkpoint", "planned_date": "2026-07-01"},
            {"op": "end_date.set", "planned_end": "2026-09-30"},
            {"op": "billing_rule.set", "model": "expenses", "markup_percent": "10"},
            {"op": "billing_rule.remove", "model": "tm"},
        ]
    )
    rows = t.version_diff(old, new)
    texts = {(row["area"], row["change"], row["key"]): row["text"] for row in rows}
    assert texts["schedule", "changed", "planned_end"] == "End date moved from 2026-08-31 to 2026-09-30."
    assert texts["budget", "added", "other:licences"] == "Budget line added — Licences: €500.00."
    assert (
        "hours 100.00 → 110.00; amount €15,000.00 → €16,500.00"
        in texts["budget", "changed", "labour:senior-consultant"]
    )
    assert texts["budget", "total", "budget"] == "Total budget €27,000.00 → €29,000.00 (+€2,000.00)."
    assert (
        "€165.00 per hour from 2026-06-01 (was €150.00)"
        in texts["rate_card", "added", "rate:senior-consultant:2026-06-01"]
    )
    assert "(a new category)" in texts["rate_card", "added", "rate:developer:2026-06-01"]
    assert "moved from 2026-04-30 to 2026-05-15 (after its baseline)" in texts["milestones", "moved", "milestone:1"]
    assert "'Checkpoint' on 2026-07-01" in texts["milestones", "added", "milestone:2"]
    assert "markup 10 %" in texts["billing_rules", "added", "expenses"]
    assert ("billing_rules", "removed", "tm") in texts

    back = t.version_diff(new, old)
    assert any(row["change"] == "removed" and row["key"] == "other:licences" for row in back)
    assert any(row["change"] == "removed" and row["key"] == "milestone:2" for row in back)


def test_version_diff_of_equal_terms_is_empty():
    assert t.version_diff(base_terms(), base_terms()) == []
