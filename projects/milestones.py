"""Every write of a milestone's acceptance and billing: the project manager records that the client
accepted a deliverable (who, when, a note carried onto the invoice, an optional signed document), may
withdraw a mistaken record before it is billed, and billing marks accepted milestones billed (and releases
them again when a credit note gives them back for rebilling).

Life cycle: planned → accepted → billed; accepted → planned only by withdrawal; billed → accepted only by the
release of a credit note. An accepted milestone with an amount (a fixed-fee instalment) is billable from its
acceptance date on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import PurePosixPath

from django.db import transaction
from django.utils import timezone

from backbone.errors import NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.roles import require_writer
from backbone.services import notify
from customers.services import certificate_document_problem

from . import selectors
from .models import LockedPeriod, Milestone, Project
from .services import _Errors, _finance_people, _url


def _require_acceptor(actor, project: Project) -> None:
    require_writer(actor)
    refusal = selectors.milestone_acceptance_refusal(user=actor, project=project)
    if refusal:
        raise NotPermitted(refusal)


def _milestone_for_update(milestone: Milestone) -> Milestone:
    Project.objects.select_for_update().filter(pk=milestone.project_id).first()
    return Milestone.objects.select_for_update().select_related("project").get(pk=milestone.pk)


def _digest(upload) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


@transaction.atomic
def milestone_accept(
    *,
    actor,
    milestone: Milestone,
    accepted_by_name: str,
    accepted_on: dt.date | None,
    note: str = "",
    document=None,
) -> Milestone:
    """Record the client's acceptance of a planned milestone; it becomes billable (when it has an amount)
    and finance is told."""
    milestone = _milestone_for_update(milestone)
    project = milestone.project
    _require_acceptor(actor, project)
    if milestone.status != Milestone.Status.PLANNED:
        raise TransitionNotAllowed(
            f"'{milestone.name}' is already {milestone.get_status_display().lower()}"
            f" (by {milestone.accepted_by_name} on {milestone.accepted_on.isoformat()}).",
            field="status",
        )
    errors = _Errors()
    who = str(accepted_by_name or "").strip()
    if not who:
        errors.add("accepted_by_name", "Name the person on the client side who accepted it.")
    elif len(who) > 120:
        errors.add("accepted_by_name", "At most 120 characters.")
    if not isinstance(accepted_on, dt.date):
        errors.add("accepted_on", "Enter the date the client accepted it (YYYY-MM-DD).")
    elif accepted_on > timezone.localdate():
        errors.add("accepted_on", "The acceptance cannot be dated in the future.")
    elif accepted_on < project.planned_start:
        errors.add("accepted_on", f"{project.number} starts on {project.planned_start.isoformat()}; not before.")
    elif LockedPeriod.objects.filter(month=accepted_on.replace(day=1)).exists():
        errors.add(
            "accepted_on",
            f"{accepted_on.strftime('%B %Y')} is locked by finance; record a late acceptance with today's date "
            "and say so in the note.",
        )
    if project.status == Project.Status.CLOSED:
        errors.add("project", f"{project.number} is closed; nothing more is accepted on it.")
    note = str(note or "").strip()
    if len(note) > 2000:
        errors.add("note", "At most 2,000 characters.")
    if document:
        problem = certificate_document_problem(document)
        if problem:
            errors.add("document", problem.replace("The document", "The signed document"))
    errors.raise_if_any("The acceptance was not recorded.")
    milestone.status = Milestone.Status.ACCEPTED
    milestone.accepted_by_name = who
    milestone.accepted_on = accepted_on
    milestone.acceptance_note = note
    milestone.acceptance_recorded_by = actor
    milestone.acceptance_recorded_at = timezone.now()
    if document:
        milestone.acceptance_document_sha256 = _digest(document)
        milestone.acceptance_document = document
        milestone.acceptance_document_filename = PurePosixPath(getattr(document, "name", "") or "").name[-200:]
    stamp(milestone, actor=actor, reason=f"Accepted by {who}"[:100]).save()
    if milestone.amount:
        notify(
            users=_finance_people(),
            title=f"Milestone accepted on {project.number}: {milestone.name}",
            body=f"{who} accepted it on {accepted_on.isoformat()}; it is billable now.",
            url=_url("projects.project", project.public_id),
        )
    return milestone


@transaction.atomic
def milestone_acceptance_withdraw(*, actor, milestone: Milestone, reason: str) -> Milestone:
    """Undo a mistaken acceptance record while the milestone is unbilled; the history keeps both."""
    milestone = _milestone_for_update(milestone)
    _require_acceptor(actor, milestone.project)
    reason = str(reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the acceptance is withdrawn.", field="reason")
    if milestone.status != Milestone.Status.ACCEPTED:
        raise TransitionNotAllowed(
            f"'{milestone.name}' is {milestone.get_status_display().lower()}; only an accepted, unbilled "
            "milestone's acceptance can be withdrawn (a billed one is corrected with a credit note).",
            field="status",
        )
    milestone.status = Milestone.Status.PLANNED
    milestone.accepted_by_name = ""
    milestone.accepted_on = None
    milestone.acceptance_note = ""
    milestone.acceptance_document = None
    milestone.acceptance_document_filename = ""
    milestone.acceptance_document_sha256 = ""
    milestone.acceptance_recorded_by = None
    milestone.acceptance_recorded_at = None
    stamp(milestone, actor=actor, reason=f"Acceptance withdrawn: {reason}"[:100]).save()
    return milestone


@transaction.atomic
def milestones_mark_billed(*, milestones: Sequence[Milestone], invoice_ref: str, actor=None) -> int:
    """Accepted → billed: the one path billing uses for milestones (it never writes projects' rows)."""
    invoice_ref = (invoice_ref or "").strip()
    if not invoice_ref:
        raise ValidationFailed("Name the invoice that billed the milestones.", field="invoice_ref")
    pks = sorted({m.pk for m in milestones})
    project_ids = set(Milestone.objects.filter(pk__in=pks).values_list("project_id", flat=True))
    list(Project.objects.filter(pk__in=project_ids).order_by("pk").select_for_update(of=("self",)))
    rows = list(Milestone.objects.filter(pk__in=pks).order_by("pk").select_for_update(of=("self",)))
    for row in rows:
        if row.status != Milestone.Status.ACCEPTED or not row.amount:
            raise TransitionNotAllowed(
                f"'{row.name}' is {row.get_status_display().lower()}; only accepted milestones with an amount "
                "are billed (nothing is billed twice).",
                field="milestones",
            )
    now = timezone.now()
    for row in rows:
        row.status = Milestone.Status.BILLED
        row.invoice_ref = invoice_ref
        row.billed_at = now
        stamp(row, actor=actor, reason=f"Billed on {invoice_ref}"[:100]).save(
            update_fields=["status", "invoice_ref", "billed_at", "updated_at"]
        )
    return len(rows)


@transaction.atomic
def milestones_release_billed(*, milestones: Sequence[Milestone], invoice_ref: str, credit_ref: str, actor=None) -> int:
    """Billed → accepted, the invoice reference and billed time cleared: a credit note of ``invoice_ref``
    (``credit_ref``) gives the milestones back to billing, and the next run bills them again. The acceptance
    (who, when, the note) stays as recorded. Every milestone must be billed on ``invoice_ref``, or nothing is
    released; returns how many."""
    invoice_ref, credit_ref = (invoice_ref or "").strip(), (credit_ref or "").strip()
    if not invoice_ref:
        raise ValidationFailed("Name the invoice that billed the milestones.", field="invoice_ref")
    if not credit_ref:
        raise ValidationFailed("Name the credit note that releases the milestones.", field="credit_ref")
    pks = sorted({m.pk for m in milestones})
    project_ids = set(Milestone.objects.filter(pk__in=pks).values_list("project_id", flat=True))
    list(Project.objects.filter(pk__in=project_ids).order_by("pk").select_for_update(of=("self",)))
    rows = list(Milestone.objects.filter(pk__in=pks).order_by("pk").select_for_update(of=("self",)))
    for row in rows:
        if row.status != Milestone.Status.BILLED or row.invoice_ref != invoice_ref:
            where = f"billed on {row.invoice_ref}" if row.status == Milestone.Status.BILLED else "not billed"
            raise TransitionNotAllowed(
                f"'{row.name}' is {where}; only milestones billed on {invoice_ref} are released by {credit_ref}.",
                field="milestones",
            )
    for row in rows:
        row.status = Milestone.Status.ACCEPTED
        row.invoice_ref = ""
        row.billed_at = None
        stamp(row, actor=actor, reason=f"Released by {credit_ref} of {invoice_ref} for rebilling"[:100]).save(
            update_fields=["status", "invoice_ref", "billed_at", "updated_at"]
        )
    return len(rows)
