"""What an uploaded file really is, and whether it may be stored: one rule for every upload of the app.

The name's extension, the type the browser declared and the bytes themselves must agree. The bytes decide
first: a PDF starts with its signature, an image must decode with Pillow, and the office formats are ZIP
containers whose directory names the parts each format must have (only the directory is read, nothing is
decompressed except ODF's few-byte ``mimetype`` entry, so a ZIP bomb costs nothing).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import PurePosixPath

# Declared types that say nothing (some clients send these for any file): the content check still decides.
UNINFORMATIVE_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

# The MIME type a stored file of each format is served with, whatever the uploader declared.
CANONICAL_CONTENT_TYPES = {
    "PDF": "application/pdf",
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ODT": "application/vnd.oasis.opendocument.text",
}
_ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
_ZIP_SIGNATURE = b"PK\x03\x04"


def decoded_image_format(upload) -> str | None:
    """The image format Pillow finds by decoding the file ("PNG", "JPEG"...), None when it is no image.
    What the bytes are decides, never the file's name or the browser's declared type."""
    from PIL import Image, UnidentifiedImageError

    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image_format = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        image_format = None
    finally:
        upload.seek(0)
    return image_format


def _office_format(upload) -> str | None:
    """DOCX, XLSX or ODT when the file is a ZIP container with that format's required parts."""
    try:
        upload.seek(0)
        with zipfile.ZipFile(upload) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" in names and "word/document.xml" in names:
                return "DOCX"
            if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
                return "XLSX"
            if "mimetype" in names and "content.xml" in names:
                info = archive.getinfo("mimetype")
                if info.file_size <= 100:
                    with archive.open(info) as handle:
                        if handle.read(100).strip() == _ODT_MIMETYPE:
                            return "ODT"
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, RuntimeError, NotImplementedError):
        return None
    finally:
        upload.seek(0)
    return None


def document_format(upload) -> str | None:
    """ "PDF" when the file starts with the PDF signature, "DOCX"/"XLSX"/"ODT" for those containers, else the
    decoded image format, else None."""
    try:
        upload.seek(0)
        head = upload.read(1024)
    finally:
        upload.seek(0)
    if isinstance(head, bytes) and head.lstrip(b"\x00\t\n\r\x0c ").startswith(b"%PDF-"):
        return "PDF"
    if isinstance(head, bytes) and head.startswith(_ZIP_SIGNATURE):
        return _office_format(upload)
    return decoded_image_format(upload)


def _article(word: str) -> str:
    """ "a PDF", "an XLSX": the article by how the first letter is spoken."""
    return "an" if word[:1].upper() in "AEFHILMNORSX" else "a"


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def file_problem(
    upload,
    *,
    types: Mapping[str, tuple[str, set[str] | frozenset[str]]],
    max_bytes: int,
    noun: str = "document",
) -> str | None:
    """Why ``upload`` cannot be stored, or None when it can.

    ``types`` maps an extension (".pdf") to the format the content must decode as and the content types a
    browser may declare for it. The size, the extension, the declared type and the content are checked in
    that order, and the first problem is the message.
    """
    size = getattr(upload, "size", 0) or 0
    if size > max_bytes:
        megabytes = f"{size / (1024 * 1024):.1f}"
        return f"The {noun} is {megabytes} MB; the limit is {max_bytes // (1024 * 1024)} MB."
    formats = list(dict.fromkeys(expected for expected, _ in types.values()))
    name = PurePosixPath(getattr(upload, "name", "") or "").name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in types:
        return (
            f"The {noun} must be {_article(formats[0])} {_either(formats)} file ({_either(list(types))}); "
            f"'{name}' is not."
        )
    expected, declared_types = types[suffix]
    declared = str(getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
    if declared not in UNINFORMATIVE_CONTENT_TYPES and declared not in declared_types:
        return f"'{name}' was sent as {declared}, which is not {_article(expected)} {expected} file."
    found = document_format(upload)
    if found != expected:
        if found in formats:
            what = f"{_article(found)} {found} file"
        else:
            what = f"not {_article(formats[0])} {_either(formats)} file"
        return f"'{name}' is named as {_article(expected)} {expected} file but its content is {what}."
    return None
