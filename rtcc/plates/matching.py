"""Hotlist matching: exact, look-alike characters, edit distance and wildcard entries.

A plate read is matched against every active hotlist entry as it arrives.
Three kinds of match, best first:

* ``exact`` — the normalized read equals the entry's plate;
* ``lookalike`` — equal after folding characters a reader confuses
  (0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G: :data:`LOOKALIKE_CLASSES`), or, with
  ``max_distance`` ≥ 1, within that many edits (insertions, deletions,
  substitutions) of each other after folding;
* ``partial`` — the entry holds wildcards (``?`` one character, ``*`` any
  run), as in a BOLO for a partly seen plate.

Method
------
Exact and folded ("skeleton") plates are dictionary keys. Edit distance uses
the symmetric-delete index of SymSpell (Garbe, 2012): every entry skeleton is
stored under each string obtained by deleting up to ``max_distance``
characters; a read's deletes are looked up and candidates verified with a
bounded Levenshtein distance. Wildcard entries without ``*`` and of equal
length are keyed by their fixed characters under their wildcard positions (one
probe per distinct position set); entries with ``*`` are compiled to regular
expressions and tried in turn (keep those few). Building is O(N·L^d) memory for N
entries of length L; a lookup is O(L^d) dictionary probes plus the partial
entries.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from operator import itemgetter
from typing import Any, Literal

from rtcc.plates.normalize import normalize_plate as normalize_plate

LOOKALIKE_CLASSES: tuple[str, ...] = ("0ODQ", "1I", "2Z", "5S", "8B", "6G")
"""Characters plate readers confuse; each class folds to its first character."""

_FOLD = str.maketrans({c: cls[0] for cls in LOOKALIKE_CLASSES for c in cls})

MatchKind = Literal["exact", "lookalike", "partial"]
_RANK: dict[str, int] = {"exact": 0, "lookalike": 1, "partial": 2}


def skeleton(plate: str) -> str:
    """The plate with look-alike characters folded (``"B0S"`` → ``"805"``)."""
    return plate.translate(_FOLD)


@dataclass(frozen=True)
class HotEntry:
    """One hotlist entry as the matcher sees it."""

    entry_id: str
    plate: str
    category: str
    state: str | None = None

    @property
    def is_partial(self) -> bool:
        return "?" in self.plate or "*" in self.plate


@dataclass(frozen=True)
class Match:
    """A read matched an entry."""

    entry: HotEntry
    kind: MatchKind
    distance: int = 0


def match_order(m: Match) -> tuple[int, int, str]:
    """Sort key of matches: best kind first, then fewer edits, then entry id."""
    return (_RANK[m.kind], m.distance, m.entry.entry_id)


def _deletes(word: str, max_distance: int) -> set[str]:
    if max_distance == 1:  # the common case, without the general loop's overhead
        return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}
    out = {word}
    for d in range(1, min(max_distance, len(word)) + 1):
        for idx in combinations(range(len(word)), d):
            drop = set(idx)
            out.add("".join(c for i, c in enumerate(word) if i not in drop))
    return out


def _levenshtein_within(a: str, b: str, limit: int) -> int | None:
    """Edit distance of ``a`` and ``b`` if ≤ ``limit``, else None (banded DP)."""
    if abs(len(a) - len(b)) > limit:
        return None
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            best = min(best, cur[j])
        if best > limit:
            return None
        prev = cur
    return prev[-1] if prev[-1] <= limit else None


def _within_one(a: str, b: str) -> int | None:
    """Edit distance of ``a`` and ``b`` if ≤ 1, else None, in one linear pass (no DP table)."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if la == lb:
        return 1 if sum(x != y for x, y in zip(a, b, strict=True)) == 1 else None
    if abs(la - lb) != 1:
        return None
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return 1 if a[i:] == b[i + 1 :] else None


