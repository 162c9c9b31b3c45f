"""Bulk import of one's own time: the exports of Harvest, Toggl Track and Kimai and Throughline's own CSV,
read and mapped; idempotent by external ID; every refusal reported row by row; nothing half-imported; dry
runs; the page and the API; two submissions of one file at the same moment."""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection
from django.urls import reverse
from rest_framework.test import APIClient

from backbone.errors import NotPermitted, ValidationFailed
from customers.models import PipelineStage
from projects import imports
from projects import timesheets as ts
from projects.imports import RowStatus, time_entries_import
from projects.models import EntryStatus, Project, ProjectMember, TimeEntry

DATA = Path(__file__).parent / "data"
NUMBER = "PRJ-000042"  # the project number the sample files name
PAGE = reverse("projects:time-import")
API = "/api/v1/time-entries/import/"
SAMPLES = {
    "harvest": "harvest_detailed_time.csv",
    "toggl": "toggl_detailed_report.csv",
    "kimai": "kimai_timesheet_export.csv",
    "throughline": "throughline_time.csv",
}
HEADER = "date,project,labour_category,hours,description,billable,external_id\n"


def sample(source: str) -> bytes:
    return (DATA / SAMPLES[source]).read_bytes()


def upload(content: bytes | str, name: str = "export.csv", content_type: str = "text/csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type=content_type)


def plain(*lines: str) -> bytes:
    """A throughline CSV with these data lines."""
    return (HEADER + "".join(f"{line}\n" for line in lines)).encode()


def statuses(report) -> list[str]:
    return [row.status for row in report.rows]


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


@pytest.fixture
def project(team):
    """The T&M project (2026-03-02 … 2026-08-31, rates for Senior consultant and Developer), numbered as the
    sample files name it."""
    Project.objects.filter(pk=team.pk).update(number=NUMBER)
    team.refresh_from_db()
    return team


@pytest.fixture
def ada(people, project):
    """The consultant, on the project's team (default category Developer), named as in the samples."""
    user = people["consultant"]
    user.first_name, user.last_name, user.email = "Ada", "Lovelace", "ada@example.test"
    user.save(update_fields=["first_name", "last_name", "email"])
    return user


def run(actor, source, content, **kwargs):
    return time_entries_import(actor=actor, source=source, file_or_rows=content, **kwargs)


# --- reading each tool's export -------------------------------------------------------------------------


def test_harvest_detailed_time_report_maps_code_task_notes_hours_and_billable():
    rows = imports.rows_from(imports.FORMATS["harvest"], sample("harvest"))
    assert [(r.date, r.project_number, r.labour_category, r.hours, r.billable) for r in rows] == [
        (dt.date(2026, 3, 9), NUMBER, "Developer", Decimal("7.5"), True),
        (dt.date(2026, 3, 10), NUMBER, "Developer", Decimal("1.25"), True),
        (dt.date(2026, 3, 10), NUMBER, "Developer", Decimal("6.0"), True),
        (dt.date(2026, 3, 11), NUMBER, "Senior consultant", Decimal("3.5"), True),
        (dt.date(2026, 3, 11), NUMBER, "Developer", Decimal("0.5"), False),
    ]
    assert rows[0].description == "Ingestion pipeline: schema for shipments, first load"
    assert rows[2].description == "Deduplication of carrier records (Müller & Söhne)"
    assert rows[0].names == ["Ada Lovelace"] and rows[0].line == 2
    assert {r.external_id for r in rows} == {""}  # Harvest's export has no entry ID: derived at import
    assert not any(r.errors for r in rows)


def test_toggl_detailed_report_reads_bom_crlf_durations_and_task_or_single_tag():
    rows = imports.rows_from(imports.FORMATS["toggl"], sample("toggl"))
    assert [(r.date, r.project_name, r.labour_category, r.hours, r.billable) for r in rows] == [
        (dt.date(2026, 3, 16), f"{NUMBER} Data platform", "Developer", Decimal("3.5"), True),
        (dt.date(2026, 3, 16), f"{NUMBER} Data platform", "Developer", Decimal("4.25"), True),  # from the tag
        (dt.date(2026, 3, 17), f"{NUMBER} Data platform", "Senior consultant", Decimal("1.5"), True),
        (dt.date(2026, 3, 17), f"{NUMBER} Data platform", "Developer", Decimal("0.5"), False),
    ]
    assert rows[2].description == "Steering committee, status report"
    assert rows[0].emails == ["ada@example.test"] and rows[0].names == ["Ada Lovelace"]
    assert not any(r.errors for r in rows)


def test_kimai_export_maps_activity_decimal_duration_project_number_and_php_booleans():
    rows = imports.rows_from(imports.FORMATS["kimai"], sample("kimai"))
    assert [(r.date, r.project_number, r.labour_category, r.hours, r.billable) for r in rows] == [
        (dt.date(2026, 3, 23), NUMBER, "Developer", Decimal("4.5"), True),
        (dt.date(2026, 3, 23), NUMBER, "Developer", Decimal("3.75"), True),
        (dt.date(2026, 3, 24), NUMBER, "Senior consultant", Decimal("2"), True),
        (dt.date(2026, 3, 24), NUMBER, "Developer", Decimal("0.5"), False),  # an empty Billable cell is "no"
    ]
    assert rows[0].names == ["ada", "Ada Lovelace"]


def test_throughline_csv_keeps_the_given_external_ids():
    rows = imports.rows_from(imports.FORMATS["throughline"], sample("throughline"))
    assert [(r.external_system, r.external_id, r.labour_category, r.hours) for r in rows] == [
        ("import", "DP-101", "Developer", Decimal("6.5")),
        ("import", "DP-102", "Senior consultant", Decimal("1.5")),
        ("import", "DP-103", "", Decimal("8")),
        ("import", "DP-104", "Developer", Decimal("0.75")),
    ]
    assert rows[3].billable is False


def test_toggl_and_kimai_exports_with_an_id_column_use_it():
    toggl = (
        b"Email,Project,Task,Description,Billable,Start date,Duration,ID\n"
        b"ada@example.test,P,Dev,x,Yes,2026-03-16,01:00:00,4711\n"
    )
    kimai = b"ID,Date,Duration,Project,Activity,Description\n99,2026-03-16,1:30,P,Dev,x\n"
    assert imports.rows_from(imports.FORMATS["toggl"], toggl)[0].external_id == "4711"
    assert imports.rows_from(imports.FORMATS["kimai"], kimai)[0].external_id == "99"


def test_semicolons_and_decimal_commas_as_a_german_excel_saves_them():
    content = (
        "Date;Project Code;Task;Notes;Hours;Billable?\n10.03.2026;PRJ-000042;Developer;Review, second round;7,5;Yes\n"
    )
    (row,) = imports.rows_from(imports.FORMATS["harvest"], content.encode())
    assert (row.date, row.hours, row.description) == (dt.date(2026, 3, 10), Decimal("7.5"), "Review, second round")


def test_utf16_with_bom_is_read():
    (row,) = imports.rows_from(
        imports.FORMATS["throughline"], plain("2026-03-09,PRJ-1,Dev,1,Café,yes,A").decode().encode("utf-16")
    )
    assert row.description == "Café"


@pytest.mark.parametrize(
    ("text", "kimai", "hours"),
    [
        ("7.5", False, "7.5"),
        ("7,5", False, "7.5"),
        ("7:30", False, "7.5"),
        ("07:30:00", False, "7.5"),
        ("0:15", False, "0.25"),
        ("27000", True, "7.5"),  # Kimai seconds: no day has 27000 hours
        ("8", True, "8"),
    ],
)
def test_hours_and_durations_are_read_exactly(text, kimai, hours):
    assert imports.parse_hours(text, kimai=kimai) == Decimal(hours)


def test_a_twenty_minute_duration_stays_unrounded_for_the_quarter_hour_rule():
    assert imports.parse_hours("00:20:00") % Decimal("0.25") != 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook"),
        (b"%PDF-1.4\n%%EOF", "not a CSV"),
        ("date,project\n".encode("latin-1") + "2026-03-09,Caf\xe9\n".encode("latin-1"), "not UTF-8"),
        (b"date,project,hours,description\n\x00\x01\x02", "binary"),
        (HEADER.encode(), "no rows"),
        (b'date,project,hours,description\n2026-03-09,"PRJ-1,1,x\n', "not valid CSV"),
    ],
    ids=["empty", "xlsx", "pdf", "latin-1", "nul", "header-only", "open-quote"],
)
def test_unreadable_files_are_refused_with_a_clear_message(content, message):
    with pytest.raises(ValidationFailed) as caught:
        imports.rows_from(imports.FORMATS["throughline"], content)
    assert message in caught.value.errors["file"][0]


