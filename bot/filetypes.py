"""The files a user may attach from the widget, told by their content, never by their name.

Allowed: PNG and JPEG screenshots, PDF, OFD (the Chinese e-invoice format: a ZIP package with ``OFD.xml`` at
its root), XML (e-invoice data), and plain text or log files. Text must be valid UTF-8 and must not look like
HTML: an HTML page named ``.png`` or ``.txt`` is refused, whatever its name says, so that nothing a user
uploads can ever be served as a page.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass


@dataclass(frozen=True)
class FileType:
    content_type: str
    extension: str  # the file name's ending, when it has none of its own kinds
    image: bool = False  # shown inline as a thumbnail


PNG = FileType("image/png", ".png", image=True)
JPEG = FileType("image/jpeg", ".jpg", image=True)
PDF = FileType("application/pdf", ".pdf")
OFD = FileType("application/ofd", ".ofd")
XML = FileType("application/xml", ".xml")
TEXT = FileType("text/plain; charset=utf-8", ".txt")
ALLOWED = "png, jpg, pdf, ofd, xml, txt, log"
EXTENSIONS = {PNG: (".png",), JPEG: (".jpg", ".jpeg"), PDF: (".pdf",), OFD: (".ofd",), XML: (".xml",)}
TEXT_EXTENSIONS = (".txt", ".log", ".xml")

# Markup a browser would render as a page or run as script, anywhere near the start of a text file.
_HTML = re.compile(rb"<\s*(!doctype\s+html|html|head|body|script|iframe|svg|object|embed)\b", re.I)
_XML_START = re.compile(rb"^\s*<(\?xml|[A-Za-z_][\w.:-]*)")
SNIFF_BYTES = 4096  # how much of a text file is looked at for markup


class NotAllowed(ValueError):
    """The content is none of the allowed kinds."""


def sniff(content: bytes, filename: str = "") -> FileType:
    """The kind of ``content``, or :class:`NotAllowed` saying what is accepted."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"PK\x03\x04"):
        if _is_ofd(content):
            return OFD
        raise NotAllowed(f"a ZIP archive that is not an OFD document; allowed: {ALLOWED}")
    return _text(content, filename)


def _is_ofd(content: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return any(name.rstrip("/").lower() == "ofd.xml" for name in archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def _text(content: bytes, filename: str) -> FileType:
    if not content:
        raise NotAllowed("the file is empty")
    if b"\x00" in content:
        raise NotAllowed(f"binary content of an unknown kind; allowed: {ALLOWED}")
    body = content[3:] if content.startswith(b"\xef\xbb\xbf") else content
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotAllowed(f"text files must be UTF-8 (byte {exc.start} is not); allowed: {ALLOWED}") from exc
    if _HTML.search(body[:SNIFF_BYTES]) or _HTML.search(body[-SNIFF_BYTES:]):
        raise NotAllowed("HTML is not accepted as an attachment, whatever the file is named")
    if filename.lower().endswith(".xml") or body.lstrip().startswith(b"<?xml"):
        if not _XML_START.match(body):
            raise NotAllowed("an .xml file that does not start with XML")
        return XML
    return TEXT


def safe_filename(filename: str, kind: FileType) -> str:
    """The name kept and shown: the user's, without any path or control characters, and ending in one of
    its kind's extensions (``report.png`` holding a PDF is kept as ``report.png.pdf``)."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip(" .")
    name = name[-120:] or "attachment"
    endings = TEXT_EXTENSIONS if kind is TEXT else EXTENSIONS.get(kind, (kind.extension,))
    return name if name.lower().endswith(endings) else name + kind.extension