def _picker(kept: list[int]) -> Callable[[str], tuple[str, ...]]:
    """Characters at ``kept`` as a tuple (itemgetter returns a bare item for one index)."""

    def pick(s: str) -> tuple[str, ...]:
        return tuple(s[i] for i in kept)

    return pick


class HotlistMatcher:
    """An immutable index of entries; build a new one when hotlists change.

    Parameters
    ----------
    entries
        Active entries (expired ones should be left out by the caller).
    max_distance
        Edits allowed after look-alike folding (0: look-alikes only). Each
        step multiplies index memory by about the plate length.
    """

    def __init__(self, entries: Iterable[HotEntry], *, max_distance: int = 0) -> None:
        if not 0 <= max_distance <= 2:
            raise ValueError("max_distance must be 0, 1 or 2")
        self.max_distance = max_distance
        self._exact: dict[str, list[HotEntry]] = defaultdict(list)
        self._skel: dict[str, list[HotEntry]] = defaultdict(list)
        self._deletes: dict[str, list[str]] = defaultdict(list)
        # "?" patterns, grouped by (length, wildcard positions) and keyed by their fixed characters
        self._wild: dict[tuple[int, tuple[int, ...]], dict[str, list[HotEntry]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._star: list[tuple[re.Pattern[str], HotEntry]] = []
        self.size = 0
        for e in entries:
            self.size += 1
            if e.is_partial:
                folded = skeleton(e.plate)
                if "*" in folded:
                    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in folded)
                    self._star.append((re.compile(rx), e))
                else:
                    holes = tuple(i for i, c in enumerate(folded) if c == "?")
                    self._wild[(len(folded), holes)][folded.replace("?", "")].append(e)
                continue
            self._exact[e.plate].append(e)
            sk = skeleton(e.plate)
            if sk not in self._skel and max_distance:
                for d in _deletes(sk, max_distance):
                    self._deletes[d].append(sk)
            self._skel[sk].append(e)

        # per length: (picker of the fixed positions, table) for one probe per position set
        self._wild_probes: dict[int, list[tuple[Callable[[str], Any], dict[str, list[HotEntry]]]]] = {}
        for (length, holes), table in self._wild.items():
            kept = [i for i in range(length) if i not in holes]
            pick: Callable[[str], Any] = itemgetter(*kept) if len(kept) > 1 else _picker(kept)
            self._wild_probes.setdefault(length, []).append((pick, table))

    def match(self, plate: str) -> list[Match]:
        """Every entry ``plate`` (already normalized) matches, best kind first."""
        found: dict[str, Match] = {}

        def add(m: Match) -> None:
            old = found.get(m.entry.entry_id)
            if old is None or (_RANK[m.kind], m.distance) < (_RANK[old.kind], old.distance):
                found[m.entry.entry_id] = m

        for e in self._exact.get(plate, ()):
            add(Match(e, "exact"))
        sk = skeleton(plate)
        for e in self._skel.get(sk, ()):
            add(Match(e, "lookalike"))
        if self.max_distance:
            seen: set[str] = set()
            for d in _deletes(sk, self.max_distance):
                for cand in self._deletes.get(d, ()):
                    if cand in seen or cand == sk:
                        continue
                    seen.add(cand)
                    dist = (
                        _within_one(sk, cand)
                        if self.max_distance == 1
                        else _levenshtein_within(sk, cand, self.max_distance)
                    )
                    if dist is not None:
                        for e in self._skel[cand]:
                            add(Match(e, "lookalike", dist))
        for keep, table in self._wild_probes.get(len(sk), ()):
            for e in table.get("".join(keep(sk)), ()):
                add(Match(e, "partial"))
        for rx, e in self._star:
            if rx.fullmatch(sk):
                add(Match(e, "partial"))
        return sorted(found.values(), key=match_order)

    def match_many(self, plates: Sequence[str]) -> list[list[Match]]:
        return [self.match(p) for p in plates]