def test_a_file_of_another_tool_names_the_missing_columns_and_the_right_source():
    with pytest.raises(ValidationFailed) as caught:
        imports.rows_from(imports.FORMATS["harvest"], sample("toggl"))
    message = caught.value.errors["file"][0]
    assert 'not a Harvest — detailed time report file: the columns "Date", "Hours" are missing' in message
    assert "It looks like a Toggl Track — detailed report export: choose that source." in message


def test_size_and_row_limits(monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    with pytest.raises(ValidationFailed, match="more than 3 rows"):
        imports.rows_from(imports.FORMATS["throughline"], plain(*["2026-03-09,P,D,1,x,yes,"] * 4))
    big = upload(b"x" * (imports.MAX_FILE_BYTES + 1))
    assert "the limit is 1 MB" in imports.upload_problem(big)
    with pytest.raises(ValidationFailed, match="limit is 1 MB"):
        imports.rows_from(imports.FORMATS["throughline"], big)


@pytest.mark.parametrize(
    ("name", "content_type", "problem"),
    [
        ("export.xlsx", "text/csv", "Upload the export as a CSV file (.csv or .txt); 'export.xlsx' is not one."),
        ("export.csv", "application/pdf", "'export.csv' was sent as application/pdf, which is not a CSV file."),
        ("export.csv", "application/vnd.ms-excel", None),  # what Windows browsers declare for .csv
        ("export.txt", "text/plain", None),
        ("export.csv", "application/octet-stream", None),
    ],
)
def test_upload_checks_name_and_declared_type(name, content_type, problem):
    assert imports.upload_problem(upload(b"a", name=name, content_type=content_type)) == problem


def test_unknown_source_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        imports.import_format("clockify")
    assert "source" in caught.value.errors


# --- importing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", list(SAMPLES))
def test_each_sample_imports_as_drafts_of_the_importer_and_a_second_run_imports_nothing(ada, project, source):
    report = run(ada, source, upload(sample(source)))
    assert report.committed and report.refused == 0
    assert report.imported == len(report.rows) == TimeEntry.objects.count() == 4 + (source == "harvest")
    entries = TimeEntry.objects.filter(person=ada)
    assert set(entries.values_list("status", flat=True)) == {EntryStatus.DRAFT}
    assert set(entries.values_list("project", flat=True)) == {project.pk}
    system = imports.FORMATS[source].system
    assert set(entries.values_list("external_system", flat=True)) == {system}
    assert {row.time_entry for row in report.rows} == {str(p) for p in entries.values_list("public_id", flat=True)}

    again = run(ada, source, upload(sample(source)))
    assert statuses(again) == [RowStatus.ALREADY_IMPORTED] * len(report.rows)
    assert again.imported == 0 and again.message == f"Nothing new: all {len(report.rows)} rows were already imported."
    assert TimeEntry.objects.count() == len(report.rows)


def test_imported_entries_keep_the_rows_values(ada, project):
    run(ada, "throughline", upload(sample("throughline")))
    by_id = {e.external_id: e for e in TimeEntry.objects.all()}
    assert (by_id["DP-101"].date, by_id["DP-101"].hours, by_id["DP-101"].labour_category) == (
        dt.date(2026, 3, 30),
        Decimal("6.5"),
        "Developer",
    )
    assert by_id["DP-103"].labour_category == "Developer"  # empty: the person's category on the team
    assert by_id["DP-104"].billable is False
    assert by_id["DP-102"].description == "Review of the migration plan with the customer"


def test_derived_ids_are_stable_and_tell_identical_rows_apart(ada, project):
    content = plain(
        "2026-03-09,PRJ-000042,Developer,1,Stand-up,yes,", "2026-03-09,PRJ-000042,Developer,1,Stand-up,yes,"
    )
    first = run(ada, "throughline", upload(content))
    assert first.imported == 2
    ids = [row.external_id for row in first.rows]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"sha-[0-9a-f]{40}", i) for i in ids)
    assert [row.external_id for row in run(ada, "throughline", upload(content)).rows] == ids


