"""Demo data of the customers app: our two legal entities, a professional-services catalog and about 25
customers in DE, FR, NL, IE, GB, US and CH, created through the services (so history and numbers are real),
two of them with tax exemption certificates (one valid, one expired).

VAT numbers are made up but pass python-stdnum's format and checksum checks: each is a stem completed with
the first check digits that validate. They are not real companies' registrations.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import product as cartesian

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from backbone.services import external_id_lookup
from tax.registrations import RegistrationInvalid, validate_vat

from .models import Customer, LegalEntity, Product
from .services import (
    customer_create,
    customer_set_status,
    exemption_certificate_create,
    legal_entity_create,
    product_create,
)

DEMO_SYSTEM = "demo"

LEGAL_ENTITIES = [
    {
        "data": {
            "legal_name": "Throughline Studio GmbH",
            "short_name": "Studio GmbH",
            "line1": "Torstraße 140",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "DE",
            "default_currency": "EUR",
            "email": "billing@studio.example",
            "website": "https://studio.example",
            "company_register": "Amtsgericht Charlottenburg HRB 219876 B",
            "brand_colour": "#1F6FEB",
            "invoice_prefix": "DE",
        },
        "registrations": [{"kind": "vat", "country": "DE", "stem": "DE13658582"}],
        "bank_accounts": [
            {
                "bank_name": "Commerzbank Berlin",
                "account_holder": "Throughline Studio GmbH",
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX",
                "currency": "EUR",
                "is_default": True,
            },
        ],
    },
    {
        "data": {
            "legal_name": "Throughline Studio Ltd",
            "short_name": "Studio Ltd",
            "line1": "71 Shoreditch High Street",
            "postal_code": "E1 6JJ",
            "city": "London",
            "country": "GB",
            "default_currency": "GBP",
            "email": "accounts@studio.example",
            "website": "https://studio.example",
            "company_register": "Companies House 09876543",
            "brand_colour": "#0E7C66",
            "invoice_prefix": "UK",
        },
        "registrations": [{"kind": "vat", "country": "GB", "stem": "GB9807806"}],
        "bank_accounts": [
            {
                "bank_name": "Barclays London",
                "account_holder": "Throughline Studio Ltd",
                "iban": "GB29NWBK60161331926819",
                "bic": "NWBKGB2LXXX",
                "currency": "GBP",
                "is_default": True,
            },
        ],
    },
]

CATALOG = [
    (
        "STR-WORKSHOP",
        "Discovery workshop",
        "Two-day workshop with stakeholders to frame goals, users and scope.",
        "service",
        "DAY",
        "1800",
        "fixed",
        "8400",
        "S",
        "on_delivery",
    ),
    (
        "STR-RESEARCH",
        "User research",
        "Interviews, synthesis and a findings report.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "DES-UX",
        "UX design",
        "Flows, wireframes and prototypes.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "DES-UI",
        "Visual design",
        "Design system and high-fidelity screens.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "ENG-FE",
        "Front-end engineering",
        "Web front-end development.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "ENG-BE",
        "Back-end engineering",
        "APIs, integrations and data.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "PM",
        "Project management",
        "Planning, delivery management and reporting.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "QA",
        "Quality assurance",
        "Test planning, exploratory and automated testing.",
        "service",
        "HUR",
        "0",
        "rate_card",
        "8400",
        "S",
        "on_issue",
    ),
    (
        "RET-SUPPORT",
        "Support retainer",
        "Monthly support and maintenance retainer, up to 20 hours.",
        "service",
        "MON",
        "3200",
        "fixed",
        "8410",
        "S",
        "ratably",
    ),
    (
        "HOST-MANAGED",
        "Managed hosting",
        "Managed cloud hosting and monitoring per month.",
        "service",
        "MON",
        "450",
        "fixed",
        "8420",
        "S",
        "ratably",
    ),
    (
        "LIC-FONT",
        "Font licence",
        "Commercial web-font licence, one year.",
        "goods",
        "ANN",
        "390",
        "fixed",
        "8300",
        "S",
        "on_issue",
    ),
    (
        "TRAIN-DAY",
        "Training day",
        "On-site team training, per day.",
        "service",
        "DAY",
        "1500",
        "fixed",
        "8400",
        "S",
        "on_delivery",
    ),
    (
        "EXP-TRAVEL",
        "Travel expenses",
        "Rebillable travel at cost plus markup.",
        "expense",
        "C62",
        "0",
        "fixed",
        "8600",
        "S",
        "on_issue",
    ),
    (
        "EXP-SOFTWARE",
        "Third-party software",
        "Rebillable licences and services bought for the client.",
        "expense",
        "C62",
        "0",
        "fixed",
        "8600",
        "S",
        "on_issue",
    ),
    (
        "FEE-RUSH",
        "Rush delivery fee",
        "Surcharge for delivery inside five working days.",
        "fee",
        "LS",
        "750",
        "fixed",
        "8490",
        "S",
        "on_issue",
    ),
]

# (key, legal name, country, city, street, postal code, VAT stem or None, currency, owner, status,
#  billing contact, language, channel, PO required)
CUSTOMERS = [
    (
        "C01",
        "Nordlicht Energie AG",
        "DE",
        "Hamburg",
        "Am Sandtorkai 50",
        "20457",
        "DE2418863",
        "EUR",
        "sales",
        "active",
        ("Katrin", "Vogel", "ap@nordlicht-energie.example"),
        "de",
        "einvoice",
        True,
    ),
    (
        "C02",
        "Brauhaus Isar GmbH",
        "DE",
        "München",
        "Tal 12",
        "80331",
        "DE3117706",
        "EUR",
        "sales",
        "active",
        ("Florian", "Huber", "rechnung@brauhaus-isar.example"),
        "de",
        "email",
        False,
    ),
    (
        "C03",
        "Kessler Logistik GmbH & Co. KG",
        "DE",
        "Bremen",
        "Überseetor 18",
        "28217",
        "DE8115326",
        "EUR",
        "sales2",
        "on_hold",
        ("Sabine", "Kessler", "buchhaltung@kessler-logistik.example"),
        "de",
        "email",
        True,
    ),
    (
        "C04",
        "Rheinwerk Medien GmbH",
        "DE",
        "Köln",
        "Hohenzollernring 72",
        "50672",
        "DE1227539",
        "EUR",
        "sales",
        "prospect",
        ("Tobias", "Schäfer", "finance@rheinwerk.example"),
        "de",
        "email",
        False,
    ),
    (
        "C05",
        "Atelier Lumière SAS",
        "FR",
        "Paris",
        "12 Rue de Rivoli",
        "75004",
        "FR3032650",
        "EUR",
        "sales",
        "active",
        ("Claire", "Martin", "compta@atelier-lumiere.example"),
        "fr",
        "email",
        False,
    ),
    (
        "C06",
        "Vignobles Roussel SARL",
        "FR",
        "Bordeaux",
        "8 Quai des Chartrons",
        "33000",
        "FR7329155",
        "EUR",
        "sales2",
        "active",
        ("Hugo", "Roussel", "factures@vignobles-roussel.example"),
        "fr",
        "portal",
        True,
    ),
    (
        "C07",
        "Groupe Méridien SA",
        "FR",
        "Lyon",
        "25 Rue de la République",
        "69002",
        "FR5524481",
        "EUR",
        "sales",
        "active",
        ("Élodie", "Bernard", "ap@groupe-meridien.example"),
        "fr",
        "einvoice",
        True,
    ),
    (
        "C08",
        "Méridien Digital SAS",
        "FR",
        "Lyon",
        "25 Rue de la République",
        "69002",
        "FR4418377",
        "EUR",
        "sales",
        "active",
        ("Julien", "Petit", "ap-digital@groupe-meridien.example"),
        "fr",
        "email",
        True,
    ),
    (
        "C09",
        "Grachtenhuis B.V.",
        "NL",
        "Amsterdam",
        "Herengracht 182",
        "1016 BR",
        "NL00449544",
        "EUR",
        "sales",
        "active",
        ("Sanne", "Bakker", "crediteuren@grachtenhuis.example"),
        "en",
        "einvoice",
        False,
    ),
    (
        "C10",
        "Fietsfabriek Utrecht B.V.",
        "NL",
        "Utrecht",
        "Oudegracht 231",
        "3511 NK",
        "NL81234567",
        "EUR",
        "sales2",
        "prospect",
        ("Daan", "de Jong", "finance@fietsfabriek.example"),
        "en",
        "email",
        False,
    ),
    (
        "C11",
        "Havenkraan Rotterdam N.V.",
        "NL",
        "Rotterdam",
        "Wilhelminakade 137",
        "3072 AP",
        "NL12345678",
        "EUR",
        "sales",
        "active",
        ("Lotte", "Visser", "ap@havenkraan.example"),
        "en",
        "email",
        True,
    ),
    (
        "C12",
        "Liffey Analytics Ltd",
        "IE",
        "Dublin",
        "1 Grand Canal Square",
        "D02 P820",
        "IE643343",
        "EUR",
        "sales",
        "active",
        ("Aoife", "Byrne", "accounts@liffey-analytics.example"),
        "en",
        "email",
        False,
    ),
    (
        "C13",
        "Claddagh Foods Ltd",
        "IE",
        "Galway",
        "Dock Road 4",
        "H91 X2YK",
        "IE812345",
        "EUR",
        "sales2",
        "active",
        ("Seán", "Murphy", "payables@claddagh-foods.example"),
        "en",
        "portal",
        True,
    ),
    (
        "C14",
        "Thames & Co Publishing Ltd",
        "GB",
        "London",
        "80 Strand",
        "WC2R 0RL",
        "GB1234567",
        "GBP",
        "sales",
        "active",
        ("Oliver", "Bennett", "accounts.payable@thamesco.example"),
        "en",
        "email",
        False,
    ),
    (
        "C15",
        "Pennine Outdoor Ltd",
        "GB",
        "Manchester",
        "1 Spinningfields",
        "M3 3AP",
        "GB2345678",
        "GBP",
        "sales2",
        "active",
        ("Harriet", "Clarke", "invoices@pennine-outdoor.example"),
        "en",
        "email",
        True,
    ),
    (
        "C16",
        "Caledonia Renewables plc",
        "GB",
        "Edinburgh",
        "50 Lothian Road",
        "EH3 9WJ",
        "GB3456789",
        "GBP",
        "sales",
        "prospect",
        ("Callum", "Fraser", "ap@caledonia-renewables.example"),
        "en",
        "email",
        True,
    ),
    (
        "C17",
        "Bristol Harbour Studios Ltd",
        "GB",
        "Bristol",
        "Canons Way 3",
        "BS1 5TX",
        "GB4567891",
        "GBP",
        "sales",
        "archived",
        ("Poppy", "Evans", "finance@bristolharbour.example"),
        "en",
        "post",
        False,
    ),
    (
        "C18",
        "Golden Gate Robotics Inc.",
        "US",
        "San Francisco",
        "500 Howard Street",
        "94105",
        None,
        "USD",
        "sales",
        "active",
        ("Ethan", "Brooks", "ap@goldengate-robotics.example"),
        "en",
        "email",
        True,
    ),
    (
        "C19",
        "Hudson Valley Media LLC",
        "US",
        "New York",
        "75 Ninth Avenue",
        "10011",
        None,
        "USD",
        "sales2",
        "active",
        ("Maya", "Collins", "payables@hudsonvalleymedia.example"),
        "en",
        "portal",
        False,
    ),
    (
        "C20",
        "Lone Star Clinics Inc.",
        "US",
        "Austin",
        "600 Congress Avenue",
        "78701",
        None,
        "USD",
        "sales",
        "prospect",
        ("Carlos", "Ramirez", "finance@lonestarclinics.example"),
        "en",
        "email",
        False,
    ),
    (
        "C21",
        "Alpenblick Versicherungen AG",
        "CH",
        "Zürich",
        "Bahnhofstrasse 45",
        "8001",
        "CHE11628171",
        "CHF",
        "sales",
        "active",
        ("Reto", "Meier", "kreditoren@alpenblick.example"),
        "de",
        "einvoice",
        True,
    ),
    (
        "C22",
        "Genève Horlogerie SA",
        "CH",
        "Genève",
        "Rue du Rhône 62",
        "1204",
        "CHE10599621",
        "CHF",
        "sales2",
        "active",
        ("Camille", "Favre", "comptabilite@geneve-horlogerie.example"),
        "fr",
        "email",
        False,
    ),
    (
        "C23",
        "Berner Bergbahnen AG",
        "CH",
        "Bern",
        "Bundesplatz 3",
        "3011",
        "CHE13012345",
        "CHF",
        "sales",
        "on_hold",
        ("Urs", "Zaugg", "buchhaltung@berner-bergbahnen.example"),
        "de",
        "post",
        False,
    ),
    (
        "C24",
        "Spree Mobility GmbH",
        "DE",
        "Berlin",
        "Friedrichstraße 68",
        "10117",
        "DE2957264",
        "EUR",
        "sales2",
        "active",
        ("Lena", "Wagner", "ap@spree-mobility.example"),
        "en",
        "email",
        False,
    ),
    (
        "C25",
        "Elbe Health Tech GmbH",
        "DE",
        "Dresden",
        "Prager Straße 10",
        "01069",
        "DE1450713",
        "EUR",
        "sales",
        "active",
        ("Jan", "Richter", "rechnungen@elbe-healthtech.example"),
        "de",
        "einvoice",
        True,
    ),
    (
        "C26",
        "European Marine Observatory Organisation",
        "DE",
        "Hamburg",
        "Bernhard-Nocht-Straße 78",
        "20359",
        None,
        "EUR",
        "sales",
        "active",
        ("Ingrid", "Solberg", "procurement@emoo.example"),
        "en",
        "email",
        True,
    ),
]
GROUP_PARENTS = {"C08": "C07"}

# (customer key, reference, VATEX code, printed text, country, valid from / to as (years from this year,
#  month, day), note). C26 is an international body exempt in Germany (Art. 151(1)(b)) with a current
#  certificate; C03's certificate for a NATO logistics contract (Art. 151(1)(c)) expired at the end of
#  last year, so its invoices show VAT again and the engine says why.
EXEMPTION_CERTIFICATES = [
    (
        "C26",
        "BZSt-IO-0147",
        "VATEX-EU-151-1B",
        "Exempt supply to an international body recognised by Germany (Art. 151(1)(b) Directive 2006/112/EC)",
        "DE",
        (-1, 1, 1),
        (1, 12, 31),
        "Certificate of the Federal Central Tax Office; renew before it expires.",
    ),
    (
        "C03",
        "NATO-LOG-0815",
        "VATEX-EU-151-1C",
        "",
        "DE",
        (-3, 1, 1),
        (-1, 12, 31),
        "Framework contract for allied forces' logistics, ended.",
    ),
]


def complete_vat(stem: str) -> str:
    """The first number that starts with ``stem`` and passes its country's checksum (digits, or a letter
    for Ireland's check character)."""
    country = "GR" if stem[:2] == "EL" else stem[:2]
    tails = {
        "IE": ["".join(t) for t in cartesian("0123456789", "ABCDEFGHIJKLMNOPQRSTUVW")],
        "NL": [f"{d}B01" for d in "0123456789"],
        "CH": [f"{d}MWST" for d in "0123456789"],
        "FR": None,
    }.get(country) or ["".join(t) for t in cartesian("0123456789", repeat=2)] + list("0123456789")
    if country == "FR":
        # French VAT: FR + two-digit key + SIREN; the stem carries the SIREN's first 7 digits.
        siren_head = stem[2:]
        for key, tail in cartesian(range(100), ["".join(t) for t in cartesian("0123456789", repeat=2)]):
            candidate = f"FR{key:02d}{siren_head}{tail}"
            try:
                return validate_vat(candidate, "FR").number
            except RegistrationInvalid:
                continue
    for tail in tails:
        try:
            return validate_vat(f"{stem}{tail}", country).number
        except RegistrationInvalid:
            continue
    raise ValueError(f"No valid VAT number completes {stem}.")


