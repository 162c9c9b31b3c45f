"""Bulk import of a person's own time: the CSV exports of Harvest, Toggl Track and Kimai, and Throughline's
own format (a CSV file, or JSON rows through the API).

Rules (issue 5):

- **Own time only.** Every row becomes a draft time entry of the person importing, through
  ``timesheets.time_entry_create`` and therefore all of its rules: quarter hours (never rounded: a row of
  1.33 h is refused), 24 h per day counting the other rows of the same file, locked months, an open
  project, membership of its team, and billable time needing its labour category in the rate card in
  force. When a row names a person (an email, a name, a username), it must be the importer's email, full
  name or username, otherwise it is refused: teams import per person, each their own export.
- **All or nothing.** One transaction; each row in its own savepoint so that every row is checked and
  reported; if any row is refused the transaction is rolled back and nothing is imported. A dry run checks
  and reports the same way and always rolls back.
- **Idempotent by external ID.** Each entry is stored with ``external_system`` (``harvest``, ``toggl``,
  ``kimai``, or the throughline row's own system, ``import`` by default) and ``external_id``. A row whose
  ID the importer already imported is skipped and reported as already imported (not an error); re-running
  a file imports nothing new. The importer's row lock (``lock_objects.person_for_update``) is taken before
  the IDs are looked up, so two submissions of one file run one after the other and the second finds the
  first's entries; the database's unique constraint on (system, ID) is the backstop, and its
  ``IntegrityError`` is reported as "already imported", never a 500.
- **Derived IDs.** Harvest's detailed time report has no entry ID, and Toggl's and Kimai's exports only
  have one in some variants (an ``ID`` column). Without one, the ID is derived from the row's content:
  ``sha-`` and 40 hex digits of the SHA-256 of the importer's user ID, the format, the fields that identify
  the entry (not those that change later, such as Harvest's "Invoiced?" or "Approved?") and the
  occurrence of identical rows in the file (the second identical row is a second entry). Re-importing the
  same or a longer export finds the same IDs; an entry edited in the tool after its import comes back as a
  new row.
- **Projects** are found by their Throughline number (``PRJ-000012``): Harvest's "Project Code",
  Kimai's "Project number", the throughline ``project`` column, or a number at the start of the project
  name ("PRJ-000012 Data platform", "[PRJ-000012] …") for Toggl and as a fallback everywhere. Without a
  number, the project's exact name (case-insensitive) among the projects the person can see, preferring
  those they are on the team of; an unknown or ambiguous name is refused with the message.
- **Labour category**: Harvest "Task"; Toggl "Task", else the row's only tag (several tags without a task
  are refused); Kimai "Activity"; throughline ``labour_category``. Empty: the person's default category on
  the project's team.

Files: UTF-8 with or without BOM (UTF-16 with BOM too), comma, semicolon or tab separated (chosen by the
header), at most ``MAX_FILE_BYTES`` and ``MAX_ROWS`` data rows. Dates ISO ``YYYY-MM-DD``, ``DD.MM.YYYY`` or
``M/D/YYYY`` (Harvest's documented import format). Hours decimal (``7.5`` or ``7,5``) or ``h:mm[:ss]``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any

from django.db import DatabaseError, IntegrityError, models, transaction
from django.db.models import Q

from backbone.errors import DomainError, NotPermitted, ValidationFailed
from backbone.roles import is_read_only

from . import selectors
from .lock_objects import person_for_update
from .models import Project, ProjectMember, TimeEntry
from .timesheets import time_entry_create

MAX_FILE_BYTES = 1024 * 1024  # 1 MB: a year of one person's time is well below it
MAX_ROWS = 500  # per import: each row runs every rule of time_entry_create (about 18 queries a row)
CATEGORY_MAX_CHARS = TimeEntry._meta.get_field("labour_category").max_length
EXTERNAL_ID_MAX_CHARS = TimeEntry._meta.get_field("external_id").max_length
SYSTEM_MAX_CHARS = TimeEntry._meta.get_field("external_system").max_length
DEFAULT_SYSTEM = "import"

# The suffixes and declared types an uploaded CSV may have. Browsers on Windows declare .csv files as
# application/vnd.ms-excel when Excel is installed; the content check below decides in the end.
UPLOAD_SUFFIXES = (".csv", ".txt")
UPLOAD_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/x-csv",
        "text/comma-separated-values",
        "text/tab-separated-values",
        "application/csv",
        "application/x-csv",
        "application/vnd.ms-excel",
    }
)
UNINFORMATIVE_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
DELIMITERS = (",", ";", "\t")

FIELD_LABELS = {
    "date": "Date",
    "project": "Project",
    "labour_category": "Labour category",
    "hours": "Hours",
    "description": "Description",
    "billable": "Billable",
    "external_id": "External ID",
    "external_system": "External system",
    "person": "Person",
    "row": "Row",
}


class RowStatus(models.TextChoices):
    IMPORTED = "imported", "Imported"
    READY = "ready", "Valid, not saved"
    ALREADY_IMPORTED = "already_imported", "Already imported"
    REFUSED = "refused", "Refused"


# --- formats --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportFormat:
    """One supported export: its columns (logical name → accepted headers, compared case-insensitively),
    the columns that must be there (each tuple: at least one of them), and how a row maps to an entry."""

    key: str
    label: str
    system: str
    columns: Mapping[str, tuple[str, ...]]
    required: tuple[tuple[str, ...], ...]
    project_column: str
    sample: str
    notes: tuple[str, ...]
    reference: str
    values: Callable[[_Cells], dict[str, Any]]

    def header_names(self, logical: tuple[str, ...]) -> str:
        """The columns as the tool writes them: Harvest in Title Case, Toggl and Kimai in Sentence case."""

        def shown(name: str) -> str:
            if self.key == "harvest":
                return name.title()
            return name if self.key == "throughline" else name[:1].upper() + name[1:]

        return " or ".join(f'"{shown(self.columns[name][0])}"' for name in logical)


class _Cells:
    """The cells of one row by logical column name ("" when the file has no such column)."""

    def __init__(self, cells: Sequence[str], positions: Mapping[str, int]) -> None:
        self.cells = cells
        self.positions = positions

    def __getitem__(self, name: str) -> str:
        position = self.positions.get(name)
        if position is None or position >= len(self.cells):
            return ""
        return str(self.cells[position] or "").strip()

    def has(self, name: str) -> bool:
        return name in self.positions


def _harvest(c: _Cells) -> dict[str, Any]:
    # Harvest's detailed time report: one row per entry, decimal hours, no entry ID (so a derived one).
    return {
        "date": c["date"],
        "hours": c["hours"],
        "hours_kind": "hours",
        "project_number": c["project_code"],
        "project_name": c["project"],
        "labour_category": c["task"],
        "description": c["notes"],
        "billable": c["billable"],
        "external_id": "",
        "emails": [c["email"]],
        "names": [" ".join(part for part in (c["first_name"], c["last_name"]) if part)],
        "identity": [c["client"], c["project"], c["project_code"], c["task"], c["notes"], c["first_name"],
                     c["last_name"], c["email"]],
    }  # fmt: skip


def _toggl_category(c: _Cells) -> tuple[str, str | None]:
    """Task, else the only tag; several tags and no task cannot say which one is the category."""
    if c["task"]:
        return c["task"], None
    tags = [tag.strip() for tag in c["tags"].split(",") if tag.strip()]
    if len(tags) > 1:
        return "", (
            f"The row has several tags ({', '.join(tags)}) and no task: put the labour category in Task or "
            "give the entry a single tag."
        )
    return (tags[0] if tags else ""), None


def _toggl(c: _Cells) -> dict[str, Any]:
    category, problem = _toggl_category(c)
    return {
        "date": c["start_date"],
        "hours": c["duration"],
        "hours_kind": "duration",
        "project_number": "",
        "project_name": c["project"],
        "labour_category": category,
        "category_problem": problem,
        "description": c["description"],
        "billable": c["billable"],
        "external_id": c["id"],
        "emails": [c["email"]],
        "names": [c["user"]],
        "identity": [c["email"], c["user"], c["client"], c["project"], c["task"], c["description"],
                     c["start_time"], c["end_date"], c["end_time"]],
    }  # fmt: skip


def _kimai(c: _Cells) -> dict[str, Any]:
    # Kimai writes PHP booleans: "1" for billable and an empty cell for not billable.
    billable = c["billable"] or ("no" if c.has("billable") else "")
    return {
        "date": c["date"],
        "hours": c["duration"],
        "hours_kind": "kimai",
        "project_number": c["project_number"],
        "project_name": c["project"],
        "labour_category": c["activity"],
        "description": c["description"],
        "billable": billable,
        "external_id": c["id"],
        "emails": [c["email"]],
        "names": [c["user"], c["alias"]],
        "identity": [c["email"], c["user"], c["customer"], c["project"], c["project_number"], c["activity"],
                     c["description"], c["begin"], c["end"]],
    }  # fmt: skip


def _throughline(c: _Cells) -> dict[str, Any]:
    return {
        "date": c["date"],
        "hours": c["hours"],
        "hours_kind": "hours",
        "project_number": "",
        "project_name": c["project"],
        "labour_category": c["labour_category"],
        "description": c["description"],
        "billable": c["billable"],
        "external_id": c["external_id"],
        "external_system": c["external_system"],
        "emails": [c["person"]] if "@" in c["person"] else [],
        "names": [c["person"]] if "@" not in c["person"] else [],
        "identity": [c["project"], c["labour_category"], c["description"]],
    }


FORMATS: dict[str, ImportFormat] = {
    fmt.key: fmt
    for fmt in (
        ImportFormat(
            key="throughline",
            label="Throughline CSV",
            system=DEFAULT_SYSTEM,
            columns={
                "date": ("date",),
                "project": ("project", "project number", "project_number"),
                "labour_category": ("labour_category", "labour category", "category"),
                "hours": ("hours",),
                "description": ("description",),
                "billable": ("billable",),
                "external_id": ("external_id", "external id"),
                "external_system": ("external_system", "external system"),
                "person": ("person", "email"),
            },
            required=(("date",), ("project",), ("hours",), ("description",)),
            project_column="project",
            sample="date,project,labour_category,hours,description,billable,external_id",
            notes=(
                "One row per entry: the date (YYYY-MM-DD), the project's number (PRJ-000012), the labour "
                "category (empty: your usual one on the team), decimal hours in quarter steps, the "
                "description the invoice shows, billable (yes/no, default yes) and the entry's ID in your "
                "source system.",
                "Optional columns: external_system (a short name such as jira; default import) and person "
                "(your email or username).",
                "The API takes the same rows as JSON objects with these keys.",
            ),
            reference="Throughline's own format.",
            values=_throughline,
        ),
        ImportFormat(
            key="harvest",
            label="Harvest — detailed time report",
            system="harvest",
            columns={
                "date": ("date", "spent date"),
                "client": ("client",),
                "project": ("project",),
                "project_code": ("project code",),
                "task": ("task",),
                "notes": ("notes", "note"),
                "hours": ("hours",),
                "billable": ("billable?", "billable"),
                "first_name": ("first name",),
                "last_name": ("last name",),
                "email": ("email", "e-mail"),
            },
            required=(("date",), ("hours",), ("project_code", "project")),
            project_column="Project Code",
            sample=(
                "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,Approved?,"
                "First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,"
                "Currency,External Reference URL"
            ),
            notes=(
                "Reports → Detailed time → Export → CSV, filtered to yourself.",
                "Project Code holds the Throughline project number (else the project's name is matched); Task "
                "is the labour category; Notes the description; Hours (decimal, not Hours Rounded) must be "
                "quarter hours; Billable? yes/no; First Name and Last Name must be yours.",
                "The export has no entry ID: each row's ID is derived from its content, so re-importing the "
                "same export skips what is already there.",
            ),
            reference=(
                "Harvest help centre, 'Importing and exporting data' and 'Detailed time and detailed expense "
                "reports' (support.getharvest.com)."
            ),
            values=_harvest,
        ),
        ImportFormat(
            key="toggl",
            label="Toggl Track — detailed report",
            system="toggl",
            columns={
                "user": ("user", "member"),
                "email": ("email",),
                "client": ("client",),
                "project": ("project",),
                "task": ("task",),
                "description": ("description",),
                "billable": ("billable",),
                "start_date": ("start date",),
                "start_time": ("start time",),
                "end_date": ("end date", "stop date"),
                "end_time": ("end time", "stop time"),
                "duration": ("duration",),
                "tags": ("tags",),
                "id": ("id", "time entry id", "entry id"),
            },
            required=(("start_date",), ("duration",), ("project",)),
            project_column="Project",
            sample=(
                "User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,End time,"
                "Duration,Tags,Amount (EUR)"
            ),
            notes=(
                "Reports → Detailed → Export → Download CSV, filtered to yourself.",
                "Project names the project: start its name with the Throughline number (PRJ-000012 Data "
                "platform) or give it exactly the Throughline project's name. Task is the labour category "
                "(else a single tag); Duration (h:mm:ss or decimal) must be quarter hours; the entry's day "
                "is its Start date; User and Email must be yours.",
                "An ID column, when the export has one, is the entry's ID; otherwise it is derived from the "
                "row's content.",
            ),
            reference=(
                "Toggl Track support, 'Editing and uploading a CSV file' (the detailed report CSV's columns: "
                "User, Email, Client, Project, Task, Description, Billable, Start date, Start time, End "
                "date, End time, Duration, Tags), support.toggl.com."
            ),
            values=_toggl,
        ),
        ImportFormat(
            key="kimai",
            label="Kimai — timesheet export (CSV)",
            system="kimai",
            columns={
                "date": ("date",),
                "begin": ("begin", "from", "start", "starttime"),
                "end": ("end", "to", "endtime"),
                "duration": ("duration",),
                "user": ("user", "username"),
                "alias": ("name", "alias"),
                "email": ("email", "e-mail"),
                "customer": ("customer",),
                "project": ("project",),
                "project_number": ("project number", "project_number", "project no.", "project code"),
                "activity": ("activity",),
                "description": ("description",),
                "billable": ("billable",),
                "tags": ("tags",),
                "id": ("id",),
            },
            required=(("date",), ("duration",), ("project_number", "project")),
            project_column="Project number",
            sample=(
                "Date,Begin,End,Duration,User,Email,Customer,Project,Activity,Description,Billable,Tags,Project number"
            ),
            notes=(
                "Export → CSV (the default template), filtered to yourself; other columns are ignored.",
                "Project number holds the Throughline project number (else the project's name is matched); "
                "Activity is the labour category; Duration (decimal hours, h:mm, or seconds) must be quarter "
                "hours; User, Name or Email must be yours.",
                "An ID column (a custom export template with the id column) is the entry's ID; otherwise it "
                "is derived from the row's content.",
            ),
            reference=(
                "Kimai source, src/Export/DefaultTemplate.php and ColumnConverter.php (columns date, begin, "
                "end, duration, user, customer, project, activity, description, billable, tags, "
                "project.number, optional id), github.com/kimai/kimai."
            ),
            values=_kimai,
        ),
    )
}
SOURCE_CHOICES = [(fmt.key, fmt.label) for fmt in FORMATS.values()]


def import_format(source: str) -> ImportFormat:
    fmt = FORMATS.get(str(source or "").strip().lower())
    if fmt is None:
        raise ValidationFailed(
            f"Choose the source of the file: {', '.join(FORMATS)}.",
            field="source",
        )
    return fmt


# --- files ----------------------------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def upload_problem(upload) -> str | None:
    """Why an uploaded file cannot be imported, or None: size, name, declared type, then the bytes."""
    name = PurePosixPath(getattr(upload, "name", "") or "").name
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_FILE_BYTES:
        return (
            f"The file is {_megabytes(size)}; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MB. Export a shorter "
            "period (a month or a quarter) and import each part."
        )
    if PurePosixPath(name).suffix.lower() not in UPLOAD_SUFFIXES:
        return f"Upload the export as a CSV file (.csv or .txt); '{name}' is not one."
    declared = str(getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
    if declared not in UNINFORMATIVE_TYPES and declared not in UPLOAD_TYPES:
        return f"'{name}' was sent as {declared}, which is not a CSV file."
    return None


def _read(upload) -> bytes:
    with contextlib.suppress(AttributeError, OSError):
        upload.seek(0)
    data = upload.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValidationFailed(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; export a shorter period and import "
            "each part.",
            field="file",
        )
    return data if isinstance(data, bytes) else str(data).encode()


def _decode(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise ValidationFailed(
            "The file is a spreadsheet workbook (XLSX or ODS), not CSV: export or save it as CSV.", field="file"
        )
    if data.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"\xd0\xcf\x11\xe0")):
        raise ValidationFailed("The file is not a CSV text file: export the time report as CSV.", field="file")
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise ValidationFailed(
            "The file is not UTF-8 text: save it as 'CSV UTF-8' (Excel) or export it again, and upload that.",
            field="file",
        ) from None
    if "\x00" in text:
        raise ValidationFailed("The file is not a CSV text file: it contains binary data.", field="file")
    return text.lstrip("\ufeff")


def _norm(text: str) -> str:
    return " ".join(str(text or "").replace("\ufeff", "").strip().strip('"').casefold().split())


def _positions(fmt: ImportFormat, header: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    names = [_norm(cell) for cell in header]
    for logical, accepted in fmt.columns.items():
        for position, name in enumerate(names):
            if name in accepted:
                found[logical] = position
                break
    return found


def _missing(fmt: ImportFormat, positions: Mapping[str, int]) -> list[tuple[str, ...]]:
    return [group for group in fmt.required if not any(name in positions for name in group)]


def _split_header(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def _table(fmt: ImportFormat, text: str) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """The column positions and the data rows (with the file line each starts on) of a CSV text."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise ValidationFailed("The file is empty.", field="file")
    # The delimiter that makes the most of this format's columns (then the most cells) out of the header.
    delimiter = max(
        DELIMITERS,
        key=lambda d: (len(_positions(fmt, _split_header(first, d))), len(_split_header(first, d))),
    )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    positions: dict[str, int] = {}
    line_before = 0
    try:
        for cells in reader:
            start, line_before = line_before + 1, reader.line_num
            if not any(str(cell).strip() for cell in cells):
                continue
            if header is None:
                header = cells
                positions = _columns(fmt, header)
                continue
            rows.append((start, cells))
            if len(rows) > MAX_ROWS:
                raise ValidationFailed(
                    f"The file has more than {MAX_ROWS} rows; import at most {MAX_ROWS} at a time (export a "
                    "shorter period).",
                    field="file",
                )
    except csv.Error as exc:
        raise ValidationFailed(
            f"The file is not valid CSV at line {reader.line_num}: {exc}. Export it again as CSV.", field="file"
        ) from None
    if not rows:
        raise ValidationFailed("The file has a header but no rows to import.", field="file")
    return positions, rows


