"""The time import page: upload an export of Harvest, Toggl Track, Kimai or Throughline's own CSV and see,
row by row, what was imported, what was already there and what was refused and why.

Thin like the other pages: the form parses, ``imports.time_entries_import`` checks the file and every row
and writes (all or nothing); this view renders its report. The report is rendered in the POST's response
(no redirect): sending the form again is harmless, because the import is idempotent by external ID.
"""

from __future__ import annotations

from django import forms
from django.shortcuts import render

from backbone.errors import DomainError, NotPermitted
from backbone.views import Guarded

from . import imports

UPLOAD_ACCEPT = ".csv,.txt,text/csv,text/plain"


class TimeImportForm(forms.Form):
    source = forms.ChoiceField(
        label="Exported from",
        choices=imports.SOURCE_CHOICES,
        initial="harvest",
        help_text="The tool whose export this is; the columns of each are explained below.",
    )
    file = forms.FileField(
        label="CSV file",
        help_text=(
            f"UTF-8, comma or semicolon separated, at most {imports.MAX_FILE_BYTES // (1024 * 1024)} MB and "
            f"{imports.MAX_ROWS} rows."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": UPLOAD_ACCEPT}),
    )
    dry_run = forms.BooleanField(
        label="Check only (dry run): report what would be imported, save nothing",
        required=False,
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        problem = imports.upload_problem(upload)
        if problem:
            raise forms.ValidationError(problem)
        return upload


class TimeImportView(Guarded):
    """Anyone who logs time imports their own (``projects.add_timeentry``); auditors change nothing."""

    permission_required = ("projects.add_timeentry",)
    writes = True
    template_name = "projects/time_import.html"

    def render_page(self, request, *, form, report=None, summary: str = "", status: int = 200):
        context = {
            "form": form,
            "report": report,
            "error_summary": summary,
            "formats": list(imports.FORMATS.values()),
            "max_rows": imports.MAX_ROWS,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self.render_page(request, form=TimeImportForm())

    def post(self, request):
        form = TimeImportForm(request.POST, request.FILES)
        if not form.is_valid():
            summary = "Nothing was imported. Please correct the fields marked below."
            return self.render_page(request, form=form, summary=summary, status=400)
        try:
            report = imports.time_entries_import(
                actor=request.user,
                source=form.cleaned_data["source"],
                file_or_rows=form.cleaned_data["file"],
                dry_run=form.cleaned_data["dry_run"],
            )
        except NotPermitted as exc:
            return self.render_page(request, form=form, summary=exc.message, status=403)
        except DomainError as exc:
            field = exc.field if exc.field in form.fields else None
            for key, messages in (exc.errors or {}).items():
                for message in messages:
                    form.add_error(key if key in form.fields else None, message)
            if not exc.errors:
                form.add_error(field, exc.message)
            return self.render_page(
                request, form=form, summary=f"Nothing was imported. {exc.message}", status=exc.status_code
            )
        again = TimeImportForm(initial={"source": form.cleaned_data["source"], "dry_run": form.cleaned_data["dry_run"]})
        return self.render_page(request, form=again, report=report, status=400 if report.refused else 200)
