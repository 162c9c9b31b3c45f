"""Forms of the expense, locked-period and project-team pages: they parse input into Python values, nothing
more. Every rule (dates inside the project, amounts in cents, the receipt's content, the team's keeper)
lives in ``projects.timesheets`` and ``projects.members``; a view hands a service's refusal back to the form
with ``projects.forms.apply_domain_errors`` so that each message lands next to its input.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms

from backbone.money import CURRENCY_CHOICES
from backbone.roles import Role

from .forms import DATE, PersonChoiceField
from .models import EntryStatus, Expense, Project
from .timesheets import RECEIPT_MAX_BYTES, RECEIPT_TYPES

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})(?:-\d{2})?$")
RECEIPT_ACCEPT = ",".join([*RECEIPT_TYPES, "application/pdf", "image/jpeg", "image/png"])


def parse_month(value: Any) -> dt.date | None:
    """``"2026-03"`` (what ``<input type="month">`` sends) or ``"2026-03-01"`` → 2026-03-01; else None."""
    match = MONTH_PATTERN.match(str(value or "").strip())
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1900 <= year <= 9999):
        return None
    return dt.date(year, month, 1)


class ProjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Project) -> str:
        return f"{obj.number} {obj.name}"


# --- expenses -----------------------------------------------------------------------------------------


class ExpenseFilterForm(forms.Form):
    project = ProjectChoiceField(
        queryset=Project.objects.none(), to_field_name="public_id", required=False, empty_label="All projects"
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *EntryStatus.choices], required=False)
    month = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}),
        help_text="e.g. 2026-03",
    )

    def __init__(self, *args, projects, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        for name in ("project", "status"):
            self.fields[name].widget.attrs["class"] = "form-select"

    def clean_month(self) -> dt.date | None:
        value = self.cleaned_data.get("month", "")
        if not value:
            return None
        month = parse_month(value)
        if month is None:
            raise forms.ValidationError("Enter the month as YYYY-MM, e.g. 2026-03.")
        return month

    def filters(self) -> dict[str, Any]:
        """The valid filters only: a bad value in one filter does not drop the others."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {key: value for key, value in self.cleaned_data.items() if value not in (None, "")}


class ExpenseForm(forms.Form):
    """Create (with the project) and edit (without: an expense stays on its project)."""

    project = ProjectChoiceField(
        queryset=Project.objects.none(),
        to_field_name="public_id",
        empty_label="Choose a project",
        error_messages={
            "required": "Choose the project the expense is for.",
            "invalid_choice": "Choose one of your projects: you log expenses only on projects whose team you are on.",
        },
    )
    date = forms.DateField(
        widget=forms.DateInput(attrs=DATE), error_messages={"required": "Enter the date of the receipt."}
    )
    category = forms.ChoiceField(
        choices=[("", "Choose a category"), *Expense.Category.choices],
        error_messages={"required": "Choose the category: travel, accommodation, meals, software or other."},
    )
    amount = forms.CharField(
        max_length=24,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "0.00"}),
        help_text="Including VAT, as on the receipt; up to 2 decimals.",
        error_messages={"required": "Enter the amount, e.g. 12.50."},
    )
    currency = forms.ChoiceField(
        choices=[("", "The project's currency"), *CURRENCY_CHOICES],
        required=False,
        help_text="Expenses are entered in the currency the project is billed in.",
    )
    description = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Client-facing: it appears on the invoice.",
        error_messages={"required": "Describe the expense: the description appears on the invoice."},
    )
    billable = forms.BooleanField(
        required=False, initial=True, label="Billable to the customer", help_text="Billable expenses carry the markup."
    )
    receipt = forms.FileField(
        required=False,
        widget=forms.FileInput(attrs={"accept": RECEIPT_ACCEPT}),
        help_text=f"PDF, JPEG or PNG, up to {RECEIPT_MAX_BYTES // (1024 * 1024)} MB.",
        error_messages={"empty": "The receipt file is empty.", "invalid": "Choose the receipt file again."},
    )

    SERVICE_FIELDS = ("date", "category", "amount", "currency", "description", "billable")

    def __init__(self, *args, projects=None, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["project"]
        else:
            self.fields["project"].queryset = projects if projects is not None else Project.objects.none()

    @classmethod
    def initial_from(cls, expense: Expense) -> dict[str, Any]:
        return {
            "date": expense.date,
            "category": expense.category,
            "amount": f"{expense.amount:.2f}",
            "currency": expense.currency,
            "description": expense.description,
            "billable": expense.billable,
        }

    def service_data(self) -> dict[str, Any]:
        """The keyword arguments of ``expense_create`` / the ``data`` of ``expense_update``."""
        data = {name: self.cleaned_data.get(name) for name in self.SERVICE_FIELDS}
        data["amount"] = (data["amount"] or "").strip()
        if self.cleaned_data.get("receipt"):
            data["receipt"] = self.cleaned_data["receipt"]
        return data


class WeekForm(forms.Form):
    week_start = forms.DateField(error_messages={"required": "Choose the week.", "invalid": "Choose the week."})


# --- locked periods -----------------------------------------------------------------------------------


class PeriodLockForm(forms.Form):
    month = forms.CharField(error_messages={"required": "Choose the month to lock."})

    def clean_month(self) -> dt.date:
        month = parse_month(self.cleaned_data.get("month"))
        if month is None:
            raise forms.ValidationError("Choose the month to lock, as YYYY-MM (e.g. 2026-03).")
        return month


# --- project teams ------------------------------------------------------------------------------------


class PersonWithRolesField(PersonChoiceField):
    """A person, labelled with their roles so the keeper sees who logs what (groups prefetched)."""

    def label_from_instance(self, obj) -> str:
        labels = [Role(group.name).label for group in obj.groups.all() if group.name in Role.values]
        name = obj.get_full_name() or obj.get_username()
        return f"{name} ({', '.join(sorted(labels))})" if labels else name


def _category_choices(categories) -> list[tuple[str, str]]:
    return [("", "None (they choose per entry)"), *((name, name) for name in categories)]


class TeamMemberAddForm(forms.Form):
    user = PersonWithRolesField(
        queryset=None,
        to_field_name="username",
        label="Person",
        empty_label="Choose a person",
        help_text="People holding a role that logs time: consultants, project managers and sales reps.",
        error_messages={
            "required": "Choose the person to add.",
            "invalid_choice": "Choose a person from the list: they hold a logging role and are not on the team yet.",
        },
    )
    labour_category = forms.ChoiceField(
        label="Usual labour category",
        required=False,
        help_text="From the project's rate card; their time entries start with it.",
        error_messages={"invalid_choice": "Choose a labour category from the project's rate card."},
    )

    def __init__(self, *args, people, categories, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = people
        self.fields["labour_category"].choices = _category_choices(categories)


class TeamMemberChangeForm(forms.Form):
    labour_category = forms.ChoiceField(
        label="Usual labour category",
        required=False,
        error_messages={"invalid_choice": "Choose a labour category from the project's rate card."},
    )

    def __init__(self, *args, categories, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["labour_category"].choices = _category_choices(categories)
