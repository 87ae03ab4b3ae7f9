"""Ground truth: every simulated fact, one JSON object per line.

Each line has ``kind`` and ``wall`` (UTC time it was written, ISO 8601) plus
the fact's fields. Kinds written by the runner:

``start``
    seed, centre (degrees), extent (m), speedup and heartbeat period (s).
``device``
    a provisioned device: id, type, name, lat/lon (degrees), local x/y (m),
    attributes.
``unit``
    a patrol unit at a tick: tick index, ``sim_t`` (simulated s since
    start), lat/lon (degrees), x/y (m), heading (degrees), speed (m/s),
    road, odometer (m), body cam battery (%).
``stop``
    the delivery counters at stop.

Sources add their own kinds through :meth:`TruthLog.record` (e.g. a shot's
true position and time for the acoustic benchmarks).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class TruthLog:
    """Appends ground-truth facts to a JSON-lines file (or nowhere).

    Parameters
    ----------
    path : Path or None
        File to append to (created with its folder when missing); None
        records nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: TextIO | None = None
        self.lines = 0

    @property
    def enabled(self) -> bool:
        """Whether facts are written anywhere."""
        return self.path is not None

    def record(self, kind: str, **fields: Any) -> None:
        """Append one fact of ``kind`` (fields must be JSON-serialisable or str-able)."""
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        line = {"kind": kind, "wall": datetime.now(UTC).isoformat(), **fields}
        self._fh.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        self.lines += 1

    def flush(self) -> None:
        """Push written lines to the file."""
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        """Close the file (a later :meth:`record` opens it again, appending)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
