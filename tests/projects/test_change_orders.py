"""Change orders: proposing (who, on what), the operations checked against the newest contract, submission
with the customer's acceptance on record, the approval matrix with its limits and maker-checker, approval
producing the next contract version and its working rows, rejection with a reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import Notification
from projects import selectors, services
from projects.milestones import milestone_accept
from projects.models import BudgetLine, ChangeOrder, ContractVersion, Milestone, Project

pytestmark = pytest.mark.django_db

EFFECTIVE = dt.date(2026, 5, 1)
SMALL = [{"op": "budget_line.add", "kind": "non_labour", "description": "Licences", "amount": "1000"}]
BIG = [{"op": "budget_line.add", "kind": "non_labour", "description": "Hardware", "amount": "6000"}]
RATE = [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "165", "effective_from": "2026-06-01"}]
RATE_AND_BIG = [*RATE, {"op": "budget_line.add", "kind": "labour", "labour_category": "Architect", "amount": "25000"}]
KINDS = {"small": SMALL, "big": BIG, "rate": RATE, "rate_and_big": RATE_AND_BIG}


def _create(project, actor, changes=SMALL, **fields):
    values = {
        "title": "More licences",
        "reason": "The customer's team grew.",
        "effective_from": EFFECTIVE,
        "customer_accepted_by": "Ida Berg",
        "customer_accepted_on": dt.date(2026, 4, 20),
        **fields,
    }
    return services.change_order_create(actor=actor, project=project, changes=changes, **values)


# --- proposing ---------------------------------------------------------------------------------------------


def test_a_draft_keeps_the_cleaned_operations_and_its_figures(tm_project, people):
    co = _create(tm_project, people["pm"], [*SMALL, *RATE])
    assert co.number == "CO-000001" and co.status == ChangeOrder.Status.DRAFT
    assert co.changes == [
        {
            "op": "budget_line.add",
            "kind": "non_labour",
            "labour_category": "",
            "description": "Licences",
            "hours": None,
            "rate": None,
            "amount": "1000.00",
        },
        {"op": "rate.set", "labour_category": "Senior consultant", "rate": "165.0000", "effective_from": "2026-06-01"},
    ]
    assert co.budget_delta_amount == Decimal("1000.00") and co.touches_billing_terms is True
    assert co.proposed_by == people["pm"]
    record = co.history.get()
    assert (record.history_user, record.history_change_reason) == (people["pm"], "Proposed")
    assert tm_project.contract_versions.count() == 1  # nothing changes before approval


@pytest.mark.parametrize("who", ["sales", "pm", "admin"])
def test_the_owner_the_manager_and_admins_propose(tm_project, people, who):
    assert _create(tm_project, people[who]).proposed_by == people[who]


@pytest.mark.parametrize(
    ("who", "fragment"),
    [
        ("sales2", "proposed by the project's manager"),  # not their customer
        ("pm2", "proposed by the project's manager"),  # not their project
        ("finance", "proposed by the project's manager"),
        ("executive", "proposed by the project's manager"),
        ("consultant", "proposed by the project's manager"),
        ("auditor", "Auditors"),
    ],
)
def test_others_cannot_propose(tm_project, people, who, fragment):
    with pytest.raises(NotPermitted, match=fragment):
        _create(tm_project, people[who])
    assert not ChangeOrder.objects.exists()


def test_closed_projects_take_no_change_orders(tm_project, people):
    Project.objects.filter(pk=tm_project.pk).update(status=Project.Status.CLOSED)
    tm_project.refresh_from_db()
    with pytest.raises(TransitionNotAllowed, match="closed"):
        _create(tm_project, people["pm"])


def test_every_problem_comes_back_under_its_key(tm_project, people):
    with pytest.raises(ValidationFailed) as caught:
        _create(
            tm_project,
            people["pm"],
            [{"op": "rate.set", "labour_category": "Developer", "rate": "1O0", "effective_from": "2026-06-01"}],
            title="",
            reason=" ",
            customer_accepted_on=dt.date(2099, 1, 1),
        )
    errors = caught.value.errors
    assert {"title", "reason", "customer_accepted_on", "changes.0.rate"} <= errors.keys()
    assert "'1O0' is not a number." in errors["changes.0.rate"]


def test_amendments_only_go_forward_in_time(tm_project, amend, people):
    amend(tm_project, SMALL, effective_from=EFFECTIVE)
    with pytest.raises(ValidationFailed) as caught:
        _create(tm_project, people["pm"], BIG, effective_from=EFFECTIVE - dt.timedelta(days=1))
    assert "since 2026-05-01 (version 2)" in caught.value.errors["effective_from"][0]


def test_a_change_cannot_start_after_the_project_ends(tm_project, people):
    with pytest.raises(ValidationFailed) as caught:
        _create(tm_project, people["pm"], effective_from=dt.date(2026, 9, 1))
    assert "ends on 2026-08-31" in caught.value.errors["effective_from"][0]


def test_the_acceptance_file_is_checked_and_kept(tm_project, people):
    with pytest.raises(ValidationFailed) as caught:
        _create(
            tm_project, people["pm"], acceptance_file=SimpleUploadedFile("yes.exe", b"MZ", "application/x-msdownload")
        )
    assert "acceptance_file" in caught.value.errors
    co = _create(
        tm_project,
        people["pm"],
        acceptance_file=SimpleUploadedFile("signed.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
    )
    assert co.customer_acceptance_filename == "signed.pdf" and co.customer_acceptance_file


def test_an_accepted_milestone_cannot_be_removed(fixed_project, people):
    milestone_accept(
        actor=people["pm"],
        milestone=Milestone.objects.get(project=fixed_project, key="milestone:1"),
        accepted_by_name="Ida Berg",
        accepted_on=dt.date(2026, 4, 30),
    )
    with pytest.raises(ValidationFailed) as caught:
        _create(fixed_project, people["pm"], [{"op": "milestone.remove", "key": "milestone:1"}])
    assert "accepted by the customer" in caught.value.errors["changes.0.key"][0]


# --- drafts, submission ------------------------------------------------------------------------------------


def test_drafts_change_and_refigure(tm_project, people):
    co = _create(tm_project, people["pm"])
    co = services.change_order_update(
        actor=people["sales"], change_order=co, data={"changes": BIG, "title": "Hardware"}
    )
    assert (co.title, co.budget_delta_amount, co.changes[0]["description"]) == (
        "Hardware",
        Decimal("6000.00"),
        "Hardware",
    )
    assert co.history.first().history_user == people["sales"]


def test_others_cannot_edit_a_draft(tm_project, people):
    co = _create(tm_project, people["pm"])
    with pytest.raises(NotPermitted):
        services.change_order_update(actor=people["pm2"], change_order=co, data={"title": "Mine now"})


def test_only_drafts_change(tm_project, propose, people):
    co = propose(tm_project, SMALL, effective_from=EFFECTIVE)
    with pytest.raises(TransitionNotAllowed, match="only drafts change"):
        services.change_order_update(actor=people["pm"], change_order=co, data={"title": "Later"})


def test_submission_needs_the_customers_acceptance_and_a_change(tm_project, people):
    co = _create(tm_project, people["pm"], [], customer_accepted_by="", customer_accepted_on=None)
    with pytest.raises(ValidationFailed) as caught:
        services.change_order_submit(actor=people["pm"], change_order=co)
    assert set(caught.value.errors) == {"changes", "customer_accepted_by", "customer_accepted_on"}
    assert ChangeOrder.objects.get(pk=co.pk).status == ChangeOrder.Status.DRAFT


def test_submission_tells_the_people_who_may_approve(tm_project, people):
    co = _create(tm_project, people["sales"], SMALL)
    services.change_order_submit(actor=people["sales"], change_order=co)
    told = set(Notification.objects.filter(title__contains=co.number).values_list("user__username", flat=True))
    assert told == {"pm", "executive"}  # within the manager's limit, no billing terms: not finance

    billing = _create(tm_project, people["pm"], RATE)
    billing = services.change_order_submit(actor=people["pm"], change_order=billing)
    assert billing.status == ChangeOrder.Status.SUBMITTED and billing.submitted_at
    assert billing.touches_billing_terms
    told = set(Notification.objects.filter(title__contains=billing.number).values_list("user__username", flat=True))
    assert told == {"finance", "executive"}


def test_a_submitted_change_order_is_not_submitted_again(tm_project, propose, people):
    co = propose(tm_project, SMALL, effective_from=EFFECTIVE)
    with pytest.raises(TransitionNotAllowed):
        services.change_order_submit(actor=people["pm"], change_order=co)


# --- the approval matrix -----------------------------------------------------------------------------------

MATRIX = [
    # approver, kind of change order (proposed by the project manager), refusal fragment or None
    ("pm", "small", None),
    (
        "pm",
        "big",
        "You proposed CO-000001; its budget change of €6,000.00 is above your own change-order limit of €5,000.00",
    ),
    ("pm", "rate", "changes billing terms"),
    ("pm2", "small", "Only the project manager of PRJ-000001"),
    ("finance", "rate", None),
    ("finance", "rate_and_big", "changes the budget by €25,000.00, above your change-order limit of €20,000.00"),
    ("finance", "small", "does not change billing terms"),
    ("executive", "big", None),
    ("executive", "rate_and_big", None),
    ("admin", "rate_and_big", None),
    ("sales", "small", "cannot approve"),
    ("consultant", "small", "cannot approve"),
    ("auditor", "small", "Auditors"),
]


@pytest.mark.parametrize(("approver", "kind", "refusal"), MATRIX, ids=[f"{a}-{k}" for a, k, _ in MATRIX])
def test_approval_matrix(tm_project, propose, people, approver, kind, refusal):
    co = propose(tm_project, KINDS[kind], effective_from=EFFECTIVE)
    if refusal is None:
        version = services.change_order_approve(actor=people[approver], change_order=co)
        assert version.number == 2
        assert ChangeOrder.objects.get(pk=co.pk).status == ChangeOrder.Status.APPROVED
    else:
        with pytest.raises(NotPermitted) as caught:
            services.change_order_approve(actor=people[approver], change_order=co)
        assert refusal in caught.value.message
        assert ChangeOrder.objects.get(pk=co.pk).status == ChangeOrder.Status.SUBMITTED
        assert tm_project.contract_versions.count() == 1


def test_the_manager_above_the_limit_on_someone_elses_change_order(tm_project, propose, people):
    co = propose(tm_project, BIG, effective_from=EFFECTIVE, actor=people["sales"])
    with pytest.raises(
        NotPermitted, match=r"changes the budget by €6,000.00, above your change-order limit of €5,000.00"
    ):
        services.change_order_approve(actor=people["pm"], change_order=co)


def test_nobody_approves_their_own_change_order_above_their_own_limit(tm_project, propose, people):
    co = propose(tm_project, SMALL, effective_from=EFFECTIVE, actor=people["admin"])  # an admin's limit is 0
    with pytest.raises(NotPermitted, match=r"You proposed CO-000001; its budget change of €1,000\.00 is above"):
        services.change_order_approve(actor=people["admin"], change_order=co)
    assert services.change_order_approve(actor=people["executive"], change_order=co).number == 2


def test_the_limit_is_on_the_absolute_budget_change(tm_project, propose, people):
    cut = [{"op": "budget_line.change", "key": "labour:senior-consultant", "hours": "50"}]  # -7,500
    co = propose(tm_project, cut, effective_from=EFFECTIVE, actor=people["sales"])
    assert co.budget_delta_amount == Decimal("-7500.00")
    with pytest.raises(NotPermitted, match=r"€7,500\.00"):
        services.change_order_approve(actor=people["pm"], change_order=co)


def test_actions_offered_to_each_person(tm_project, propose, people):
    co = propose(tm_project, SMALL, effective_from=EFFECTIVE, actor=people["sales"])
    assert selectors.change_order_actions(user=people["pm"], change_order=co) == {"approve", "reject"}
    assert selectors.change_order_actions(user=people["finance"], change_order=co) == frozenset()
    assert selectors.change_order_actions(user=people["auditor"], change_order=co) == frozenset()
    draft = _create(tm_project, people["sales"])
    assert selectors.change_order_actions(user=people["sales"], change_order=draft) == {"edit", "submit"}


# --- approval: the next contract version --------------------------------------------------------------------


def test_approval_makes_version_2_and_updates_the_working_rows(fixed_project, propose, people):
    changes = [
        {"op": "budget_line.add", "kind": "non_labour", "description": "Audit", "amount": "3000", "fixed_fee": True},
        {"op": "budget_line.change", "key": "fixed:build", "description": "Build and launch"},
        {"op": "milestone.change", "key": "milestone:3", "amount": "12000"},
        {"op": "milestone.move", "key": "milestone:2", "planned_date": "2026-07-15"},
        {"op": "end_date.set", "planned_end": "2026-09-30"},
        {"op": "billing_rule.set", "model": "expenses", "markup_percent": "8"},
    ]
    co = propose(fixed_project, changes, effective_from=EFFECTIVE, actor=people["sales"])
    assert co.budget_delta_amount == Decimal("3000.00")

    version = services.change_order_approve(actor=people["executive"], change_order=co)

    assert (version.number, version.source, version.change_order, version.effective_from) == (
        2,
        "change_order",
        co,
        EFFECTIVE,
    )
    assert version.created_by == people["executive"]
    co.refresh_from_db()
    assert (co.status, co.decided_by) == (ChangeOrder.Status.APPROVED, people["executive"]) and co.decided_at
    fixed_project.refresh_from_db()
    assert fixed_project.planned_end == dt.date(2026, 9, 30)
    assert list(
        BudgetLine.objects.filter(project=fixed_project).order_by("id").values_list("key", "description", "amount")
    ) == [
        ("fixed:designer", "Design", Decimal("12000.00")),
        ("fixed:build", "Build and launch", Decimal("18000.00")),
        ("fixed:audit", "Audit", Decimal("3000.00")),
    ]
    beta = Milestone.objects.get(project=fixed_project, key="milestone:2")
    assert (beta.planned_date, beta.baseline_date) == (dt.date(2026, 7, 15), dt.date(2026, 6, 30))
    assert sorted(fixed_project.billing_rules.values_list("model", flat=True)) == ["expenses", "fixed_fee"]
    assert Notification.objects.filter(user=people["sales"], title=f"{co.number} approved").exists()
    # The first version is untouched: billing of earlier days still reads it.
    assert ContractVersion.objects.get(project=fixed_project, number=1).terms["project"]["planned_end"] == "2026-08-31"


def test_removed_lines_and_milestones_leave_the_working_rows(fixed_project, amend):
    amend(
        fixed_project,
        [
            {"op": "milestone.remove", "key": "milestone:3"},
            {"op": "milestone.change", "key": "milestone:2", "amount": "18000"},
        ],
        effective_from=EFFECTIVE,
    )
    assert list(fixed_project.milestones.values_list("key", flat=True)) == ["milestone:1", "milestone:2"]


def test_approval_rechecks_against_the_newest_version(tm_project, propose, people):
    first = propose(tm_project, [{"op": "budget_line.remove", "key": "expenses:travel"}], effective_from=EFFECTIVE)
    second = propose(
        tm_project, [{"op": "budget_line.change", "key": "expenses:travel", "amount": "2500"}], effective_from=EFFECTIVE
    )
    services.change_order_approve(actor=people["pm"], change_order=first)
    with pytest.raises(Conflict, match=r"no longer fits the contract \(version 2\)") as caught:
        services.change_order_approve(actor=people["pm"], change_order=second)
    assert "changes.0.key" in caught.value.errors


def test_only_submitted_change_orders_are_approved(tm_project, people):
    co = _create(tm_project, people["pm"])
    with pytest.raises(TransitionNotAllowed, match="only submitted"):
        services.change_order_approve(actor=people["executive"], change_order=co)


def test_a_closed_projects_change_orders_are_not_approved(tm_project, propose, people):
    co = propose(tm_project, SMALL, effective_from=EFFECTIVE)
    Project.objects.filter(pk=tm_project.pk).update(status=Project.Status.CLOSED)
    with pytest.raises(TransitionNotAllowed, match="closed"):
        services.change_order_approve(actor=people["executive"], change_order=co)


# --- rejection ----------------------------------------------------------------------------------------------


def test_rejection_needs_a_reason_and_tells_the_proposer(tm_project, propose, people):
    co = propose(tm_project, SMALL, effective_from=EFFECTIVE, actor=people["sales"])
    with pytest.raises(ValidationFailed) as caught:
        services.change_order_reject(actor=people["pm"], change_order=co, reason=" ")
    assert "reason" in caught.value.errors
    co = services.change_order_reject(actor=people["pm"], change_order=co, reason="Out of scope for this phase.")
    assert (co.status, co.rejection_reason, co.decided_by) == (
        ChangeOrder.Status.REJECTED,
        "Out of scope for this phase.",
        people["pm"],
    )
    assert Notification.objects.get(user=people["sales"], title=f"{co.number} rejected").body.endswith("this phase.")
    assert tm_project.contract_versions.count() == 1


def test_rejection_stays_within_the_approvers_reach(tm_project, propose, people):
    co = propose(tm_project, RATE, effective_from=EFFECTIVE)
    for who in ("pm", "sales", "auditor"):
        with pytest.raises(NotPermitted):
            services.change_order_reject(actor=people[who], change_order=co, reason="No.")
    assert services.change_order_reject(actor=people["finance"], change_order=co, reason="No.").status == "rejected"


def test_only_submitted_change_orders_are_rejected(tm_project, people):
    co = _create(tm_project, people["pm"])
    with pytest.raises(TransitionNotAllowed):
        services.change_order_reject(actor=people["executive"], change_order=co, reason="No.")


# --- immutability -----------------------------------------------------------------------------------------


def test_contract_versions_cannot_be_changed_or_deleted_on_postgresql(tm_project):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL")
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractVersion.objects.filter(project=tm_project).update(effective_from=dt.date(2020, 1, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractVersion.objects.filter(project=tm_project).delete()
    assert ContractVersion.objects.get(project=tm_project).effective_from == dt.date(2026, 3, 2)
