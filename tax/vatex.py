"""VAT exemption reason codes (CEF VATEX code list, as admitted by EN 16931 rule BR-CL-22 for BT-121).

Source: the CEF eInvoicing "VATEX" code list (Connecting Europe Facility, VAT exemption reason code list);
the English texts follow that list. Codes whose text is generated below follow its regular pattern:
one code per article, plus one per point of the article.
"""

from __future__ import annotations

_DIRECTIVE = "Council Directive 2006/112/EC"


def _article(article: str, points: str = "", section: str = "1") -> dict[str, str]:
    codes = {f"VATEX-EU-{article}": f"Exempt based on article {article} of {_DIRECTIVE}"}
    for point in points.split():
        if section:
            text = f"Exempt based on article {article}, section {section} ({point.lower()}) of {_DIRECTIVE}"
            codes[f"VATEX-EU-{article}-{section}{point}"] = text
        else:
            codes[f"VATEX-EU-{article}-{point}"] = (
                f"Exempt based on article {article}, section ({point.lower()}) of {_DIRECTIVE}"
            )
    return codes


VATEX: dict[str, str] = {
    "VATEX-EU-79-C": f"Exempt based on article 79, point c of {_DIRECTIVE}",
    **_article("132", "A B C D E F G H I J K L M N O P Q"),
    **_article("143", "A B C D E F FA G H I J K L"),
    **_article("148", "A B C D E F G", section=""),
    **_article("151", "A AA B C D E"),
    "VATEX-EU-309": f"Exempt based on article 309 of {_DIRECTIVE}",
    "VATEX-EU-AE": "Reverse charge",
    "VATEX-EU-D": "Intra-Community acquisition from second hand means of transport",
    "VATEX-EU-F": "Intra-Community acquisition of second hand goods",
    "VATEX-EU-G": "Export outside the EU",
    "VATEX-EU-I": "Intra-Community acquisition of works of art",
    "VATEX-EU-IC": "Intra-Community supply",
    "VATEX-EU-J": "Intra-Community acquisition of collectors items and antiques",
    "VATEX-EU-O": "Not subject to VAT",
    "VATEX-FR-FRANCHISE": "France domestic VAT franchise in base",
    "VATEX-FR-CNWVAT": "France domestic Credit Notes without VAT, due to supplier forfeit of VAT for discount",
}

# Codes that commit the breakdown to a category other than E (EN 16931 / Peppol rules P0104 to P0107).
CATEGORY_OF_CODE = {"VATEX-EU-AE": "AE", "VATEX-EU-IC": "K", "VATEX-EU-G": "G", "VATEX-EU-O": "O"}

# The default reason for a product whose own category is E (exempt by nature, e.g. financial services).
DEFAULT_EXEMPT_CODE = "VATEX-EU-132"

VATEX_CHOICES = [(code, f"{code} — {text}") for code, text in VATEX.items()]


def exemption_codes_for_category_e() -> list[tuple[str, str]]:
    """The VATEX codes a line or certificate of category E may carry."""
    return [(code, label) for code, label in VATEX_CHOICES if code not in CATEGORY_OF_CODE]
