"""Cases and the outcome ledger: what alerts and incidents led to.

An outcome belongs to a case and names the alert or incident it came from
(``ref_type`` ``alert``, ``gunshot`` or ``hit``). Recording an outcome links
the record to the case when it is not linked yet. The categories are the
seed's eleven plus ``no_evidence_found``.

A ``ref_id`` that is a UUID is stored in its canonical text (lower case, with
hyphens: :func:`canonical_ref_id`) whatever spelling was sent (upper case, no
hyphens, ``urn:uuid:``): retention, the statistics and the duplicate checks
compare ids as text, so one record has one spelling (migration 0017 rewrote the
older rows).

A success category (anything but ``no_evidence_found``) is refused (409) on a
record found not to be real: a dismissed alert, a hotlist hit rejected as a
misread, a dismissed gunshot incident (:func:`not_real`).

Two people recording the same case number, link or outcome at once: the case
is read with a row lock (PostgreSQL) and a unique-constraint violation of the
loser is a :class:`~rtcc.errors.Conflict` (409), not an internal error.

:func:`outcome_stats` reproduces the seed's table: "success in N cases since
opening", the count per category, and the share of alerts with no outcome
and with no evidence found.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rtcc.errors import Conflict, NotFound, ValidationFailed
from rtcc.store.tables import GunshotIncidentRow
from rtcc.store.tables_ops import AlertRow, Case, CaseLink, OutcomeRow

SUCCESS_CATEGORIES: tuple[str, ...] = (
    "assisted_on_scene",
    "vehicle_info",
    "suspect_info",
    "recovered_vehicle",
    "recovered_property",
    "recovered_gun",
    "recovered_drugs",
    "case_info",
    "located_missing_person",
    "arrest",
    "assisted_other_agency",
)
"""The seed's eleven categories of what the center's work led to."""

NO_EVIDENCE = "no_evidence_found"
OUTCOME_CATEGORIES: tuple[str, ...] = (*SUCCESS_CATEGORIES, NO_EVIDENCE)
LINK_TYPES: tuple[str, ...] = ("alert", "gunshot", "hit", "plate_read", "footage")
OUTCOME_REF_TYPES: tuple[str, ...] = ("alert", "gunshot", "hit")
UUID_REF_TYPES: tuple[str, ...] = ("alert", "gunshot", "hit", "plate_read")
"""Ref types whose ids are UUIDs (a ``footage`` ref is a footage request's UUID or an external id)."""
CASE_NUMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}$")
REF_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
CSV_COLUMNS = ("case_number", "ref_type", "ref_id", "category", "note")


# -- cases ---------------------------------------------------------------------


def canonical_ref_id(ref_id: str) -> str:
    """``ref_id`` as stored and compared: a UUID's canonical text (``str(UUID(x))``), else unchanged.

    ``uuid.UUID`` accepts upper case, no hyphens and ``urn:uuid:``; stored as typed, such a spelling
    missed every comparison with the canonical ids (retention deleted a read linked to an open case,
    and the same outcome was recorded once per spelling).
    """
    try:
        return str(UUID(ref_id))
    except ValueError:
        return ref_id