def test_a_longer_export_later_imports_only_the_new_rows(ada, project):
    lines = sample("harvest").decode().splitlines(keepends=True)
    run(ada, "harvest", upload("".join(lines[:3])))
    report = run(ada, "harvest", upload("".join(lines)))
    assert statuses(report) == [RowStatus.ALREADY_IMPORTED] * 2 + [RowStatus.IMPORTED] * 3
    assert report.message == "3 imported, 2 already imported, 0 refused."
    assert TimeEntry.objects.count() == 5


def test_every_refusal_is_reported_row_by_row_and_nothing_is_imported(people, project, fixed_project):
    sales = people["sales"]  # on the T&M project's team (Senior consultant); sees the fixed-fee project too
    ts.period_lock(actor=people["finance"], month=dt.date(2026, 4, 1))
    report = run(
        sales,
        "throughline",
        upload(
            plain(
                "2026-03-09,PRJ-000042,Senior consultant,8,Workshop,yes,R1",
                "2026-03-10,PRJ-000042,Senior consultant,1.1,Workshop,yes,R2",
                "2026-03-09,PRJ-000042,Senior consultant,17,Workshop,yes,R3",
                "2026-04-06,PRJ-000042,Senior consultant,2,Workshop,yes,R4",
                "2026-03-11,PRJ-999999,Senior consultant,2,Workshop,yes,R5",
                "2026-03-11,PRJ-000042,Architect,2,Workshop,yes,R6",
                f"2026-03-11,{fixed_project.number},Designer,2,Design review,yes,R7",
                "2026-02-30,PRJ-000042,Senior consultant,2,Workshop,yes,R8",
                "2026-03-12,PRJ-000042,Senior consultant,7h30,Workshop,yes,R9",
            )
        ),
    )
    assert statuses(report) == [RowStatus.READY] + [RowStatus.REFUSED] * 8
    assert not report.committed and not TimeEntry.objects.exists()
    assert report.message == "Nothing was imported because 8 rows were refused."
    reasons = {row.external_id: row.errors for row in report.rows}
    assert reasons["R1"] == {}
    assert reasons["R2"] == {"hours": ["Log hours in quarter-hour steps (0.25, 0.5, 0.75 …)."]}
    assert "You already logged 8 h on 2026-03-09; with these 17 h the day would exceed 24 h." in reasons["R3"]["hours"]
    assert reasons["R4"]["date"] == ["April 2026 is locked by finance; nothing dated in it can change."]
    assert "No project with the number 'PRJ-999999'" in reasons["R5"]["project"][0]
    assert "no rate for 'Architect'" in reasons["R6"]["labour_category"][0]
    assert reasons["R7"]["project"] == [
        f"You are not a member of {fixed_project.number}; its project manager adds you to the team."
    ]
    assert reasons["R8"] == {"date": ["'2026-02-30' is not a date; write YYYY-MM-DD (or DD.MM.YYYY, M/D/YYYY)."]}
    assert list(reasons["R9"]) == ["hours"] and "'7h30' is not a number of hours" in reasons["R9"]["hours"][0]
    assert report.errors["rows.1.hours"] == reasons["R2"]["hours"]
    assert report.as_dict()["summary"] == {"rows": 9, "imported": 0, "ready": 1, "already_imported": 0, "refused": 8}


