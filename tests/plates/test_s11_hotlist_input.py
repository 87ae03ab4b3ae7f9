"""Hotlist files that are not what they claim: a stray quote, a bare CR, binary bytes, a huge cell.

Audit findings (session 11): a 100-line CSV with ``P99999,AL,"stolen`` on line 4 imported 3
entries "with 0 bad lines" (the third entry's reason swallowed the rest of the file) and replaced
the source; a bare CR inside a field or a binary file crashed the import (a traceback on the CLI,
a 500 from the API).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.plates.hotlist_import import (
    MAX_CELL_CHARS,
    HotlistRefused,
    decode_hotlist,
    parse_csv,
    parse_file,
)
from rtcc.roles import Role
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry
from tests.conftest import Running
from tests.plates.test_hotlist_store import plates_of
from tests.plates.test_hotlists import ncic_line


def stray_quote_csv(closed_at: int | None = None) -> str:
    """100 lines: the header, then 99 stolen plates; line 4 opens a quote it never closes
    (or, with ``closed_at``, one closed by a quoted reason on that line)."""
    lines = ["plate,state,reason"] + [f"P{10000 + i},AL,stolen" for i in range(99)]
    lines[3] = 'P99999,AL,"stolen'
    if closed_at is not None:
        lines[closed_at - 1] = f'P{closed_at},AL,"stolen, blue sedan"'
    return "\n".join(lines) + "\n"


BINARY = random.Random(11).randbytes(3000)


def test_an_unclosed_quote_refuses_the_whole_file_naming_its_line() -> None:
    with pytest.raises(HotlistRefused) as exc:
        parse_csv(stray_quote_csv())
    assert exc.value.line == 4 and "never closed" in exc.value.reason
    # the last line too, after a field the lenient reader takes as-is ("B22"x)
    with pytest.raises(HotlistRefused) as exc:
        parse_csv('plate,reason\nA11,ok\n"B22"x,"stolen\n')
    assert exc.value.line == 3


def test_a_stray_quote_closed_by_a_later_quote_still_refuses_the_file() -> None:
    with pytest.raises(HotlistRefused) as exc:
        parse_csv(stray_quote_csv(closed_at=50))
    assert exc.value.line == 4 and "stray" in exc.value.reason
    # a line break inside a plate cell is the same fault
    with pytest.raises(HotlistRefused) as exc:
        parse_csv('plate,reason\nA11,ok\n"B22\nC33",x\n')
    assert exc.value.line == 3


def test_a_real_multi_line_reason_still_imports() -> None:
    rep = parse_csv('plate,state,reason\n"GHI789",AL,"AMBER\nalert"\nJKL012,AL,\n')
    assert [(e.line, e.plate, e.reason) for e in rep.entries] == [
        (3, "GHI789", "AMBER\nalert"),
        (4, "JKL012", ""),
    ]


def test_a_bare_cr_is_a_bad_line_and_the_rest_is_kept() -> None:
    rep = parse_csv("plate,state\nABC\r123,AL\nDEF456,GA\n")
    assert [(e.line, e.plate) for e in rep.entries] == [(3, "DEF456")]
    [bad] = rep.errors
    assert bad.line == 2 and "carriage return" in bad.reason


def test_an_absurdly_long_cell_is_a_bad_line() -> None:
    rep = parse_csv(f"plate,reason\nAAA111,{'x' * (MAX_CELL_CHARS + 1)}\nBBB222,ok\n")
    assert [e.plate for e in rep.entries] == ["BBB222"]
    [bad] = rep.errors
    assert bad.line == 2 and "'reason'" in bad.reason and str(MAX_CELL_CHARS) in bad.reason


@pytest.mark.parametrize("fmt", ["csv", "ncic"])
def test_binary_content_is_refused_for_either_format(fmt: str) -> None:
    with pytest.raises(HotlistRefused, match="binary"):
        parse_file(BINARY, fmt)
    without_nul = bytes(b for b in BINARY if b)
    with pytest.raises(HotlistRefused, match="binary"):
        parse_file(without_nul, fmt)


def test_text_in_latin1_or_utf16_still_decodes() -> None:
    line = ncic_line(plate="ABC1234", state="AL", mke="EV")
    assert parse_file((line + "\n").encode("latin-1"), "ncic").entries[0].plate == "ABC1234"
    assert decode_hotlist("plate,reason\nABC123,vol\xe9\n".encode("latin-1")).endswith("vol\xe9\n")
    assert parse_file("plate\nABC123\n".encode("utf-16"), "csv").entries[0].plate == "ABC123"


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", "cli-test-secret-" + "s" * 30)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    st = Store(url)
    yield st
    st.close()


def test_cli_refuses_the_file_and_leaves_the_source(cli_store: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.csv"
    good.write_text("plate,state\nKEEP01,AL\n")
    r = runner.invoke(app, ["hotlist", "import", "-s", "audtest3", "-f", "csv", str(good)])
    assert r.exit_code == 0, r.output

    quote = tmp_path / "quote.csv"
    quote.write_text(stray_quote_csv())
    r = runner.invoke(app, ["hotlist", "import", "-s", "audtest3", "-f", "csv", str(quote)])
    assert r.exit_code == 2, r.output  # an uncaught exception would be exit code 1
    assert f"{quote}:4:" in r.stderr and "left as it was" in r.stderr and "Traceback" not in r.output
    assert plates_of(cli_store, "audtest3") == {"KEEP01"}

    cr = tmp_path / "cr.csv"
    cr.write_bytes(b"plate,state\nABC\r123,AL\n")
    r = runner.invoke(app, ["hotlist", "import", "-s", "audtest3", "-f", "csv", str(cr)])
    assert r.exit_code == 2, r.output  # bad line reported, the rest (nothing) refused
    assert f"{cr}:2:" in r.stderr and "carriage return" in r.stderr and "Traceback" not in r.output

    for fmt in ("csv", "ncic"):
        binary = tmp_path / f"random.{fmt}"
        binary.write_bytes(BINARY)
        r = runner.invoke(app, ["hotlist", "import", "-s", "audtest3", "-f", fmt, str(binary)])
        assert r.exit_code == 2 and "binary" in r.stderr and "Traceback" not in r.output
    assert plates_of(cli_store, "audtest3") == {"KEEP01"}
    actions = cli_store.run(lambda s: list(s.scalars(select(AuditEntry.action))))
    assert actions == ["hotlist_import"]  # only the import that changed something


@pytest.mark.parametrize("backend", ["embedded"])
async def test_api_answers_422_and_leaves_the_source(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]

    async def upload(body: bytes, fmt: str = "csv") -> httpx.Response:
        return await admin.post(
            "/api/v1/hotlists/audtest3/import", params={"format": fmt}, files={"file": ("f", body)}
        )

    r = await upload(b"plate,state\nKEEP01,AL\n")
    assert r.status_code == 200, r.text

    r = await upload(stray_quote_csv().encode())
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed" and error["message"].startswith("line 4:")
    assert error["details"]["line"] == 4 and "left as it was" in error["message"]

    r = await upload(b"plate,state\nABC\r123,AL\nDEF456,GA\n")
    assert r.status_code == 200, r.text  # one bad line, reported; the good line imported
    body = r.json()
    assert body["imported"] == 1 and [e["line"] for e in body["errors"]] == [2]
    assert "carriage return" in body["errors"][0]["reason"]

    r = await upload(b"plate,state\nKEEP01,AL\n")
    assert r.status_code == 200, r.text
    for fmt in ("csv", "ncic"):
        r = await upload(BINARY, fmt)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "validation_failed" and "binary" in r.json()["error"]["message"]
    [src] = (await admin.get("/api/v1/hotlists")).json()["items"]
    assert src["entries"] == 1
    entries = (await admin.get("/api/v1/hotlists/entries", params={"plate": "KEEP01"})).json()["items"]
    assert [e["plate"] for e in entries] == ["KEEP01"]
    refused = (await admin.get("/api/v1/audit", params={"action": "hotlist_import"})).json()["items"]
    assert sorted(e["outcome"] for e in refused).count("refused") == 3


def test_a_row_cut_short_is_a_bad_line_not_a_plate_from_its_words() -> None:
    """Production audit (session 12): ``BAD LINE`` under a 4-column header was imported as plate
    ``BADLINE`` with no state or category ("3 entries imported, 0 bad lines")."""
    rep = parse_csv(
        "plate,state,category,reason\nABC1234,AL,stolen_vehicle,x\nBAD LINE\nDEF456,GA,stolen_plate,y\n"
    )
    assert [(e.line, e.plate) for e in rep.entries] == [(2, "ABC1234"), (4, "DEF456")]
    [bad] = rep.errors
    assert bad.line == 3 and "1 field(s) where the header names 4" in bad.reason
