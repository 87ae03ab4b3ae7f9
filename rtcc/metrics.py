"""Process-local counters, exposed by the API and the CLI.

Counters are keyed by a name and optional labels; they are cheap enough to
bump on every message. Each process keeps its own: a worker process's counts
appear in its logs and in the bus stats of the process that reads them.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Metrics:
    """Thread-safe named counters with labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counts[key] += amount

    def get(self, name: str, **labels: str) -> int:
        """The count for ``name``; with labels, that series; without, the sum of all series."""
        with self._lock:
            if labels:
                return self._counts[(name, tuple(sorted(labels.items())))]
            return sum(v for (n, _), v in self._counts.items() if n == name)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"name": n, "labels": dict(lbl), "value": v} for (n, lbl), v in sorted(self._counts.items())
            ]