def test_a_refused_row_imports_nothing_until_the_file_is_corrected(ada, project):
    bad = plain("2026-03-09,PRJ-000042,Developer,4,A,yes,X1", "2026-03-09,PRJ-000042,Developer,0.3,B,yes,X2")
    report = run(ada, "throughline", upload(bad))
    assert statuses(report) == [RowStatus.READY, RowStatus.REFUSED]
    assert [row.time_entry for row in report.rows] == [None, None]
    assert not TimeEntry.objects.exists()
    fixed = run(ada, "throughline", upload(bad.replace(b",0.3,", b",0.5,")))
    assert statuses(fixed) == [RowStatus.IMPORTED] * 2 and TimeEntry.objects.count() == 2


def test_the_day_total_counts_the_rows_of_the_file_and_entries_already_logged(ada, project):
    ts.time_entry_create(actor=ada, project=project, date=dt.date(2026, 3, 9), hours="10", description="Before")
    report = run(
        ada, "throughline", upload(plain("2026-03-09,PRJ-000042,,8,A,yes,1", "2026-03-09,PRJ-000042,,6.25,B,yes,2"))
    )
    assert statuses(report) == [RowStatus.READY, RowStatus.REFUSED]
    assert "You already logged 18 h on 2026-03-09" in report.rows[1].errors["hours"][0]