def _demo_user(username: str):
    return get_user_model().objects.filter(username=username).first()


def seed_customers(*, password: str = "", **_) -> str:
    admin = _demo_user("admin")
    if admin is None:
        raise RuntimeError("Run the users seeder first: the demo data is created by the demo admin.")
    entities = {}
    for spec in LEGAL_ENTITIES:
        entity = LegalEntity.objects.filter(legal_name=spec["data"]["legal_name"]).first()
        if entity is None:
            registrations = [
                {"kind": r["kind"], "country": r["country"], "number": complete_vat(r["stem"])}
                for r in spec["registrations"]
            ]
            entity = legal_entity_create(
                user=admin,
                data=spec["data"],
                registrations=registrations,
                bank_accounts=spec["bank_accounts"],
                reason="Demo data",
            )
        entities[entity.country.code] = entity

    new_products = 0
    for code, name, description, kind, unit, price, rule, account, category, recognition in CATALOG:
        if not Product.objects.filter(code=code).exists():
            product_create(
                user=admin,
                reason="Demo data",
                data={
                    "code": code,
                    "name": name,
                    "description": description,
                    "kind": kind,
                    "unit": unit,
                    "default_price_amount": Decimal(price),
                    "currency": "EUR",
                    "pricing_rule": rule,
                    "revenue_account": account,
                    "default_tax_category": category,
                    "revenue_recognition": recognition,
                },
            )
            new_products += 1

    new_customers = 0
    created: dict[str, Customer] = {}
    for (
        key,
        legal_name,
        country,
        city,
        street,
        postal,
        vat_stem,
        currency,
        owner,
        status,
        contact,
        language,
        channel,
        po_required,
    ) in CUSTOMERS:
        existing = external_id_lookup(model=Customer, system=DEMO_SYSTEM, external_id=key)
        if existing is not None:
            created[key] = existing
            continue
        with transaction.atomic():
            owner_user = _demo_user(owner)
            first, last, email = contact
            registrations = [{"country": country, "number": complete_vat(vat_stem)}] if vat_stem else []
            customer = customer_create(
                user=owner_user,
                data={
                    "legal_name": legal_name,
                    "display_name": legal_name.split(" GmbH")[0].split(" Ltd")[0].split(" SAS")[0],
                    "default_currency": currency,
                    "billing_entity": entities["GB" if country in ("GB", "IE", "US") else "DE"],
                    "payment_terms_days": 14 if country == "DE" else 30,
                    "invoice_language": language,
                    "delivery_channel": channel,
                    "purchase_order_required": po_required,
                    "consolidation": "per_purchase_order" if po_required else "per_project",
                    "parent": created.get(GROUP_PARENTS.get(key, "")),
                    "einvoice_endpoint": "0088:54" + key[1:].zfill(11) if channel == "einvoice" else "",
                },
                addresses=[
                    {"kind": "billing", "line1": street, "postal_code": postal, "city": city, "country": country}
                ],
                registrations=registrations,
                contacts=[
                    {
                        "first_name": first,
                        "last_name": last,
                        "email": email,
                        "role": "billing",
                        "receives_invoices": True,
                        "receives_reminders": True,
                        "job_title": "Accounts payable",
                    },
                    {
                        "first_name": "Project",
                        "last_name": "Sponsor",
                        "email": f"sponsor.{key.lower()}@example.com",
                        "role": "primary",
                        "job_title": "Head of Digital",
                    },
                ],
                external_ids=[{"system": DEMO_SYSTEM, "external_id": key}],
                reason="Demo data",
            )
            path = {"active": ["active"], "on_hold": ["active", "on_hold"], "archived": ["active", "archived"]}
            for step in path.get(status, []):
                customer = customer_set_status(
                    user=owner_user, customer=customer, status=step, reason="Demo data: lifecycle"
                )
            created[key] = customer
            new_customers += 1
    new_certificates = _seed_exemption_certificates(created)
    return (
        f"{len(entities)} legal entities, {Product.objects.count()} products ({new_products} new), "
        f"{len(created)} customers ({new_customers} new), {new_certificates} new exemption certificates"
    )


