"""Invoices and the runs that make them.

An **invoice run** selects, for one legal entity and billing period, the approved unbilled items of its
projects (``projects.selectors.unbilled_items``) and the retainer months due, and builds **draft invoices**
by each customer's consolidation preference. Every billable source item becomes one **invoice item**
(``InvoiceItem``: the time entry, expense, accepted milestone or retainer month, with its own price), and
items are rolled up into the printed **lines** (``InvoiceLine``). A database constraint keeps each source
item on at most one *live* invoice item: a discarded draft frees its items, a credit note frees them only
when it says so. What a run could not bill is recorded as a **run exception** with its reason: the humans'
work queue.

Life cycle of an invoice: draft → approved → issued (drafts can also be discarded; an approved invoice can
be sent back to draft). Issuing takes the gapless number; from then on the invoice and its lines never
change (the service refuses; on PostgreSQL a trigger refuses too).
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from backbone.models import PublicModel
from backbone.money import CURRENCY_CHOICES
from customers.models import Customer, Language, LegalEntity
from projects.models import Expense, Milestone, Project, TimeEntry
from tax.models import TaxCalculation


class InvoiceRun(PublicModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    number = models.CharField(max_length=20, unique=True, editable=False)
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="invoice_runs")
    period_start = models.DateField(help_text="The first day of the billing period (retainer months from it).")
    period_end = models.DateField(help_text="Items dated up to and including this day are billed.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trigger = models.CharField(max_length=10, default="page", help_text="page, api or schedule.")
    projects_total = models.PositiveIntegerField(default=0)
    projects_done = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    items_billed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("start_invoicerun", "Can start invoice runs")]
        constraints = [
            models.CheckConstraint(condition=Q(period_start__lte=models.F("period_end")), name="run_period_order"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.projects_total:
            return 0
        return min(100, int(self.projects_done * 100 / self.projects_total))


class RunException(PublicModel):
    """An item (or a whole project) a run could not bill, and why: data for the work queue and the metrics."""

    class Reason(models.TextChoices):
        PO_MISSING = "po_missing", "Purchase order missing"
        BILLING_ADDRESS_MISSING = "billing_address_missing", "Billing address missing"
        RATE_MISSING = "rate_missing", "No rate for the labour category"
        CONTRACT_NOT_IN_FORCE = "contract_not_in_force", "No contract version in force"
        TAX_CONTEXT_INCOMPLETE = "tax_context_incomplete", "Tax context incomplete"
        CURRENCY_MISMATCH = "currency_mismatch", "Currency differs from the project's"
        CUSTOMER_NOT_BILLABLE = "customer_not_billable", "Customer cannot be billed"

    run = models.ForeignKey(InvoiceRun, on_delete=models.CASCADE, related_name="exceptions")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=30, choices=Reason.choices, db_index=True)
    message = models.TextField()
    item_kind = models.CharField(max_length=20, blank=True, help_text="time, adjustment, expense, milestone…")
    item_public_id = models.UUIDField(null=True, blank=True)
    item_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["run", "project", "item_date", "id"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.message}"


class CreditReason(models.TextChoices):
    """Root causes of credit notes (the accuracy metrics count them)."""

    MISSING_TIME = "missing_time", "Missing time"
    MISAPPLIED_TAX = "misapplied_tax", "Misapplied tax"
    SCOPE_MISUNDERSTANDING = "scope_misunderstanding", "Scope misunderstanding"
    PRICING_ERROR = "pricing_error", "Pricing error"
    GOODWILL = "goodwill", "Goodwill"
    OTHER = "other", "Other"


class Invoice(PublicModel):
    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"  # UNTDID 1001: 380
        CREDIT_NOTE = "credit_note", "Credit note"  # 381

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        ISSUED = "issued", "Issued"
        DISCARDED = "discarded", "Discarded"

    class Grouping(models.TextChoices):
        ROLLED_UP = "rolled_up", "Rolled up by labour category, phase and rate"
        DETAILED = "detailed", "One line per entry"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
        help_text="Set when the invoice bills one project (per-project consolidation).",
    )
    run = models.ForeignKey(InvoiceRun, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    consolidation_key = models.CharField(
        max_length=120, blank=True, help_text="What the run grouped by: project:<id>, customer or po:<number>."
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    po_number = models.CharField("purchase order number", max_length=60, blank=True)
    notes = models.TextField(blank=True, help_text="Printed on the invoice.")
    grouping = models.CharField(max_length=10, choices=Grouping.choices, default=Grouping.ROLLED_UP)
    detail_appendix = models.BooleanField(default=False, help_text="Append the underlying entries.")
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    # Totals of the current lines (drafts: as previewed by the tax engine; issued: frozen).
    net_total = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    tax_total = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    gross_total = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    # Set at issue, never before.
    number = models.CharField(max_length=40, blank=True, db_index=True)
    fiscal_year = models.PositiveSmallIntegerField(null=True, blank=True)
    sequence = models.PositiveIntegerField(null=True, blank=True)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    seller = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True, help_text="Snapshot at issue.")
    buyer = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True, help_text="Snapshot at issue.")
    tax_breakdown = models.JSONField(encoder=DjangoJSONEncoder, default=list, blank=True)
    legal_notes = models.JSONField(default=list, blank=True, help_text="e.g. the reverse-charge mention.")
    tax_calculation = models.ForeignKey(
        TaxCalculation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    creditor_reference = models.CharField(max_length=35, blank=True, help_text="ISO 11649 RF reference.")
    credited_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Above the first approver's limit, a second person approves.",
    )
    second_approved_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    discarded_reason = models.TextField(blank=True)
    # Credit notes only: why (root cause, for the accuracy metrics) and whether the credited items are free
    # to be billed again.
    credit_reason = models.CharField(max_length=30, choices=CreditReason.choices, blank=True)
    credit_explanation = models.TextField(blank=True, help_text="Printed on the credit note.")
    releases_items = models.BooleanField(
        default=False, help_text="The credited source items may be billed again by a later run."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("approve_invoice", "Can approve invoices (within the approval limit)"),
            ("issue_invoice", "Can issue approved invoices"),
            ("send_invoice", "Can send issued invoices to the customer"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["legal_entity", "kind", "fiscal_year", "sequence"],
                condition=Q(sequence__isnull=False),
                name="invoice_gapless_number_once",
            ),
            models.UniqueConstraint(
                fields=["legal_entity", "number"], condition=~Q(number=""), name="invoice_number_unique"
            ),
            models.UniqueConstraint(
                fields=["creditor_reference"], condition=~Q(creditor_reference=""), name="invoice_rf_unique"
            ),
            models.CheckConstraint(
                condition=~Q(status="issued")
                | (~Q(number="") & Q(issue_date__isnull=False) & Q(due_date__isnull=False)),
                name="invoice_issued_has_number_and_dates",
            ),
            models.CheckConstraint(condition=Q(status="issued") | Q(number=""), name="invoice_number_only_at_issue"),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft {str(self.public_id)[:8]}"


class InvoiceLine(PublicModel):
    """A printed line: a roll-up of items (hours of one labour category at one rate, an expense, a
    milestone, a retainer month) or a manual line (catalog item, discount)."""

    class Kind(models.TextChoices):
        TIME = "time", "Time"
        ADJUSTMENT = "adjustment", "Adjustment"
        EXPENSE = "expense", "Expense"
        MILESTONE = "milestone", "Milestone"
        RETAINER = "retainer", "Retainer"
        MANUAL = "manual", "Manual"
        DISCOUNT = "discount", "Discount"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    description = models.TextField(help_text="Client-facing.")
    phase = models.CharField(max_length=120, blank=True)
    labour_category = models.CharField(max_length=80, blank=True)
    note = models.TextField(blank=True, help_text="e.g. a milestone's acceptance note.")
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    unit = models.CharField(max_length=3, default="HUR", help_text="UN/ECE Rec 20 (HUR hours, C62 one).")
    unit_price = models.DecimalField(max_digits=18, decimal_places=4)
    net_amount = models.DecimalField(max_digits=18, decimal_places=2)
    product_tax_category = models.CharField(
        max_length=2, default="S", help_text="What the line sells (S, AA, Z or E): the tax engine's input."
    )
    tax_category = models.CharField(
        max_length=2, default="S", help_text="The engine's decision (S, AE, K, G, O…): printed and summed."
    )
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    tax_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    service_start = models.DateField(null=True, blank=True)
    service_end = models.DateField(null=True, blank=True)
    credited_line = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credits",
        help_text="On a credit note: the line of the original invoice it credits.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["invoice", "position", "id"]

    def __str__(self) -> str:
        return self.description[:60]


class InvoiceItem(PublicModel):
    """One billed source item on a line: a time entry, an expense, an accepted milestone or a retainer
    month, with the price it was billed at. ``live`` is true while it is on a draft, approved or issued
    invoice; a database constraint keeps each source on at most one live item."""

    class Kind(models.TextChoices):
        TIME = "time", "Time"
        ADJUSTMENT = "adjustment", "Adjustment"
        EXPENSE = "expense", "Expense"
        MILESTONE = "milestone", "Milestone"
        RETAINER = "retainer", "Retainer month"

    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="items")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    time_entry = models.ForeignKey(TimeEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    expense = models.ForeignKey(Expense, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    milestone = models.ForeignKey(Milestone, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    retainer_month = models.DateField(null=True, blank=True, help_text="The first day of the month billed.")
    date = models.DateField()
    description = models.TextField()
    person_name = models.CharField(max_length=150, blank=True)
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    unit_price = models.DecimalField(max_digits=18, decimal_places=4)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    live = models.BooleanField(default=True)

    class Meta:
        ordering = ["line", "date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["time_entry"], condition=Q(live=True, time_entry__isnull=False), name="time_billed_once"
            ),
            models.UniqueConstraint(
                fields=["expense"], condition=Q(live=True, expense__isnull=False), name="expense_billed_once"
            ),
            models.UniqueConstraint(
                fields=["milestone"], condition=Q(live=True, milestone__isnull=False), name="milestone_billed_once"
            ),
            models.UniqueConstraint(
                fields=["project", "retainer_month"],
                condition=Q(live=True, retainer_month__isnull=False),
                name="retainer_month_billed_once",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["time", "adjustment"], time_entry__isnull=False)
                    | Q(kind="expense", expense__isnull=False)
                    | Q(kind="milestone", milestone__isnull=False)
                    | Q(kind="retainer", retainer_month__isnull=False)
                ),
                name="invoice_item_names_its_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date}"


def invoice_document_path(instance: InvoiceDocument, filename: str) -> str:
    return f"invoices/{instance.invoice.public_id}/{filename}"


class InvoiceDocument(PublicModel):
    """A rendered document of an issued invoice or credit note (the PDF), stored once with its SHA-256 and
    never rendered again: the invoice row itself is immutable once issued, so its documents live here."""

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PDF)
    file = models.FileField(upload_to=invoice_document_path, max_length=300)
    filename = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    pages = models.PositiveSmallIntegerField(default=0)
    renderer = models.CharField(max_length=60, help_text="e.g. 'weasyprint 66.0'.")
    rendered_at = models.DateTimeField()

    class Meta:
        ordering = ["invoice", "kind"]
        constraints = [models.UniqueConstraint(fields=["invoice", "kind"], name="invoice_document_once")]

    def __str__(self) -> str:
        return self.filename


class InvoiceComment(PublicModel):
    """A reviewer's remark on a draft (a project manager on the drafts of their projects, finance): kept with
    the invoice, never edited."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["invoice", "created_at", "id"]

    def __str__(self) -> str:
        return self.body[:60]


class Dispute(PublicModel):
    """A customer's objection to an issued invoice, raised from the portal (or recorded by finance). It is shown
    on the invoice for finance; collections pauses reminders while one is open."""

    class Reason(models.TextChoices):
        AMOUNT = "amount", "The amount is wrong"
        WORK_NOT_DONE = "work_not_done", "Work not done or not accepted"
        RATE = "rate", "Wrong rate or price"
        TAX = "tax", "Wrong tax"
        DUPLICATE = "duplicate", "Billed twice"
        PO = "po", "Purchase order or reference wrong"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        REJECTED = "rejected", "Rejected"

    class Source(models.TextChoices):
        PORTAL = "portal", "Client portal"
        FINANCE = "finance", "Recorded by finance"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="disputes")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    message = models.TextField()
    contact_name = models.CharField(max_length=150, blank=True)
    contact_email = models.EmailField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PORTAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("resolve_dispute", "Can resolve invoice disputes")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.get_status_display()})"


class PortalVisit(models.Model):
    """One opening of an invoice's portal link (no login): when, and from what browser."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="portal_visits")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=10, default="view", help_text="view, download or dispute.")
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.at:%Y-%m-%d %H:%M}"
