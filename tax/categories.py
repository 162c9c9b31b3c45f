"""VAT category codes of UNCL5305 as EN 16931 uses them (BT-118 / BT-151)."""

from django.db import models


class TaxCategory(models.TextChoices):
    STANDARD = "S", "S — Standard rate"
    REDUCED = "AA", "AA — Lower (reduced) rate"
    ZERO = "Z", "Z — Zero rated"
    EXEMPT = "E", "E — Exempt from tax"
    REVERSE_CHARGE = "AE", "AE — VAT reverse charge"
    INTRA_COMMUNITY = "K", "K — Intra-community supply (VAT exempt)"
    EXPORT = "G", "G — Free export item, tax not charged"
    NOT_SUBJECT = "O", "O — Services outside the scope of tax"


# What a product or line may ask for. The other categories (AE, K, G, O) are outcomes the engine decides from
# who sells to whom and what; a product cannot claim them.
PRODUCT_TAX_CATEGORIES = [
    (TaxCategory.STANDARD.value, TaxCategory.STANDARD.label),
    (TaxCategory.REDUCED.value, TaxCategory.REDUCED.label),
    (TaxCategory.ZERO.value, TaxCategory.ZERO.label),
    (TaxCategory.EXEMPT.value, TaxCategory.EXEMPT.label),
]
