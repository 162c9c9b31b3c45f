"""``POST /api/v1/time-entries/import/``: a person's own time in bulk, from a tool's CSV export (multipart) or
as JSON rows in the throughline format; the answer is the row-by-row report of ``imports.time_entries_import``.

201 when entries were imported, 200 when nothing new was (all already imported, or a dry run), 400 with the
report and flat error keys (``rows.3.hours``) when a row is refused, in which case nothing is imported.
Retrying is safe by design: entries are keyed by their external ID, so a replayed request imports nothing
twice and answers 200. The ``Idempotency-Key`` header is not used here (its fingerprint of a multipart body
cannot see the file's content).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from backbone.api import ApiErrorSerializer, parse
from backbone.errors import ValidationFailed
from backbone.roles import is_read_only

from . import imports
from .models import TimeEntry
from .serializers import named_choices

ImportRowStatusField = named_choices("TimeImportRowStatus", imports.RowStatus.choices)


class CanImportTime(permissions.BasePermission):
    """Whoever logs time (``projects.add_timeentry``) imports their own; auditors never change anything."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return not is_read_only(user) and user.has_perm("projects.add_timeentry")


# --- requests -------------------------------------------------------------------------------------------


class TimeImportRequestSerializer(serializers.Serializer):
    """What the view parses (either body); the two documented shapes follow."""

    source = serializers.ChoiceField(choices=imports.SOURCE_CHOICES)
    file = serializers.FileField(required=False, allow_empty_file=True)
    rows = serializers.ListField(child=serializers.JSONField(), required=False, allow_empty=True)
    dry_run = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        has_file, has_rows = attrs.get("file") is not None, attrs.get("rows") is not None
        if has_file == has_rows:
            raise serializers.ValidationError(
                {"file": ["Send either a CSV file (multipart field 'file') or JSON 'rows', not both or neither."]}
            )
        return attrs


class TimeImportUploadSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=imports.SOURCE_CHOICES, help_text="The tool the file was exported from.")
    file = serializers.FileField(
        help_text=f"The CSV export: UTF-8, comma or semicolon separated, at most "
        f"{imports.MAX_FILE_BYTES // (1024 * 1024)} MB and {imports.MAX_ROWS} rows."
    )
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Check and report; save nothing.")


class TimeImportRowInputSerializer(serializers.Serializer):
    date = serializers.DateField()
    project = serializers.CharField(help_text="The project's number (PRJ-000012), else its exact name.")
    labour_category = serializers.CharField(required=False, help_text="Empty: your default category on the team.")
    hours = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="Quarter hours: 0.25, 0.5 …")
    description = serializers.CharField(help_text="Client-facing: it appears on the invoice.")
    billable = serializers.BooleanField(required=False, default=True)
    external_id = serializers.CharField(
        required=False, help_text="The entry's ID in its system; derived from the row's content when empty."
    )
    external_system = serializers.CharField(required=False, help_text="e.g. 'jira'; default 'import'.")
    person = serializers.CharField(required=False, help_text="If given: your email or username.")


class TimeImportRowsSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=[("throughline", "Throughline")])
    rows = TimeImportRowInputSerializer(many=True)
    dry_run = serializers.BooleanField(required=False, default=False)


# --- responses ------------------------------------------------------------------------------------------


class ImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    imported = serializers.IntegerField()
    ready = serializers.IntegerField(help_text="Valid but not saved (a dry run, or other rows were refused).")
    already_imported = serializers.IntegerField()
    refused = serializers.IntegerField()


class ImportRowSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position among the data rows, from 0 (the N of rows.N.field).")
    line = serializers.IntegerField(allow_null=True, help_text="Line of the file the row starts on (header: 1).")
    status = ImportRowStatusField()
    date = serializers.CharField()
    project = serializers.CharField()
    labour_category = serializers.CharField()
    hours = serializers.CharField()
    description = serializers.CharField()
    billable = serializers.BooleanField()
    external_system = serializers.CharField()
    external_id = serializers.CharField()
    time_entry = serializers.UUIDField(allow_null=True, help_text="The imported entry's ID.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ImportReportSerializer(serializers.Serializer):
    source = serializers.CharField()
    dry_run = serializers.BooleanField()
    committed = serializers.BooleanField(help_text="Whether the entries were saved.")
    message = serializers.CharField()
    summary = ImportSummarySerializer()
    rows = ImportRowSerializer(many=True)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Flat keys rows.<index>.<field> (date, project, labour_category, hours, description, billable, "
        "external_id, person).",
    )


class ImportRefusedSerializer(ImportReportSerializer):
    code = serializers.CharField(help_text="import_refused")


REFUSED_EXAMPLE = OpenApiExample(
    "A refused row",
    status_codes=["400"],
    response_only=True,
    value={
        "message": "Nothing was imported because 1 row was refused.",
        "code": "import_refused",
        "errors": {"rows.1.hours": ["Log hours in quarter-hour steps (0.25, 0.5, 0.75 …)."]},
        "source": "harvest",
        "dry_run": False,
        "committed": False,
        "summary": {"rows": 2, "imported": 0, "ready": 1, "already_imported": 0, "refused": 1},
        "rows": [],
    },
)


class TimeImportView(generics.GenericAPIView):
    """Import the caller's own time; see the module docstring for the answers."""

    permission_classes = [CanImportTime]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    serializer_class = TimeImportRequestSerializer
    queryset = TimeEntry.objects.none()

    @extend_schema(
        tags=["time entries"],
        operation_id="time_entries_import",
        summary="Import your own time from Harvest, Toggl Track, Kimai or Throughline CSV",
        description=(
            "multipart/form-data: `source` (harvest, toggl, kimai, throughline), `file` (the CSV export) and "
            'optional `dry_run`. application/json: `{"source": "throughline", "rows": [...], "dry_run": '
            "false}`. Every row becomes a draft entry of the caller, under the rules of logging time (quarter "
            "hours, 24 h per day including the other rows, locked months, open project, team membership, "
            "billable category in the rate card in force); a row naming another person is refused. All or "
            "nothing: if any row is refused nothing is imported and the answer is 400 with the report and "
            "errors under rows.<index>.<field>. Rows already imported by the caller (same system and external "
            "ID) are skipped. 201: something was imported; 200: nothing new (all already imported, or a dry "
            "run). A bad file (size, encoding, columns, more than the row limit) answers 400 with errors.file. "
            "Retrying is safe: entries are keyed by their external IDs (Idempotency-Key is not used)."
        ),
        request={
            "multipart/form-data": TimeImportUploadSerializer,
            "application/json": TimeImportRowsSerializer,
        },
        responses={
            201: OpenApiResponse(ImportReportSerializer, description="Imported; the report, row by row."),
            200: OpenApiResponse(ImportReportSerializer, description="Nothing new, or a dry run."),
            400: OpenApiResponse(
                ImportRefusedSerializer,
                description="Rows refused (nothing imported; the report with flat keys rows.N.field), or a bad "
                "file or request (message, code, errors.file / errors.source).",
            ),
            401: OpenApiResponse(ApiErrorSerializer, description="Not signed in."),
            403: OpenApiResponse(ApiErrorSerializer, description="Your role does not log time."),
        },
        examples=[REFUSED_EXAMPLE],
    )
    def post(self, request):
        data = parse(self)
        if data.get("rows") is not None and data["source"] != "throughline":
            raise ValidationFailed(
                "Rows sent as JSON use the throughline format; upload other tools' exports as a file.",
                field="source",
            )
        report = imports.time_entries_import(
            actor=request.user,
            source=data["source"],
            file_or_rows=data["file"] if data.get("file") is not None else data["rows"],
            dry_run=data.get("dry_run", False),
        )
        body = report.as_dict()
        if report.refused:
            return Response({**body, "code": "import_refused"}, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if report.committed and report.imported else status.HTTP_200_OK
        return Response(body, status=code)
