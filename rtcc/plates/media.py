"""Media store: plate crops and vehicle images as files on disk, content-addressed.

A ref is ``<sha256 hex>.<ext>`` (``ext`` one of :data:`EXTENSIONS`); the file
lives at ``root/<first 2 hex>/<next 2 hex>/<ref>``. The same bytes always get
the same ref, so storing twice is harmless and two reads of one image share
one file. Refs are checked against a strict pattern before any path is built,
so a ref from a request can never name a file outside the store.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from rtcc.errors import ValidationFailed

EXTENSIONS = frozenset({"jpg", "png", "webp"})
"""File types the store keeps."""

MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

_REF_RE = re.compile(r"^([0-9a-f]{64})\.(jpg|png|webp)$")


def is_ref(ref: str) -> bool:
    """Whether ``ref`` is a well-formed media ref."""
    return _REF_RE.match(ref) is not None


class MediaStore:
    """Files under ``root``, addressed by the SHA-256 of their content.

    Parameters
    ----------
    root : Path
        Folder of the store (created when missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, ref: str) -> Path:
        """Where ``ref`` is (or would be) stored.

        Raises
        ------
        ValidationFailed
            When ``ref`` is not a well-formed media ref.
        """
        m = _REF_RE.match(ref)
        if m is None:
            raise ValidationFailed(f"not a media ref: {ref[:80]!r}")
        digest = m.group(1)
        return self.root / digest[:2] / digest[2:4] / ref

    def put(self, data: bytes, ext: str) -> str:
        """Store ``data`` (atomically: written to a temporary file, then renamed); returns its ref."""
        if ext not in EXTENSIONS:
            raise ValidationFailed(f"media type {ext!r} is not kept; one of {sorted(EXTENSIONS)}")
        ref = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        dest = self.path(ref)
        if dest.exists():
            return ref
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ref

    def get(self, ref: str) -> bytes | None:
        """The stored bytes, or None when ``ref`` is not in the store."""
        try:
            return self.path(ref).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, ref: str) -> bool:
        return self.path(ref).is_file()

    def delete(self, ref: str) -> bool:
        """Remove ``ref``'s file; False when it was not there."""
        p = self.path(ref)
        try:
            p.unlink()
        except FileNotFoundError:
            return False
        for parent in (p.parent, p.parent.parent):
            try:
                parent.rmdir()  # only succeeds when empty
            except OSError:
                break
        return True


def media_type(ref: str) -> str:
    """The HTTP media type of a ref (``image/jpeg`` …)."""
    return MEDIA_TYPES[ref.rsplit(".", 1)[-1]]