@contextlib.contextmanager
def _unique(what: str) -> Iterator[None]:
    """Turn a unique-constraint violation (a concurrent duplicate) into a 409."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(f"{what} was recorded by someone else at the same time: reload and retry") from exc


def create_case(session: Session, number: str, title: str, description: str, by: str, at: datetime) -> Case:
    if not CASE_NUMBER_RE.match(number):
        raise ValidationFailed(
            f"case number {number!r} is not valid: 1-64 letters, digits, '.', '_', '/', '-'"
        )
    if session.scalars(select(Case.id).where(Case.number == number)).first() is not None:
        raise Conflict(f"case number {number!r} exists already")
    case = Case(
        id=uuid.uuid4(),
        number=number,
        title=title,
        description=description,
        status="open",
        opened_by=by,
        opened_at=at,
    )
    session.add(case)
    with _unique(f"case number {number!r}"):
        session.flush()
    return case


def next_case_number(session: Session, at: datetime) -> str:
    """``YYYY-NNNNN``: the next free number of the year."""
    prefix = f"{at.year}-"
    n = session.scalar(select(func.count()).select_from(Case).where(Case.number.like(prefix + "%"))) or 0
    while True:
        n += 1
        number = f"{prefix}{n:05d}"
        if session.scalars(select(Case.id).where(Case.number == number)).first() is None:
            return number


def get_case(session: Session, case_id: UUID, *, lock: bool = False) -> Case:
    """One case; ``lock`` takes a row lock (PostgreSQL) so a close and a change cannot interleave."""
    case = session.get(Case, case_id, with_for_update=lock)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def case_by_number(session: Session, number: str, *, lock: bool = False) -> Case | None:
    q = select(Case).where(Case.number == number)
    if lock:
        q = q.with_for_update()
    return session.scalars(q).first()


def list_cases(session: Session, *, status: str | None = None, limit: int = 200) -> list[Case]:
    q = select(Case)
    if status is not None:
        q = q.where(Case.status == status)
    return list(session.scalars(q.order_by(Case.opened_at.desc()).limit(limit)))


def close_case(session: Session, case_id: UUID, by: str, at: datetime, reason: str) -> Case:
    case = get_case(session, case_id, lock=True)
    if case.status != "open":
        raise Conflict(f"case {case.number} is closed already")
    case.status, case.closed_by, case.closed_at, case.close_reason = "closed", by, at, reason
    session.flush()
    return case


def ref_exists(session: Session, ref_type: str, ref_id: str) -> bool:
    """Whether the record a link or outcome names exists (``footage`` refs are external).

    Any spelling ``uuid.UUID`` parses is found; callers store :func:`canonical_ref_id` of it.
    """
    try:
        uid = UUID(ref_id)
    except ValueError:
        return ref_type == "footage"
    if ref_type == "alert":
        return session.get(AlertRow, uid) is not None
    if ref_type == "gunshot":
        return session.get(GunshotIncidentRow, uid) is not None
    if ref_type == "hit":
        from rtcc.store.tables_hotlists import HitRow

        if session.get(HitRow, uid) is not None:
            return True
        # a hit is also known through the alert that announced it
        return (
            session.scalars(select(AlertRow.id).where(AlertRow.ref_id == str(uid)).limit(1)).first()
            is not None
        )
    if ref_type == "plate_read":
        from rtcc.plates.reads import get_read  # by id through the store's own lookup (0009 on SQLite)

        return get_read(session, uid) is not None
    return True


def add_link(session: Session, case: Case, ref_type: str, ref_id: str, by: str, at: datetime) -> CaseLink:
    """Link a record to an open case (idempotent: the existing link is returned).

    A UUID ``ref_id`` is stored in its canonical text (:func:`canonical_ref_id`).
    """
    if ref_type not in LINK_TYPES:
        raise ValidationFailed(f"ref_type {ref_type!r} is not one of {', '.join(LINK_TYPES)}")
    if not REF_ID_RE.match(ref_id):
        raise ValidationFailed(f"ref_id {ref_id!r} is not valid (1-64 letters, digits, '.', '_', ':', '-')")
    ref_id = canonical_ref_id(ref_id)
    existing = session.scalars(
        select(CaseLink).where(
            CaseLink.case_id == case.id, CaseLink.ref_type == ref_type, CaseLink.ref_id == ref_id
        )
    ).first()
    if existing is not None:
        return existing
    if case.status != "open":
        raise Conflict(f"case {case.number} is closed: reopen it or use an open case")
    if not ref_exists(session, ref_type, ref_id):
        raise NotFound(f"no {ref_type} {ref_id} to link")
    link = CaseLink(case_id=case.id, ref_type=ref_type, ref_id=ref_id, linked_by=by, linked_at=at)
    session.add(link)
    with _unique(f"the link of {ref_type} {ref_id} to case {case.number}"):
        session.flush()
    return link


def case_links(session: Session, case_id: UUID) -> list[CaseLink]:
    return list(session.scalars(select(CaseLink).where(CaseLink.case_id == case_id).order_by(CaseLink.id)))


def case_outcomes(session: Session, case_id: UUID) -> list[OutcomeRow]:
    return list(
        session.scalars(select(OutcomeRow).where(OutcomeRow.case_id == case_id).order_by(OutcomeRow.id))
    )


# -- outcomes ------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeInput:
    case_number: str
    ref_type: str
    ref_id: str
    category: str
    note: str = ""


def _check_outcome(session: Session, o: OutcomeInput) -> tuple[Case, list[str]]:
    errors: list[str] = []
    case = case_by_number(session, o.case_number, lock=True)
    if case is None:
        errors.append(f"no case number {o.case_number!r}")
    if o.ref_type not in OUTCOME_REF_TYPES:
        errors.append(f"ref_type {o.ref_type!r} is not one of {', '.join(OUTCOME_REF_TYPES)}")
    elif not REF_ID_RE.match(o.ref_id) or not ref_exists(session, o.ref_type, o.ref_id):
        errors.append(f"no {o.ref_type} {o.ref_id!r}")
    if o.category not in OUTCOME_CATEGORIES:
        errors.append(f"category {o.category!r} is not one of {', '.join(OUTCOME_CATEGORIES)}")
    if len(o.note) > 2000:
        errors.append("note is longer than 2000 characters")
    return case, errors  # type: ignore[return-value]  # case is None only with errors


def not_real(session: Session, ref_type: str, ref_id: str) -> str | None:
    """Why the record an outcome names was found not to be real, or None.

    A dismissed alert (or an alert announcing a rejected hit or a dismissed incident), a hotlist hit
    rejected as a misread (or, with no hit stored, whose every alert was dismissed), a gunshot
    incident dismissed in review. ``ref_id`` is canonical and exists (:func:`ref_exists`).
    """
    from rtcc.store.tables_hotlists import HitRow

    try:
        uid = UUID(ref_id)
    except ValueError:
        return None
    if ref_type == "alert":
        alert = session.get(AlertRow, uid)
        if alert is None:
            return None
        if alert.status == "dismissed":
            why = f": {alert.dismiss_reason}" if alert.dismiss_reason else ""
            return f"alert {ref_id} was dismissed as not real{why}"
        if alert.ref_id and alert.kind == "hotlist_hit":
            return not_real(session, "hit", alert.ref_id)
        if alert.ref_id and alert.kind in ("gunshot", "gunshot_review"):
            return not_real(session, "gunshot", alert.ref_id)
        return None
    if ref_type == "gunshot":
        inc = session.get(GunshotIncidentRow, uid)
        if inc is not None and inc.status == "dismissed":
            return f"gunshot incident {ref_id} was dismissed in review as not real"
        return None
    if ref_type == "hit":
        hit = session.get(HitRow, uid)
        if hit is not None:
            if hit.status == "rejected":
                return f"hit {ref_id} was rejected as a misread"
            return None
        statuses = set(
            session.scalars(
                select(AlertRow.status).where(AlertRow.ref_id == ref_id, AlertRow.kind == "hotlist_hit")
            )
        )
        if statuses == {"dismissed"}:
            return f"the alert of hit {ref_id} was dismissed as not real"
    return None


def record_outcomes(
    session: Session, items: Iterable[OutcomeInput], by: str, at: datetime, *, lines: list[int] | None = None
) -> list[OutcomeRow]:
    """Validate every item, then record all of them or none.

    ``lines`` gives each item's CSV line number for the errors (otherwise
    they are numbered from 0 as ``index``). A UUID ``ref_id`` is recorded in
    its canonical text, so the same outcome sent in another spelling is the
    same outcome (recorded once).

    Raises
    ------
    ValidationFailed
        With ``details.errors`` = ``[{"line" | "index", "errors": [...]}]``.
    Conflict
        A success category on a record found not to be real (:func:`not_real`), same details;
        or a concurrent duplicate.
    """
    todo = [replace(o, ref_id=canonical_ref_id(o.ref_id)) if REF_ID_RE.match(o.ref_id) else o for o in items]
    problems: list[dict[str, Any]] = []
    checked: list[tuple[Case, OutcomeInput]] = []
    for i, o in enumerate(todo):
        case, errors = _check_outcome(session, o)
        if not errors and case.status != "open":
            errors.append(f"case {case.number} is closed")
        if errors:
            where: dict[str, Any] = {"line": lines[i]} if lines is not None else {"index": i}
            problems.append({**where, "errors": errors})
        else:
            checked.append((case, o))
    if problems:
        raise ValidationFailed(
            f"{len(problems)} of {len(todo)} outcome(s) refused; nothing was recorded",
            details={"errors": problems[:200]},
        )
    refused: list[dict[str, Any]] = []
    for i, (_, o) in enumerate(checked):
        why = not_real(session, o.ref_type, o.ref_id) if o.category in SUCCESS_CATEGORIES else None
        if why is not None:
            where = {"line": lines[i]} if lines is not None else {"index": i}
            refused.append(
                {**where, "errors": [f"{why}: only {NO_EVIDENCE} may be recorded on it, not {o.category}"]}
            )
    if refused:
        first = refused[0]["errors"][0]
        raise Conflict(
            f"{len(refused)} of {len(todo)} outcome(s) name a record dismissed or rejected as not real "
            f"(e.g. {first}); nothing was recorded",
            details={"errors": refused[:200]},
        )
    rows: list[OutcomeRow] = []
    for case, o in checked:
        add_link(session, case, o.ref_type, o.ref_id, by, at)
        row = session.scalars(
            select(OutcomeRow).where(
                OutcomeRow.case_id == case.id,
                OutcomeRow.ref_type == o.ref_type,
                OutcomeRow.ref_id == o.ref_id,
                OutcomeRow.category == o.category,
            )
        ).first()
        if row is None:  # the same outcome twice is recorded once
            row = OutcomeRow(
                case_id=case.id,
                ref_type=o.ref_type,
                ref_id=o.ref_id,
                category=o.category,
                note=o.note,
                recorded_by=by,
                recorded_at=at,
            )
            session.add(row)
            with _unique(f"the outcome {o.category} of {o.ref_type} {o.ref_id} in case {case.number}"):
                session.flush()
        rows.append(row)
        incident = _incident_of(session, o.ref_type, o.ref_id)
        if incident is not None:  # the incident (and so its API view and packet) carries its outcome
            incident.outcome = o.category
    return rows


def _incident_of(session: Session, ref_type: str, ref_id: str) -> GunshotIncidentRow | None:
    """The gunshot incident an outcome is about: named directly, or through its alert."""
    if ref_type == "gunshot":
        return session.get(GunshotIncidentRow, UUID(ref_id))
    if ref_type == "alert":
        alert = session.get(AlertRow, UUID(ref_id))
        if alert is not None and alert.kind in ("gunshot", "gunshot_review") and alert.ref_id:
            try:
                return session.get(GunshotIncidentRow, UUID(alert.ref_id))
            except ValueError:
                return None
    return None


def parse_outcome_csv(text: str, *, max_rows: int) -> tuple[list[OutcomeInput], list[int]]:
    """Rows of an outcome CSV (header ``case_number,ref_type,ref_id,category[,note]``) and their lines.

    Raises
    ------
    ValidationFailed
        A missing column, too many rows, or malformed lines — each error
        names its line number (the header is line 1).
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValidationFailed("the CSV is empty: expected a header " + ",".join(CSV_COLUMNS)) from None
    except csv.Error as exc:
        raise ValidationFailed(f"line 1: {exc}") from exc
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    if missing:
        raise ValidationFailed(
            f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}",
            details={"header": header},
        )
    idx = {c: header.index(c) for c in CSV_COLUMNS if c in header}
    out: list[OutcomeInput] = []
    lines: list[int] = []
    problems: list[dict[str, Any]] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(out) >= max_rows:
                raise ValidationFailed(
                    f"more than {max_rows} rows (setting operations.outcome_import_max_rows): split the file"
                )
            if len(values) != len(header):
                problems.append({"line": line, "errors": [f"{len(values)} fields, expected {len(header)}"]})
                continue
            lines.append(line)
            out.append(
                OutcomeInput(
                    case_number=values[idx["case_number"]].strip(),
                    ref_type=values[idx["ref_type"]].strip(),
                    ref_id=values[idx["ref_id"]].strip(),
                    category=values[idx["category"]].strip(),
                    note=values[idx["note"]].strip() if "note" in idx else "",
                )
            )
    except csv.Error as exc:
        problems.append({"line": reader.line_num, "errors": [str(exc)]})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} malformed line(s); nothing was recorded", details={"errors": problems[:200]}
        )
    if not out:
        raise ValidationFailed("the CSV has a header but no rows")
    return out, lines