def _columns(fmt: ImportFormat, header: Sequence[str]) -> dict[str, int]:
    """The positions of the format's columns in ``header``; a header without its required ones is refused,
    naming what is missing and, when the header is another supported tool's, that tool."""
    positions = _positions(fmt, header)
    missing = _missing(fmt, positions)
    if missing:
        found = ", ".join(cell.strip() for cell in header if cell.strip())[:300] or "none"
        wanted = ", ".join(fmt.header_names(group) for group in missing)
        hint = _guess(header, exclude=fmt.key)
        raise ValidationFailed(
            f"This is not a {fmt.label} file: the column{'s' if len(missing) > 1 else ''} {wanted} "
            f"{'are' if len(missing) > 1 else 'is'} missing (its columns: {found})."
            + (f" It looks like a {hint.label} export: choose that source." if hint else ""),
            field="file",
        )
    return positions


def _guess(header: Sequence[str], *, exclude: str) -> ImportFormat | None:
    for fmt in FORMATS.values():
        if fmt.key != exclude and not _missing(fmt, _positions(fmt, header)):
            return fmt
    return None


# --- values ---------------------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_CLOCK = re.compile(r"^(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$")
_DECIMAL = re.compile(r"^\d+(?:[.,]\d+)?$")
_NUMBER_PREFIX = re.compile(r"^\[?\s*([A-Za-z]{2,10}-\d{1,12})\s*\]?(?:[\s:–—-]|$)")
_YES = {"yes", "y", "true", "1", "x", "ja", "oui", "billable"}
_NO = {"no", "n", "false", "0", "", "nein", "non", "non-billable", "not billable"}


