"""Serving a stored file as a download: the one way every access-checked file view answers.

The caller checks access first (a selector); this opens the file, answers 404 with a message when the
storage lost it, and sends it as an attachment with its content type and ``X-Content-Type-Options:
nosniff``, so that a browser never sniffs an upload into something it would run.
"""

from __future__ import annotations

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404


class StoredFileMissing(Http404):
    """The record names a file the storage no longer has."""


def stored_file_response(
    field_file: FieldFile,
    *,
    filename: str,
    content_type: str | None = None,
    missing: str = "The file is missing.",
) -> FileResponse:
    """``field_file`` as an attachment named ``filename``; StoredFileMissing (a 404) with ``missing`` when the
    storage has no such file."""
    try:
        handle = field_file.open("rb")
    except FileNotFoundError as exc:
        raise StoredFileMissing(missing) from exc
    response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response
