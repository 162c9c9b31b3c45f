"""Invoice numbers and structured creditor references: pure functions, and the counter.

**Numbers** are gapless per series and year: the series is (legal entity, document kind), the year is the
issue date's year when the legal entity restarts its numbers yearly, else 0 (one endless series). The
counter is a ``NumberSequence`` row (``backbone``), taken inside the issuing transaction, never at draft
time, and locked until that transaction ends: ``sequence_take`` (one ``UPDATE … RETURNING``; the row is
created by ``backbone.services.sequence_next`` on a series' first use). This module also names the series
and prints the number: ``DE-2026-000001``, credit notes ``DE-CN-2026-000001``, without yearly restart
``DE-000001``. Everything else here is a pure function.

**Creditor references** (ISO 11649, "RF"): ``RF`` + two check digits + up to 21 letters or digits. The
check digits are ISO 7064 MOD 97-10 over the reference with ``RF00`` moved to its end (letters count
A = 10 … Z = 35), as for IBANs. A bank or a payer quoting the reference lets cash application find the
invoice without reading free text; the reference is printed in groups of four (``RF18 5390 0754 7034``)
and stored without spaces.
"""

from __future__ import annotations

import re
import string

from django.db import connections, router
from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

from backbone.models import NumberSequence
from backbone.services import sequence_next

CREDIT_NOTE_SUFFIX = "-CN"
# Kinds as one digit in a creditor reference (the payload's fixed-width tail, see invoice_reference_payload).
_KIND_DIGITS = {"invoice": "1", "credit_note": "2"}
_PAYLOAD = re.compile(r"^[A-Z0-9]{1,21}$")
_REFERENCE = re.compile(r"^RF[0-9]{2}[A-Z0-9]{1,21}$")
_TAIL_SEQUENCE_DIGITS = 8  # up to 99,999,999 documents per series and year


# --- numbers -----------------------------------------------------------------------------------------------


def sequence_key(*, legal_entity_pk: int, kind: str) -> str:
    """The ``NumberSequence`` key of a series: one counter per legal entity and document kind (and year)."""
    return f"invoice:{legal_entity_pk}:{kind}"


def sequence_take(*, legal_entity_pk: int, kind: str, year: int, prefix: str, padding: int) -> int:
    """Take the next number of the series (legal entity, document kind, year) and return its value.

    Gapless: call it inside the transaction that stores the number; the counter row stays locked until that
    transaction ends, and a rollback gives the number back. One statement, ``UPDATE … RETURNING``, so the row
    is locked from that statement to the commit and no longer (not from a ``SELECT … FOR UPDATE`` and its
    savepoint before it, as ``sequence_next`` does): eight concurrent issuers take far more than 500 numbers
    a second. A series' first number goes through ``backbone.services.sequence_next``, which creates its row
    (``prefix`` and ``padding`` are stored there) and copes with two transactions creating it at once.
    """
    connection = connections[router.db_for_write(NumberSequence)]
    if not connection.in_atomic_block:
        raise RuntimeError("Take a number inside the transaction that stores it: outside one it could be lost.")
    key = sequence_key(legal_entity_pk=legal_entity_pk, kind=kind)
    quote = connection.ops.quote_name
    meta = NumberSequence._meta
    table, last = quote(meta.db_table), quote(meta.get_field("last_value").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {last} = {last} + 1 "  # noqa: S608 -- quoted names; the values are parameters
            f"WHERE {quote(meta.get_field('key').column)} = %s AND {quote(meta.get_field('year').column)} = %s "
            f"RETURNING {last}",
            [key, year],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    taken = sequence_next(key=key, year=year, prefix=prefix, padding=padding)  # the series' first use
    return int(taken.rsplit("-", 1)[1])


def fiscal_year(*, restart_yearly: bool, issue_year: int) -> int:
    """The counter's year: the issue year for series restarting on 1 January, else 0 (never restarts)."""
    return issue_year if restart_yearly else 0


def series_prefix(*, invoice_prefix: str, kind: str) -> str:
    """``DE`` for invoices, ``DE-CN`` for credit notes: the two series of a legal entity never share a number."""
    return f"{invoice_prefix}{CREDIT_NOTE_SUFFIX}" if kind == "credit_note" else invoice_prefix


def invoice_number(*, prefix: str, year: int, value: int, padding: int) -> str:
    """``DE-2026-000042`` (``year`` 0: ``DE-000042``); the same shape ``sequence_next`` prints."""
    middle = f"-{year}" if year else ""
    return f"{prefix}{middle}-{value:0{padding}d}"


# --- ISO 11649 creditor references ---------------------------------------------------------------------


def _compact(value: str) -> str:
    return "".join((value or "").split()).upper()


def creditor_reference(payload: str) -> str:
    """The RF reference of ``payload`` (1 to 21 letters or digits; spaces are ignored), e.g.
    ``creditor_reference("539007547034") == "RF18539007547034"``. Raises ``ValueError`` for anything else."""
    payload = _compact(payload)
    if not _PAYLOAD.match(payload):
        raise ValueError("A creditor reference carries 1 to 21 letters or digits.")
    check = mod_97_10.calc_check_digits(payload + "RF")  # 98 - (payload + "RF00" as digits) mod 97
    return f"RF{check}{payload}"


def creditor_reference_valid(reference: str) -> bool:
    """Whether ``reference`` is a well-formed RF reference with correct check digits (spaces allowed).

    Check digits are 02 to 98 by construction, so ``RF00``/``RF01``/``RF99`` are refused even where the
    remainder happens to come out right.
    """
    reference = _compact(reference)
    if not _REFERENCE.match(reference) or not 2 <= int(reference[2:4]) <= 98:
        return False
    return iso11649.is_valid(reference)


def creditor_reference_display(reference: str) -> str:
    """Printed form: groups of four characters (``RF18 5390 0754 7034``)."""
    return iso11649.format(_compact(reference))


def invoice_reference_payload(*, invoice_prefix: str, kind: str, year: int, sequence: int) -> str:
    """The payload of an issued document's creditor reference: the legal entity's prefix, then a fixed
    11-digit tail of kind (1 invoice, 2 credit note), the year's last two digits (00 for a series without
    yearly restart) and the sequence padded to eight digits: ``DE`` · ``1`` · ``26`` · ``00000042``.

    Unique per document: prefixes are unique per legal entity, and with a tail of fixed width the prefix is
    whatever precedes the last 11 characters, so two documents never share a payload (``DE1`` + tail and
    ``DE`` + ``1…`` cannot collide). The prefix is at most 10 characters, so the payload fits ISO 11649's 21.
    (Only years a century apart share their two digits, and a year-0 series shares ``00`` with 2000 and
    2100; the database's unique constraint on the reference would refuse such a collision.)
    """
    if kind not in _KIND_DIGITS:
        raise ValueError(f"No creditor references for documents of kind '{kind}'.")
    if not 0 < sequence < 10**_TAIL_SEQUENCE_DIGITS:
        raise ValueError(f"Sequence {sequence} does not fit the creditor reference's {_TAIL_SEQUENCE_DIGITS} digits.")
    prefix = invoice_prefix.upper()
    if not prefix or any(ch not in string.ascii_uppercase + string.digits for ch in prefix) or len(prefix) > 10:
        raise ValueError(f"'{invoice_prefix}' is not an invoice prefix (1–10 capital letters or digits).")
    return f"{prefix}{_KIND_DIGITS[kind]}{year % 100:02d}{sequence:0{_TAIL_SEQUENCE_DIGITS}d}"
