"""Projects and their contracts: what was sold (contract versions), the plan derived from it (rate card,
budget, milestones, billing rules) and the amendments that change it (change orders).

A contract version is immutable: its ``terms`` JSON is the complete frozen offer (prices, discounts, tax
treatment, rates with effective dates, budget, milestones, billing rules, terms, attachments). The working
tables below mirror the version in force now, so pages and time entry can query them; billing prices each
item with the version in force on the item's date (``projects.selectors.contract_version_on``).
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from backbone.models import PublicModel
from backbone.money import CURRENCY_CHOICES
from customers.models import BillingModel, Customer, Deal, Language, LegalEntity, Quote


def default_alert_thresholds() -> list[int]:
    return [75, 90, 100]


class Project(PublicModel):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold"
        CLOSED = "closed", "Closed"

    TRANSITIONS = {
        Status.PLANNED: {Status.ACTIVE, Status.CLOSED},
        Status.ACTIVE: {Status.ON_HOLD, Status.CLOSED},
        Status.ON_HOLD: {Status.ACTIVE, Status.CLOSED},
        Status.CLOSED: set(),
    }

    number = models.CharField(max_length=20, unique=True, editable=False)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="projects")
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="projects")
    deal = models.OneToOneField(
        Deal,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="project",
        help_text="The won deal it came from; one deal never makes two projects.",
    )
    project_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="managed_projects"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED, db_index=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    language = models.CharField(
        max_length=2,
        choices=Language.choices,
        default=Language.EN,
        help_text="Language of the itemisation on invoices.",
    )
    planned_start = models.DateField()
    planned_end = models.DateField()
    po_number = models.CharField("purchase order number", max_length=60, blank=True)
    po_required = models.BooleanField("PO required on invoices", default=False)
    portal_required = models.BooleanField("invoice portal required", default=False)
    payment_terms_days = models.PositiveSmallIntegerField(default=30, validators=[MaxValueValidator(365)])
    alert_thresholds = models.JSONField(
        default=default_alert_thresholds, help_text="Percentages of the budget that raise an alert, e.g. [75, 90, 100]."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(planned_end__gte=F("planned_start")), name="project_dates_ordered"),
        ]
        indexes = [models.Index(fields=["project_manager", "status"]), models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.Status(self.status), set())


class ContractVersion(PublicModel):
    """Version N of what the customer bought. Never changed once written (a trigger refuses on PostgreSQL)."""

    class Source(models.TextChoices):
        QUOTE = "quote", "Accepted quote"
        CHANGE_ORDER = "change_order", "Approved change order"
        MANUAL = "manual", "Created by hand"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="contract_versions")
    number = models.PositiveIntegerField()
    effective_from = models.DateField(help_text="The first day this version governs billing.")
    source = models.CharField(max_length=20, choices=Source.choices)
    quote = models.ForeignKey(Quote, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    change_order = models.OneToOneField(
        "projects.ChangeOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="resulting_version"
    )
    terms = models.JSONField(encoder=DjangoJSONEncoder, help_text="The complete frozen terms of this version.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of the terms.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="contract_version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project.number} contract v{self.number}"


class RateCardEntry(PublicModel):
    """A labour category's hourly rate from a date; the current rate card is the set in force today."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rate_card")
    labour_category = models.CharField(max_length=80)
    rate = models.DecimalField(max_digits=18, decimal_places=4, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    effective_from = models.DateField()
    contract_version = models.ForeignKey(ContractVersion, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "labour_category", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "labour_category", "effective_from"], name="rate_card_entry_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.labour_category}: {self.rate} {self.currency} from {self.effective_from}"


class BudgetLine(PublicModel):
    """The baseline budget: labour (hours times rate per category) and non-labour estimates."""

    class Kind(models.TextChoices):
        LABOUR = "labour", "Labour"
        NON_LABOUR = "non_labour", "Non-labour"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="budget_lines")
    key = models.CharField(
        max_length=40, help_text="Stable key across contract versions, e.g. 'labour:senior-consultant'."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    labour_category = models.CharField(max_length=80, blank=True)
    description = models.CharField(max_length=200)
    hours = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    rate = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "kind", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="budget_line_key_unique")]

    def __str__(self) -> str:
        return self.description


