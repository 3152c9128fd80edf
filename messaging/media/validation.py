"""Validation of outbound MMS media: accepted types, content sniffing, size and count limits.

Pure functions over bytes plus the declared file name and type. The content type we hand to Twilio is the
one sniffed from the bytes, never the file name or the browser's label: Twilio fetches each MediaUrl and
refuses a Content-Type that does not match the content.

Limits (shared/twilio/FACTS.md, the manual's MIME table), stricter reading where they differ:
- at most 10 items and 5 MB (5,000,000 bytes) in total per message;
- JPEG, GIF and PNG up to 5 MB each (Twilio transcodes and fully supports them);
- every other accepted type up to 500 KB (500,000 bytes). Twilio documents 500 KB for types it does not
  fully support; the manual's "documents ≤ 600 KB" is looser, so 500 KB wins for documents too.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

MAX_ITEMS = 10
MAX_TOTAL_BYTES = 5_000_000
MAX_FULLY_SUPPORTED_BYTES = 5_000_000  # image/jpeg, image/gif, image/png
MAX_OTHER_BYTES = 500_000

# The accepted MIME types, copied from the MIME table of the QuickSend user guide
# (shared/reference/000_2e623d4eda62e3d2.txt, "MIME type category | MIME type"), which is Twilio's list.
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "Images": (
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/png",
        "image/heic",
        "image/heif",
        "image/tiff",
        "image/bmp",
        "image/webp",
    ),
    "Video": (
        "video/mpeg4",
        "video/mp4",
        "video/mpeg",
        "video/webm",
        "video/quicktime",
        "video/3gpp",
        "video/3gpp2",
        "video/3gpp-tt",
        "video/H261",
        "video/H263",
        "video/H263-1998",
        "video/H263-2000",
        "video/H264",
        "video/H265",
    ),
    # The manual lists the audio types under "Video" without a category row of their own.
    "Audio": (
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/mp3",
        "audio/3gpp",
        "audio/3gpp2",
        "audio/basic",
        "audio/L24",
        "audio/vnd.rn-realaudio",
        "audio/vnd.wave",
        "audio/ac3",
        "audio/webm",
        "audio/amr-nb",
        "audio/amr",
    ),
    "Text": (
        "text/vcard",
        "text/x-vcard",
        "text/directory",
        "text/csv",
        "text/richtext",
        "text/rtf",
        "text/calendar",
    ),
    "Application": (
        "application/pdf",
        "application/vnd.apple.pkpass",
        "application/vcard",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
}
ACCEPTED = frozenset(t.lower() for types in ACCEPTED_TYPES.values() for t in types)
FULLY_SUPPORTED = frozenset({"image/jpeg", "image/jpg", "image/gif", "image/png"})
# Listed by Twilio but they are RTP payload formats or raw sample streams with no file signature to check,
# so a file cannot be shown to be one of them: such uploads are refused (see docs/messaging.md).
UNVERIFIABLE = frozenset(
    {"video/3gpp-tt", "video/h261", "video/h263", "video/h263-1998", "video/h263-2000", "video/h264"}
    | {"video/h265", "audio/l24"}
)

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# One format under several names: each group starts with the type sniff() returns, then the labels that
# mean the same format (so a label in the group matches that sniffed type).
_ALIASES: tuple[tuple[str, ...], ...] = (
    ("image/jpeg", "image/jpg"),
    ("video/mp4", "video/mpeg4", "audio/mp4"),
    ("audio/mp4", "video/mp4"),
    ("video/3gpp", "audio/3gpp"),
    ("video/3gpp2", "audio/3gpp2"),
    ("video/webm", "audio/webm"),
    ("audio/mpeg", "audio/mp3"),
    ("audio/amr", "audio/amr-nb"),
    ("text/vcard", "text/x-vcard", "text/directory", "application/vcard"),
    ("image/heic", "image/heif"),
    ("image/heif", "image/heic"),
)

# What a file name's extension says it is (used only like a declared type, never to decide the type).
_EXTENSIONS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".gif": "image/gif",
    ".png": "image/png",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".qt": "video/quicktime",
    ".3gp": "video/3gpp",
    ".3g2": "video/3gpp2",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".au": "audio/basic",
    ".snd": "audio/basic",
    ".ra": "audio/vnd.rn-realaudio",
    ".wav": "audio/vnd.wave",
    ".ac3": "audio/ac3",
    ".amr": "audio/amr",
    ".vcf": "text/vcard",
    ".vcard": "text/vcard",
    ".csv": "text/csv",
    ".rtx": "text/richtext",
    ".rtf": "text/rtf",
    ".ics": "text/calendar",
    ".ifb": "text/calendar",
    ".pdf": "application/pdf",
    ".pkpass": "application/vnd.apple.pkpass",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".docx": _DOCX,
    ".xlsx": _XLSX,
    ".pptx": _PPTX,
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".svg": "image/svg+xml",
    ".exe": "application/x-msdownload",
    ".zip": "application/zip",
}

# Plain words for what the content turned out to be, for refusals.
_DESCRIPTIONS = {
    "image/jpeg": "a JPEG image",
    "image/gif": "a GIF image",
    "image/png": "a PNG image",
    "image/heic": "a HEIC image",
    "image/heif": "a HEIF image",
    "image/tiff": "a TIFF image",
    "image/bmp": "a BMP image",
    "image/webp": "a WebP image",
    "video/mp4": "an MP4 video",
    "video/mpeg": "an MPEG video",
    "video/webm": "a WebM video",
    "video/quicktime": "a QuickTime video",
    "video/3gpp": "a 3GP video",
    "video/3gpp2": "a 3G2 video",
    "audio/ogg": "an Ogg audio file",
    "audio/mpeg": "an MP3 audio file",
    "audio/mp4": "an M4A audio file",
    "audio/basic": "an AU audio file",
    "audio/vnd.rn-realaudio": "a RealAudio file",
    "audio/vnd.wave": "a WAV audio file",
    "audio/ac3": "an AC-3 audio file",
    "audio/amr": "an AMR audio file",
    "text/vcard": "a contact card (vCard)",
    "text/calendar": "a calendar file",
    "text/rtf": "an RTF document",
    "text/csv": "a CSV file",
    "text/richtext": "a rich text file",
    "application/pdf": "a PDF document",
    "application/vnd.apple.pkpass": "an Apple Wallet pass",
    "application/msword": "a Word document",
    "application/vnd.ms-excel": "an Excel spreadsheet",
    "application/vnd.ms-powerpoint": "a PowerPoint file",
    _DOCX: "a Word document",
    _XLSX: "an Excel spreadsheet",
    _PPTX: "a PowerPoint file",
    "text/plain": "a plain text file",
    "text/html": "a web page",
    "image/svg+xml": "an SVG image",
    "application/zip": "a ZIP archive",
    "application/x-executable": "a program",
}


class MediaError(ValueError):
    """Media that cannot be sent. ``messages``: plain words for the person sending, each naming its file."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__(" ".join(self.messages))


