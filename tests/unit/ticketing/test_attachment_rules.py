"""What files a ticket accepts: the type comes from the bytes, never from the name."""

import io
import zipfile

import pytest

from ticketing.domain.attachments import AttachmentPolicy, AttachmentRefusedError, sniff

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
POLICY = AttachmentPolicy(max_file_bytes=1000, max_ticket_bytes=2500)


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<document/>")
    return buffer.getvalue()


def test_the_type_is_read_from_the_bytes_not_the_name() -> None:
    assert sniff(PNG, "notes.txt") == "image/png"
    assert sniff(b"%PDF-1.7\n1 0 obj\n", "scan") == "application/pdf"
    assert sniff("журнал: ошибка 500\n".encode(), "server.log") == "text/plain"
    assert sniff(b"MZ\x90\x00" + bytes(60), "invoice.pdf").endswith("portable-executable")
    assert sniff(bytes([0, 159, 146, 150]), "data.txt") == ""  # binary, of no known type
    # One signature for several container types: the name picks among them only.
    assert sniff(_docx(), "report.docx").endswith("wordprocessingml.document")
    assert sniff(_docx(), "report.xlsx").endswith("spreadsheetml.sheet")
    assert sniff(_docx(), "report.exe") == "application/zip"


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.txt", "invalid"),
        (b"x" * 1001, "big.log", "too_large"),
        (b"MZ\x90\x00" + bytes(60), "setup.pdf", "unsupported_type"),
        (b"<html><script>alert(1)</script></html>", "page.html", "unsupported_type"),
    ],
)
def test_what_is_refused_says_why(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(AttachmentRefusedError) as refused:
        POLICY.content_type(data, name)
    assert refused.value.reason == reason
    assert name in str(refused.value)


def test_a_tickets_files_stay_under_its_limit() -> None:
    assert POLICY.content_type(PNG, "a.png") == "image/png"
    POLICY.fits(ticket_bytes=1500, adding=1000)
    with pytest.raises(AttachmentRefusedError, match="the limit is 2500"):
        POLICY.fits(ticket_bytes=1501, adding=1000)
    narrow = AttachmentPolicy(1000, 2500, frozenset({"application/pdf"}))
    with pytest.raises(AttachmentRefusedError, match="allowed: application/pdf"):
        narrow.content_type(PNG, "a.png")