def _seed_exemption_certificates(customers: dict[str, Customer]) -> int:
    """Recorded by the demo finance user; a certificate already on file (same reference) is left alone."""
    finance = _demo_user("finance") or _demo_user("admin")
    this_year = timezone.localdate().year
    new = 0
    for key, reference, code, text, country, starts, ends, note in EXEMPTION_CERTIFICATES:
        customer = customers.get(key)
        if customer is None or customer.exemption_certificates.filter(reference=reference).exists():
            continue
        exemption_certificate_create(
            user=finance,
            customer=customer,
            data={
                "reference": reference,
                "reason_code": code,
                "reason": text,
                "country": country,
                "valid_from": dt.date(this_year + starts[0], starts[1], starts[2]),
                "valid_to": dt.date(this_year + ends[0], ends[1], ends[2]),
                "note": note,
            },
            reason="Demo data",
        )
        new += 1
    return new


# --- the sales pipeline -------------------------------------------------------------------------------
#
# Deals in every open stage and some lost, for both demo sales reps, with quotes in every state: drafts, sent
# ones, a newer version beside a superseded one, a declined one, and one accepted quote waiting for "Mark won".
# Won deals are the projects seeder's (it wins its own deals through the handoff, which creates the projects).


def _tm(description: str, role: str, hours: str, rate: str, discount: str = "0", product: str = "") -> dict:
    return {
        "product": product,
        "description": description,
        "billing_model": "tm",
        "labour_category": role,
        "quantity": Decimal(hours),
        "unit": "HUR",
        "unit_price": Decimal(rate),
        "discount_percent": Decimal(discount),
    }