def test_a_dry_run_checks_everything_and_saves_nothing(ada, project):
    report = run(ada, "kimai", upload(sample("kimai")), dry_run=True)
    assert statuses(report) == [RowStatus.READY] * 4 and not report.committed
    assert report.message == "Dry run, nothing was saved: 4 would be imported, 0 already imported, 0 refused."
    assert not TimeEntry.objects.exists()


def test_rows_of_another_person_are_refused(ada, project):
    content = sample("harvest").replace(b"Ada,Lovelace", b"Grace,Hopper", 1)
    report = run(ada, "harvest", upload(content))
    assert report.rows[0].errors == {
        "person": [
            "This is the time of Grace Hopper, not yours: everyone imports their own time (filter the export to you)."
        ]
    }
    assert report.refused == 1 and not TimeEntry.objects.exists()


def test_the_person_matches_by_email_full_name_or_username(ada, project):
    rows = [
        {"date": "2026-03-09", "project": NUMBER, "hours": "1", "description": "a", "person": "ADA@example.test"},
        {"date": "2026-03-09", "project": NUMBER, "hours": "1", "description": "b", "person": "consultant"},
        {"date": "2026-03-09", "project": NUMBER, "hours": "1", "description": "c", "person": "ada lovelace"},
    ]
    assert run(ada, "throughline", rows).imported == 3


def test_an_id_imported_by_someone_else_or_twice_in_the_file_is_refused(ada, people, project):
    run(people["sales"], "throughline", upload(plain("2026-03-09,PRJ-000042,,1,Mine,yes,SHARED")))
    report = run(
        ada,
        "throughline",
        upload(
            plain(
                "2026-03-09,PRJ-000042,,1,A,yes,SHARED",
                "2026-03-10,PRJ-000042,,1,B,yes,TWICE",
                "2026-03-11,PRJ-000042,,1,C,yes,TWICE",
            )
        ),
    )
    assert "was imported by someone else" in report.rows[0].errors["external_id"][0]
    assert report.rows[1].errors == {}
    assert report.rows[2].errors["external_id"] == [
        "Row 3 of this file has the same ID TWICE; an entry is imported once."
    ]


def test_projects_are_found_by_number_prefix_or_exact_name(ada, project, people):
    Project.objects.filter(pk=project.pk).update(name="Data platform")
    rows = [
        {"date": "2026-03-09", "project": "data PLATFORM", "hours": "1", "description": "by name"},
        {"date": "2026-03-10", "project": f"[{NUMBER}] Anything", "hours": "1", "description": "by prefix"},
        {"date": "2026-03-11", "project": "Website", "hours": "1", "description": "unknown"},
    ]
    report = run(ada, "throughline", rows, dry_run=True)
    assert [row.project for row in report.rows[:2]] == [NUMBER, NUMBER]
    assert report.rows[2].errors["project"] == [
        "No project named 'Website' among the projects you can see; put its Throughline number (e.g. PRJ-000012) "
        "in the project column."
    ]


def test_a_name_several_projects_share_picks_the_one_the_importer_is_on_else_is_refused(people, project, fixed_project):
    Project.objects.filter(pk__in=[project.pk, fixed_project.pk]).update(name="Data platform")
    sales = people["sales"]  # sees both (their customer's), is on the T&M project's team only
    row = {"date": "2026-03-09", "project": "Data platform", "hours": "1", "description": "x"}
    assert run(sales, "throughline", [row], dry_run=True).rows[0].project == NUMBER
    ProjectMember.objects.create(project=fixed_project, user=sales, labour_category="Designer")
    report = run(sales, "throughline", [row], dry_run=True)
    assert report.rows[0].errors["project"] == [
        f"Several projects are named 'Data platform' ({fixed_project.number}, {NUMBER}); put the project's number "
        "in the project column."
    ]


