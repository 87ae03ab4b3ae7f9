"""Hotlist parsing (NCIC fixed width, CSV) and matching (exact, look-alike, edit distance, wildcards)."""

from __future__ import annotations

import random
import string

import pytest

from rtcc.plates.hotlist_import import NCIC_LAYOUT, Category, parse_csv, parse_ncic
from rtcc.plates.matching import HotEntry, HotlistMatcher, normalize_plate, skeleton


def ncic_line(**fields: str) -> str:
    width = max(e for _, _, e in NCIC_LAYOUT)
    buf = [" "] * width
    for name, start, end in NCIC_LAYOUT:
        value = fields.get(name, "")[: end - start + 1]
        buf[start - 1 : start - 1 + len(value)] = list(value)
    return "".join(buf)


def test_ncic_fixed_width_with_bad_lines_reported_by_number() -> None:
    lines = [
        ncic_line(plate="ABC1234", state="AL", mke="EV", ncic_number="V123456789"),
        "",
        ncic_line(plate="XYZ-99", state="GA", mke="EL"),
        "too short",
        ncic_line(plate="---", state="AL", mke="EV"),
        ncic_line(plate="MISS01", state="ZZ", mke="EM"),
        ncic_line(plate="WANT1", state="TN", mke="EW"),
        ncic_line(plate="OTHER1", state="AL", mke="KX"),
    ]
    rep = parse_ncic(lines)
    assert [(e.line, e.plate, e.category) for e in rep.entries] == [
        (1, "ABC1234", Category.stolen_vehicle),
        (3, "XYZ99", Category.stolen_plate),
        (7, "WANT1", Category.wanted_person),
        (8, "OTHER1", Category.custom),
    ]
    assert [e.line for e in rep.errors] == [4, 5, 6]
    assert "ZZ" in rep.errors[2].reason
    assert rep.entries[0].extra["ncic_number"] == "V123456789"


def test_csv_loose_header_wildcards_and_errors() -> None:
    text = (
        "License_Plate,State,Category,Reason,Expires\n"
        "abc 123,AL,stolen_vehicle,stolen 11/2,2027-01-01\n"
        "AB?12*,AL,custom,partial BOLO,\n"
        ",AL,custom,no plate,\n"
        "QQQ111,AL,space alien,,\n"
        "DEF456,AL,stolen_plate,,not-a-date\n"
        '"GHI789",AL,missing_person,"AMBER\nalert",2027-02-02\n'
    )
    rep = parse_csv(text)
    assert [(e.line, e.plate) for e in rep.entries] == [(2, "ABC123"), (3, "AB?12*"), (8, "GHI789")]
    assert [e.line for e in rep.errors] == [4, 5, 6]
    assert rep.entries[0].expires_at is not None and rep.entries[0].expires_at.year == 2027
    assert "plate column" in parse_csv("name,reason\nx,y\n").errors[0].reason


def test_normalize_and_fold() -> None:
    assert normalize_plate(" ab-c 1.2 ") == "ABC12"
    assert skeleton("B0SZ1IGQ") == skeleton("8O52I16D") == "80521160"


@pytest.fixture
def matcher() -> HotlistMatcher:
    entries = [
        HotEntry("e1", "ABC1234", "stolen_vehicle"),
        HotEntry("e2", "8OS2", "stolen_plate"),
        HotEntry("e3", "XY?12", "custom"),
        HotEntry("e4", "K*9", "custom"),
    ]
    return HotlistMatcher(entries, max_distance=1)


def test_match_kinds(matcher: HotlistMatcher) -> None:
    assert [(m.entry.entry_id, m.kind) for m in matcher.match("ABC1234")] == [("e1", "exact")]
    assert [(m.entry.entry_id, m.kind) for m in matcher.match("A8C1Z34")] == [("e1", "lookalike")]
    assert [(m.entry.entry_id, m.kind) for m in matcher.match("BO52")] == [("e2", "lookalike")]
    one_off = matcher.match("ABC124")  # one character missing
    assert [(m.entry.entry_id, m.kind, m.distance) for m in one_off] == [("e1", "lookalike", 1)]
    assert [m.entry.entry_id for m in matcher.match("XYZ12")] == ["e3"]
    assert [m.entry.entry_id for m in matcher.match("KAB9")] == ["e4"]
    assert matcher.match("NOPE77") == []


def test_lookalikes_off_by_default_distance() -> None:
    m = HotlistMatcher([HotEntry("e1", "ABC1234", "stolen_vehicle")])
    assert m.match("ABC124") == []  # distance 0: no edits, only folding
    assert [x.kind for x in m.match("A8C1234")] == ["lookalike"]


def test_matcher_agrees_with_brute_force() -> None:
    rng = random.Random(11)
    alphabet = string.ascii_uppercase + string.digits
    plates = ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 7))) for _ in range(800)]
    entries = [HotEntry(f"e{i}", p, "stolen_vehicle") for i, p in enumerate(plates)]
    m = HotlistMatcher(entries, max_distance=1)
    reads = [rng.choice(plates) for _ in range(100)] + [
        "".join(rng.choice(alphabet) for _ in range(6)) for _ in range(150)
    ]

    def lev(a: str, b: str) -> int:
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]

    for r in reads:
        got = {x.entry.entry_id for x in m.match(r)}
        want = {e.entry_id for e in entries if lev(skeleton(r), skeleton(e.plate)) <= 1}
        assert got == want, r
