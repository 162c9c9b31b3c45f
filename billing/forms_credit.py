"""The "Credit…" form of an issued invoice: it parses what to credit (the whole invoice, or chosen lines with
an optional amount each), the root cause, the explanation and the release wish. The rules (what remains
creditable, when items may be released) live in ``billing.credit_notes``; its messages are put back onto the
fields here (``apply_domain_errors``)."""

from __future__ import annotations

from typing import Any

from django import forms

from backbone.errors import DomainError

from .credit_notes import CreditableLine
from .models import CreditReason

FULL, LINES = "full", "lines"


class CreditNoteForm(forms.Form):
    mode = forms.ChoiceField(
        label="What to credit",
        choices=[(FULL, "The whole invoice (what remains of every line)"), (LINES, "Chosen lines")],
        initial=FULL,
        widget=forms.RadioSelect,
    )
    reason = forms.ChoiceField(
        label="Root cause",
        choices=[("", "Choose the root cause"), *CreditReason.choices],
        help_text="Why the invoice was wrong: the accuracy metrics count credit notes by it.",
    )
    explanation = forms.CharField(
        label="Explanation",
        required=False,
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed on the credit note; required for the root cause Other.",
    )
    release_items = forms.BooleanField(
        label="Release the credited items for rebilling",
        required=False,
        help_text=(
            "The credited time, expenses, milestones and retainer months become billable again for a later run once "
            "the credit note is issued. Only for lines credited in full."
        ),
    )

    def __init__(self, *args, lines: list[CreditableLine], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.creditable = lines
        for creditable in lines:
            key = creditable.line.public_id.hex
            position = creditable.line.position
            self.fields[f"line_{key}"] = forms.BooleanField(label=f"Credit line {position}", required=False)
            self.fields[f"amount_{key}"] = forms.DecimalField(
                label=f"Amount to credit of line {position}",
                required=False,
                max_digits=18,
                decimal_places=2,
                widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
            )

    def rows(self, billed_items: dict[int, int] | None = None) -> list[dict[str, Any]]:
        """One row per line of the invoice for the template: the line, its amounts, its two inputs and how many
        billed items a credit of the whole line could release (``billed_items`` by line pk)."""
        billed_items = billed_items or {}
        return [
            {
                "creditable": creditable,
                "line": creditable.line,
                "check": self[f"line_{creditable.line.public_id.hex}"],
                "amount": self[f"amount_{creditable.line.public_id.hex}"],
                "billed_items": billed_items.get(creditable.line.pk, 0),
            }
            for creditable in self.creditable
        ]

    def credit_request(self) -> tuple[dict[str, Any], list[str]]:
        """The keyword arguments of ``credit_note_create`` (without actor and invoice), and the amount field of
        each chosen line in order (so that a service message about ``lines.<i>`` lands on its input). A line
        counts as chosen when it is ticked or has an amount."""
        data = self.cleaned_data
        full = data["mode"] == FULL
        chosen, fields = [], []
        if not full:
            for creditable in self.creditable:
                key = creditable.line.public_id.hex
                amount = data.get(f"amount_{key}")
                if data.get(f"line_{key}") or amount is not None:
                    chosen.append({"line": creditable.line, "amount": amount})
                    fields.append(f"amount_{key}")
        request = {
            "full": full,
            "lines": None if full else chosen,
            "reason": data["reason"],
            "explanation": data.get("explanation", ""),
            "release_items": bool(data.get("release_items")),
        }
        return request, fields

    def apply_domain_errors(self, exc: DomainError, chosen_fields: list[str]) -> None:
        """Put a service's messages next to the inputs they name (``lines.<i>.amount`` on the i-th chosen
        line's amount, ``lines``/``full`` on the mode, ``reason``…); the rest become the form's own error."""
        unplaced: list[str] = []
        for key, values in (exc.errors or {}).items():
            messages = [str(message) for message in (values if isinstance(values, list | tuple) else [values])]
            target = None
            if key in self.fields:
                target = key
            elif key in ("lines", "full"):
                target = "mode"
            elif key.startswith("lines."):
                index = key.split(".")[1]
                if index.isdigit() and int(index) < len(chosen_fields):
                    target = chosen_fields[int(index)]
            if target is None:
                unplaced += messages
                continue
            for message in messages:
                self.add_error(target, message)
        if not exc.errors:
            unplaced.append(exc.message)
        for message in unplaced:
            self.add_error(None, message)
