"""Files sent with a dispute or its answer: checked by extension and content, hashed, stored.

The same rules as claim evidence (``claims.services``): a PDF or an image, at most
``MAX_DISPUTE_FILE_BYTES``, read in chunks while hashed (SHA-256), stored under a name made of the
hash — never a name the sender chose. The content type is ours, never the client's.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO

from django.core.files import File
from django.core.files.storage import default_storage

from relance.claims.services import evidence_filename_clean
from relance.core.errors import ValidationError

MAX_DISPUTE_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
_CHUNK = 64 * 1024
_TYPES: dict[str, tuple[str, bytes]] = {
    ".pdf": ("application/pdf", b"%PDF-"),
    ".png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    ".jpg": ("image/jpeg", b"\xff\xd8\xff"),
    ".jpeg": ("image/jpeg", b"\xff\xd8\xff"),
}


class DisputeFileError(ValidationError):
    code = "dispute.file"
    title = "This file cannot be accepted"


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str  # in default storage
    original_filename: str
    content_type: str
    size: int
    sha256: str


def dispute_file_store(*, content: IO[bytes], filename: str) -> StoredFile:
    """Check and store one file; raises ``DisputeFileError`` (field ``files``) with what to do."""
    name = evidence_filename_clean(filename) or "file"
    ext = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if ext not in _TYPES:
        raise DisputeFileError(f"{name}: send a PDF, PNG or JPEG file.", field="files", value=name[:100])
    content_type, magic = _TYPES[ext]
    digest = hashlib.sha256()
    size = 0
    head = b""
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as spooled:
        while chunk := content.read(_CHUNK):
            size += len(chunk)
            if size > MAX_DISPUTE_FILE_BYTES:
                raise DisputeFileError(
                    f"{name}: a file may be at most {MAX_DISPUTE_FILE_BYTES // (1024 * 1024)} MB.", field="files"
                )
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
            digest.update(chunk)
            spooled.write(chunk)
        if size == 0:
            raise DisputeFileError(f"{name}: the file is empty.", field="files")
        if not head.startswith(magic):
            raise DisputeFileError(f"{name}: the content is not a real {ext[1:].upper()} file.", field="files")
        sha256 = digest.hexdigest()
        spooled.seek(0)
        stored = default_storage.save(f"disputes/{sha256[:2]}/{sha256}{ext}", File(spooled))
    return StoredFile(stored, name, content_type, size, sha256)


def stored_files_delete(files: list[StoredFile]) -> None:
    for f in files:
        default_storage.delete(f.name)
