"""Forms of the billing pages: they parse input into Python values, nothing more. The rules (which
periods a run may bill, who may approve what) live in the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import QuerySet

from customers.models import Customer, LegalEntity
from projects.models import Project

from .models import Invoice, InvoiceRun

DATE = {"type": "date"}


def last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the calendar month before ``today``'s (the usual billing period)."""
    last_day = today.replace(day=1) - dt.timedelta(days=1)
    return last_day.replace(day=1), last_day


class RunChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: InvoiceRun) -> str:
        return f"{obj.number} · {obj.period_start:%Y-%m-%d} – {obj.period_end:%Y-%m-%d}"


class ProjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Project) -> str:
        return f"{obj.number} {obj.name}"


class InvoiceFilterForm(forms.Form):
    """The invoice list's filters. The selects offer only what occurs on the invoices the person sees (one
    query per select when it renders); the run filter only to those who may see runs."""

    q = forms.CharField(label="Invoice number", required=False, max_length=60)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *Invoice.Status.choices])
    customer = forms.ModelChoiceField(
        label="Customer", required=False, queryset=Customer.objects.none(), to_field_name="public_id"
    )
    legal_entity = forms.ModelChoiceField(
        label="Legal entity", required=False, queryset=LegalEntity.objects.none(), to_field_name="public_id"
    )
    project = ProjectChoiceField(
        label="Project", required=False, queryset=Project.objects.none(), to_field_name="public_id"
    )
    run = RunChoiceField(label="Run", required=False, queryset=InvoiceRun.objects.none(), to_field_name="public_id")

    def __init__(self, *args, invoices: QuerySet[Invoice], runs: QuerySet[InvoiceRun] | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        invoices = invoices.order_by()
        self.fields["customer"].queryset = Customer.objects.filter(pk__in=invoices.values("customer_id")).order_by(
            "display_name"
        )
        self.fields["legal_entity"].queryset = LegalEntity.objects.filter(
            pk__in=invoices.values("legal_entity_id")
        ).order_by("short_name")
        self.fields["project"].queryset = Project.objects.filter(pk__in=invoices.values("project_id")).order_by(
            "number"
        )
        if runs is None:
            del self.fields["run"]
        else:
            self.fields["run"].queryset = runs.order_by("-created_at", "-id")
            self.fields["run"].empty_label = "Any run"
        self.fields["customer"].empty_label = "Any customer"
        self.fields["legal_entity"].empty_label = "Any legal entity"
        self.fields["project"].empty_label = "Any project"
        for name, bound in self.fields.items():
            bound.widget.attrs["class"] = "form-control" if name == "q" else "form-select"

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}


class RunStartForm(forms.Form):
    legal_entity = forms.ModelChoiceField(
        label="Legal entity",
        queryset=LegalEntity.objects.none(),
        to_field_name="public_id",
        empty_label="Choose the entity that invoices",
        help_text="The run bills the projects this entity delivers.",
    )
    period_start = forms.DateField(label="Period start", widget=forms.DateInput(attrs=DATE))
    period_end = forms.DateField(
        label="Period end",
        widget=forms.DateInput(attrs=DATE),
        help_text="Approved items dated up to and including this day are billed.",
    )

    def __init__(self, *args, today: dt.date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        entities = LegalEntity.objects.filter(is_active=True).order_by("short_name")
        self.fields["legal_entity"].queryset = entities
        if not self.is_bound:
            only = list(entities[:2])
            if len(only) == 1:  # the usual case of one company: nothing to choose
                self.fields["legal_entity"].initial = only[0]
        start, end = last_month(today)
        self.fields["period_start"].initial = start
        self.fields["period_end"].initial = end

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and start > end:
            self.add_error("period_end", "The period ends before it starts.")
        return data


class ReasonForm(forms.Form):
    """Why an invoice goes back to draft or is discarded: recorded in its history, shown to the next person."""

    reason = forms.CharField(
        label="Reason", max_length=1000, widget=forms.Textarea(attrs={"rows": 3}), strip=True, required=True
    )