def test_projects_the_importer_cannot_see_are_unknown_to_them(people, project):
    pm2 = people["pm2"]
    report = run(pm2, "throughline", [{"date": "2026-03-09", "project": NUMBER, "hours": "1", "description": "x"}])
    assert (
        "No project with the number 'PRJ-000042' among the projects you can see" in report.rows[0].errors["project"][0]
    )


def test_toggl_rows_with_several_tags_and_no_task_are_refused(ada, project):
    content = sample("toggl").replace(b"04:15:00,Developer,", b'04:15:00,"Developer, travel",')
    report = run(ada, "toggl", upload(content))
    assert report.rows[1].errors["labour_category"] == [
        "The row has several tags (Developer, travel) and no task: put the labour category in Task or give the "
        "entry a single tag."
    ]


def test_json_rows_report_unknown_fields_and_bad_values(ada, project):
    report = run(
        ada,
        "throughline",
        [
            {
                "date": "2026-03-09",
                "project": NUMBER,
                "hours": 1.5,
                "description": "a",
                "billable": False,
                "colour": "red",
            },
            "not an object",
            {"date": None, "project": NUMBER, "hours": "1", "description": "b", "billable": "maybe"},
        ],
    )
    assert report.errors == {
        "rows.0.colour": [
            "Unknown field; the fields are date, project, labour_category, hours, description, billable, "
            "external_id, external_system, person."
        ],
        "rows.1.row": ["Each row is an object with date, project, hours, description …."],
        "rows.2.date": ["The date is missing."],
        "rows.2.billable": ["'maybe' is not yes or no."],
    }
    with pytest.raises(ValidationFailed, match="Send at least one row"):
        run(ada, "throughline", [])
    with pytest.raises(ValidationFailed, match="throughline format"):
        run(ada, "harvest", [{"date": "2026-03-09"}])


@pytest.mark.parametrize("role", ["finance", "executive", "auditor"])
def test_roles_that_do_not_log_time_cannot_import(people, project, role):
    with pytest.raises(NotPermitted):
        run(people[role], "throughline", upload(sample("throughline")))


def test_an_insert_that_loses_the_race_on_the_unique_id_is_already_imported(ada, project, monkeypatch):
    """The database's unique (system, ID) is the backstop: its IntegrityError becomes "already imported"."""
    stored = ts.time_entry_create(
        actor=ada, project=project, date=dt.date(2026, 3, 30), hours="1", description="x", external_system="import",
        external_id="DP-101",
    )  # fmt: skip
    monkeypatch.setattr(imports, "_existing_ids", lambda rows: {})  # as if the look-up ran before it was stored

    def losing_insert(**kwargs):
        if kwargs["external_id"] == "DP-101":
            raise IntegrityError('duplicate key value violates unique constraint "time_entry_external_id_unique"')
        return ts.time_entry_create(**kwargs)

    monkeypatch.setattr(imports, "time_entry_create", losing_insert)
    report = run(ada, "throughline", upload(sample("throughline")))
    assert statuses(report) == [RowStatus.ALREADY_IMPORTED] + [RowStatus.IMPORTED] * 3
    assert TimeEntry.objects.filter(external_id="DP-101").get() == stored


def test_the_services_own_duplicate_check_is_already_imported_too(ada, project, monkeypatch):
    run(ada, "throughline", upload(sample("throughline")))
    monkeypatch.setattr(imports, "_existing_ids", lambda rows: {})
    report = run(ada, "throughline", upload(sample("throughline")))
    assert statuses(report) == [RowStatus.ALREADY_IMPORTED] * 4 and TimeEntry.objects.count() == 4


def test_import_query_count_grows_linearly_not_worse(ada, project, django_assert_max_num_queries):
    lines = [f"2026-03-{day:02d},PRJ-000042,Developer,1,Work {day},yes,Q{day}" for day in range(2, 32)]
    with django_assert_max_num_queries(30 * 20):  # each row runs time_entry_create's checks: ~18 queries
        report = run(ada, "throughline", upload(plain(*lines)))
    assert report.imported == 30


