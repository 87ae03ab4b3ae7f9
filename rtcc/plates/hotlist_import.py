"""Hotlist files: the NCIC vehicle extract (fixed width) and state CSV lists.

Parsing never stops at a bad line: every line is either an entry, a
:class:`LineError` with its line number and reason, or a :class:`Duplicate` of
an earlier line, so an import can keep the good lines and report the rest.
Entries with the same normalized plate and the same state within one file
collapse into the first (one read must make one hit, not one per copy); the
later lines are reported as duplicates, which do not fail the import. A plate
is never silently altered: an NCIC plate field holding anything but letters
and digits (blanks and dashes aside) is a bad line. Replacing a source atomically is the store's
job (one transaction deletes the old entries and inserts the new).

Two faults make a whole file untrustworthy, so they raise :class:`HotlistRefused` instead of
being a bad line: binary (or NUL-holding) content, and a CSV quote that is never closed or that
swallows later lines (a stray ``"`` turns every following line into one field, which would
silently drop those entries).

Fixed-width layout
------------------
:data:`NCIC_LAYOUT` lists ``(field, start, end)`` with 1-based inclusive
columns, the way ALPR vendors describe the extract: plate, state, plate
year, plate type, vehicle year/make/model/style/colour, VIN, NCIC number,
originating agency, entry date and message key. The default positions are a
documented assumption, not a copy of the FBI's restricted specification; an
agency whose extract differs passes its own layout (the importer takes any
layout with at least ``plate`` and ``mke``).

Categories come from the NCIC message key (``MKE``): stolen vehicle (``EV``
family), stolen plate (``EL``), wanted person (``EW``), missing person
(``EM``, AMBER alerts), and everything else as ``custom``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from rtcc.plates.matching import normalize_plate


class Category(StrEnum):
    stolen_vehicle = "stolen_vehicle"
    stolen_plate = "stolen_plate"
    wanted_person = "wanted_person"
    missing_person = "missing_person"
    custom = "custom"


NCIC_LAYOUT: tuple[tuple[str, int, int], ...] = (
    ("plate", 1, 10),
    ("state", 11, 12),
    ("plate_year", 13, 16),
    ("plate_type", 17, 18),
    ("vehicle_year", 19, 22),
    ("make", 23, 26),
    ("model", 27, 29),
    ("style", 30, 31),
    ("color", 32, 38),
    ("vin", 39, 58),
    ("ncic_number", 59, 68),
    ("ori", 69, 77),
    ("entry_date", 78, 85),
    ("mke", 86, 89),
)
"""Default NCIC extract layout: (field, first column, last column), 1-based inclusive."""

MKE_CATEGORY: dict[str, Category] = {
    "EV": Category.stolen_vehicle,
    "EVP": Category.stolen_vehicle,
    "EF": Category.stolen_vehicle,
    "EL": Category.stolen_plate,
    "ELP": Category.stolen_plate,
    "EW": Category.wanted_person,
    "EWJ": Category.wanted_person,
    "EM": Category.missing_person,
    "EMD": Category.missing_person,
    "EMJ": Category.missing_person,
    "EMV": Category.missing_person,
    "EMI": Category.missing_person,
}

_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP US"
)
US_STATES = frozenset(_STATE_CODES.split(" "))


@dataclass(frozen=True)
class ParsedEntry:
    """A hotlist line that parsed."""

    line: int
    plate: str
    category: Category
    state: str | None = None
    reason: str = ""
    expires_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LineError:
    """A line that did not parse, and why."""

    line: int
    reason: str


class HotlistRefused(ValueError):
    """The whole file is refused (nothing may be imported from it): ``line`` is where, if known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {reason}" if line is not None else reason)
        self.line = line
        self.reason = reason


MAX_CELL_CHARS = 2000
"""Longest CSV cell kept (the API's limit for a typed-in reason): a longer one is a bad line."""

_MAX_CONTROL_SHARE = 0.02
"""Share of control characters (tab and line breaks aside) above which a file is binary, not text."""


