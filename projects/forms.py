"""Forms of the project pages: they parse input into Python values, nothing more.

Every rule lives in ``projects.services`` and ``projects.terms``. A view builds the service's arguments with
the ``*_data()``/``operation()`` helpers here and, when the service refuses, hands its flat error keys
(``changes.2.rate``, ``budget.0.amount``) back with ``apply_domain_errors`` so that each message lands next
to the input it is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from backbone.errors import DomainError
from backbone.money import CURRENCY_CHOICES
from customers.models import BillingModel, Customer, Language
from customers.selectors import customers_visible_to, legal_entities_visible_to

from .models import BudgetLine, Project
from .selectors import is_admin, project_managers

DATE = {"type": "date"}
ACCEPTANCE_FILE_MAX_BYTES = 10 * 1024 * 1024
ACCEPTANCE_FILE_SUFFIXES = (".pdf", ".jpg", ".jpeg", ".png")


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


def _date_field(label: str, *, required: bool = True, help_text: str = "") -> forms.DateField:
    return forms.DateField(label=label, required=required, help_text=help_text, widget=forms.DateInput(attrs=DATE))


def _decimal_field(label: str, *, places: int, help_text: str = "", required: bool = False) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=0,
        max_digits=18,
        decimal_places=places,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )


# --- the project list's filters ---------------------------------------------------------------------------


class ProjectFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *Project.Status.choices])
    customer = forms.ModelChoiceField(
        label="Customer", required=False, queryset=Customer.objects.none(), to_field_name="public_id"
    )
    manager = PersonChoiceField(
        label="Project manager", required=False, queryset=project_managers(), to_field_name="username"
    )

    def __init__(self, *args, projects, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only customers that have a project the person sees (one query when the select renders).
        self.fields["customer"].queryset = Customer.objects.filter(
            pk__in=projects.order_by().values("customer_id")
        ).order_by("display_name")
        self.fields["customer"].empty_label = "Any customer"
        self.fields["manager"].empty_label = "Any project manager"
        for name in ("status", "customer", "manager"):
            self.fields[name].widget.attrs["class"] = "form-select"

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}


# --- a project by hand ------------------------------------------------------------------------------------


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), to_field_name="public_id")
    legal_entity = forms.ModelChoiceField(
        label="Delivered by",
        queryset=None,
        required=False,
        to_field_name="public_id",
        empty_label="(the customer's billing entity)",
        help_text="Which of our companies delivers and invoices.",
    )
    project_manager = PersonChoiceField(queryset=None, to_field_name="username", required=False)
    planned_start = _date_field("Planned start")
    planned_end = _date_field("Planned end")
    currency = forms.ChoiceField(
        choices=[("", "(the customer's currency)"), *CURRENCY_CHOICES], required=False, label="Currency"
    )
    language = forms.ChoiceField(
        choices=[("", "(the customer's invoice language)"), *Language.choices], required=False, label="Invoice language"
    )
    payment_terms_days = forms.IntegerField(
        label="Payment terms (net days)", min_value=0, max_value=365, required=False, help_text="Empty: the customer's."
    )
    po_number = forms.CharField(label="Purchase order number", max_length=60, required=False)
    po_required = forms.TypedChoiceField(
        label="PO required on invoices",
        choices=[("", "As the customer requires"), ("yes", "Yes"), ("no", "No")],
        coerce=lambda value: {"yes": True, "no": False}.get(value),
        empty_value=None,
        required=False,
    )
    portal_required = forms.BooleanField(label="Invoices go through the customer's portal", required=False)
    reason = forms.CharField(
        label="Why by hand?",
        max_length=200,
        required=False,
        help_text="Recorded in the history, e.g. 'Internal project' or 'Contract signed outside the pipeline'.",
    )

    FIELDS = (
        "name",
        "customer",
        "legal_entity",
        "project_manager",
        "planned_start",
        "planned_end",
        "currency",
        "language",
        "payment_terms_days",
        "po_number",
        "po_required",
        "portal_required",
        "reason",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = (
            customers_visible_to(user).exclude(status=Customer.Status.ARCHIVED).order_by("display_name")
        )
        self.fields["customer"].empty_label = "Choose a customer"
        self.fields["legal_entity"].queryset = legal_entities_visible_to(user).order_by("short_name")
        self.fields["project_manager"].empty_label = "Choose a project manager"
        if is_admin(user):
            self.fields["project_manager"].queryset = project_managers()
            self.fields["project_manager"].required = True
        else:
            del self.fields["project_manager"]  # a project manager creates the projects they manage

    def service_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.FIELDS if name in self.fields}
        for name in ("currency", "language", "payment_terms_days", "legal_entity"):
            if data.get(name) in ("", None):
                data.pop(name, None)
        return data


class RowForm(forms.Form):
    """A row of a plan formset; ``FIELDS`` go to the service, blanks left out."""

    FIELDS: tuple[str, ...] = ()

    def row_data(self) -> dict[str, Any]:
        row = {}
        for name in self.FIELDS:
            value = self.cleaned_data.get(name)
            if value in (None, "") or value is False:
                continue
            row[name] = value
        return row


class RateRowForm(RowForm):
    labour_category = forms.CharField(max_length=80, label="Labour category")
    rate = _decimal_field("Hourly rate", places=4, required=True)
    effective_from = _date_field("From", required=False, help_text="Empty: the planned start.")

    FIELDS = ("labour_category", "rate", "effective_from")


class BudgetRowForm(RowForm):
    kind = forms.ChoiceField(choices=BudgetLine.Kind.choices, initial=BudgetLine.Kind.LABOUR)
    labour_category = forms.CharField(max_length=80, required=False, label="Labour category")
    description = forms.CharField(max_length=200, required=False)
    hours = _decimal_field("Hours", places=2)
    rate = _decimal_field("Rate", places=4)
    amount = _decimal_field("Amount", places=2, help_text="Empty: hours × rate.")
    fixed_fee = forms.BooleanField(required=False, label="Fixed-fee scope")

    FIELDS = ("kind", "labour_category", "description", "hours", "rate", "amount", "fixed_fee")


class MilestoneRowForm(RowForm):
    name = forms.CharField(max_length=120)
    phase = forms.CharField(max_length=120, required=False)
    planned_date = _date_field("Planned date")
    amount = _decimal_field("Amount", places=2)
    acceptance_criteria = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Acceptance criteria"
    )

    FIELDS = ("name", "phase", "planned_date", "amount", "acceptance_criteria")


class BillingRuleRowForm(RowForm):
    model = forms.ChoiceField(choices=BillingModel.choices, label="Billing model")
    retainer_amount = _decimal_field("Monthly retainer", places=2, help_text="Retainer rules only.")
    markup_percent = _decimal_field("Markup on expenses %", places=2, help_text="Expenses rules only.")

    FIELDS = ("model", "retainer_amount", "markup_percent")


class BaseRowFormSet(forms.BaseFormSet):
    def rows(self) -> tuple[list[dict[str, Any]], list[forms.Form]]:
        """The dicts to send and the forms they came from (same index), skipping removed and blank rows."""
        rows, sent = [], []
        for form in self.forms:
            if self.can_delete and self._should_delete_form(form):
                continue
            if not form.has_changed():
                continue
            rows.append(form.row_data())
            sent.append(form)
        return rows, sent


def _formset(form, *, name: str, extra: int):
    formset = forms.formset_factory(form, formset=BaseRowFormSet, extra=extra, can_delete=True)
    formset.verbose_name = name
    return formset


PLAN_FORMSETS = (
    # prefix (the service's key), row form, what a row is called, blank rows offered
    ("rate_card", RateRowForm, "rate", 1),
    ("budget", BudgetRowForm, "budget line", 1),
    ("milestones", MilestoneRowForm, "milestone", 0),
    ("billing_rules", BillingRuleRowForm, "billing rule", 1),
)


def plan_formsets(data=None) -> dict[str, forms.BaseFormSet]:
    return {
        prefix: _formset(form, name=name, extra=extra)(data, prefix=prefix)
        for prefix, form, name, extra in PLAN_FORMSETS
    }


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Project.Status.choices)
    reason = forms.CharField(max_length=500, required=False)


# --- change orders ----------------------------------------------------------------------------------------


class ChangeOrderForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="e.g. 'Second data source and two more sprints'.")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Why the scope or the terms change.", label="Reason"
    )
    effective_from = _date_field(
        "Effective from", help_text="The first day the amended contract governs billing (time and items from then on)."
    )
    customer_accepted_by = forms.CharField(
        label="Accepted by (customer)",
        max_length=120,
        required=False,
        help_text="Who agreed on the customer's side, e.g. 'Ida Berg, COO'. Needed before submitting.",
    )
    customer_accepted_on = _date_field("Accepted on", required=False, help_text="Needed before submitting.")
    acceptance_file = forms.FileField(
        label="Customer's acceptance (file)",
        required=False,
        help_text="The signed change request or the customer's email: PDF, JPEG or PNG, at most 10 MB.",
        widget=forms.FileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )
    edit_reason = forms.CharField(
        label="What did you change?", max_length=200, required=False, help_text="Recorded in the history."
    )

    HEADER = ("title", "reason", "effective_from", "customer_accepted_by", "customer_accepted_on")

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not editing:
            del self.fields["edit_reason"]

    def clean_acceptance_file(self):
        upload = self.cleaned_data.get("acceptance_file")
        if not upload:
            return upload
        if not str(upload.name).lower().endswith(ACCEPTANCE_FILE_SUFFIXES):
            raise ValidationError("The acceptance file must be a PDF, JPEG or PNG.")
        if upload.size > ACCEPTANCE_FILE_MAX_BYTES:
            raise ValidationError(f"The acceptance file is {upload.size / 1024 / 1024:.1f} MB; at most 10 MB.")
        return upload

    def header_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.HEADER}
        data["customer_accepted_by"] = data["customer_accepted_by"] or ""
        return data


OPERATION_CHOICES = [
    ("", "Choose a change…"),
    (
        "Budget",
        [
            ("budget_line.add", "Add a budget line"),
            ("budget_line.change", "Change a budget line"),
            ("budget_line.remove", "Remove a budget line"),
        ],
    ),
    ("Rates", [("rate.set", "Set a rate from a date")]),
    (
        "Schedule",
        [
            ("milestone.add", "Add a milestone"),
            ("milestone.move", "Move a milestone"),
            ("milestone.change", "Change a milestone"),
            ("milestone.remove", "Remove a milestone"),
            ("end_date.set", "Move the end date"),
        ],
    ),
    ("Billing", [("billing_rule.set", "Set a billing rule"), ("billing_rule.remove", "Remove a billing rule")]),
]

# op → the row fields it shows, in order. ``budget_line``/``milestone`` are the selects of the key.
OPERATION_FIELDS: dict[str, tuple[str, ...]] = {
    "budget_line.add": ("kind", "labour_category", "new_labour_category", "description", "hours", "rate", "amount"),
    "budget_line.change": ("budget_line", "description", "hours", "rate", "amount"),
    "budget_line.remove": ("budget_line",),
    "rate.set": ("labour_category", "new_labour_category", "rate", "effective_from"),
    "milestone.add": ("name", "phase", "planned_date", "amount", "acceptance_criteria"),
    "milestone.move": ("milestone", "planned_date"),
    "milestone.change": ("milestone", "name", "phase", "amount", "acceptance_criteria"),
    "milestone.remove": ("milestone",),
    "end_date.set": ("planned_end",),
    "billing_rule.set": ("model", "retainer_amount", "markup_percent"),
    "billing_rule.remove": ("model",),
}
# Row fields that name the operation's ``key`` (the service reports key errors as ``changes.N.key``).
KEY_FIELDS = ("budget_line", "milestone")


class OperationForm(forms.Form):
    """One change of a change order. Every field is optional here: which ones an operation takes is
    ``OPERATION_FIELDS`` (the page shows only those), and the service says what is missing."""

    op = forms.ChoiceField(label="Change", choices=OPERATION_CHOICES)
    budget_line = forms.ChoiceField(label="Budget line", required=False)
    milestone = forms.ChoiceField(label="Milestone", required=False)
    kind = forms.ChoiceField(label="Kind", choices=BudgetLine.Kind.choices, required=False)
    labour_category = forms.ChoiceField(label="Labour category", required=False)
    new_labour_category = forms.CharField(
        label="…or a new labour category", max_length=80, required=False, help_text="Leave empty to use the one chosen."
    )
    description = forms.CharField(max_length=200, required=False)
    name = forms.CharField(label="Milestone name", max_length=120, required=False)
    phase = forms.CharField(max_length=120, required=False)
    hours = _decimal_field("Hours", places=2)
    rate = _decimal_field("Hourly rate", places=4)
    amount = _decimal_field("Amount", places=2)
    effective_from = _date_field("Rate from", required=False)
    planned_date = _date_field("Planned date", required=False)
    planned_end = _date_field("New end date", required=False)
    model = forms.ChoiceField(label="Billing model", choices=BillingModel.choices, required=False)
    retainer_amount = _decimal_field("Monthly retainer", places=2)
    markup_percent = _decimal_field("Markup on expenses %", places=2)
    acceptance_criteria = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Acceptance criteria"
    )

    def __init__(self, *args, choices: Mapping[str, Sequence[tuple[str, str]]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = choices or {}
        self.fields["budget_line"].choices = [("", "Choose a budget line"), *choices.get("budget_lines", [])]
        self.fields["milestone"].choices = [("", "Choose a milestone"), *choices.get("milestones", [])]
        self.fields["labour_category"].choices = [("", "Choose a category"), *choices.get("labour_categories", [])]

    @property
    def current_op(self) -> str:
        value = self["op"].value()
        return value if value in OPERATION_FIELDS else ""

    @property
    def shown_fields(self) -> tuple[str, ...]:
        """The inputs the page shows for the row's operation (the others are hidden until it changes)."""
        return OPERATION_FIELDS.get(self.current_op, ())

    def operation(self) -> dict[str, Any]:
        """The operation dict for the service: the op's own fields, blanks left out, keys under ``key``."""
        op = self.cleaned_data.get("op") or ""
        data: dict[str, Any] = {"op": op}
        for name in OPERATION_FIELDS.get(op, ()):
            value = self.cleaned_data.get(name)
            if value in (None, ""):
                continue
            if name in KEY_FIELDS:
                data["key"] = value
            elif name == "new_labour_category":
                data["labour_category"] = value.strip()
            elif name == "labour_category" and data.get("labour_category"):
                continue
            else:
                data[name] = value
        if op == "budget_line.add" and data.get("kind") == BudgetLine.Kind.NON_LABOUR:
            data.pop("labour_category", None)
        return data

    @classmethod
    def initial_from(cls, operation: Mapping[str, Any], choices: Mapping[str, Sequence[tuple[str, str]]]) -> dict:
        """The row's initial values from a stored operation (editing a draft)."""
        op = operation.get("op", "")
        initial: dict[str, Any] = {"op": op}
        known = {value for value, _ in choices.get("labour_categories", [])}
        for name, value in operation.items():
            if name == "key":
                initial["budget_line" if op.startswith("budget_line") else "milestone"] = value
            elif name == "labour_category" and value and value not in known:
                initial["new_labour_category"] = value
            elif name != "op":
                initial[name] = value
        return initial


