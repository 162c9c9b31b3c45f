"""The History area's filter form."""

from __future__ import annotations

from django import forms

from .models import AuditEntry
from .selectors import history_models


class HistoryFilterForm(forms.Form):
    """GET filters of the audit list; every field is optional and an invalid one is simply ignored."""

    model = forms.ChoiceField(label="Record type", required=False)
    obj = forms.CharField(
        label="Record",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Name, number or public ID"}),
    )
    user = forms.CharField(
        label="Changed by", required=False, max_length=150, widget=forms.TextInput(attrs={"placeholder": "Username"})
    )
    action = forms.ChoiceField(label="Action", required=False, choices=[("", "Any"), *AuditEntry.Action.choices])
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "All records"), *history_models()]
        for bound in self.fields.values():
            css = (
                "form-select form-select-sm" if isinstance(bound, forms.ChoiceField) else "form-control form-control-sm"
            )
            bound.widget.attrs.setdefault("class", css)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    def filters(self) -> dict:
        """The valid filters as keyword arguments of ``audit_entry_list``."""
        self.is_valid()  # an invalid field drops out of cleaned_data; the valid ones still apply
        data = self.cleaned_data
        return {
            "model_label": data.get("model") or "",
            "obj": data.get("obj") or "",
            "username": data.get("user") or "",
            "action": data.get("action") or "",
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