def parse_date(text: str) -> dt.date:
    """ISO ``YYYY-MM-DD`` (a time after it is ignored), ``DD.MM.YYYY`` or ``M/D/YYYY``."""
    text = str(text or "").strip()
    for pattern, order in ((_ISO, "ymd"), (_DOTTED, "dmy"), (_SLASHED, "mdy")):
        match = pattern.match(text)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups()[:3]), strict=True))
            return dt.date(parts["y"], parts["m"], parts["d"])  # ValueError for 2026-02-30
    raise ValueError(text)


def parse_hours(text: str, *, kimai: bool = False) -> Decimal:
    """Decimal hours (``7.5``, ``7,5``) or a clock duration (``7:30``, ``07:30:00``), exactly, never rounded.

    Kimai may also export whole seconds: a whole number above 24 cannot be hours of one day, so it is read
    as seconds there (``27000`` → 7.5).
    """
    text = str(text or "").strip()
    match = _CLOCK.match(text)
    if match:
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return Decimal(hours) + Decimal(minutes) / 60 + Decimal(seconds) / 3600
    if _DECIMAL.match(text):
        value = Decimal(text.replace(",", "."))
        if kimai and "." not in text and "," not in text and value > 24:
            return value / 3600
        return value
    raise InvalidOperation(text)