# -- statistics ----------------------------------------------------------------


def opening(session: Session) -> datetime | None:
    """When the center opened: its first alert or case."""
    firsts = [
        session.scalar(select(func.min(AlertRow.occurred_at))),
        session.scalar(select(func.min(Case.opened_at))),
    ]
    known = [f for f in firsts if f is not None]
    return min(known) if known else None


def _chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def alert_outcomes(
    session: Session,
    by_ref: dict[tuple[str, str], set[str]],
    *,
    start: datetime | None,
    kind: str | None = None,
    end: datetime | None = None,
) -> tuple[int, dict[UUID, set[str]]]:
    """The number of alerts (in ``[start, end)``, of ``kind``) and the outcome categories of those with any.

    An alert's outcomes are those recorded on it and on the incident or hit it
    is about (its ``ref_id``). Works from the outcomes' side, so the cost
    grows with the number of outcomes, not of alerts.
    """
    where: list[Any] = []
    if start is not None:
        where.append(AlertRow.occurred_at >= start)
    if end is not None:
        where.append(AlertRow.occurred_at < end)
    if kind is not None:
        where.append(AlertRow.kind == kind)
    n = int(session.scalar(select(func.count()).select_from(AlertRow).where(*where)) or 0)
    cats: dict[UUID, set[str]] = {}
    direct: dict[UUID, set[str]] = {}
    for (ref_type, ref_id), c in by_ref.items():
        if ref_type == "alert":
            try:
                direct[UUID(ref_id)] = c
            except ValueError:
                continue
    for chunk in _chunks(list(direct)):
        for aid in session.scalars(select(AlertRow.id).where(AlertRow.id.in_(chunk), *where)):
            cats.setdefault(aid, set()).update(direct[aid])
    via = {ref_id: c for (ref_type, ref_id), c in by_ref.items() if ref_type in OUTCOME_REF_TYPES[1:]}
    for chunk in _chunks(list(via)):
        for aid, about in session.execute(
            select(AlertRow.id, AlertRow.ref_id).where(AlertRow.ref_id.in_(chunk), *where)
        ):
            cats.setdefault(aid, set()).update(via[str(about)])
    return n, cats


