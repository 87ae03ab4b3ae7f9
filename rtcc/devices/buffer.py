"""A field device's on-disk outbox: every item is written here first and removed once delivered.

A SQLite file (WAL) in the buffer folder keeps items (acoustic pulses, plate-camera passes) in
the order they were made. Writing before sending means a crash, a power cut or a center outage
loses nothing; delivering by a stable id makes a resend harmless (the center reports it as a
duplicate).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Spool:
    """Durable FIFO of JSON items, keyed by a stable id (the event id, a pass id).

    Parameters
    ----------
    folder : pathlib.Path
        Created when missing; the queue is ``folder/outbox.sqlite``.
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / "outbox.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL)"
        )

    def put(self, event_id: str, body: str) -> None:
        """Append one item (ignored when that id is already queued)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO outbox (event_id, body) VALUES (?, ?)", (event_id, body))

    def peek(self, limit: int) -> list[tuple[str, str]]:
        """The oldest ``limit`` items as (id, JSON body)."""
        with self._lock:
            rows = self._db.execute("SELECT event_id, body FROM outbox ORDER BY seq LIMIT ?", (limit,))
            return [(str(a), str(b)) for a, b in rows.fetchall()]

    def remove(self, event_ids: list[str]) -> None:
        """Forget delivered (or for good refused) items."""
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE event_id = ?", [(e,) for e in event_ids])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