def decode_hotlist(raw: bytes) -> str:
    """The text of a hotlist file: UTF-8 (or UTF-16 with a byte order mark), else Latin-1.

    Raises :class:`HotlistRefused` for binary content: Latin-1 decodes any bytes, so without this
    a binary file would be parsed into hundreds of junk "bad lines" (or, worse, junk entries).
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            raise HotlistRefused("the file starts like UTF-16 text but is not: save it as UTF-8") from None
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if "\x00" in text:
        raise HotlistRefused(
            "the file holds NUL bytes: it is binary (or UTF-16 without a byte order mark), not a "
            "hotlist; save it as UTF-8 text"
        )
    controls = sum(1 for c in text if (c < " " and c not in "\t\n\r\f\v") or c == "\x7f")
    if controls >= 3 and controls > _MAX_CONTROL_SHARE * len(text):
        raise HotlistRefused(
            f"the file holds {controls} control characters in {len(text)}: it is binary, not a "
            "hotlist text file"
        )
    return text


def parse_file(raw: bytes, fmt: str) -> ParseReport:
    """Decode and parse a hotlist file, ``fmt`` ``ncic`` or ``csv``; raises :class:`HotlistRefused`."""
    text = decode_hotlist(raw)
    return parse_ncic(text.splitlines()) if fmt == "ncic" else parse_csv(text)


@dataclass(frozen=True)
class Duplicate:
    """A line listing the same plate (and state) as an earlier line of the file: not imported."""

    line: int
    first_line: int
    plate: str
    state: str | None


@dataclass
class ParseReport:
    entries: list[ParsedEntry] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    _first: dict[tuple[str, str | None], int] = field(default_factory=dict, repr=False)

    def add(self, entry: ParsedEntry) -> None:
        """Keep ``entry``, or report it as a duplicate of the first entry with its plate and state."""
        key = entry_key(entry.plate, entry.state)
        first = self._first.get(key)
        if first is not None:
            self.duplicates.append(Duplicate(entry.line, first, entry.plate, entry.state))
            return
        self._first[key] = entry.line
        self.entries.append(entry)


def entry_key(plate: str, state: str | None) -> tuple[str, str | None]:
    """What makes two hotlist entries of one source the same: the normalized plate and the state.

    An entry without a state and one with a state are different entries (the first matches a
    read of any state).
    """
    return plate, (state or None)


MIN_KNOWN_CHARS = 3
"""Fewest known characters (not ``?`` / ``*``) in a partial plate: ``A*`` would make every plate
that starts with A a hit alert, held from retention until someone decides it."""


def partial_problem(p: str) -> str | None:
    """Why the normalized partial plate ``p`` is too vague to list, or None."""
    if ("?" in p or "*" in p) and len(p.replace("?", "").replace("*", "")) < MIN_KNOWN_CHARS:
        return (
            f"partial plate {p!r} has fewer than {MIN_KNOWN_CHARS} known characters: it would match "
            "far too many vehicles"
        )
    return None


def _plate_ok(plate: str, *, wildcards: bool) -> str | None:
    p = normalize_plate(plate, wildcards=wildcards)
    if not p:
        return None
    if not 1 <= len(p.replace("*", "")) <= 10 or partial_problem(p) is not None:
        return None
    return p


_NCIC_PLATE_OK = re.compile(r"[A-Z0-9]+")
_NCIC_PLATE_SEPARATORS = re.compile(r"[\s-]+")


def ncic_plate_problem(field_text: str) -> str | None:
    """Why an NCIC plate field is no plate, or None.

    Blanks and dashes are separators and removed; anything else but A-Z and 0-9 (a wildcard, a
    dot, an accented letter) makes the line bad rather than being dropped: ``A*B`` must not
    become the entry ``AB``.
    """
    bare = _NCIC_PLATE_SEPARATORS.sub("", field_text).upper()
    if bare and not _NCIC_PLATE_OK.fullmatch(bare):
        odd = sorted({c for c in bare if not ("A" <= c <= "Z" or "0" <= c <= "9")})
        return (
            f"plate {field_text!r} holds {', '.join(repr(c) for c in odd)}: an NCIC plate has only "
            "letters and digits (wildcards are for BOLO entries and state lists)"
        )
    return None


def parse_ncic(lines: Iterable[str], layout: tuple[tuple[str, int, int], ...] = NCIC_LAYOUT) -> ParseReport:
    """Parse an NCIC fixed-width extract; blank lines are skipped.

    A line shorter than the layout is read as if padded with blanks (trimmed trailing blanks); a line
    longer than the layout (blanks aside), or too short to hold the plate field, is an error.
    """
    names = {f for f, _, _ in layout}
    if not {"plate", "mke"} <= names:
        raise ValueError("an NCIC layout needs at least the 'plate' and 'mke' fields")
    width = max(end for _, _, end in layout)
    plate_end = next(end for f, _, end in layout if f == "plate")
    report = ParseReport()
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if len(line) < plate_end:
            report.errors.append(
                LineError(n, f"line is {len(line)} characters; the plate field ends at column {plate_end}")
            )
            continue
        if len(line.rstrip()) > width:
            report.errors.append(
                LineError(n, f"line is {len(line.rstrip())} characters; the layout is {width} wide")
            )
            continue
        # trailing blanks are often trimmed by editors and transfer tools: they are the empty last fields
        line = line.ljust(width)
        rec = {f: line[s - 1 : e].strip() for f, s, e in layout}
        odd = ncic_plate_problem(rec["plate"])
        if odd is not None:
            report.errors.append(LineError(n, odd))
            continue
        plate = _plate_ok(rec["plate"], wildcards=False)
        if plate is None:
            report.errors.append(LineError(n, f"no usable plate in columns of 'plate': {rec['plate']!r}"))
            continue
        mke = rec["mke"].upper()
        if not mke:
            report.errors.append(LineError(n, "empty message key (mke)"))
            continue
        state = rec.get("state", "").upper() or None
        if state is not None and state not in US_STATES:
            report.errors.append(LineError(n, f"unknown state code {state!r}"))
            continue
        category = MKE_CATEGORY.get(mke, MKE_CATEGORY.get(mke[:2], Category.custom))
        extra = {k: v for k, v in rec.items() if k not in ("plate", "state", "mke") and v}
        extra["mke"] = mke
        report.add(
            ParsedEntry(
                n,
                plate,
                category,
                state,
                reason=f"NCIC {mke} {rec.get('ncic_number', '')}".strip(),
                extra=extra,
            )
        )
    return report


_CSV_ALIASES = {
    "plate": ("plate", "plate_number", "license_plate", "lp", "tag"),
    "state": ("state", "plate_state", "st"),
    "category": ("category", "type", "list"),
    "reason": ("reason", "description", "notes", "remarks"),
    "expires": ("expires", "expires_at", "expiry", "expiration", "expiration_date"),
}


def parse_csv(text: str, *, default_category: Category = Category.stolen_vehicle) -> ParseReport:
    """Parse a state hotlist CSV with a header row (column names are matched loosely).

    Wildcards (``?``, ``*``) are kept so partial plates can be listed. A cell over
    :data:`MAX_CELL_CHARS` is a bad line; a quote never closed, or one whose field swallows later
    lines, raises :class:`HotlistRefused` (the lines after it cannot be trusted).
    """
    report = ParseReport()
    rows = _rows(text)
    try:
        n, header = next(rows)
    except StopIteration:
        report.errors.append(LineError(1, "empty file: expected a header row with a 'plate' column"))
        return report
    if isinstance(header, str):
        report.errors.append(LineError(n, f"header row: {header}"))
        return report
    cols = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    for key, names in _CSV_ALIASES.items():
        for name in names:
            if name in cols:
                index[key] = cols.index(name)
                break
    if "plate" not in index:
        report.errors.append(LineError(1, f"no plate column in header {header}; name one 'plate'"))
        return report
    # a line break is fine in free text (a reason), never in these: there it means a stray quote
    one_line = {index[k] for k in ("plate", "state", "category", "expires") if k in index}
    for n, cells in rows:
        if isinstance(cells, str):
            report.errors.append(LineError(n, cells))
            continue
        if not any(c.strip() for c in cells):
            continue
        if any("\n" in cells[i] for i in one_line if i < len(cells)) or any(
            _swallows_rows(c, len(header)) for c in cells
        ):
            raise HotlistRefused(
                "a quoted field runs over a line break into the next line(s): a stray '\"'? Every "
                "later line is unreliable, so nothing was imported",
                _row_start(n, cells),
            )
        long = next((i for i, c in enumerate(cells) if len(c) > MAX_CELL_CHARS), None)
        if long is not None:
            name = header[long].strip() if long < len(header) else f"column {long + 1}"
            report.errors.append(
                LineError(n, f"{name!r} is {len(cells[long])} characters; at most {MAX_CELL_CHARS}")
            )
            continue

        if len(cells) < len(header):  # a row cut short, or its separators lost: its cells are misplaced
            report.errors.append(
                LineError(
                    n,
                    f"{len(cells)} field(s) where the header names {len(header)} "
                    f"({', '.join(h.strip() for h in header)}): a row cut short or a missing comma?",
                )
            )
            continue

        def cell(key: str, cells: list[str] = cells) -> str:
            i = index.get(key)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        plate = _plate_ok(cell("plate"), wildcards=True)
        if plate is None:
            vague = partial_problem(normalize_plate(cell("plate"), wildcards=True))
            report.errors.append(LineError(n, vague or f"no usable plate: {cell('plate')!r}"))
            continue
        cat_text = cell("category").lower().replace(" ", "_").replace("/", "_")
        try:
            category = Category(cat_text) if cat_text else default_category
        except ValueError:
            report.errors.append(
                LineError(
                    n, f"unknown category {cat_text!r}; use one of {', '.join(c.value for c in Category)}"
                )
            )
            continue
        expires: datetime | None = None
        if cell("expires"):
            try:
                expires = _parse_when(cell("expires"))
            except ValueError:
                report.errors.append(LineError(n, f"expiry {cell('expires')!r} is not a date (YYYY-MM-DD)"))
                continue
        state = cell("state").upper() or None
        if state is not None and state not in US_STATES:
            report.errors.append(LineError(n, f"unknown state code {state!r}"))
            continue
        report.add(ParsedEntry(n, plate, category, state, reason=cell("reason"), expires_at=expires))
    return report


class _Lines:
    """The physical lines of ``text``, remembering the ones the reader took for the current row.

    Split on LF only: a bare CR stays inside its line, where the reader refuses it (splitting
    there would silently make ``ABC<CR>123`` two plates).
    """

    def __init__(self, text: str) -> None:
        self._it = iter(io.StringIO(text))
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.taken.append(line)
        return line


def _swallows_rows(cell: str, columns: int) -> bool:
    """Whether a line of ``cell`` after its first holds a whole row's commas: a stray quote's work.

    A reason may hold a line break (an AMBER alert's two lines), but a continuation line with
    as many commas as the header has separators reads as the next entries swallowed.
    """
    return any(line.count(",") >= max(1, columns - 1) for line in cell.split("\n")[1:])


def _row_start(end: int, cells: list[str]) -> int:
    """The first line of a row ending on line ``end``: one line per line break inside its cells."""
    return end - sum(c.count("\n") for c in cells)


def _rows(text: str) -> Iterator[tuple[int, list[str] | str]]:
    """Rows with the physical line number each ends on (quoted fields may span lines).

    A line the reader refuses (a bare CR in an unquoted field) comes as the reason (a string)
    instead of the cells, and the reader goes on with the next line. Raises
    :class:`HotlistRefused` for a quote that is never closed or swallows lines: after a stray
    quote the reader would take every following line as part of one field.
    """
    lines = _Lines(text)
    reader = csv.reader(lines)
    while True:
        lines.taken.clear()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            n = int(reader.line_num)
            if len(lines.taken) > 1:
                raise HotlistRefused(
                    f"a quoted field opened here runs to line {n} without closing ({exc}): a stray "
                    "'\"'? Every later line is unreliable, so nothing was imported",
                    n - len(lines.taken) + 1,
                ) from None
            reason = str(exc)
            if "new-line character" in reason:
                reason = "a bare carriage return (CR) inside an unquoted field; quote the field or remove it"
            yield n, f"not readable as CSV: {reason}"
            continue
        n = int(reader.line_num)
        raw = "".join(lines.taken)
        if raw.count('"') % 2 and _unclosed(raw):
            raise HotlistRefused(
                "a quote opened on this line is never closed (the field runs to the end of the file); "
                "every later line is unreliable, so nothing was imported",
                n - len(lines.taken) + 1,
            )
        yield n, row


def _unclosed(raw: str) -> bool:
    """Whether the CSV text ``raw`` ends inside a quoted field (the lenient reader hides that).

    The reader's own rules: a quote opens a field only as its first character, ``""`` inside is
    one quote, and after the closing quote the field goes on unquoted (a quote there is literal).
    """
    quoted, at_start, i = False, True, 0
    while i < len(raw):
        c = raw[i]
        if quoted:
            if c == '"':
                if raw.startswith('"', i + 1):
                    i += 2
                    continue
                quoted = False
        elif c == '"' and at_start:
            quoted, at_start = True, False
        else:
            at_start = c in ",\r\n"
        i += 1
    return quoted


def _parse_when(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        d = date.fromisoformat(text)
        dt = datetime(d.year, d.month, d.day)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
