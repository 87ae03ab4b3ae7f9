"""Audit 8: an NCIC extract whose trailing blanks were trimmed imports like the untrimmed file."""

from __future__ import annotations

import pytest

from rtcc.plates.hotlist_import import NCIC_LAYOUT, parse_ncic
from tests.conftest import StartCenter
from tests.plates.test_hotlists import ncic_line

WIDTH = max(end for _, _, end in NCIC_LAYOUT)

GOOD = [
    ncic_line(plate="627WWI", state="AL", mke="EV", ncic_number="V123456789"),  # 2-letter key: 87 wide
    ncic_line(plate="XYZ99", state="GA", mke="EL"),
    ncic_line(plate="EMV001", state="TN", mke="EMV", ori="TN0190000"),  # 3-letter key: 88 wide
    ncic_line(plate="FULL01", state="AL", mke="EWJ", entry_date="20261101"),
]


def test_trimmed_lines_parse_like_the_full_width_ones() -> None:
    full = parse_ncic(GOOD)
    assert not full.errors and len(full.entries) == 4
    trimmed = parse_ncic([line.rstrip() for line in GOOD])
    assert trimmed.errors == []
    assert trimmed.entries == full.entries
    assert [len(line.rstrip()) for line in GOOD][:3] == [WIDTH - 2, WIDTH - 2, WIDTH - 1]
    # CRLF line ends with trimmed blanks as well
    assert parse_ncic([line.rstrip() + "\r\n" for line in GOOD]).entries == full.entries


def test_too_long_or_too_short_lines_stay_errors_by_number() -> None:
    lines = [
        GOOD[0].rstrip(),
        GOOD[1] + "EXTRA",  # longer than the layout: not this layout
        GOOD[2] + "   ",  # blanks beyond the layout are harmless
        "ABC12",  # cannot even hold the plate field
        ncic_line(plate="NOKEY1", state="AL").rstrip(),  # trimmed, but the message key is missing
    ]
    rep = parse_ncic(lines)
    assert [e.line for e in rep.entries] == [1, 3]
    assert [(e.line, e.reason) for e in rep.errors] == [
        (2, f"line is {WIDTH + 5} characters; the layout is {WIDTH} wide"),
        (4, "line is 5 characters; the plate field ends at column 10"),
        (5, "empty message key (mke)"),
    ]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_api_imports_a_trimmed_extract(start_center: StartCenter) -> None:
    c = await start_center(processors=())
    admin = await c.login("admin")
    try:
        body = "\n".join(line.rstrip() for line in GOOD).encode() + b"\n"
        r = await admin.post(
            "/api/v1/hotlists/ncic/import", params={"format": "ncic"}, files={"file": ("ncic_trim.txt", body)}
        )
        assert r.status_code == 200, r.text
        assert r.json()["imported"] == 4 and r.json()["errors"] == []
    finally:
        await admin.aclose()