def milestone_document_path(instance: Milestone, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return f"milestones/{instance.public_id}/{uuid.uuid4().hex}{suffix}"


class Milestone(PublicModel):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACCEPTED = "accepted", "Accepted"
        BILLED = "billed", "Billed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="milestones")
    key = models.CharField(max_length=40, help_text="Stable key across contract versions.")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=120)
    phase = models.CharField(max_length=120, blank=True)
    planned_date = models.DateField()
    baseline_date = models.DateField(help_text="The date first promised; a later planned date is a slip.")
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    acceptance_criteria = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    # The client's acceptance, recorded by the project manager (the note is carried onto the invoice).
    accepted_by_name = models.CharField("accepted by (client)", max_length=120, blank=True)
    accepted_on = models.DateField("accepted on", null=True, blank=True)
    acceptance_note = models.TextField(blank=True, help_text="Client-facing: it appears on the invoice.")
    acceptance_document = models.FileField(
        upload_to=milestone_document_path, max_length=300, null=True, blank=True, help_text="The signed acceptance."
    )
    acceptance_document_filename = models.CharField(max_length=200, blank=True)
    acceptance_document_sha256 = models.CharField(max_length=64, blank=True)
    acceptance_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acceptance_recorded_at = models.DateTimeField(null=True, blank=True)
    invoice_ref = models.CharField(max_length=60, blank=True, help_text="The invoice that billed it.")
    billed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "planned_date", "position", "id"]
        permissions = [("accept_milestone", "Can record a milestone's acceptance by the client")]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="milestone_key_unique"),
            models.CheckConstraint(
                condition=Q(status="planned") | (Q(accepted_on__isnull=False) & ~Q(accepted_by_name="")),
                name="milestone_accepted_has_who_and_when",
            ),
            models.CheckConstraint(
                condition=~Q(status="billed") | ~Q(invoice_ref=""), name="milestone_billed_names_invoice"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BillingRule(PublicModel):
    """How the project is billed: one row per billing model in use."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="billing_rules")
    model = models.CharField(max_length=10, choices=BillingModel.choices)
    retainer_amount = models.DecimalField(
        "monthly retainer", max_digits=18, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    markup_percent = models.DecimalField(
        "markup on expenses %", max_digits=6, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "model"]
        constraints = [models.UniqueConstraint(fields=["project", "model"], name="billing_rule_one_per_model")]

    def __str__(self) -> str:
        return self.get_model_display()


def change_order_acceptance_path(instance: ChangeOrder, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return f"change-orders/{instance.public_id}/{uuid.uuid4().hex}{suffix}"


class ChangeOrder(PublicModel):
    """A structured amendment of the contract; approval produces the next contract version.

    ``changes`` is a list of operations, each ``{"op": ..., ...}``: ``budget_line.add|change|remove``,
    ``rate.set`` (labour category, rate, effective_from), ``milestone.add|move|change|remove``,
    ``end_date.set``, ``billing_rule.set|remove``. ``projects.changes`` validates and applies them.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    TRANSITIONS = {
        Status.DRAFT: {Status.SUBMITTED},
        Status.SUBMITTED: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: set(),
        Status.REJECTED: {Status.DRAFT},
    }

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="change_orders")
    number = models.CharField(max_length=20, unique=True, editable=False)
    title = models.CharField(max_length=200)
    reason = models.TextField(help_text="Why the scope or terms change.")
    changes = models.JSONField(encoder=DjangoJSONEncoder, default=list)
    effective_from = models.DateField(help_text="The first day the amended contract governs billing.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    customer_accepted_by = models.CharField("accepted by (customer)", max_length=120, blank=True)
    customer_accepted_on = models.DateField("accepted on", null=True, blank=True)
    customer_acceptance_file = models.FileField(
        upload_to=change_order_acceptance_path, max_length=300, null=True, blank=True
    )
    customer_acceptance_filename = models.CharField(max_length=200, blank=True)
    budget_delta_amount = models.DecimalField(
        max_digits=18, decimal_places=2, default=0, help_text="Change of the total budget, computed at submission."
    )
    touches_billing_terms = models.BooleanField(default=False, help_text="Changes rates or billing rules.")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_changeorder", "Can approve or reject change orders (within the approval limits)")]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.Status(self.status), set())


class BudgetAlert(PublicModel):
    """One alert per crossing: the unique key makes "once per threshold crossing" a database fact."""

    class Kind(models.TextChoices):
        BUDGET_THRESHOLD = "budget_threshold", "Budget threshold crossed"
        MILESTONE_SLIP = "milestone_slip", "Milestone date slipped"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=100, help_text="e.g. 'budget:v2:90' or 'slip:<milestone key>:2026-05-01'.")
    threshold_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    milestone = models.ForeignKey(Milestone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.CharField(max_length=300)
    actual_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    budget_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="budget_alert_once_per_crossing")]

    def __str__(self) -> str:
        return self.message