class BaseOperationFormSet(forms.BaseFormSet):
    def __init__(self, *args, choices=None, **kwargs) -> None:
        self.choices = choices or {}
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "choices": self.choices}

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            choices=self.choices,
            renderer=self.renderer,
        )
        self.add_fields(form, None)
        return form

    def operations(self) -> tuple[list[dict[str, Any]], list[forms.Form]]:
        """The operations to send and the forms they came from (same index), skipping removed and blank rows."""
        rows, sent = [], []
        for form in self.forms:
            if self._should_delete_form(form) or not form.has_changed() or not form.cleaned_data.get("op"):
                continue
            rows.append(form.operation())
            sent.append(form)
        return rows, sent


OperationFormSet = forms.formset_factory(OperationForm, formset=BaseOperationFormSet, extra=0, can_delete=True)
OperationFormSet.verbose_name = "change"


def operation_choices(terms: Mapping[str, Any], money) -> dict[str, list[tuple[str, str]]]:
    """The selects of an operation row, from the terms in force: budget lines and milestones by key,
    labour categories from the rate card. ``money(amount)`` formats an amount of the project's currency."""
    categories = sorted(
        {entry["labour_category"] for entry in terms.get("rate_card", [])}
        | {line["labour_category"] for line in terms.get("budget", []) if line.get("labour_category")},
        key=str.lower,
    )
    return {
        "budget_lines": [
            (line["key"], f"{line['description']} — {money(Decimal(line['amount']))}")
            for line in terms.get("budget", [])
        ],
        "milestones": [(m["key"], f"{m['name']} — {m['planned_date']}") for m in terms.get("milestones", [])],
        "labour_categories": [(category, category) for category in categories],
    }


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="Why is it rejected?",
        help_text="The proposer reads this; say what would make it acceptable.",
    )


