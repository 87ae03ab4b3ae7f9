"""A field device's on-disk outbox: every item is written here first and removed once delivered.

A SQLite file (WAL) in the buffer folder keeps items (acoustic pulses, plate-camera passes) in
the order they were made. Writing before sending means a crash, a power cut or a center outage
loses nothing; delivering by a stable id makes a resend harmless (the center reports it as a
duplicate). An item the center refuses for good (too old, in the future, malformed) is not
deleted either: :meth:`Spool.refuse` moves it to ``refused/<id>.json`` beside the queue, with
the center's reason, for a person to look at.

An optional bound (``max_bytes``) keeps the queue from filling the disk: :meth:`Spool.put`
raises :class:`SpoolFull` instead of storing an item past it, and the caller decides what to do
(the sensor agent sends such a pulse directly and counts it). A disk that fails or fills up
anyway surfaces as :class:`sqlite3.Error` (``disk I/O error``, ``database or disk is full``).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path


class SpoolFull(Exception):
    """The spool already holds its ``max_bytes``: the item was not stored."""


class Spool:
    """Durable FIFO of JSON items, keyed by a stable id (the event id, a pass id).

    Parameters
    ----------
    folder : pathlib.Path
        Created when missing; the queue is ``folder/outbox.sqlite``, refused items go to
        ``folder/refused/``.
    max_bytes : int or None
        Most bytes of items the queue may hold (the live pages of the SQLite file, see
        :meth:`used_bytes`); None: no bound. Space freed by delivered items is used again.

    Raises
    ------
    OSError
        The folder cannot be created or is not a folder (e.g. an existing file).
    sqlite3.Error
        The queue file cannot be opened.
    """

    def __init__(self, folder: Path, *, max_bytes: int | None = None) -> None:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / "outbox.sqlite"
        self.refused_dir = folder / "refused"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL)"
        )

    def put(self, event_id: str, body: str) -> None:
        """Append one item (ignored when that id is already queued).

        Raises
        ------
        SpoolFull
            The item would take the queue past ``max_bytes`` (nothing is written).
        sqlite3.Error
            The item cannot be written (a full or failing disk); nothing is stored.
        """
        with self._lock:
            if self.max_bytes is not None:
                used = self._used_bytes()
                if used + len(body.encode()) > self.max_bytes:
                    raise SpoolFull(
                        f"the spool is full: {used / 1e6:.1f} MB held, {self.max_bytes / 1e6:.1f} MB at most"
                    )
            self._db.execute("INSERT OR IGNORE INTO outbox (event_id, body) VALUES (?, ?)", (event_id, body))

    def peek(self, limit: int) -> list[tuple[str, str]]:
        """The oldest ``limit`` items as (id, JSON body)."""
        return [(i, b) for _, i, b in self.peek_after(0, limit)]

    def peek_after(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """The oldest ``limit`` items queued after position ``seq``, as (position, id, JSON body)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            )
            return [(int(s), str(a), str(b)) for s, a, b in rows.fetchall()]

    def remove(self, event_ids: list[str]) -> None:
        """Forget delivered items."""
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE event_id = ?", [(e,) for e in event_ids])

    def refuse(self, event_id: str, reason: str) -> Path | None:
        """Move an item the center refused for good to ``refused/<id>.json`` (with ``reason``).

        The file (``{"id", "reason", "refused_at", "body"}``) is written and synced before the
        item leaves the queue, so a crash in between leaves it queued, never lost. Returns the
        file, or None when the id is not queued.

        Raises
        ------
        OSError
            The file cannot be written (the item stays queued).
        """
        with self._lock:
            row = self._db.execute("SELECT body FROM outbox WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                return None
            try:
                body = json.loads(row[0])
            except ValueError:
                body = row[0]
            self.refused_dir.mkdir(exist_ok=True)
            dest = self.refused_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", event_id) + ".json")
            record = {
                "id": event_id,
                "reason": reason,
                "refused_at": datetime.now(UTC).isoformat(),
                "body": body,
            }
            tmp = dest.with_suffix(".json.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(dest)
            self._db.execute("DELETE FROM outbox WHERE event_id = ?", (event_id,))
            return dest

    def _used_bytes(self) -> int:
        pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        return (pages - free) * size

    def used_bytes(self) -> int:
        """Bytes the queue holds: the SQLite file's pages in use (free pages are used again)."""
        with self._lock:
            return self._used_bytes()

    def refused_count(self) -> int:
        """How many refused items are kept in ``refused/``."""
        return len(list(self.refused_dir.glob("*.json"))) if self.refused_dir.is_dir() else 0

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