def _fixed(description: str, phase: str, amount: str, product: str = "", unit: str = "LS", quantity: str = "1") -> dict:
    return {
        "product": product,
        "description": description,
        "phase": phase,
        "billing_model": "fixed_fee",
        "quantity": Decimal(quantity),
        "unit": unit,
        "unit_price": Decimal(amount),
    }


def _expenses(description: str, amount: str, product: str = "") -> dict:
    return {
        "product": product,
        "description": description,
        "billing_model": "expenses",
        "quantity": Decimal("1"),
        "unit": "LS",
        "unit_price": Decimal(amount),
    }


def _retainer(description: str, months: int, monthly: str, product: str = "") -> dict:
    return {
        "product": product,
        "description": description,
        "billing_model": "retainer",
        "quantity": Decimal(months),
        "unit": "MON",
        "unit_price": Decimal(monthly),
    }


# key, customer, owner, title, stage, expected close (days from today), next step or lost reason, quote plan.
# A quote plan: (terms, lines, milestones as (name, phase, days from start, amount, criteria), what happens:
# "draft", "sent", "accepted", "revised" (v1 sent, v2 sent), "redraft" (v1 sent, v2 draft), "declined" (sent,
# then declined when the deal is lost).
DEMO_DEALS = [
    (
        "DEAL-DEMO-01",
        "C04",
        "sales",
        "Editorial CMS migration",
        "qualified",
        60,
        "Scoping call with their head of content",
        None,
    ),
    (
        "DEAL-DEMO-02",
        "C10",
        "sales2",
        "E-bike configurator",
        "qualified",
        75,
        "Send references from other configurators",
        None,
    ),
    (
        "DEAL-DEMO-03",
        "C16",
        "sales",
        "Asset monitoring dashboard",
        "qualified",
        50,
        "Estimate with the data team",
        (
            {"terms": "Time and materials, invoiced monthly in arrears."},
            [
                _tm("Discovery and data audit", "Senior consultant", "60", "140"),
                _tm("Dashboard build", "Developer", "240", "95"),
            ],
            [],
            "draft",
        ),
    ),
    (
        "DEAL-DEMO-04",
        "C07",
        "sales",
        "Group intranet redesign",
        "proposal",
        30,
        "Walk their board through the offer",
        (
            {"terms": "Fixed fee per phase, invoiced on acceptance of each milestone.", "po_number": "PO-MER-2026-118"},
            [
                _fixed("Discovery workshop", "Discovery", "1800", product="STR-WORKSHOP", unit="DAY", quantity="2"),
                _fixed("Design: information architecture and key screens", "Design", "16400"),
                _fixed("Build and launch", "Build", "28000"),
                _tm("Content migration support", "Content editor", "80", "85", product=""),
            ],
            [
                ("Discovery report accepted", "Discovery", 14, "3600", "Findings and goals signed off by the sponsor."),
                ("Design signed off", "Design", 50, "16400", "Key screens and design system approved."),
                ("Intranet live", "Build", 110, "28000", "Launched to all employees, handover done."),
            ],
            "sent",
        ),
    ),
    (
        "DEAL-DEMO-05",
        "C14",
        "sales",
        "Reader app discovery",
        "proposal",
        21,
        "Follow up on the sent quote",
        (
            {"terms": "Fixed fee, half on kick-off acceptance and half on the final report."},
            [_fixed("Discovery sprint: research, concepts, roadmap", "Discovery", "24000")],
            [
                ("Research plan accepted", "Discovery", 10, "12000", "Interview plan and recruits agreed."),
                ("Final report and roadmap", "Discovery", 45, "12000", "Roadmap presented to the leadership team."),
            ],
            "sent",
        ),
    ),
    (
        "DEAL-DEMO-06",
        "C24",
        "sales2",
        "Fleet booking platform",
        "proposal",
        40,
        "Revised offer with a 5 % discount",
        (
            {"terms": "Time and materials with a not-to-exceed budget review every month."},
            [
                _tm("Product management", "Product manager", "120", "135", product="PM"),
                _tm("Back-end engineering", "Senior developer", "400", "125", product="ENG-BE"),
                _tm("Front-end engineering", "Developer", "320", "110", product="ENG-FE"),
                _tm("Quality assurance", "QA engineer", "120", "95", product="QA"),
            ],
            [
                ("Booking MVP in pilot", "Build", 70, "0", "Pilot with two depots."),
                ("Public launch", "Build", 120, "0", "All depots live."),
            ],
            "redraft",
        ),
    ),
    (
        "DEAL-DEMO-07",
        "C01",
        "sales",
        "Trading portal support retainer",
        "negotiation",
        7,
        "Accepted: mark won and hand over to delivery",
        (
            {
                "terms": "Monthly retainer, up to 20 hours of support; extra work at the rate card.",
                "retainer_amount": Decimal("3200"),
                "po_number": "4500017731",
            },
            [
                _retainer("Support and maintenance retainer", 12, "3200", product="RET-SUPPORT"),
                _tm("Extra development on request", "Developer", "40", "110", product="ENG-FE"),
                _fixed(
                    "Managed hosting, first year",
                    "Operations",
                    "450",
                    product="HOST-MANAGED",
                    unit="MON",
                    quantity="12",
                ),
            ],
            [("Hosting handover", "Operations", 10, "5400", "Production moved to our managed hosting.")],
            "accepted",
        ),
    ),
    (
        "DEAL-DEMO-08",
        "C21",
        "sales",
        "Claims app UX research",
        "negotiation",
        14,
        "Agree the travel budget",
        (
            {
                "terms": "Research at the rate card; travel and lodging rebilled at cost plus 12 %.",
                "expense_markup_percent": Decimal("12"),
            },
            [
                _tm("Contextual interviews and synthesis", "UX researcher", "160", "155"),
                _tm("Usability testing", "UX researcher", "80", "155"),
                _expenses("Travel and lodging, Bern and Zürich", "4800"),
            ],
            [("Findings workshop", "Research", 35, "0", "Findings presented to the claims team.")],
            "sent",
        ),
    ),
    (
        "DEAL-DEMO-09",
        "C19",
        "sales2",
        "Streaming analytics",
        "negotiation",
        10,
        "Legal review of the terms",
        (
            {"terms": "Time and materials, invoiced monthly."},
            [
                _tm("Data architecture", "Senior consultant", "120", "190"),
                _tm("Pipeline engineering", "Data engineer", "360", "150", "5"),
            ],
            [],
            "revised",
        ),
    ),
    (
        "DEAL-DEMO-10",
        "C09",
        "sales",
        "Booking site refresh",
        "lost",
        -20,
        "Chose to build it with their own team",
        (
            {"terms": "Fixed fee, invoiced on milestones."},
            [_fixed("Redesign and build", "Build", "38000")],
            [("Design approved", "Design", 30, "15000", ""), ("Site live", "Build", 80, "23000", "")],
            "declined",
        ),
    ),
    ("DEAL-DEMO-11", "C15", "sales2", "Webshop replatforming", "lost", -45, "Budget frozen until next year", None),
]