def _by_ref(rows: Iterable[Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        out.setdefault((r.ref_type, r.ref_id), set()).add(r.category)
    return out


def outcome_stats(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """The seed's table: success in N cases, count per category, share of alerts without outcome.

    From ``since`` (default: the opening) to now, or to ``until`` (exclusive): a report of a past
    month gives only what was recorded in it, about the alerts of that month, and does not change
    with what happened after it.
    """
    start = since or opening(session)
    q = select(OutcomeRow.case_id, OutcomeRow.category, OutcomeRow.ref_type, OutcomeRow.ref_id)
    if start is not None:
        q = q.where(OutcomeRow.recorded_at >= start)
    if until is not None:
        q = q.where(OutcomeRow.recorded_at < until)
    rows = session.execute(q).all()
    per_category = dict.fromkeys(OUTCOME_CATEGORIES, 0)
    success_cases: set[UUID] = set()
    for r in rows:
        per_category[r.category] = per_category.get(r.category, 0) + 1
        if r.category in SUCCESS_CATEGORIES:
            success_cases.add(r.case_id)
    n, cats = alert_outcomes(session, _by_ref(rows), start=start, end=until)
    no_outcome = n - len(cats)
    no_evidence = sum(1 for c in cats.values() if c == {NO_EVIDENCE})
    since_txt = start.date().isoformat() if start is not None else "opening"
    # the day of the last instant counted (``until`` is exclusive: a month ends on its last day)
    until_txt = f" until {(until - timedelta(microseconds=1)).date()}" if until is not None else ""
    return {
        "since": start,
        "until": until,
        "success_cases": len(success_cases),
        "summary": f"success in {len(success_cases)} case{'s' if len(success_cases) != 1 else ''} "
        f"since {since_txt}{until_txt}",
        "per_category": per_category,
        "alerts": n,
        "alerts_no_outcome": no_outcome,
        "alerts_no_evidence": no_evidence,
        "share_no_outcome": round(no_outcome / n, 4) if n else None,
        "share_no_evidence": round(no_evidence / n, 4) if n else None,
    }


def outcome_shares_for_kind(session: Session, kind: str) -> dict[str, Any]:
    """Alerts of ``kind`` and the share with each outcome category."""
    rows = session.execute(select(OutcomeRow.ref_type, OutcomeRow.ref_id, OutcomeRow.category)).all()
    n, cats = alert_outcomes(session, _by_ref(rows), start=None, kind=kind)
    counts = dict.fromkeys(OUTCOME_CATEGORIES, 0)
    for c in cats.values():
        for cat in c:
            counts[cat] = counts.get(cat, 0) + 1
    return {
        "alerts": n,
        "share_by_outcome": {c: (round(v / n, 4) if n else None) for c, v in counts.items()},
        "share_no_outcome": round((n - len(cats)) / n, 4) if n else None,
    }