@dataclass(frozen=True)
class MediaFile:
    """A file someone wants to attach: its bytes, its name, and the type its sender claimed (if any)."""

    name: str
    data: bytes
    declared_type: str | None = None


@dataclass(frozen=True)
class ValidatedMedia:
    name: str
    content_type: str  # sniffed from the content: use this, not the declared type
    size: int


def _iso_bmff(data: bytes) -> str | None:
    # ISO base media (MP4, MOV, 3GP, HEIF, M4A): a box size, then "ftyp" and the major brand.
    if data[4:8] != b"ftyp":
        return "video/quicktime" if data[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") else None
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(len(data), 64), 4)]
    for brand in brands:
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"):
            return "image/heic"
        if brand in (b"mif1", b"msf1", b"heif"):
            return "image/heif"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand.startswith(b"3g2"):
            return "video/3gpp2"
        if brand.startswith((b"3gp", b"3gg", b"3gs", b"3ge")):
            return "video/3gpp"
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "audio/mp4"
        if brand in (
            b"isom",
            b"iso2",
            b"iso4",
            b"iso5",
            b"iso6",
            b"mp41",
            b"mp42",
            b"avc1",
            b"M4V ",
            b"dash",
        ):
            return "video/mp4"
    return None


def _ole2(data: bytes) -> str | None:
    # Legacy Office files are OLE2 compound files; the main stream's name (UTF-16) says which program.
    for stream, content_type in (
        ("WordDocument", "application/msword"),
        ("Workbook", "application/vnd.ms-excel"),
        ("Book", "application/vnd.ms-excel"),
        ("PowerPoint Document", "application/vnd.ms-powerpoint"),
    ):
        if stream.encode("utf-16-le") in data:
            return content_type
    return None