def _signed_proposal_pdf(deal, signatory: str) -> bytes:
    from weasyprint import HTML

    return HTML(
        string=f"<h1>Signed proposal</h1><p>{deal.number} {deal.title}</p><p>Accepted for "
        f"{deal.customer.legal_name} by {signatory}.</p>"
    ).write_pdf()


def _seed_quote(deal, owner, plan, *, start: dt.date) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .services import (
        quote_accept,
        quote_attachment_add,
        quote_create,
        quote_new_version,
        quote_send,
        quote_update,
    )

    quote_data, lines, milestones, outcome = plan
    products = {
        p.code: p for p in Product.objects.filter(code__in=[line["product"] for line in lines if line["product"]])
    }
    rows = [{**line, "product": products.get(line["product"])} for line in lines]
    last = start + dt.timedelta(days=max([m[2] for m in milestones], default=60) + 10)
    quote = quote_create(
        user=owner,
        deal=deal,
        data={"planned_start": start, "planned_end": last, **quote_data},
        lines=rows,
        milestones=[
            {
                "name": name,
                "phase": phase,
                "planned_date": start + dt.timedelta(days=days),
                "amount": Decimal(amount),
                "acceptance_criteria": criteria,
            }
            for name, phase, days, amount, criteria in milestones
        ],
        reason="Demo data",
    )
    if outcome == "draft":
        return
    quote = quote_send(user=owner, quote=quote, reason="Demo data")
    if outcome == "accepted":
        signatory = "Katrin Vogel, Head of Digital"
        quote = quote_accept(user=owner, quote=quote, customer_signatory=signatory, reason="Demo data")
        quote_attachment_add(
            user=owner,
            quote=quote,
            kind="signed_proposal",
            upload=SimpleUploadedFile(
                f"{deal.number}-signed.pdf", _signed_proposal_pdf(deal, signatory), "application/pdf"
            ),
            reason="Demo data",
        )
    elif outcome in ("revised", "redraft"):
        copy = quote_new_version(user=owner, quote=quote, reason="Demo data: revised offer")
        discounted = [{**row, "discount_percent": Decimal("5")} for row in rows]
        copy = quote_update(user=owner, quote=copy, data={}, lines=discounted, reason="Demo data: 5 % discount")
        if outcome == "revised":
            quote_send(user=owner, quote=copy, reason="Demo data")