# --- the handoff ------------------------------------------------------------------------------------------


class DealWinForm(forms.Form):
    project_manager = PersonChoiceField(
        queryset=None, to_field_name="username", help_text="They run the project and approve its time and changes."
    )
    name = forms.CharField(label="Project name", max_length=200, required=False, help_text="Empty: the deal's title.")
    planned_start = _date_field("Planned start", required=False, help_text="Empty: the quote's planned start.")
    planned_end = _date_field("Planned end", required=False, help_text="Empty: the quote's planned end.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_manager"].queryset = project_managers()
        self.fields["project_manager"].empty_label = "Choose a project manager"


# --- milestone acceptance ----------------------------------------------------------------------------------


class MilestoneAcceptForm(forms.Form):
    accepted_by_name = forms.CharField(
        label="Accepted by (client side)",
        max_length=120,
        help_text="The person at the client who accepted the deliverable, e.g. 'Dr. Anna Weber, Head of IT'.",
    )
    accepted_on = forms.DateField(
        label="Accepted on", widget=forms.DateInput(attrs={"type": "date"}), help_text="The day the client accepted."
    )
    note = forms.CharField(
        label="Acceptance note",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Client-facing: it is carried onto the invoice that bills this milestone.",
    )
    document = forms.FileField(
        label="Signed acceptance (optional)",
        required=False,
        help_text="PDF, JPEG or PNG, at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )


class MilestoneWithdrawForm(forms.Form):
    reason = forms.CharField(
        label="Why is the acceptance withdrawn?",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the history, e.g. 'Recorded on the wrong milestone'.",
    )


# --- mapping service errors back onto the forms -----------------------------------------------------------


def apply_domain_errors(
    exc: DomainError,
    form: forms.Form,
    nested: Mapping[str, tuple[forms.BaseFormSet, Sequence[forms.Form]]] | None = None,
) -> None:
    """Put each of the service's flat error keys on the input it names.

    ``nested`` maps a list key (``"changes"``, ``"budget"``) to its formset and the forms whose rows were
    sent, in the order sent, so ``changes.1.rate`` reaches the second *sent* row even after removed or blank
    rows were dropped. A list-level key becomes a formset error; anything unknown a form-wide error.
    """
    nested = dict(nested or {})
    placed = False
    for key, messages in (exc.errors or {}).items():
        for message in messages if isinstance(messages, list | tuple) else [messages]:
            _place_error(str(key), str(message), form, nested)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _place_error(key: str, message: str, form: forms.Form, nested) -> None:
    head, _, rest = key.partition(".")
    if head in nested:
        formset, sent = nested[head]
        index, _, field = rest.partition(".")
        if index.isdigit() and int(index) < len(sent):
            row = sent[int(index)]
            _add_error(row, _row_field(row, field.split(".")[0]), message)
        else:
            formset._non_form_errors.append(message)
        return
    _add_error(form, head if head in form.fields else key, message)


def _row_field(row: forms.Form, field: str) -> str:
    """The input of a row that shows the service's ``field``: the key select of the row's operation, the
    labour category typed or chosen."""
    if field == "key":
        op = row.cleaned_data.get("op", "") if hasattr(row, "cleaned_data") else ""
        return "milestone" if str(op).startswith("milestone") else "budget_line"
    if field == "labour_category" and hasattr(row, "cleaned_data") and row.cleaned_data.get("new_labour_category"):
        return "new_labour_category"
    return field


def _add_error(form: forms.Form, field: str, message: str) -> None:
    """The field's error when the form shows that field, else an error of the whole form."""
    if field and field in form.fields and not form.fields[field].widget.is_hidden:
        form.add_error(field, message)
    else:
        form.add_error(None, message)