# --- concurrency ----------------------------------------------------------------------------------------

STAGES = [("negotiation", 30, 60, "open"), ("won", 40, 100, "won"), ("lost", 50, 0, "lost")]


@pytest.fixture
def stages(db):
    for code, position, probability, outcome in STAGES:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={
                "name": code.title(),
                "position": position,
                "default_probability": probability,
                "outcome": outcome,
            },
        )


@pytest.mark.django_db(transaction=True)
def test_two_submissions_of_one_file_at_once_import_it_once(stages, request):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    request.getfixturevalue("project")
    ada = request.getfixturevalue("ada")
    start = threading.Barrier(2, timeout=10)
    reports, failures = [], []

    def submit() -> None:
        try:
            start.wait()
            reports.append(run(ada, "harvest", sample("harvest")))
        except Exception as exc:  # reported below: a thread must not swallow it
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert sorted((r.imported, r.already_imported) for r in reports) == [(0, 5), (5, 0)]
    assert TimeEntry.objects.count() == 5


# --- the page -------------------------------------------------------------------------------------------


def test_the_page_explains_each_format_with_a_sample_header(client, ada):
    client.force_login(ada)
    response = client.get(PAGE)
    assert response.status_code == 200
    text = text_of(response)
    for fmt in imports.FORMATS.values():
        assert fmt.label in text and fmt.sample in text
    assert 'for="id_source"' in response.content.decode() and 'for="id_file"' in response.content.decode()


@pytest.mark.parametrize(
    ("role", "status"), [("finance", 403), ("executive", 403), ("auditor", 403), ("pm", 200), ("sales", 200)]
)
def test_the_page_is_for_people_who_log_time(client, people, role, status):
    client.force_login(people[role])
    assert client.get(PAGE).status_code == status
    assert client.post(PAGE, {"source": "throughline"}).status_code == (403 if status == 403 else 400)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "next=" in response["Location"]


def test_uploading_renders_the_report_and_a_second_upload_imports_nothing(client, ada):
    client.force_login(ada)
    response = client.post(PAGE, {"source": "harvest", "file": upload(sample("harvest"), "harvest.csv")})
    assert response.status_code == 200
    text = text_of(response)
    assert "5 imported, 0 already imported, 0 refused." in text
    assert "Ingestion pipeline: schema for shipments, first load" in text
    assert TimeEntry.objects.count() == 5
    response = client.post(PAGE, {"source": "harvest", "file": upload(sample("harvest"), "harvest.csv")})
    assert "Nothing new: all 5 rows were already imported." in text_of(response)
    assert text_of(response).count("Already imported") == 5


def test_refused_rows_are_listed_with_their_reasons(client, ada):
    client.force_login(ada)
    content = plain("2026-03-09,PRJ-000042,Developer,4,A,yes,X1", "2026-03-09,PRJ-000042,Developer,1.1,B,yes,X2")
    response = client.post(PAGE, {"source": "throughline", "file": upload(content)})
    assert response.status_code == 400
    text = text_of(response)
    assert "Nothing was imported because 1 row was refused." in text
    assert "Hours: Log hours in quarter-hour steps (0.25, 0.5, 0.75 …)." in text
    assert "Valid, not imported" in text
    assert not TimeEntry.objects.exists()


def test_a_dry_run_on_the_page_saves_nothing(client, ada):
    client.force_login(ada)
    response = client.post(PAGE, {"source": "toggl", "file": upload(sample("toggl")), "dry_run": "on"})
    assert response.status_code == 200
    assert "Dry run, nothing was saved: 4 would be imported" in text_of(response)
    assert not TimeEntry.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"source": "harvest"}, "This field is required."),
        (
            {"source": "harvest", "file": upload(b"%PDF-1.4", "scan.pdf", "application/pdf")},
            "Upload the export as a CSV file",
        ),
        ({"source": "harvest", "file": upload(b"PK\x03\x04 rest", "time.csv")}, "spreadsheet workbook"),
        (
            {"source": "kimai", "file": upload(sample("harvest"))},
            "It looks like a Harvest — detailed time report export",
        ),
        ({"source": "nope", "file": upload(sample("harvest"))}, "Select a valid choice."),
    ],
    ids=["no-file", "pdf", "xlsx-named-csv", "wrong-source", "bad-source"],
)
def test_bad_uploads_are_refused_on_the_form(client, ada, data, message):
    client.force_login(ada)
    response = client.post(PAGE, data)
    assert response.status_code == 400
    assert message in text_of(response)
    assert not TimeEntry.objects.exists()