def parse_billable(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = _norm(str(text if text is not None else ""))
    if value in _YES:
        return True
    if value in _NO and value != "":
        return False
    if value == "":
        return True  # not said: billable, as time_entry_create has it
    raise ValueError(value)


def _hours_text(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass
class ImportRow:
    """One row as read from the file (or the JSON body), before the rules of time entry run."""

    index: int
    line: int | None
    date: dt.date | None = None
    date_text: str = ""
    project_number: str = ""
    project_name: str = ""
    labour_category: str = ""
    hours: Decimal | None = None
    hours_text: str = ""
    description: str = ""
    billable: bool = True
    external_system: str = ""
    external_id: str = ""
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    identity: list[str] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    @property
    def project_text(self) -> str:
        return self.project_number or self.project_name


def _row(fmt: ImportFormat, index: int, line: int | None, values: Mapping[str, Any]) -> ImportRow:
    row = ImportRow(index=index, line=line)
    row.date_text = str(values.get("date") or "").strip()
    if not row.date_text:
        row.add("date", "The date is missing.")
    else:
        try:
            row.date = parse_date(row.date_text)
        except ValueError:
            row.add("date", f"'{row.date_text}' is not a date; write YYYY-MM-DD (or DD.MM.YYYY, M/D/YYYY).")
    row.hours_text = str(values.get("hours") if values.get("hours") is not None else "").strip()
    if not row.hours_text:
        row.add("hours", "The hours are missing.")
    else:
        try:
            row.hours = parse_hours(row.hours_text, kimai=values.get("hours_kind") == "kimai")
        except (InvalidOperation, ValueError):
            what = "duration" if values.get("hours_kind") in ("duration", "kimai") else "number of hours"
            row.add("hours", f"'{row.hours_text}' is not a {what}; write decimal hours (7.5) or h:mm (7:30).")
    row.project_number = str(values.get("project_number") or "").strip()
    row.project_name = str(values.get("project_name") or "").strip()
    if not row.project_text:
        row.add("project", f"The project is missing: put its Throughline number in the {fmt.project_column} column.")
    row.labour_category = str(values.get("labour_category") or "").strip()
    if values.get("category_problem"):
        row.add("labour_category", values["category_problem"])
    elif len(row.labour_category) > CATEGORY_MAX_CHARS:
        row.add("labour_category", f"A labour category has at most {CATEGORY_MAX_CHARS} characters.")
    row.description = str(values.get("description") or "").strip()
    try:
        row.billable = parse_billable(values.get("billable"))
    except ValueError:
        row.add("billable", f"'{values.get('billable')}' is not yes or no.")
    row.external_id = str(values.get("external_id") if values.get("external_id") is not None else "").strip()
    if len(row.external_id) > EXTERNAL_ID_MAX_CHARS:
        row.add("external_id", f"An external ID has at most {EXTERNAL_ID_MAX_CHARS} characters.")
    system = str(values.get("external_system") or "").strip().lower() or fmt.system
    if len(system) > SYSTEM_MAX_CHARS or not re.fullmatch(r"[a-z0-9_-]+", system):
        row.add("external_system", "Name the system in letters, digits, - and _ (at most 40), e.g. jira.")
    row.external_system = system
    row.emails = [str(e).strip() for e in values.get("emails", []) if str(e or "").strip()]
    row.names = [str(n).strip() for n in values.get("names", []) if str(n or "").strip()]
    # What identifies the entry in its tool: the day and hours as read (normalised), then the format's fields.
    day = row.date.isoformat() if row.date else row.date_text
    hours = _hours_text(row.hours) if row.hours is not None else row.hours_text
    row.identity = [day, hours, *(_norm(part) for part in values.get("identity", []))]
    return row


def _csv_rows(fmt: ImportFormat, data: bytes) -> list[ImportRow]:
    positions, table = _table(fmt, _decode(data))
    return [_row(fmt, index, line, fmt.values(_Cells(cells, positions))) for index, (line, cells) in enumerate(table)]


JSON_FIELDS = ("date", "project", "labour_category", "hours", "description", "billable", "external_id",
               "external_system", "person")  # fmt: skip


def _json_rows(fmt: ImportFormat, items: Sequence[Any]) -> list[ImportRow]:
    if fmt.key != "throughline":
        raise ValidationFailed(
            f"Rows sent as JSON use the throughline format; upload the {fmt.label} export as a file instead.",
            field="source",
        )
    if not items:
        raise ValidationFailed("Send at least one row.", field="rows")
    if len(items) > MAX_ROWS:
        raise ValidationFailed(f"Send at most {MAX_ROWS} rows at a time; these are {len(items)}.", field="rows")
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            row = ImportRow(index=index, line=None)
            row.add("row", "Each row is an object with date, project, hours, description ….")
            rows.append(row)
            continue
        values = {key: ("" if value is None else value) for key, value in item.items()}
        cells = [values.get(name, "") for name in JSON_FIELDS]
        cells = [value if isinstance(value, bool) else str(value) for value in cells]
        parsed = _throughline(_Cells(cells, {name: i for i, name in enumerate(JSON_FIELDS)}))
        if isinstance(values.get("billable"), bool):
            parsed["billable"] = values["billable"]
        row = _row(fmt, index, None, parsed)
        for key in sorted(set(values) - set(JSON_FIELDS)):
            row.add(str(key)[:40], f"Unknown field; the fields are {', '.join(JSON_FIELDS)}.")
        rows.append(row)
    return rows


def rows_from(fmt: ImportFormat, file_or_rows: Any) -> list[ImportRow]:
    """The rows of an uploaded file, raw bytes or text, or a list of JSON objects (throughline only)."""
    if isinstance(file_or_rows, list | tuple):
        return _json_rows(fmt, file_or_rows)
    if isinstance(file_or_rows, str):
        return _csv_rows(fmt, file_or_rows.encode())
    if isinstance(file_or_rows, bytes | bytearray):
        if len(file_or_rows) > MAX_FILE_BYTES:
            raise ValidationFailed(f"The file is {_megabytes(len(file_or_rows))}; the limit is 1 MB.", field="file")
        return _csv_rows(fmt, bytes(file_or_rows))
    if file_or_rows is not None and hasattr(file_or_rows, "read"):
        problem = upload_problem(file_or_rows)
        if problem:
            raise ValidationFailed(problem, field="file")
        return _csv_rows(fmt, _read(file_or_rows))
    raise ValidationFailed("Choose the CSV file to import.", field="file")


# --- the report -----------------------------------------------------------------------------------------


@dataclass
class RowOutcome:
    index: int
    line: int | None
    status: str
    date: str
    project: str
    labour_category: str
    hours: str
    description: str
    billable: bool
    external_system: str
    external_id: str
    time_entry: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def number(self) -> int:
        """The row as people count it: the file's line, else its position from 1."""
        return self.line if self.line is not None else self.index + 1

    @property
    def reasons(self) -> list[tuple[str, str]]:
        return [
            (FIELD_LABELS.get(key, key.replace("_", " ").capitalize()), message)
            for key, messages in self.errors.items()
            for message in messages
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "status": self.status,
            "date": self.date,
            "project": self.project,
            "labour_category": self.labour_category,
            "hours": self.hours,
            "description": self.description,
            "billable": self.billable,
            "external_system": self.external_system,
            "external_id": self.external_id,
            "time_entry": self.time_entry,
            "errors": self.errors,
        }


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    rows: list[RowOutcome] = field(default_factory=list)
    committed: bool = False

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def imported(self) -> int:
        return self.count(RowStatus.IMPORTED)

    @property
    def ready(self) -> int:
        return self.count(RowStatus.READY)

    @property
    def already_imported(self) -> int:
        return self.count(RowStatus.ALREADY_IMPORTED)

    @property
    def refused(self) -> int:
        return self.count(RowStatus.REFUSED)

    @property
    def message(self) -> str:
        if self.refused:
            were = "row was" if self.refused == 1 else "rows were"
            return f"Nothing was imported because {self.refused} {were} refused."
        if self.dry_run:
            return (
                f"Dry run, nothing was saved: {self.ready} would be imported, {self.already_imported} already "
                "imported, 0 refused."
            )
        if not self.imported:
            return f"Nothing new: all {self.already_imported} rows were already imported."
        return f"{self.imported} imported, {self.already_imported} already imported, 0 refused."

    @property
    def errors(self) -> dict[str, list[str]]:
        """Flat keys, as the API's other errors: ``rows.<index>.<field>`` (index from 0, as sent)."""
        flat: dict[str, list[str]] = {}
        for row in self.rows:
            for key, messages in row.errors.items():
                flat[f"rows.{row.index}.{key}"] = list(messages)
        return flat

    def summary(self) -> dict[str, int]:
        return {
            "rows": len(self.rows),
            "imported": self.imported,
            "ready": self.ready,
            "already_imported": self.already_imported,
            "refused": self.refused,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "message": self.message,
            "summary": self.summary(),
            "rows": [row.as_dict() for row in self.rows],
            "errors": self.errors,
        }


# --- the service ----------------------------------------------------------------------------------------


class _Rollback(Exception):
    """Undo the import's transaction (a dry run, or a refused row) after every row has been reported."""


class _DiscardRow(Exception):
    """Undo one row's savepoint: it was checked against every rule but is refused already."""


def _require_importer(actor) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotPermitted("Sign in to import time.")
    if is_read_only(actor):
        raise NotPermitted("Auditors can view everything but change nothing.")
    if not actor.has_perm("projects.add_timeentry"):
        raise NotPermitted("Your role does not log time, so it cannot import any.")


def _derived_id(actor, fmt: ImportFormat, row: ImportRow, occurrence: int) -> str:
    content = "\x1f".join([str(actor.pk), fmt.key, *row.identity, str(occurrence)])
    return "sha-" + hashlib.sha256(content.encode()).hexdigest()[:40]


def _assign_ids(actor, fmt: ImportFormat, rows: Sequence[ImportRow]) -> None:
    seen: Counter[tuple[str, ...]] = Counter()
    for row in rows:
        if row.external_id:
            continue
        key = tuple(row.identity)
        row.external_id = _derived_id(actor, fmt, row, seen[key])
        seen[key] += 1


def _existing_ids(rows: Sequence[ImportRow]) -> dict[tuple[str, str], int]:
    """(system, ID) → the person who imported it, for the rows' IDs already stored."""
    wanted: dict[str, set[str]] = {}
    for row in rows:
        if row.external_id:
            wanted.setdefault(row.external_system, set()).add(row.external_id)
    if not wanted:
        return {}
    condition = Q()
    for system, ids in wanted.items():
        condition |= Q(external_system=system, external_id__in=sorted(ids))
    return {
        (system, external_id): person_id
        for system, external_id, person_id in TimeEntry.objects.filter(condition).values_list(
            "external_system", "external_id", "person_id"
        )
    }


def _is_actor(actor, row: ImportRow) -> bool:
    if not row.emails and not row.names:
        return True
    emails = {_norm(actor.email)} - {""}
    names = {_norm(actor.get_full_name()), _norm(actor.get_username())} - {""}
    return any(_norm(e) in emails for e in row.emails) or any(_norm(n) in names for n in row.names)


class _Projects:
    """Resolves a row's project among those the importer can see, once per distinct reference."""

    def __init__(self, actor, fmt: ImportFormat) -> None:
        self.actor = actor
        self.fmt = fmt
        self.visible = selectors.projects_visible_to(actor)
        self.cache: dict[tuple[str, str], tuple[Project | None, str]] = {}

    def resolve(self, row: ImportRow) -> tuple[Project | None, str]:
        key = (row.project_number.casefold(), _norm(row.project_name))
        if key not in self.cache:
            self.cache[key] = self._resolve(row.project_number, row.project_name)
        return self.cache[key]

    def _by_number(self, number: str) -> Project | None:
        return self.visible.filter(number__iexact=number).first() if number else None

    def _resolve(self, number: str, name: str) -> tuple[Project | None, str]:
        project = self._by_number(number)
        if project is not None:
            return project, ""
        prefix = _NUMBER_PREFIX.match(name)
        project = self._by_number(prefix.group(1)) if prefix else None
        if project is not None:
            return project, ""
        named = list(self.visible.filter(name__iexact=name).order_by("number")) if name else []
        if len(named) > 1:
            mine = [
                p
                for p in named
                if p.project_manager_id == self.actor.pk
                or ProjectMember.objects.filter(project=p, user=self.actor).exists()
            ]
            if len(mine) == 1:
                return mine[0], ""
            numbers = ", ".join(p.number for p in (mine or named))
            return None, (
                f"Several projects are named '{name}' ({numbers}); put the project's number in "
                f"the {self.fmt.project_column} column."
            )
        if named:
            return named[0], ""
        if not number and prefix and prefix.group(0).strip() == name:
            number, name = prefix.group(1), ""  # a number alone in the name column is a number
        asked = " or ".join(
            part
            for part in (f"with the number '{number}'" if number else "", f"named '{name}'" if name else "")
            if part
        )
        return None, (
            f"No project {asked} among the projects you can see; put its Throughline number (e.g. PRJ-000012) in "
            f"the {self.fmt.project_column} column."
        )


def _outcome(row: ImportRow, status: str, project: str = "") -> RowOutcome:
    return RowOutcome(
        index=row.index,
        line=row.line,
        status=status,
        date=row.date.isoformat() if row.date else row.date_text,
        project=project or row.project_text,
        labour_category=row.labour_category,
        hours=_hours_text(row.hours) if row.hours is not None and not row.errors.get("hours") else row.hours_text,
        description=row.description,
        billable=row.billable,
        external_system=row.external_system,
        external_id=row.external_id,
    )


def _refuse(outcome: RowOutcome, errors: Mapping[str, list[str]]) -> RowOutcome:
    outcome.status = RowStatus.REFUSED
    for key, messages in errors.items():
        outcome.errors.setdefault(key, []).extend(messages)
    return outcome


def _import_row(*, actor, row: ImportRow, project: Project) -> tuple[TimeEntry | None, dict[str, list[str]]]:
    """Run time_entry_create for one row in a savepoint: the entry, or the service's errors. A row the
    reading already refused is still checked against every rule (its reasons are then complete) but its
    savepoint is rolled back, so it never counts towards the day's 24 hours of the rows after it."""
    errors: dict[str, list[str]] = {}
    try:
        with transaction.atomic():
            entry = time_entry_create(
                actor=actor,
                project=project,
                date=row.date,
                hours=row.hours if row.hours is not None else "",
                description=row.description,
                labour_category=row.labour_category,
                billable=row.billable,
                external_system=row.external_system,
                external_id=row.external_id,
            )
            if row.errors:
                raise _DiscardRow
            return entry, {}
    except _DiscardRow:
        return None, {}
    except ValidationFailed as exc:
        errors = {key: list(messages) for key, messages in (exc.errors or {"row": [exc.message]}).items()}
    except NotPermitted as exc:
        errors = {"project": [exc.message]}
    except DomainError as exc:
        errors = {exc.field or "row": [exc.message]}
    except IntegrityError:
        errors = {"external_id": ["conflict"]}  # the caller decides: already imported, or someone else's
    except DatabaseError:
        errors = {"row": ["The row cannot be stored as it is (a value is too long or out of range)."]}
    # What reading already said about a field stands; the service's words on it would repeat it.
    return None, {key: messages for key, messages in errors.items() if key not in row.errors}


def time_entries_import(*, actor, source: str, file_or_rows: Any, dry_run: bool = False) -> ImportReport:
    """Import ``actor``'s own time from an export file (or JSON rows, throughline format) as drafts.

    All or nothing: a refused row refuses the whole import and the report says why, row by row. Rows the
    actor already imported (same system and external ID) are skipped and reported as such. A problem with
    the file itself (size, encoding, columns, row limit) raises ``ValidationFailed`` on ``file``.
    """
    _require_importer(actor)
    fmt = import_format(source)
    rows = rows_from(fmt, file_or_rows)
    report = ImportReport(source=fmt.key, dry_run=bool(dry_run))
    try:
        with transaction.atomic():
            # One person's imports (and any other logging of theirs) queue here, before the IDs are read.
            person_for_update(pk=actor.pk)
            _assign_ids(actor, fmt, rows)
            existing = _existing_ids(rows)
            projects = _Projects(actor, fmt)
            first_seen: dict[tuple[str, str], int] = {}
            for row in rows:
                outcome = _run_row(actor=actor, row=row, existing=existing, first_seen=first_seen, projects=projects)
                report.rows.append(outcome)
            if report.dry_run or report.refused:
                raise _Rollback
    except _Rollback:
        for outcome in report.rows:
            if outcome.status == RowStatus.IMPORTED:
                outcome.status, outcome.time_entry = RowStatus.READY, None
        return report
    report.committed = True
    return report


def _run_row(*, actor, row: ImportRow, existing, first_seen, projects: _Projects) -> RowOutcome:
    key = (row.external_system, row.external_id)
    owner = existing.get(key)
    if owner == actor.pk:
        # The entry is there: idempotent, whatever the row says now (its month may be locked since).
        return _outcome(row, RowStatus.ALREADY_IMPORTED)
    outcome = _outcome(row, RowStatus.IMPORTED)
    errors: dict[str, list[str]] = {k: list(v) for k, v in row.errors.items()}
    if owner is not None and owner != actor.pk:
        errors.setdefault("external_id", []).append(
            f"Entry {row.external_id} of {row.external_system} was imported by someone else; each entry is "
            "imported once, by the person whose time it is."
        )
    if key in first_seen:
        errors.setdefault("external_id", []).append(
            f"Row {first_seen[key]} of this file has the same ID {row.external_id}; an entry is imported once."
        )
    else:
        first_seen[key] = row.line if row.line is not None else row.index + 1
    if not _is_actor(actor, row):
        who = ", ".join(dict.fromkeys([*row.names, *row.emails]))
        errors.setdefault("person", []).append(
            f"This is the time of {who}, not yours: everyone imports their own time (filter the export to you)."
        )
    project, problem = projects.resolve(row) if row.project_text else (None, "")
    if problem:
        errors.setdefault("project", []).append(problem)
    if project is None:  # missing or unknown: the errors say which
        return _refuse(outcome, errors)
    outcome.project = project.number
    checked = replace(row, errors=errors)
    entry, service_errors = _import_row(actor=actor, row=checked, project=project)
    if service_errors.get("external_id") and not errors.get("external_id"):
        # Stored between the look-up and the insert (the unique constraint or the service's own check).
        stored = TimeEntry.objects.filter(external_system=row.external_system, external_id=row.external_id).first()
        if stored is not None and stored.person_id == actor.pk:
            return _outcome(row, RowStatus.ALREADY_IMPORTED, project.number)
        service_errors["external_id"] = [
            f"Entry {row.external_id} of {row.external_system} was imported by someone else; each entry is "
            "imported once, by the person whose time it is."
            if stored is not None
            else "The entry conflicts with stored data; import the file again."
        ]
    errors.update({k: errors.get(k, []) + v for k, v in service_errors.items()})
    if errors:
        return _refuse(outcome, errors)
    outcome.labour_category = entry.labour_category
    outcome.time_entry = str(entry.public_id)
    return outcome