def _zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        return "application/zip"
    if "pass.json" in names:
        return "application/vnd.apple.pkpass"
    if "[Content_Types].xml" in names:
        for prefix, content_type in (("word/", _DOCX), ("xl/", _XLSX), ("ppt/", _PPTX)):
            if any(name.startswith(prefix) for name in names):
                return content_type
    return "application/zip"


def _text(data: bytes) -> str | None:
    """The kind of a text file, or None when the bytes are not text."""
    sample = data[:4096]
    if b"\x00" in sample:
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and len(data) > len(sample):
            text = sample[: exc.start].decode("utf-8")  # a character cut by the end of the sample
        else:
            try:
                text = sample.decode("cp1252")  # spreadsheets still export CSV in Windows-1252
            except UnicodeDecodeError:
                return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    head = text.lstrip("\ufeff \t\r\n").upper()
    if head.startswith("BEGIN:VCARD"):
        return "text/vcard"
    if head.startswith("BEGIN:VCALENDAR"):
        return "text/calendar"
    if head.startswith("{\\RTF"):
        return "text/rtf"
    if head.startswith("<RICHTEXT>") or head.startswith("<RICHTEXT "):
        return "text/richtext"
    if head.startswith("<") and any(tag in head[:1024] for tag in ("<HTML", "<SCRIPT", "<SVG", "<!DOCTYPE")):
        return "image/svg+xml" if "<SVG" in head[:1024] else "text/html"
    return "text/plain"


