"""Outbound media: accepted types are recognised from content; mislabeled and oversized files are not."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.media.validation import (
    ACCEPTED,
    MAX_ITEMS,
    UNVERIFIABLE,
    MediaError,
    MediaFile,
    content_type_for,
    validate_media,
)

# ---- tiny real files, built here -----------------------------------------------------------------------


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg() -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\xff\xd9"


def _gif() -> bytes:
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def _bmp() -> bytes:
    pixel = b"\x00\x00\xff\x00"  # one red pixel, row padded to 4 bytes
    dib = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, len(pixel), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(dib) + len(pixel), 0, 0, 14 + len(dib))
    return header + dib + pixel


def _tiff(big_endian: bool = False) -> bytes:
    if big_endian:
        return b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 0) + b"\x00\x00\x00\x00"
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + b"\x00\x00\x00\x00"


def _riff(form: bytes, body: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + form + body


def _webp() -> bytes:
    vp8l = b"\x2f\x00\x00\x00\x00\x88\x88\x08"
    return _riff(b"WEBP", b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l)


def _wav() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    return _riff(
        b"WAVE", b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 2) + b"\x80\x80"
    )


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    payload = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    ftyp = struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload
    return ftyp + struct.pack(">I", 8) + b"mdat"


def _webm() -> bytes:
    doctype = b"\x42\x82\x84webm"
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(doctype)]) + doctype + b"\x18\x53\x80\x67\x80"


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            # A fixed timestamp: the bytes (and so the test ids) must not change between xdist workers.
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _ooxml(folder: str) -> bytes:
    return _zip(
        {"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>", f"{folder}/x.xml": b"<x/>"}
    )


def _ole2(stream: str) -> bytes:
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    entry = stream.encode("utf-16-le") + b"\x00\x00"
    return header + entry.ljust(128, b"\x00")


# (file name, declared type, content, expected content type to send)
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

ACCEPTED_FILES = [
    ("letter.docx", _DOCX, _ooxml("word"), _DOCX),
    ("sheet.xlsx", _XLSX, _ooxml("xl"), _XLSX),
    ("deck.pptx", _PPTX, _ooxml("ppt"), _PPTX),
    ("photo.jpg", "image/jpeg", _jpeg(), "image/jpeg"),
    ("photo.jpg", "image/jpg", _jpeg(), "image/jpeg"),
    ("pic.png", "image/png", _png(), "image/png"),
    ("anim.gif", "image/gif", _gif(), "image/gif"),
    ("scan.bmp", "image/bmp", _bmp(), "image/bmp"),
    ("scan.tif", "image/tiff", _tiff(), "image/tiff"),
    ("scan-mac.tiff", "image/tiff", _tiff(big_endian=True), "image/tiff"),
    ("pic.webp", "image/webp", _webp(), "image/webp"),
    ("iphone.heic", "image/heic", _ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
    ("pic.heif", "image/heif", _ftyp(b"mif1", b"mif1", b"heic"), "image/heif"),
    ("clip.mp4", "video/mp4", _ftyp(b"isom", b"isom", b"mp41"), "video/mp4"),
    ("clip.mp4", "video/mpeg4", _ftyp(b"mp42", b"mp42"), "video/mp4"),
    ("clip.mov", "video/quicktime", _ftyp(b"qt  ", b"qt  "), "video/quicktime"),
    ("clip.3gp", "video/3gpp", _ftyp(b"3gp4", b"3gp4"), "video/3gpp"),
    ("clip.3g2", "video/3gpp2", _ftyp(b"3g2a", b"3g2a"), "video/3gpp2"),
    ("clip.webm", "video/webm", _webm(), "video/webm"),
    ("clip.mpg", "video/mpeg", b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8", "video/mpeg"),
    ("voice.ogg", "audio/ogg", b"OggS\x00\x02" + b"\x00" * 22, "audio/ogg"),
    ("song.mp3", "audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00", "audio/mpeg"),
    ("song.mp3", "audio/mp3", b"\xff\xfb\x90\x00" + b"\x00" * 100, "audio/mpeg"),
    ("note.m4a", "audio/mp4", _ftyp(b"M4A ", b"M4A ", b"mp42"), "audio/mp4"),
    ("note.3gp", "audio/3gpp", _ftyp(b"3gp4", b"3gp4"), "audio/3gpp"),
    ("note.3g2", "audio/3gpp2", _ftyp(b"3g2a", b"3g2a"), "audio/3gpp2"),
    ("beep.au", "audio/basic", b".snd" + struct.pack(">IIIII", 24, 1, 1, 8000, 1) + b"\x00", "audio/basic"),
    ("old.ra", "audio/vnd.rn-realaudio", b".ra\xfd\x00\x04" + b"\x00" * 20, "audio/vnd.rn-realaudio"),
    ("memo.wav", "audio/vnd.wave", _wav(), "audio/vnd.wave"),
    ("track.ac3", "audio/ac3", b"\x0b\x77\x00\x00\x00" + b"\x00" * 20, "audio/ac3"),
    ("voice.webm", "audio/webm", _webm(), "audio/webm"),
    ("voice.amr", "audio/amr", b"#!AMR\n\x3c" + b"\x00" * 31, "audio/amr"),
    ("voice.amr", "audio/amr-nb", b"#!AMR\n\x3c" + b"\x00" * 31, "audio/amr"),
    ("jane.vcf", "text/vcard", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane\r\nEND:VCARD\r\n", "text/vcard"),
    ("jane.vcf", "text/x-vcard", b"BEGIN:VCARD\r\nFN:Jane\r\nEND:VCARD\r\n", "text/vcard"),
    ("jane.vcf", "text/directory", b"begin:vcard\nfn:Jane\nend:vcard\n", "text/vcard"),
    ("jane.vcf", "application/vcard", b"\xef\xbb\xbfBEGIN:VCARD\nFN:Jane\nEND:VCARD\n", "text/vcard"),
    ("meet.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "text/calendar"),
    ("list.csv", "text/csv", "name,city\nJosé,Málaga\n".encode(), "text/csv"),
    ("list.csv", None, "name,city\nJosé,Málaga\n".encode("cp1252"), "text/csv"),
    ("note.rtx", "text/richtext", b"<bold>Hello</bold> there", "text/richtext"),
    ("letter.rtf", "text/rtf", b"{\\rtf1\\ansi Hello}", "text/rtf"),
    ("quote.pdf", "application/pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "application/pdf"),
    ("quote.pdf", "application/octet-stream", b"%PDF-1.7\n%%EOF\n", "application/pdf"),
    (
        "boarding.pkpass",
        "application/vnd.apple.pkpass",
        _zip({"pass.json": b"{}", "manifest.json": b"{}"}),
        "application/vnd.apple.pkpass",
    ),
    ("letter.doc", "application/msword", _ole2("WordDocument"), "application/msword"),
    ("sheet.xls", "application/vnd.ms-excel", _ole2("Workbook"), "application/vnd.ms-excel"),
    (
        "deck.ppt",
        "application/vnd.ms-powerpoint",
        _ole2("PowerPoint Document"),
        "application/vnd.ms-powerpoint",
    ),
    (
        "letter.docx",
        None,
        _ooxml("word"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("sheet.xlsx", None, _ooxml("xl"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (
        "deck.pptx",
        None,
        _ooxml("ppt"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("no-extension", None, _png(), "image/png"),
    ("really-a-png.jpg", "image/jpeg", _png(), "image/png"),  # same kind, other format: harmless, sent as PNG
]


@pytest.mark.parametrize(
    ("name", "declared", "data", "expected"),
    ACCEPTED_FILES,
    ids=lambda v: v if isinstance(v, str) and "/" not in v and len(v) < 30 else "",
)
def test_every_accepted_type_is_recognised_from_its_content(name, declared, data, expected):
    assert content_type_for(data, filename=name, declared_type=declared) == expected
    assert validate_media([MediaFile(name, data, declared)])[0].content_type == expected


def test_every_checkable_type_in_the_table_is_covered_by_a_real_file():
    covered = {declared for _name, declared, _data, _expected in ACCEPTED_FILES}
    assert ACCEPTED - UNVERIFIABLE - covered == set()


def test_a_label_outside_the_table_is_refused_even_for_good_content():
    with pytest.raises(MediaError, match="letter.rtf is labelled as"):
        content_type_for(b"{\\rtf1 x}", filename="letter.rtf", declared_type="application/rtf")


@pytest.mark.parametrize(
    ("name", "declared", "data", "message"),
    [
        (
            "photo.png",
            "image/png",
            b"%PDF-1.4\n%%EOF\n",
            "photo.png is labelled as a PNG image but its content is a PDF",
        ),
        ("photo.png", "image/png", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56, "photo.png is a program"),
        ("photo.jpg", None, b"\x7fELF\x02\x01\x01" + b"\x00" * 57, "photo.jpg is a program"),
        ("run.sh", "text/csv", b"#!/bin/sh\nrm -rf /\n", "run.sh is a program"),
        (
            "invoice.pdf",
            "application/pdf",
            _png(),
            "invoice.pdf is labelled as a PDF document but its content is a PNG",
        ),
        (
            "song.mp3",
            "audio/mpeg",
            _jpeg(),
            "song.mp3 is labelled as an MP3 audio file but its content is a JPEG",
        ),
        (
            "letter.docx",
            None,
            _ooxml("xl"),
            "letter.docx is labelled as a Word document but its content is an Excel",
        ),
        (
            "notes.txt",
            "text/plain",
            b"just some notes\n",
            "notes.txt is a plain text file, which MMS does not accept",
        ),
        ("notes", None, b"just some notes\n", "notes is a plain text file"),
        (
            "jane.vcf",
            "text/vcard",
            b"not a card\n",
            "jane.vcf is labelled as a contact card (vCard) but its content is plain text",
        ),
        ("page.html", "text/html", b"<!DOCTYPE html><html><script>x()</script>", "page.html is a web page"),
        (
            "logo.svg",
            "image/svg+xml",
            b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
            "logo.svg is an SVG image",
        ),
        ("stuff.zip", "application/zip", _zip({"a.txt": b"a"}), "stuff.zip is a ZIP archive"),
        ("blob.bin", None, bytes(range(256)) * 4, "blob.bin is a kind of file we could not recognise"),
        (
            "clip.h264",
            "video/H264",
            b"\x00\x00\x00\x01\x67\x42",
            "clip.h264 is a kind of file we could not recognise",
        ),
        (
            "movie.mkv",
            "video/x-matroska",
            b"\x1a\x45\xdf\xa3\x84\x42\x82\x88matroska",
            "movie.mkv is a file of type",
        ),
    ],
)
def test_mislabeled_and_unaccepted_files_are_refused_naming_the_file(name, declared, data, message):
    with pytest.raises(MediaError) as excinfo:
        validate_media([MediaFile(name, data, declared)])
    assert message in str(excinfo.value)


def test_a_contact_card_labelled_plain_text_is_still_a_contact_card():
    card = b"BEGIN:VCARD\r\nFN:Jane\r\nEND:VCARD\r\n"
    assert content_type_for(card, filename="jane.vcf", declared_type="text/plain") == "text/vcard"


def test_a_text_file_starting_like_a_program_header_is_still_text():
    assert (
        content_type_for(b"MZ,Mazda dealers\n1,2\n", filename="cars.csv", declared_type="text/csv")
        == "text/csv"
    )
    assert content_type_for(b"BM,BMW dealers,40\n", filename="cars.csv") == "text/csv"


def test_a_jpeg_gif_or_png_may_be_up_to_5_mb():
    big_png = _png() + b"\x00" * (5_000_000 - len(_png()))
    assert validate_media([MediaFile("big.png", big_png, "image/png")])[0].size == 5_000_000
    with pytest.raises(MediaError, match=r"huge.png is 5.0 MB, but an image can be at most 5.0 MB"):
        validate_media([MediaFile("huge.png", big_png + b"\x00", "image/png")])


def test_every_other_type_may_be_up_to_500_kb():
    pdf = b"%PDF-1.4\n" + b"0" * (500_000 - 9)
    assert validate_media([MediaFile("ok.pdf", pdf, "application/pdf")])[0].size == 500_000
    with pytest.raises(MediaError) as excinfo:
        validate_media([MediaFile("big.pdf", pdf + b"0" * 100_000, "application/pdf")])
    assert str(excinfo.value) == (
        "big.pdf is 600 KB, but a PDF document can be at most 500 KB "
        "(only JPEG, PNG and GIF images may be up to 5.0 MB)."
    )
    heic = _ftyp(b"heic", b"heic") + b"\x00" * 500_000
    with pytest.raises(MediaError, match="a HEIC image can be at most 500 KB"):
        validate_media([MediaFile("iphone.heic", heic, "image/heic")])


def test_at_most_5_mb_in_total():
    two_and_a_half = _jpeg() + b"\x00" * 2_500_000
    validate_media(
        [MediaFile("a.jpg", two_and_a_half[:2_499_999]), MediaFile("b.jpg", two_and_a_half[:2_499_999])]
    )
    with pytest.raises(MediaError, match=r"add up to at most 5.0 MB; these add up to 5.0 MB"):
        validate_media([MediaFile("a.jpg", two_and_a_half), MediaFile("b.jpg", two_and_a_half)])


def test_at_most_10_attachments():
    validate_media([MediaFile(f"{i}.png", _png()) for i in range(MAX_ITEMS)])
    with pytest.raises(MediaError, match="at most 10 attachments; this one has 11"):
        validate_media([MediaFile(f"{i}.png", _png()) for i in range(MAX_ITEMS + 1)])


def test_every_problem_is_reported_at_once():
    with pytest.raises(MediaError) as excinfo:
        validate_media(
            [MediaFile("ok.png", _png()), MediaFile("bad.png", b"%PDF-1.4\n"), MediaFile("empty.gif", b"")]
        )
    assert excinfo.value.messages == [
        "bad.png is labelled as a PNG image but its content is a PDF document.",
        "empty.gif is empty.",
    ]


@given(
    st.binary(max_size=2048), st.sampled_from([None, "image/png", "application/pdf", "text/csv", "video/mp4"])
)
def test_any_bytes_either_get_an_accepted_type_or_a_plain_refusal(data, declared):
    try:
        content_type = content_type_for(data, filename="upload", declared_type=declared)
    except MediaError as exc:
        assert exc.messages and all(m.startswith("upload ") for m in exc.messages)
    else:
        assert content_type in ACCEPTED
