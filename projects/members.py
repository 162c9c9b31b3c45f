"""Every write of a project's team: who may log time and expenses on it, with their usual labour category.

The project manager of a project (and admins) keep its team. A member who has logged anything stays on the
record of those entries; removing them only stops new logging, never touches what was logged.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from backbone.errors import Conflict, NotPermitted, ValidationFailed
from backbone.history import stamp
from backbone.roles import Role, has_role, require_writer

from . import selectors
from .models import Project, ProjectMember
from .services import _Errors

# The roles that log time (ROLES.md: sales, project managers and consultants log their own).
LOGGING_ROLES = (Role.CONSULTANT, Role.PROJECT_MANAGER, Role.SALES)


def member_refusal(actor, project: Project) -> str | None:
    """Why ``actor`` may not change ``project``'s team, or None."""
    if not getattr(actor, "is_authenticated", False):
        return "Sign in to make changes."
    if not actor.has_perm("projects.add_projectmember"):
        return "Your role does not keep project teams."
    if selectors.is_admin(actor) or (has_role(actor, Role.PROJECT_MANAGER) and project.project_manager_id == actor.pk):
        return None
    return f"Only the project manager of {project.number} keeps its team."


def _require_team_keeper(actor, project: Project) -> None:
    require_writer(actor)
    refusal = member_refusal(actor, project)
    if refusal:
        raise NotPermitted(refusal)


def _labour_category(errors: _Errors, project: Project, value) -> str:
    category = str(value or "").strip()
    if category and not project.rate_card.filter(labour_category=category).exists():
        known = sorted(set(project.rate_card.values_list("labour_category", flat=True)))
        errors.add(
            "labour_category",
            f"'{category}' is not on the rate card of {project.number}"
            + (f"; choose one of {', '.join(known)}." if known else "."),
        )
    return category


@transaction.atomic
def project_member_add(*, actor, project: Project, user, labour_category: str = "") -> ProjectMember:
    """Put ``user`` on ``project``'s team (they may then log time and expenses on it)."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    _require_team_keeper(actor, project)
    errors = _Errors()
    person = get_user_model().objects.filter(pk=getattr(user, "pk", None), is_active=True).first()
    if person is None:
        errors.add("user", "Choose an active person.")
    elif not has_role(person, *LOGGING_ROLES):
        errors.add("user", f"{person} holds no role that logs time (consultant, project manager or sales).")
    elif ProjectMember.objects.filter(project=project, user=person).exists():
        errors.add("user", f"{person} is already on the team of {project.number}.")
    category = _labour_category(errors, project, labour_category)
    if project.status == Project.Status.CLOSED:
        errors.add("project", f"{project.number} is closed; its team no longer changes.")
    errors.raise_if_any("The person was not added to the team.")
    member = ProjectMember(project=project, user=person, labour_category=category)
    stamp(member, actor=actor, reason=f"Added to the team of {project.number}").save()
    return member


@transaction.atomic
def project_member_update(*, actor, member: ProjectMember, labour_category: str) -> ProjectMember:
    """Change a member's usual labour category."""
    try:
        member = ProjectMember.objects.select_for_update().select_related("project").get(pk=member.pk)
    except ProjectMember.DoesNotExist as exc:
        raise Conflict("That person is no longer on the team.") from exc
    _require_team_keeper(actor, member.project)
    errors = _Errors()
    member.labour_category = _labour_category(errors, member.project, labour_category)
    if member.project.status == Project.Status.CLOSED:
        errors.add("project", f"{member.project.number} is closed; its team no longer changes.")
    errors.raise_if_any("The team member was not changed.")
    stamp(member, actor=actor, reason="Labour category changed").save(update_fields=["labour_category", "updated_at"])
    return member


@transaction.atomic
def project_member_remove(*, actor, member: ProjectMember) -> None:
    """Take a person off the team: they log nothing more on the project; their entries stay as they are."""
    try:
        member = ProjectMember.objects.select_for_update().select_related("project").get(pk=member.pk)
    except ProjectMember.DoesNotExist as exc:
        raise Conflict("That person is no longer on the team.") from exc
    _require_team_keeper(actor, member.project)
    if member.project.status == Project.Status.CLOSED:
        raise ValidationFailed(f"{member.project.number} is closed; its team no longer changes.", field="project")
    stamp(member, actor=actor, reason=f"Removed from the team of {member.project.number}").delete()
