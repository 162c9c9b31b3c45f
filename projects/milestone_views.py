"""Milestone acceptance pages: the project manager records that the client accepted a deliverable (who,
when, a note for the invoice, the signed document), may withdraw a mistaken record before billing, and
whoever sees the project downloads the signed document through an access-checked view."""

from __future__ import annotations

from pathlib import PurePosixPath

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify

from backbone.downloads import stored_file_response
from backbone.errors import DomainError
from backbone.money import format_money
from backbone.views import Guarded

from . import forms as f
from . import milestones as services
from . import selectors as s
from .models import Milestone, Project


def _page(request, project: Project, milestone: Milestone, *, form=None, withdraw_form=None, status=200, summary=""):
    refusal = s.milestone_acceptance_refusal(user=request.user, project=project)
    planned = milestone.status == Milestone.Status.PLANNED
    context = {
        "project": project,
        "milestone": milestone,
        "amount": format_money(milestone.amount, project.currency),
        "can_accept": refusal is None,
        "refusal": refusal,
        "form": form
        if form is not None
        else (f.MilestoneAcceptForm(initial={"accepted_on": timezone.localdate()}) if planned else None),
        "withdraw_form": withdraw_form
        if withdraw_form is not None
        else (f.MilestoneWithdrawForm() if milestone.status == Milestone.Status.ACCEPTED else None),
        "summary": summary,
    }
    return render(request, "projects/milestone_accept.html", context, status=status)


def _lookup(request, public_id, milestone_id) -> tuple[Project, Milestone]:
    project = s.access_project(user=request.user, public_id=public_id)
    return project, s.access_milestone(user=request.user, project=project, public_id=milestone_id)


class MilestoneAcceptView(Guarded):
    """GET: the milestone with its acceptance (or the form to record it); POST: record the acceptance."""

    permission_required = ("projects.view_milestone",)

    def get(self, request, public_id, milestone_id) -> HttpResponse:
        project, milestone = _lookup(request, public_id, milestone_id)
        return _page(request, project, milestone)

    def post(self, request, public_id, milestone_id) -> HttpResponse:
        project, milestone = _lookup(request, public_id, milestone_id)
        refusal = s.milestone_acceptance_refusal(user=request.user, project=project)
        if refusal:
            return _page(request, project, milestone, status=403, summary=refusal)
        form = f.MilestoneAcceptForm(request.POST, request.FILES)
        if not form.is_valid():
            return _page(request, project, milestone, form=form, status=400, summary="Please correct the fields.")
        data = form.cleaned_data
        try:
            milestone = services.milestone_accept(
                actor=request.user,
                milestone=milestone,
                accepted_by_name=data["accepted_by_name"],
                accepted_on=data["accepted_on"],
                note=data["note"],
                document=data.get("document") or None,
            )
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return _page(request, project, milestone, form=form, status=exc.status_code, summary=exc.message)
        billable = " It is billable now." if milestone.amount else ""
        messages.success(request, f"'{milestone.name}' was accepted by {milestone.accepted_by_name}.{billable}")
        return redirect("projects:project-detail", public_id=project.public_id)


class MilestoneWithdrawView(Guarded):
    """POST: withdraw a mistaken acceptance of an unbilled milestone, with the reason."""

    permission_required = ("projects.accept_milestone",)
    writes = True

    def post(self, request, public_id, milestone_id) -> HttpResponse:
        project, milestone = _lookup(request, public_id, milestone_id)
        form = f.MilestoneWithdrawForm(request.POST)
        if not form.is_valid():
            return _page(request, project, milestone, withdraw_form=form, status=400, summary="Give the reason.")
        try:
            milestone = services.milestone_acceptance_withdraw(
                actor=request.user, milestone=milestone, reason=form.cleaned_data["reason"]
            )
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return _page(request, project, milestone, withdraw_form=form, status=exc.status_code, summary=exc.message)
        messages.success(request, f"The acceptance of '{milestone.name}' was withdrawn; it is planned again.")
        return redirect("projects:project-detail", public_id=project.public_id)


class MilestoneDocumentView(Guarded):
    """The signed acceptance, to whoever may see the project's milestones; never through MEDIA_URL."""

    permission_required = ("projects.view_milestone",)

    def get(self, request, public_id, milestone_id) -> FileResponse:
        _project, milestone = _lookup(request, public_id, milestone_id)
        if not milestone.acceptance_document:
            raise Http404("No signed document.")
        suffix = PurePosixPath(milestone.acceptance_document.name).suffix.lower()
        stem = PurePosixPath(milestone.acceptance_document_filename).stem or milestone.name
        return stored_file_response(
            milestone.acceptance_document,
            filename=f"{slugify(stem) or 'acceptance'}{suffix}",
            missing="The document file is missing.",
        )