def seed_deals(**_) -> str:
    """Idempotent: each demo deal is found again by its external ID and left alone."""
    from backbone.services import external_id_link

    from .models import Deal, PipelineStage
    from .services import deal_create, deal_move_stage

    today = timezone.localdate()
    new = 0
    for key, customer_key, owner_name, title, stage_code, close_days, step, plan in DEMO_DEALS:
        if external_id_lookup(model=Deal, system=DEMO_SYSTEM, external_id=key) is not None:
            continue
        customer = external_id_lookup(model=Customer, system=DEMO_SYSTEM, external_id=customer_key)
        owner = _demo_user(owner_name)
        if customer is None or owner is None:
            continue
        lost = stage_code == "lost"
        with transaction.atomic():
            deal = deal_create(
                user=owner,
                data={
                    "title": title,
                    "customer": customer,
                    "stage": PipelineStage.objects.get(code="proposal" if lost else stage_code),
                    "expected_close_date": today + dt.timedelta(days=close_days),
                    "next_step": "" if lost else step,
                },
                reason="Demo data",
            )
            external_id_link(obj=deal, system=DEMO_SYSTEM, external_id=key, user=owner)
            if plan is not None:
                _seed_quote(deal, owner, plan, start=today + dt.timedelta(days=max(close_days, 0) + 14))
            deal.refresh_from_db()
            if lost:
                deal_move_stage(user=owner, deal=deal, stage="lost", lost_reason=step, reason="Demo data")
            new += 1
    total = Deal.objects.filter(pk__in=[link.object_id for link in _demo_deal_links()]).count()
    return f"{total} demo deals ({new} new)"


def _demo_deal_links():
    from django.contrib.contenttypes.models import ContentType

    from backbone.models import ExternalId

    from .models import Deal

    return ExternalId.objects.filter(
        system=DEMO_SYSTEM, content_type=ContentType.objects.get_for_model(Deal), external_id__startswith="DEAL-DEMO-"
    )
