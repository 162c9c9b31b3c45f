"""Tax tables: jurisdictions with their rates over time, and the stored evidence of every calculation."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from backbone.models import PublicModel
from tax.rates import RATE_KINDS


class Jurisdiction(PublicModel):
    country = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2 code (GR for Greece).")
    name = models.CharField(max_length=80)
    currency = models.CharField(max_length=3, help_text="The national currency (ISO 4217).")
    in_eu = models.BooleanField("EU member state", default=False)
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["country"]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"


class TaxRate(PublicModel):
    """One VAT rate of a jurisdiction with the dates it is in force (both inclusive; open end = still in force).

    Windows of the same kind never overlap: the service refuses, so "the rate on date D" has one answer.
    """

    class Source(models.TextChoices):
        DATA_FILE = "data_file", "Shipped rate data"
        MANUAL = "manual", "Added in the app"

    jurisdiction = models.ForeignKey(Jurisdiction, on_delete=models.PROTECT, related_name="rates")
    kind = models.CharField(max_length=20, choices=RATE_KINDS)
    rate = models.DecimalField(max_digits=6, decimal_places=3, help_text="Percent, e.g. 19 or 25.5.")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day in force; empty while in force.")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    source_reference = models.CharField(
        max_length=200, blank=True, help_text="Where the figure comes from: the data file's source id or a citation."
    )
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["jurisdiction__country", "kind", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["jurisdiction", "kind", "valid_from"], name="tax_rate_unique_start"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")), name="tax_rate_window_ordered"
            ),
            models.CheckConstraint(condition=Q(rate__gte=0) & Q(rate__lt=100), name="tax_rate_percent_range"),
        ]

    def __str__(self) -> str:
        end = self.valid_to.isoformat() if self.valid_to else "…"
        return (
            f"{self.jurisdiction.country} {self.get_kind_display()} {self.rate.normalize()}% ({self.valid_from}–{end})"
        )


class RateDataLoad(models.Model):
    """Each load of the shipped rate data file: which version, when, with what outcome."""

    version = models.CharField(max_length=40)
    file_sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["-loaded_at", "-id"]
        get_latest_by = ["loaded_at", "id"]

    def __str__(self) -> str:
        return f"Rate data {self.version} loaded {self.loaded_at:%Y-%m-%d %H:%M}"


class TaxCalculation(PublicModel):
    """The evidence of one tax decision: what went in, who decided (engine, rates), what came out.

    Content never changes after creation; once ``locked_at`` is set (the document it belongs to was issued)
    the row can neither change nor be deleted. ``sha256`` is the hash of the canonical JSON of
    context + engine + rates version + result, so anyone can recompute and compare it.
    """

    context = models.JSONField(encoder=DjangoJSONEncoder)
    engine = models.CharField(max_length=60)
    engine_version = models.CharField(max_length=30)
    rate_data_version = models.CharField(max_length=60)
    rules_fired = models.JSONField(default=list)
    result = models.JSONField(encoder=DjangoJSONEncoder)
    legal_notes = models.JSONField(default=list)
    warnings = models.JSONField(default=list)
    place_of_supply = models.CharField(max_length=2, blank=True)
    currency = models.CharField(max_length=3)
    net_amount = models.DecimalField(max_digits=18, decimal_places=2)
    tax_amount = models.DecimalField(max_digits=18, decimal_places=2)
    tax_point = models.DateField()
    sha256 = models.CharField(max_length=64, db_index=True)
    purpose = models.CharField(max_length=40, blank=True, help_text="What asked for it, e.g. 'quote', 'invoice'.")
    document_type = models.CharField(max_length=40, blank=True)
    document_ref = models.CharField(max_length=100, blank=True, help_text="Public ID or number of the document.")
    locked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("preview_tax", "Can preview tax for quotes and invoice drafts")]
        indexes = [models.Index(fields=["document_type", "document_ref"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(locked_at__isnull=True) | ~Q(document_ref=""), name="tax_calculation_locked_has_document"
            )
        ]

    def __str__(self) -> str:
        return f"Tax calculation {self.public_id} ({self.engine} {self.engine_version})"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None