# --- the API --------------------------------------------------------------------------------------------


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_multipart_import_answers_201_then_200(ada):
    client = api(ada)
    response = client.post(API, {"source": "kimai", "file": upload(sample("kimai"))}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["summary"] == {"rows": 4, "imported": 4, "ready": 0, "already_imported": 0, "refused": 0}
    assert body["committed"] is True and body["errors"] == {}
    assert body["rows"][0]["status"] == "imported" and body["rows"][0]["line"] == 2
    assert body["rows"][0]["time_entry"] == str(TimeEntry.objects.get(hours=Decimal("4.5")).public_id)
    again = client.post(API, {"source": "kimai", "file": upload(sample("kimai"))}, format="multipart")
    assert again.status_code == 200
    assert {row["status"] for row in again.json()["rows"]} == {"already_imported"}


def test_api_json_rows_refused_answer_400_with_flat_keys_and_the_report(ada):
    row = {"date": "2026-03-09", "project": NUMBER, "labour_category": "Developer", "description": "a"}
    rows = [{**row, "hours": "2", "external_id": "J-1"}, {**row, "hours": "1.1", "external_id": "J-2"}]
    response = api(ada).post(API, {"source": "throughline", "rows": rows}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "import_refused"
    assert body["message"] == "Nothing was imported because 1 row was refused."
    assert body["errors"] == {"rows.1.hours": ["Log hours in quarter-hour steps (0.25, 0.5, 0.75 …)."]}
    assert [row["status"] for row in body["rows"]] == ["ready", "refused"]
    assert not TimeEntry.objects.exists()
    rows[1]["hours"] = "1.25"
    assert (
        api(ada).post(API, {"source": "throughline", "rows": rows, "dry_run": True}, format="json").status_code == 200
    )
    assert not TimeEntry.objects.exists()
    created = api(ada).post(API, {"source": "throughline", "rows": rows}, format="json")
    assert created.status_code == 201 and TimeEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "fmt", "key", "message"),
    [
        (
            {"source": "harvest", "file": upload(b"GIF89a\x01\x00\x01\x00\x00", "x.csv")},
            "multipart",
            "file",
            "not a CSV",
        ),
        ({"source": "harvest", "file": upload(b"x", "x.xlsx")}, "multipart", "file", "CSV file (.csv or .txt)"),
        ({"source": "harvest", "rows": [{"date": "2026-03-09"}]}, "json", "source", "throughline format"),
        ({"source": "throughline"}, "json", "file", "Send either a CSV file"),
        ({"source": "clockify", "rows": []}, "json", "source", "is not a valid choice"),
        ({"source": "throughline", "rows": []}, "json", "rows", "Send at least one row."),
    ],
)
def test_api_bad_requests_answer_400_naming_the_field(ada, body, fmt, key, message):
    response = api(ada).post(API, body, format=fmt)
    assert response.status_code == 400, response.json()
    assert message in response.json()["errors"][key][0]


def test_api_access(people, ada):
    rows = {
        "source": "throughline",
        "rows": [{"date": "2026-03-09", "project": NUMBER, "hours": "1", "description": "x"}],
    }
    assert APIClient().post(API, rows, format="json").status_code == 401
    for role in ("finance", "executive", "auditor"):
        assert api(people[role]).post(API, rows, format="json").status_code == 403
    assert api(ada).get(API).status_code == 405
    assert api(ada).post(API, rows, format="json").status_code == 201


def test_api_import_is_in_the_openapi_schema(client, ada):
    client.force_login(ada)
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/time-entries/import/"]["post"]
    assert operation["operationId"] == "time_entries_import"
    assert {"200", "201", "400", "401", "403"} <= set(operation["responses"])
    assert {"multipart/form-data", "application/json"} <= set(operation["requestBody"]["content"])