def sniff(data: bytes) -> str | None:
    """The content type the bytes show, whether accepted or not; None when unrecognisable.

    Formats with several names come back under one (image/jpeg, video/mp4, text/vcard, …); CSV, rich text
    and plain text all come back as "text/plain" (text has no signature: see ``content_type_for``).
    """
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/vnd.wave"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"MZ") and b"\x00" in head:  # DOS/Windows program (its header always has zeros)
        return "application/x-executable"
    if head.startswith((b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe", b"#!")):
        return "application/x-executable"
    if head.startswith((b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")):  # Mach-O, universal binaries
        return "application/x-executable"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole2(data) or "application/x-ole-storage"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip(data)
    iso = _iso_bmff(head)
    if iso:
        return iso
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:4096] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b".snd"):
        return "audio/basic"
    if head.startswith((b".ra\xfd", b".RMF")):
        return "audio/vnd.rn-realaudio"
    if head.startswith(b"\x0b\x77"):
        return "audio/ac3"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "video/mpeg"
    # BMP: "BM", then the DIB header's size as a little-endian 32-bit number (its high bytes are zero).
    if (
        head.startswith(b"BM")
        and head[14:15] in (b"\x0c", b"(", b"4", b"8", b"@", b"l", b"|")
        and head[15:18] == b"\x00\x00\x00"
    ):
        return "image/bmp"
    return _text(data)


def _declared(declared_type: str | None, filename: str) -> str | None:
    if declared_type:
        base = declared_type.split(";", 1)[0].strip().lower()
        if base and base not in ("application/octet-stream", "binary/octet-stream"):
            return base
    ext = posixpath.splitext(filename.lower())[1]
    return _EXTENSIONS.get(ext)


def _same_format(declared: str, sniffed: str) -> bool:
    return declared == sniffed or any(declared in group and group[0] == sniffed for group in _ALIASES)


_OFFICE_FAMILIES = {
    "application/msword": "word", _DOCX: "word",
    "application/vnd.ms-excel": "excel", _XLSX: "excel",
    "application/vnd.ms-powerpoint": "powerpoint", _PPTX: "powerpoint",
}  # fmt: skip


def _category(content_type: str) -> str:
    """Labels may disagree harmlessly within a category (a PNG named .jpg), never across categories."""
    top = content_type.split("/", 1)[0]
    if top in ("audio", "video"):
        return "audio or video"
    if top == "image" and content_type != "image/svg+xml":
        return "image"
    # Documents: each format is its own category, except old and new Office formats of one program.
    return _OFFICE_FAMILIES.get(content_type, content_type)


def _describe(content_type: str | None) -> str:
    if content_type is None:
        return "a kind of file we could not recognise"
    return _DESCRIPTIONS.get(content_type, f"a file of type {content_type}")


def content_type_for(data: bytes, *, filename: str, declared_type: str | None = None) -> str:
    """The accepted content type to send this file with, sniffed from its bytes.

    Raises MediaError naming the file when the content is not an accepted type, or does not match what
    the file claims to be (its declared type, or failing that its extension) — a PDF labelled image/png, a
    program named photo.jpg. A label of the same kind but another format (a PNG named .jpg) is harmless
    and allowed: the sniffed type is the one returned.
    """
    name = filename or "the file"
    sniffed = sniff(data)
    declared = _declared(declared_type, filename)

    if sniffed == "text/plain":
        # Text has no signature: the label picks among the accepted text types, and only those.
        if declared in ("text/csv", "text/richtext"):
            return declared
        if declared is None or declared == "text/plain":
            raise MediaError(
                [f"{name} is a plain text file, which MMS does not accept. Paste the text into the message "
                 "instead, or send it as a CSV or PDF file."]
            )  # fmt: skip
        raise MediaError([f"{name} is labelled as {_describe(declared)} but its content is plain text."])

    if declared == "text/plain" and sniffed in ("text/vcard", "text/calendar", "text/rtf", "text/richtext"):
        declared = None  # "text/plain" is what some phones call any text file: the content decides

    if sniffed == "application/x-executable":
        raise MediaError([f"{name} is a program, not a picture or document; it cannot be sent."])

    if sniffed is None or sniffed not in ACCEPTED or sniffed in UNVERIFIABLE:
        what = _describe(sniffed)
        raise MediaError([f"{name} is {what}, which cannot be sent by MMS. {_accepted_hint()}"])

    if declared is not None and not _same_format(declared, sniffed):
        if declared not in ACCEPTED or _category(declared) != _category(sniffed):
            raise MediaError(
                [f"{name} is labelled as {_describe(declared)} but its content is {_describe(sniffed)}."]
            )
    # The same container holds sound or pictures: an audio label on a video container keeps audio/….
    if (
        declared
        and declared.startswith("audio/")
        and sniffed.startswith("video/")
        and _same_format(declared, sniffed)
    ):
        return declared
    return sniffed


def _accepted_hint() -> str:
    return "Send photos (JPEG, PNG, GIF), videos, audio, PDFs, Office documents, vCards or calendar files."


def max_bytes_for(content_type: str) -> int:
    """The largest single file of this type we send (5 MB for JPEG/GIF/PNG, 500 KB for anything else)."""
    return MAX_FULLY_SUPPORTED_BYTES if content_type in FULLY_SUPPORTED else MAX_OTHER_BYTES


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    return f"{max(1, round(n / 1000))} KB"


def validate_media(files: Sequence[MediaFile]) -> list[ValidatedMedia]:
    """Check a message's attachments; return each with the content type to send it as.

    Raises MediaError listing every problem in plain words (each naming its file).
    """
    problems: list[str] = []
    if len(files) > MAX_ITEMS:
        problems.append(f"A message can carry at most {MAX_ITEMS} attachments; this one has {len(files)}.")
    total = sum(len(f.data) for f in files)
    if total > MAX_TOTAL_BYTES:
        problems.append(
            f"Attachments can add up to at most {_size(MAX_TOTAL_BYTES)}; these add up to {_size(total)}."
        )
    validated: list[ValidatedMedia] = []
    for f in files:
        name = f.name or "the file"
        if not f.data:
            problems.append(f"{name} is empty.")
            continue
        try:
            content_type = content_type_for(f.data, filename=f.name, declared_type=f.declared_type)
        except MediaError as exc:
            problems.extend(exc.messages)
            continue
        limit = max_bytes_for(content_type)
        if len(f.data) > limit:
            if content_type in FULLY_SUPPORTED:
                problems.append(
                    f"{name} is {_size(len(f.data))}, but an image can be at most {_size(limit)}."
                )
            else:
                problems.append(
                    f"{name} is {_size(len(f.data))}, but {_describe(content_type)} can be at most "
                    f"{_size(limit)} (only JPEG, PNG and GIF images may be up to "
                    f"{_size(MAX_FULLY_SUPPORTED_BYTES)})."
                )
            continue
        validated.append(ValidatedMedia(name=f.name, content_type=content_type, size=len(f.data)))
    if problems:
        raise MediaError(problems)
    return validated