# --- time, expenses and locked periods ------------------------------------------------------------------


class ProjectMember(PublicModel):
    """Who may log time and expenses on a project (its manager may too), with their usual labour category."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="project_memberships")
    labour_category = models.CharField(max_length=80, blank=True, help_text="Default labour category of the person.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "user"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="project_member_unique")]

    def __str__(self) -> str:
        return f"{self.user} on {self.project.number}"


class EntryStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    BILLED = "billed", "Billed"


# One life cycle for time and expenses. Editing keeps a rejected entry rejected until it is submitted again;
# billed is final (corrections are adjustment entries).
ENTRY_TRANSITIONS = {
    EntryStatus.DRAFT: {EntryStatus.SUBMITTED},
    EntryStatus.SUBMITTED: {EntryStatus.APPROVED, EntryStatus.REJECTED},
    EntryStatus.REJECTED: {EntryStatus.SUBMITTED},
    EntryStatus.APPROVED: {EntryStatus.BILLED},
    EntryStatus.BILLED: set(),  # the one way back, billed → approved, is time_entries_release_billed (a credit note)
}
EDITABLE_STATUSES = frozenset({EntryStatus.DRAFT, EntryStatus.REJECTED})


class _BillableEntry(PublicModel):
    """Fields time entries and expenses share: who, where, when, and the approval and billing trail."""

    Status = EntryStatus
    TRANSITIONS = ENTRY_TRANSITIONS

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    date = models.DateField()
    description = models.TextField(help_text="Client-facing: it appears on the invoice.")
    billable = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=EntryStatus.choices, default=EntryStatus.DRAFT, db_index=True)
    rejection_reason = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    invoice_ref = models.CharField(max_length=60, blank=True, help_text="The invoice that billed it.")
    billed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(EntryStatus(self.status), set())

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES


class TimeEntry(_BillableEntry):
    """Hours (quarter-hour steps) of one person on one project, labour category and day."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="time_entries")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="time_entries")
    labour_category = models.CharField(max_length=80)
    hours = models.DecimalField(max_digits=5, decimal_places=2, help_text="Negative only on an adjustment.")
    adjusts = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjustments",
        help_text="The approved or billed entry this one corrects; the original never changes.",
    )
    external_system = models.SlugField(max_length=40, blank=True, help_text="e.g. 'harvest', 'toggl', 'kimai'.")
    external_id = models.CharField(max_length=100, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-date", "-id"]
        permissions = [("approve_timeentry", "Can approve or reject time and expenses")]
        constraints = [
            models.CheckConstraint(
                condition=Q(hours__gt=0) | Q(adjusts__isnull=False), name="time_entry_hours_positive_unless_adjusting"
            ),
            models.UniqueConstraint(
                fields=["external_system", "external_id"],
                condition=~Q(external_id=""),
                name="time_entry_external_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["person", "date"]),
            models.Index(fields=["project", "status", "date"]),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.hours} h {self.labour_category}"


def expense_receipt_path(instance: Expense, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return f"receipts/{instance.public_id}/{uuid.uuid4().hex}{suffix}"


class Expense(_BillableEntry):
    class Category(models.TextChoices):
        TRAVEL = "travel", "Travel"
        ACCOMMODATION = "accommodation", "Accommodation"
        MEALS = "meals", "Meals"
        SOFTWARE = "software", "Software"
        OTHER = "other", "Other"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="expenses")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="expenses")
    category = models.CharField(max_length=20, choices=Category.choices)
    amount = models.DecimalField(max_digits=18, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    receipt = models.FileField(upload_to=expense_receipt_path, max_length=300, null=True, blank=True)
    receipt_filename = models.CharField(max_length=200, blank=True)
    markup_percent = models.DecimalField(
        "markup %",
        max_digits=6,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="From the project's expenses billing rule when the expense was logged.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="expense_amount_positive")]
        indexes = [models.Index(fields=["project", "status", "date"]), models.Index(fields=["person", "date"])]

    def __str__(self) -> str:
        return f"{self.date} {self.get_category_display()} {self.amount} {self.currency}"


class LockedPeriod(PublicModel):
    """A month finance has closed: no time or expense dated in it is logged, changed or submitted."""

    month = models.DateField(unique=True, help_text="The first day of the month.")
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    locked_at = models.DateTimeField()

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return self.month.strftime("%B %Y")
